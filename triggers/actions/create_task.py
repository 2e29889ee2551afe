"""``create_task``: a task for an operator; with ``reply: true`` the conversation's reply task.

With ``deal: true`` the task is attached to the event's deal (a deal event, a task of a
deal, a stale deal), so it counts in ``deal.open_task_count`` and shows on the deal's
page; ``assignee: deal_manager`` gives it to the deal's manager.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from threadline.domain.model.conversation import Conversation
from threadline.domain.model.task import (
    ReplyTaskMark,
    Task,
    TaskType,
    reply_task_mark_id,
    task_type_for_channel,
)
from threadline.triggers.actions.base import (
    ApplyContext,
    PrepareContext,
    PreparedAction,
    RuleAction,
    register,
)
from threadline.triggers.assignees import Assignee, validate_assignee
from threadline.triggers.conditions import parse_duration
from threadline.triggers.rule_checks import (
    MAX_TEXT,
    RuleError,
    SaveChecks,
    action_object,
    duration,
    optional_string,
    string,
    text_template,
)

# `channel`: the type follows the conversation's channel (an SMS thread gets an SMS task).
TASK_TYPES = (*(t.value for t in TaskType), "channel")


@register
@dataclass(frozen=True)
class CreateTask(RuleAction):
    kind: ClassVar[str] = "create_task"
    keys: ClassVar[frozenset[str]] = frozenset(
        {"title", "type", "due_in", "assignee", "user_id", "team", "reply", "deal"}
    )

    title: str
    type: str = "other"
    due_in: str = "1d"
    reply: bool = False
    deal: bool = False
    assignee: Assignee = field(default_factory=Assignee)

    @classmethod
    def validate(cls, spec: Any, here: str, checks: SaveChecks) -> Any:
        spec = action_object(cls.kind, cls.keys, spec, here, "a task needs a title", ".title")
        if not isinstance(spec.get("title"), str) or not spec["title"].strip():
            raise RuleError(f"{here}.title", "a task needs a title")
        string(f"{here}.title", spec["title"], MAX_TEXT)
        text_template(f"{here}.title", spec["title"])
        if spec.get("type", "other") not in TASK_TYPES:
            raise RuleError(f"{here}.type", f"one of {', '.join(TASK_TYPES)}")
        optional_string(spec, "due_in", here)
        duration(f"{here}.due_in", spec.get("due_in", "1d"))
        for flag in ("reply", "deal"):
            if flag in spec and not isinstance(spec[flag], bool):
                raise RuleError(f"{here}.{flag}", "true or false")
        return {**spec, **validate_assignee(spec, here)}

    @classmethod
    def parse(cls, spec: Any) -> RuleAction:
        return cls(
            title=str(spec["title"]),
            type=str(spec.get("type", "other")),
            due_in=str(spec.get("due_in", "1d")),
            reply=bool(spec.get("reply")),
            deal=bool(spec.get("deal")),
            assignee=Assignee.parse(spec),
        )

    def prepare(self, context: PrepareContext) -> PreparedAction:
        if self.deal and context.event.deal_id is None:
            return PreparedAction(self, skip="the event names no deal")
        assignee_id = context.assignees.pick(self.assignee, context.facts, context.rule_id)
        due_at = context.now + parse_duration(self.due_in)
        return PreparedAction(
            self,
            assignee_id=assignee_id,
            due_at=due_at,
            rendered={"title": context.text(self.title)},
        )

    def apply(self, prepared: PreparedAction, context: ApplyContext) -> dict[str, Any]:
        """A task; with ``reply: true`` the conversation's reply task, of which one is open at most.

        The check and the link to the conversation's `ReplyTaskMark` happen in this unit of
        work, so neither a re-opened conversation nor a second firing in the same batch (or
        another writer: the mark's id is the conversation's) can add a second open one.
        ``type: channel`` takes the type from the conversation's channel (an SMS thread gets an
        SMS task, a voice thread a call).
        """
        unit, event = context.unit, context.event
        actor, correlation_id = context.actor, context.correlation_id
        conversation = (
            unit.find(event.conversation_id, Conversation) if event.conversation_id else None
        )
        task_type = self.type
        if task_type == "channel":
            task_type = task_type_for_channel(conversation.channel if conversation else None)
        deal_id = event.deal_id if self.deal else None
        if self.deal and deal_id is None:
            return {"skipped": "the event names no deal"}
        mark: ReplyTaskMark | None = None
        if self.reply:
            if conversation is None:
                return {"skipped": "a reply task needs the event's conversation"}
            mark = unit.find(reply_task_mark_id(conversation.id), ReplyTaskMark)
            if mark is not None and mark.task_id is not None:
                current = unit.find(mark.task_id, Task)
                if current is not None and current.is_open:
                    return {
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
                due_at=prepared.due_at,
                assignee_id=prepared.assignee_id,
                contact_id=context.contact.id if context.contact else None,
                deal_id=deal_id,
                conversation_id=event.conversation_id,
                personal={"title": prepared.rendered.get("title", self.title), "notes": ""},
                actor=actor,
                correlation_id=correlation_id,
            )
        )
        if mark is not None:
            mark.link(task.id, actor, correlation_id)
        effect = {
            "task_id": str(task.id),
            "type": task_type,
            "assignee_id": None if prepared.assignee_id is None else str(prepared.assignee_id),
        }
        if deal_id is not None:
            effect["deal_id"] = str(deal_id)
        return effect
