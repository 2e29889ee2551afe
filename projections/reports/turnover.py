"""Turnover: revenue and gross profit of won deals by manager, product, client, group, month.

Revenue is a won deal's net amount (without VAT, `deals.net_minor`); gross profit is its
`profit_minor` (net - cost). Both count in the business month of the deal's `closed_at`,
per currency (a RUB figure and a USD figure are never added together). Only deals whose
status is "won" now count: a deal won and reopened drops out, as it does from the board.

The client of a deal is its company when it has one, else its contact; the client group is
the company's `client_group` ("" for a contact without a company).

Two item sources sum to the same totals: one item per won deal (the manager, client, group
and month sections) and one item per deal line (the product section: the line's own net
and profit; a line without a catalogue product is grouped under its own name). Should a
deal's lines not add up to the deal's figures, one extra item "Deal amount without lines"
carries the difference, so the product section's total always equals the deal total.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from threadline.projections.reports.frame import (
    Column,
    Item,
    ItemSource,
    Measure,
    Report,
    ReportSlice,
    Section,
    deal_slice,
)
from threadline.projections.sql import Conditions, ViewReader

REPORT_NAME = "turnover"

UNLINED = "Deal amount without lines"
"""The product name of the item carrying what a deal's lines leave out of its figures."""

SALE_SLICE = deal_slice("d.closed_at")

_SALE_FIELDS = (
    Column("deal_id", "Deal", "id", ref="deal"),
    Column("deal_title", "Deal title"),
    Column("closed_at", "Won at", "time"),
    Column("month", "Month", "month"),
    Column("pipeline_id", "Pipeline id", "id", ref="pipeline"),
    Column("manager_id", "Manager id", "id", ref="user"),
    Column("manager", "Manager"),
    Column("client_kind", "Client kind"),
    Column("client_id", "Client id", "id"),
    Column("client", "Client"),
    Column("client_group", "Client group"),
    Column("contact_id", "Contact id", "id", ref="contact"),
)

SALE_COLUMNS = (
    *_SALE_FIELDS,
    Column("currency", "Currency"),
    Column("revenue_minor", "Revenue", "money"),
    Column("profit_minor", "Gross profit", "money"),
)

LINE_COLUMNS = (
    *_SALE_FIELDS,
    Column("line_id", "Line", "id"),
    Column("product_id", "Product id", "id", ref="product"),
    Column("product", "Product"),
    Column("currency", "Currency"),
    Column("revenue_minor", "Revenue", "money"),
    Column("profit_minor", "Gross profit", "money"),
)


_SALE_SELECT = (
    "d.id, d.title, d.closed_at, d.pipeline_id, d.manager_id, u.name AS manager,"
    " d.contact_id, d.company_id, co.name AS company, co.client_group,"
    " c.display_name AS contact, d.currency, d.net_minor, d.profit_minor"
)
_SALE_JOINS = (
    " LEFT JOIN users u ON u.id = d.manager_id"
    " LEFT JOIN companies co ON co.id = d.company_id"
    " LEFT JOIN contacts c ON c.id = d.contact_id"
)


def _won(s: ReportSlice, report: str) -> Conditions:
    c = SALE_SLICE.conditions(report, s)
    c.add("d.status = 'won'", [])
    c.add("d.closed_at IS NOT NULL", [])
    return c


def read_sales(db: ViewReader, s: ReportSlice, report: str = REPORT_NAME) -> list[Item]:
    """One item per deal won in the slice (status "won" now, `closed_at` in the period)."""
    c = _won(s, report)
    rows = db.query(
        f"SELECT {_SALE_SELECT} FROM deals d{_SALE_JOINS}{c.where} ORDER BY d.closed_at, d.id",
        c.params,
    )
    month = _months(s.timezone)
    return [_sale(r, month) for r in rows]


def _months(timezone: str) -> Callable[[str], str]:
    """The business month of a `ts` text (fast: `local_month` parses with strptime)."""
    if timezone == "UTC":
        return lambda value: value[:7]
    zone = ZoneInfo(timezone)
    return lambda value: datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m")


