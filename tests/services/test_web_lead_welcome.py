"""A web lead is one inbox row: the automatic welcome lives in the form's conversation
(issue 11, item 3).

Seen: two inbox rows per web lead, the form's conversation and a separate e-mail
conversation holding only the automatic welcome. Here the shipped rules run, a lead
submits the public form (POST /forms/{slug}), the welcome leaves through the real
SMTP adapter to a local aiosmtpd, and the lead's e-mail answer to it (parsed by the
real MIME parser) threads back into the same conversation.
"""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.channels.dovecot import SmtpCapture, smtp_capture  # noqa: F401
from tests.conftest import make_runtime
from tests.waiting import wait_for
from threadline.channels.email_mime import parse_email
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime
from threadline.triggers.defaults import seed_defaults

ADMIN = {"Authorization": "Bearer admin-secret"}
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def lead_runtime(
    database_url: str,
    tmp_path: Path,
    smtp_capture: SmtpCapture,  # noqa: F811
) -> Iterator[tuple[Runtime, TestClient]]:
    runtime = make_runtime(
        database_url,
        admin_token="admin-secret",
        attachments_dir=str(tmp_path / "attachments"),
    )
    try:
        seed_defaults(runtime.app)
        runtime.channels.configure(
            "support", "email", "Support", smtp_capture.settings(), actor="test"
        )
        runtime.wait_for_views(runtime.app.recorder.max_notification_id())
        runtime.start_triggers()
        runtime.channels.start(pollers=False)
        with TestClient(create_app(runtime)) as client:
            yield runtime, client
    finally:
        runtime.close()


def inbox_items(client: TestClient) -> list[dict[str, Any]]:
    return list(client.get("/api/inbox?limit=200", headers=ADMIN).json()["items"])


def messages(client: TestClient, conversation_id: str) -> list[dict[str, Any]]:
    conversation = client.get(f"/api/conversations/{conversation_id}", headers=ADMIN).json()
    return list(conversation["messages"])


def test_the_welcome_and_the_leads_answer_are_in_the_forms_conversation(
    lead_runtime: tuple[Runtime, TestClient],
    smtp_capture: SmtpCapture,  # noqa: F811
) -> None:
    runtime, client = lead_runtime
    form = {
        "slug": "callback",
        "name": "Call me back",
        "fields": [
            {"name": "full_name", "label": "Name", "required": True},
            {"name": "email", "label": "E-mail", "type": "email", "required": True},
            {"name": "message", "label": "Message", "type": "textarea"},
        ],
        "mapping": {"full_name": "name", "email": "email"},
    }
    assert client.post("/api/forms", json=form, headers=ADMIN).status_code == 201
    page = client.get("/forms/callback").text
    token = page.split('name="_token" value="')[1].split('"')[0]
    submitted = client.post(
        "/forms/callback",
        data={
            "full_name": "Clara Web",
            "email": "clara@example.net",
            "message": "Please call me back",
            "website": "",
            "_token": token,
        },
        follow_redirects=False,
    )
    assert submitted.status_code in (200, 201, 303), submitted.text

    (welcome,) = smtp_capture.wait_for(1, seconds=60)
    assert welcome.rcpt_tos == ["clara@example.net"]
    mail = message_from_bytes(welcome.raw, policy=policy.default)
    assert "Thank you for your request" in str(mail["Subject"])

    [row] = inbox_items(client)  # one row per lead, not a second one for the welcome
    assert row["channel"] == "web"
    conversation_id = row["conversation_id"]
    thread = wait_for(
        lambda: (
            (found := messages(client, conversation_id))
            and any(m["direction"] == "outbound" and m["state"] == "sent" for m in found)
            and found
        ),
        "the welcome recorded as sent in the form's conversation",
    )
    [outbound] = [m for m in thread if m["direction"] == "outbound"]
    assert outbound["channel"] == "email"  # sent by e-mail, kept in the form's conversation
    assert outbound["provider_id"] == mail["Message-ID"]

    # The lead answers the welcome from their mail program.
    answer = EmailMessage()
    answer["From"] = "Clara Web <clara@example.net>"
    answer["To"] = "support@example.com"
    answer["Subject"] = f"Re: {mail['Subject']}"
    answer["Message-ID"] = "<answer-1@example.net>"
    answer["In-Reply-To"] = mail["Message-ID"]
    answer["References"] = mail["Message-ID"]
    answer.set_content("Tomorrow at 10 works for me.")
    inbox = runtime.channels.inbox("support")
    assert inbox is not None
    parsed = parse_email(answer.as_bytes(), runtime.channels.attachments, inbox.id)
    committed = runtime.app.ingest(parsed)
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    assert str(committed.value.conversation_id) == conversation_id

    [row] = inbox_items(client)
    assert row["conversation_id"] == conversation_id
    texts = [m["text"].strip() for m in messages(client, conversation_id)]
    assert texts[-1] == "Tomorrow at 10 works for me."
