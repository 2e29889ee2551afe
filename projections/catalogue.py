"""The catalogue view: products, price lists per client group, and exchange rates by day.

Money is kept as integer minor units with its currency beside it (for sorting and exact
SQL sums), and also as the exact decimal text the event carried: a unit price may be
finer than a kopeck (0.35 kopecks per SMS), and a deal line copies the price, so the
price a quote hands out must be the one the catalogue holds, not a rounded one.

Exchange rates are one row per currency, base and day. `rate_on` answers with the rate of
a day or, when the Central Bank set none that day (weekends, holidays), the latest one
before it, and always says which day's rate it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from threadline.domain.model.exchange_rate import ExchangeRate
from threadline.domain.model.money import DEFAULT_CURRENCY, Money
from threadline.domain.model.product import PriceList, Product
from threadline.projections.base import ViewProjection, handles, sid, ts
from threadline.projections.sql import ViewCursor, ViewReader, rows_with_ids, searchable

PRODUCT_COLUMNS = (
    "id, name, sku, unit, price, price_currency, price_minor, cost, cost_currency, cost_minor,"
    " vat, vat_included, supplier_id, archived, created_at, updated_at"
)


def _money_columns(state: dict[str, str]) -> tuple[str, str, int]:
    """(exact decimal text, currency, minor units) of money in its event form."""
    money = Money.from_state(state)
    return str(money.amount), money.currency, money.minor


class CatalogueProjection(ViewProjection):
    name = "catalogue"
    version = 1
    tables = ("products", "price_lists", "price_list_prices", "exchange_rates")
    schema = (
        "CREATE TABLE IF NOT EXISTS products ("
        " id TEXT PRIMARY KEY, name TEXT NOT NULL, sku TEXT NOT NULL, unit TEXT NOT NULL,"
        " price TEXT NOT NULL, price_currency TEXT NOT NULL, price_minor BIGINT NOT NULL,"
        " cost TEXT NOT NULL, cost_currency TEXT NOT NULL, cost_minor BIGINT NOT NULL,"
        " vat TEXT NOT NULL, vat_included BIGINT NOT NULL, supplier_id TEXT,"
        " archived BIGINT NOT NULL, search TEXT NOT NULL, created_at TEXT NOT NULL,"
        " updated_at TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS products_name ON products (archived, name, id)",
        "CREATE TABLE IF NOT EXISTS price_lists ("
        " id TEXT PRIMARY KEY, name TEXT NOT NULL, client_group TEXT NOT NULL,"
        " currency TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS price_lists_group ON price_lists"
        " (client_group, currency, created_at)",
        "CREATE TABLE IF NOT EXISTS price_list_prices ("
        " price_list_id TEXT NOT NULL, product_id TEXT NOT NULL, amount TEXT NOT NULL,"
        " amount_minor BIGINT NOT NULL, PRIMARY KEY (price_list_id, product_id))",
        "CREATE INDEX IF NOT EXISTS price_list_prices_product ON price_list_prices (product_id)",
        # One row per rate aggregate (its id is derived from currency, base and day).
        "CREATE TABLE IF NOT EXISTS exchange_rates ("
        " id TEXT PRIMARY KEY, currency TEXT NOT NULL, base TEXT NOT NULL, day TEXT NOT NULL,"
        " rate TEXT NOT NULL, nominal BIGINT NOT NULL, source TEXT NOT NULL,"
        " actor TEXT NOT NULL, recorded_at TEXT NOT NULL, corrected_at TEXT)",
        "CREATE UNIQUE INDEX IF NOT EXISTS exchange_rates_key ON exchange_rates"
        " (currency, base, day)",
        "CREATE INDEX IF NOT EXISTS exchange_rates_day ON exchange_rates (base, day)",
    )

    # -- products ------------------------------------------------------------------------------

    @handles(Product.ProductCreated)
    def _product_created(self, event: Any, cur: ViewCursor) -> None:
        price = _money_columns(event.price)
        cost = _money_columns(event.cost)
        at = ts(event.timestamp)
        cur.execute(
            f"INSERT INTO products ({PRODUCT_COLUMNS}, search) VALUES"
            " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            [
                sid(event.originator_id),
                event.name,
                event.sku,
                event.unit,
                *price,
                *cost,
                event.vat,
                int(event.vat_included),
                sid(event.supplier_id),
                at,
                at,
                _search(event.name, event.sku),
            ],
        )

    @handles(Product.ProductChanged)
    def _product_changed(self, event: Any, cur: ViewCursor) -> None:
        product_id = sid(event.originator_id)
        row = cur.execute("SELECT name, sku FROM products WHERE id = ?", [product_id]).fetchone()
        if row is None:
            return
        sets: list[str] = []
        params: list[Any] = []
        for key, value in event.changes.items():
            if key in ("price", "cost"):
                sets.append(f"{key} = ?, {key}_currency = ?, {key}_minor = ?")
                params.extend(_money_columns(value))
            elif key in ("name", "sku", "unit", "vat"):
                sets.append(f"{key} = ?")
                params.append(str(value))
            elif key == "vat_included":
                sets.append("vat_included = ?")
                params.append(int(bool(value)))
            elif key == "supplier_id":
                sets.append("supplier_id = ?")
                params.append(sid(value))
        name = str(event.changes.get("name", row["name"]))
        sku = str(event.changes.get("sku", row["sku"]))
        sets.extend(["search = ?", "updated_at = ?"])
        params.extend([_search(name, sku), ts(event.timestamp), product_id])
        cur.execute(f"UPDATE products SET {', '.join(sets)} WHERE id = ?", params)

    @handles(Product.ProductArchived)
    def _product_archived(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE products SET archived = ?, updated_at = ? WHERE id = ?",
            [int(event.archived), ts(event.timestamp), sid(event.originator_id)],
        )

    # -- price lists ---------------------------------------------------------------------------

    @handles(PriceList.PriceListCreated)
    def _list_created(self, event: Any, cur: ViewCursor) -> None:
        at = ts(event.timestamp)
        cur.execute(
            "INSERT INTO price_lists (id, name, client_group, currency, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            [sid(event.originator_id), event.name, event.client_group, event.currency, at, at],
        )

    @handles(PriceList.PriceListChanged)
    def _list_changed(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE price_lists SET name = ?, client_group = ?, updated_at = ? WHERE id = ?",
            [event.name, event.client_group, ts(event.timestamp), sid(event.originator_id)],
        )

    @handles(PriceList.PriceListPricesSet)
    def _prices_set(self, event: Any, cur: ViewCursor) -> None:
        list_id = sid(event.originator_id)
        row = cur.execute("SELECT currency FROM price_lists WHERE id = ?", [list_id]).fetchone()
        if row is None:
            return
        for product_id, price in event.prices.items():
            if price is None:
                cur.execute(
                    "DELETE FROM price_list_prices WHERE price_list_id = ? AND product_id = ?",
                    [list_id, product_id],
                )
                continue
            money = Money(Decimal(price), str(row["currency"]))
            cur.execute(
                "INSERT INTO price_list_prices (price_list_id, product_id, amount, amount_minor)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (price_list_id, product_id) DO UPDATE"
                " SET amount = excluded.amount, amount_minor = excluded.amount_minor",
                [list_id, product_id, str(money.amount), money.minor],
            )
        cur.execute(
            "UPDATE price_lists SET updated_at = ? WHERE id = ?", [ts(event.timestamp), list_id]
        )

    # -- exchange rates ------------------------------------------------------------------------

    @handles(ExchangeRate.ExchangeRateRecorded)
    def _rate_recorded(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "INSERT INTO exchange_rates (id, currency, base, day, rate, nominal, source, actor,"
            " recorded_at, corrected_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)"
            " ON CONFLICT (id) DO NOTHING",
            [
                sid(event.originator_id),
                event.currency,
                event.base,
                event.day,
                event.rate,
                int(event.nominal),
                event.source,
                event.actor,
                ts(event.timestamp),
            ],
        )

    @handles(ExchangeRate.ExchangeRateCorrected)
    def _rate_corrected(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE exchange_rates SET rate = ?, nominal = ?, source = ?, actor = ?,"
            " corrected_at = ? WHERE id = ?",
            [
                event.rate,
                int(event.nominal),
                event.source,
                event.actor,
                ts(event.timestamp),
                sid(event.originator_id),
            ],
        )


def _search(name: str, sku: str) -> str:
    return f"{name} {sku}".lower()


# -- readers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductRow:
    """A product as the API and the pages show it; `price` and `cost` exact, with currency."""

    id: str
    name: str
    sku: str
    unit: str
    price: Money
    cost: Money
    vat: str
    vat_included: bool
    supplier_id: str | None
    archived: bool
    created_at: str
    updated_at: str


def _product(row: dict[str, Any]) -> ProductRow:
    return ProductRow(
        id=str(row["id"]),
        name=str(row["name"]),
        sku=str(row["sku"]),
        unit=str(row["unit"]),
        price=Money(Decimal(row["price"]), str(row["price_currency"])),
        cost=Money(Decimal(row["cost"]), str(row["cost_currency"])),
        vat=str(row["vat"]),
        vat_included=bool(row["vat_included"]),
        supplier_id=row["supplier_id"],
        archived=bool(row["archived"]),
        created_at=str(row["created_at"]),
        updated_at=str(row["updated_at"]),
    )


def products_page(
    db: ViewReader,
    q: str | None = None,
    include_archived: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[ProductRow], int]:
    """One page of products by name, and how many match in all; `q` finds name or SKU text."""
    clauses: list[str] = []
    params: list[Any] = []
    if not include_archived:
        clauses.append("archived = 0")
    text = searchable((q or "").strip().lower())
    if text:
        clauses.append("search LIKE ?")
        params.append(f"%{text}%")
    where = " AND ".join(clauses) or "1=1"
    total = db.query_one(f"SELECT COUNT(*) AS n FROM products WHERE {where}", params)
    rows = db.query(
        f"SELECT {PRODUCT_COLUMNS} FROM products WHERE {where} ORDER BY name, id LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return [_product(r) for r in rows], int(total["n"]) if total else 0


def product(db: ViewReader, product_id: UUID | str) -> ProductRow | None:
    row = db.query_one(f"SELECT {PRODUCT_COLUMNS} FROM products WHERE id = ?", [str(product_id)])
    return None if row is None else _product(row)


def products_by_id(db: ViewReader, product_ids: list[str]) -> dict[str, ProductRow]:
    """The given products by id (those that exist), in one query per few hundred ids."""
    rows = rows_with_ids(db, f"SELECT {PRODUCT_COLUMNS} FROM products", product_ids)
    return {str(r["id"]): _product(r) for r in rows}


@dataclass(frozen=True)
class ListPrice:
    """One product's price in a price list (in the list's currency)."""

    product_id: str
    product_name: str
    price: Money


@dataclass(frozen=True)
class PriceListRow:
    id: str
    name: str
    client_group: str
    currency: str
    created_at: str
    updated_at: str
    prices: list[ListPrice]  # empty in `price_lists`; `price_list` fills it


def _price_list(row: dict[str, Any], prices: list[ListPrice]) -> PriceListRow:
    return PriceListRow(
        id=str(row["id"]),
        name=str(row["name"]),
        client_group=str(row["client_group"]),
        currency=str(row["currency"]),
        created_at=str(row["created_at"]),
        updated_at=str(row["updated_at"]),
        prices=prices,
    )


def price_lists(db: ViewReader) -> list[PriceListRow]:
    """Every price list by group and name (without their prices: `price_list` has them)."""
    rows = db.query("SELECT * FROM price_lists ORDER BY client_group, name, id")
    return [_price_list(r, []) for r in rows]


def price_list(db: ViewReader, price_list_id: UUID | str) -> PriceListRow | None:
    """One price list with its prices, by product name."""
    row = db.query_one("SELECT * FROM price_lists WHERE id = ?", [str(price_list_id)])
    if row is None:
        return None
    prices = db.query(
        "SELECT p.product_id, p.amount, COALESCE(pr.name, '') AS product_name"
        " FROM price_list_prices p LEFT JOIN products pr ON pr.id = p.product_id"
        " WHERE p.price_list_id = ? ORDER BY product_name, p.product_id",
        [str(price_list_id)],
    )
    currency = str(row["currency"])
    return _price_list(
        row,
        [
            ListPrice(
                str(p["product_id"]), str(p["product_name"]), Money(Decimal(p["amount"]), currency)
            )
            for p in prices
        ],
    )


@dataclass(frozen=True)
class PriceQuote:
    """The price a client of a group pays for a product in a currency, and where it came from:
    ``price_list:<id>`` or ``catalogue``."""

    money: Money
    source: str


def price_for(
    db: ViewReader, product_id: UUID | str, client_group: str, currency: str
) -> PriceQuote | None:
    """The group's price list in `currency` wins; else the catalogue price if it is in
    `currency`; else None (a price in another currency is never converted silently).

    When several lists of the group in that currency price the product, the list created
    last wins: a new list for a group takes over from the old one product by product.
    """
    group = client_group.strip()
    if group:
        row = db.query_one(
            "SELECT l.id, p.amount FROM price_list_prices p"
            " JOIN price_lists l ON l.id = p.price_list_id"
            " WHERE p.product_id = ? AND l.client_group = ? AND l.currency = ?"
            " ORDER BY l.created_at DESC, l.id DESC LIMIT 1",
            [str(product_id), group, currency],
        )
        if row is not None:
            return PriceQuote(Money(Decimal(row["amount"]), currency), f"price_list:{row['id']}")
    found = product(db, product_id)
    if found is not None and found.price.currency == currency:
        return PriceQuote(found.price, "catalogue")
    return None


@dataclass(frozen=True)
class RateRow:
    """`rate` units of `base` for `nominal` units of `currency`, set for `day` (which may be
    earlier than the day asked for: the latest rate on or before it)."""

    currency: str
    base: str
    day: str
    rate: Decimal
    nominal: int
    source: str
    actor: str
    recorded_at: str
    corrected_at: str | None


def _rate(row: dict[str, Any]) -> RateRow:
    return RateRow(
        currency=str(row["currency"]),
        base=str(row["base"]),
        day=str(row["day"]),
        rate=Decimal(row["rate"]),
        nominal=int(row["nominal"]),
        source=str(row["source"]),
        actor=str(row["actor"]),
        recorded_at=str(row["recorded_at"]),
        corrected_at=row["corrected_at"],
    )


RATE_COLUMNS = "currency, base, day, rate, nominal, source, actor, recorded_at, corrected_at"


def rate_on(
    db: ViewReader, currency: str, day: date, base: str = DEFAULT_CURRENCY
) -> RateRow | None:
    """The rate of `day`, else the latest before it (its `day` says which); None if none."""
    row = db.query_one(
        f"SELECT {RATE_COLUMNS} FROM exchange_rates WHERE currency = ? AND base = ? AND day <= ?"
        " ORDER BY day DESC LIMIT 1",
        [currency, base, day.isoformat()],
    )
    return None if row is None else _rate(row)


def rates_on(db: ViewReader, day: date, base: str = DEFAULT_CURRENCY) -> list[RateRow]:
    """For every currency with a rate on or before `day`, the one `rate_on` would give."""
    rows = db.query(
        f"SELECT {RATE_COLUMNS} FROM exchange_rates r WHERE r.base = ? AND r.day ="
        " (SELECT MAX(x.day) FROM exchange_rates x WHERE x.currency = r.currency"
        " AND x.base = r.base AND x.day <= ?) ORDER BY r.currency",
        [base, day.isoformat()],
    )
    return [_rate(r) for r in rows]


def rates_page(
    db: ViewReader,
    currency: str | None = None,
    base: str = DEFAULT_CURRENCY,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[RateRow], int]:
    """Recorded rates, newest day first (of one currency, or all), and how many in all."""
    where = "base = ?" + (" AND currency = ?" if currency else "")
    params: list[Any] = [base, *([currency] if currency else [])]
    total = db.query_one(f"SELECT COUNT(*) AS n FROM exchange_rates WHERE {where}", params)
    rows = db.query(
        f"SELECT {RATE_COLUMNS} FROM exchange_rates WHERE {where}"
        " ORDER BY day DESC, currency LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return [_rate(r) for r in rows], int(total["n"]) if total else 0
