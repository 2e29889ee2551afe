"""Task commands: create a task, complete, cancel, reschedule or reassign it.

A closed task refuses changes itself (`Task` raises `Conflict`); the commands only
load, check the links exist, and append.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from threadline.domain.commands.base import Commands, required_text
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.contact import Contact
from threadline.domain.model.conversation import Conversation
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.task import Task, TaskType
from threadline.domain.model.user import User


class TaskCommands(Commands):
    def create_task(
        self,
        actor: str,
        title: str,
        type: str = TaskType.OTHER.value,
        due_at: datetime | None = None,
        assignee_id: UUID | None = None,
        contact_id: UUID | None = None,
        deal_id: UUID | None = None,
        conversation_id: UUID | None = None,
        notes: str = "",
    ) -> Committed[UUID]:
        required_text("title", title, 500)
        try:
            task_type = TaskType(type)
        except ValueError:
            raise InvalidInput("type", f"one of {[t.value for t in TaskType]}") from None
        if due_at is not None and due_at.tzinfo is None:
            raise InvalidInput("due_at", "a due time needs a time zone")
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> UUID:
            linked_contact = contact_id
            if assignee_id is not None:
                unit.get(assignee_id, User)
            if contact_id is not None:
                unit.get(contact_id, Contact)
            if conversation_id is not None:
                conversation = unit.get(conversation_id, Conversation)
                linked_contact = linked_contact or conversation.contact_id
            task = unit.add(
                Task(
                    type=task_type.value,
                    due_at=due_at,
                    assignee_id=assignee_id,
                    contact_id=linked_contact,
                    deal_id=deal_id,
                    conversation_id=conversation_id,
                    personal={"title": title.strip(), "notes": notes},
                    actor=actor,
                    correlation_id=correlation_id,
                )
            )
            return task.id

        return self.writer.submit(command)

    def complete_task(self, task_id: UUID, actor: str) -> Committed[None]:
        def command(unit: UnitOfWork) -> None:
            task = unit.get(task_id, Task)
            task.complete(task.contact_id, actor, str(uuid4()))

        return self.writer.submit(command)

    def cancel_task(self, task_id: UUID, actor: str) -> Committed[None]:
        def command(unit: UnitOfWork) -> None:
            task = unit.get(task_id, Task)
            task.cancel(task.contact_id, actor, str(uuid4()))

        return self.writer.submit(command)

    def reschedule_task(self, task_id: UUID, due_at: datetime, actor: str) -> Committed[None]:
        if due_at.tzinfo is None:
            raise InvalidInput("due_at", "a due time needs a time zone")

        def command(unit: UnitOfWork) -> None:
            task = unit.get(task_id, Task)
            task.reschedule(due_at, task.contact_id, actor, str(uuid4()))

        return self.writer.submit(command)

    def reassign_task(self, task_id: UUID, assignee_id: UUID | None, actor: str) -> Committed[None]:
        def command(unit: UnitOfWork) -> None:
            if assignee_id is not None:
                unit.get(assignee_id, User)
            task = unit.get(task_id, Task)
            task.reassign(assignee_id, task.contact_id, actor, str(uuid4()))

        return self.writer.submit(command)
