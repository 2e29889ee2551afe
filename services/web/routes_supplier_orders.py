"""Supplier orders: the list (by state and supplier, with what is still payable), an order's
page with its lines, its printed purchase order, sending it, and its state.

An order is made from a won deal (the deal page's "Create supplier orders"); here it is
printed (a purchase-order document under the order's own number, through the documents
service like every other document), e-mailed to one of the supplier's people
(`send_supplier_order`: the order becomes "sent"), then marked confirmed (with the delivery
date the supplier gave), received, or cancelled. The domain refuses a move its state does
not allow; the page shows the refusal with the API's status code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from threadline.domain.model.deal import DealLine
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.money import Money
from threadline.domain.model.supplier_order import SupplierOrderState
from threadline.projections.companies import companies_page, company, company_contacts
from threadline.projections.contact_card import identities_of
from threadline.projections.deals import deal
from threadline.projections.documents import DocumentFilter, DocumentRow, documents_page
from threadline.projections.payments import allocations_to
from threadline.projections.supplier_orders import (
    SupplierOrderFilter,
    SupplierOrderRow,
    supplier_order,
    supplier_orders_page,
)
from threadline.services.documents.issuing import IssueRequest, issue_document
from threadline.services.web.deal_money import (
    KIND_LABELS,
    LANGUAGES,
    ORDER_STATES,
    PAYMENT_STATES,
    local_today,
    paid_lines,
)
from threadline.services.web.deps import WebUser, WebUserDep, WebWriterDep
from threadline.services.web.errors import message_of, status_of
from threadline.services.web.posted_forms import COMMAND_ERRORS, FormDep, field, parse_id, redirect

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
MAX_PAGE = 100_000
SUPPLIERS_SHOWN = 500
MOVES = {
    "confirmed": SupplierOrderState.CONFIRMED,
    "received": SupplierOrderState.RECEIVED,
    "cancelled": SupplierOrderState.CANCELLED,
}
"""The states a person sets here; "sent" comes from sending the purchase order."""
FLASHES = {
    "printed": "The purchase order was issued.",
    "sent": "The purchase order was sent to the supplier.",
    "confirmed": "The order is confirmed.",
    "received": "The order is received.",
    "cancelled": "The order is cancelled.",
}


@dataclass(frozen=True)
class OrderLine:
    name: str
    quantity: str
    unit: str
    price: Decimal
    total: Decimal


@dataclass(frozen=True)
class Recipient:
    """One of the supplier's people with an e-mail address (purchase orders go by e-mail)."""

    contact_id: str
    label: str


def lines_of(order: SupplierOrderRow) -> list[OrderLine]:
    out = []
    for state in order.lines:
        line = DealLine.from_state(state)
        figures = line.figures(order.currency)
        out.append(
            OrderLine(
                name=line.name,
                quantity=format(line.quantity.normalize(), "f"),
                unit=line.unit,
                price=line.price,
                total=figures.total,
            )
        )
    return out


def recipients_of(user: WebUser, supplier_id: str) -> list[Recipient]:
    views = user.runtime.views
    people = company_contacts(views, supplier_id)[:SUPPLIERS_SHOWN]
    found = identities_of(views, [p.id for p in people])
    out = []
    for person in people:
        for identity in found.get(person.id, []):
            if identity.kind == "email":
                out.append(Recipient(person.id, f"{person.display_name} <{identity.value}>"))
                break
    return out


def purchase_orders(user: WebUser, order_id: str) -> list[DocumentRow]:
    where = DocumentFilter(supplier_order_id=order_id, kind="purchase_order")
    return documents_page(user.runtime.views, where, limit=100)[0]


def page_number(request: Request) -> int:
    given = request.query_params.get("page", "1").strip()
    if not (given.isascii() and given.isdigit()):
        return 1
    return max(1, min(int(given[:7]), MAX_PAGE))


def money_labels(user: WebUser) -> dict[str, Any]:
    """What the shared money macros need of the `money` context (labels and today)."""
    return {
        "today": local_today(user),
        "kind_labels": KIND_LABELS,
        "payment_states": PAYMENT_STATES,
        "order_states": ORDER_STATES,
        "choices": [],
    }


