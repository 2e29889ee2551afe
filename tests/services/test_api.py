"""The HTTP API end to end (FastAPI TestClient over a real runtime, SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eventsourcing.persistence import RecordConflictError
from fastapi.testclient import TestClient

from tests.conftest import make_runtime
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime

ADMIN = {"Authorization": "Bearer admin-secret"}


@pytest.fixture
def api(database_url: str) -> Iterator[tuple[TestClient, Runtime]]:
    runtime = make_runtime(database_url, admin_token="admin-secret", max_body_bytes=64_000)
    try:
        with TestClient(create_app(runtime)) as client:
            yield client, runtime
    finally:
        runtime.close()


def inbound(external_id: str, **sender: Any) -> dict[str, Any]:
    return {
        "channel": "api",
        "external_id": external_id,
        "from": sender or {"name": "Мария", "email": "maria@example.com"},
        "subject": "Вопрос",
        "text": "Когда доставка?",
    }


def token_for(client: TestClient, role: str) -> dict[str, str]:
    response = client.post(
        "/api/users", json={"email": f"{role}@example.com", "role": role}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_the_whole_flow(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    operator = token_for(client, "operator")
    first = client.post("/api/inbound", json=inbound("ext-1"), headers=operator)
    assert first.status_code == 201, first.text
    body = first.json()
    assert set(body) == {"message_id", "contact_id", "conversation_id", "duplicate"}
    assert body["duplicate"] is False
    again = client.post("/api/inbound", json=inbound("ext-1"), headers=operator)
    assert again.status_code == 200 and again.json() == {**body, "duplicate": True}

    phone = {"name": "Мария", "email": "MARIA@example.com", "phone": "+7 903 123-45-67"}
    second = client.post("/api/inbound", json=inbound("ext-2", **phone), headers=operator).json()
    assert second["contact_id"] == body["contact_id"]

    items = client.get("/api/inbox", headers=operator).json()["items"]
    assert len(items) == 1
    row = items[0]
    assert row["conversation_id"] == body["conversation_id"]
    assert (row["contact_id"], row["channel"], row["status"]) == (body["contact_id"], "api", "open")
    assert row["last_message"] == "Когда доставка?" and row["unread_count"] == 2

    card = client.get(f"/api/contacts/{body['contact_id']}", headers=operator).json()
    assert {"kind": "phone", "value": "+79031234567"} in card["identities"]

    conversation = f"/api/conversations/{body['conversation_id']}"
    reply = client.post(f"{conversation}/messages", json={"text": "Завтра"}, headers=operator)
    assert reply.status_code == 201 and reply.json()["state"] == "requested"
    note = client.post(
        f"{conversation}/messages", json={"text": "VIP", "internal": True}, headers=operator
    )
    assert note.status_code == 201 and note.json()["internal"] is True
    assigned = client.post(f"{conversation}/assign", json={"assignee_id": "me"}, headers=operator)
    assert assigned.status_code == 200 and assigned.json()["assignee_id"] is not None
    resolved = client.post(f"{conversation}/status", json={"status": "resolved"}, headers=operator)
    assert resolved.json()["status"] == "resolved"
    thread = client.get(conversation, headers=operator).json()
    assert [m["direction"] for m in thread["messages"]] == [
        "inbound",
        "inbound",
        "outbound",
        "internal",
    ]
    assert (
        client.get("/api/inbox?status=resolved&assignee=me", headers=operator).json()["total"] == 1
    )
    assert client.get("/api/inbox?status=open", headers=operator).json()["total"] == 0
    assert client.get("/api/inbox?q=доставка", headers=operator).json()["total"] == 1

    timeline = client.get(f"/api/contacts/{body['contact_id']}/timeline", headers=operator).json()
    kinds = [r["kind"] for r in timeline["items"]]
    assert (
        kinds.count("message.received") == 2 and "message.sent" in kinds and "note.added" in kinds
    )

    patched = client.patch(
        f"/api/contacts/{body['contact_id']}",
        json={"name": "Мария Иванова", "add_tags": ["VIP"], "lifecycle": "customer"},
        headers=operator,
    )
    assert patched.status_code == 200
    assert patched.json()["tags"] == ["vip"] and patched.json()["display_name"] == "Мария Иванова"
    assert (
        client.get("/api/contacts?tag=vip&lifecycle=customer", headers=operator).json()["total"]
        == 1
    )
    assert client.get("/api/contacts?q=иванова", headers=operator).json()["total"] == 1

    task = client.post(
        "/api/tasks",
        json={"title": "Перезвонить", "type": "call", "contact_id": body["contact_id"],
              "due_at": "2030-01-01T10:00:00+03:00", "assignee_id": "me"},
        headers=operator,
    )  # fmt: skip
    assert task.status_code == 201
    task_id = task.json()["id"]
    mine = client.get("/api/tasks?assignee=me", headers=operator).json()["items"]
    assert [t["id"] for t in mine] == [task_id] and mine[0][
        "due_at"
    ] == "2030-01-01T07:00:00.000000Z"
    done = client.post(f"/api/tasks/{task_id}/complete", headers=operator)
    assert done.status_code == 200 and done.json()["status"] == "done"
    assert client.post(f"/api/tasks/{task_id}/complete", headers=operator).status_code == 409


def test_authentication_and_roles(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    assert client.get("/api/inbox").status_code == 401
    assert client.get("/api/inbox", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/inbox", headers={"Authorization": "Basic eDp5"}).status_code == 401
    assert client.get("/healthz").status_code == 200
    auditor = token_for(client, "auditor")
    operator = token_for(client, "operator")
    created = client.post("/api/inbound", json=inbound("a-1"), headers=operator).json()
    assert client.get("/api/inbox", headers=auditor).status_code == 200
    assert (
        client.get(f"/api/contacts/{created['contact_id']}/timeline", headers=auditor).status_code
        == 200
    )
    for method, path, payload in [
        ("post", "/api/inbound", inbound("a-2")),
        ("post", f"/api/conversations/{created['conversation_id']}/messages", {"text": "x"}),
        ("patch", f"/api/contacts/{created['contact_id']}", {"name": "x"}),
        ("post", "/api/tasks", {"title": "x"}),
    ]:
        response = getattr(client, method)(path, json=payload, headers=auditor)
        assert response.status_code == 403, (path, response.text)
    assert (
        client.post(
            "/api/users", json={"email": "z@example.com", "role": "admin"}, headers=operator
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/api/attributes", json={"key": "k", "label": "K", "type": "text"}, headers=operator
        ).status_code
        == 403
    )


def test_bad_input_answers(api: tuple[TestClient, Runtime]) -> None:
    client, runtime = api
    cases = [
        ({"channel": "api", "from": {"email": "a@example.com"}}, "external_id"),
        (inbound("b-1", email="not-an-email"), "email"),
        (inbound("b-2", phone="12"), "phone"),
        (inbound("b-3", name="nobody"), "from"),
        ({**inbound("b-4"), "channel": "Bad Channel!"}, "channel"),
    ]
    for payload, field in cases:
        response = client.post("/api/inbound", json=payload, headers=ADMIN)
        assert response.status_code == 422, response.text
        assert field in {str(part) for item in response.json()["detail"] for part in item["loc"]}
    assert (
        client.post(
            "/api/inbound",
            content=b"{not json",
            headers={**ADMIN, "content-type": "application/json"},
        ).status_code
        == 422
    )
    big = {**inbound("b-5"), "text": "я" * 40_000}  # 80 kB of UTF-8 over a 64 kB limit
    assert client.post("/api/inbound", json=big, headers=ADMIN).status_code == 413
    missing = "00000000-0000-0000-0000-000000000000"
    assert client.get(f"/api/contacts/{missing}", headers=ADMIN).status_code == 404
    assert client.get(f"/api/conversations/{missing}", headers=ADMIN).status_code == 404
    assert (
        client.post(
            f"/api/conversations/{missing}/messages", json={"text": "x"}, headers=ADMIN
        ).status_code
        == 404
    )
    assert client.post(f"/api/tasks/{missing}/complete", headers=ADMIN).status_code == 404
    assert client.get("/api/contacts/not-a-uuid", headers=ADMIN).status_code == 422
    assert client.get("/api/contacts?attr.nope=1", headers=ADMIN).status_code == 422
    created = client.post("/api/inbound", json=inbound("b-6"), headers=ADMIN).json()
    bad_attr = client.patch(
        f"/api/contacts/{created['contact_id']}", json={"attributes": {"x": 1}}, headers=ADMIN
    )
    assert bad_attr.status_code == 422 and bad_attr.json()["detail"][0]["loc"] == [
        "body",
        "attributes",
        "x",
    ]
    assert runtime.app.recorder.max_notification_id() is not None


def test_a_lost_concurrency_race_is_409(
    api: tuple[TestClient, Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, runtime = api
    created = client.post("/api/inbound", json=inbound("r-1"), headers=ADMIN).json()

    def always_conflicting(*aggregates: Any, **kwargs: Any) -> Any:
        raise RecordConflictError("another writer got there first")

    monkeypatch.setattr(runtime.app, "_record", always_conflicting)
    response = client.post(
        f"/api/conversations/{created['conversation_id']}/status",
        json={"status": "resolved"},
        headers=ADMIN,
    )
    assert response.status_code == 409 and "try again" in response.json()["detail"]


def test_openapi_documents_the_contract(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    spec = client.get("/openapi.json").json()
    for path in (
        "/api/inbound",
        "/api/contacts",
        "/api/contacts/{contact_id}/timeline",
        "/api/inbox",
        "/api/conversations/{conversation_id}/messages",
        "/api/tasks",
        "/api/tasks/{task_id}/complete",
    ):
        assert path in spec["paths"], path
    assert client.get("/docs").status_code == 200


# -- sources: the acquisition cost is money; every inquiry keeps its source (issue 13) ----------


def contact_with_source(client: TestClient, source: dict[str, Any]) -> Any:
    return client.post("/api/contacts", json={"name": "Лид", "source": source}, headers=ADMIN)


@pytest.mark.parametrize(
    ("source", "cost"),
    [
        # what old clients send: a bare number, read as roubles
        ({"acquisition_cost": 1500}, {"amount": "1500", "currency": "RUB"}),
        ({"acquisition_cost": 12.5}, {"amount": "12.5", "currency": "RUB"}),
        # a number or string with its currency
        (
            {"acquisition_cost": "1500.50", "acquisition_currency": "USD"},
            {"amount": "1500.50", "currency": "USD"},
        ),
        (
            {"acquisition_cost": 99.9, "acquisition_currency": "eur"},
            {"amount": "99.9", "currency": "EUR"},
        ),
        # the money object, as the API shows it back
        (
            {"acquisition_cost": {"amount": "250.00", "currency": "KZT"}},
            {"amount": "250.00", "currency": "KZT"},
        ),
        (
            {"acquisition_cost": {"amount": 7.25, "currency": "RUB"}},
            {"amount": "7.25", "currency": "RUB"},
        ),
    ],
)
def test_api_source_cost_takes_every_money_form(
    api: tuple[TestClient, Runtime], source: dict[str, Any], cost: dict[str, str]
) -> None:
    client, _ = api
    created = contact_with_source(client, {"utm_source": "google", **source})
    assert created.status_code == 201, created.text
    card = client.get(f"/api/contacts/{created.json()['id']}", headers=ADMIN).json()
    assert card["source"] == {"utm_source": "google", "acquisition_cost": cost}


@pytest.mark.parametrize(
    "source",
    [
        {"acquisition_cost": -5},
        {"acquisition_cost": "a lot"},
        {"acquisition_cost": "5", "acquisition_currency": "RUBLE"},
        {"acquisition_cost": {"amount": "5"}},
        {"acquisition_cost": {"amount": "5", "currency": "USD"}, "acquisition_currency": "EUR"},
        {"acquisition_currency": "USD"},
    ],
)
def test_api_source_cost_that_is_no_money_is_refused(
    api: tuple[TestClient, Runtime], source: dict[str, Any]
) -> None:
    client, runtime = api
    before = runtime.app.recorder.max_notification_id()
    refused = contact_with_source(client, source)
    assert refused.status_code == 422, refused.text
    assert runtime.app.recorder.max_notification_id() == before


def test_api_inbound_source_is_kept_per_message(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    first = {
        **inbound("src-1"),
        "source": {
            "utm_campaign": "spring",
            "acquisition_cost": {"amount": "300", "currency": "RUB"},
        },
    }
    second = {**inbound("src-2"), "source": {"utm_campaign": "autumn", "form": "callback"}}
    one = client.post("/api/inbound", json=first, headers=ADMIN).json()
    two = client.post("/api/inbound", json=second, headers=ADMIN).json()
    assert two["contact_id"] == one["contact_id"]
    card = client.get(f"/api/contacts/{one['contact_id']}", headers=ADMIN).json()
    spring = {
        "channel": "api",
        "utm_campaign": "spring",
        "acquisition_cost": {"amount": "300", "currency": "RUB"},
    }
    assert card["source"] == spring  # the first touch stays
    thread = client.get(f"/api/conversations/{one['conversation_id']}", headers=ADMIN).json()
    assert [m["source"] for m in thread["messages"]] == [
        spring,
        {"channel": "api", "utm_campaign": "autumn", "form": "callback"},
    ]
