"""The Message aggregate: one inbound, outbound or internal message.

An inbound message's id is derived from its channel and dedup key (keyed:
`threadline.domain.model.pseudonyms`): a second delivery of the same provider input
maps to the same id, and the store itself refuses to create it twice.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from threadline.domain.model.history_clock import HistoryClock
from threadline.domain.model.pseudonyms import Pseudonyms, digest, pseudonymous_id

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


# What a channel's metadata may say in an event's public part: how the message came (kind,
# folder, our mailbox or number, the bot), never who sent it or how to reach them. Anything
# else a channel adds (Message-IDs, References, a Telegram chat id, file ids) is personal.
PUBLIC_METADATA = frozenset(
    {
        "kind", "auto_reply", "auto_reply_reason", "bounce", "delivery_status", "date",
        "mailbox", "folder", "truncated", "bot_id", "update_id", "start_payload",
        "contact_own", "files_missing", "form", "sid", "to", "num_media", "call",
    }
)  # fmt: skip


def split_metadata(metadata: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A channel's metadata as (public part, personal part); see `PUBLIC_METADATA`."""
    public = {k: v for k, v in metadata.items() if k in PUBLIC_METADATA}
    personal = {k: v for k, v in metadata.items() if k not in PUBLIC_METADATA}
    return public, personal


def full_metadata(event: Any) -> dict[str, Any]:
    """A received message's whole metadata: the public part and the personal one (gone once
    the contact is forgotten)."""
    personal = (getattr(event, "personal", None) or {}).get("metadata") or {}
    return {**(getattr(event, "metadata", None) or {}), **personal}


def failure_reason(event: Any) -> str:
    """A failed delivery's technical detail ("" once the contact is forgotten)."""
    return str((getattr(event, "personal", None) or {}).get("reason", ""))


def inbound_message_id(channel: str, dedup_key: str) -> UUID:
    """Keyed (`threadline.domain.model.pseudonyms`): a Message-ID or a Telegram chat in the
    dedup key cannot be confirmed from the id."""
    return pseudonymous_id(MESSAGE_NAMESPACE, f"{channel}:{dedup_key}")


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

        Version 3 moved what names or reaches the client out of the public part: the dedup
        key (a Message-ID, a Telegram chat) is in `personal` and `dedup_key` is its digest,
        and the metadata outside `PUBLIC_METADATA` (Message-IDs, References, a chat id) sits
        in `personal["metadata"]`. An older event reads the same way (its digest unkeyed).
        """

        class_version = 3
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

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            public, personal = split_metadata(state["metadata"])
            raw = str(state["dedup_key"])
            state["personal"] = {**state["personal"], "dedup_key": raw, "metadata": personal}
            state["metadata"] = public
            state["dedup_key"] = Pseudonyms.legacy().digest(raw)

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
        """`source` is the inquiry's cleaned attribution; it always names the channel.

        `dedup_key` and `metadata` are the channel's own: the key and the personal metadata
        go to `personal`, the event's public part keeps the digest and the rest."""
        public, personal_metadata = split_metadata(metadata)
        return cls._create(
            cls.MessageReceived,
            id=id,
            conversation_id=conversation_id,
            contact_id=contact_id,
            channel=channel,
            direction=Direction.INBOUND.value,
            dedup_key=digest(dedup_key),
            personal={**personal, "dedup_key": dedup_key, "metadata": personal_metadata},
            attachments=attachments,
            metadata=public,
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
        """A send failed; `problem` is the plain reason (a `channels.problems.DeliveryProblem`
        value), `personal["reason"]` the technical detail (a server's answer often quotes
        the recipient's address: `failure_reason`). Version 1 had no problem (empty);
        version 2 kept the detail in `reason`; both read as version 3. `contact_id` names
        whose key the detail is sealed with (`personal_cipher`); None on older events."""

        class_version = 3
        permanent: bool
        actor: str
        correlation_id: str
        retry_at: datetime | None
        problem: str
        personal: dict[str, Any]
        contact_id: UUID | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["problem"] = ""

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            state["personal"] = {"reason": state.pop("reason", "")}
            state["contact_id"] = None

    @event(MessageDelivered)
    def mark_delivered(
        self, provider_id: str, actor: str, correlation_id: str, status: str = "sent"
    ) -> None:
        self.state = DeliveryState.DELIVERED.value
        self.provider_id = provider_id
        self.provider_status = status
        self.attempt_open = False

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
        self._failed(
            permanent, actor, correlation_id, retry_at, problem, {"reason": reason}, self.contact_id
        )

    @event(MessageDeliveryFailed)
    def _failed(
        self,
        permanent: bool,
        actor: str,
        correlation_id: str,
        retry_at: datetime | None,
        problem: str,
        personal: dict[str, Any],
        contact_id: UUID | None,
    ) -> None:
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
        """The recording's address (the client's voice) is in `personal["recording_url"]`,
        sealed with the key of `contact_id` (`personal_cipher`); version 1 kept it in a field
        of its own and reads as version 2 (with no contact)."""

        class_version = 2
        status: str
        outcome: str
        duration: int | None
        personal: dict[str, Any]
        actor: str
        correlation_id: str
        contact_id: UUID | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            recording = state.pop("recording_url", None)
            state["personal"] = {"recording_url": recording} if recording else {}
            state["contact_id"] = None

    def update_call(
        self,
        status: str,
        outcome: str,
        duration: int | None,
        personal: dict[str, Any],
        actor: str,
        correlation_id: str,
    ) -> None:
        """A call's progress from the provider's status callbacks (ringing, completed, ...)."""
        self._call_updated(
            status, outcome, duration, personal, actor, correlation_id, self.contact_id
        )

    @event(CallUpdated)
    def _call_updated(
        self,
        status: str,
        outcome: str,
        duration: int | None,
        personal: dict[str, Any],
        actor: str,
        correlation_id: str,
        contact_id: UUID | None,
    ) -> None:
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