def _sale(r: dict[str, Any], month: Callable[[str], str]) -> Item:
    if r["company_id"]:
        kind, client_id, client = "company", r["company_id"], r["company"] or ""
    elif r["contact_id"]:
        kind, client_id, client = "contact", r["contact_id"], r["contact"] or ""
    else:
        kind, client_id, client = "", None, ""
    return {
        "deal_id": r["id"],
        "deal_title": r["title"],
        "closed_at": r["closed_at"],
        "month": month(r["closed_at"]),
        "pipeline_id": r["pipeline_id"],
        "manager_id": r["manager_id"],
        "manager": r["manager"] or "",
        "client_kind": kind,
        "client_id": client_id,
        "client": client,
        "client_group": (r["client_group"] or "") if r["company_id"] else "",
        "contact_id": r["contact_id"],
        "currency": r["currency"],
        "revenue_minor": int(r["net_minor"]),
        "profit_minor": int(r["profit_minor"]),
    }


def read_sale_lines(db: ViewReader, s: ReportSlice, report: str = REPORT_NAME) -> list[Item]:
    """One item per line of the deals `read_sales` finds (plus what lines leave out)."""
    c = _won(s, report)
    rows = db.query(
        f"SELECT {_SALE_SELECT}, l.line_id, l.product_id, l.name AS line_name,"
        " p.name AS product, l.net_minor AS line_net, l.profit_minor AS line_profit"
        f" FROM deals d{_SALE_JOINS}"
        " LEFT JOIN deal_lines l ON l.deal_id = d.id"
        " LEFT JOIN products p ON p.id = l.product_id"
        f"{c.where} ORDER BY d.closed_at, d.id, l.position, l.line_id",
        c.params,
    )
    month = _months(s.timezone)
    items: list[Item] = []
    deal: Item | None = None
    net = profit = 0

    def rest() -> None:
        if deal is None:
            return
        if deal["revenue_minor"] != net or deal["profit_minor"] != profit:
            items.append(
                {
                    **deal,
                    "line_id": "",
                    "product_id": None,
                    "product": UNLINED,
                    "revenue_minor": deal["revenue_minor"] - net,
                    "profit_minor": deal["profit_minor"] - profit,
                }
            )

    for r in rows:
        if deal is None or deal["deal_id"] != r["id"]:
            rest()
            deal, net, profit = _sale(r, month), 0, 0
        if r["line_id"] is None:
            continue
        net += int(r["line_net"])
        profit += int(r["line_profit"])
        items.append(
            {
                **deal,
                "line_id": r["line_id"],
                "product_id": r["product_id"],
                "product": (r["product"] or r["line_name"]) if r["product_id"] else r["line_name"],
                "revenue_minor": int(r["line_net"]),
                "profit_minor": int(r["line_profit"]),
            }
        )
    rest()
    return items


def money_measures() -> tuple[Measure, ...]:
    return (
        Measure("deals", "Deals", "distinct", "deal_id"),
        Measure("revenue", "Revenue", "sum", "revenue_minor", kind="money"),
        Measure("profit", "Gross profit", "sum", "profit_minor", kind="money"),
        Measure("margin", "Margin", "ratio", of=("profit", "revenue"), kind="percent"),
    )


REPORT = Report(
    name=REPORT_NAME,
    title="Turnover",
    description=(
        "Revenue (net of VAT) and gross profit (net minus cost) of the deals won in the"
        " period, by manager, product, client, client group and month, per currency."
    ),
    sources=(
        ItemSource("sales", "Won deals", SALE_COLUMNS, read_sales),
        ItemSource("lines", "Deal lines of won deals", LINE_COLUMNS, read_sale_lines),
    ),
    sections=(
        Section(
            name="by_manager",
            title="By manager",
            source="sales",
            group_by=("manager_id", "manager", "currency"),
            measures=money_measures(),
            chart="revenue",
            order="-revenue",
        ),
        Section(
            name="by_product",
            title="By product",
            source="lines",
            group_by=("product_id", "product", "currency"),
            measures=money_measures(),
            chart="revenue",
            order="-revenue",
            note="A line without a catalogue product is grouped under its own name.",
        ),
        Section(
            name="by_client",
            title="By client",
            source="sales",
            group_by=("client_kind", "client_id", "client", "currency"),
            measures=money_measures(),
            chart="revenue",
            order="-revenue",
        ),
        Section(
            name="by_group",
            title="By client group",
            source="sales",
            group_by=("client_group", "currency"),
            measures=money_measures(),
            chart="revenue",
            order="-revenue",
        ),
        Section(
            name="by_month",
            title="By month",
            source="sales",
            group_by=("month", "currency"),
            measures=money_measures(),
            chart="revenue",
        ),
    ),
)
