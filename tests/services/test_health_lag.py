"""`/healthz` sees the views and the trigger runner behind the log, and writes say so.

An API process started without the views (`serve --no-projections`) used to answer
`ok` while nobody kept the views, and each write waited the whole read-your-writes
timeout before answering 201 as if its change were visible. Here nobody keeps the
views at first (as when the projections worker is dead); then a runtime that does
catches them up.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from threadline.services.api.app import create_app
from threadline.services.config import Settings
from threadline.services.runtime import Runtime
from threadline.triggers.runner import POSITION_KEY

TOKEN = "health-lag-admin"
TIMEOUT = 1.5
BEHIND_TIMEOUT = 0.5


@pytest.fixture
def api_only(database_url: str) -> Iterator[tuple[Runtime, TestClient]]:
    settings = Settings(
        database_url=database_url,
        admin_token=TOKEN,
        read_your_writes_timeout=TIMEOUT,
        read_your_writes_behind_timeout=BEHIND_TIMEOUT,
        health_views_lag_seconds=0.0,
        health_triggers_lag_seconds=0.0,
        role="api",
    )
    runtime = Runtime(settings, run_views=False)
    try:
        with TestClient(create_app(runtime)) as client:
            client.headers["Authorization"] = f"Bearer {TOKEN}"
            yield runtime, client
    finally:
        runtime.close()


def _post(client: TestClient, n: int) -> tuple[Any, float]:
    started = time.monotonic()
    response = client.post(
        "/api/inbound",
        json={"external_id": f"lag-{n}", "from": {"email": f"lag{n}@example.com"}, "text": "hi"},
    )
    assert response.status_code == 201, response.text
    return response, time.monotonic() - started


def test_writes_while_the_views_are_down_say_so_and_stop_waiting_long(
    api_only: tuple[Runtime, TestClient], database_url: str
) -> None:
    runtime, client = api_only
    first, first_took = _post(client, 1)
    assert first.headers["threadline-views"] == "behind"
    assert first_took >= TIMEOUT  # nobody told it yet that the views are behind
    later = [_post(client, n) for n in range(2, 5)]
    assert all(r.headers["threadline-views"] == "behind" for r, _ in later)
    assert all(took < TIMEOUT for _, took in later), [took for _, took in later]

    health = client.get("/healthz").json()
    assert health["status"] == "degraded"
    assert "views_behind" in health["problems"]
    assert health["views_lag"] == health["log_position"] > 0
    assert health["views_lag_seconds"] > 0

    keeper = Runtime(Settings(database_url=database_url))  # the projections worker is back
    try:
        keeper.start()
        # (a worker polls; in one process, the API's commits may as well ring its bell)
        runtime.app.commit_listeners.append(keeper.follower.notify)
        assert keeper.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=30)
        response, _ = _post(client, 5)  # the short wait is long enough once they keep up
        assert "threadline-views" not in response.headers
        assert not runtime.read_your_writes.behind
        health = client.get("/healthz").json()
        assert health["views_lag"] == 0 and "views_behind" not in health["problems"]
    finally:
        keeper.close()


def test_health_shows_how_far_the_trigger_runner_is_behind(
    api_only: tuple[Runtime, TestClient],
) -> None:
    runtime, client = api_only
    assert client.get("/healthz").json()["triggers_position"] is None  # never started
    runtime.channels.state.set(POSITION_KEY, "0")  # a runner that stopped at the start
    _post(client, 1)
    _post(client, 2)
    health = client.get("/healthz").json()
    assert health["triggers_position"] == 0
    assert health["triggers_lag"] == health["log_position"] > 0
    assert health["triggers_lag_seconds"] > 0
    assert "triggers_behind" in health["problems"] and health["status"] == "degraded"
    runtime.channels.state.set(POSITION_KEY, str(health["log_position"]))
    health = client.get("/healthz").json()
    assert health["triggers_lag"] == 0 and health["triggers_lag_seconds"] == 0
    assert "triggers_behind" not in health["problems"]
