"""Reading many aggregates' events in one round trip.

The library reads one aggregate per query. Group commit processes dozens of
inbound messages at once, and each needs its message id checked for a
duplicate, its identities looked up and its contact and conversation loaded:
one query per batch instead of five per message is what lets ingest beat a
plain INSERT per message. Only reads live here; every write goes through the
library's `Application.save`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from eventsourcing.persistence import AggregateRecorder, StoredEvent

_SQLITE_CHUNK = 500


def select_events_of_many(
    recorder: AggregateRecorder, ids: Iterable[UUID]
) -> dict[UUID, list[StoredEvent]]:
    """Return every stored event of each given aggregate id, in version order."""
    wanted = list(dict.fromkeys(ids))
    found: dict[UUID, list[StoredEvent]] = defaultdict(list)
    if not wanted:
        return found
    modules = {cls.__module__ for cls in type(recorder).__mro__}
    if "eventsourcing.postgres" in modules:
        _select_postgres(recorder, wanted, found)
    elif "eventsourcing.sqlite" in modules:
        _select_sqlite(recorder, wanted, found)
    else:  # any other recorder: fall back to one query per aggregate
        for aggregate_id in wanted:
            events = list(recorder.select_events(aggregate_id))
            if events:
                found[aggregate_id] = events
    return found


def _select_sqlite(recorder: Any, wanted: list[UUID], found: dict[UUID, list[StoredEvent]]) -> None:
    table = recorder.events_table_name
    with recorder.datastore.transaction(commit=False) as curs:
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
    recorder: Any, wanted: list[UUID], found: dict[UUID, list[StoredEvent]]
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
    with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
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
