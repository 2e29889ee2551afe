"""Events stored before a field existed still load: `ConversationStarted` v1 has no inbox."""

from __future__ import annotations

import json
from uuid import uuid4

from eventsourcing.application import Application

from threadline.domain.conversation import Conversation


def test_a_version_1_conversation_start_loads_without_an_inbox(tmp_path: object) -> None:
    app: Application = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    conversation = Conversation(
        id=uuid4(), contact_id=uuid4(), channel="email", thread_key="t", personal={"subject": "Hi"},
        actor="test", correlation_id="c",
    )  # fmt: skip
    [event] = conversation.collect_events()
    stored = app.mapper.to_stored_event(event)
    state = json.loads(stored.state)
    assert state.pop("class_version") == 2
    del state["inbox_id"]  # what the first release wrote
    old = type(stored)(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=json.dumps(state).encode(),
    )
    loaded = app.mapper.to_domain_event(old)
    assert loaded.inbox_id is None
    rebuilt = loaded.mutate(None)
    assert rebuilt.inbox_id is None and rebuilt.subject == "Hi"
