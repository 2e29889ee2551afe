"""Reports: each as JSON, each section's items as JSON (drill-down) and as CSV.

Every report takes the same slice (`from` / `to` as local dates, both inclusive;
`pipeline_id`, `manager_id`, `source`, `utm_campaign`, `channel`, `group`), plus its own
options under their names (listed by `GET /api/reports`). A figure's drill-down is
`.../sections/{section}/items?key.<column>=<value>&measure=<figure>` with the same slice:
the items it was folded from. The CSV is the same items, one row per item. Admins,
managers and auditors read reports; an operator gets 403.

A section may have thousands of rows (one per client): the report gives the first `rows` of
each (200 unless asked) with `rows_total`, and `.../sections/{section}?offset=&limit=` pages
through the rest. A section's totals row is always over all its rows.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from threadline.domain.model.user import Role
from threadline.projections.reports.frame import (
    Column,
    FigureRow,
    Measure,
    Report,
    ReportSlice,
    SectionResult,
    run_report,
    section_items,
    section_page,
)
from threadline.projections.reports.registry import REPORTS, report_named
from threadline.services.api.deps import Principal, RuntimeDep, require_roles
from threadline.services.api.schemas import Offset
from threadline.services.reports import SliceRequest, figure_value, items_csv
from threadline.services.runtime import Runtime

router = APIRouter(prefix="/api/reports", tags=["reports"])

ReaderDep = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.MANAGER, Role.AUDITOR))]
MAX_ITEMS = 1000
ROWS = 200
"""The rows of a section a report gives unless asked (a screen shows no more; a chart of
2,500 bars says nothing); the rest are paged by `GET .../sections/{section}`."""
MAX_ROWS = 10_000


class ColumnOut(BaseModel):
    name: str
    label: str
    kind: str
    ref: str | None = None


class MeasureOut(BaseModel):
    name: str
    label: str
    how: str
    kind: str


class SectionInfo(BaseModel):
    name: str
    title: str
    source: str
    group_by: list[str]
    measures: list[MeasureOut]
    chart: str | None
    note: str


class OptionOut(BaseModel):
    name: str
    label: str
    kind: str
    default: Any


class ReportInfo(BaseModel):
    name: str
    title: str
    description: str
    sections: list[SectionInfo]
    options: list[OptionOut]


class FigureRowOut(BaseModel):
    key: dict[str, Any] = Field(..., description="the row's key values (its group)")
    values: dict[str, Any] = Field(
        ..., description="the figures; money in integer minor units of the key's currency"
    )
    items: int = Field(..., description="how many items the row folds")


class SectionOut(BaseModel):
    name: str
    title: str
    columns: list[ColumnOut]
    measures: list[MeasureOut]
    rows: list[FigureRowOut] = Field(
        ..., description="the section's rows in its own order: the first `rows` (or the page)"
    )
    rows_total: int = Field(..., description="how many rows the section has in all")
    total: FigureRowOut = Field(..., description="the totals row, always over all the rows")
    chart: str | None


class SectionPageOut(SectionOut):
    report: str
    slice: dict[str, Any]
    offset: int = Field(..., description="how many of the section's rows come before these")
    limit: int


class ReportOut(BaseModel):
    name: str
    title: str
    slice: dict[str, Any]
    sections: list[SectionOut]


class ItemsOut(BaseModel):
    report: str
    section: str
    measure: str | None
    key: dict[str, str]
    columns: list[ColumnOut]
    items: list[dict[str, Any]]
    total: int


def _column(column: Column) -> ColumnOut:
    return ColumnOut(name=column.name, label=column.label, kind=column.kind, ref=column.ref)


def _measure(measure: Measure) -> MeasureOut:
    return MeasureOut(name=measure.name, label=measure.label, how=measure.how, kind=measure.kind)


def report_info(report: Report) -> ReportInfo:
    return ReportInfo(
        name=report.name,
        title=report.title,
        description=report.description,
        sections=[
            SectionInfo(
                name=s.name,
                title=s.title,
                source=s.source,
                group_by=list(s.group_by),
                measures=[_measure(m) for m in (*s.measures, *s.extra)],
                chart=s.chart,
                note=s.note,
            )
            for s in report.sections
        ],
        options=[
            OptionOut(name=o.name, label=o.label, kind=o.kind, default=o.default)
            for o in report.options
        ],
    )


def _key_value(value: Any) -> Any:
    """A key as JSON carries it (PostgreSQL gives a computed number as a Decimal)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _row(kinds: dict[str, str], row: FigureRow) -> dict[str, Any]:
    return {
        "key": {k: _key_value(v) for k, v in row.key.items()},
        "values": {k: figure_value(kinds.get(k, "number"), v) for k, v in row.values.items()},
        "items": row.items,
    }


def section_out(
    report: Report, result: SectionResult, limit: int, offset: int = 0
) -> dict[str, Any]:
    """A section as `SectionOut` has it, as plain JSON values, with `limit` of its rows from
    `offset`: a section may have thousands of rows (one per client), and a pydantic model per
    row cost a month's ABC report more than its SQL; only the rows sent are converted."""
    section = result.section
    source = report.source(section.source)
    measures = (*section.measures, *section.extra)
    kinds = {m.name: m.kind for m in measures}
    return {
        "name": section.name,
        "title": section.title,
        "columns": [_column(source.column(k)).model_dump() for k in section.group_by],
        "measures": [_measure(m).model_dump() for m in measures],
        "rows": [_row(kinds, r) for r in result.rows[offset : offset + limit]],
        "rows_total": len(result.rows),
        "total": _row(kinds, result.total),
        "chart": section.chart,
    }


