"""The manager's dashboard (`/dashboard`): the signed-in user's own day.

- *Today's tasks*: their open tasks due before the end of today in their time zone,
  overdue ones first (marked).
- *Open deals by stage*: count and sum (deal totals, as the board) per stage and currency.
- *This month's plan*: their sales plan for the business month (`THREADLINE_TIMEZONE`, as
  the managers report counts months) against the net revenue of deals they won in it,
  with a progress bar; revenue in other currencies is listed beside it, never added.
- Links to the managers report narrowed to them and to this month.

Every signed-in user has a dashboard; one without deals or a plan sees empty sections.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from threadline.domain.model.money import Money
from threadline.projections.base import ts
from threadline.projections.contact_card import display_names
from threadline.projections.managers_dashboard import (
    open_deals_by_stage,
    tasks_due_before,
    won_by_currency,
)
from threadline.projections.reports.frame import period_bounds
from threadline.projections.sales_plans import sales_plan
from threadline.services.web.deps import WebUser, WebUserDep

router = APIRouter(include_in_schema=False)


def _amount(minor: int, currency: str) -> str:
    return str(Money.from_minor(minor, currency).amount)


def month_bounds(today: date, timezone: str) -> tuple[str, date, date, str, str]:
    """The business month of `today`: its name, first and last day, and its `ts` bounds."""
    first = today.replace(day=1)
    last = today.replace(day=calendar.monthrange(today.year, today.month)[1])
    start, end = period_bounds(first, last, timezone)
    assert start is not None and end is not None
    return first.strftime("%Y-%m"), first, last, start, end


def dashboard_data(user: WebUser, now: datetime) -> dict[str, Any]:
    db = user.runtime.views
    local = now.astimezone(user.zone)
    tomorrow = (local + timedelta(days=1)).date()
    end_of_today = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=user.zone)
    now_ts = ts(now)
    tasks = tasks_due_before(db, user.id, ts(end_of_today.astimezone(UTC)))
    names = display_names(db, sorted({str(t["contact_id"]) for t in tasks if t["contact_id"]}))
    for task in tasks:
        task["overdue"] = task["due_at"] < now_ts
        task["contact"] = names.get(str(task["contact_id"]), "") if task["contact_id"] else ""

    stages = open_deals_by_stage(db, user.id)
    totals: dict[str, list[int]] = {}
    for row in stages:
        counted = totals.setdefault(row.currency, [0, 0])
        counted[0] += row.deals
        counted[1] += row.total_minor

    business = user.runtime.settings.timezone
    today = now.astimezone(ZoneInfo(business)).date()
    month, first, last, start, end = month_bounds(today, business)
    plan = sales_plan(db, user.id, month)
    won = won_by_currency(db, user.id, start, end)
    progress = None
    if plan is not None:
        fact = won.get(plan.currency, 0)
        progress = {
            "plan": _amount(plan.revenue_minor, plan.currency),
            "fact": _amount(fact, plan.currency),
            "currency": plan.currency,
            "percent": None if plan.revenue_minor == 0 else round(100 * fact / plan.revenue_minor),
            "bar": 0 if plan.revenue_minor == 0 else min(fact, plan.revenue_minor),
            "bar_max": plan.revenue_minor,
        }
    others = [
        (_amount(minor, currency), currency)
        for currency, minor in sorted(won.items())
        if plan is None or currency != plan.currency
    ]
    report_query = urlencode(
        {"manager_id": user.id, "from": first.isoformat(), "to": last.isoformat()}
    )
    return {
        "tasks": tasks,
        "stages": [
            {**vars(row), "total": _amount(row.total_minor, row.currency)} for row in stages
        ],
        "totals": [
            (currency, n, _amount(minor, currency))
            for currency, (n, minor) in sorted(totals.items())
        ],
        "month": month,
        "progress": progress,
        "others": others,
        "report_link": f"/reports/managers?{report_query}",
        "reports_allowed": user.role in ("admin", "manager", "auditor"),
    }


@router.get("/dashboard")
def dashboard(user: WebUserDep) -> HTMLResponse:
    return user.render("dashboard.html", **dashboard_data(user, datetime.now(UTC)))
