"""Rules, templates and the explanations of what they did.

`POST /api/rules` and `POST /api/templates` validate everything at save time
(an unknown variable, operator, event or template is a 422 naming the place),
so nothing fails later when a rule runs. `GET /api/rules/{id}/firings` and
`GET /api/automation/explain/{effect id}` answer "why did the client get
this?": the rule, the cause event and the conditions that held.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field

from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.rule import Rule
from threadline.domain.model.template import template_id_for
from threadline.services.api.deps import ManagerDep, PrincipalDep, RuntimeDep, WriterDep
from threadline.services.api.schemas import ListOut
from threadline.services.rule_secrets import save_rule
from threadline.services.runtime import Runtime
from threadline.services.webhooks import destination_policy
from threadline.triggers.rules import RuleError, validate_rule
from threadline.triggers.templates import TemplateError, render, validate_template

router = APIRouter(prefix="/api", tags=["automation"])


class RuleIn(BaseModel):
    """A rule definition: `name`, `priority`, `when`, `if`, `after`, `at`, `then`."""

    model_config = {"extra": "allow"}
    enabled: bool = True


class TemplateIn(BaseModel):
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    name: str = Field(min_length=1, max_length=200)
    variants: dict[str, dict[str, Any]] = Field(
        description="per channel: email {subject, html, text}, sms {text}, "
        "telegram {text, parse_mode}, default {text}"
    )


class PreviewIn(BaseModel):
    contact_id: UUID
    channel: str = "email"


def _template_exists(runtime: Runtime, slug: str) -> bool:
    try:
        return runtime.app.repository.get(template_id_for(slug)) is not None
    except Exception:
        return False


def _valid_rule(runtime: Runtime, definition: dict[str, Any]) -> dict[str, Any]:
    try:
        return validate_rule(
            definition,
            lambda slug: _template_exists(runtime, slug),
            destinations=destination_policy(runtime.settings),
        )
    except RuleError as error:
        raise InvalidInput(error.path, error.message) from None


def _redacted(definition: dict[str, Any]) -> dict[str, Any]:
    """Webhook secrets written into a rule are not shown back (``${NAME}`` references are)."""
    actions = []
    for action in definition.get("then", []):
        spec = action.get("webhook")
        if spec and spec.get("secret") and not str(spec["secret"]).startswith("${"):
            action = {"webhook": {**spec, "secret": "********"}}
        actions.append(action)
    return {**definition, "then": actions}


def _keep_secrets(given: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """A redacted secret sent back unchanged keeps the stored one (same URL, same action)."""
    stored = {
        a["webhook"]["url"]: a["webhook"].get("secret")
        for a in current.get("then", [])
        if isinstance(a, dict) and "webhook" in a
    }
    actions = []
    for action in given.get("then", []) or []:
        spec = action.get("webhook") if isinstance(action, dict) else None
        if spec and spec.get("secret") == "********":
            action = {"webhook": {**spec, "secret": stored.get(spec.get("url"), "")}}
        actions.append(action)
    return {**given, "then": actions}


def _rule_out(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "enabled": bool(row["enabled"]),
        "version": row["version"],
        "definition": _redacted(json.loads(row["definition"])),
        "firing_count": row["firing_count"],
        "last_fired_at": row["last_fired_at"],
        "updated_at": row["updated_at"],
    }


def _rule_row(runtime: Runtime, rule_id: UUID) -> dict[str, Any]:
    row = runtime.views.query_one("SELECT * FROM rules WHERE id = ?", [str(rule_id)])
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"rule {rule_id} not found")
    return row


@router.post("/rules", status_code=status.HTTP_201_CREATED)
def create_rule(body: RuleIn, runtime: RuntimeDep, principal: ManagerDep) -> dict[str, Any]:
    definition = _valid_rule(runtime, body.model_dump(exclude={"enabled"}))
    committed = save_rule(runtime, definition, principal.actor)
    rule_id = committed.value
    if not body.enabled:
        committed = runtime.app.set_rule_enabled(rule_id, False, principal.actor)
    runtime.wait_for_views(committed.notification_id)
    return _rule_out(_rule_row(runtime, rule_id))


@router.get("/rules", response_model=ListOut)
def list_rules(runtime: RuntimeDep, principal: PrincipalDep) -> ListOut:
    rows = runtime.views.query("SELECT * FROM rules ORDER BY name, id")
    return ListOut(items=[_rule_out(r) for r in rows], total=len(rows))


@router.get("/rules/{rule_id}")
def get_rule(rule_id: UUID, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    return _rule_out(_rule_row(runtime, rule_id))


@router.put("/rules/{rule_id}")
def change_rule(
    rule_id: UUID, body: RuleIn, runtime: RuntimeDep, principal: ManagerDep
) -> dict[str, Any]:
    current = json.loads(_rule_row(runtime, rule_id)["definition"])
    given = _keep_secrets(body.model_dump(exclude={"enabled"}), current)
    definition = _valid_rule(runtime, given)
    saved = save_rule(runtime, definition, principal.actor, rule_id=rule_id)
    enabled = runtime.app.set_rule_enabled(rule_id, body.enabled, principal.actor)
    runtime.wait_for_views(max(saved.notification_id or 0, enabled.notification_id or 0))
    return _rule_out(_rule_row(runtime, rule_id))


class EnabledIn(BaseModel):
    enabled: bool


@router.patch("/rules/{rule_id}")
def enable_rule(
    rule_id: UUID, body: EnabledIn, runtime: RuntimeDep, principal: ManagerDep
) -> dict[str, Any]:
    """Switch a rule on or off (its definition stays)."""
    _rule_row(runtime, rule_id)
    committed = runtime.app.set_rule_enabled(rule_id, body.enabled, principal.actor)
    runtime.wait_for_views(committed.notification_id)
    return _rule_out(_rule_row(runtime, rule_id))


def _firing_out(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "firing_id": row["id"],
        "rule_id": row["rule_id"],
        "rule_version": row["rule_version"],
        "contact_id": row["contact_id"],
        "outcome": row["outcome"],
        "reason": row["reason"],
        "cause": json.loads(row["cause"]),
        "conditions": json.loads(row["trace"]),
        "effects": json.loads(row["effects"]),
        "depth": row["depth"],
        "occurred_at": row["occurred_at"],
    }


@router.get("/rules/{rule_id}/firings", response_model=ListOut)
def rule_firings(
    rule_id: UUID,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ListOut:
    """What the rule did, newest first: each cause, the conditions that held, the effects."""
    _rule_row(runtime, rule_id)
    rows = runtime.views.query(
        "SELECT * FROM rule_firings WHERE rule_id = ? ORDER BY position DESC LIMIT ?",
        [str(rule_id), limit],
    )
    return ListOut(items=[_firing_out(r) for r in rows], total=None)


@router.get("/automation/explain/{effect_id}")
def explain(effect_id: UUID, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    """Why an automatic message, task, notification or webhook call exists."""
    effect = runtime.views.query_one(
        "SELECT * FROM rule_effects WHERE effect_id = ?", [str(effect_id)]
    )
    if effect is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"{effect_id} was not made by a rule (or is not known)"
        )
    firing = runtime.views.query_one(
        "SELECT * FROM rule_firings WHERE id = ?", [effect["firing_id"]]
    )
    rule = runtime.views.query_one("SELECT * FROM rules WHERE id = ?", [effect["rule_id"]])
    assert firing is not None
    rule_version = firing["rule_version"]
    definition_then = _definition_at(runtime, UUID(effect["rule_id"]), rule_version)
    return {
        "effect": {"id": effect["effect_id"], "kind": effect["kind"]},
        "rule": {
            "id": effect["rule_id"],
            "name": rule["name"] if rule else None,
            "version": rule_version,
            "definition": _redacted(definition_then) if definition_then else None,
        },
        **_firing_out(firing),
    }


def _definition_at(runtime: Runtime, rule_id: UUID, version: int) -> dict[str, Any] | None:
    """The rule as it was when it fired (a rule may have changed since)."""
    try:
        rule: Rule = runtime.app.repository.get(rule_id, version=version)
    except Exception:
        return None
    return dict(rule.definition)


# -- templates --------------------------------------------------------------------------------


def _attribute_keys(runtime: Runtime) -> set[str]:
    registry = runtime.app.attribute_registry()
    return {d.key for d in registry.all()} if registry is not None else set()


def _validated(runtime: Runtime, variants: dict[str, Any]) -> None:
    try:
        validate_template(variants, _attribute_keys(runtime))
    except TemplateError as error:
        field = ".".join(str(p) for p in ("variants", error.variant, error.field) if p)
        line = f" (line {error.line})" if getattr(error, "line", None) else ""
        raise InvalidInput(field, f"{error.message}{line}") from None


def _template_out(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "slug": row["slug"],
        "name": row["name"],
        "variants": json.loads(row["variants"]),
        "updated_at": row["updated_at"],
    }


@router.post("/templates", status_code=status.HTTP_201_CREATED)
def create_template(body: TemplateIn, runtime: RuntimeDep, principal: ManagerDep) -> dict[str, Any]:
    _validated(runtime, body.variants)
    committed = runtime.app.save_template(
        body.slug, body.name, body.variants, principal.actor, create_only=True
    )
    runtime.wait_for_views(committed.notification_id)
    return get_template(body.slug, runtime, principal)


@router.put("/templates/{slug}")
def change_template(
    slug: str, body: TemplateIn, runtime: RuntimeDep, principal: ManagerDep
) -> dict[str, Any]:
    if body.slug != slug:
        raise InvalidInput("slug", "the slug of a template cannot change")
    _validated(runtime, body.variants)
    committed = runtime.app.save_template(slug, body.name, body.variants, principal.actor)
    runtime.wait_for_views(committed.notification_id)
    return get_template(slug, runtime, principal)


@router.get("/templates", response_model=ListOut)
def list_templates(runtime: RuntimeDep, principal: PrincipalDep) -> ListOut:
    rows = runtime.views.query("SELECT * FROM templates ORDER BY slug")
    return ListOut(items=[_template_out(r) for r in rows], total=len(rows))


@router.get("/templates/{slug}")
def get_template(slug: str, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    row = runtime.views.query_one("SELECT * FROM templates WHERE slug = ?", [slug])
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"template {slug} not found")
    return _template_out(row)


@router.post("/templates/{slug}/preview")
def preview_template(
    slug: str, body: PreviewIn, runtime: RuntimeDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Render the template for one contact as the rule would send it (nothing is sent)."""
    template = get_template(slug, runtime, principal)
    from threadline.triggers.events import TriggerEvent
    from threadline.triggers.facts import FactReader

    if runtime.queries.contact(str(body.contact_id)) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"contact {body.contact_id} not found")
    from datetime import UTC, datetime

    trigger = TriggerEvent(
        names=("preview",),
        cause_key="preview",
        occurred_at=datetime.now(UTC),
        facts={"type": "preview"},
        contact_id=body.contact_id,
    )
    facts = FactReader(runtime.queries).facts(trigger)
    facts["unsubscribe_url"] = runtime.triggers.settings.unsubscribe_url(str(body.contact_id))
    try:
        rendered = render(template["variants"], body.channel, facts)
    except TemplateError as error:
        raise InvalidInput("variants", str(error)) from None
    return {
        "channel": body.channel,
        "subject": rendered.subject,
        "text": rendered.text,
        "html": rendered.html,
        "sms_segments": rendered.sms_segments,
    }


