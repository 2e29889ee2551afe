"""Campaigns: a template sent to a segment, throttled, with every recipient's state.

`POST /api/campaigns` checks everything a campaign needs before it is recorded
(the template exists and has a variant for the channel, the segment is valid
in the language of `GET /api/contacts`), so nothing fails later for every
recipient at once. Sending happens in the campaign sender of the channel
worker; these routes record the decisions (start, pause, resume, a test send)
and show the progress from the campaigns view.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from threadline.domain.model.campaign import MAX_PER_MINUTE, template_id_of
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.template import Template
from threadline.projections.campaigns import RECIPIENT_STATES, recipient_counts
from threadline.services.api.deps import ManagerDep, PrincipalDep, RuntimeDep
from threadline.services.api.schemas import ListOut, Offset
from threadline.services.campaigns import DEFAULT_PER_MINUTE, segment_filter, send_test
from threadline.services.runtime import Runtime

router = APIRouter(prefix="/api/campaigns", tags=["campaigns"])


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    template: str = Field(min_length=1, max_length=40, description="the template's slug")
    segment: dict[str, Any] = Field(
        default_factory=dict,
        description="filters as in GET /api/contacts: tag (a list for several), lifecycle, "
        "source, q, created_from, created_to, attr.KEY or attr.KEY.OP; {} is every contact",
    )
    channel: Literal["email", "sms", "telegram", "same"] = Field(
        "email", description='"same": the channel each contact last wrote on'
    )
    per_minute: int | None = Field(
        None,
        ge=1,
        le=MAX_PER_MINUTE,
        description="messages a minute per channel; default "
        + ", ".join(f"{k} {v}" for k, v in DEFAULT_PER_MINUTE.items()),
    )
    start: bool = False


class TestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    contact_id: UUID


def _template(runtime: Runtime, slug: str) -> Template:
    _, template_id = template_id_of(slug)
    try:
        template: Template = runtime.app.repository.get(template_id)
    except Exception:
        raise InvalidInput("template", f"no template with the slug {slug!r}") from None
    return template


def _row(runtime: Runtime, campaign_id: UUID) -> dict[str, Any]:
    row = runtime.views.query_one("SELECT * FROM campaigns WHERE id = ?", [str(campaign_id)])
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"campaign {campaign_id} not found")
    return row


def _out(runtime: Runtime, row: dict[str, Any]) -> dict[str, Any]:
    counts = recipient_counts(runtime.views, row["id"])
    queued_so_far = int(row["queued"])
    state = "paused" if row["paused"] and row["state"] != "finished" else row["state"]
    return {
        "id": row["id"],
        "name": row["name"],
        "template": row["template"],
        "template_version": row["template_version"],
        "segment": json.loads(row["segment"]),
        "channel": row["channel"],
        "per_minute": row["per_minute"],
        "state": state,
        "paused": bool(row["paused"]),
        "total": row["total"] if row["total"] is not None else queued_so_far,
        "audience_complete": row["total"] is not None,
        "counts": counts,
        "processed": sum(n for s, n in counts.items() if s != "queued"),
        "test_sends": row["test_sends"],
        "finish_reason": row["finish_reason"],
        "created_by": row["created_by"],
        "created_at": row["created_at"],
        "started_at": row["started_at"],
        "paused_at": row["paused_at"],
        "finished_at": row["finished_at"],
    }


@router.post("", status_code=status.HTTP_201_CREATED)
def create_campaign(body: CampaignIn, runtime: RuntimeDep, principal: ManagerDep) -> dict[str, Any]:
    """Record a campaign (a draft unless `start` is true)."""
    template = _template(runtime, body.template)
    if body.channel != "same" and not {body.channel, "default"} & set(template.variants):
        raise InvalidInput(
            "template", f"the template has no {body.channel} variant and no default one"
        )
    segment_filter(runtime, body.segment)
    committed = runtime.app.create_campaign(
        body.name, body.template, body.segment, body.channel, body.per_minute, principal.actor
    )
    campaign_id = committed.value
    if body.start:
        committed = runtime.app.start_campaign(campaign_id, principal.actor)
    runtime.wait_for_views(committed.notification_id)
    return _out(runtime, _row(runtime, campaign_id))


@router.get("", response_model=ListOut)
def list_campaigns(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> ListOut:
    total = runtime.views.query_one("SELECT COUNT(*) AS n FROM campaigns")
    rows = runtime.views.query(
        "SELECT * FROM campaigns ORDER BY created_at DESC, id LIMIT ? OFFSET ?", [limit, offset]
    )
    return ListOut(items=[_out(runtime, r) for r in rows], total=int(total["n"]) if total else 0)


@router.get("/{campaign_id}")
def get_campaign(campaign_id: UUID, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    """The campaign's progress: recipients per state, the total, start and finish times."""
    return _out(runtime, _row(runtime, campaign_id))


