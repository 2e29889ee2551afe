"""The PostgreSQL application recorder, with a cheaper way to send a batch of events.

The library sends a transaction's events as one array of a composite type
(``unnest(%s::stored_event_uuid[])``). psycopg turns each row of that array into
text in Python, escaping every byte of every state: measured here, 4.0 ms for a
batch of 50 events against 1.1 ms for the same rows sent as ``executemany`` in
pipeline mode, where each state travels as a binary parameter. Group commit
saves about fifty events per transaction, so this is a third of the writer's
time on PostgreSQL.

Everything else is the library's own: the same table, the same ``EXCLUSIVE``
table lock that makes commit order equal notification order, the same
``NOTIFY``, the same transaction and error handling (a duplicate
``(originator_id, originator_version)`` still fails the whole transaction with
the library's `IntegrityError`). Selected with the library's
``APPLICATION_RECORDER_TOPIC`` setting (see `threadline.services.store`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import ProgrammingError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier


class BatchInsertRecorder(PostgresApplicationRecorder):
    """`PostgresApplicationRecorder` that inserts a transaction's rows with ``executemany``."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        self.insert_row_statement = SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state)"
            " VALUES (%s, %s, %s, %s) RETURNING notification_id"
        ).format(
            schema=Identifier(self.datastore.schema),
            table=Identifier(self.events_table_name),
        )

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **_: Any
    ) -> None:
        self._lock_table(curs)
        self._notify_channel(curs)
        curs.executemany(
            self.insert_row_statement,
            [(e.originator_id, e.originator_version, e.topic, e.state) for e in stored_events],
            returning=True,
        )

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **_: Any
    ) -> Sequence[int] | None:
        notification_ids: list[int] = []
        while True:
            # The lock and NOTIFY statements share the cursor: skip their row-less results.
            if curs.description is not None:
                row = curs.fetchone()
                if row is not None:
                    notification_ids.append(row["notification_id"])
            if not curs.nextset():
                break
        if len(notification_ids) != len(stored_events):
            raise ProgrammingError(
                f"got {len(notification_ids)} notification ids for {len(stored_events)} events"
            )
        return notification_ids
