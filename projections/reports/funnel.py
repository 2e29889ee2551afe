"""The sales funnel from the recorded stage moves, not from where deals sit now.

Every stay of a deal in a stage (`deal_stage_history`) that began in the period is an item,
classified by how it ended: advanced (to a later stage of its pipeline, winning included),
moved back (to an earlier one), lost, moved out (to another pipeline) or still there. So
entries = advanced + moved back + lost + moved out + still there, and a deal moved back and
forward again enters a stage twice, as the history says. Time in a stage runs to the move
that ended the stay, or to `now` for the current stay. Stage order is the pipeline's order
now (the pipelines view).

Amounts are what the deal carried when it entered the stage (net of VAT is not known
there, so the stay's amount is the deal's total, as the board shows it). The forecast
weighs each deal's net amount by its probability (won 100 %, lost 0 %) in the month it is
expected to close, against the net amount actually won.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from threadline.projections.pipelines import pipelines
from threadline.projections.reports.frame import (
    Column,
    Item,
    ItemSource,
    Measure,
    Report,
    ReportSlice,
    Section,
    deal_slice,
    local_day,
    local_month,
    seconds_between,
)
from threadline.projections.sql import ViewReader

REPORT_NAME = "funnel"

# A stay is in the pipeline it was in, with the manager the deal had when it entered.
STAY_SLICE = replace(
    deal_slice("h.entered_at"), pipeline_id="h.pipeline_id", manager_id="h.manager_id"
)

STAY_COLUMNS = (
    Column("stay_id", "Stay", "id"),
    Column("deal_id", "Deal", "id", ref="deal"),
    Column("deal_title", "Deal title"),
    Column("pipeline_id", "Pipeline id", "id", ref="pipeline"),
    Column("pipeline", "Pipeline"),
    Column("position", "Stage position", "count"),
    Column("stage_id", "Stage id", "id"),
    Column("stage", "Stage"),
    Column("meaning", "Stage meaning"),
    Column("manager_id", "Manager id", "id", ref="user"),
    Column("manager", "Manager"),
    Column("entered_at", "Entered", "time"),
    Column("left_at", "Left", "time"),
    Column("entered", "Entries", "flag"),
    Column("advanced", "Advanced", "flag"),
    Column("moved_back", "Moved back", "flag"),
    Column("lost", "Deals lost", "flag"),
    Column("moved_out", "Moved to another pipeline", "flag"),
    Column("still", "Still there", "flag"),
    Column("won_later", "Deal won", "flag"),
    Column("won_entry", "Won here", "flag"),
    Column("lost_entry", "Lost here", "flag"),
    Column("closed_entry", "Closed here", "flag"),
    Column("seconds_in_stage", "Time in stage", "seconds"),
    Column("lost_at_stage", "Lost at stage"),
    Column("reason", "Lost reason"),
    Column("currency", "Currency"),
    Column("amount_minor", "Amount", "money"),
)

FORECAST_COLUMNS = (
    Column("deal_id", "Deal", "id", ref="deal"),
    Column("deal_title", "Deal title"),
    Column("month", "Expected close month", "month"),
    Column("status", "Status"),
    Column("manager_id", "Manager id", "id", ref="user"),
    Column("manager", "Manager"),
    Column("probability", "Probability, %", "count"),
    Column("manual", "Manual probability", "flag"),
    Column("currency", "Currency"),
    Column("amount_minor", "Amount (net)", "money"),
    Column("weighted_minor", "Weighted forecast", "money"),
    Column("won_minor", "Actual (won)", "money"),
)


def _stages(db: ViewReader) -> dict[str, dict[str, Any]]:
    """Every stage (archived pipelines too) with its pipeline's name and its position."""
    found: dict[str, dict[str, Any]] = {}
    for p in pipelines(db, include_archived=True):
        for stage in p.stages:
            found[stage.id] = {
                "pipeline": p.name,
                "name": stage.name,
                "position": stage.position,
                "meaning": stage.meaning,
            }
    return found


