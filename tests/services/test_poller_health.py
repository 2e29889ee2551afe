"""Poller health as `/healthz` reports it: failing after three failures in a row, stale when a
poller that used to get through stops, healthy again on the next success."""

from __future__ import annotations

from threadline.services.poller_health import FAILURES_BEFORE_DEGRADED, PollerHealth


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_failures_in_a_row_staleness_and_recovery() -> None:
    clock = Clock()
    health = PollerHealth(poll_interval=30.0, clock=clock)
    health.started("support", "email")
    health.started("bot", "telegram")  # reports no successes: judged by its failures only
    assert {s["state"] for s in health.snapshot().values()} == {"ok"} and not health.degraded()

    for n in range(FAILURES_BEFORE_DEGRADED):
        assert not health.degraded(), n
        health.failed("support", "ImapError: login refused")
    support = health.snapshot()["support"]
    assert support["state"] == "failing" and support["consecutive_failures"] == 3
    assert support["last_error"] == "ImapError: login refused" and health.degraded()

    health.succeeded("support")
    support = health.snapshot()["support"]
    assert support["state"] == "ok" and support["consecutive_failures"] == 0
    assert support["failures"] == 3 and support["last_success"] == "2027-01-15T08:00:00+00:00"

    clock.now += health.stale_after + 1  # 300 s at least: five poll intervals of 30 s
    assert health.stale_after == 300.0
    assert health.snapshot()["support"]["state"] == "stale" and health.degraded()
    assert health.snapshot()["bot"]["state"] == "ok"
    health.succeeded("support")
    assert not health.degraded()

    health.failed("gone", "never started")  # unknown pollers are ignored
    health.forget("support")
    assert list(health.snapshot()) == ["bot"]
