"""The catalogue view on SQLite and PostgreSQL: products, price-list precedence, rates by day."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from threadline.domain.model.money import Money
from threadline.projections.catalogue import (
    CatalogueProjection,
    PriceQuote,
    price_for,
    price_list,
    price_lists,
    product,
    products_page,
    rate_on,
    rates_on,
    rates_page,
)
from threadline.projections.sql import table_rows
from threadline.services.runtime import Runtime


def done(runtime: Runtime, committed: Any) -> Any:
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    return committed.value


def rub(amount: str) -> Money:
    return Money(Decimal(amount), "RUB")


def test_products_page_searches_pages_and_hides_archived(runtime: Runtime) -> None:
    app = runtime.app
    ids = {
        name: done(runtime, app.create_product("test", name, price, sku=sku))
        for name, price, sku in (
            ("Consulting hour", "3000", "SRV-1"),
            ("Cable 5 m", "450.50", "CAB-5"),
            ("Cable 10 m", "790", "CAB-10"),
            ("SMS", "0.0035", ""),
        )
    }
    done(runtime, app.update_product(ids["Cable 10 m"], "test", {}, archived=True))

    rows, total = products_page(runtime.views)
    assert total == 3
    assert [r.name for r in rows] == ["Cable 5 m", "Consulting hour", "SMS"]
    rows, total = products_page(runtime.views, q="cab", include_archived=True)
    assert (total, [r.name for r in rows]) == (2, ["Cable 10 m", "Cable 5 m"])
    assert [r.archived for r in rows] == [True, False]
    rows, total = products_page(runtime.views, q="srv-1")  # the SKU too, in any case
    assert [r.name for r in rows] == ["Consulting hour"]
    rows, total = products_page(runtime.views, limit=1, offset=1)
    assert (total, [r.name for r in rows]) == (3, ["Consulting hour"])
    assert products_page(runtime.views, q="100%_")[1] == 0

    sms = product(runtime.views, ids["SMS"])
    assert sms is not None
    # A price finer than a kopeck is kept exactly (a deal line copies it).
    assert sms.price == rub("0.0035") and sms.cost == rub("0")
    assert product(runtime.views, UUID(int=1)) is None


def test_a_product_change_shows_with_its_own_currency(runtime: Runtime) -> None:
    app = runtime.app
    product_id = done(
        runtime,
        app.create_product("test", "Licence", "1200", cost="700", unit="pcs", vat="reduced"),
    )
    done(
        runtime,
        app.update_product(
            product_id,
            "test",
            {"name": "Licence (year)", "price": {"amount": "15.90", "currency": "USD"}},
        ),
    )
    found = product(runtime.views, product_id)
    assert found is not None
    assert found.name == "Licence (year)" and found.unit == "pcs" and found.vat == "reduced"
    assert found.price == Money(Decimal("15.90"), "USD")
    assert found.cost == rub("700")  # cost keeps its own currency
    assert [r.name for r in products_page(runtime.views, q="year")[0]] == ["Licence (year)"]


def test_price_for_prefers_the_groups_list_in_that_currency(runtime: Runtime) -> None:
    app = runtime.app
    router = done(runtime, app.create_product("test", "Router", "1000"))
    cable = done(runtime, app.create_product("test", "Cable", "100"))
    wholesale_rub = done(runtime, app.create_price_list("test", "Wholesale", "wholesale", "RUB"))
    wholesale_usd = done(runtime, app.create_price_list("test", "Export", "wholesale", "USD"))
    done(runtime, app.update_price_list(wholesale_rub, "test", prices={str(router): "900"}))
    done(runtime, app.update_price_list(wholesale_usd, "test", prices={str(router): "11.50"}))

    def quote(product_id: UUID, group: str, currency: str) -> PriceQuote | None:
        return price_for(runtime.views, product_id, group, currency)

    assert quote(router, "wholesale", "RUB") == PriceQuote(
        rub("900"), f"price_list:{wholesale_rub}"
    )
    assert quote(router, "wholesale", "USD") == PriceQuote(
        Money(Decimal("11.50"), "USD"), f"price_list:{wholesale_usd}"
    )
    # Another group, or a product the list does not price: the catalogue price.
    assert quote(router, "retail", "RUB") == PriceQuote(rub("1000"), "catalogue")
    assert quote(router, "", "RUB") == PriceQuote(rub("1000"), "catalogue")
    assert quote(cable, "wholesale", "RUB") == PriceQuote(rub("100"), "catalogue")
    # No price in that currency anywhere: none, never a converted one.
    assert quote(router, "retail", "USD") is None
    assert quote(UUID(int=7), "wholesale", "RUB") is None

    # A newer list of the same group and currency takes over the products it prices.
    newer = done(runtime, app.create_price_list("test", "Wholesale 2027", "wholesale", "RUB"))
    done(runtime, app.update_price_list(newer, "test", prices={str(router): "850"}))
    assert quote(router, "wholesale", "RUB") == PriceQuote(rub("850"), f"price_list:{newer}")
    # Removing it from the newer list falls back to the older list, then to the catalogue.
    done(runtime, app.update_price_list(newer, "test", prices={str(router): None}))
    assert quote(router, "wholesale", "RUB") == PriceQuote(
        rub("900"), f"price_list:{wholesale_rub}"
    )
    done(runtime, app.update_price_list(wholesale_rub, "test", client_group="dealers"))
    assert quote(router, "wholesale", "RUB") == PriceQuote(rub("1000"), "catalogue")
    assert quote(router, "dealers", "RUB") == PriceQuote(rub("900"), f"price_list:{wholesale_rub}")

    lists = price_lists(runtime.views)
    assert [(pl.client_group, pl.name) for pl in lists] == [
        ("dealers", "Wholesale"),
        ("wholesale", "Export"),
        ("wholesale", "Wholesale 2027"),
    ]
    one = price_list(runtime.views, wholesale_usd)
    assert one is not None and one.currency == "USD"
    assert [(p.product_name, p.price) for p in one.prices] == [
        ("Router", Money(Decimal("11.50"), "USD"))
    ]
    assert price_list(runtime.views, UUID(int=3)) is None


def test_rate_on_picks_the_day_or_the_latest_before_it(runtime: Runtime) -> None:
    app = runtime.app
    thursday, friday, sunday = date(2026, 12, 3), date(2026, 12, 4), date(2026, 12, 6)
    done(runtime, app.record_exchange_rate("test", "USD", thursday, "91.80"))
    done(runtime, app.record_exchange_rate("test", "USD", friday, "92.50", source="cbr"))
    done(runtime, app.record_exchange_rate("test", "JPY", friday, "61.2345", nominal=100))

    on_friday = rate_on(runtime.views, "USD", friday)
    assert on_friday is not None
    assert (on_friday.day, on_friday.rate, on_friday.source) == (
        "2026-12-04",
        Decimal("92.50"),
        "cbr",
    )
    # No rate on Sunday: Friday's, and it says so.
    on_sunday = rate_on(runtime.views, "USD", sunday)
    assert on_sunday is not None and on_sunday.day == "2026-12-04"
    on_thursday = rate_on(runtime.views, "USD", thursday)
    assert on_thursday is not None and on_thursday.rate == Decimal("91.80")
    assert rate_on(runtime.views, "USD", date(2026, 12, 2)) is None
    assert rate_on(runtime.views, "EUR", sunday) is None
    assert rate_on(runtime.views, "USD", sunday, base="EUR") is None
    yen = rate_on(runtime.views, "JPY", sunday)
    assert yen is not None and (yen.rate, yen.nominal) == (Decimal("61.2345"), 100)

    # A correction replaces the day's rate; the same rate again changes nothing.
    assert done(runtime, app.record_exchange_rate("test", "USD", friday, "92.55")) is True
    assert app.record_exchange_rate("test", "USD", friday, "92.55").value is False
    corrected = rate_on(runtime.views, "USD", sunday)
    assert corrected is not None
    assert (corrected.rate, corrected.source, corrected.corrected_at is not None) == (
        Decimal("92.55"),
        "manual",
        True,
    )

    assert [(r.currency, r.day) for r in rates_on(runtime.views, sunday)] == [
        ("JPY", "2026-12-04"),
        ("USD", "2026-12-04"),
    ]
    assert [(r.currency, r.day) for r in rates_on(runtime.views, thursday)] == [
        ("USD", "2026-12-03")
    ]
    rows, total = rates_page(runtime.views, "USD")
    assert (total, [r.day for r in rows]) == (2, ["2026-12-04", "2026-12-03"])


def test_the_catalogue_view_is_the_same_after_a_rebuild(runtime: Runtime) -> None:
    app = runtime.app
    item = done(runtime, app.create_product("test", "Router", "1000", cost="600"))
    done(runtime, app.update_product(item, "test", {"price": "990"}, archived=True))
    price_list_id = done(runtime, app.create_price_list("test", "Dealers", "dealers", "RUB"))
    done(runtime, app.update_price_list(price_list_id, "test", prices={str(item): "870.25"}))
    done(runtime, app.record_exchange_rate("test", "EUR", date(2026, 12, 4), "100.25"))
    done(runtime, app.record_exchange_rate("test", "EUR", date(2026, 12, 4), "100.30"))
    orders = {
        "products": "id",
        "price_lists": "id",
        "price_list_prices": "price_list_id, product_id",
        "exchange_rates": "id",
    }
    assert set(orders) == set(CatalogueProjection.tables)
    before = {table: table_rows(runtime.views, table, order) for table, order in orders.items()}
    assert before["price_list_prices"][0]["amount_minor"] == 87025
    assert before["products"][0]["price_minor"] == 99000
    runtime.rebuild_views()
    assert runtime.wait_for_views(app.recorder.max_notification_id(), timeout=60)
    after = {table: table_rows(runtime.views, table, order) for table, order in orders.items()}
    assert after == before
