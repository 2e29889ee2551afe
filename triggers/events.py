"""What a rule's `when` can name: the log's events, turned into trigger events with facts.

Most names come straight from the event class (`DealStageChanged` is
``deal.stage_changed``), so event types added by later issues (deals,
contracts, payments) are usable in rules without a change here or in the
evaluator. A few names are derived, because they are what people ask for:
``lead.created`` (a contact created as a lead), ``form.submitted`` and
``call.received`` (special inbound messages), ``conversation.opened`` and
``conversation.resolved`` (status changes), ``task.overdue``, ``birthday`` and
``schedule`` (made by the timer loop, not by a single event).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

_WORDS = re.compile(r"[A-Z][a-z0-9]*")

# The trigger names a rule may use beside the generated ones (checked when a rule is saved).
DERIVED = (
    "message.received",
    "message.sent",
    "lead.created",
    "form.submitted",
    "call.received",
    "call.missed",
    "conversation.opened",
    "conversation.resolved",
    "conversation.unanswered",
    "task.created",
    "task.due_soon",
    "task.overdue",
    "contact.attribute_changed",
    "tag.added",
    "birthday",
    "schedule",
    "deal.created",
    "deal.stage_changed",
    "deal.won",
    "deal.lost",
    "contract.expiring",
    "payment.due",
    "payment.overdue",
)


@dataclass(frozen=True)
class TriggerEvent:
    """One thing that happened, as rules see it."""

    names: tuple[str, ...]  # every name it answers to, most specific first
    cause_key: str  # unique per cause: "<originator id>:<version>" or a derived key
    occurred_at: datetime
    facts: dict[str, Any]  # the "event" part of a rule's facts
    contact_id: UUID | None = None
    conversation_id: UUID | None = None
    actor: str = ""
    correlation_id: str = ""
    notification_id: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def automatic(self) -> bool:
        """Caused by a rule (loop protection) or by an auto-reply / bounce (ignored by default)."""
        return self.actor.startswith("rule:") or bool(
            self.facts.get("metadata", {}).get("auto_reply")
            or self.facts.get("metadata", {}).get("bounce")
        )


def generated_name(event: Any) -> str:
    """`DealStageChanged` -> ``deal.stage_changed``; `MessageReceived` -> ``message.received``."""
    words = [w.lower() for w in _WORDS.findall(type(event).__name__)]
    if not words:
        return "unknown"
    return words[0] + ("." + "_".join(words[1:]) if len(words) > 1 else "")


def to_trigger_event(event: Any, notification_id: int = 0) -> TriggerEvent | None:
    """Describe one domain event for the rules, or None for events rules never see."""
    name = generated_name(event)
    if name.startswith(
        ("rule.", "timer.", "inbox.", "user.", "identity.", "attribute.", "calendar.", "template.")
    ):
        return None
    state = {k: _plain(v) for k, v in vars(event).items() if not k.startswith("_")}
    personal = state.pop("personal", None) or {}
    facts: dict[str, Any] = {"type": name, **state, **_personal_facts(personal)}
    names = [name]
    contact_id = _uuid(state.get("contact_id"))
    conversation_id = _uuid(state.get("conversation_id"))
    kind = type(event).__name__
    if kind == "ContactCreated":
        contact_id = event.originator_id
        if state.get("lifecycle") == "lead":
            names.insert(0, "lead.created")
    elif kind in ("ContactAttributesChanged", "ContactTagsAdded", "ContactLifecycleChanged"):
        contact_id = event.originator_id
        if kind == "ContactAttributesChanged":
            names.insert(0, "contact.attribute_changed")
            facts["changed"] = sorted({**state.get("values", {}), **personal})
        elif kind == "ContactTagsAdded":
            names.insert(0, "tag.added")
    elif kind == "MessageReceived":
        metadata = state.get("metadata") or {}
        if metadata.get("kind") == "form":
            names.insert(0, "form.submitted")
        elif metadata.get("kind") == "call":
            names.insert(0, "call.received")
    elif kind == "MessageSendRequested":
        names.insert(0, "message.sent")
    elif kind == "CallMissed":
        names.insert(0, "call.missed")
    elif kind == "ConversationStarted":
        conversation_id = event.originator_id
        names.insert(0, "conversation.opened")
    elif kind == "ConversationStatusChanged":
        conversation_id = event.originator_id
        if state.get("status") == "open":
            names.insert(0, "conversation.opened")
        elif state.get("status") == "resolved":
            names.insert(0, "conversation.resolved")
    elif kind.startswith("Task"):
        contact_id = _uuid(state.get("contact_id"))
        facts["task_id"] = str(event.originator_id)
    elif kind.startswith("Deal") and state.get("stage") in ("won", "lost"):
        names.insert(0, f"deal.{state['stage']}")
    return TriggerEvent(
        names=tuple(dict.fromkeys(names)),
        cause_key=f"{event.originator_id}:{event.originator_version}",
        occurred_at=event.timestamp,
        facts=facts,
        contact_id=contact_id,
        conversation_id=conversation_id,
        actor=str(state.get("actor", "")),
        correlation_id=str(state.get("correlation_id", "")),
        notification_id=notification_id,
        extra={"originator_id": str(event.originator_id), "version": event.originator_version},
    )


def _personal_facts(personal: dict[str, Any]) -> dict[str, Any]:
    """Message bodies and names are conditions' business too (``event.text contains price``)."""
    return {k: _plain(v) for k, v in personal.items() if k in ("text", "subject", "title")}


def _uuid(value: Any) -> UUID | None:
    if value is None or isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        return None


def _plain(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
