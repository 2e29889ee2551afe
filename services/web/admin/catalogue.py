"""The catalogue screens: products (price, cost, VAT) and price lists per client group.

Every change goes through the commands the API uses (`create_product`, `update_product`,
`create_price_list`, `update_price_list`), so a page refuses what the API refuses and
shows the domain's message next to the field it names (``price``, ``cost.currency``,
``prices.<product id>``), with the API's status code; nothing is recorded then. Managers
and admins change the catalogue; other roles see the same pages with the forms disabled.

A price is typed as a decimal (a comma works too) with its currency beside it; a price
list has one currency, fixed when it is made, and a blank price removes the product from
the list (its clients then pay the catalogue price, if it is in the list's currency).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.money import DEFAULT_CURRENCY
from threadline.domain.model.vat import VatKind
from threadline.projections.catalogue import (
    PriceListRow,
    ProductRow,
    price_list,
    price_lists,
    product,
    products_by_id,
    products_page,
)
from threadline.services.web.admin.common import (
    EditorDep,
    Pager,
    can_edit,
    checked,
    flashes,
    not_found,
    text,
    wait,
)
from threadline.services.web.deps import WebUser, WebUserDep
from threadline.services.web.errors import message_of, status_of
from threadline.services.web.posted_forms import COMMAND_ERRORS, FormDep, parse_id, redirect

router = APIRouter()

VAT_KINDS = tuple(kind.value for kind in VatKind)
PRICE_ROWS = 100
"""Products offered for pricing on a price list's page at once (a search finds others)."""
MAX_PAGE = 1_000_000


def _page_number(request: Request) -> int:
    given = request.query_params.get("page", "1").strip()
    if not (given.isascii() and given.isdigit()):
        return 1
    return max(1, min(int(given[:8]), MAX_PAGE))


def _placed(error: Exception) -> str:
    """The form field an error belongs to (``price.currency`` shows by the price)."""
    return error.field if isinstance(error, InvalidInput) else "form"


# -- products -----------------------------------------------------------------------------------


@dataclass
class ProductDraft:
    """The product form as typed, with messages by field."""

    name: str = ""
    sku: str = ""
    unit: str = ""
    price: str = ""
    price_currency: str = DEFAULT_CURRENCY
    cost: str = "0"
    cost_currency: str = DEFAULT_CURRENCY
    vat: str = VatKind.STANDARD.value
    vat_included: bool = True
    archived: bool = False
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, row: ProductRow) -> ProductDraft:
        return cls(
            name=row.name,
            sku=row.sku,
            unit=row.unit,
            price=str(row.price.amount),
            price_currency=row.price.currency,
            cost=str(row.cost.amount),
            cost_currency=row.cost.currency,
            vat=row.vat,
            vat_included=row.vat_included,
            archived=row.archived,
        )

    @classmethod
    def posted(cls, form: FormData) -> ProductDraft:
        return cls(
            name=text(form, "name").strip(),
            sku=text(form, "sku").strip(),
            unit=text(form, "unit").strip(),
            price=text(form, "price").strip(),
            price_currency=text(form, "price_currency").strip().upper(),
            cost=text(form, "cost").strip() or "0",
            cost_currency=text(form, "cost_currency").strip().upper(),
            vat=text(form, "vat"),
            vat_included=checked(form, "vat_included"),
            archived=checked(form, "archived"),
        )

    def fields(self) -> dict[str, Any]:
        """As `update_product` takes them (it records only what differs)."""
        return {
            "name": self.name,
            "sku": self.sku,
            "unit": self.unit,
            "price": {"amount": self.price, "currency": self.price_currency},
            "cost": {"amount": self.cost, "currency": self.cost_currency},
            "vat": self.vat,
            "vat_included": self.vat_included,
        }


