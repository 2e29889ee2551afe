"""The views in a child process (how `threadline serve` runs them) stay current and exact."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from threadline.domain.inbound import InboundMessage
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
