"""Twilio end to end: signed webhooks into the log, TwiML out, REST sends against a local server.

Webhooks go through the real app (TestClient over create_app) signed by the SDK's
own RequestValidator; sends go through the SDK's client to `FakeTwilio` on a
loopback port, so the wire format and basic auth are real.
"""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.channels.fake_twilio import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FakeTwilio,
    signature_for,
    signed_post,
    twilio_error,
    twilio_server,  # noqa: F401 (the fixture)
)
from tests.conftest import make_runtime
from threadline.channels.base import (
    ChannelOptions,
    ChannelServices,
    DeliveryError,
    DeliveryErrorKind,
    InboxConfig,
    OutboundMessage,
)
from threadline.channels.twilio import TwilioAdapter, find_inbox, validate_signature
from threadline.domain.model.message import inbound_message_id
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime

ADMIN = {"Authorization": "Bearer admin-secret"}
PUBLIC = "http://testserver"
OUR_NUMBER = "+15017122661"
WHATSAPP_NUMBER = "+14155238886"
VOICEMAIL_NUMBER = "+12125551234"  # an inbox with no operator: calls go to voicemail
OPERATOR = "+14158675309"
CLIENT = "+14155552671"
SMS, VOICE, AFTER_DIAL, STATUS = (
    "/hooks/twilio/sms",
    "/hooks/twilio/voice",
    "/hooks/twilio/voice/after-dial",
    "/hooks/twilio/status",
)


@dataclass
class Env:
    client: TestClient
    runtime: Runtime
    fake: FakeTwilio


@contextmanager
def twilio_env(url: str, tmp_path: Path, fake: FakeTwilio) -> Iterator[Env]:
    runtime = make_runtime(
        url,
        admin_token="admin-secret",
        public_url=PUBLIC,
        twilio_api_url=fake.url,
        attachments_dir=str(tmp_path / "attachments"),
        delivery_retry_seconds=0.2,
    )
    try:
        common = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}
        runtime.channels.configure(
            "twilio-main", "twilio", "Main line",
            {**common, "phone_number": OUR_NUMBER, "whatsapp_number": WHATSAPP_NUMBER,
             "forward_to": OPERATOR, "ring_seconds": 25},
            actor="test",
        )  # fmt: skip
        runtime.channels.configure(
            "twilio-vm", "twilio", "After hours", {**common, "phone_number": VOICEMAIL_NUMBER},
            actor="test",
        )  # fmt: skip
        with TestClient(create_app(runtime)) as client:
            yield Env(client, runtime, fake)
    finally:
        runtime.close()


@pytest.fixture
def env(sqlite_url: str, tmp_path: Path, twilio_server: FakeTwilio) -> Iterator[Env]:  # noqa: F811
    with twilio_env(sqlite_url, tmp_path, twilio_server) as environment:
        yield environment


def sms(sid: str, body: str = "Is my order ready?", sender: str = CLIENT, **extra: str) -> dict:
    return {
        "AccountSid": ACCOUNT_SID,
        "MessageSid": sid,
        "SmsSid": sid,
        "From": sender,
        "To": OUR_NUMBER,
        "Body": body,
        "NumMedia": "0",
        **extra,
    }


def call(sid: str, to: str = OUR_NUMBER, caller: str = CLIENT, **extra: str) -> dict:
    return {
        "AccountSid": ACCOUNT_SID,
        "CallSid": sid,
        "From": caller,
        "To": to,
        "CallStatus": "ringing",
        "Direction": "inbound",
        **extra,
    }


def conversations(env: Env, channel: str | None = None) -> list[dict[str, Any]]:
    query = f"?channel={channel}" if channel else ""
    return env.client.get(f"/api/inbox{query}", headers=ADMIN).json()["items"]


def thread(env: Env, conversation_id: str) -> dict[str, Any]:
    return env.client.get(f"/api/conversations/{conversation_id}", headers=ADMIN).json()


