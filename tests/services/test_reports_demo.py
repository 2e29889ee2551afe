"""Every registered report over the demo: non-trivial figures, each figure equal to the sum of
the items its drill-down (and CSV) lists, and the same figures after a replay.

The per-report tests check figures worked out by hand on small data sets; this one checks
what holds for every report by construction of the frame, on the demo `make run` shows.
"""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from threadline.projections.reports.frame import (
    FigureRow,
    Measure,
    ReportResult,
    ReportSlice,
    compute_section,
    run_report,
    section_items,
)
from threadline.projections.reports.registry import REPORTS
from threadline.services.demo import seed_demo
from threadline.services.reports import items_csv
from threadline.services.runtime import Runtime

NOW = datetime.now(UTC).replace(microsecond=0)
# the ABC's class transitions compare with an earlier period: the demo's first months
OPTIONS = {
    "abc": {
        "compare_from": (NOW.date() - timedelta(days=400)).isoformat(),
        "compare_to": (NOW.date() - timedelta(days=75)).isoformat(),
    }
}


def whole_history(options: dict[str, Any]) -> ReportSlice:
    """The whole log, days counted in Moscow, open stays measured to one fixed moment."""
    return ReportSlice(now=NOW, timezone="Europe/Moscow", options=options)


def figures(result: ReportResult) -> dict[str, Any]:
    return {
        section.section.name: [(row.key, row.values) for row in section.rows]
        for section in result.sections
    }


def summed(measure: Measure, items: list[dict[str, Any]]) -> float:
    if measure.how == "count":
        return float(len(items))
    assert measure.field is not None
    return float(sum(float(item[measure.field] or 0) for item in items))


def same_figures(ours: list[FigureRow], theirs: list[FigureRow]) -> bool:
    """The same rows (by key) with the same item counts and figures; floats equal to nine
    significant digits (the database adds them up in its own order)."""

    def keyed(rows: list[FigureRow]) -> dict[tuple[Any, ...], FigureRow]:
        return {tuple(sorted((k, str(v)) for k, v in row.key.items())): row for row in rows}

    mine, other = keyed(ours), keyed(theirs)
    if mine.keys() != other.keys():
        return False
    for key, row in mine.items():
        them = other[key]
        if row.items != them.items or row.values.keys() != them.values.keys():
            return False
        for name, value in row.values.items():
            if isinstance(value, float) and isinstance(them.values[name], float):
                if not math.isclose(value, them.values[name], rel_tol=1e-9):
                    return False
            elif value != them.values[name]:
                return False
    return True


def test_every_report_is_non_trivial_sums_to_its_items_and_survives_a_replay(
    sqlite_runtime: Runtime,
) -> None:
    runtime = sqlite_runtime
    seed_demo(runtime, contacts=40)
    assert runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=60)
    before: dict[str, Any] = {}
    for report in REPORTS:
        s = whole_history(report.options_from(OPTIONS.get(report.name, {})))
        result = run_report(runtime.views, report, s)
        before[report.name] = figures(result)
        for section in result.sections:
            name = f"{report.name}.{section.section.name}"
            assert section.rows, f"{name} has no rows on the demo"
            nonzero = [
                v
                for row in section.rows
                for v in row.values.values()
                if isinstance(v, int | float) and v
            ]
            assert nonzero, f"{name} has only zero figures on the demo"
            sums = [m for m in section.section.measures if m.how in ("count", "sum")]
            for row in section.rows[:5]:
                key = {k: "" if v is None else str(v) for k, v in row.key.items()}
                for measure in sums:
                    _, source, items = section_items(
                        runtime.views, report, section.section.name, s, key, measure.name
                    )
                    assert summed(measure, items) == float(row.values[measure.name]), (
                        f"{name} {key} {measure.name}"
                    )
            # the CSV of the whole section has one row per item the section folds
            _, source, items = section_items(runtime.views, report, section.section.name, s)
            # what the run folded (in SQL; or from the items read for folding only; or
            # derived from other sections) is what Python folds of the listed items
            by_python = compute_section(section.section, items, s)
            assert same_figures(by_python.rows, section.rows), name
            assert same_figures([by_python.total], [section.total]), name
            # and a run of this section alone (a page of it) folds the same figures
            alone = run_report(runtime.views, report.only(section.section.name), s).sections
            assert same_figures(alone[0].rows, section.rows), name
            assert same_figures([alone[0].total], [section.total]), name
            rows = list(
                csv.DictReader(io.StringIO(items_csv(source.columns, items).lstrip("\ufeff")))
            )
            assert len(rows) == section.total.items
    runtime.rebuild_views()
    assert runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=60)
    for report in REPORTS:
        s = whole_history(report.options_from(OPTIONS.get(report.name, {})))
        assert figures(run_report(runtime.views, report, s)) == before[report.name], report.name
