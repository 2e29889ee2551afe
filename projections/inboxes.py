"""Configured inboxes, for listing them and for finding which inbox serves a channel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from threadline.domain.model.inbox import Inbox
from threadline.projections.base import ViewProjection, dumps, handles, sid, ts
from threadline.projections.sql import ViewCursor, ViewReader


class InboxesProjection(ViewProjection):
    name = "inboxes"
    tables = ("inboxes",)
    schema = (
        "CREATE TABLE IF NOT EXISTS inboxes ("
        " id TEXT PRIMARY KEY, slug TEXT NOT NULL UNIQUE, channel TEXT NOT NULL,"
        " name TEXT NOT NULL, settings TEXT NOT NULL, secret_names TEXT NOT NULL,"
        " enabled BIGINT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
    )

    @handles(Inbox.InboxCreated)
    def _created(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "INSERT INTO inboxes (id, slug, channel, name, settings, secret_names, enabled,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            [
                sid(event.originator_id),
                event.slug,
                event.channel,
                event.name,
                dumps(event.settings),
                dumps(sorted(event.secret_names)),
                ts(event.timestamp),
                ts(event.timestamp),
            ],
        )

    @handles(Inbox.InboxReconfigured)
    def _reconfigured(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE inboxes SET name = ?, settings = ?, secret_names = ?, updated_at = ?"
            " WHERE id = ?",
            [
                event.name,
                dumps(event.settings),
                dumps(sorted(event.secret_names)),
                ts(event.timestamp),
                sid(event.originator_id),
            ],
        )

    @handles(Inbox.InboxEnabledChanged)
    def _enabled(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE inboxes SET enabled = ?, updated_at = ? WHERE id = ?",
            [int(event.enabled), ts(event.timestamp), sid(event.originator_id)],
        )


# -- readers ------------------------------------------------------------------------------------


def inbox_ids(db: ViewReader, channel: str | None = None, enabled_only: bool = True) -> list[str]:
    """The ids of the configured inboxes (of one channel, enabled ones only), in slug order."""
    sql = "SELECT id FROM inboxes"
    conditions: list[str] = []
    params: list[Any] = []
    if channel:
        conditions.append("channel = ?")
        params.append(channel)
    if enabled_only:
        conditions.append("enabled = 1")
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    return [str(r["id"]) for r in db.query(sql + " ORDER BY slug", params)]


@dataclass(frozen=True)
class InboxListRow:
    """One line of the inbox list (settings and secrets stay with the aggregate)."""

    slug: str
    channel: str
    name: str
    enabled: bool
    updated_at: str


def inboxes_page(db: ViewReader, limit: int, offset: int = 0) -> list[InboxListRow]:
    rows = db.query(
        "SELECT slug, channel, name, enabled, updated_at FROM inboxes ORDER BY slug LIMIT ? OFFSET ?",
        [limit, offset],
    )
    return [InboxListRow(**{**r, "enabled": bool(r["enabled"])}) for r in rows]
