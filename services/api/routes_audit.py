"""The auditor's API: every event of the log with actor and cause (`GET /api/audit/events`), and
a contact's card or a conversation's thread as they stood at a moment (`.../contacts/{id}?at=`,
`.../conversations/{id}?at=`; `services/history_at.py`).

Admins and auditors only: the feed shows every event's content, personal data included (an
auditor replays what the client wrote and what was answered). See `services/audit_feed.py`
for what an event concerns and how a correlation id leads from an effect to its cause.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from threadline.domain.model.user import Role
from threadline.projections.base import utc_ts
from threadline.services.api.deps import Principal, RuntimeDep, require_roles
from threadline.services.api.schemas import MAX_OFFSET, Instant
from threadline.services.audit_export import (
    ExportScope,
    chain_state,
    exported_events,
    render_html,
    write_jsonl,
)
from threadline.services.audit_feed import MAX_PAGE, AuditFilter, audit_page
from threadline.services.history_at import (
    NotYetIndexed,
    contact_at,
    conversation_at,
    position_at,
)

router = APIRouter(prefix="/api/audit", tags=["audit"])

AuditorDep = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.AUDITOR))]


class AuditEventOut(BaseModel):
    position: int = Field(description="the event's place in the log (commit order)")
    occurred_at: str = Field(description="when it was recorded (UTC)")
    event_type: str = Field(description="e.g. MessageReceived, RuleFired, DealWon")
    aggregate_type: str = Field(description="e.g. Message, Contact, Deal, Rule")
    aggregate_id: str
    aggregate_version: int
    actor: str = Field(
        description="who or what caused it: user:<id>, channel:<name>, rule:<id>,"
        " campaign:<id>:..., worker:<role>, cli, admin-token"
    )
    actor_kind: str = Field(description="the actor's kind: user, channel, rule, campaign, ...")
    actor_name: str | None = Field(description="a user's or a rule's name")
    bootstrap_token: bool = Field(
        description="taken with THREADLINE_ADMIN_TOKEN, the bootstrap admin token (no user)"
    )
    correlation_id: str = Field(
        description="shared by an inbound event and everything it caused (rule firings,"
        " automatic replies): filter by it to walk from an effect to its cause"
    )
    contact_id: str | None
    conversation_id: str | None
    deal_id: str | None
    caused_by: int | None = Field(
        description="the position of what this event answers: a rule's effect (an automatic"
        " reply, a tag, a task) points at its RuleFired, which points at the inbound event"
    )
    data: dict[str, Any] = Field(description="the event's own fields, as the log holds them")


class AuditEventsOut(BaseModel):
    items: list[AuditEventOut]
    next_after: int | None = Field(
        description="pass as `after` for the next page; null when this was the last"
    )


@router.get("/events", response_model=AuditEventsOut)
async def audit_events(
    request: Request,
    runtime: RuntimeDep,
    principal: AuditorDep,
    contact_id: Annotated[
        str | None, Query(max_length=100, description="and the contacts merged into it")
    ] = None,
    conversation_id: Annotated[str | None, Query(max_length=100)] = None,
    deal_id: Annotated[str | None, Query(max_length=100)] = None,
    aggregate_id: Annotated[str | None, Query(max_length=100)] = None,
    actor: Annotated[str | None, Query(max_length=200, description="exactly")] = None,
    actor_kind: Annotated[
        str | None, Query(max_length=50, description="user, channel, rule, campaign, worker, ...")
    ] = None,
    event_type: Annotated[
        list[str] | None, Query(max_length=100, description="one or more event types")
    ] = None,
    correlation_id: Annotated[str | None, Query(max_length=200)] = None,
    date_from: Annotated[
        Instant | None, Query(alias="from", description="recorded at or after (ISO 8601)")
    ] = None,
    date_to: Annotated[
        Instant | None, Query(alias="to", description="recorded before (ISO 8601)")
    ] = None,
    after: Annotated[
        int, Query(ge=0, le=MAX_OFFSET, description="the last position already seen")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> AuditEventsOut:
    """Events of the log in position order, each with its actor, correlation id, what it
    concerns and its content; narrowed by contact (merged duplicates included), conversation,
    deal, aggregate, actor, event type, correlation id and time; paged by position."""
    f = AuditFilter(
        contact_id=contact_id,
        conversation_id=conversation_id,
        deal_id=deal_id,
        aggregate_id=aggregate_id,
        actor=actor,
        actor_kind=actor_kind,
        event_types=tuple(event_type or ()),
        correlation_id=correlation_id,
        start=utc_ts(date_from),
        end=utc_ts(date_to),
    )
    page = await run_in_threadpool(audit_page, runtime.views, runtime.app, f, after, limit)
    # a read of the history (the access log: a contact's, a conversation's, or the log's)
    if contact_id is not None:
        runtime.access_log.record(
            principal, "contact", contact_id, via="api", path=request.url.path
        )
    elif conversation_id is not None:
        runtime.access_log.record(
            principal, "conversation", conversation_id, via="api", path=request.url.path
        )
    else:
        runtime.access_log.record(
            principal, "export", "audit-events", via="api", path=request.url.path
        )
    return AuditEventsOut(
        items=[AuditEventOut(**event.as_dict()) for event in page.events],
        next_after=page.next_after,
    )


class AsOfOut(BaseModel):
    at: str | None = Field(description="the moment asked for (UTC), if one was")
    position: int = Field(description="the last position of the log at that moment")


class ContactAsOfOut(AsOfOut):
    contact: dict[str, Any] = Field(
        description="the card as GET /api/contacts/{id} showed it then, with its `timeline`"
    )


class ConversationAsOfOut(AsOfOut):
    conversation: dict[str, Any] = Field(
        description="the conversation and its `messages` as they were then"
    )


AtQuery = Annotated[
    Instant | None,
    Query(description="the moment (ISO 8601; without a zone: UTC); default: now"),
]
PositionQuery = Annotated[
    int | None, Query(ge=0, le=MAX_OFFSET, description="a position of the log instead of a moment")
]


def _as_of(runtime: Any, at: datetime | None, position: int | None) -> tuple[str | None, int]:
    """The position asked for: given, or the last one recorded by `at` (by now: the head)."""
    if at is not None and position is not None:
        raise HTTPException(422, "give at or position, not both")
    if position is not None:
        head = int(runtime.app.recorder.max_notification_id() or 0)
        if position > head:
            raise HTTPException(422, f"the log has no position {position} yet (it ends at {head})")
        return None, position
    moment = utc_ts(at or datetime.now(UTC))
    return moment, position_at(runtime.views, moment)


async def _rebuilt(
    rebuild: Callable[[Any, Any, str, int], dict[str, Any] | None],
    runtime: Any,
    subject: str,
    position: int,
) -> dict[str, Any] | None:
    """A card or a thread rebuilt as of `position` (off the event loop); 503 while the audit
    index has not reached it yet."""
    try:
        return await run_in_threadpool(rebuild, runtime.app, runtime.views, subject, position)
    except NotYetIndexed as error:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"{error}: try again in a moment",
            {"Retry-After": "1"},
        ) from None


@router.get("/contacts/{contact_id}", response_model=ContactAsOfOut)
async def contact_as_of(
    contact_id: UUID,
    request: Request,
    runtime: RuntimeDep,
    principal: AuditorDep,
    at: AtQuery = None,
    position: PositionQuery = None,
) -> ContactAsOfOut:
    """The contact's card and timeline as they stood at a moment (or a position) of the log,
    rebuilt from the log by the same views; the live views are untouched."""
    moment, upto = _as_of(runtime, at, position)
    card = await _rebuilt(contact_at, runtime, str(contact_id), upto)
    if card is None:
        raise HTTPException(404, f"contact {contact_id} did not exist at position {upto}")
    runtime.access_log.record(
        principal, "contact", str(contact_id), via="api", path=request.url.path
    )
    return ContactAsOfOut(at=moment, position=upto, contact=card)


@router.get("/conversations/{conversation_id}", response_model=ConversationAsOfOut)
async def conversation_as_of(
    conversation_id: UUID,
    request: Request,
    runtime: RuntimeDep,
    principal: AuditorDep,
    at: AtQuery = None,
    position: PositionQuery = None,
) -> ConversationAsOfOut:
    """The conversation and its messages as they stood at a moment (or a position) of the log."""
    moment, upto = _as_of(runtime, at, position)
    found = await _rebuilt(conversation_at, runtime, str(conversation_id), upto)
    if found is None:
        raise HTTPException(
            404, f"conversation {conversation_id} had not started at position {upto}"
        )
    runtime.access_log.record(
        principal, "conversation", str(conversation_id), via="api", path=request.url.path
    )
    return ConversationAsOfOut(at=moment, position=upto, conversation=found)


@router.get(
    "/export",
    response_class=Response,
    responses={
        200: {
            "description": "JSON lines (one feed item per line) or the readable HTML report",
            "content": {"application/x-ndjson": {}, "text/html": {}},
        }
    },
)
async def audit_export(
    request: Request,
    runtime: RuntimeDep,
    principal: AuditorDep,
    contact_id: Annotated[
        UUID | None, Query(description="a contact's history (merged included)")
    ] = None,
    date_from: Annotated[
        Instant | None, Query(alias="from", description="recorded at or after (ISO 8601)")
    ] = None,
    date_to: Annotated[
        Instant | None, Query(alias="to", description="recorded before (ISO 8601)")
    ] = None,
    format: Annotated[Literal["jsonl", "html"], Query(description="jsonl or html")] = "jsonl",
) -> Response:
    """The communication history of a contact or a period, for an auditor: JSON lines, or a
    readable HTML report with actors, causes and attachments (as `threadline audit export`)."""
    if contact_id is None and date_from is None and date_to is None:
        raise HTTPException(422, "give contact_id, or from and/or to")
    contact = None if contact_id is None else str(contact_id)
    scope = ExportScope(contact_id=contact, start=utc_ts(date_from), end=utc_ts(date_to))

    def build() -> str:
        events = list(exported_events(runtime.views, runtime.app, scope))
        if format == "html":
            return render_html(events, scope, principal.actor, chain_state(runtime.chain))
        buffer = io.StringIO()
        write_jsonl(iter(events), buffer)
        return buffer.getvalue()

    body = await run_in_threadpool(build)
    runtime.access_log.record(
        principal, "export", contact or "audit-export", via="api", path=request.url.path
    )
    name = f"threadline-audit-{contact or 'period'}.{format}"
    return Response(
        body,
        media_type="text/html" if format == "html" else "application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
