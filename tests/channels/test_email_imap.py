"""The IMAP poller against a real Dovecot: mail sent by SMTP ends up in the inbox, once.

Each test gets its own Dovecot user (mailbox) and its own database; the runtime's
channel hub runs the poller exactly as `threadline serve` would.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import asdict
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import aioimaplib
import pytest
from fastapi.testclient import TestClient

from tests.channels.dovecot import Dovecot, SmtpMta, TlsCert
from threadline.channels.email import cursor_key
from threadline.domain.model.inbound import InboundMessage, IngestResult
from threadline.projections.inbox import channel_messages
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime

ADMIN = {"Authorization": "Bearer admin-secret"}
pytestmark = pytest.mark.timeout(120)


def mail(
    subject: str,
    text: str,
    sender: str = "Анна Смирнова <anna@example.org>",
    message_id: str | None = None,
    **headers: str,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "support@example.com"
    message["Subject"] = subject
    message["Message-ID"] = message_id or make_msgid(domain="client.example.org")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(text)
    return message.as_bytes()


def wait_until(predicate: Callable[[], Any], seconds: float = 60.0, what: str = "") -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what or predicate}")


def email_messages(runtime: Runtime) -> list[dict[str, Any]]:
    return [asdict(m) for m in channel_messages(runtime.views, "email", "inbound")]


class IngestCounter:
    """Wraps the hub's ingest: counts calls, optionally slows each down."""

    def __init__(self, runtime: Runtime, delay: float = 0.0) -> None:
        self.inner = runtime.channels.services.ingest
        self.delay = delay
        self.results: list[IngestResult] = []
        runtime.channels.services.ingest = self

    async def __call__(self, message: InboundMessage) -> IngestResult:
        if self.delay:
            await asyncio.sleep(self.delay)
        result = await self.inner(message)
        self.results.append(result)
        return result

    @property
    def duplicates(self) -> int:
        return sum(1 for r in self.results if r.duplicate)


def configure(runtime: Runtime, slug: str, settings: dict[str, Any]) -> None:
    runtime.channels.configure(slug, "email", slug.title(), settings, actor="test")


def test_a_message_sent_by_smtp_reaches_the_inbox_and_the_timeline(
    dovecot: Dovecot, smtp_to_imap: SmtpMta, database_url: str, new_runtime: Callable[..., Runtime]
) -> None:
    user = dovecot.add_user()
    smtp_to_imap.send(mail("Где мой заказ?", "Заказ №42 не пришёл."), user)
    assert dovecot.count(user) == 1
    runtime = new_runtime(database_url)
    configure(runtime, "support", dovecot.settings(user))
    runtime.channels.start(delivery=False)

    rows = wait_until(lambda: email_messages(runtime), what="the message in the views")
    assert len(rows) == 1
    client = TestClient(create_app(runtime))
    items = client.get("/api/inbox", headers=ADMIN).json()["items"]
    assert len(items) == 1
    assert items[0]["channel"] == "email"
    assert items[0]["subject"] == "Где мой заказ?"
    assert items[0]["last_message"].startswith("Заказ №42 не пришёл.")
    contact = client.get(f"/api/contacts/{items[0]['contact_id']}", headers=ADMIN).json()
    assert {"kind": "email", "value": "anna@example.org"} in contact["identities"]
    timeline = client.get(f"/api/contacts/{items[0]['contact_id']}/timeline", headers=ADMIN)
    assert any(row["channel"] == "email" for row in timeline.json()["items"])
    metadata = rows[0]["metadata"]
    assert metadata["mailbox"] == "support" and metadata["folder"] == "INBOX"
    conversation = runtime.app.repository.get(__import__("uuid").UUID(rows[0]["conversation_id"]))
    assert conversation.inbox_id == runtime.channels.inbox("support").id


