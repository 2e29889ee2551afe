"""Reading many aggregates' events in one round trip.

The library reads one aggregate per query. Group commit processes dozens of
inbound messages at once, and each needs its message id checked for a
duplicate, its identities looked up and its contact and conversation loaded:
one query per batch instead of five per message is what lets ingest beat a
plain INSERT per message. Only reads live here; every write goes through the
library's `Application.save`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    AggregateRecorder,
    InterfaceError,
    OperationalError,
    StoredEvent,
)

log = logging.getLogger(__name__)
_SQLITE_CHUNK = 500

CONNECTION_ERRORS = (OperationalError, InterfaceError)
"""What the library raises when the database went away (restart, failover, a killed session)."""


def recover_connections(*recorders: Any) -> None:
    """After a connection error: test every idle pooled connection, replace the dead ones.

    A PostgreSQL restart kills every connection in the pool at once, and each
    would otherwise fail one more command before the pool noticed it. (The pool's
    check-on-checkout is no help: it waits a backing-off second or more per dead
    connection.) SQLite has no pool to check.
    """
    pools = {
        id(p): p for r in recorders if (p := getattr(getattr(r, "datastore", None), "pool", None))
    }
    for pool in pools.values():
        check = getattr(pool, "check", None)
        if callable(check):
            try:
                check()
            except Exception:  # the database is still down: the caller's retry says so
                log.warning("connections could not be checked", exc_info=True)


def select_events_of_many(
    recorder: AggregateRecorder, ids: Iterable[UUID], session: Any = None
) -> dict[UUID, list[StoredEvent]]:
    """Return every stored event of each given aggregate id, in version order.

    `session` is what `read_session` yields: several selects then share one
    connection (and, on SQLite, one read transaction) instead of taking their own.
    """
    wanted = list(dict.fromkeys(ids))
    found: dict[UUID, list[StoredEvent]] = defaultdict(list)
    if not wanted:
        return found
    kind = _kind(recorder)
    if session is None and kind != "other":
        with read_session(recorder) as own:
            return select_events_of_many(recorder, wanted, own)
    if kind == "postgres":
        _select_postgres(recorder, session, wanted, found)
    elif kind == "sqlite":
        _select_sqlite(recorder, session, wanted, found)
    else:  # any other recorder: fall back to one query per aggregate
        for aggregate_id in wanted:
            events = list(recorder.select_events(aggregate_id))
            if events:
                found[aggregate_id] = events
    return found


@contextmanager
def read_session(recorder: AggregateRecorder) -> Iterator[Any]:
    """A connection (PostgreSQL) or a read transaction (SQLite) for several selects.

    A group-commit batch loads its aggregates in three or four rounds; taking the
    connection and opening the transaction once saves a tenth of the writer's time.
    """
    kind = _kind(recorder)
    datastore: Any = getattr(recorder, "datastore", None)
    if kind == "postgres":
        with datastore.get_connection() as connection:
            yield connection
    elif kind == "sqlite":
        with datastore.transaction(commit=False) as cursor:
            yield cursor
    else:
        yield None


def _kind(recorder: AggregateRecorder) -> str:
    modules = {cls.__module__ for cls in type(recorder).__mro__}
    if "eventsourcing.postgres" in modules:
        return "postgres"
    if "eventsourcing.sqlite" in modules:
        return "sqlite"
    return "other"


def _select_sqlite(
    recorder: Any, curs: Any, wanted: list[UUID], found: dict[UUID, list[StoredEvent]]
) -> None:
    table = recorder.events_table_name
    for start in range(0, len(wanted), _SQLITE_CHUNK):
        chunk = wanted[start : start + _SQLITE_CHUNK]
        marks = ",".join("?" * len(chunk))
        curs.execute(
            f"SELECT originator_id, originator_version, topic, state FROM {table} "
            f"WHERE originator_id IN ({marks}) ORDER BY originator_id, originator_version",
            [aggregate_id.hex for aggregate_id in chunk],
        )
        for row in curs.fetchall():
            originator_id = UUID(row["originator_id"])
            found[originator_id].append(
                StoredEvent(
                    originator_id=originator_id,
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=row["state"],
                )
            )


def _select_postgres(
    recorder: Any, conn: Any, wanted: list[UUID], found: dict[UUID, list[StoredEvent]]
) -> None:
    from psycopg.sql import SQL, Identifier

    statement = SQL(
        "SELECT originator_id, originator_version, topic, state FROM {schema}.{table} "
        "WHERE originator_id = ANY(%s::{id_type}[]) ORDER BY originator_id, originator_version"
    ).format(
        schema=Identifier(recorder.datastore.schema),
        table=Identifier(recorder.events_table_name),
        id_type=Identifier(recorder.datastore.originator_id_type),
    )
    # One text literal: psycopg dumps a list of UUIDs element by element in Python.
    literal = "{" + ",".join(str(aggregate_id) for aggregate_id in wanted) + "}"
    with conn.cursor() as curs:
        curs.execute(statement, [literal], prepare=True)
        for row in curs.fetchall():
            originator_id = row["originator_id"]
            if not isinstance(originator_id, UUID):
                originator_id = UUID(str(originator_id))
            found[originator_id].append(
                StoredEvent(
                    originator_id=originator_id,
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
            )
