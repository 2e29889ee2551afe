"""The channels issue's acceptance, in one run against real peers.

A message sent by SMTP to a Dovecot mailbox, a Telegram update, a signed Twilio
SMS webhook, a call with its status callbacks and a browser form submission
each appear in `GET /api/inbox` and on the right contact's timeline; the
operator's reply to each goes out through the same channel (seen at the SMTP
server, the Bot API server and the Twilio server) and is marked delivered.
"""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest

from tests.channels.conftest import (  # noqa: F401  (fixtures, bound for this module)
    dovecot,
    smtp_capture,
    smtp_to_imap,
    telegram_server,
    tls_cert,
    twilio_server,
)
from tests.channels.dovecot import Dovecot, SmtpCapture, SmtpMta
from tests.channels.fake_telegram import FakeTelegram, message_update
from tests.channels.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, signed_post
from tests.e2e.browser import LiveServer, running_app, screenshot
from tests.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

OUR_NUMBER = "+15017122661"
OPERATOR = "+15558675310"
WEBHOOK_SECRET = "tg-webhook-secret-1"


def configure(server: LiveServer, slug: str, channel: str, settings: dict[str, Any]) -> None:
    response = server.api(
        "POST",
        "/api/inboxes",
        json={"slug": slug, "channel": channel, "name": slug, "settings": settings},
    )
    assert response.status_code == 201, response.text
    for secret in ("imap_password", "smtp_password", "bot_token", "webhook_secret", "auth_token"):
        if secret in settings:
            assert str(settings[secret]) not in response.text  # secrets never come back


def conversations(server: LiveServer) -> dict[str, dict[str, Any]]:
    items = server.api("GET", "/api/inbox?limit=100").json()["items"]
    return {item["channel"]: item for item in items}


