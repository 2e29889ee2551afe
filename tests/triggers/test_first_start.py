"""Where a trigger runner's first start begins (issue 11 item 11), on SQLite and PostgreSQL.

Messages that arrive before the triggers worker first runs get their rules; the
history from before the first rule is not fired, and each rule applies from its
creation on.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from uuid import UUID

from tests.conftest import make_runtime
from tests.waiting import wait_for
from threadline.domain.model.inbound import InboundMessage
from threadline.projections.automation import firing_count
from threadline.services.runtime import Runtime
from threadline.triggers.rules import validate_rule
from threadline.triggers.runner import TriggerRunner

ACTOR = "user:test"


def rule(runtime: Runtime, name: str, tag: str) -> UUID:
    definition = {"name": name, "when": "message.received", "then": [{"add_tag": tag}]}
    rule_id: UUID = runtime.app.save_rule(validate_rule(definition, lambda s: True), ACTOR).value
    return rule_id


def inbound(runtime: Runtime, key: str, email: str) -> Any:
    committed = runtime.app.ingest(
        InboundMessage.create(
            channel="api", dedup_key=key, identities=[("email", email)], sender_name="Client",
            text="Hello",
        )
    )  # fmt: skip
    return committed.value


def tags(runtime: Runtime, contact_id: UUID) -> list[str]:
    card = runtime.queries.contact(str(contact_id))
    return list(card["tags"]) if card else []


def caught_up(runtime: Runtime) -> None:
    head = runtime.app.recorder.max_notification_id() or 0
    wait_for(lambda: runtime.triggers.position() >= head, "the runner at the head of the log")
    assert runtime.wait_for_views(runtime.app.recorder.max_notification_id() or 0, timeout=60)


def test_a_first_start_runs_what_came_after_the_first_rule_and_not_history(
    database_url: str, tmp_path: Path
) -> None:
    runtime = make_runtime(database_url, attachments_dir=str(tmp_path / "a"))
    try:
        history = inbound(runtime, "h1", "history@example.com")  # before any rule
        first = rule(runtime, "Tag A", "a")
        waiting = inbound(runtime, "m1", "waiting@example.com")  # before the runner ran
        rule(runtime, "Tag B", "b")
        runtime.start_triggers()
        wait_for(lambda: "a" in tags(runtime, waiting.contact_id), "the waiting message's rule")
        later = inbound(runtime, "m2", "later@example.com")
        wait_for(lambda: {"a", "b"} <= set(tags(runtime, later.contact_id)), "both rules")
        caught_up(runtime)
        assert tags(runtime, history.contact_id) == []  # history is not fired
        assert tags(runtime, waiting.contact_id) == ["a"]  # B did not exist yet
        assert firing_count(runtime.views, first) == 2
    finally:
        runtime.close()
    # A restart continues from the stored position: nothing fires again.
    again = make_runtime(database_url, attachments_dir=str(tmp_path / "a"))
    try:
        again.start_triggers()
        caught_up(again)
        time.sleep(0.3)
        assert firing_count(again.views) == 3
    finally:
        again.close()


def test_seeded_history_is_not_fired_on_the_first_start(database_url: str, tmp_path: Path) -> None:
    runtime = make_runtime(database_url, attachments_dir=str(tmp_path / "a"))
    try:
        rule(runtime, "Tag", "seen")
        seeded = inbound(runtime, "d1", "demo@example.com")
        runtime.triggers.begin_after_history()  # what `seed_demo` does when it is done
        runtime.start_triggers()
        fresh = inbound(runtime, "n1", "new@example.com")
        wait_for(lambda: "seen" in tags(runtime, fresh.contact_id), "the new message's rule")
        caught_up(runtime)
        assert tags(runtime, seeded.contact_id) == []
    finally:
        runtime.close()


def test_a_restart_with_the_views_down_reads_the_rules_from_the_log(
    database_url: str, tmp_path: Path
) -> None:
    runtime = make_runtime(database_url, attachments_dir=str(tmp_path / "a"))
    try:
        tagger = rule(runtime, "Tag", "seen")
        runtime.triggers.begin_after_history()  # a position is stored: this is a restart
        views_down = TriggerRunner(
            runtime.app, runtime.views, runtime.queries, runtime.channels.state,
            wait_for_views=lambda position: False, composer=runtime.composer,
        )  # fmt: skip
        views_down.start()
        try:
            assert list(views_down.rules) == [tagger]
        finally:
            views_down.stop()
    finally:
        runtime.close()
