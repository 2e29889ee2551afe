"""Demo sales plans: every demo sales manager has a plan for this month and the last one.

A plan is set from what the manager actually won in the demo (net revenue in roubles): last
month's at 90 % of it (the plan beaten, about 111 % done), this month's at 160 % of what is won
so far (about 60 % done); a manager who won nothing gets 500,000 RUB. Plans already set are
left alone, so running the demo again adds nothing.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from uuid import UUID
from zoneinfo import ZoneInfo

from threadline.domain.model.money import Money
from threadline.projections.managers_dashboard import won_by_currency
from threadline.projections.reports.frame import period_bounds
from threadline.projections.sales_plans import sales_plan
from threadline.services.runtime import Runtime

CURRENCY = "RUB"
FALLBACK = Decimal(500_000)
SHARES = (Decimal("0.9"), Decimal("1.6"))  # last month, this month


def _month_days(day: date) -> tuple[date, date]:
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following - timedelta(days=1)


def seed_sales_plans(runtime: Runtime, managers: list[UUID], now: datetime, actor: str) -> int:
    """Plans for this and the previous business month; returns how many were set."""
    runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=60)
    zone = runtime.settings.timezone
    this_month = now.astimezone(ZoneInfo(zone)).date().replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    added = 0
    for share, month in zip(SHARES, (last_month, this_month), strict=True):
        first, last = _month_days(month)
        start, end = period_bounds(first, last, zone)
        assert start is not None and end is not None
        name = month.strftime("%Y-%m")
        for index, manager in enumerate(managers):
            if sales_plan(runtime.views, str(manager), name) is not None:
                continue
            won = won_by_currency(runtime.views, str(manager), start, end).get(CURRENCY, 0)
            target = (Decimal(won) / 100 * share / 1000).to_integral_value() * 1000
            target = target or FALLBACK
            _plan_id = runtime.app.set_sales_plan(
                manager,
                name,
                Money.of(target, CURRENCY),
                actor,
                gross_profit=Money.of(target / 4, CURRENCY).rounded(),
                deals_won=3 + index,
            ).value
            added += 1
    return added
