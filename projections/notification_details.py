"""What a notification is about, as the reader sees it now: the task, the client, the conversation.

A notification stores ids only (besides the rule's text), so a list of reminders
shows each task's current title and due time and each client's current name
instead of seventeen identical "A task is due within the hour". Both the web
app and the notification e-mails read them here, one query per kind for a page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from threadline.projections.sql import ViewReader

UNREAD_LIMIT = 50


def unread_for(db: ViewReader, user_id: str, limit: int = UNREAD_LIMIT) -> list[dict[str, Any]]:
    """The user's unread notifications, newest first, each with its `task`, `contact`,
    `conversation` (a dict, or None when it names none or the view does not know it)."""
    rows = db.query(
        "SELECT * FROM notifications WHERE user_id = ? AND read = 0"
        " ORDER BY created_at DESC LIMIT ?",
        [user_id, limit],
    )
    return with_details(db, rows)


def with_details(db: ViewReader, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
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


def _by_id(db: ViewReader, select: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    marks = ",".join("?" for _ in ids)
    return {str(row["id"]): dict(row) for row in db.query(f"{select} WHERE id IN ({marks})", ids)}


@dataclass(frozen=True)
class UnsentNotification:
    """A notification whose e-mail copy is wanted and not sent, with its operator's address."""

    id: str
    text: str
    contact_id: str | None
    conversation_id: str | None
    created_at: str
    email: str
    name: str
    active: bool


def unsent_after(db: ViewReader, after: tuple[str, str], limit: int) -> list[UnsentNotification]:
    """The next page of unsent e-mail copies after `after` = (created_at, id), in that order.

    `notifications_unsent` serves the range, so the notifier's position costs one
    index range read however many notifications there are.
    """
    created_at, notification_id = after
    rows = db.query(
        "SELECT n.id, n.text, n.contact_id, n.conversation_id, n.created_at, u.email,"
        " u.name, u.active FROM notifications n JOIN users u ON u.id = n.user_id"
        " WHERE n.email = 1 AND n.emailed = 0 AND n.created_at >= ?"
        " AND (n.created_at > ? OR n.id > ?) ORDER BY n.created_at, n.id LIMIT ?",
        [created_at, created_at, notification_id, limit],
    )
    return [UnsentNotification(**{**r, "active": bool(r["active"])}) for r in rows]


def for_mail(db: ViewReader, notification_id: UUID | str) -> dict[str, Any] | None:
    """One notification with its details (see `with_details`) and its operator's `locale`
    and `timezone`: what the notification e-mail is written from."""
    rows = db.query(
        "SELECT n.*, u.locale, u.timezone FROM notifications n"
        " JOIN users u ON u.id = n.user_id WHERE n.id = ?",
        [str(notification_id)],
    )
    if not rows:
        return None
    [note] = with_details(db, rows)
    return note


def unread_count(db: ViewReader, user_id: str) -> int:
    """How many of the user's notifications are unread (the top bar's badge)."""
    row = db.query_one(
        "SELECT COUNT(*) AS n FROM notifications WHERE user_id = ? AND read = 0", [user_id]
    )
    return int(row["n"]) if row else 0
