"""How every report is computed: items read with the slice in SQL, figures folded from them.

A report is a set of *item sources* (the rows behind it: one per stage stay, deal, message,
payment...) and *sections* (tables of figures). A source reads its items with the slice
(period, pipeline, manager, source, campaign, channel, client group, segment) applied in
SQL; a section groups the items by its key columns and folds measures over each group.
Because a figure is always a fold of items, its drill-down is those items and the CSV is the
items themselves: the CSV's sums equal the figures by construction, and the same log gives
the same figures after a replay.

A source is either SQL (`ItemSource.query`: one SELECT whose columns are the items'
columns) or Python (`ItemSource.read`). The figures of a SQL source are folded by the
database (``GROUP BY`` over that SELECT, medians by window functions) and its items are read
only for a drill-down or a CSV: tens of thousands of items a month cost a report a few
milliseconds instead of building them all in Python. A drill-down runs the same SELECT with
the row's key and the figure's condition added, so a figure and its items cannot disagree.
"""

from __future__ import annotations

import os
import re
import statistics
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from threadline.domain.model.errors import InvalidInput, NotFound
from threadline.projections.base import ts
from threadline.projections.queries import ContactFilter
from threadline.projections.sql import Conditions, ViewReader

Item = dict[str, Any]

DIMENSIONS = (
    "pipeline_id",
    "manager_id",
    "source",
    "utm_campaign",
    "channel",
    "group",
    "segment",
)
"""The slices every report is asked for (besides the period); a source says which it has."""


class RunMemo:
    """What one computation of a report (a run, a drill-down) works out once and shares
    between its sources and sections (ABC classes read by several of them). Each
    `run_report` and `section_items` call starts a new one, so nothing outlives the call."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}
        self._lock = threading.RLock()  # one value may be computed from another

    def once(self, name: str, s: ReportSlice, compute: Callable[[], Any]) -> Any:
        """`compute()` the first time it is asked for `name` over this slice (a report may
        also read another period: the slice is part of the key)."""
        key = f"{name} {s!r}"  # the slice's repr leaves the memo out
        with self._lock:
            if key not in self._values:
                self._values[key] = compute()
            return self._values[key]


def _fresh(s: ReportSlice) -> ReportSlice:
    return replace(s, run=RunMemo())


@dataclass(frozen=True)
class ReportSlice:
    """What a report is narrowed to. Periods are UTC `ts` texts: `start` inclusive, `end` not.

    `timezone` is the business's zone: months and days of the figures are counted in it.
    `now` is the moment open stays and overdue tasks are measured to (fixed in tests, so a
    figure is reproducible). `options` are the report's own settings (`Report.options`).
    """

    start: str | None = None
    end: str | None = None
    pipeline_id: str | None = None
    manager_id: str | None = None
    source: str | None = None  # a channel, utm_source, utm_campaign or form
    utm_campaign: str | None = None
    channel: str | None = None
    group: str | None = None  # a client group ("" is clients without a group)
    segment: ContactFilter | None = None
    timezone: str = "UTC"
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    options: Mapping[str, Any] = field(default_factory=dict)
    run: RunMemo = field(default_factory=lambda: RunMemo(), compare=False, repr=False)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def now_ts(self) -> str:
        return ts(self.now)

    def given(self) -> dict[str, Any]:
        """The slice dimensions that narrow something (segment as a flag)."""
        values = {name: getattr(self, name) for name in DIMENSIONS}
        return {k: v for k, v in values.items() if v is not None}

    def option(self, name: str) -> Any:
        return self.options[name]


def period_bounds(
    start: date | None, end: date | None, timezone: str
) -> tuple[str | None, str | None]:
    """Local dates (both inclusive) as the `ts` bounds of a slice: [start 00:00, end+1 00:00)."""
    zone = ZoneInfo(timezone)

    def at_midnight(day: date) -> str:
        return ts(datetime.combine(day, time(), tzinfo=zone).astimezone(UTC))

    return (
        None if start is None else at_midnight(start),
        None if end is None else at_midnight(end + timedelta(days=1)),
    )


def local_month(value: str | None, timezone: str) -> str | None:
    """The business month (``2026-03``) of a `ts` text."""
    day = local_day(value, timezone)
    return None if day is None else day[:7]


def local_day(value: str | None, timezone: str) -> str | None:
    """The business day (``2026-03-07``) of a `ts` text."""
    if not value:
        return None
    # Every time zone's offset is a whole number of minutes: the minute decides the day.
    return _local_day_of_minute(value[:16], timezone)


@lru_cache(maxsize=65536)
def _local_day_of_minute(minute: str, timezone: str) -> str:
    moment = datetime.fromisoformat(minute).replace(tzinfo=UTC)
    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d")


# -- SQL that differs between SQLite and PostgreSQL ----------------------------------------------

_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
_ZONE = re.compile(r"[A-Za-z0-9_+\-/]+")


def is_postgres(db: ViewReader) -> bool:
    """Whether the views live in PostgreSQL (`ViewDatabase.postgres`; SQLite otherwise)."""
    return bool(getattr(db, "postgres", False))


def ts_literal(value: str) -> str:
    """A `ts` text as a SQL literal (checked to be one: nothing else reaches the SQL)."""
    if not _TS.fullmatch(value):
        raise ValueError(f"not a ts text: {value!r}")
    return f"'{value}'"


def seconds_sql(db: ViewReader, start: str, end: str) -> str:
    """The exact seconds from one `ts` text to another (SQL expressions), microseconds kept."""
    if is_postgres(db):
        return (
            f"CAST(EXTRACT(EPOCH FROM (CAST({end} AS TIMESTAMPTZ)"
            f" - CAST({start} AS TIMESTAMPTZ))) AS DOUBLE PRECISION)"
        )
    # julianday is a double of days (tenths of a millisecond lost) and strftime rounds to the
    # millisecond: the whole seconds of the text without its fraction, and the microsecond
    # digits of the `ts` text (always six), keep the difference exact
    return (
        f"((CAST(strftime('%s', substr({end}, 1, 19)) AS INTEGER)"
        f" - CAST(strftime('%s', substr({start}, 1, 19)) AS INTEGER))"
        f" + (CAST(substr({end}, 21, 6) AS INTEGER) - CAST(substr({start}, 21, 6) AS INTEGER))"
        " / 1000000.0)"
    )


def local_month_sql(db: ViewReader, column: str, s: ReportSlice) -> str:
    """The business month (``2026-03``) of a `ts` column, in the slice's time zone."""
    return _local_text_sql(db, column, s, "YYYY-MM", "%Y-%m")


