"""The deal views on SQLite and PostgreSQL: time in stage with moves back and forth, past
figures untouched by renaming or reordering stages, rebuilds equal to the live build, merged
contacts, and deal rows on the client's timeline. Durations are worked out by hand from the
moments the test records the moves at."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from tests.conftest import make_runtime
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.model.deal import Deal
from threadline.domain.model.history_clock import recorded_at
from threadline.domain.model.pipeline import seeded_pipeline_id, seeded_stage_id
from threadline.projections.base import ViewProjection, handles
from threadline.projections.deals import (
    DealProjection,
    StageHistoryFilter,
    deal,
    deals_of_contact,
    stage_history,
)
from threadline.projections.pipelines import PipelineProjection
from threadline.projections.reports.frame import ReportSlice, run_report
from threadline.projections.reports.turnover import REPORT as TURNOVER
from threadline.projections.sql import ViewCursor, table_rows
from threadline.services import view_stack
from threadline.services.runtime import Runtime

NEW = seeded_pipeline_id("new-clients")
INTENT = seeded_stage_id("new-clients", "mutual-intent")
CONFIRM = seeded_stage_id("new-clients", "confirmation")
PROPOSAL = seeded_stage_id("new-clients", "commercial-proposal")
T0 = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
ORDER_BY = {
    "pipelines": "id",
    "pipeline_stages": "id",
    "deals": "id",
    "deal_lines": "deal_id, line_id",
    "deal_stage_history": "id",
    "deal_log": "id",
    "deal_conversations": "deal_id, conversation_id",
    "deal_aliases": "id",
}


def done(committed: Committed[Any]) -> Any:
    """Wait for a command's result (its events are in the log)."""
    return committed.value


def settle(runtime: Runtime) -> None:
    assert runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=60)


def at(moment: datetime, command: Any) -> Any:
    """Run a command whose deal events are recorded at `moment`; its value."""
    with recorded_at(moment):
        committed: Committed[Any] = command()
        return committed.value


def client(runtime: Runtime, name: str = "Мария") -> UUID:
    value: UUID = runtime.app.create_contact("test", name).value
    return value


@contextmanager
def seeded(runtime: Runtime) -> Iterator[Runtime]:
    done(runtime.app.seed_pipelines("test"))
    yield runtime
    settle(runtime)


def back_and_forth(runtime: Runtime) -> UUID:
    """Created in intent at T0, to confirmation +2 h, back to intent +1 day, forward again +30 min."""
    contact = client(runtime)
    deal_id: UUID = at(
        T0,
        lambda: runtime.app.create_deal("user:a", "Насосы", NEW, contact_id=contact, amount="1000"),
    )
    at(T0 + timedelta(hours=2), lambda: runtime.app.move_deal(deal_id, CONFIRM, "user:b"))
    at(T0 + timedelta(hours=2, days=1), lambda: runtime.app.move_deal(deal_id, INTENT, "user:a"))
    at(
        T0 + timedelta(hours=2, days=1, minutes=30),
        lambda: runtime.app.move_deal(deal_id, CONFIRM, "user:b"),
    )
    settle(runtime)
    return deal_id


def test_time_in_stage_with_moves_back_and_forth(runtime: Runtime) -> None:
    with seeded(runtime):
        deal_id = back_and_forth(runtime)
    now = T0 + timedelta(hours=2, days=1, minutes=30) + timedelta(hours=3)
    rows = stage_history(runtime.views, StageHistoryFilter(deal_id=str(deal_id)), now=now)
    assert [(r.kind, r.from_stage_id, r.stage_id) for r in rows] == [
        ("created", None, INTENT),
        ("moved", INTENT, CONFIRM),
        ("moved", CONFIRM, INTENT),
        ("moved", INTENT, CONFIRM),
    ]
    # 2 h in intent, 1 day in confirmation, 30 min back in intent, 3 h (to now) in confirmation
    assert [r.seconds_in_stage for r in rows] == [7200.0, 86400.0, 1800.0, 10800.0]
    assert rows[-1].left_at is None
    assert [r.actor for r in rows] == ["user:a", "user:b", "user:a", "user:b"]
    assert [r.probability for r in rows] == [10, 50, 10, 50]
    per_stage: dict[str, float] = {}
    for r in rows:
        per_stage[r.stage_id] = per_stage.get(r.stage_id, 0.0) + r.seconds_in_stage
    assert per_stage == {INTENT: 9000.0, CONFIRM: 97200.0}
    # an hour later the current stay is an hour longer, the closed ones are the same
    later = stage_history(
        runtime.views,
        StageHistoryFilter(deal_id=str(deal_id)),
        now=now + timedelta(hours=1),
    )
    assert [r.seconds_in_stage for r in later] == [7200.0, 86400.0, 1800.0, 14400.0]
    into_confirmation = stage_history(
        runtime.views, StageHistoryFilter(stage_id=CONFIRM, from_stage_id=INTENT), now=now
    )
    assert len(into_confirmation) == 2


