"""Bulk hand-over: a departing manager's clients, open deals and tasks go to others at once.

One command, one event per item (`ContactResponsibleAssigned`, `DealManagerChanged`,
`TaskReassigned`), all with one correlation id: the history shows who had what when, and an
auditor finds the whole hand-over from any of its events. Which items are handed over is
decided by the caller from the views (the domain does not query); an item that has meanwhile
changed hands is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID, uuid4

from threadline.domain.commands.base import Commands
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.contact import Contact
from threadline.domain.model.deal import Deal
from threadline.domain.model.task import Task
from threadline.domain.model.user import User


@dataclass(frozen=True)
class HandOverPlan:
    """Who takes each item: item id -> new owner's user id."""

    contacts: dict[UUID, UUID] = field(default_factory=dict)
    deals: dict[UUID, UUID] = field(default_factory=dict)
    tasks: dict[UUID, UUID] = field(default_factory=dict)


@dataclass(frozen=True)
class HandOverResult:
    correlation_id: str
    contacts: int
    deals: int
    tasks: int


class HandOverCommands(Commands):
    def hand_over(
        self, from_user: UUID, plan: HandOverPlan, actor: str, correlation_id: str | None = None
    ) -> Committed[HandOverResult]:
        """`correlation_id`: given when one hand-over is split into several commands (chunks),
        so every event of it carries the same id."""
        correlation_id = correlation_id or str(uuid4())

        def command(unit: UnitOfWork) -> HandOverResult:
            for user_id in {*plan.contacts.values(), *plan.deals.values(), *plan.tasks.values()}:
                unit.get(user_id, User)
            contacts = deals = tasks = 0
            for contact_id, to in plan.contacts.items():
                contact = unit.get(contact_id, Contact)
                if contact.responsible_id == from_user and contact.merged_into is None:
                    contact.assign_responsible(to, actor, correlation_id)
                    contacts += 1
            for deal_id, to in plan.deals.items():
                deal = unit.get(deal_id, Deal)
                if deal.manager_id == from_user and deal.is_open:
                    deal.change_manager(to, actor, correlation_id)
                    deals += 1
            for task_id, to in plan.tasks.items():
                task = unit.get(task_id, Task)
                if task.assignee_id == from_user and task.is_open:
                    task.reassign(to, task.contact_id, actor, correlation_id)
                    tasks += 1
            return HandOverResult(correlation_id, contacts, deals, tasks)

        return self.writer.submit(command)
