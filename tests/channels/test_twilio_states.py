"""An SMS's state is what Twilio reported, and a failure reads as a plain reason (issue 11, item 6).

Seen: an SMS was "delivered" as soon as Twilio queued it, and a failed delivery showed
the provider's raw text while the activity feed said "Message sent". Here a reply goes
out through the delivery worker to the fake Twilio REST API, Twilio's status callbacks
come back signed to the real hook, and the API, the thread and the client's activity
feed are read back, in English and in Russian.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.channels.fake_twilio import FakeTwilio, signed_post, twilio_server  # noqa: F401
from tests.channels.test_twilio import (
    ADMIN,
    CLIENT,
    SMS,
    STATUS,
    Env,
    conversations,
    message_report,
    sms,
    twilio_env,
    wait_for_state,
)
from tests.web.helpers import web_client

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def env(database_url: str, tmp_path: Path, twilio_server: FakeTwilio) -> Iterator[Env]:  # noqa: F811
    with twilio_env(database_url, tmp_path, twilio_server) as environment:
        yield environment


def reply_by_sms(env: Env, inbound_sid: str, text: str) -> tuple[str, str, str]:
    """A client's SMS and an operator's reply, sent by the worker: (conversation, message, sid)."""
    signed_post(env.client, SMS, sms(inbound_sid))
    conversation_id = conversations(env, "sms")[0]["conversation_id"]
    reply = env.client.post(
        f"/api/conversations/{conversation_id}/messages", json={"text": text}, headers=ADMIN
    )
    assert reply.status_code == 201, reply.text
    message_id = reply.json()["message_id"]
    wait_for_state(env, conversation_id, message_id, "queued")
    [sent] = [s for s in env.fake.sent_to(CLIENT) if s["body"] == text]
    return conversation_id, message_id, sent["sid"]


def feed_state(env: Env, conversation_id: str, message_id: str) -> str:
    """The state of the reply in the client's activity feed (the timeline)."""
    conversation = env.client.get(f"/api/conversations/{conversation_id}", headers=ADMIN).json()
    timeline = env.client.get(
        f"/api/contacts/{conversation['contact_id']}/timeline", headers=ADMIN
    ).json()["items"]
    [row] = [r for r in timeline if r["kind"] == "message.sent" and r["ref_id"] == message_id]
    return str(row["state"])


def state(env: Env, conversation_id: str, message_id: str) -> dict[str, Any]:
    thread = env.client.get(f"/api/conversations/{conversation_id}", headers=ADMIN).json()
    [message] = [m for m in thread["messages"] if m["id"] == message_id]
    return dict(message)


def test_an_sms_is_queued_then_sent_then_delivered_only_as_twilio_reports(env: Env) -> None:
    env.runtime.channels.start(pollers=False)
    conversation_id, message_id, sid = reply_by_sms(env, "SM" + "7b" * 16, "Tomorrow")
    # Twilio's REST answer says "queued": not sent, and certainly not delivered.
    assert state(env, conversation_id, message_id)["state"] == "queued"
    assert feed_state(env, conversation_id, message_id) == "queued"

    for reported, expected in (
        ("queued", "queued"),  # nothing new
        ("sent", "sent"),  # handed to the carrier
        ("delivered", "delivered"),  # the handset has it
        ("sent", "delivered"),  # a late report moves nothing back
        ("undelivered", "delivered"),  # nor does a report contradicting the handset's
    ):
        response = signed_post(env.client, STATUS, message_report(sid, reported))
        assert response.status_code == 200, response.text
        assert state(env, conversation_id, message_id)["state"] == expected, reported
        assert feed_state(env, conversation_id, message_id) == expected


def test_an_undelivered_sms_shows_the_reason_in_the_readers_language(env: Env) -> None:
    env.runtime.channels.start(pollers=False)
    conversation_id, message_id, sid = reply_by_sms(env, "SM" + "7c" * 16, "Your order is ready")
    signed_post(env.client, STATUS, message_report(sid, "sent"))
    report = message_report(sid, "undelivered", ErrorCode="30003", ErrorMessage="Unreachable")
    assert signed_post(env.client, STATUS, report).status_code == 200

    failed = state(env, conversation_id, message_id)
    assert failed["state"] == "failed"
    assert failed["failure"]["problem"] == "undeliverable"
    assert "30003" in failed["failure"]["reason"]  # the technical detail is kept
    assert feed_state(env, conversation_id, message_id) == "failed"

    contact_id = state_contact(env, conversation_id)
    operator, _, _ = web_client(env.runtime, "operator", "en")
    thread = operator.get(f"/inbox/{conversation_id}/thread").text
    article = thread[thread.index(f'id="message-{message_id}"') :]
    assert "The phone could not be reached" in article
    assert "30003" not in article  # the provider's text is for admins
    feed = operator.get(f"/contacts/{contact_id}/timeline").text
    assert "Message not delivered" in feed and "Message sent" not in feed

    admin, _, _ = web_client(env.runtime, "admin", "en")
    detail = admin.get(f"/inbox/{conversation_id}/thread").text
    assert "30003" in detail[detail.index(f'id="message-{message_id}"') :]

    russian, _, _ = web_client(env.runtime, "operator", "ru")
    thread = russian.get(f"/inbox/{conversation_id}/thread").text
    assert "Телефон недоступен" in thread
    assert "Сообщение не доставлено" in russian.get(f"/contacts/{contact_id}/timeline").text


def state_contact(env: Env, conversation_id: str) -> str:
    conversation = env.client.get(f"/api/conversations/{conversation_id}", headers=ADMIN).json()
    return str(conversation["contact_id"])
