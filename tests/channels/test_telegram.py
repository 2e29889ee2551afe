"""The Telegram channel end to end: the webhook route, long polling and sending, all against
a local Bot API server (tests/channels/fake_telegram.py) that python-telegram-bot talks to
over HTTP exactly as to api.telegram.org."""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.channels.fake_telegram import (
    BOT_ID,
    TOKEN,
    FakeTelegram,
    message_update,
    running_fake_telegram,
)
from tests.conftest import make_runtime
from threadline.channels.attachments import AttachmentStore
from threadline.channels.base import (
    ChannelOptions,
    DeliveryError,
    DeliveryErrorKind,
    InboxConfig,
    OutboundMessage,
    Rejected,
)
from threadline.channels.telegram import (
    TelegramAdapter,
    TelegramApiError,
    decode_start_payload,
    deep_link,
    encode_start_payload,
    set_webhook,
    split_text,
    update_to_message,
)
from threadline.domain.model.errors import InvalidInput
from threadline.projections.inbox import channel_messages
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime

# python-telegram-bot 22 warns about its own RetryAfter while building one (int retry_after).
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

ADMIN = {"Authorization": "Bearer admin-secret"}
SECRET = "hook-secret_0123456789"
HOOK = "/hooks/telegram/tg"
USER = 100_200_300


@pytest.fixture
def tg() -> Iterator[FakeTelegram]:
    with running_fake_telegram() as fake:
        yield fake


def start_runtime(url: str, tmp_path: Path, fake: FakeTelegram, **overrides: Any) -> Runtime:
    settings: dict[str, Any] = {
        "admin_token": "admin-secret",
        "attachments_dir": str(tmp_path / "attachments"),
        "telegram_api_url": fake.url,
        "public_url": "https://crm.example.com",
        "channel_poll_interval": 1.0,
        "delivery_retry_seconds": 0.05,
        "delivery_max_attempts": 3,
        **overrides,
    }
    return make_runtime(url, **settings)


def configure_webhook_inbox(runtime: Runtime, slug: str = "tg") -> InboxConfig:
    return runtime.channels.configure(
        slug,
        "telegram",
        "Telegram",
        {"bot_token": TOKEN, "webhook_secret": SECRET, "bot_username": "threadline_test_bot"},
        actor="test",
    )


@pytest.fixture
def api(sqlite_url: str, tmp_path: Path, tg: FakeTelegram) -> Iterator[tuple[TestClient, Runtime]]:
    runtime = start_runtime(sqlite_url, tmp_path, tg)
    try:
        configure_webhook_inbox(runtime)
        with TestClient(create_app(runtime)) as client:
            yield client, runtime
    finally:
        runtime.close()


def post(client: TestClient, update: Any, secret: str | None = SECRET, path: str = HOOK) -> Any:
    headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
    if isinstance(update, bytes | str):
        return client.post(path, content=update, headers=headers)
    return client.post(path, json=update, headers=headers)


def inbox_items(client: TestClient) -> list[dict[str, Any]]:
    response = client.get("/api/inbox", headers=ADMIN)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def only_conversation(client: TestClient) -> dict[str, Any]:
    items = inbox_items(client)
    assert len(items) == 1, items
    response = client.get(f"/api/conversations/{items[0]['conversation_id']}", headers=ADMIN)
    assert response.status_code == 200, response.text
    conversation: dict[str, Any] = response.json()
    return conversation


def contact_card(client: TestClient, contact_id: str) -> dict[str, Any]:
    response = client.get(f"/api/contacts/{contact_id}", headers=ADMIN)
    assert response.status_code == 200, response.text
    card: dict[str, Any] = response.json()
    return card


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


# -- the webhook -------------------------------------------------------------------------------


