"""Rejected inbound messages: a table in the state database, listed, counted and retried.

A poller that cannot ingest one message records it here and moves its cursor on,
so one bad message never stalls a mailbox, and nothing is lost silently: an admin
sees the reason (`GET /api/inboxes/{slug}/rejected`, the inbox's admin screen, the
count on `/healthz`) and can fetch the message again once the cause is fixed. Like
the cursors, this is operational state outside the log (a retry that succeeds
appends the message itself), untouched by `threadline replay`.

Each rejection's id is derived from where the message is (inbox, folder,
UIDVALIDITY, UID; a Telegram update by its update_id), so the same message rejected
again updates its row instead of adding one. Telegram cannot send an update again,
so a Telegram rejection keeps the update's JSON (`raw`, up to `MAX_RAW` characters)
for a retry to read. The values come from hostile mail: every text is cut to a bounded
length and made storable (a lone surrogate or a NUL would make the database refuse
the row, which is how the rejection could fail too).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from threadline.channels.base import Rejection
from threadline.projections.sql import ViewDatabase

log = logging.getLogger("threadline.channels")

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS channel_rejections ("
    " id TEXT PRIMARY KEY, inbox_slug TEXT NOT NULL, folder TEXT NOT NULL,"
    " uidvalidity BIGINT NOT NULL, uid BIGINT NOT NULL, reason TEXT NOT NULL,"
    " rejected_at TEXT NOT NULL, first_rejected_at TEXT NOT NULL, attempts BIGINT NOT NULL,"
    " size BIGINT NOT NULL, message_id TEXT NOT NULL, subject TEXT NOT NULL,"
    " sender TEXT NOT NULL, update_id BIGINT, chat TEXT NOT NULL DEFAULT '',"
    " preview TEXT NOT NULL DEFAULT '', raw TEXT NOT NULL DEFAULT '')",
    "CREATE INDEX IF NOT EXISTS channel_rejections_by_inbox"
    " ON channel_rejections (inbox_slug, rejected_at)",
)
LEGACY_PREFIX = "imap-rejected:"
"""Rejections were once `channel_state` rows `imap-rejected:slug:folder:uidvalidity:uid`."""

ADDED_COLUMNS = {
    "update_id": "BIGINT",
    "chat": "TEXT NOT NULL DEFAULT ''",
    "preview": "TEXT NOT NULL DEFAULT ''",
    "raw": "TEXT NOT NULL DEFAULT ''",
}
"""Columns of Telegram rejections, added to a table made by an earlier version."""

MAX_REASON = 1000
MAX_HEADER = 300
MAX_PREVIEW = 300
MAX_RAW = 65536
"""The largest update JSON a Telegram rejection keeps (characters; a text message is at
most 4096 characters): a larger one is recorded without it, and cannot be retried."""
COLUMNS = (
    "id, inbox_slug, folder, uidvalidity, uid, reason, rejected_at, first_rejected_at,"
    " attempts, size, message_id, subject, sender, update_id, chat, preview, raw"
)


@dataclass(frozen=True)
class StoredRejection:
    """One row, as the API and the admin screen show it."""

    id: str
    inbox_slug: str
    folder: str
    uidvalidity: int
    uid: int
    reason: str
    rejected_at: str
    first_rejected_at: str
    attempts: int
    size: int
    message_id: str
    subject: str
    sender: str
    update_id: int | None = None
    chat: str = ""
    text: str = ""
    raw: str = ""

    @classmethod
    def of(cls, row: dict[str, Any]) -> StoredRejection:
        return cls(
            id=str(row["id"]),
            inbox_slug=str(row["inbox_slug"]),
            folder=str(row["folder"]),
            uidvalidity=int(row["uidvalidity"]),
            uid=int(row["uid"]),
            reason=str(row["reason"]),
            rejected_at=str(row["rejected_at"]),
            first_rejected_at=str(row["first_rejected_at"]),
            attempts=int(row["attempts"]),
            size=int(row["size"]),
            message_id=str(row["message_id"]),
            subject=str(row["subject"]),
            sender=str(row["sender"]),
            update_id=None if row.get("update_id") is None else int(row["update_id"]),
            chat=str(row.get("chat") or ""),
            text=str(row.get("preview") or ""),
            raw=str(row.get("raw") or ""),
        )

    def rejection(self) -> Rejection:
        """Where the message is, for the channel that fetches it again."""
        return Rejection(
            inbox_slug=self.inbox_slug,
            folder=self.folder,
            uidvalidity=self.uidvalidity,
            uid=self.uid,
            reason=self.reason,
            size=self.size,
            message_id=self.message_id,
            subject=self.subject,
            sender=self.sender,
            update_id=self.update_id,
            chat=self.chat,
            text=self.text,
            raw=self.raw,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "folder": self.folder,
            "uidvalidity": self.uidvalidity,
            "uid": self.uid,
            "reason": self.reason,
            "rejected_at": self.rejected_at,
            "first_rejected_at": self.first_rejected_at,
            "attempts": self.attempts,
            "size": self.size,
            "message_id": self.message_id,
            "subject": self.subject,
            "sender": self.sender,
            "update_id": self.update_id,
            "chat": self.chat,
            "text": self.text,
            "retryable": self.update_id is None or bool(self.raw),
        }


def rejection_id(
    slug: str, folder: str, uidvalidity: int, uid: int, update_id: int | None = None, key: str = ""
) -> str:
    if key:  # a webhook request, by the provider's own id for it
        return str(uuid5(NAMESPACE_URL, f"threadline:rejected:{slug}:webhook:{key}"))
    if update_id is not None:  # a Telegram update: no folder, no UID
        return str(uuid5(NAMESPACE_URL, f"threadline:rejected:{slug}:telegram-update:{update_id}"))
    return str(uuid5(NAMESPACE_URL, f"threadline:rejected:{slug}:{uidvalidity}:{uid}:{folder}"))


def storable(value: Any, limit: int) -> str:
    """Text any database takes: no lone surrogates, no NUL, at most `limit` characters."""
    text = str(value or "")
    text = text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
    return text[:limit]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class RejectionStore:
    """`channels.base.RejectionLog` on the state database, plus what admins need."""

    def __init__(self, db: ViewDatabase) -> None:
        self.db = db  # the state database (not a view: `threadline replay` leaves it alone)

    def ensure_table(self) -> None:
        with self.db.transaction() as cur:
            for statement in SCHEMA:
                cur.execute(statement)
        self._add_columns()
        self._adopt_legacy_rows()

    def add(self, rejection: Rejection) -> None:
        """Record (or update: same place, new reason, one more attempt) a rejection."""
        now = _now()
        key = rejection_id(
            rejection.inbox_slug,
            rejection.folder,
            rejection.uidvalidity,
            rejection.uid,
            rejection.update_id,
            rejection.key,
        )
        raw = rejection.raw if len(rejection.raw) <= MAX_RAW else ""
        with self.db.transaction() as cur:
            cur.execute(
                f"INSERT INTO channel_rejections ({COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET reason = excluded.reason,"
                " rejected_at = excluded.rejected_at, size = excluded.size,"
                " sender = excluded.sender, chat = excluded.chat, preview = excluded.preview,"
                " raw = excluded.raw,"
                " attempts = channel_rejections.attempts + 1",
                [
                    key,
                    rejection.inbox_slug,
                    storable(rejection.folder, MAX_HEADER),
                    int(rejection.uidvalidity),
                    int(rejection.uid),
                    storable(rejection.reason, MAX_REASON) or "rejected",
                    now,
                    now,
                    int(rejection.size),
                    storable(rejection.message_id, MAX_HEADER),
                    storable(rejection.subject, MAX_HEADER),
                    storable(rejection.sender, MAX_HEADER),
                    None if rejection.update_id is None else int(rejection.update_id),
                    storable(rejection.chat, MAX_HEADER),
                    storable(rejection.text, MAX_PREVIEW),
                    storable(raw, MAX_RAW),
                ],
            )

    def page(self, slug: str, limit: int = 50, offset: int = 0) -> list[StoredRejection]:
        """One inbox's rejections, newest first."""
        rows = self.db.query(
            f"SELECT {COLUMNS} FROM channel_rejections WHERE inbox_slug = ?"
            " ORDER BY rejected_at DESC, uid DESC, update_id DESC LIMIT ? OFFSET ?",
            [slug, limit, offset],
        )
        return [StoredRejection.of(row) for row in rows]

    def count(self, slug: str | None = None) -> int:
        if slug is None:
            row = self.db.query_one("SELECT COUNT(*) AS n FROM channel_rejections")
        else:
            row = self.db.query_one(
                "SELECT COUNT(*) AS n FROM channel_rejections WHERE inbox_slug = ?", [slug]
            )
        return int(row["n"]) if row else 0

    def get(self, slug: str, ident: str) -> StoredRejection | None:
        try:
            key = str(UUID(ident))
        except ValueError:
            return None
        row = self.db.query_one(
            f"SELECT {COLUMNS} FROM channel_rejections WHERE inbox_slug = ? AND id = ?",
            [slug, key],
        )
        return None if row is None else StoredRejection.of(row)

    def delete(self, slug: str, ident: str) -> bool:
        where = "FROM channel_rejections WHERE inbox_slug = ? AND id = ?"
        with self.db.transaction() as cur:
            found = cur.execute(f"SELECT id {where}", [slug, ident]).fetchone()
            cur.execute(f"DELETE {where}", [slug, ident])
        return found is not None

    def _add_columns(self) -> None:
        """Add the Telegram columns to a table an earlier version made (once)."""
        for name, kind in ADDED_COLUMNS.items():
            if self._has_column(name):
                continue
            try:
                with self.db.transaction() as cur:
                    cur.execute(f"ALTER TABLE channel_rejections ADD COLUMN {name} {kind}")
            except Exception:
                if not self._has_column(name):  # not another process that added it first
                    raise

    def _has_column(self, name: str) -> bool:
        try:
            with self.db.transaction(commit=False) as cur:
                cur.execute(f"SELECT {name} FROM channel_rejections WHERE 1 = 0")
        except Exception:  # no such column (the database says so in its own words)
            return False
        return True

    def _adopt_legacy_rows(self) -> None:
        """Move rejections kept as `channel_state` rows by earlier versions into the table."""
        rows = self.db.query(
            "SELECT key, value FROM channel_state WHERE key LIKE ?", [LEGACY_PREFIX + "%"]
        )
        for row in rows:
            key = str(row["key"])
            try:
                slug, rest = key[len(LEGACY_PREFIX) :].split(":", 1)
                folder, uidvalidity, uid = rest.rsplit(":", 2)
                data = json.loads(row["value"] or "{}")
                rejection = Rejection(
                    inbox_slug=slug,
                    folder=folder,
                    uidvalidity=int(uidvalidity),
                    uid=int(uid),
                    reason=str(data.get("reason", "")),
                    size=int(data.get("size", 0)),
                )
            except (ValueError, TypeError, AttributeError):
                log.warning("an unreadable rejection row %r is left as it is", key)
                continue
            self.add(rejection)
            with self.db.transaction() as cur:
                cur.execute("DELETE FROM channel_state WHERE key = ?", [key])
