"""Exchange rates of a stated date: read them, enter one by hand, import the Central Bank file.

A rate is `rate` roubles for `nominal` units of a currency on a day (the Bank of Russia
quotes 100 yen, so JPY has nominal 100). `GET /api/exchange-rates?day=` answers with the
rate each currency has on that day: the day's own, or the latest before it, and each item
says which day it is. Reports convert with these and never add currencies without them.
Recording the same rate again changes nothing; a different one is a correction (an event).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, File, HTTPException, Query, UploadFile, status
from pydantic import BaseModel, ConfigDict, Field

from threadline.domain.model.money import DEFAULT_CURRENCY, clean_currency
from threadline.projections.catalogue import RateRow, rate_on, rates_on, rates_page
from threadline.services.api.deal_schemas import DecimalIn
from threadline.services.api.deps import ManagerDep, PrincipalDep, RuntimeDep
from threadline.services.api.schemas import CurrencyCode, Offset
from threadline.services.cbr_rates import MAX_FILE_BYTES, CbrFileError, import_cbr_rates

router = APIRouter(prefix="/api/exchange-rates", tags=["exchange rates"])


class RateOut(BaseModel):
    currency: str
    base: str
    day: str = Field(..., description="the day the rate was set for")
    rate: str = Field(..., description="units of `base` for `nominal` units of `currency`")
    nominal: int
    source: str = Field(..., description='"cbr" (imported), "manual" or another source')
    recorded_at: str
    corrected_at: str | None


class RatesOut(BaseModel):
    items: list[RateOut]
    total: int
    day: str | None = Field(
        ..., description="the day asked for; each item's `day` may be earlier (its latest rate)"
    )


class RateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    currency: CurrencyCode
    day: date
    rate: DecimalIn = Field(..., description="roubles for `nominal` units of the currency")
    nominal: int = Field(1, ge=1, le=1_000_000)


class RateRecordedOut(BaseModel):
    changed: bool = Field(..., description="false: the same rate was recorded already")
    rate: RateOut


class ImportOut(BaseModel):
    day: str
    recorded: int = Field(..., description="rates new or changed in the log")
    unchanged: int = Field(..., description="rates already recorded with the same value")
    total: int


def rate_out(row: RateRow) -> RateOut:
    return RateOut(
        currency=row.currency,
        base=row.base,
        day=row.day,
        rate=str(row.rate),
        nominal=row.nominal,
        source=row.source,
        recorded_at=row.recorded_at,
        corrected_at=row.corrected_at,
    )


@router.get("", response_model=RatesOut)
def list_rates(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    currency: CurrencyCode | None = None,
    day: Annotated[
        date | None, Query(description="the rates in force that day (else: every recorded rate)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> RatesOut:
    code = currency.upper() if currency else None
    if day is None:
        rows, total = rates_page(runtime.views, code, DEFAULT_CURRENCY, limit, offset)
        return RatesOut(items=[rate_out(r) for r in rows], total=total, day=None)
    if code is not None:
        found = rate_on(runtime.views, code, day)
        rows = [] if found is None else [found]
    else:
        rows = rates_on(runtime.views, day)
    return RatesOut(
        items=[rate_out(r) for r in rows[offset : offset + limit]],
        total=len(rows),
        day=day.isoformat(),
    )


@router.post("", response_model=RateRecordedOut, status_code=status.HTTP_201_CREATED)
def record_rate(body: RateIn, runtime: RuntimeDep, principal: ManagerDep) -> RateRecordedOut:
    code = clean_currency(body.currency)
    committed = runtime.app.record_exchange_rate(
        principal.actor, code, body.day, body.rate, nominal=body.nominal, source="manual"
    )
    runtime.wait_for_views(committed.notification_id)
    found = rate_on(runtime.views, code, body.day)
    if found is None or found.day != body.day.isoformat():  # the views could not keep up
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the rate is recorded; read it again"
        )
    return RateRecordedOut(changed=committed.value, rate=rate_out(found))


@router.post("/import", response_model=ImportOut)
def import_rates(
    runtime: RuntimeDep,
    principal: ManagerDep,
    file: Annotated[
        UploadFile, File(description="the Bank of Russia's daily file (XML_daily.asp), as is")
    ],
) -> ImportOut:
    data = file.file.read(MAX_FILE_BYTES + 1)
    try:
        result = import_cbr_rates(runtime.app, data, principal.actor)
    except CbrFileError as error:
        raise HTTPException(422, str(error)) from None
    runtime.wait_for_views(result.last_notification_id)
    return ImportOut(
        day=result.day.isoformat(),
        recorded=result.recorded,
        unchanged=result.unchanged,
        total=result.total,
    )
