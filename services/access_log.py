"""Who read what, when: every read of a contact card, a conversation, an attachment or an
export by a user, in the append-only table `access_log` of the store's database.

**The store's database, not the views'.** `threadline replay` drops and rebuilds every view
from the log, and this record is not in the log (a read is no event of the business), so it
lives beside `event_chain` in the database the replay leaves alone.

**Append-only, by the database.** Triggers refuse every UPDATE and DELETE of a row (and, on
PostgreSQL, a TRUNCATE), so neither a bug of ours nor a stray SQL session edits the record;
only a schema owner dropping the triggers or the table could, which leaves its own trace.

**Written in batches, off the request.** A read only puts its entry on a list; one daemon
thread (started at the first read) inserts what has gathered at most every `BATCH_SECONDS`,
in one transaction. A read never waits for a write, and on SQLite the entries take the one
write lock once per batch instead of once per read, between the group-commit writer's
transactions. The price: a crash loses the reads of its last batch window (normally under
`BATCH_SECONDS`). `flush()` stores everything queued now (the API flushes before it lists
the log, tests flush to look, `close()` flushes at shutdown); a batch that fails to store is
logged, kept in order and tried again.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from threadline.domain.infrastructure.store_access import CONNECTION_ERRORS, recover_connections
from threadline.projections.base import ts, utc_ts
from threadline.projections.sql import Conditions, ViewDatabase

log = logging.getLogger(__name__)

Kind = Literal["contact", "conversation", "attachment", "export"]
"""What was read: a contact's card or timeline, a conversation, a message's file, a CSV export."""
Via = Literal["api", "web"]

BATCH_SECONDS = 0.2
"""How long the writer lets reads gather before it stores them (one transaction per batch)."""
RETRY_SECONDS = 2.0
"""How long the writer waits after a batch failed to store (the database is away)."""
MAX_PAGE = 1000

APPEND_ONLY = "access_log is append-only"

_COLUMNS = "at, actor, role, kind, target_id, via, path"
_INDEXES = (
    # who read one client, one conversation...; what one user read; what was read when
    "CREATE INDEX IF NOT EXISTS access_log_target ON access_log (target_id, id)",
    "CREATE INDEX IF NOT EXISTS access_log_actor ON access_log (actor, id)",
    "CREATE INDEX IF NOT EXISTS access_log_at ON access_log (at)",
)
SQLITE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS access_log (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " at TEXT NOT NULL, actor TEXT NOT NULL, role TEXT NOT NULL, kind TEXT NOT NULL,"
    " target_id TEXT NOT NULL, via TEXT NOT NULL, path TEXT NOT NULL)",
    *_INDEXES,
    "CREATE TRIGGER IF NOT EXISTS access_log_no_update BEFORE UPDATE ON access_log"
    f" BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END",
    "CREATE TRIGGER IF NOT EXISTS access_log_no_delete BEFORE DELETE ON access_log"
    f" BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END",
)
POSTGRES_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS access_log (id BIGSERIAL PRIMARY KEY,"
    " at TEXT NOT NULL, actor TEXT NOT NULL, role TEXT NOT NULL, kind TEXT NOT NULL,"
    " target_id TEXT NOT NULL, via TEXT NOT NULL, path TEXT NOT NULL)",
    *_INDEXES,
    "CREATE OR REPLACE FUNCTION access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS"
    f" $$ BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$",
    # statement-level: a TRUNCATE has no rows, and a DELETE that matches none is refused too
    "CREATE OR REPLACE TRIGGER access_log_append_only"
    " BEFORE UPDATE OR DELETE OR TRUNCATE ON access_log"
    " FOR EACH STATEMENT EXECUTE FUNCTION access_log_append_only()",
)

Row = tuple[str, str, str, str, str, str, str]
"""One entry as inserted, in `_COLUMNS` order."""


class Reader(Protocol):
    """Who reads: the API's `Principal` and the web app's `WebUser` both are one."""

    @property
    def actor(self) -> str:
        """`user:<id>`, or `admin-token` for the bootstrap admin token."""
        ...

    @property
    def role(self) -> str: ...


@dataclass(frozen=True)
class AccessEntry:
    """One recorded read."""

    id: int
    at: str
    actor: str
    role: str
    kind: str
    target_id: str
    via: str
    path: str


@dataclass(frozen=True)
class AccessQuery:
    """Which entries to list: each filter that is None lets every entry through; `since` is
    inclusive and `until` exclusive; a page starts after the id `after`."""

    actor: str | None = None
    kind: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after: int = 0
    limit: int = 100


class AccessLog:
    """The access log of one store: `record` from the routes, `entries` for the auditors."""

    def __init__(self, store_recorder: Any, interval: float = BATCH_SECONDS) -> None:
        self.db = ViewDatabase(store_recorder)  # `?` parameters and the schema on both databases
        self.db.create_schema(POSTGRES_SCHEMA if self.db.postgres else SQLITE_SCHEMA)
        self.interval = interval
        self._pending: list[Row] = []
        self._pending_lock = threading.Lock()
        # One batch stored at a time, so ids follow the order the reads were recorded in.
        self._storing = threading.Lock()
        self._queued = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    def record(self, reader: Reader, kind: Kind, target_id: str, *, via: Via, path: str) -> None:
        """Note one successful read; stored within `interval` by the writer thread."""
        row: Row = (
            ts(datetime.now(UTC)),
            reader.actor,
            str(reader.role),
            kind,
            str(target_id),
            via,
            path,
        )
        with self._pending_lock:
            self._pending.append(row)
            closed = self._closed
            if self._thread is None and not closed:
                self._thread = threading.Thread(
                    target=self._run, name="threadline-access-log", daemon=True
                )
                self._thread.start()
        if closed:  # a read finishing during shutdown: no writer any more, store it now
            self.flush()
        else:
            self._queued.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._queued.wait()
            # let the reads of the next moment join this batch (a close ends the wait early)
            self._stopping.wait(self.interval)
            self._queued.clear()
            if not self.flush() and not self._stopping.wait(RETRY_SECONDS):
                self._queued.set()  # try the kept batch again, without waiting for a read

    def flush(self) -> bool:
        """Store every entry recorded so far; True once they are stored, False if the
        database refused (logged; the entries are kept and stored by the next flush)."""
        with self._storing:
            with self._pending_lock:
                batch, self._pending = self._pending, []
            if not batch:
                return True
            try:
                with self.db.transaction() as cur:
                    cur.executemany(
                        f"INSERT INTO access_log ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", batch
                    )
            except Exception as error:
                with self._pending_lock:
                    self._pending[:0] = batch
                log.warning(
                    "storing %d access log entries failed; kept for the next try",
                    len(batch),
                    exc_info=True,
                )
                if isinstance(error, CONNECTION_ERRORS):
                    recover_connections(self.db.recorder)
                return False
            return True

    def pending(self) -> int:
        """How many recorded reads are not stored yet."""
        with self._pending_lock:
            return len(self._pending)

    def close(self) -> bool:
        """Stop the writer and store what is left; True if the writer was running."""
        with self._pending_lock:
            self._closed = True
            thread, self._thread = self._thread, None
        self._stopping.set()
        self._queued.set()
        if thread is not None:
            thread.join(timeout=10)
        self.flush()
        return thread is not None

    def entries(self, query: AccessQuery) -> tuple[list[AccessEntry], int | None]:
        """A page of stored entries in id order (oldest first) and the id to page on from
        (None: this page is the last). Unflushed reads are not in it: flush first."""
        limit = max(1, min(query.limit, MAX_PAGE))
        where = (
            Conditions()
            .compare("id", ">", query.after)
            .equal([("actor", query.actor), ("kind", query.kind), ("target_id", query.target_id)])
            .compare("at", ">=", utc_ts(query.since))
            .compare("at", "<", utc_ts(query.until))
        )
        rows = self.db.query(
            f"SELECT id, {_COLUMNS} FROM access_log{where.where} ORDER BY id LIMIT ?",
            [*where.params, limit + 1],
        )
        page = [_entry(row) for row in rows[:limit]]
        return page, (page[-1].id if len(rows) > limit else None)


def _entry(row: dict[str, Any]) -> AccessEntry:
    return AccessEntry(
        id=int(row["id"]),
        at=str(row["at"]),
        actor=str(row["actor"]),
        role=str(row["role"]),
        kind=str(row["kind"]),
        target_id=str(row["target_id"]),
        via=str(row["via"]),
        path=str(row["path"]),
    )
