"""Readers of documents and contracts (the `money_flow` projection's tables)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from threadline.domain.model.money import Money
from threadline.projections.sql import Conditions, ViewReader, searchable

DOCUMENT_COLUMNS = (
    "id, kind, series, year, number, display_number, language, title, issued_on, due_on,"
    " deal_id, contract_id, supplier_order_id, company_id, contact_id, seller_id, currency,"
    " total_minor, vat_minor, paid_minor, status, void_reason, file, file_sha256, html_sha256,"
    " template, sent_count, last_sent_at, created_at, created_by"
)


@dataclass(frozen=True)
class DocumentRow:
    id: str
    kind: str
    series: str
    year: int
    number: int
    display_number: str
    language: str
    title: str
    issued_on: str
    due_on: str | None
    deal_id: str | None
    contract_id: str | None
    supplier_order_id: str | None
    company_id: str | None
    contact_id: str | None
    seller_id: str | None
    currency: str
    total_minor: int
    vat_minor: int
    paid_minor: int
    status: str
    void_reason: str | None
    file: dict[str, Any]
    file_sha256: str
    html_sha256: str
    template: dict[str, Any]
    sent_count: int
    last_sent_at: str | None
    created_at: str
    created_by: str

    @property
    def total(self) -> Money:
        return Money.from_minor(self.total_minor, self.currency)

    @property
    def paid(self) -> Money:
        return Money.from_minor(self.paid_minor, self.currency)

    @property
    def outstanding(self) -> Money:
        """What is still to be paid on an invoice (never below zero)."""
        return Money.from_minor(max(self.total_minor - self.paid_minor, 0), self.currency)

    @property
    def payment_state(self) -> str:
        """unpaid, partly_paid, paid (invoices), or voided."""
        if self.status == "voided":
            return "voided"
        if self.paid_minor <= 0:
            return "unpaid"
        return "paid" if self.paid_minor >= self.total_minor else "partly_paid"

    def days_overdue(self, today: date) -> int:
        if self.due_on is None or self.payment_state in ("paid", "voided"):
            return 0
        return max((today - date.fromisoformat(self.due_on)).days, 0)


def _document(row: dict[str, Any]) -> DocumentRow:
    values = dict(row)
    values["file"] = json.loads(values["file"] or "{}")
    values["template"] = json.loads(values["template"] or "{}")
    return DocumentRow(**values)


def document(db: ViewReader, document_id: UUID | str) -> DocumentRow | None:
    row = db.query_one(f"SELECT {DOCUMENT_COLUMNS} FROM documents WHERE id = ?", [str(document_id)])
    return None if row is None else _document(row)


@dataclass(frozen=True)
class DocumentFilter:
    """What the documents list narrows by (None: any)."""

    kind: str | None = None
    status: str | None = None  # issued | voided
    payment_state: str | None = None  # unpaid | partly_paid | paid | overdue (invoices)
    deal_id: str | None = None
    company_id: str | None = None
    contact_id: str | None = None
    supplier_order_id: str | None = None
    contract_id: str | None = None
    q: str | None = None  # the number, e.g. "СЧ-15" or "15"
    today: date | None = None  # what "overdue" is measured against

    def conditions(self) -> Conditions:
        where = Conditions().equal(
            [
                ("kind", self.kind),
                ("status", self.status),
                ("deal_id", self.deal_id),
                ("company_id", self.company_id),
                ("contact_id", self.contact_id),
                ("supplier_order_id", self.supplier_order_id),
                ("contract_id", self.contract_id),
            ]
        )
        state = self.payment_state
        if state == "unpaid":
            where.add("status = 'issued' AND paid_minor = 0", [])
        elif state == "partly_paid":
            where.add("status = 'issued' AND paid_minor > 0 AND paid_minor < total_minor", [])
        elif state == "paid":
            where.add("status = 'issued' AND paid_minor >= total_minor", [])
        elif state == "overdue":
            today = (self.today or date.today()).isoformat()
            where.add("status = 'issued' AND paid_minor < total_minor AND due_on < ?", [today])
        if self.q:
            text = searchable(self.q.strip())
            where.add("(display_number LIKE ? OR CAST(number AS TEXT) = ?)", [f"%{text}%", text])
        return where


def documents_page(
    db: ViewReader, where: DocumentFilter, limit: int = 50, offset: int = 0
) -> tuple[list[DocumentRow], int]:
    conditions = where.conditions()
    rows = db.query(
        f"SELECT {DOCUMENT_COLUMNS} FROM documents{conditions.where}"
        " ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
        [*conditions.params, limit, offset],
    )
    count = db.query_one(
        f"SELECT COUNT(*) AS n FROM documents{conditions.where}", conditions.params
    )
    return [_document(r) for r in rows], int(count["n"] if count else 0)


def documents_of_deal(db: ViewReader, deal_id: UUID | str) -> list[DocumentRow]:
    return documents_page(db, DocumentFilter(deal_id=str(deal_id)), limit=500)[0]


def open_invoices(
    db: ViewReader,
    *,
    company_id: str | None = None,
    contact_id: str | None = None,
    currency: str | None = None,
) -> list[DocumentRow]:
    """Issued invoices with something left to pay, oldest first (what a payment may pay)."""
    where = Conditions().equal(
        [("company_id", company_id), ("contact_id", contact_id), ("currency", currency)]
    )
    where.add("kind = 'invoice' AND status = 'issued' AND paid_minor < total_minor", [])
    rows = db.query(
        f"SELECT {DOCUMENT_COLUMNS} FROM documents{where.where} ORDER BY issued_on, number",
        where.params,
    )
    return [_document(r) for r in rows]


def invoices_numbered(db: ViewReader, number: int) -> list[DocumentRow]:
    """Invoices whose number (in any series and year) is `number`, newest first."""
    rows = db.query(
        f"SELECT {DOCUMENT_COLUMNS} FROM documents WHERE kind = 'invoice' AND number = ?"
        " ORDER BY issued_on DESC",
        [number],
    )
    return [_document(r) for r in rows]


def invoices_due_between(db: ViewReader, first: date, last: date) -> list[DocumentRow]:
    """Unpaid (or partly paid) issued invoices due on a day from `first` to `last`."""
    rows = db.query(
        f"SELECT {DOCUMENT_COLUMNS} FROM documents WHERE kind = 'invoice' AND status = 'issued'"
        " AND paid_minor < total_minor AND due_on >= ? AND due_on <= ? ORDER BY due_on, id",
        [first.isoformat(), last.isoformat()],
    )
    return [_document(r) for r in rows]


@dataclass(frozen=True)
class DocumentSend:
    message_id: str
    conversation_id: str
    channel: str
    sent_at: str
    actor: str


def document_sends(db: ViewReader, document_id: UUID | str) -> list[DocumentSend]:
    rows = db.query(
        "SELECT message_id, conversation_id, channel, sent_at, actor FROM document_sends"
        " WHERE document_id = ? ORDER BY sent_at",
        [str(document_id)],
    )
    return [DocumentSend(**r) for r in rows]


# -- contracts ----------------------------------------------------------------------------------

CONTRACT_COLUMNS = (
    "id, number, title, signed_on, starts_on, ends_on, currency, amount_minor, paid_minor,"
    " deal_id, company_id, contact_id, status, close_reason, created_at, updated_at, created_by"
)


@dataclass(frozen=True)
class ContractRow:
    id: str
    number: str
    title: str
    signed_on: str
    starts_on: str | None
    ends_on: str | None
    currency: str | None
    amount_minor: int | None
    paid_minor: int
    deal_id: str | None
    company_id: str | None
    contact_id: str | None
    status: str
    close_reason: str | None
    created_at: str
    updated_at: str
    created_by: str

    @property
    def amount(self) -> Money | None:
        if self.amount_minor is None or self.currency is None:
            return None
        return Money.from_minor(self.amount_minor, self.currency)

    def days_left(self, today: date) -> int | None:
        return None if self.ends_on is None else (date.fromisoformat(self.ends_on) - today).days


def contract(db: ViewReader, contract_id: UUID | str) -> ContractRow | None:
    row = db.query_one(f"SELECT {CONTRACT_COLUMNS} FROM contracts WHERE id = ?", [str(contract_id)])
    return None if row is None else ContractRow(**row)


@dataclass(frozen=True)
class ContractFilter:
    status: str | None = None
    deal_id: str | None = None
    company_id: str | None = None
    contact_id: str | None = None
    q: str | None = None

    def conditions(self) -> Conditions:
        where = Conditions().equal(
            [
                ("status", self.status),
                ("deal_id", self.deal_id),
                ("company_id", self.company_id),
                ("contact_id", self.contact_id),
            ]
        )
        if self.q:
            text = f"%{searchable(self.q.strip())}%"
            where.add("(number LIKE ? OR title LIKE ?)", [text, text])
        return where


def contracts_page(
    db: ViewReader, where: ContractFilter, limit: int = 50, offset: int = 0
) -> tuple[list[ContractRow], int]:
    conditions = where.conditions()
    rows = db.query(
        f"SELECT {CONTRACT_COLUMNS} FROM contracts{conditions.where}"
        " ORDER BY signed_on DESC, id LIMIT ? OFFSET ?",
        [*conditions.params, limit, offset],
    )
    count = db.query_one(
        f"SELECT COUNT(*) AS n FROM contracts{conditions.where}", conditions.params
    )
    return [ContractRow(**r) for r in rows], int(count["n"] if count else 0)


def contracts_ending_between(db: ViewReader, first: date, last: date) -> list[ContractRow]:
    """Active contracts whose end date falls from `first` to `last` (the expiry scan)."""
    rows = db.query(
        f"SELECT {CONTRACT_COLUMNS} FROM contracts WHERE status = 'active'"
        " AND ends_on >= ? AND ends_on <= ? ORDER BY ends_on, id",
        [first.isoformat(), last.isoformat()],
    )
    return [ContractRow(**r) for r in rows]
