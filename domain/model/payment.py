"""The Payment aggregate: money that came in or went out, and what it paid.

A payment is recorded as the bank saw it (`PaymentRecorded`: amount, day, counterparty with
its ИНН and account, the purpose, the bank document) and then allocated: all or part of it
to an invoice, a contract, a deal or (outgoing money only) a supplier order. An automatic
match and a person's decision are both allocations, told apart by `how`; a near miss is
only a suggestion (`PaymentMatchSuggested`) until a person confirms it, so nothing is
applied silently. Allocations never exceed the payment, an incoming payment never pays a
supplier order and an outgoing one never pays a customer's invoice.

A payment imported from a file has an id derived from what identifies it at the bank
(`payment_id_for`), so importing the same statement twice records nothing new.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from threadline.domain.model.errors import Conflict, InvalidInput
from threadline.domain.model.history_clock import HistoryClock
from threadline.domain.model.money import Money

PAYMENT_NAMESPACE = uuid5(NAMESPACE_URL, "https://threadline.dev/payment")


class Direction(StrEnum):
    IN = "in"  # from a client
    OUT = "out"  # to a supplier


class TargetKind(StrEnum):
    INVOICE = "invoice"
    CONTRACT = "contract"
    DEAL = "deal"
    SUPPLIER_ORDER = "supplier_order"


class AllocationHow(StrEnum):
    AUTO = "auto"  # matched on import by ИНН, amount and invoice number
    CONFIRMED = "confirmed"  # a suggestion a person confirmed
    MANUAL = "manual"  # a person allocated it


def payment_id_for(key: str) -> UUID:
    """The id of a payment identified at the bank by `key` (account, day, number, amount...)."""
    return uuid5(PAYMENT_NAMESPACE, key)


def check_target(direction: str, target_kind: TargetKind) -> None:
    if direction == Direction.IN and target_kind == TargetKind.SUPPLIER_ORDER:
        raise InvalidInput("target_kind", "an incoming payment cannot pay a supplier order")
    if direction == Direction.OUT and target_kind == TargetKind.INVOICE:
        raise InvalidInput(
            "target_kind", "an outgoing payment pays a supplier order, never a client's invoice"
        )


class Payment(Aggregate):
    class PaymentRecorded(HistoryClock, Aggregate.Created):
        direction: str
        amount: dict[str, str]
        paid_on: str
        company_id: UUID | None  # the counterparty, when known by its ИНН
        contact_id: UUID | None
        bank_document: dict[str, Any]  # {"kind", "number", "date"} as the bank wrote them
        source: dict[str, Any]  # {"kind": "api" | "csv" | "statement", "file_sha256", "line"}
        personal: dict[str, Any]  # {"counterparty": {name, inn, kpp, account, bik}, "purpose"}
        actor: str
        correlation_id: str

    @event(PaymentRecorded)
    def __init__(
        self,
        id: UUID,
        direction: str,
        amount: dict[str, str],
        paid_on: str,
        company_id: UUID | None,
        contact_id: UUID | None,
        bank_document: dict[str, Any],
        source: dict[str, Any],
        personal: dict[str, Any],
        actor: str,
        correlation_id: str,
    ) -> None:
        self.direction = direction
        self.amount = Money.from_state(amount)
        self.paid_on = paid_on
        self.company_id = company_id
        self.contact_id = contact_id
        self.allocations: dict[tuple[str, UUID], Decimal] = {}
        self.suggestions: set[tuple[str, UUID]] = set()

    @property
    def allocated(self) -> Decimal:
        return sum(self.allocations.values(), Decimal(0))

    @property
    def unallocated(self) -> Money:
        return Money(self.amount.amount - self.allocated, self.amount.currency)

    class PaymentAllocated(HistoryClock, Aggregate.Event):
        """`amount` of the payment pays `target`; the links let views file it without joins."""

        target_kind: str
        target_id: UUID
        amount: dict[str, str]
        how: str
        deal_id: UUID | None
        company_id: UUID | None
        contact_id: UUID | None
        actor: str
        correlation_id: str

    def allocate(
        self,
        target_kind: TargetKind,
        target_id: UUID,
        amount: Money,
        how: AllocationHow,
        links: dict[str, UUID | None],
        actor: str,
        correlation_id: str,
    ) -> None:
        check_target(self.direction, target_kind)
        if amount.currency != self.amount.currency:
            raise InvalidInput("amount.currency", f"the payment is in {self.amount.currency}")
        if amount.amount <= 0:
            raise InvalidInput("amount", "an allocation is more than zero")
        if amount.amount > self.unallocated.amount:
            raise InvalidInput(
                "amount", f"only {self.unallocated} of the payment is not allocated yet"
            )
        if (target_kind.value, target_id) in self.allocations:
            raise Conflict(f"the payment already pays this {target_kind.value}")
        self._allocated(
            target_kind.value,
            target_id,
            amount.state(),
            how.value,
            links.get("deal_id"),
            links.get("company_id"),
            links.get("contact_id"),
            actor,
            correlation_id,
        )

    @event(PaymentAllocated)
    def _allocated(
        self,
        target_kind: str,
        target_id: UUID,
        amount: dict[str, str],
        how: str,
        deal_id: UUID | None,
        company_id: UUID | None,
        contact_id: UUID | None,
        actor: str,
        correlation_id: str,
    ) -> None:
        self.allocations[(target_kind, target_id)] = Money.from_state(amount).amount
        self.suggestions.discard((target_kind, target_id))
        if company_id is not None and self.company_id is None:
            self.company_id = company_id

    class PaymentAllocationRemoved(HistoryClock, Aggregate.Event):
        """A wrong allocation undone (the money is unallocated again)."""

        target_kind: str
        target_id: UUID
        amount: dict[str, str]
        reason: str
        actor: str
        correlation_id: str

    def remove_allocation(
        self, target_kind: TargetKind, target_id: UUID, reason: str, actor: str, correlation_id: str
    ) -> None:
        amount = self.allocations.get((target_kind.value, target_id))
        if amount is None:
            raise InvalidInput("target_id", f"the payment does not pay this {target_kind.value}")
        state = Money(amount, self.amount.currency).state()
        self._allocation_removed(
            target_kind.value, target_id, state, reason.strip()[:500], actor, correlation_id
        )

    @event(PaymentAllocationRemoved)
    def _allocation_removed(
        self,
        target_kind: str,
        target_id: UUID,
        amount: dict[str, str],
        reason: str,
        actor: str,
        correlation_id: str,
    ) -> None:
        self.allocations.pop((target_kind, target_id), None)

    class PaymentMatchSuggested(HistoryClock, Aggregate.Event):
        """A near miss for a person to confirm: never applied by itself."""

        target_kind: str
        target_id: UUID
        amount: dict[str, str]
        reason: str
        actor: str
        correlation_id: str

    def suggest(
        self,
        target_kind: TargetKind,
        target_id: UUID,
        amount: Money,
        reason: str,
        actor: str,
        correlation_id: str,
    ) -> None:
        check_target(self.direction, target_kind)
        key = (target_kind.value, target_id)
        if key in self.suggestions or key in self.allocations:
            return
        self._suggested(
            target_kind.value, target_id, amount.state(), reason[:500], actor, correlation_id
        )

    @event(PaymentMatchSuggested)
    def _suggested(
        self,
        target_kind: str,
        target_id: UUID,
        amount: dict[str, str],
        reason: str,
        actor: str,
        correlation_id: str,
    ) -> None:
        self.suggestions.add((target_kind, target_id))

    class PaymentSuggestionDismissed(HistoryClock, Aggregate.Event):
        target_kind: str
        target_id: UUID
        actor: str
        correlation_id: str

    def dismiss(
        self, target_kind: TargetKind, target_id: UUID, actor: str, correlation_id: str
    ) -> None:
        if (target_kind.value, target_id) not in self.suggestions:
            raise InvalidInput("target_id", "no such suggestion on this payment")
        self._dismissed(target_kind.value, target_id, actor, correlation_id)

    @event(PaymentSuggestionDismissed)
    def _dismissed(
        self, target_kind: str, target_id: UUID, actor: str, correlation_id: str
    ) -> None:
        self.suggestions.discard((target_kind, target_id))
