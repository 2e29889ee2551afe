"""The access log (issue 16, part 7): every read of a contact card, a conversation, an
attachment or an export is recorded with who, what and when, in an append-only table of the
store's database, on SQLite and PostgreSQL; `GET /api/audit/access` lists it for admins
and auditors.

Reads go through the API and the web app as users make them; the table is checked the way
an intruder would change it, by SQL on the store's own database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import OperationalError
from fastapi.testclient import TestClient

from tests.conftest import make_runtime
from tests.waiting import wait_for
from tests.web.helpers import web_client
from threadline.domain.model.inbound import InboundMessage
from threadline.projections.base import ts
from threadline.services.access_log import AccessEntry, AccessQuery
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime

ADMIN = {"Authorization": "Bearer admin-secret"}
FILE = b"%PDF-1.4 the signed contract\n" + bytes(range(256))


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Runtime]]:
    runtime = make_runtime(
        database_url, admin_token="admin-secret", attachments_dir=str(tmp_path / "files")
    )
    try:
        with TestClient(create_app(runtime)) as client:
            yield client, runtime
    finally:
        runtime.close()


def user(client: TestClient, role: str) -> tuple[dict[str, str], str]:
    """A new user of `role`: their API headers and their actor (`user:<id>`)."""
    email = f"{role}-{uuid4().hex[:6]}@example.com"
    made = client.post("/api/users", json={"email": email, "role": role}, headers=ADMIN)
    assert made.status_code == 201, made.text
    body = made.json()
    return {"Authorization": f"Bearer {body['token']}"}, f"user:{body['id']}"


def client_writes(runtime: Runtime, key: str, email: str) -> Any:
    """A client's e-mail with a PDF attached, as a channel records it (the views show it)."""
    meta = runtime.channels.attachments.put(FILE, "contract.pdf", "application/pdf")
    committed = runtime.app.ingest(
        InboundMessage.create(
            channel="email",
            dedup_key=key,
            identities=[("email", email)],
            sender_name="Мария",
            subject="Договор",
            text="Договор во вложении",
            attachments=[meta],
        )
    )
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    return committed.value


def stored(runtime: Runtime, **filters: Any) -> list[AccessEntry]:
    """Every entry matching `filters`, once what was recorded is stored."""
    assert runtime.access_log.flush()
    return runtime.access_log.entries(AccessQuery(limit=1000, **filters))[0]


def seen(entries: list[AccessEntry]) -> list[tuple[str, str, str, str, str, str]]:
    return [(e.actor, e.role, e.kind, e.target_id, e.via, e.path) for e in entries]


def test_api_reads_are_recorded_with_who_what_and_when_and_a_404_is_not(
    api: tuple[TestClient, Runtime],
) -> None:
    client, runtime = api
    operator, actor = user(client, "operator")
    got = client_writes(runtime, "m-1", "maria@example.com")
    contact, conversation, message = got.contact_id, got.conversation_id, got.message_id
    before = ts(datetime.now(UTC))
    reads = [
        f"/api/contacts/{contact}",
        f"/api/contacts/{contact}/timeline",
        f"/api/conversations/{conversation}",
        f"/api/messages/{message}/attachments/0",
    ]
    for path in reads:
        answer = client.get(path, headers=operator)
        assert answer.status_code == 200, (path, answer.text)
    for missing in (
        f"/api/contacts/{uuid4()}",
        f"/api/contacts/{uuid4()}/timeline",
        f"/api/conversations/{uuid4()}",
        f"/api/messages/{message}/attachments/7",
        f"/api/messages/{uuid4()}/attachments/0",
    ):
        assert client.get(missing, headers=operator).status_code == 404, missing
    assert client.get(f"/api/contacts/{contact}", headers=ADMIN).status_code == 200

    # the writer thread stores them on its own, within a moment (no flush here)
    wait_for(
        lambda: len(runtime.access_log.entries(AccessQuery())[0]) == 5,
        what="the access log's writer to store the reads",
    )
    entries = stored(runtime)
    assert seen(entries) == [
        (actor, "operator", "contact", str(contact), "api", reads[0]),
        (actor, "operator", "contact", str(contact), "api", reads[1]),
        (actor, "operator", "conversation", str(conversation), "api", reads[2]),
        (actor, "operator", "attachment", f"{message}/0", "api", reads[3]),
        ("admin-token", "admin", "contact", str(contact), "api", reads[0]),
    ]
    after = ts(datetime.now(UTC))
    assert all(before <= e.at <= after for e in entries)
    assert [e.at for e in entries] == sorted(e.at for e in entries)
    assert [e.id for e in entries] == sorted({e.id for e in entries})


