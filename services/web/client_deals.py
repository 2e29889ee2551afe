"""What a client card and a company page show of deals: the list, and won money per currency.

The card, the company page and the deal screens all show a client's deals the same way, so
the reading lives here rather than in one page module that the others would import (a page
module importing another is how cycles start). Money stays per currency: a client who paid
in roubles and in dollars sees two lines, never one sum.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from threadline.domain.model.money import Money
from threadline.projections.deals import DealRow, client_money, deals_of_company, deals_of_contact
from threadline.projections.pipelines import pipelines
from threadline.projections.sql import ViewReader

CLIENT_DEALS = 20
"""Deals a card lists (newest first); the rest are one click away on the deals list."""


def amount(minor: int, currency: str) -> Decimal:
    """Integer minor units of the views as the decimal amount the money filter shows."""
    return Money.from_minor(int(minor), currency).amount


@dataclass(frozen=True)
class ClientDeal:
    """One deal of a client as a list shows it."""

    id: str
    title: str
    status: str
    stage: str
    pipeline: str
    total: Decimal
    currency: str


@dataclass(frozen=True)
class ClientTotals:
    """A client's money in one currency: won revenue (net of VAT), gross profit, open deals."""

    currency: str
    won_deals: int
    revenue: Decimal
    profit: Decimal
    open_deals: int
    open_total: Decimal


@dataclass(frozen=True)
class ClientDeals:
    deals: list[ClientDeal]
    total: int  # how many deals the client has in all
    money: list[ClientTotals]


def stage_and_pipeline_names(views: ViewReader) -> tuple[dict[str, str], dict[str, str]]:
    """Every stage's and pipeline's current name by id (archived pipelines included)."""
    found = pipelines(views, include_archived=True)
    stages = {s.id: s.name for p in found for s in p.stages}
    return stages, {p.id: p.name for p in found}


def listed(views: ViewReader, rows: list[DealRow]) -> list[ClientDeal]:
    stages, names = stage_and_pipeline_names(views)
    return [
        ClientDeal(
            id=row.id,
            title=row.title,
            status=row.status,
            stage=stages.get(row.stage_id, ""),
            pipeline=names.get(row.pipeline_id, ""),
            total=amount(row.total_minor, row.currency),
            currency=row.currency,
        )
        for row in rows
    ]


def client_deals(
    views: ViewReader, contact_id: str | None = None, company_id: str | None = None
) -> ClientDeals:
    """The deals of a contact (or of a company) and its money per currency."""
    if contact_id:
        rows = deals_of_contact(views, contact_id)
        money = client_money(views, contact_id=contact_id)
    elif company_id:
        rows = deals_of_company(views, company_id)
        money = client_money(views, company_id=company_id)
    else:
        return ClientDeals([], 0, [])
    totals = [
        ClientTotals(
            currency=m.currency,
            won_deals=m.won_deals,
            revenue=amount(m.revenue_minor, m.currency),
            profit=amount(m.profit_minor, m.currency),
            open_deals=m.open_deals,
            open_total=amount(m.open_total_minor, m.currency),
        )
        for m in money
    ]
    return ClientDeals(listed(views, rows[:CLIENT_DEALS]), len(rows), totals)
