"""Opt-outs are visible (card, timeline, API) and a person can opt a client back in, with a reason.

Issue 11, item 5: nothing showed that a client wrote STOP or unsubscribed, and
nobody could opt them back in.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application
from fastapi.testclient import TestClient

from tests.conftest import make_runtime
from tests.older_events import as_version_1
from tests.waiting import wait_for
from threadline.domain.model.contact import Contact
from threadline.domain.model.inbound import InboundMessage
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime

ADMIN = {"Authorization": "Bearer admin-secret"}


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


def token_for(client: TestClient, role: str) -> dict[str, str]:
    response = client.post(
        "/api/users", json={"email": f"{role}@example.com", "role": role}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def client_writes_stop(runtime: Runtime) -> UUID:
    """An SMS "STOP": the trigger runner records the opt-out (the real path)."""
    committed = runtime.app.ingest(
        InboundMessage.create(
            channel="sms", dedup_key="stop-1", identities=[("phone", "+79001234567")], text="STOP"
        )
    )
    contact_id: UUID = committed.value.contact_id
    wait_for(lambda: runtime.app.repository.get(contact_id).has_opted_out("sms"), "the opt-out")
    runtime.wait_for_views(runtime.app.recorder.max_notification_id())
    return contact_id


def kinds(client: TestClient, contact_id: UUID, headers: dict[str, str]) -> list[dict[str, Any]]:
    items = client.get(f"/api/contacts/{contact_id}/timeline", headers=headers).json()["items"]
    return [i for i in items if i["kind"] in ("contact.opted_out", "contact.opted_in")]


def test_a_stop_shows_in_the_api_and_timeline_and_opting_in_needs_a_reason(
    api: tuple[TestClient, Runtime],
) -> None:
    client, runtime = api
    operator, auditor = token_for(client, "operator"), token_for(client, "auditor")
    contact_id = client_writes_stop(runtime)

    card = client.get(f"/api/contacts/{contact_id}", headers=operator).json()
    [opt_out] = card["opt_outs"]
    assert opt_out["channel"] == "sms" and opt_out["reason"] == "the client wrote 'stop'"
    assert opt_out["opted_out_at"] and opt_out["actor"] == "worker:triggers"
    [row] = kinds(client, contact_id, operator)
    assert row["kind"] == "contact.opted_out" and row["title"] == "sms"
    assert row["body"] == "the client wrote 'stop'"

    url = f"/api/contacts/{contact_id}/opt-in"
    blank = client.post(url, json={"channel": "sms", "reason": "   "}, headers=operator)
    assert blank.status_code == 422
    missing = client.post(url, json={"channel": "sms"}, headers=operator)
    assert missing.status_code == 422
    other = client.post(url, json={"channel": "email", "reason": "asked"}, headers=operator)
    assert other.status_code == 422 and "not opted out" in other.text
    refused = client.post(url, json={"channel": "sms", "reason": "asked"}, headers=auditor)
    assert refused.status_code == 403
    unknown = client.post(
        f"/api/contacts/{uuid4()}/opt-in", json={"channel": "sms", "reason": "x"}, headers=operator
    )
    assert unknown.status_code == 404
    assert runtime.app.repository.get(contact_id).has_opted_out("sms")

    done = client.post(
        url, json={"channel": "sms", "reason": "Asked by phone to get reminders again"},
        headers=operator,
    )  # fmt: skip
    assert done.status_code == 200, done.text
    assert done.json()["opt_outs"] == []
    assert not runtime.app.repository.get(contact_id).has_opted_out("sms")
    opted_in = kinds(client, contact_id, operator)[-1]  # in log order
    assert opted_in["kind"] == "contact.opted_in"
    assert opted_in["body"] == "Asked by phone to get reminders again"
    assert opted_in["actor"].startswith("user:")
    [event] = [
        e
        for e in runtime.app.repository.event_store.get(contact_id)
        if isinstance(e, Contact.ContactOptedIn)
    ]
    assert event.reason == "Asked by phone to get reminders again" and event.channel == "sms"
    again = client.post(url, json={"channel": "sms", "reason": "twice"}, headers=operator)
    assert again.status_code == 422  # nothing left to undo


def test_views_rebuilt_from_the_log_show_the_same_opt_outs(database_url: str) -> None:
    runtime = make_runtime(database_url)
    try:
        contact = runtime.app.create_contact(actor="test", name="Anna", identities=[]).value
        for channel, reason in (
            ("sms", "the client wrote 'stop'"),
            ("email", "the unsubscribe link"),
        ):
            runtime.app.writer.submit(
                lambda unit, c=channel, r=reason: unit.get(contact, Contact).opt_out(
                    c, r, "test", "c"
                )
            )
        runtime.app.opt_in_contact(contact, "sms", "Called us", "user:test")
        runtime.wait_for_views(runtime.app.recorder.max_notification_id())
        before = runtime.queries.contact(str(contact))
        assert before is not None
        assert [(o["channel"], o["reason"]) for o in before["opt_outs"]] == [
            ("email", "the unsubscribe link")
        ]
    finally:
        runtime.close()


def test_a_contact_opted_in_event_of_version_1_loads_without_a_reason() -> None:
    app: Application[UUID] = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    contact = Contact(
        personal={"display_name": "Anna"}, lifecycle="lead", source={}, responsible_id=None,
        actor="test", correlation_id="c",
    )  # fmt: skip
    contact.opt_out("sms", "stop", "test", "c")
    contact.opt_in("sms", "asked", "test", "c")
    created, opted_out, opted_in = contact.collect_events()
    loaded = as_version_1(app, opted_in, "reason")
    assert loaded.reason == ""
    rebuilt = loaded.mutate(opted_out.mutate(created.mutate(None)))
    assert rebuilt is not None and rebuilt.opted_out == []


def test_the_aggregate_refuses_an_opt_in_without_a_reason_or_an_opt_out() -> None:
    from threadline.domain.model.errors import InvalidInput

    contact = Contact(
        personal={"display_name": "Anna"}, lifecycle="lead", source={}, responsible_id=None,
        actor="test", correlation_id="c",
    )  # fmt: skip
    with pytest.raises(InvalidInput):
        contact.opt_in("sms", "because", "test", "c")  # never opted out
    contact.opt_out("sms", "stop", "test", "c")
    with pytest.raises(InvalidInput):
        contact.opt_in("sms", " \n ", "test", "c")
    assert contact.has_opted_out("sms")
