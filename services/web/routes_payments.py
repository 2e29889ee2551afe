"""The payments screen: the list with its tabs, a payment's page, and recording one by hand.

The list (`GET /payments`) has the tabs a bookkeeper works through — every payment, incoming,
outgoing, the unmatched, the partly allocated, and those with matches waiting for a person —
and a search over the payer's name, ИНН and the purpose. A payment's page shows it as the
bank reported it (counterparty, ИНН, account, purpose, bank document, the file and line it
came from), what it pays (each allocation removable with a reason), the suggested matches
with "Confirm" and "Dismiss" (a near miss is never applied by itself: confirming is a
person's allocation with `how=confirmed`), and a form to allocate the rest by hand: one of
the payer's open invoices (or, for outgoing money, the supplier's open orders), or any
invoice, contract, deal or supplier order found by its number.

Every form posts, the command runs, the page waits for the views to hold the change and
redirects (POST, redirect, GET); a refusal comes back next to its form with the JSON API's
status (422 naming the field), never a 500. Any logged-in user may look (as with deals);
only writers (not auditors) change anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode
from uuid import UUID, uuid4

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from threadline.domain.commands.payments import PaymentEntry, PaymentInput
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.money import Money, clean_currency
from threadline.domain.model.payment import AllocationHow, Direction, TargetKind, payment_id_for
from threadline.projections.companies import company_by_inn, company_names
from threadline.projections.deals import DealFilter, deal, deals_page
from threadline.projections.documents import (
    ContractFilter,
    DocumentFilter,
    contract,
    contracts_page,
    document,
    documents_page,
    open_invoices,
)
from threadline.projections.payments import (
    PaymentFilter,
    PaymentRow,
    allocations_of_payment,
    payment,
    payments_page,
    suggestion,
    suggestions_of_payment,
)
from threadline.projections.supplier_orders import (
    SupplierOrderFilter,
    open_orders_of_supplier,
    supplier_order,
    supplier_orders_page,
)
from threadline.services.payments.matching import Matcher, PaymentFacts
from threadline.services.web.deal_views import actor_name, user_names
from threadline.services.web.deps import WebUser, WebUserDep, WebWriterDep
from threadline.services.web.errors import message_of, status_of
from threadline.services.web.posted_forms import COMMAND_ERRORS, FormDep, field, parse_id, redirect

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
MAX_PAGE = 100_000
MAX_SEARCH = 200
SUPPLIER_ORDER_SCAN = 2000
"""Supplier orders searched for a typed number (the view has no number index; enough for a
business's open orders, and the open ones of the payee are offered as a list anyway)."""

# The list's tabs: what each narrows to (the filter's own words).
TABS: dict[str, PaymentFilter] = {
    "all": PaymentFilter(),
    "in": PaymentFilter(direction="in"),
    "out": PaymentFilter(direction="out"),
    "unmatched": PaymentFilter(state="unmatched"),
    "partial": PaymentFilter(state="partial"),
    "suggested": PaymentFilter(suggested=True),
}
TAB_LABELS = {
    "all": "All",
    "in": "Incoming",
    "out": "Outgoing",
    "unmatched": "Unmatched",
    "partial": "Partly allocated",
    "suggested": "Suggested matches",
}
STATE_LABELS = {"unmatched": "Unmatched", "partial": "Partly allocated", "matched": "Allocated"}
HOW_LABELS = {"auto": "automatically", "confirmed": "confirmed", "manual": "by hand"}
KIND_LABELS = {
    "invoice": "Invoice",
    "contract": "Contract",
    "deal": "Deal",
    "supplier_order": "Supplier order",
}
SOURCE_LABELS = {"api": "API", "csv": "CSV file", "statement": "Bank statement", "web": "By hand"}
FLASHES = {
    "recorded": "The payment was recorded.",
    "allocated": "The allocation was recorded.",
    "removed": "The allocation was removed.",
    "confirmed": "The suggested match was confirmed.",
    "dismissed": "The suggestion was dismissed.",
}
LABELS = {
    "tabs": TAB_LABELS,
    "states": STATE_LABELS,
    "how": HOW_LABELS,
    "kinds": KIND_LABELS,
    "sources": SOURCE_LABELS,
}


@dataclass(frozen=True)
class Target:
    """What a payment pays (or might pay), as the pages name it: "СЧ-17", "Договор 12/2026"."""

    kind: str
    id: str
    label: str
    url: str | None


def target(user: WebUser, kind: str, target_id: str) -> Target:
    """The name and link of an invoice, contract, deal or supplier order (its id if unknown)."""
    views = user.runtime.views
    if kind == TargetKind.INVOICE:
        found_doc = document(views, target_id)
        if found_doc is not None:
            url = f"/deals/{found_doc.deal_id}" if found_doc.deal_id else None
            return Target(kind, target_id, found_doc.display_number, url)
    elif kind == TargetKind.CONTRACT:
        found_contract = contract(views, target_id)
        if found_contract is not None:
            return Target(kind, target_id, found_contract.number, f"/contracts/{target_id}")
    elif kind == TargetKind.DEAL:
        found_deal = deal(views, target_id)
        if found_deal is not None:
            return Target(kind, target_id, found_deal.title, f"/deals/{target_id}")
    elif kind == TargetKind.SUPPLIER_ORDER:
        found_order = supplier_order(views, target_id)
        if found_order is not None:
            url = f"/supplier-orders/{target_id}"
            return Target(kind, target_id, found_order.display_number, url)
    return Target(kind, target_id, target_id[:8], None)


def money(minor: int, currency: str) -> Decimal:
    return Money.from_minor(minor, currency).amount


def not_found(user: WebUser) -> HTMLResponse:
    text = user._("This payment does not exist.")
    return user.render("error.html", status_code=404, title="404", message=text)


def page_number(value: str) -> int:
    if not (value.isascii() and value.isdigit()):
        return 1
    return max(1, min(int(value[:8]), MAX_PAGE))


def clean_day(value: str, key: str) -> str | None:
    """A date typed in a filter or form (YYYY-MM-DD, as `<input type=date>` sends it)."""
    if not value:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise InvalidInput(key, "expected a date (YYYY-MM-DD)") from None


# -- the list -------------------------------------------------------------------------------


@router.get("/payments")
def payments_list(request: Request, user: WebUserDep) -> HTMLResponse:
    params = request.query_params
    tab = params.get("tab", "all")
    tab = tab if tab in TABS else "all"
    q = params.get("q", "").strip()[:MAX_SEARCH]
    errors: dict[str, str] = {}
    try:
        paid_from = clean_day(params.get("from", "").strip(), "from")
        paid_to = clean_day(params.get("to", "").strip(), "to")
    except InvalidInput as error:
        errors[error.field] = message_of(user, error)
        paid_from = paid_to = None
    number = page_number(params.get("page", "1").strip())
    views = user.runtime.views
    narrowed = {
        name: replace(narrow, q=q or None, paid_from=paid_from, paid_to=paid_to)
        for name, narrow in TABS.items()
    }
    rows, total = payments_page(views, narrowed[tab], PAGE_SIZE, (number - 1) * PAGE_SIZE)
    counts = {name: payments_page(views, where, 0)[1] for name, where in narrowed.items()}
    kept = [(k, v) for k, v in (("q", q), ("from", paid_from), ("to", paid_to)) if v]
    companies = company_names(views, {r.company_id for r in rows if r.company_id})
    return user.render(
        "payments.html",
        status_code=422 if errors else 200,
        errors=errors,
        items=rows,
        companies=companies,
        total=total,
        tab=tab,
        tabs=list(TABS),
        counts=counts,
        q=q,
        paid_from=paid_from or "",
        paid_to=paid_to or "",
        kept=urlencode(kept),
        number=number,
        pages=max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE),
        labels=LABELS,
        money=money,
    )


