"""Roles started together on one PostgreSQL schema take turns creating tables.

Without the advisory locks, four processes starting at once lost one or more of
themselves to "duplicate key value violates unique constraint
pg_type_typname_nsp_index" or "relation ... already exists" (reproduced here with
threads: each constructs its own runtime on its own connections, as a process would).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.conftest import make_runtime
from threadline.projections.sql import row_count
from threadline.services.config import Settings
from threadline.services.runtime import Runtime
from threadline.services.store import pool_budget

KEY = Fernet.generate_key().decode()


def _together(count: int, work: Callable[[], None]) -> list[str]:
    """Run `work` in `count` threads released at the same moment; the errors they raised."""
    barrier = threading.Barrier(count)
    errors: list[str] = []

    def run() -> None:
        barrier.wait()
        try:
            work()
        except Exception as error:
            errors.append(f"{type(error).__name__}: {error}")

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


@pytest.mark.postgres
def test_runtimes_started_together_on_an_empty_schema_all_start(
    postgres_schema_url: str,
) -> None:
    def start() -> None:
        Runtime(Settings(database_url=postgres_schema_url), run_views=False).close()

    assert _together(4, start) == []
    runtime = make_runtime(postgres_schema_url)
    try:
        assert runtime.views_position() == 0
    finally:
        runtime.close()


@pytest.mark.postgres
def test_tables_made_on_first_use_take_turns(postgres_schema_url: str) -> None:
    runtime = Runtime(Settings(database_url=postgres_schema_url), run_views=False)
    try:

        def create() -> None:
            runtime.views.create_schema(
                [
                    "CREATE TABLE IF NOT EXISTS made_late (id TEXT PRIMARY KEY, n BIGINT)",
                    "CREATE INDEX IF NOT EXISTS made_late_by_n ON made_late (n)",
                ]
            )

        assert _together(4, create) == []
        assert row_count(runtime.views, "made_late") == 0
    finally:
        runtime.close()


@pytest.mark.postgres
def test_each_role_gets_its_own_small_pools_and_connection_name(
    postgres_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGAPPNAME", "inherited-from-a-parent")
    settings = Settings(database_url=postgres_schema_url, role="triggers", db_idle_seconds=7.0)
    runtime = Runtime(settings, run_views=False)
    try:
        budget = pool_budget("triggers")
        for pool in (runtime.app.recorder.datastore.pool, runtime.views.recorder.datastore.pool):
            assert (pool.min_size, pool.max_size) == (budget.pool_size, budget.per_pool)
            assert pool.max_idle == 7.0  # overflow returned after 7 s, not psycopg's 600
        assert runtime.views.setting("application_name") == "threadline-triggers"
    finally:
        runtime.close()
    chosen = Settings.from_env(
        {
            "THREADLINE_DATABASE_URL": postgres_schema_url,
            "THREADLINE_DB_POOL_SIZE": "3",
            "THREADLINE_DB_MAX_OVERFLOW": "0",
        }
    ).with_overrides(role="triggers")
    runtime = Runtime(chosen, run_views=False)
    try:
        pool = runtime.app.recorder.datastore.pool
        assert (pool.min_size, pool.max_size) == (3, 3)
    finally:
        runtime.close()


def test_migrate_creates_every_table_then_exits(database_url: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from threadline.services.cli import app

    env = {"THREADLINE_DATABASE_URL": database_url, "THREADLINE_SECRET_KEY": KEY}
    result = CliRunner().invoke(app, ["migrate"], env=env)
    assert result.exit_code == 0, result.output
    assert "schema ready" in result.output
    runtime = Runtime(Settings(database_url=database_url, secret_key=KEY), run_views=False)
    try:
        # the web app's sessions table, which otherwise appears on the first web request
        assert runtime.state_db.query("SELECT count(*) AS n FROM web_sessions") == [{"n": 0}]
    finally:
        runtime.close()