def test_webhook_message_lands_in_the_inbox_once(
    database_url: str, tmp_path: Path, tg: FakeTelegram
) -> None:
    runtime = start_runtime(database_url, tmp_path, tg)
    try:
        configure_webhook_inbox(runtime)
        with TestClient(create_app(runtime)) as client:
            update = message_update(
                USER, 11, update_id=900_001, text="Здравствуйте, есть доставка?"
            )
            first = post(client, update)
            assert first.status_code == 200, first.text
            assert first.json()["ok"] is True and first.json()["duplicate"] is False
            again = post(client, update)
            assert again.status_code == 200
            assert again.json() == {**first.json(), "duplicate": True}

            items = inbox_items(client)
            assert len(items) == 1
            row = items[0]
            assert row["channel"] == "telegram"
            assert row["last_message"] == "Здравствуйте, есть доставка?"
            assert row["unread_count"] == 1
            conversation = only_conversation(client)
            [message] = conversation["messages"]
            assert message["id"] == first.json()["message_id"]
            assert message["metadata"]["chat_id"] == USER
            assert message["metadata"]["message_id"] == 11
            assert message["metadata"]["kind"] == "text"

            card = contact_card(client, row["contact_id"])
            assert card["display_name"] == "Анна Петрова"
            assert {"kind": "telegram", "value": str(USER)} in card["identities"]
            assert card["source"]["channel"] == "telegram"
            timeline = client.get(f"/api/contacts/{row['contact_id']}/timeline", headers=ADMIN)
            assert timeline.status_code == 200
            bodies = [item.get("body") for item in timeline.json()["items"]]
            assert "Здравствуйте, есть доставка?" in bodies
    finally:
        runtime.close()