# -- recording a payment by hand ---------------------------------------------------------------

RECORD_FIELDS = (
    "token",
    "direction",
    "amount",
    "currency",
    "paid_on",
    "name",
    "inn",
    "account",
    "purpose",
    "document_number",
)


def render_new(
    user: WebUser, draft: dict[str, str], errors: dict[str, str], status_code: int = 200
) -> HTMLResponse:
    return user.render(
        "payments_new.html", status_code=status_code, draft=draft, errors=errors, labels=LABELS
    )


@router.get("/payments/new")
def new_payment(user: WebWriterDep) -> HTMLResponse:
    """The form; its token makes a double submit record one payment (`payment_id_for`)."""
    draft = {key: "" for key in RECORD_FIELDS}
    draft |= {"token": str(uuid4()), "direction": "in", "currency": "RUB"}
    draft["paid_on"] = date.today().isoformat()
    return render_new(user, draft, {})


def posted_payment(draft: dict[str, str]) -> PaymentInput:
    """The form as a payment (the counterparty's company found by its ИНН)."""
    token = parse_id(draft["token"])
    if token is None:
        raise InvalidInput("token", "the form has expired; reload the page")
    if draft["direction"] not in ("in", "out"):
        raise InvalidInput("direction", "incoming or outgoing")
    currency = clean_currency(draft["currency"] or "RUB")
    amount = Money.of(draft["amount"], currency)
    if amount.amount <= 0:
        raise InvalidInput("amount", "a payment's amount is more than zero")
    if amount.amount != amount.rounded().amount:
        raise InvalidInput("amount", "the amount is finer than the currency's minor unit")
    day = clean_day(draft["paid_on"], "paid_on")
    if day is None:
        raise InvalidInput("paid_on", "the day the money moved is required")
    inn = draft["inn"]
    if inn and not (inn.isascii() and inn.isdigit() and len(inn) in (10, 12)):
        raise InvalidInput("inn", "an ИНН has 10 or 12 digits")
    if len(draft["name"]) > 300 or len(draft["account"]) > 34:
        raise InvalidInput("name", "too long")
    if len(draft["document_number"]) > 50:
        raise InvalidInput("document_number", "at most 50 characters")
    counterparty = {"name": draft["name"], "inn": inn, "account": draft["account"]}
    return PaymentInput(
        payment_id=payment_id_for(f"web:{token}"),
        direction=Direction(draft["direction"]),
        amount=amount,
        paid_on=date.fromisoformat(day),
        counterparty={k: v for k, v in counterparty.items() if v},
        purpose=draft["purpose"],
        bank_document={"kind": "", "number": draft["document_number"], "date": day},
        source={"kind": "web"},
    )


