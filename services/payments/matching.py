"""What a payment pays: the rules that turn a bank's line into allocations or suggestions.

Incoming money is matched by three facts a bank statement gives and a person would check:
the payer's ИНН (which company paid), the invoice number written in the purpose, and the
amount. Only when all three agree is the money allocated by itself (`how=auto`); a payment
that is almost right (the right payer and exactly an open invoice's amount, but a mistyped
number or none at all) is only *suggested*, with the reason, for a person to confirm: a
wrong automatic match is worse than none, because nobody looks at a matched payment again.
Outgoing money is linked only to the supplier's open orders, never to a client's invoice.

The matcher reads the views once per company and keeps a running ledger of what it has
planned, so two payments of one import for the same invoice do not both count its full
outstanding amount (the views only learn of the first after it is recorded).
"""

# ruff: noqa: RUF001

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from uuid import UUID

from threadline.domain.commands.payments import Allocation
from threadline.domain.model.money import Money
from threadline.domain.model.payment import AllocationHow, Direction, TargetKind
from threadline.projections.companies import CompanyRow, company_by_inn
from threadline.projections.documents import (
    DocumentFilter,
    DocumentRow,
    documents_page,
    invoices_numbered,
    open_invoices,
)
from threadline.projections.sql import ViewReader
from threadline.projections.supplier_orders import SupplierOrderRow, open_orders_of_supplier

MAX_REFERENCES = 20
MAX_SUGGESTIONS = 3
SUPPLIER_ROLE = "supplier"
MAX_READ = 5000
"""A client's invoices read at once to explain a miss; more than this are asked by number."""


class OutcomeKind(StrEnum):
    MATCHED = "matched"  # paid the named invoice(s) in full
    PARTIAL = "partial"  # paid part of an invoice; the rest stays due
    OVERPAID = "overpaid"  # paid the invoice(s) in full; the rest of the money is unallocated
    SUGGESTED = "suggested"  # a near miss waiting for a person
    UNMATCHED = "unmatched"
    OUTGOING_LINKED = "outgoing_linked"  # an outgoing payment linked to a supplier order


@dataclass(frozen=True)
class MatchOutcome:
    kind: OutcomeKind
    allocations: tuple[Allocation, ...] = ()
    suggestions: tuple[Allocation, ...] = ()
    company_id: UUID | None = None
    reason: str = ""
    target_label: str = ""  # what it pays or might pay, as people say it: "СЧ-17", "ЗП-3"


@dataclass(frozen=True)
class PaymentFacts:
    """What matching looks at: the bank's view of one payment."""

    direction: Direction
    amount: Money
    counterparty_inn: str = ""
    purpose: str = ""


# -- the numbers written in a purpose ----------------------------------------------------------


@dataclass(frozen=True)
class NumberRef:
    """A document number found in a purpose: `series` as written ("" when none was)."""

    number: int
    series: str = ""
    text: str = ""


_LETTER_BEFORE = r"(?<![^\W\d_])"
_NO_LETTER_AFTER = r"(?![^\W\d_])"
_COMMON_MARKERS = (r"no", r"n")
_INVOICE_MARKERS = (r"сч[её]т(?:у|а|ам|ом|ов)?", r"сч", r"инв(?:ойс[а-яё]*)?", r"invoices?", r"inv")
_ORDER_MARKERS = (r"заказ(?:у|а|ам|ом|ов)?", r"зп", r"orders?", r"po")
_NUMBER = (
    r"(?:(?P<series>[^\W\d_]{1,5})-?)?"
    r"(?P<number>\d{1,9})"
    r"(?!\d)"  # longer runs are an ИНН, a КПП or an account, never an invoice number
    r"(?![./-]\d)"  # 01.12.2026, 15/12/2026, 2026-12-01: a date, not a number
)


