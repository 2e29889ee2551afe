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

from threadline.domain.commands.application import _set_attributes
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.automation import Notification, WebhookCall
from threadline.domain.model.contact import Contact, clean_tag
from threadline.domain.model.conversation import Conversation, conversation_id_for
from threadline.domain.model.message import Message
from threadline.domain.model.reply_channels import answers
from threadline.domain.model.rule import (
    FiringOutcome,
    RuleFiring,
    Timer,
    cause_reference,
    firing_id,
    timer_id,
)
from threadline.domain.model.task import (
    ReplyTaskMark,
    Task,
    reply_task_mark_id,
    task_type_for_channel,
)
from threadline.domain.model.user import User
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


def timer_cause(event: TriggerEvent, depth: int) -> dict[str, Any]:
    """What a timer keeps of its cause: a reference, not a copy (see `cause_reference`)."""
    return cause_reference({**cause_of(event), "facts": event.facts, "depth": depth})


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
                cause=timer_cause(event, prepared.depth),
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
        return _create_task(unit, action, event, contact, actor, correlation_id)
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
            why = "no responsible operator"
            if action.spec.get("team"):
                why += " and nobody active in the team"
            return {**effect, "skipped": f"nobody to notify ({why})"}
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
                # A task's events and reminders name the task: the notification links it.
                task_id=_uuid(event.facts.get("task_id")),
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


def _create_task(
    unit: UnitOfWork,
    action: PreparedAction,
    event: TriggerEvent,
    contact: Contact | None,
    actor: str,
    correlation_id: str,
) -> dict[str, Any]:
    """A task; with ``reply: true`` the conversation's reply task, of which one is open at most.

    The check and the link to the conversation's `ReplyTaskMark` happen in this unit of
    work, so neither a re-opened conversation nor a second firing in the same batch (or
    another writer: the mark's id is the conversation's) can add a second open one.
    ``type: channel`` takes the type from the conversation's channel (an SMS thread gets an
    SMS task, a voice thread a call).
    """
    spec = action.spec
    effect: dict[str, Any] = {"action": action.kind}
    conversation = unit.find(event.conversation_id, Conversation) if event.conversation_id else None
    task_type = str(spec.get("type", "other"))
    if task_type == "channel":
        task_type = task_type_for_channel(conversation.channel if conversation else None)
    mark: ReplyTaskMark | None = None
    if spec.get("reply"):
        if conversation is None:
            return {**effect, "skipped": "a reply task needs the event's conversation"}
        mark = unit.find(reply_task_mark_id(conversation.id), ReplyTaskMark)
        if mark is not None and mark.task_id is not None:
            current = unit.find(mark.task_id, Task)
            if current is not None and current.is_open:
                return {
                    **effect,
                    "skipped": "the conversation already has an open reply task",
                    "open_task_id": str(current.id),
                }
        if mark is None:
            mark = unit.add(
                ReplyTaskMark(
                    id=reply_task_mark_id(conversation.id),
                    conversation_id=conversation.id,
                    actor=actor,
                    correlation_id=correlation_id,
                )
            )
    task = unit.add(
        Task(
            type=task_type,
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
    if mark is not None:
        mark.link(task.id, actor, correlation_id)
    return {
        **effect,
        "task_id": str(task.id),
        "type": task_type,
        "assignee_id": _s(action.assignee_id),
    }


def complete_reply_task_command(
    conversation_id: UUID | None, message_id: UUID | None, actor: str, correlation_id: str
) -> Any:
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


def _conversation_for(
    unit: UnitOfWork,
    contact: Contact,
    event: TriggerEvent,
    channel: str,
    actor: str,
    correlation_id: str,
) -> Conversation:
    """The event's own conversation when the message answers it (on its channel, or on the
    channel that answers it: a form lead's e-mail welcome stays in the form's conversation),
    else the contact's thread on that channel."""
    if event.conversation_id is not None:
        own = unit.find(event.conversation_id, Conversation)
        if own is not None and answers(own.channel, channel):
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


def _uuid(value: Any) -> UUID | None:
    try:
        return None if value in (None, "") else UUID(str(value))
    except ValueError:
        return None
