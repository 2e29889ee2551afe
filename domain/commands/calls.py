"""Call commands: a voice call's progress, from the provider's status callbacks; a call
an operator logs by hand (a phone call made outside the telephony channel)."""

from __future__ import annotations

from uuid import UUID, uuid4

from threadline.domain.commands.base import Commands
from threadline.domain.commands.delivery import message_correlation
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.contact import Contact
from threadline.domain.model.conversation import Conversation
from threadline.domain.model.deal import Deal
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.message import CallOutcome, Message
from threadline.domain.model.task import Task, TaskType

MISSED_CALL_STATUSES = frozenset({"busy", "no-answer", "canceled", "failed"})
FINAL_CALL_STATUSES = MISSED_CALL_STATUSES | {"completed"}
CALL_DIRECTIONS = ("inbound", "outbound")
LOGGED_CALL_OUTCOMES = ("answered", "missed", "voicemail")
LOGGED_CALL = "logged_call"  # the completion reason of a task that records a logged call
MAX_CALL_SECONDS = 24 * 3600


def call_title(direction: str, outcome: str, duration: int | None) -> str:
    """The default title of a logged call ("Outbound call, answered, 4:05")."""
    words = f"{direction.capitalize()} call, {outcome}"
    return f"{words}, {duration // 60}:{duration % 60:02d}" if duration else words


class CallCommands(Commands):
    def record_call_status(
        self,
        call_message_id: UUID,
        status: str,
        actor: str,
        duration: int | None = None,
        recording_url: str | None = None,
    ) -> Committed[str | None]:
        """Apply one call status callback; repeated callbacks record nothing new.

        Returns the outcome recorded, or None when the callback changed nothing.
        """

        def command(unit: UnitOfWork) -> str | None:
            call = unit.get(call_message_id, Message)
            correlation_id = message_correlation(call)
            if status in MISSED_CALL_STATUSES:
                if call.call_outcome == CallOutcome.MISSED.value:
                    return None
                call.miss_call(status, actor, correlation_id)
                return CallOutcome.MISSED.value
            if recording_url:
                outcome = CallOutcome.VOICEMAIL.value
            elif status in ("completed", "in-progress"):
                # A call already missed or sent to voicemail stays so; "completed" then only
                # brings the duration.
                kept = (CallOutcome.MISSED.value, CallOutcome.VOICEMAIL.value)
                outcome = (
                    call.call_outcome if call.call_outcome in kept else CallOutcome.ANSWERED.value
                )
            else:
                outcome = call.call_outcome or CallOutcome.RINGING.value
            if call.call_status == status and call.call_outcome == outcome and not recording_url:
                return None
            if call.call_status in FINAL_CALL_STATUSES and status not in FINAL_CALL_STATUSES:
                return None  # a late "ringing" after "completed" changes nothing
            recording = {"recording_url": recording_url} if recording_url else {}
            call.update_call(status, outcome, duration, recording, actor, correlation_id)
            return outcome

        return self.writer.submit(command)

    def log_call(
        self,
        actor: str,
        direction: str,
        outcome: str,
        duration: int | None = None,
        note: str = "",
        contact_id: UUID | None = None,
        conversation_id: UUID | None = None,
        deal_id: UUID | None = None,
        title: str = "",
    ) -> Committed[UUID]:
        """A call made or taken outside the telephony channel, logged by the operator.

        It is recorded as a task of type ``call`` created done (one unit of work, completion
        reason ``logged_call``): the call then shows where the work on a client shows (the
        card's timeline, a deal's history and tasks) and counts in task reports, without a
        voice message that a provider never carried. `title` is the line people read (the web
        app passes it in the operator's language); by default it is made from the fields.
        """
        if direction not in CALL_DIRECTIONS:
            raise InvalidInput("direction", f"one of {list(CALL_DIRECTIONS)}")
        if outcome not in LOGGED_CALL_OUTCOMES:
            raise InvalidInput("outcome", f"one of {list(LOGGED_CALL_OUTCOMES)}")
        if duration is not None and not 0 <= duration <= MAX_CALL_SECONDS:
            raise InvalidInput("duration", "0 to 24 hours")
        if len(note) > 10_000:
            raise InvalidInput("note", "is limited to 10000 characters")
        if contact_id is None and conversation_id is None and deal_id is None:
            raise InvalidInput("contact_id", "a call is logged for a client or a conversation")
        heading = " ".join(title.split())[:500] or call_title(direction, outcome, duration)
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> UUID:
            linked_contact = contact_id
            if contact_id is not None:
                unit.get(contact_id, Contact)
            if conversation_id is not None:
                conversation = unit.get(conversation_id, Conversation)
                linked_contact = linked_contact or conversation.contact_id
            if deal_id is not None:
                linked_contact = linked_contact or unit.get(deal_id, Deal).contact_id
            task = unit.add(
                Task(
                    type=TaskType.CALL.value,
                    due_at=None,
                    assignee_id=_user_of(actor),
                    contact_id=linked_contact,
                    deal_id=deal_id,
                    conversation_id=conversation_id,
                    personal={"title": heading, "notes": note.strip()},
                    actor=actor,
                    correlation_id=correlation_id,
                )
            )
            task.complete(linked_contact, actor, correlation_id, LOGGED_CALL)
            return task.id

        return self.writer.submit(command)


def _user_of(actor: str) -> UUID | None:
    """The user behind an actor ``user:<id>`` (the operator who logs the call), else None."""
    kind, _, ident = actor.partition(":")
    try:
        return UUID(ident) if kind == "user" else None
    except ValueError:
        return None