def local_day_sql(db: ViewReader, column: str, s: ReportSlice) -> str:
    """The business day (``2026-03-07``) of a `ts` column, in the slice's time zone."""
    return _local_text_sql(db, column, s, "YYYY-MM-DD", "%Y-%m-%d")


def _local_text_sql(
    db: ViewReader, column: str, s: ReportSlice, postgres_format: str, sqlite_format: str
) -> str:
    if not _ZONE.fullmatch(s.timezone):
        raise InvalidInput("timezone", f"not a time zone: {s.timezone!r}")
    if is_postgres(db):
        return (
            f"to_char(CAST({column} AS TIMESTAMPTZ) AT TIME ZONE '{s.timezone}',"
            f" '{postgres_format}')"
        )
    # SQLite knows no zones: the zone's offsets over the period, newest first (recent items,
    # the usual ones, take the first branch), each shifting the UTC time it covers
    spans = _offset_spans(s.timezone, (s.start or "")[:10], (s.end or "")[:10])
    if len(spans) == 1 and spans[0][1] == 0:  # UTC all along: the text's own day or month
        return f"substr({column}, 1, {len(datetime(2000, 1, 1).strftime(sqlite_format))})"
    shifted = [
        (since, f"strftime('{sqlite_format}', substr({column}, 1, 19), '{minutes:+d} minutes')")
        for since, minutes in reversed(spans)
    ]
    if len(shifted) == 1:
        return shifted[0][1]
    branches = " ".join(
        f"WHEN {column} >= {ts_literal(since)} THEN {expression}"
        for since, expression in shifted[:-1]
    )
    return f"(CASE {branches} ELSE {shifted[-1][1]} END)"


