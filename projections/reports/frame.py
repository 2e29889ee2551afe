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
database in one ``GROUP BY`` per section over that SELECT (a median's or a distinct count's
values listed per group and finished in Python, no second pass; names looked up once per
folded row through `ItemQuery.labels`), and its items are read only for a drill-down or a
CSV: tens of thousands of items a month cost a report a few milliseconds instead of
building them all in Python. A drill-down runs the same SELECT with the row's key and the
figure's condition added, so a figure and its items cannot disagree.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from operator import itemgetter
from typing import Any, TypeVar
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

    def known(self, name: str, s: ReportSlice) -> Any:
        """What `once` computed for `name` over this slice so far (None: nothing yet)."""
        with self._lock:
            return self._values.get(f"{name} {s!r}")


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
    # strftime rounds to the millisecond and julianday is a double of days (tenths of a
    # millisecond lost): the whole seconds between the texts without their fractions (two
    # julian days apart, rounded: exact, and cheaper than strftime('%s')), and the
    # microsecond digits of the `ts` texts (always six), keep the difference exact
    return (
        f"(round((julianday(substr({end}, 1, 19)) - julianday(substr({start}, 1, 19)))"
        " * 86400.0)"
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
    labels: Mapping[str, Label] = field(default_factory=dict)
    """Item columns that are a function of other columns (a name of an id): a section that
    groups by a label and by every column it depends on groups by those alone and looks the
    label up once per row after (not once per item)."""


@dataclass(frozen=True)
class Label:
    """How a column of the items is looked up from others after grouping: `sql` is an
    expression in which `{column}` stands for a grouped column, and gives exactly what the
    item query's column gives for the same values (its COALESCE included)."""

    sql: str
    by: tuple[str, ...]

    def expression(self) -> str:
        return self.sql.format(**{name: f"g.{_q(name)}" for name in self.by})


FoldQuery = Callable[[ViewReader, ReportSlice, frozenset[str]], ItemQuery]
"""`ItemSource.fold`: the items a fold reads, given the item columns it needs."""


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
    fold: FoldQuery | None = None
    """The items as one fold of a report run reads them, given the columns it groups and
    measures by: the other columns may be left out. For columns that cost a pass of their own
    before the items can be selected (ABC's classes, classified over the whole period): a
    fold that does not read them does not wait for that pass. Without it, folds read `query`."""
    read_folded: Callable[[ViewReader, ReportSlice], list[Item]] | None = None
    """A `read` for a report run, whose sections only fold the items: the columns they group
    and measure by are enough (names and the listing's order may be left out)."""
    prepare: Callable[[ViewReader, ReportSlice], None] | None = None
    """Work a report run starts for a Python source before it submits its folds (and may
    wait for one): SQL the source will read, handed to the folding threads by `in_background`
    (ABC's transitions: the earlier period's figures), so the run's own thread does not
    read it serially after the folds."""

    def __post_init__(self) -> None:
        if (self.read is None) == (self.query is None):
            raise ValueError(f"source {self.name}: give exactly one of read and query")
        if self.fold is not None and self.query is None:
            raise ValueError(f"source {self.name}: a fold query needs the items' query")
        if self.read_folded is not None and self.read is None:
            raise ValueError(f"source {self.name}: a folded read needs the items' read")
        for column in self.columns:
            if not _IDENTIFIER.fullmatch(column.name):
                raise ValueError(f"source {self.name}: column {column.name!r} is not a name")

    def items(self, db: ViewReader, s: ReportSlice, folding: bool = False) -> list[Item]:
        """The items (`folding`: only to be folded, by a report run)."""
        if folding and self.read_folded is not None:
            return self.read_folded(db, s)
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
Derive = Callable[[Mapping[str, "SectionResult"]], tuple[list["FigureRow"], "FigureRow"]]


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
    shared_fold: bool = False
    """Fold once with the other sections so marked that have the same source, `where` and
    measures, at the union of their keys, and add that fold's rows up to this section's keys
    (one pass over the items and one listing of their values instead of one each; for keys
    whose combinations are few)."""
    derive: Derive | None = None
    derive_from: tuple[str, ...] = ()
    """Sections whose figures give exactly this one's (a side-by-side of their counts):
    `derive` builds its rows and total from their results, so a report run folds its items
    no second time. Its source stays its items (drill-downs, CSV, a page of this section
    alone, which folds it)."""

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
            for name in section.derive_from:
                if name not in {x.name for x in self.sections if x.derive is None}:
                    raise ValueError(f"{self.name}.{section.name}: cannot derive from {name}")
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

    def only(self, section_name: str) -> Report:
        """The report with just the one section (and the sources it may need): a page of one
        section folds no other. Python sources all stay, as `enrich` may read any of them."""
        section = self.section(section_name)
        if section.derive is not None:  # alone it folds its own items
            section = replace(section, derive=None, derive_from=())
        sources = tuple(s for s in self.sources if s.read is not None or s.name == section.source)
        return replace(self, sources=sources, sections=(section,))

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
    kind = value.__class__
    if kind is str or kind is int or kind is float or isinstance(value, int | float):
        return (0, value)
    return (0, str(value))


_PLAIN = (str, int, float, bool)


def _key_order(group_by: tuple[str, ...], rows: Sequence[FigureRow]) -> Callable[[FigureRow], Any]:
    """The sort key of rows by their key columns in order, NULLs last. Thousands of rows:
    when every key value is a plain text or number (no NULL), the values are their own key."""
    if all(
        row.key[name].__class__ in _PLAIN for row in rows for name in group_by
    ):  # one pass, cheaper than a key of pairs per row
        if len(group_by) == 1:
            (name,) = group_by
            return lambda row: row.key[name]
        pick = itemgetter(*group_by)
        return lambda row: pick(row.key)
    if len(group_by) == 1:
        (name,) = group_by
        return lambda row: _sort_key(row.key[name])
    return lambda row: [_sort_key(row.key[name]) for name in group_by]


def compute_section(section: Section, items: list[Item], s: ReportSlice) -> SectionResult:
    """A section of a Python source: its items grouped and folded here."""
    keep = section.keep
    kept = items if keep is None else [item for item in items if keep(item)]
    groups: dict[tuple[Any, ...], list[Item]] = {}
    names = section.group_by
    for item in kept:  # (a key missing from an item is None)
        groups.setdefault(tuple(map(item.get, names)), []).append(item)
    rows = [
        fold_row(section, dict(zip(section.group_by, key, strict=True)), members)
        for key, members in groups.items()
    ]
    return _arranged(section, rows, fold_row(section, {}, kept), s)


def _arranged(
    section: Section, rows: list[FigureRow], total: FigureRow, s: ReportSlice
) -> SectionResult:
    """The rows in the section's order, finished and limited."""
    rows.sort(key=_key_order(section.group_by, rows))
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


def read_items(
    db: ViewReader, report: Report, s: ReportSlice, folding: bool = False
) -> dict[str, list[Item]]:
    """The items of the report's Python sources (enriched); SQL sources are folded in SQL.
    `folding`: a report run's, which only folds them. Without `enrich`, which may read any
    source, only the sources a section folds (a page of one section reads no other)."""
    used = {section.source for section in report.sections}
    items = {
        source.name: source.items(db, s, folding)
        for source in report.sources
        if source.read and (report.enrich is not None or source.name in used)
    }
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
    queries = {source.name for source in report.sources if source.query is not None}
    in_sql: dict[tuple[Any, ...], Section] = {}
    for section in report.sections:
        if section.source in queries and section.derive is None:
            in_sql.setdefault(_fold_signature(section), section)
    folds = _folds(list(in_sql.values()))
    grouping: dict[tuple[Any, ...], Future[list[dict[str, Any]]]] = {}
    # (a report run from inside a fold, by a `finish`, folds inline: no thread waits on its pool)
    inline = len(folds) < 2 or threading.current_thread().name.startswith(_FOLDING_NAME)
    used = {section.source for section in report.sections}
    for source in report.sources:
        if source.prepare is not None and source.name in used:
            source.prepare(db, s)
    read = _FoldQueries(db, report, s)
    for fold_section in folds.values():  # each query built when its fold is submitted
        signature = _fold_signature(fold_section)
        if signature not in grouping:

            def submit(section: Section = fold_section) -> Future[list[dict[str, Any]]]:
                query = read.query(section)
                if inline:
                    return _done(_grouped(db, section, query))
                return _folding_threads().submit(_grouped, db, section, query)

            grouping[signature] = s.run.once(_fold_memo(signature), s, submit)
    items = read_items(db, report, s, folding=True)  # the Python sources meanwhile
    figures: dict[tuple[Any, ...], tuple[list[FigureRow], FigureRow]] = {}
    readers = Counter(
        _fold_signature(x) for x in report.sections if x.source in queries and x.derive is None
    )
    results: dict[str, SectionResult] = {}
    for section in report.sections:
        if section.derive is not None:
            continue
        if section.source in queries:
            signature = _fold_signature(section)
            if signature not in figures:
                by = folds[signature]
                grouped = grouping[_fold_signature(by)].result()
                if by.group_by != section.group_by:
                    grouped = _rolled_up(section, grouped)
                figures[signature] = _figure_rows(section, grouped)
            rows, total = figures[signature]
            readers[signature] -= 1
            if readers[signature]:  # a `finish` may change them: each reader but the last a copy
                rows, total = _copied(rows), _copied([total])[0]
            results[section.name] = _arranged(section, rows, total, s)
        else:
            results[section.name] = compute_section(section, items[section.source], s)
    for section in report.sections:
        if section.derive is not None:
            rows, total = section.derive({name: results[name] for name in section.derive_from})
            results[section.name] = _arranged(section, rows, total, s)
    sections = [results[section.name] for section in report.sections]
    return ReportResult(report=report, slice=s, sections=sections)


def folded(report: Report, section_name: str, s: ReportSlice) -> list[dict[str, Any]] | None:
    """The grouped rows (`_grouped`'s) of a section's fold over `s` in this report run, once
    it has been submitted (None: this run does not fold it, as a drill-down or a page of
    another section). For a source whose other columns are worked out from a section's
    figures (ABC's client classes from the clients' ranking): the items are not read twice."""
    section = report.section(section_name)
    if section.shared_fold or section.derive is not None:
        raise ValueError(f"{report.name}.{section_name}: not a fold of its own")
    future: Future[list[dict[str, Any]]] | None = s.run.known(
        _fold_memo(_fold_signature(section)), s
    )
    return None if future is None else future.result()


def in_background(s: ReportSlice, name: str, compute: Callable[[], Any]) -> Future[Any]:
    """`compute()` on the folding threads, once per run (`name` in the run memo): a future
    its reader waits for. Inline on a folding thread itself (no fold waits on its own pool)."""

    def submit() -> Future[Any]:
        if threading.current_thread().name.startswith(_FOLDING_NAME):
            return _done(compute())
        return _folding_threads().submit(compute)

    future: Future[Any] = s.run.once(name, s, submit)
    return future


def _fold_memo(signature: tuple[Any, ...]) -> str:
    """The run memo's name of a fold (its future), shared by `run_report` and `folded`."""
    return f"fold {signature!r}"


class _FoldQueries:
    """The item query each fold of a run reads: the source's own `fold` for the columns the
    fold needs, else its `query` (built once per run)."""

    def __init__(self, db: ViewReader, report: Report, s: ReportSlice) -> None:
        self.db, self.report, self.s = db, report, s
        self.built: dict[str, ItemQuery] = {}

    def query(self, section: Section) -> ItemQuery:
        source = self.report.source(section.source)
        if source.fold is not None and section.where is None:  # `where` may name any column
            return source.fold(self.db, self.s, _fold_columns(section))
        if source.name not in self.built:
            assert source.query is not None
            self.built[source.name] = source.query(self.db, self.s)
        return self.built[source.name]


def _fold_columns(section: Section) -> frozenset[str]:
    """The item columns a fold of `section` groups and measures by."""
    fields = {m.field for m in section.measures if m.field is not None}
    return frozenset({*section.group_by, *fields})


def _folds(sections: list[Section]) -> dict[tuple[Any, ...], Section]:
    """The section whose fold each section (by its signature) reads: itself, or for a
    `shared_fold` section the same section grouped by every key of its family (the marked
    sections of its source, `where` and measures)."""
    keys: dict[tuple[Any, ...], tuple[str, ...]] = {}
    for section in sections:
        if section.shared_fold:
            family = (section.source, section.where, section.measures)
            known = keys.get(family, ())
            keys[family] = known + tuple(k for k in section.group_by if k not in known)
    return {
        _fold_signature(section): (
            replace(section, group_by=keys[(section.source, section.where, section.measures)])
            if section.shared_fold
            else section
        )
        for section in sections
    }


def _done(value: Done) -> Future[Done]:
    future: Future[Done] = Future()
    future.set_result(value)
    return future


Done = TypeVar("Done")

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
        "distinct": None,  # the length of its list of values (`_grouped`): one b-tree, not two
        "min": f"MIN({field})",
        "max": f"MAX({field})",
    }.get(measure.how)


