"""The delivery worker: sent once, retried when transient, stopped when permanent or blocked,
never sent twice after a crash. A scripted adapter stands in for the provider here; each
channel's own tests run the worker against that channel's real or wire-level peer."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any, ClassVar
from uuid import UUID

import pytest

from tests.conftest import make_runtime
from tests.waiting import wait_for
from threadline.channels.base import (
    ChannelAdapter,
    DeliveryError,
    DeliveryErrorKind,
    OutboundMessage,
    SettingField,
    register,
)
from threadline.domain.model.inbound import InboundMessage
from threadline.projections.inbox import inbox_message
from threadline.services.runtime import Runtime


@register
class ScriptedAdapter(ChannelAdapter):
    """Answers each send with the next scripted outcome and remembers what it was given."""

    channel = "scripted"
    title = "Scripted test channel"
    settings_schema = (SettingField("label", "Label"),)
    conversation_channels = ("scripted",)
    recipient_kind: ClassVar[dict[str, str]] = {"scripted": "email"}
    script: ClassVar[list[Any]] = []
    sent: ClassVar[list[OutboundMessage]] = []

    async def send(self, message: OutboundMessage) -> str:
        type(self).sent.append(message)
        outcome = type(self).script.pop(0) if type(self).script else "ok"
        if isinstance(outcome, DeliveryError):
            raise outcome
        if outcome == "hang":
            await asyncio.sleep(30)
        return f"provider-{len(type(self).sent)}"


@pytest.fixture
def delivery_runtime(database_url: str, tmp_path: Any) -> Iterator[Runtime]:
    ScriptedAdapter.script = []
    ScriptedAdapter.sent = []
    runtime = make_runtime(
        database_url,
        attachments_dir=str(tmp_path / "attachments"),
        delivery_retry_seconds=0.05,
        delivery_max_attempts=3,
    )
    runtime.channels.configure("scripted", "scripted", "Scripted", {"label": "x"}, actor="test")
    try:
        yield runtime
    finally:
        runtime.close()


def conversation(runtime: Runtime, key: str = "m1") -> UUID:
    inbox = runtime.channels.inbox("scripted")
    assert inbox is not None
    result = runtime.channels.ingest(
        InboundMessage.create(
            channel="scripted",
            dedup_key=key,
            identities=[("email", "client@example.com")],
            sender_name="Client",
            subject="Order 42",
            text="Where is my order?",
            metadata={"message_id": "<root@example.com>", "references": []},
            inbox_id=inbox.id,
        )
    )
    return result.conversation_id


def message_state(runtime: Runtime, message_id: UUID) -> dict[str, Any]:
    row = inbox_message(runtime.views, message_id)
    if row is None:
        return {"state": None, "provider_id": None, "failure": None}
    failure = json.dumps(row.failure, ensure_ascii=False) if row.failure else None
    return {"state": row.state, "provider_id": row.provider_id, "failure": failure}


def test_a_reply_is_sent_once_with_thread_headers(delivery_runtime: Runtime) -> None:
    runtime = delivery_runtime
    conversation_id = conversation(runtime)
    reply = runtime.app.reply(conversation_id, "Tomorrow.", "user:test").value
    runtime.channels.start(pollers=False)
    wait_for(lambda: message_state(runtime, reply)["state"] == "sent")
    assert [m.message_id for m in ScriptedAdapter.sent] == [reply]
    sent = ScriptedAdapter.sent[0]
    assert sent.recipient == "client@example.com"
    assert sent.in_reply_to == "<root@example.com>"
    assert sent.references == ("<root@example.com>",)
    assert sent.subject == "Order 42"
    assert message_state(runtime, reply)["provider_id"] == "provider-1"
    assert runtime.app.message_for_provider_id("scripted", "provider-1") == reply
    time.sleep(0.5)  # the worker keeps polling: nothing is sent a second time
    assert len(ScriptedAdapter.sent) == 1


def test_transient_errors_are_retried_and_permanent_ones_stop(delivery_runtime: Runtime) -> None:
    runtime = delivery_runtime
    conversation_id = conversation(runtime)
    ScriptedAdapter.script = [
        DeliveryError(DeliveryErrorKind.TRANSIENT, "connection reset"),
        "ok",
        DeliveryError(DeliveryErrorKind.BLOCKED, "the bot was blocked by the user"),
    ]
    retried = runtime.app.reply(conversation_id, "First", "user:test").value
    runtime.channels.start(pollers=False)
    wait_for(lambda: message_state(runtime, retried)["state"] == "sent")
    blocked = runtime.app.reply(conversation_id, "Second", "user:test").value
    wait_for(lambda: message_state(runtime, blocked)["state"] == "failed")
    assert "blocked" in message_state(runtime, blocked)["failure"]
    time.sleep(0.4)
    assert [m.message_id for m in ScriptedAdapter.sent] == [retried, retried, blocked]
    assert [m.attempt for m in ScriptedAdapter.sent] == [1, 2, 1]


def test_gives_up_after_the_configured_attempts(delivery_runtime: Runtime) -> None:
    runtime = delivery_runtime
    ScriptedAdapter.script = [DeliveryError(DeliveryErrorKind.TRANSIENT, "503")] * 5
    reply = runtime.app.reply(conversation(runtime), "Hello", "user:test").value
    runtime.channels.start(pollers=False)
    wait_for(lambda: message_state(runtime, reply)["state"] == "failed")
    assert len(ScriptedAdapter.sent) == 3
    assert "gave up after 3 attempts" in message_state(runtime, reply)["failure"]


def test_an_attempt_interrupted_by_a_crash_is_never_sent_again(delivery_runtime: Runtime) -> None:
    runtime = delivery_runtime
    reply = runtime.app.reply(conversation(runtime), "Hello", "user:test").value
    # What a worker that crashed mid-send leaves behind: an attempt with no outcome.
    assert runtime.app.start_delivery_attempt(reply, "worker:delivery").value == 1
    runtime.wait_for_views(runtime.app.recorder.max_notification_id())
    runtime.channels.start(pollers=False)
    wait_for(lambda: message_state(runtime, reply)["state"] == "failed")
    assert "interrupted while sending" in message_state(runtime, reply)["failure"]
    assert ScriptedAdapter.sent == []


def test_no_inbox_for_the_channel_is_a_clear_failure(delivery_runtime: Runtime) -> None:
    runtime = delivery_runtime
    result = runtime.channels.ingest(
        InboundMessage.create(
            channel="carrier-pigeon",
            dedup_key="p1",
            identities=[("email", "bird@example.com")],
            text="coo",
        )
    )
    reply = runtime.app.reply(result.conversation_id, "Hi", "user:test").value
    runtime.channels.start(pollers=False)
    wait_for(lambda: message_state(runtime, reply)["state"] == "failed")
    assert "no enabled inbox can send carrier-pigeon" in message_state(runtime, reply)["failure"]


def test_a_second_worker_cannot_start_the_same_attempt(delivery_runtime: Runtime) -> None:
    runtime = delivery_runtime
    reply = runtime.app.reply(conversation(runtime), "Hello", "user:test").value
    assert runtime.app.start_delivery_attempt(reply, "worker:a").value == 1
    assert runtime.app.start_delivery_attempt(reply, "worker:b").value is None
