"""A firing as one command: the `RuleFired` record and every effect of its actions, atomically.

The runner prepares everything that needs a read (rendered templates, the
chosen assignee, opt-out and rate-limit state: each action's `prepare`) and hands
a `PreparedFiring` to `firing_command`, which the group-commit writer runs. Inside, the firing's
deterministic id is checked first: if it exists, this cause was handled before
(a restart, a redelivery) and nothing is appended. Otherwise the firing and
its effects are appended in one transaction, so a crash leaves either all of
them or none. Each action appends its own effect (`RuleAction.apply`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from threadline.domain.infrastructure.group_commit import Command
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.contact import Contact
from threadline.domain.model.message import Message
from threadline.domain.model.rule import (
    FiringOutcome,
    RuleFiring,
    Timer,
    cause_reference,
    firing_id,
    split_trace,
    timer_id,
)
from threadline.domain.model.task import ReplyTaskMark, Task, reply_task_mark_id
from threadline.triggers.actions.base import ApplyContext, PreparedAction, effect_id_for
from threadline.triggers.evaluator import Decision
from threadline.triggers.events import TriggerEvent


@dataclass
class PreparedFiring:
    """One rule's decision on one cause, with its actions prepared (filled in for `fire`)."""

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
        "deal_id": str(event.deal_id) if event.deal_id else None,
        "actor": event.actor,
        "correlation_id": event.correlation_id,
        **event.extra,
    }


def timer_cause(event: TriggerEvent, depth: int) -> dict[str, Any]:
    """What a timer keeps of its cause: a reference, not a copy (see `cause_reference`)."""
    return cause_reference({**cause_of(event), "facts": event.facts, "depth": depth})


def schedule_command(prepared: PreparedFiring) -> Command[UUID | None]:
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
                cause=timer_cause(event, prepared.depth),
                due_at=decision.due_at,
                contact_id=event.contact_id,
                conversation_id=event.conversation_id,
                cancel_on=list(
                    decision.rule.spec.after.cancel_on if decision.rule.spec.after else ()
                ),
                actor=f"rule:{decision.rule.id}",
                correlation_id=event.correlation_id or prepared.cause_key,
            )
        )
        return new_timer

    return command


def cancel_timer_command(timer: UUID, reason: str, actor: str) -> Command[bool]:
    def command(unit: UnitOfWork) -> bool:
        found = unit.find(timer, Timer)
        if found is None or found.state != "scheduled":
            return False
        found.cancel(reason, actor, str(timer))
        return True

    return command


def firing_command(prepared: PreparedFiring) -> Command[UUID | None]:
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
        public_trace, compared = split_trace(decision.trace)
        unit.add(
            RuleFiring(
                id=new_firing,
                rule_id=rule.id,
                rule_version=rule.version,
                cause=cause_of(event),
                contact_id=event.contact_id,
                outcome=outcome,
                reason=reason,
                trace=public_trace,
                effects=effects,
                depth=prepared.depth,
                actor=actor,
                correlation_id=event.correlation_id or correlation_id,
                personal=compared,
            )
        )
        return new_firing

    return command


def _apply(
    unit: UnitOfWork,
    prepared: PreparedAction,
    event: TriggerEvent,
    firing: UUID,
    index: int,
    actor: str,
    correlation_id: str,
) -> dict[str, Any]:
    """One action's effect, as the firing records it: ``{"action": kind, ...}``."""
    effect: dict[str, Any] = {"action": prepared.kind}
    if prepared.skip:
        return {**effect, "skipped": prepared.skip}
    context = ApplyContext(
        unit=unit,
        event=event,
        effect_id=effect_id_for(firing, index),
        actor=actor,
        correlation_id=correlation_id,
        contact=unit.find(event.contact_id, Contact) if event.contact_id else None,
    )
    return {**effect, **prepared.action.apply(prepared, context)}


def complete_reply_task_command(
    conversation_id: UUID | None, message_id: UUID | None, actor: str, correlation_id: str
) -> Command[UUID | None]:
    """A reply was sent (or a call answered): complete the conversation's open reply task.

    Recorded as `TaskCompleted` with reason ``answered``, by `actor` (who replied);
    None when the conversation has no open reply task. A call's status event names only
    its message, so the conversation is then read from the message.
    """

    def command(unit: UnitOfWork) -> UUID | None:
        conversation = conversation_id
        if conversation is None and message_id is not None:
            message = unit.find(message_id, Message)
            conversation = getattr(message, "conversation_id", None)
        if conversation is None:
            return None
        mark = unit.find(reply_task_mark_id(conversation), ReplyTaskMark)
        if mark is None or mark.task_id is None:
            return None
        task = unit.find(mark.task_id, Task)
        if task is None or not task.is_open:
            return None
        task.complete(task.contact_id, actor, correlation_id, reason="answered")
        return task.id

    return command
