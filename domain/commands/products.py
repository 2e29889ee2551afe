"""Catalogue commands: products, price lists per client group, and exchange rates of a date."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from threadline.domain.commands.base import Commands, required_text
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.company import Company
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.exchange_rate import ExchangeRate, exchange_rate_id
from threadline.domain.model.money import DEFAULT_CURRENCY, Money, clean_currency, to_decimal
from threadline.domain.model.product import PriceList, Product
from threadline.domain.model.requisites import clean_client_group
from threadline.domain.model.vat import clean_vat_kind

PRODUCT_FIELDS = ("name", "sku", "unit", "price", "cost", "vat", "vat_included", "supplier_id")


def clean_product_fields(fields: dict[str, Any], currency: str | None) -> dict[str, Any]:
    """Validated product fields; money fields become their state form."""
    cleaned: dict[str, Any] = {}
    for key, value in fields.items():
        if key not in PRODUCT_FIELDS:
            raise InvalidInput(key, "unknown product field")
        if key == "name":
            cleaned[key] = required_text("name", str(value or ""), 300).strip()
        elif key in ("sku", "unit"):
            cleaned[key] = str(value or "").strip()[:100]
        elif key in ("price", "cost"):
            money = value if isinstance(value, dict) else {"amount": value, "currency": currency}
            parsed = Money.from_state(money, key)
            if parsed.amount < 0:
                raise InvalidInput(key, "must not be negative")
            cleaned[key] = parsed.state()
        elif key == "vat":
            cleaned[key] = clean_vat_kind(str(value)).value
        elif key == "vat_included":
            cleaned[key] = bool(value)
        elif key == "supplier_id":
            cleaned[key] = None if value in (None, "") else UUID(str(value))
    return cleaned


class ProductCommands(Commands):
    def create_product(
        self,
        actor: str,
        name: str,
        price: Any,
        currency: str = DEFAULT_CURRENCY,
        cost: Any = 0,
        sku: str = "",
        unit: str = "",
        vat: str = "standard",
        vat_included: bool = True,
        supplier_id: UUID | None = None,
    ) -> Committed[UUID]:
        fields = clean_product_fields(
            {
                "name": name,
                "price": price,
                "cost": cost,
                "sku": sku,
                "unit": unit,
                "vat": vat,
                "vat_included": vat_included,
                "supplier_id": supplier_id,
            },
            clean_currency(currency),
        )
        correlation_id = str(uuid4())

        def command(unit_: UnitOfWork) -> UUID:
            if fields["supplier_id"] is not None:
                unit_.get(fields["supplier_id"], Company)
            return unit_.add(Product(**fields, actor=actor, correlation_id=correlation_id)).id

        return self.writer.submit(command)

    def update_product(
        self, product_id: UUID, actor: str, changes: dict[str, Any], archived: bool | None = None
    ) -> Committed[None]:
        correlation_id = str(uuid4())

        def command(unit_: UnitOfWork) -> None:
            product = unit_.get(product_id, Product)
            cleaned = clean_product_fields(changes, product.price.currency)
            if cleaned.get("supplier_id") is not None:
                unit_.get(cleaned["supplier_id"], Company)
            current = {
                "name": product.name,
                "sku": product.sku,
                "unit": product.unit,
                "price": product.price.state(),
                "cost": product.cost.state(),
                "vat": product.vat,
                "vat_included": product.vat_included,
                "supplier_id": product.supplier_id,
            }
            changed = {k: v for k, v in cleaned.items() if current[k] != v}
            if changed:
                product.change(changed, actor, correlation_id)
            if archived is not None and archived != product.archived:
                product.archive(archived, actor, correlation_id)

        return self.writer.submit(command)

    def create_price_list(
        self, actor: str, name: str, client_group: str, currency: str = DEFAULT_CURRENCY
    ) -> Committed[UUID]:
        required_text("name", name, 200)
        group = clean_client_group(client_group)
        if not group:
            raise InvalidInput("client_group", "must not be empty")
        code = clean_currency(currency)
        correlation_id = str(uuid4())

        def command(unit_: UnitOfWork) -> UUID:
            price_list = PriceList(
                name=name.strip(),
                client_group=group,
                currency=code,
                actor=actor,
                correlation_id=correlation_id,
            )
            return unit_.add(price_list).id

        return self.writer.submit(command)

    def update_price_list(
        self,
        price_list_id: UUID,
        actor: str,
        name: str | None = None,
        client_group: str | None = None,
        prices: dict[str, Any] | None = None,
    ) -> Committed[None]:
        """Rename or regroup the list; `prices` sets prices by product id (None removes one)."""
        correlation_id = str(uuid4())
        cleaned_prices: dict[str, str | None] = {}
        for product_id, price in (prices or {}).items():
            if price is None:
                cleaned_prices[str(UUID(str(product_id)))] = None
                continue
            amount = to_decimal(price, f"prices.{product_id}")
            if amount < 0:
                raise InvalidInput(f"prices.{product_id}", "must not be negative")
            cleaned_prices[str(UUID(str(product_id)))] = str(amount)

        def command(unit_: UnitOfWork) -> None:
            price_list = unit_.get(price_list_id, PriceList)
            new_name = price_list.name if name is None else required_text("name", name, 200).strip()
            group = (
                price_list.client_group
                if client_group is None
                else required_text("client_group", clean_client_group(client_group), 100)
            )
            if (new_name, group) != (price_list.name, price_list.client_group):
                price_list.change(new_name, group, actor, correlation_id)
            for product_id in cleaned_prices:
                unit_.get(UUID(product_id), Product)
            changed = {k: v for k, v in cleaned_prices.items() if price_list.prices.get(k) != v}
            if changed:
                price_list.set_prices(changed, actor, correlation_id)

        return self.writer.submit(command)

    def record_exchange_rate(
        self,
        actor: str,
        currency: str,
        day: date,
        rate: Any,
        nominal: int = 1,
        source: str = "manual",
        base: str = DEFAULT_CURRENCY,
    ) -> Committed[bool]:
        """Record `rate` units of `base` for `nominal` units of `currency` on `day`;
        True if the log changed (the same rate again changes nothing)."""
        code, base_code = clean_currency(currency), clean_currency(base, "base")
        if code == base_code:
            raise InvalidInput("currency", "a rate needs two different currencies")
        value = to_decimal(rate, "rate")
        if value <= 0 or nominal < 1:
            raise InvalidInput("rate", "a rate and its nominal are positive")
        text = str(value)
        correlation_id = str(uuid4())

        def command(unit_: UnitOfWork) -> bool:
            rate_id = exchange_rate_id(code, base_code, day)
            existing = unit_.find(rate_id, ExchangeRate)
            if existing is None:
                unit_.add(
                    ExchangeRate(
                        id=rate_id,
                        currency=code,
                        base=base_code,
                        day=day.isoformat(),
                        rate=text,
                        nominal=nominal,
                        source=source[:50],
                        actor=actor,
                        correlation_id=correlation_id,
                    )
                )
                return True
            if Decimal(existing.rate) == value and existing.nominal == nominal:
                return False
            existing.correct(text, nominal, source[:50], actor, correlation_id)
            return True

        return self.writer.submit(command)
