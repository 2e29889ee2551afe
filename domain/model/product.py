"""The catalogue: products with price, cost and currency, and price lists per client group.

A deal line copies the product's price when it is added, so changing the catalogue never
changes a past deal. A price list overrides the catalogue price for one client group
(a company's group, such as "wholesale"), in the list's currency.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from threadline.domain.model.money import Money


class Product(Aggregate):
    """A thing or a service a business sells: price and cost are money (each with a currency)."""

    class ProductCreated(Aggregate.Created):
        name: str
        sku: str
        unit: str
        price: dict[str, str]
        cost: dict[str, str]
        vat: str
        vat_included: bool
        supplier_id: UUID | None
        actor: str
        correlation_id: str

    @event(ProductCreated)
    def __init__(
        self,
        name: str,
        sku: str,
        unit: str,
        price: dict[str, str],
        cost: dict[str, str],
        vat: str,
        vat_included: bool,
        supplier_id: UUID | None,
        actor: str,
        correlation_id: str,
    ) -> None:
        self.name = name
        self.sku = sku
        self.unit = unit
        self.price = Money.from_state(price)
        self.cost = Money.from_state(cost)
        self.vat = vat
        self.vat_included = vat_included
        self.supplier_id = supplier_id
        self.archived = False

    class ProductChanged(Aggregate.Event):
        """Only the fields that changed are in `changes` (money as its state form)."""

        changes: dict[str, Any]
        actor: str
        correlation_id: str

    @event(ProductChanged)
    def change(self, changes: dict[str, Any], actor: str, correlation_id: str) -> None:
        for key, value in changes.items():
            if key in ("price", "cost"):
                value = Money.from_state(value)
            elif key == "supplier_id" and value is not None:
                value = UUID(str(value))
            setattr(self, key, value)

    class ProductArchived(Aggregate.Event):
        archived: bool
        actor: str
        correlation_id: str

    @event(ProductArchived)
    def archive(self, archived: bool, actor: str, correlation_id: str) -> None:
        self.archived = archived


class PriceList(Aggregate):
    """Prices of some products for one client group, in one currency."""

    class PriceListCreated(Aggregate.Created):
        name: str
        client_group: str
        currency: str
        actor: str
        correlation_id: str

    @event(PriceListCreated)
    def __init__(
        self, name: str, client_group: str, currency: str, actor: str, correlation_id: str
    ) -> None:
        self.name = name
        self.client_group = client_group
        self.currency = currency
        self.prices: dict[str, str] = {}

    class PriceListChanged(Aggregate.Event):
        name: str
        client_group: str
        actor: str
        correlation_id: str

    @event(PriceListChanged)
    def change(self, name: str, client_group: str, actor: str, correlation_id: str) -> None:
        self.name = name
        self.client_group = client_group

    class PriceListPricesSet(Aggregate.Event):
        """Prices by product id (decimal strings in the list's currency); None removes one."""

        prices: dict[str, str | None]
        actor: str
        correlation_id: str

    @event(PriceListPricesSet)
    def set_prices(self, prices: dict[str, str | None], actor: str, correlation_id: str) -> None:
        for product_id, price in prices.items():
            if price is None:
                self.prices.pop(product_id, None)
            else:
                self.prices[product_id] = price
