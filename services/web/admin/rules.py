"""The rules screen: list, edit (name, priority, when, and the rest as YAML), firings, export/import.

The `if` / `after` / `at` / `then` parts are edited as one YAML text, so the
whole rule language is available without a form per action. On save the rule
goes through `rules_service.check_rule` exactly as `POST /api/rules` does (with the
same "does this template exist" check), and a `RuleError` is shown next to the field
its path belongs to (``name``, ``priority``, ``when...``, else the YAML text),
with the path itself, so ``then[1].create_task.due_in`` is easy to find.
Webhook secrets written into a rule are never shown back: the page carries
``********`` and saving that unchanged keeps the stored secret (as the API does).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import yaml
from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from threadline.domain.infrastructure.group_commit import Committed
from threadline.projections import automation, pipelines
from threadline.projections.automation import RuleRow
from threadline.services.rule_secrets import save_rule
from threadline.services.rules_io import (
    RulesFileError,
    export_rules,
    import_rules,
    load_rules_file,
)
from threadline.services.rules_service import check_rule, keep_secrets, redacted
from threadline.services.runtime import Runtime
from threadline.services.web.admin.common import (
    EditorDep,
    can_edit,
    checked,
    flashes,
    not_found,
    pager,
    text,
    wait,
)
from threadline.services.web.deps import WebUser, WebUserDep
from threadline.services.web.errors import message_of, status_of
from threadline.services.web.posted_forms import (
    COMMAND_ERRORS,
    FormDep,
    redirect,
)
from threadline.triggers.actions.registry import load_actions
from threadline.triggers.rules import RuleError
from threadline.triggers.trigger_names import OFFERED, facts_of

router = APIRouter()

BODY_PARTS = ("if", "after", "at", "then")
OWN_FIELDS = ("name", "priority", "when")
WHEN_FILTERS = (
    "channel",
    "within",
    "attribute",
    "unanswered_for",
    # the money flow's dates: how many days before or after, counted on a business calendar
    "days_before",
    "days_after",
    "business_days",
    "calendar",
)
FIRINGS_SHOWN = 100
EXAMPLE_BODY = "then:\n  - add_tag: vip\n"


@dataclass
class RuleDraft:
    """The rule as the form shows it (strings, as typed), and the errors by form field."""

    name: str = ""
    priority: str = "100"
    event: str = "message.received"
    custom_event: str = ""
    filters: dict[str, str] = field(default_factory=dict)
    body: str = EXAMPLE_BODY
    enabled: bool = True
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, definition: dict[str, Any], enabled: bool) -> RuleDraft:
        shown = redacted(definition)
        when = shown.get("when") or {}
        event = str(when.get("event", ""))
        rest = {k: shown[k] for k in BODY_PARTS if k in shown}
        return cls(
            name=str(shown.get("name", "")),
            priority=str(shown.get("priority", 100)),
            event=event if event in OFFERED else "",
            custom_event="" if event in OFFERED else event,
            filters={k: str(when[k]) for k in WHEN_FILTERS if when.get(k)},
            body=yaml.safe_dump(rest, allow_unicode=True, sort_keys=False, width=100),
            enabled=enabled,
        )

    @classmethod
    def posted(cls, form: Any) -> RuleDraft:
        return cls(
            name=text(form, "name"),
            priority=text(form, "priority"),
            event=text(form, "when_event"),
            custom_event=text(form, "when_custom"),
            filters={k: text(form, f"when_{k}").strip() for k in WHEN_FILTERS},
            body=text(form, "body"),
            enabled=checked(form, "enabled"),
        )

    def definition(self) -> dict[str, Any] | None:
        """The rule as data, or None with `errors` set (what the form got wrong)."""
        definition: dict[str, Any] = {"name": self.name}
        priority = self.priority.strip()
        if priority:
            try:
                definition["priority"] = int(priority)
            except ValueError:
                self.errors["priority"] = "priority: a whole number"
                return None
        event = self.custom_event.strip() or self.event.strip()
        when: dict[str, Any] = {"event": event} if event else {}
        when.update({k: v for k, v in self.filters.items() if v})
        if when:
            definition["when"] = when
        try:
            rest = yaml.safe_load(self.body) if self.body.strip() else {}
        except yaml.YAMLError as error:
            self.errors["body"] = f"YAML: {error}"
            return None
        if not isinstance(rest, dict):
            self.errors["body"] = "YAML: expected a mapping with if / after / at / then"
            return None
        strange = [key for key in rest if not isinstance(key, str)]
        if strange:
            self.errors["body"] = (
                f"YAML: {strange[0]!r} is not a part of a rule ({', '.join(BODY_PARTS)})"
            )
            return None
        doubled = sorted(set(rest) & set(OWN_FIELDS))
        if doubled:
            self.errors["body"] = f"{doubled[0]}: set it in its own field above, not in the YAML"
            return None
        definition.update(rest)
        return definition

    def fail(self, error: RuleError) -> None:
        path = str(error.path)
        where = path.split(".")[0].split("[")[0]
        key = where if where in OWN_FIELDS else "body"
        self.errors[key] = f"{path}: {error.message}"


def _rule_row(runtime: Runtime, rule_id: UUID) -> RuleRow | None:
    return automation.rule(runtime.views, rule_id)


def _editor(
    user: WebUser, draft: RuleDraft, rule: RuleRow | None, status_code: int = 200
) -> HTMLResponse:
    return user.render(
        "admin/rule_edit.html",
        status_code=status_code,
        draft=draft,
        rule=rule,
        events=OFFERED,
        event_facts={name: ", ".join(facts_of(name)) for name in OFFERED},
        editable=can_edit(user),
        # `move_deal` names a stage by its stable id: the editor lists them to copy from.
        pipelines=pipelines.pipelines(user.runtime.views),
        actions=sorted(load_actions()),
    )


def _list(
    user: WebUser,
    page: int = 1,
    done: str | None = None,
    import_text: str = "",
    import_error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    runtime = user.runtime
    paging = pager(runtime, "rules", page)
    rows = automation.rules_page(runtime.views, paging.size, paging.offset)
    return user.render(
        "admin/rules_list.html",
        status_code=status_code,
        rules=rows,
        pager=paging,
        flashes=flashes(user, done),
        editable=can_edit(user),
        import_text=import_text,
        import_error=import_error,
    )


@router.get("/rules")
def rules_list(user: WebUserDep, page: int = 1, done: str | None = None) -> HTMLResponse:
    return _list(user, page, done)


@router.get("/rules/new")
def rule_new(user: WebUserDep) -> HTMLResponse:
    return _editor(user, RuleDraft(), None)


@router.post("/rules/new")
def rule_create(user: EditorDep, form: FormDep) -> Response:
    return _save(user, RuleDraft.posted(form), None)


@router.get("/rules/export")
def rules_export(user: WebUserDep) -> Response:
    """The YAML of `threadline rules export`, with literal webhook secrets masked."""
    exported, _ = export_rules(user.runtime)
    document = yaml.safe_load(exported) or {}
    document["rules"] = [redacted(rule) for rule in document.get("rules") or []]
    body = yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=100)
    return Response(
        body,
        media_type="application/yaml; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="threadline-rules.yaml"'},
    )


@router.post("/rules/import")
def rules_import(user: EditorDep, form: FormDep) -> Response:
    """Import a rules file (pasted or uploaded); a broken file changes nothing."""
    content = text(form, "yaml")
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        content = upload.file.read().decode("utf-8", errors="replace")
    return _import(user, content)


def _import(user: WebUser, content: str) -> Response:
    if not content.strip():
        return _list(
            user, import_error=user._("Paste a rules file or choose one."), status_code=422
        )
    try:
        import_rules(user.runtime, _restore_secrets(user.runtime, content), user.actor)
    except RulesFileError as error:
        return _list(user, import_text=content, import_error=str(error), status_code=422)
    except COMMAND_ERRORS as error:
        return _list(
            user,
            import_text=content,
            import_error=message_of(user, error),
            status_code=status_of(error),
        )
    return redirect("/admin/rules", "imported")


def _restore_secrets(runtime: Runtime, content: str) -> str:
    """A file exported here carries ``********`` for webhook secrets: keep the stored ones."""
    try:
        document = load_rules_file(content)  # bounded: aliases, size
    except RulesFileError:
        return content  # import_rules reports it with its own message
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
        return content
    rules = []
    for rule in document["rules"]:
        if isinstance(rule, dict) and rule.get("id") and isinstance(rule.get("then"), list):
            try:
                row = _rule_row(runtime, UUID(str(rule["id"])))
            except ValueError:
                row = None
            if row is not None:
                rule = keep_secrets(rule, row.definition)
        rules.append(rule)
    dumped: str = yaml.safe_dump({**document, "rules": rules}, allow_unicode=True, sort_keys=False)
    return dumped


@router.get("/rules/{rule_id}")
def rule_edit(rule_id: UUID, user: WebUserDep) -> HTMLResponse:
    row = _rule_row(user.runtime, rule_id)
    if row is None:
        return not_found(user, user._("No such rule."))
    draft = RuleDraft.of(row.definition, row.enabled)
    return _editor(user, draft, row)


@router.post("/rules/{rule_id}")
def rule_update(rule_id: UUID, user: EditorDep, form: FormDep) -> Response:
    row = _rule_row(user.runtime, rule_id)
    if row is None:
        return not_found(user, user._("No such rule."))
    return _save(user, RuleDraft.posted(form), row)


def _save(user: WebUser, draft: RuleDraft, row: RuleRow | None) -> Response:
    runtime = user.runtime
    given = draft.definition()
    if given is None:
        return _editor(user, draft, row, 422)
    if row is not None and isinstance(given.get("then"), list):
        given = keep_secrets(given, row.definition)
    try:
        definition = check_rule(given, runtime.app.repository, runtime.settings)
    except RuleError as error:
        draft.fail(error)
        return _editor(user, draft, row, 422)
    try:
        committed: Committed[Any]
        if row is None:
            committed = save_rule(runtime.channels.secrets, runtime.app, definition, user.actor)
            wait(runtime, committed)
            if not draft.enabled:
                committed = runtime.app.set_rule_enabled(committed.value, False, user.actor)
        else:
            rule_id = UUID(row.id)
            secrets = runtime.channels.secrets
            wait(runtime, save_rule(secrets, runtime.app, definition, user.actor, rule_id=rule_id))
            committed = runtime.app.set_rule_enabled(rule_id, draft.enabled, user.actor)
    except COMMAND_ERRORS as error:
        draft.errors["form"] = message_of(user, error)
        return _editor(user, draft, row, status_of(error))
    wait(runtime, committed)
    return redirect("/admin/rules", "saved")


@router.post("/rules/{rule_id}/enabled")
def rule_switch(rule_id: UUID, user: EditorDep, form: FormDep) -> Response:
    """Switch a rule on or off from the list; its definition stays."""
    if _rule_row(user.runtime, rule_id) is None:
        return not_found(user, user._("No such rule."))
    enabled = checked(form, "enabled")
    committed = user.runtime.app.set_rule_enabled(rule_id, enabled, user.actor)
    wait(user.runtime, committed)
    return redirect("/admin/rules", "enabled" if enabled else "disabled")


@router.get("/rules/{rule_id}/firings")
def rule_firings(rule_id: UUID, user: WebUserDep) -> HTMLResponse:
    """What the rule did, newest first: the cause, the conditions that held, the effects."""
    row = _rule_row(user.runtime, rule_id)
    if row is None:
        return not_found(user, user._("No such rule."))
    rows = automation.firings_of_rule(user.runtime.views, rule_id, FIRINGS_SHOWN)
    firings = [
        {
            "id": r.id,
            "occurred_at": r.occurred_at,
            "outcome": r.outcome,
            "reason": r.reason,
            "contact_id": r.contact_id,
            "rule_version": r.rule_version,
            "cause": r.cause,
            "trace": [_leaf(leaf) for leaf in r.trace],
            "effects": r.effects,
        }
        for r in rows
    ]
    return user.render("admin/rule_firings.html", rule=row, firings=firings)


def _leaf(leaf: Any) -> dict[str, Any]:
    """One condition of a trace as text: the field, the operator, what was expected and found."""
    if not isinstance(leaf, dict):
        return {"field": str(leaf), "op": "", "expected": "", "actual": "", "result": True}

    def shown(key: str) -> str:
        return json.dumps(leaf[key], ensure_ascii=False, default=str) if key in leaf else ""

    return {
        "field": str(leaf.get("field") or leaf.get("path") or ""),
        "op": str(leaf.get("op") or ""),
        "expected": shown("expected"),
        "actual": shown("actual"),
        "result": bool(leaf.get("result")),
    }
