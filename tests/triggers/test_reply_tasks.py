"""Reply tasks and the shipped rules, end to end through the real store (SQLite and PostgreSQL).

Issue 11: tasks piled up (each re-opening added a "Reply to ..." task, a reply did not
complete it, answered calls got one, SMS threads got e-mail tasks), a lagging runner
created a second task for a repeat message, and escalations reached nobody.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import Application

from tests.conftest import make_runtime
from tests.older_events import as_version_1
from tests.waiting import wait_for
from threadline.domain.model.inbound import InboundMessage
from threadline.domain.model.message import inbound_message_id
from threadline.domain.model.rule import rule_id_for
from threadline.domain.model.task import Task
from threadline.projections.automation import FiringRow, firings_of_rule, notification, timers
from threadline.projections.tasks import tasks_of_conversation
from threadline.services.runtime import Runtime
from threadline.triggers.defaults import RULES, seed_defaults
from threadline.triggers.rules import validate_rule

ACTOR = "user:test"


@pytest.fixture
def shipped(database_url: str, tmp_path: Path) -> Iterator[tuple[Runtime, UUID]]:
    """A runtime with the shipped rules, one active operator and the runner following."""
    runtime = make_runtime(database_url, attachments_dir=str(tmp_path / "a"))
    try:
        seed_defaults(runtime.app)
        operator, _ = runtime.app.create_user("ops@example.com", "operator", ACTOR).value
        runtime.wait_for_views(runtime.app.recorder.max_notification_id())
        runtime.start_triggers()
        yield runtime, operator
    finally:
        runtime.close()


def inbound(runtime: Runtime, key: str, channel: str, who: tuple[str, str], **extra: Any) -> Any:
    committed = runtime.app.ingest(
        InboundMessage.create(
            channel=channel, dedup_key=key, identities=[who], sender_name="Client",
            text=f"message {key}", **extra,
        )
    )  # fmt: skip
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    return committed.value


def caught_up(runtime: Runtime) -> None:
    """Wait until the runner has handled the whole log and the views show its effects."""
    wait_for(
        lambda: (
            runtime.triggers.position() >= runtime.app.recorder.max_notification_id()
            and not runtime.triggers._in_flight
        ),
        "the trigger runner to reach the end of the log",
    )
    last = runtime.app.recorder.max_notification_id()
    assert runtime.wait_for_views(last, timeout=30)
    # the runner's own effects are later in the log than the events it read
    wait_for(
        lambda: runtime.triggers.position() >= runtime.app.recorder.max_notification_id(),
        "the runner to read its own effects",
    )
    assert runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=30)


def tasks_of(runtime: Runtime, conversation_id: UUID, status: str | None = None) -> list[Any]:
    rows = [asdict(row) for row in tasks_of_conversation(runtime.views, conversation_id)]
    return [row for row in rows if status is None or row["status"] == status]


def firings_of(runtime: Runtime, key: str) -> list[FiringRow]:
    return firings_of_rule(runtime.views, rule_id_for(key), newest_first=False)


def test_one_open_reply_task_per_conversation_and_a_reply_completes_it(
    shipped: tuple[Runtime, UUID],
) -> None:
    runtime, operator = shipped
    first = inbound(runtime, "s1", "sms", ("phone", "+14155550142"))
    caught_up(runtime)
    [task] = wait_for(lambda: tasks_of(runtime, first.conversation_id), "the reply task")
    assert task["type"] == "sms", "an SMS thread gets an SMS task, not an e-mail one"
    assert task["status"] == "open"
    assert UUID(task["assignee_id"]) == operator, "no responsible: the least busy operator"

    # The client writes again, the conversation is resolved and re-opened: still one task.
    inbound(runtime, "s2", "sms", ("phone", "+14155550142"))
    runtime.app.change_conversation_status(first.conversation_id, "resolved", ACTOR)
    inbound(runtime, "s3", "sms", ("phone", "+14155550142"))
    caught_up(runtime)
    assert [t["id"] for t in tasks_of(runtime, first.conversation_id)] == [task["id"]]

    # The operator's reply completes it, with who and why in the log.
    replier = f"user:{operator}"
    runtime.app.reply(first.conversation_id, "Hello! How can we help?", replier)
    caught_up(runtime)
    done = wait_for(lambda: tasks_of(runtime, first.conversation_id, "done"), "completion")
    assert [t["id"] for t in done] == [task["id"]]
    completed = [
        e
        for e in runtime.app.repository.event_store.get(UUID(task["id"]))
        if isinstance(e, Task.TaskCompleted)
    ]
    assert [(e.actor, e.reason) for e in completed] == [(replier, "answered")]

    # A new question after the answer re-opens the thread: one new open task.
    inbound(runtime, "s4", "sms", ("phone", "+14155550142"))
    caught_up(runtime)
    open_now = tasks_of(runtime, first.conversation_id, "open")
    assert len(open_now) == 1 and open_now[0]["id"] != task["id"]
    assert open_now[0]["type"] == "sms"


@pytest.mark.parametrize(
    ("channel", "who", "task_type"),
    [
        ("email", ("email", "mail@example.com"), "email"),
        ("telegram", ("telegram", "4242"), "telegram"),
    ],
)
def test_the_reply_task_type_follows_the_channel(
    shipped: tuple[Runtime, UUID], channel: str, who: tuple[str, str], task_type: str
) -> None:
    runtime, _ = shipped
    message = inbound(runtime, "t1", channel, who)
    caught_up(runtime)
    [task] = wait_for(lambda: tasks_of(runtime, message.conversation_id), "the reply task")
    assert task["type"] == task_type


def test_an_answered_call_gets_no_task_and_missed_calls_one_call_back(
    shipped: tuple[Runtime, UUID],
) -> None:
    runtime, _ = shipped
    caller = ("phone", "+79161112233")
    answered = inbound(runtime, "CA-1", "voice", caller, metadata={"kind": "call"})
    runtime.app.record_call_status(inbound_message_id("voice", "CA-1"), "in-progress", "channel:t")
    runtime.app.record_call_status(inbound_message_id("voice", "CA-1"), "completed", "channel:t")
    caught_up(runtime)
    assert tasks_of(runtime, answered.conversation_id) == []
    assert timers(runtime.views, conversation_id=answered.conversation_id) == [], (
        "an answered call waits for no reply"
    )

    # Two missed calls from the same number: one open call-back.
    for key in ("CA-2", "CA-3"):
        inbound(runtime, key, "voice", caller, metadata={"kind": "call"})
        runtime.app.record_call_status(inbound_message_id("voice", key), "no-answer", "channel:t")
    caught_up(runtime)
    call_backs = wait_for(lambda: tasks_of(runtime, answered.conversation_id), "the call-back")
    assert [(t["type"], t["status"]) for t in call_backs] == [("call", "open")]
    assert call_backs[0]["title"].startswith("Call back")

    # The client calls again and the call is answered: the call-back is done.
    inbound(runtime, "CA-4", "voice", caller, metadata={"kind": "call"})
    runtime.app.record_call_status(inbound_message_id("voice", "CA-4"), "in-progress", "channel:t")
    caught_up(runtime)
    assert [t["status"] for t in tasks_of(runtime, answered.conversation_id)] == ["done"]


def test_a_lagging_runner_sees_the_tasks_of_its_own_earlier_firings(
    database_url: str, tmp_path: Path
) -> None:
    """First and repeat messages posted while the runner is stopped, then handled in one page."""
    runtime = make_runtime(database_url, attachments_dir=str(tmp_path / "a"))
    try:
        seed_defaults(runtime.app)
        runtime.app.create_user("ops@example.com", "operator", ACTOR)
        senders = [f"client{i}@example.com" for i in range(12)]
        conversations = set()
        for n, address in enumerate(senders):
            for repeat in range(2):
                result = inbound(runtime, f"burst-{n}-{repeat}", "email", ("email", address))
                conversations.add(result.conversation_id)
        assert len(conversations) == len(senders)
        runtime.start_triggers()
        caught_up(runtime)
        open_tasks = {c: tasks_of(runtime, c, "open") for c in conversations}
        assert {c: len(t) for c, t in open_tasks.items()} == dict.fromkeys(conversations, 1)
        # The rule's conditions saw the first task, so they never matched (a firing that only
        # found the reply task taken in the store would be recorded here).
        assert firings_of(runtime, "open-task-for-waiting-conversation") == []
    finally:
        runtime.close()


def test_the_shipped_escalation_notifies_an_operator_when_nobody_is_responsible(
    shipped: tuple[Runtime, UUID],
) -> None:
    runtime, operator = shipped
    message = inbound(runtime, "e1", "email", ("email", "nobody-owns-me@example.com"))
    card = runtime.queries.contact(str(message.contact_id))
    assert card is not None and not card.get("responsible_id")
    caught_up(runtime)
    [timer] = wait_for(
        lambda: timers(
            runtime.views, rule_id=rule_id_for("no-reply-escalation"), state="scheduled"
        ),
        "the no-reply timer",
    )
    runtime.triggers.fire_timer(UUID(timer.id))  # as the loop does once it is due
    caught_up(runtime)
    [firing] = wait_for(lambda: firings_of(runtime, "no-reply-escalation"), "the escalation")
    assert firing.outcome == "fired"
    [effect] = firing.effects
    assert "skipped" not in effect, effect
    note = wait_for(
        lambda: notification(runtime.views, effect["notification_id"]),
        "the escalation's notification",
    )
    assert UUID(note.user_id) == operator
    assert note.contact_id == str(message.contact_id)


OLD_ANSWER_NEW_INQUIRY = {
    "name": "Reply to a new inquiry within 15 minutes",
    "priority": 20,
    "when": {"event": "conversation.opened"},
    "if": {"field": "event.actor", "op": "starts_with", "value": "channel:"},
    "then": [
        {
            "create_task": {
                "title": "Reply to {{ contact.display_name }}",
                "type": "email",
                "due_in": "15m",
                "assignee": "responsible",
                "team": ["role:operator"],
            }
        }
    ],
}


def test_seeding_updates_unedited_shipped_rules_and_keeps_edited_ones(runtime: Runtime) -> None:
    old = validate_rule(OLD_ANSWER_NEW_INQUIRY, lambda slug: True)
    runtime.app.save_rule(old, "defaults", rule_id=rule_id_for("answer-new-inquiry"))
    edited = validate_rule({**OLD_ANSWER_NEW_INQUIRY, "priority": 5}, lambda slug: True)
    edited["name"] = "Call back after a missed call"
    runtime.app.save_rule(edited, "manager", rule_id=rule_id_for("call-back-missed-call"))
    seed_defaults(runtime.app)
    current = dict(RULES)
    upgraded = runtime.app.repository.get(rule_id_for("answer-new-inquiry")).definition
    assert upgraded == validate_rule(current["answer-new-inquiry"], lambda slug: True)
    kept = runtime.app.repository.get(rule_id_for("call-back-missed-call")).definition
    assert kept == edited
    assert seed_defaults(runtime.app) == 0, "seeding again changes nothing"


def test_a_task_completed_before_reasons_were_recorded_still_loads() -> None:
    app: Application[UUID] = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    task = Task(
        type="email", due_at=None, assignee_id=None, contact_id=None, deal_id=None,
        conversation_id=None, personal={"title": "t"}, actor="test", correlation_id="c",
    )  # fmt: skip
    task.complete(None, "user:x", "c")
    created, completed = task.collect_events()
    loaded = as_version_1(app, completed, "reason")
    assert loaded.reason == ""
    rebuilt = loaded.mutate(created.mutate(None))
    assert rebuilt.status == "done"
