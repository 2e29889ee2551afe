"""The sales plans view: one row per manager and month whose plan is set (cleared ones go).

Targets are kept as integer minor units beside their currency, as every money view keeps
them; the gross-profit and deals-won targets are NULL when the plan has none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from threadline.domain.model.money import Money
from threadline.domain.model.sales_plan import SalesPlan
from threadline.projections.base import ViewProjection, handles, sid, ts
from threadline.projections.sql import Conditions, ViewCursor, ViewReader


class SalesPlanProjection(ViewProjection):
    name = "sales_plans"
    version = 1
    tables = ("sales_plans",)
    schema = (
        "CREATE TABLE IF NOT EXISTS sales_plans ("
        " id TEXT PRIMARY KEY, manager_id TEXT NOT NULL, month TEXT NOT NULL,"
        " currency TEXT NOT NULL, revenue_minor BIGINT NOT NULL, gross_profit_minor BIGINT,"
        " deals_won BIGINT, updated_at TEXT NOT NULL, updated_by TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS sales_plans_month ON sales_plans (month, manager_id)",
        "CREATE INDEX IF NOT EXISTS sales_plans_manager ON sales_plans (manager_id, month)",
    )

    @handles(SalesPlan.SalesPlanSet, SalesPlan.SalesPlanChanged)
    def _set(self, event: Any, cur: ViewCursor) -> None:
        revenue = Money.from_state(event.revenue)
        profit = None if event.gross_profit is None else Money.from_state(event.gross_profit)
        cur.execute(
            "INSERT INTO sales_plans (id, manager_id, month, currency, revenue_minor,"
            " gross_profit_minor, deals_won, updated_at, updated_by)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
            " currency = excluded.currency, revenue_minor = excluded.revenue_minor,"
            " gross_profit_minor = excluded.gross_profit_minor, deals_won = excluded.deals_won,"
            " updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            [
                sid(event.originator_id),
                sid(event.manager_id),
                event.month,
                revenue.currency,
                revenue.minor,
                None if profit is None else profit.minor,
                event.deals_won,
                ts(event.timestamp),
                event.actor,
            ],
        )

    @handles(SalesPlan.SalesPlanCleared)
    def _cleared(self, event: Any, cur: ViewCursor) -> None:
        cur.execute("DELETE FROM sales_plans WHERE id = ?", [sid(event.originator_id)])


@dataclass(frozen=True)
class SalesPlanRow:
    id: str
    manager_id: str
    manager: str  # the user's name ("" when the users view has none)
    month: str
    currency: str
    revenue_minor: int
    gross_profit_minor: int | None
    deals_won: int | None
    updated_at: str
    updated_by: str

    @classmethod
    def of(cls, row: dict[str, Any]) -> SalesPlanRow:
        profit, deals = row["gross_profit_minor"], row["deals_won"]
        return cls(
            id=row["id"],
            manager_id=row["manager_id"],
            manager=row["manager"] or "",
            month=row["month"],
            currency=row["currency"],
            revenue_minor=int(row["revenue_minor"]),
            gross_profit_minor=None if profit is None else int(profit),
            deals_won=None if deals is None else int(deals),
            updated_at=row["updated_at"],
            updated_by=row["updated_by"],
        )


def sales_plans(
    db: ViewReader,
    month: str | None = None,
    manager_id: str | None = None,
    months: Iterable[str] | None = None,
) -> list[SalesPlanRow]:
    """Plans set, by month then manager; `months` narrows to a set of months."""
    c = Conditions().equal([("p.month", month), ("p.manager_id", manager_id)])
    if months is not None:
        wanted = sorted(set(months))
        if not wanted:
            return []
        c.add(f"p.month IN ({','.join('?' * len(wanted))})", wanted)
    rows = db.query(
        "SELECT p.*, u.name AS manager FROM sales_plans p LEFT JOIN users u ON u.id = p.manager_id"
        f"{c.where} ORDER BY p.month, u.name, p.manager_id",
        c.params,
    )
    return [SalesPlanRow.of(r) for r in rows]


def sales_plan(db: ViewReader, manager_id: str, month: str) -> SalesPlanRow | None:
    found = sales_plans(db, month=month, manager_id=manager_id)
    return found[0] if found else None
