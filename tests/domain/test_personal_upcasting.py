"""Events stored before personal data moved into `personal` read in the new shape (issue 16, 1).

Each test stores an event as the earlier release wrote it (the personal value in a
public field) and reads it back through the mapper's upcasters: the value is in
`personal`, the public field holds what the new release writes there.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.application import Application

from tests.older_events import stored_as_version
from threadline.domain.model.conversation import Conversation
from threadline.domain.model.message import Message, failure_reason, full_metadata
from threadline.domain.model.pseudonyms import DIGEST_PREFIX, Pseudonyms, install
from threadline.domain.model.rule import RuleFiring, joined_trace, split_trace
from threadline.projections.outbox import thread_headers
from threadline.services.runtime import Runtime

POPO: dict[str, str] = {"PERSISTENCE_MODULE": "eventsourcing.popo"}
ROOT = "<root@client.example.org>"


@pytest.fixture(autouse=True)
def keyed() -> Any:
    """A keyed scheme, as a store of this release has: older events must not need its key."""
    install(Pseudonyms.keyed(b"k" * 32))
    yield
    install(Pseudonyms.legacy())


def _read(app: Application, event: Any, version: int, **replaced: Any) -> Any:
    return app.mapper.to_domain_event(stored_as_version(app, event, version, replaced=replaced))


def test_a_version_2_conversation_start_moves_its_thread_key_into_personal() -> None:
    app = Application(env=POPO)
    conversation = Conversation.start(
        id=uuid4(), contact_id=uuid4(), channel="email", thread_key=ROOT, subject="Hi",
        address={"kind": "email", "value": "anna@example.org"}, actor="test", correlation_id="c",
    )  # fmt: skip
    [event] = conversation.collect_events()
    assert event.thread_key.startswith(DIGEST_PREFIX) and ROOT not in str(event.thread_key)
    old_personal = {"subject": "Hi", "address": event.personal["address"]}
    loaded = _read(app, event, 2, thread_key=ROOT, personal=old_personal)
    assert loaded.personal["thread_key"] == ROOT
    assert loaded.thread_key == Pseudonyms.legacy().digest(ROOT)  # no key needed to read it
    assert loaded.mutate(None).thread_key == ROOT  # the aggregate still knows its thread


def test_a_version_2_received_message_moves_its_key_and_headers_into_personal() -> None:
    app = Application(env=POPO)
    metadata = {"message_id": ROOT, "references": [ROOT], "kind": "email", "bounce": False}
    message = Message.receive(
        id=uuid4(), conversation_id=uuid4(), contact_id=uuid4(), channel="email",
        dedup_key=ROOT, personal={"text": "hi"}, attachments=[], metadata=metadata,
        actor="test", correlation_id="c",
    )  # fmt: skip
    [event] = message.collect_events()
    assert event.metadata == {"kind": "email", "bounce": False}
    assert event.personal["metadata"] == {"message_id": ROOT, "references": [ROOT]}
    assert event.dedup_key != ROOT and event.personal["dedup_key"] == ROOT
    loaded = _read(app, event, 2, dedup_key=ROOT, metadata=metadata, personal={"text": "hi"})
    assert loaded.metadata == {"kind": "email", "bounce": False}
    assert loaded.personal == {
        "text": "hi",
        "dedup_key": ROOT,
        "metadata": {"message_id": ROOT, "references": [ROOT]},
    }
    assert loaded.dedup_key == Pseudonyms.legacy().digest(ROOT)
    assert full_metadata(loaded) == metadata


def test_a_version_1_rule_firing_moves_the_compared_values_into_personal() -> None:
    app = Application(env=POPO)
    trace = [
        {"path": "if", "field": "event.text", "op": "contains", "expected": "price",
         "actual": "what is the price, Anna?", "result": True},
    ]  # fmt: skip
    public, personal = split_trace(trace)
    firing = RuleFiring(
        id=uuid4(), rule_id=uuid4(), rule_version=1, cause={"key": "k"}, contact_id=uuid4(),
        outcome="fired", reason="", trace=public, effects=[], depth=0, actor="rule:x",
        correlation_id="c", personal=personal,
    )  # fmt: skip
    [event] = firing.collect_events()
    assert "actual" not in event.trace[0] and event.trace[0]["expected"] == "price"
    stored = stored_as_version(app, event, 1, "personal", replaced={"trace": trace})
    assert b"personal" not in stored.state  # as version 1 wrote it
    loaded = app.mapper.to_domain_event(stored)
    assert loaded.trace == public and loaded.personal == {"actual": [trace[0]["actual"]]}
    assert joined_trace(loaded.trace, loaded.personal) == trace
    assert joined_trace(loaded.trace, {}) == public  # forgotten: the shape without the values


def test_a_version_1_call_update_and_a_version_2_failure_move_their_details() -> None:
    app = Application(env=POPO)
    message = Message.receive(
        id=uuid4(), conversation_id=uuid4(), contact_id=uuid4(), channel="voice",
        dedup_key="CA1", personal={}, attachments=[], metadata={"kind": "call"}, actor="t",
        correlation_id="c",
    )  # fmt: skip
    recording = "https://api.twilio.com/Recordings/RE1"
    message.update_call("completed", "voicemail", 12, {"recording_url": recording}, "t", "c")
    message.mark_failed("550 <anna@example.org> unknown", True, "t", "c", None, "recipient")
    _, call, failed = message.collect_events()
    loaded_call = app.mapper.to_domain_event(
        stored_as_version(app, call, 1, "personal", replaced={"recording_url": recording})
    )
    assert loaded_call.personal == {"recording_url": recording}
    reason = "550 <anna@example.org> unknown"
    loaded_failure = app.mapper.to_domain_event(
        stored_as_version(app, failed, 2, "personal", replaced={"reason": reason})
    )
    assert failure_reason(loaded_failure) == reason and loaded_failure.problem == "recipient"
    assert not hasattr(loaded_failure, "reason")


def test_stored_version_2_headers_still_thread_a_reply(sqlite_runtime: Runtime) -> None:
    """Through the real store and the outbox view: an older message's Message-IDs, now read
    from `personal`, still give a reply its In-Reply-To and References."""
    app = sqlite_runtime.app
    conversation_id = uuid4()
    metadata = {"message_id": ROOT, "references": ["<a@x.org>"], "kind": "email"}
    message = Message.receive(
        id=uuid4(), conversation_id=conversation_id, contact_id=uuid4(), channel="email",
        dedup_key=ROOT, personal={"text": "hi"}, attachments=[], metadata=metadata,
        actor="test", correlation_id="c",
    )  # fmt: skip
    [event] = message.collect_events()
    stored = stored_as_version(
        app, event, 2, replaced={"dedup_key": ROOT, "metadata": metadata, "personal": {}}
    )
    [notification_id] = app.recorder.insert_events([stored])
    assert sqlite_runtime.wait_for_views(notification_id, timeout=30)
    headers = thread_headers(sqlite_runtime.views, conversation_id)
    assert headers is not None and headers.message_header == ROOT
    assert list(headers.refs) == ["<a@x.org>", ROOT]