def test_several_messages_and_a_repeated_message_id_give_one_message_each(
    dovecot: Dovecot, smtp_to_imap: SmtpMta, new_runtime: Callable[..., Runtime]
) -> None:
    user = dovecot.add_user()
    repeated = mail("Повтор", "Одно и то же письмо", message_id="<same-1@client.example.org>")
    smtp_to_imap.send(repeated, user)
    for n in range(3):
        smtp_to_imap.send(mail(f"Письмо {n}", f"Текст {n}"), user)
    smtp_to_imap.send(repeated, user)  # a second copy of the same message in the mailbox
    assert dovecot.count(user) == 5
    runtime = new_runtime()
    counter = IngestCounter(runtime)
    configure(runtime, "support", dovecot.settings(user))
    runtime.channels.start(delivery=False)

    wait_until(lambda: len(counter.results) == 5, what="five ingest calls")
    rows = wait_until(lambda: len(email_messages(runtime)) == 4 and email_messages(runtime))
    assert counter.duplicates == 1
    assert sorted(r["subject"] for r in rows) == ["Письмо 0", "Письмо 1", "Письмо 2", "Повтор"]
    # One sender, four threads (each message is its own root): four conversations.
    assert len({r["conversation_id"] for r in rows}) == 4


def test_a_restart_in_the_middle_of_a_sync_neither_duplicates_nor_skips(
    dovecot: Dovecot, new_runtime: Callable[..., Runtime]
) -> None:
    user = dovecot.add_user()
    total = 8
    for n in range(total):
        dovecot.append(user, mail(f"Номер {n}", f"Сообщение {n}"))
    first = new_runtime()
    slow = IngestCounter(first, delay=0.25)
    configure(first, "support", dovecot.settings(user))
    first.channels.start(delivery=False)
    wait_until(lambda: len(slow.results) >= 2, what="two messages ingested")
    first.close()
    done_before = len(slow.results)
    assert 2 <= done_before < total, "the restart must happen in the middle of the sync"

    second = new_runtime()
    counter = IngestCounter(second)
    second.channels.start(delivery=False)  # the inbox is configured already (same database)
    wait_until(lambda: len(email_messages(second)) == total, what=f"{total} messages")
    # Only what the first run had not finished is fetched again: at most one message twice.
    wait_until(lambda: len(counter.results) >= total - done_before)
    time.sleep(0.3)
    assert total - done_before <= len(counter.results) <= total - done_before + 1
    assert counter.duplicates <= 1
    subjects = sorted(r["subject"] for r in email_messages(second))
    assert subjects == sorted(f"Номер {n}" for n in range(total))
    second.close()

    # The cursor survives a clean restart too: a third run ingests only the new message.
    third = new_runtime()
    again = IngestCounter(third)
    third.channels.start(delivery=False)
    dovecot.append(user, mail("Новое", "После перезапуска"))
    wait_until(lambda: len(email_messages(third)) == total + 1, what="the new message")
    time.sleep(0.3)
    assert len(again.results) == 1 and again.duplicates == 0


def test_a_malformed_message_is_recorded_as_rejected_and_the_poller_goes_on(
    dovecot: Dovecot, new_runtime: Callable[..., Runtime]
) -> None:
    user = dovecot.add_user()
    dovecot.append(user, b"Subject: no sender at all\r\n\r\nWho wrote this?\r\n")
    dovecot.append(user, mail("Нормальное письмо", "Всё хорошо"))
    runtime = new_runtime()
    configure(runtime, "support", dovecot.settings(user))
    runtime.channels.start(delivery=False)

    rows = wait_until(lambda: email_messages(runtime), what="the good message")
    assert [r["subject"] for r in rows] == ["Нормальное письмо"]
    rejected = runtime.channels.rejections.page("support")
    assert len(rejected) == 1
    assert (rejected[0].folder, rejected[0].uid) == ("INBOX", 1)  # the malformed one
    assert "sender" in rejected[0].reason
    cursor = json.loads(runtime.channels.state.get(cursor_key("support", "INBOX")) or "{}")
    assert cursor["last_uid"] == 2


