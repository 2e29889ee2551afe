"""How each inbox's poller is doing, for `/healthz`: last success, failures in a row, last error.

A poller that crashes is restarted by the hub every few seconds, forever; without
this, a mailbox that stopped for good (a crash loop, a wrong password, a database
that is down) looked exactly like a quiet one, and `/healthz` said `ok`. The hub
records every failure (`failed`); a poller reports each round it got through
(`succeeded`: a folder synced, a message handled). A poller is `failing` after
`FAILURES_BEFORE_DEGRADED` failures in a row, and `stale` when it has reported
success before but not for `stale_after` seconds; either makes `/healthz` say
`degraded`. A poller that never reports success (not every channel does) is
judged by its failures only.

The state is in memory, per process: `/healthz` shows the pollers of the process
that answers (in the embedded mode, all of them).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

FAILURES_BEFORE_DEGRADED = 3
MIN_STALE_SECONDS = 300.0
MAX_ERROR = 500


@dataclass
class _Poller:
    channel: str
    started_at: float
    last_success: float | None = None
    consecutive_failures: int = 0
    total_failures: int = 0
    last_error: str | None = None
    last_error_at: float | None = None


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")


class PollerHealth:
    """Thread-safe: pollers report from the channel loop, `/healthz` reads from API threads."""

    def __init__(self, poll_interval: float = 30.0, clock: Callable[[], float] = time.time) -> None:
        # IMAP syncs at least every poll interval (IDLE is renewed that often), so several
        # intervals without one mean the poller is stuck, not idle.
        self.stale_after = max(MIN_STALE_SECONDS, 5 * poll_interval)
        self.clock = clock
        self._pollers: dict[str, _Poller] = {}
        self._lock = threading.Lock()

    def started(self, slug: str, channel: str) -> None:
        with self._lock:
            if slug not in self._pollers:
                self._pollers[slug] = _Poller(channel=channel, started_at=self.clock())

    def succeeded(self, slug: str) -> None:
        with self._lock:
            poller = self._pollers.get(slug)
            if poller is not None:
                poller.last_success = self.clock()
                poller.consecutive_failures = 0

    def failed(self, slug: str, error: str) -> None:
        with self._lock:
            poller = self._pollers.get(slug)
            if poller is not None:
                poller.consecutive_failures += 1
                poller.total_failures += 1
                poller.last_error = error[:MAX_ERROR]
                poller.last_error_at = self.clock()

    def forget(self, slug: str) -> None:
        """The inbox is gone, disabled or changed: its poller's history goes with it."""
        with self._lock:
            self._pollers.pop(slug, None)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every poller by inbox slug, with its `state`: ok, failing or stale."""
        now = self.clock()
        with self._lock:
            pollers = dict(self._pollers)
            return {slug: self._describe(p, now) for slug, p in sorted(pollers.items())}

    def degraded(self) -> bool:
        return any(p["state"] in ("failing", "stale") for p in self.snapshot().values())

    def _describe(self, poller: _Poller, now: float) -> dict[str, Any]:
        if poller.consecutive_failures >= FAILURES_BEFORE_DEGRADED:
            state = "failing"
        elif poller.last_success is not None and now - poller.last_success > self.stale_after:
            state = "stale"
        else:
            state = "ok"
        return {
            "channel": poller.channel,
            "state": state,
            "last_success": _iso(poller.last_success),
            "consecutive_failures": poller.consecutive_failures,
            "failures": poller.total_failures,
            "last_error": poller.last_error,
            "last_error_at": _iso(poller.last_error_at),
            "running_since": _iso(poller.started_at),
        }
