"""The Task aggregate: something a person must do by a given time.

"A deal without a task is a lost client": tasks are first-class, linked to a
contact, a deal or a conversation, and every change of due time or owner is an
event a manager can audit.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from threadline.domain.model.errors import Conflict

REPLY_TASK_NAMESPACE = uuid5(NAMESPACE_URL, "https://threadline.dev/reply-task")


class TaskType(StrEnum):
    """What kind of work a task is; a reply task is of the kind of its conversation's channel."""

    CALL = "call"
    EMAIL = "email"
    SMS = "sms"
    WHATSAPP = "whatsapp"
    TELEGRAM = "telegram"
    WEB = "web"
    MEETING = "meeting"
    PROPOSAL = "proposal"
    OTHER = "other"


# A conversation's channel -> the type of the task that answers it (voice is answered by a call).
_CHANNEL_TASK_TYPES = {
    "email": TaskType.EMAIL,
    "sms": TaskType.SMS,
    "whatsapp": TaskType.WHATSAPP,
    "telegram": TaskType.TELEGRAM,
    "voice": TaskType.CALL,
    "web": TaskType.WEB,
}


def task_type_for_channel(channel: str | None) -> str:
    """The task type that answers a conversation on `channel` (``other`` for unknown ones)."""
    return _CHANNEL_TASK_TYPES.get(channel or "", TaskType.OTHER).value


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class Task(Aggregate):
    """A to-do with type, due time, assignee and links; its title and notes are personal.

    A closed task (done or cancelled) refuses to be completed, cancelled or
    rescheduled again: `Conflict`, whoever asks.
    """

    class TaskCreated(Aggregate.Created):
        type: str
        due_at: datetime | None
        assignee_id: UUID | None
        contact_id: UUID | None
        deal_id: UUID | None
        conversation_id: UUID | None
        personal: dict[str, Any]
        actor: str
        correlation_id: str

    @event(TaskCreated)
    def __init__(
        self,
        type: str,
        due_at: datetime | None,
        assignee_id: UUID | None,
        contact_id: UUID | None,
        deal_id: UUID | None,
        conversation_id: UUID | None,
        personal: dict[str, Any],
        actor: str,
        correlation_id: str,
    ) -> None:
        self.type = type
        self.due_at = due_at
        self.assignee_id = assignee_id
        self.contact_id = contact_id
        self.deal_id = deal_id
        self.conversation_id = conversation_id
        self.title: str = personal.get("title", "")
        self.status = TaskStatus.OPEN.value

    @property
    def is_open(self) -> bool:
        return self.status == TaskStatus.OPEN.value

    def _refuse_if_closed(self) -> None:
        if not self.is_open:
            raise Conflict(f"task {self.id} is already {self.status}")

    class TaskCompleted(Aggregate.Event):
        """The work is done. Version 2 says why (``answered``: a reply in its conversation
        completed the conversation's reply task; empty when a person ticked it off)."""

        class_version = 2
        contact_id: UUID | None
        actor: str
        correlation_id: str
        reason: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["reason"] = ""

    def complete(
        self, contact_id: UUID | None, actor: str, correlation_id: str, reason: str = ""
    ) -> None:
        self._refuse_if_closed()
        self._completed(contact_id, actor, correlation_id, reason)

    @event(TaskCompleted)
    def _completed(
        self, contact_id: UUID | None, actor: str, correlation_id: str, reason: str
    ) -> None:
        self.status = TaskStatus.DONE.value

    class TaskCancelled(Aggregate.Event):
        contact_id: UUID | None
        actor: str
        correlation_id: str

    def cancel(self, contact_id: UUID | None, actor: str, correlation_id: str) -> None:
        self._refuse_if_closed()
        self._cancelled(contact_id, actor, correlation_id)

    @event(TaskCancelled)
    def _cancelled(self, contact_id: UUID | None, actor: str, correlation_id: str) -> None:
        self.status = TaskStatus.CANCELLED.value

    class TaskRescheduled(Aggregate.Event):
        due_at: datetime
        contact_id: UUID | None
        actor: str
        correlation_id: str

    def reschedule(
        self, due_at: datetime, contact_id: UUID | None, actor: str, correlation_id: str
    ) -> None:
        self._refuse_if_closed()
        self._rescheduled(due_at, contact_id, actor, correlation_id)

    @event(TaskRescheduled)
    def _rescheduled(
        self, due_at: datetime, contact_id: UUID | None, actor: str, correlation_id: str
    ) -> None:
        self.due_at = due_at

    class TaskReassigned(Aggregate.Event):
        assignee_id: UUID | None
        contact_id: UUID | None
        actor: str
        correlation_id: str

    @event(TaskReassigned)
    def reassign(
        self, assignee_id: UUID | None, contact_id: UUID | None, actor: str, correlation_id: str
    ) -> None:
        self.assignee_id = assignee_id


def reply_task_mark_id(conversation_id: UUID) -> UUID:
    """The one mark per conversation (deterministic, so two writers meet on the same aggregate)."""
    return uuid5(REPLY_TASK_NAMESPACE, str(conversation_id))


class ReplyTaskMark(Aggregate):
    """Which task is a conversation's reply task: the mark that keeps it to one open at a time.

    Rules create "reply to ..." tasks when a conversation opens or waits; without a
    mark each re-opening added another. Creating a reply task and linking it here
    happen in one unit of work, and the mark's id is derived from the conversation,
    so two writers that both try conflict in the store instead of both succeeding.
    """

    class ReplyTaskMarkCreated(Aggregate.Created):
        conversation_id: UUID
        actor: str
        correlation_id: str

    @event(ReplyTaskMarkCreated)
    def __init__(self, id: UUID, conversation_id: UUID, actor: str, correlation_id: str) -> None:
        self.conversation_id = conversation_id
        self.task_id: UUID | None = None

    class ReplyTaskLinked(Aggregate.Event):
        task_id: UUID
        actor: str
        correlation_id: str

    @event(ReplyTaskLinked)
    def link(self, task_id: UUID, actor: str, correlation_id: str) -> None:
        self.task_id = task_id
