"""Task reminders from durable scan marks, on SQLite and PostgreSQL (issue 11 items 9, 19).

The runner is driven by hand here (`step`, `scan_dates(now)`) so that each test says
exactly which moment a scan happens at; the loop does the same on its own clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from tests.conftest import make_runtime
from threadline.projections.automation import firing_causes, firings_of_rule, notifications
from threadline.services.runtime import Runtime
from threadline.triggers import date_scans
from threadline.triggers.rules import validate_rule

ACTOR = "user:test"


@pytest.fixture
def manual(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    """A runtime whose trigger runner is not started: the test moves it."""
    runtime = make_runtime(database_url, attachments_dir=str(tmp_path / "a"))
    try:
        yield runtime
    finally:
        runtime.close()


def rule(runtime: Runtime, definition: dict[str, Any]) -> UUID:
    rule_id: UUID = runtime.app.save_rule(validate_rule(definition, lambda s: True), ACTOR).value
    return rule_id


def drain(runtime: Runtime) -> None:
    """Let the views and the runner read everything in the log."""
    assert runtime.wait_for_views(runtime.app.recorder.max_notification_id() or 0, timeout=60)
    for _ in range(1_000):
        if not runtime.triggers.step():
            break
    assert runtime.wait_for_views(runtime.app.recorder.max_notification_id() or 0, timeout=60)


def scan(runtime: Runtime, now: datetime) -> int:
    """Scan until no page is full; how many pages it took."""
    pages = 1
    while runtime.triggers.scan_dates(now):
        pages += 1
        assert pages < 100
    drain(runtime)
    return pages


def reminders(runtime: Runtime, rule_id: UUID) -> list[str]:
    """The cause keys of a rule's firings: `<event>:<task id>:<due time>`."""
    return sorted(cause["key"] for cause in firing_causes(runtime.views, rule_id))


def count_evaluations(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the runner's rule evaluations (each one reads facts and submits a command)."""
    calls = [0]
    original = runtime.triggers.run_rules

    def counted(*args: Any, **kwargs: Any) -> list[UUID]:
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(runtime.triggers, "run_rules", counted)
    return calls


def test_more_due_tasks_than_a_page_each_get_exactly_one_reminder(
    manual: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(date_scans, "SCAN_PAGE", 7)
    overdue = rule(
        manual,
        {"name": "Overdue", "when": "task.overdue",
         "then": [{"notify": {"user": "responsible", "text": "Overdue"}}]},
    )  # fmt: skip
    user_id, _ = manual.app.create_user("owner@example.com", "operator", ACTOR).value
    now = datetime.now(UTC)
    due = [now - timedelta(days=3, minutes=i) for i in range(30)]
    tasks = [
        manual.app.create_task(ACTOR, f"Task {i}", due_at=at, assignee_id=user_id).value
        for i, at in enumerate(due)
    ]
    later = manual.app.create_task(
        ACTOR, "Not yet", due_at=now + timedelta(hours=2), assignee_id=user_id
    ).value
    drain(manual)
    assert scan(manual, now) == 5  # 30 tasks in pages of 7
    keys = reminders(manual, overdue)
    assert len(keys) == 30 and len({k.split(":")[1] for k in keys}) == 30
    assert str(later) not in " ".join(keys)
    notes = len(notifications(manual.views))
    assert notes == 30

    # The next scans find nothing to do: no task is evaluated again.
    evaluations = count_evaluations(manual, monkeypatch)
    scan(manual, now + timedelta(seconds=20))
    scan(manual, now + timedelta(seconds=40))
    assert evaluations[0] == 0

    # A rescheduled task is reminded again at its new time; a closed one is not.
    manual.app.reschedule_task(tasks[0], now + timedelta(hours=1), ACTOR)
    manual.app.reschedule_task(tasks[1], now + timedelta(hours=1), ACTOR)
    manual.app.complete_task(tasks[1], ACTOR)
    drain(manual)
    scan(manual, now + timedelta(hours=3))
    keys = reminders(manual, overdue)
    assert len(keys) == 32  # tasks[0] at its new time, and `later`
    assert len([k for k in keys if str(tasks[0]) in k]) == 2
    assert len([k for k in keys if str(later) in k]) == 1


def test_a_task_created_already_overdue_behind_the_mark_is_reminded_once(
    manual: Runtime,
) -> None:
    overdue = rule(
        manual,
        {"name": "Overdue", "when": "task.overdue", "then": [{"add_tag": "late"}]},
    )
    now = datetime.now(UTC)
    first = manual.app.create_task(ACTOR, "First", due_at=now - timedelta(minutes=5)).value
    drain(manual)
    scan(manual, now)  # the mark is now at the first task, five minutes ago
    assert len(reminders(manual, overdue)) == 1
    # Imported with a due time long past: behind the mark, so no scan would reach it.
    old = manual.app.create_task(ACTOR, "Imported", due_at=now - timedelta(days=30)).value
    drain(manual)  # the runner reads its creation and reminds it
    scan(manual, now + timedelta(seconds=10))
    keys = reminders(manual, overdue)
    assert len(keys) == 2
    assert any(str(old) in k for k in keys) and any(str(first) in k for k in keys)


def test_due_soon_fires_once_when_the_task_enters_the_window(
    manual: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    soon = rule(
        manual,
        {"name": "Soon", "when": {"event": "task.due_soon", "within": "1h"},
         "then": [{"add_tag": "soon"}]},
    )  # fmt: skip
    now = datetime.now(UTC)
    in_three_hours = manual.app.create_task(ACTOR, "Call", due_at=now + timedelta(hours=3)).value
    also = manual.app.create_task(ACTOR, "Mail", due_at=now + timedelta(hours=3, minutes=30)).value
    drain(manual)
    scan(manual, now)
    scan(manual, now + timedelta(hours=1))
    assert reminders(manual, soon) == []  # not in the window yet
    entered = now + timedelta(hours=2, minutes=1)
    scan(manual, entered)  # the window's edge passed the first task's due time
    keys = reminders(manual, soon)
    assert len(keys) == 1 and str(in_three_hours) in keys[0]
    fired_at = firings_of_rule(manual.views, soon, newest_first=False)[0].occurred_at
    assert fired_at  # recorded when the scan ran, about an hour before the task is due

    # Later scans in the same window do nothing for it: no evaluation at all.
    evaluations = count_evaluations(manual, monkeypatch)
    scan(manual, entered + timedelta(minutes=10))
    assert evaluations[0] == 0
    scan(manual, now + timedelta(hours=2, minutes=45))  # the second task enters
    assert evaluations[0] == 1
    keys = reminders(manual, soon)
    assert len(keys) == 2 and str(also) in " ".join(keys)

    # A task created due inside the window already swept is reminded as it is read,
    # one already past due is not "due soon".
    quick = manual.app.create_task(ACTOR, "Quick", due_at=now + timedelta(minutes=10)).value
    manual.app.create_task(ACTOR, "Late", due_at=now - timedelta(minutes=10))
    drain(manual)
    keys = reminders(manual, soon)
    assert len(keys) == 3 and str(quick) in " ".join(keys)
