"""The auditor's event feed (`GET /api/audit/events`), SQLite and PostgreSQL: every event with
its actor and correlation id, narrowed by what it concerns, paged by position, and leading from
an automatic effect back to the inbound message that caused it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_runtime
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime

ADMIN = {"Authorization": "Bearer admin-secret"}


@pytest.fixture
def api(database_url: str) -> Iterator[tuple[TestClient, Runtime]]:
    runtime = make_runtime(database_url, admin_token="admin-secret")
    runtime.start_triggers()  # the rule of the first test answers with a tag
    try:
        with TestClient(create_app(runtime)) as client:
            yield client, runtime
    finally:
        runtime.close()


def token_for(client: TestClient, role: str, name: str = "") -> tuple[dict[str, str], str]:
    answer = client.post(
        "/api/users",
        json={"email": f"{role}@example.com", "role": role, "name": name or role.title()},
        headers=ADMIN,
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    return {"Authorization": f"Bearer {body['token']}"}, str(body["id"])


def inbound(external_id: str, email: str, text: str = "Когда доставка?") -> dict[str, Any]:
    return {
        "channel": "api",
        "external_id": external_id,
        "from": {"name": "Мария", "email": email},
        "subject": "Вопрос",
        "text": text,
    }


def feed(client: TestClient, headers: dict[str, str] = ADMIN, **params: Any) -> list[Any]:
    """Every page of the feed for `params`, walked by `next_after`."""
    items: list[Any] = []
    after = 0
    while True:
        answer = client.get("/api/audit/events", params={**params, "after": after}, headers=headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        items += body["items"]
        if body["next_after"] is None:
            return items
        after = body["next_after"]


def until(condition: Any, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = condition()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_a_contacts_history_with_actors_causes_and_pages(api: tuple[TestClient, Runtime]) -> None:
    client, runtime = api
    operator, operator_id = token_for(client, "operator", "Ольга Петрова")
    rule = {"name": "Tag who writes", "when": "message.received", "then": [{"add_tag": "wrote"}]}
    made = client.post("/api/rules", json=rule, headers=ADMIN)
    assert made.status_code == 201, made.text
    rule_id = made.json()["id"]
    first = client.post("/api/inbound", json=inbound("a-1", "maria@example.com"), headers=operator)
    assert first.status_code == 201, first.text
    ids = first.json()
    other = client.post("/api/inbound", json=inbound("a-2", "ivan@example.com"), headers=operator)
    other_contact = other.json()["contact_id"]
    assigned = client.post(
        f"/api/conversations/{ids['conversation_id']}/assign",
        json={"assignee_id": "me"},
        headers=operator,
    )
    assert assigned.status_code == 200, assigned.text
    resolved = client.post(
        f"/api/conversations/{ids['conversation_id']}/status",
        json={"status": "resolved"},
        headers=ADMIN,
    )
    assert resolved.status_code == 200, resolved.text

    def tagged() -> list[Any]:
        runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=5)
        return [
            e
            for e in feed(client, contact_id=ids["contact_id"])
            if e["event_type"] == "ContactTagsAdded"
        ]

    added = until(tagged)
    assert added, "the rule's tag never reached the feed"
    history = feed(client, contact_id=ids["contact_id"])
    types = [e["event_type"] for e in history]
    for expected in ("ContactCreated", "ConversationStarted", "MessageReceived", "RuleFired"):
        assert expected in types, types
    positions = [e["position"] for e in history]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    # nothing of the other contact's; everything names this contact
    assert all(e["contact_id"] == ids["contact_id"] for e in history)
    assert other_contact not in {e["contact_id"] for e in history}
    # events that do not name their contact (the conversation assigned, resolved) are found
    (assignment,) = [e for e in history if e["event_type"] == "ConversationAssigned"]
    assert assignment["conversation_id"] == ids["conversation_id"]
    assert assignment["actor"] == f"user:{operator_id}" and assignment["actor_kind"] == "user"
    assert assignment["actor_name"] == "Ольга Петрова" and assignment["bootstrap_token"] is False
    assert assignment["data"]["assignee_id"] == operator_id
    # what the bootstrap admin token did is flagged as such
    (resolution,) = [e for e in history if e["event_type"] == "ConversationStatusChanged"]
    assert resolution["actor"] == "admin-token" and resolution["bootstrap_token"] is True
    # a message through the API is the channel's; its text is the log's
    (received,) = [e for e in history if e["event_type"] == "MessageReceived"]
    assert received["actor"] == "channel:api" and received["actor_kind"] == "channel"
    assert "Когда доставка?" in str(received["data"])
    # the rule's tag leads back to its firing, and the firing to the message it answered
    (tag,) = added
    assert tag["actor"] == f"rule:{rule_id}" and tag["actor_kind"] == "rule"
    assert tag["actor_name"] == "Tag who writes" and tag["data"]["tags"] == ["wrote"]
    by_position = {e["position"]: e for e in feed(client)}
    firing = by_position[tag["caused_by"]]
    assert firing["event_type"] == "RuleFired" and firing["data"]["rule_id"] == rule_id
    cause = by_position[firing["caused_by"]]
    assert cause["event_type"] == "MessageReceived" and cause["aggregate_id"] == ids["message_id"]
    # ... and the firing shares the message's correlation id
    chain = {e["event_type"] for e in feed(client, correlation_id=cause["correlation_id"])}
    assert {"MessageReceived", "RuleFired"} <= chain, chain
    # pages of one are the same events as one page
    assert feed(client, contact_id=ids["contact_id"], limit=1) == history
    # narrowed by actor, actor kind, type and time
    by_rule = feed(client, actor=f"rule:{rule_id}")
    assert by_rule and all(e["actor"] == f"rule:{rule_id}" for e in by_rule)
    assert {e["position"] for e in feed(client, actor_kind="rule")} == {
        e["position"] for e in by_rule
    }
    only = feed(client, event_type=["RuleFired", "ContactTagsAdded"])
    assert {e["event_type"] for e in only} == {"RuleFired", "ContactTagsAdded"}
    assert len([e for e in only if e["event_type"] == "RuleFired"]) == 2  # both messages
    moment = received["occurred_at"]
    before = feed(client, to=moment)
    since = feed(client, **{"from": moment})
    assert all(e["occurred_at"] < moment for e in before)
    assert all(e["occurred_at"] >= moment for e in since)
    assert len(before) + len(since) == len(feed(client))
    # the same feed after the views are rebuilt from the log
    runtime.rebuild_views()
    assert feed(client, contact_id=ids["contact_id"]) == history


def test_a_merged_contacts_events_belong_to_the_survivor(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    one = client.post("/api/inbound", json=inbound("m-1", "a@example.com"), headers=ADMIN).json()
    two = client.post("/api/inbound", json=inbound("m-2", "b@example.com"), headers=ADMIN).json()
    before = {e["position"] for e in feed(client, contact_id=two["contact_id"])}
    assert before
    merged = client.post(
        f"/api/contacts/{one['contact_id']}/merge",
        json={"other_id": two["contact_id"]},
        headers=ADMIN,
    )
    assert merged.status_code == 200, merged.text
    survivor = {e["position"] for e in feed(client, contact_id=one["contact_id"])}
    assert before <= survivor


def test_only_admins_and_auditors_read_the_feed(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    operator, _ = token_for(client, "operator")
    manager, _ = token_for(client, "manager")
    auditor, _ = token_for(client, "auditor")
    assert client.get("/api/audit/events", headers=operator).status_code == 403
    assert client.get("/api/audit/events", headers=manager).status_code == 403
    assert client.get("/api/audit/events").status_code == 401
    seen = client.get("/api/audit/events", headers=auditor)
    assert seen.status_code == 200 and seen.json()["items"], seen.text
    assert client.get("/api/audit/events?limit=0", headers=auditor).status_code == 422
    assert client.get("/api/audit/events?from=yesterday", headers=auditor).status_code == 422
    # a moment the views cannot hold (before the year 1 in UTC) is refused, never a 500
    edge = {"from": "0001-01-01T00:00:00+14:00"}
    assert client.get("/api/audit/events", params=edge, headers=auditor).status_code == 422
    assert client.get("/api/audit/export", params=edge, headers=auditor).status_code == 422
    nobody = "/api/audit/contacts/00000000-0000-0000-0000-000000000001"
    at_edge = {"at": edge["from"]}
    assert client.get(nobody, params=at_edge, headers=auditor).status_code == 422


def test_a_card_and_a_thread_as_they_stood_at_a_moment(api: tuple[TestClient, Runtime]) -> None:
    client, runtime = api
    operator, _ = token_for(client, "operator")
    auditor, _ = token_for(client, "auditor")
    ids = client.post("/api/inbound", json=inbound("h-1", "olga@example.com"), headers=ADMIN).json()
    contact, conversation = ids["contact_id"], ids["conversation_id"]
    card_then = client.get(f"/api/contacts/{contact}", headers=ADMIN).json()
    card_then.pop("open_tasks")
    thread_then = client.get(f"/api/conversations/{conversation}", headers=ADMIN).json()
    then = runtime.app.recorder.max_notification_id()
    assert until(lambda: runtime.wait_for_views(then, timeout=5))
    # what happens after: a new name, a tag, a second message, a note, the thread resolved
    patched = client.patch(
        f"/api/contacts/{contact}", json={"name": "Ольга Смирнова", "add_tags": ["vip"]},
        headers=ADMIN,
    )  # fmt: skip
    assert patched.status_code == 200, patched.text
    client.post(
        "/api/inbound", json=inbound("h-2", "olga@example.com", "Ещё вопрос"), headers=ADMIN
    )
    note = client.post(
        f"/api/conversations/{conversation}/messages",
        json={"text": "перезвонить", "internal": True}, headers=ADMIN,
    )  # fmt: skip
    assert note.status_code == 201, note.text
    now = client.get(f"/api/contacts/{contact}", headers=ADMIN).json()
    assert now["display_name"] == "Ольга Смирнова" and "vip" in now["tags"]

    at_position = client.get(f"/api/audit/contacts/{contact}?position={then}", headers=auditor)
    assert at_position.status_code == 200, at_position.text
    body = at_position.json()
    assert body["position"] == then
    card = body["contact"]
    timeline = card.pop("timeline")
    assert card == card_then  # exactly the card the live views showed then
    assert [row["kind"] for row in timeline if row["kind"].startswith("message.")] == [
        "message.received"
    ]
    assert "Ещё вопрос" not in str(timeline) and "перезвонить" not in str(timeline)
    thread = client.get(
        f"/api/audit/conversations/{conversation}?position={then}", headers=auditor
    ).json()["conversation"]
    assert [m["text"] for m in thread["messages"]] == [m["text"] for m in thread_then["messages"]]
    assert thread["status"] == thread_then["status"]
    # a moment gives the position the log had reached then
    moment = max(e["occurred_at"] for e in feed(client) if e["position"] <= then)
    at_moment = client.get(f"/api/audit/contacts/{contact}", params={"at": moment}, headers=auditor)
    assert at_moment.status_code == 200 and at_moment.json()["position"] == then
    assert at_moment.json()["contact"]["display_name"] == card_then["display_name"]
    # by now (no moment): today's card, rebuilt from the log
    latest = client.get(f"/api/audit/contacts/{contact}", headers=auditor).json()["contact"]
    assert latest["display_name"] == "Ольга Смирнова" and "vip" in latest["tags"]
    latest_thread = client.get(f"/api/audit/conversations/{conversation}", headers=auditor).json()[
        "conversation"
    ]
    texts = [m["text"] for m in latest_thread["messages"]]
    assert "Ещё вопрос" in texts and "перезвонить" in texts
    # before the contact existed; beyond the log; not an auditor
    first = min(e["position"] for e in feed(client, contact_id=contact))
    before = client.get(f"/api/audit/contacts/{contact}?position={first - 1}", headers=auditor)
    assert before.status_code == 404, before.text
    head = runtime.app.recorder.max_notification_id()
    beyond = client.get(f"/api/audit/contacts/{contact}?position={head + 100}", headers=auditor)
    assert beyond.status_code == 422
    assert client.get(f"/api/audit/contacts/{contact}", headers=operator).status_code == 403
    assert client.get("/api/audit/contacts/not-an-id", headers=auditor).status_code == 422


def test_an_export_as_json_lines_and_as_a_readable_report(
    api: tuple[TestClient, Runtime], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from threadline.domain.model.inbound import AttachmentMeta, InboundMessage
    from threadline.services.cli import app as cli

    client, runtime = api
    auditor, _ = token_for(client, "auditor")
    scheme = AttachmentMeta("Схема <сети>.pdf", "application/pdf", 5120, "ab" * 32, stored=False)
    written = runtime.channels.ingest(
        InboundMessage.create(
            channel="email", dedup_key="e-1", identities=[("email", "pavel@example.com")],
            sender_name="Павел", subject="Схема", text="Смотрите <b>вложение</b>",
            attachments=[scheme],
        )
    )  # fmt: skip
    contact = str(written.contact_id)
    client.patch(f"/api/contacts/{contact}", json={"add_tags": ["export"]}, headers=ADMIN)
    history = feed(client, contact_id=contact)

    lines = client.get(f"/api/audit/export?contact_id={contact}", headers=auditor)
    assert lines.status_code == 200, lines.text
    assert lines.headers["content-type"].startswith("application/x-ndjson")
    exported = [json.loads(line) for line in lines.text.splitlines()]
    assert exported == history  # exactly the feed's items, in log order

    page = client.get(f"/api/audit/export?contact_id={contact}&format=html", headers=auditor)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "Смотрите &lt;b&gt;вложение&lt;/b&gt;" in html  # escaped, never markup
    assert "Схема &lt;сети&gt;.pdf" in html and "5120 bytes" in html and "ab" * 32 in html
    assert "bootstrap admin token" in html  # the tag added with the admin token
    assert f"positions {history[0]['position']} to {history[-1]['position']}" in html
    assert client.get("/api/audit/export", headers=auditor).status_code == 422
    operator, _ = token_for(client, "operator")
    assert (
        client.get(f"/api/audit/export?contact_id={contact}", headers=operator).status_code == 403
    )

    # the CLI writes the same two files
    monkeypatch.setenv("THREADLINE_DATABASE_URL", runtime.settings.database_url)
    if runtime.settings.views_url:
        monkeypatch.setenv("THREADLINE_VIEWS_URL", runtime.settings.views_url)
    done = CliRunner().invoke(
        cli, ["audit", "export", "--contact", contact, "--out", str(tmp_path / "x")]
    )
    assert done.exit_code == 0, done.output
    assert [
        json.loads(line)
        for line in (tmp_path / "x" / "events.jsonl").read_text(encoding="utf-8").splitlines()
    ] == history
    assert "Смотрите &lt;b&gt;вложение&lt;/b&gt;" in (tmp_path / "x" / "report.html").read_text(
        encoding="utf-8"
    )
    missing = CliRunner().invoke(cli, ["audit", "export", "--out", str(tmp_path / "y")])
    assert missing.exit_code == 2
