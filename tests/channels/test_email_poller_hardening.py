"""The IMAP poller against a real Dovecot when things go wrong (issue 10, items 1, 2 and 5).

* One message whose ingest fails in an unexpected way is recorded as rejected (with
  the reason) and the cursor moves on: the mailbox never stops for one message.
* A database outage is the one failure that must not move the cursor: the message is
  fetched again once the database is back, and `/healthz` says the poller is failing.
* Rejections are visible (`/healthz`, the API) and can be retried.
* A new message announced while the poller is between IDLEs (during a sync) is
  fetched at once, not at the next IDLE renewal.

The failures are injected through the ingest function the adapter is given
(`ChannelServices.ingest`, constructor-injected): the real parser, store, Dovecot
and poller run unchanged around it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from eventsourcing.persistence import OperationalError
from fastapi.testclient import TestClient

from tests.channels.dovecot import Dovecot, _quote
from tests.channels.test_email_imap import ADMIN, configure, email_messages, mail
from tests.waiting import wait_for
from threadline.channels.email import cursor_key
from threadline.domain.model.inbound import InboundMessage, IngestResult
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime

pytestmark = pytest.mark.timeout(120)


class Ingest:
    """The hub's ingest, with a hook run before each message (it may raise or act)."""

    def __init__(
        self, runtime: Runtime, before: Callable[[InboundMessage], Any] | None = None
    ) -> None:
        self.inner = runtime.channels.services.ingest
        self.before = before
        self.subjects: list[str] = []
        runtime.channels.services.ingest = self

    async def __call__(self, message: InboundMessage) -> IngestResult:
        self.subjects.append(message.subject)
        if self.before is not None:
            outcome = self.before(message)
            if asyncio.iscoroutine(outcome):
                await outcome
        return await self.inner(message)


def surrogate_error() -> UnicodeEncodeError:
    """What the store raised for a sender name holding a lone surrogate (issue 10, item 1)."""
    return UnicodeEncodeError("utf-8", "Jos\udce9", 3, 4, "surrogates not allowed")


def subjects(runtime: Runtime) -> list[str]:
    return [row["subject"] for row in email_messages(runtime)]


def cursor(runtime: Runtime, slug: str = "support") -> dict[str, Any]:
    value = runtime.channels.state.get(cursor_key(slug, "INBOX"))
    return json.loads(value) if value else {}


