"""Operator commands through the real store: replies, notes, assignment, attributes, tasks, users."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import RecordConflictError

from threadline.domain.model.attributes import AttributeDefinition, AttributeType
from threadline.domain.model.errors import Conflict, InvalidInput, NotFound
from threadline.domain.model.inbound import InboundMessage
from threadline.domain.model.message import Message
from threadline.services.runtime import Runtime


def ingest(runtime: Runtime, key: str, channel: str = "telegram") -> Any:
    message = InboundMessage.create(
        channel=channel, dedup_key=key, identities=[("telegram", "777")], text="hi"
    )
    return runtime.app.ingest(message).value


def operator(runtime: Runtime) -> Any:
    return runtime.app.create_user(f"op-{uuid4().hex[:6]}@example.com", "operator", "cli").value[0]


def test_reply_is_a_send_request_on_the_conversation_channel(runtime: Runtime) -> None:
    thread = ingest(runtime, "r1", channel="telegram")
    message_id = runtime.app.reply(thread.conversation_id, "Здравствуйте!", "user:1").value
    message = runtime.app.repository.get(message_id)
    assert isinstance(message, Message)
    assert message.channel == "telegram" and message.direction == "outbound"
    assert message.state == "requested"
    events = runtime.app.repository.event_store.get(message_id)
    assert [type(e).__name__ for e in events] == ["MessageSendRequested"]
    # the operator may answer through another channel of the client's
    other = runtime.app.reply(thread.conversation_id, "by sms", "user:1", channel="sms").value
    assert runtime.app.repository.get(other).channel == "sms"
    # the same client message id twice records one reply
    key = uuid4()
    runtime.app.reply(thread.conversation_id, "once", "user:1", message_id=key)
    before = runtime.app.recorder.max_notification_id()
    runtime.app.reply(thread.conversation_id, "once", "user:1", message_id=key)
    assert runtime.app.recorder.max_notification_id() == before


def test_note_assign_status_and_read(runtime: Runtime) -> None:
    thread = ingest(runtime, "n1")
    user_id = operator(runtime)
    note_id = runtime.app.add_note(thread.conversation_id, "internal", f"user:{user_id}").value
    assert runtime.app.repository.get(note_id).direction == "internal"
    runtime.app.assign_conversation(thread.conversation_id, user_id, "user:x")
    runtime.app.change_conversation_status(
        thread.conversation_id,
        "snoozed",
        "user:x",
        snoozed_until=datetime.now(UTC) + timedelta(hours=2),
    )
    conversation = runtime.app.repository.get(thread.conversation_id)
    assert conversation.assignee_id == user_id and conversation.status == "snoozed"
    with pytest.raises(InvalidInput):
        runtime.app.change_conversation_status(thread.conversation_id, "closed", "user:x")
    with pytest.raises(InvalidInput):
        runtime.app.change_conversation_status(thread.conversation_id, "snoozed", "user:x")
    with pytest.raises(NotFound):
        runtime.app.assign_conversation(thread.conversation_id, uuid4(), "user:x")
    with pytest.raises(NotFound):
        runtime.app.add_note(uuid4(), "x", "user:x")


def test_typed_attributes_and_tags(runtime: Runtime) -> None:
    thread = ingest(runtime, "a1")
    for definition in (
        AttributeDefinition("staff_size", "Staff", AttributeType.NUMBER),
        AttributeDefinition("birthday", "Birthday", AttributeType.DATE, personal=True),
        AttributeDefinition("genre", "Music", AttributeType.MULTI_CHOICE, ("rock", "jazz")),
        AttributeDefinition("vip", "VIP", AttributeType.BOOLEAN),
    ):
        runtime.app.define_attribute(definition, "user:admin")
    runtime.app.update_contact(
        thread.contact_id,
        "user:1",
        attributes={"staff_size": "50", "birthday": "1990-05-17", "genre": ["jazz"], "vip": "yes"},
        add_tags=["VIP ", "b2b"],
    )
    contact = runtime.app.repository.get(thread.contact_id)
    assert contact.attributes == {
        "staff_size": 50,
        "birthday": "1990-05-17",
        "genre": ["jazz"],
        "vip": True,
    }
    assert contact.tags == ["b2b", "vip"]
    changed = [
        e
        for e in runtime.app.repository.event_store.get(thread.contact_id)
        if type(e).__name__ == "ContactAttributesChanged"
    ][-1]
    assert "birthday" in changed.personal and "birthday" not in changed.values
    for bad in (
        {"staff_size": "many"},
        {"birthday": "17.05.1990"},
        {"genre": ["metal"]},
        {"nope": 1},
    ):
        with pytest.raises(InvalidInput) as error:
            runtime.app.update_contact(thread.contact_id, "user:1", attributes=bad)
        assert error.value.field == f"attributes.{next(iter(bad))}"
    with pytest.raises(InvalidInput):  # a type cannot change under existing values
        runtime.app.define_attribute(
            AttributeDefinition("staff_size", "Staff", AttributeType.TEXT), "user:admin"
        )


def test_tasks_lifecycle(runtime: Runtime) -> None:
    thread = ingest(runtime, "k1")
    user_id = operator(runtime)
    due = datetime.now(UTC) + timedelta(days=1)
    task_id = runtime.app.create_task(
        "user:1", "Call back", type="call", due_at=due, assignee_id=user_id,
        conversation_id=thread.conversation_id,
    ).value  # fmt: skip
    task = runtime.app.repository.get(task_id)
    assert task.contact_id == thread.contact_id and task.status == "open"
    later = due + timedelta(days=2)
    runtime.app.reschedule_task(task_id, later, "user:1")
    runtime.app.complete_task(task_id, "user:1")
    task = runtime.app.repository.get(task_id)
    assert task.status == "done" and task.due_at == later
    with pytest.raises(Conflict):
        runtime.app.complete_task(task_id, "user:1")
    with pytest.raises(InvalidInput):
        runtime.app.create_task("user:1", "x", type="dance")
    with pytest.raises(InvalidInput):
        runtime.app.create_task("user:1", "x", due_at=datetime(2030, 1, 1))  # naive time


def test_users_are_unique_by_email_and_keep_only_hashes(runtime: Runtime) -> None:
    user_id, token = runtime.app.create_user(
        "Boss@Example.com", "manager", "cli", password="correct horse"
    ).value
    assert runtime.app.user_id_by_email("boss@example.com") == user_id
    with pytest.raises(Conflict):
        runtime.app.create_user("boss@example.com", "operator", "cli")
    with pytest.raises(InvalidInput):
        runtime.app.create_user("x@example.com", "king", "cli")
    with pytest.raises(InvalidInput):
        runtime.app.create_user("y@example.com", "operator", "cli", password="short")
    stored = runtime.app.recorder.select_notifications(start=1, limit=1000)
    blob = b"".join(n.state for n in stored)
    assert token.encode() not in blob and b"correct horse" not in blob


def test_a_stale_write_is_refused_by_the_store(runtime: Runtime) -> None:
    """Optimistic concurrency: two copies of one aggregate cannot both be saved."""
    thread = ingest(runtime, "o1")
    first = runtime.app.repository.get(thread.conversation_id)
    second = runtime.app.repository.get(thread.conversation_id)
    first.change_status("resolved", None, "user:a", "c1")
    second.change_status("pending", None, "user:b", "c2")
    runtime.app.save(first)
    with pytest.raises(RecordConflictError):
        runtime.app.save(second)
    assert runtime.app.repository.get(thread.conversation_id).status == "resolved"


def test_concurrent_commands_on_one_contact_all_apply(runtime: Runtime) -> None:
    """Two operators tagging the same contact at once: both tags land, none is overwritten."""
    from concurrent.futures import ThreadPoolExecutor

    thread = ingest(runtime, "cc1")
    tags = [f"tag{i}" for i in range(24)]
    with ThreadPoolExecutor(12) as pool:
        list(
            pool.map(
                lambda t: runtime.app.update_contact(thread.contact_id, "user:1", add_tags=[t]),
                tags,
            )
        )
    assert runtime.app.repository.get(thread.contact_id).tags == sorted(tags)