def _copied(rows: Sequence[FigureRow]) -> list[FigureRow]:
    """Rows a section's `finish` may change without changing another section's."""
    return [FigureRow(key=dict(r.key), values=dict(r.values), items=r.items) for r in rows]


def _fold_signature(section: Section) -> tuple[Any, ...]:
    """Sections with the same items, keys and figures fold once (ABC's revenue and profit
    rankings differ only in how `finish` ranks the same rows)."""
    return (section.source, section.where, section.group_by, section.measures)


def _values_sql(db: ViewReader, field: str, distinct: bool = False) -> str:
    """An aggregate listing a group's values of `field`, read back by `_values`: PostgreSQL's
    arrays; SQLite's text, each number by `quote` (the digits that read back as the same
    double; the column named once, so its expression is computed once), distinct values as a
    JSON array."""
    column = _q(field)
    if is_postgres(db):
        return (
            f"array_agg(DISTINCT {column})"
            if distinct
            else f"array_agg({column}) FILTER (WHERE {column} IS NOT NULL)"
        )
    if distinct:
        return f"json_group_array(DISTINCT {column})"
    return f"GROUP_CONCAT(quote({column}))"


def _values(value: Any, numbers: bool) -> list[Any]:
    """A group's values from `_values_sql`'s aggregate, without NULLs."""
    if value is None:
        return []
    if isinstance(value, list):  # PostgreSQL
        return [float(v) if numbers else v for v in value if v is not None]
    if numbers:
        return [float(v.strip("'")) for v in value.split(",") if v != "NULL"]
    return [v for v in json.loads(value) if v is not None]


