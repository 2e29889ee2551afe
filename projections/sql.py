"""One small SQL surface over the library's SQLite and PostgreSQL datastores.

Views are written once, in the SQL both databases share (``?`` placeholders,
``INSERT ... ON CONFLICT``, TEXT/BIGINT/DOUBLE PRECISION columns). This module
translates placeholders and row shapes and writes the library's tracking row
in the same transaction as the view rows, which is what makes each event
apply exactly once.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Protocol

from eventsourcing.persistence import Tracking, TrackingRecorder

from threadline.domain.infrastructure.store_access import CONNECTION_ERRORS, recover_connections

_PLACEHOLDER = re.compile(r"\?")
_DDL = re.compile(r"\s*(CREATE|ALTER|DROP)\s", re.IGNORECASE)
DDL_LOCK_CLASS = 0x7E4D * 16 + 2
"""The first key of the advisory lock DDL takes (`threadline.services.store` uses kind 1)."""


@lru_cache(maxsize=64)
def ddl_lock_statement(schema: str) -> str:
    """The transaction lock one schema's DDL takes before its first statement.

    Concurrent ``CREATE ... IF NOT EXISTS`` from several processes (a table made on
    first use, such as the web sessions) would otherwise fail on PostgreSQL's
    catalogue ("duplicate key value violates unique constraint"); with the lock they
    take turns and the second finds the table.
    """
    key = zlib.crc32(schema.encode()) & 0x7FFFFFFF
    return f"SELECT pg_advisory_xact_lock({DDL_LOCK_CLASS}, {key})"


class ViewReader(Protocol):
    """What a typed reader needs of the view database: reads, nothing else.

    Every reader in `threadline.projections` takes one of these as its first
    argument, so a caller passes `runtime.views` (a `ViewDatabase`) or anything
    narrower and never writes SQL against a view table itself.
    """

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None: ...


def row_count(db: ViewReader, table: str) -> int:
    """How many rows a view table has (a pager's total); `table` is a name the caller owns."""
    row = db.query_one(f"SELECT COUNT(*) AS n FROM {table}")
    return int(row["n"]) if row else 0


def table_rows(db: ViewReader, table: str, order_by: str) -> list[dict[str, Any]]:
    """Every row of a view table, every column, in `order_by` order: to compare two builds of
    a view (a rebuild page by page against one in a single page). Readers for the app are
    typed, one per question; this one is for checks that must see everything."""
    return db.query(f"SELECT * FROM {table} ORDER BY {order_by}")


def searchable(text: str) -> str:
    """Text typed in a search box, made safe for ``LIKE '%...%'``: wildcards are searched for as
    nothing (``%`` and ``_`` would match anything), and so is a NUL, which PostgreSQL refuses
    in any text (a 500 otherwise)."""
    return text.replace("\\", "").replace("%", "").replace("_", "").replace("\x00", "")


class Conditions:
    """A WHERE clause built from optional filters: a filter that is None adds nothing."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.params: list[Any] = []

    def compare(self, column: str, op: str, value: Any) -> Conditions:
        """``column op ?`` when `value` is given; `column` and `op` are the caller's own text."""
        if value is not None:
            self.clauses.append(f"{column} {op} ?")
            self.params.append(value)
        return self

    def equal(self, pairs: Iterable[tuple[str, Any]]) -> Conditions:
        for column, value in pairs:
            self.compare(column, "=", value)
        return self

    def add(self, clause: str, params: Sequence[Any]) -> Conditions:
        self.clauses.append(clause)
        self.params.extend(params)
        return self

    @property
    def where(self) -> str:
        return (" WHERE " + " AND ".join(self.clauses)) if self.clauses else ""


ID_CHUNK = 400
"""Ids per `IN (...)` list (SQLite's default limit on parameters is 999)."""


def rows_with_ids(db: ViewReader, select: str, ids: Iterable[str]) -> list[dict[str, Any]]:
    """`select ... WHERE id IN ids`, in chunks (for the readers of this package)."""
    wanted = sorted(ids)
    rows: list[dict[str, Any]] = []
    for start in range(0, len(wanted), ID_CHUNK):
        chunk = wanted[start : start + ID_CHUNK]
        marks = ",".join("?" * len(chunk))
        rows.extend(db.query(f"{select} WHERE id IN ({marks})", chunk))
    return rows


class ViewCursor:
    """A cursor that accepts ``?`` placeholders on both databases and returns dict rows."""

    def __init__(self, raw: Any, postgres: bool, ddl_lock: str | None = None) -> None:
        self.raw = raw
        self.postgres = postgres
        # Taken before this transaction's first DDL statement (PostgreSQL only).
        self._ddl_lock = ddl_lock

    def execute(self, sql: str, params: Sequence[Any] = ()) -> ViewCursor:
        if self.postgres:
            if self._ddl_lock is not None and _DDL.match(sql):
                self.raw.execute(self._ddl_lock)
                self._ddl_lock = None
            sql = _PLACEHOLDER.sub("%s", sql.replace("%", "%%"))
        self.raw.execute(sql, tuple(params))
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if self.postgres:
            sql = _PLACEHOLDER.sub("%s", sql.replace("%", "%%"))
        self.raw.executemany(sql, [tuple(r) for r in rows])

    def fetchall(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self.raw.fetchall()]

    def fetchone(self) -> dict[str, Any] | None:
        row = self.raw.fetchone()
        return None if row is None else dict(row)

    @property
    def rowcount(self) -> int:
        return int(self.raw.rowcount)


class ViewDatabase:
    """The database the views live in, reached through a library tracking recorder."""

    def __init__(self, recorder: TrackingRecorder) -> None:
        self.recorder: Any = recorder
        self.postgres = any(  # (a recorder of ours may subclass the library's)
            cls.__module__.startswith("eventsourcing.postgres") for cls in type(recorder).__mro__
        )

    @property
    def tracking_table(self) -> str:
        return str(getattr(self.recorder, "tracking_table_name", "tracking"))

    @contextmanager
    def transaction(self, commit: bool = True) -> Iterator[ViewCursor]:
        with self.recorder.datastore.transaction(commit=commit) as raw:
            if not self.postgres:
                yield ViewCursor(raw, postgres=False)
                return
            schema = self.recorder.datastore.schema.replace('"', "")
            raw.execute(f'SET LOCAL search_path TO "{schema}"')
            yield ViewCursor(raw, postgres=True, ddl_lock=ddl_lock_statement(schema))

    @contextmanager
    def pipelined(self, cur: ViewCursor) -> Iterator[ViewCursor]:
        """PostgreSQL pipeline mode: send a page's statements without waiting for each answer.

        A page of events becomes a few round trips instead of one per statement. Reads
        inside still work (they wait for their own answer). The tracking row is written
        after the pipeline closes, with the library's own (prepared) statement.
        """
        if not self.postgres:
            yield cur
            return
        connection = cur.raw.connection
        with connection.pipeline():
            yield ViewCursor(connection.cursor(), postgres=True)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a read; a read that finds its pooled connection dead is tried once more.

        After a PostgreSQL restart every idle connection in the pool is dead. A read
        changes nothing, so it is safe to replace them and ask again: the reader sees
        an answer instead of an error. A database that is still down raises again.
        """
        try:
            return self._query(sql, params)
        except CONNECTION_ERRORS:
            recover_connections(self.recorder)
            return self._query(sql, params)

    def _query(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        with self.transaction(commit=False) as cur:
            return cur.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def create_schema(self, statements: Sequence[str]) -> None:
        """Run `CREATE ... IF NOT EXISTS` statements in one transaction.

        On PostgreSQL the transaction takes the schema's DDL lock first (see
        `ddl_lock_statement`), so processes creating the same tables at once take turns.
        """
        with self.transaction() as cur:
            for statement in statements:
                cur.execute(statement)

    def setting(self, name: str) -> str | None:
        """A PostgreSQL run-time setting as this database's connections see it
        (``application_name``...); None on SQLite, which has none."""
        if not self.postgres:
            return None
        row = self.query_one("SELECT current_setting(?) AS value", [name])
        return None if row is None else str(row["value"])

    def insert_tracking(self, cur: ViewCursor, tracking: Tracking) -> None:
        self.recorder._insert_tracking(cur.raw, tracking)

    def position(self, name: str) -> int:
        return int(self.recorder.max_tracking_id(name) or 0)

    def lowest_position(self, names: Sequence[str]) -> int:
        """The lowest tracked position of the named views, in one query (not one per view)."""
        if not names:
            return 0
        rows = self.query(
            f"SELECT application_name, MAX(notification_id) AS position"
            f" FROM {self.tracking_table}"
            f" WHERE application_name IN ({', '.join('?' for _ in names)})"
            " GROUP BY application_name",
            list(names),
        )
        found = {row["application_name"]: int(row["position"] or 0) for row in rows}
        return min(found.get(name, 0) for name in names)

    def locked_position(self, cur: ViewCursor, name: str) -> int:
        """The view's tracked position, read inside the batch's transaction (and locked)."""
        lock = " FOR UPDATE" if self.postgres else ""
        row = cur.execute(
            f"SELECT notification_id FROM {self.tracking_table} WHERE application_name = ?{lock}",
            [name],
        ).fetchone()
        return int(row["notification_id"]) if row else 0

    def forget_position(self, cur: ViewCursor, name: str) -> None:
        cur.execute(f"DELETE FROM {self.tracking_table} WHERE application_name = ?", [name])
