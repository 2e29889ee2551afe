"""Payment commands: record payments (one, or a bank file's batch), allocate, suggest, undo.

What a payment pays is decided by the caller (the matcher in `services.payments`, or a
person); a command checks that the target exists and may be paid by a payment of that
direction, and takes the target's deal and client so the views need no joins. A batch
records each payment once: a payment whose id exists is skipped with its allocations, so
importing a file again records nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID, uuid4

from threadline.domain.commands.base import Commands
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.contract import Contract
from threadline.domain.model.deal import Deal
from threadline.domain.model.document import Document, DocumentKind, DocumentStatus
from threadline.domain.model.errors import Conflict, InvalidInput
from threadline.domain.model.money import Money
from threadline.domain.model.payment import AllocationHow, Direction, Payment, TargetKind
from threadline.domain.model.supplier_order import SupplierOrder

MAX_BATCH = 1000


@dataclass(frozen=True)
class PaymentInput:
    """A payment as the bank (or a person) reports it."""

    payment_id: UUID
    direction: Direction
    amount: Money
    paid_on: date
    counterparty: dict[str, str] = field(default_factory=dict)  # name, inn, kpp, account, bik
    purpose: str = ""
    bank_document: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    company_id: UUID | None = None
    contact_id: UUID | None = None


@dataclass(frozen=True)
class Allocation:
    """What (part of) a payment pays, or, as a suggestion, might pay (`reason` says why)."""

    target_kind: TargetKind
    target_id: UUID
    amount: Money
    how: AllocationHow = AllocationHow.MANUAL
    reason: str = ""


@dataclass(frozen=True)
class PaymentEntry:
    payment: PaymentInput
    allocations: tuple[Allocation, ...] = ()
    suggestions: tuple[Allocation, ...] = ()


def check_payment(payment: PaymentInput) -> None:
    if payment.amount.amount <= 0:
        raise InvalidInput("amount", "a payment's amount is more than zero")
    if len(payment.purpose) > 2000:
        raise InvalidInput("purpose", "at most 2000 characters")


def target_links(unit: UnitOfWork, kind: TargetKind, target_id: UUID) -> dict[str, UUID | None]:
    """The deal and client of what a payment pays; refuses what cannot be paid."""
    if kind == TargetKind.INVOICE:
        invoice = unit.get(target_id, Document)
        if invoice.kind != DocumentKind.INVOICE.value:
            raise InvalidInput("target_id", f"{invoice.display_number} is not an invoice")
        if invoice.status == DocumentStatus.VOIDED.value:
            raise Conflict(f"invoice {invoice.display_number} is voided")
        return {
            "deal_id": invoice.deal_id,
            "company_id": invoice.company_id,
            "contact_id": invoice.contact_id,
        }
    if kind == TargetKind.CONTRACT:
        contract = unit.get(target_id, Contract)
        return {
            "deal_id": contract.deal_id,
            "company_id": contract.company_id,
            "contact_id": contract.contact_id,
        }
    if kind == TargetKind.DEAL:
        deal = unit.get(target_id, Deal)
        return {"deal_id": deal.id, "company_id": deal.company_id, "contact_id": deal.contact_id}
    order = unit.get(target_id, SupplierOrder)
    return {"deal_id": order.deal_id, "company_id": order.supplier_id, "contact_id": None}


def _record(unit: UnitOfWork, payment: PaymentInput, actor: str, correlation_id: str) -> Payment:
    return unit.add(
        Payment(
            id=payment.payment_id,
            direction=payment.direction.value,
            amount=payment.amount.rounded().state(),
            paid_on=payment.paid_on.isoformat(),
            company_id=payment.company_id,
            contact_id=payment.contact_id,
            bank_document=dict(payment.bank_document),
            source=dict(payment.source),
            personal={"counterparty": dict(payment.counterparty), "purpose": payment.purpose},
            actor=actor,
            correlation_id=correlation_id,
        )
    )


def _apply(
    unit: UnitOfWork, payment: Payment, entry: PaymentEntry, actor: str, correlation_id: str
) -> None:
    for item in entry.allocations:
        links = target_links(unit, item.target_kind, item.target_id)
        payment.allocate(
            item.target_kind, item.target_id, item.amount, item.how, links, actor, correlation_id
        )
    for item in entry.suggestions:
        target_links(unit, item.target_kind, item.target_id)
        payment.suggest(
            item.target_kind, item.target_id, item.amount, item.reason, actor, correlation_id
        )


class PaymentCommands(Commands):
    def record_payments(self, entries: list[PaymentEntry], actor: str) -> Committed[list[UUID]]:
        """Record each payment not recorded yet, with its allocations and suggestions; returns
        the ids recorded now (a repeated file returns [])."""
        if len(entries) > MAX_BATCH:
            raise InvalidInput("payments", f"at most {MAX_BATCH} payments in one batch")
        for entry in entries:
            check_payment(entry.payment)
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> list[UUID]:
            recorded = []
            unit.prefetch(e.payment.payment_id for e in entries)
            for entry in entries:
                if unit.exists(entry.payment.payment_id):
                    continue
                payment = _record(unit, entry.payment, actor, correlation_id)
                _apply(unit, payment, entry, actor, correlation_id)
                recorded.append(payment.id)
            return recorded

        return self.writer.submit(command)

    def allocate_payment(
        self,
        payment_id: UUID,
        target_kind: TargetKind,
        target_id: UUID,
        amount: Money | None,
        how: AllocationHow,
        actor: str,
    ) -> Committed[None]:
        """`amount` None: what is left of the payment."""
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> None:
            payment = unit.get(payment_id, Payment)
            links = target_links(unit, target_kind, target_id)
            share = amount if amount is not None else payment.unallocated
            payment.allocate(target_kind, target_id, share, how, links, actor, correlation_id)

        return self.writer.submit(command)

    def remove_payment_allocation(
        self, payment_id: UUID, target_kind: TargetKind, target_id: UUID, reason: str, actor: str
    ) -> Committed[None]:
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> None:
            unit.get(payment_id, Payment).remove_allocation(
                target_kind, target_id, reason, actor, correlation_id
            )

        return self.writer.submit(command)

    def dismiss_payment_suggestion(
        self, payment_id: UUID, target_kind: TargetKind, target_id: UUID, actor: str
    ) -> Committed[None]:
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> None:
            unit.get(payment_id, Payment).dismiss(target_kind, target_id, actor, correlation_id)

        return self.writer.submit(command)
