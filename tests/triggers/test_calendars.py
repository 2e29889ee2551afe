"""Business calendars by name, and each inbox's own calendar in rule conditions."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_runtime
from tests.services.test_api import ADMIN, token_for
from threadline.domain.model.inbound import InboundMessage
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime

ALWAYS = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Runtime]]:
    runtime = make_runtime(
        database_url, admin_token="admin-secret", attachments_dir=str(tmp_path / "a")
    )
    runtime.start_triggers()
    try:
        with TestClient(create_app(runtime)) as client:
            yield client, runtime
    finally:
        runtime.close()


def tags(runtime: Runtime, contact_id: Any) -> list[str]:
    card = runtime.queries.contact(str(contact_id))
    return list(card["tags"]) if card else []


def test_the_conversation_inbox_calendar_decides_business_hours(
    api: tuple[TestClient, Runtime],
) -> None:
    client, runtime = api
    closed = {"tz": "Europe/Moscow", "week": {}, "holidays": []}
    assert client.put("/api/calendars/default", json={"tz": "UTC", "week": ALWAYS},
                      headers=ADMIN).status_code == 200  # fmt: skip
    refused = client.put("/api/calendars/support", json={**closed, "week": {"mon": []}},
                         headers=ADMIN)  # fmt: skip
    assert refused.status_code == 200, refused.text  # a calendar may be closed all week
    bad = client.put("/api/calendars/x", json={"tz": "Mars/Olympus", "week": {}}, headers=ADMIN)
    assert bad.status_code == 422, bad.text
    operator = token_for(client, "operator")
    assert client.put("/api/calendars/x", json=closed, headers=operator).status_code == 403
    listed = {c["name"] for c in client.get("/api/calendars", headers=ADMIN).json()["items"]}
    assert listed == {"default", "support"}

    runtime.channels.configure("support", "sandbox", "Support", {}, "test")
    rule = {
        "name": "Tag after-hours messages",
        "when": "message.received",
        "if": {"business_hours": {"calendar": "inbox", "inside": False}},
        "then": [{"add_tag": "after-hours"}],
    }
    assert client.post("/api/rules", json=rule, headers=ADMIN).status_code == 201
    support = runtime.channels.inbox("support")
    assert support is not None
    by_support = runtime.channels.ingest(
        InboundMessage.create(
            channel="email", dedup_key="a", identities=[("email", "a@example.com")],
            text="hi", inbox_id=support.id,
        )
    )  # fmt: skip
    by_api = runtime.channels.ingest(
        InboundMessage.create(
            channel="api", dedup_key="b", identities=[("email", "b@example.com")], text="hi"
        )
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "after-hours" not in tags(runtime, by_support.contact_id):
        time.sleep(0.05)
    assert "after-hours" in tags(runtime, by_support.contact_id)  # the support inbox is closed
    runtime.wait_for_views(runtime.app.recorder.max_notification_id())
    time.sleep(0.3)
    assert "after-hours" not in tags(runtime, by_api.contact_id)  # default: always open
