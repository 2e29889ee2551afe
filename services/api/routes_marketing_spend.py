"""Marketing spend: what advertising from each source (and utm campaign) cost over a period.

The sources report (`GET /api/reports/sources`) spreads each entry over its days and adds
it to the acquisition cost of the source's leads. Managers and admins record, correct and
remove entries, one by one or as a CSV file; managers, admins and auditors read them.
Writes answer once the change is in the views.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from threadline.domain.commands.marketing_spend import (
    MAX_NOTE,
    MAX_SOURCE,
    SpendEntry,
    clean_spend,
)
from threadline.domain.model.errors import Conflict, InvalidInput, NotFound
from threadline.domain.model.user import Role
from threadline.projections.marketing_spend import SpendFilter, SpendRow, spend_entries, spend_entry
from threadline.services.api.deal_schemas import DecimalIn, MoneyOut
from threadline.services.api.deps import ManagerDep, Principal, RuntimeDep, require_roles
from threadline.services.api.routes_payments import IMPORT_BODY, exact_money, uploaded_bytes
from threadline.services.api.schemas import CurrencyCode
from threadline.services.marketing_spend_csv import read_spend_csv
from threadline.services.runtime import Runtime

router = APIRouter(prefix="/api", tags=["marketing spend"])

ReaderDep = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.MANAGER, Role.AUDITOR))]
MAX_LIST = 5000


class SpendIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    source: str = Field(
        ...,
        min_length=1,
        max_length=MAX_SOURCE,
        description="a utm_source, a channel or a web form's slug",
        examples=["yandex"],
    )
    utm_campaign: str = Field("", max_length=MAX_SOURCE, examples=["spring-sale"])
    from_: date = Field(..., alias="from", description="the first day paid for")
    to: date = Field(..., description="the last day paid for (inclusive)")
    amount: DecimalIn = Field(..., examples=["30000.00"])
    currency: CurrencyCode = "RUB"
    note: str = Field("", max_length=MAX_NOTE)


class SpendOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    id: str
    source: str
    utm_campaign: str
    from_: str = Field(..., alias="from")
    to: str
    days: int
    amount: MoneyOut
    note: str
    created_by: str
    created_at: str
    updated_at: str


class SpendListOut(BaseModel):
    items: list[SpendOut]
    total: int
    totals: list[MoneyOut] = Field(..., description="the entries' whole amounts, per currency")


class SpendImportOut(BaseModel):
    rows: int = Field(..., description="entries in the file")
    recorded: int = Field(..., description="entries recorded now")
    already_recorded: int = Field(..., description="entries an earlier import recorded")
    encoding: str


def spend_out(row: SpendRow) -> SpendOut:
    return SpendOut.model_validate(
        {
            "id": row.id,
            "source": row.source,
            "utm_campaign": row.utm_campaign,
            "from": row.starts_on,
            "to": row.ends_on,
            "days": row.days,
            "amount": MoneyOut.of_minor(row.amount_minor, row.currency),
            "note": row.note,
            "created_by": row.created_by,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
        }
    )


def _entry(body: SpendIn) -> SpendEntry:
    return clean_spend(
        body.source,
        body.utm_campaign,
        body.from_,
        body.to,
        exact_money(body.amount, body.currency, "amount"),
        body.note,
    )


def _found(runtime: Runtime, spend_id: UUID) -> SpendRow:
    row = spend_entry(runtime.views, str(spend_id))
    if row is None:
        raise NotFound("marketing spend entry", str(spend_id))
    return row


@router.post("/marketing-spend", response_model=SpendOut, status_code=status.HTTP_201_CREATED)
def record_spend(body: SpendIn, runtime: RuntimeDep, principal: ManagerDep) -> SpendOut:
    """Record what a source (or one of its campaigns) cost over a period."""
    committed = runtime.app.record_marketing_spend(_entry(body), principal.actor)
    runtime.wait_for_views(committed.notification_id)
    return spend_out(_found(runtime, committed.value))


@router.get("/marketing-spend", response_model=SpendListOut)
def list_spend(
    runtime: RuntimeDep,
    principal: ReaderDep,
    from_: Annotated[date | None, Query(alias="from", description="overlapping from")] = None,
    to: Annotated[date | None, Query(description="overlapping to (inclusive)")] = None,
    source: Annotated[str | None, Query(max_length=MAX_SOURCE)] = None,
    utm_campaign: Annotated[
        str | None, Query(max_length=MAX_SOURCE, description='"" : the source as a whole')
    ] = None,
) -> SpendListOut:
    """The entries (not removed) overlapping the period, earliest first."""
    if from_ and to and from_ > to:
        raise InvalidInput("from", "the period starts after it ends")
    rows = spend_entries(
        runtime.views,
        SpendFilter(first=from_, last=to, source=source or None, utm_campaign=utm_campaign),
        limit=MAX_LIST,
    )
    sums: dict[str, int] = {}
    for row in rows:
        sums[row.currency] = sums.get(row.currency, 0) + row.amount_minor
    return SpendListOut(
        items=[spend_out(r) for r in rows],
        total=len(rows),
        totals=[MoneyOut.of_minor(v, k) for k, v in sorted(sums.items())],
    )


@router.get("/marketing-spend/{spend_id}", response_model=SpendOut)
def get_spend(spend_id: UUID, runtime: RuntimeDep, principal: ReaderDep) -> SpendOut:
    row = _found(runtime, spend_id)
    if row.removed:
        raise NotFound("marketing spend entry", str(spend_id))
    return spend_out(row)


@router.put("/marketing-spend/{spend_id}", response_model=SpendOut)
def correct_spend(
    spend_id: UUID, body: SpendIn, runtime: RuntimeDep, principal: ManagerDep
) -> SpendOut:
    """Replace the entry's fields with these (409 once it was removed)."""
    row = _found(runtime, spend_id)
    if row.removed:
        raise Conflict(f"marketing spend entry {spend_id} was removed")
    committed = runtime.app.correct_marketing_spend(spend_id, _entry(body), principal.actor)
    runtime.wait_for_views(committed.notification_id)
    return spend_out(_found(runtime, spend_id))


