"""The tasks screen: today, overdue and upcoming, complete and reschedule; notifications.

The sections are days in UTC (the app keeps no time zone per user yet):
*overdue* is due before today, *today* is due today (a time already past is
marked late), *upcoming* is the next seven days. Each section is one indexed
query (`tasks (assignee_id, status, due_at)`), so the page stays fast however
many closed tasks pile up. The lists and the notifications reload on every
change of the views, so a reminder that a rule creates appears without a reload.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from threadline.domain.model.errors import InvalidInput, NotFound
from threadline.projections.automation import notification
from threadline.projections.base import ts
from threadline.projections.contact_card import display_names
from threadline.projections.notification_details import unread_for
from threadline.services.web.deps import WebUser, WebUserDep, WebWriterDep
from threadline.services.web.errors import message_of, status_of
from threadline.services.web.local_time import local_input, parse_local
from threadline.services.web.posted_forms import (
    COMMAND_ERRORS,
    FormDep,
    field,
    is_htmx,
    local_url,
    parse_id,
    redirect,
)
from threadline.services.web.routes_contacts import (
    LABELS,
    answer_card,
)

router = APIRouter(include_in_schema=False)

SECTION_LIMIT = 100
NOTIFICATION_LIMIT = 50
UPCOMING_DAYS = 7
SCOPES = ("mine", "all")


def scope_of(value: str | None) -> str:
    return value if value in SCOPES else "mine"


@dataclass(frozen=True)
class Day:
    """The day boundaries the sections are cut at: midnights of the user's time zone."""

    now: datetime
    start: datetime
    tomorrow: datetime
    horizon: datetime
    zone: tzinfo = UTC

    @classmethod
    def at(cls, now: datetime, where: tzinfo = UTC) -> Day:
        local = now.astimezone(where)
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)

        def midnight(days: int) -> datetime:
            # Calendar days, not 24-hour steps: a day with a clock change is 23 or 25 hours.
            day = (start + timedelta(days=days)).date()
            return datetime(day.year, day.month, day.day, tzinfo=where)

        return cls(now, start, midnight(1), midnight(1 + UPCOMING_DAYS), where)


def parse_due(raw: str, where: tzinfo = UTC) -> datetime:
    """A `datetime-local` value, read in the user's time zone (the label names it)."""
    if not raw:
        raise InvalidInput("due_at", "a due time is required")
    return parse_local(raw, where, "due_at")


def _decorate(user: WebUser, tasks: list[dict[str, Any]], day: Day) -> list[dict[str, Any]]:
    """Add the contact's name, the assignee's name and the reschedule input's value."""
    contact_ids = sorted({str(t["contact_id"]) for t in tasks if t.get("contact_id")})
    names = display_names(user.runtime.views, contact_ids)
    people = {str(u["id"]): u["name"] or u["email"] for u in user.runtime.queries.users()}
    now = ts(day.now) or ""
    out = []
    for task in tasks:
        item = dict(task)
        item["contact_name"] = names.get(str(task.get("contact_id") or ""), "")
        item["assignee_name"] = people.get(str(task.get("assignee_id") or ""), "")
        item["due_input"] = local_input(task.get("due_at"), day.zone)
        item["late"] = bool(task.get("due_at")) and str(task["due_at"]) < now
        out.append(item)
    return out


def sections(user: WebUser, scope: str, now: datetime | None = None) -> dict[str, Any]:
    """The open tasks of the user (or everyone's), cut into sections by due day."""
    day = Day.at(now or datetime.now(UTC), user.zone)
    queries = user.runtime.queries
    assignee = user.id if scope == "mine" else None

    def between(after: datetime | None, before: datetime | None) -> list[dict[str, Any]]:
        rows = queries.tasks(
            status="open",
            assignee_id=assignee,
            due_after=ts(after) if after else None,
            due_before=ts(before) if before else None,
            limit=SECTION_LIMIT,
        )
        return _decorate(user, rows, day)

    undated = queries.tasks(status="open", assignee_id=assignee, undated=True, limit=SECTION_LIMIT)
    return {
        "overdue": between(None, day.start),
        "today": between(day.start, day.tomorrow),
        "upcoming": between(day.tomorrow, day.horizon),
        "undated": _decorate(user, undated, day),
    }


def placed(found: dict[str, Any], errors: dict[str, str] | None) -> dict[str, str]:
    """Errors by task id; one about a task no section shows goes above the lists."""
    shown = {str(t["id"]) for tasks in found.values() for t in tasks}
    out: dict[str, str] = {}
    for key, message in (errors or {}).items():
        out[key if key in shown else "lists"] = message
    return out