def only_conversation(env: Env, channel: str) -> dict[str, Any]:
    items = conversations(env, channel)
    assert len(items) == 1, items
    return thread(env, items[0]["conversation_id"])


def twiml(response: Any) -> ET.Element:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    return ET.fromstring(response.text)


# -- SMS, MMS, WhatsApp -------------------------------------------------------------------------


def _sms_reaches_inbox_and_timeline(env: Env) -> None:
    response = signed_post(env.client, SMS, sms("SM" + "a" * 32))
    assert twiml(response).tag == "Response" and len(twiml(response)) == 0
    conversation = only_conversation(env, "sms")
    [message] = conversation["messages"]
    assert message["text"] == "Is my order ready?" and message["direction"] == "inbound"
    assert message["metadata"] == {
        "sid": "SM" + "a" * 32, "to": OUR_NUMBER, "num_media": 0, "kind": "sms",
    }  # fmt: skip
    contact_id = conversation["contact_id"]
    card = env.client.get(f"/api/contacts/{contact_id}", headers=ADMIN).json()
    assert {"kind": "phone", "value": CLIENT} in card["identities"]
    timeline = env.client.get(f"/api/contacts/{contact_id}/timeline", headers=ADMIN).json()
    received = [r for r in timeline["items"] if r["kind"] == "message.received"]
    assert [(r["channel"], r["body"]) for r in received] == [("sms", "Is my order ready?")]


def test_signed_sms_reaches_inbox_and_timeline(env: Env) -> None:
    _sms_reaches_inbox_and_timeline(env)


def test_signed_sms_on_each_store(
    database_url: str,
    tmp_path: Path,
    twilio_server: FakeTwilio,  # noqa: F811
) -> None:
    with twilio_env(database_url, tmp_path, twilio_server) as environment:
        _sms_reaches_inbox_and_timeline(environment)


def test_bad_signature_is_403_and_ingests_nothing(env: Env, caplog: Any) -> None:
    with caplog.at_level("WARNING", logger="threadline.channels.twilio"):
        forged = signed_post(env.client, SMS, sms("SM" + "b" * 32), auth_token="not-the-token")
    assert forged.status_code == 403
    assert any("403 /hooks/twilio/sms" in r.getMessage() for r in caplog.records)
    assert AUTH_TOKEN not in caplog.text
    # Signed for another URL (the signature covers the address Twilio called).
    moved = signed_post(env.client, SMS, sms("SM" + "b" * 32), public_url="https://elsewhere")
    assert moved.status_code == 403
    # A valid signature over different parameters than the ones sent.
    params = sms("SM" + "b" * 32)
    signature = signature_for(AUTH_TOKEN, PUBLIC + SMS, {**params, "Body": "original"})
    tampered = env.client.post(SMS, data=params, headers={"X-Twilio-Signature": signature})
    assert tampered.status_code == 403
    assert conversations(env) == []


def test_missing_signature_is_403(env: Env) -> None:
    response = env.client.post(SMS, data=sms("SM" + "c" * 32))
    assert response.status_code == 403 and "X-Twilio-Signature" in response.json()["detail"]
    assert conversations(env) == []


def test_unknown_number_wrong_type_and_bad_input_are_clear(env: Env) -> None:
    stranger = signed_post(env.client, SMS, {**sms("SM" + "d" * 32), "To": "+12025550123"})
    assert stranger.status_code == 403  # as a bad signature: numbers are not revealed
    as_json = env.client.post(SMS, json=sms("SM" + "d" * 32))
    assert as_json.status_code == 415
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    not_utf8 = env.client.post(SMS, content=b"Body=\xff\xfe", headers=form)
    assert not_utf8.status_code == 400 and "UTF-8" in not_utf8.json()["detail"]
    no_sid = {k: v for k, v in sms("x").items() if k not in ("MessageSid", "SmsSid")}
    missing = signed_post(env.client, SMS, no_sid)
    assert missing.status_code == 422  # every 422 has the validation shape (issue 10, item 8)
    assert "MessageSid" in missing.json()["detail"][0]["msg"]
    assert conversations(env) == []
    # A short code is no number libphonenumber knows: the message is kept all the same,
    # with the digits as the sender's identity (issue 10, item 15g).
    short_code = signed_post(env.client, SMS, sms("SM" + "e" * 32, sender="12345"))
    assert short_code.status_code == 200, short_code.text
    assert len(conversations(env)) == 1