def _reference(markers: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(
        rf"(?:{_LETTER_BEFORE}(?:{'|'.join(markers)}){_NO_LETTER_AFTER}|[№#])"
        rf"[\s.:#№-]{{0,6}}{_NUMBER}",
        re.IGNORECASE,
    )


_REFERENCES = {
    "invoice": _reference(_INVOICE_MARKERS + _COMMON_MARKERS),
    "order": _reference(_ORDER_MARKERS + _COMMON_MARKERS),
}
_MORE = re.compile(rf"(?:\s*[,;&]\s*|\s+(?:и|and)\s+)(?:№\s*)?{_NUMBER}", re.IGNORECASE)


def _ref(match: re.Match[str]) -> NumberRef:
    series = (match.group("series") or "").upper()
    digits = match.group("number")
    return NumberRef(int(digits), series, f"{series}-{digits}" if series else digits)


def document_numbers(purpose: str, kind: str = "invoice") -> list[NumberRef]:
    """The invoice (`kind` "order": supplier order) numbers a purpose names, in the order
    written, each once.

    A number counts only after a marker ("счёт", "сч.", "инв", "invoice"; for orders
    "заказ", "ЗП", "order", "PO"; for both "№", "N", "#"),
    optionally with its series ("СЧ-15"); a list after one marker ("№ 15, 16 и 17") is
    read whole. Dates, amounts with a decimal part and digit runs longer than nine (ИНН,
    КПП, accounts) are never taken.
    """
    found: list[NumberRef] = []
    seen: set[tuple[int, str]] = set()
    position = 0
    while len(found) < MAX_REFERENCES:
        match = _REFERENCES[kind].search(purpose, position)
        if match is None:
            break
        refs = [_ref(match)]
        position = match.end()
        while (more := _MORE.match(purpose, position)) is not None:
            refs.append(_ref(more))
            position = more.end()
        for ref in refs:
            if (ref.number, ref.series) not in seen:
                seen.add((ref.number, ref.series))
                found.append(ref)
    return found[:MAX_REFERENCES]


def is_typo(written: int, actual: int) -> bool:
    """Whether `written` is `actual` mistyped: one digit changed, added or dropped, or two
    digits swapped ("71" for 17)."""
    a, b = str(written), str(actual)
    if a == b:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        i, j = diff[0], diff[-1]
        return len(diff) == 2 and a[i] == b[j] and a[j] == b[i]
    if abs(len(a) - len(b)) != 1:
        return False
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:k] + long_[k + 1 :] == short for k in range(len(long_)))


def series_of(display_number: str) -> str:
    return display_number.rsplit("-", 1)[0].upper() if "-" in display_number else ""


def _names(ref: NumberRef, number: int, display_number: str) -> bool:
    return ref.number == number and ref.series in ("", series_of(display_number))


# -- the matcher -------------------------------------------------------------------------------