def test_a_report_export_is_recorded(api: tuple[TestClient, Runtime]) -> None:
    client, runtime = api
    manager, actor = user(client, "manager")
    path = "/api/reports/funnel/sections/stages/items.csv"
    csv = client.get(path, headers=manager)
    assert csv.status_code == 200, csv.text
    assert client.get("/api/reports/funnel/sections/nothing/items.csv", headers=manager).is_error
    assert seen(stored(runtime)) == [(actor, "manager", "export", "funnel/stages", "api", path)]


def test_the_web_app_records_its_reader(database_url: str, tmp_path: Path) -> None:
    runtime = make_runtime(database_url, attachments_dir=str(tmp_path / "files"))
    try:
        client, _, user_id = web_client(runtime, "operator")
        got = client_writes(runtime, "w-1", "ivan@example.com")
        contact, conversation, message = got.contact_id, got.conversation_id, got.message_id
        pages = [
            f"/contacts/{contact}",
            f"/contacts/{contact}/card",
            f"/inbox/{conversation}",
            f"/inbox/{conversation}/thread",
            f"/attachments/{message}/0",
        ]
        for path in pages:
            answer = client.get(path)
            assert answer.status_code == 200, (path, answer.text)
        for missing in (f"/contacts/{uuid4()}", f"/inbox/{uuid4()}", f"/attachments/{message}/3"):
            assert client.get(missing).status_code == 404, missing
        actor = f"user:{user_id}"
        assert seen(stored(runtime)) == [
            (actor, "operator", "contact", str(contact), "web", pages[0]),
            (actor, "operator", "contact", str(contact), "web", pages[1]),
            (actor, "operator", "conversation", str(conversation), "web", pages[2]),
            (actor, "operator", "conversation", str(conversation), "web", pages[3]),
            (actor, "operator", "attachment", f"{message}/0", "web", pages[4]),
        ]
    finally:
        runtime.close()


