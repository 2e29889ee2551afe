"""One person, many channels: identities link contacts, duplicates are suggested and merged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_runtime
from tests.services.test_api import ADMIN
from threadline.projections.inbox import inbox_message
from threadline.services.api.app import create_app


@pytest.fixture
def client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    runtime = make_runtime(
        database_url, admin_token="admin-secret", attachments_dir=str(tmp_path / "a")
    )
    try:
        with TestClient(create_app(runtime)) as test_client:
            yield test_client
    finally:
        runtime.close()


def inbound(client: TestClient, channel: str, key: str, text: str, **sender: Any) -> dict[str, Any]:
    response = client.post(
        "/api/inbound",
        json={"channel": channel, "external_id": key, "from": sender, "text": text},
        headers=ADMIN,
    )
    assert response.status_code in (200, 201), response.text
    result: dict[str, Any] = response.json()
    return result


def test_an_email_and_a_phone_in_one_form_link_later_calls_to_the_same_contact(
    client: TestClient,
) -> None:
    by_mail = inbound(client, "email", "m1", "Hello", name="Olga Ivanova", email="olga@example.com")
    form = inbound(
        client, "web", "f1", "Call me", email="OLGA@example.com", phone="+7 912 345-67-89"
    )
    call = inbound(client, "voice", "CA1", "Incoming call", phone="+79123456789")
    assert by_mail["contact_id"] == form["contact_id"] == call["contact_id"]
    card = client.get(f"/api/contacts/{by_mail['contact_id']}", headers=ADMIN).json()
    assert {(i["kind"], i["value"]) for i in card["identities"]} == {
        ("email", "olga@example.com"),
        ("phone", "+79123456789"),
    }


def test_duplicates_are_suggested_and_a_merge_keeps_every_message(client: TestClient) -> None:
    first = inbound(client, "email", "m1", "By mail", name="Ivan Petrov", email="ivan@example.com")
    second = inbound(client, "sms", "s1", "By SMS", name="Petrov Ivan", phone="+79001112233")
    other = inbound(client, "sms", "s2", "Someone else", name="Anna Smirnova", phone="+79005556677")
    survivor, duplicate = first["contact_id"], second["contact_id"]
    assert survivor != duplicate

    suggestions = client.get(f"/api/contacts/{survivor}/duplicates", headers=ADMIN).json()
    ranked = [s["contact_id"] for s in suggestions["items"]]
    assert ranked[0] == duplicate
    assert other["contact_id"] not in ranked
    assert "same name" in suggestions["items"][0]["reasons"]

    merged = client.post(
        f"/api/contacts/{survivor}/merge", json={"other_id": duplicate}, headers=ADMIN
    )
    assert merged.status_code == 200, merged.text
    card = merged.json()
    assert {i["value"] for i in card["identities"]} == {"ivan@example.com", "+79001112233"}
    assert card["inbound_count"] == 2

    timeline = client.get(f"/api/contacts/{survivor}/timeline", headers=ADMIN).json()["items"]
    bodies = {row["body"] for row in timeline}
    assert {"By mail", "By SMS"} <= bodies
    assert any(row["kind"] == "contact.merged" for row in timeline)

    listed = client.get("/api/contacts", headers=ADMIN).json()
    assert duplicate not in {c["id"] for c in listed["items"]}
    inbox = client.get(f"/api/inbox?contact_id={survivor}", headers=ADMIN).json()
    assert {c["channel"] for c in inbox["items"]} == {"email", "sms"}

    # Later input from the duplicate's phone lands on the survivor.
    later = inbound(client, "sms", "s3", "Again by SMS", phone="+79001112233")
    assert later["contact_id"] == survivor

    again = client.post(
        f"/api/contacts/{survivor}/merge", json={"other_id": duplicate}, headers=ADMIN
    )
    assert again.status_code == 409
    itself = client.post(
        f"/api/contacts/{survivor}/merge", json={"other_id": survivor}, headers=ADMIN
    )
    assert itself.status_code == 422


def test_a_merge_survives_a_rebuild_of_the_views(tmp_path: Path) -> None:
    runtime = make_runtime(f"sqlite:///{tmp_path}/t.db", attachments_dir=str(tmp_path / "a"))
    try:
        from threadline.domain.model.inbound import InboundMessage

        a = runtime.channels.ingest(
            InboundMessage.create(
                channel="email", dedup_key="1", identities=[("email", "a@example.com")], text="A"
            )
        )
        b = runtime.channels.ingest(
            InboundMessage.create(
                channel="sms", dedup_key="2", identities=[("phone", "+79001112233")], text="B"
            )
        )
        committed = runtime.app.merge_contacts(a.contact_id, b.contact_id, "test")
        assert runtime.wait_for_views(committed.notification_id, timeout=60)
        before = runtime.queries.timeline(str(a.contact_id), 100, None)
        runtime.rebuild_views()
        after = runtime.queries.timeline(str(a.contact_id), 100, None)
        assert [r["id"] for r in after] == [r["id"] for r in before]
        assert {r["body"] for r in after} >= {"A", "B"}
    finally:
        runtime.close()


def test_after_two_merges_later_rows_land_on_the_last_survivor(tmp_path: Path) -> None:
    from threadline.domain.model.inbound import InboundMessage

    runtime = make_runtime(f"sqlite:///{tmp_path}/t.db", attachments_dir=str(tmp_path / "a"))
    try:
        ids = [
            runtime.channels.ingest(
                InboundMessage.create(
                    channel="sms", dedup_key=str(n), identities=[("phone", f"+7900111223{n}")],
                    text=f"m{n}",
                )
            )
            for n in range(3)
        ]  # fmt: skip
        first, second, third = ids
        runtime.app.merge_contacts(second.contact_id, first.contact_id, "test")
        runtime.app.merge_contacts(third.contact_id, second.contact_id, "test")
        reply = runtime.app.reply(first.conversation_id, "on the oldest thread", "test")
        assert runtime.wait_for_views(reply.notification_id, timeout=60)
        row = inbox_message(runtime.views, reply.value)
        assert row is not None and row.contact_id == str(third.contact_id)
        timeline = runtime.queries.timeline(str(third.contact_id), 100, None)
        assert "on the oldest thread" in {r["body"] for r in timeline}
    finally:
        runtime.close()
