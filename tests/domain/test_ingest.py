"""Ingest through the real store (SQLite and PostgreSQL): identity resolution, dedup, group commit."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from threadline.domain.model.contact import Contact
from threadline.domain.model.conversation import Conversation
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.inbound import InboundMessage
from threadline.domain.model.message import Message
from threadline.services.runtime import Runtime


def inbound(key: str, channel: str = "api", **sender: Any) -> InboundMessage:
    identities = [(k, v) for k, v in sender.items() if k in ("email", "phone", "telegram", "web")]
    return InboundMessage.create(
        channel=channel,
        dedup_key=key,
        identities=identities,
        sender_name=sender.get("name", ""),
        subject=sender.get("subject", ""),
        text=sender.get("text", f"message {key}"),
        thread_key=sender.get("thread"),
        source=sender.get("source"),
    )


def log_events(runtime: Runtime) -> list[Any]:
    notifications = runtime.app.recorder.select_notifications(start=1, limit=100_000)
    return [runtime.app.mapper.to_domain_event(n) for n in notifications]


def test_unknown_sender_becomes_a_lead_with_the_channel_as_source(runtime: Runtime) -> None:
    result = runtime.app.ingest(
        inbound(
            "m1",
            channel="telegram",
            telegram="4242",
            name="Пётр Иванов",
            source={"utm_source": "yandex", "utm_medium": "cpc"},
        )
    ).value
    assert result.contact_created and not result.duplicate
    contact = runtime.app.repository.get(result.contact_id)
    assert isinstance(contact, Contact)
    assert contact.lifecycle == "lead"
    assert contact.display_name == "Пётр Иванов"
    assert contact.source == {"channel": "telegram", "utm_source": "yandex", "utm_medium": "cpc"}
    assert contact.identities == [{"kind": "telegram", "value": "4242"}]


def test_second_delivery_is_a_duplicate_and_appends_nothing(runtime: Runtime) -> None:
    first = runtime.app.ingest(inbound("dup-1", email="a@example.com"))
    before = runtime.app.recorder.max_notification_id()
    second = runtime.app.ingest(inbound("dup-1", email="a@example.com", text="changed"))
    assert second.value.duplicate is True
    assert second.value.message_id == first.value.message_id
    assert second.value.conversation_id == first.value.conversation_id
    assert second.notification_id is None
    assert runtime.app.recorder.max_notification_id() == before
    # the same key on another channel is another message
    third = runtime.app.ingest(inbound("dup-1", channel="sms", email="a@example.com"))
    assert third.value.duplicate is False


def test_same_email_with_a_new_phone_adds_the_phone_to_the_same_contact(runtime: Runtime) -> None:
    first = runtime.app.ingest(inbound("i1", email="Olga@Example.com")).value
    second = runtime.app.ingest(
        inbound("i2", channel="sms", email="olga@example.com", phone="+7 916 555-12-34")
    ).value
    assert second.contact_id == first.contact_id
    assert not second.contact_created
    contact = runtime.app.repository.get(first.contact_id)
    assert {"kind": "phone", "value": "+79165551234"} in contact.identities
    # now the phone alone finds her, on yet another channel
    third = runtime.app.ingest(inbound("i3", channel="whatsapp", phone="+7-916-555-1234")).value
    assert third.contact_id == first.contact_id
    assert third.conversation_id not in (first.conversation_id, second.conversation_id)


def test_threads_and_reopening(runtime: Runtime) -> None:
    a = runtime.app.ingest(inbound("t1", email="t@example.com", thread="order-1")).value
    b = runtime.app.ingest(inbound("t2", email="t@example.com", thread="order-1")).value
    c = runtime.app.ingest(inbound("t3", email="t@example.com", thread="order-2")).value
    assert a.conversation_id == b.conversation_id != c.conversation_id
    runtime.app.change_conversation_status(a.conversation_id, "resolved", "user:test")
    runtime.app.ingest(inbound("t4", email="t@example.com", thread="order-1"))
    conversation = runtime.app.repository.get(a.conversation_id)
    assert isinstance(conversation, Conversation)
    assert conversation.status == "open"


def test_events_carry_actor_correlation_and_separate_personal_data(runtime: Runtime) -> None:
    result = runtime.app.ingest(
        inbound("p1", email="secret@example.com", name="Secret Name", text="secret body")
    ).value
    for event in log_events(runtime):
        assert event.actor == "channel:api"
        assert event.correlation_id == str(result.message_id)
        public = {k: v for k, v in event.__dict__.items() if k != "personal"}
        flat = repr(public)
        for secret in ("secret@example.com", "Secret Name", "secret body"):
            assert secret not in flat, f"{type(event).__name__} leaks personal data"


def test_invalid_input_is_rejected_before_anything_is_appended(runtime: Runtime) -> None:
    before = runtime.app.recorder.max_notification_id()
    with pytest.raises(InvalidInput) as error:
        inbound("bad", email="nope")
    assert error.value.field == "email"
    with pytest.raises(InvalidInput) as error:
        InboundMessage.create(channel="api", dedup_key="x", identities=[])
    assert error.value.field == "from"
    assert runtime.app.recorder.max_notification_id() == before


def test_concurrent_ingest_groups_commits_and_keeps_one_contact_per_person(
    runtime: Runtime,
) -> None:
    """32 submitters; 10 people each write 10 times, every message delivered twice."""
    messages = [
        inbound(f"c-{person}-{n}", email=f"person{person}@example.com", text=f"{person}/{n}")
        for person in range(10)
        for n in range(10)
    ]
    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(lambda m: runtime.app.ingest(m).value, messages + messages))
    fresh = [r for r in results if not r.duplicate]
    assert len(fresh) == 100
    assert sum(r.duplicate for r in results) == 100
    contacts_by_person: dict[str, set[Any]] = {}
    for message, result in zip(messages + messages, results, strict=True):
        person = message.identities[0].value
        contacts_by_person.setdefault(person, set()).add(result.contact_id)
    assert all(len(ids) == 1 for ids in contacts_by_person.values())
    received = [e for e in log_events(runtime) if isinstance(e, Message.MessageReceived)]
    assert len(received) == 100
    assert len({e.originator_id for e in received}) == 100
    assert runtime.app.writer.batches < runtime.app.writer.commands  # some batches shared


def test_a_failing_command_in_a_batch_fails_alone(runtime: Runtime) -> None:
    good = runtime.app.ingest(inbound("g1", email="g@example.com")).value

    def bad() -> None:
        runtime.app.complete_task(good.message_id, "user:x")  # not a task: 404

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(bad) for _ in range(4)]
        futures += [
            pool.submit(lambda i=i: runtime.app.ingest(inbound(f"g-{i}", email="g@example.com")))
            for i in range(20)
        ]
    errors = [f.exception() for f in futures[:4]]
    assert all(type(e).__name__ == "NotFound" for e in errors)
    assert all(f.exception() is None for f in futures[4:])


def email(key: str, sender: str, in_reply_to: str = "", references: str = "") -> InboundMessage:
    """An e-mail as the e-mail channel normalises it (its thread key rule included)."""
    refs = references.split()
    return InboundMessage.create(
        channel="email",
        dedup_key=key,
        identities=[("email", sender)],
        subject="Order 42",
        text=key,
        thread_key=(refs[0] if refs else in_reply_to) or key,
        reply_to=[*([in_reply_to] if in_reply_to else []), *reversed(refs)],
    )


def test_a_reply_naming_only_its_parent_stays_in_the_conversation(runtime: Runtime) -> None:
    first = runtime.app.ingest(email("<a@c.org>", "anna@c.org")).value
    second = runtime.app.ingest(email("<b@c.org>", "anna@c.org", in_reply_to="<a@c.org>")).value
    # Only In-Reply-To, naming the second message: its own thread key would be <b@c.org>.
    third = runtime.app.ingest(email("<c@c.org>", "anna@c.org", in_reply_to="<b@c.org>")).value
    assert first.conversation_id == second.conversation_id == third.conversation_id


def test_an_answer_to_our_reply_joins_its_conversation_by_our_message_id(
    runtime: Runtime,
) -> None:
    first = runtime.app.ingest(email("<q@c.org>", "anna@c.org")).value
    reply_id = runtime.app.reply(first.conversation_id, "In transit", "user:1").value
    answer = runtime.app.ingest(
        email("<q2@c.org>", "anna@c.org", in_reply_to=f"<{reply_id}@mail.example.com>")
    ).value
    assert answer.conversation_id == first.conversation_id


def test_a_colleague_answering_in_copy_gets_a_conversation_of_their_own(
    runtime: Runtime,
) -> None:
    first = runtime.app.ingest(email("<x@c.org>", "anna@c.org")).value
    colleague = runtime.app.ingest(
        email("<y@c.org>", "boris@c.org", in_reply_to="<x@c.org>", references="<x@c.org>")
    ).value
    assert colleague.contact_id != first.contact_id
    assert colleague.conversation_id != first.conversation_id
