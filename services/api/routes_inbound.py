"""The generic API channel: `POST /api/inbound`."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from threadline.domain.model.inbound import InboundMessage
from threadline.services.api.deps import RuntimeDep, WriterDep
from threadline.services.api.schemas import InboundIn, InboundOut

router = APIRouter(prefix="/api", tags=["inbound"])


@router.post(
    "/inbound",
    response_model=InboundOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "a duplicate: this channel and external_id were seen before"}},
)
def post_inbound(
    body: InboundIn, response: Response, runtime: RuntimeDep, principal: WriterDep
) -> InboundOut:
    """Record one inbound message; 201 when new, 200 with `duplicate: true` when seen before."""
    sender = body.sender
    message = InboundMessage.create(
        channel=body.channel,
        dedup_key=body.external_id,
        identities=[
            ("email", sender.email or ""),
            ("phone", sender.phone or ""),
            ("telegram", sender.telegram_id or ""),
            ("web", sender.visitor_id or ""),
        ],
        sender_name=sender.name,
        subject=body.subject,
        text=body.text,
        html=body.html,
        thread_key=body.thread,
        source=body.source.model_dump(exclude_none=True) if body.source else None,
        default_region=runtime.settings.default_region,
    )
    committed = runtime.app.ingest(message)
    result = committed.value
    runtime.wait_for_views(committed.notification_id)
    if result.duplicate:
        response.status_code = status.HTTP_200_OK
    return InboundOut(
        message_id=result.message_id,
        contact_id=result.contact_id,
        conversation_id=result.conversation_id,
        duplicate=result.duplicate,
    )
