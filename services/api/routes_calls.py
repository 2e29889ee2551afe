"""Logging a call made or taken outside the telephony channel (a mobile phone, a desk phone).

The same command as the web app's "log a call" form (`app.log_call`): the call is kept as a
task of type ``call`` that is created done, linked to the client, a conversation or a deal, so
it shows in the card's timeline, the deal's history and the task reports.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from threadline.services.api.deps import RuntimeDep, WriterDep
from threadline.services.api.schemas import IdOut

router = APIRouter(prefix="/api/calls", tags=["calls"])


class CallIn(BaseModel):
    direction: Literal["inbound", "outbound"]
    outcome: Literal["answered", "missed", "voicemail"]
    duration: int | None = Field(None, ge=0, le=24 * 3600, description="seconds")
    note: str = Field("", max_length=10_000)
    title: str = Field("", max_length=500, description="empty: made from the fields")
    contact_id: UUID | None = None
    conversation_id: UUID | None = None
    deal_id: UUID | None = None


@router.post("", response_model=IdOut, status_code=status.HTTP_201_CREATED)
def log_call(body: CallIn, runtime: RuntimeDep, principal: WriterDep) -> IdOut:
    """Record the call; 422 names the field when no client, conversation or deal is given."""
    committed = runtime.app.log_call(
        actor=principal.actor,
        direction=body.direction,
        outcome=body.outcome,
        duration=body.duration,
        note=body.note,
        title=body.title,
        contact_id=body.contact_id,
        conversation_id=body.conversation_id,
        deal_id=body.deal_id,
    )
    runtime.wait_for_views(committed.notification_id)
    return IdOut(id=committed.value)