def read_stays(db: ViewReader, s: ReportSlice) -> list[Item]:
    c = STAY_SLICE.conditions(REPORT_NAME, s)
    rows = db.query(
        "SELECT h.id, h.deal_id, h.pipeline_id, h.stage_id, h.kind, h.entered_at, h.left_at,"
        " h.manager_id, h.currency, h.amount_minor, h.reason, h.from_stage_id,"
        " d.title, d.status, u.name AS manager,"
        " n.kind AS next_kind, n.stage_id AS next_stage_id, n.pipeline_id AS next_pipeline_id"
        " FROM deal_stage_history h JOIN deals d ON d.id = h.deal_id"
        " LEFT JOIN users u ON u.id = h.manager_id"
        " LEFT JOIN deal_stage_history n ON n.deal_id = h.deal_id AND n.from_stage_id = h.stage_id"
        " AND n.entered_at = h.left_at"
        f"{c.where} ORDER BY h.entered_at, h.id",
        c.params,
    )
    stages = _stages(db)
    now = s.now_ts
    items: list[Item] = []
    seen: set[str] = set()
    for r in rows:
        if r["id"] in seen:  # two moves in one microsecond: the first found ends the stay
            continue
        seen.add(r["id"])
        here = stages.get(r["stage_id"], {})
        position = here.get("position", 0)
        outcome = _outcome(r, position, stages)
        lost_at = stages.get(r["from_stage_id"] or "", {}).get("name", "")
        items.append(
            {
                "stay_id": r["id"],
                "deal_id": r["deal_id"],
                "deal_title": r["title"],
                "pipeline_id": r["pipeline_id"],
                "pipeline": here.get("pipeline", ""),
                "position": position,
                "stage_id": r["stage_id"],
                "stage": here.get("name", r["stage_id"]),
                "meaning": here.get("meaning", ""),
                "manager_id": r["manager_id"],
                "manager": r["manager"] or "",
                "entered_at": r["entered_at"],
                "left_at": r["left_at"],
                "entered": 1,
                **{name: int(outcome == name) for name in OUTCOMES},
                "won_later": int(r["status"] == "won"),
                "won_entry": int(r["kind"] == "won"),
                "lost_entry": int(r["kind"] == "lost"),
                "closed_entry": int(r["kind"] in ("won", "lost")),
                "seconds_in_stage": max(
                    0.0, seconds_between(r["entered_at"], r["left_at"] or now) or 0.0
                ),
                "lost_at_stage": lost_at if r["kind"] == "lost" else "",
                "reason": (r["reason"] or "") if r["kind"] == "lost" else "",
                "currency": r["currency"],
                "amount_minor": int(r["amount_minor"]),
            }
        )
    return items


OUTCOMES = ("advanced", "moved_back", "lost", "moved_out", "still")


def _outcome(row: dict[str, Any], position: int, stages: dict[str, dict[str, Any]]) -> str:
    if row["left_at"] is None or row["next_kind"] is None:
        return "still"
    if row["next_kind"] == "lost":
        return "lost"
    if row["next_pipeline_id"] != row["pipeline_id"]:
        return "moved_out"
    if row["next_kind"] == "won":
        return "advanced"
    after = stages.get(row["next_stage_id"], {}).get("position", position)
    return "advanced" if after > position else "moved_back"


FORECAST_SLICE = deal_slice()  # the period narrows `expected_close`, a date (below)


def read_forecast(db: ViewReader, s: ReportSlice) -> list[Item]:
    """Deals expected to close in the period (`expected_close` is a business date)."""
    c = FORECAST_SLICE.conditions(REPORT_NAME, s)
    c.add("d.expected_close IS NOT NULL", [])
    c.compare("d.expected_close", ">=", local_day(s.start, s.timezone) if s.start else None)
    c.compare("d.expected_close", "<", local_day(s.end, s.timezone) if s.end else None)
    rows = db.query(
        "SELECT d.id, d.title, d.expected_close, d.status, d.manager_id, u.name AS manager,"
        " d.probability, d.probability_manual, d.currency, d.net_minor"
        " FROM deals d LEFT JOIN users u ON u.id = d.manager_id"
        f"{c.where} ORDER BY d.expected_close, d.id",
        c.params,
    )
    items = []
    for r in rows:
        amount = int(r["net_minor"])
        probability = (
            100 if r["status"] == "won" else 0 if r["status"] == "lost" else int(r["probability"])
        )
        items.append(
            {
                "deal_id": r["id"],
                "deal_title": r["title"],
                "month": str(r["expected_close"])[:7],
                "status": r["status"],
                "manager_id": r["manager_id"],
                "manager": r["manager"] or "",
                "probability": probability,
                "manual": int(bool(r["probability_manual"])),
                "currency": r["currency"],
                "amount_minor": amount,
                "weighted_minor": (amount * probability + 50) // 100,
                "won_minor": amount if r["status"] == "won" else 0,
            }
        )
    return items


