"""The Message aggregate: one inbound, outbound or internal message.

An inbound message's id is ``uuid5(channel, dedup key)``: a second delivery of
the same provider input maps to the same id, and the store itself refuses to
create it twice.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from threadline.domain.model.history_clock import HistoryClock

MESSAGE_NAMESPACE = uuid5(NAMESPACE_URL, "https://threadline.dev/message")


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"


class DeliveryState(StrEnum):
    RECEIVED = "received"
    REQUESTED = "requested"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"
    NOTE = "note"


class CallOutcome(StrEnum):
    RINGING = "ringing"
    ANSWERED = "answered"
    MISSED = "missed"
    VOICEMAIL = "voicemail"


@lru_cache(maxsize=4096)
def inbound_message_id(channel: str, dedup_key: str) -> UUID:
    # Cached briefly: a batch asks for each message's id in its prefetch and its command.
    return uuid5(MESSAGE_NAMESPACE, f"{channel}:{dedup_key}")


class Message(Aggregate):
    """A message with its direction, body (personal), attachment metadata and delivery state.

    Three creation events exist, one per way a message comes to be (received,
    send requested, note added); each names its direction. ``attachments`` holds
    what is not personal (size, content type, SHA-256); file names sit beside
    the body in ``personal``.
    """

    def __init__(
        self,
        conversation_id: UUID,
        contact_id: UUID,
        channel: str,
        direction: str,
        personal: dict[str, Any],
        actor: str,
        correlation_id: str,
        attachments: list[dict[str, Any]] | None = None,
        dedup_key: str = "",
        metadata: dict[str, Any] | None = None,
        source: dict[str, Any] | None = None,
    ) -> None:
        self.conversation_id = conversation_id
        self.contact_id = contact_id
        self.channel = channel
        self.direction = direction
        self.state = {
            Direction.INBOUND.value: DeliveryState.RECEIVED.value,
            Direction.OUTBOUND.value: DeliveryState.REQUESTED.value,
        }.get(direction, DeliveryState.NOTE.value)
        self.correlation_id = correlation_id
        # Where this inquiry came from (an inbound message's own attribution; empty for
        # replies and notes): a deal started from it takes this, not the contact's first touch.
        self.source: dict[str, Any] = dict(source or {})
        self.provider_id: str | None = None
        self.attempts = 0
        self.attempt_open = False
        self.confirmed_status: str | None = None
        self.provider_status: str | None = None  # queued, sent, delivered (the provider's word)
        self.call_status: str | None = None
        self.call_outcome: str | None = None

    class MessageReceived(HistoryClock, Aggregate.Created):
        """A client's message arrived through `channel`; `dedup_key` is the provider's key.

        Version 2 keeps the inquiry's `source` (channel, form, utm_*, referrer: the
        cleaned `InboundMessage.source`), so every inquiry keeps its own attribution, not
        only the contact's first one. Version 1 had none: it reads as its channel alone.
        """

        class_version = 2
        conversation_id: UUID
        contact_id: UUID
        channel: str
        direction: str
        dedup_key: str
        personal: dict[str, Any]
        attachments: list[dict[str, Any]]
        metadata: dict[str, Any]
        actor: str
        correlation_id: str
        source: dict[str, Any]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["source"] = {"channel": state["channel"]}

    class MessageSendRequested(Aggregate.Created):
        """An operator (or a rule) asked for this reply to go out through `channel`."""

        conversation_id: UUID
        contact_id: UUID
        channel: str
        direction: str
        personal: dict[str, Any]
        attachments: list[dict[str, Any]]
        actor: str
        correlation_id: str

    class MessageNoteAdded(Aggregate.Created):
        """An internal note: visible to the team, never sent to the client."""

        conversation_id: UUID
        contact_id: UUID
        channel: str
        direction: str
        personal: dict[str, Any]
        actor: str
        correlation_id: str

    @classmethod
    def receive(
        cls,
        *,
        id: UUID,
        conversation_id: UUID,
        contact_id: UUID,
        channel: str,
        dedup_key: str,
        personal: dict[str, Any],
        attachments: list[dict[str, Any]],
        metadata: dict[str, Any],
        actor: str,
        correlation_id: str,
        source: dict[str, Any] | None = None,
    ) -> Message:
        """`source` is the inquiry's cleaned attribution; it always names the channel."""
        return cls._create(
            cls.MessageReceived,
            id=id,
            conversation_id=conversation_id,
            contact_id=contact_id,
            channel=channel,
            direction=Direction.INBOUND.value,
            dedup_key=dedup_key,
            personal=personal,
            attachments=attachments,
            metadata=metadata,
            actor=actor,
            correlation_id=correlation_id,
            source={"channel": channel, **(source or {})},
        )

    @classmethod
    def request_send(
        cls,
        *,
        id: UUID,
        conversation_id: UUID,
        contact_id: UUID,
        channel: str,
        personal: dict[str, Any],
        attachments: list[dict[str, Any]],
        actor: str,
        correlation_id: str,
    ) -> Message:
        return cls._create(
            cls.MessageSendRequested,
            id=id,
            conversation_id=conversation_id,
            contact_id=contact_id,
            channel=channel,
            direction=Direction.OUTBOUND.value,
            personal=personal,
            attachments=attachments,
            actor=actor,
            correlation_id=correlation_id,
        )

    @classmethod
    def add_note(
        cls,
        *,
        id: UUID,
        conversation_id: UUID,
        contact_id: UUID,
        channel: str,
        personal: dict[str, Any],
        actor: str,
        correlation_id: str,
    ) -> Message:
        return cls._create(
            cls.MessageNoteAdded,
            id=id,
            conversation_id=conversation_id,
            contact_id=contact_id,
            channel=channel,
            direction=Direction.INTERNAL.value,
            personal=personal,
            actor=actor,
            correlation_id=correlation_id,
        )

    class MessageDeliveryAttempted(Aggregate.Event):
        attempt: int
        actor: str
        correlation_id: str

    @event(MessageDeliveryAttempted)
    def start_attempt(self, attempt: int, actor: str, correlation_id: str) -> None:
        """Recorded *before* the provider is called: after a crash, an attempt with no
        outcome means "maybe sent", and the worker does not send it again."""
        self.state = DeliveryState.SENDING.value
        self.attempts = attempt
        self.attempt_open = True

    class MessageDelivered(Aggregate.Event):
        """The provider took the message (the state `delivered` of the aggregate means
        "handed over"); `status` is how far it got by the provider's own answer: `sent`
        (an SMTP server accepted it, the Bot API put it in the chat) or `queued` (Twilio
        will send it). Version 1 had no status: it reads as `sent`."""

        class_version = 2
        provider_id: str
        actor: str
        correlation_id: str
        status: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["status"] = "sent"

    class MessageDeliveryFailed(Aggregate.Event):
        """A send failed; `reason` is the technical detail, `problem` the plain reason (a
        `channels.problems.DeliveryProblem` value). Version 1 had no problem: empty."""

        class_version = 2
        reason: str
        permanent: bool
        actor: str
        correlation_id: str
        retry_at: datetime | None
        problem: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["problem"] = ""

    @event(MessageDelivered)
    def mark_delivered(
        self, provider_id: str, actor: str, correlation_id: str, status: str = "sent"
    ) -> None:
        self.state = DeliveryState.DELIVERED.value
        self.provider_id = provider_id
        self.provider_status = status
        self.attempt_open = False

    @event(MessageDeliveryFailed)
    def mark_failed(
        self,
        reason: str,
        permanent: bool,
        actor: str,
        correlation_id: str,
        retry_at: datetime | None = None,
        problem: str = "",
    ) -> None:
        """`permanent` stops the worker; otherwise it tries again at `retry_at`."""
        self.state = DeliveryState.FAILED.value if permanent else DeliveryState.REQUESTED.value
        self.attempt_open = False

    class MessageDeliveryConfirmed(Aggregate.Event):
        status: str
        actor: str
        correlation_id: str

    @event(MessageDeliveryConfirmed)
    def confirm_delivery(self, status: str, actor: str, correlation_id: str) -> None:
        """The provider reported progress after it took the message: `sent` (handed to the
        carrier) or `delivered` (it reached the handset), as Twilio's status callbacks say."""
        self.confirmed_status = status
        self.provider_status = status

    class CallUpdated(Aggregate.Event):
        status: str
        outcome: str
        duration: int | None
        recording_url: str | None
        actor: str
        correlation_id: str

    @event(CallUpdated)
    def update_call(
        self,
        status: str,
        outcome: str,
        duration: int | None,
        recording_url: str | None,
        actor: str,
        correlation_id: str,
    ) -> None:
        """A call's progress from the provider's status callbacks (ringing, completed, ...)."""
        self.call_status = status
        self.call_outcome = outcome

    class CallMissed(Aggregate.Event):
        status: str
        actor: str
        correlation_id: str

    @event(CallMissed)
    def miss_call(self, status: str, actor: str, correlation_id: str) -> None:
        """Nobody answered (busy, no answer, cancelled): a rule can plan a call-back."""
        self.call_status = status
        self.call_outcome = CallOutcome.MISSED.value