def health(client: TestClient, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = client.get("/healthz", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_an_unexpected_error_on_one_message_is_a_rejection_and_later_mail_still_comes(
    dovecot: Dovecot, database_url: str, new_runtime: Callable[..., Runtime]
) -> None:
    user = dovecot.add_user()
    dovecot.append(user, mail("Первое", "До отравленного"))
    dovecot.append(user, mail("Отравленное", "Хранилище не примет"))
    dovecot.append(user, mail("Третье", "После отравленного"))
    runtime = new_runtime(database_url)

    def poison(message: InboundMessage) -> None:
        if message.subject == "Отравленное":
            raise surrogate_error()

    ingest = Ingest(runtime, poison)
    configure(runtime, "support", dovecot.settings(user))
    runtime.channels.start(delivery=False)

    wait_for(lambda: "Третье" in subjects(runtime), "the message after the bad one", 30)
    assert sorted(subjects(runtime)) == ["Первое", "Третье"]
    assert ingest.subjects.count("Отравленное") == 1, "the bad message is not fetched again"
    wait_for(lambda: cursor(runtime).get("last_uid") == 3, "the cursor past every message")
    client = TestClient(create_app(runtime))
    listed = client.get("/api/inboxes/support/rejected", headers=ADMIN)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["total"] == 1
    [rejection] = body["items"]
    assert rejection["folder"] == "INBOX" and rejection["uid"] == 2
    assert "UnicodeEncodeError" in rejection["reason"]
    assert rejection["subject"] == "Отравленное"
    assert rejection["sender"] == "Анна Смирнова <anna@example.org>"
    assert rejection["message_id"].endswith("@client.example.org>")
    state = health(client)
    assert state["status"] == "ok"
    assert state["rejected_messages"] == 1
    assert state["pollers"]["support"]["consecutive_failures"] == 0
    assert state["pollers"]["support"]["last_success"] is not None


def test_a_database_outage_keeps_the_cursor_and_healthz_shows_the_failing_poller(
    dovecot: Dovecot, new_runtime: Callable[..., Runtime]
) -> None:
    user = dovecot.add_user()
    dovecot.append(user, mail("Письмо в момент отказа", "База недоступна"))
    runtime = new_runtime()
    outage = {"on": True}

    def database_down(message: InboundMessage) -> None:
        if outage["on"]:
            raise OperationalError("connection refused: the database is restarting")

    Ingest(runtime, database_down)
    client = TestClient(create_app(runtime))
    configure(runtime, "support", dovecot.settings(user))
    runtime.channels.start(delivery=False)

    # The hub restarts a failed poller every few seconds; after three failures in a row
    # the health check says so, naming the error.
    def degraded() -> dict[str, Any] | None:
        state = health(client)
        return state if state["status"] == "degraded" else None

    state = wait_for(degraded, "the failing poller in /healthz", 60)
    poller = state["pollers"]["support"]
    assert poller["consecutive_failures"] >= 3
    assert poller["state"] == "failing"
    # The error's text (it may name hosts and users) is for admins; anyone sees its kind.
    assert poller["last_error"] == "OperationalError"
    detailed = health(client, ADMIN)["pollers"]["support"]
    assert detailed["last_error"] == (
        "OperationalError: connection refused: the database is restarting"
    )
    assert cursor(runtime).get("last_uid", 0) == 0, "an outage must not move the cursor"
    assert state["rejected_messages"] == 0
    assert email_messages(runtime) == []

    outage["on"] = False
    wait_for(
        lambda: subjects(runtime) == ["Письмо в момент отказа"], "the message after the outage", 30
    )
    wait_for(lambda: health(client)["status"] == "ok", "the poller healthy again")
    assert health(client)["pollers"]["support"]["consecutive_failures"] == 0
    assert client.get("/api/inboxes/support/rejected", headers=ADMIN).json()["total"] == 0


def test_a_rejected_message_can_be_retried_once_its_cause_is_fixed(
    dovecot: Dovecot, database_url: str, new_runtime: Callable[..., Runtime]
) -> None:
    user = dovecot.add_user()
    dovecot.append(user, mail("Сломанное", "Сначала не принято"))
    dovecot.append(user, b"Subject: no sender at all\r\n\r\nWho wrote this?\r\n")
    dovecot.append(user, mail("Исчезнет", "Будет удалено"))
    runtime = new_runtime(database_url)
    broken = {"Сломанное", "Исчезнет"}

    def refuse(message: InboundMessage) -> None:
        if message.subject in broken:
            raise ValueError("a bug in a normaliser")

    Ingest(runtime, refuse)
    configure(runtime, "support", dovecot.settings(user))
    runtime.channels.start(delivery=False)
    client = TestClient(create_app(runtime))
    listed = wait_for(
        lambda: (
            (b := client.get("/api/inboxes/support/rejected", headers=ADMIN).json())["total"] == 3
            and b
        ),
        "three rejections",
        30,
    )
    by_uid = {item["uid"]: item for item in listed["items"]}
    assert [item["uid"] for item in listed["items"]] == [3, 2, 1], "newest first"
    assert "sender" in by_uid[2]["reason"] and "ValueError" in by_uid[1]["reason"]
    assert by_uid[2]["subject"] == "no sender at all" and by_uid[2]["sender"] == ""
    page = client.get("/api/inboxes/support/rejected?limit=1&offset=1", headers=ADMIN).json()
    assert page["total"] == 3 and [item["uid"] for item in page["items"]] == [2]

    # Still broken: the answer says so, and the rejection stays with the new reason.
    still = client.post(f"/api/inboxes/support/rejected/{by_uid[2]['id']}/retry", headers=ADMIN)
    assert still.status_code == 200, still.text
    assert still.json()["outcome"] == "rejected" and "sender" in still.json()["reason"]

    # The cause is fixed: a retry ingests it and the rejection is gone.
    broken.discard("Сломанное")
    fixed = client.post(f"/api/inboxes/support/rejected/{by_uid[1]['id']}/retry", headers=ADMIN)
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["outcome"] == "ingested" and fixed.json()["message_id"]
    assert "Сломанное" in subjects(runtime)

    # A message deleted from the server meanwhile: the answer says it is gone.
    with dovecot.imap(user) as imap:
        imap.select(_quote("INBOX"))
        imap.uid("STORE", "3", "+FLAGS", "(\\Deleted)")
        imap.expunge()
    gone = client.post(f"/api/inboxes/support/rejected/{by_uid[3]['id']}/retry", headers=ADMIN)
    assert gone.status_code == 200 and gone.json()["outcome"] == "gone", gone.text

    remaining = client.get("/api/inboxes/support/rejected", headers=ADMIN).json()
    assert sorted(item["uid"] for item in remaining["items"]) == [2, 3]
    assert health(client)["rejected_messages"] == 2
    unknown = "00000000-0000-0000-0000-000000000000"
    missing = client.post(f"/api/inboxes/support/rejected/{unknown}/retry", headers=ADMIN)
    assert missing.status_code == 404
    assert client.get("/api/inboxes/nobody/rejected", headers=ADMIN).status_code == 404


def test_mail_announced_during_a_sync_is_fetched_at_once_not_at_the_next_idle_renewal(
    dovecot: Dovecot, new_runtime: Callable[..., Runtime]
) -> None:
    """Dovecot announces a new message once, in the answer to whatever command comes next
    (here the UID FETCH of the sync's second message); the next IDLE says nothing about it.
    With IDLE renewed only every 300 s, only acting on that EXISTS brings it in quickly."""
    user = dovecot.add_user()
    dovecot.create_folder(user, "Staging")
    dovecot.append(user, mail("Первое из трёх", "1"), "Staging")
    dovecot.append(user, mail("Второе из трёх", "2"), "Staging")
    dovecot.append(user, mail("Третье из трёх", "3"), "Staging")
    runtime = new_runtime(channel_poll_interval=300.0)

    def deliver_and_open(raw: bytes) -> None:
        """APPEND, then SELECT as another mail program would: that session takes the
        message's \\Recent flag, so the poller hears of it only through EXISTS (as with
        any server that sends no RECENT, such as an IMAP4rev2 one)."""
        with dovecot.imap(user) as imap:
            status, detail = imap.append(_quote("INBOX"), None, None, raw)
            assert status == "OK", detail
            imap.select(_quote("INBOX"))

    async def deliver_during_the_sync(message: InboundMessage) -> None:
        if message.subject == "Первое из трёх":
            late = mail("Пришло во время синхронизации", "4")
            await asyncio.to_thread(deliver_and_open, late)

    Ingest(runtime, deliver_during_the_sync)
    configure(runtime, "support", dovecot.settings(user))
    runtime.channels.start(delivery=False)
    wait_for(lambda: runtime.channels.state.get(cursor_key("support", "INBOX")), "the first sync")
    # Both messages land at once (one COPY, one EXISTS), so one sync fetches the two.
    with dovecot.imap(user) as imap:
        imap.select(_quote("Staging"))
        status, detail = imap.uid("COPY", "1:3", _quote("INBOX"))
        assert status == "OK", detail
    wait_for(
        lambda: len(subjects(runtime)) == 4,
        "the message announced during the sync (IDLE renews only every 300 s)",
        20,
    )
    assert set(subjects(runtime)) == {
        "Первое из трёх",
        "Второе из трёх",
        "Третье из трёх",
        "Пришло во время синхронизации",
    }


def test_the_inbox_admin_screen_lists_rejections_and_retries_them(
    dovecot: Dovecot, new_runtime: Callable[..., Runtime]
) -> None:
    """Rejections recorded for messages that are really in Dovecot; the poller is not running,
    so what the screen's Retry does is all that happens."""
    from tests.web.helpers import web_client
    from threadline.channels.base import Rejection

    user = dovecot.add_user()
    dovecot.append(user, mail("Повтор из админки", "Теперь примется"))
    dovecot.append(user, mail("Тоже отклонено", "Второе"))
    runtime = new_runtime()
    configure(runtime, "support", dovecot.settings(user))
    uidvalidity = _uidvalidity(dovecot, user)
    for uid, subject in ((1, "Повтор из админки"), (2, "Тоже отклонено")):
        runtime.channels.rejections.add(
            Rejection("support", "INBOX", uidvalidity, uid, f"<b>bad</b> {uid}", subject=subject)
        )
    [second, first] = runtime.channels.rejections.page("support")
    assert (first.uid, second.uid) == (1, 2)

    admin, csrf, _ = web_client(runtime, "admin")
    page = admin.get("/admin/inboxes/support")
    assert page.status_code == 200, page.text
    assert 'id="rejected"' in page.text and 'data-rejected-total="2"' in page.text
    assert "&lt;b&gt;bad&lt;/b&gt; 1" in page.text, "the reason is shown, escaped"
    assert "Повтор из админки" in page.text
    action = f"/admin/inboxes/support/rejected/{first.id}/retry"
    assert f'action="{action}"' in page.text
    full = admin.get("/admin/inboxes/support/rejected")
    assert full.status_code == 200 and "Тоже отклонено" in full.text

    assert admin.post(action, data={}, follow_redirects=False).status_code == 403, "no CSRF"
    operator, operator_csrf, _ = web_client(runtime, "operator")
    refused = operator.post(action, data={"csrf_token": operator_csrf}, follow_redirects=False)
    assert refused.status_code == 403
    assert operator.get("/admin/inboxes/support/rejected").status_code == 403
    assert runtime.channels.rejections.count("support") == 2

    done = admin.post(action, data={"csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/admin/inboxes/support?done=retried"
    assert subjects(runtime) == ["Повтор из админки"]
    after = admin.get(done.headers["location"]).text
    assert "The message was fetched again and is in the inbox now." in after
    assert 'data-rejected-total="1"' in after and f'data-rejection="{first.id}"' not in after
    russian, _, _ = web_client(runtime, "admin", locale="ru")
    assert "Отклонённые письма" in russian.get("/admin/inboxes/support").text


def _uidvalidity(dovecot: Dovecot, user: str) -> int:
    with dovecot.imap(user) as imap:
        imap.select(_quote("INBOX"))
        _, data = imap.response("UIDVALIDITY")
        return int(data[0])


def test_only_an_exists_that_grows_the_folder_counts_as_new_mail() -> None:
    """A server may repeat an unchanged EXISTS; only a grown count may trigger another sync
    (else the poller would sync in a loop instead of idling). EXPUNGE lowers the count."""
    from threadline.channels.email import _Protocol

    async def check() -> None:
        protocol = _Protocol(asyncio.get_running_loop())
        seen = []
        for line in (b"* 3 EXISTS", b"* 3 EXISTS", b"* 4 EXISTS", b"* 2 EXPUNGE", b"* 4 EXISTS"):
            protocol.new_mail.clear()
            protocol._untagged_response(line)
            seen.append(protocol.new_mail.is_set())
        assert seen == [True, False, True, False, True]
        protocol.new_mail.clear()
        protocol._untagged_response(b"* 12 FETCH (UID 40 FLAGS (\\Seen))")
        protocol._untagged_response(b"* 4 RECENT")
        assert not protocol.new_mail.is_set()

    asyncio.run(check())
