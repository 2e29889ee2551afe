"""The reports section of the web app: every report of the registry, with no code of its own.

- `GET /reports`: the reports, each with its translated title and description.
- `GET /reports/{name}`: the slice picker (period with presets, pipeline, manager, source,
  utm campaign, channel, client group and the report's own options) and each section as an
  SVG bar chart, a table (key columns, figures formatted by kind, a totals row) and a CSV
  button. Every figure links to its drill-down. A section shows its first 50 rows (the chart
  draws those) and links to its own page for all of them.
- `GET /reports/{name}/{section}?<slice>&page=N`: one section, 200 rows a page, with next /
  previous links; the chart draws the page's rows, the totals row is over all of them.
- `GET /reports/{name}/{section}/items?<slice>&key.<column>=<value>&measure=<figure>`: the
  items behind one figure (or behind the section), 200 a page, with a CSV button for them.
- `GET /reports/{name}/{section}.csv?<slice>[&key...&measure=...]`: the same items as the
  API's CSV (`items_csv`), served with the session (the API would need a bearer token).

The query parameters are the API's (`from`, `to` as local dates, `pipeline_id`,
`manager_id`, `source`, `utm_campaign`, `channel`, `group`, option names), with one
exception a form needs: a form always sends its select, so an empty `group` means every
group and `group=__none__` asks for the clients without a group (the API's `group=`).
A slice a report cannot take, a bad date or option comes back as the page with the message
(422), never a 500. Admins, managers and auditors read reports; operators get 403.
Figures come from `run_report` and `section_items` (projections/reports/frame.py); labels
are English in the reports and translated here at render time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal, format_percent
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from threadline.domain.model.errors import InvalidInput, NotFound
from threadline.domain.model.money import Money
from threadline.projections.base import parse_ts
from threadline.projections.pipelines import pipelines
from threadline.projections.reports.frame import (
    Column,
    FigureRow,
    Item,
    Measure,
    Report,
    ReportSlice,
    Section,
    SectionResult,
    fold_row,
    run_report,
    section_items,
    section_page,
)
from threadline.projections.reports.registry import REPORTS, report_named
from threadline.projections.saved_segments import saved_segments
from threadline.projections.webreports_choices import client_groups
from threadline.services.reports import (
    SLICE_PARAMETERS,
    drill_key,
    items_csv,
    slice_request_from,
)
from threadline.services.web.deps import Forbidden, WebUser, WebUserDep
from threadline.services.web.report_charts import Bar, bar_chart

router = APIRouter(include_in_schema=False)

READER_ROLES = ("admin", "manager", "auditor")
PAGE_SIZE = 200
SHOWN = 50
"""The rows of a section the report page shows (and charts); the section's page has them all."""
MAX_PAGE = 100_000
NO_GROUP = "__none__"
CHANNELS = {
    "email": "E-mail",
    "telegram": "Telegram",
    "sms": "SMS",
    "whatsapp": "WhatsApp",
    "voice": "Calls",
    "web": "Web forms",
    "api": "API",
}
DIMENSION_LABELS = {
    "pipeline_id": "pipeline",
    "manager_id": "manager",
    "source": "source",
    "utm_campaign": "utm campaign",
    "channel": "channel",
    "group": "client group",
    "segment": "segment",
}
REF_URLS = {
    "deal": "/deals/{}",
    "contact": "/contacts/{}",
    "company": "/companies/{}",
    "conversation": "/inbox/{}",
    "payment": "/payments/{}",
    "contract": "/contracts/{}",
    "supplier_order": "/supplier-orders/{}",
}
CANNOT = re.compile(r"^the (?P<report>\S+) report cannot be sliced by (?P<dimension>\S+)$")


async def report_reader(user: WebUserDep) -> WebUser:
    if user.role not in READER_ROLES:
        raise Forbidden(user._("Reports are for administrators, managers and auditors."))
    return user


ReaderDep = Annotated[WebUser, Depends(report_reader)]


# -- the slice ----------------------------------------------------------------------------------