@dataclass
class Matcher:
    """Matches the payments of one import (or one API call) against the views.

    `planned` holds what earlier payments of the same run were allocated to each target
    (minor units), taken off the outstanding amounts the views show.
    """

    db: ViewReader
    planned: dict[tuple[str, str], int] = field(default_factory=dict)
    _companies: dict[str, CompanyRow | None] = field(default_factory=dict)
    _invoices: dict[str, list[DocumentRow]] = field(default_factory=dict)
    _orders: dict[tuple[str, str], list[SupplierOrderRow]] = field(default_factory=dict)
    _by_number: dict[str, dict[int, list[DocumentRow]] | None] = field(default_factory=dict)

    def match(self, facts: PaymentFacts) -> MatchOutcome:
        if facts.direction == Direction.OUT:
            return self._outgoing(facts)
        return self._incoming(facts)

    # -- reading, cached per run

    def company(self, inn: str) -> CompanyRow | None:
        inn = "".join(ch for ch in inn if ch.isdigit())
        if not inn:
            return None
        if inn not in self._companies:
            self._companies[inn] = company_by_inn(self.db, inn)
        return self._companies[inn]

    def _open_invoices(self, company_id: str) -> list[DocumentRow]:
        if company_id not in self._invoices:
            self._invoices[company_id] = open_invoices(self.db, company_id=company_id)
        return self._invoices[company_id]

    def _company_invoices_numbered(self, company_id: str, number: int) -> list[DocumentRow]:
        """The company's invoices (any state) numbered `number`: all of them read once per
        company, so a file of payments naming unknown numbers costs one query, not one each."""
        if company_id not in self._by_number:
            rows, total = documents_page(
                self.db, DocumentFilter(kind="invoice", company_id=company_id), limit=MAX_READ
            )
            index: dict[int, list[DocumentRow]] | None = None
            if total <= MAX_READ:
                index = {}
                for row in rows:
                    index.setdefault(row.number, []).append(row)
            self._by_number[company_id] = index
        index = self._by_number[company_id]
        if index is None:  # a very large client: ask for the number
            found = invoices_numbered(self.db, number)
            return [i for i in found if i.company_id == company_id]
        return index.get(number, [])

    def _open_orders(self, supplier_id: str, currency: str) -> list[SupplierOrderRow]:
        key = (supplier_id, currency)
        if key not in self._orders:
            self._orders[key] = open_orders_of_supplier(self.db, supplier_id, currency)
        return self._orders[key]

    def due(self, kind: TargetKind, target_id: str, views_due: int) -> int:
        return views_due - self.planned.get((kind.value, target_id), 0)

    def _plan(self, kind: TargetKind, target_id: str, minor: int) -> None:
        key = (kind.value, target_id)
        self.planned[key] = self.planned.get(key, 0) + minor

    # -- incoming

    def _invoice_due(self, invoice: DocumentRow) -> int:
        return self.due(TargetKind.INVOICE, invoice.id, invoice.outstanding.minor)

    def _incoming(self, facts: PaymentFacts) -> MatchOutcome:
        inn = "".join(ch for ch in facts.counterparty_inn if ch.isdigit())
        if not inn:
            return MatchOutcome(OutcomeKind.UNMATCHED, reason="the payment names no payer's ИНН")
        company = self.company(inn)
        if company is None:
            return MatchOutcome(
                OutcomeKind.UNMATCHED, reason=f"no company has the payer's ИНН {inn}"
            )
        company_id = UUID(company.id)
        currency = facts.amount.currency
        amount = facts.amount.minor
        refs = document_numbers(facts.purpose)
        invoices = self._open_invoices(company.id)
        open_now = [i for i in invoices if i.currency == currency and self._invoice_due(i) > 0]
        named: list[DocumentRow] = []
        for ref in refs:
            for invoice in open_now:
                if invoice not in named and _names(ref, invoice.number, invoice.display_number):
                    named.append(invoice)
        if named:
            return self._pay_invoices(named, amount, currency, company_id)
        exact = [i for i in open_now if self._invoice_due(i) == amount][:MAX_SUGGESTIONS]
        money = Money.from_minor(amount, currency)
        if refs:
            near = [
                (ref, i)
                for i in exact
                for ref in refs
                # a mistyped number, or the right number under another series ("INV-17")
                if is_typo(ref.number, i.number) or ref.number == i.number
            ][:MAX_SUGGESTIONS]
            if near:
                reasons = [
                    f"the purpose names invoice {ref.text or ref.number}; {i.display_number}"
                    f" of this payer is for exactly this amount ({money})"
                    for ref, i in near
                ]
                return self._suggest([i for _, i in near], money, reasons, company_id)
            why = self._why_not(refs, company, invoices, currency)
            return MatchOutcome(OutcomeKind.UNMATCHED, company_id=company_id, reason=why)
        if exact:
            reasons = [
                f"the purpose names no invoice; {i.display_number} of this payer is for"
                f" exactly this amount ({money})"
                for i in exact
            ]
            return self._suggest(exact, money, reasons, company_id)
        return MatchOutcome(
            OutcomeKind.UNMATCHED,
            company_id=company_id,
            reason=f"the purpose names no invoice and no open invoice of {company.name}"
            f" is for {money}",
        )

    def _pay_invoices(
        self, named: list[DocumentRow], amount: int, currency: str, company_id: UUID
    ) -> MatchOutcome:
        left = amount
        allocations: list[Allocation] = []
        paid: list[DocumentRow] = []
        for invoice in named:
            if left <= 0:
                break
            share = min(left, self._invoice_due(invoice))
            allocations.append(
                Allocation(
                    TargetKind.INVOICE,
                    UUID(invoice.id),
                    Money.from_minor(share, currency),
                    AllocationHow.AUTO,
                )
            )
            self._plan(TargetKind.INVOICE, invoice.id, share)
            paid.append(invoice)
            left -= share
        labels = ", ".join(i.display_number for i in paid)
        last = paid[-1]
        rest_due = self._invoice_due(last)
        if left > 0:
            kind = OutcomeKind.OVERPAID
            reason = (
                f"{labels} paid in full; {Money.from_minor(left, currency)} more than was due"
                " is left unallocated"
            )
        elif rest_due > 0:
            kind = OutcomeKind.PARTIAL
            reason = (
                f"part of {last.display_number}; {Money.from_minor(rest_due, currency)}"
                " is still due"
            )
        else:
            kind = OutcomeKind.MATCHED
            reason = f"{labels} paid in full"
        return MatchOutcome(kind, tuple(allocations), (), company_id, reason, labels)

    def _suggest(
        self, invoices: list[DocumentRow], money: Money, reasons: list[str], company_id: UUID
    ) -> MatchOutcome:
        suggestions = tuple(
            Allocation(TargetKind.INVOICE, UUID(i.id), money, AllocationHow.CONFIRMED, reason)
            for i, reason in zip(invoices, reasons, strict=True)
        )
        label = ", ".join(dict.fromkeys(i.display_number for i in invoices))
        return MatchOutcome(
            OutcomeKind.SUGGESTED, (), suggestions, company_id, "; ".join(reasons), label
        )

    def _why_not(
        self, refs: list[NumberRef], company: CompanyRow, invoices: list[DocumentRow], currency: str
    ) -> str:
        """Why the invoices the purpose names cannot take the money (for the person reading)."""
        for ref in refs:
            for invoice in invoices:
                if _names(ref, invoice.number, invoice.display_number):
                    if invoice.currency != currency:
                        return (
                            f"{invoice.display_number} is in {invoice.currency}, the payment"
                            f" in {currency}"
                        )
                    return f"{invoice.display_number} is already covered by this import"
            for invoice in self._company_invoices_numbered(company.id, ref.number):
                if _names(ref, invoice.number, invoice.display_number):
                    state = "voided" if invoice.status == "voided" else "already paid"
                    return f"{invoice.display_number} of {company.name} is {state}"
        written = ", ".join(ref.text or str(ref.number) for ref in refs)
        return (
            f"the purpose names {written}, which is not an open invoice of {company.name}"
            " and no open invoice is for exactly this amount with a similar number"
        )

    # -- outgoing

    def _order_due(self, order: SupplierOrderRow) -> int:
        return self.due(TargetKind.SUPPLIER_ORDER, order.id, order.payable.minor)

    def _outgoing(self, facts: PaymentFacts) -> MatchOutcome:
        inn = "".join(ch for ch in facts.counterparty_inn if ch.isdigit())
        company = self.company(inn)
        if company is None:
            why = f"no company has the payee's ИНН {inn}" if inn else "no payee's ИНН"
            return MatchOutcome(OutcomeKind.UNMATCHED, reason=why)
        company_id = UUID(company.id)
        if SUPPLIER_ROLE not in company.roles:
            return MatchOutcome(
                OutcomeKind.UNMATCHED,
                company_id=company_id,
                reason=f"{company.name} is not a supplier; outgoing money pays supplier orders",
            )
        currency = facts.amount.currency
        amount = facts.amount.minor
        orders = [o for o in self._open_orders(company.id, currency) if self._order_due(o) > 0]
        named: list[SupplierOrderRow] = []
        for ref in document_numbers(facts.purpose, "order"):
            for order in orders:
                if order not in named and _names(ref, order.number, order.display_number):
                    named.append(order)
        if named:
            return self._pay_orders(named, amount, currency, company_id, "named in the purpose")
        exact = [o for o in orders if self._order_due(o) == amount]
        if len(exact) == 1:
            return self._pay_orders(
                exact, amount, currency, company_id, "the only open order for exactly this amount"
            )
        if exact:
            money = Money.from_minor(amount, currency)
            reason = (
                f"{len(exact)} open orders of {company.name} are for exactly {money};"
                " the purpose names none of them"
            )
            suggestions = tuple(
                Allocation(TargetKind.SUPPLIER_ORDER, UUID(o.id), money, reason=reason)
                for o in exact[:MAX_SUGGESTIONS]
            )
            label = ", ".join(o.display_number for o in exact[:MAX_SUGGESTIONS])
            return MatchOutcome(OutcomeKind.SUGGESTED, (), suggestions, company_id, reason, label)
        return MatchOutcome(
            OutcomeKind.UNMATCHED,
            company_id=company_id,
            reason=f"no open order of {company.name} is named in the purpose or is for"
            f" {Money.from_minor(amount, currency)}",
        )

    def _pay_orders(
        self,
        orders: list[SupplierOrderRow],
        amount: int,
        currency: str,
        company_id: UUID,
        why: str,
    ) -> MatchOutcome:
        left = amount
        allocations: list[Allocation] = []
        paid: list[SupplierOrderRow] = []
        for order in orders:
            if left <= 0:
                break
            share = min(left, self._order_due(order))
            allocations.append(
                Allocation(
                    TargetKind.SUPPLIER_ORDER,
                    UUID(order.id),
                    Money.from_minor(share, currency),
                    AllocationHow.AUTO,
                )
            )
            self._plan(TargetKind.SUPPLIER_ORDER, order.id, share)
            paid.append(order)
            left -= share
        labels = ", ".join(o.display_number for o in paid)
        parts = [f"{labels}: {why}"]
        still = self._order_due(paid[-1])
        if still > 0:
            parts.append(f"{Money.from_minor(still, currency)} still owed")
        if left > 0:
            parts.append(f"{Money.from_minor(left, currency)} more than was owed is unallocated")
        return MatchOutcome(
            OutcomeKind.OUTGOING_LINKED,
            tuple(allocations),
            (),
            company_id,
            "; ".join(parts),
            labels,
        )
