"""Bulk hand-over: what a departing user has, and who of the receivers takes each item.

The domain command (`domain/commands/hand_over.py`) does not query: it is told which item goes
to whom and leaves alone any item that has changed hands meanwhile. This module decides the
plan from the views (the user's clients as responsible, open deals as manager, open tasks as
assignee) and hands it to the command in chunks of `CHUNK` items, so a manager with thousands
of clients does not make one huge transaction; every chunk carries the same correlation id, so
the whole hand-over is still one thing to an auditor.

Several receivers share the items round-robin, kind by kind in id order: each receiver gets an
equal share of the clients, of the deals and of the tasks (at most one more than another).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol
from uuid import UUID, uuid4

from threadline.domain.commands.hand_over import HandOverPlan, HandOverResult
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.model.errors import InvalidInput
from threadline.projections.contact_card import contacts_of_responsible
from threadline.projections.deals import open_deals_of_manager
from threadline.projections.sql import ViewReader
from threadline.projections.tasks import open_tasks_of_assignee

HandOverKind = Literal["contacts", "deals", "tasks"]
ALL_KINDS: tuple[HandOverKind, ...] = ("contacts", "deals", "tasks")
CHUNK = 500
"""Items per command: large enough to be quick, small enough for one short transaction."""


class HandOverWriter(Protocol):
    """What this module needs of the application: the hand-over command."""

    def hand_over(
        self, from_user: UUID, plan: HandOverPlan, actor: str, correlation_id: str | None = None
    ) -> Committed[HandOverResult]: ...


@dataclass(frozen=True)
class HandOverItems:
    """What a user has now, by kind (ids in id order); empty for a kind not asked for."""

    contacts: list[str]
    deals: list[str]
    tasks: list[str]

    def counts(self) -> dict[str, int]:
        return {"contacts": len(self.contacts), "deals": len(self.deals), "tasks": len(self.tasks)}


@dataclass(frozen=True)
class HandOverOutcome:
    """What was handed over (items that changed hands meanwhile are not counted)."""

    correlation_id: str
    contacts: int
    deals: int
    tasks: int
    planned: dict[str, int]
    notification_id: int | None


def items_of(
    db: ViewReader, from_user: UUID | str, kinds: Sequence[HandOverKind] = ALL_KINDS
) -> HandOverItems:
    """The items of `from_user` a hand-over of `kinds` would move (its preview)."""
    return HandOverItems(
        contacts=contacts_of_responsible(db, from_user) if "contacts" in kinds else [],
        deals=open_deals_of_manager(db, from_user) if "deals" in kinds else [],
        tasks=open_tasks_of_assignee(db, from_user) if "tasks" in kinds else [],
    )


def plans(
    items: HandOverItems, to_users: Sequence[UUID], chunk: int = CHUNK
) -> Iterator[HandOverPlan]:
    """The items spread round-robin over `to_users`, as plans of at most `chunk` items."""
    if not to_users:
        raise InvalidInput("to_user_ids", "name at least one user to hand over to")
    assignments: list[tuple[str, UUID, UUID]] = []
    for kind, ids in (("contacts", items.contacts), ("deals", items.deals), ("tasks", items.tasks)):
        assignments.extend(
            (kind, UUID(item), to_users[index % len(to_users)]) for index, item in enumerate(ids)
        )
    for start in range(0, len(assignments), chunk):
        plan = HandOverPlan()
        for kind, item, to in assignments[start : start + chunk]:
            getattr(plan, kind)[item] = to
        yield plan


def hand_over(
    app: HandOverWriter,
    db: ViewReader,
    from_user: UUID,
    to_users: Sequence[UUID],
    actor: str,
    kinds: Sequence[HandOverKind] = ALL_KINDS,
    chunk: int = CHUNK,
) -> HandOverOutcome:
    """Hand `from_user`'s items of `kinds` over to `to_users`; one correlation id for all."""
    receivers = list(dict.fromkeys(to_users))
    if not receivers:
        raise InvalidInput("to_user_ids", "name at least one user to hand over to")
    if from_user in receivers:
        raise InvalidInput("to_user_ids", "a user cannot hand over to themselves")
    if not kinds:
        raise InvalidInput("kinds", "choose at least one of: contacts, deals, tasks")
    items = items_of(db, from_user, kinds)
    correlation_id = str(uuid4())
    contacts = deals = tasks = 0
    last: int | None = None
    for plan in plans(items, receivers, chunk):
        committed = app.hand_over(from_user, plan, actor, correlation_id)
        contacts += committed.value.contacts
        deals += committed.value.deals
        tasks += committed.value.tasks
        last = committed.notification_id if committed.notification_id is not None else last
    return HandOverOutcome(correlation_id, contacts, deals, tasks, items.counts(), last)
