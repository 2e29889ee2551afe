"""The catalogue API: products, price lists, price quotes and exchange rates, by role."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_runtime
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime

ADMIN = {"Authorization": "Bearer admin-secret"}

DAILY = """<?xml version="1.0" encoding="windows-1251"?>
<ValCurs Date="04.12.2026" name="Foreign Currency Market">
<Valute ID="R01235"><NumCode>840</NumCode><CharCode>USD</CharCode><Nominal>1</Nominal><Name>Доллар США</Name><Value>92,5000</Value><VunitRate>92,5</VunitRate></Valute>
<Valute ID="R01820"><NumCode>392</NumCode><CharCode>JPY</CharCode><Nominal>100</Nominal><Name>Японских иен</Name><Value>61,2345</Value><VunitRate>0,612345</VunitRate></Valute>
</ValCurs>
""".encode("windows-1251")


@pytest.fixture
def api(database_url: str) -> Iterator[TestClient]:
    runtime = make_runtime(database_url, admin_token="admin-secret", max_body_bytes=64_000)
    try:
        with TestClient(create_app(runtime)) as client:
            yield client
    finally:
        runtime.close()


@pytest.fixture
def sqlite_api(sqlite_url: str) -> Iterator[tuple[TestClient, Runtime]]:
    runtime = make_runtime(sqlite_url, admin_token="admin-secret", max_body_bytes=64_000)
    try:
        with TestClient(create_app(runtime)) as client:
            yield client, runtime
    finally:
        runtime.close()


def token_for(client: TestClient, role: str) -> dict[str, str]:
    response = client.post(
        "/api/users", json={"email": f"{role}@example.com", "role": role}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def money(amount: str, currency: str = "RUB") -> dict[str, str]:
    return {"amount": amount, "currency": currency}


def test_products_create_read_change_and_archive(api: TestClient) -> None:
    manager = token_for(api, "manager")
    router = ok(
        api.post(
            "/api/products",
            json={
                "name": "Router",
                "sku": "RT-1",
                "unit": "pcs",
                "price": money("12500.50"),
                "cost": money("140", "USD"),
                "vat": "standard",
            },
            headers=manager,
        ),
        201,
    )
    assert router["price"] == money("12500.50") and router["cost"] == money("140", "USD")
    assert (router["sku"], router["unit"], router["vat_included"], router["archived"]) == (
        "RT-1",
        "pcs",
        True,
        False,
    )
    # A plain amount takes the request's currency.
    licence = ok(
        api.post(
            "/api/products",
            json={"name": "Licence", "price": "19.90", "cost": 5, "currency": "eur"},
            headers=manager,
        ),
        201,
    )
    assert licence["price"] == money("19.90", "EUR") and licence["cost"] == money("5", "EUR")
    assert ok(api.get(f"/api/products/{router['id']}", headers=manager)) == router

    # PATCH: a plain price is in the product's own currency; only what is given changes.
    changed = ok(
        api.patch(
            f"/api/products/{licence['id']}",
            json={"name": "Licence (year)", "price": "24.50", "vat": "none"},
            headers=manager,
        )
    )
    assert changed["name"] == "Licence (year)" and changed["price"] == money("24.50", "EUR")
    assert changed["cost"] == money("5", "EUR") and changed["vat"] == "none"
    archived = ok(
        api.patch(f"/api/products/{router['id']}", json={"archived": True}, headers=manager)
    )
    assert archived["archived"] is True and archived["price"] == router["price"]

    listed = ok(api.get("/api/products", headers=manager))
    assert (listed["total"], [p["name"] for p in listed["items"]]) == (1, ["Licence (year)"])
    listed = ok(api.get("/api/products", params={"archived": "true"}, headers=manager))
    assert [p["name"] for p in listed["items"]] == ["Licence (year)", "Router"]
    listed = ok(api.get("/api/products", params={"q": "rt-1", "archived": "true"}, headers=manager))
    assert [p["id"] for p in listed["items"]] == [router["id"]]
    paged = ok(
        api.get(
            "/api/products", params={"archived": "true", "limit": 1, "offset": 1}, headers=manager
        )
    )
    assert (paged["total"], [p["name"] for p in paged["items"]]) == (2, ["Router"])


def test_product_input_errors_name_the_field(api: TestClient) -> None:
    negative = api.post("/api/products", json={"name": "X", "price": "-1"}, headers=ADMIN)
    assert negative.status_code == 422
    assert negative.json()["detail"][0]["loc"] == ["body", "price"]
    assert "negative" in negative.json()["detail"][0]["msg"]
    words = api.post("/api/products", json={"name": "X", "price": "ten"}, headers=ADMIN)
    assert words.status_code == 422 and words.json()["detail"][0]["loc"] == ["body", "price"]
    vat = api.post("/api/products", json={"name": "X", "price": 1, "vat": "high"}, headers=ADMIN)
    assert vat.status_code == 422
    supplier = api.post(
        "/api/products",
        json={"name": "X", "price": 1, "supplier_id": "00000000-0000-0000-0000-000000000001"},
        headers=ADMIN,
    )
    assert supplier.status_code == 404
    missing = "00000000-0000-0000-0000-000000000002"
    assert api.get(f"/api/products/{missing}", headers=ADMIN).status_code == 404
    assert (
        api.patch(f"/api/products/{missing}", json={"name": "Y"}, headers=ADMIN).status_code == 404
    )
    assert ok(api.get("/api/products", headers=ADMIN))["total"] == 0


def test_price_lists_and_the_quote_a_group_gets(api: TestClient) -> None:
    router = ok(
        api.post("/api/products", json={"name": "Router", "price": "1000"}, headers=ADMIN), 201
    )
    cable = ok(
        api.post("/api/products", json={"name": "Cable", "price": "100"}, headers=ADMIN), 201
    )
    wholesale = ok(
        api.post(
            "/api/price-lists",
            json={
                "name": "Wholesale",
                "client_group": "wholesale",
                "currency": "RUB",
                "prices": {router["id"]: "900", cable["id"]: 85.5},
            },
            headers=ADMIN,
        ),
        201,
    )
    assert [(p["product_name"], p["price"]) for p in wholesale["prices"]] == [
        ("Cable", money("85.5")),
        ("Router", money("900")),
    ]
    export = ok(
        api.post(
            "/api/price-lists",
            json={"name": "Export", "client_group": "wholesale", "currency": "USD"},
            headers=ADMIN,
        ),
        201,
    )
    assert export["prices"] == []
    lists = ok(api.get("/api/price-lists", headers=ADMIN))["items"]
    assert [(pl["name"], pl["currency"], pl["prices"]) for pl in lists] == [
        ("Export", "USD", None),
        ("Wholesale", "RUB", None),
    ]

    def quote(product: dict[str, Any], **params: str) -> Any:
        return ok(api.get(f"/api/products/{product['id']}/price", params=params, headers=ADMIN))

    got = quote(router, client_group="wholesale", currency="RUB")
    assert (got["price"], got["source"]) == (money("900"), f"price_list:{wholesale['id']}")
    got = quote(router, client_group="retail")  # the catalogue's currency by default
    assert (got["price"], got["source"], got["currency"]) == (money("1000"), "catalogue", "RUB")
    got = quote(router, client_group="wholesale", currency="USD")
    assert (got["price"], got["source"]) == (None, None)  # never a converted price

    changed = ok(
        api.patch(
            f"/api/price-lists/{export['id']}",
            json={"name": "Export 2027", "prices": {router["id"]: "11.50"}},
            headers=ADMIN,
        )
    )
    assert changed["name"] == "Export 2027" and changed["client_group"] == "wholesale"
    assert changed["prices"][0]["price"] == money("11.50", "USD")
    got = quote(router, client_group="wholesale", currency="usd")
    assert (got["price"], got["source"]) == (money("11.50", "USD"), f"price_list:{export['id']}")

    removed = ok(
        api.patch(
            f"/api/price-lists/{wholesale['id']}",
            json={"client_group": "dealers", "prices": {router["id"]: None}},
            headers=ADMIN,
        )
    )
    assert [p["product_name"] for p in removed["prices"]] == ["Cable"]
    assert quote(cable, client_group="dealers")["price"] == money("85.5")
    assert quote(router, client_group="dealers")["source"] == "catalogue"
    assert ok(api.get(f"/api/price-lists/{wholesale['id']}", headers=ADMIN)) == removed

    # A refused price leaves no half-made list behind.
    unknown = "00000000-0000-0000-0000-000000000009"
    for prices, status in (({unknown: "1"}, 404), ({router["id"]: "-5"}, 422)):
        refused = api.post(
            "/api/price-lists",
            json={"name": "Broken", "client_group": "x", "prices": prices},
            headers=ADMIN,
        )
        assert refused.status_code == status, refused.text
    assert len(ok(api.get("/api/price-lists", headers=ADMIN))["items"]) == 2
    assert api.get(f"/api/products/{unknown}/price", headers=ADMIN).status_code == 404
    assert api.get(f"/api/price-lists/{unknown}", headers=ADMIN).status_code == 404


def test_exchange_rates_entered_imported_and_read_by_day(api: TestClient) -> None:
    manager = token_for(api, "manager")
    entered = ok(
        api.post(
            "/api/exchange-rates",
            json={"currency": "usd", "day": "2026-12-03", "rate": "91.80"},
            headers=manager,
        ),
        201,
    )
    assert entered["changed"] is True
    assert {
        k: entered["rate"][k] for k in ("currency", "base", "day", "rate", "nominal", "source")
    } == {
        "currency": "USD",
        "base": "RUB",
        "day": "2026-12-03",
        "rate": "91.80",
        "nominal": 1,
        "source": "manual",
    }
    again = api.post(
        "/api/exchange-rates",
        json={"currency": "USD", "day": "2026-12-03", "rate": 91.8},
        headers=manager,
    )
    assert ok(again, 201)["changed"] is False
    rouble = api.post(
        "/api/exchange-rates",
        json={"currency": "RUB", "day": "2026-12-03", "rate": 1},
        headers=manager,
    )
    assert rouble.status_code == 422

    upload = {"file": ("XML_daily.asp", DAILY, "application/xml")}
    imported = ok(api.post("/api/exchange-rates/import", files=upload, headers=manager))
    assert imported == {"day": "2026-12-04", "recorded": 2, "unchanged": 0, "total": 2}
    repeated = ok(api.post("/api/exchange-rates/import", files=upload, headers=manager))
    assert (repeated["recorded"], repeated["unchanged"]) == (0, 2)

    # On Sunday the 6th the rates in force are Friday's, and each says so.
    sunday = ok(api.get("/api/exchange-rates", params={"day": "2026-12-06"}, headers=manager))
    assert sunday["day"] == "2026-12-06"
    assert [
        (r["currency"], r["day"], r["rate"], r["nominal"], r["source"]) for r in sunday["items"]
    ] == [
        ("JPY", "2026-12-04", "61.2345", 100, "cbr"),
        ("USD", "2026-12-04", "92.5000", 1, "cbr"),
    ]
    thursday = ok(
        api.get(
            "/api/exchange-rates", params={"day": "2026-12-03", "currency": "USD"}, headers=manager
        )
    )
    assert [(r["day"], r["rate"]) for r in thursday["items"]] == [("2026-12-03", "91.80")]
    none = ok(
        api.get(
            "/api/exchange-rates", params={"day": "2026-12-01", "currency": "USD"}, headers=manager
        )
    )
    assert (none["items"], none["total"]) == ([], 0)
    recorded = ok(api.get("/api/exchange-rates", params={"currency": "USD"}, headers=manager))
    assert (recorded["total"], [r["day"] for r in recorded["items"]], recorded["day"]) == (
        2,
        ["2026-12-04", "2026-12-03"],
        None,
    )

    broken = api.post(
        "/api/exchange-rates/import",
        files={"file": ("rates.xml", b"<html>Service unavailable</html>", "text/html")},
        headers=manager,
    )
    assert broken.status_code == 422
    message = broken.json()["detail"][0]["msg"]
    assert "not <ValCurs>" in message and "nothing was imported" in message


def test_only_managers_and_admins_change_the_catalogue(
    sqlite_api: tuple[TestClient, Runtime],
) -> None:
    client, runtime = sqlite_api
    product = ok(
        client.post("/api/products", json={"name": "Router", "price": "1"}, headers=ADMIN), 201
    )
    price_list = ok(
        client.post("/api/price-lists", json={"name": "W", "client_group": "w"}, headers=ADMIN), 201
    )
    before = runtime.app.recorder.max_notification_id()
    for role in ("operator", "auditor"):
        headers = token_for(client, role)
        before = runtime.app.recorder.max_notification_id()
        writes = (
            client.post("/api/products", json={"name": "X", "price": "1"}, headers=headers),
            client.patch(f"/api/products/{product['id']}", json={"name": "Y"}, headers=headers),
            client.post(
                "/api/price-lists", json={"name": "X", "client_group": "x"}, headers=headers
            ),
            client.patch(
                f"/api/price-lists/{price_list['id']}", json={"name": "Y"}, headers=headers
            ),
            client.post(
                "/api/exchange-rates",
                json={"currency": "USD", "day": "2026-12-03", "rate": "1"},
                headers=headers,
            ),
            client.post(
                "/api/exchange-rates/import",
                files={"file": ("XML_daily.asp", DAILY, "application/xml")},
                headers=headers,
            ),
        )
        assert [w.status_code for w in writes] == [403] * 6, [w.text for w in writes]
        assert runtime.app.recorder.max_notification_id() == before
        # ... and they read everything.
        assert ok(client.get("/api/products", headers=headers))["total"] == 1
        assert (
            ok(client.get(f"/api/price-lists/{price_list['id']}", headers=headers))["name"] == "W"
        )
        assert (
            ok(client.get(f"/api/products/{product['id']}/price", headers=headers))["source"]
            == "catalogue"
        )
        assert ok(client.get("/api/exchange-rates", headers=headers))["total"] == 0
    assert client.get("/api/products").status_code == 401
