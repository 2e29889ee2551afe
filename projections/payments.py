"""Readers of payments, what they pay and the matches waiting for a person."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from threadline.domain.model.money import Money
from threadline.projections.sql import Conditions, ViewReader, searchable

PAYMENT_COLUMNS = (
    "id, direction, currency, amount_minor, allocated_minor, state, suggestion_count, paid_on,"
    " company_id, contact_id, counterparty_name, counterparty_inn, counterparty_account,"
    " purpose, bank_kind, bank_number, bank_date, source_kind, source_file, source_line,"
    " recorded_at, recorded_by"
)


@dataclass(frozen=True)
class PaymentRow:
    id: str
    direction: str
    currency: str
    amount_minor: int
    allocated_minor: int
    state: str  # unmatched | partial | matched
    suggestion_count: int
    paid_on: str
    company_id: str | None
    contact_id: str | None
    counterparty_name: str
    counterparty_inn: str
    counterparty_account: str
    purpose: str
    bank_kind: str
    bank_number: str
    bank_date: str | None
    source_kind: str
    source_file: str | None
    source_line: int | None
    recorded_at: str
    recorded_by: str

    @property
    def amount(self) -> Money:
        return Money.from_minor(self.amount_minor, self.currency)

    @property
    def unallocated(self) -> Money:
        return Money.from_minor(self.amount_minor - self.allocated_minor, self.currency)


def payment(db: ViewReader, payment_id: UUID | str) -> PaymentRow | None:
    row = db.query_one(f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = ?", [str(payment_id)])
    return None if row is None else PaymentRow(**row)


@dataclass(frozen=True)
class PaymentFilter:
    direction: str | None = None  # in | out
    state: str | None = None  # unmatched | partial | matched
    suggested: bool | None = None  # True: only those with matches waiting for a person
    company_id: str | None = None
    contact_id: str | None = None
    paid_from: str | None = None
    paid_to: str | None = None
    q: str | None = None  # counterparty name, ИНН or purpose

    def conditions(self) -> Conditions:
        where = Conditions().equal(
            [
                ("direction", self.direction),
                ("state", self.state),
                ("company_id", self.company_id),
                ("contact_id", self.contact_id),
            ]
        )
        where.compare("paid_on", ">=", self.paid_from).compare("paid_on", "<=", self.paid_to)
        if self.suggested is True:
            where.add("suggestion_count > 0", [])
        elif self.suggested is False:
            where.add("suggestion_count = 0", [])
        if self.q:
            text = f"%{searchable(self.q.strip())}%"
            where.add(
                "(counterparty_name LIKE ? OR counterparty_inn LIKE ? OR purpose LIKE ?)",
                [text, text, text],
            )
        return where


def payments_page(
    db: ViewReader, where: PaymentFilter, limit: int = 50, offset: int = 0
) -> tuple[list[PaymentRow], int]:
    conditions = where.conditions()
    rows = db.query(
        f"SELECT {PAYMENT_COLUMNS} FROM payments{conditions.where}"
        " ORDER BY paid_on DESC, id LIMIT ? OFFSET ?",
        [*conditions.params, limit, offset],
    )
    count = db.query_one(f"SELECT COUNT(*) AS n FROM payments{conditions.where}", conditions.params)
    return [PaymentRow(**r) for r in rows], int(count["n"] if count else 0)


@dataclass(frozen=True)
class AllocationRow:
    payment_id: str
    target_kind: str
    target_id: str
    direction: str
    currency: str
    amount_minor: int
    how: str
    deal_id: str | None
    company_id: str | None
    contact_id: str | None
    allocated_at: str
    actor: str

    @property
    def amount(self) -> Money:
        return Money.from_minor(self.amount_minor, self.currency)


_ALLOCATION_COLUMNS = (
    "payment_id, target_kind, target_id, direction, currency, amount_minor, how, deal_id,"
    " company_id, contact_id, allocated_at, actor"
)


def allocations_of_payment(db: ViewReader, payment_id: UUID | str) -> list[AllocationRow]:
    rows = db.query(
        f"SELECT {_ALLOCATION_COLUMNS} FROM payment_allocations WHERE payment_id = ?"
        " ORDER BY allocated_at",
        [str(payment_id)],
    )
    return [AllocationRow(**r) for r in rows]


def allocations_to(db: ViewReader, target_kind: str, target_id: UUID | str) -> list[AllocationRow]:
    """What paid one invoice, contract, deal or supplier order."""
    rows = db.query(
        f"SELECT {_ALLOCATION_COLUMNS} FROM payment_allocations"
        " WHERE target_kind = ? AND target_id = ? ORDER BY allocated_at",
        [target_kind, str(target_id)],
    )
    return [AllocationRow(**r) for r in rows]


def allocations_of_deal(db: ViewReader, deal_id: UUID | str) -> list[AllocationRow]:
    """Everything paid towards a deal, through its invoices, contract or the deal itself."""
    rows = db.query(
        f"SELECT {_ALLOCATION_COLUMNS} FROM payment_allocations WHERE deal_id = ?"
        " ORDER BY allocated_at",
        [str(deal_id)],
    )
    return [AllocationRow(**r) for r in rows]


@dataclass(frozen=True)
class SuggestionRow:
    payment_id: str
    target_kind: str
    target_id: str
    currency: str
    amount_minor: int
    reason: str
    suggested_at: str

    @property
    def amount(self) -> Money:
        return Money.from_minor(self.amount_minor, self.currency)


def suggestions_of_payment(db: ViewReader, payment_id: UUID | str) -> list[SuggestionRow]:
    rows = db.query(
        "SELECT payment_id, target_kind, target_id, currency, amount_minor, reason,"
        " suggested_at FROM payment_suggestions WHERE payment_id = ? ORDER BY suggested_at",
        [str(payment_id)],
    )
    return [SuggestionRow(**r) for r in rows]


def suggestion(
    db: ViewReader, payment_id: UUID | str, target_kind: str, target_id: UUID | str
) -> SuggestionRow | None:
    row = db.query_one(
        "SELECT payment_id, target_kind, target_id, currency, amount_minor, reason,"
        " suggested_at FROM payment_suggestions WHERE payment_id = ? AND target_kind = ?"
        " AND target_id = ?",
        [str(payment_id), target_kind, str(target_id)],
    )
    return None if row is None else SuggestionRow(**row)


def recorded_payment_ids(db: ViewReader, ids: list[str]) -> set[str]:
    """Which of `ids` the views already hold (the import preview's "already recorded")."""
    found: set[str] = set()
    for start in range(0, len(ids), 400):
        chunk = ids[start : start + 400]
        marks = ",".join("?" * len(chunk))
        rows: list[dict[str, Any]] = db.query(
            f"SELECT id FROM payments WHERE id IN ({marks})", chunk
        )
        found.update(str(r["id"]) for r in rows)
    return found
