"""Turning `THREADLINE_DATABASE_URL` into the `eventsourcing` library's settings.

This is the one place that knows SQLite from PostgreSQL; everything else gets
an environment dictionary and lets the library pick its persistence module.

It also owns the two things several processes on one PostgreSQL database must
agree on: how many connections each of them may hold (`PoolBudget`, per role,
so five roles fit under the server's default limit of 100) and who may create
tables at a time (`schema_lock`, so roles started together cannot race on
``CREATE TABLE``).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlparse

log = logging.getLogger(__name__)

_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class StoreUrlError(ValueError):
    """The URL cannot be used; the message says what to write instead."""


def sqlite_path(url: str) -> str:
    """`sqlite:///var/x.db` → `var/x.db` (relative); `sqlite:////tmp/x.db` → `/tmp/x.db`."""
    path = url[len("sqlite:///") :]
    if not path:
        raise StoreUrlError("a SQLite URL names a file: sqlite:///var/threadline.db")
    return path


@dataclass(frozen=True)
class PoolBudget:
    """The PostgreSQL connections one pool of one process may hold.

    `pool_size` connections stay open (psycopg_pool's ``min_size``); up to
    `max_overflow` more are opened under load and closed again once unused for
    the idle time (one per interval, psycopg_pool's ``max_idle``).
    """

    pool_size: int
    max_overflow: int

    @property
    def per_pool(self) -> int:
        return self.pool_size + self.max_overflow

    @property
    def per_process(self) -> int:
        """Every connection a process may hold: its pools, plus the start-up lock's own."""
        return POOLS_PER_PROCESS * self.per_pool + 1


POOLS_PER_PROCESS = 2
"""The log's pool and the views' pool (on PostgreSQL the state store shares the views' pool)."""

ROLE_POOLS: dict[str, PoolBudget] = {
    # request threads read the views and write the log at once
    "serve": PoolBudget(2, 6),
    "api": PoolBudget(2, 6),
    # one thread reads the log and writes the views
    "projections": PoolBudget(1, 1),
    "views": PoolBudget(1, 1),
    # pollers, the delivery, webhook and campaign workers
    "channels": PoolBudget(1, 4),
    "delivery": PoolBudget(1, 3),
    # one runner thread, plus timers and date scans
    "triggers": PoolBudget(1, 2),
    # one-shot commands: users, rules, replay, demo
    "cli": PoolBudget(1, 3),
    "migrate": PoolBudget(1, 1),
}
"""Default pool sizes per role; `THREADLINE_DB_POOL_SIZE` / `_MAX_OVERFLOW` override them."""


MIN_PER_POOL = 2
"""A pool must lend two connections at once: code holding one (a view checking its stored
version inside its transaction) asks for another, and one alone would wait for itself."""


def pool_budget(
    role: str, pool_size: int | None = None, max_overflow: int | None = None
) -> PoolBudget:
    """The role's default budget, with whatever the settings fix explicitly.

    Overflow is raised, if need be, so each pool can lend `MIN_PER_POOL` connections.
    """
    default = ROLE_POOLS.get(role, ROLE_POOLS["serve"])
    size = default.pool_size if pool_size is None else pool_size
    overflow = default.max_overflow if max_overflow is None else max_overflow
    return PoolBudget(size, max(overflow, MIN_PER_POOL - size))


def application_name(role: str) -> str:
    """What `pg_stat_activity.application_name` shows for a process of this role."""
    return f"threadline-{role}"


def name_connections(role: str) -> None:
    """Label this process's PostgreSQL connections with its role (libpq reads ``PGAPPNAME``).

    The library passes a fixed set of connection parameters, so the role goes through
    libpq's own environment variable. Always replaced: a process started by another
    (the views child of `serve`, a worker started from a shell or a test) inherits the
    starter's name, which would hide which role holds which connections.
    """
    os.environ["PGAPPNAME"] = application_name(role)


def pooled(env: dict[str, str], budget: PoolBudget) -> dict[str, str]:
    """`env` with the budget's pool sizes (a SQLite environment is returned unchanged)."""
    if env.get("PERSISTENCE_MODULE") != "eventsourcing.postgres":
        return env
    return {
        **env,
        "POSTGRES_POOL_SIZE": str(budget.pool_size),
        "POSTGRES_MAX_OVERFLOW": str(budget.max_overflow),
    }


def tune_pool(idle_seconds: float, holder: Any) -> None:
    """Close overflow connections after `idle_seconds` unused, instead of psycopg_pool's 600.

    `holder` is a recorder or a factory (anything with a ``datastore``). psycopg_pool
    schedules its shrinking when the pool opens, with the ``max_idle`` of that moment,
    and each run re-schedules itself with the current one. The library opens the log's
    pool while constructing its recorder, so an open pool also gets a first shrink
    `idle_seconds` from now (its own first one, at 600 s, then runs at the new pace too).
    SQLite has no such pool and is left alone.
    """
    pool = getattr(getattr(holder, "datastore", None), "pool", None)
    if pool is None or not hasattr(pool, "max_idle"):
        return
    pool.max_idle = idle_seconds
    if getattr(pool, "_opened", False):
        from psycopg_pool.pool import ShrinkPool

        pool.schedule_task(ShrinkPool(pool), idle_seconds)


def library_env(url: str) -> dict[str, str]:
    """The environment the library's `InfrastructureFactory` reads for this URL."""
    if url.startswith("sqlite:///"):
        path = Path(sqlite_path(url))
        path.parent.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(path),
            "SQLITE_LOCK_TIMEOUT": "30",
        }
    if url.startswith(("postgresql://", "postgres://")):
        parsed = urlparse(url)
        if not parsed.hostname or not parsed.path.strip("/"):
            raise StoreUrlError("a PostgreSQL URL is postgresql://user:pass@host:port/database")
        schema = (parse_qs(parsed.query).get("schema") or ["public"])[0]
        if not _SCHEMA_RE.match(schema):
            raise StoreUrlError(f"schema {schema!r} must be lower-case letters, digits and _")
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": parsed.path.strip("/"),
            "POSTGRES_HOST": parsed.hostname,
            "POSTGRES_PORT": str(parsed.port or 5432),
            "POSTGRES_USER": unquote(parsed.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parsed.password or ""),
            "POSTGRES_SCHEMA": schema,
            "POSTGRES_POOL_SIZE": str(ROLE_POOLS["serve"].pool_size),
            "POSTGRES_MAX_OVERFLOW": str(ROLE_POOLS["serve"].max_overflow),
            "POSTGRES_CONNECT_TIMEOUT": "10",
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "30",
            # The library's recorder, sending a batch's rows as executemany (see the module).
            "APPLICATION_RECORDER_TOPIC": "threadline.domain.infrastructure.postgres_recorder:BatchInsertRecorder",
        }
    raise StoreUrlError(
        f"unsupported database URL {url!r}: use sqlite:///path.db or postgresql://..."
    )