def render_lists(
    user: WebUser, scope: str, status_code: int = 200, errors: dict[str, str] | None = None
) -> HTMLResponse:
    found = sections(user, scope)
    return user.render(
        "tasks/_lists.html",
        status_code=status_code,
        scope=scope,
        sections=found,
        errors=placed(found, errors),
        labels=LABELS,
    )


def notifications(user: WebUser) -> list[dict[str, Any]]:
    """Unread notifications with the task, client and conversation each one is about."""
    return unread_for(user.runtime.views, user.id, NOTIFICATION_LIMIT)


def render_notifications(user: WebUser, status_code: int = 200, error: str = "") -> HTMLResponse:
    return user.render(
        "tasks/_notifications.html",
        status_code=status_code,
        items=notifications(user),
        error=error,
    )


@router.get("/tasks")
def tasks_page(user: WebUserDep, scope: str | None = None) -> HTMLResponse:
    chosen = scope_of(scope)
    return user.render(
        "tasks/page.html",
        scope=chosen,
        sections=sections(user, chosen),
        errors={},
        items=notifications(user),
        error="",
        labels=LABELS,
    )


@router.get("/tasks/lists")
def tasks_lists(user: WebUserDep, scope: str | None = None) -> HTMLResponse:
    """The sections alone: the page reloads them whenever the views move."""
    return render_lists(user, scope_of(scope))


@router.get("/tasks/notifications")
def notifications_fragment(user: WebUserDep) -> HTMLResponse:
    return render_notifications(user)


def _answer(user: WebUser, form: Any, task_id: str, error: Exception | None = None) -> Response:
    """After a change: the card or the lists (HTMX), or back where the form was."""
    if field(form, "view") == "card":
        task = user.runtime.queries.task(task_id)
        contact_id = str(task["contact_id"]) if task and task.get("contact_id") else ""
        if contact_id:
            return answer_card(user, contact_id, error_key="tasks", error=error)
    scope = scope_of(field(form, "scope"))
    errors = {task_id: message_of(user, error)} if error is not None else {}
    status_code = status_of(error) if error is not None else 200
    if is_htmx(user):
        return render_lists(user, scope, status_code, errors)
    if error is None:
        return redirect(local_url(field(form, "next"), f"/tasks?scope={scope}"))
    found = sections(user, scope)
    return user.render(
        "tasks/page.html",
        status_code=status_code,
        scope=scope,
        sections=found,
        errors=placed(found, errors),
        items=notifications(user),
        error="",
        labels=LABELS,
    )


@router.post("/tasks/{task_id}/complete", response_model=None)
def complete(task_id: str, user: WebWriterDep, form: FormDep) -> Response:
    known = parse_id(task_id)
    if known is None:
        return _answer(user, form, task_id, NotFound("task", task_id))
    try:
        committed = user.runtime.app.complete_task(UUID(known), user.actor)
    except COMMAND_ERRORS as error:
        return _answer(user, form, known, error)
    user.runtime.wait_for_views(committed.notification_id)
    return _answer(user, form, known)


@router.post("/tasks/{task_id}/reschedule", response_model=None)
def reschedule(task_id: str, user: WebWriterDep, form: FormDep) -> Response:
    known = parse_id(task_id)
    if known is None:
        return _answer(user, form, task_id, NotFound("task", task_id))
    try:
        due_at = parse_due(field(form, "due_at"), user.zone)
        committed = user.runtime.app.reschedule_task(UUID(known), due_at, user.actor)
    except COMMAND_ERRORS as error:
        return _answer(user, form, known, error)
    user.runtime.wait_for_views(committed.notification_id)
    return _answer(user, form, known)


@router.post("/ui/notifications/{notification_id}/read", response_model=None)
def read_notification(notification_id: str, user: WebWriterDep) -> Response:
    """Mark one of the user's notifications read (the same command as the JSON API)."""
    from threadline.domain.model.automation import Notification

    known = parse_id(notification_id)
    row = notification(user.runtime.views, known) if known else None
    if row is None or row.user_id != user.id:
        return render_notifications(
            user, 404, user._("This notification does not exist or is not yours.")
        )
    note_id = UUID(known)

    def command(unit: Any) -> None:
        notification = unit.get(note_id, Notification)
        if not notification.read:
            notification.mark_read(user.actor, str(note_id))

    try:
        committed = user.runtime.app.writer.submit(command)
    except COMMAND_ERRORS as error:
        return render_notifications(user, status_of(error), message_of(user, error))
    user.runtime.wait_for_views(committed.notification_id)
    if is_htmx(user):
        return render_notifications(user)
    return redirect("/tasks#notifications")
