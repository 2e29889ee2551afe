"""What a notification is about, as the reader sees it now: the task, the client, the conversation.

A notification stores ids only (besides the rule's text), so a list of reminders
shows each task's current title and due time and each client's current name
instead of seventeen identical "A task is due within the hour". Both the web
app and the notification e-mails read them here, one query per kind for a page.
"""

from __future__ import annotations

from typing import Any

from threadline.projections.sql import ViewDatabase

UNREAD_LIMIT = 50


def unread_for(db: ViewDatabase, user_id: str, limit: int = UNREAD_LIMIT) -> list[dict[str, Any]]:
    """The user's unread notifications, newest first, each with its `task`, `contact`,
    `conversation` (a dict, or None when it names none or the view does not know it)."""
    rows = db.query(
        "SELECT * FROM notifications WHERE user_id = ? AND read = 0"
        " ORDER BY created_at DESC LIMIT ?",
        [user_id, limit],
    )
    return with_details(db, rows)


def with_details(db: ViewDatabase, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`rows` of the notifications view, each copied with its task, contact and conversation."""
    tasks = _by_id(db, "SELECT id, title, type, status, due_at FROM tasks", _ids(rows, "task_id"))
    contacts = _by_id(db, "SELECT id, display_name FROM contacts", _ids(rows, "contact_id"))
    conversations = _by_id(
        db,
        "SELECT id, channel, subject FROM inbox_conversations",
        _ids(rows, "conversation_id"),
    )
    return [
        {
            **row,
            "task": tasks.get(str(row.get("task_id") or "")),
            "contact": contacts.get(str(row.get("contact_id") or "")),
            "conversation": conversations.get(str(row.get("conversation_id") or "")),
        }
        for row in rows
    ]


def _ids(rows: list[dict[str, Any]], key: str) -> list[str]:
    return sorted({str(row[key]) for row in rows if row.get(key)})


def _by_id(db: ViewDatabase, select: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    marks = ",".join("?" for _ in ids)
    return {str(row["id"]): dict(row) for row in db.query(f"{select} WHERE id IN ({marks})", ids)}
