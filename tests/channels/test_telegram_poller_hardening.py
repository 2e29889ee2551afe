"""Telegram long polling when things go wrong (issue 10, item 1's sibling in Telegram).

* An update whose ingest fails in an unexpected way is recorded as rejected (with the
  reason, its update_id, chat and the start of its text) and the offset moves past it:
  the updates after it are still ingested. Before, it was retried forever and blocked
  every later update.
* A database outage is the one failure that keeps the offset: the update is taken
  again once the database is back. Meanwhile `/healthz` says the poller is failing, as
  it does when getUpdates keeps failing (before, Telegram pollers never reported).
* Telegram rejections are listed with the e-mail ones and retried from the copy of the
  update they keep (Telegram cannot send an update again); an update too large to keep
  cannot be retried, and the retry says so with 409.

The failures are injected through the ingest function the adapter is given
(`ChannelServices.ingest`, constructor-injected); python-telegram-bot, the fake Bot API
server, the store and the hub run unchanged around it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import OperationalError
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.channels.fake_telegram import (
    TOKEN,
    ApiError,
    FakeTelegram,
    message_update,
)
from tests.channels.test_telegram import start_runtime
from tests.conftest import make_runtime
from tests.waiting import wait_for
from threadline.channels import telegram
from threadline.channels.telegram import update_rejection
from threadline.domain.model.inbound import InboundMessage, IngestResult
from threadline.projections.inbox import channel_messages
from threadline.services.api.app import create_app
from threadline.services.channel_rejections import MAX_RAW, RejectionStore
from threadline.services.runtime import Runtime

pytestmark = [
    pytest.mark.timeout(120),
    # python-telegram-bot 22 warns about its own RetryAfter while building one.
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

ADMIN = {"Authorization": "Bearer admin-secret"}
USER = 300_400_500
SLUG = "poll"
OFFSET_KEY = f"telegram:{SLUG}:offset"


class Ingest:
    """The hub's ingest, with a hook run before each message (it may raise)."""

    def __init__(self, runtime: Runtime, before: Callable[[InboundMessage], None]) -> None:
        self.inner = runtime.channels.services.ingest
        self.before = before
        self.texts: list[str] = []
        runtime.channels.services.ingest = self

    async def __call__(self, message: InboundMessage) -> IngestResult:
        self.texts.append(message.text)
        self.before(message)
        return await self.inner(message)


