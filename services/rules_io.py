"""Rules and templates as one YAML document, for `threadline rules export|import`.

An import validates the whole file before it writes anything, so a broken file
changes nothing; then every rule and template is created or updated (by id
for rules, by slug for templates) and each change is an event like any other.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import yaml

from threadline.services.runtime import Runtime
from threadline.triggers.rules import RuleError, validate_rule
from threadline.triggers.templates import TemplateError, validate_template


class RulesFileError(ValueError):
    pass


def export_rules(runtime: Runtime) -> tuple[str, tuple[int, int]]:
    templates = [
        {"slug": row["slug"], "name": row["name"], "variants": json.loads(row["variants"])}
        for row in runtime.views.query("SELECT * FROM templates ORDER BY slug")
    ]
    rules = [
        {
            "id": row["id"],
            "enabled": bool(row["enabled"]),
            **json.loads(row["definition"]),
        }
        for row in runtime.views.query("SELECT * FROM rules ORDER BY name, id")
    ]
    document = {"templates": templates, "rules": rules}
    text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=100)
    return text, (len(rules), len(templates))


def import_rules(runtime: Runtime, text: str, actor: str) -> tuple[int, int]:
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise RulesFileError(f"not YAML: {error}") from None
    if not isinstance(document, dict):
        raise RulesFileError("expected a mapping with `rules` and `templates`")
    templates = document.get("templates") or []
    rules = document.get("rules") or []
    registry = runtime.app.attribute_registry()
    keys = {d.key for d in registry.all()} if registry is not None else set()
    slugs = {str(t.get("slug")) for t in templates if isinstance(t, dict)}
    for index, template in enumerate(templates):
        if not isinstance(template, dict) or not template.get("slug"):
            raise RulesFileError(f"templates[{index}]: a template needs a slug")
        try:
            validate_template(template.get("variants") or {}, keys)
        except TemplateError as error:
            raise RulesFileError(f"templates[{index}] ({template['slug']}): {error}") from None
    prepared: list[tuple[UUID | None, bool, dict[str, Any]]] = []
    for index, rule in enumerate(rules):
        if not isinstance(rule, dict):
            raise RulesFileError(f"rules[{index}]: a rule is a mapping")
        rule = dict(rule)
        raw_id = rule.pop("id", None)
        enabled = bool(rule.pop("enabled", True))
        try:
            rule_id = UUID(str(raw_id)) if raw_id else None
        except ValueError:
            raise RulesFileError(f"rules[{index}].id: not a rule id") from None
        try:
            definition = validate_rule(
                rule, lambda slug: slug in slugs or _template_known(runtime, slug)
            )
        except RuleError as error:
            raise RulesFileError(f"rules[{index}] ({rule.get('name')}): {error}") from None
        prepared.append((rule_id, enabled, definition))
    for template in templates:
        runtime.app.save_template(
            template["slug"], template.get("name") or template["slug"], template["variants"], actor
        )
    for rule_id, enabled, definition in prepared:
        saved = runtime.app.save_rule(definition, actor, rule_id=rule_id).value
        runtime.app.set_rule_enabled(saved, enabled, actor)
    runtime.wait_for_views(runtime.app.recorder.max_notification_id())
    return len(prepared), len(templates)


def _template_known(runtime: Runtime, slug: str) -> bool:
    return (
        runtime.views.query_one("SELECT 1 AS hit FROM templates WHERE slug = ?", [slug]) is not None
    )