@router.delete("/marketing-spend/{spend_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_spend(spend_id: UUID, runtime: RuntimeDep, principal: ManagerDep) -> Response:
    """Remove the entry: it stays in the log, counts nowhere (409 when removed already)."""
    _found(runtime, spend_id)
    committed = runtime.app.remove_marketing_spend(spend_id, principal.actor)
    runtime.wait_for_views(committed.notification_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/marketing-spend/import",
    response_model=SpendImportOut,
    openapi_extra={"requestBody": IMPORT_BODY},
    responses={413: {"description": "the file is larger than the limit"}},
)
async def import_spend(
    request: Request, runtime: RuntimeDep, principal: ManagerDep
) -> SpendImportOut:
    """Import a CSV of entries (columns source, utm_campaign, from, to, amount, currency,
    note; Russian or English names; `,` or `;`; UTF-8 or Windows-1251), as the multipart
    field `file` or as the raw body. The whole file is checked first: a bad row is a 422
    naming its line, and nothing is recorded. Importing the same file again records nothing."""
    data = await uploaded_bytes(request)
    parsed = await run_in_threadpool(read_spend_csv, data)
    entries = [(spend_id, entry) for _, spend_id, entry in parsed.entries]
    committed = await run_in_threadpool(
        runtime.app.import_marketing_spend, entries, principal.actor
    )
    await run_in_threadpool(runtime.wait_for_views, committed.notification_id)
    return SpendImportOut(
        rows=len(entries),
        recorded=committed.value,
        already_recorded=len(entries) - committed.value,
        encoding=parsed.encoding,
    )