@router.post("/payments")
def record_payment(user: WebWriterDep, form: FormDep) -> Response:
    """One payment as a person typed it, matched as an imported one is (`Matcher`: the payer
    by ИНН, invoice numbers in the purpose; a near miss only suggested); the payment's page
    then shows what it paid and offers the payer's open invoices for the rest."""
    draft = {key: field(form, key) for key in RECORD_FIELDS}
    try:
        given = posted_payment(draft)
        inn = given.counterparty.get("inn", "")
        facts = PaymentFacts(given.direction, given.amount, inn, given.purpose)
        outcome = Matcher(user.runtime.views).match(facts)
        found = company_by_inn(user.runtime.views, inn) if inn else None
        company_id = outcome.company_id or (UUID(found.id) if found else None)
        entry = PaymentEntry(
            replace(given, company_id=company_id), outcome.allocations, outcome.suggestions
        )
        committed = user.runtime.app.record_payments([entry], user.actor)
        user.runtime.wait_for_views(committed.notification_id)
    except COMMAND_ERRORS as error:
        key = error.field.split(".")[0] if isinstance(error, InvalidInput) else "payment"
        return render_new(user, draft, {key: message_of(user, error)}, status_of(error))
    return redirect(f"/payments/{given.payment_id}", "recorded")


# -- a payment's page ----------------------------------------------------------------------------


def choices(user: WebUser, found: PaymentRow) -> list[dict[str, Any]]:
    """What the payment may pay, offered as a list: the payer's open invoices (incoming) or
    the payee's open supplier orders (outgoing), in the payment's currency."""
    views = user.runtime.views
    if not found.company_id:
        return []
    if found.direction == Direction.IN:
        return [
            {
                "value": f"invoice:{row.id}",
                "label": row.display_number,
                "issued_on": row.issued_on,
                "outstanding": row.outstanding.amount,
                "currency": row.currency,
            }
            for row in open_invoices(views, company_id=found.company_id, currency=found.currency)
        ]
    return [
        {
            "value": f"supplier_order:{row.id}",
            "label": row.display_number,
            "issued_on": row.created_at,
            "outstanding": money(row.amount_minor - row.paid_minor, row.currency),
            "currency": row.currency,
        }
        for row in open_orders_of_supplier(views, found.company_id, found.currency)
    ]