@router.get("/products")
def products_list(request: Request, user: WebUserDep, done: str | None = None) -> HTMLResponse:
    q = request.query_params.get("q", "").strip()[:200]
    archived = request.query_params.get("archived", "") in ("1", "on", "true")
    paging = Pager(_page_number(request), 0)
    rows, total = products_page(user.runtime.views, q, archived, paging.size, paging.offset)
    if not rows and total and paging.number > 1:  # past the last page: show the last one
        paging = Pager(Pager(1, total).pages, total)
        rows, total = products_page(user.runtime.views, q, archived, paging.size, paging.offset)
    query = urlencode([(k, v) for k, v in (("q", q), ("archived", "1" if archived else "")) if v])
    return user.render(
        "admin/products_list.html",
        products=rows,
        total=total,
        pager=Pager(paging.number, total),
        query=query,
        q=q,
        archived=archived,
        editable=can_edit(user),
        flashes=flashes(user, done),
    )


def _product_page(
    user: WebUser,
    draft: ProductDraft,
    stored: ProductRow | None,
    status_code: int = 200,
    done: str | None = None,
) -> HTMLResponse:
    return user.render(
        "admin/product_edit.html",
        status_code=status_code,
        draft=draft,
        stored=stored,
        vat_kinds=VAT_KINDS,
        editable=can_edit(user),
        flashes=flashes(user, done),
    )


@router.get("/products/new")
def product_new(user: WebUserDep) -> HTMLResponse:
    return _product_page(user, ProductDraft(), None)


@router.post("/products/new", response_model=None)
def product_create(user: EditorDep, form: FormDep) -> Response:
    draft = ProductDraft.posted(form)
    try:
        committed = user.runtime.app.create_product(
            user.actor,
            draft.name,
            {"amount": draft.price, "currency": draft.price_currency},
            cost={"amount": draft.cost, "currency": draft.cost_currency},
            sku=draft.sku,
            unit=draft.unit,
            vat=draft.vat,
            vat_included=draft.vat_included,
        )
    except COMMAND_ERRORS as error:
        draft.errors[_placed(error)] = message_of(user, error)
        return _product_page(user, draft, None, status_of(error))
    wait(user.runtime, committed)
    return redirect(f"/admin/products/{committed.value}", "created")


def _stored_product(user: WebUser, product_id: str) -> ProductRow | None:
    found = parse_id(product_id)
    return None if found is None else product(user.runtime.views, found)


@router.get("/products/{product_id}")
def product_edit(product_id: str, user: WebUserDep, done: str | None = None) -> HTMLResponse:
    stored = _stored_product(user, product_id)
    if stored is None:
        return not_found(user, user._("No such product."))
    return _product_page(user, ProductDraft.of(stored), stored, done=done)


@router.post("/products/{product_id}", response_model=None)
def product_update(product_id: str, user: EditorDep, form: FormDep) -> Response:
    stored = _stored_product(user, product_id)
    if stored is None:
        return not_found(user, user._("No such product."))
    draft = ProductDraft.posted(form)
    try:
        committed = user.runtime.app.update_product(
            UUID(stored.id), user.actor, draft.fields(), archived=draft.archived
        )
    except COMMAND_ERRORS as error:
        draft.errors[_placed(error)] = message_of(user, error)
        return _product_page(user, draft, stored, status_of(error))
    wait(user.runtime, committed)
    return redirect(f"/admin/products/{stored.id}", "saved")


# -- price lists --------------------------------------------------------------------------------


@dataclass
class ListDraft:
    """The "new price list" form as typed."""

    name: str = ""
    client_group: str = ""
    currency: str = DEFAULT_CURRENCY
    errors: dict[str, str] = field(default_factory=dict)


def _lists_page(
    user: WebUser, draft: ListDraft, status_code: int = 200, done: str | None = None
) -> HTMLResponse:
    return user.render(
        "admin/price_lists.html",
        status_code=status_code,
        price_lists=price_lists(user.runtime.views),
        draft=draft,
        editable=can_edit(user),
        flashes=flashes(user, done),
    )


@router.get("/price-lists")
def price_lists_page(user: WebUserDep, done: str | None = None) -> HTMLResponse:
    return _lists_page(user, ListDraft(), done=done)