class SwitchableTelegram(FakeTelegram):
    """The fake Bot API server, whose getUpdates answers 500 while `down` is set."""

    down = False

    def api_getUpdates(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        if self.down:
            raise ApiError(500, "Internal Server Error: the Bot API is having a bad day")
        return super().api_getUpdates(params, files)


@pytest.fixture
def tg() -> Iterator[SwitchableTelegram]:
    fake = SwitchableTelegram(TOKEN, 1.0).start()
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture
def new_runtime(tmp_path: Path, tg: FakeTelegram) -> Iterator[Callable[..., Runtime]]:
    started: list[Runtime] = []

    def factory(url: str | None = None) -> Runtime:
        runtime = start_runtime(url or f"sqlite:///{tmp_path}/threadline.db", tmp_path, tg)
        started.append(runtime)
        return runtime

    yield factory
    for runtime in started:
        runtime.close()


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """A poller that backs off at most a second, so recovery is quick to see."""
    monkeypatch.setattr(telegram, "RETRY_MAX_SECONDS", 1.0)


def configure_polling(runtime: Runtime) -> None:
    runtime.channels.configure(
        SLUG, "telegram", "Polling", {"bot_token": TOKEN, "mode": "polling"}, actor="test"
    )


def texts(runtime: Runtime) -> list[str]:
    return sorted(row.text for row in channel_messages(runtime.views, "telegram"))


def message_count(runtime: Runtime) -> int:
    return len(channel_messages(runtime.views, "telegram"))


def health(client: TestClient, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = client.get("/healthz", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def rejected(client: TestClient) -> dict[str, Any]:
    response = client.get(f"/api/inboxes/{SLUG}/rejected", headers=ADMIN)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def degraded(client: TestClient) -> dict[str, Any] | None:
    state = health(client)
    return state if state["status"] == "degraded" else None


def surrogate_error() -> UnicodeEncodeError:
    """What the store raised for a value holding a lone surrogate (issue 10, item 1)."""
    return UnicodeEncodeError("utf-8", "Jos\udce9", 3, 4, "surrogates not allowed")


def test_an_update_whose_ingest_fails_is_rejected_and_the_next_one_is_still_ingested(
    database_url: str, new_runtime: Callable[..., Runtime], tg: SwitchableTelegram
) -> None:
    tg.queue_update(message_update(USER, 1, update_id=501, text="до отравленного"))
    poisoned = tg.queue_update(
        message_update(USER, 2, update_id=502, text="отравленное  сообщение")
    )
    malformed = tg.queue_update(
        {"update_id": 503, "message": {"message_id": 3, "chat": {"id": USER}}}
    )
    last = tg.queue_update(message_update(USER, 4, update_id=504, text="после отравленного"))
    runtime = new_runtime(database_url)

    def poison(message: InboundMessage) -> None:
        if message.text.startswith("отравленное"):
            raise surrogate_error()

    ingest = Ingest(runtime, poison)
    configure_polling(runtime)
    runtime.channels.start(delivery=False)

    wait_for(lambda: message_count(runtime) == 2, "the update after the bad ones", 30)
    wait_for(
        lambda: runtime.channels.state.get(OFFSET_KEY) == str(last["update_id"] + 1),
        "the offset past every update",
    )
    taken = [text for text in ingest.texts if text.startswith("отравленное")]
    assert len(taken) == 1, "the bad update is not taken again"
    assert texts(runtime) == ["до отравленного", "после отравленного"]

    client = TestClient(create_app(runtime))
    listed = rejected(client)
    assert listed["total"] == 2
    by_update = {item["update_id"]: item for item in listed["items"]}
    bad = by_update[poisoned["update_id"]]
    assert "UnicodeEncodeError" in bad["reason"] and bad["reason"].startswith("unexpected error")
    assert bad["chat"] == str(USER)
    assert bad["text"] == "отравленное сообщение"
    assert bad["sender"] == f"Анна Петрова (@user{USER}, id {USER})"
    assert (bad["folder"], bad["uidvalidity"], bad["uid"]) == ("", 0, 0)
    assert bad["retryable"] is True and bad["attempts"] == 1
    unreadable = by_update[malformed["update_id"]]
    assert unreadable["reason"] and unreadable["chat"] == str(USER)

    state = health(client)
    assert state["status"] == "ok"
    assert state["rejected_messages"] == 2
    poller = state["pollers"][SLUG]
    assert poller["channel"] == "telegram" and poller["state"] == "ok"
    assert poller["consecutive_failures"] == 0 and poller["last_success"] is not None

    # Still unreadable: the retry says so, and the rejection stays with one more attempt.
    again = client.post(f"/api/inboxes/{SLUG}/rejected/{unreadable['id']}/retry", headers=ADMIN)
    assert again.status_code == 200, again.text
    assert again.json()["outcome"] == "rejected" and again.json()["reason"]
    # The poisoned one: its cause is gone (a retry goes through the hub's own ingest), so
    # the kept copy of the update is ingested and the rejection removed.
    fixed = client.post(f"/api/inboxes/{SLUG}/rejected/{bad['id']}/retry", headers=ADMIN)
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["outcome"] == "ingested" and fixed.json()["duplicate"] is False
    assert texts(runtime) == ["до отравленного", "отравленное  сообщение", "после отравленного"]
    remaining = rejected(client)
    assert remaining["total"] == 1
    [left] = remaining["items"]
    assert left["update_id"] == malformed["update_id"] and left["attempts"] == 2
    assert health(client)["rejected_messages"] == 1


def test_a_database_outage_keeps_the_offset_and_healthz_shows_the_failing_poller(
    new_runtime: Callable[..., Runtime], tg: SwitchableTelegram, quick_retries: None
) -> None:
    update = tg.queue_update(message_update(USER, 1, text="в момент отказа"))
    runtime = new_runtime()
    outage = {"on": True}

    def database_down(message: InboundMessage) -> None:
        if outage["on"]:
            raise OperationalError("connection refused: the database is restarting")

    ingest = Ingest(runtime, database_down)
    client = TestClient(create_app(runtime))
    configure_polling(runtime)
    runtime.channels.start(delivery=False)

    state = wait_for(lambda: degraded(client), "the failing poller in /healthz", 60)
    poller = state["pollers"][SLUG]
    assert poller["state"] == "failing" and poller["consecutive_failures"] >= 3
    # The error's text is for admins; anyone sees its kind.
    assert poller["last_error"] == "OperationalError"
    detailed = health(client, ADMIN)["pollers"][SLUG]
    assert detailed["last_error"] == (
        "OperationalError: connection refused: the database is restarting"
    )
    assert runtime.channels.state.get(OFFSET_KEY) is None, "an outage must not move the offset"
    assert state["rejected_messages"] == 0 and message_count(runtime) == 0
    assert len(ingest.texts) >= 3, "the same update is taken again and again"

    outage["on"] = False
    wait_for(lambda: message_count(runtime) == 1, "the update after the outage", 30)
    wait_for(
        lambda: runtime.channels.state.get(OFFSET_KEY) == str(update["update_id"] + 1),
        "the offset past the update",
    )
    wait_for(lambda: health(client)["status"] == "ok", "the poller healthy again")
    assert rejected(client)["total"] == 0


def test_healthz_shows_a_poller_whose_get_updates_keeps_failing(
    new_runtime: Callable[..., Runtime], tg: SwitchableTelegram, quick_retries: None
) -> None:
    tg.down = True
    runtime = new_runtime()
    client = TestClient(create_app(runtime))
    configure_polling(runtime)
    runtime.channels.start(delivery=False)

    state = wait_for(lambda: degraded(client), "the failing poller in /healthz", 60)
    poller = state["pollers"][SLUG]
    assert poller["state"] == "failing" and poller["consecutive_failures"] >= 3
    assert poller["last_success"] is None
    assert poller["last_error"] and ":" not in poller["last_error"], "anyone sees only the kind"
    detailed = health(client, ADMIN)["pollers"][SLUG]
    assert "getUpdates failed" in detailed["last_error"]
    assert "bad day" in detailed["last_error"]
    assert TOKEN not in json.dumps(health(client, ADMIN)), "the bot token never shows"

    tg.down = False
    tg.queue_update(message_update(USER, 1, text="снова на связи"))
    wait_for(lambda: message_count(runtime) == 1, "the update once getUpdates answers", 30)
    wait_for(lambda: health(client)["status"] == "ok", "the poller healthy again")
    assert health(client)["pollers"][SLUG]["last_success"] is not None


def test_an_update_too_large_to_keep_is_listed_and_its_retry_answers_409(
    new_runtime: Callable[..., Runtime], tg: SwitchableTelegram
) -> None:
    huge = "ы" * 20_000  # 120 000 characters of ASCII-escaped JSON
    big = tg.queue_update(message_update(USER, 1, text=huge))
    after = tg.queue_update(message_update(USER, 2, text="после большого"))
    runtime = new_runtime()

    def refuse_big(message: InboundMessage) -> None:
        if message.text.startswith("ыыы"):
            raise ValueError("a bug in a normaliser")

    Ingest(runtime, refuse_big)
    configure_polling(runtime)
    runtime.channels.start(delivery=False)
    wait_for(
        lambda: runtime.channels.state.get(OFFSET_KEY) == str(after["update_id"] + 1),
        "the offset past both updates",
        30,
    )
    client = TestClient(create_app(runtime))
    [item] = rejected(client)["items"]
    assert item["update_id"] == big["update_id"]
    assert item["retryable"] is False and item["size"] > MAX_RAW
    assert item["text"] == "ы" * 300, "the preview is bounded"
    assert "ValueError: a bug in a normaliser" in item["reason"]
    refused = client.post(f"/api/inboxes/{SLUG}/rejected/{item['id']}/retry", headers=ADMIN)
    assert refused.status_code == 409, refused.text
    assert "too large to keep" in refused.json()["detail"]
    assert rejected(client)["total"] == 1


def test_the_rejections_table_of_an_earlier_version_gains_the_telegram_columns(
    database_url: str, tmp_path: Path
) -> None:
    runtime = make_runtime(database_url, attachments_dir=str(tmp_path / "attachments"))
    try:
        with runtime.state_db.transaction() as cur:
            cur.execute("DROP TABLE channel_rejections")
            cur.execute(
                "CREATE TABLE channel_rejections ("
                " id TEXT PRIMARY KEY, inbox_slug TEXT NOT NULL, folder TEXT NOT NULL,"
                " uidvalidity BIGINT NOT NULL, uid BIGINT NOT NULL, reason TEXT NOT NULL,"
                " rejected_at TEXT NOT NULL, first_rejected_at TEXT NOT NULL,"
                " attempts BIGINT NOT NULL, size BIGINT NOT NULL, message_id TEXT NOT NULL,"
                " subject TEXT NOT NULL, sender TEXT NOT NULL)"
            )
            cur.execute(
                "INSERT INTO channel_rejections VALUES"
                " ('0f0e0d0c-0000-5000-8000-000000000000', 'support', 'INBOX', 7, 3, 'old',"
                " '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00', 1, 10, '', 'S', '')"
            )
        store = RejectionStore(runtime.state_db)
        store.ensure_table()
        store.ensure_table()  # a second start finds the columns there
        [old] = store.page("support")
        assert (old.uid, old.update_id, old.raw) == (3, None, "")
        assert old.describe()["retryable"] is True
        update = message_update(USER, 9, text="новая колонка")
        store.add(update_rejection("support", update["update_id"], update, "refused"))
        assert store.count("support") == 2
    finally:
        runtime.close()


# -- the rejection record of any update -------------------------------------------------------

_ANY_TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=40)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | _ANY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_ANY_TEXT, inner, max_size=4),
    max_leaves=20,
)
_MESSAGE = st.fixed_dictionaries(
    {},
    optional={
        "text": _JSON,
        "caption": _JSON,
        "chat": _JSON | st.fixed_dictionaries({"id": _JSON}),
        "from": _JSON | st.fixed_dictionaries({}, optional={"id": _JSON, "first_name": _JSON}),
    },
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RejectionStore]:
    path = tmp_path_factory.mktemp("rejections")
    runtime = make_runtime(f"sqlite:///{path}/threadline.db", attachments_dir=str(path / "files"))
    try:
        yield runtime.channels.rejections
    finally:
        runtime.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message=_MESSAGE | _JSON, update_id=st.integers(min_value=0, max_value=2**62))