def test_the_same_webhook_twice_is_one_message(env: Env) -> None:
    first = signed_post(env.client, SMS, sms("SM" + "f" * 32))
    again = signed_post(env.client, SMS, sms("SM" + "f" * 32))
    assert first.status_code == again.status_code == 200
    assert len(only_conversation(env, "sms")["messages"]) == 1


def test_mms_media_become_attachment_metadata(env: Env) -> None:
    media = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM1/Media"
    params = sms(
        "MM" + "1" * 32, body="Photos of the damage", NumMedia="2",
        MediaUrl0=f"{media}/ME0", MediaContentType0="image/jpeg",
        MediaUrl1=f"{media}/ME1", MediaContentType1="application/pdf",
    )  # fmt: skip
    assert signed_post(env.client, SMS, params).status_code == 200
    [message] = only_conversation(env, "sms")["messages"]
    assert message["metadata"]["kind"] == "mms" and message["metadata"]["num_media"] == 2
    attachments = message["attachments"]
    assert [a["reference"] for a in attachments] == [f"{media}/ME0", f"{media}/ME1"]
    assert [a["content_type"] for a in attachments] == ["image/jpeg", "application/pdf"]
    assert all(a["stored"] is False and len(a["sha256"]) == 64 for a in attachments)
    assert [a["filename"] for a in attachments] == ["ME0.jpg", "ME1.pdf"]


def test_whatsapp_is_its_own_channel_with_the_same_contact(env: Env) -> None:
    signed_post(env.client, SMS, sms("SM" + "2" * 32))
    whatsapp = {
        **sms("SM" + "3" * 32, body="Hello from WhatsApp"),
        "From": f"whatsapp:{CLIENT}", "To": f"whatsapp:{WHATSAPP_NUMBER}", "ProfileName": "Ann",
    }  # fmt: skip
    assert signed_post(env.client, SMS, whatsapp).status_code == 200
    sms_thread = only_conversation(env, "sms")
    wa_thread = only_conversation(env, "whatsapp")
    assert wa_thread["contact_id"] == sms_thread["contact_id"]
    [message] = wa_thread["messages"]
    assert message["metadata"]["kind"] == "whatsapp"
    assert message["metadata"]["to"] == WHATSAPP_NUMBER
    assert CLIENT not in str(message["metadata"])


# -- calls ------------------------------------------------------------------------------------


def call_message(env: Env, sid: str) -> dict[str, Any]:
    message_id = str(inbound_message_id("voice", sid))
    for item in conversations(env, "voice"):
        for message in thread(env, item["conversation_id"])["messages"]:
            if message["id"] == message_id:
                return message
    raise AssertionError(f"call {sid} is not in the inbox")


def call_rows(env: Env, contact_id: str, kind: str) -> list[dict[str, Any]]:
    """The contact's timeline rows of one kind on the voice channel."""
    items = env.client.get(f"/api/contacts/{contact_id}/timeline", headers=ADMIN).json()["items"]
    return [r for r in items if r["kind"] == kind and r["channel"] == "voice"]


def call_aggregate(env: Env, sid: str) -> Any:
    return env.runtime.app.repository.get(inbound_message_id("voice", sid))


