"""The delivery queue: every outbound message and where its delivery stands.

The delivery worker reads this view to find work; it never decides from the
view alone. Before calling a provider it records `MessageDeliveryAttempted`
through the aggregate, whose version check makes two workers (or a worker and
its restarted self) unable to start the same attempt twice.

The view also keeps, per conversation, the last inbound message's provider
headers (an e-mail's Message-ID and References), so a reply threads in the
client's mail program. Being a projection, it is rebuilt by `threadline
replay` like every other view, in log order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from threadline.domain.model.message import Message, failure_reason, full_metadata
from threadline.projections.base import Scrub, ViewProjection, dumps, handles, sid, ts
from threadline.projections.sql import ViewCursor, ViewReader


class OutboxProjection(ViewProjection):
    name = "outbox"
    version = 2  # 2: each row names its contact (a forgotten one's rows are scrubbed)
    tables = ("outbox", "thread_headers")
    forgets = (
        Scrub("outbox", {"last_error": None}),  # a server's answer may quote the address
        Scrub("thread_headers"),  # the client's Message-IDs
    )
    schema = (
        "CREATE TABLE IF NOT EXISTS outbox ("
        " message_id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, channel TEXT NOT NULL,"
        " state TEXT NOT NULL, attempts BIGINT NOT NULL DEFAULT 0, next_attempt_at TEXT NOT NULL,"
        " last_error TEXT, provider_id TEXT, position BIGINT NOT NULL, updated_at TEXT NOT NULL,"
        " contact_id TEXT)",
        "CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_at)",
        "CREATE INDEX IF NOT EXISTS outbox_contact ON outbox (contact_id)",
        "CREATE TABLE IF NOT EXISTS thread_headers ("
        " conversation_id TEXT PRIMARY KEY, message_header TEXT NOT NULL,"
        " refs TEXT NOT NULL, contact_id TEXT)",
        "CREATE INDEX IF NOT EXISTS thread_headers_contact ON thread_headers (contact_id)",
    )

    @handles(Message.MessageSendRequested)
    def _requested(self, event: Any, cur: ViewCursor) -> None:
        at = ts(event.timestamp)
        cur.execute(
            "INSERT INTO outbox (message_id, conversation_id, channel, state, next_attempt_at,"
            " position, updated_at, contact_id) VALUES (?, ?, ?, 'requested', ?, ?, ?, ?)"
            " ON CONFLICT (message_id) DO NOTHING",
            [
                sid(event.originator_id),
                sid(event.conversation_id),
                event.channel,
                at,
                self.position_of_event,
                at,
                sid(event.contact_id),
            ],
        )

    @handles(Message.MessageDeliveryAttempted)
    def _attempted(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE outbox SET state = 'sending', attempts = ?, updated_at = ?"
            " WHERE message_id = ?",
            [event.attempt, ts(event.timestamp), sid(event.originator_id)],
        )

    @handles(Message.MessageDelivered)
    def _delivered(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE outbox SET state = 'delivered', provider_id = ?, last_error = NULL,"
            " updated_at = ? WHERE message_id = ?",
            [event.provider_id, ts(event.timestamp), sid(event.originator_id)],
        )

    @handles(Message.MessageDeliveryFailed)
    def _failed(self, event: Any, cur: ViewCursor) -> None:
        state = "failed" if event.permanent else "requested"
        retry_at = ts(event.retry_at) or ts(event.timestamp)
        cur.execute(
            "UPDATE outbox SET state = ?, last_error = ?, next_attempt_at = ?, updated_at = ?"
            " WHERE message_id = ?",
            [state, failure_reason(event), retry_at, ts(event.timestamp), sid(event.originator_id)],
        )

    @handles(Message.MessageReceived)
    def _received(self, event: Any, cur: ViewCursor) -> None:
        metadata = full_metadata(event)  # the Message-IDs are personal
        header = metadata.get("message_id")
        if not header:
            return
        refs = [str(r) for r in metadata.get("references", []) if r][-20:]
        if header not in refs:
            refs.append(str(header))
        cur.execute(
            "INSERT INTO thread_headers (conversation_id, message_header, refs, contact_id)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (conversation_id) DO UPDATE"
            " SET message_header = excluded.message_header, refs = excluded.refs",
            [sid(event.conversation_id), str(header), dumps(refs), sid(event.contact_id)],
        )


# -- readers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DueDelivery:
    """A message waiting for its next delivery attempt."""

    message_id: str
    channel: str
    attempts: int


@dataclass(frozen=True)
class ThreadHeaders:
    """The last inbound e-mail's Message-ID and References of a conversation."""

    message_header: str
    refs: tuple[str, ...]


def due_deliveries(db: ViewReader, now: datetime, limit: int) -> list[DueDelivery]:
    """Requested messages whose next attempt is due at `now`, in queue order."""
    rows = db.query(
        "SELECT message_id, channel, attempts FROM outbox"
        " WHERE state = 'requested' AND next_attempt_at <= ? ORDER BY position LIMIT ?",
        [ts(now), limit],
    )
    return [DueDelivery(str(r["message_id"]), str(r["channel"]), int(r["attempts"])) for r in rows]


def sending_message_ids(db: ViewReader) -> list[str]:
    """Messages whose attempt began and did not finish (in doubt after a restart)."""
    return [
        str(r["message_id"])
        for r in db.query("SELECT message_id FROM outbox WHERE state = 'sending'")
    ]


def thread_headers(db: ViewReader, conversation_id: UUID | str) -> ThreadHeaders | None:
    row = db.query_one(
        "SELECT message_header, refs FROM thread_headers WHERE conversation_id = ?",
        [str(conversation_id)],
    )
    return (
        None
        if row is None
        else ThreadHeaders(str(row["message_header"]), tuple(json.loads(row["refs"])))
    )