def test_renaming_and_reordering_stages_changes_no_past_figure(runtime: Runtime) -> None:
    with seeded(runtime):
        deal_id = back_and_forth(runtime)
        at(
            T0 + timedelta(days=3),
            lambda: runtime.app.lose_deal(deal_id, "No budget", "user:a"),
        )
    now = T0 + timedelta(days=10)
    flt = StageHistoryFilter(pipeline_id=str(NEW))

    def figures() -> dict[str, Any]:
        return {
            "history": [asdict(r) for r in stage_history(runtime.views, flt, now=now)],
            "deals": table_rows(runtime.views, "deals", "id"),
            "lines": table_rows(runtime.views, "deal_lines", "deal_id, line_id"),
            "log": table_rows(runtime.views, "deal_log", "id"),
        }

    before = figures()
    done(runtime.app.change_stage(NEW, CONFIRM, "user:a", name="Подтверждение"))
    done(runtime.app.change_stage(NEW, INTENT, "user:a", name="Намерение"))
    order = [
        seeded_stage_id("new-clients", key)
        for key in (
            "commercial-proposal",
            "confirmation",
            "mutual-intent",
            "invoice-or-documents",
            "all-operations-done",
            "paid",
            "lost",
        )
    ]
    done(runtime.app.reorder_stages(NEW, order, "user:a"))
    settle(runtime)
    after = figures()
    assert after == before
    # the stage history's amounts and durations: 1000.00 RUB throughout, as recorded
    assert {(h["currency"], h["amount_minor"]) for h in after["history"]} == {("RUB", 100000)}
    assert [h["seconds_in_stage"] for h in after["history"]] == [
        7200.0,
        86400.0,
        1800.0,
        # the last stay in confirmation: from +1 day 2 h 30 min to the loss at +3 days
        (timedelta(days=3) - timedelta(days=1, hours=2, minutes=30)).total_seconds(),
        (timedelta(days=10) - timedelta(days=3)).total_seconds(),
    ]
    names = {s["id"]: s["name"] for s in table_rows(runtime.views, "pipeline_stages", "id")}
    assert (names[CONFIRM], names[INTENT]) == ("Подтверждение", "Намерение")


def deal_tables(runtime: Runtime) -> dict[str, list[dict[str, Any]]]:
    tables = (*PipelineProjection.tables, *DealProjection.tables)
    assert set(ORDER_BY) == set(tables)
    return {t: table_rows(runtime.views, t, ORDER_BY[t]) for t in tables}


def timeline_rows(runtime: Runtime) -> list[dict[str, Any]]:
    return table_rows(runtime.views, "timeline", "id")


def sample_sales(runtime: Runtime) -> None:
    """Deals with lines, moves, a win, a loss, a linked conversation, a merge, a new stage."""
    with seeded(runtime):
        deal_id = back_and_forth(runtime)
        maria, ivan = client(runtime, "Мария Ивановна"), client(runtime, "Иван")
        second = runtime.app.create_deal(
            "user:a",
            "Монтаж",
            NEW,
            contact_id=ivan,
            currency="EUR",
            lines=[
                {"name": "Работа", "quantity": 3, "price": "120.50", "vat": "standard"},
                {"name": "Скидка", "quantity": 1, "price": "80", "discount": "25", "cost": 10},
            ],
            expected_close="2025-12-20",
        ).value
        done(runtime.app.win_deal(second, "user:a"))
        third = runtime.app.create_deal("user:b", "Сервис", NEW, contact_id=maria).value
        done(runtime.app.lose_deal(third, "No answer", "user:b"))
        done(runtime.app.update_deal(deal_id, "user:a", title="Насосы и фильтры", probability=70))
        done(
            runtime.app.change_deal_lines(
                deal_id, [{"name": "Фильтр", "quantity": 4, "price": "250"}], "user:a"
            )
        )
        done(runtime.app.merge_contacts(maria, ivan, "user:a"))
        done(runtime.app.add_stage(NEW, "user:a", "Тендер", probability=40, position=2))


def test_deal_views_are_equal_after_a_rebuild(runtime: Runtime) -> None:
    sample_sales(runtime)
    settle(runtime)
    before, timeline = deal_tables(runtime), timeline_rows(runtime)
    assert len(before["deals"]) == 3 and len(before["deal_stage_history"]) == 8
    assert any(r["kind"].startswith("deal.") for r in timeline)
    runtime.runner.stop()  # the follower must not apply pages while the rebuild does
    runtime.rebuild_views()
    rebuilt = deal_tables(runtime)
    for table, rows in before.items():
        changed = [
            {k: (a[k], b.get(k)) for k in a if a[k] != b.get(k)}
            for a, b in zip(rows, rebuilt[table], strict=False)
            if a != b
        ]
        assert len(rows) == len(rebuilt[table]) and not changed, (table, changed)
    assert timeline_rows(runtime) == timeline


