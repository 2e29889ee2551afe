"""The unified inbox and the conversation actions: reply, note, assign, status, read."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request, status

from threadline.channels.registry import load_adapters
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.reply_channels import REPLY_CHANNEL
from threadline.projections.queries import InboxFilter
from threadline.services.api.deps import PrincipalDep, RuntimeDep, WriterDep, assignee_of
from threadline.services.api.schemas import (
    AssignIn,
    ListOut,
    MessageIn,
    MessageOut,
    Offset,
    StatusIn,
)
from threadline.services.delivery import FALLBACK_CHANNEL
from threadline.services.documents.issuing import reply_attachments, send_document_to_client
from threadline.services.documents.links import FILE_CHANNELS
from threadline.services.runtime import Runtime
from threadline.services.surveys import survey_field

router = APIRouter(prefix="/api", tags=["inbox"])


def _inbox_item(row: dict[str, Any]) -> dict[str, Any]:
    return {"conversation_id": row["id"], **row}


@router.get("/inbox", response_model=ListOut)
def inbox(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    status_: Annotated[
        str | None, Query(alias="status", pattern="^(open|pending|resolved|snoozed)$")
    ] = None,
    channel: str | None = None,
    assignee: Annotated[str | None, Query(description="a user id, `me` or `none`")] = None,
    contact_id: UUID | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> ListOut:
    """One row per conversation across every channel, most recently active first."""
    assignee_id = None
    unassigned = False
    if assignee == "none":
        unassigned = True
    elif assignee == "me":
        assignee_id = principal.user_id or "-"
    elif assignee:
        try:
            assignee_id = str(UUID(assignee))
        except ValueError:
            raise HTTPException(422, "assignee is a user id, `me` or `none`") from None
    flt = InboxFilter(
        status=status_,
        channel=channel,
        assignee_id=assignee_id,
        unassigned=unassigned,
        contact_id=str(contact_id) if contact_id else None,
        text=q,
    )
    rows, total = runtime.queries.inbox(flt, limit, offset)
    return ListOut(items=[_inbox_item(r) for r in rows], total=total)


@router.get("/conversations/{conversation_id}")
def get_conversation(
    conversation_id: UUID, request: Request, runtime: RuntimeDep, principal: PrincipalDep
) -> dict[str, Any]:
    found = conversation_out(conversation_id, runtime)
    runtime.access_log.record(
        principal, "conversation", str(conversation_id), via="api", path=request.url.path
    )
    return found


def conversation_out(conversation_id: UUID, runtime: Runtime) -> dict[str, Any]:
    """The conversation as the API shows it (404 when unknown); a change answers with it too,
    unrecorded: the change's event names its author already."""
    conversation = runtime.queries.conversation(str(conversation_id))
    if conversation is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"conversation {conversation_id} not found")
    survey = survey_field(runtime.views, str(conversation_id))  # the satisfaction score
    return {**_inbox_item(conversation), "survey": survey}


@router.post(
    "/conversations/{conversation_id}/messages",
    response_model=MessageOut,
    status_code=status.HTTP_201_CREATED,
)
def post_message(
    conversation_id: UUID, body: MessageIn, runtime: RuntimeDep, principal: WriterDep
) -> MessageOut:
    """A reply (sent through the conversation's channel, or `channel`) or an internal note.

    `client_message_id` makes a retry one message, for notes as for replies. A reply on a
    channel no channel module can send is refused here (422), not accepted and failed later.
    """
    if body.internal:
        if body.attachments or body.document_ids:
            raise InvalidInput("attachments", "an internal note carries no files")
        committed = runtime.app.add_note(
            conversation_id, body.text, principal.actor, message_id=body.client_message_id
        )
        runtime.wait_for_views(committed.notification_id)
        message_id = committed.value
    else:
        _check_reply_channel(runtime, conversation_id, body.channel)
        message_id = _reply(runtime, conversation_id, body, principal.actor)
    return MessageOut(
        message_id=message_id,
        internal=body.internal,
        state="note" if body.internal else "requested",
    )


def _reply(runtime: Runtime, conversation_id: UUID, body: MessageIn, actor: str) -> UUID:
    """A reply, with files: one issued document alone is sent as the document (recorded as
    sent to the client, `DocumentSent`; on SMS or WhatsApp as a signed link in the text);
    other files go only on a channel that carries files. Answers once the views hold it."""
    if len(body.document_ids) == 1 and not body.attachments:
        reply_attachments(runtime, [], list(body.document_ids))  # 422 unless it can be sent
        return send_document_to_client(
            runtime,
            body.document_ids[0],
            body.channel or "",
            body.text,
            actor,
            conversation_id=conversation_id,
            message_id=body.client_message_id,
        )
    files = reply_attachments(
        runtime, [a.model_dump() for a in body.attachments], list(body.document_ids)
    )
    if files:
        conversation = runtime.queries.conversation(str(conversation_id))
        channel = body.channel or str((conversation or {}).get("channel") or "")
        if REPLY_CHANNEL.get(channel, channel) not in FILE_CHANNELS:
            raise InvalidInput(
                "attachments",
                f"a {channel} message cannot carry files: send them by e-mail or Telegram"
                " (one document alone goes as a link)",
            )
    committed = runtime.app.reply(
        conversation_id,
        body.text,
        actor,
        channel=body.channel,
        message_id=body.client_message_id,
        attachments=files,
    )
    runtime.wait_for_views(committed.notification_id)
    return committed.value


def _check_reply_channel(runtime: Runtime, conversation_id: UUID, channel: str | None) -> None:
    """422 for a reply that no channel module could ever deliver (the delivery worker's own
    choice of inbox, `services.delivery`, decides among the channels that pass)."""
    wanted = channel
    if wanted is None:
        conversation = runtime.queries.conversation(str(conversation_id))
        if conversation is None:
            return  # the command answers 404
        wanted = str(conversation.get("channel") or "")
    sendable = {
        name
        for adapter in load_adapters().values()
        if adapter.can_send
        for name in adapter.conversation_channels
    }
    if wanted in sendable or FALLBACK_CHANNEL.get(wanted) in sendable:
        return
    field = "channel" if channel is not None else "conversation.channel"
    raise InvalidInput(
        field, f"no channel can send {wanted!r} messages; one of: {', '.join(sorted(sendable))}"
    )


@router.post("/conversations/{conversation_id}/assign")
def assign(
    conversation_id: UUID, body: AssignIn, runtime: RuntimeDep, principal: WriterDep
) -> dict[str, Any]:
    committed = runtime.app.assign_conversation(
        conversation_id, assignee_of(principal, body.assignee_id), principal.actor
    )
    runtime.wait_for_views(committed.notification_id)
    return conversation_out(conversation_id, runtime)


@router.post("/conversations/{conversation_id}/status")
def change_status(
    conversation_id: UUID, body: StatusIn, runtime: RuntimeDep, principal: WriterDep
) -> dict[str, Any]:
    committed = runtime.app.change_conversation_status(
        conversation_id, body.status, principal.actor, snoozed_until=body.snoozed_until
    )
    runtime.wait_for_views(committed.notification_id)
    return conversation_out(conversation_id, runtime)


@router.post("/conversations/{conversation_id}/read", status_code=status.HTTP_204_NO_CONTENT)
def mark_read(conversation_id: UUID, runtime: RuntimeDep, principal: WriterDep) -> None:
    committed = runtime.app.mark_conversation_read(conversation_id, principal.actor)
    runtime.wait_for_views(committed.notification_id)
