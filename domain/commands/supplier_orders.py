"""Supplier-order commands: orders from a won deal's lines, their sending and their states.

An order per supplier: a line goes to the supplier of its product, at the line's cost (what
the business pays). Lines without a product or whose product has no supplier cannot be
ordered and are reported back. The order's id is derived from the deal and the supplier,
so asking twice gives the same orders.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from threadline.domain.commands.base import Commands
from threadline.domain.commands.documents import request_document_send, take_number
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.company import Company
from threadline.domain.model.deal import Deal, DealLine, DealStatus, deal_figures
from threadline.domain.model.document import DEFAULT_SERIES, Document, DocumentKind
from threadline.domain.model.errors import Conflict, InvalidInput
from threadline.domain.model.product import Product
from threadline.domain.model.supplier_order import SupplierOrder, SupplierOrderState

ORDER_NAMESPACE = uuid5(NAMESPACE_URL, "https://threadline.dev/supplier-order")
DEFAULT_PAYMENT_DAYS = 14


def supplier_order_id_for(deal_id: UUID, supplier_id: UUID) -> UUID:
    return uuid5(ORDER_NAMESPACE, f"{deal_id}|{supplier_id}")


@dataclass(frozen=True)
class OrdersFromDeal:
    order_ids: list[UUID]
    skipped_lines: list[str]  # names of lines that have no product with a supplier


def _at_cost(line: DealLine) -> DealLine:
    """The line as the supplier bills it: the cost as the price, no discount, no margin."""
    return replace(line, price=line.cost, discount=line.cost * 0, cost=line.cost)


class SupplierOrderCommands(Commands):
    def create_supplier_orders(
        self,
        deal_id: UUID,
        actor: str,
        issued_on: date,
        payment_days: int = DEFAULT_PAYMENT_DAYS,
    ) -> Committed[OrdersFromDeal]:
        if not 0 <= payment_days <= 365:
            raise InvalidInput("payment_days", "0 to 365 days")
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> OrdersFromDeal:
            deal = unit.get(deal_id, Deal)
            if deal.status != DealStatus.WON.value:
                raise Conflict("supplier orders are made from a won deal")
            by_supplier: dict[UUID, list[DealLine]] = {}
            skipped = []
            for line in deal.lines:
                product = unit.find(UUID(line.product_id), Product) if line.product_id else None
                if product is None or product.supplier_id is None:
                    skipped.append(line.name)
                    continue
                by_supplier.setdefault(product.supplier_id, []).append(_at_cost(line))
            order_ids = []
            for supplier_id, lines in by_supplier.items():
                order_id = supplier_order_id_for(deal.id, supplier_id)
                order_ids.append(order_id)
                if unit.exists(order_id):
                    continue
                unit.get(supplier_id, Company)
                series = DEFAULT_SERIES[DocumentKind.PURCHASE_ORDER]
                numbered = take_number(unit, series, issued_on.year, order_id)
                due = issued_on + timedelta(days=payment_days)
                unit.add(
                    SupplierOrder(
                        id=order_id,
                        supplier_id=supplier_id,
                        deal_id=deal.id,
                        series=series,
                        year=numbered.year,
                        number=numbered.number,
                        display_number=numbered.display_number,
                        currency=deal.currency,
                        lines=[x.state() for x in lines],
                        amount=deal_figures(lines, deal.currency).amount.rounded().state(),
                        payment_due_on=due.isoformat(),
                        actor=actor,
                        correlation_id=correlation_id,
                    )
                )
            return OrdersFromDeal(order_ids, skipped)

        return self.writer.submit(command)

    def send_supplier_order(
        self,
        order_id: UUID,
        document_id: UUID,
        contact_id: UUID,
        text: str,
        actor: str,
        message_id: UUID | None = None,
    ) -> Committed[UUID]:
        """E-mail the order's printed document to the supplier's contact; the order is sent."""
        new_id = message_id or uuid4()

        def command(unit: UnitOfWork) -> UUID:
            if unit.exists(new_id):
                return new_id
            order = unit.get(order_id, SupplierOrder)
            document = unit.get(document_id, Document)
            if document.supplier_order_id != order.id:
                raise InvalidInput("document_id", "the document is not this order's")
            request_document_send(unit, document, contact_id, "email", text, None, new_id, actor)
            order.change_state(
                SupplierOrderState.SENT,
                actor,
                str(new_id),
                document_id=document_id,
                message_id=new_id,
            )
            return new_id

        return self.writer.submit(command)

    def change_supplier_order_state(
        self,
        order_id: UUID,
        state: SupplierOrderState,
        actor: str,
        expected_on: date | None = None,
        note: str = "",
    ) -> Committed[None]:
        """Confirmed (with the delivery date the supplier gave), received or cancelled."""
        if state in (SupplierOrderState.DRAFT, SupplierOrderState.SENT):
            raise InvalidInput("state", "an order becomes sent by sending it")
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> None:
            unit.get(order_id, SupplierOrder).change_state(
                state,
                actor,
                correlation_id,
                expected_on=expected_on.isoformat() if expected_on else None,
                note=note,
            )

        return self.writer.submit(command)
