"""Shared fixtures: a Threadline runtime on SQLite and, for the store tests, on PostgreSQL.

PostgreSQL comes from the machine's running server; every test gets its own
schema, dropped afterwards, so parallel runs never see each other. Without the
server the PostgreSQL variants skip, unless THREADLINE_REQUIRE_SERVICES=1
(CI), where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from threadline.services.config import Settings
from threadline.services.runtime import Runtime

# Property tests check behaviour, not speed: on a loaded two-core machine a slow example is
# not a failure (the benchmarks in bench/ measure speed).
settings.register_profile("threadline", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("threadline")

POSTGRES_URL = os.environ.get(
    "THREADLINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REQUIRE_SERVICES = os.environ.get("THREADLINE_REQUIRE_SERVICES") == "1"


def postgres_available() -> str | None:
    """None when the server answers, else why not."""
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as error:
        return str(error)
    return None


def need_postgres() -> None:
    reason = postgres_available()
    if reason is None:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"PostgreSQL is required (THREADLINE_REQUIRE_SERVICES=1): {reason}")
    pytest.skip(f"PostgreSQL not available: {reason}")


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """A PostgreSQL URL with a fresh schema of its own, dropped after the test."""
    need_postgres()
    import psycopg

    schema = f"tl_test_{uuid.uuid4().hex[:12]}"
    yield f"{POSTGRES_URL}?schema={schema}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The store URL, once per backend: tests using it run on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/threadline.db"
        return
    yield request.getfixturevalue("postgres_schema_url")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/threadline.db"


def make_runtime(url: str, **overrides: object) -> Runtime:
    settings = Settings(database_url=url).with_overrides(**overrides)
    runtime = Runtime(settings)
    runtime.start()
    return runtime


@pytest.fixture
def runtime(database_url: str) -> Iterator[Runtime]:
    """A started runtime (views caught up and following) on each backend."""
    rt = make_runtime(database_url)
    try:
        yield rt
    finally:
        rt.close()


@pytest.fixture
def sqlite_runtime(sqlite_url: str) -> Iterator[Runtime]:
    rt = make_runtime(sqlite_url)
    try:
        yield rt
    finally:
        rt.close()
