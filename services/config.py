"""Every `THREADLINE_*` setting in one place, read from the environment.

The README's configuration table is generated from `SETTINGS` below, so the
documentation cannot drift from what the code reads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

SETTINGS: list[tuple[str, str, str]] = [
    (
        "THREADLINE_DATABASE_URL",
        "sqlite:///var/threadline.db",
        "The event store: `sqlite:///relative/path.db`, `sqlite:////absolute/path.db` or "
        "`postgresql://user:pass@host:port/db[?schema=name]`. The folder of a SQLite file is created.",
    ),
    (
        "THREADLINE_VIEWS_URL",
        "(derived)",
        "Where the read models live. Default: beside the store (`<db>-views.db` for SQLite, the "
        "same database and schema for PostgreSQL).",
    ),
    (
        "THREADLINE_ADMIN_TOKEN",
        "(unset)",
        "A bearer token that acts as an admin; bootstraps a fresh install. Leave unset in production "
        "once real admin accounts exist.",
    ),
    ("THREADLINE_HOST", "127.0.0.1", "Address `threadline serve` listens on."),
    ("THREADLINE_PORT", "8000", "Port `threadline serve` listens on."),
    (
        "THREADLINE_MAX_BODY_BYTES",
        "1048576",
        "Largest request body accepted; larger bodies are answered 413.",
    ),
    (
        "THREADLINE_DEFAULT_REGION",
        "(unset)",
        "ISO country code used to read phone numbers written without a country code (e.g. `RU`).",
    ),
    (
        "THREADLINE_READ_YOUR_WRITES_TIMEOUT",
        "2.0",
        "Seconds a write request waits for the views to show its change before answering.",
    ),
    ("THREADLINE_LOG_LEVEL", "INFO", "Python logging level."),
    (
        "THREADLINE_REQUIRE_SERVICES",
        "(unset)",
        "Tests only: when `1`, a test whose real service (PostgreSQL) is missing fails instead of "
        "skipping. `.ci/run` sets it.",
    ),
    (
        "THREADLINE_TEST_POSTGRES_URL",
        "postgresql://postgres@127.0.0.1:5432/test",
        "Tests only: the PostgreSQL server the store tests run against (each run in its own schema).",
    ),
]


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///var/threadline.db"
    views_url: str | None = None
    admin_token: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 1_048_576
    default_region: str | None = None
    read_your_writes_timeout: float = 2.0
    log_level: str = "INFO"
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        try:
            return cls(
                database_url=get("THREADLINE_DATABASE_URL") or cls.database_url,
                views_url=get("THREADLINE_VIEWS_URL"),
                admin_token=get("THREADLINE_ADMIN_TOKEN"),
                host=get("THREADLINE_HOST") or cls.host,
                port=int(get("THREADLINE_PORT") or cls.port),
                max_body_bytes=int(get("THREADLINE_MAX_BODY_BYTES") or cls.max_body_bytes),
                default_region=(get("THREADLINE_DEFAULT_REGION") or "").upper() or None,
                read_your_writes_timeout=float(
                    get("THREADLINE_READ_YOUR_WRITES_TIMEOUT") or cls.read_your_writes_timeout
                ),
                log_level=(get("THREADLINE_LOG_LEVEL") or cls.log_level).upper(),
            )
        except ValueError as error:
            raise SystemExit(f"invalid THREADLINE_* setting: {error}") from None

    def with_overrides(self, **changes: object) -> Settings:
        from dataclasses import replace

        return replace(self, **changes)  # type: ignore[arg-type]


def project_root() -> Path:
    return Path.cwd()