@router.get("/supplier-orders")
def orders_list(request: Request, user: WebUserDep) -> HTMLResponse:
    params = request.query_params
    state = params.get("state", "").strip()
    state = state if state in ORDER_STATES else ""
    supplier = parse_id(params.get("supplier", "").strip()) or ""
    unpaid = params.get("unpaid", "") == "1"
    number = page_number(request)
    where = SupplierOrderFilter(state=state or None, supplier_id=supplier or None, unpaid=unpaid)
    views = user.runtime.views
    rows, total = supplier_orders_page(views, where, PAGE_SIZE, (number - 1) * PAGE_SIZE)
    suppliers, _count = companies_page(views, SUPPLIERS_SHOWN, 0, role="supplier")
    names = {c.id: c.name for c in suppliers}
    for row in rows:
        if row.supplier_id not in names:
            found = company(views, row.supplier_id)
            names[row.supplier_id] = found.name if found else "—"
    query = [(k, v) for k, v in (("state", state), ("supplier", supplier)) if v]
    if unpaid:
        query.append(("unpaid", "1"))
    return user.render(
        "supplier_orders/list.html",
        orders=rows,
        total=total,
        number=number,
        pages=max(1, -(-total // PAGE_SIZE)),
        base=urlencode(query),
        state=state,
        supplier=supplier,
        unpaid=unpaid,
        suppliers=suppliers,
        names=names,
        money=money_labels(user),
    )


def render_order(
    user: WebUser,
    order: SupplierOrderRow,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    flash: str | None = None,
) -> HTMLResponse:
    views = user.runtime.views
    supplier = company(views, order.supplier_id)
    source = deal(views, order.deal_id) if order.deal_id else None
    return user.render(
        "supplier_orders/page.html",
        status_code=status_code,
        order=order,
        paid=Money.from_minor(order.paid_minor, order.currency),
        supplier=supplier,
        source=source,
        lines=lines_of(order),
        documents=purchase_orders(user, order.id),
        payments=paid_lines(user, allocations_to(views, "supplier_order", order.id)),
        recipients=recipients_of(user, order.supplier_id),
        languages=LANGUAGES,
        money=money_labels(user),
        errors=errors or {},
        flashes=[user._(FLASHES[flash])] if flash in FLASHES else [],
    )


def missing(user: WebUser) -> HTMLResponse:
    text = user._("This supplier order does not exist.")
    return user.render("error.html", status_code=404, title="404", message=text)


def known_order(user: WebUser, order_id: str) -> SupplierOrderRow | None:
    known = parse_id(order_id)
    return supplier_order(user.runtime.views, known) if known else None


@router.get("/supplier-orders/{order_id}", response_model=None)
def order_page(order_id: str, user: WebUserDep, done: str | None = None) -> Response:
    found = known_order(user, order_id)
    if found is None:
        return missing(user)
    return render_order(user, found, flash=done)


def refused(user: WebUser, order: SupplierOrderRow, key: str, error: Exception) -> HTMLResponse:
    return render_order(user, order, status_of(error), {key: message_of(user, error)})


def after(user: WebUser, order: SupplierOrderRow, flash: str) -> Response:
    user.runtime.wait_for_views(user.runtime.app.recorder.max_notification_id())
    return redirect(f"/supplier-orders/{order.id}", flash)


@router.post("/supplier-orders/{order_id}/document", response_model=None)
def print_order(order_id: str, user: WebWriterDep, form: FormDep) -> Response:
    """Issue the printed purchase order (under the order's own number)."""
    found = known_order(user, order_id)
    if found is None:
        return missing(user)
    try:
        language = field(form, "language") or "ru"
        if language not in LANGUAGES:
            raise InvalidInput("language", "choose Russian or English")
        request = IssueRequest(
            kind="purchase_order",
            supplier_order_id=UUID(found.id),
            language=language,
            issued_on=local_today(user),
        )
        issue_document(user.runtime, request, user.actor)
    except COMMAND_ERRORS as error:
        return refused(user, found, "document", error)
    return after(user, found, "printed")


@router.post("/supplier-orders/{order_id}/send", response_model=None)
def send_order(order_id: str, user: WebWriterDep, form: FormDep) -> Response:
    """E-mail the latest printed purchase order to the chosen person of the supplier."""
    found = known_order(user, order_id)
    if found is None:
        return missing(user)
    try:
        printed = [d for d in purchase_orders(user, found.id) if d.status == "issued"]
        if not printed:
            raise InvalidInput("document_id", "issue the purchase order first")
        person = parse_id(field(form, "contact_id"))
        if person is None:
            raise InvalidInput("contact_id", "choose who gets the order")
        text = field(form, "text")
        if len(text) > 5000:
            raise InvalidInput("text", "at most 5000 characters")
        user.runtime.app.send_supplier_order(
            UUID(found.id), UUID(printed[0].id), UUID(person), text, user.actor
        )
    except COMMAND_ERRORS as error:
        return refused(user, found, "send", error)
    return after(user, found, "sent")


def posted_expected(form: FormData) -> date | None:
    text = field(form, "expected_on")
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise InvalidInput("expected_on", "not a date (YYYY-MM-DD)") from None


@router.post("/supplier-orders/{order_id}/state", response_model=None)
def move_order(order_id: str, user: WebWriterDep, form: FormDep) -> Response:
    """Confirmed (with the expected delivery date), received or cancelled."""
    found = known_order(user, order_id)
    if found is None:
        return missing(user)
    wanted = field(form, "state")
    try:
        if wanted not in MOVES:
            raise InvalidInput("state", "choose confirmed, received or cancelled")
        note = field(form, "note")
        if len(note) > 1000:
            raise InvalidInput("note", "at most 1000 characters")
        user.runtime.app.change_supplier_order_state(
            UUID(found.id), MOVES[wanted], user.actor, expected_on=posted_expected(form), note=note
        )
    except COMMAND_ERRORS as error:
        return refused(user, found, "state", error)
    return after(user, found, wanted)
