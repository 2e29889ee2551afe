"""The task list: what is due, overdue and done, for whom."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from threadline.domain.model.task import Task
from threadline.projections.base import Scrub, ViewProjection, handles, sid, ts
from threadline.projections.sql import ViewCursor, ViewReader, rows_with_ids


def open_tasks_of_conversation(db: ViewReader, conversation_id: str) -> int:
    """How many open tasks name this conversation (a rule's ``conversation.open_task_count``)."""
    row = db.query_one(
        "SELECT COUNT(*) AS n FROM tasks WHERE conversation_id = ? AND status = 'open'",
        [conversation_id],
    )
    return int(row["n"]) if row is not None else 0


def open_tasks_of_deal(db: ViewReader, deal_id: str) -> int:
    """How many open tasks name this deal (a rule's ``deal.open_task_count``)."""
    row = db.query_one(
        "SELECT COUNT(*) AS n FROM tasks WHERE deal_id = ? AND status = 'open'", [deal_id]
    )
    return int(row["n"]) if row is not None else 0


class TaskProjection(ViewProjection):
    name = "tasks"
    tables = ("tasks",)
    forgets = (Scrub("tasks", {"title": "", "notes": ""}),)
    schema = (
        "CREATE TABLE IF NOT EXISTS tasks ("
        " id TEXT PRIMARY KEY, type TEXT NOT NULL, title TEXT NOT NULL, notes TEXT NOT NULL,"
        " status TEXT NOT NULL, due_at TEXT, assignee_id TEXT, contact_id TEXT, deal_id TEXT,"
        " conversation_id TEXT, created_by TEXT NOT NULL, created_at TEXT NOT NULL,"
        " updated_at TEXT NOT NULL, closed_at TEXT)",
        "CREATE INDEX IF NOT EXISTS tasks_due ON tasks (status, due_at)",
        "CREATE INDEX IF NOT EXISTS tasks_assignee ON tasks (assignee_id, status, due_at)",
        "CREATE INDEX IF NOT EXISTS tasks_contact ON tasks (contact_id)",
        # A rule's `conversation.open_task_count` (see triggers/facts.py) reads by conversation.
        "CREATE INDEX IF NOT EXISTS tasks_conversation ON tasks (conversation_id, status)",
        # A deal's open tasks (the deal page, `deal.open_task_count`, "every deal has a task").
        "CREATE INDEX IF NOT EXISTS tasks_deal ON tasks (deal_id, status)",
        # The managers report's tasks done in a period.
        "CREATE INDEX IF NOT EXISTS tasks_closed ON tasks (status, closed_at)",
    )

    @handles(Task.TaskCreated)
    def _created(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "INSERT INTO tasks (id, type, title, notes, status, due_at, assignee_id, contact_id,"
            " deal_id, conversation_id, created_by, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            [
                sid(event.originator_id),
                event.type,
                event.personal.get("title", ""),
                event.personal.get("notes", ""),
                ts(event.due_at),
                sid(event.assignee_id),
                sid(event.contact_id),
                sid(event.deal_id),
                sid(event.conversation_id),
                event.actor,
                ts(event.timestamp),
                ts(event.timestamp),
            ],
        )

    @handles(Task.TaskCompleted, Task.TaskCancelled)
    def _closed(self, event: Any, cur: ViewCursor) -> None:
        status = "done" if isinstance(event, Task.TaskCompleted) else "cancelled"
        cur.execute(
            "UPDATE tasks SET status = ?, closed_at = ?, updated_at = ? WHERE id = ?",
            [status, ts(event.timestamp), ts(event.timestamp), sid(event.originator_id)],
        )

    @handles(Task.TaskRescheduled)
    def _rescheduled(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE tasks SET due_at = ?, updated_at = ? WHERE id = ?",
            [ts(event.due_at), ts(event.timestamp), sid(event.originator_id)],
        )

    @handles(Task.TaskReassigned)
    def _reassigned(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE tasks SET assignee_id = ?, updated_at = ? WHERE id = ?",
            [sid(event.assignee_id), ts(event.timestamp), sid(event.originator_id)],
        )


# -- readers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskRow:
    """One task of the list."""

    id: str
    type: str
    title: str
    notes: str
    status: str
    due_at: str | None
    assignee_id: str | None
    contact_id: str | None
    deal_id: str | None
    conversation_id: str | None
    created_by: str
    created_at: str
    updated_at: str
    closed_at: str | None