def test_voice_forwards_to_the_operator_and_logs_the_call(env: Env) -> None:
    document = twiml(signed_post(env.client, VOICE, call("CA" + "1" * 32)))
    dial = document.find("Dial")
    assert dial is not None and dial.text == OPERATOR
    assert dial.get("timeout") == "25"
    assert dial.get("action") == f"{PUBLIC}{AFTER_DIAL}?inbox=twilio-main"
    message = call_message(env, "CA" + "1" * 32)
    assert message["direction"] == "inbound" and message["channel"] == "voice"
    assert message["metadata"]["call"] == {
        "sid": "CA" + "1" * 32, "direction": "inbound", "status": "ringing",
    }  # fmt: skip
    assert call_aggregate(env, "CA" + "1" * 32).call_outcome is None
    [row] = call_rows(env, message["contact_id"], "call.received")
    assert (row["direction"], row["data"]["call"]["sid"]) == ("inbound", "CA" + "1" * 32)
    # Twilio retrying the webhook: the same TwiML, still one call.
    again = twiml(signed_post(env.client, VOICE, call("CA" + "1" * 32)))
    assert again.find("Dial") is not None
    assert len(only_conversation(env, "voice")["messages"]) == 1


def test_voice_without_an_operator_takes_a_voicemail(env: Env) -> None:
    document = twiml(signed_post(env.client, VOICE, call("CA" + "2" * 32, to=VOICEMAIL_NUMBER)))
    assert document.find("Dial") is None
    record = document.find("Record")
    assert record is not None and record.get("maxLength") == "120"
    status_url = f"{PUBLIC}{STATUS}?inbox=twilio-vm"
    assert record.get("action") == status_url
    assert record.get("recordingStatusCallback") == status_url
    # Nobody could answer: missed at once, so a rule can plan the call-back.
    assert call_aggregate(env, "CA" + "2" * 32).call_outcome == "missed"
    # The recording arrives (the <Record> action and the recording callback both bring it).
    recording = "https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/RE1"
    for extra in ({"CallStatus": "completed"}, {"RecordingStatus": "completed"}):
        params = {"AccountSid": ACCOUNT_SID, "CallSid": "CA" + "2" * 32,
                  "RecordingUrl": recording, "RecordingSid": "RE1", "RecordingDuration": "7",
                  **extra}  # fmt: skip
        assert twiml(signed_post(env.client, f"{STATUS}?inbox=twilio-vm", params)).tag == "Response"
    aggregate = call_aggregate(env, "CA" + "2" * 32)
    assert aggregate.call_outcome == "voicemail"
    version = aggregate.version
    # Twilio's own "completed" for the call it answered does not turn it into "answered".
    signed_post(env.client, STATUS, call("CA" + "2" * 32, to=VOICEMAIL_NUMBER,
                                         CallStatus="completed", CallDuration="15"))  # fmt: skip
    assert call_aggregate(env, "CA" + "2" * 32).version == version
    metadata = call_message(env, "CA" + "2" * 32)["metadata"]["call"]
    assert metadata["outcome"] == "voicemail" and metadata["recording_url"] == recording
    assert metadata["duration"] == 7


def test_after_dial_no_answer_is_a_missed_call_and_offers_voicemail(env: Env) -> None:
    sid = "CA" + "3" * 32
    signed_post(env.client, VOICE, call(sid))
    params = call(sid, CallStatus="in-progress", DialCallStatus="no-answer")
    document = twiml(signed_post(env.client, f"{AFTER_DIAL}?inbox=twilio-main", params))
    assert document.find("Record") is not None and document.find("Say") is not None
    assert call_aggregate(env, sid).call_outcome == "missed"
    message = call_message(env, sid)
    assert message["metadata"]["call"]["outcome"] == "missed"
    [missed] = call_rows(env, message["contact_id"], "call.missed")
    assert (missed["direction"], missed["state"]) == ("inbound", "missed")
    events = [type(e).__name__ for e in env.runtime.app.repository.event_store.get(
        inbound_message_id("voice", sid))]  # fmt: skip
    assert events.count("CallMissed") == 1
    # A repeated action records nothing new.
    signed_post(env.client, f"{AFTER_DIAL}?inbox=twilio-main", params)
    assert call_aggregate(env, sid).version == len(events)


