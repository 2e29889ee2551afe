"""The views in a child process (how `threadline serve` runs them) stay current and exact."""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor

from tests.waiting import wait_for
from threadline.domain.model.inbound import InboundMessage
from threadline.projections.process_runner import ProcessViewRunner
from threadline.projections.queries import InboxFilter
from threadline.services.config import Settings
from threadline.services.runtime import Runtime


def test_child_process_views_follow_writes_and_answer_read_your_writes(database_url: str) -> None:
    runtime = Runtime(Settings(database_url=database_url), views_in_process=False)
    runtime.start()
    try:
        messages = [
            InboundMessage.create(
                channel="api", dedup_key=f"p{i}", identities=[("email", f"u{i % 5}@example.com")]
            )
            for i in range(60)
        ]
        with ThreadPoolExecutor(8) as pool:
            committed = list(pool.map(runtime.app.ingest, messages))
        last = max(c.notification_id or 0 for c in committed)
        assert runtime.wait_for_views(last, timeout=20)
        rows, total = runtime.queries.inbox(InboxFilter(), limit=100)
        assert total == 5
        assert sum(r["message_count"] for r in rows) == 60
        assert runtime.views_healthy()
    finally:
        runtime.close()
    assert not runtime.follower.healthy  # the child is gone after close


def test_a_killed_views_process_is_started_again_and_catches_up(database_url: str) -> None:
    """`kill -9` of the views child alone: the server starts a new one, which applies what it missed."""
    runtime = Runtime(Settings(database_url=database_url), views_in_process=False)
    runtime.start()
    try:
        follower = runtime.follower
        assert isinstance(follower, ProcessViewRunner)
        first = runtime.app.ingest(
            InboundMessage.create(
                channel="api", dedup_key="before", identities=[("email", "a@example.com")]
            )
        )
        assert runtime.wait_for_views(first.notification_id, timeout=20)
        dead_pid = follower.pid
        assert dead_pid is not None
        os.kill(dead_pid, signal.SIGKILL)
        wait_for(lambda: not runtime.views_healthy(), "the child to die")

        # written while no views process runs: the new one must apply it
        second = runtime.app.ingest(
            InboundMessage.create(
                channel="api", dedup_key="during", identities=[("email", "b@example.com")]
            )
        )
        assert runtime.wait_for_views(second.notification_id, timeout=30)
        wait_for(runtime.views_healthy, "the new child to be healthy")
        assert follower.pid != dead_pid
        assert runtime.views_restarts() == 1
        rows, total = runtime.queries.inbox(InboxFilter(), limit=10)
        assert total == 2
        assert sum(r["message_count"] for r in rows) == 2  # each message applied once
    finally:
        runtime.close()
    assert not runtime.follower.healthy
    assert runtime.views_restarts() == 1  # closing is not a death to recover from
