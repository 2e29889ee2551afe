"""The catalogue: products with price and cost, price lists per client group, price quotes.

Money comes in as ``{"amount": "1500.00", "currency": "RUB"}`` or as a plain amount with
the request's `currency`, and goes out as the object. A quote (`GET /api/products/{id}/price`)
answers with the price a client group pays in a currency and where it comes from: the
group's price list in that currency, else the catalogue price if it is in that currency,
else none (`price: null`) — a price in another currency is never converted on the way.
Reading is for every role; changing the catalogue is for managers and admins.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field

from threadline.domain.model.errors import InvalidInput, NotFound
from threadline.domain.model.money import Money, to_decimal
from threadline.projections.catalogue import (
    PriceListRow,
    ProductRow,
    price_for,
    price_list,
    price_lists,
    product,
    products_by_id,
    products_page,
)
from threadline.services.api.deal_schemas import DecimalIn, MoneyOut
from threadline.services.api.deps import ManagerDep, PrincipalDep, RuntimeDep
from threadline.services.api.schemas import CurrencyCode, Offset
from threadline.services.runtime import Runtime

router = APIRouter(tags=["catalogue"])

VatKindName = Literal["standard", "reduced", "zero", "none"]


class MoneyIn(BaseModel):
    """An amount with its currency."""

    model_config = ConfigDict(extra="forbid")
    amount: DecimalIn = Field(..., description='a decimal string ("1500.50") or a number')
    currency: CurrencyCode


PriceIn = MoneyIn | DecimalIn
"""Money as an object, or a plain amount in the request's `currency`."""


def _money_out(money: Money) -> MoneyOut:
    return MoneyOut(amount=str(money.amount), currency=money.currency)


def _raw(value: PriceIn) -> Any:
    """As the domain takes money: the event form for an object, the amount as it is else."""
    if isinstance(value, MoneyIn):
        return {"amount": str(value.amount), "currency": value.currency.upper()}
    return value


# -- products -----------------------------------------------------------------------------------


class ProductIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., min_length=1, max_length=300)
    sku: str = Field("", max_length=100)
    unit: str = Field("", max_length=100, description='e.g. "pcs", "hour"')
    price: PriceIn
    cost: PriceIn = 0
    currency: CurrencyCode = Field("RUB", description="the currency of a plain price or cost")
    vat: VatKindName = "standard"
    vat_included: bool = Field(True, description="whether the price includes VAT")
    supplier_id: UUID | None = Field(None, description="a company (a supplier)")


class ProductPatch(BaseModel):
    """Only the fields given change; a plain price or cost is in the product's currency;
    `supplier_id: null` clears the supplier; `archived` hides it from pickers."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=300)
    sku: str | None = Field(None, max_length=100)
    unit: str | None = Field(None, max_length=100)
    price: PriceIn | None = None
    cost: PriceIn | None = None
    vat: VatKindName | None = None
    vat_included: bool | None = None
    supplier_id: UUID | None = None
    archived: bool | None = None


class ProductOut(BaseModel):
    id: str
    name: str
    sku: str
    unit: str
    price: MoneyOut
    cost: MoneyOut
    vat: str
    vat_included: bool
    supplier_id: str | None
    archived: bool
    created_at: str
    updated_at: str


class ProductListOut(BaseModel):
    items: list[ProductOut]
    total: int


class QuoteOut(BaseModel):
    """The price a client group pays; `price` null when neither a list nor the catalogue has
    one in that currency."""

    product_id: str
    client_group: str
    currency: str
    price: MoneyOut | None
    source: str | None = Field(..., description='"price_list:<id>", "catalogue" or null')


def product_out(row: ProductRow) -> ProductOut:
    return ProductOut(
        id=row.id,
        name=row.name,
        sku=row.sku,
        unit=row.unit,
        price=_money_out(row.price),
        cost=_money_out(row.cost),
        vat=row.vat,
        vat_included=row.vat_included,
        supplier_id=row.supplier_id,
        archived=row.archived,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _product(runtime: Runtime, product_id: UUID) -> ProductOut:
    found = product(runtime.views, product_id)
    if found is None:
        raise NotFound("product", str(product_id))
    return product_out(found)


@router.get("/api/products", response_model=ProductListOut)
def list_products(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    q: Annotated[str | None, Query(max_length=200, description="text in the name or SKU")] = None,
    archived: Annotated[bool, Query(description="true: archived products too")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> ProductListOut:
    rows, total = products_page(runtime.views, q, archived, limit, offset)
    return ProductListOut(items=[product_out(r) for r in rows], total=total)


@router.post("/api/products", response_model=ProductOut, status_code=status.HTTP_201_CREATED)
def create_product(body: ProductIn, runtime: RuntimeDep, principal: ManagerDep) -> ProductOut:
    committed = runtime.app.create_product(
        principal.actor,
        body.name,
        _raw(body.price),
        currency=body.currency,
        cost=_raw(body.cost),
        sku=body.sku,
        unit=body.unit,
        vat=body.vat,
        vat_included=body.vat_included,
        supplier_id=body.supplier_id,
    )
    runtime.wait_for_views(committed.notification_id)
    return _product(runtime, committed.value)


@router.get("/api/products/{product_id}", response_model=ProductOut)
def get_product(product_id: UUID, runtime: RuntimeDep, principal: PrincipalDep) -> ProductOut:
    return _product(runtime, product_id)


@router.patch("/api/products/{product_id}", response_model=ProductOut)
def patch_product(
    product_id: UUID, body: ProductPatch, runtime: RuntimeDep, principal: ManagerDep
) -> ProductOut:
    given = body.model_fields_set - {"archived"}
    changes: dict[str, Any] = {}
    for name in given:
        value = getattr(body, name)
        if value is None and name != "supplier_id":
            continue  # null means "leave it" for every field but the supplier
        changes[name] = _raw(value) if name in ("price", "cost") else value
    committed = runtime.app.update_product(
        product_id, principal.actor, changes, archived=body.archived
    )
    runtime.wait_for_views(committed.notification_id)
    return _product(runtime, product_id)


@router.get("/api/products/{product_id}/price", response_model=QuoteOut)
def quote(
    product_id: UUID,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    client_group: Annotated[
        str, Query(max_length=100, description='a client group ("wholesale"); "" for none')
    ] = "",
    currency: Annotated[
        CurrencyCode | None, Query(description="default: the catalogue price's currency")
    ] = None,
) -> QuoteOut:
    found = product(runtime.views, product_id)
    if found is None:
        raise NotFound("product", str(product_id))
    code = currency.upper() if currency else found.price.currency
    quoted = price_for(runtime.views, product_id, client_group, code)
    return QuoteOut(
        product_id=found.id,
        client_group=client_group.strip(),
        currency=code,
        price=None if quoted is None else _money_out(quoted.money),
        source=None if quoted is None else quoted.source,
    )


# -- price lists --------------------------------------------------------------------------------

Prices = Annotated[
    dict[UUID, DecimalIn | None],
    Field(max_length=5000, description="prices by product id in the list's currency; null removes"),
]


class PriceListIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., min_length=1, max_length=200)
    client_group: str = Field(..., min_length=1, max_length=100, description='e.g. "wholesale"')
    currency: CurrencyCode = "RUB"
    prices: Prices = Field(default_factory=dict)


class PriceListPatch(BaseModel):
    """Only the fields given change; `prices` sets the products it names (null removes one)."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=200)
    client_group: str | None = Field(None, min_length=1, max_length=100)
    prices: Prices | None = None


