"""The campaigns screen: list with progress, new, detail (live counts), start/pause/resume, test.

A campaign is checked as `POST /api/campaigns` checks it (the template exists
and has a variant for the channel, the segment is valid), so nothing fails
later for every recipient at once. The segment is typed as a query string
(``attr.industry=retail&tag=vip``), the same words as `GET /api/contacts`,
read by `threadline.projections.segments` through `segment_filter`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from threadline.domain.model.campaign import CAMPAIGN_CHANNELS, MAX_PER_MINUTE
from threadline.domain.model.errors import InvalidInput
from threadline.projections.automation import TemplateRow, templates_page
from threadline.projections.campaigns import CampaignRow, campaign, campaigns_page
from threadline.projections.sql import ViewReader
from threadline.services.campaign_service import (
    check_template,
    describe,
    segment_filter,
    send_test,
)
from threadline.services.campaigns import DEFAULT_PER_MINUTE
from threadline.services.web.admin.common import (
    EditorDep,
    can_edit,
    checked,
    find_contact,
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

router = APIRouter()

RUNNING = ("resolving", "sending")


@dataclass
class CampaignDraft:
    name: str = ""
    template: str = ""
    segment: str = ""
    channel: str = "email"
    per_minute: str = ""
    start: bool = False
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def posted(cls, form: Any) -> CampaignDraft:
        return cls(
            name=text(form, "name").strip(),
            template=text(form, "template").strip(),
            segment=text(form, "segment").strip(),
            channel=text(form, "channel") or "email",
            per_minute=text(form, "per_minute").strip(),
            start=checked(form, "start"),
        )

    def fail(self, error: InvalidInput) -> None:
        key = error.field.split(".")[0]
        if key not in ("name", "template", "segment", "channel", "per_minute"):
            key = "form"
        self.errors[key] = f"{error.field}: {error.message}"


def parse_segment(written: str) -> dict[str, Any]:
    """``attr.industry=retail&tag=vip&tag=new`` -> ``{"attr.industry": "retail", "tag": [...]}``."""
    segment: dict[str, Any] = {}
    for key, value in parse_qsl(written.strip().lstrip("?"), keep_blank_values=True):
        key = key.strip()
        if key in segment:
            previous = segment[key]
            segment[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            segment[key] = value
    return segment


def segment_text(segment: dict[str, Any]) -> str:
    pairs = [
        (key, str(item))
        for key, value in segment.items()
        for item in (value if isinstance(value, list) else [value])
    ]
    return urlencode(pairs, safe=".:,@+")


def _templates(views: ViewReader) -> list[TemplateRow]:
    return templates_page(views, 500)


def _described(views: ViewReader, row: CampaignRow) -> dict[str, Any]:
    described = describe(views, row)
    described["stage"] = row.state  # `state` says "paused"; the buttons need the stage under it
    described["segment_text"] = segment_text(described["segment"]) or "—"
    total = described["total"] or 0
    described["percent"] = int(100 * described["processed"] / total) if total else 0
    return described


@router.get("/campaigns")
def campaigns_list(user: WebUserDep, page: int = 1, done: str | None = None) -> HTMLResponse:
    runtime = user.runtime
    paging = pager(runtime, "campaigns", page)
    rows = campaigns_page(runtime.views, paging.size, paging.offset)
    return user.render(
        "admin/campaigns_list.html",
        campaigns=[_described(runtime.views, r) for r in rows],
        pager=paging,
        flashes=flashes(user, done),
        editable=can_edit(user),
    )


def _new_page(user: WebUser, draft: CampaignDraft, status_code: int = 200) -> HTMLResponse:
    return user.render(
        "admin/campaign_new.html",
        status_code=status_code,
        draft=draft,
        templates=_templates(user.runtime.views),
        channels=CAMPAIGN_CHANNELS,
        defaults=DEFAULT_PER_MINUTE,
        max_per_minute=MAX_PER_MINUTE,
        editable=can_edit(user),
    )


@router.get("/campaigns/new")
def campaign_new(user: WebUserDep) -> HTMLResponse:
    return _new_page(user, CampaignDraft())


@router.post("/campaigns/new")
def campaign_create(user: EditorDep, form: FormDep) -> Response:
    """Record a campaign (a draft unless "start now" is ticked), as `POST /api/campaigns`."""
    runtime = user.runtime
    draft = CampaignDraft.posted(form)
    try:
        per_minute = _per_minute(draft.per_minute)
        if draft.channel not in CAMPAIGN_CHANNELS:
            raise InvalidInput("channel", f"one of {', '.join(CAMPAIGN_CHANNELS)}")
        check_template(runtime.app.repository, draft.template, draft.channel)
        segment = parse_segment(draft.segment)
        segment_filter(segment, runtime.app.attribute_registry(), runtime.views)
        created = runtime.app.create_campaign(
            draft.name, draft.template, segment, draft.channel, per_minute, user.actor
        )
        campaign_id, position = created.value, created.notification_id
        if draft.start:
            position = runtime.app.start_campaign(campaign_id, user.actor).notification_id
    except InvalidInput as error:
        draft.fail(error)
        return _new_page(user, draft, 422)
    except COMMAND_ERRORS as error:
        draft.errors["form"] = message_of(user, error)
        return _new_page(user, draft, status_of(error))
    runtime.wait_for_views(position)
    return redirect(f"/admin/campaigns/{campaign_id}", "started" if draft.start else "created")


def _per_minute(given: str) -> int | None:
    if not given:
        return None
    try:
        value = int(given)
    except ValueError:
        raise InvalidInput("per_minute", "a whole number") from None
    if not 1 <= value <= MAX_PER_MINUTE:
        raise InvalidInput("per_minute", f"from 1 to {MAX_PER_MINUTE}")
    return value


def _detail(
    user: WebUser,
    row: CampaignRow,
    status_code: int = 200,
    done: str | None = None,
    error: str = "",
    test_error: str = "",
    test_contact: str = "",
) -> HTMLResponse:
    return user.render(
        "admin/campaign_detail.html",
        status_code=status_code,
        campaign=_described(user.runtime.views, row),
        flashes=flashes(user, done),
        editable=can_edit(user),
        running=RUNNING,
        error=error,
        test_error=test_error,
        test_contact=test_contact,
    )


@router.get("/campaigns/{campaign_id}")
def campaign_detail(campaign_id: UUID, user: WebUserDep, done: str | None = None) -> HTMLResponse:
    row = campaign(user.runtime.views, campaign_id)
    if row is None:
        return not_found(user, user._("No such campaign."))
    return _detail(user, row, done=done)


@router.get("/campaigns/{campaign_id}/progress")
def campaign_progress(campaign_id: UUID, user: WebUserDep) -> HTMLResponse:
    """The counts per recipient state; the page reloads it whenever the views move."""
    row = campaign(user.runtime.views, campaign_id)
    if row is None:
        return HTMLResponse("")
    return user.render("admin/campaign_progress.html", campaign=_described(user.runtime.views, row))


@router.post("/campaigns/{campaign_id}/{action}")
def campaign_action(campaign_id: UUID, action: str, user: EditorDep, form: FormDep) -> Response:
    """Start, pause or resume (409 when the campaign is not in a state for it), or a test send."""
    runtime = user.runtime
    row = campaign(runtime.views, campaign_id)
    if row is None or action not in ("start", "pause", "resume", "test"):
        return not_found(user, user._("No such campaign."))
    if action == "test":
        return _test(user, row, text(form, "contact"))
    try:
        if action == "start":
            segment_filter(row.segment, runtime.app.attribute_registry(), runtime.views)
            committed = runtime.app.start_campaign(campaign_id, user.actor)
        elif action == "pause":
            committed = runtime.app.pause_campaign(campaign_id, user.actor)
        else:
            committed = runtime.app.resume_campaign(campaign_id, user.actor)
    except COMMAND_ERRORS as error:
        return _detail(user, row, status_of(error), error=message_of(user, error))
    wait(runtime, committed)
    flash = {"start": "started", "pause": "paused", "resume": "resumed"}[action]
    return redirect(f"/admin/campaigns/{campaign_id}", flash)


def _test(user: WebUser, row: CampaignRow, given: str) -> Response:
    runtime = user.runtime
    contact_id = find_contact(runtime, given)
    if contact_id is None:
        message = user._("No client with this id, e-mail, phone or Telegram id.")
        return _detail(user, row, 404, test_error=message, test_contact=given)
    try:
        sent = send_test(runtime.app, runtime.composer, UUID(row.id), UUID(contact_id), user.actor)
    except COMMAND_ERRORS as error:
        return _detail(
            user, row, status_of(error), test_error=message_of(user, error), test_contact=given
        )
    runtime.wait_for_views(sent.notification_id)
    return redirect(f"/admin/campaigns/{row.id}", "tested")
