"""The smaller hardening items of issue 10 (item 15), each with the test that failed before.

a. a reply on a channel nothing can send is a 422 at request time, not a 201 that fails;
b. `client_message_id` makes a note idempotent, as it does a reply;
c. `created_from=notadate` is a 422, not an empty list;
d. a chunked body over the limit is a 413, also where FastAPI parses the form itself;
e. the Telegram and Twilio hooks answer an unknown slug or number as a wrong secret;
f. a Telegram `file_id: null` is a missing file, not the text "None";
g. a phone number libphonenumber does not know keeps its message;
h. an empty contact is a 422;
i. reading inbox configuration is for admins, in the API and in the web app.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.channels.fake_telegram import TOKEN
from tests.channels.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, signed_post
from tests.conftest import make_runtime
from tests.services.test_api import token_for
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.identities import normalise_identity, raw_phone
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime

ADMIN = {"Authorization": "Bearer admin-secret"}
HOOK_SECRET = "hook_secret-0123"
OUR_NUMBER = "+15017122661"


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Runtime]]:
    runtime = make_runtime(
        database_url,
        admin_token="admin-secret",
        attachments_dir=str(tmp_path / "a"),
        max_body_bytes=4000,
        public_url="http://testserver",
    )
    try:
        with TestClient(create_app(runtime)) as client:
            yield client, runtime
    finally:
        runtime.close()


def conversation_of(client: TestClient, channel: str = "api", key: str = "ext-1") -> str:
    created = client.post(
        "/api/inbound",
        json={"channel": channel, "external_id": key, "from": {"email": "anna@example.com"},
              "text": "Hello"},
        headers=ADMIN,
    )  # fmt: skip
    assert created.status_code in (200, 201), created.text
    return str(created.json()["conversation_id"])


def messages(client: TestClient, conversation_id: str) -> list[dict[str, Any]]:
    card = client.get(f"/api/conversations/{conversation_id}", headers=ADMIN)
    assert card.status_code == 200, card.text
    contact = card.json()["contact_id"]
    timeline = client.get(f"/api/contacts/{contact}/timeline", headers=ADMIN)
    assert timeline.status_code == 200, timeline.text
    items: list[dict[str, Any]] = timeline.json()["items"]
    return items


# -- a. b. replies and notes -------------------------------------------------------------------


def test_a_reply_on_a_channel_nothing_can_send_is_refused_at_once(
    api: tuple[TestClient, Runtime],
) -> None:
    client, runtime = api
    conversation = conversation_of(client)
    before = runtime.app.recorder.max_notification_id()
    unknown = client.post(
        f"/api/conversations/{conversation}/messages",
        json={"text": "Hi", "channel": "fax"},
        headers=ADMIN,
    )
    assert unknown.status_code == 422, unknown.text
    assert unknown.json()["detail"][0]["loc"][-1] == "channel"
    # A conversation whose own channel no module serves (a custom API channel) likewise.
    custom = conversation_of(client, channel="shop-chat", key="ext-2")
    own = client.post(f"/api/conversations/{custom}/messages", json={"text": "Hi"}, headers=ADMIN)
    assert own.status_code == 422, own.text
    assert runtime.app.recorder.max_notification_id() > before  # only the second inbound
    # Known channels are still accepted (delivery decides which inbox sends).
    for channel in (None, "email", "sms"):
        reply = client.post(
            f"/api/conversations/{conversation}/messages",
            json={"text": "Hi", **({"channel": channel} if channel else {})},
            headers=ADMIN,
        )
        assert reply.status_code == 201, (channel, reply.text)
    note = client.post(
        f"/api/conversations/{custom}/messages", json={"text": "n", "internal": True},
        headers=ADMIN,
    )  # fmt: skip
    assert note.status_code == 201, note.text


def test_a_note_with_a_client_message_id_is_recorded_once(
    api: tuple[TestClient, Runtime],
) -> None:
    client, _ = api
    conversation = conversation_of(client)
    key = str(uuid.uuid4())
    body = {"text": "Called her back", "internal": True, "client_message_id": key}
    first = client.post(f"/api/conversations/{conversation}/messages", json=body, headers=ADMIN)
    again = client.post(f"/api/conversations/{conversation}/messages", json=body, headers=ADMIN)
    assert first.status_code == again.status_code == 201, again.text
    assert first.json()["message_id"] == again.json()["message_id"] == key
    notes = [m for m in messages(client, conversation) if "Called her back" in str(m)]
    assert len(notes) == 1, notes


# -- c. date filters ---------------------------------------------------------------------------


def test_a_date_filter_that_is_no_date_is_refused(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    conversation_of(client)
    for name in ("created_from", "created_to"):
        refused = client.get("/api/contacts", params={name: "notadate"}, headers=ADMIN)
        assert refused.status_code == 422, refused.text
        assert refused.json()["detail"][0]["loc"][-1] == name
    everyone = client.get("/api/contacts", params={"created_from": "2000-01-01"}, headers=ADMIN)
    assert everyone.status_code == 200 and everyone.json()["total"] == 1
    nobody = client.get("/api/contacts", params={"created_to": "2000-01-01"}, headers=ADMIN)
    assert nobody.status_code == 200 and nobody.json()["total"] == 0
    # A time with an offset is compared in UTC, as the views keep it.
    zoned = client.get(
        "/api/contacts", params={"created_from": "2000-01-01T03:00:00+03:00"}, headers=ADMIN
    )
    assert zoned.status_code == 200 and zoned.json()["total"] == 1
    segment = client.post(
        "/api/rules",
        json={"name": "Bad date", "when": "message.received",
              "if": {"segment": {"created_from": "notadate"}}, "then": [{"add_tag": "x"}]},
        headers=ADMIN,
    )  # fmt: skip
    assert segment.status_code == 422, segment.text


# -- d. chunked bodies ---------------------------------------------------------------------------


def test_a_chunked_body_over_the_limit_is_413(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api

    def chunks(start: bytes, end: bytes) -> Iterator[bytes]:
        yield start
        for _ in range(50):
            yield b"x" * 100
        yield end

    form = {"content-type": "application/x-www-form-urlencoded"}
    login = client.post("/login", content=chunks(b"email=", b""), headers=form)
    assert login.status_code == 413, login.text
    assert "larger than" in login.json()["detail"]
    contact = client.post(
        "/api/contacts",
        content=chunks(b'{"name": "', b'"}'),
        headers={**ADMIN, "content-type": "application/json"},
    )
    assert contact.status_code == 413, contact.text


# -- e. hooks do not reveal what exists -----------------------------------------------------------


def test_telegram_hook_answers_unknown_slugs_as_wrong_secrets(
    api: tuple[TestClient, Runtime],
) -> None:
    client, runtime = api
    runtime.channels.configure(
        "tg", "telegram", "Bot", {"bot_token": TOKEN, "webhook_secret": HOOK_SECRET}, "test"
    )
    runtime.channels.configure(
        "tg-off", "telegram", "Off", {"bot_token": TOKEN, "webhook_secret": HOOK_SECRET}, "test",
        enabled=False,
    )  # fmt: skip
    runtime.channels.configure("box", "sandbox", "Not Telegram", {}, "test")
    update = {"update_id": 1, "message": {"message_id": 1, "date": 1, "text": "hi",
              "chat": {"id": 5, "type": "private"}, "from": {"id": 5, "is_bot": False,
                                                             "first_name": "A"}}}  # fmt: skip
    answers = []
    for slug, secret in [("tg", "wrong"), ("tg", None), ("nope", "wrong"), ("nope", None),
                         ("nope", HOOK_SECRET), ("tg-off", HOOK_SECRET), ("box", HOOK_SECRET)]:  # fmt: skip
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
        answer = client.post(f"/hooks/telegram/{slug}", json=update, headers=headers)
        answers.append((answer.status_code, answer.content))
    assert len(set(answers)) == 1, answers
    assert answers[0][0] == 403


def test_twilio_hooks_answer_unknown_numbers_as_bad_signatures(
    api: tuple[TestClient, Runtime],
) -> None:
    client, runtime = api
    runtime.channels.configure(
        "line", "twilio", "Line",
        {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "phone_number": OUR_NUMBER},
        "test",
    )  # fmt: skip

    def sms(to: str) -> dict[str, str]:
        return {"AccountSid": ACCOUNT_SID, "MessageSid": "SM" + "a" * 32, "From": "+14155552671",
                "To": to, "Body": "hi"}  # fmt: skip

    answers = [
        signed_post(client, "/hooks/twilio/sms", sms(OUR_NUMBER), auth_token="wrong-token"),
        signed_post(client, "/hooks/twilio/sms", sms("+12025550123")),
        signed_post(client, "/hooks/twilio/sms", sms("+12025550123"), auth_token="wrong"),
        signed_post(client, "/hooks/twilio/sms?inbox=nope", sms(OUR_NUMBER)),
        signed_post(client, "/hooks/twilio/voice", {**sms("+12025550123"), "CallSid": "CA1"}),
        signed_post(
            client,
            "/hooks/twilio/status",
            {**sms(OUR_NUMBER), "AccountSid": "AC" + "f" * 32, "MessageStatus": "delivered"},
        ),
    ]
    assert {(a.status_code, a.content) for a in answers} == {(403, answers[0].content)}
    assert signed_post(client, "/hooks/twilio/sms", sms(OUR_NUMBER)).status_code == 200


# -- f. Telegram file ids --------------------------------------------------------------------------


def test_a_telegram_file_id_null_is_a_missing_file(api: tuple[TestClient, Runtime]) -> None:
    client, runtime = api
    runtime.channels.configure(
        "tg", "telegram", "Bot", {"bot_token": TOKEN, "webhook_secret": HOOK_SECRET}, "test"
    )
    base = {"date": 1700000000, "chat": {"id": 77, "type": "private"},
            "from": {"id": 77, "is_bot": False, "first_name": "Olga"}}  # fmt: skip
    updates = [
        {
            "message_id": 1,
            "photo": [{"file_id": None, "file_unique_id": "p1", "width": 9, "height": 9}],
            "caption": "my photo",
        },
        {"message_id": 2, "document": {"file_id": None, "file_unique_id": "d1"}},
    ]
    headers = {"X-Telegram-Bot-Api-Secret-Token": HOOK_SECRET}
    for number, message in enumerate(updates, start=1):
        answer = client.post(
            "/hooks/telegram/tg",
            json={"update_id": number, "message": {**base, **message}},
            headers=headers,
        )
        assert answer.status_code == 200, answer.text
        assert "message_id" in answer.json(), answer.text  # kept, not ignored
    inbox = client.get("/api/inbox", headers=ADMIN).json()["items"]
    thread = client.get(f"/api/conversations/{inbox[0]['conversation_id']}", headers=ADMIN)
    kept = thread.json()["messages"]
    assert [m["text"] for m in kept] == ["my photo", ""]
    assert [m["attachments"] for m in kept] == [[], []]  # before: a file with the id "None"
    assert [m["metadata"]["files_missing"] for m in kept] == [1, 1]
    assert "None" not in str([m["metadata"] for m in kept])


# -- g. phone numbers libphonenumber does not know ----------------------------------------------


def test_a_number_libphonenumber_does_not_know_keeps_its_message(
    api: tuple[TestClient, Runtime],
) -> None:
    client, _ = api
    for key, phone in (("u-1", "+1 555 867 5310"), ("u-2", "900"), ("u-3", "+1 (555) 867-5310")):
        answer = client.post(
            "/api/inbound",
            json={"channel": "sms", "external_id": key, "from": {"phone": phone}, "text": key},
            headers=ADMIN,
        )
        assert answer.status_code in (200, 201), answer.text
    inbox = client.get("/api/inbox", headers=ADMIN).json()
    assert inbox["total"] == 2  # the two spellings of one number are one client
    refused = client.post(
        "/api/inbound",
        json={"channel": "sms", "external_id": "u-4", "from": {"phone": "call me"}, "text": "x"},
        headers=ADMIN,
    )
    assert refused.status_code == 422, refused.text


def test_raw_phone_identities() -> None:
    assert raw_phone(" +1 (555) 867-5310 ") == "+15558675310"
    assert raw_phone("900") == "900"
    for bad in ("12", "call me", "+1+2", "1" * 21, "١٢٣٤"):
        with pytest.raises(InvalidInput):
            raw_phone(bad)
    lenient = normalise_identity("phone", "+15558675310", strict_phone=False)
    assert lenient.value == "+15558675310"
    assert normalise_identity("phone", "+7 916 123-45-67", strict_phone=False).value == (
        "+79161234567"
    )
    with pytest.raises(InvalidInput):
        normalise_identity("phone", "+15558675310")  # a contact typed in is still checked


# -- h. empty contacts ---------------------------------------------------------------------------


def test_an_empty_contact_is_refused(api: tuple[TestClient, Runtime]) -> None:
    client, runtime = api
    before = runtime.app.recorder.max_notification_id()
    for body in ({}, {"name": ""}, {"name": "   ", "identities": []}, {"tags": ["vip"]}):
        refused = client.post("/api/contacts", json=body, headers=ADMIN)
        assert refused.status_code == 422, (body, refused.text)
    assert runtime.app.recorder.max_notification_id() == before
    assert client.get("/api/contacts", headers=ADMIN).json()["total"] == 0
    named = client.post("/api/contacts", json={"name": "Anna"}, headers=ADMIN)
    by_phone = client.post(
        "/api/contacts", json={"identities": [{"kind": "email", "value": "b@example.com"}]},
        headers=ADMIN,
    )  # fmt: skip
    assert named.status_code == by_phone.status_code == 201


# -- i. inbox configuration is for admins ----------------------------------------------------------


@pytest.mark.parametrize("role", ["operator", "auditor", "manager"])
def test_only_admins_read_inbox_configuration(api: tuple[TestClient, Runtime], role: str) -> None:
    client, runtime = api
    runtime.channels.configure(
        "mail", "email", "Mail", {"imap_host": "imap.example.com", "imap_password": "pw"}, "test"
    )
    headers = token_for(client, role)
    for url in ("/api/inboxes", "/api/inboxes/mail", "/api/inboxes/nope"):
        answer = client.get(url, headers=headers)
        assert answer.status_code == 403, (role, url, answer.text)
        assert "imap.example.com" not in answer.text
    assert client.get("/api/channels", headers=headers).status_code == 200
    assert client.get("/api/inboxes/mail", headers=ADMIN).status_code == 200


@pytest.mark.parametrize("role", ["operator", "auditor", "manager"])
def test_only_admins_see_the_inbox_screens(runtime: Runtime, role: str) -> None:
    from tests.web.test_admin import client_for

    runtime.channels.configure(
        "mail", "email", "Mail", {"imap_host": "imap.example.com", "imap_password": "pw"}, "test"
    )
    client, _ = client_for(runtime, role)
    for url in ("/admin/inboxes", "/admin/inboxes/mail", "/admin/inboxes/new?channel=email"):
        page = client.get(url)
        assert page.status_code == 403, (role, url, page.status_code)
        assert "imap.example.com" not in page.text
    assert 'href="/admin/inboxes"' not in client.get("/inbox").text
    admin, _ = client_for(runtime, "admin")
    assert admin.get("/admin/inboxes/mail").status_code == 200
    assert 'href="/admin/inboxes"' in admin.get("/inbox").text
