"""Opting out of automatic messages: a STOP word from the client, or the unsubscribe link.

The opt-out is recorded on the contact the merges lead to (`survivor`), because that is
the contact every later message is composed for.
"""

from __future__ import annotations

from typing import Any, Protocol
from uuid import UUID

from threadline.domain.infrastructure.group_commit import Command, Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.contact import Contact, survivor
from threadline.triggers.events import TriggerEvent

STOP_WORDS = {"stop", "/stop", "unsubscribe", "стоп", "отписаться"}
OPT_OUT_CHANNELS = {"sms", "whatsapp", "telegram"}


class Writer(Protocol):
    def submit(self, command: Command[Any]) -> Committed[Any]: ...


class HasWriter(Protocol):
    @property
    def writer(self) -> Writer: ...


def opt_out(app: HasWriter, contact_id: UUID, channel: str, reason: str) -> None:
    """Record that a contact wants no automatic messages on `channel` (``*`` for all)."""

    def command(unit: UnitOfWork) -> None:
        contact = survivor(unit.get(contact_id, Contact), lambda i: unit.get(i, Contact))
        if not contact.has_opted_out(channel):
            contact.opt_out(channel, reason, "worker:triggers", str(contact_id))

    app.writer.submit(command)


def stop_word_opt_out(app: HasWriter, trigger: TriggerEvent) -> None:
    """A client who writes STOP on SMS, WhatsApp or Telegram gets no more automatic messages there."""
    facts = trigger.facts
    if "message.received" not in trigger.names or trigger.contact_id is None:
        return
    channel = str(facts.get("channel", ""))
    text = " ".join(str(facts.get("text", "")).lower().split())
    if channel in OPT_OUT_CHANNELS and text in STOP_WORDS:
        opt_out(app, trigger.contact_id, channel, f"the client wrote {text!r}")
