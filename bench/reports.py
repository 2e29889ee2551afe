"""Reports at scale: every registered report over 1,000,000 events / 100,000 deals (issue 15).

Generates three years of a sales team's log into a fresh SQLite store (`bench/report_data.py`:
contacts and companies with client groups and utm sources, managers, deals with stage moves
back and forth, wins and losses with reasons, product lines, inbound and outbound messages on
five channels, some automatic, resolved conversations, call and meeting tasks), through the
application's own commands in large group-commit batches, with the views NOT running.

Then, the figures:

- `rebuild_views`: `runtime.rebuild_views()` over the whole log, every registered projection
  (the new report views included), in events per second;
- `api_inbox_ms`: the baseline, `GET /api/inbox?limit=50`, measured the same way in the same run;
- `report_ms` for EVERY report of `threadline.projections.reports.registry.REPORTS` (reports
  registered later are included without a change here): p50 / p99 of
  `GET /api/reports/{name}?from=&to=` over a one-month and a one-quarter period, through the
  HTTP API (FastAPI's TestClient in this process: the wall time of the call), and
  `GET /api/reports/{name}/sections/{first section}/items` (the drill-down of the first
  section's rows, the API caps it at 1,000 items) over the month. Target: p99 < 50 ms.
- `report_parts_ms` for each report and period, one call outside HTTP: its time in SQL and
  in Python, which sources are folded in SQL, and the slowest statements with their plans:
  where the time of a report that misses the target goes.

One JSON object per line on stdout; progress on stderr. Exit code 0 when the measurement
completed (a missed target included), 1 when a report call failed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

TARGET_MS = 50.0
ADMIN_TOKEN = "bench-admin"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def emit(**fields: Any) -> None:
    print(json.dumps({"bench": "reports", **fields}, ensure_ascii=False), flush=True)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "p50_ms": round(statistics.median(values), 2),
        "p99_ms": round(percentile(values, 0.99), 2),
        "max_ms": round(max(values), 2),
        "n": len(values),
    }


def timed_get(
    client: Any, path: str, repeats: int, budget: float = 20.0
) -> tuple[dict[str, Any], Any]:
    """Three warm-ups, then `repeats` timed calls (wall time of the in-process HTTP call);
    fewer (at least 20) when they would take more than `budget` seconds."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    first = None
    warm = time.perf_counter()
    for _ in range(3):
        first = client.get(path, headers=headers)
        if first.status_code != 200:
            raise RuntimeError(f"GET {path}: {first.status_code} {first.text[:300]}")
    each = (time.perf_counter() - warm) / 3
    repeats = max(min(repeats, 20), min(repeats, int(budget / max(each, 1e-6))))
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        answer = client.get(path, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:
            raise RuntimeError(f"GET {path}: {answer.status_code} {answer.text[:300]}")
    assert first is not None
    return {"path": path, **summary(times), "bytes": len(first.content)}, first


def periods(end: date) -> dict[str, tuple[date, date]]:
    """The whole month before the last whole month before `end` (the last one still fills
    with the stage moves and closes of deals opened in it), and the quarter ending with it."""
    month_end = (end.replace(day=1) - timedelta(days=1)).replace(day=1) - timedelta(days=1)
    month_start = month_end.replace(day=1)
    quarter_start = (month_start - timedelta(days=62)).replace(day=1)
    return {"month": (month_start, month_end), "quarter": (quarter_start, month_end)}


def report_parts(runtime: Any, report: Any, start: date, end: date) -> dict[str, Any]:
    """One call outside HTTP: its time in SQL and in Python, the items of its Python sources
    (SQL sources are folded by the database), and its slowest statements with their plans."""
    from dataclasses import replace

    from threadline.projections.reports.frame import ReportSlice, period_bounds, run_report

    low, high = period_bounds(start, end, "UTC")
    s = ReportSlice(start=low, end=high)
    s = replace(s, options=report.options_from({}))
    recording = RecordingReader(runtime.views)
    started = time.perf_counter()
    run_report(recording, report, s)
    total_ms = (time.perf_counter() - started) * 1000
    sql_ms = sum(q[0] for q in recording.queries)
    slowest = sorted(recording.queries, key=lambda q: -q[0])[:3]
    return {
        "total_ms": round(total_ms, 2),
        "sql_ms": round(sql_ms, 2),
        "python_ms": round(total_ms - sql_ms, 2),
        "queries": len(recording.queries),
        "sql_sources": [x.name for x in report.sources if x.query is not None],
        "python_sources": [x.name for x in report.sources if x.query is None],
        "slowest_sql": [
            {
                "ms": round(ms, 2),
                "rows": rows,
                "sql": " ".join(sql.split())[:400],
                "plan": explain(runtime.views, sql, params),
            }
            for ms, rows, sql, params in slowest
        ],
    }


class RecordingReader:
    """The views' reader, timing every query a report makes (the SQL and its rows)."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.queries: list[tuple[float, int, str, Any]] = []

    def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        started = time.perf_counter()
        rows: list[dict[str, Any]] = self.db.query(sql, params)
        self.queries.append(((time.perf_counter() - started) * 1000, len(rows), sql, params))
        return rows

    def query_one(self, sql: str, params: Any = ()) -> dict[str, Any] | None:
        started = time.perf_counter()
        row: dict[str, Any] | None = self.db.query_one(sql, params)
        self.queries.append(
            ((time.perf_counter() - started) * 1000, int(row is not None), sql, params)
        )
        return row

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


def explain(db: Any, sql: str, params: Any) -> list[str]:
    """SQLite's EXPLAIN QUERY PLAN of one query (the lines that say SCAN or SEARCH)."""
    try:
        rows = db.query("EXPLAIN QUERY PLAN " + sql, params)
    except Exception:
        try:  # PostgreSQL
            rows = db.query("EXPLAIN " + sql, params)
        except Exception as error:
            return [f"no plan: {type(error).__name__}"]
        return [str(next(iter(r.values()))) for r in rows]
    return [str(r.get("detail")) for r in rows]


def drop_schema(conninfo: str, schema: str) -> None:
    import psycopg

    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        log(f"postgres: dropped schema {schema}")
    except Exception as error:
        log(f"postgres: could not drop schema {schema}: {error!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scale", type=float, default=1.0, help="1.0: 100,000 deals (~1,000,000 events)"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=100,
        help="timed calls per path (fewer, at least 20, when they would take over --budget s)",
    )
    parser.add_argument("--budget", type=float, default=20.0, help="seconds of calls per path")
    parser.add_argument(
        "--workdir",
        help="keep the store here; a store generated there before is measured again"
        " (the views rebuilt) without generating",
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="generate and measure on PostgreSQL (e.g. postgresql://postgres@127.0.0.1:5432/test)"
        " in a fresh schema bench_<random>, dropped at the end; default: SQLite",
    )
    parser.add_argument("--only", help="comma-separated report names (default: every report)")
    parser.add_argument(
        "--reuse-views",
        action="store_true",
        help="with --workdir: keep the views built before (a view whose version changed is"
        " rebuilt when the runtime starts, the rest catch up) instead of rebuilding them all",
    )
    args = parser.parse_args(argv)

    from fastapi.testclient import TestClient
    from report_data import Generator

    from threadline.projections.reports.registry import REPORTS
    from threadline.services.api.app import create_app
    from threadline.services.cli import freeze_startup_objects
    from threadline.services.config import Settings
    from threadline.services.runtime import Runtime

    wall = time.monotonic()
    load_before = list(os.getloadavg())
    failures = 0
    with tempfile.TemporaryDirectory(prefix="threadline-reports-bench-") as temporary:
        folder = Path(args.workdir or temporary).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        database_url = (
            f"{args.postgres.split('?')[0]}?schema={schema}"
            if args.postgres
            else f"sqlite:///{folder}/t.db"
        )
        settings = Settings(database_url=database_url).with_overrides(
            admin_token=ADMIN_TOKEN, attachments_dir=str(folder / "a"), run_channels=False
        )
        runtime = Runtime(settings)  # views not started: generated first, rebuilt after
        try:
            generator = Generator(runtime, args.scale)
            if (runtime.app.recorder.max_notification_id() or 0) > 0:
                log(f"measuring the store generated before in {folder}")
            else:
                log(f"generating {generator.deals} deals' stories")
                emit(figure="generate", **generator.run())
            events = runtime.app.recorder.max_notification_id() or 0
            if not (args.reuse_views and args.workdir):
                log(f"rebuilding every view over {events} events")
                started = time.monotonic()
                runtime.rebuild_views()
                seconds = time.monotonic() - started
                emit(
                    figure="rebuild_views",
                    backend="postgres" if args.postgres else "sqlite",
                    events=events,
                    seconds=round(seconds, 1),
                    events_per_s=round(events / seconds, 1),
                    projections=len(runtime.projections),
                )
            runtime.start()
            runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=600)
            end = generator.end.date()
            spans = periods(end)
            client = TestClient(create_app(runtime))
            freeze_startup_objects()  # as `threadline serve` does before it takes requests
            log("measuring GET /api/inbox (baseline)")
            baseline, _ = timed_get(client, "/api/inbox?limit=50", args.repeats, args.budget)
            emit(figure="api_inbox_ms", events=events, **baseline)
            wanted = set(args.only.split(",")) if args.only else None
            for report in REPORTS:
                if wanted is not None and report.name not in wanted:
                    continue
                for period, (start, stop) in spans.items():
                    query = f"from={start.isoformat()}&to={stop.isoformat()}"
                    path = f"/api/reports/{report.name}?{query}"
                    log(f"measuring GET {path}")
                    try:
                        result, first = timed_get(client, path, args.repeats, args.budget)
                    except Exception as error:
                        failures += 1
                        emit(
                            figure="report_ms", report=report.name, period=period, error=str(error)
                        )
                        continue
                    rows = {
                        s["name"]: s.get("rows_total", len(s["rows"]))
                        for s in first.json()["sections"]
                    }
                    emit(
                        figure="report_ms",
                        report=report.name,
                        period=period,
                        **result,
                        rows=rows,
                        target_p99_ms=TARGET_MS,
                        met=result["p99_ms"] < TARGET_MS,
                        baseline="api_inbox_ms",
                        baseline_p50_ms=baseline["p50_ms"],
                        baseline_p99_ms=baseline["p99_ms"],
                    )
                    emit(
                        figure="report_parts_ms",
                        report=report.name,
                        period=period,
                        **report_parts(runtime, report, start, stop),
                    )
                    if period != "month" or not report.sections:
                        continue
                    section = report.sections[0].name
                    path = f"/api/reports/{report.name}/sections/{section}/items?{query}"
                    try:
                        result, first = timed_get(client, path, args.repeats, args.budget)
                    except Exception as error:
                        failures += 1
                        emit(figure="drill_ms", report=report.name, error=str(error))
                        continue
                    emit(
                        figure="drill_ms",
                        report=report.name,
                        section=section,
                        period=period,
                        **result,
                        items=first.json().get("total"),
                        target_p99_ms=TARGET_MS,
                        met=result["p99_ms"] < TARGET_MS,
                        baseline_p99_ms=baseline["p99_ms"],
                    )
            client.close()
        finally:
            runtime.close()
            if args.postgres:
                drop_schema(args.postgres.split("?")[0], schema)
    emit(
        figure="host",
        cpus=os.cpu_count(),
        loadavg_before=[round(v, 2) for v in load_before],
        loadavg_after=[round(v, 2) for v in os.getloadavg()],
        wall_seconds=round(time.monotonic() - wall, 1),
        scale=args.scale,
        backend="postgres" if args.postgres else "sqlite",
    )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
