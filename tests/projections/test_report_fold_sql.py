"""The database's fold of a SQL source gives the figures the Python fold gives of its items.

A report's figures over a SQL source are folded by the database (one GROUP BY; medians and
distinct counts from each group's listed values; labels looked up after grouping) and its
drill-downs read the items with the figure's conditions added. Here the same items are folded
both ways, on SQLite and PostgreSQL, for every kind of measure, with NULLs, zeros, ties, empty
groups and any double: the figures, the totals, the item counts and every figure's drill-down
must agree.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from threadline.projections.base import parse_ts, ts
from threadline.projections.reports.frame import (
    Column,
    ItemQuery,
    ItemSource,
    Label,
    Measure,
    Report,
    ReportSlice,
    Section,
    local_day,
    local_day_sql,
    local_month,
    local_month_sql,
    run_report,
    seconds_sql,
    section_items,
    section_page,
)
from threadline.projections.sql import ViewReader
from threadline.services.runtime import Runtime

TABLE = "fold_probe"

COLUMNS = (
    Column("item_id", "Item", "id"),
    Column("team", "Team"),
    Column("kind", "Kind"),
    Column("currency", "Currency"),
    Column("amount", "Amount", "money"),
    Column("seconds", "Seconds", "seconds"),
    Column("won", "Won", "flag"),
    Column("client", "Client", "id"),
    Column("precise", "Precise", "seconds"),
    Column("team_label", "Team label"),
)

MEASURES = (
    Measure("items", "Items", "count"),
    Measure("amount", "Amount", "sum", "amount", kind="money"),
    Measure("won", "Won", "sum", "won"),
    Measure("rate", "Rate", "ratio", of=("won", "items"), kind="percent"),
    Measure("avg_seconds", "Average", "avg", "seconds", kind="seconds"),
    Measure("median_seconds", "Median", "median", "seconds", kind="seconds"),
    Measure("min_seconds", "Least", "min", "seconds", kind="seconds"),
    Measure("max_seconds", "Most", "max", "seconds", kind="seconds"),
    Measure("clients", "Clients", "distinct", "client"),
    Measure("median_precise", "Median of any double", "median", "precise", kind="seconds"),
)

TEAM_LABEL = "UPPER(COALESCE({team}, '-'))"
"""A name looked up from the team (as a report looks a client's name up from its id)."""


def _query(db: ViewReader, s: ReportSlice) -> ItemQuery:
    return ItemQuery(
        "SELECT item_id, team, kind, currency, amount, seconds, won, client, precise,"
        f" {TEAM_LABEL.format(team='team')} AS team_label FROM fold_probe",
        [],
        "item_id",
        labels={"team_label": Label(TEAM_LABEL, by=("team",))},
    )


def _read(db: ViewReader, s: ReportSlice) -> list[dict[str, Any]]:
    return db.query(
        f"SELECT *, {TEAM_LABEL.format(team='team')} AS team_label FROM {TABLE} ORDER BY item_id"
    )


def _report(sql: bool, shared: bool = False) -> Report:
    """The probe report; `shared`: its unnarrowed sections fold once, at the union of their
    keys, and are added up to each one's keys in Python (`Section.shared_fold`)."""
    source = (
        ItemSource("items", "Items", COLUMNS, query=_query)
        if sql
        else ItemSource("items", "Items", COLUMNS, _read)
    )
    narrowed: dict[str, Any] = (
        {"where": "kind = 'b'"} if sql else {"keep": lambda item: item["kind"] == "b"}
    )
    return Report(
        name="probe",
        title="Probe",
        description="",
        sources=(source,),
        sections=(
            Section(
                "by_team", "By team", "items", ("team", "currency"), MEASURES, shared_fold=shared
            ),
            Section(
                "by_kind", "Only b", "items", ("team", "kind", "currency"), MEASURES, **narrowed
            ),
            Section(
                "all", "All", "items", ("currency",), MEASURES, order="-amount", shared_fold=shared
            ),
            # grouped by the team alone in the database, the label looked up per row after
            Section(
                "labelled",
                "Labelled",
                "items",
                ("team_label", "team", "currency"),
                MEASURES,
                shared_fold=shared,
            ),
        ),
    )


ITEM = st.fixed_dictionaries(
    {
        "team": st.one_of(st.none(), st.sampled_from(["north", "south", "east"])),
        "kind": st.sampled_from(["a", "b"]),
        "amount": st.integers(min_value=-5, max_value=5) | st.integers(0, 10**12),
        "seconds": st.one_of(st.none(), st.sampled_from([0.0, 1.5, 60.0, 3600.0, 7.25])),
        "won": st.sampled_from([0, 1]),
        "client": st.one_of(st.none(), st.sampled_from(["c1", "c2", "c3"])),
        # any double: a median must read back the very number stored
        "precise": st.one_of(st.none(), st.floats(-1e15, 1e15, allow_nan=False)),
    }
)


def _load(runtime: Runtime, items: list[dict[str, Any]]) -> None:
    # The probe table is this test's own, not a view (the view-SQL boundary guards views'
    # tables): it lives in the views' database because reports read through that reader.
    probe_db = runtime.views
    with probe_db.transaction() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
        cur.execute(
            f"CREATE TABLE {TABLE} (item_id TEXT PRIMARY KEY, team TEXT, kind TEXT NOT NULL,"
            " currency TEXT NOT NULL, amount BIGINT NOT NULL, seconds DOUBLE PRECISION,"
            " won BIGINT NOT NULL, client TEXT, precise DOUBLE PRECISION)"
        )
        for n, item in enumerate(items):
            cur.execute(
                f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    f"i{n:04d}",
                    item["team"],
                    item["kind"],
                    "RUB",
                    item["amount"],
                    item["seconds"],
                    item["won"],
                    item["client"],
                    item["precise"],
                ],
            )


