"""Rules and templates as one YAML document, for `threadline rules export|import`.

An import validates the whole file before it writes anything, so a broken file
changes nothing; then every rule and template is created or updated (by id
for rules, by slug for templates) and each change is an event like any other.

Whatever is imported ends in the immutable log, so the file is bounded before
it is read: at most `MAX_FILE_BYTES`, at most `MAX_ALIASES` YAML aliases, and at
most `MAX_EXPANDED` characters and items once aliases are expanded — a 419-byte
"billion laughs" file is refused, not appended as megabytes.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID, uuid4

import yaml

from threadline.domain.model.errors import InvalidInput
from threadline.projections import automation
from threadline.services.rule_secrets import save_rule, store_secrets, with_stored_secrets
from threadline.services.runtime import Runtime
from threadline.services.webhooks import destination_policy
from threadline.triggers.rules import RuleError, validate_rule
from threadline.triggers.templates import TemplateError, validate_template

MAX_FILE_BYTES = 1_048_576
MAX_ALIASES = 100
MAX_EXPANDED = 1_048_576  # characters plus items of the loaded document, aliases expanded
MAX_DEPTH = 100


_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")  # as `POST /api/templates`


class RulesFileError(ValueError):
    pass


class _BoundedLoader(yaml.SafeLoader):  # type: ignore[misc]
    """`yaml.SafeLoader` that counts aliases: each one may stand for a whole tree."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise RulesFileError(f"more than {MAX_ALIASES} YAML aliases (*name)")
        return super().compose_node(parent, index)


def load_rules_file(text: str) -> Any:
    """Parse a rules file within the limits above (`RulesFileError` otherwise)."""
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_FILE_BYTES:
        raise RulesFileError(f"the file is {size} bytes; at most {MAX_FILE_BYTES}")
    try:
        document = yaml.load(text, Loader=_BoundedLoader)  # a SafeLoader subclass
    except yaml.YAMLError as error:
        raise RulesFileError(f"not YAML: {error}") from None
    except RecursionError:
        raise RulesFileError("nested too deeply") from None
    if _expanded_size(document) > MAX_EXPANDED:
        raise RulesFileError(
            f"the file expands to more than {MAX_EXPANDED} characters and items (YAML aliases)"
        )
    return document


def _expanded_size(document: Any) -> int:
    """Size with every alias expanded, counted without expanding (stops past the limit)."""
    total = 0
    stack: list[tuple[Any, int]] = [(document, 0)]
    while stack and total <= MAX_EXPANDED:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise RulesFileError("nested too deeply")
        total += len(item) if isinstance(item, str | bytes) else 1
        if isinstance(item, dict):
            stack.extend((part, depth + 1) for pair in item.items() for part in pair)
        elif isinstance(item, list | tuple | set):
            stack.extend((part, depth + 1) for part in item)
    return total


def export_rules(runtime: Runtime) -> tuple[str, tuple[int, int]]:
    templates = [
        {"slug": row.slug, "name": row.name, "variants": row.variants}
        for row in automation.templates(runtime.views)
    ]
    rules = [
        {
            "id": row.id,
            "enabled": row.enabled,
            # The CLI file carries literal secrets again (the web export masks them).
            **with_stored_secrets(runtime.channels.secrets, UUID(row.id), row.definition),
        }
        for row in automation.rules(runtime.views)
    ]
    document = {"templates": templates, "rules": rules}
    text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=100)
    return text, (len(rules), len(templates))


def import_rules(runtime: Runtime, text: str, actor: str) -> tuple[int, int]:
    document = load_rules_file(text) or {}
    if not isinstance(document, dict):
        raise RulesFileError("expected a mapping with `rules` and `templates`")
    templates = document.get("templates") or []
    rules = document.get("rules") or []
    if not isinstance(templates, list) or not isinstance(rules, list):
        raise RulesFileError("`rules` and `templates` are lists")
    registry = runtime.app.attribute_registry()
    keys = {d.key for d in registry.all()} if registry is not None else set()
    slugs = {str(t.get("slug")) for t in templates if isinstance(t, dict)}
    for index, template in enumerate(templates):
        if not isinstance(template, dict) or not template.get("slug"):
            raise RulesFileError(f"templates[{index}]: a template needs a slug")
        if not isinstance(template["slug"], str) or not _SLUG.match(template["slug"]):
            raise RulesFileError(f"templates[{index}].slug: lowercase letters, digits and -")
        name = template.get("name")
        if name is not None and (not isinstance(name, str) or len(name) > 200):
            raise RulesFileError(f"templates[{index}].name: text of at most 200 characters")
        try:
            validate_template(template.get("variants") or {}, keys)
        except TemplateError as error:
            raise RulesFileError(f"templates[{index}] ({template['slug']}): {error}") from None
    prepared: list[tuple[UUID, bool, dict[str, Any]]] = []
    policy = destination_policy(runtime.settings)
    for index, rule in enumerate(rules):
        if not isinstance(rule, dict):
            raise RulesFileError(f"rules[{index}]: a rule is a mapping")
        rule = dict(rule)
        raw_id = rule.pop("id", None)
        enabled = rule.pop("enabled", True)
        if not isinstance(enabled, bool):
            raise RulesFileError(f"rules[{index}].enabled: true or false")
        try:
            rule_id = UUID(str(raw_id)) if raw_id else None
        except ValueError:
            raise RulesFileError(f"rules[{index}].id: not a rule id") from None
        try:
            definition = validate_rule(
                rule,
                lambda slug: slug in slugs or _template_known(runtime, slug),
                destinations=policy,
            )
        except RuleError as error:
            raise RulesFileError(f"rules[{index}] ({rule.get('name')}): {error}") from None
        prepared.append((rule_id or uuid4(), enabled, definition))
    for rule_id, _, definition in prepared:  # before anything is appended
        try:
            store_secrets(runtime.channels.secrets, rule_id, definition)
        except InvalidInput as error:
            raise RulesFileError(f"rules ({definition['name']}): {error}") from None
    for template in templates:
        runtime.app.save_template(
            template["slug"], template.get("name") or template["slug"], template["variants"], actor
        )
    for rule_id, enabled, definition in prepared:
        saved = save_rule(
            runtime.channels.secrets, runtime.app, definition, actor, rule_id=rule_id
        ).value
        runtime.app.set_rule_enabled(saved, enabled, actor)
    runtime.wait_for_views(runtime.app.recorder.max_notification_id())
    return len(prepared), len(templates)


def _template_known(runtime: Runtime, slug: str) -> bool:
    return automation.template_exists(runtime.views, slug)