def test_a_batch_the_database_refuses_is_kept_and_stored_later(
    api: tuple[TestClient, Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, runtime = api
    log = runtime.access_log
    got = client_writes(runtime, "f-1", "fedor@example.com")
    card = f"/api/contacts/{got.contact_id}"

    def refused(commit: bool = True) -> Any:
        raise OperationalError("the database went away")

    monkeypatch.setattr(log.db, "transaction", refused)
    assert client.get(card, headers=ADMIN).status_code == 200  # the read is answered all the same
    assert not log.flush() and log.pending() == 1
    assert client.get(f"/api/conversations/{got.conversation_id}", headers=ADMIN).is_success
    monkeypatch.undo()
    assert [(e.kind, e.path) for e in stored(runtime)] == [
        ("contact", card),
        ("conversation", f"/api/conversations/{got.conversation_id}"),
    ]
    assert log.pending() == 0


def test_the_endpoint_filters_and_pages_for_admins_and_auditors_only(
    api: tuple[TestClient, Runtime],
) -> None:
    client, runtime = api
    operator, operator_actor = user(client, "operator")
    manager, _ = user(client, "manager")
    auditor, _ = user(client, "auditor")
    first = client_writes(runtime, "a-1", "anna@example.com")
    second = client_writes(runtime, "a-2", "oleg@example.com")
    for got in (first, second):
        for headers in (operator, manager):
            client.get(f"/api/contacts/{got.contact_id}", headers=headers)
            client.get(f"/api/conversations/{got.conversation_id}", headers=headers)

    for refused in (operator, manager):
        assert client.get("/api/audit/access", headers=refused).status_code == 403
    assert client.get("/api/audit/access").status_code == 401
    assert client.get("/api/audit/access", headers=ADMIN).status_code == 200
    # the route stores what is still queued: the reads just made are all there
    answer = client.get("/api/audit/access", headers=auditor)
    assert answer.status_code == 200, answer.text
    everything = answer.json()
    assert everything["next_after"] is None and len(everything["items"]) == 8
    items = everything["items"]

    def listed(**params: Any) -> list[dict[str, Any]]:
        response = client.get("/api/audit/access", params=params, headers=auditor)
        assert response.status_code == 200, response.text
        page: list[dict[str, Any]] = response.json()["items"]
        return page

    assert listed(actor=operator_actor) == [i for i in items if i["actor"] == operator_actor]
    assert len(listed(actor=operator_actor)) == 4
    assert listed(kind="conversation") == [i for i in items if i["kind"] == "conversation"]
    target = str(second.contact_id)
    assert listed(target_id=target) == [i for i in items if i["target_id"] == target]
    assert len(listed(target_id=target)) == 2
    since, until = items[2]["at"], items[6]["at"]
    assert listed(**{"from": since, "to": until}) == [i for i in items if since <= i["at"] < until]
    assert listed(**{"from": "2999-01-01T00:00:00+03:00"}) == []
    assert listed(actor=operator_actor, kind="contact", target_id=target) == [
        i
        for i in items
        if (i["actor"], i["kind"], i["target_id"]) == (operator_actor, "contact", target)
    ]

    # paged by id: three pages of three, three and two, oldest first, each after the last
    pages, after = [], 0
    while True:
        response = client.get(
            "/api/audit/access", params={"limit": 3, "after": after}, headers=auditor
        )
        body = response.json()
        pages.append(body["items"])
        if body["next_after"] is None:
            break
        after = body["next_after"]
        assert after == body["items"][-1]["id"]
    assert [len(p) for p in pages] == [3, 3, 2]
    assert [i for p in pages for i in p] == items
    assert [i["id"] for i in items] == sorted(i["id"] for i in items)

    for bad in ({"limit": 1001}, {"limit": 0}, {"after": -1}, {"kind": "deal"}, {"from": "x"}):
        assert client.get("/api/audit/access", params=bad, headers=auditor).status_code == 422


def test_the_table_refuses_update_and_delete_by_sql(runtime: Runtime) -> None:
    class Reader:
        actor = "user:someone"
        role = "auditor"

    log = runtime.access_log
    log.record(Reader(), "contact", "c-1", via="api", path="/api/contacts/c-1")
    log.record(Reader(), "export", "funnel/stages", via="web", path="/reports/funnel/stages.csv")
    before = stored(runtime)
    assert len(before) == 2
    changes: list[tuple[str, list[Any]]] = [
        ("UPDATE access_log SET actor = ? WHERE id = ?", ["user:nobody", before[0].id]),
        ("UPDATE access_log SET at = ?", ["2000-01-01T00:00:00.000000Z"]),
        ("DELETE FROM access_log WHERE id = ?", [before[1].id]),
        ("DELETE FROM access_log", []),
    ]
    if log.db.postgres:
        changes.append(("TRUNCATE access_log", []))
    for sql, params in changes:
        with pytest.raises(Exception, match="append-only"), log.db.transaction() as cur:
            cur.execute(sql, params)
    assert stored(runtime) == before
    # appending goes on
    log.record(Reader(), "conversation", "v-1", via="web", path="/inbox/v-1")
    assert len(stored(runtime)) == 3


def test_the_record_survives_a_replay_and_a_restart(database_url: str) -> None:
    class Reader:
        actor = "admin-token"
        role = "admin"

    runtime = make_runtime(database_url)
    try:
        runtime.access_log.record(Reader(), "contact", "c-1", via="api", path="/api/contacts/c-1")
        assert len(stored(runtime)) == 1
        runtime.rebuild_views()  # what `threadline replay` runs
        assert seen(stored(runtime)) == [
            ("admin-token", "admin", "contact", "c-1", "api", "/api/contacts/c-1")
        ]
        # a read still queued when the process closes is stored by the close
        runtime.access_log.record(Reader(), "contact", "c-2", via="web", path="/contacts/c-2")
    finally:
        runtime.close()
    again = make_runtime(database_url)
    try:
        assert [e.target_id for e in stored(again)] == ["c-1", "c-2"]
    finally:
        again.close()