def _grouped(db: ViewReader, section: Section, query: ItemQuery) -> list[dict[str, Any]]:
    """A section of a SQL source, folded by the database in one GROUP BY: one row per key
    with its figures, hidden sums and counts (`s_`, `n_`), and the lists of its distinct
    values (`d_`) and of its values (`v_`, for medians), read back into Python lists."""
    labels = {
        name: label
        for name, label in query.labels.items()
        if name in section.group_by and all(b in section.group_by for b in label.by)
    }
    keys = [_q(k) for k in section.group_by if k not in labels]
    folded = [
        m for m in section.measures if _aggregate(m) is not None or m.how in ("avg", "distinct")
    ]
    columns = [f"COUNT(*) AS {_q('__items')}"] + [
        f"{_aggregate(m)} AS {_q('m_' + m.name)}" for m in folded if _aggregate(m) is not None
    ]
    for m in folded:
        if m.how == "avg":  # the row's from these too: each mention of a column computes it
            columns += [
                f"SUM({_q(str(m.field))}) AS {_q('s_' + m.name)}",
                f"COUNT({_q(str(m.field))}) AS {_q('n_' + m.name)}",
            ]
    distinct_fields = sorted({str(m.field) for m in folded if m.how == "distinct"})
    median_fields = sorted({str(m.field) for m in section.measures if m.how == "median"})
    columns += [f"{_values_sql(db, f, distinct=True)} AS {_q('d_' + f)}" for f in distinct_fields]
    columns += [f"{_values_sql(db, f)} AS {_q('v_' + f)}" for f in median_fields]
    group = f" GROUP BY {', '.join(keys)}" if keys else ""
    sql = f"SELECT {', '.join([*keys, *columns])} FROM {_narrowed(section, query)}{group}"
    if labels:
        looked_up = ", ".join(
            f"{label.expression()} AS {_q(name)}" for name, label in labels.items()
        )
        sql = f"SELECT g.*, {looked_up} FROM ({sql}) g"
    grouped = db.query(sql, query.params)
    if not keys:
        grouped = [row for row in grouped if row["__items"]]
    counted = [("m_" + m.name, "d_" + str(m.field)) for m in folded if m.how == "distinct"]
    for row in grouped:
        for f in distinct_fields:
            row["d_" + f] = _values(row["d_" + f], numbers=False)
        for name, values in counted:
            row[name] = len(row[values])
        for f in median_fields:
            row["v_" + f] = _values(row["v_" + f], numbers=True)
    return grouped