def test_any_update_makes_a_storable_rejection_that_keeps_the_update(
    store: RejectionStore, message: Any, update_id: int
) -> None:
    """Hostile or broken updates (lone surrogates, NULs, wrong types) are exactly the ones
    that get rejected: recording one never fails, and a retry reads back the same update."""
    update = {"update_id": update_id, "message": message}
    rejection = update_rejection(SLUG, update_id, update, "reason with \x00 and \udce9")
    store.add(rejection)
    kept = [r for r in store.page(SLUG, 500) if r.update_id == update_id]
    assert len(kept) == 1
    assert len(kept[0].text) <= 300 and len(kept[0].sender) <= 300
    assert json.loads(kept[0].raw) == update
    assert kept[0].rejection().raw == kept[0].raw


def test_an_adapter_given_plain_channel_services_rejects_a_failing_update_and_moves_on(
    tmp_path: Path, tg: FakeTelegram
) -> None:
    """Built without the hub (its rejection log and health report keep nothing), with an
    ingest that always raises: the offset still moves past the update."""
    from tests.channels.test_telegram import polling_inbox, services
    from threadline.channels.telegram import TelegramAdapter

    bad = tg.queue_update(message_update(USER, 1, text="без отчёта"))

    async def scenario() -> str | None:
        given = services(tmp_path, tg)  # its ingest raises AssertionError: a bug, rejected
        adapter = TelegramAdapter(polling_inbox(), given)
        stop = asyncio.Event()
        task = asyncio.create_task(adapter.run(stop))
        key = adapter.offset_key
        try:
            await asyncio.to_thread(wait_for, lambda: given.state.get(key), "the offset moved")
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)
            await adapter.aclose()
        value: str | None = given.state.get(key)
        return value

    assert asyncio.run(scenario()) == str(bad["update_id"] + 1)


