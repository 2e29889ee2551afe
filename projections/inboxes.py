"""Configured inboxes, for listing them and for finding which inbox serves a channel."""

from __future__ import annotations

from typing import Any

from threadline.domain.model.inbox import Inbox
from threadline.projections.base import ViewProjection, dumps, handles, sid, ts
from threadline.projections.sql import ViewCursor


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