def _stay_month(item: Item, s: ReportSlice) -> str | None:
    return local_month(item["entered_at"], s.timezone)


REPORT = Report(
    name=REPORT_NAME,
    title="Funnel",
    description=(
        "Deals entering each stage in the period and how each stay ended (advanced, moved"
        " back, lost, moved to another pipeline, still there), conversion to the next stage"
        " and to won, time in stage, win rate, lost deals by reason, and the probability-"
        "weighted forecast by expected close month against what was won."
    ),
    sources=(
        ItemSource("stays", "Stage stays", STAY_COLUMNS, read_stays),
        ItemSource("forecast", "Deals by expected close", FORECAST_COLUMNS, read_forecast),
    ),
    sections=(
        Section(
            name="stages",
            title="Stages",
            source="stays",
            group_by=("pipeline", "position", "stage_id", "stage"),
            measures=(
                Measure("entries", "Entries", "count"),
                Measure("advanced", "Advanced", "sum", "advanced"),
                Measure("moved_back", "Moved back", "sum", "moved_back"),
                Measure("lost", "Deals lost", "sum", "lost"),
                Measure("moved_out", "Moved to another pipeline", "sum", "moved_out"),
                Measure("still", "Still there", "sum", "still"),
                Measure("won_later", "Won later", "sum", "won_later"),
                Measure(
                    "conversion",
                    "Conversion to next",
                    "ratio",
                    of=("advanced", "entries"),
                    kind="percent",
                ),
                Measure(
                    "to_won",
                    "Conversion to won",
                    "ratio",
                    of=("won_later", "entries"),
                    kind="percent",
                ),
                Measure(
                    "avg_seconds",
                    "Average time in stage",
                    "avg",
                    "seconds_in_stage",
                    kind="seconds",
                ),
                Measure(
                    "median_seconds",
                    "Median time in stage",
                    "median",
                    "seconds_in_stage",
                    kind="seconds",
                ),
            ),
            chart="entries",
        ),
        Section(
            name="win_rate",
            title="Win rate",
            source="stays",
            group_by=("pipeline",),
            keep=lambda item: bool(item["closed_entry"]),
            measures=(
                Measure("closed", "Deals closed", "count"),
                Measure("won", "Deals won", "sum", "won_entry"),
                Measure("lost", "Deals lost", "sum", "lost_entry"),
                Measure("win_rate", "Win rate", "ratio", of=("won", "closed"), kind="percent"),
            ),
            chart="win_rate",
        ),
        Section(
            name="lost",
            title="Lost deals by reason, stage and manager",
            source="stays",
            group_by=("reason", "lost_at_stage", "manager_id", "manager", "currency"),
            keep=lambda item: bool(item["lost_entry"]),
            measures=(
                Measure("deals", "Deals", "count"),
                Measure("amount", "Amount", "sum", "amount_minor", kind="money"),
            ),
            chart="deals",
            order="-deals",
        ),
        Section(
            name="forecast",
            title="Forecast by expected close month",
            source="forecast",
            group_by=("month", "currency"),
            measures=(
                Measure("deals", "Deals", "count"),
                Measure("weighted", "Weighted forecast", "sum", "weighted_minor", kind="money"),
                Measure("won", "Revenue won", "sum", "won_minor", kind="money"),
                Measure("pipeline_amount", "Amount", "sum", "amount_minor", kind="money"),
                Measure("manual", "Manual probabilities", "sum", "manual"),
            ),
            chart="weighted",
        ),
    ),
)