def test_idle_picks_up_a_message_appended_while_idling_and_stop_is_prompt(
    dovecot: Dovecot, new_runtime: Callable[..., Runtime]
) -> None:
    user = dovecot.add_user()
    runtime = new_runtime(channel_poll_interval=60.0)  # only IDLE can be this quick
    configure(runtime, "support", dovecot.settings(user))
    runtime.channels.start(delivery=False)
    key = cursor_key("support", "INBOX")
    wait_until(lambda: runtime.channels.state.get(key), what="the first sync")
    time.sleep(0.3)  # now in IDLE
    dovecot.append(user, mail("Пока ждали", "Пришло в режиме ожидания"))
    started = time.monotonic()
    # Well inside the 60 s poll interval: only IDLE's push can deliver it this soon.
    wait_until(lambda: email_messages(runtime), seconds=40, what="the message pushed by IDLE")
    assert time.monotonic() - started < 40
    started = time.monotonic()
    runtime.close()
    assert time.monotonic() - started < 20, "stopping must not wait for the IDLE timeout"


def test_without_idle_the_folder_is_polled(
    dovecot: Dovecot, new_runtime: Callable[..., Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = aioimaplib.IMAP4.has_capability
    asked: list[str] = []

    def no_idle(self: aioimaplib.IMAP4, capability: str) -> bool:
        asked.append(capability)
        return capability != "IDLE" and original(self, capability)

    monkeypatch.setattr(aioimaplib.IMAP4, "has_capability", no_idle)
    user = dovecot.add_user()
    runtime = new_runtime(channel_poll_interval=0.5)
    configure(runtime, "support", dovecot.settings(user))
    runtime.channels.start(delivery=False)
    wait_until(lambda: runtime.channels.state.get(cursor_key("support", "INBOX")))
    dovecot.append(user, mail("Опрос", "Найдено опросом"))
    wait_until(lambda: email_messages(runtime), seconds=60, what="the polled message")
    assert "IDLE" in asked


def test_several_folders_and_a_uidvalidity_change(
    dovecot: Dovecot, new_runtime: Callable[..., Runtime]
) -> None:
    user = dovecot.add_user()
    dovecot.create_folder(user, "Отдел продаж")
    first = mail("Из папки", "Первое", message_id="<folder-1@client.example.org>")
    dovecot.append(user, first, "Отдел продаж")
    dovecot.append(user, mail("Из входящих", "Второе"))
    runtime = new_runtime(channel_poll_interval=0.5)
    configure(runtime, "sales", dovecot.settings(user, imap_folders=["INBOX", "Отдел продаж"]))
    runtime.channels.start(delivery=False)
    wait_until(lambda: len(email_messages(runtime)) == 2, what="both folders")
    key = cursor_key("sales", "Отдел продаж")
    # The cursor moves just after the message is committed, which the views may show first.
    before = wait_until(
        lambda: (
            (c := json.loads(runtime.channels.state.get(key) or "{}")).get("last_uid") == 1 and c
        ),
        what="the folder's cursor",
    )

    # Deleting and re-creating the folder gives it a new UIDVALIDITY: read again from zero,
    # and the message seen before is recognised by its Message-ID.
    dovecot.delete_folder(user, "Отдел продаж")
    dovecot.create_folder(user, "Отдел продаж")
    dovecot.append(user, first, "Отдел продаж")
    dovecot.append(user, mail("После смены", "Третье"), "Отдел продаж")
    runtime.channels.stop()
    runtime.channels.start(delivery=False)
    wait_until(lambda: len(email_messages(runtime)) == 3, what="the new message")
    after = wait_until(
        lambda: (
            (c := json.loads(runtime.channels.state.get(key) or "{}")).get("last_uid") == 2 and c
        ),
        what="the cursor after the change",
    )
    assert after["uidvalidity"] != before["uidvalidity"]
    assert sorted(r["subject"] for r in email_messages(runtime)) == [
        "Из входящих",
        "Из папки",
        "После смены",
    ]


def test_two_inboxes_each_bound_to_their_own_mailbox(
    dovecot: Dovecot, smtp_to_imap: SmtpMta, new_runtime: Callable[..., Runtime]
) -> None:
    sales, support = dovecot.add_user("sales"), dovecot.add_user("support")
    smtp_to_imap.send(mail("Купить", "Хочу купить"), sales)
    smtp_to_imap.send(mail("Сломалось", "Сломался принтер"), support)
    runtime = new_runtime()
    configure(runtime, "sales", dovecot.settings(sales))
    configure(runtime, "support", dovecot.settings(support))
    runtime.channels.start(delivery=False)
    rows = wait_until(lambda: len(email_messages(runtime)) == 2 and email_messages(runtime))
    boxes = {r["subject"]: r["metadata"]["mailbox"] for r in rows}
    assert boxes == {"Купить": "sales", "Сломалось": "support"}


def test_an_inbox_without_imap_host_has_no_poller_work(
    new_runtime: Callable[..., Runtime],
) -> None:
    from threadline.channels.base import InboxConfig
    from threadline.channels.email import EmailAdapter

    runtime = new_runtime()
    inbox = InboxConfig(
        id=__import__("uuid").uuid4(),
        slug="send-only",
        channel="email",
        name="Send only",
        settings={"smtp_host": "127.0.0.1", "from_address": "a@example.com"},
    )
    adapter = EmailAdapter(inbox, runtime.channels.services)
    asyncio.run(asyncio.wait_for(adapter.run(asyncio.Event()), 2))


def test_a_wrong_password_raises_so_the_hub_restarts_the_poller(
    dovecot: Dovecot, new_runtime: Callable[..., Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    from threadline.channels.email import EmailAdapter

    user = dovecot.add_user()
    runtime = new_runtime()
    inbox = runtime.channels.configure(
        "support", "email", "Support", dovecot.settings(user, imap_password="wrong"), "test"
    )
    adapter = EmailAdapter(inbox, runtime.channels.services)
    with pytest.raises(ConnectionError, match="login"):
        asyncio.run(asyncio.wait_for(adapter.run(asyncio.Event()), 20))
    assert any("cannot connect or log in" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_imap_over_tls_and_starttls(
    dovecot: Dovecot, trusted_tls: TlsCert, new_runtime: Callable[..., Runtime], security: str
) -> None:
    assert dovecot.ssl_port is not None
    port = dovecot.ssl_port if security == "ssl" else dovecot.port
    user = dovecot.add_user()
    dovecot.append(user, mail("Защищённое", "Через TLS"))
    runtime = new_runtime()
    configure(runtime, "support", dovecot.settings(user, imap_security=security, imap_port=port))
    runtime.channels.start(delivery=False)
    rows = wait_until(lambda: email_messages(runtime), what=f"the message over {security}")
    assert rows[0]["subject"] == "Защищённое"
    logins = [line for line in dovecot.logs().splitlines() if f"Login: user=<{user}>" in line]
    # The first login is the fixture's own APPEND (plain); the poller's comes last.
    assert len(logins) >= 2 and ", TLS" in logins[-1], logins


def test_a_dropped_connection_is_raised_logged_and_the_hub_reconnects(
    dovecot: Dovecot, new_runtime: Callable[..., Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    user = dovecot.add_user()
    runtime = new_runtime(channel_poll_interval=60.0)
    configure(runtime, "support", dovecot.settings(user))
    runtime.channels.start(delivery=False)
    wait_until(lambda: runtime.channels.state.get(cursor_key("support", "INBOX")))
    time.sleep(0.3)  # idling now
    dovecot.kick(user)
    wait_until(
        lambda: any("closed the connection" in r.getMessage() for r in caplog.records),
        seconds=60,
        what="the poller noticing the hang-up",
    )
    dovecot.append(user, mail("После обрыва", "Снова на связи"))
    # The hub restarts a failed poller after 5 s; the new connection finds the message.
    rows = wait_until(lambda: email_messages(runtime), seconds=20, what="the message")
    assert rows[0]["subject"] == "После обрыва"


def test_an_idle_push_carrying_bye_counts_as_a_hang_up() -> None:
    """Dovecot says BYE before it hangs up; waiting for DONE's answer then would stall 60 s."""
    from threadline.channels.email import _says_bye

    async def check() -> None:
        loop = asyncio.get_running_loop()
        bye, exists, pending = loop.create_future(), loop.create_future(), loop.create_future()
        bye.set_result([b"BYE Server shutting down."])
        exists.set_result([b"3 EXISTS"])
        assert _says_bye(bye)
        assert not _says_bye(exists)
        assert not _says_bye(pending)

    asyncio.run(check())