def test_every_channel_in_and_out(
    tmp_path: Path,
    dovecot: Dovecot,  # noqa: F811
    smtp_to_imap: SmtpMta,  # noqa: F811
    smtp_capture: SmtpCapture,  # noqa: F811
    telegram_server: FakeTelegram,  # noqa: F811
    twilio_server: FakeTwilio,  # noqa: F811
    page: Any,
) -> None:
    with running_app(
        tmp_path,
        telegram_api_url=telegram_server.url,
        twilio_api_url=twilio_server.url,
        channel_poll_interval=1.0,
        delivery_retry_seconds=0.2,
    ) as server:
        mailbox = dovecot.add_user("support")
        configure(
            server,
            "support",
            "email",
            {**dovecot.settings(mailbox), **smtp_capture.settings()},
        )
        configure(
            server,
            "bot",
            "telegram",
            {"bot_token": telegram_server.token, "webhook_secret": WEBHOOK_SECRET},
        )
        configure(
            server,
            "phone",
            "twilio",
            {
                "account_sid": ACCOUNT_SID,
                "auth_token": AUTH_TOKEN,
                "phone_number": OUR_NUMBER,
                "forward_to": OPERATOR,
            },
        )
        server.runtime.channels.start()

        # 1. E-mail: SMTP into Dovecot, picked up by the IMAP poller.
        mail = EmailMessage()
        mail["From"] = "Anna Smirnova <anna@example.org>"
        mail["To"] = dovecot.address(mailbox)
        mail["Subject"] = "Where is my order?"
        mail["Message-ID"] = client_mail_id = make_msgid(domain="example.org")
        mail.set_content("Order 42 has not arrived.")
        smtp_to_imap.send(bytes(mail), mailbox)

        # 2. Telegram: an update posted to the webhook with the secret token.
        update = message_update(424242, 1, first_name="Boris", last_name="Ivanov", text="Привет!")
        answer = server.client.post(
            "/hooks/telegram/bot",
            json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET},
        )
        assert answer.status_code == 200, answer.text

        # 3. SMS: a webhook signed with Twilio's own RequestValidator.
        sms = {
            "MessageSid": "SM" + uuid.uuid4().hex,
            "AccountSid": ACCOUNT_SID,
            "From": "+79161234567",
            "To": OUR_NUMBER,
            "Body": "Can you call me back?",
            "NumMedia": "0",
        }
        answer = signed_post(server.client, "/hooks/twilio/sms", sms, public_url=server.url)
        assert answer.status_code == 200, answer.text

        # 4. A call, then its status callbacks (answered, 42 seconds).
        call_sid = "CA" + uuid.uuid4().hex
        call = {
            "CallSid": call_sid,
            "AccountSid": ACCOUNT_SID,
            "From": "+79031112233",
            "To": OUR_NUMBER,
            "CallStatus": "ringing",
            "Direction": "inbound",
        }
        answer = signed_post(server.client, "/hooks/twilio/voice", call, public_url=server.url)
        assert answer.status_code == 200 and "<Dial" in answer.text, answer.text
        for status, extra in (("in-progress", {}), ("completed", {"CallDuration": "42"})):
            callback = {**call, "CallStatus": status, **extra}
            answer = signed_post(
                server.client, "/hooks/twilio/status", callback, public_url=server.url
            )
            assert answer.status_code == 200, answer.text

        # 5. A web form, filled in and submitted by Chromium.
        form = {
            "slug": "callback",
            "name": "Call me back",
            "fields": [
                {"name": "full_name", "label": "Name", "required": True},
                {"name": "email", "label": "E-mail", "type": "email", "required": True},
            ],
            "mapping": {"full_name": "name", "email": "email"},
        }
        assert server.api("POST", "/api/forms", json=form).status_code == 201
        page.goto(f"{server.url}/forms/callback?utm_source=newsletter")
        page.fill("#tl-full_name", "Clara Web")
        page.fill("#tl-email", "clara@example.net")
        page.click("button[type=submit]")
        page.wait_for_url(f"{server.url}/forms/callback/thanks")

        found = wait_for(
            lambda: (
                (c := conversations(server)).keys() >= {"email", "telegram", "sms", "voice", "web"}
                and c
            ),
            "all five conversations in GET /api/inbox",
        )
        expected_people = {
            "email": "Anna Smirnova",
            "telegram": "Boris Ivanov",
            "web": "Clara Web",
        }
        for channel, name in expected_people.items():
            assert found[channel]["contact_name"] == name
        for channel, conversation in found.items():
            timeline = server.api(
                "GET", f"/api/contacts/{conversation['contact_id']}/timeline"
            ).json()["items"]
            assert any(row["channel"] == channel for row in timeline), channel
        call_rows = server.api(
            "GET", f"/api/contacts/{found['voice']['contact_id']}/timeline"
        ).json()["items"]
        [call_row] = [row for row in call_rows if row["kind"] == "call.received"]
        assert call_row["data"]["call"]["duration"] == 42
        assert call_row["data"]["call"]["outcome"] == "answered"

        # The operator answers each conversation from the same API.
        replies = {}
        for channel, conversation in found.items():
            response = server.api(
                "POST",
                f"/api/conversations/{conversation['conversation_id']}/messages",
                json={"text": f"Reply on {channel}"},
            )
            assert response.status_code == 201, response.text
            replies[channel] = response.json()["message_id"]

        def states() -> dict[str, str]:
            result = {}
            for channel, conversation in found.items():
                detail = server.api(
                    "GET", f"/api/conversations/{conversation['conversation_id']}"
                ).json()
                [mine] = [m for m in detail["messages"] if m["id"] == replies[channel]]
                result[channel] = mine["state"]
            return result

        # Each state is the provider's word: SMTP and the Bot API took the message (sent),
        # Twilio queued it (its status callbacks tell the rest).
        taken = {
            "email": "sent",
            "telegram": "sent",
            "web": "sent",
            "sms": "queued",
            "voice": "queued",
        }
        wait_for(lambda: states() == taken, "every reply taken by its provider")

        # ... and each went out through the channel the client wrote in.
        mails = smtp_capture.wait_for(2)
        by_recipient = {captured.rcpt_tos[0]: captured.raw for captured in mails}
        assert b"Reply on email" in by_recipient["anna@example.org"]
        assert f"In-Reply-To: {client_mail_id}".encode() in by_recipient["anna@example.org"]
        assert b"Reply on web" in by_recipient["clara@example.net"]
        [telegram_reply] = telegram_server.calls_of("sendMessage")
        assert int(telegram_reply["chat_id"]) == 424242
        assert telegram_reply["text"] == "Reply on telegram"
        assert [m["body"] for m in twilio_server.sent_to("+79161234567")] == ["Reply on sms"]
        assert [m["body"] for m in twilio_server.sent_to("+79031112233")] == ["Reply on voice"]
        screenshot(page, "channels-acceptance-form")