@router.get("/{campaign_id}/recipients", response_model=ListOut)
def campaign_recipients(
    campaign_id: UUID,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    state: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> ListOut:
    """The recipients in queue order, optionally of one state, each with its reason."""
    _row(runtime, campaign_id)
    where, params = "campaign_id = ?", [str(campaign_id)]
    if state is not None:
        if state not in RECIPIENT_STATES:
            raise InvalidInput("state", f"one of {list(RECIPIENT_STATES)}")
        where += " AND state = ?"
        params.append(state)
    total = runtime.views.query_one(
        f"SELECT COUNT(*) AS n FROM campaign_recipients WHERE {where}", params
    )
    rows = runtime.views.query(
        "SELECT id, contact_id, channel, state, reason, message_id, sent_to, queued_at, sent_at,"
        f" delivered_at, failed_at, last_error FROM campaign_recipients WHERE {where}"
        " ORDER BY position LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return ListOut(items=rows, total=int(total["n"]) if total else 0)


@router.post("/{campaign_id}/start")
def start_campaign(campaign_id: UUID, runtime: RuntimeDep, principal: ManagerDep) -> dict[str, Any]:
    """Read the segment (a snapshot of who is in it now) and begin sending; 409 if started."""
    row = _row(runtime, campaign_id)
    segment_filter(runtime, json.loads(row["segment"]))
    committed = runtime.app.start_campaign(campaign_id, principal.actor)
    runtime.wait_for_views(committed.notification_id)
    return _out(runtime, _row(runtime, campaign_id))


@router.post("/{campaign_id}/pause")
def pause_campaign(campaign_id: UUID, runtime: RuntimeDep, principal: ManagerDep) -> dict[str, Any]:
    """No message goes out after this answers; 409 unless the campaign is running."""
    _row(runtime, campaign_id)
    committed = runtime.app.pause_campaign(campaign_id, principal.actor)
    runtime.wait_for_views(committed.notification_id)
    return _out(runtime, _row(runtime, campaign_id))


@router.post("/{campaign_id}/resume")
def resume_campaign(
    campaign_id: UUID, runtime: RuntimeDep, principal: ManagerDep
) -> dict[str, Any]:
    _row(runtime, campaign_id)
    committed = runtime.app.resume_campaign(campaign_id, principal.actor)
    runtime.wait_for_views(committed.notification_id)
    return _out(runtime, _row(runtime, campaign_id))


@router.post("/{campaign_id}/test", status_code=status.HTTP_201_CREATED)
def test_campaign(
    campaign_id: UUID, body: TestIn, runtime: RuntimeDep, principal: ManagerDep
) -> dict[str, Any]:
    """Send the rendered template to one contact first; it is not a recipient of the campaign.

    A contact who opted out on the channel is refused (409), as the campaign would skip them.
    """
    _row(runtime, campaign_id)
    if runtime.queries.contact(str(body.contact_id)) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"contact {body.contact_id} not found")
    sent = send_test(runtime, campaign_id, body.contact_id, principal.actor)
    runtime.wait_for_views(sent.notification_id)
    return {
        "message_id": str(sent.message_id),
        "contact_id": str(sent.contact_id),
        "channel": sent.channel,
        "campaign_id": str(campaign_id),
    }
