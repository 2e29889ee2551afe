"""Rules and templates through the API: validation at save, explanations, webhooks, opt-out."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_runtime
from tests.services.test_api import ADMIN, token_for
from tests.waiting import wait_for
from threadline.projections.automation import webhook_calls
from threadline.services.api.app import create_app
from threadline.services.rules_io import export_rules, import_rules
from threadline.services.runtime import Runtime


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Runtime]]:
    runtime = make_runtime(
        database_url,
        admin_token="admin-secret",
        attachments_dir=str(tmp_path / "a"),
        webhook_allow=("127.0.0.1",),  # the local test receiver (internal targets need it)
    )
    runtime.start_triggers()
    try:
        with TestClient(create_app(runtime)) as client:
            yield client, runtime
    finally:
        runtime.close()


def inbound(client: TestClient, key: str, text: str = "Hello") -> dict[str, Any]:
    response = client.post(
        "/api/inbound",
        json={
            "channel": "api",
            "external_id": key,
            "from": {"name": "Vera Client", "email": "vera@example.com"},
            "text": text,
        },
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


WELCOME = {
    "slug": "welcome",
    "name": "Welcome",
    "variants": {
        "email": {
            "subject": "Hello {{ contact.first_name }}",
            "text": "Dear {{ contact.display_name }}, thanks! {{ unsubscribe_url }}",
            "html": "<p>Dear {{ contact.display_name }}</p>",
        },
        "default": {"text": "Thanks, {{ contact.first_name }}!"},
    },
}


def test_templates_are_checked_when_saved_and_previewed_for_a_contact(
    api: tuple[TestClient, Runtime],
) -> None:
    client, _ = api
    broken = {**WELCOME, "variants": {"default": {"text": "Hi {{ contact.nickname }}"}}}
    refused = client.post("/api/templates", json=broken, headers=ADMIN)
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"][0]["loc"][1:3] == ["variants", "default"]
    syntax = {**WELCOME, "variants": {"default": {"text": "Hi {{ contact.display_name "}}}
    assert client.post("/api/templates", json=syntax, headers=ADMIN).status_code == 422
    assert client.post("/api/templates", json=WELCOME, headers=ADMIN).status_code == 201
    assert client.post("/api/templates", json=WELCOME, headers=ADMIN).status_code == 409
    contact = inbound(client, "m1")["contact_id"]
    preview = client.post(
        "/api/templates/welcome/preview",
        json={"contact_id": contact, "channel": "email"},
        headers=ADMIN,
    )
    assert preview.status_code == 200, preview.text
    assert preview.json()["subject"] == "Hello Vera"
    assert "/unsubscribe/" in preview.json()["text"]
    sms = client.post(
        "/api/templates/welcome/preview", json={"contact_id": contact, "channel": "sms"},
        headers=ADMIN,
    ).json()  # fmt: skip
    assert sms["text"] == "Thanks, Vera!" and sms["sms_segments"] == 1


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"when": {"event": "no such event!"}}, "when.event"),
        ({"if": {"field": "event.text", "op": "resembles", "value": "x"}}, "if"),
        ({"then": [{"send_template": {"template": "missing"}}]}, "then[0].send_template.template"),
        ({"then": [{"teleport": {}}]}, "then[0].teleport"),
        ({"after": {"delay": "soon"}}, "after.delay"),
        ({"at": {"cron": "every day"}}, "at.cron"),
    ],
)
def test_rules_are_checked_when_saved(
    api: tuple[TestClient, Runtime], change: dict[str, Any], path: str
) -> None:
    client, _ = api
    rule = {"name": "R", "when": {"event": "message.received"}, "then": [{"add_tag": "x"}]}
    response = client.post("/api/rules", json={**rule, **change}, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert ".".join(str(p) for p in response.json()["detail"][0]["loc"][1:]).startswith(path)


def test_an_automatic_message_explains_itself(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    assert client.post("/api/templates", json=WELCOME, headers=ADMIN).status_code == 201
    created = client.post(
        "/api/rules",
        json={
            "name": "Welcome API leads",
            "when": {"event": "message.received", "channel": "api"},
            "if": {"all": [{"field": "contact.lifecycle", "op": "eq", "value": "lead"}]},
            "then": [{"send_template": {"template": "welcome", "channel": "same"}}],
        },
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    rule_id = created.json()["id"]
    auditor = token_for(client, "auditor")
    assert (
        client.patch(f"/api/rules/{rule_id}", json={"enabled": False}, headers=auditor).status_code
        == 403
    )
    message = inbound(client, "m1", "Do you ship to Kazan?")
    firings = wait_for(
        lambda: client.get(f"/api/rules/{rule_id}/firings", headers=ADMIN).json()["items"]
    )
    sent = firings[0]["effects"][0]["message_id"]
    why = client.get(f"/api/automation/explain/{sent}", headers=auditor)
    assert why.status_code == 200, why.text
    explained = why.json()
    assert explained["rule"]["name"] == "Welcome API leads"
    assert "message.received" in explained["cause"]["names"]
    assert explained["cause"]["contact_id"] == message["contact_id"]
    assert any(c.get("actual") == "lead" for c in _leaves(explained["conditions"]))
    conversation = client.get(
        f"/api/conversations/{message['conversation_id']}", headers=ADMIN
    ).json()
    automatic = [m for m in conversation["messages"] if m["id"] == sent]
    assert automatic and automatic[0]["actor"] == f"rule:{rule_id}"
    assert (
        client.get(f"/api/automation/explain/{message['message_id']}", headers=ADMIN).status_code
        == 404
    )
    disabled = client.patch(f"/api/rules/{rule_id}", json={"enabled": False}, headers=ADMIN)
    assert disabled.json()["enabled"] is False


def _leaves(trace: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(trace, dict):
        found.append(trace)
        for value in trace.values():
            found.extend(_leaves(value))
    elif isinstance(trace, list):
        for item in trace:
            found.extend(_leaves(item))
    return found


def test_rules_export_and_import_round_trip(
    api: tuple[TestClient, Runtime], tmp_path: Path
) -> None:
    client, runtime = api
    assert client.post("/api/templates", json=WELCOME, headers=ADMIN).status_code == 201
    rule = {
        "name": "Call back",
        "when": "call.missed",
        "then": [{"create_task": {"title": "Call back", "type": "call", "due_in": "30m"}}],
    }
    assert client.post("/api/rules", json=rule, headers=ADMIN).status_code == 201
    text, counts = export_rules(runtime)
    assert counts == (1, 1)
    other = make_runtime(f"sqlite:///{tmp_path}/other.db", attachments_dir=str(tmp_path / "b"))
    try:
        assert import_rules(other, text, actor="test") == (1, 1)
        again, _ = export_rules(other)
        assert again == text
        assert import_rules(other, text, actor="test") == (1, 1)  # idempotent
    finally:
        other.close()


class Receiver:
    """A local HTTP endpoint that keeps what webhooks post to it."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.calls.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def test_webhook_actions_are_signed_and_recorded(
    api: tuple[TestClient, Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, runtime = api
    monkeypatch.setenv("HOOK_SECRET", "hook-secret-value")
    receiver = Receiver()
    try:
        rule = {
            "name": "Tell the ERP",
            "when": "message.received",
            "then": [{"webhook": {"url": receiver.url, "secret": "${HOOK_SECRET}"}}],
        }
        assert client.post("/api/rules", json=rule, headers=ADMIN).status_code == 201
        runtime.channels.start(pollers=False)
        message = inbound(client, "m1")
        wait_for(lambda: receiver.calls)
        headers, body = receiver.calls[0]
        expected = hmac.new(b"hook-secret-value", body, hashlib.sha256).hexdigest()
        assert headers["X-Threadline-Signature"] == f"sha256={expected}"
        assert json.loads(body)["contact_id"] == message["contact_id"]
        wait_for(lambda: webhook_calls(runtime.views, "delivered"))
        time.sleep(0.6)
        assert len(receiver.calls) == 1
    finally:
        receiver.server.shutdown()


def test_the_unsubscribe_link_opts_the_contact_out(api: tuple[TestClient, Runtime]) -> None:
    client, runtime = api
    contact = inbound(client, "m1")["contact_id"]
    url = runtime.unsubscribe.url(contact)
    path = url[len(runtime.settings.public_url) :]
    page = client.get(path)
    assert page.status_code == 200 and "<form" in page.text
    assert not runtime.app.repository.get(__import__("uuid").UUID(contact)).has_opted_out("email")
    assert client.post(path).status_code == 200
    assert runtime.app.repository.get(__import__("uuid").UUID(contact)).has_opted_out("email")
    forged = path[:-3] + "abc"
    assert client.post(forged).status_code == 404


def test_conversation_unanswered_is_a_delay_cancelled_by_the_reply() -> None:
    from threadline.triggers.rules import RuleError, validate_rule

    rule = validate_rule(
        {
            "name": "Late",
            "when": {"event": "conversation.unanswered", "unanswered_for": "2h"},
            "then": [{"add_tag": "late"}],
        }
    )
    assert rule["when"] == {"event": "message.received"}
    assert rule["after"] == {"delay": "2h", "cancel_on": ["message.sent"]}
    with pytest.raises(RuleError, match="unanswered_for"):
        validate_rule({"name": "x", "when": "conversation.unanswered", "then": [{"stop": True}]})