class ListPriceOut(BaseModel):
    product_id: str
    product_name: str
    price: MoneyOut


class PriceListOut(BaseModel):
    id: str
    name: str
    client_group: str
    currency: str
    created_at: str
    updated_at: str
    prices: list[ListPriceOut] | None = Field(None, description="on the single list only")


class PriceListsOut(BaseModel):
    items: list[PriceListOut]


def price_list_out(row: PriceListRow, with_prices: bool) -> PriceListOut:
    prices = [
        ListPriceOut(
            product_id=p.product_id, product_name=p.product_name, price=_money_out(p.price)
        )
        for p in row.prices
    ]
    return PriceListOut(
        id=row.id,
        name=row.name,
        client_group=row.client_group,
        currency=row.currency,
        created_at=row.created_at,
        updated_at=row.updated_at,
        prices=prices if with_prices else None,
    )


def _price_list(runtime: Runtime, price_list_id: UUID) -> PriceListOut:
    found = price_list(runtime.views, price_list_id)
    if found is None:
        raise NotFound("price list", str(price_list_id))
    return price_list_out(found, with_prices=True)


def _prices(runtime: Runtime, prices: dict[UUID, Any]) -> dict[str, Any]:
    """The prices as the domain takes them, checked first (amounts, and that each product
    exists), so a new list is never left half made by a refused price."""
    cleaned = {str(product_id): price for product_id, price in prices.items()}
    for product_id, price in cleaned.items():
        if price is not None and to_decimal(price, f"prices.{product_id}") < 0:
            raise InvalidInput(f"prices.{product_id}", "must not be negative")
    known = products_by_id(runtime.views, list(cleaned))
    for product_id in cleaned:
        if product_id not in known:
            raise NotFound("product", product_id)
    return cleaned


@router.get("/api/price-lists", response_model=PriceListsOut)
def list_price_lists(runtime: RuntimeDep, principal: PrincipalDep) -> PriceListsOut:
    return PriceListsOut(items=[price_list_out(r, False) for r in price_lists(runtime.views)])


@router.post("/api/price-lists", response_model=PriceListOut, status_code=status.HTTP_201_CREATED)
def create_price_list(
    body: PriceListIn, runtime: RuntimeDep, principal: ManagerDep
) -> PriceListOut:
    prices = _prices(runtime, body.prices)
    committed = runtime.app.create_price_list(
        principal.actor, body.name, body.client_group, body.currency
    )
    price_list_id = committed.value
    if prices:
        committed_prices = runtime.app.update_price_list(
            price_list_id, principal.actor, prices=prices
        )
        runtime.wait_for_views(committed_prices.notification_id)
    runtime.wait_for_views(committed.notification_id)
    return _price_list(runtime, price_list_id)


@router.get("/api/price-lists/{price_list_id}", response_model=PriceListOut)
def get_price_list(
    price_list_id: UUID, runtime: RuntimeDep, principal: PrincipalDep
) -> PriceListOut:
    return _price_list(runtime, price_list_id)


@router.patch("/api/price-lists/{price_list_id}", response_model=PriceListOut)
def patch_price_list(
    price_list_id: UUID, body: PriceListPatch, runtime: RuntimeDep, principal: ManagerDep
) -> PriceListOut:
    committed = runtime.app.update_price_list(
        price_list_id,
        principal.actor,
        name=body.name,
        client_group=body.client_group,
        prices=None if body.prices is None else _prices(runtime, body.prices),
    )
    runtime.wait_for_views(committed.notification_id)
    return _price_list(runtime, price_list_id)
