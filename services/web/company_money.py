"""What a company's page shows of paper and money: its documents, contracts, payments, the
settlement per currency, and, for a supplier, its orders and what is still payable.

Read from the views only; the document rows' forms (send, void) post to
`routes_deal_documents`, which comes back here (`next`). Labels and the send choices are
the deal page's (`deal_money`), so a document reads the same on both pages.
"""

from __future__ import annotations

from typing import Any

from threadline.domain.model.money import Money
from threadline.projections.companies import CompanyRow
from threadline.projections.documents import (
    ContractFilter,
    DocumentFilter,
    contracts_page,
    documents_page,
)
from threadline.projections.payments import PaymentFilter, PaymentRow, payments_page
from threadline.projections.supplier_orders import SupplierOrderFilter, supplier_orders_page
from threadline.services.documents.issuing import default_send_text
from threadline.services.web.deal_money import (
    KIND_LABELS,
    ORDER_STATES,
    PAYMENT_STATES,
    local_today,
    send_choices,
    settlements_of,
)
from threadline.services.web.deps import WebUser

SHOWN = 50
"""Rows per list on the company page (newest first); the full lists have their own screens."""


def payables(orders: list[Any]) -> list[Money]:
    """What the business still owes the supplier, one amount per currency."""
    owed: dict[str, int] = {}
    for order in orders:
        owed[order.currency] = owed.get(order.currency, 0) + order.payable.minor
    return [Money.from_minor(minor, code) for code, minor in sorted(owed.items()) if minor]


def company_money(user: WebUser, found: CompanyRow) -> dict[str, Any]:
    """The `money` of the company page's section."""
    views = user.runtime.views
    documents, document_count = documents_page(
        views, DocumentFilter(company_id=found.id), limit=SHOWN
    )
    contracts = contracts_page(views, ContractFilter(company_id=found.id), limit=SHOWN)[0]
    payments: list[PaymentRow] = payments_page(
        views, PaymentFilter(company_id=found.id), limit=SHOWN
    )[0]
    supplier = "supplier" in found.roles
    orders = (
        supplier_orders_page(views, SupplierOrderFilter(supplier_id=found.id), limit=SHOWN)[0]
        if supplier
        else []
    )
    return {
        "today": local_today(user),
        "documents": [d for d in documents if d.kind != "purchase_order"],
        "document_count": document_count,
        "contracts": contracts,
        "payments": payments,
        "settlements": settlements_of(user, found.id, None),
        "supplier": supplier,
        "orders": orders,
        "payables": payables(orders),
        "choices": send_choices(user, None, found.id),
        "send_text": default_send_text,
        "kind_labels": KIND_LABELS,
        "payment_states": PAYMENT_STATES,
        "order_states": ORDER_STATES,
    }
