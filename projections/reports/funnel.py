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

from threadline.projections.reports.frame import (
    Column,
    ItemQuery,
    ItemSource,
    Label,
    Measure,
    Report,
    ReportSlice,
    Section,
    deal_slice,
    is_postgres,
    local_day,
    seconds_sql,
    ts_literal,
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


# How a stay ended, from the move that ended it (kept on the stay by the deals view, which
# sets `left_at`, `next_kind`, `next_pipeline_id` and `stay_seconds` together: a stay with no
# `next_kind` is still open) and the stages' order now (`st` the stay's stage, `ns` the next
# one): a move to a later stage of the same pipeline (or a win there) advanced it. Each
# outcome is its own test over as few columns as may be (a fold names each once, and sorts
# every column its tests read along with the stay).
_FORWARD = "COALESCE(ns.position, st.position, 0) > COALESCE(st.position, 0)"
_SAME = "h.next_pipeline_id = h.pipeline_id"
_OUTCOME_TESTS = {
    "advanced": f"h.next_kind <> 'lost' AND {_SAME} AND (h.next_kind = 'won' OR {_FORWARD})",
    "moved_back": f"h.next_kind NOT IN ('lost', 'won') AND {_SAME} AND NOT {_FORWARD}",
    "lost": "h.next_kind = 'lost'",
    "moved_out": "h.next_kind <> 'lost' AND h.next_pipeline_id <> h.pipeline_id",
    "still": "h.next_kind IS NULL",
}

OUTCOMES = ("advanced", "moved_back", "lost", "moved_out", "still")


# Names and order of a stay's stage now, looked up from its id: a section grouping by the
# stage id looks them up once per row, not once per stay (the items' columns give the same).
_STAGE_LABELS = {
    "pipeline": Label(
        "COALESCE((SELECT p.name FROM pipeline_stages ps JOIN pipelines p"
        " ON p.id = ps.pipeline_id WHERE ps.id = {stage_id}), '')",
        by=("stage_id",),
    ),
    "position": Label(
        "COALESCE((SELECT ps.position FROM pipeline_stages ps WHERE ps.id = {stage_id}), 0)",
        by=("stage_id",),
    ),
    "stage": Label(
        "COALESCE((SELECT ps.name FROM pipeline_stages ps WHERE ps.id = {stage_id}), {stage_id})",
        by=("stage_id",),
    ),
}
_MANAGER_LABEL = Label(
    "COALESCE((SELECT u.name FROM users u WHERE u.id = {manager_id}), '')", by=("manager_id",)
)


_DEAL_DIMENSIONS = ("source", "utm_campaign", "channel", "group", "segment")
"""The slices a stay takes from its deal now (the deals view as `d`); the rest the stay has."""


def _open_seconds(db: ViewReader, now: str) -> str:
    """The seconds from an open stay's entry to `now`, at least 0."""
    seconds = seconds_sql(db, "h.entered_at", ts_literal(now))
    return f"GREATEST({seconds}, 0.0)" if is_postgres(db) else f"MAX({seconds}, 0.0)"


def stays_query(db: ViewReader, s: ReportSlice) -> ItemQuery:
    """Every stay that began in the period, how it ended and how long it lasted (to `now`
    for the current one). Stage names and order are the pipelines' now (archived ones too).

    The stay carries what its folds need (how it ended, how long, the deal's status), so a
    fold reads `deal_stage_history` and the two stages' positions alone; names (the deal's
    title, the stage's, the manager's) are subqueries only a drill-down evaluates or labels
    looked up per grouped row, and the deals view is joined only when the slice asks for
    the deal's source or client.
    """
    c = STAY_SLICE.conditions(REPORT_NAME, s)
    deal_join = (
        " JOIN deals d ON d.id = h.deal_id"
        if any(getattr(s, name) is not None for name in _DEAL_DIMENSIONS)
        else ""
    )
    flags = ", ".join(
        f"CASE WHEN {_OUTCOME_TESTS[name]} THEN 1 ELSE 0 END AS {name}" for name in OUTCOMES
    )
    position, stage = (
        _STAGE_LABELS[n].sql.format(stage_id="h.stage_id") for n in ("position", "stage")
    )
    sql = (
        "SELECT h.id AS stay_id, h.deal_id,"
        " (SELECT t.title FROM deals t WHERE t.id = h.deal_id) AS deal_title, h.pipeline_id,"
        # the pipeline's label through the stay's stage, already joined (win rate groups by
        # the pipeline alone: one look-up per stay, not two)
        " COALESCE((SELECT p.name FROM pipelines p WHERE p.id = st.pipeline_id), '') AS pipeline,"
        f" {position} AS position, h.stage_id, {stage} AS stage,"
        " COALESCE((SELECT ps.meaning FROM pipeline_stages ps WHERE ps.id = h.stage_id), '')"
        " AS meaning, h.manager_id,"
        f" {_MANAGER_LABEL.sql.format(manager_id='h.manager_id')} AS manager,"
        f" h.entered_at, h.left_at, 1 AS entered, {flags},"
        " CASE WHEN h.deal_status = 'won' THEN 1 ELSE 0 END AS won_later,"
        " CASE WHEN h.kind = 'won' THEN 1 ELSE 0 END AS won_entry,"
        " CASE WHEN h.kind = 'lost' THEN 1 ELSE 0 END AS lost_entry,"
        " CASE WHEN h.kind IN ('won', 'lost') THEN 1 ELSE 0 END AS closed_entry,"
        f" COALESCE(h.stay_seconds, {_open_seconds(db, s.now_ts)}) AS seconds_in_stage,"
        " CASE WHEN h.kind = 'lost' THEN COALESCE((SELECT f.name FROM pipeline_stages f"
        " WHERE f.id = h.from_stage_id), '') ELSE '' END AS lost_at_stage,"
        " CASE WHEN h.kind = 'lost' THEN COALESCE(h.reason, '') ELSE '' END AS reason,"
        " h.currency, h.amount_minor"
        " FROM deal_stage_history h"
        " LEFT JOIN pipeline_stages st ON st.id = h.stage_id"
        f" LEFT JOIN pipeline_stages ns ON ns.id = h.next_stage_id{deal_join}{c.where}"
    )
    labels = {**_STAGE_LABELS, "manager": _MANAGER_LABEL}
    return ItemQuery(sql, c.params, "entered_at, stay_id", labels=labels)


FORECAST_SLICE = deal_slice()  # the period narrows `expected_close`, a date (below)

_PROBABILITY = (
    "CASE WHEN d.status = 'won' THEN 100 WHEN d.status = 'lost' THEN 0 ELSE d.probability END"
)


def forecast_query(db: ViewReader, s: ReportSlice) -> ItemQuery:
    """Deals expected to close in the period (`expected_close` is a business date): each
    weighs its net amount by its probability (won 100 %, lost 0 %), rounded half up. The
    manager's name is a subquery only a drill-down evaluates."""
    c = FORECAST_SLICE.conditions(REPORT_NAME, s)
    c.add("d.expected_close IS NOT NULL", [])
    c.compare("d.expected_close", ">=", local_day(s.start, s.timezone) if s.start else None)
    c.compare("d.expected_close", "<", local_day(s.end, s.timezone) if s.end else None)
    sql = (
        "SELECT d.id AS deal_id, d.title AS deal_title,"
        " substr(d.expected_close, 1, 7) AS month, d.status, d.manager_id,"
        f" {_MANAGER_LABEL.sql.format(manager_id='d.manager_id')} AS manager,"
        f" {_PROBABILITY} AS probability,"
        " CASE WHEN d.probability_manual <> 0 THEN 1 ELSE 0 END AS manual, d.currency,"
        " d.net_minor AS amount_minor,"
        f" (d.net_minor * ({_PROBABILITY}) + 50) / 100 AS weighted_minor,"
        " CASE WHEN d.status = 'won' THEN d.net_minor ELSE 0 END AS won_minor,"
        " d.expected_close"
        f" FROM deals d{c.where}"
    )
    return ItemQuery(sql, c.params, "expected_close, deal_id")


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
        ItemSource("stays", "Stage stays", STAY_COLUMNS, query=stays_query),
        ItemSource("forecast", "Deals by expected close", FORECAST_COLUMNS, query=forecast_query),
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
            where="closed_entry = 1",
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
            where="lost_entry = 1",
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