def slice_dict(s: ReportSlice) -> dict[str, Any]:
    return {
        "start": s.start,
        "end": s.end,
        "timezone": s.timezone,
        **s.given(),
        "segment": s.segment is not None,
        "options": {k: str(v) for k, v in s.options.items()},
    }


def build_slice(
    runtime: Runtime, report: Report, request: Request, ask: SliceRequest
) -> ReportSlice:
    return ask.build(
        report,
        runtime.settings.timezone,
        dict(request.query_params),
        views=runtime.views,
        registry=runtime.app.attribute_registry(),
    )


def slice_request(
    date_from: Annotated[date | None, Query(alias="from", description="first local day")] = None,
    date_to: Annotated[date | None, Query(alias="to", description="last local day")] = None,
    pipeline_id: Annotated[str | None, Query(max_length=200)] = None,
    manager_id: Annotated[str | None, Query(max_length=200)] = None,
    source: Annotated[
        str | None, Query(max_length=200, description="a channel, utm_source, utm_campaign or form")
    ] = None,
    utm_campaign: Annotated[str | None, Query(max_length=200)] = None,
    channel: Annotated[str | None, Query(max_length=200)] = None,
    group: Annotated[
        str | None, Query(max_length=200, description="a client group; empty: clients without one")
    ] = None,
    segment_id: Annotated[
        str | None, Query(max_length=200, description="a saved segment (GET /api/segments)")
    ] = None,
) -> SliceRequest:
    return SliceRequest(
        date_from=date_from,
        date_to=date_to,
        pipeline_id=pipeline_id,
        manager_id=manager_id,
        source=source,
        utm_campaign=utm_campaign,
        channel=channel,
        group=group,
        segment_id=segment_id,
    )


SliceDep = Annotated[SliceRequest, Depends(slice_request)]


@router.get("", response_model=list[ReportInfo])
def list_reports(principal: ReaderDep) -> list[ReportInfo]:
    """Every report: its sections, their figures and the report's own options."""
    return [report_info(r) for r in REPORTS]


@router.get("/{name}", response_model=ReportOut)
async def get_report(
    name: str,
    request: Request,
    ask: SliceDep,
    runtime: RuntimeDep,
    principal: ReaderDep,
    rows: Annotated[
        int,
        Query(
            ge=1,
            le=MAX_ROWS,
            description="rows per section at most (the first, in the section's order);"
            " `rows_total` says how many there are, `.../sections/{section}` pages them",
        ),
    ] = ROWS,
) -> JSONResponse:
    """The report's figures for the slice, section by section (each its first `rows` rows)."""
    report = report_named(name)
    s = build_slice(runtime, report, request, ask)
    result = await run_in_threadpool(run_report, runtime.views, report, s)
    # built as JSON values and sent as they are (the shape is `ReportOut`, which the
    # OpenAPI document shows; validating thousands of rows again would cost more than SQL)
    return JSONResponse(
        {
            "name": report.name,
            "title": report.title,
            "slice": slice_dict(s),
            "sections": [section_out(report, r, rows) for r in result.sections],
        }
    )


@router.get("/{name}/sections/{section}", response_model=SectionPageOut)
async def get_section(
    name: str,
    section: str,
    request: Request,
    ask: SliceDep,
    runtime: RuntimeDep,
    principal: ReaderDep,
    limit: Annotated[int, Query(ge=1, le=MAX_ROWS, description="rows at most")] = ROWS,
    offset: Offset = 0,
) -> JSONResponse:
    """One section's rows, `limit` of them from `offset` in the section's order (the totals
    row over all of them): the rest of a section the report gave the first rows of."""
    report = report_named(name)
    s = build_slice(runtime, report, request, ask)
    one = report.only(section)
    result = await run_in_threadpool(run_report, runtime.views, one, s)
    return JSONResponse(
        {
            "report": report.name,
            "slice": slice_dict(s),
            **section_out(report, result.sections[0], limit, offset),
            "offset": offset,
            "limit": limit,
        }
    )


def _key_of(request: Request) -> dict[str, str]:
    return {k[4:]: v for k, v in request.query_params.items() if k.startswith("key.")}


@router.get("/{name}/sections/{section}/items", response_model=ItemsOut)
async def get_items(
    name: str,
    section: str,
    request: Request,
    ask: SliceDep,
    runtime: RuntimeDep,
    principal: ReaderDep,
    measure: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ITEMS)] = 200,
    offset: Offset = 0,
) -> ItemsOut:
    """The items behind a section, or behind one figure of it (`key.<column>` and `measure`)."""
    report = report_named(name)
    s = build_slice(runtime, report, request, ask)
    key = _key_of(request)
    page = await run_in_threadpool(
        partial(section_page, limit=limit, offset=offset),
        runtime.views,
        report,
        section,
        s,
        key,
        measure,
    )
    return ItemsOut(
        report=report.name,
        section=page.section.name,
        measure=measure,
        key=key,
        columns=[_column(c) for c in page.source.columns],
        items=page.items,
        total=page.total,
    )


@router.get(
    "/{name}/sections/{section}/items.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def get_items_csv(
    name: str,
    section: str,
    request: Request,
    ask: SliceDep,
    runtime: RuntimeDep,
    principal: ReaderDep,
    measure: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """The same items as CSV, one row per item: a column's sum is the section's figure."""
    report = report_named(name)
    s = build_slice(runtime, report, request, ask)
    found, source, items = await run_in_threadpool(
        section_items, runtime.views, report, section, s, _key_of(request), measure
    )
    body = items_csv(source.columns, items)
    target = f"{report.name}/{found.name}"
    runtime.access_log.record(principal, "export", target, via="api", path=request.url.path)
    filename = f"{report.name}-{found.name}.csv"
    return Response(
        content=body.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
