"""Campaigns: a template sent to a segment, throttled, with every recipient's state.

`POST /api/campaigns` checks everything a campaign needs before it is recorded
(the template exists and has a variant for the channel, the segment is valid
in the language of `GET /api/contacts`), so nothing fails later for every
recipient at once. Sending happens in the campaign sender of the channel
worker; these routes record the decisions (start, pause, resume, a test send)
and show the progress from the campaigns view.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from threadline.domain.model.campaign import MAX_PER_MINUTE
from threadline.domain.model.errors import InvalidInput
from threadline.projections.campaigns import (
    RECIPIENT_STATES,
    CampaignRow,
    campaign,
    campaign_count,
    campaigns_page,
    recipients_page,
)
from threadline.projections.contact_card import contact_exists
from threadline.services.api.deps import ManagerDep, PrincipalDep, RuntimeDep
from threadline.services.api.schemas import ListOut, Offset
from threadline.services.campaign_service import (
    check_template,
    describe,
    segment_filter,
    send_test,
)
from threadline.services.campaigns import DEFAULT_PER_MINUTE
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


def _row(runtime: Runtime, campaign_id: UUID) -> CampaignRow:
    row = campaign(runtime.views, campaign_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"campaign {campaign_id} not found")
    return row


@router.post("", status_code=status.HTTP_201_CREATED)
def create_campaign(body: CampaignIn, runtime: RuntimeDep, principal: ManagerDep) -> dict[str, Any]:
    """Record a campaign (a draft unless `start` is true)."""
    check_template(runtime.app.repository, body.template, body.channel)
    segment_filter(body.segment, runtime.app.attribute_registry(), runtime.views)
    created = runtime.app.create_campaign(
        body.name, body.template, body.segment, body.channel, body.per_minute, principal.actor
    )
    campaign_id, position = created.value, created.notification_id
    if body.start:
        position = runtime.app.start_campaign(campaign_id, principal.actor).notification_id
    runtime.wait_for_views(position)
    return describe(runtime.views, _row(runtime, campaign_id))


@router.get("", response_model=ListOut)
def list_campaigns(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> ListOut:
    rows = campaigns_page(runtime.views, limit, offset)
    return ListOut(
        items=[describe(runtime.views, r) for r in rows], total=campaign_count(runtime.views)
    )


@router.get("/{campaign_id}")
def get_campaign(campaign_id: UUID, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    """The campaign's progress: recipients per state, the total, start and finish times."""
    return describe(runtime.views, _row(runtime, campaign_id))


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
    if state is not None and state not in RECIPIENT_STATES:
        raise InvalidInput("state", f"one of {list(RECIPIENT_STATES)}")
    rows, total = recipients_page(runtime.views, str(campaign_id), state, limit, offset)
    return ListOut(items=[asdict(r) for r in rows], total=total)


@router.post("/{campaign_id}/start")
def start_campaign(campaign_id: UUID, runtime: RuntimeDep, principal: ManagerDep) -> dict[str, Any]:
    """Read the segment (a snapshot of who is in it now) and begin sending; 409 if started."""
    row = _row(runtime, campaign_id)
    segment_filter(row.segment, runtime.app.attribute_registry(), runtime.views)
    committed = runtime.app.start_campaign(campaign_id, principal.actor)
    runtime.wait_for_views(committed.notification_id)
    return describe(runtime.views, _row(runtime, campaign_id))


@router.post("/{campaign_id}/pause")
def pause_campaign(campaign_id: UUID, runtime: RuntimeDep, principal: ManagerDep) -> dict[str, Any]:
    """No message goes out after this answers; 409 unless the campaign is running."""
    _row(runtime, campaign_id)
    committed = runtime.app.pause_campaign(campaign_id, principal.actor)
    runtime.wait_for_views(committed.notification_id)
    return describe(runtime.views, _row(runtime, campaign_id))


@router.post("/{campaign_id}/resume")
def resume_campaign(
    campaign_id: UUID, runtime: RuntimeDep, principal: ManagerDep
) -> dict[str, Any]:
    _row(runtime, campaign_id)
    committed = runtime.app.resume_campaign(campaign_id, principal.actor)
    runtime.wait_for_views(committed.notification_id)
    return describe(runtime.views, _row(runtime, campaign_id))


@router.post("/{campaign_id}/test", status_code=status.HTTP_201_CREATED)
def test_campaign(
    campaign_id: UUID, body: TestIn, runtime: RuntimeDep, principal: ManagerDep
) -> dict[str, Any]:
    """Send the rendered template to one contact first; it is not a recipient of the campaign.

    A contact who opted out on the channel is refused (409), as the campaign would skip them.
    """
    _row(runtime, campaign_id)
    if not contact_exists(runtime.views, str(body.contact_id)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"contact {body.contact_id} not found")
    sent = send_test(runtime.app, runtime.composer, campaign_id, body.contact_id, principal.actor)
    runtime.wait_for_views(sent.notification_id)
    return {
        "message_id": str(sent.message_id),
        "contact_id": str(sent.contact_id),
        "channel": sent.channel,
        "campaign_id": str(campaign_id),
    }