def _rolled_up(section: Section, grouped: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of a fold by more keys (`_grouped`'s), added up to the section's keys."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in grouped:
        key = tuple(row[k] for k in section.group_by)
        into = merged.get(key)
        if into is None:
            merged[key] = {n: list(v) if n[:2] in ("d_", "v_") else v for n, v in row.items()}
            continue
        into["__items"] += row["__items"]
        for measure in section.measures:
            name = "m_" + measure.name
            if measure.how in ("count", "sum"):
                into[name] += row[name]
            elif measure.how in ("min", "max"):
                present = [v for v in (into[name], row[name]) if v is not None]
                into[name] = (min if measure.how == "min" else max)(present, default=None)
            elif measure.how == "avg":
                for part in ("s_", "n_"):
                    name = part + measure.name
                    into[name] = row[name] if into[name] is None else into[name] + (row[name] or 0)
        for name, value in row.items():
            if name[:2] in ("d_", "v_"):
                into[name].extend(value)
    for row in merged.values():
        for measure in section.measures:
            if measure.how == "distinct":
                row["m_" + measure.name] = len(set(row["d_" + str(measure.field)]))
    return list(merged.values())


def _figure_rows(
    section: Section, grouped: list[dict[str, Any]]
) -> tuple[list[FigureRow], FigureRow]:
    """A section's rows and total from its grouped rows (`_grouped`'s or `_rolled_up`'s).

    The total is added up from the grouped rows: an average from hidden sums and counts, a
    distinct count from each row's distinct values, a median from each row's values (the
    middles taken in Python: at 8,500 items, half the time of SQLite's window functions, and
    no second pass over the items).
    """
    distinct_fields = sorted({str(m.field) for m in section.measures if m.how == "distinct"})
    median_fields = sorted({str(m.field) for m in section.measures if m.how == "median"})
    every_distinct: dict[str, set[Any]] = {f: set() for f in distinct_fields}
    every_value: dict[str, list[float]] = {f: [] for f in median_fields}
    middles: list[dict[str, float | None]] = []
    for row in grouped:
        for f in distinct_fields:
            every_distinct[f].update(row["d_" + f])
        middle: dict[str, float | None] = {}
        for f in median_fields:
            values = row["v_" + f]
            every_value[f].extend(values)
            middle[f] = float(statistics.median(values)) if values else None
        middles.append(middle)
    overall = {f: len(values) for f, values in every_distinct.items()}
    overall_middle = {
        f: float(statistics.median(values)) if values else None for f, values in every_value.items()
    }

    # how each measure reaches its value, settled once: a section may have thousands of rows
    steps = [(m, m.name, m.how, _converter(m)) for m in section.measures]

    def figure_values(row: Mapping[str, Any], middle: Mapping[str, float | None]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for measure, name, how, convert in steps:
            if how == "median":
                values[name] = middle[str(measure.field)]
            elif how == "ratio":
                values[name] = fold(measure, (), values)
            elif how == "avg":
                values[name] = _average(measure, [row])
            else:
                value = row["m_" + name]
                values[name] = None if value is None else convert(value)
        return values

    group_by = section.group_by
    rows = [
        FigureRow(
            key={k: row[k] for k in group_by},
            values=figure_values(row, middle),
            items=int(row["__items"]),
        )
        for row, middle in zip(grouped, middles, strict=True)
    ]
    totals: dict[str, Any] = {}
    for m in section.measures:
        if m.how == "avg":  # its sum and count added up, as `figure_values` reads them
            totals["n_" + m.name] = sum(int(row["n_" + m.name] or 0) for row in grouped)
            totals["s_" + m.name] = sum(row["s_" + m.name] or 0 for row in grouped)
        elif m.how not in ("median", "ratio"):
            totals["m_" + m.name] = _total(m, grouped, overall)
    total = FigureRow(
        key={},
        values=figure_values(totals, overall_middle),
        items=sum(int(r["__items"]) for r in grouped),
    )
    return rows, total


def _converter(measure: Measure) -> Callable[[Any], Any]:
    """A database's number as the Python fold gives it (PostgreSQL sums are Decimals)."""
    if measure.how in ("count", "distinct") or (
        measure.how == "sum" and measure.kind in ("money", "count")
    ):
        return int
    return float


def _total(
    measure: Measure, grouped: Sequence[Mapping[str, Any]], distinct: Mapping[str, int]
) -> Any:
    """A measure over all of a section's items, from its folded rows (`distinct`: the number
    of distinct values of each distinct-counted field over all rows)."""
    name = "m_" + measure.name
    if measure.how == "distinct":
        return distinct.get(str(measure.field), 0)
    if measure.how in ("count", "sum"):
        return sum(row[name] or 0 for row in grouped)
    present = [row[name] for row in grouped if row[name] is not None]
    if measure.how == "min":
        return min(present, default=None)
    return max(present, default=None)


def _average(measure: Measure, grouped: Sequence[Mapping[str, Any]]) -> float | None:
    """An average over rows: the sum of the values over their count, both kept hidden in
    every row."""
    count = sum(int(row["n_" + measure.name] or 0) for row in grouped)
    if not count:
        return None
    return float(sum(row["s_" + measure.name] or 0 for row in grouped)) / count


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
