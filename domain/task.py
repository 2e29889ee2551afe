"""The Task aggregate: something a person must do by a given time.

"A deal without a task is a lost client": tasks are first-class, linked to a
contact, a deal or a conversation, and every change of due time or owner is an
event a manager can audit.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event


class TaskType(StrEnum):
    CALL = "call"
    EMAIL = "email"
    MEETING = "meeting"
    PROPOSAL = "proposal"
    OTHER = "other"


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class Task(Aggregate):
    """A to-do with type, due time, assignee and links; its title and notes are personal."""

    @event("TaskCreated")
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

    @event("TaskCompleted")
    def complete(self, contact_id: UUID | None, actor: str, correlation_id: str) -> None:
        self.status = TaskStatus.DONE.value

    @event("TaskCancelled")
    def cancel(self, contact_id: UUID | None, actor: str, correlation_id: str) -> None:
        self.status = TaskStatus.CANCELLED.value

    @event("TaskRescheduled")
    def reschedule(
        self, due_at: datetime, contact_id: UUID | None, actor: str, correlation_id: str
    ) -> None:
        self.due_at = due_at

    @event("TaskReassigned")
    def reassign(
        self, assignee_id: UUID | None, contact_id: UUID | None, actor: str, correlation_id: str
    ) -> None:
        self.assignee_id = assignee_id
