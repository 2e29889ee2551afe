"""The trigger engine's acceptance with the shipped default rules, against a real SMTP server.

A web-form submission yields, within a second, a welcome e-mail at the SMTP
server and a task for an operator; once the operator replies, the "no reply"
timer is gone; a missed call yields a call-back task.
"""

from __future__ import annotations

import time
from email import message_from_bytes, policy
from pathlib import Path
from uuid import UUID

import pytest

from tests.channels.conftest import smtp_capture  # noqa: F401  (fixture)
from tests.channels.dovecot import SmtpCapture
from tests.e2e.browser import running_app
from tests.waiting import wait_for
from threadline.projections import automation
from threadline.triggers.defaults import seed_defaults

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def test_default_rules_answer_a_form_lead_and_a_missed_call(
    tmp_path: Path,
    smtp_capture: SmtpCapture,  # noqa: F811
) -> None:
    with running_app(tmp_path, delivery_retry_seconds=0.2) as server:
        runtime = server.runtime
        seed_defaults(runtime.app)
        operator = server.api(
            "POST", "/api/users", json={"email": "op@example.com", "role": "operator"}
        ).json()
        response = server.api(
            "POST",
            "/api/inboxes",
            json={"slug": "mail", "channel": "email", "name": "Mail",
                  "settings": smtp_capture.settings()},
        )  # fmt: skip
        assert response.status_code == 201, response.text
        form = {
            "slug": "demo",
            "name": "Request a demo",
            "fields": [
                {"name": "name", "label": "Name", "required": True},
                {"name": "email", "label": "E-mail", "type": "email", "required": True},
            ],
            "mapping": {"name": "name", "email": "email"},
        }
        assert server.api("POST", "/api/forms", json=form).status_code == 201
        runtime.wait_for_views(runtime.app.recorder.max_notification_id())
        runtime.start_triggers()
        runtime.channels.start(pollers=False)

        started = time.monotonic()
        submitted = server.client.post(
            "/forms/demo", json={"name": "Dmitry Lead", "email": "dmitry@example.org"}
        )
        assert submitted.status_code == 201, submitted.text
        contact_id = submitted.json()["contact_id"]
        [welcome] = smtp_capture.wait_for(1, seconds=60)
        welcomed_after = time.monotonic() - started
        assert welcome.rcpt_tos == ["dmitry@example.org"]
        mail = message_from_bytes(welcome.raw, policy=policy.default)
        assert mail["Subject"] == "Thank you for your request, Dmitry"
        text = mail.get_body(("plain",)).get_content()
        assert "Dmitry" in text and "/unsubscribe/" in text
        tasks = wait_for(
            lambda: server.api("GET", f"/api/tasks?contact_id={contact_id}").json()["items"],
            "the reply task",
        )
        assert tasks[0]["assignee_id"] == operator["id"]
        assert time.monotonic() - started < 5.0, "the automatic answer took too long"
        assert welcomed_after < 5.0

        timers = wait_for(
            lambda: automation.timers(runtime.views, state="scheduled", contact_id=contact_id),
            "the no-reply timer",
        )
        web_conversation = timers[0].conversation_id
        reply = server.api(
            "POST",
            f"/api/conversations/{web_conversation}/messages",
            json={"text": "Hello Dmitry, when suits you?"},
        )
        assert reply.status_code == 201, reply.text
        wait_for(
            lambda: [
                t
                for t in automation.timers(runtime.views, state="cancelled")
                if t.id == timers[0].id
            ],
            "the no-reply timer to be cancelled by the reply",
        )

        call = server.api(
            "POST",
            "/api/inbound",
            json={"channel": "voice", "external_id": "CA-missed-1",
                  "from": {"phone": "+79161112233"}, "text": "Incoming call"},
        ).json()  # fmt: skip
        from threadline.domain.model.message import inbound_message_id

        runtime.app.record_call_status(
            inbound_message_id("voice", "CA-missed-1"), "no-answer", "channel:twilio"
        )
        call_back = wait_for(
            lambda: [
                t
                for t in server.api("GET", f"/api/tasks?contact_id={call['contact_id']}").json()[
                    "items"
                ]
                if t["type"] == "call"
            ],
            "the call-back task",
        )
        assert call_back[0]["title"].startswith("Call back")
        assert UUID(call_back[0]["assignee_id"]) == UUID(operator["id"])