def default_views_url(database_url: str) -> str:
    """Views beside the log: a sibling SQLite file, or the same PostgreSQL database."""
    if database_url.startswith("sqlite:///"):
        path = sqlite_path(database_url)
        stem = path[:-3] if path.endswith(".db") else path
        return f"sqlite:///{stem}-views.db"
    return database_url


_AS_OF_FILE = re.compile(r"-until-[0-9]+$")
_AS_OF_SCHEMA = re.compile(r"_until_[0-9]+$")


def views_url_as_of(views_url: str, position: int) -> str:
    """Where `threadline replay --until` builds the views as of `position`: a sibling SQLite
    file (`...-views-until-N.db`), or a schema of its own in the same PostgreSQL database
    (`<schema>_until_N`); the live views stay where they are."""
    if views_url.startswith("sqlite:///"):
        path = sqlite_path(views_url)
        stem = path[:-3] if path.endswith(".db") else path
        return f"sqlite:///{stem}-until-{position}.db"
    parsed = urlparse(views_url)
    query = parse_qs(parsed.query)
    schema = (query.get("schema") or ["public"])[0]
    query["schema"] = [f"{schema}_until_{position}"]
    return parsed._replace(query=urlencode(query, doseq=True)).geturl()


def state_url_for(views_url: str) -> str:
    """Poller cursors, trigger positions and inbox secrets: their own SQLite file.

    They are written by the serving process while the views process writes the views; in
    one SQLite file those writers would make each other's transactions fail with "database
    is locked" (a read transaction cannot be upgraded once another connection committed).
    PostgreSQL has no such problem, so there it is the views' database.

    Views a `replay --until` built (`views_url_as_of`) share the live views' state: a
    server browsing them read-only needs the same users, secrets and pseudonym key.
    """
    if views_url.startswith("sqlite:///"):
        path = sqlite_path(views_url)
        stem = path[:-3] if path.endswith(".db") else path
        stem = _AS_OF_FILE.sub("", stem)
        stem = stem[: -len("-views")] if stem.endswith("-views") else stem
        return f"sqlite:///{stem}-state.db"
    parsed = urlparse(views_url)
    query = parse_qs(parsed.query)
    schema = (query.get("schema") or [""])[0]
    if _AS_OF_SCHEMA.search(schema):
        query["schema"] = [_AS_OF_SCHEMA.sub("", schema)]
        return parsed._replace(query=urlencode(query, doseq=True)).geturl()
    return views_url


