"""Readers of supplier orders and what the business owes its suppliers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from threadline.domain.model.money import Money
from threadline.projections.sql import Conditions, ViewReader

ORDER_COLUMNS = (
    "id, supplier_id, deal_id, display_number, number, currency, amount_minor, paid_minor,"
    " state, payment_due_on, expected_on, lines, note, sent_at, confirmed_at, received_at,"
    " created_at, updated_at, created_by"
)


@dataclass(frozen=True)
class SupplierOrderRow:
    id: str
    supplier_id: str
    deal_id: str | None
    display_number: str
    number: int
    currency: str
    amount_minor: int
    paid_minor: int
    state: str
    payment_due_on: str | None
    expected_on: str | None
    lines: list[dict[str, Any]]
    note: str
    sent_at: str | None
    confirmed_at: str | None
    received_at: str | None
    created_at: str
    updated_at: str
    created_by: str

    @property
    def amount(self) -> Money:
        return Money.from_minor(self.amount_minor, self.currency)

    @property
    def payable(self) -> Money:
        """What is still owed to the supplier (a cancelled order owes nothing)."""
        if self.state == "cancelled":
            return Money.zero(self.currency)
        return Money.from_minor(max(self.amount_minor - self.paid_minor, 0), self.currency)

    def days_overdue(self, today: date) -> int:
        if self.payment_due_on is None or self.payable.amount <= 0:
            return 0
        return max((today - date.fromisoformat(self.payment_due_on)).days, 0)


def _order(row: dict[str, Any]) -> SupplierOrderRow:
    values = dict(row)
    values["lines"] = json.loads(values["lines"] or "[]")
    return SupplierOrderRow(**values)


def supplier_order(db: ViewReader, order_id: UUID | str) -> SupplierOrderRow | None:
    row = db.query_one(f"SELECT {ORDER_COLUMNS} FROM supplier_orders WHERE id = ?", [str(order_id)])
    return None if row is None else _order(row)


@dataclass(frozen=True)
class SupplierOrderFilter:
    state: str | None = None
    supplier_id: str | None = None
    deal_id: str | None = None
    unpaid: bool = False

    def conditions(self) -> Conditions:
        where = Conditions().equal(
            [("state", self.state), ("supplier_id", self.supplier_id), ("deal_id", self.deal_id)]
        )
        if self.unpaid:
            where.add("state <> 'cancelled' AND paid_minor < amount_minor", [])
        return where


def supplier_orders_page(
    db: ViewReader, where: SupplierOrderFilter, limit: int = 50, offset: int = 0
) -> tuple[list[SupplierOrderRow], int]:
    conditions = where.conditions()
    rows = db.query(
        f"SELECT {ORDER_COLUMNS} FROM supplier_orders{conditions.where}"
        " ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
        [*conditions.params, limit, offset],
    )
    count = db.query_one(
        f"SELECT COUNT(*) AS n FROM supplier_orders{conditions.where}", conditions.params
    )
    return [_order(r) for r in rows], int(count["n"] if count else 0)


def open_orders_of_supplier(
    db: ViewReader, supplier_id: str, currency: str | None = None
) -> list[SupplierOrderRow]:
    """Orders with something still to pay, oldest first (what an outgoing payment may pay)."""
    found = supplier_orders_page(
        db, SupplierOrderFilter(supplier_id=supplier_id, unpaid=True), limit=1000
    )[0]
    return [o for o in reversed(found) if currency is None or o.currency == currency]


def orders_sent_before(db: ViewReader, moment: str) -> list[SupplierOrderRow]:
    """Orders sent before `moment` and still not confirmed (the "not confirmed" scan)."""
    rows = db.query(
        f"SELECT {ORDER_COLUMNS} FROM supplier_orders WHERE state = 'sent' AND sent_at < ?"
        " ORDER BY sent_at, id",
        [moment],
    )
    return [_order(r) for r in rows]


def payables_due_between(db: ViewReader, first: date, last: date) -> list[SupplierOrderRow]:
    rows = db.query(
        f"SELECT {ORDER_COLUMNS} FROM supplier_orders WHERE state <> 'cancelled'"
        " AND paid_minor < amount_minor AND payment_due_on >= ? AND payment_due_on <= ?"
        " ORDER BY payment_due_on, id",
        [first.isoformat(), last.isoformat()],
    )
    return [_order(r) for r in rows]
