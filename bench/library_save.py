"""The `eventsourcing` library's own save rate against raw INSERTs, on one database.

Issue 2 calibrates its ingest targets with this measurement: "the library saves
one event per call at 0.07x (SQLite) and 0.4x (PostgreSQL) of that baseline, but a
hundred events per call at about 1.1x and 9x". The baseline is one plain INSERT
per transaction, and the issue does not say from how many connections, which
changes the PostgreSQL baseline by more than 2x (PostgreSQL group-commits
concurrent transactions itself). This script measures both, in one run, so the
calibration can be read on the machine at hand:

1. `Application.save` of a new one-event aggregate, N times, one after another;
2. `Application.save` of a hundred such aggregates per call;
3. N raw ``BEGIN; INSERT; COMMIT`` from one connection, then from 32 threads
   with a connection each (the `ingest.py` baseline),

and prints one JSON object per figure on stdout.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

BODY = "x" * 500  # about the size of an inbound message's body in ingest.py


class Note(Aggregate):
    """The smallest aggregate: created with one body, one event."""

    @event("Written")
    def __init__(self, body: str) -> None:
        self.body = body


def emit(**fields: Any) -> None:
    print(json.dumps({"bench": "library_save", **fields}), flush=True)


def timed(count: int, work: Callable[[], None]) -> float:
    started = time.perf_counter()
    work()
    return count / (time.perf_counter() - started)


def raw_inserts(connect: Callable[[], Any], insert: str, count: int, threads: int) -> float:
    """`count` one-row transactions from `threads` threads, each on its own connection."""
    rows = [(uuid.uuid4().hex, BODY) for _ in range(count)]
    connections = [connect() for _ in range(threads)]

    def work(index: int) -> None:
        connection = connections[index]
        for row in rows[index::threads]:
            connection.execute("BEGIN")
            connection.execute(insert, row)
            connection.execute("COMMIT")

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    rate = count / (time.perf_counter() - started)
    for connection in connections:
        connection.close()
    return rate


def save_one_per_call(app: Application[uuid.UUID], count: int) -> None:
    for _ in range(count):
        app.save(Note(BODY))


def save_hundred_per_call(app: Application[uuid.UUID], calls: int) -> None:
    for _ in range(calls):
        app.save(*[Note(BODY) for _ in range(100)])


def measure(backend: str, env: dict[str, str], connect: Callable[[], Any], count: int) -> None:
    app: Application[uuid.UUID] = Application(env=env)
    one = timed(count, lambda: save_one_per_call(app, count))
    hundred = timed(count // 100 * 100, lambda: save_hundred_per_call(app, count // 100))
    app.close()
    setup = connect()
    placeholder = "?" if backend == "sqlite" else "%s"
    setup.execute("CREATE TABLE library_save_baseline (id TEXT PRIMARY KEY, body TEXT)")
    insert = f"INSERT INTO library_save_baseline VALUES ({placeholder}, {placeholder})"
    single = raw_inserts(connect, insert, count, 1)
    setup.execute("DELETE FROM library_save_baseline")
    concurrent = raw_inserts(connect, insert, count, 32)
    setup.execute("DROP TABLE library_save_baseline")
    setup.close()
    emit(backend=backend, figure="save_one_event_per_call_per_s", value=round(one, 1))
    emit(backend=backend, figure="save_hundred_events_per_call_per_s", value=round(hundred, 1))
    emit(backend=backend, figure="raw_insert_one_connection_per_s", value=round(single, 1))
    emit(backend=backend, figure="raw_insert_32_connections_per_s", value=round(concurrent, 1))
    for label, base in (("one_connection", single), ("32_connections", concurrent)):
        emit(
            backend=backend,
            figure=f"ratio_vs_{label}",
            one_event_per_call=round(one / base, 2),
            hundred_events_per_call=round(hundred / base, 2),
        )


def sqlite_run(count: int) -> None:
    path = f"{tempfile.mkdtemp(prefix='threadline-library-save-')}/store.db"
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path}

    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=30
        )
        connection.execute("PRAGMA journal_mode=WAL")
        return connection

    measure("sqlite", env, connect, count)


def postgres_run(count: int, dbname: str, host: str, port: int, user: str) -> None:
    import psycopg

    schema = f"library_save_{uuid.uuid4().hex[:8]}"
    conninfo = f"dbname={dbname} host={host} port={port} user={user}"
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": dbname,
        "POSTGRES_HOST": host,
        "POSTGRES_PORT": str(port),
        "POSTGRES_USER": user,
        "POSTGRES_PASSWORD": "",
        "POSTGRES_SCHEMA": schema,
    }

    def connect() -> Any:
        connection = psycopg.connect(conninfo, autocommit=True)
        connection.execute(f"SET search_path TO {schema}")
        return connection

    try:
        measure("postgres", env, connect, count)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=3000, help="events (and rows) per figure")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--postgres-db", default="test")
    parser.add_argument("--postgres-host", default="127.0.0.1")
    parser.add_argument("--postgres-port", type=int, default=5432)
    parser.add_argument("--postgres-user", default="postgres")
    args = parser.parse_args(argv)
    if args.events < 100:
        parser.error("--events must be at least 100")
    if args.backend in ("sqlite", "both"):
        sqlite_run(args.events)
    if args.backend in ("postgres", "both"):
        postgres_run(
            args.events,
            args.postgres_db,
            args.postgres_host,
            args.postgres_port,
            args.postgres_user,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