def _connect(env: dict[str, str]) -> Any:
    import psycopg

    return psycopg.connect(
        dbname=env["POSTGRES_DBNAME"],
        host=env["POSTGRES_HOST"],
        port=int(env["POSTGRES_PORT"]),
        user=env["POSTGRES_USER"],
        password=env["POSTGRES_PASSWORD"] or None,
        autocommit=True,
        connect_timeout=10,
    )


def ensure_schema(url: str) -> None:
    """Create the PostgreSQL schema named in the URL, if any (the library does not)."""
    with schema_lock(url):
        pass


SCHEMA_LOCK_CLASS = 0x7E4D
"""First key of Threadline's advisory locks; the second is a hash of the schema name."""
START_LOCK = 1
"""`schema_lock`: one process at a time creates or upgrades the tables (a session lock).

(`threadline.projections.sql` takes kind 2 in a transaction around later DDL.)"""


def lock_key(schema: str, kind: int) -> tuple[int, int]:
    """The two int4 keys of an advisory lock of `kind` on `schema`.

    ``pg_advisory_lock(int, int)``: the first key is fixed to Threadline and the kind,
    the second is the schema's CRC, so test schemas on one server do not wait for each other.
    """
    import zlib

    second = zlib.crc32(schema.encode()) & 0x7FFFFFFF
    return SCHEMA_LOCK_CLASS * 16 + kind, second


@contextmanager
def schema_locks(*urls: str) -> Iterator[None]:
    """Hold the start-up lock of each distinct database in `urls`, in the order given
    (the log's first, then the views' when they live elsewhere), so every role takes
    them in the same order."""
    with ExitStack() as locks:
        for url in dict.fromkeys(urls):
            locks.enter_context(schema_lock(url))
        yield


@contextmanager
def schema_lock(url: str) -> Iterator[None]:
    """Hold the schema's start-up lock: create the schema, then let the caller create tables.

    Roles started together each create the same tables (the library's event and
    tracking tables, every view, the state tables). PostgreSQL's ``IF NOT EXISTS``
    does not make that safe: two concurrent creators fail with "duplicate key value
    violates unique constraint pg_type_typname_nsp_index" or "tuple concurrently
    updated". A session advisory lock on a connection of its own makes them take
    turns; the second finds everything there. SQLite has one writer anyway: no-op.
    """
    env = library_env(url)
    if env["PERSISTENCE_MODULE"] != "eventsourcing.postgres":
        yield
        return
    schema = env["POSTGRES_SCHEMA"]
    first, second = lock_key(schema, START_LOCK)
    with _connect(env) as conn:
        conn.execute("SELECT pg_advisory_lock(%s, %s)", (first, second))
        try:
            if schema != "public":
                conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            yield
        finally:
            try:
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", (first, second))
            except Exception:  # the connection is gone: so is its lock
                log.debug("releasing the schema lock failed", exc_info=True)