@router.post("/price-lists", response_model=None)
def price_list_create(user: EditorDep, form: FormDep) -> Response:
    draft = ListDraft(
        name=text(form, "name").strip(),
        client_group=text(form, "client_group").strip(),
        currency=text(form, "currency").strip().upper(),
    )
    try:
        committed = user.runtime.app.create_price_list(
            user.actor, draft.name, draft.client_group, draft.currency
        )
    except COMMAND_ERRORS as error:
        draft.errors[_placed(error)] = message_of(user, error)
        return _lists_page(user, draft, status_of(error))
    wait(user.runtime, committed)
    return redirect(f"/admin/price-lists/{committed.value}", "created")


@dataclass(frozen=True)
class PriceRow:
    """One product on a price list's page: its catalogue price and the list's (or blank)."""

    product_id: str
    name: str
    catalogue: ProductRow | None
    price: str


def _price_rows(user: WebUser, found: PriceListRow, q: str) -> list[PriceRow]:
    """The list's products first (by name), then catalogue products matching `q` without a
    price in the list (at most `PRICE_ROWS`), archived ones left out unless priced."""
    listed = products_by_id(user.runtime.views, [p.product_id for p in found.prices])
    rows = [
        PriceRow(p.product_id, p.product_name, listed.get(p.product_id), str(p.price.amount))
        for p in found.prices
    ]
    others, _ = products_page(user.runtime.views, q, False, PRICE_ROWS, 0)
    rows.extend(PriceRow(o.id, o.name, o, "") for o in others if o.id not in listed)
    return rows


def _list_page(
    user: WebUser,
    found: PriceListRow,
    q: str = "",
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    done: str | None = None,
) -> HTMLResponse:
    rows = _price_rows(user, found, q)
    if typed:
        rows = [
            PriceRow(r.product_id, r.name, r.catalogue, typed.get(f"p_{r.product_id}", r.price))
            for r in rows
        ]
    return user.render(
        "admin/price_list_edit.html",
        status_code=status_code,
        price_list=found,
        rows=rows,
        q=q,
        typed=typed or {},
        errors=errors or {},
        editable=can_edit(user),
        flashes=flashes(user, done),
    )


def _stored_list(user: WebUser, price_list_id: str) -> PriceListRow | None:
    found = parse_id(price_list_id)
    return None if found is None else price_list(user.runtime.views, found)


@router.get("/price-lists/{price_list_id}")
def price_list_edit(
    price_list_id: str, request: Request, user: WebUserDep, done: str | None = None
) -> HTMLResponse:
    found = _stored_list(user, price_list_id)
    if found is None:
        return not_found(user, user._("No such price list."))
    q = request.query_params.get("q", "").strip()[:200]
    return _list_page(user, found, q=q, done=done)


@router.post("/price-lists/{price_list_id}", response_model=None)
def price_list_update(price_list_id: str, user: EditorDep, form: FormDep) -> Response:
    found = _stored_list(user, price_list_id)
    if found is None:
        return not_found(user, user._("No such price list."))
    listed = {p.product_id for p in found.prices}
    prices: dict[str, str | None] = {}
    for shown in form.getlist("product"):
        product_id = parse_id(shown) if isinstance(shown, str) else None
        if product_id is None:
            continue
        typed = text(form, f"p_{product_id}").strip()
        if typed:
            prices[product_id] = typed
        elif product_id in listed:
            prices[product_id] = None  # a blank price takes the product off the list
    try:
        committed = user.runtime.app.update_price_list(
            UUID(found.id),
            user.actor,
            name=text(form, "name"),
            client_group=text(form, "client_group"),
            prices=prices,
        )
    except COMMAND_ERRORS as error:
        typed_values = {k: v for k, v in form.items() if isinstance(v, str)}
        return _list_page(
            user,
            found,
            q=text(form, "q").strip()[:200],
            status_code=status_of(error),
            errors={_placed(error): message_of(user, error)},
            typed=typed_values,
        )
    wait(user.runtime, committed)
    return redirect(f"/admin/price-lists/{found.id}", "saved")
