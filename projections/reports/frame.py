"""How every report is computed: items read with the slice in SQL, figures folded from them.

A report is a set of *item sources* (the rows behind it: one per stage stay, deal, message,
payment...) and *sections* (tables of figures). A source reads its items with the slice
(period, pipeline, manager, source, campaign, channel, client group, segment) applied in
SQL; a section groups the items by its key columns and folds measures over each group in
Python. Because a figure is always a fold of items, its drill-down is those items and the
CSV is the items themselves: the CSV's sums equal the figures by construction, and the same
log gives the same figures after a replay.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from threadline.domain.model.errors import InvalidInput, NotFound
from threadline.projections.base import parse_ts, ts
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


def seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (parse_ts(end) - parse_ts(start)).total_seconds()


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
class ItemSource:
    """The rows behind a report; `read` applies the slice in SQL and returns plain dicts."""

    name: str
    label: str
    columns: tuple[Column, ...]
    read: Callable[[ViewReader, ReportSlice], list[Item]]

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


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

    `keep` narrows the items the section folds (and drills into, and exports); `finish`
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
    kept = [item for item in items if section.keep is None or section.keep(item)]
    groups: dict[tuple[Any, ...], list[Item]] = {}
    for item in kept:
        groups.setdefault(tuple(item.get(k) for k in section.group_by), []).append(item)
    rows = [
        fold_row(section, dict(zip(section.group_by, key, strict=True)), members)
        for key, members in groups.items()
    ]
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
    total = fold_row(section, {}, kept)
    return SectionResult(section=section, rows=rows, total=total)


def read_items(db: ViewReader, report: Report, s: ReportSlice) -> dict[str, list[Item]]:
    items = {source.name: source.read(db, s) for source in report.sources}
    if report.enrich is not None:
        report.enrich(items, s, db)
    return items


def run_report(db: ViewReader, report: Report, s: ReportSlice) -> ReportResult:
    items = read_items(db, report, s)
    sections = [compute_section(section, items[section.source], s) for section in report.sections]
    return ReportResult(report=report, slice=s, sections=sections)


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
    section = report.section(section_name)
    for name in key or {}:
        if name not in section.group_by:
            raise InvalidInput(name, f"the section {section.name} is not grouped by {name}")
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
