"""Turning `THREADLINE_DATABASE_URL` into the `eventsourcing` library's settings.

This is the one place that knows SQLite from PostgreSQL; everything else gets
an environment dictionary and lets the library pick its persistence module.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class StoreUrlError(ValueError):
    """The URL cannot be used; the message says what to write instead."""


def sqlite_path(url: str) -> str:
    """`sqlite:///var/x.db` → `var/x.db` (relative); `sqlite:////tmp/x.db` → `/tmp/x.db`."""
    path = url[len("sqlite:///") :]
    if not path:
        raise StoreUrlError("a SQLite URL names a file: sqlite:///var/threadline.db")
    return path


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
            "POSTGRES_POOL_SIZE": "8",
            "POSTGRES_MAX_OVERFLOW": "16",
            "POSTGRES_CONNECT_TIMEOUT": "10",
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "30",
            # The library's recorder, sending a batch's rows as executemany (see the module).
            "APPLICATION_RECORDER_TOPIC": "threadline.domain.postgres_recorder:BatchInsertRecorder",
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


def state_url_for(views_url: str) -> str:
    """Poller cursors, trigger positions and inbox secrets: their own SQLite file.

    They are written by the serving process while the views process writes the views; in
    one SQLite file those writers would make each other's transactions fail with "database
    is locked" (a read transaction cannot be upgraded once another connection committed).
    PostgreSQL has no such problem, so there it is the views' database.
    """
    if views_url.startswith("sqlite:///"):
        path = sqlite_path(views_url)
        stem = path[:-3] if path.endswith(".db") else path
        stem = stem[: -len("-views")] if stem.endswith("-views") else stem
        return f"sqlite:///{stem}-state.db"
    return views_url


def ensure_schema(url: str) -> None:
    """Create the PostgreSQL schema named in the URL, if any (the library does not)."""
    env = library_env(url)
    if env["PERSISTENCE_MODULE"] != "eventsourcing.postgres" or env["POSTGRES_SCHEMA"] == "public":
        return
    import psycopg

    with psycopg.connect(
        dbname=env["POSTGRES_DBNAME"],
        host=env["POSTGRES_HOST"],
        port=int(env["POSTGRES_PORT"]),
        user=env["POSTGRES_USER"],
        password=env["POSTGRES_PASSWORD"] or None,
        autocommit=True,
        connect_timeout=10,
    ) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{env["POSTGRES_SCHEMA"]}"')
