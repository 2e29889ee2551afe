"""The SupplierOrder aggregate: what a trading business buys to deliver a won deal.

From a won deal's lines, one order per supplier (the products' supplier) with the lines'
quantities at the products' costs. It is numbered like a document (series "ЗП"), printed as
a `Document` of kind ``purchase_order`` and sent by e-mail; then the supplier confirms it
(with a delivery date), the goods are received. What the business owes the supplier is the
order's amount less the outgoing payments allocated to it, due on `payment_due_on`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from threadline.domain.model.errors import Conflict
from threadline.domain.model.history_clock import HistoryClock


class SupplierOrderState(StrEnum):
    DRAFT = "draft"
    SENT = "sent"
    CONFIRMED = "confirmed"
    RECEIVED = "received"
    CANCELLED = "cancelled"


_NEXT: dict[str, tuple[str, ...]] = {
    SupplierOrderState.DRAFT: (SupplierOrderState.SENT, SupplierOrderState.CANCELLED),
    SupplierOrderState.SENT: (
        SupplierOrderState.SENT,  # sent again (a corrected order)
        SupplierOrderState.CONFIRMED,
        SupplierOrderState.RECEIVED,
        SupplierOrderState.CANCELLED,
    ),
    SupplierOrderState.CONFIRMED: (SupplierOrderState.RECEIVED, SupplierOrderState.CANCELLED),
    SupplierOrderState.RECEIVED: (),
    SupplierOrderState.CANCELLED: (),
}


class SupplierOrder(Aggregate):
    class SupplierOrderCreated(HistoryClock, Aggregate.Created):
        supplier_id: UUID
        deal_id: UUID | None
        series: str
        year: int
        number: int
        display_number: str
        currency: str
        lines: list[dict[str, Any]]  # DealLine states, priced at cost
        amount: dict[str, str]
        payment_due_on: str | None
        actor: str
        correlation_id: str

    @event(SupplierOrderCreated)
    def __init__(
        self,
        id: UUID,
        supplier_id: UUID,
        deal_id: UUID | None,
        series: str,
        year: int,
        number: int,
        display_number: str,
        currency: str,
        lines: list[dict[str, Any]],
        amount: dict[str, str],
        payment_due_on: str | None,
        actor: str,
        correlation_id: str,
    ) -> None:
        self.supplier_id = supplier_id
        self.deal_id = deal_id
        self.display_number = display_number
        self.currency = currency
        self.lines = lines
        self.amount = amount
        self.payment_due_on = payment_due_on
        self.state = SupplierOrderState.DRAFT.value
        self.document_ids: list[UUID] = []

    class SupplierOrderStateChanged(HistoryClock, Aggregate.Event):
        """Sent (with the document and the message), confirmed (with the delivery date),
        received or cancelled."""

        state: str
        document_id: UUID | None
        message_id: UUID | None
        expected_on: str | None
        note: str
        actor: str
        correlation_id: str

    def change_state(
        self,
        state: SupplierOrderState,
        actor: str,
        correlation_id: str,
        *,
        document_id: UUID | None = None,
        message_id: UUID | None = None,
        expected_on: str | None = None,
        note: str = "",
    ) -> None:
        if state.value not in _NEXT[self.state]:
            raise Conflict(f"order {self.display_number} is {self.state}; it cannot become {state}")
        self._state_changed(
            state.value, document_id, message_id, expected_on, note[:500], actor, correlation_id
        )

    @event(SupplierOrderStateChanged)
    def _state_changed(
        self,
        state: str,
        document_id: UUID | None,
        message_id: UUID | None,
        expected_on: str | None,
        note: str,
        actor: str,
        correlation_id: str,
    ) -> None:
        self.state = state
        if document_id is not None:
            self.document_ids.append(document_id)