def test_the_secret_token_is_checked_and_never_logged(
    api: tuple[TestClient, Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    client, runtime = api
    update = message_update(USER, 12, update_id=900_002, text="hi")
    with caplog.at_level(logging.INFO, logger="threadline.channels.telegram"):
        assert post(client, update, secret=None).status_code == 403
        assert post(client, update, secret="wrong-secret").status_code == 403
        assert post(client, update, secret=SECRET + "x").status_code == 403
    assert inbox_items(client) == []
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "403 telegram inbox tg" in logged and "testclient" in logged
    assert SECRET not in logged and "wrong-secret" not in logged

    # An inbox without a webhook secret (a polling inbox) accepts no webhook at all.
    runtime.channels.configure(
        "poll", "telegram", "Polling", {"bot_token": TOKEN, "mode": "polling"}, actor="test"
    )
    assert post(client, update, secret="", path="/hooks/telegram/poll").status_code == 403
    assert post(client, update, secret="anything", path="/hooks/telegram/poll").status_code == 403
    assert inbox_items(client) == []


def test_wrong_inboxes_and_bodies_are_refused(api: tuple[TestClient, Runtime]) -> None:
    client, runtime = api
    update = message_update(USER, 13, update_id=900_003, text="hi")
    assert post(client, update, path="/hooks/telegram/nope").status_code == 403
    assert post(client, update, path="/hooks/telegram/NOT%20A%20SLUG").status_code == 403
    runtime.channels.configure(
        "off",
        "telegram",
        "Disabled",
        {"bot_token": TOKEN, "webhook_secret": SECRET},
        actor="test",
        enabled=False,
    )
    assert post(client, update, path="/hooks/telegram/off").status_code == 403

    assert post(client, b"{not json").status_code == 400
    assert post(client, b"\xff\xfe").status_code == 400
    assert post(client, [update]).status_code == 400
    assert post(client, "42").status_code == 400
    malformed = [
        {"update_id": 1, "message": "text"},
        {"message": update["message"]},  # no update_id
        {"update_id": "1", "message": update["message"]},
        {"update_id": 2, "message": {**update["message"], "date": "yesterday"}},
        {"update_id": 3, "message": {**update["message"], "from": {"id": -5, "is_bot": False}}},
    ]
    for body in malformed:
        response = post(client, body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["detail"]
    assert inbox_items(client) == []


def test_updates_the_inbox_does_not_take_are_answered_200(
    api: tuple[TestClient, Runtime],
) -> None:
    client, _ = api
    message = message_update(USER, 14, text="edited")["message"]
    group = {**message, "chat": {"id": -100123, "type": "supergroup", "title": "Team"}}
    bot_sender = {**message, "from": {"id": 42, "is_bot": True, "first_name": "Other bot"}}
    service = {k: v for k, v in message.items() if k != "text"} | {"new_chat_title": "x"}
    cases = {
        "edited_message": {"update_id": 1, "edited_message": message},
        "my_chat_member": {"update_id": 2, "my_chat_member": {"x": 1}},
        "group": {"update_id": 3, "message": group},
        "bots": {"update_id": 4, "message": bot_sender},
        "service message": {"update_id": 5, "message": service},
    }
    for expected, update in cases.items():
        response = post(client, update)
        assert response.status_code == 200, response.text
        assert response.json()["ok"] is True
        assert expected in response.json()["ignored"], response.json()
    assert inbox_items(client) == []


def test_photos_and_documents_keep_their_file_ids(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    sizes = [
        {"file_id": "AgAD-small", "file_unique_id": "u-small", "width": 90, "height": 60},
        {"file_id": "AgAD-large", "file_unique_id": "u-large", "width": 1280, "height": 853,
         "file_size": 120_345},
        {"file_id": "AgAD-mid", "file_unique_id": "u-mid", "width": 320, "height": 213},
    ]  # fmt: skip
    photo = message_update(USER, 21, photo=sizes, caption="Вот фото")
    assert post(client, photo).status_code == 200
    document = {
        "file_id": "BQAD-contract",
        "file_unique_id": "u-doc",
        "file_name": "договор.pdf",
        "mime_type": "application/pdf",
        "file_size": 52_000,
    }
    assert post(client, message_update(USER, 22, document=document)).status_code == 200

    first, second = only_conversation(client)["messages"]
    assert first["text"] == "Вот фото" and first["metadata"]["kind"] == "photo"
    [picture] = first["attachments"]
    assert picture["reference"] == "AgAD-large"
    assert (picture["content_type"], picture["size"], picture["stored"]) == (
        "image/jpeg",
        120_345,
        False,
    )
    assert first["metadata"]["files"][0]["width"] == 1280
    assert first["metadata"]["files"][0]["height"] == 853

    assert second["metadata"]["kind"] == "document"
    [pdf] = second["attachments"]
    assert pdf["reference"] == "BQAD-contract"
    assert (pdf["content_type"], pdf["size"]) == ("application/pdf", 52_000)
    assert pdf["filename"] == "договор.pdf"
    assert picture["filename"] == "photo_u-large.jpg"


def test_a_shared_own_contact_adds_the_phone_identity(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    own = {"phone_number": "79031234567", "first_name": "Анна", "user_id": USER}
    response = post(client, message_update(USER, 31, contact=own))
    assert response.status_code == 200, response.text
    contact_id = inbox_items(client)[0]["contact_id"]
    card = contact_card(client, contact_id)
    assert {"kind": "phone", "value": "+79031234567"} in card["identities"]
    assert {"kind": "telegram", "value": str(USER)} in card["identities"]

    # A message from that phone on another channel reaches the same client.
    sms = {
        "channel": "api",
        "external_id": f"sms-{uuid4()}",
        "from": {"phone": "+7 903 123-45-67"},
        "text": "Это я, пишу по SMS",
    }
    later = client.post("/api/inbound", json=sms, headers=ADMIN)
    assert later.status_code == 201, later.text
    assert later.json()["contact_id"] == contact_id

    # Someone else's contact is only text: it identifies nobody.
    other = {"phone_number": "+79161112233", "first_name": "Иван", "user_id": 555}
    assert post(client, message_update(USER, 32, contact=other)).status_code == 200
    card = contact_card(client, contact_id)
    assert {"kind": "phone", "value": "+79161112233"} not in card["identities"]
    [chat] = [i for i in inbox_items(client) if i["channel"] == "telegram"]
    conversation = client.get(f"/api/conversations/{chat['conversation_id']}", headers=ADMIN)
    texts = [m["text"] for m in conversation.json()["messages"]]
    assert texts[0] == "Shared contact: Анна, +79031234567"
    assert any("Иван" in t and "+79161112233" in t for t in texts)


def test_a_start_deep_link_records_the_lead_source(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    payload = encode_start_payload(
        {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring-sale"}
    )
    assert payload == "src-google_med-cpc_cmp-spring-sale"
    update = message_update(USER, 1, text=f"/start {payload}")
    assert post(client, update).status_code == 200
    conversation = only_conversation(client)
    assert conversation["messages"][0]["metadata"]["kind"] == "start"
    assert conversation["messages"][0]["metadata"]["start_payload"] == payload
    source = contact_card(client, conversation["contact_id"])["source"]
    assert source == {
        "channel": "telegram",
        "utm_source": "google",
        "utm_medium": "cpc",
        "utm_campaign": "spring-sale",
    }


def test_start_payload_format() -> None:
    assert decode_start_payload("src-ya_cmp-x_zzz-ignored_med") == {
        "utm_source": "ya",
        "utm_campaign": "x",
    }
    assert decode_start_payload("promo2024") == {}
    assert decode_start_payload("src-a b") == {}
    assert decode_start_payload("x" * 65) == {}
    assert deep_link("@shop_bot", {"utm_source": "vk"}) == "https://t.me/shop_bot?start=src-vk"
    for bad in ({"utm_source": "a_b"}, {"utm_source": "x" * 70}, {"phone": "1"}, {}):
        with pytest.raises(ValueError):
            encode_start_payload(bad)


def test_update_to_message_is_a_pure_parse(tmp_path: Path) -> None:
    store = AttachmentStore(tmp_path / "attachments")
    inbox = webhook_inbox()
    message = update_to_message(
        message_update(USER, 77, update_id=5, text="hi", last_name=""), inbox, store
    )
    assert message is not None
    assert message.dedup_key == f"{BOT_ID}:{USER}:77"  # the same by webhook and by polling
    assert message.thread_key == str(USER) and message.inbox_id == inbox.id
    assert [(str(i.kind), i.value) for i in message.identities] == [("telegram", str(USER))]
    assert message.sender_name == "Анна"
    assert message.metadata == {
        "chat_id": USER,
        "message_id": 77,
        "update_id": 5,
        "bot_id": str(BOT_ID),
        "kind": "text",
    }
    edited = {"update_id": 6, "edited_message": message_update(USER, 77)["message"]}
    assert update_to_message(edited, inbox, store) is None
    with pytest.raises(Rejected) as rejected:
        update_to_message({"update_id": 7, "message": []}, inbox, store)
    assert rejected.value.status_code == 422
    assert not list((tmp_path / "attachments").glob("**/*"))  # nothing is downloaded or stored


@given(
    st.dictionaries(
        st.sampled_from(["utm_source", "utm_medium", "utm_campaign", "referrer"]),
        st.text("abcXYZ019-", min_size=1, max_size=12),
    ).filter(bool)
)
def test_start_payloads_round_trip(source: dict[str, str]) -> None:
    length = sum(5 + len(v) for v in source.values()) - 1  # "key-value" pairs joined by "_"
    if length > 64:
        with pytest.raises(ValueError):
            encode_start_payload(source)
        return
    payload = encode_start_payload(source)
    assert len(payload) == length
    assert decode_start_payload(payload) == source


# Random JSON, and valid updates with one part replaced by random JSON.
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
_PATHS = [
    (),
    ("update_id",),
    ("message",),
    ("message", "message_id"),
    ("message", "from"),
    ("message", "from", "id"),
    ("message", "from", "first_name"),
    ("message", "chat"),
    ("message", "chat", "id"),
    ("message", "chat", "type"),
    ("message", "date"),
    ("message", "text"),
    ("message", "photo"),
    ("message", "document"),
    ("message", "contact"),
    ("message", "contact", "user_id"),
    ("message", "contact", "phone_number"),
]


@st.composite
def _mutated_updates(draw: st.DrawFn) -> Any:
    base = message_update(
        USER + draw(st.integers(0, 3)),
        draw(st.integers(1, 5)),
        update_id=draw(st.integers(1, 10)),
        text="hi",
    )
    base["message"]["photo"] = [{"file_id": "A", "file_unique_id": "a", "width": 1, "height": 1}]
    base["message"]["document"] = {"file_id": "B", "file_unique_id": "b"}
    base["message"]["contact"] = {"phone_number": "79031234567", "first_name": "A"}
    update: Any = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_PATHS))
        value = draw(_json)
        if not path:
            update = value
            continue
        target = update
        for key in path[:-1]:
            target = target.get(key) if isinstance(target, dict) else None
        if isinstance(target, dict):
            if draw(st.booleans()):
                target[path[-1]] = value
            else:
                target.pop(path[-1], None)
    return update


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(update=st.one_of(_json, _mutated_updates(), _mutated_updates()))
def test_any_update_is_answered_without_a_server_error(
    api: tuple[TestClient, Runtime], update: Any
) -> None:
    client, runtime = api
    response = post(client, update)
    assert response.status_code in (200, 400, 422), (update, response.text)
    event(f"{response.status_code} {'message_id' in response.text}")
    if response.status_code == 200:
        body = response.json()
        assert body["ok"] is True
        if "message_id" in body:
            found = runtime.queries.message(body["message_id"])
            assert found is not None and found["channel"] == "telegram"
    assert client.get("/healthz").json()["status"] == "ok"


# -- long polling ------------------------------------------------------------------------------


def _message_count(runtime: Runtime) -> int:
    return len(channel_messages(runtime.views, "telegram"))


def test_long_polling_ingests_and_keeps_its_offset(
    sqlite_url: str, tmp_path: Path, tg: FakeTelegram
) -> None:
    tg.webhook = {"url": "https://old.example.com/hook", "secret_token": "x"}
    first = tg.queue_update(message_update(USER, 1, text="первое"))
    second = tg.queue_update(message_update(USER + 1, 1, text="второе", first_name="Олег"))
    runtime = start_runtime(sqlite_url, tmp_path, tg)
    try:
        runtime.channels.configure(
            "poll", "telegram", "Polling", {"bot_token": TOKEN, "mode": "polling"}, actor="test"
        )
        runtime.channels.start(delivery=False)
        wait_for(lambda: _message_count(runtime) == 2)
        offset_key = "telegram:poll:offset"
        wait_for(lambda: runtime.channels.state.get(offset_key) == str(second["update_id"] + 1))
        # deleteWebhook came before the first getUpdates (Telegram refuses it otherwise).
        methods = [c.method for c in tg.calls]
        assert methods.index("deleteWebhook") < methods.index("getUpdates")
        assert tg.webhook is None
    finally:
        runtime.close()
    assert first["update_id"] < second["update_id"]

    # A new process on the same database resumes at the stored offset.
    polls_before = len(tg.calls_of("getUpdates"))
    third = tg.queue_update(message_update(USER, 2, text="третье"))
    runtime = start_runtime(sqlite_url, tmp_path, tg)
    try:
        runtime.channels.start(delivery=False)
        wait_for(lambda: _message_count(runtime) == 3)
        resumed = tg.calls_of("getUpdates")[polls_before]
        assert resumed["offset"] == second["update_id"] + 1
        wait_for(lambda: runtime.channels.state.get(offset_key) == str(third["update_id"] + 1))
        with TestClient(create_app(runtime)) as client:
            texts = sorted(i["last_message"] for i in inbox_items(client))
        assert texts == ["второе", "третье"]  # two clients, three messages, none twice
    finally:
        runtime.close()
    assert tg.pending_updates() <= 1  # everything below the last offset was confirmed


def test_one_message_whether_it_came_by_webhook_or_by_polling(
    api: tuple[TestClient, Runtime], tg: FakeTelegram
) -> None:
    client, runtime = api
    update = message_update(USER, 5, text="дважды")
    assert post(client, update).json()["duplicate"] is False
    # The same bot polled by a second inbox (a switch from webhook to polling) sees it again.
    runtime.channels.configure(
        "poll", "telegram", "Polling", {"bot_token": TOKEN, "mode": "polling"}, actor="test"
    )
    tg.queue_update(update)
    runtime.channels.start(delivery=False)
    wait_for(lambda: runtime.channels.state.get("telegram:poll:offset"))
    assert _message_count(runtime) == 1
    # Another bot's chat with the same user counts its message ids on its own.
    other_bot = message_update(USER, 5, text="другой бот")
    runtime.channels.configure(
        "other",
        "telegram",
        "Other bot",
        {"bot_token": "42:other-token_0123456789abcdef", "webhook_secret": SECRET},
        actor="test",
    )
    response = post(client, other_bot, path="/hooks/telegram/other")
    assert response.json()["duplicate"] is False
    assert _message_count(runtime) == 2


def test_a_poller_survives_bad_updates_and_errors(
    sqlite_url: str, tmp_path: Path, tg: FakeTelegram
) -> None:
    tg.fail_next("getUpdates", 502, "Bad Gateway")
    tg.queue_update({"update_id": 10, "edited_message": message_update(USER, 1)["message"]})
    tg.queue_update({"update_id": 11, "message": "a shape python-telegram-bot cannot read"})
    tg.queue_update({"update_id": 12, "message": {"message_id": 3, "chat": {"id": 1}}})
    tg.queue_update(message_update(USER, 2, update_id=13, text="после ошибки"))
    runtime = start_runtime(sqlite_url, tmp_path, tg)
    try:
        runtime.channels.configure(
            "poll", "telegram", "Polling", {"bot_token": TOKEN, "mode": "polling"}, actor="test"
        )
        started = time.monotonic()
        runtime.channels.start(delivery=False)
        wait_for(lambda: _message_count(runtime) == 1)
        wait_for(lambda: runtime.channels.state.get("telegram:poll:offset") == "14")
    finally:
        runtime.close()
    assert time.monotonic() - started < 10
    assert tg.pending_updates() == 0 or tg.calls_of("getUpdates")[-1]["offset"] == 14


def test_stopping_a_poller_is_prompt(tmp_path: Path, tg: FakeTelegram) -> None:
    tg.max_poll_seconds = 20.0  # a long poll that would outlast the test

    async def scenario() -> float:
        adapter = TelegramAdapter(polling_inbox(), services(tmp_path, tg, poll_interval=20))
        stop = asyncio.Event()
        task = asyncio.create_task(adapter.run(stop))
        await asyncio.sleep(0.5)
        stopped = time.monotonic()
        stop.set()
        await asyncio.wait_for(task, 5)
        await adapter.aclose()
        return time.monotonic() - stopped

    # Far below the 20 s long poll it must not wait out, with room for a busy machine.
    assert asyncio.run(scenario()) < 10


# -- setWebhook --------------------------------------------------------------------------------


def test_set_webhook_registers_the_url_and_secret(tg: FakeTelegram) -> None:
    inbox = webhook_inbox()
    options = ChannelOptions(public_url="https://crm.example.com/", telegram_api_url=tg.url)
    url = asyncio.run(set_webhook(inbox, options))
    assert url == "https://crm.example.com/hooks/telegram/tg"
    assert tg.webhook == {"url": url, "secret_token": SECRET}
    assert tg.calls_of("setWebhook")[0]["allowed_updates"] == ["message"]

    with pytest.raises(InvalidInput):
        asyncio.run(set_webhook(webhook_inbox(secret="bad secret!"), options))
    with pytest.raises(TelegramApiError) as refused:
        asyncio.run(set_webhook(webhook_inbox(token=f"{BOT_ID}:wrong-token"), options))
    assert "wrong-token" not in str(refused.value)


# -- sending -----------------------------------------------------------------------------------


def webhook_inbox(token: str = TOKEN, secret: str = SECRET) -> InboxConfig:
    return InboxConfig(
        id=uuid4(),
        slug="tg",
        channel="telegram",
        name="Telegram",
        settings={"mode": "webhook"},
        secrets={"bot_token": token, "webhook_secret": secret},
    )


def polling_inbox() -> InboxConfig:
    return InboxConfig(
        id=uuid4(),
        slug="poll",
        channel="telegram",
        name="Polling",
        settings={"mode": "polling"},
        secrets={"bot_token": TOKEN},
    )


class MemoryState:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def set(self, key: str, value: str) -> None:
        self.values[key] = value


def services(tmp_path: Path, fake: FakeTelegram | None, poll_interval: float = 1.0) -> Any:
    from threadline.channels.base import ChannelServices

    async def ingest(message: Any) -> Any:
        raise AssertionError("not expected here")

    url = fake.url if fake is not None else "http://127.0.0.1:9"
    return ChannelServices(
        ingest=ingest,
        state=MemoryState(),
        attachments=AttachmentStore(tmp_path / "attachments"),
        options=ChannelOptions(telegram_api_url=url, poll_interval=poll_interval),
    )


def outbound(recipient: str, text: str = "Добрый день!", **extra: Any) -> OutboundMessage:
    return OutboundMessage(
        message_id=uuid4(),
        conversation_id=uuid4(),
        contact_id=uuid4(),
        channel="telegram",
        recipient=recipient,
        text=text,
        **extra,
    )


def send(adapter: TelegramAdapter, message: OutboundMessage) -> str:
    async def go() -> str:
        try:
            return await adapter.send(message)
        finally:
            await adapter.aclose()

    return asyncio.run(go())


def send_error(adapter: TelegramAdapter, message: OutboundMessage) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        send(adapter, message)
    return caught.value


def test_send_returns_the_provider_id(
    tmp_path: Path, tg: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    adapter = TelegramAdapter(webhook_inbox(), services(tmp_path, tg))
    with caplog.at_level(logging.INFO):
        provider_id = send(adapter, outbound(str(USER)))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "/bot<token>/sendMessage" in logged  # httpx logs each URL; the token is masked
    assert TOKEN not in logged and TOKEN.split(":")[1] not in logged
    [call] = tg.calls_of("sendMessage")
    assert call == {"chat_id": USER, "text": "Добрый день!"}
    chat, message_id = provider_id.split(":")
    assert chat == str(USER) and int(message_id) >= 500

    long_text = ("строка текста\n" * 700).strip()
    send(adapter, outbound(str(USER), long_text))
    parts = [c["text"] for c in tg.calls_of("sendMessage")[1:]]
    assert len(parts) == 3 and all(len(p) <= 4096 for p in parts)
    assert "\n".join(parts) == long_text


def test_send_documents_by_file_id_and_by_upload(tmp_path: Path, tg: FakeTelegram) -> None:
    adapter = TelegramAdapter(webhook_inbox(), services(tmp_path, tg))
    stored = adapter.services.attachments.put(b"%PDF-1.4 invoice", "invoice.pdf", "application/pdf")
    upload = {"filename": "invoice.pdf", "sha256": stored.sha256}
    send(adapter, outbound(str(USER), "Счёт во вложении", attachments=(upload,)))
    [document] = [c for c in tg.calls if c.method == "sendDocument"]
    assert document.params["chat_id"] == USER
    assert document.files["document"][0] == "invoice.pdf"
    assert document.files["document"][2] == b"%PDF-1.4 invoice"

    [file_id] = list(tg.files)
    send(adapter, outbound(str(USER), "", attachments=({"reference": file_id},)))
    assert tg.calls_of("sendDocument")[-1] == {"chat_id": USER, "document": file_id}
    assert tg.calls_of("sendMessage") == [{"chat_id": USER, "text": "Счёт во вложении"}]


def test_send_errors_are_classified(tmp_path: Path, tg: FakeTelegram) -> None:
    adapter = TelegramAdapter(webhook_inbox(), services(tmp_path, tg))
    tg.blocked.add(USER + 1)
    blocked = send_error(adapter, outbound(str(USER + 1)))
    assert blocked.kind is DeliveryErrorKind.BLOCKED and "blocked" in blocked.reason

    tg.fail_next("sendMessage", 429, "Too Many Requests: retry after 7", retry_after=7)
    limited = send_error(adapter, outbound(str(USER)))
    assert limited.kind is DeliveryErrorKind.TRANSIENT and limited.retry_after == 7

    tg.unknown_chats.add(USER + 2)
    missing = send_error(adapter, outbound(str(USER + 2)))
    assert (
        missing.kind is DeliveryErrorKind.PERMANENT and "chat not found" in missing.reason.lower()
    )

    assert send_error(adapter, outbound("not-a-chat")).kind is DeliveryErrorKind.PERMANENT
    assert send_error(adapter, outbound(str(USER), "  ")).kind is DeliveryErrorKind.PERMANENT

    tg.fail_next("sendMessage", 502, "Bad Gateway")
    assert send_error(adapter, outbound(str(USER))).kind is DeliveryErrorKind.TRANSIENT

    # Half a reply in the chat already: a retry would repeat it, so it is not retried.
    tg.fail_next("sendDocument", 502, "Bad Gateway")
    partial = send_error(adapter, outbound(str(USER), attachments=({"reference": "X"},)))
    assert partial.kind is DeliveryErrorKind.PERMANENT and "partly delivered" in partial.reason

    wrong = TelegramAdapter(webhook_inbox(token=f"{BOT_ID}:Xq9-old-token"), services(tmp_path, tg))
    refused = send_error(wrong, outbound(str(USER)))
    assert refused.kind is DeliveryErrorKind.PERMANENT and "Xq9-old-token" not in refused.reason

    unreachable = TelegramAdapter(webhook_inbox(), services(tmp_path, None))
    assert send_error(unreachable, outbound(str(USER))).kind is DeliveryErrorKind.TRANSIENT


def test_split_text_respects_the_limit() -> None:
    assert split_text("") == []
    assert split_text("short") == ["short"]
    words = "слово " * 2000
    parts = split_text(words, 100)
    assert all(0 < len(p) <= 100 for p in parts)
    assert " ".join(parts) == words.strip()
    assert split_text("x" * 250, 100) == ["x" * 100, "x" * 100, "x" * 50]


# -- replies through the delivery worker -------------------------------------------------------


def test_replies_are_delivered_and_a_block_is_not_retried(
    api: tuple[TestClient, Runtime], tg: FakeTelegram
) -> None:
    client, runtime = api
    blocked_user = USER + 7
    tg.blocked.add(blocked_user)
    assert post(client, message_update(USER, 1, update_id=1, text="Вопрос")).status_code == 200
    assert post(client, message_update(blocked_user, 1, update_id=2, text="Ещё")).status_code == 200
    by_user = {}
    for item in inbox_items(client):
        card = contact_card(client, item["contact_id"])
        telegram_id = next(i["value"] for i in card["identities"] if i["kind"] == "telegram")
        by_user[int(telegram_id)] = item["conversation_id"]
    runtime.channels.start(pollers=False)

    def reply(user: int, text: str) -> str:
        response = client.post(
            f"/api/conversations/{by_user[user]}/messages", json={"text": text}, headers=ADMIN
        )
        assert response.status_code == 201, response.text
        message_id: str = response.json()["message_id"]
        return message_id

    def state(user: int, message_id: str) -> dict[str, Any]:
        conversation = client.get(f"/api/conversations/{by_user[user]}", headers=ADMIN).json()
        return next(m for m in conversation["messages"] if m["id"] == message_id)

    answered = reply(USER, "Ответ оператора")
    delivered = wait_for(lambda: (s := state(USER, answered))["state"] == "sent" and s)
    assert tg.calls_of("sendMessage") == [{"chat_id": USER, "text": "Ответ оператора"}]
    assert delivered["provider_id"].startswith(f"{USER}:")

    refused = reply(blocked_user, "Вы нас заблокировали?")
    failed = wait_for(lambda: (s := state(blocked_user, refused))["state"] == "failed" and s)
    assert "blocked" in failed["failure"]["reason"] and failed["failure"]["permanent"] is True
    time.sleep(0.5)  # longer than several retry delays: a retry would show up by now
    attempts = [c for c in tg.calls_of("sendMessage") if c["chat_id"] == blocked_user]
    assert len(attempts) == 1
