"""Sales plans: a manager's revenue (and optionally gross-profit and deals-won) target for a
business month. Setting the plan of the same manager and month again changes it; DELETE
clears it. Managers and admins write plans; everyone signed in reads them (the managers
report sets them against the fact).
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from threadline.domain.commands.sales_plans import MAX_DEALS_TARGET, clean_month
from threadline.domain.model.errors import NotFound
from threadline.projections.sales_plans import SalesPlanRow, sales_plan, sales_plans
from threadline.services.api.deal_schemas import DecimalIn, MoneyOut
from threadline.services.api.deps import ManagerDep, PrincipalDep, RuntimeDep
from threadline.services.api.routes_payments import exact_money
from threadline.services.api.schemas import CurrencyCode

router = APIRouter(prefix="/api", tags=["sales plans"])

Month = Annotated[
    str,
    Path(min_length=7, max_length=7, description="a business month, YYYY-MM", examples=["2026-03"]),
]


class SalesPlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    revenue: DecimalIn = Field(..., description="revenue target (net of VAT)", examples=["500000"])
    currency: CurrencyCode = "RUB"
    gross_profit: DecimalIn | None = Field(None, description="gross-profit target, same currency")
    deals_won: Annotated[int, Field(ge=0, le=MAX_DEALS_TARGET)] | None = Field(
        None, description="how many deals to win"
    )


class SalesPlanOut(BaseModel):
    id: str
    manager_id: str
    manager: str
    month: str
    revenue: MoneyOut
    gross_profit: MoneyOut | None
    deals_won: int | None
    updated_at: str
    updated_by: str


class SalesPlanListOut(BaseModel):
    items: list[SalesPlanOut]


def plan_out(row: SalesPlanRow) -> SalesPlanOut:
    profit = row.gross_profit_minor
    return SalesPlanOut(
        id=row.id,
        manager_id=row.manager_id,
        manager=row.manager,
        month=row.month,
        revenue=MoneyOut.of_minor(row.revenue_minor, row.currency),
        gross_profit=None if profit is None else MoneyOut.of_minor(profit, row.currency),
        deals_won=row.deals_won,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


@router.get("/sales-plans", response_model=SalesPlanListOut)
def list_sales_plans(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    month: Annotated[str | None, Query(max_length=7, description="YYYY-MM")] = None,
    manager_id: UUID | None = None,
) -> SalesPlanListOut:
    """Plans set, by month then manager; narrowed to a month and/or a manager."""
    rows = sales_plans(
        runtime.views,
        month=None if month is None else clean_month(month),
        manager_id=None if manager_id is None else str(manager_id),
    )
    return SalesPlanListOut(items=[plan_out(r) for r in rows])


@router.get("/sales-plans/{manager_id}/{month}", response_model=SalesPlanOut)
def get_sales_plan(
    manager_id: UUID, month: Month, runtime: RuntimeDep, principal: PrincipalDep
) -> SalesPlanOut:
    """One manager's plan for one month (404 when none is set)."""
    month = clean_month(month)
    row = sales_plan(runtime.views, str(manager_id), month)
    if row is None:
        raise NotFound("sales plan", f"{manager_id} {month}")
    return plan_out(row)


@router.put("/sales-plans/{manager_id}/{month}", response_model=SalesPlanOut)
def put_sales_plan(
    manager_id: UUID, month: Month, body: SalesPlanIn, runtime: RuntimeDep, principal: ManagerDep
) -> SalesPlanOut:
    """Set the plan of a manager (a user) for a month; setting it again changes it."""
    month = clean_month(month)
    revenue = exact_money(body.revenue, body.currency, "revenue")
    profit = (
        None
        if body.gross_profit is None
        else exact_money(body.gross_profit, body.currency, "gross_profit")
    )
    committed = runtime.app.set_sales_plan(
        manager_id, month, revenue, principal.actor, gross_profit=profit, deals_won=body.deals_won
    )
    runtime.wait_for_views(committed.notification_id)
    return get_sales_plan(manager_id, month, runtime, principal)


@router.delete("/sales-plans/{manager_id}/{month}", status_code=status.HTTP_204_NO_CONTENT)
def delete_sales_plan(
    manager_id: UUID, month: Month, runtime: RuntimeDep, principal: ManagerDep
) -> Response:
    """Clear the plan (404 when none is set)."""
    committed = runtime.app.clear_sales_plan(manager_id, clean_month(month), principal.actor)
    runtime.wait_for_views(committed.notification_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
