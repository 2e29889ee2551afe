"""Supplier orders: made from a won deal, printed, e-mailed, confirmed, received.

The API counterpart of the supplier-order screens. An order is made per supplier of the won
deal's products (asking again gives the same orders); its purchase order is a document of kind
`purchase_order` (`POST /api/documents` with `supplier_order_id`, or `print: true` when
sending); sending e-mails that document to one of the supplier's contacts. What is still owed
(`payable`) falls as outgoing payments are allocated to the order. Anyone signed in reads
orders; changing them needs a writer. Writes answer once the change is in the views.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field

from threadline.domain.model.errors import InvalidInput, NotFound
from threadline.domain.model.money import Money
from threadline.domain.model.supplier_order import SupplierOrderState
from threadline.projections.documents import DocumentFilter, documents_page
from threadline.projections.supplier_orders import (
    SupplierOrderFilter,
    SupplierOrderRow,
    supplier_order,
    supplier_orders_page,
)
from threadline.services.api.deal_schemas import MoneyOut
from threadline.services.api.deps import PrincipalDep, RuntimeDep, WriterDep
from threadline.services.api.routes_payments import money_out
from threadline.services.api.schemas import Offset
from threadline.services.documents.issuing import IssueRequest, business_today, issue_document
from threadline.services.runtime import Runtime

router = APIRouter(prefix="/api", tags=["supplier orders"])

State = Literal["draft", "sent", "confirmed", "received", "cancelled"]


class OrdersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    issued_on: date | None = Field(None, description="default: today")
    payment_days: int = Field(14, ge=0, le=365, description="the supplier is paid within")


class OrdersOut(BaseModel):
    order_ids: list[UUID]
    skipped_lines: list[str] = Field(
        description="lines that no order carries: no product, or a product without a supplier"
    )


class SupplierOrderOut(BaseModel):
    id: UUID
    display_number: str
    supplier_id: UUID
    deal_id: UUID | None
    state: State
    amount: MoneyOut
    paid: MoneyOut
    payable: MoneyOut
    payment_due_on: str | None
    days_overdue: int
    expected_on: str | None
    lines: list[dict[str, Any]]
    note: str
    sent_at: str | None
    confirmed_at: str | None
    received_at: str | None
    created_at: str
    document_ids: list[UUID] = Field(description="its printed purchase orders, newest first")


class SupplierOrderListOut(BaseModel):
    items: list[SupplierOrderOut]
    total: int


class SendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    contact_id: UUID = Field(description="the supplier's person who gets the e-mail")
    text: str = Field(..., min_length=1, max_length=5000)
    document_id: UUID | None = Field(
        None, description="the printed purchase order; default: the newest, or print one now"
    )
    language: Literal["ru", "en"] = Field("ru", description="when a purchase order is printed")


class SendOut(BaseModel):
    message_id: UUID
    document_id: UUID


class StateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: Literal["confirmed", "received", "cancelled"]
    expected_on: date | None = Field(None, description="confirmed: the delivery date promised")
    note: str = Field("", max_length=1000)


def _order_out(runtime: Runtime, row: SupplierOrderRow) -> SupplierOrderOut:
    printed = documents_page(
        runtime.views, DocumentFilter(supplier_order_id=row.id, status="issued"), limit=50
    )[0]
    return SupplierOrderOut(
        id=UUID(row.id),
        display_number=row.display_number,
        supplier_id=UUID(row.supplier_id),
        deal_id=UUID(row.deal_id) if row.deal_id else None,
        state=row.state,  # type: ignore[arg-type]  # the view holds SupplierOrderState values
        amount=money_out(row.amount),
        paid=money_out(Money.from_minor(row.paid_minor, row.currency)),
        payable=money_out(row.payable),
        payment_due_on=row.payment_due_on,
        days_overdue=row.days_overdue(business_today(runtime)),
        expected_on=row.expected_on,
        lines=row.lines,
        note=row.note,
        sent_at=row.sent_at,
        confirmed_at=row.confirmed_at,
        received_at=row.received_at,
        created_at=row.created_at,
        document_ids=[UUID(d.id) for d in printed],
    )


def _known(runtime: Runtime, order_id: UUID) -> SupplierOrderRow:
    row = supplier_order(runtime.views, order_id)
    if row is None:
        raise NotFound("supplier order", str(order_id))
    return row


@router.post(
    "/deals/{deal_id}/supplier-orders",
    response_model=OrdersOut,
    status_code=status.HTTP_201_CREATED,
)
def create_orders(
    deal_id: UUID, runtime: RuntimeDep, principal: WriterDep, body: OrdersIn | None = None
) -> OrdersOut:
    """One order per supplier of the won deal's products, at the lines' cost (409 for a deal
    that is not won). Asking again answers the same orders."""
    wanted = body or OrdersIn(issued_on=None, payment_days=14)
    committed = runtime.app.create_supplier_orders(
        deal_id,
        principal.actor,
        wanted.issued_on or business_today(runtime),
        wanted.payment_days,
    )
    made = committed.value
    runtime.wait_for_views(committed.notification_id)
    return OrdersOut(order_ids=made.order_ids, skipped_lines=made.skipped_lines)


@router.get("/supplier-orders", response_model=SupplierOrderListOut)
def list_orders(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    state: State | None = None,
    supplier_id: UUID | None = None,
    deal_id: UUID | None = None,
    unpaid: Annotated[bool, Query(description="only orders with something still to pay")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> SupplierOrderListOut:
    """Supplier orders, newest first, and how many match."""
    where = SupplierOrderFilter(
        state=state,
        supplier_id=str(supplier_id) if supplier_id else None,
        deal_id=str(deal_id) if deal_id else None,
        unpaid=unpaid,
    )
    rows, total = supplier_orders_page(runtime.views, where, limit, offset)
    return SupplierOrderListOut(items=[_order_out(runtime, r) for r in rows], total=total)


@router.get("/supplier-orders/{order_id}", response_model=SupplierOrderOut)
def get_order(order_id: UUID, runtime: RuntimeDep, principal: PrincipalDep) -> SupplierOrderOut:
    return _order_out(runtime, _known(runtime, order_id))


@router.post(
    "/supplier-orders/{order_id}/send",
    response_model=SendOut,
    status_code=status.HTTP_201_CREATED,
)
def send_order(order_id: UUID, body: SendIn, runtime: RuntimeDep, principal: WriterDep) -> SendOut:
    """E-mail the purchase order to the supplier's person; the order becomes sent. Without a
    printed purchase order one is printed first (under the order's number)."""
    row = _known(runtime, order_id)
    document_id = body.document_id
    if document_id is None:
        printed = _order_out(runtime, row).document_ids
        if printed:
            document_id = printed[0]
        else:
            request = IssueRequest(
                kind="purchase_order",
                supplier_order_id=order_id,
                language=body.language,
                issued_on=business_today(runtime),
            )
            document_id = issue_document(runtime, request, principal.actor)
    committed = runtime.app.send_supplier_order(
        order_id, document_id, body.contact_id, body.text, principal.actor
    )
    message_id = committed.value
    runtime.wait_for_views(committed.notification_id)
    return SendOut(message_id=message_id, document_id=document_id)


@router.post("/supplier-orders/{order_id}/state", response_model=SupplierOrderOut)
def change_state(
    order_id: UUID, body: StateIn, runtime: RuntimeDep, principal: WriterDep
) -> SupplierOrderOut:
    """Confirmed (with the promised delivery date), received or cancelled; 409 for a move its
    state does not allow (a draft is sent first)."""
    if body.expected_on is not None and body.state != "confirmed":
        raise InvalidInput("expected_on", "only a confirmation carries a delivery date")
    committed = runtime.app.change_supplier_order_state(
        order_id,
        SupplierOrderState(body.state),
        principal.actor,
        expected_on=body.expected_on,
        note=body.note,
    )
    runtime.wait_for_views(committed.notification_id)
    return _order_out(runtime, _known(runtime, order_id))
