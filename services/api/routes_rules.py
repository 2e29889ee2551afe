"""Rules, templates and the explanations of what they did.

`POST /api/rules` and `POST /api/templates` validate everything at save time
(an unknown variable, operator, event or template is a 422 naming the place),
so nothing fails later when a rule runs. `GET /api/rules/{id}/firings` and
`GET /api/automation/explain/{effect id}` answer "why did the client get
this?": the rule, the cause event and the conditions that held.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field

from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.rule import Rule
from threadline.projections import automation
from threadline.projections.automation import FiringRow, RuleRow, TemplateRow
from threadline.services import template_preview
from threadline.services.api.deps import ManagerDep, PrincipalDep, RuntimeDep, WriterDep
from threadline.services.api.schemas import ListOut
from threadline.services.rule_secrets import save_rule
from threadline.services.rules_service import check_rule, keep_secrets, redacted
from threadline.services.runtime import Runtime
from threadline.services.template_preview import attribute_keys
from threadline.triggers.rules import RuleError
from threadline.triggers.templates import TemplateError, validate_template

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


def _valid_rule(runtime: Runtime, definition: dict[str, Any]) -> dict[str, Any]:
    try:
        return check_rule(definition, runtime.app.repository, runtime.settings)
    except RuleError as error:
        raise InvalidInput(error.path, error.message) from None


def _rule_out(row: RuleRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "enabled": row.enabled,
        "version": row.version,
        "definition": redacted(row.definition),
        "firing_count": row.firing_count,
        "last_fired_at": row.last_fired_at,
        "updated_at": row.updated_at,
    }


def _rule_row(runtime: Runtime, rule_id: UUID) -> RuleRow:
    row = automation.rule(runtime.views, rule_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"rule {rule_id} not found")
    return row


@router.post("/rules", status_code=status.HTTP_201_CREATED)
def create_rule(body: RuleIn, runtime: RuntimeDep, principal: ManagerDep) -> dict[str, Any]:
    definition = _valid_rule(runtime, body.model_dump(exclude={"enabled"}))
    saved = save_rule(runtime.channels.secrets, runtime.app, definition, principal.actor)
    rule_id = saved.value
    position = saved.notification_id
    if not body.enabled:
        position = runtime.app.set_rule_enabled(rule_id, False, principal.actor).notification_id
    runtime.wait_for_views(position)
    return _rule_out(_rule_row(runtime, rule_id))


@router.get("/rules", response_model=ListOut)
def list_rules(runtime: RuntimeDep, principal: PrincipalDep) -> ListOut:
    rows = automation.rules(runtime.views)
    return ListOut(items=[_rule_out(r) for r in rows], total=len(rows))


@router.get("/rules/{rule_id}")
def get_rule(rule_id: UUID, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    return _rule_out(_rule_row(runtime, rule_id))


@router.put("/rules/{rule_id}")
def change_rule(
    rule_id: UUID, body: RuleIn, runtime: RuntimeDep, principal: ManagerDep
) -> dict[str, Any]:
    current = _rule_row(runtime, rule_id).definition
    given = keep_secrets(body.model_dump(exclude={"enabled"}), current)
    definition = _valid_rule(runtime, given)
    saved = save_rule(
        runtime.channels.secrets, runtime.app, definition, principal.actor, rule_id=rule_id
    )
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


def _firing_out(row: FiringRow) -> dict[str, Any]:
    return {
        "firing_id": row.id,
        "rule_id": row.rule_id,
        "rule_version": row.rule_version,
        "contact_id": row.contact_id,
        "outcome": row.outcome,
        "reason": row.reason,
        "cause": row.cause,
        "conditions": row.trace,
        "effects": row.effects,
        "depth": row.depth,
        "occurred_at": row.occurred_at,
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
    rows = automation.firings_of_rule(runtime.views, rule_id, limit)
    return ListOut(items=[_firing_out(r) for r in rows], total=None)


@router.get("/automation/explain/{effect_id}")
def explain(effect_id: UUID, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    """Why an automatic message, task, notification or webhook call exists."""
    effect = automation.effect(runtime.views, effect_id)
    if effect is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"{effect_id} was not made by a rule (or is not known)"
        )
    firing = automation.firing(runtime.views, effect.firing_id)
    rule = automation.rule(runtime.views, effect.rule_id)
    assert firing is not None
    rule_version = firing.rule_version
    definition_then = _definition_at(runtime, UUID(effect.rule_id), rule_version)
    return {
        "effect": {"id": effect.effect_id, "kind": effect.kind},
        "rule": {
            "id": effect.rule_id,
            "name": rule.name if rule else None,
            "version": rule_version,
            "definition": redacted(definition_then) if definition_then else None,
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


def _validated(runtime: Runtime, variants: dict[str, Any]) -> None:
    try:
        validate_template(variants, attribute_keys(runtime.app.attribute_registry()))
    except TemplateError as error:
        field = ".".join(str(p) for p in ("variants", error.variant, error.field) if p)
        line = f" (line {error.line})" if getattr(error, "line", None) else ""
        raise InvalidInput(field, f"{error.message}{line}") from None


def _template_out(row: TemplateRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "slug": row.slug,
        "name": row.name,
        "variants": row.variants,
        "updated_at": row.updated_at,
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
    rows = automation.templates(runtime.views)
    return ListOut(items=[_template_out(r) for r in rows], total=len(rows))


@router.get("/templates/{slug}")
def get_template(slug: str, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    row = automation.template(runtime.views, slug)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"template {slug} not found")
    return _template_out(row)


@router.post("/templates/{slug}/preview")
def preview_template(
    slug: str, body: PreviewIn, runtime: RuntimeDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Render the template for one contact as the rule would send it (nothing is sent)."""
    return template_preview.preview_template(
        runtime.views, runtime.composer, slug, body.contact_id, body.channel
    ).as_dict()


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
    items = [asdict(row) for row in automation.calendars(runtime.views)]
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
    rows = automation.notifications_of(runtime.views, principal.user_id, unread_only=unread)
    # As the view stores them: the flags as 0/1.
    items = [
        {**asdict(r), "email": int(r.email), "read": int(r.read), "emailed": int(r.emailed)}
        for r in rows
    ]
    return ListOut(items=items, total=len(items))


@router.post("/notifications/{notification_id}/read", status_code=status.HTTP_204_NO_CONTENT)
def read_notification(notification_id: UUID, runtime: RuntimeDep, principal: WriterDep) -> None:
    from threadline.domain.model.automation import Notification

    def command(unit: Any) -> None:
        notification = unit.get(notification_id, Notification)
        if not notification.read:
            notification.mark_read(principal.actor, str(notification_id))

    committed = runtime.app.writer.submit(command)
    runtime.wait_for_views(committed.notification_id)