def test_the_inbox_admin_screen_lists_telegram_rejections(tmp_path: Path) -> None:
    # The default public URL (http): the screen's session cookie is not `Secure` then.
    runtime = make_runtime(
        f"sqlite:///{tmp_path}/threadline.db", attachments_dir=str(tmp_path / "files")
    )
    try:
        configure_polling(runtime)
        screen_lists_the_rejection(runtime)
    finally:
        runtime.close()


def screen_lists_the_rejection(runtime: Runtime) -> None:
    from tests.web.helpers import web_client

    update = message_update(USER, 7, update_id=777, text="<b>жирный</b> текст")
    runtime.channels.rejections.add(update_rejection(SLUG, 777, update, "unexpected error: X"))
    admin, _, _ = web_client(runtime, "admin")
    page = admin.get(f"/admin/inboxes/{SLUG}")
    assert page.status_code == 200, page.text
    assert 'data-rejected-total="1"' in page.text
    assert "update_id 777" in page.text and "UID 0" not in page.text
    assert "&lt;b&gt;жирный&lt;/b&gt; текст" in page.text, "the text is shown, escaped"
    assert f"Анна Петрова (@user{USER}, id {USER})" in page.text


def test_a_webhook_update_whose_ingest_fails_is_kept_as_a_rejection_and_answered_200(
    tmp_path: Path, tg: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The webhook's sibling of the poller's rule: Telegram would retry a 500 for ever (and
    hold back the chat's later updates), so the update is kept, listed and retryable."""
    from tests.channels.fake_telegram import message_update
    from tests.channels.test_telegram import HOOK, configure_webhook_inbox, post

    runtime = start_runtime(f"sqlite:///{tmp_path}/threadline.db", tmp_path, tg)
    try:
        configure_webhook_inbox(runtime)
        real_ingest = runtime.channels.ingest

        def failing_ingest(message: InboundMessage) -> IngestResult:
            if "poison" in (message.text or ""):
                raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
            return real_ingest(message)

        monkeypatch.setattr(runtime.channels, "ingest", failing_ingest)
        with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
            poisoned = post(client, message_update(USER, 1, update_id=700_001, text="poison"))
            assert poisoned.status_code == 200, poisoned.text
            assert "unexpected error" in poisoned.json()["rejected"]
            fine = post(client, message_update(USER, 2, update_id=700_002, text="fine"))
            assert fine.status_code == 200 and fine.json()["duplicate"] is False
            listed = client.get("/api/inboxes/tg/rejected", headers=ADMIN).json()
            [row] = [r for r in listed["items"] if r.get("update_id") == 700_001]
            assert row["retryable"] and "UnicodeEncodeError" in row["reason"]
            monkeypatch.setattr(runtime.channels, "ingest", real_ingest)
            retried = client.post(f"/api/inboxes/tg/rejected/{row['id']}/retry", headers=ADMIN)
            assert retried.status_code == 200 and retried.json()["outcome"] == "ingested"
        assert HOOK == "/hooks/telegram/tg"
    finally:
        runtime.close()
