"""The Conversation aggregate: one thread with one contact on one channel."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from threadline.domain.model.pseudonyms import Pseudonyms, digest, pseudonymous_id

CONVERSATION_NAMESPACE = uuid5(NAMESPACE_URL, "https://threadline.dev/conversation")


class ConversationStatus(StrEnum):
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    SNOOZED = "snoozed"


def conversation_id_for(contact_id: UUID, channel: str, thread_key: str) -> UUID:
    """Deterministic id: the same contact, channel and thread always land in one conversation
    (keyed, `threadline.domain.model.pseudonyms`: a thread key is a subject and an address)."""
    return pseudonymous_id(CONVERSATION_NAMESPACE, f"{contact_id}:{channel}:{thread_key}")


class Conversation(Aggregate):
    """Status, assignee and read state of a thread; its messages are aggregates of their own."""

    class ConversationStarted(Aggregate.Created):
        """A thread began. `personal` holds the subject, the address the client wrote from
        and the thread key (a Message-ID, a Telegram chat, a subject and an address);
        `thread_key` is only its digest (`pseudonyms.digest`).

        Version 2 named the inbox it came through (replies leave by it); version 3 moved
        the thread key into `personal` (an older event's digest is an unkeyed SHA-256).
        """

        class_version = 3
        contact_id: UUID
        channel: str
        thread_key: str
        personal: dict[str, Any]
        actor: str
        correlation_id: str
        inbox_id: UUID | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["inbox_id"] = None

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            raw = str(state["thread_key"])
            state["personal"] = {**state["personal"], "thread_key": raw}
            state["thread_key"] = Pseudonyms.legacy().digest(raw)

    @classmethod
    def start(
        cls,
        *,
        id: UUID,
        contact_id: UUID,
        channel: str,
        thread_key: str,
        subject: str,
        address: dict[str, str] | None,
        actor: str,
        correlation_id: str,
        inbox_id: UUID | None = None,
    ) -> Conversation:
        """Start a thread: the key, subject and address go to `personal`, a digest outside."""
        personal: dict[str, Any] = {"subject": subject, "thread_key": thread_key}
        if address is not None:
            personal["address"] = address
        return cls(
            id=id,
            contact_id=contact_id,
            channel=channel,
            thread_key=digest(thread_key),
            personal=personal,
            actor=actor,
            correlation_id=correlation_id,
            inbox_id=inbox_id,
        )

    @event(ConversationStarted)
    def __init__(
        self,
        id: UUID,
        contact_id: UUID,
        channel: str,
        thread_key: str,
        personal: dict[str, Any],
        actor: str,
        correlation_id: str,
        inbox_id: UUID | None = None,
    ) -> None:
        self.contact_id = contact_id
        self.channel = channel
        self.thread_key: str = personal.get("thread_key", thread_key)  # the digest when forgotten
        self.subject: str = personal.get("subject", "")
        self.address: dict[str, str] | None = personal.get("address")
        self.inbox_id = inbox_id
        self.status = ConversationStatus.OPEN.value
        self.assignee_id: UUID | None = None
        self.snoozed_until: datetime | None = None

    class ConversationAssigned(Aggregate.Event):
        assignee_id: UUID | None
        actor: str
        correlation_id: str

    @event(ConversationAssigned)
    def assign(self, assignee_id: UUID | None, actor: str, correlation_id: str) -> None:
        self.assignee_id = assignee_id

    class ConversationStatusChanged(Aggregate.Event):
        status: str
        snoozed_until: datetime | None
        actor: str
        correlation_id: str

    @event(ConversationStatusChanged)
    def change_status(
        self,
        status: str,
        snoozed_until: datetime | None,
        actor: str,
        correlation_id: str,
    ) -> None:
        self.status = status
        self.snoozed_until = snoozed_until

    class ConversationRead(Aggregate.Event):
        actor: str
        correlation_id: str

    @event(ConversationRead)
    def mark_read(self, actor: str, correlation_id: str) -> None:
        """An operator has seen the thread; the inbox resets its unread count."""