def _wanted_names(report: Report) -> tuple[str, ...]:
    return ("from", "to", *SLICE_PARAMETERS, *(o.name for o in report.options))


def kept_params(report: Report, params: Mapping[str, str]) -> list[tuple[str, str]]:
    """The slice's parameters as given (empty ones left out), to carry into every link."""
    return [(k, params[k].strip()) for k in _wanted_names(report) if (params.get(k) or "").strip()]


def slice_of(user: WebUser, report: Report, params: Mapping[str, str]) -> ReportSlice:
    """The slice of the page's query string (`InvalidInput` for a bad one)."""
    raw = dict(kept_params(report, params))
    if raw.get("group") == NO_GROUP:
        raw["group"] = ""
    ask = slice_request_from(raw)
    options: dict[str, str | None] = {o.name: raw.get(o.name) for o in report.options}
    return ask.build(
        report,
        user.runtime.settings.timezone,
        options,
        views=user.runtime.views,
        registry=user.runtime.app.attribute_registry(),
    )


def error_text(user: WebUser, report: Report, error: InvalidInput) -> str:
    """The refusal in the reader's language ("the funnel report cannot be sliced by group")."""
    cannot = CANNOT.match(error.message)
    if cannot:
        dimension = DIMENSION_LABELS.get(cannot["dimension"], cannot["dimension"])
        return user._("The report “{report}” cannot be sliced by {dimension}.").format(
            report=user._(report.title), dimension=user._(dimension)
        )
    return f"{error.field}: {user._(error.message)}"


@dataclass(frozen=True)
class Preset:
    label: str
    start: date
    end: date
    href: str


