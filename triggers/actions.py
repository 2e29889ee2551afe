"""A firing as one command: the `RuleFired` record and every effect of its actions, atomically.

The runner prepares everything that needs a read (rendered templates, the
chosen assignee, opt-out and rate-limit state) and hands a `PreparedFiring`
to `firing_command`, which the group-commit writer runs. Inside, the firing's
deterministic id is checked first: if it exists, this cause was handled before
(a restart, a redelivery) and nothing is appended. Otherwise the firing and
its effects are appended in one transaction, so a crash leaves either all of
them or none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from threadline.domain.application import _set_attributes
from threadline.domain.automation import Notification, WebhookCall
from threadline.domain.contact import Contact, clean_tag
from threadline.domain.conversation import Conversation, conversation_id_for
from threadline.domain.message import Message
from threadline.domain.rule import FiringOutcome, RuleFiring, Timer, firing_id, timer_id
from threadline.domain.task import Task
from threadline.domain.unit_of_work import UnitOfWork
from threadline.domain.user import User
from threadline.triggers.evaluator import Decision
from threadline.triggers.events import TriggerEvent


@dataclass
class PreparedAction:
    """One action with what the runner looked up for it; `skip` says why it does nothing."""

    kind: str
    spec: Any
    skip: str = ""
    rendered: dict[str, Any] = field(default_factory=dict)  # send_template / notify
    channel: str = ""  # send_template: the conversation channel to send on
    assignee_id: UUID | None = None  # create_task / assign_conversation / notify
    due_at: datetime | None = None  # create_task


@dataclass
class PreparedFiring:
    decision: Decision
    event: TriggerEvent
    cause_key: str
    depth: int
    actions: list[PreparedAction]
    timer_to_fire: UUID | None = None


def cause_of(event: TriggerEvent) -> dict[str, Any]:
    return {
        "names": list(event.names),
        "key": event.cause_key,
        "notification_id": event.notification_id,
        "occurred_at": event.occurred_at.isoformat(),
        "contact_id": str(event.contact_id) if event.contact_id else None,
        "conversation_id": str(event.conversation_id) if event.conversation_id else None,
        "actor": event.actor,
        "correlation_id": event.correlation_id,
        **event.extra,
    }


def schedule_command(prepared: PreparedFiring) -> Any:
    """An `after` delay: a durable timer (once per rule and cause)."""
    decision, event = prepared.decision, prepared.event
    new_timer = timer_id(decision.rule.id, prepared.cause_key)

    def command(unit: UnitOfWork) -> UUID | None:
        if unit.exists(new_timer):
            return None
        assert decision.due_at is not None
        unit.add(
            Timer(
                id=new_timer,
                rule_id=decision.rule.id,
                cause={**cause_of(event), "facts": event.facts, "depth": prepared.depth},
                due_at=decision.due_at,
                contact_id=event.contact_id,
                conversation_id=event.conversation_id,
                cancel_on=list(decision.rule.definition.get("after", {}).get("cancel_on", [])),
                actor=f"rule:{decision.rule.id}",
                correlation_id=event.correlation_id or prepared.cause_key,
            )
        )
        return new_timer

    return command


def cancel_timer_command(timer: UUID, reason: str, actor: str) -> Any:
    def command(unit: UnitOfWork) -> bool:
        found = unit.find(timer, Timer)
        if found is None or found.state != "scheduled":
            return False
        found.cancel(reason, actor, str(timer))
        return True

    return command


def firing_command(prepared: PreparedFiring) -> Any:
    """Record the firing (or the skip) and apply its effects; None if it was recorded before."""
    decision, event = prepared.decision, prepared.event
    rule = decision.rule
    new_firing = firing_id(rule.id, prepared.cause_key)
    actor = f"rule:{rule.id}"
    correlation_id = str(new_firing)

    def command(unit: UnitOfWork) -> UUID | None:
        if unit.exists(new_firing):
            return None
        if prepared.timer_to_fire is not None:
            timer = unit.get(prepared.timer_to_fire, Timer)
            if timer.state != "scheduled":
                return None
            timer.fire(actor, correlation_id)
        effects: list[dict[str, Any]] = []
        if decision.outcome == "skip":
            outcome, reason = FiringOutcome.SKIPPED.value, decision.reason
        else:
            outcome, reason = FiringOutcome.FIRED.value, ""
            for index, action in enumerate(prepared.actions):
                effects.append(
                    _apply(unit, action, event, new_firing, index, actor, correlation_id)
                )
        unit.add(
            RuleFiring(
                id=new_firing,
                rule_id=rule.id,
                rule_version=rule.version,
                cause=cause_of(event),
                contact_id=event.contact_id,
                outcome=outcome,
                reason=reason,
                trace=decision.trace,
                effects=effects,
                depth=prepared.depth,
                actor=actor,
                correlation_id=event.correlation_id or correlation_id,
            )
        )
        return new_firing

    return command


def _apply(
    unit: UnitOfWork,
    action: PreparedAction,
    event: TriggerEvent,
    firing: UUID,
    index: int,
    actor: str,
    correlation_id: str,
) -> dict[str, Any]:
    effect: dict[str, Any] = {"action": action.kind}
    if action.skip:
        return {**effect, "skipped": action.skip}
    effect_id = uuid5(firing, f"action-{index}")
    contact = unit.find(event.contact_id, Contact) if event.contact_id else None
    if action.kind == "send_template":
        if contact is None:
            return {**effect, "skipped": "no contact to write to"}
        conversation = _conversation_for(
            unit, contact, event, action.channel, actor, correlation_id
        )
        unit.add(
            Message.request_send(
                id=effect_id,
                conversation_id=conversation.id,
                contact_id=contact.id,
                channel=action.channel,
                personal={
                    "text": action.rendered.get("text", ""),
                    "html": action.rendered.get("html", ""),
                    "subject": action.rendered.get("subject", ""),
                },
                attachments=[],
                actor=actor,
                correlation_id=correlation_id,
            )
        )
        return {**effect, "message_id": str(effect_id), "channel": action.channel}
    if action.kind == "create_task":
        spec = action.spec
        task = unit.add(
            Task(
                type=spec.get("type", "other"),
                due_at=action.due_at,
                assignee_id=action.assignee_id,
                contact_id=contact.id if contact else None,
                deal_id=None,
                conversation_id=event.conversation_id,
                personal={"title": action.rendered.get("title", spec["title"]), "notes": ""},
                actor=actor,
                correlation_id=correlation_id,
            )
        )
        return {**effect, "task_id": str(task.id), "assignee_id": _s(action.assignee_id)}
    if action.kind == "assign_conversation":
        if event.conversation_id is None:
            return {**effect, "skipped": "the event has no conversation"}
        conversation = unit.get(event.conversation_id, Conversation)
        if conversation.assignee_id != action.assignee_id:
            conversation.assign(action.assignee_id, actor, correlation_id)
        return {**effect, "assignee_id": _s(action.assignee_id)}
    if action.kind == "add_tag":
        if contact is None:
            return {**effect, "skipped": "no contact"}
        tag = clean_tag(action.spec)
        if tag not in contact.tags:
            contact.add_tags([tag], actor, correlation_id)
        return {**effect, "tag": tag}
    if action.kind == "set_attribute":
        if contact is None:
            return {**effect, "skipped": "no contact"}
        _set_attributes(
            unit, contact, {action.spec["key"]: action.spec["value"]}, actor, correlation_id
        )
        return {**effect, "key": action.spec["key"]}
    if action.kind == "notify":
        if action.assignee_id is None:
            return {**effect, "skipped": "nobody to notify (no responsible operator)"}
        unit.get(action.assignee_id, User)
        unit.add(
            Notification(
                id=effect_id,
                user_id=action.assignee_id,
                contact_id=contact.id if contact else None,
                conversation_id=event.conversation_id,
                email=bool(action.spec.get("email")),
                personal={"text": action.rendered.get("text", "")},
                actor=actor,
                correlation_id=correlation_id,
            )
        )
        return {**effect, "notification_id": str(effect_id), "user_id": str(action.assignee_id)}
    if action.kind == "webhook":
        unit.add(
            WebhookCall(
                id=effect_id,
                url=action.spec["url"],
                payload=action.rendered,
                secret_set=bool(action.spec.get("secret")),
                actor=actor,
                correlation_id=correlation_id,
            )
        )
        return {**effect, "webhook_id": str(effect_id)}
    if action.kind == "move_deal":
        return {**effect, "skipped": "deals arrive with the sales release"}
    if action.kind == "stop":
        return {**effect, "stopped": True}
    return {**effect, "skipped": f"unknown action {action.kind}"}


def _conversation_for(
    unit: UnitOfWork,
    contact: Contact,
    event: TriggerEvent,
    channel: str,
    actor: str,
    correlation_id: str,
) -> Conversation:
    """The event's own conversation when it is on that channel, else the contact's thread there."""
    if event.conversation_id is not None:
        own = unit.find(event.conversation_id, Conversation)
        if own is not None and own.channel == channel:
            return own
    wanted = conversation_id_for(contact.id, channel, "automatic")
    existing = unit.find(wanted, Conversation)
    if existing is not None:
        return existing
    return unit.add(
        Conversation(
            id=wanted,
            contact_id=contact.id,
            channel=channel,
            thread_key="automatic",
            personal={"subject": ""},
            actor=actor,
            correlation_id=correlation_id,
        )
    )


def _s(value: UUID | None) -> str | None:
    return None if value is None else str(value)