def _figures(result: Any) -> dict[str, Any]:
    return {
        section.section.name: (
            [(row.key, row.values, row.items) for row in section.rows],
            (section.total.values, section.total.items),
        )
        for section in result.sections
    }


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(items=st.lists(ITEM, max_size=30))
def test_the_database_folds_as_python_does(runtime: Runtime, items: list[dict[str, Any]]) -> None:
    _load(runtime, items)
    s = ReportSlice()
    in_python = run_report(runtime.views, _report(sql=False), s)
    in_sql = run_report(runtime.views, _report(sql=True), s)
    assert _figures(in_sql) == _figures(in_python)
    shared = run_report(runtime.views, _report(sql=True, shared=True), s)
    assert _figures(shared) == _figures(in_python)
    for section in in_python.sections:
        for row in section.rows:
            key = {k: "" if v is None else str(v) for k, v in row.key.items()}
            for measure in MEASURES:
                wanted = section_items(
                    runtime.views, _report(False), section.section.name, s, key, measure.name
                )[2]
                got = section_items(
                    runtime.views, _report(True), section.section.name, s, key, measure.name
                )[2]
                assert [i["item_id"] for i in got] == [i["item_id"] for i in wanted], (
                    section.section.name,
                    key,
                    measure.name,
                )


def test_a_page_of_items_is_that_slice_of_all_of_them(runtime: Runtime) -> None:
    """The screens and the API read a page (and the count) of a figure's items: the same
    items, in the same order, as the whole list cut there, for SQL and Python sources."""
    items = [
        {
            "team": ["north", "south"][n % 2],
            "kind": "ab"[n % 3 == 0],
            "amount": n,
            "seconds": None if n % 4 == 0 else float(n),
            "won": n % 2,
            "client": f"c{n % 5}",
            "precise": n / 3,
        }
        for n in range(23)
    ]
    _load(runtime, items)
    s = ReportSlice()
    for sql in (False, True):
        report = _report(sql)
        everything = section_items(
            runtime.views, report, "by_team", s, {"team": "north", "currency": "RUB"}, "avg_seconds"
        )[2]
        assert len(everything) == 6  # north: n even (12), half of them (n % 4 == 0) without seconds
        for offset in (0, 2, 5, 6, 20):
            page = section_page(
                runtime.views,
                report,
                "by_team",
                s,
                {"team": "north", "currency": "RUB"},
                "avg_seconds",
                limit=5,
                offset=offset,
            )
            assert page.total == len(everything)
            assert [i["item_id"] for i in page.items] == [
                i["item_id"] for i in everything[offset : offset + 5]
            ]


MOMENTS = st.datetimes(
    min_value=datetime(1985, 1, 1), max_value=datetime(2045, 12, 31), timezones=st.just(UTC)
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    moment=MOMENTS,
    other=MOMENTS,
    zone=st.sampled_from(["UTC", "Europe/Moscow", "Europe/Berlin", "America/New_York"]),
    bounded=st.booleans(),
)
def test_the_database_dates_and_durations_as_python_does(
    runtime: Runtime, moment: datetime, other: datetime, zone: str, bounded: bool
) -> None:
    """A business day and month in any zone (daylight saving included, a period's bounds or
    none), and the seconds between two moments, computed by the database as in Python."""
    start, end = sorted((moment, other))
    s = (
        ReportSlice(timezone=zone, start=ts(start), end=ts(end + timedelta(seconds=1)))
        if bounded
        else ReportSlice(timezone=zone)
    )
    db = runtime.views
    row = db.query_one(
        f"SELECT {local_day_sql(db, 'x.a', s)} AS day, {local_month_sql(db, 'x.a', s)} AS month,"
        f" {local_day_sql(db, 'x.b', s)} AS day_b, {seconds_sql(db, 'x.a', 'x.b')} AS seconds"
        " FROM (SELECT CAST(? AS TEXT) AS a, CAST(? AS TEXT) AS b) x",
        [ts(start), ts(end)],
    )
    assert row is not None
    assert row["day"] == local_day(ts(start), zone)
    assert row["month"] == local_month(ts(start), zone)
    assert row["day_b"] == local_day(ts(end), zone)
    assert float(row["seconds"]) == (parse_ts(ts(end)) - parse_ts(ts(start))).total_seconds()


def test_a_moment_just_before_midnight_stays_in_its_day(runtime: Runtime) -> None:
    """SQLite rounds times to the millisecond: 23:59:59.9995 must not become the next day."""
    db = runtime.views
    late = "2026-03-31T20:59:59.999900Z"  # 23:59:59.9999 in Moscow, the last of March
    s = ReportSlice(timezone="Europe/Moscow")
    row = db.query_one(
        f"SELECT {local_day_sql(db, 'x.a', s)} AS day, {local_month_sql(db, 'x.a', s)} AS month"
        " FROM (SELECT CAST(? AS TEXT) AS a) x",
        [late],
    )
    assert row == {"day": "2026-03-31", "month": "2026-03"}