def test_after_dial_answered_hangs_up_and_voicemail_off_apologises(env: Env) -> None:
    sid = "CA" + "4" * 32
    signed_post(env.client, VOICE, call(sid))
    answered = call(sid, CallStatus="in-progress", DialCallStatus="completed")
    document = twiml(signed_post(env.client, f"{AFTER_DIAL}?inbox=twilio-main", answered))
    assert [child.tag for child in document] == ["Hangup"]
    assert call_aggregate(env, sid).call_outcome is None
    env.runtime.channels.configure(
        "twilio-main", "twilio", "Main line",
        {"account_sid": ACCOUNT_SID, "phone_number": OUR_NUMBER, "forward_to": OPERATOR,
         "voicemail": False},
        actor="test",
    )  # fmt: skip
    busy = call(sid, CallStatus="in-progress", DialCallStatus="busy")
    document = twiml(signed_post(env.client, f"{AFTER_DIAL}?inbox=twilio-main", busy))
    assert [child.tag for child in document] == ["Say", "Hangup"]
    assert call_aggregate(env, sid).call_outcome == "missed"


def test_call_status_callbacks_record_answered_with_duration(env: Env) -> None:
    sid = "CA" + "5" * 32
    signed_post(env.client, VOICE, call(sid))
    for status in ("ringing", "in-progress"):
        assert signed_post(env.client, STATUS, call(sid, CallStatus=status)).status_code == 200
    completed = call(sid, CallStatus="completed", CallDuration="42")
    assert twiml(signed_post(env.client, STATUS, completed)).tag == "Response"
    aggregate = call_aggregate(env, sid)
    assert (aggregate.call_status, aggregate.call_outcome) == ("completed", "answered")
    version = aggregate.version
    signed_post(env.client, STATUS, completed)
    signed_post(env.client, STATUS, call(sid, CallStatus="ringing"))  # late and out of order
    assert call_aggregate(env, sid).version == version
    message = call_message(env, sid)
    metadata = message["metadata"]["call"]
    assert (metadata["outcome"], metadata["duration"], metadata["status"]) == (
        "answered", 42, "completed",
    )  # fmt: skip
    [row] = call_rows(env, message["contact_id"], "call.received")
    assert (row["direction"], row["state"], row["data"]["call"]["duration"]) == (
        "inbound", "answered", 42,
    )  # fmt: skip
    assert call_rows(env, message["contact_id"], "call.missed") == []


def test_status_for_a_call_never_logged_is_ignored(env: Env) -> None:
    response = signed_post(env.client, STATUS, call("CA" + "6" * 32, CallStatus="completed"))
    assert response.status_code == 200
    assert conversations(env) == []


def test_a_withheld_caller_id_is_answered_but_not_logged(env: Env) -> None:
    document = twiml(signed_post(env.client, VOICE, call("CA" + "7" * 32, caller="anonymous")))
    assert document.find("Dial") is not None
    assert conversations(env) == []


def test_status_callback_found_by_account_and_from_number(env: Env) -> None:
    # No inbox parameter and our number only in From (an outbound message's report).
    report = {"AccountSid": ACCOUNT_SID, "MessageSid": "SM" + "9" * 32,
              "MessageStatus": "delivered", "From": OUR_NUMBER, "To": CLIENT}  # fmt: skip
    assert signed_post(env.client, STATUS, report).status_code == 200
    other_account = {**report, "AccountSid": "AC" + "f" * 32}
    assert signed_post(env.client, STATUS, other_account).status_code == 403
    neither = {"AccountSid": ACCOUNT_SID, "From": OUR_NUMBER, "To": CLIENT}
    assert signed_post(env.client, STATUS, neither).status_code == 422


# -- message status callbacks -------------------------------------------------------------------


def _sent_reply(env: Env, provider_id: str) -> UUID:
    """An inbound SMS and a reply to it recorded as delivered with `provider_id` (no worker)."""
    signed_post(env.client, SMS, sms("SM" + uuid4().hex))
    conversation_id = conversations(env, "sms")[0]["conversation_id"]
    reply = env.client.post(
        f"/api/conversations/{conversation_id}/messages", json={"text": "Yes"}, headers=ADMIN
    )
    message_id = UUID(reply.json()["message_id"])
    app = env.runtime.app
    assert app.start_delivery_attempt(message_id, "test").value == 1
    committed = app.record_delivered(message_id, provider_id, "test", "twilio")
    env.runtime.wait_for_views(committed.notification_id)
    return message_id