# -- business calendars -----------------------------------------------------------------------


class CalendarIn(BaseModel):
    tz: str = Field(examples=["Europe/Moscow"])
    week: dict[str, list[list[str]]] = Field(
        examples=[{"mon": [["09:00", "18:00"]], "sat": []}],
        description="opening ranges per weekday (mon..sun), local time",
    )
    holidays: list[str] = Field(default_factory=list, description="ISO dates, local")


@router.get("/calendars", response_model=ListOut)
def list_calendars(runtime: RuntimeDep, principal: PrincipalDep) -> ListOut:
    rows = runtime.views.query("SELECT name, definition, updated_at FROM calendars ORDER BY name")
    items = [{**r, "definition": json.loads(r["definition"])} for r in rows]
    return ListOut(items=items, total=len(items))


@router.put("/calendars/{name}")
def save_calendar(
    name: str, body: CalendarIn, runtime: RuntimeDep, principal: ManagerDep
) -> dict[str, Any]:
    """Business hours by name; a calendar named like an inbox is that inbox's calendar."""
    from threadline.triggers.business_hours import BusinessCalendar, CalendarError

    try:
        definition = BusinessCalendar.from_dict(body.model_dump()).to_dict()
    except CalendarError as error:
        raise InvalidInput(f"calendar.{error.path}".rstrip("."), str(error)) from None
    committed = runtime.app.save_calendar(name, definition, principal.actor)
    runtime.wait_for_views(committed.notification_id)
    return {"name": name, "definition": definition}


# -- notifications ----------------------------------------------------------------------------


@router.get("/notifications", response_model=ListOut)
def my_notifications(runtime: RuntimeDep, principal: PrincipalDep, unread: bool = True) -> ListOut:
    if principal.user_id is None:
        return ListOut(items=[], total=0)
    sql = "SELECT * FROM notifications WHERE user_id = ?"
    if unread:
        sql += " AND read = 0"
    rows = runtime.views.query(sql + " ORDER BY created_at DESC LIMIT 200", [principal.user_id])
    return ListOut(items=rows, total=len(rows))


@router.post("/notifications/{notification_id}/read", status_code=status.HTTP_204_NO_CONTENT)
def read_notification(notification_id: UUID, runtime: RuntimeDep, principal: WriterDep) -> None:
    from threadline.domain.model.automation import Notification

    def command(unit: Any) -> None:
        notification = unit.get(notification_id, Notification)
        if not notification.read:
            notification.mark_read(principal.actor, str(notification_id))

    committed = runtime.app.writer.submit(command)
    runtime.wait_for_views(committed.notification_id)
