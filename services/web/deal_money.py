"""What the deal page and the company page show of paper and money, read from the views.

The deal page's "Documents" section (documents, payments, contracts, supplier orders and the
client's settlement) and the company page's money section read the same views and label
things the same way, so the reading lives here: a page module importing another page
module is how import cycles start (see `deal_views`). Nothing here writes; the forms post
to `routes_deal_documents` and `routes_supplier_orders`.

Money stays per currency and in the views' minor units until shown (`Money.amount` for the
templates' money filter).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from threadline.domain.model.campaign import SENDABLE_CHANNELS
from threadline.domain.model.document import DocumentKind
from threadline.domain.model.money import Money
from threadline.projections.catalogue import products_by_id
from threadline.projections.companies import company_contacts, company_names
from threadline.projections.contact_card import display_names, identities_of
from threadline.projections.deals import DealRow, deal_lines
from threadline.projections.documents import (
    ContractFilter,
    ContractRow,
    DocumentRow,
    contract,
    contracts_page,
    document,
    documents_of_deal,
)
from threadline.projections.payments import AllocationRow, allocations_of_deal, payment
from threadline.projections.settlements import Settlement, settlement
from threadline.projections.supplier_orders import (
    SupplierOrderFilter,
    SupplierOrderRow,
    supplier_order,
    supplier_orders_page,
)
from threadline.services.documents.issuing import default_send_text
from threadline.services.web.deps import WebUser
from threadline.triggers.outbound import IDENTITY_KIND

KIND_LABELS = {
    "proposal": "Commercial proposal",
    "invoice": "Invoice",
    "contract": "Contract",
    "act": "Act",
    "upd": "UPD",
    "specification": "Specification",
    "price_protocol": "Price agreement protocol",
    "purchase_order": "Purchase order",
}
"""What each document kind is called on the pages (translated by the catalogue)."""

CLIENT_KINDS = tuple(k.value for k in DocumentKind if k is not DocumentKind.PURCHASE_ORDER)
"""The kinds a deal's page generates; a purchase order is issued from its supplier order."""

LANGUAGES = {"ru": "Russian", "en": "English"}

PAYMENT_STATES = {
    "unpaid": "unpaid",
    "partly_paid": "partly paid",
    "paid": "paid",
    "voided": "voided",
}
ORDER_STATES = {
    "draft": "draft",
    "sent": "sent",
    "confirmed": "confirmed",
    "received": "received",
    "cancelled": "cancelled",
}
TARGET_LABELS = {
    "invoice": "Invoice",
    "contract": "Contract",
    "deal": "Deal",
    "supplier_order": "Supplier order",
}

CHANNELS_OF_IDENTITY = {
    kind: tuple(c for c in SENDABLE_CHANNELS if IDENTITY_KIND[c] == kind)
    for kind in set(IDENTITY_KIND.values())
}
"""The channels a document can be sent on to an identity of that kind (the outbound seam's)."""
CHANNEL_LABELS = {"email": "E-mail", "telegram": "Telegram", "sms": "SMS", "whatsapp": "WhatsApp"}
MAX_ROWS = 200


def local_today(user: WebUser) -> date:
    """Today where the user is: what "overdue" and the default dates mean to them."""
    return datetime.now(user.zone).date()


@dataclass(frozen=True)
class SendChoice:
    """One way to send a document: a channel to one of the client's people."""

    value: str  # "<channel>:<contact id>", what the send form posts
    channel: str
    contact_id: str
    label: str


def send_choices(user: WebUser, contact_id: str | None, company_id: str | None) -> list[SendChoice]:
    """The client's channels: the deal's contact first, then the company's other people.

    A channel is offered when the person has an identity it can reach (an e-mail address for
    e-mail, a phone number for SMS and WhatsApp, a Telegram id for Telegram).
    """
    views = user.runtime.views
    people = [contact_id] if contact_id else []
    if company_id:
        people += [c.id for c in company_contacts(views, company_id) if c.id not in people]
    people = people[:MAX_ROWS]
    names = display_names(views, people)
    found = identities_of(views, people)
    choices: list[SendChoice] = []
    for person in people:
        for identity in found.get(person, []):
            for channel in CHANNELS_OF_IDENTITY.get(identity.kind, ()):
                label = (
                    f"{user._(CHANNEL_LABELS[channel])}: {names.get(person, '')} <{identity.value}>"
                )
                value = f"{channel}:{person}"
                if all(c.value != value for c in choices):
                    choices.append(SendChoice(value, channel, person, label))
    return choices


