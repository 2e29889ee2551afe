"""Sales plan commands: set (or change) a manager's plan for a month, clear it."""

from __future__ import annotations

import re
from datetime import date
from uuid import UUID, uuid4

from threadline.domain.commands.base import Commands
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.errors import InvalidInput, NotFound
from threadline.domain.model.money import Money
from threadline.domain.model.sales_plan import SalesPlan, sales_plan_id
from threadline.domain.model.user import User

MAX_DEALS_TARGET = 1_000_000
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def clean_month(value: str, field: str = "month") -> str:
    """A business month as ``YYYY-MM`` (a real month of the years 2000 to 2100)."""
    found = _MONTH.match(str(value or "").strip())
    if found is None:
        raise InvalidInput(field, "a month is written YYYY-MM, such as 2026-03")
    year, month = int(found.group(1)), int(found.group(2))
    if not 2000 <= year <= 2100 or not 1 <= month <= 12:
        raise InvalidInput(field, f"{value} is not a month (years 2000 to 2100, months 01 to 12)")
    return date(year, month, 1).strftime("%Y-%m")


def check_targets(
    revenue: Money, gross_profit: Money | None, deals_won: int | None
) -> tuple[dict[str, str], dict[str, str] | None]:
    """The targets as events carry them; amounts and counts are never negative."""
    if revenue.amount < 0:
        raise InvalidInput("revenue", "a revenue target is not negative")
    if gross_profit is not None:
        if gross_profit.amount < 0:
            raise InvalidInput("gross_profit", "a gross-profit target is not negative")
        if gross_profit.currency != revenue.currency:
            raise InvalidInput(
                "gross_profit", "the gross-profit target is in the revenue's currency"
            )
    if deals_won is not None and not 0 <= deals_won <= MAX_DEALS_TARGET:
        raise InvalidInput("deals_won", f"0 to {MAX_DEALS_TARGET} deals")
    return (
        revenue.rounded().state(),
        None if gross_profit is None else gross_profit.rounded().state(),
    )


class SalesPlanCommands(Commands):
    def set_sales_plan(
        self,
        manager_id: UUID,
        month: str,
        revenue: Money,
        actor: str,
        *,
        gross_profit: Money | None = None,
        deals_won: int | None = None,
    ) -> Committed[UUID]:
        """Set the plan of a manager (a user) for a month; setting it again changes it."""
        month = clean_month(month)
        revenue_state, profit_state = check_targets(revenue, gross_profit, deals_won)
        plan_id = sales_plan_id(manager_id, month)
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> UUID:
            if unit.find(manager_id, User) is None:
                raise InvalidInput("manager_id", f"no user {manager_id}")
            plan = unit.find(plan_id, SalesPlan)
            if plan is None:
                unit.add(
                    SalesPlan(
                        id=plan_id,
                        manager_id=manager_id,
                        month=month,
                        revenue=revenue_state,
                        gross_profit=profit_state,
                        deals_won=deals_won,
                        actor=actor,
                        correlation_id=correlation_id,
                    )
                )
            else:
                plan.change(revenue_state, profit_state, deals_won, actor, correlation_id)
            return plan_id

        return self.writer.submit(command)

    def clear_sales_plan(self, manager_id: UUID, month: str, actor: str) -> Committed[None]:
        """Withdraw the plan of a manager for a month (404 when there is none)."""
        month = clean_month(month)
        plan_id = sales_plan_id(manager_id, month)
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> None:
            plan = unit.find(plan_id, SalesPlan)
            if plan is None or plan.cleared:
                raise NotFound("sales plan", f"{manager_id} {month}")
            plan.clear(actor, correlation_id)

        return self.writer.submit(command)
