"""The trigger engine end to end through the real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from tests.conftest import make_runtime
from tests.waiting import wait_for
from threadline.domain.model.attributes import AttributeDefinition
from threadline.domain.model.inbound import InboundMessage
from threadline.domain.model.rule import RuleFiring
from threadline.projections.automation import FiringRow, firings_of_rule, notifications, timers
from threadline.projections.tasks import TaskRow, tasks_of_contact
from threadline.services.runtime import Runtime
from threadline.triggers.rules import validate_rule

ACTOR = "user:test"


def rule(runtime: Runtime, definition: dict[str, Any]) -> UUID:
    checked = validate_rule(definition, lambda slug: True)
    rule_id: UUID = runtime.app.save_rule(checked, ACTOR).value
    return rule_id


def template(runtime: Runtime, slug: str, text: str) -> None:
    runtime.app.save_template(slug, slug, {"default": {"text": text}}, ACTOR)


def inbound(
    runtime: Runtime, key: str, text: str = "Hello", channel: str = "api", **who: str
) -> Any:
    identities = list(who.items()) or [("email", "client@example.com")]
    committed = runtime.app.ingest(
        InboundMessage.create(
            channel=channel, dedup_key=key, identities=identities, sender_name="Client", text=text
        )
    )
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    return committed.value


def firings(runtime: Runtime, rule_id: UUID) -> list[FiringRow]:
    return firings_of_rule(runtime.views, rule_id, newest_first=False)


def tasks(runtime: Runtime, contact_id: UUID) -> list[TaskRow]:
    return tasks_of_contact(runtime.views, contact_id)


def text(value: Any) -> str:
    """A decoded JSON column as the view stores it, for "says this somewhere" checks."""
    return json.dumps(value, ensure_ascii=False)


def test_a_rule_fires_once_per_cause_even_when_the_log_is_read_again(engine: Runtime) -> None:
    tagger = rule(
        engine,
        {
            "name": "Tag price questions",
            "when": {"event": "message.received", "channel": "api"},
            "if": {"field": "event.text", "op": "contains", "value": "price"},
            "then": [
                {"add_tag": "price-question"},
                {"create_task": {"title": "Send the price list", "due_in": "1h"}},
            ],
        },
    )
    asked = inbound(engine, "m1", "What is the PRICE of delivery?")
    inbound(engine, "m2", "Thanks")
    wait_for(lambda: firings(engine, tagger))
    card = wait_for(
        lambda: "price-question" in engine.queries.contact(str(asked.contact_id))["tags"]
    )
    assert card
    assert len(tasks(engine, asked.contact_id)) == 1
    # Re-read the whole log from the start: the store refuses a second firing.
    engine.triggers.state.set("triggers:position", "0")
    engine.triggers._wake.set()
    wait_for(lambda: engine.triggers.position() >= engine.app.recorder.max_notification_id())
    time.sleep(0.3)
    assert len(firings(engine, tagger)) == 1
    assert len(tasks(engine, asked.contact_id)) == 1
    trace = text(firings(engine, tagger)[0].trace)
    assert "price" in trace


def test_no_reply_timer_fires_without_a_reply_and_is_cancelled_by_one(engine: Runtime) -> None:
    waiting = rule(
        engine,
        {
            "name": "No reply within a second",
            "when": {"event": "message.received"},
            "after": {"delay": "1s", "cancel_on": ["message.sent"]},
            "then": [{"create_task": {"title": "Nobody answered", "due_in": "10m"}}],
        },
    )
    ignored = inbound(engine, "m1", email="ignored@example.com")
    answered = inbound(engine, "m2", email="answered@example.com")
    engine.app.reply(answered.conversation_id, "We are on it", ACTOR)
    wait_for(lambda: tasks(engine, ignored.contact_id), timeout=15)
    time.sleep(1.5)
    assert tasks(engine, answered.contact_id) == []
    states = {row.contact_id: row.state for row in timers(engine.views, waiting)}
    assert states == {str(ignored.contact_id): "fired", str(answered.contact_id): "cancelled"}


def test_a_timer_due_while_the_server_was_down_fires_at_start(
    database_url: str, tmp_path: Path
) -> None:
    first = make_runtime(database_url, attachments_dir=str(tmp_path / "a"))
    first.start_triggers()
    try:
        delayed = rule(
            first,
            {
                "name": "Follow up",
                "when": {"event": "message.received"},
                "after": "1s",
                "then": [{"add_tag": "followed-up"}],
            },
        )
        message = inbound(first, "m1")
        wait_for(lambda: timers(first.views))
    finally:
        first.close()  # the server goes down with the timer pending
    time.sleep(1.5)
    second = make_runtime(database_url, attachments_dir=str(tmp_path / "a"))
    second.start_triggers()
    try:
        wait_for(lambda: "followed-up" in second.queries.contact(str(message.contact_id))["tags"])
        wait_for(lambda: firings(second, delayed))  # each view catches up on its own
        time.sleep(0.3)
        assert len(firings(second, delayed)) == 1
    finally:
        second.close()


def test_a_rule_that_answers_replies_does_not_loop(database_url: str, tmp_path: Path) -> None:
    # A generous daily limit, so that only loop protection can stop the chain.
    engine = make_runtime(
        database_url, attachments_dir=str(tmp_path / "a"), automatic_messages_per_day=100
    )
    engine.start_triggers()
    try:
        template(engine, "echo", "Echo: {{ contact.display_name }}")
        rules = [
            rule(
                engine,
                {
                    "name": f"Answer every sent message ({name})",
                    "when": {"event": "message.sent"},
                    "then": [{"send_template": {"template": "echo", "channel": "same"}}],
                },
            )
            for name in ("echo", "ping")
        ]
        message = inbound(engine, "m1")
        engine.app.reply(message.conversation_id, "Hello from a person", ACTOR)
        everything = lambda: [f for r in rules for f in firings(engine, r)]  # noqa: E731
        wait_for(lambda: len(everything()) >= 8)
        time.sleep(1.0)  # nothing more comes
        result = everything()
        fired = [f for f in result if f.outcome == "fired"]
        skipped = [f for f in result if f.outcome == "skipped"]
        # Depth 0, 1 and 2 fire for both rules; depth 3 is stopped and says why.
        assert sorted(f.depth for f in fired) == [0, 0, 1, 1, 2, 2]
        assert len(skipped) == 2
        assert all("deeper than 3" in f.reason for f in skipped)
        # Neither rule ever answered its own message.
        for firing in result:
            assert firing.cause["actor"] != f"rule:{firing.rule_id}"
    finally:
        engine.close()


def test_opt_out_and_the_daily_limit_hold(engine: Runtime) -> None:
    template(engine, "auto", "Automatic answer")
    auto = rule(
        engine,
        {
            "name": "Auto-answer",
            "when": {"event": "message.received"},
            "then": [{"send_template": {"template": "auto", "channel": "same"}}],
        },
    )
    for k in range(5):
        inbound(engine, f"limit-{k}", f"Question {k}", email="busy@example.com")
    wait_for(lambda: len(firings(engine, auto)) == 5)
    effects = [text(f.effects) for f in firings(engine, auto)]
    sent = [e for e in effects if "message_id" in e]
    limited = [e for e in effects if "rate limit" in e]
    assert len(sent) == 3 and len(limited) == 2

    stopped = inbound(engine, "sms-1", "STOP", channel="sms", phone="+79001234567")
    wait_for(lambda: engine.app.repository.get(stopped.contact_id).has_opted_out("sms"), timeout=60)
    inbound(engine, "sms-2", "Hello again", channel="sms", phone="+79001234567")
    wait_for(lambda: len(firings(engine, auto)) == 7)
    last = firings(engine, auto)[-1]
    assert "opted out" in text(last.effects)


def test_birthday_greeting_goes_once_whatever_the_restarts(
    database_url: str, tmp_path: Path
) -> None:
    runtime = make_runtime(database_url, attachments_dir=str(tmp_path / "a"))
    try:
        runtime.app.define_attribute(
            AttributeDefinition.from_dict({"key": "birthday", "label": "Birthday", "type": "date"}),
            ACTOR,
        )
        today = datetime.now(UTC).date()
        born = date(1990, today.month, min(today.day, 28))
        contact = runtime.app.create_contact(
            ACTOR,
            "Birthday Person",
            [("email", "bday@example.com")],
            {"birthday": born.isoformat()},
        ).value
        template(runtime, "greeting", "Happy birthday!")
        greet = rule(
            runtime,
            {
                "name": "Greet",
                "when": {"event": "birthday"},
                "at": {"cron": "0 0 * * *", "timezone": "UTC"},
                "then": [{"send_template": {"template": "greeting", "channel": "email"}}],
            },
        )
        runtime.wait_for_views(runtime.app.recorder.max_notification_id())
        runtime.triggers.load_rules()
        for _ in range(3):  # three "restarts" of the day's schedule
            runtime.triggers.state.set(
                f"schedule:{greet}", (datetime.now(UTC) - timedelta(days=1)).isoformat()
            )
            runtime.triggers.scan_dates()
        runtime.wait_for_views(runtime.app.recorder.max_notification_id())
        fired = [f for f in firings(runtime, greet) if f.outcome == "fired"]
        if born.day == today.day:  # (on the 29th-31st the test contact is born on the 28th)
            assert len(fired) == 1
            assert fired[0].contact_id == str(contact)
            assert "message_id" in text(fired[0].effects)
    finally:
        runtime.close()


def test_firing_ids_are_deterministic(engine: Runtime) -> None:
    tagger = rule(
        engine,
        {"name": "Tag", "when": {"event": "message.received"}, "then": [{"add_tag": "seen"}]},
    )
    message = inbound(engine, "m1")
    wait_for(lambda: firings(engine, tagger))
    firing = firings(engine, tagger)[0]
    from threadline.domain.model.rule import firing_id

    stored: RuleFiring = engine.app.repository.get(UUID(firing.id))
    assert stored.rule_id == tagger
    assert UUID(firing.id) == firing_id(tagger, firing_cause(firing))
    assert message.contact_id == stored.contact_id


def firing_cause(firing: FiringRow) -> str:
    return str(firing.cause["key"])


def test_task_reminders_and_contact_changes_set_rules_off(engine: Runtime) -> None:
    overdue = rule(
        engine,
        {"name": "Overdue", "when": "task.overdue",
         "then": [{"notify": {"user": "responsible", "text": "Overdue: {{ event.task_id }}"}}]},
    )  # fmt: skip
    soon = rule(
        engine,
        {"name": "Soon", "when": {"event": "task.due_soon", "within": "2h"},
         "then": [{"notify": {"user": "responsible", "text": "Due soon"}}]},
    )  # fmt: skip
    tagged = rule(
        engine,
        {"name": "VIP", "when": "tag.added",
         "if": {"field": "contact.tags", "op": "contains", "value": "vip"},
         "then": [{"create_task": {"title": "Call the VIP", "type": "call", "due_in": "1h"}}]},
    )  # fmt: skip
    user_id, _ = engine.app.create_user("owner@example.com", "operator", ACTOR).value
    message = inbound(engine, "m1")
    now = datetime.now(UTC)
    late = engine.app.create_task(
        ACTOR, "Send the offer", due_at=now - timedelta(hours=1), assignee_id=user_id,
        contact_id=message.contact_id,
    ).value  # fmt: skip
    engine.app.create_task(
        ACTOR, "Call back", due_at=now + timedelta(minutes=30), assignee_id=user_id,
        contact_id=message.contact_id,
    )  # fmt: skip
    engine.app.create_task(
        ACTOR, "Next month", due_at=now + timedelta(days=30), assignee_id=user_id,
        contact_id=message.contact_id,
    )  # fmt: skip
    engine.wait_for_views(engine.app.recorder.max_notification_id())
    engine.triggers.scan_dates()
    engine.triggers.scan_dates()  # a second scan finds nothing new
    engine.wait_for_views(engine.app.recorder.max_notification_id())
    [late_firing] = firings(engine, overdue)
    assert str(late) in text(late_firing.cause)
    assert len(firings(engine, soon)) == 1  # only the task due within two hours
    notes = notifications(engine.views)
    assert {n.user_id for n in notes} == {str(user_id)}  # the task's assignee
    assert any(n.text == f"Overdue: {late}" for n in notes)
    engine.app.update_contact(message.contact_id, ACTOR, add_tags=["vip"])
    wait_for(lambda: firings(engine, tagged), "the tag rule")
    wait_for(
        lambda: [t for t in tasks(engine, message.contact_id) if t.title == "Call the VIP"],
        "the VIP task",
    )


def test_scheduled_rules_run_once_per_occurrence_and_catch_up_after_downtime(
    engine: Runtime,
) -> None:
    hourly = rule(
        engine,
        {
            "name": "Hourly housekeeping",
            "at": {"cron": "0 * * * *", "timezone": "Europe/Moscow"},
            "then": [{"webhook": {"url": "http://127.0.0.1:9/never-called"}}],
        },
    )
    engine.wait_for_views(engine.app.recorder.max_notification_id())
    engine.triggers.load_rules()
    now = datetime.now(UTC)
    # The server was down for three hours: one run at start, not three.
    engine.triggers.state.set(f"schedule:{hourly}", (now - timedelta(hours=3)).isoformat())
    engine.triggers.scan_dates(now)
    engine.triggers.scan_dates(now)  # the same moment again: nothing new
    engine.wait_for_views(engine.app.recorder.max_notification_id())
    runs = firings(engine, hourly)
    assert len(runs) == 1 and runs[0].outcome == "fired"
    assert "schedule:" in text(runs[0].cause)


def test_an_attribute_change_sets_off_a_rule_that_reads_the_new_value(engine: Runtime) -> None:
    engine.app.define_attribute(
        AttributeDefinition.from_dict({"key": "staff", "label": "Staff", "type": "number"}), ACTOR
    )
    big = rule(
        engine,
        {
            "name": "Big company",
            "when": "contact.attribute_changed",
            "if": {"field": "contact.attributes.staff", "op": "gte", "value": 500},
            "then": [{"add_tag": "enterprise"}],
        },
    )
    message = inbound(engine, "m1")
    engine.wait_for_views(engine.app.recorder.max_notification_id())
    while engine.triggers.step():  # the runner is done with everything before the changes
        pass
    engine.triggers.stop()
    engine.app.update_contact(message.contact_id, ACTOR, attributes={"staff": 40})
    engine.app.update_contact(message.contact_id, ACTOR, attributes={"staff": 900})
    # The card already shows 900 when the runner looks at the change to 40: the rule must
    # still read 40 there, the value as of that event.
    engine.wait_for_views(engine.app.recorder.max_notification_id())
    while engine.triggers.step():
        pass
    wait_for(lambda: firings(engine, big), "the attribute rule")
    wait_for(
        lambda: "enterprise" in engine.queries.contact(str(message.contact_id))["tags"],
        "the tag",
    )
    time.sleep(0.3)
    assert len(firings(engine, big)) == 1  # the change to 40 did not match