def render_payment(
    user: WebUser,
    found: PaymentRow,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    draft: dict[str, str] | None = None,
    flash: str | None = None,
) -> HTMLResponse:
    views = user.runtime.views
    names = user_names(user)
    allocations = [
        {
            "target": target(user, row.target_kind, row.target_id),
            "amount": row.amount.amount,
            "how": row.how,
            "at": row.allocated_at,
            "actor": actor_name(row.actor, names),
        }
        for row in allocations_of_payment(views, found.id)
    ]
    suggestions = [
        {"target": target(user, row.target_kind, row.target_id), "row": row}
        for row in suggestions_of_payment(views, found.id)
    ]
    firm = company_names(views, [found.company_id]) if found.company_id else {}
    return user.render(
        "payments_page.html",
        status_code=status_code,
        payment=found,
        company_name=firm.get(found.company_id or "", ""),
        amount=found.amount.amount,
        unallocated=found.unallocated.amount,
        allocations=allocations,
        suggestions=suggestions,
        choices=choices(user, found) if found.unallocated.amount > 0 else [],
        kinds=allowed_kinds(found.direction),
        recorder=actor_name(found.recorded_by, names),
        errors=errors or {},
        draft=draft or {},
        flashes=[user._(FLASHES[flash])] if flash in FLASHES else [],
        labels=LABELS,
    )


def allowed_kinds(direction: str) -> list[str]:
    """What a payment of this direction may pay (an outgoing one never a client's invoice)."""
    if direction == Direction.OUT:
        return ["supplier_order", "contract", "deal"]
    return ["invoice", "contract", "deal"]


def known_payment(user: WebUser, payment_id: str) -> PaymentRow | None:
    known = parse_id(payment_id)
    return payment(user.runtime.views, known) if known else None


@router.get("/payments/{payment_id}", response_model=None)
def payment_page(payment_id: str, user: WebUserDep, done: str | None = None) -> Response:
    found = known_payment(user, payment_id)
    if found is None:
        return not_found(user)
    return render_payment(user, found, flash=done)


def refused(
    user: WebUser, found: PaymentRow, key: str, error: Exception, draft: dict[str, str]
) -> HTMLResponse:
    message = message_of(user, error)
    return render_payment(user, found, status_of(error), {key: message}, draft)


def after(user: WebUser, committed: Any, payment_id: str, flash: str) -> Response:
    user.runtime.wait_for_views(committed.notification_id)
    return redirect(f"/payments/{payment_id}", flash)


def posted_kind(value: str, key: str = "kind") -> TargetKind:
    try:
        return TargetKind(value)
    except ValueError:
        raise InvalidInput(key, "an invoice, a contract, a deal or a supplier order") from None


def exactly_one(found: list[tuple[str, str]], kind: str, number: str) -> UUID:
    """The one target a typed number names; none or several is the person's to resolve."""
    if not found:
        raise InvalidInput("number", f"no {KIND_LABELS[kind].lower()} numbered {number}")
    if len(found) > 1:
        names = ", ".join(label for _id, label in found[:5])
        raise InvalidInput("number", f"several match {number} ({names}); pick one from the list")
    return UUID(found[0][0])


def find_target(user: WebUser, kind: TargetKind, number: str) -> UUID:
    """An invoice ("СЧ-17" or "17"), contract, deal (its id or link, or its exact title) or
    supplier order ("ЗП-3" or "3") by what a person types."""
    views = user.runtime.views
    text = " ".join(number.split())[:MAX_SEARCH]
    if not text:
        raise InvalidInput("number", "type the number, or pick from the list")
    wanted = text.casefold()
    if kind == TargetKind.INVOICE:
        # searched by the digits (SQLite's LIKE ignores case in ASCII only: "сч-2" is "СЧ-2")
        digits = re.search(r"\d+$", text)
        wide = DocumentFilter(kind="invoice", q=digits.group(0) if digits else text)
        rows, _n = documents_page(views, wide, limit=200)
        hits = [
            (r.id, r.display_number)
            for r in rows
            if r.status == "issued" and wanted in (r.display_number.casefold(), str(r.number))
        ]
        return exactly_one(hits, kind, text)
    if kind == TargetKind.CONTRACT:
        contracts, _n = contracts_page(views, ContractFilter(q=text), limit=50)
        hits = [(c.id, c.number) for c in contracts if c.number.casefold() == wanted]
        return exactly_one(hits, kind, text)
    if kind == TargetKind.DEAL:
        given = parse_id(text.rstrip("/").rsplit("/", 1)[-1])
        if given and deal(views, given) is not None:
            return UUID(given)
        deals, _n = deals_page(views, DealFilter(q=text), limit=50)
        hits = [(d.id, d.title) for d in deals if d.title.casefold() == wanted]
        return exactly_one(hits, kind, text)
    orders, _n = supplier_orders_page(views, SupplierOrderFilter(), limit=SUPPLIER_ORDER_SCAN)
    hits = [
        (o.id, o.display_number)
        for o in orders
        if wanted in (o.display_number.casefold(), str(o.number))
    ]
    return exactly_one(hits, kind, text)


