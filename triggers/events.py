"""What a rule's `when` can name: the log's events, turned into trigger events with facts.

Which event class answers to which names, and the facts each carries, is the table in
`trigger_names`. A few names depend on the event's state, because they are what people
ask for: ``lead.created`` (a contact created as a lead), ``form.submitted`` and
``call.received`` (special inbound messages), ``conversation.opened`` and
``conversation.resolved`` (status changes); `to_trigger_event` picks those.
``task.overdue``, ``birthday``, ``schedule``, ``deal.stale`` and the money flow's dates
(``payment.overdue``, ``contract.expiring``, ...) are made by the timer loop, not by a
single event. An incoming payment is also ``payment.received``; a supplier order's state
change is also ``supplier_order.<state>`` (sent, confirmed, received, cancelled).

A deal event's contact is the deal's contact (every deal event carries it) and its
`deal_id` is the deal, so the facts can read ``deal.*``; a task created for a deal carries
the deal too (the runner finds it for the task's later events, which do not name it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from threadline.triggers.trigger_names import EventTriggers, event_triggers


@dataclass(frozen=True)
class TriggerEvent:
    """One thing that happened, as rules see it."""

    names: tuple[str, ...]  # every name it answers to, most specific first
    cause_key: str  # unique per cause: "<originator id>:<version>" or a derived key
    occurred_at: datetime
    facts: dict[str, Any]  # the "event" part of a rule's facts
    contact_id: UUID | None = None
    conversation_id: UUID | None = None
    deal_id: UUID | None = None  # the deal the facts read as ``deal.*``
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


def to_trigger_event(event: Any, notification_id: int = 0) -> TriggerEvent | None:
    """Describe one domain event for the rules, or None for events rules never see."""
    kind = type(event).__name__
    triggers = event_triggers(kind)
    if triggers is None:
        return None
    state = {k: _plain(v) for k, v in vars(event).items() if not k.startswith("_")}
    personal = state.pop("personal", None) or {}
    facts: dict[str, Any] = {"type": triggers.name, **state, **_personal_facts(personal)}
    contact_id = _uuid(state.get("contact_id"))
    conversation_id = _uuid(state.get("conversation_id"))
    deal_id = _uuid(state.get("deal_id"))
    specific = _specific_name(kind, triggers, state)
    if kind in (
        "ContactCreated",
        "ContactAttributesChanged",
        "ContactTagsAdded",
        "ContactLifecycleChanged",
    ):
        contact_id = event.originator_id
    if kind == "ContactAttributesChanged":
        facts["changed"] = sorted({**state.get("values", {}), **personal})
    elif kind in ("ConversationStarted", "ConversationStatusChanged"):
        conversation_id = event.originator_id
    elif kind.startswith("Task"):
        facts["task_id"] = str(event.originator_id)
    elif kind.startswith("Deal"):
        deal_id = event.originator_id
        facts["deal_id"] = str(deal_id)
    elif kind in OWN_ID_FACTS:
        # A money-flow event names its aggregate by the fact its kind says (`document_id`...).
        facts[OWN_ID_FACTS[kind]] = str(event.originator_id)
    names = [specific, triggers.name] if specific else [triggers.name]
    return TriggerEvent(
        names=tuple(dict.fromkeys(names)),
        cause_key=f"{event.originator_id}:{event.originator_version}",
        occurred_at=event.timestamp,
        facts=facts,
        contact_id=contact_id,
        conversation_id=conversation_id,
        deal_id=deal_id,
        actor=str(state.get("actor", "")),
        correlation_id=str(state.get("correlation_id", "")),
        notification_id=notification_id,
        extra={"originator_id": str(event.originator_id), "version": event.originator_version},
    )


# The money flow's events: the fact that holds the id of the aggregate they belong to.
OWN_ID_FACTS = {
    "DocumentIssued": "document_id",
    "DocumentSent": "document_id",
    "DocumentVoided": "document_id",
    "ContractRegistered": "contract_id",
    "ContractChanged": "contract_id",
    "ContractClosed": "contract_id",
    "PaymentRecorded": "payment_id",
    "PaymentAllocated": "payment_id",
    "PaymentAllocationRemoved": "payment_id",
    "PaymentMatchSuggested": "payment_id",
    "PaymentSuggestionDismissed": "payment_id",
    "SupplierOrderCreated": "supplier_order_id",
    "SupplierOrderStateChanged": "supplier_order_id",
}


def _specific_name(kind: str, triggers: EventTriggers, state: dict[str, Any]) -> str | None:
    """The more specific name (of the entry's `also`) this event answers to first, if any."""
    name: str | None = None
    if kind == "ContactCreated" and state.get("lifecycle") == "lead":
        name = "lead.created"
    elif kind == "ContactAttributesChanged":
        name = "contact.attribute_changed"
    elif kind == "ContactTagsAdded":
        name = "tag.added"
    elif kind == "MessageReceived":
        name = {"form": "form.submitted", "call": "call.received"}.get(
            str((state.get("metadata") or {}).get("kind"))
        )
    elif kind == "MessageSendRequested":
        name = "message.sent"
    elif kind in ("ConversationStarted", "ConversationStatusChanged"):
        status = state.get("status", "open")
        name = {"open": "conversation.opened", "resolved": "conversation.resolved"}.get(str(status))
    elif kind == "PaymentRecorded" and state.get("direction") == "in":
        name = "payment.received"
    elif kind == "SupplierOrderStateChanged":
        name = f"supplier_order.{state.get('state')}"
        name = name if name in triggers.also else None
    assert name is None or name in triggers.also, f"{name} is not in the table for {kind}"
    return name


def _personal_facts(personal: dict[str, Any]) -> dict[str, Any]:
    """Message bodies and names are conditions' business too (``event.text contains price``),
    and so are a payment's purpose and its payer or payee (``event.purpose contains СЧ``)."""
    return {k: _plain(v) for k, v in personal.items() if k in PERSONAL_FACTS}


PERSONAL_FACTS = ("text", "subject", "title", "purpose", "counterparty", "reason")


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
