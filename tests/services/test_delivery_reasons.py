"""A failed delivery reads as a plain reason in the reader's language (issue 11, item 6).

Seen: `httpx.ConnectError: [Errno -2] Name or service not known` under a reply while the
client's activity feed said "Message sent". Here the delivery worker sends through the
real e-mail adapter to a mail server that is not there (a closed port), with nothing to
send through, to a client without an address, and after a crash mid-send; each failure
is recorded with its plain reason, which the thread shows in English and Russian (the
technical detail to admins only), and the activity feed never says "sent".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application

from tests.channels.dovecot import free_port
from tests.conftest import make_runtime
from tests.older_events import as_version_1
from tests.waiting import wait_for
from tests.web.helpers import web_client
from threadline.domain.model.inbound import InboundMessage
from threadline.domain.model.message import Message, failure_reason
from threadline.projections.inbox import inbox_message
from threadline.services.delivery import DeliveryWorker
from threadline.services.runtime import Runtime

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def runtime(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(
        database_url,
        attachments_dir=str(tmp_path / "attachments"),
        delivery_retry_seconds=0.05,
        delivery_max_attempts=2,
    )
    try:
        yield rt
    finally:
        rt.close()


def email_thread(runtime: Runtime, key: str, identities: list[tuple[str, str]]) -> UUID:
    committed = runtime.app.ingest(
        InboundMessage.create(
            channel="email", dedup_key=key, identities=identities, sender_name="Anna Petrova",
            subject="Order 42", text="Where is my order?",
        )
    )  # fmt: skip
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    return UUID(str(committed.value.conversation_id))


def failure_of(runtime: Runtime, message_id: UUID) -> dict[str, Any] | None:
    row = inbox_message(runtime.views, message_id)
    if row is None or row.state != "failed":
        return None
    assert row.failure is not None
    return dict(row.failure)


def test_an_unreachable_mail_server_is_said_plainly_in_each_language(runtime: Runtime) -> None:
    settings = {
        "smtp_host": "127.0.0.1",
        "smtp_port": free_port(),  # nobody listens: the connection is refused
        "smtp_security": "none",
        "from_address": "support@example.com",
    }
    runtime.channels.configure("support", "email", "Support", settings, actor="test")
    conversation_id = email_thread(runtime, "r1", [("email", "anna@example.org")])
    reply = runtime.app.reply(conversation_id, "It is on its way.", "user:test").value
    runtime.channels.start(pollers=False)
    failure = wait_for(lambda: failure_of(runtime, reply), "the reply to fail for good")
    assert failure["problem"] == "unreachable"
    assert "SMTP 127.0.0.1" in failure["reason"]  # the technical detail is kept

    operator, _, _ = web_client(runtime, "operator", "en")
    thread = operator.get(f"/inbox/{conversation_id}/thread").text
    article = thread[thread.index(f'id="message-{reply}"') :].split("</article>")[0]
    assert "The mail server could not be reached." in article
    assert "SMTP 127.0.0.1" not in article and "Errno" not in article
    contact_id = runtime.queries.conversation(str(conversation_id))["contact_id"]
    feed = operator.get(f"/contacts/{contact_id}/timeline").text
    assert "Message not delivered" in feed and "Message sent" not in feed
    card = operator.get(f"/contacts/{contact_id}").text
    assert "Message sent" not in card

    admin, _, _ = web_client(runtime, "admin", "en")
    detail = admin.get(f"/inbox/{conversation_id}/thread").text
    assert "SMTP 127.0.0.1" in detail[detail.index(f'id="message-{reply}"') :]

    russian, _, _ = web_client(runtime, "operator", "ru")
    assert "Почтовый сервер недоступен." in russian.get(f"/inbox/{conversation_id}/thread").text
    feed = russian.get(f"/contacts/{contact_id}/timeline").text
    assert "Сообщение не доставлено" in feed and "Сообщение отправлено" not in feed


def test_no_route_no_address_and_a_crash_mid_send_have_their_reasons(runtime: Runtime) -> None:
    no_inbox = email_thread(runtime, "r2", [("email", "boris@example.org")])
    nowhere = runtime.app.reply(no_inbox, "Hello", "user:test").value
    runtime.channels.start(pollers=False)
    failed = wait_for(lambda: failure_of(runtime, nowhere), "no inbox to send through")
    assert failed["problem"] == "not_set_up"

    runtime.channels.configure(
        "sandbox", "sandbox", "Sandbox", {"path": "var/test-delivery-reasons.jsonl"}, "test"
    )
    phone_only = email_thread(runtime, "r3", [("phone", "+14155550142")])
    no_address = runtime.app.reply(phone_only, "Hello", "user:test").value
    failed = wait_for(lambda: failure_of(runtime, no_address), "no address to send to")
    assert failed["problem"] == "no_address"

    # A crash after the attempt was recorded: settled as in doubt at the next start.
    runtime.channels.stop()
    in_doubt = runtime.app.reply(no_inbox, "Are you there?", "user:test").value
    runtime.wait_for_views(runtime.app.start_delivery_attempt(in_doubt, "test").notification_id)
    worker = DeliveryWorker(runtime.channels, runtime.app, runtime.views, runtime.settings)
    assert worker.settle_interrupted_attempts() == 1
    runtime.wait_for_views(runtime.app.recorder.max_notification_id())
    assert failure_of(runtime, in_doubt)["problem"] == "in_doubt"  # type: ignore[index]

    operator, _, _ = web_client(runtime, "operator", "en")
    thread = operator.get(f"/inbox/{no_inbox}/thread").text
    assert "may or may not have arrived" in thread


def test_delivery_events_stored_before_states_and_reasons_still_load() -> None:
    app: Application = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    message = Message.request_send(
        id=uuid4(), conversation_id=uuid4(), contact_id=uuid4(), channel="sms",
        personal={"text": "Hi"}, attachments=[], actor="test", correlation_id="c",
    )  # fmt: skip
    message.start_attempt(1, "test", "c")
    message.mark_failed("Twilio 503: Service Unavailable", False, "test", "c", None, "unreachable")
    message.start_attempt(2, "test", "c")
    message.mark_delivered("SM1", "test", "c", "queued")
    created, attempted, failed, retried, delivered = message.collect_events()

    old_failure = as_version_1(  # version 1: the detail in `reason`, no problem
        app, failed, "problem", "personal", replaced={"reason": "Twilio 503: Service Unavailable"}
    )
    assert old_failure.problem == "" and failure_reason(old_failure).startswith("Twilio 503")
    old_delivery = as_version_1(app, delivered, "status")
    assert old_delivery.status == "sent"  # the first release recorded only "the provider took it"

    rebuilt = created.mutate(None)
    for event in (attempted, old_failure, retried, old_delivery):
        rebuilt = event.mutate(rebuilt)
    assert rebuilt.provider_id == "SM1" and rebuilt.provider_status == "sent"
