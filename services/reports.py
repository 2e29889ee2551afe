"""Reports as the API, the web app and the CLI ask for them: the slice from request parameters,
and the CSV of a section's items.

The slice's period is given in local dates (the business's `THREADLINE_TIMEZONE`), both
inclusive; no dates means the whole history. Every other parameter is optional. The CSV is
one row per item, money in major units beside its currency, so a spreadsheet's sums of a
column equal the report's figure (minor units in the JSON).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from threadline.domain.model.attributes import AttributeRegistry
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.money import Money
from threadline.projections.queries import ContactFilter
from threadline.projections.reports.frame import (
    Column,
    Item,
    Report,
    ReportSlice,
    period_bounds,
)
from threadline.projections.saved_segments import saved_segment
from threadline.projections.segments import build_contact_filter
from threadline.projections.sql import ViewReader

SLICE_PARAMETERS = (
    "pipeline_id",
    "manager_id",
    "source",
    "utm_campaign",
    "channel",
    "group",
    "segment_id",
)
MAX_TEXT = 200


@dataclass(frozen=True)
class SliceRequest:
    """The slice as asked for, before it is checked: what a query string holds."""

    date_from: date | None = None
    date_to: date | None = None
    pipeline_id: str | None = None
    manager_id: str | None = None
    source: str | None = None
    utm_campaign: str | None = None
    channel: str | None = None
    group: str | None = None
    segment_id: str | None = None  # a saved segment: its filter narrows the report

    def build(
        self,
        report: Report,
        timezone: str,
        options: Mapping[str, str | None],
        now: datetime | None = None,
        *,
        views: ViewReader | None = None,
        registry: AttributeRegistry | None = None,
    ) -> ReportSlice:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise InvalidInput("from", "the period starts after it ends")
        start, end = period_bounds(self.date_from, self.date_to, timezone)
        for name in SLICE_PARAMETERS:
            value = getattr(self, name)
            if value is not None and len(value) > MAX_TEXT:
                raise InvalidInput(name, f"at most {MAX_TEXT} characters")
        return ReportSlice(
            start=start,
            end=end,
            pipeline_id=self.pipeline_id or None,
            manager_id=self.manager_id or None,
            source=self.source or None,
            utm_campaign=self.utm_campaign or None,
            channel=self.channel or None,
            group=self.group,  # "" is its own slice: clients without a group
            timezone=timezone,
            now=now or datetime.now(UTC),
            options=report.options_from(options),
            segment=self._segment(views, registry, now),
        )

    def _segment(
        self, views: ViewReader | None, registry: AttributeRegistry | None, now: datetime | None
    ) -> ContactFilter | None:
        """The saved segment's filter (422 on ``segment_id`` when there is no such segment)."""
        if not self.segment_id:
            return None
        if views is None:
            raise InvalidInput("segment_id", "segments cannot be read here")
        try:
            found = saved_segment(views, str(UUID(self.segment_id.strip())))
        except ValueError:
            found = None
        if found is None:
            raise InvalidInput("segment_id", f"no saved segment with id {self.segment_id[:50]}")
        return build_contact_filter(
            [("segment_id", found.id)], registry, field_prefix="segment", views=views, now=now
        )


def slice_request_from(params: Mapping[str, str]) -> SliceRequest:
    """The slice of a query string (`from`, `to` as YYYY-MM-DD and the dimensions), as the
    API's parameters name it; a date that is not one is a clear `InvalidInput`."""

    def day(name: str) -> date | None:
        text = (params.get(name) or "").strip()
        if not text:
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise InvalidInput(name, "expected a date (YYYY-MM-DD)") from None

    given = {name: params.get(name) for name in SLICE_PARAMETERS}
    return SliceRequest(date_from=day("from"), date_to=day("to"), **given)


def drill_key(params: Mapping[str, str]) -> dict[str, str]:
    """A figure's row as a query string names it: `key.<column>=<value>`."""
    return {k[4:]: v for k, v in params.items() if k.startswith("key.")}


def csv_value(column: Column, item: Item) -> str:
    value = item.get(column.name)
    if value is None:
        return ""
    if column.kind == "money":
        currency = str(item.get("currency") or "")
        return str(Money.from_minor(int(value), currency).amount) if currency else str(value)
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))
    return str(value)


def items_csv(columns: Iterable[Column], items: Iterable[Item]) -> str:
    """The items as CSV (UTF-8 with a BOM, so spreadsheets read Cyrillic): a header of the
    column names, then one row per item."""
    chosen = list(columns)
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.name for c in chosen])
    for item in items:
        writer.writerow([_safe_cell(csv_value(c, item)) for c in chosen])
    return out.getvalue()


def _safe_cell(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection): a leading =, +, - or @
    of a text that is not a number is quoted with an apostrophe."""
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text


def figure_value(kind: str, value: Any) -> Any:
    """A figure as JSON carries it: money and counts as integers, the rest as numbers."""
    if value is None:
        return None
    if kind in ("money", "count"):
        return int(value)
    if isinstance(value, float):
        return round(value, 6)
    return value
