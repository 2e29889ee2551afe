"""Conversation commands: replies, internal notes, assignment, status, read marks.

A reply is recorded as `MessageSendRequested`; the delivery worker sends it and
records the outcome on the message (`threadline.domain.commands.delivery`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from threadline.domain.commands.base import Commands, required_text
from threadline.domain.commands.surveys import SurveyLink, survey_after_resolution
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.conversation import Conversation, ConversationStatus
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.message import Message
from threadline.domain.model.user import User

MAX_REPLY = 100_000
MAX_ATTACHMENTS = 20


def split_attachments(items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Stored files as a send request records them: metadata in the event, names in `personal`
    (a file name often names a person, as the text does)."""
    if len(items) > MAX_ATTACHMENTS:
        raise InvalidInput("attachments", f"at most {MAX_ATTACHMENTS} files")
    files = [{k: v for k, v in item.items() if k != "filename"} for item in items]
    return files, [str(item.get("filename") or "attachment") for item in items]


class ConversationCommands(Commands):
    survey_link: SurveyLink | None = None  # the e-mail survey's score links (SurveyCommands)

    def reply(
        self,
        conversation_id: UUID,
        text: str,
        actor: str,
        channel: str | None = None,
        html: str = "",
        message_id: UUID | None = None,
        correlation_id: str = "",
        attachments: list[dict[str, Any]] | None = None,
    ) -> Committed[UUID]:
        """Record `MessageSendRequested` on the conversation's channel (or another of the client's).

        `attachments` are stored files (`AttachmentMeta.public()` plus "filename"): the event
        carries what is not personal, the file names go beside the text, as for inbound mail.
        """
        required_text("text", text, MAX_REPLY)
        files, names = split_attachments(attachments or [])
        new_id = message_id or uuid4()

        def command(unit: UnitOfWork) -> UUID:
            if unit.exists(new_id):
                return new_id  # an idempotent retry of the same reply
            conversation = unit.get(conversation_id, Conversation)
            unit.add(
                Message.request_send(
                    id=new_id,
                    conversation_id=conversation.id,
                    contact_id=conversation.contact_id,
                    channel=channel or conversation.channel,
                    personal={"text": text, "html": html, "attachment_names": names},
                    attachments=files,
                    actor=actor,
                    correlation_id=correlation_id or str(new_id),
                )
            )
            if conversation.status == ConversationStatus.OPEN.value:
                conversation.change_status(
                    ConversationStatus.PENDING.value, None, actor, correlation_id or str(new_id)
                )
            return new_id

        return self.writer.submit(command)

    def add_note(
        self,
        conversation_id: UUID,
        text: str,
        actor: str,
        correlation_id: str = "",
        message_id: UUID | None = None,
    ) -> Committed[UUID]:
        """An internal note; `message_id` makes a retry of the same note one note, as a reply."""
        required_text("text", text, MAX_REPLY)
        new_id = message_id or uuid4()

        def command(unit: UnitOfWork) -> UUID:
            if unit.exists(new_id):
                return new_id  # an idempotent retry of the same note
            conversation = unit.get(conversation_id, Conversation)
            unit.add(
                Message.add_note(
                    id=new_id,
                    conversation_id=conversation.id,
                    contact_id=conversation.contact_id,
                    channel=conversation.channel,
                    personal={"text": text},
                    actor=actor,
                    correlation_id=correlation_id or str(new_id),
                )
            )
            return new_id

        return self.writer.submit(command)

    def assign_conversation(
        self, conversation_id: UUID, assignee_id: UUID | None, actor: str, correlation_id: str = ""
    ) -> Committed[None]:
        def command(unit: UnitOfWork) -> None:
            if assignee_id is not None:
                unit.get(assignee_id, User)
            conversation = unit.get(conversation_id, Conversation)
            if conversation.assignee_id != assignee_id:
                conversation.assign(assignee_id, actor, correlation_id or str(uuid4()))

        return self.writer.submit(command)

    def change_conversation_status(
        self,
        conversation_id: UUID,
        status: str,
        actor: str,
        snoozed_until: datetime | None = None,
        correlation_id: str = "",
    ) -> Committed[None]:
        try:
            new_status = ConversationStatus(status)
        except ValueError:
            raise InvalidInput(
                "status", f"one of {[s.value for s in ConversationStatus]}"
            ) from None
        if new_status is ConversationStatus.SNOOZED and snoozed_until is None:
            raise InvalidInput("snoozed_until", "a snoozed conversation needs a wake-up time")

        def command(unit: UnitOfWork) -> None:
            conversation = unit.get(conversation_id, Conversation)
            if (
                conversation.status != new_status.value
                or snoozed_until != conversation.snoozed_until
            ):
                resolving = conversation.status != ConversationStatus.RESOLVED.value
                cause = correlation_id or str(uuid4())
                conversation.change_status(
                    new_status.value,
                    snoozed_until if new_status is ConversationStatus.SNOOZED else None,
                    actor,
                    cause,
                )
                if resolving and new_status is ConversationStatus.RESOLVED:
                    survey_after_resolution(unit, conversation, cause, self.survey_link)

        return self.writer.submit(command)

    def mark_conversation_read(self, conversation_id: UUID, actor: str) -> Committed[None]:
        def command(unit: UnitOfWork) -> None:
            unit.get(conversation_id, Conversation).mark_read(actor, str(uuid4()))

        return self.writer.submit(command)
