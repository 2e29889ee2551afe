"""Notifications say what they are about: the task, the client, the due time, each linked.

Issue 11, item 4: seventeen identical "A task is due within the hour" with no
task or client named, and links that read "ClientConversation".
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any
from uuid import UUID

from tests.channels.conftest import smtp_capture  # noqa: F401  (fixture)
from tests.channels.dovecot import SmtpCapture
from tests.conftest import make_runtime
from tests.older_events import as_version_1
from tests.waiting import wait_for
from tests.web.helpers import web_client
from threadline.domain.model.inbound import InboundMessage
from threadline.projections.automation import notifications
from threadline.services.notification_mail import compose
from threadline.services.runtime import Runtime
from threadline.triggers.defaults import RULES
from threadline.triggers.rules import validate_rule

ACTOR = "user:test"
SHIPPED = dict(RULES)


def shipped_rule(runtime: Runtime, key: str) -> None:
    runtime.app.save_rule(validate_rule(SHIPPED[key], lambda slug: True), ACTOR)


def client_writes(runtime: Runtime, key: str, name: str, email: str) -> Any:
    committed = runtime.app.ingest(
        InboundMessage.create(
            channel="api", dedup_key=key, identities=[("email", email)], sender_name=name,
            subject=f"Question from {name}", text="Hello",
        )
    )  # fmt: skip
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    return committed.value


def task_for(runtime: Runtime, title: str, due: datetime, user: UUID, message: Any) -> str:
    committed = runtime.app.create_task(
        ACTOR, title, due_at=due, assignee_id=user, contact_id=message.contact_id,
        conversation_id=message.conversation_id,
    )  # fmt: skip
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    return str(committed.value)


def visible_text(fragment: str) -> str:
    """What a reader sees: tags dropped (adjacent links run together, as a browser shows them)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", fragment)).split())


def test_task_reminders_name_and_link_the_task_client_and_due_time(engine: Runtime) -> None:
    shipped_rule(engine, "task-due-soon")
    client, _, me = web_client(engine, "operator", "ru")
    engine.wait_for_views(engine.app.set_timezone(me, "Europe/Moscow", ACTOR).notification_id)
    olga = client_writes(engine, "m-olga", "Olga Smirnova", "olga@example.com")
    ivan = client_writes(engine, "m-ivan", "Ivan Petrov", "ivan@example.com")
    due = (datetime.now(UTC) + timedelta(minutes=30)).replace(second=0, microsecond=0)
    offer = task_for(engine, "Send the offer", due, me, olga)
    call = task_for(engine, "Call back about delivery", due + timedelta(minutes=5), me, ivan)
    engine.triggers.scan_dates()
    wait_for(lambda: len(notifications(engine.views)) == 2, "two reminders")
    rows = notifications(engine.views)
    assert {r.task_id for r in rows} == {offer, call}

    page = client.get("/tasks/notifications").text
    items = re.findall(r'<li class="notification".*?</li>', page, re.S)
    assert len(items) == 2
    shown = {visible_text(item) for item in items}
    assert len(shown) == 2  # no longer two identical lines
    by_task = {t: next(i for i in items if t in i) for t in ("Send the offer", "Call back")}
    olga_item = by_task["Send the offer"]
    assert f'href="/tasks?scope=all#task-{offer}"' in olga_item
    assert f'href="/contacts/{olga.contact_id}"' in olga_item
    assert f'href="/inbox/{olga.conversation_id}"' in olga_item
    text = visible_text(olga_item)
    moscow = due.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Moscow"))
    assert moscow.strftime("%H:%M") in text  # the reader's zone, not UTC
    assert "Olga Smirnova" in text and "Ivan" not in text
    assert "Задача: Send the offer" in text and "Клиент: Olga Smirnova" in text
    assert "Открыть диалог" in text  # the link text says what it opens
    assert "КлиентРазговор" not in text and "ClientConversation" not in text
    # The task list has the anchor the reminder links to.
    assert f'id="task-{offer}"' in client.get("/tasks?scope=all").text


def test_the_reminder_email_names_everything_with_absolute_links(
    sqlite_url: str,
    tmp_path: Path,
    smtp_capture: SmtpCapture,  # noqa: F811
) -> None:
    runtime = make_runtime(
        sqlite_url, attachments_dir=str(tmp_path / "a"), public_url="https://crm.example.com"
    )
    try:
        user, _ = runtime.app.create_user("ops@example.com", "operator", ACTOR).value
        runtime.app.set_locale(user, "ru", ACTOR)
        runtime.app.set_timezone(user, "Asia/Vladivostok", ACTOR)
        runtime.channels.configure("mail", "email", "Mail", smtp_capture.settings(), "test")
        shipped_rule(runtime, "task-overdue")
        olga = client_writes(runtime, "m-olga", "Olga Smirnova", "olga@example.com")
        due = datetime(2026, 3, 2, 6, 30, tzinfo=UTC)  # 16:30 in Vladivostok
        offer = task_for(runtime, "Send the offer", due, user, olga)
        runtime.start_triggers()
        runtime.channels.start(pollers=False)
        runtime.triggers.scan_dates()
        [mail] = smtp_capture.wait_for(1, seconds=60)
        parsed = message_from_bytes(mail.raw, policy=policy.default)
        assert (
            parsed["Subject"] == "[Threadline] A task is overdue — Send the offer — Olga Smirnova"
        )
        body = parsed.get_body(preferencelist=("plain",)).get_content()
        assert "Задача: Send the offer" in body and "16:30" in body
        assert f"https://crm.example.com/tasks?scope=all#task-{offer}" in body
        assert f"https://crm.example.com/contacts/{olga.contact_id}" in body
        assert f"https://crm.example.com/inbox/{olga.conversation_id}" in body
        assert "/api/conversations/" not in body  # not the JSON API any more
    finally:
        runtime.close()


def test_a_notification_about_nothing_in_particular_links_the_notifications() -> None:
    mail = compose(
        {"text": "Weekly report is ready", "task": None, "contact": None, "conversation": None},
        "https://crm.example.com/",
        "en",
        "UTC",
    )
    assert mail.subject == "[Threadline] Weekly report is ready"
    assert "https://crm.example.com/tasks#notifications" in mail.text


def test_a_notification_of_version_1_loads_without_a_task() -> None:
    """Notifications stored before they named their task still load (upcast, task_id None)."""
    from uuid import uuid4

    from eventsourcing.application import Application

    from threadline.domain.model.automation import Notification

    app: Application[UUID] = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    note = Notification(
        id=uuid4(), user_id=uuid4(), contact_id=None, conversation_id=None, email=True,
        personal={"text": "A task is overdue"}, actor="rule:x", correlation_id="c",
        task_id=uuid4(),
    )  # fmt: skip
    [created] = note.collect_events()
    loaded = as_version_1(app, created, "task_id")
    assert loaded.task_id is None
    rebuilt = loaded.mutate(None)
    assert rebuilt is not None and rebuilt.task_id is None and rebuilt.email
