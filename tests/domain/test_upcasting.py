"""Events stored before a field existed still load: `ConversationStarted` v1 has no inbox."""

from __future__ import annotations

from uuid import uuid4

from eventsourcing.application import Application

from tests.older_events import as_version_1
from threadline.domain.model.conversation import Conversation


def test_a_version_1_conversation_start_loads_without_an_inbox(tmp_path: object) -> None:
    app: Application = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    conversation = Conversation(
        id=uuid4(), contact_id=uuid4(), channel="email", thread_key="t", personal={"subject": "Hi"},
        actor="test", correlation_id="c",
    )  # fmt: skip
    [event] = conversation.collect_events()
    loaded = as_version_1(app, event, "inbox_id")
    assert loaded.inbox_id is None
    rebuilt = loaded.mutate(None)
    assert rebuilt.inbox_id is None and rebuilt.subject == "Hi"
