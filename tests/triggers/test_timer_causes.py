"""A timer references its cause and reads its facts when it fires (issue 11 item 22).

`TimerScheduled` used to copy the cause event's facts, the message text and subject
included, into the log (a third of its bytes). Now it keeps the event's id, version and
log position; timers stored by the earlier release still load and fire.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from tests.conftest import make_runtime
from tests.waiting import wait_for
from threadline.domain.model.inbound import InboundMessage
from threadline.domain.model.rule import Timer, timer_id
from threadline.projections.automation import notifications, timers
from threadline.services.runtime import Runtime
from threadline.triggers.events import to_trigger_event
from threadline.triggers.firing import cause_of
from threadline.triggers.rules import validate_rule

ACTOR = "user:test"
TEXT = "What is the price of delivery?"


def follow_up(runtime: Runtime, user_id: UUID, delay: str) -> UUID:
    definition = {
        "name": "Price follow-up",
        "when": "message.received",
        "after": delay,
        "if": {"field": "event.text", "op": "contains", "value": "price"},
        "then": [{"notify": {"user": f"user:{user_id}", "text": "Asked: {{ event.text }}"}}],
    }
    rule_id: UUID = runtime.app.save_rule(validate_rule(definition, lambda s: True), ACTOR).value
    return rule_id


def inbound(runtime: Runtime) -> Any:
    return runtime.app.ingest(
        InboundMessage.create(
            channel="api", dedup_key="m1", identities=[("email", "client@example.com")],
            sender_name="Client", text=TEXT,
        )
    ).value  # fmt: skip


def notification_texts(runtime: Runtime) -> list[str]:
    return [note.text for note in notifications(runtime.views)]


def test_a_timer_keeps_a_reference_and_fires_with_the_causes_facts(
    database_url: str, tmp_path: Path
) -> None:
    runtime = make_runtime(database_url, attachments_dir=str(tmp_path / "a"))
    try:
        user_id, _ = runtime.app.create_user("ops@example.com", "operator", ACTOR).value
        rule_id = follow_up(runtime, user_id, "1s")
        message = inbound(runtime)
        runtime.start_triggers()
        [row] = wait_for(lambda: timers(runtime.views), "the timer")
        [scheduled] = runtime.app.recorder.select_events(UUID(row.id), lte=1)
        assert b"price" not in scheduled.state  # no copy of the message in the log
        timer: Timer = runtime.app.repository.get(UUID(row.id))
        assert "facts" not in timer.cause
        assert timer.cause["originator_id"] == str(message.message_id)
        wait_for(lambda: notification_texts(runtime), "the timer's notification", timeout=30)
        assert notification_texts(runtime) == [f"Asked: {TEXT}"]
        assert timer.rule_id == rule_id
    finally:
        runtime.close()


def test_a_timer_stored_by_the_previous_release_loads_and_fires(
    database_url: str, tmp_path: Path
) -> None:
    runtime = make_runtime(database_url, attachments_dir=str(tmp_path / "a"))
    try:
        user_id, _ = runtime.app.create_user("ops@example.com", "operator", ACTOR).value
        rule_id = follow_up(runtime, user_id, "30d")  # its own timer is not due in the test
        message = inbound(runtime)
        [received] = runtime.app.repository.event_store.get(message.message_id, lte=1)
        described = to_trigger_event(received, 1)
        assert described is not None
        # Version 1: the cause carried a copy of the facts (here a stale one, not re-read).
        cause = {
            **cause_of(described),
            "facts": {**described.facts, "text": "a copied price text"},
            "depth": 0,
        }
        legacy = Timer(
            id=timer_id(rule_id, "legacy"), rule_id=rule_id, cause=cause,
            due_at=datetime.now(UTC) - timedelta(seconds=1), contact_id=message.contact_id,
            conversation_id=message.conversation_id, cancel_on=[], actor=f"rule:{rule_id}",
            correlation_id="legacy",
        )  # fmt: skip
        [event] = legacy.collect_events()
        stored = runtime.app.mapper.to_stored_event(event)
        state = json.loads(stored.state)
        assert state.pop("class_version") == 2
        assert "facts" in state["cause"]
        old = type(stored)(
            originator_id=stored.originator_id,
            originator_version=stored.originator_version,
            topic=stored.topic,
            state=json.dumps(state).encode(),
        )
        runtime.app.recorder.insert_events([old])

        loaded: Timer = runtime.app.repository.get(legacy.id)
        assert "facts" not in loaded.cause and loaded.cause["key"] == described.cause_key
        runtime.start_triggers()
        wait_for(lambda: notification_texts(runtime), "the old timer's notification", timeout=30)
        assert notification_texts(runtime) == [f"Asked: {TEXT}"]  # the event's own text
        fired = wait_for(
            lambda: [t for t in timers(runtime.views, state="fired") if t.id == str(legacy.id)],
            "the old timer fired",
        )
        assert fired
    finally:
        runtime.close()