def test_threadline_replay_rebuilds_the_deal_views(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/threadline.db"
    runtime = make_runtime(url)
    try:
        sample_sales(runtime)
        settle(runtime)
        before = deal_tables(runtime)
    finally:
        runtime.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("THREADLINE_")}
    env["THREADLINE_DATABASE_URL"] = url
    result = subprocess.run(
        [str(Path(sys.executable).with_name("threadline")), "replay"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    again = make_runtime(url)
    try:
        assert deal_tables(again) == before
    finally:
        again.close()


def test_a_merged_contacts_deals_follow_the_survivor(runtime: Runtime) -> None:
    with seeded(runtime):
        survivor, duplicate = client(runtime, "Ольга"), client(runtime, "Ольга Кузнецова")
        early = runtime.app.create_deal("user:a", "Ранняя", NEW, contact_id=duplicate).value
        done(runtime.app.move_deal(early, CONFIRM, "user:a"))
        done(runtime.app.merge_contacts(survivor, duplicate, "user:a"))
        late = runtime.app.create_deal("user:a", "Поздняя", NEW, contact_id=duplicate).value
    assert {d.id for d in deals_of_contact(runtime.views, survivor)} == {str(early), str(late)}
    assert deals_of_contact(runtime.views, duplicate) == []
    found = deal(runtime.views, early)
    assert found is not None and found.contact_id == str(survivor)
    rows = runtime.queries.timeline(str(survivor), limit=100)
    deal_rows = [(r["kind"], r["title"]) for r in rows if r["kind"].startswith("deal.")]
    assert sorted(deal_rows) == [
        ("deal.created", "Поздняя"),
        ("deal.created", "Ранняя"),
        ("deal.stage_changed", "Ранняя"),
    ]


def test_deal_events_show_on_the_clients_timeline(runtime: Runtime) -> None:
    with seeded(runtime):
        contact = client(runtime)
        deal_id = runtime.app.create_deal(
            "user:a", "Насосы", NEW, contact_id=contact, amount="1500"
        ).value
        done(runtime.app.move_deal(deal_id, PROPOSAL, "user:b"))
        done(runtime.app.lose_deal(deal_id, "Too expensive", "user:b"))
        done(runtime.app.win_deal(deal_id, "user:a"))
    rows = [
        r
        for r in runtime.queries.timeline(str(contact), limit=100)
        if r["kind"].startswith("deal.")
    ]
    rows.sort(key=lambda r: r["seq"])
    assert [r["kind"] for r in rows] == [
        "deal.created",
        "deal.stage_changed",
        "deal.lost",
        "deal.won",
    ]
    assert {r["title"] for r in rows} == {"Насосы"}
    assert {r["ref_id"] for r in rows} == {str(deal_id)}
    moved, lost = rows[1], rows[2]
    data = moved["data"]
    assert (data["from_stage_id"], data["to_stage_id"]) == (INTENT, PROPOSAL)
    assert data["amount"] == {"amount": "1500.00", "currency": "RUB"}
    assert data["probability"] == 60
    assert lost["body"] == "Too expensive" and rows[3]["actor"] == "user:a"
    assert rows[0]["correlation_id"] != rows[1]["correlation_id"]


class DealsOfVersion4(ViewProjection):
    """The deals view as version 4 stored it: no `lines_short` column (issue 15's ABC)."""

    name = "deals"
    version = 4
    tables = ("deals",)
    schema = (
        "CREATE TABLE IF NOT EXISTS deals (id TEXT PRIMARY KEY, status TEXT NOT NULL,"
        " closed_at TEXT, net_minor BIGINT NOT NULL, profit_minor BIGINT NOT NULL)",
    )

    @handles(Deal.DealCreated)
    def _created(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "INSERT INTO deals (id, status, net_minor, profit_minor) VALUES (?, 'open', 0, 0)"
            " ON CONFLICT (id) DO NOTHING",
            [str(event.originator_id)],
        )


def test_a_view_of_an_older_version_is_rebuilt_before_its_new_schema_is_created(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Version 5 indexes a column version 4 lacks: the old table is dropped first (creating
    the new indexes over it would fail and the process would not start)."""
    with monkeypatch.context() as before:
        before.setattr(view_stack, "PROJECTION_CLASSES", (PipelineProjection, DealsOfVersion4))
        runtime = make_runtime(database_url)
        try:
            with seeded(runtime):
                maria = client(runtime)
                deal = at(
                    datetime(2026, 3, 2, 10, tzinfo=UTC),
                    lambda: runtime.app.create_deal(
                        "test", "Старая", NEW, contact_id=maria, amount="1000"
                    ),
                )
                at(datetime(2026, 3, 3, 10, tzinfo=UTC), lambda: runtime.app.win_deal(deal, "test"))
        finally:
            runtime.close()
    runtime = make_runtime(database_url)
    try:
        settle(runtime)
        rows = table_rows(runtime.views, "deals", "id")
        assert [(r["id"], r["status"], r["net_minor"], r["lines_short"]) for r in rows] == [
            (str(deal), "won", 100000, 0)
        ]
        result = run_report(runtime.views, TURNOVER, ReportSlice())
        by_month = {tuple(r.key.values()): r.values["revenue"] for r in result.sections[0].rows}
        assert sum(by_month.values()) == 100000
    finally:
        runtime.close()