def posted_share(found: PaymentRow, text: str) -> Money | None:
    """The amount typed (None, the rest of the payment, when left empty)."""
    if not text:
        return None
    return Money.of(text, found.currency)


@router.post("/payments/{payment_id}/allocations", response_model=None)
def allocate(payment_id: str, user: WebWriterDep, form: FormDep) -> Response:
    """Allocate by hand: a target picked from the list, else a kind and a typed number."""
    found = known_payment(user, payment_id)
    if found is None:
        return not_found(user)
    draft = {key: field(form, key) for key in ("pick", "kind", "number", "amount")}
    try:
        if draft["pick"]:
            kind_text, _, given = draft["pick"].partition(":")
            kind = posted_kind(kind_text, "pick")
            target_id = parse_id(given)
            if target_id is None:
                raise InvalidInput("pick", "pick one from the list")
            chosen = UUID(target_id)
        else:
            kind = posted_kind(draft["kind"])
            chosen = find_target(user, kind, draft["number"])
        share = posted_share(found, draft["amount"])
        committed = user.runtime.app.allocate_payment(
            UUID(found.id), kind, chosen, share, AllocationHow.MANUAL, user.actor
        )
    except COMMAND_ERRORS as error:
        return refused(user, found, "allocate", error, draft)
    return after(user, committed, found.id, "allocated")


@router.post("/payments/{payment_id}/allocations/remove", response_model=None)
def remove_allocation(payment_id: str, user: WebWriterDep, form: FormDep) -> Response:
    found = known_payment(user, payment_id)
    if found is None:
        return not_found(user)
    draft = {key: field(form, key) for key in ("kind", "target_id", "reason")}
    listed = {
        (a.target_kind, a.target_id) for a in allocations_of_payment(user.runtime.views, found.id)
    }
    known = (draft["kind"], draft["target_id"]) in listed
    # the message goes next to the allocation's own form, or above the list when it is gone
    key = f"remove-{draft['kind']}-{draft['target_id']}" if known else "allocations"
    try:
        kind = posted_kind(draft["kind"])
        target_id = parse_id(draft["target_id"])
        if target_id is None:
            raise InvalidInput("target_id", "no such allocation")
        if not draft["reason"]:
            raise InvalidInput("reason", "say why the allocation is wrong")
        committed = user.runtime.app.remove_payment_allocation(
            UUID(found.id), kind, UUID(target_id), draft["reason"], user.actor
        )
    except COMMAND_ERRORS as error:
        return refused(user, found, key, error, draft)
    return after(user, committed, found.id, "removed")


@router.post("/payments/{payment_id}/suggestions/{action}", response_model=None)
def decide_suggestion(payment_id: str, action: str, user: WebWriterDep, form: FormDep) -> Response:
    """Confirm (allocate the suggested amount, `how=confirmed`) or dismiss a suggested match."""
    found = known_payment(user, payment_id)
    if found is None or action not in ("confirm", "dismiss"):
        return not_found(user)
    draft = {key: field(form, key) for key in ("kind", "target_id")}
    waiting = suggestion(user.runtime.views, found.id, draft["kind"], draft["target_id"])
    # the message goes next to the suggestion's buttons, or above the list when it is gone
    key = f"suggestion-{draft['kind']}-{draft['target_id']}" if waiting else "suggestions"
    try:
        kind = posted_kind(draft["kind"])
        target_id = parse_id(draft["target_id"])
        if target_id is None or waiting is None:
            raise InvalidInput("target_id", "no such suggestion on this payment")
        if action == "dismiss":
            committed = user.runtime.app.dismiss_payment_suggestion(
                UUID(found.id), kind, UUID(target_id), user.actor
            )
        else:
            share = min(waiting.amount.amount, found.unallocated.amount)
            committed = user.runtime.app.allocate_payment(
                UUID(found.id),
                kind,
                UUID(target_id),
                Money(share, found.currency),
                AllocationHow.CONFIRMED,
                user.actor,
            )
    except COMMAND_ERRORS as error:
        return refused(user, found, key, error, draft)
    return after(user, committed, found.id, "confirmed" if action == "confirm" else "dismissed")