def message_report(sid: str, status: str, **extra: str) -> dict[str, str]:
    return {"AccountSid": ACCOUNT_SID, "MessageSid": sid, "SmsSid": sid, "MessageStatus": status,
            "SmsStatus": status, "From": OUR_NUMBER, "To": CLIENT, **extra}  # fmt: skip


def test_message_status_delivered_confirms(env: Env) -> None:
    message_id = _sent_reply(env, "SM" + "d1" * 16)
    signed_post(env.client, STATUS, message_report("SM" + "d1" * 16, "sent"))
    assert env.runtime.app.repository.get(message_id).confirmed_status is None
    signed_post(env.client, STATUS, message_report("SM" + "d1" * 16, "delivered"))
    assert env.runtime.app.repository.get(message_id).confirmed_status == "delivered"


def test_message_status_failed_marks_the_message_failed(env: Env) -> None:
    message_id = _sent_reply(env, "SM" + "e1" * 16)
    failed = message_report(
        "SM" + "e1" * 16, "undelivered", ErrorCode="30006", ErrorMessage="Landline"
    )
    assert signed_post(env.client, STATUS, failed).status_code == 200
    conversation_id = conversations(env, "sms")[0]["conversation_id"]
    [reply] = [m for m in thread(env, conversation_id)["messages"] if m["id"] == str(message_id)]
    assert reply["state"] == "failed" and "30006" in reply["failure"]["reason"]
    # A report for a message we never sent changes nothing and is not an error.
    stranger = message_report("SM" + "0" * 32, "delivered")
    assert signed_post(env.client, STATUS, stranger).status_code == 200


# -- send() against the local server ------------------------------------------------------------


def adapter_for(fake: FakeTwilio, token: str = AUTH_TOKEN, api_url: str | None = None,
                **settings: Any) -> TwilioAdapter:  # fmt: skip
    inbox = InboxConfig(
        id=uuid4(), slug="twilio-main", channel="twilio", name="Main line",
        settings={"account_sid": ACCOUNT_SID, "phone_number": OUR_NUMBER,
                  "whatsapp_number": WHATSAPP_NUMBER, **settings},
        secrets={"auth_token": token},
    )  # fmt: skip
    services = ChannelServices(
        ingest=None,  # type: ignore[arg-type]
        state=None,  # type: ignore[arg-type]
        attachments=None,  # type: ignore[arg-type]
        options=ChannelOptions(public_url=PUBLIC, twilio_api_url=api_url or fake.url,
                               send_timeout=5),
    )  # fmt: skip
    return TwilioAdapter(inbox, services)


def outbound(recipient: str = CLIENT, channel: str = "sms", text: str = "Ready") -> OutboundMessage:
    return OutboundMessage(
        message_id=uuid4(), conversation_id=uuid4(), contact_id=uuid4(), channel=channel,
        recipient=recipient, text=text,
    )  # fmt: skip


def test_send_returns_the_sid_and_the_fake_saw_it(twilio_server: FakeTwilio) -> None:  # noqa: F811
    sent = asyncio.run(adapter_for(twilio_server).send(outbound()))
    sid = sent.provider_id
    assert sid.startswith("SM") and len(sid) == 34
    assert sent.status == "queued"  # Twilio's answer: queued, not yet sent or delivered
    [request] = twilio_server.message_requests()
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.auth == (ACCOUNT_SID, AUTH_TOKEN)
    assert request.form == {
        "To": CLIENT, "From": OUR_NUMBER, "Body": "Ready",
        "StatusCallback": f"{PUBLIC}/hooks/twilio/status",
    }  # fmt: skip
    assert twilio_server.sent_to(CLIENT)[0]["sid"] == sid