@lru_cache(maxsize=256)
def _offset_spans(timezone: str, first_day: str, last_day: str) -> tuple[tuple[str, int], ...]:
    """The zone's UTC offsets (minutes) between two days (``""``: 1970 / 2100), as the
    moment each begins (`ts` text) and its offset, the first from the start."""
    zone = ZoneInfo(timezone)
    start = datetime.fromisoformat(first_day or "1970-01-01").replace(tzinfo=UTC)
    end = datetime.fromisoformat(last_day or "2100-01-01").replace(tzinfo=UTC)
    start, end = start - timedelta(days=2), end + timedelta(days=2)

    def offset(moment: datetime) -> int:
        delta = moment.astimezone(zone).utcoffset()
        return int(delta.total_seconds() // 60) if delta else 0

    spans = [(ts(start), offset(start))]
    moment = start
    while moment < end:
        following = moment + timedelta(days=1)
        if offset(following) != spans[-1][1]:
            low, high = moment, following  # the change lies in (low, high]: to the minute
            while high - low > timedelta(minutes=1):
                middle = low + (high - low) / 2
                if offset(middle) == spans[-1][1]:
                    low = middle
                else:
                    high = middle
            high = high.replace(second=0, microsecond=0)
            spans.append((ts(high), offset(high)))
        moment = following
    return tuple(spans)


@dataclass(frozen=True)
class SliceColumns:
    """The SQL expressions of one item source that the slice narrows (None: it has none).

    `source` is every column the `source` slice may equal (the first-touch channel, the
    utm source and campaign, the form), as `GET /api/deals?source=` matches deals. The
    client group is read through `company_id` from the companies view; a segment through
    `contact_id` from the contact cards.
    """

    period: str | None = None
    pipeline_id: str | None = None
    manager_id: str | None = None
    source: tuple[str, ...] = ()
    utm_campaign: str | None = None
    channel: str | None = None
    company_id: str | None = None
    contact_id: str | None = None

    def conditions(self, report: str, s: ReportSlice, period: bool = True) -> Conditions:
        """The WHERE of the slice; a dimension the source lacks is a clear 422, not ignored."""
        c = Conditions()
        if period and self.period is not None:
            c.compare(self.period, ">=", s.start)
            c.compare(self.period, "<", s.end)
        for name, column in (
            ("pipeline_id", self.pipeline_id),
            ("manager_id", self.manager_id),
            ("utm_campaign", self.utm_campaign),
            ("channel", self.channel),
        ):
            value = getattr(s, name)
            if value is None:
                continue
            if column is None:
                raise _cannot(report, name)
            c.compare(column, "=", value)
        if s.source is not None:
            if not self.source:
                raise _cannot(report, "source")
            c.add(
                "(" + " OR ".join(f"{col} = ?" for col in self.source) + ")",
                [s.source] * len(self.source),
            )
        if s.group is not None:
            if self.company_id is None:
                raise _cannot(report, "group")
            if s.group == "":
                c.add(
                    f"({self.company_id} IS NULL OR NOT EXISTS (SELECT 1 FROM companies g"
                    f" WHERE g.id = {self.company_id} AND g.client_group <> ''))",
                    [],
                )
            else:
                c.add(
                    f"EXISTS (SELECT 1 FROM companies g WHERE g.id = {self.company_id}"
                    " AND g.client_group = ?)",
                    [s.group],
                )
        if s.segment is not None:
            if self.contact_id is None:
                raise _cannot(report, "segment")
            where, params = s.segment.where()
            c.add(f"{self.contact_id} IN (SELECT c.id FROM contacts c WHERE {where})", params)
        return c


DEAL_SOURCE = ("d.source_channel", "d.source_utm_source", "d.source_utm_campaign", "d.source_form")
"""The columns a deal's `source` slice may equal (the `deals` view as `d`)."""


def deal_slice(period: str | None = None) -> SliceColumns:
    """The slice of items that are deals (the `deals` view as `d`): the deal's pipeline,
    manager, first touch and client; `period` is the column the period narrows."""
    return SliceColumns(
        period=period,
        pipeline_id="d.pipeline_id",
        manager_id="d.manager_id",
        source=DEAL_SOURCE,
        utm_campaign="d.source_utm_campaign",
        channel="d.source_channel",
        company_id="d.company_id",
        contact_id="d.contact_id",
    )


def _cannot(report: str, dimension: str) -> InvalidInput:
    return InvalidInput(dimension, f"the {report} report cannot be sliced by {dimension}")


# -- what a report is made of -----------------------------------------------------------------

COLUMN_KINDS = frozenset(
    {
        "text",  # a label
        "id",  # an identifier; `ref` says of what, so screens can link it
        "money",  # integer minor units of the item's `currency` column
        "count",  # an integer
        "number",  # a decimal number
        "flag",  # 0 or 1: summed, it counts the items where it holds
        "seconds",  # a duration in seconds
        "percent",  # a share 0..1
        "month",  # a business month, 2026-03
        "day",  # a business day, 2026-03-07
        "time",  # a `ts` text
    }
)


@dataclass(frozen=True)
class Column:
    """One field of an item (and of the CSV). `label` is English; the web app translates it."""

    name: str
    label: str
    kind: str = "text"
    ref: str | None = None  # deal, contact, company, conversation, message, payment, user, ...

    def __post_init__(self) -> None:
        if self.kind not in COLUMN_KINDS:
            raise ValueError(f"column {self.name}: unknown kind {self.kind}")


@dataclass(frozen=True)
class ItemQuery:
    """The items of a SQL source: a SELECT whose output columns are the source's columns
    (every one named, NULL where a value is not set), and the order its items are listed in
    (an ORDER BY over those columns)."""

    sql: str
    params: Sequence[Any]
    order: str


@dataclass(frozen=True)
class ItemSource:
    """The rows behind a report, read with the slice applied in SQL.

    Either `query` (the items as one SELECT: the database folds the figures) or `read`
    (plain dicts built in Python, for items that need more than SQL: a business-hours
    clock, a class computed from the whole table).
    """

    name: str
    label: str
    columns: tuple[Column, ...]
    read: Callable[[ViewReader, ReportSlice], list[Item]] | None = None
    query: Callable[[ViewReader, ReportSlice], ItemQuery] | None = None

    def __post_init__(self) -> None:
        if (self.read is None) == (self.query is None):
            raise ValueError(f"source {self.name}: give exactly one of read and query")
        for column in self.columns:
            if not _IDENTIFIER.fullmatch(column.name):
                raise ValueError(f"source {self.name}: column {column.name!r} is not a name")

    def items(self, db: ViewReader, s: ReportSlice) -> list[Item]:
        if self.read is not None:
            return self.read(db, s)
        assert self.query is not None
        q = self.query(db, s)
        return db.query(f"SELECT * FROM ({q.sql}) i ORDER BY {q.order}", q.params)

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")

MEASURE_HOWS = frozenset({"count", "sum", "avg", "median", "ratio", "distinct", "min", "max"})


@dataclass(frozen=True)
class Measure:
    """One figure of a section row, folded from the row's items.

    - ``count``: the items; its drill-down is all of them.
    - ``sum`` of `field`: its drill-down is the items where the field is not zero, so a sum
      of a 0/1 flag ("won") drills to the items where it holds.
    - ``avg`` / ``median`` / ``min`` / ``max`` of `field`, over the items where it is set.
    - ``distinct`` values of `field` (clients, deals) among the items.
    - ``ratio``: measure `of[0]` over measure `of[1]` of the same row (None when that is 0);
      its drill-down is the numerator's.
    """

    name: str
    label: str
    how: str
    field: str | None = None
    of: tuple[str, str] | None = None
    kind: str = "count"  # the output's column kind (money needs `currency` in the key)

    def __post_init__(self) -> None:
        if self.how not in MEASURE_HOWS:
            raise ValueError(f"measure {self.name}: unknown how {self.how}")
        if self.how == "ratio" and self.of is None:
            raise ValueError(f"measure {self.name}: a ratio needs `of`")
        if self.how not in ("count", "ratio") and self.field is None:
            raise ValueError(f"measure {self.name}: {self.how} needs a field")


Finish = Callable[[list["FigureRow"], ReportSlice], list["FigureRow"]]


@dataclass(frozen=True)
class Section:
    """A table of figures: the source's items grouped by `group_by`, `measures` over each.

    `keep` narrows the items the section folds (and drills into, and exports) of a Python
    source, `where` (a SQL condition over the item columns) those of a SQL source; `finish`
    adds figures that need the whole table (shares, cumulative shares, classes) and may
    re-order it; `chart` names the measure the screens draw as bars; `limit` keeps the
    first rows after ordering (`order`: a measure name, "-" first for descending; or the
    key).
    """

    name: str
    title: str
    source: str
    group_by: tuple[str, ...]
    measures: tuple[Measure, ...]
    chart: str | None = None
    order: str | None = None
    keep: Callable[[Item], bool] | None = None
    where: str | None = None
    finish: Finish | None = None
    extra: tuple[Measure, ...] = ()  # figures `finish` adds (label and kind for the screens)
    limit: int | None = None
    note: str = ""

    def measure(self, name: str) -> Measure:
        for measure in (*self.measures, *self.extra):
            if measure.name == name:
                return measure
        raise InvalidInput("measure", f"the section {self.name} has no figure {name}")


@dataclass(frozen=True)
class ReportOption:
    """A report's own setting, given as a query parameter of that name."""

    name: str
    label: str
    kind: str  # int, percent, date
    default: Any
    minimum: float | None = None
    maximum: float | None = None

    def parse(self, raw: str | None) -> Any:
        if raw is None or raw == "":
            return self.default
        try:
            if self.kind == "date":
                return date.fromisoformat(raw)
            value = float(raw) if self.kind == "percent" else int(raw)
        except ValueError:
            raise InvalidInput(self.name, f"not a {self.kind}: {raw!r}") from None
        if (self.minimum is not None and value < self.minimum) or (
            self.maximum is not None and value > self.maximum
        ):
            raise InvalidInput(self.name, f"must be between {self.minimum:g} and {self.maximum:g}")
        return value


Enrich = Callable[[dict[str, list[Item]], ReportSlice, ViewReader], None]


@dataclass(frozen=True)
class Report:
    """A named report: its sources, its sections and its options.

    `enrich` runs after the sources are read and before the sections fold them: it may add
    fields that depend on other items (a client's ABC class on each of its deals).
    """

    name: str
    title: str
    description: str
    sources: tuple[ItemSource, ...]
    sections: tuple[Section, ...]
    options: tuple[ReportOption, ...] = ()
    enrich: Enrich | None = None

    def __post_init__(self) -> None:
        names = {source.name for source in self.sources}
        for section in self.sections:
            if section.source not in names:
                raise ValueError(f"{self.name}.{section.name}: unknown source {section.source}")
            source = self.source(section.source)
            if source.query is not None and section.keep is not None:
                raise ValueError(f"{self.name}.{section.name}: a SQL source narrows by `where`")
            if source.read is not None and section.where is not None:
                raise ValueError(f"{self.name}.{section.name}: a Python source narrows by `keep`")
            known = {column.name for column in source.columns}
            for key in section.group_by:
                if key not in known:
                    raise ValueError(f"{self.name}.{section.name}: unknown key {key}")
            for measure in section.measures:
                if measure.field is not None and measure.field not in known:
                    raise ValueError(f"{self.name}.{section.name}: unknown field {measure.field}")
                if measure.kind == "money" and "currency" not in section.group_by:
                    raise ValueError(
                        f"{self.name}.{section.name}.{measure.name}: money needs the currency"
                        " in the key (currencies are never added together)"
                    )

    def source(self, name: str) -> ItemSource:
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(name)

    def section(self, name: str) -> Section:
        for section in self.sections:
            if section.name == name:
                return section
        raise NotFound(f"{self.name} report section", name)

    def options_from(self, raw: Mapping[str, str | None]) -> dict[str, Any]:
        return {option.name: option.parse(raw.get(option.name)) for option in self.options}


# -- computing --------------------------------------------------------------------------------


@dataclass
class FigureRow:
    """One row of a section: its key values and its figures (money in minor units)."""

    key: dict[str, Any]
    values: dict[str, Any]
    items: int


@dataclass
class SectionResult:
    section: Section
    rows: list[FigureRow]
    total: FigureRow


@dataclass
class ReportResult:
    report: Report
    slice: ReportSlice
    sections: list[SectionResult]


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


def fold(measure: Measure, items: Sequence[Item], done: Mapping[str, Any]) -> Any:
    """One measure over one group's items (`done`: the row's measures folded so far)."""
    how = measure.how
    if how == "count":
        return len(items)
    if how == "ratio":
        assert measure.of is not None
        top, bottom = done.get(measure.of[0]), done.get(measure.of[1])
        if not bottom or top is None:
            return None
        return float(top) / float(bottom)
    assert measure.field is not None
    name = measure.field
    if how == "distinct":
        return len({item[name] for item in items if item.get(name) is not None})
    if how == "sum":  # the common figure: a plain loop over numbers, the rarer texts converted
        total: float = 0
        for item in items:
            value = item.get(name)
            if value:
                total += value if value.__class__ is not str else float(value)
        return int(total) if measure.kind in ("money", "count") else total
    values = [v for v in (_number(item.get(name)) for item in items) if v is not None]
    if not values:
        return None
    if how == "avg":
        return sum(values) / len(values)
    if how == "median":
        return float(statistics.median(values))
    if how == "min":
        return min(values)
    return max(values)


def fold_row(section: Section, key: dict[str, Any], items: Sequence[Item]) -> FigureRow:
    values: dict[str, Any] = {}
    for measure in section.measures:
        values[measure.name] = fold(measure, items, values)
    return FigureRow(key=key, values=values, items=len(items))


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (1, "")
    return (0, value if isinstance(value, int | float) else str(value))


def compute_section(section: Section, items: list[Item], s: ReportSlice) -> SectionResult:
    """A section of a Python source: its items grouped and folded here."""
    kept = [item for item in items if section.keep is None or section.keep(item)]
    groups: dict[tuple[Any, ...], list[Item]] = {}
    for item in kept:
        groups.setdefault(tuple(item.get(k) for k in section.group_by), []).append(item)
    rows = [
        fold_row(section, dict(zip(section.group_by, key, strict=True)), members)
        for key, members in groups.items()
    ]
    return _arranged(section, rows, fold_row(section, {}, kept), s)


def _arranged(
    section: Section, rows: list[FigureRow], total: FigureRow, s: ReportSlice
) -> SectionResult:
    """The rows in the section's order, finished and limited."""
    rows.sort(key=lambda r: tuple(_sort_key(r.key[k]) for k in section.group_by))
    if section.order:
        name = section.order.lstrip("-")
        descending = section.order.startswith("-")
        present = [r for r in rows if r.values.get(name) is not None]
        absent = [r for r in rows if r.values.get(name) is None]
        present.sort(key=lambda r: r.values[name], reverse=descending)
        rows = present + absent
    if section.finish is not None:
        rows = section.finish(rows, s)
    if section.limit is not None:
        rows = rows[: section.limit]
    return SectionResult(section=section, rows=rows, total=total)


def read_items(db: ViewReader, report: Report, s: ReportSlice) -> dict[str, list[Item]]:
    """The items of the report's Python sources (enriched); SQL sources are folded in SQL."""
    items = {source.name: source.items(db, s) for source in report.sources if source.read}
    if report.enrich is not None:
        report.enrich(items, s, db)
    return items


def run_report(db: ViewReader, report: Report, s: ReportSlice) -> ReportResult:
    """Every section of the report over the slice.

    The sections of SQL sources run side by side on the shared folding threads (the
    database works while Python waits: sqlite3 and psycopg release the GIL during a
    query), the Python ones here meanwhile.
    """
    s = _fresh(s)
    items = read_items(db, report, s)
    queries = {
        source.name: source.query(db, s) for source in report.sources if source.query is not None
    }
    in_sql: dict[tuple[Any, ...], Section] = {}
    for section in report.sections:
        if section.source in queries:
            in_sql.setdefault(_fold_signature(section), section)
    folding: dict[tuple[Any, ...], Future[tuple[list[FigureRow], FigureRow]]] = {}
    # (a report run from inside a fold, by a `finish`, folds inline: no thread waits on its pool)
    inline = len(in_sql) < 2 or threading.current_thread().name.startswith(_FOLDING_NAME)
    for signature, section in in_sql.items():
        folding[signature] = (
            _done(_folded_rows(db, section, queries[section.source]))
            if inline
            else _folding_threads().submit(_folded_rows, db, section, queries[section.source])
        )
    sections = []
    for section in report.sections:
        if section.source in queries:
            rows, total = folding[_fold_signature(section)].result()
            sections.append(_arranged(section, _copied(rows), _copied([total])[0], s))
        else:
            sections.append(compute_section(section, items[section.source], s))
    return ReportResult(report=report, slice=s, sections=sections)


def _done(value: tuple[list[FigureRow], FigureRow]) -> Future[tuple[list[FigureRow], FigureRow]]:
    future: Future[tuple[list[FigureRow], FigureRow]] = Future()
    future.set_result(value)
    return future


_FOLDING_NAME = "threadline-fold"
_FOLDING: list[ThreadPoolExecutor] = []
_FOLDING_LOCK = threading.Lock()


def _folding_threads() -> ThreadPoolExecutor:
    """The threads every report's SQL folds share: as many as the machine has cores (at
    most four), so concurrent requests queue for them instead of multiplying threads and
    database connections."""
    with _FOLDING_LOCK:
        if not _FOLDING:
            workers = max(1, min(4, os.cpu_count() or 1))
            _FOLDING.append(
                ThreadPoolExecutor(max_workers=workers, thread_name_prefix=_FOLDING_NAME)
            )
        return _FOLDING[0]


# -- folding in SQL ---------------------------------------------------------------------------


def _q(name: str) -> str:
    return f'"{name}"'


def _narrowed(section: Section, query: ItemQuery, more: Sequence[str] = ()) -> str:
    """The section's items as a FROM: the source's SELECT with `where` (and `more`) applied."""
    conditions = [c for c in (section.where, *more) if c]
    where = f" WHERE {' AND '.join(f'({c})' for c in conditions)}" if conditions else ""
    return f"(SELECT * FROM ({query.sql}) i{where}) n"


def _aggregate(measure: Measure) -> str | None:
    """The SQL aggregate of a measure folded in the GROUP BY (None: folded apart)."""
    field = _q(measure.field) if measure.field else ""
    return {
        "count": "COUNT(*)",
        "sum": f"COALESCE(SUM({field}), 0)",
        "avg": f"AVG({field})",
        "distinct": f"COUNT(DISTINCT {field})",
        "min": f"MIN({field})",
        "max": f"MAX({field})",
    }.get(measure.how)


def _typed(measure: Measure, value: Any) -> Any:
    """A database's number as the Python fold gives it (PostgreSQL sums are Decimals)."""
    if value is None:
        return None
    if measure.how in ("count", "distinct") or (
        measure.how == "sum" and measure.kind in ("money", "count")
    ):
        return int(value)
    return float(value)


def _copied(rows: Sequence[FigureRow]) -> list[FigureRow]:
    """Rows a section's `finish` may change without changing another section's."""
    return [FigureRow(key=dict(r.key), values=dict(r.values), items=r.items) for r in rows]


def _fold_signature(section: Section) -> tuple[Any, ...]:
    """Sections with the same items, keys and figures fold once (ABC's revenue and profit
    rankings differ only in how `finish` ranks the same rows)."""
    return (section.source, section.where, section.group_by, section.measures)


def _folded_rows(
    db: ViewReader, section: Section, query: ItemQuery
) -> tuple[list[FigureRow], FigureRow]:
    """A section of a SQL source, folded by the database.

    One GROUP BY gives the rows; the total is added up from them (an average from hidden
    sums and counts), except a distinct count, which needs one more query over all items.
    The medians read their columns of the items once (rows and total together).
    """
    keys = [_q(k) for k in section.group_by]
    folded = [m for m in section.measures if _aggregate(m) is not None]
    columns = [f"COUNT(*) AS {_q('__items')}"] + [
        f"{_aggregate(m)} AS {_q('m_' + m.name)}" for m in folded
    ]
    for m in folded:
        if m.how == "avg":
            columns += [
                f"SUM({_q(str(m.field))}) AS {_q('s_' + m.name)}",
                f"COUNT({_q(str(m.field))}) AS {_q('n_' + m.name)}",
            ]
    source = _narrowed(section, query)
    group = f" GROUP BY {', '.join(keys)}" if keys else ""
    grouped = db.query(f"SELECT {', '.join([*keys, *columns])} FROM {source}{group}", query.params)
    if not keys:
        grouped = [row for row in grouped if row["__items"]]
    medians = _medians(db, section, query, [m for m in section.measures if m.how == "median"])
    distinct = [m for m in folded if m.how == "distinct"]
    overall: Mapping[str, Any] = {}
    if distinct and grouped:
        wanted = ", ".join(f"{_aggregate(m)} AS {_q('m_' + m.name)}" for m in distinct)
        overall = db.query(f"SELECT {wanted} FROM {source}", query.params)[0]

    def figure_row(
        values_of: Callable[[Measure], Any], key: tuple[Any, ...], items: int
    ) -> FigureRow:
        values: dict[str, Any] = {}
        for measure in section.measures:
            if measure.how == "median":
                values[measure.name] = medians[measure.name].get(key)
            elif measure.how == "ratio":
                values[measure.name] = fold(measure, (), values)
            else:
                values[measure.name] = _typed(measure, values_of(measure))
        return FigureRow(
            key=dict(zip(section.group_by, key, strict=True)) if key else {},
            values=values,
            items=items,
        )

    rows = [
        figure_row(
            lambda m, row=row: row["m_" + m.name],  # type: ignore[misc]
            tuple(row[k] for k in section.group_by),
            int(row["__items"]),
        )
        for row in grouped
    ]
    total = figure_row(
        lambda m: _total(m, grouped, overall), (), sum(int(r["__items"]) for r in grouped)
    )
    return rows, total


def _total(
    measure: Measure, grouped: Sequence[Mapping[str, Any]], overall: Mapping[str, Any]
) -> Any:
    """A measure over all of a section's items, from its folded rows."""
    name = "m_" + measure.name
    if measure.how == "distinct":
        return overall.get(name, 0)
    if measure.how in ("count", "sum"):
        return sum(row[name] or 0 for row in grouped)
    present = [row[name] for row in grouped if row[name] is not None]
    if measure.how == "min":
        return min(present, default=None)
    if measure.how == "max":
        return max(present, default=None)
    # avg: the sum of the values over their count, both kept hidden in every row
    count = sum(int(row["n_" + measure.name] or 0) for row in grouped)
    if not count:
        return None
    return float(sum(row["s_" + measure.name] or 0 for row in grouped)) / count


def _medians(
    db: ViewReader, section: Section, query: ItemQuery, measures: Sequence[Measure]
) -> dict[str, dict[tuple[Any, ...], float | None]]:
    """Each median measure's value per key, and for the whole section under the key ``()``:
    the middle value, or the mean of the two middle ones, of the items where it is set.

    One query reads the keys and the measures' columns (no other column of the items is
    computed); Python takes the middles (measured at 8,500 items: half the time of SQLite's
    window functions, which sort twice).
    """
    if not measures:
        return {}
    fields = sorted({str(m.field) for m in measures})
    keys = [_q(k) for k in section.group_by]
    source = _narrowed(section, query, [" OR ".join(f"{_q(f)} IS NOT NULL" for f in fields)])
    rows = db.query(
        f"SELECT {', '.join([*keys, *(_q(f) for f in fields)])} FROM {source}", query.params
    )
    values: dict[str, dict[tuple[Any, ...], list[float]]] = {f: {} for f in fields}
    for row in rows:
        key = tuple(row[k] for k in section.group_by)
        for name in fields:
            value = row[name]
            if value is not None:
                value = float(value)
                groups = values[name]
                groups.setdefault(key, []).append(value)
                groups.setdefault((), []).append(value)
    return {
        m.name: {
            key: float(statistics.median(group)) for key, group in values[str(m.field)].items()
        }
        for m in measures
    }


def _sql_drill(
    db: ViewReader,
    section: Section,
    source: ItemSource,
    s: ReportSlice,
    key: Mapping[str, str],
    measure_name: str | None,
) -> tuple[str, list[Any], str]:
    """The FROM of a SQL source's items behind a section or one of its figures (the
    conditions of `drill_filter`), its parameters and its order."""
    assert source.query is not None
    query = source.query(db, s)
    more = [f"COALESCE(CAST({_q(name)} AS TEXT), '') = ?" for name in key]
    measure = None if measure_name is None else section.measure(measure_name)
    while measure is not None and measure.how == "ratio":
        assert measure.of is not None
        measure = section.measure(measure.of[0])
    if (
        measure is not None
        and measure.field
        and measure.how != "count"
        and measure not in section.extra
    ):
        field = _q(measure.field)
        more.append(
            f"{field} IS NOT NULL AND {field} <> 0"
            if measure.how == "sum"
            else f"{field} IS NOT NULL"
        )
    return _narrowed(section, query, more), [*query.params, *key.values()], query.order


def _matches(item: Item, key: Mapping[str, str]) -> bool:
    for name, wanted in key.items():
        value = item.get(name)
        if ("" if value is None else str(value)) != wanted:
            return False
    return True


def drill_filter(section: Section, measure_name: str | None) -> Callable[[Item], bool]:
    """Which of a row's items a figure is made of (see `Measure`)."""
    if measure_name is None:
        return lambda item: True
    measure = section.measure(measure_name)
    if measure.how == "ratio":
        assert measure.of is not None
        return drill_filter(section, measure.of[0])
    if measure.how in ("count",) or measure.field is None or measure in section.extra:
        return lambda item: True
    name = measure.field
    if measure.how == "sum":
        return lambda item: _number(item.get(name)) not in (None, 0.0)
    return lambda item: item.get(name) is not None and item.get(name) != ""


def section_items(
    db: ViewReader,
    report: Report,
    section_name: str,
    s: ReportSlice,
    key: Mapping[str, str] | None = None,
    measure: str | None = None,
) -> tuple[Section, ItemSource, list[Item]]:
    """The items behind a section (its CSV), or behind one figure of it (its drill-down).

    `key` holds the row's key values as text (the empty text for a missing value): keys
    not in the section's `group_by` are refused, so a drill-down never silently widens.
    """
    s = _fresh(s)
    section = report.section(section_name)
    for name in key or {}:
        if name not in section.group_by:
            raise InvalidInput(name, f"the section {section.name} is not grouped by {name}")
    source = report.source(section.source)
    if source.query is not None:
        drilled, params, order = _sql_drill(db, section, source, s, key or {}, measure)
        return section, source, db.query(f"SELECT * FROM {drilled} ORDER BY {order}", params)
    items = read_items(db, report, s)[section.source]
    wanted = drill_filter(section, measure)
    chosen = [
        item
        for item in items
        if (section.keep is None or section.keep(item))
        and _matches(item, key or {})
        and wanted(item)
    ]
    return section, report.source(section.source), chosen


def with_options(s: ReportSlice, options: Mapping[str, Any]) -> ReportSlice:
    return replace(s, options=dict(options))


@dataclass
class ItemsPage:
    """One page of the items behind a section or a figure, and how many there are in all."""

    section: Section
    source: ItemSource
    items: list[Item]
    total: int


def section_page(
    db: ViewReader,
    report: Report,
    section_name: str,
    s: ReportSlice,
    key: Mapping[str, str] | None = None,
    measure: str | None = None,
    *,
    limit: int,
    offset: int = 0,
) -> ItemsPage:
    """A page of `section_items` (a drill-down's screen or API page): a SQL source counts
    its items and reads only the page."""
    s = _fresh(s)
    section = report.section(section_name)
    source = report.source(section.source)
    if source.query is None or any(name not in section.group_by for name in key or {}):
        found, source, items = section_items(db, report, section_name, s, key, measure)
        return ItemsPage(found, source, items[offset : offset + limit], len(items))
    drilled, params, order = _sql_drill(db, section, source, s, key or {}, measure)
    counted = db.query_one(f"SELECT COUNT(*) AS n FROM {drilled}", params)
    page = db.query(
        f"SELECT * FROM {drilled} ORDER BY {order} LIMIT ? OFFSET ?", [*params, limit, offset]
    )
    return ItemsPage(section, source, page, int(counted["n"]) if counted else 0)