def _month_start(day: date, back: int = 0) -> date:
    index = day.year * 12 + day.month - 1 - back
    return date(index // 12, index % 12 + 1, 1)


def _month_end(first: date) -> date:
    return _month_start(first, -1) - timedelta(days=1)


def period_presets(today: date) -> list[tuple[str, date, date]]:
    """This month, last month, this quarter, this year, and the last 12 calendar months
    (this one included), each as (label, first day, last day)."""
    this_month = _month_start(today)
    last_month = _month_start(today, 1)
    quarter = date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
    return [
        ("This month", this_month, _month_end(this_month)),
        ("Last month", last_month, _month_end(last_month)),
        ("This quarter", quarter, _month_end(_month_start(quarter, -2))),
        ("This year", date(today.year, 1, 1), date(today.year, 12, 31)),
        ("Last 12 months", _month_start(today, 11), _month_end(this_month)),
    ]


# -- formatting ---------------------------------------------------------------------------------


@dataclass
class Cell:
    text: str
    href: str | None = None
    number: bool = False


class Shows:
    """Figures and item fields as the reader's language writes them."""

    def __init__(self, user: WebUser) -> None:
        self.user = user
        self.locale = user.locale
        self._names: dict[str, str] | None = None

    @property
    def names(self) -> dict[str, str]:
        if self._names is None:
            self._names = {
                str(u["id"]): str(u["name"] or u["email"])
                for u in self.user.runtime.queries.users()
            }
        return self._names

    def seconds(self, value: float) -> str:
        """A duration as people read it: "3 d 4 h", "2 h 30 min", "45 min"."""
        _ = self.user._
        total = round(max(0.0, value))
        if 0 < total < 60:
            return _("< 1 min")
        days, rest = divmod(total, 86400)
        hours, rest = divmod(rest, 3600)
        minutes = rest // 60
        if days:
            return f"{days} {_('d')}" + (f" {hours} {_('h')}" if hours else "")
        if hours:
            return f"{hours} {_('h')}" + (f" {minutes} {_('min')}" if minutes else "")
        return f"{minutes} {_('min')}"

    def figure(self, kind: str, value: Any, currency: str | None = None) -> str:
        if value is None or value == "":
            return ""
        loc = self.locale
        try:
            if kind == "money":
                if not currency:
                    return format_decimal(int(value), locale=loc)
                amount = Money.from_minor(int(value), currency).amount
                return format_currency(amount, currency, locale=loc)
            if kind == "percent":
                return format_percent(float(value), "#,##0.#%", locale=loc)
            if kind == "seconds":
                return self.seconds(float(value))
            if kind == "month":
                year, month = str(value)[:7].split("-")
                return format_date(date(int(year), int(month), 1), "LLLL yyyy", locale=loc)
            if kind == "day":
                return format_date(date.fromisoformat(str(value)[:10]), "medium", locale=loc)
            if kind == "time":
                moment = parse_ts(str(value))
                return format_datetime(moment, "short", tzinfo=self.user.zone, locale=loc)
            if kind == "flag":
                return "✓" if value and float(value) else ""
            if kind == "count":
                return format_decimal(value, locale=loc)
            if kind == "number":
                return format_decimal(Decimal(str(value)), "#,##0.##", locale=loc)
        except (ValueError, TypeError, ArithmeticError):
            return str(value)
        return str(value)

    def field(self, column: Column, item: Mapping[str, Any]) -> Cell:
        value = item.get(column.name)
        if column.kind == "id":
            if value in (None, ""):
                return Cell("")
            text = str(value)
            if column.ref == "user":
                return Cell(self.names.get(text, text[:8]))
            link = REF_URLS.get(column.ref or "")
            return Cell(text[:8], link.format(text) if link else None)
        currency = str(item.get("currency") or "") or None
        number = column.kind in ("money", "count", "number", "seconds", "percent")
        return Cell(self.figure(column.kind, value, currency), number=number)


def shown_columns(columns: Sequence[Column]) -> tuple[list[Column], dict[str, Column]]:
    """The columns a table shows, and the text columns that carry a linked id's link.

    An id column with a `ref` whose name has a companion text column (`deal_id` beside
    `deal_title` or `deal`; `manager_id` beside `manager`) is not shown: the companion
    links to it (or, for a user, already is the name). Other id columns are shown short.
    """
    names = {c.name: c for c in columns if c.kind == "text"}
    linked: dict[str, Column] = {}
    hidden: set[str] = set()
    for column in columns:
        if column.kind != "id" or not column.ref or not column.name.endswith("_id"):
            continue
        base = column.name[:-3]
        for candidate in (base, f"{base}_title", f"{base}_name"):
            if candidate in names:
                hidden.add(column.name)
                if column.ref in REF_URLS:
                    linked[candidate] = column
                break
    return [c for c in columns if c.name not in hidden], linked


def item_cells(
    shows: Shows, columns: Sequence[Column], linked: Mapping[str, Column], item: Item
) -> list[Cell]:
    cells = []
    for column in columns:
        cell = shows.field(column, item)
        by = linked.get(column.name)
        if by is not None and item.get(by.name):
            cell.href = REF_URLS[by.ref or ""].format(item[by.name])
        cells.append(cell)
    return cells


# -- the pages ----------------------------------------------------------------------------------


def not_found(user: WebUser, message: str) -> HTMLResponse:
    return user.render("error.html", status_code=404, title="404", message=message)


def known_report(user: WebUser, name: str) -> Report | None:
    try:
        return report_named(name)
    except NotFound:
        return None


@router.get("/reports")
def reports_index(user: ReaderDep) -> HTMLResponse:
    return user.render("reports/index.html", active="reports", reports=REPORTS)


def drill_href(
    report: Report, section: Section, kept: str, key: Mapping[str, Any], measure: str | None
) -> str:
    query: list[tuple[str, str]] = [
        (f"key.{k}", "" if v is None else str(v)) for k, v in key.items()
    ]
    if measure:
        query.append(("measure", measure))
    tail = urlencode(query)
    joined = "&".join(part for part in (kept, tail) if part)
    return f"/reports/{report.name}/{section.name}/items" + (f"?{joined}" if joined else "")


@dataclass
class RowView:
    keys: list[Cell]
    figures: list[Cell]
    total: bool = False


@dataclass
class SectionView:
    name: str
    title: str
    note: str
    key_columns: list[Column]
    measures: list[Measure]
    rows: list[RowView]
    totals: list[RowView]
    chart: Any
    csv: str
    chart_label: str = ""
    empty: bool = field(default=False)
    rows_total: int = 0
    all_href: str = ""


def key_columns_of(report: Report, section: Section) -> list[Column]:
    """The key columns a table shows: its text and other columns, not the ids behind them
    (unless the key has nothing else)."""
    columns = [report.source(section.source).column(k) for k in section.group_by]
    shown = [c for c in columns if c.kind != "id"]
    return shown or columns


def figure_cells(
    shows: Shows,
    report: Report,
    section: Section,
    kept: str,
    row: FigureRow,
    key: Mapping[str, Any],
) -> list[Cell]:
    currency = str(row.key.get("currency") or key.get("currency") or "") or None
    cells = []
    for measure in (*section.measures, *section.extra):
        value = row.values.get(measure.name)
        text = shows.figure(measure.kind, value, currency)
        href = drill_href(report, section, kept, key, measure.name) if text else None
        cells.append(Cell(text, href, number=True))
    return cells


def section_view(
    user: WebUser,
    shows: Shows,
    report: Report,
    s: ReportSlice,
    kept: str,
    result: SectionResult,
    start: int,
    count: int,
) -> SectionView:
    """The section's table and chart of `count` of its rows from `start` (the totals over
    all of them, per currency when there are several)."""
    _ = user._
    section, total = result.section, result.total
    rows = result.rows[start : start + count]
    keys = key_columns_of(report, section)
    views = [
        RowView(
            keys=[shows.field(c, r.key) for c in keys],
            figures=figure_cells(shows, report, section, kept, r, r.key),
        )
        for r in rows
    ]
    totals = [RowView(keys=[Cell(_("Total"))], figures=[], total=True)]
    totals[0].figures = figure_cells(shows, report, section, kept, total, {})
    has_money = any(m.kind == "money" for m in (*section.measures, *section.extra))
    currencies = sorted({str(r.key.get("currency") or "") for r in result.rows})
    if has_money and len(currencies) > 1:
        # currencies are never added together: one totals row per currency
        totals = currency_totals(user, shows, report, s, kept, section, currencies)
    bars = []
    if section.chart:
        measure = section.measure(section.chart)
        for r, view in zip(rows, views, strict=True):
            value = r.values.get(measure.name)
            if value is None:
                continue
            label = " · ".join(c.text for c in view.keys if c.text) or "—"
            currency = str(r.key.get("currency") or "") or None
            bars.append(
                Bar(
                    label=label,
                    value=float(value),
                    shown=shows.figure(measure.kind, value, currency),
                    href=drill_href(report, section, kept, r.key, measure.name),
                )
            )
    chart_label = _(section.measure(section.chart).label) if section.chart else ""
    csv = f"/reports/{report.name}/{section.name}.csv" + (f"?{kept}" if kept else "")
    all_href = f"/reports/{report.name}/{section.name}" + (f"?{kept}" if kept else "")
    return SectionView(
        name=section.name,
        title=_(section.title),
        note=_(section.note) if section.note else "",
        key_columns=keys,
        measures=[*section.measures, *section.extra],
        rows=views,
        totals=totals,
        chart=bar_chart(bars, f"{_(section.title)}: {chart_label}"),
        csv=csv,
        chart_label=chart_label,
        empty=not result.rows,
        rows_total=len(result.rows),
        all_href=all_href,
    )


def currency_totals(
    user: WebUser,
    shows: Shows,
    report: Report,
    s: ReportSlice,
    kept: str,
    section: Section,
    currencies: list[str],
) -> list[RowView]:
    """The totals of a section with several currencies, folded per currency from its items."""
    _sec, _source, items = section_items(user.runtime.views, report, section.name, s)
    totals = []
    for code in currencies:
        mine = [i for i in items if str(i.get("currency") or "") == code]
        row = fold_row(section, {"currency": code}, mine)
        totals.append(
            RowView(
                keys=[Cell(f"{user._('Total')}, {code}")],
                figures=figure_cells(shows, report, section, kept, row, {"currency": code}),
                total=True,
            )
        )
    return totals


def picker(user: WebUser, report: Report, params: Mapping[str, str]) -> dict[str, Any]:
    """What the slice form offers, and what is picked now."""
    views = user.runtime.views
    today = datetime.now(UTC).astimezone(ZoneInfo(user.runtime.settings.timezone)).date()
    base = [(k, v) for k, v in kept_params(report, params) if k not in ("from", "to")]
    presets = []
    for label, start, end in period_presets(today):
        query = urlencode([*base, ("from", start.isoformat()), ("to", end.isoformat())])
        presets.append(Preset(user._(label), start, end, f"/reports/{report.name}?{query}"))
    groups = client_groups(views)
    users = sorted(
        ((str(u["id"]), str(u["name"] or u["email"])) for u in user.runtime.queries.users()),
        key=lambda pair: pair[1].casefold(),
    )
    channel = (params.get("channel") or "").strip()
    channels = dict(CHANNELS)
    if channel and channel not in channels:
        channels[channel] = channel
    return {
        "values": {k: (params.get(k) or "").strip() for k in _wanted_names(report)},
        "presets": presets,
        "pipelines": [(p.id, p.name, p.archived) for p in pipelines(views, include_archived=True)],
        "users": users,
        "channels": channels,
        "groups": groups,
        "segments": [(s.id, s.name) for s in saved_segments(views)],
        "no_group": NO_GROUP,
        "options": report.options,
    }


@router.get("/reports/{name}")
def report_page(name: str, request: Request, user: ReaderDep) -> HTMLResponse:
    report = known_report(user, name)
    if report is None:
        return not_found(user, user._("There is no such report."))
    params = request.query_params
    kept = urlencode(kept_params(report, params))
    form = picker(user, report, params)
    error = ""
    sections: list[SectionView] = []
    try:
        s = slice_of(user, report, params)
        result = run_report(user.runtime.views, report, s)
        shows = Shows(user)
        sections = [
            section_view(user, shows, report, s, kept, r, 0, SHOWN) for r in result.sections
        ]
    except InvalidInput as refused:
        error = error_text(user, report, refused)
    return user.render(
        "reports/report.html",
        status_code=422 if error else 200,
        active="reports",
        report=report,
        form=form,
        error=error,
        sections=sections,
        kept=kept,
    )


def page_number(value: str) -> int:
    if not (value.isascii() and value.isdigit()):
        return 1
    return max(1, min(int(value[:8]), MAX_PAGE))


@router.get("/reports/{name}/{section}/items")
def items_page(name: str, section: str, request: Request, user: ReaderDep) -> HTMLResponse:
    report = known_report(user, name)
    if report is None:
        return not_found(user, user._("There is no such report."))
    params = request.query_params
    kept = urlencode(kept_params(report, params))
    key = drill_key(params)
    measure = (params.get("measure") or "").strip() or None
    try:
        s = slice_of(user, report, params)
        number = page_number((params.get("page") or "1").strip())
        views, offset = user.runtime.views, (number - 1) * PAGE_SIZE
        page = section_page(views, report, section, s, key, measure, limit=PAGE_SIZE, offset=offset)
        pages = max(1, (page.total + PAGE_SIZE - 1) // PAGE_SIZE)
        if number > pages:  # past the last page: show the last
            number, offset = pages, (pages - 1) * PAGE_SIZE
            page = section_page(
                views, report, section, s, key, measure, limit=PAGE_SIZE, offset=offset
            )
        found, source = page.section, page.source
        figure = found.measure(measure) if measure else None
    except InvalidInput as refused:
        back = f"/reports/{report.name}" + (f"?{kept}" if kept else "")
        return user.render(
            "reports/items.html",
            status_code=422,
            active="reports",
            report=report,
            error=error_text(user, report, refused),
            back=back,
        )
    except NotFound:
        return not_found(user, user._("There is no such section in this report."))
    shows = Shows(user)
    columns, linked = shown_columns(source.columns)
    group_columns = {c: source.column(c) for c in found.group_by}
    described = [
        (user._(group_columns[k].label), shows.field(group_columns[k], key).text or "—")
        for k in key
        if k in group_columns
    ]
    here = [(k, v) for k, v in params.items() if k.startswith("key.")]
    if measure:
        here.append(("measure", measure))
    drill_query = urlencode([*kept_params(report, params), *here])
    return user.render(
        "reports/items.html",
        active="reports",
        report=report,
        section=found,
        figure=figure,
        described=described,
        columns=columns,
        rows=[item_cells(shows, columns, linked, item) for item in page.items],
        total=page.total,
        number=number,
        pages=pages,
        page_link=f"/reports/{report.name}/{found.name}/items?{drill_query}",
        csv=f"/reports/{report.name}/{found.name}.csv" + (f"?{drill_query}" if drill_query else ""),
        back=f"/reports/{report.name}" + (f"?{kept}" if kept else ""),
        error="",
    )


@router.get("/reports/{name}/{section}.csv", response_model=None)
def items_csv_file(name: str, section: str, request: Request, user: ReaderDep) -> Response:
    report = known_report(user, name)
    if report is None:
        return not_found(user, user._("There is no such report."))
    params = request.query_params
    measure = (params.get("measure") or "").strip() or None
    try:
        s = slice_of(user, report, params)
        found, source, items = section_items(
            user.runtime.views, report, section, s, drill_key(params), measure
        )
    except InvalidInput as refused:
        kept = urlencode(kept_params(report, params))
        return user.render(
            "reports/items.html",
            status_code=422,
            active="reports",
            report=report,
            error=error_text(user, report, refused),
            back=f"/reports/{report.name}" + (f"?{kept}" if kept else ""),
        )
    except NotFound:
        return not_found(user, user._("There is no such section in this report."))
    body = items_csv(source.columns, items)
    target = f"{report.name}/{found.name}"
    user.runtime.access_log.record(user, "export", target, via="web", path=request.url.path)
    return Response(
        content=body.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{report.name}-{found.name}.csv"'},
    )


# declared after `{section}.csv`, which this path would match too
@router.get("/reports/{name}/{section}")
def section_rows_page(name: str, section: str, request: Request, user: ReaderDep) -> HTMLResponse:
    """One section of a report, all its rows `PAGE_SIZE` a page (the report page shows the
    first `SHOWN`); the chart draws the page's rows, the totals row is over all of them."""
    report = known_report(user, name)
    if report is None:
        return not_found(user, user._("There is no such report."))
    params = request.query_params
    kept = urlencode(kept_params(report, params))
    back = f"/reports/{report.name}" + (f"?{kept}" if kept else "")
    try:
        one = report.only(section)
        s = slice_of(user, report, params)
        result = run_report(user.runtime.views, one, s).sections[0]
    except InvalidInput as refused:
        return user.render(
            "reports/section.html",
            status_code=422,
            active="reports",
            report=report,
            error=error_text(user, report, refused),
            back=back,
        )
    except NotFound:
        return not_found(user, user._("There is no such section in this report."))
    pages = max(1, (len(result.rows) + PAGE_SIZE - 1) // PAGE_SIZE)
    number = min(page_number((params.get("page") or "1").strip()), pages)  # past the end: last
    start = (number - 1) * PAGE_SIZE
    view = section_view(user, Shows(user), report, s, kept, result, start, PAGE_SIZE)
    here = f"/reports/{report.name}/{result.section.name}?" + (f"{kept}&" if kept else "")
    return user.render(
        "reports/section.html",
        active="reports",
        report=report,
        section=view,
        first=start + 1,
        last=start + len(view.rows),
        number=number,
        pages=pages,
        page_link=f"{here}page=",
        back=back,
        error="",
    )
