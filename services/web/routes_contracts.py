"""Contracts: the list (active, closed, expiring soon, search) and a contract's page.

A contract's page shows its terms, its amount and what has been paid towards it (payments
allocated to the contract itself and to the invoices issued under it), its documents and
those payments. Prolonging is changing the end date (`change_contract`), closing takes a
reason (`close_contract`); both post, wait for the views and redirect, and a refusal (an
end before the start, a closed contract) comes back next to its form with the API's status.
Contracts are registered on the deal's page (or through the API), where their deal is.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.money import Money
from threadline.projections.companies import company_names
from threadline.projections.contact_card import display_names
from threadline.projections.deals import deal
from threadline.projections.documents import (
    ContractFilter,
    ContractRow,
    DocumentRow,
    contract,
    contracts_ending_between,
    contracts_page,
    documents_of_deal,
)
from threadline.projections.payments import allocations_to, payment
from threadline.services.web.deps import WebUser, WebUserDep, WebWriterDep
from threadline.services.web.errors import message_of, status_of
from threadline.services.web.posted_forms import COMMAND_ERRORS, FormDep, field, parse_id, redirect
from threadline.services.web.routes_payments import LABELS as PAYMENT_LABELS
from threadline.services.web.routes_payments import clean_day, page_number

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
EXPIRING_DAYS = 30
""""Expiring" on the list: active contracts ending within this many days (the reminder's horizon)."""
EXPIRING_LIMIT = 1000
STATUS_FILTERS = {
    "active": "Active",
    "closed": "Closed",
    "expiring": "Expiring within 30 days",
}
FLASHES = {"prolonged": "The end date was changed.", "closed": "The contract was closed."}
KIND_LABELS = {
    "proposal": "Commercial proposal",
    "invoice": "Invoice",
    "contract": "Contract",
    "act": "Act",
    "upd": "УПД",
    "specification": "Specification",
    "price_protocol": "Price agreement protocol",
    "purchase_order": "Purchase order",
}


def not_found(user: WebUser) -> HTMLResponse:
    text = user._("This contract does not exist.")
    return user.render("error.html", status_code=404, title="404", message=text)


def amount_of(minor: int | None, currency: str | None) -> Decimal | None:
    if minor is None or currency is None:
        return None
    return Money.from_minor(minor, currency).amount


@router.get("/contracts")
def contracts_list(request: Request, user: WebUserDep) -> HTMLResponse:
    params = request.query_params
    status = params.get("status", "")
    status = status if status in STATUS_FILTERS else ""
    q = params.get("q", "").strip()[:200]
    number = page_number(params.get("page", "1").strip())
    views = user.runtime.views
    today = date.today()
    if status == "expiring":
        # the expiry scan's own reader; the search narrows it here (at most a month's contracts)
        found = contracts_ending_between(views, today, today + timedelta(days=EXPIRING_DAYS))
        wanted = q.casefold()
        found = [c for c in found if wanted in c.number.casefold() or wanted in c.title.casefold()]
        total = len(found)
        rows = found[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
    else:
        where = ContractFilter(status=status or None, q=q or None)
        rows, total = contracts_page(views, where, PAGE_SIZE, (number - 1) * PAGE_SIZE)
    kept = urlencode([(k, v) for k, v in (("status", status), ("q", q)) if v])
    return user.render(
        "contracts.html",
        items=rows,
        total=total,
        status=status,
        statuses=STATUS_FILTERS,
        q=q,
        kept=kept,
        number=number,
        pages=max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE),
        parties=parties(user, rows),
        today=today,
        amount_of=amount_of,
        expiring_days=EXPIRING_DAYS,
    )


def parties(user: WebUser, rows: list[ContractRow]) -> dict[str, str]:
    """The client of each contract by name (the company, else the contact)."""
    views = user.runtime.views
    firms = company_names(views, {r.company_id for r in rows if r.company_id})
    people = display_names(views, sorted({r.contact_id for r in rows if r.contact_id}))
    return {
        r.id: firms.get(r.company_id or "", "") or people.get(r.contact_id or "", "") for r in rows
    }


def documents_of(user: WebUser, found: ContractRow) -> list[DocumentRow]:
    """The documents issued under the contract (they are filed under its deal)."""
    if not found.deal_id:
        return []
    return [
        d for d in documents_of_deal(user.runtime.views, found.deal_id) if d.contract_id == found.id
    ]


def payments_of(
    user: WebUser, found: ContractRow, documents: list[DocumentRow]
) -> list[dict[str, Any]]:
    """What paid the contract: payments allocated to it and to the invoices issued under it."""
    views = user.runtime.views
    out = []
    targets = [("contract", found.id, found.number)] + [
        ("invoice", d.id, d.display_number) for d in documents if d.kind == "invoice"
    ]
    for kind, target_id, label in targets:
        for row in allocations_to(views, kind, target_id):
            paid = payment(views, row.payment_id)
            out.append(
                {
                    "payment_id": row.payment_id,
                    "paid_on": paid.paid_on if paid else "",
                    "payer": paid.counterparty_name if paid else "",
                    "kind": kind,
                    "label": label,
                    "amount": row.amount.amount,
                    "currency": row.currency,
                }
            )
    return sorted(out, key=lambda p: str(p["paid_on"]))


def render_contract(
    user: WebUser,
    found: ContractRow,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    draft: dict[str, str] | None = None,
    flash: str | None = None,
) -> HTMLResponse:
    views = user.runtime.views
    documents = documents_of(user, found)
    paid = payments_of(user, found, documents)
    by_currency: dict[str, Decimal] = {}
    for item in paid:
        by_currency[item["currency"]] = (
            by_currency.get(item["currency"], Decimal(0)) + item["amount"]
        )
    linked = deal(views, found.deal_id) if found.deal_id else None
    return user.render(
        "contracts_page.html",
        status_code=status_code,
        contract=found,
        client=parties(user, [found]).get(found.id, ""),
        deal=linked,
        amount=amount_of(found.amount_minor, found.currency),
        paid_total=sorted(by_currency.items()),
        documents=documents,
        payments=paid,
        days_left=found.days_left(date.today()),
        errors=errors or {},
        draft=draft or {},
        flashes=[user._(FLASHES[flash])] if flash in FLASHES else [],
        kinds=KIND_LABELS,
        payment_labels=PAYMENT_LABELS,
    )


def known_contract(user: WebUser, contract_id: str) -> ContractRow | None:
    known = parse_id(contract_id)
    return contract(user.runtime.views, known) if known else None


@router.get("/contracts/{contract_id}", response_model=None)
def contract_page(contract_id: str, user: WebUserDep, done: str | None = None) -> Response:
    found = known_contract(user, contract_id)
    if found is None:
        return not_found(user)
    return render_contract(user, found, flash=done)


@router.post("/contracts/{contract_id}/prolong", response_model=None)
def prolong(contract_id: str, user: WebWriterDep, form: FormDep) -> Response:
    """A new end date (or none: open-ended)."""
    found = known_contract(user, contract_id)
    if found is None:
        return not_found(user)
    draft = {"ends_on": field(form, "ends_on")}
    try:
        if found.status != "active":
            raise InvalidInput("ends_on", "a closed contract cannot be prolonged")
        ends_on = clean_day(draft["ends_on"], "ends_on")
        committed = user.runtime.app.change_contract(
            UUID(found.id), user.actor, changes={"ends_on": ends_on}
        )
    except COMMAND_ERRORS as error:
        return render_contract(
            user, found, status_of(error), {"ends_on": message_of(user, error)}, draft
        )
    user.runtime.wait_for_views(committed.notification_id)
    return redirect(f"/contracts/{found.id}", "prolonged")


@router.post("/contracts/{contract_id}/close", response_model=None)
def close(contract_id: str, user: WebWriterDep, form: FormDep) -> Response:
    found = known_contract(user, contract_id)
    if found is None:
        return not_found(user)
    draft = {"reason": field(form, "reason")}
    try:
        if not draft["reason"]:
            raise InvalidInput("reason", "say why the contract is closed")
        committed = user.runtime.app.close_contract(UUID(found.id), draft["reason"], user.actor)
    except COMMAND_ERRORS as error:
        return render_contract(
            user, found, status_of(error), {"reason": message_of(user, error)}, draft
        )
    user.runtime.wait_for_views(committed.notification_id)
    return redirect(f"/contracts/{found.id}", "closed")
