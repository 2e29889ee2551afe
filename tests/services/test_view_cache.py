"""The views' page cache: 64 MiB only where the views are written, SQLite's 2 MiB elsewhere.

`cache_size` is per connection. The server process used to give every pooled views
connection the writer's 64 MiB although it only reads the views (the views child writes
them): its RSS rose 111 → 221 MB over a soak and kept rising idle. These tests read the
setting each connection really has, through the pool, in each kind of process.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from threadline.domain.model.inbound import InboundMessage
from threadline.services.config import Settings
from threadline.services.runtime import Runtime
from threadline.services.sqlite_pragmas import VIEW_READER_CACHE_KIB, VIEW_WRITER_CACHE_KIB


def cache_kib(runtime: Runtime, writer: bool) -> int:
    """The page cache (KiB) of a views connection checked out to write or to read."""
    with runtime.views.recorder.datastore.get_connection(commit=writer) as connection:
        value = connection._sqlite_conn.execute("PRAGMA cache_size").fetchone()[0]
    return -int(value)


def all_idle_caches(runtime: Runtime) -> list[int]:
    """The cache of every connection the pool keeps, each taken at once (so all distinct)."""
    pool = runtime.views.recorder.datastore.pool
    with ExitStack() as stack:
        connections = [
            stack.enter_context(runtime.views.recorder.datastore.get_connection(commit=False))
            for _ in range(pool.pool_size)
        ]
        return [
            -int(c._sqlite_conn.execute("PRAGMA cache_size").fetchone()[0]) for c in connections
        ]


@contextmanager
def started(tmp_path: Path, **kwargs: Any) -> Iterator[Runtime]:
    runtime = Runtime(Settings(database_url=f"sqlite:///{tmp_path}/threadline.db"), **kwargs)
    try:
        runtime.start()
        yield runtime
    finally:
        runtime.close()


def ingest(runtime: Runtime, count: int) -> None:
    for i in range(count):
        committed = runtime.app.ingest(
            InboundMessage.create(
                channel="api",
                dedup_key=f"cache-{i}",
                identities=[("email", f"client{i}@example.com")],
                text=f"message {i}",
            )
        )
        assert runtime.wait_for_views(committed.notification_id, timeout=30)


def test_a_process_that_writes_the_views_gives_the_big_cache_to_writing_only(
    tmp_path: Path,
) -> None:
    with started(tmp_path) as runtime:  # in-process views: `worker projections`, the CLI
        ingest(runtime, 3)
        assert cache_kib(runtime, writer=True) == VIEW_WRITER_CACHE_KIB
        assert cache_kib(runtime, writer=False) == VIEW_READER_CACHE_KIB
        assert set(all_idle_caches(runtime)) == {VIEW_READER_CACHE_KIB}


def test_the_server_process_reads_the_views_with_small_caches_once_the_child_writes_them(
    tmp_path: Path,
) -> None:
    with started(tmp_path) as first:  # some history, so that `serve` has views to catch up
        ingest(first, 20)
    with started(tmp_path, views_in_process=False) as server:
        ingest(server, 5)  # written by the views child, read back here
        assert server.follower is not server.runner
        assert set(all_idle_caches(server)) == {VIEW_READER_CACHE_KIB}
        # even a write from this process (a rejection record, say) does not grow one again
        assert cache_kib(server, writer=True) == VIEW_READER_CACHE_KIB


def test_an_api_process_without_views_never_takes_the_writer_cache(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/threadline.db")
    runtime = Runtime(settings, run_views=False)
    try:
        assert cache_kib(runtime, writer=True) == VIEW_READER_CACHE_KIB
        assert cache_kib(runtime, writer=False) == VIEW_READER_CACHE_KIB
    finally:
        runtime.close()


@pytest.mark.parametrize("writer", [True, False])
def test_each_check_out_gets_its_size_even_from_a_connection_used_the_other_way(
    tmp_path: Path, writer: bool
) -> None:
    with started(tmp_path) as runtime:
        for _ in range(3):  # the pool hands the same connection back and forth
            assert cache_kib(runtime, writer=writer) == (
                VIEW_WRITER_CACHE_KIB if writer else VIEW_READER_CACHE_KIB
            )
            assert cache_kib(runtime, writer=not writer) == (
                VIEW_READER_CACHE_KIB if writer else VIEW_WRITER_CACHE_KIB
            )