def test_send_whatsapp_and_messaging_service(twilio_server: FakeTwilio) -> None:  # noqa: F811
    asyncio.run(adapter_for(twilio_server).send(outbound(channel="whatsapp")))
    service = adapter_for(twilio_server, messaging_service_sid="MG" + "1" * 32)
    asyncio.run(service.send(outbound()))
    whatsapp, via_service = twilio_server.message_requests()
    assert (whatsapp.form["To"], whatsapp.form["From"]) == (
        f"whatsapp:{CLIENT}", f"whatsapp:{WHATSAPP_NUMBER}",
    )  # fmt: skip
    assert via_service.form["MessagingServiceSid"] == "MG" + "1" * 32
    assert "From" not in via_service.form


def errors_of(adapter: TwilioAdapter, message: OutboundMessage) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        asyncio.run(adapter.send(message))
    return caught.value


def test_send_errors_are_classified(twilio_server: FakeTwilio) -> None:  # noqa: F811
    adapter = adapter_for(twilio_server)
    twilio_server.fail_recipient(CLIENT)  # replied STOP
    blocked = errors_of(adapter, outbound())
    assert blocked.kind is DeliveryErrorKind.BLOCKED and "21610" in blocked.reason
    invalid = "+12025550123"
    twilio_server.fail_recipient(invalid, 400, twilio_error(400, 21211, "Invalid 'To' number"))
    assert errors_of(adapter, outbound(invalid)).kind is DeliveryErrorKind.PERMANENT
    twilio_server.fail_next(503)
    assert errors_of(adapter, outbound(OPERATOR)).kind is DeliveryErrorKind.TRANSIENT
    twilio_server.fail_next(429, code=20429)
    assert errors_of(adapter, outbound(OPERATOR)).kind is DeliveryErrorKind.TRANSIENT
    wrong_token = errors_of(adapter_for(twilio_server, token="wrong"), outbound(OPERATOR))
    assert wrong_token.kind is DeliveryErrorKind.PERMANENT and "401" in wrong_token.reason
    assert [r.status for r in twilio_server.message_requests()] == [400, 400, 503, 429, 401]
    # the outage is over
    assert asyncio.run(adapter.send(outbound(OPERATOR))).provider_id.startswith("SM")


def test_send_to_an_unreachable_server_is_transient(twilio_server: FakeTwilio) -> None:  # noqa: F811
    closed = FakeTwilio()
    url = closed.url
    closed.stop()  # bound, then closed: nothing listens on that port any more
    error = errors_of(adapter_for(twilio_server, api_url=url), outbound())
    assert error.kind is DeliveryErrorKind.TRANSIENT


# -- delivery end to end ------------------------------------------------------------------------


def wait_for_state(env: Env, conversation_id: str, message_id: str, state: str) -> dict:
    deadline = time.monotonic() + 15
    while True:
        messages = thread(env, conversation_id)["messages"]
        [message] = [m for m in messages if m["id"] == message_id]
        if message["state"] == state or time.monotonic() > deadline:
            assert message["state"] == state, message
            return message
        time.sleep(0.05)


def test_reply_goes_out_as_sms_and_delivery_reports_confirm(env: Env) -> None:
    env.runtime.channels.start(pollers=False)
    signed_post(env.client, SMS, sms("SM" + "7a" * 16))
    conversation_id = conversations(env, "sms")[0]["conversation_id"]
    reply = env.client.post(
        f"/api/conversations/{conversation_id}/messages", json={"text": "Tomorrow"}, headers=ADMIN
    )
    message_id = reply.json()["message_id"]
    message = wait_for_state(env, conversation_id, message_id, "queued")
    [sent] = env.fake.sent_to(CLIENT)
    assert (sent["from"], sent["body"]) == (OUR_NUMBER, "Tomorrow")
    assert message["provider_id"] == sent["sid"]
    report = message_report(sent["sid"], "delivered")
    assert signed_post(env.client, STATUS, report).status_code == 200
    assert env.runtime.app.repository.get(UUID(message_id)).confirmed_status == "delivered"