@dataclass(frozen=True)
class PaidLine:
    """One allocation as the deal and company pages list it: who paid, when, what for."""

    payment_id: str
    paid_on: str
    payer: str
    purpose: str
    target: str
    amount: Money
    how: str


def target_label(user: WebUser, kind: str, target_id: str) -> str:
    """ "Invoice СЧ-15", "Contract 12/2026", "Deal": what an allocation paid."""
    views = user.runtime.views
    name = user._(TARGET_LABELS.get(kind, kind))
    if kind == "invoice":
        found = document(views, target_id)
        return f"{name} {found.display_number}" if found else name
    if kind == "contract":
        signed = contract(views, target_id)
        return f"{name} {signed.number}" if signed else name
    if kind == "supplier_order":
        order = supplier_order(views, target_id)
        return f"{name} {order.display_number}" if order else name
    return name


def paid_lines(user: WebUser, allocations: list[AllocationRow]) -> list[PaidLine]:
    out = []
    for allocation in allocations[:MAX_ROWS]:
        paid = payment(user.runtime.views, allocation.payment_id)
        out.append(
            PaidLine(
                payment_id=allocation.payment_id,
                paid_on=paid.paid_on if paid else "",
                payer=paid.counterparty_name if paid else "",
                purpose=paid.purpose if paid else "",
                target=target_label(user, allocation.target_kind, allocation.target_id),
                amount=allocation.amount,
                how=allocation.how,
            )
        )
    return out


def settlements_of(
    user: WebUser, company_id: str | None, contact_id: str | None
) -> list[Settlement]:
    """The client's settlement per currency: the company's when the deal has one."""
    views = user.runtime.views
    today = local_today(user)
    if company_id:
        return settlement(views, company_id=company_id, today=today)
    if contact_id:
        return settlement(views, contact_id=contact_id, today=today)
    return []


def lines_without_supplier(user: WebUser, deal_id: str) -> list[str]:
    """The deal's lines no supplier order can carry: free lines, products with no supplier."""
    lines = deal_lines(user.runtime.views, deal_id)
    ids = [line.product_id for line in lines if line.product_id]
    products = products_by_id(user.runtime.views, ids) if ids else {}
    out = []
    for line in lines:
        product = products.get(line.product_id) if line.product_id else None
        if product is None or product.supplier_id is None:
            out.append(line.name)
    return out


def supplier_names(user: WebUser, orders: list[SupplierOrderRow]) -> dict[str, str]:
    return company_names(user.runtime.views, {o.supplier_id for o in orders})


def deal_money(user: WebUser, found: DealRow) -> dict[str, Any]:
    """Everything the deal page's "Documents" section shows (the `money` of its template)."""
    views = user.runtime.views
    documents: list[DocumentRow] = [
        d for d in documents_of_deal(views, found.id) if d.kind != "purchase_order"
    ]
    contracts: list[ContractRow] = contracts_page(
        views, ContractFilter(deal_id=found.id), limit=MAX_ROWS
    )[0]
    orders = supplier_orders_page(views, SupplierOrderFilter(deal_id=found.id), limit=MAX_ROWS)[0]
    won = found.status == "won"
    return {
        "today": local_today(user),
        "documents": documents,
        "contracts": contracts,
        "payments": paid_lines(user, allocations_of_deal(views, found.id)),
        "settlements": settlements_of(user, found.company_id, found.contact_id),
        "orders": orders,
        "suppliers": supplier_names(user, orders),
        "unsupplied": lines_without_supplier(user, found.id) if won else [],
        "can_order": won,
        "choices": send_choices(user, found.contact_id, found.company_id),
        "send_text": default_send_text,  # in the document's language: the client reads it
        "kinds": CLIENT_KINDS,
        "kind_labels": KIND_LABELS,
        "languages": LANGUAGES,
        "payment_states": PAYMENT_STATES,
        "order_states": ORDER_STATES,
        "default_language": "ru" if found.currency == "RUB" else "en",
    }
