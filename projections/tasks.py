"""The task list: what is due, overdue and done, for whom."""

from __future__ import annotations

from typing import Any

from threadline.domain.model.task import Task
from threadline.projections.base import ViewProjection, handles, sid, ts
from threadline.projections.sql import ViewCursor, ViewDatabase


def open_tasks_of_conversation(db: ViewDatabase, conversation_id: str) -> int:
    """How many open tasks name this conversation (a rule's ``conversation.open_task_count``)."""
    row = db.query_one(
        "SELECT COUNT(*) AS n FROM tasks WHERE conversation_id = ? AND status = 'open'",
        [conversation_id],
    )
    return int(row["n"]) if row is not None else 0


class TaskProjection(ViewProjection):
    name = "tasks"
    tables = ("tasks",)
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