@dataclass(frozen=True)
class DueTask:
    """An open task with a due time: what a reminder scan hands to the rules."""

    id: str
    contact_id: str | None
    conversation_id: str | None
    due_at: str
    assignee_id: str | None


_DUE = "SELECT id, contact_id, conversation_id, due_at, assignee_id FROM tasks"


def task(db: ViewReader, task_id: UUID | str) -> TaskRow | None:
    row = db.query_one("SELECT * FROM tasks WHERE id = ?", [str(task_id)])
    return None if row is None else TaskRow(**row)


def tasks_of_contact(db: ViewReader, contact_id: UUID | str) -> list[TaskRow]:
    """A contact's tasks, oldest first."""
    rows = db.query(
        "SELECT * FROM tasks WHERE contact_id = ? ORDER BY created_at, id", [str(contact_id)]
    )
    return [TaskRow(**r) for r in rows]


def all_tasks(db: ViewReader) -> list[TaskRow]:
    """Every task, oldest first (tests and tools; the screens page through `Queries.tasks`)."""
    return [TaskRow(**r) for r in db.query("SELECT * FROM tasks ORDER BY created_at, id")]


def open_task_counts(db: ViewReader, assignee_ids: Sequence[str]) -> dict[str, int]:
    """Open tasks per assignee, for the given users (zero when none): round-robin by load."""
    counts = dict.fromkeys(assignee_ids, 0)
    if not assignee_ids:
        return counts
    marks = ",".join("?" for _ in assignee_ids)
    for row in db.query(
        f"SELECT assignee_id, COUNT(*) AS n FROM tasks WHERE status = 'open'"
        f" AND assignee_id IN ({marks}) GROUP BY assignee_id",
        list(assignee_ids),
    ):
        counts[str(row["assignee_id"])] = int(row["n"])
    return counts


def open_tasks_due_after(
    db: ViewReader, edge: str, after_due: str, after_id: str, limit: int
) -> list[DueTask]:
    """Open tasks due before `edge` and after the mark (`after_due`, `after_id`), in due order.

    A reminder scan's page: the mark is the last task the scan reminded.
    """
    rows = db.query(
        f"{_DUE} WHERE status = 'open' AND due_at < ? AND (due_at > ? OR (due_at = ? AND id > ?))"
        " ORDER BY due_at, id LIMIT ?",
        [edge, after_due, after_due, after_id, limit],
    )
    return [DueTask(**r) for r in rows]


def open_tasks_of_assignee(db: ViewReader, user_id: UUID | str) -> list[str]:
    """The ids of a user's open tasks, in id order: what a bulk hand-over hands on."""
    rows = db.query(
        "SELECT id FROM tasks WHERE assignee_id = ? AND status = 'open' ORDER BY id",
        [str(user_id)],
    )
    return [str(r["id"]) for r in rows]


def open_dated_task(db: ViewReader, task_id: UUID | str) -> DueTask | None:
    """The task if it is open and has a due time."""
    row = db.query_one(
        f"{_DUE} WHERE id = ? AND status = 'open' AND due_at IS NOT NULL", [str(task_id)]
    )
    return None if row is None else DueTask(**row)


@dataclass(frozen=True)
class TaskPlace:
    """Which contact and conversation a task names."""

    id: str
    contact_id: str | None
    conversation_id: str | None


def task_places(db: ViewReader, task_ids: Iterable[str]) -> list[TaskPlace]:
    """The place of each task the view knows (unknown ids are left out)."""
    select = "SELECT id, contact_id, conversation_id FROM tasks"
    return [TaskPlace(**r) for r in rows_with_ids(db, select, task_ids)]


def tasks_of_conversation(db: ViewReader, conversation_id: UUID | str) -> list[TaskRow]:
    """The tasks that name a conversation, oldest first."""
    rows = db.query(
        "SELECT * FROM tasks WHERE conversation_id = ? ORDER BY created_at, id",
        [str(conversation_id)],
    )
    return [TaskRow(**r) for r in rows]


def tasks_of_deal(db: ViewReader, deal_id: UUID | str) -> list[TaskRow]:
    """The tasks attached to a deal, oldest first."""
    rows = db.query("SELECT * FROM tasks WHERE deal_id = ? ORDER BY created_at, id", [str(deal_id)])
    return [TaskRow(**r) for r in rows]