def test_reply_in_a_voice_conversation_is_an_sms_to_the_caller(env: Env) -> None:
    env.runtime.channels.start(pollers=False)
    signed_post(env.client, VOICE, call("CA" + "8" * 32))
    conversation_id = conversations(env, "voice")[0]["conversation_id"]
    reply = env.client.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"text": "Sorry we missed you"},
        headers=ADMIN,
    )
    wait_for_state(env, conversation_id, reply.json()["message_id"], "queued")
    [sent] = env.fake.sent_to(CLIENT)
    assert (sent["to"], sent["from"], sent["body"]) == (CLIENT, OUR_NUMBER, "Sorry we missed you")


def test_an_unsubscribed_recipient_fails_the_reply_for_good(env: Env) -> None:
    env.runtime.channels.start(pollers=False)
    env.fake.fail_recipient(CLIENT)
    signed_post(env.client, SMS, sms("SM" + "7b" * 16))
    conversation_id = conversations(env, "sms")[0]["conversation_id"]
    reply = env.client.post(
        f"/api/conversations/{conversation_id}/messages", json={"text": "Hi"}, headers=ADMIN
    )
    message = wait_for_state(env, conversation_id, reply.json()["message_id"], "failed")
    assert "21610" in message["failure"]["reason"] and message["failure"]["permanent"] is True
    assert len(env.fake.message_requests()) == 1  # blocked: not retried


# -- pure functions and open-ended input ------------------------------------------------------


def test_find_inbox_and_signature_helpers() -> None:
    inbox = InboxConfig(
        id=uuid4(), slug="t", channel="twilio", name="T",
        settings={"phone_number": OUR_NUMBER, "whatsapp_number": WHATSAPP_NUMBER},
    )  # fmt: skip
    assert find_inbox([inbox], f"whatsapp:{WHATSAPP_NUMBER}") is inbox
    assert find_inbox([inbox], "+1 (501) 712-2661") is inbox
    assert find_inbox([inbox], CLIENT) is None and find_inbox([inbox], "garbage") is None
    params = {"Body": "hi", "From": CLIENT}
    signature = signature_for(AUTH_TOKEN, f"{PUBLIC}{SMS}", params)
    assert validate_signature(AUTH_TOKEN, f"{PUBLIC}{SMS}", params, signature)
    assert not validate_signature(AUTH_TOKEN, f"{PUBLIC}{SMS}", {**params, "Body": "x"}, signature)
    assert not validate_signature("", f"{PUBLIC}{SMS}", params, signature)
    assert not validate_signature(AUTH_TOKEN, f"{PUBLIC}{SMS}", params, None)


form_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
form_keys = st.sampled_from(
    ["MessageSid", "SmsSid", "From", "Body", "NumMedia", "MediaUrl0", "MediaContentType0",
     "MediaUrl9", "ProfileName", "To", "AccountSid", "Extra"]
)  # fmt: skip


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    extra=st.lists(st.tuples(form_keys, form_text), max_size=8),
    sender=st.one_of(st.just(CLIENT), st.just(f"whatsapp:{CLIENT}"), form_text),
    to=st.one_of(st.just(OUR_NUMBER), st.just(f"whatsapp:{WHATSAPP_NUMBER}"), form_text),
    keep_sid=st.booleans(),
)
def test_random_sms_forms_never_give_a_500(
    env: Env, extra: list[tuple[str, str]], sender: str, to: str, keep_sid: bool
) -> None:
    params: list[tuple[str, str]] = [("To", to), ("From", sender)]
    if keep_sid:
        params.append(("MessageSid", "SM" + uuid4().hex))
    params += [(k, v) for k, v in extra if k != "To"]
    response = signed_post(env.client, SMS, params)
    ours = to in (OUR_NUMBER, f"whatsapp:{WHATSAPP_NUMBER}")
    assert response.status_code in ((200, 422) if ours else (403,)), response.text
