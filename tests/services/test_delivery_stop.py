"""Stopping the delivery worker: a clean stop finishes the sends it began, within a bound.

The hub stops its workers by cancelling them. The worker used to let that cancel a delivery
anywhere, including after it had recorded the attempt and before it had called the provider;
the next start then took the message for one interrupted mid-send and, by design, never sent
it (`IN_DOUBT_REASON`). A restart on a busy machine lost a campaign message that way
(tests/triggers/test_campaigns.py::test_a_restart_goes_on_where_it_stopped_...). A gated
provider makes the window as wide as the test needs: it answers only once the stop has begun.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID

import pytest

from tests.conftest import make_runtime
from tests.waiting import wait_for
from threadline.channels.base import ChannelAdapter, OutboundMessage, register
from threadline.domain.model.inbound import InboundMessage
from threadline.domain.model.message import Message
from threadline.projections.inbox import inbox_message
from threadline.services import delivery
from threadline.services.runtime import Runtime


def stop_has_begun() -> bool:
    """Whether the hub has cancelled the delivery worker (how it stops its workers)."""
    return any(
        getattr(task.get_coro(), "__qualname__", "") == "DeliveryWorker.run" and task.cancelling()
        for task in asyncio.all_tasks()
    )


@register
class GatedAdapter(ChannelAdapter):
    """A provider that takes a message only once the hub has begun to stop the delivery
    worker (or never, with `answer` False); it records what it took."""

    channel = "gated"
    title = "Gated test channel"
    conversation_channels = ("gated",)
    recipient_kind: ClassVar[dict[str, str]] = {"gated": "email"}
    answer: ClassVar[bool] = True
    entered: ClassVar[threading.Event] = threading.Event()
    sent: ClassVar[list[OutboundMessage]] = []

    async def send(self, message: OutboundMessage) -> str:
        type(self).entered.set()
        while not (type(self).answer and stop_has_begun()):
            await asyncio.sleep(0.01)  # a cancelled delivery ends here, with CancelledError
        type(self).sent.append(message)
        return "gated-1"


@pytest.fixture
def gated(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    GatedAdapter.answer = True
    GatedAdapter.entered = threading.Event()
    GatedAdapter.sent = []
    runtime = make_runtime(database_url, attachments_dir=str(tmp_path / "attachments"))
    runtime.channels.configure("gated", "gated", "Gated", {}, actor="test")
    try:
        yield runtime
    finally:
        runtime.close()


def reply_waiting(runtime: Runtime) -> UUID:
    """A reply in a conversation of the gated inbox, requested and not yet delivered."""
    inbox = runtime.channels.inbox("gated")
    assert inbox is not None
    result = runtime.channels.ingest(
        InboundMessage.create(
            channel="gated",
            dedup_key="g1",
            identities=[("email", "client@example.com")],
            sender_name="Client",
            text="Hello?",
            inbox_id=inbox.id,
        )
    )
    reply: UUID = runtime.app.reply(result.conversation_id, "Hello!", "user:test").value
    return reply


def stop_while_sending(runtime: Runtime) -> None:
    """Start the worker, wait until the provider has the message in hand, stop the hub."""
    runtime.channels.start(pollers=False)
    wait_for(GatedAdapter.entered.is_set, "the provider to be called")
    runtime.channels.stop()  # returns once the hub's thread has ended (bounded: 15 s)
    runtime.wait_for_views(runtime.app.recorder.max_notification_id())


def state_of(runtime: Runtime, message_id: UUID) -> dict[str, Any]:
    row = inbox_message(runtime.views, message_id)
    assert row is not None
    failure = json.dumps(row.failure, ensure_ascii=False) if row.failure else None
    return {"state": row.state, "failure": failure}


def test_a_stop_lets_a_begun_delivery_finish_and_leaves_nothing_in_doubt(gated: Runtime) -> None:
    reply = reply_waiting(gated)
    stop_while_sending(gated)
    assert [m.message_id for m in GatedAdapter.sent] == [reply]
    message: Message = gated.app.repository.get(reply)
    assert message.attempt_open is False  # a next start has nothing to settle
    assert state_of(gated, reply)["state"] == "sent"


def test_a_send_still_running_when_the_grace_ends_is_in_doubt(
    gated: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stop stays bounded: a provider that never answers is left, and that attempt, whose
    outcome nobody knows, is settled as in doubt by the next start, never sent again."""
    monkeypatch.setattr(delivery, "STOP_GRACE", 0.2)
    GatedAdapter.answer = False
    reply = reply_waiting(gated)
    stop_while_sending(gated)
    assert GatedAdapter.sent == []
    message: Message = gated.app.repository.get(reply)
    assert message.attempt_open is True
    gated.channels.start(pollers=False)  # the restart settles it
    wait_for(lambda: state_of(gated, reply)["state"] == "failed", "the in-doubt failure")
    assert "interrupted while sending" in state_of(gated, reply)["failure"]
    assert GatedAdapter.sent == []
