"""The catalogue screens: products and price lists, created and edited through their forms.

The forms call the same commands as the API, so a refused value comes back next to its
field with the API's status and records nothing; managers and admins edit, the other
roles read with the forms disabled and get 403 on a forced POST.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_runtime
from tests.web.helpers import web_client
from threadline.domain.model.money import Money
from threadline.projections.catalogue import price_for, price_list, product, products_page
from threadline.services.runtime import Runtime
from threadline.services.web import routes_auth
from threadline.services.web.login_limit import LoginLimiter


@pytest.fixture
def runtime(sqlite_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(sqlite_url, attachments_dir=str(tmp_path / "attachments"))
    routes_auth.limiter = LoginLimiter()
    try:
        yield rt
    finally:
        rt.close()


def errors_in(html: str) -> dict[str, str]:
    found = re.findall(r'data-error-for="([^"]+)">([^<]*)<', html)
    return dict(found)


def main_of(html: str) -> str:
    return html.split("<main", 1)[1]


def position(runtime: Runtime) -> int:
    return int(runtime.app.recorder.max_notification_id() or 0)


def product_form(csrf: str, **fields: str) -> dict[str, str]:
    form = {
        "csrf_token": csrf,
        "name": "Router",
        "sku": "RT-1",
        "unit": "pcs",
        "price": "12 500,50",  # as people type it: a space and a decimal comma
        "price_currency": "rub",
        "cost": "140",
        "cost_currency": "USD",
        "vat": "standard",
        "vat_included": "1",
    }
    form.update(fields)
    return form


def created_id(answer: Any, prefix: str) -> str:
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    match = re.match(rf"^{prefix}/([0-9a-f-]{{36}})\?done=", location)
    assert match, location
    return match.group(1)


def test_a_manager_creates_edits_and_archives_a_product(runtime: Runtime) -> None:
    client, csrf, _ = web_client(runtime, "manager")
    answer = client.post("/admin/products/new", data=product_form(csrf), follow_redirects=False)
    product_id = created_id(answer, "/admin/products")
    stored = product(runtime.views, product_id)
    assert stored is not None
    assert stored.price == Money(Decimal("12500.50"), "RUB")
    assert stored.cost == Money(Decimal("140"), "USD")
    assert (stored.sku, stored.unit, stored.vat, stored.vat_included) == (
        "RT-1",
        "pcs",
        "standard",
        True,
    )

    page = client.get(answer.headers["location"])
    assert page.status_code == 200 and "Created." in page.text
    assert 'value="12500.50"' in page.text and 'value="USD"' in page.text

    listed = client.get("/admin/products")
    row = re.search(rf'<tr data-product-id="{product_id}">(.*?)</tr>', listed.text, re.S)
    assert row, listed.text
    assert "RUB12,500.50" in row.group(1) and "$140.00" in row.group(1)

    # Edit: the price in another currency, VAT added on top, then archived.
    edited = client.post(
        f"/admin/products/{product_id}",
        data=product_form(
            csrf, name="Router X", price="0.0035", vat="reduced", vat_included="", archived="1"
        ),
        follow_redirects=False,
    )
    assert edited.status_code == 303, edited.text
    stored = product(runtime.views, product_id)
    assert stored is not None
    assert (stored.name, stored.price, stored.vat, stored.vat_included, stored.archived) == (
        "Router X",
        Money(Decimal("0.0035"), "RUB"),
        "reduced",
        False,
        True,
    )
    hidden = client.get("/admin/products")
    assert product_id not in hidden.text and "No products yet." in hidden.text
    shown = client.get("/admin/products", params={"archived": "1", "q": "router x"})
    row = re.search(rf'<tr data-product-id="{product_id}">(.*?)</tr>', shown.text, re.S)
    assert row and "archived" in row.group(1)
    assert "RUB0.0035" in row.group(1)  # a sub-kopeck unit price is shown as it is


def test_a_refused_product_shows_the_field_and_records_nothing(runtime: Runtime) -> None:
    client, csrf, _ = web_client(runtime, "manager", locale="ru")
    before = position(runtime)
    negative = client.post("/admin/products/new", data=product_form(csrf, price="-5"))
    assert negative.status_code == 422
    assert errors_in(negative.text) == {"price": "не может быть отрицательным"}
    assert 'value="-5"' in negative.text and 'value="Router"' in negative.text  # kept as typed
    currency = client.post("/admin/products/new", data=product_form(csrf, cost_currency="dollars"))
    assert currency.status_code == 422
    assert errors_in(currency.text) == {
        "cost.currency": "валюта — трёхбуквенный код ISO 4217, например RUB"
    }
    empty = client.post("/admin/products/new", data=product_form(csrf, name="  "))
    assert empty.status_code == 422 and set(errors_in(empty.text)) == {"name"}
    assert position(runtime) == before
    assert client.get("/admin/products/00000000-0000-0000-0000-000000000001").status_code == 404
    assert client.get("/admin/products/not-an-id").status_code == 404


def test_a_price_list_prices_products_for_its_group(runtime: Runtime) -> None:
    client, csrf, _ = web_client(runtime, "admin")
    router = runtime.app.create_product("test", "Router", "1000").value
    cable = runtime.app.create_product("test", "Cable", "100").value
    runtime.wait_for_views(position(runtime))

    refused = client.post(
        "/admin/price-lists",
        data={"csrf_token": csrf, "name": "Wholesale", "client_group": "", "currency": "RUB"},
    )
    assert refused.status_code == 422 and set(errors_in(refused.text)) == {"client_group"}
    answer = client.post(
        "/admin/price-lists",
        data={
            "csrf_token": csrf,
            "name": "Wholesale",
            "client_group": "wholesale",
            "currency": "rub",
        },
        follow_redirects=False,
    )
    list_id = created_id(answer, "/admin/price-lists")
    page = client.get(f"/admin/price-lists/{list_id}")
    assert page.status_code == 200
    # Every catalogue product is offered, with its catalogue price beside a blank field.
    assert f'name="p_{router}" value=""' in page.text and f'name="p_{cable}" value=""' in page.text
    assert "RUB1,000.00" in page.text

    def save(**prices: str) -> Any:
        data: dict[str, Any] = {
            "csrf_token": csrf,
            "name": "Wholesale",
            "client_group": "wholesale",
        }
        data["product"] = [str(router), str(cable)]
        data.update({f"p_{key}": value for key, value in prices.items()})
        return client.post(f"/admin/price-lists/{list_id}", data=data, follow_redirects=False)

    assert save(**{str(router): "900,50", str(cable): ""}).status_code == 303
    quote = price_for(runtime.views, router, "wholesale", "RUB")
    assert quote is not None and quote.money == Money(Decimal("900.50"), "RUB")
    assert quote.source == f"price_list:{list_id}"
    cable_quote = price_for(runtime.views, cable, "wholesale", "RUB")
    assert cable_quote is not None and cable_quote.source == "catalogue"

    before = position(runtime)
    bad = save(**{str(router): "nine hundred", str(cable): "80"})
    assert bad.status_code == 422
    assert errors_in(bad.text) == {f"prices.{router}": "expected a number"}
    assert 'value="nine hundred"' in bad.text and f'name="p_{cable}" value="80"' in bad.text
    assert position(runtime) == before

    # A blank price takes the product off the list; the group then pays the catalogue price.
    assert save(**{str(router): "", str(cable): "80"}).status_code == 303
    found = price_list(runtime.views, list_id)
    assert found is not None
    assert [(p.product_name, p.price) for p in found.prices] == [
        ("Cable", Money(Decimal("80"), "RUB"))
    ]
    router_quote = price_for(runtime.views, router, "wholesale", "RUB")
    assert router_quote is not None and router_quote.source == "catalogue"
    lists = client.get("/admin/price-lists")
    assert f'href="/admin/price-lists/{list_id}">Wholesale</a>' in lists.text
    assert client.get("/admin/price-lists/00000000-0000-0000-0000-000000000001").status_code == 404


@pytest.mark.parametrize("role", ["operator", "auditor"])
def test_other_roles_read_with_forms_disabled_and_cannot_post(runtime: Runtime, role: str) -> None:
    router = runtime.app.create_product("test", "Router", "1000").value
    list_id = runtime.app.create_price_list("test", "Wholesale", "wholesale").value
    runtime.wait_for_views(position(runtime))
    client, csrf, _ = web_client(runtime, role)
    for path in (
        "/admin/products",
        f"/admin/products/{router}",
        "/admin/price-lists",
        f"/admin/price-lists/{list_id}",
        "/admin/exchange-rates",
    ):
        page = client.get(path)
        assert page.status_code == 200, path
        assert "Read only" in page.text, path
        posting = re.findall(r'<form method="post".*?</form>', main_of(page.text), re.S)
        buttons = [b for form in posting for b in re.findall(r"<button[^>]*>", form)]
        assert all("disabled" in b for b in buttons), (path, buttons)
        assert buttons or path == "/admin/products", path  # the list posts nothing
        assert "/admin/products/new" not in page.text, path
    before = position(runtime)
    for path, data in (
        ("/admin/products/new", product_form(csrf)),
        (f"/admin/products/{router}", product_form(csrf, name="Renamed")),
        ("/admin/price-lists", {"csrf_token": csrf, "name": "X", "client_group": "x"}),
        (f"/admin/price-lists/{list_id}", {"csrf_token": csrf, "name": "Y", "client_group": "y"}),
        (
            "/admin/exchange-rates",
            {"csrf_token": csrf, "currency": "USD", "day": "2026-12-04", "rate": "92.5"},
        ),
    ):
        assert client.post(path, data=data).status_code == 403, path
    forced_import = client.post(
        "/admin/exchange-rates/import",
        data={"csrf_token": csrf},
        files={"file": ("XML_daily.asp", DAILY, "application/xml")},
    )
    assert forced_import.status_code == 403
    assert position(runtime) == before
    assert products_page(runtime.views)[0][0].name == "Router"


def test_the_pages_speak_russian(runtime: Runtime) -> None:
    runtime.app.create_product("test", "Роутер", "1000", vat="none")
    runtime.wait_for_views(position(runtime))
    client, _, _ = web_client(runtime, "manager", locale="ru")
    listed = client.get("/admin/products")
    assert listed.status_code == 200
    assert '<a href="/admin/products" class="on">Товары</a>' in listed.text  # the top bar
    assert "Прайс-листы" in listed.text and "без НДС" in listed.text
    assert "1\u00a0000,00\u00a0₽" in listed.text  # Babel: no-break spaces
    new = client.get("/admin/products/new")
    assert "Новый товар" in new.text and "основная ставка" in new.text
    assert "Прайс-листов пока нет." in client.get("/admin/price-lists").text


DAILY = """<?xml version="1.0" encoding="windows-1251"?>
<ValCurs Date="04.12.2026" name="Foreign Currency Market">
<Valute ID="R01235"><NumCode>840</NumCode><CharCode>USD</CharCode><Nominal>1</Nominal><Name>Доллар США</Name><Value>92,5000</Value><VunitRate>92,5</VunitRate></Valute>
<Valute ID="R01820"><NumCode>392</NumCode><CharCode>JPY</CharCode><Nominal>100</Nominal><Name>Японских иен</Name><Value>61,2345</Value><VunitRate>0,612345</VunitRate></Valute>
</ValCurs>
""".encode("windows-1251")


def rate_rows(html: str) -> dict[str, str]:
    rows = re.findall(r'<tr data-currency="([A-Z]{3})">(.*?)</tr>', html, re.S)
    return {code: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)).strip() for code, body in rows}


def test_rates_are_entered_imported_and_shown_for_a_day(runtime: Runtime) -> None:
    client, csrf, _ = web_client(runtime, "manager")
    entered = client.post(
        "/admin/exchange-rates",
        data={"csrf_token": csrf, "currency": "eur", "day": "2026-12-03", "rate": "100,25"},
        follow_redirects=False,
    )
    assert entered.status_code == 303
    assert entered.headers["location"] == "/admin/exchange-rates?day=2026-12-03&done=recorded"
    again = client.post(
        "/admin/exchange-rates",
        data={"csrf_token": csrf, "currency": "EUR", "day": "2026-12-03", "rate": "100.25"},
    )
    assert "This rate was recorded already; nothing changed." in again.text

    imported = client.post(
        "/admin/exchange-rates/import",
        data={"csrf_token": csrf},
        files={"file": ("XML_daily.asp", DAILY, "application/xml")},
    )
    assert imported.status_code == 200, imported.text
    assert "The file is imported: 2 rates recorded, 0 already there." in imported.text
    # On Sunday the 6th: Friday's dollar and yen, Thursday's euro, each with its own date.
    sunday = client.get("/admin/exchange-rates", params={"day": "2026-12-06"})
    assert rate_rows(sunday.text) == {
        "EUR": "EUR 1 100.25 Dec 3, 2026 (the latest before this day) entered by hand",
        "JPY": "JPY 100 61.2345 Dec 4, 2026 (the latest before this day) Central Bank file",
        "USD": "USD 1 92.5 Dec 4, 2026 (the latest before this day) Central Bank file",
    }
    friday = client.get("/admin/exchange-rates", params={"day": "2026-12-04"})
    assert "(the latest before" not in rate_rows(friday.text)["USD"]
    assert rate_rows(client.get("/admin/exchange-rates?day=2026-12-02").text) == {}

    before = position(runtime)
    broken = client.post(
        "/admin/exchange-rates/import",
        data={"csrf_token": csrf},
        files={"file": ("rates.xml", DAILY.replace(b"92,5000", b"abc"), "application/xml")},
    )
    assert broken.status_code == 422
    shown = errors_in(broken.text)["file"]
    assert "USD: &lt;Value&gt;abc&lt;/Value&gt; is not a positive rate" in shown
    assert "nothing was imported" in shown
    bad_rate = client.post(
        "/admin/exchange-rates",
        data={
            "csrf_token": csrf,
            "currency": "RUB",
            "day": "2026-13-01",
            "rate": "-1",
            "nominal": "x",
        },
    )
    assert bad_rate.status_code == 422
    assert set(errors_in(bad_rate.text)) == {"day", "nominal"}
    rouble = client.post(
        "/admin/exchange-rates",
        data={"csrf_token": csrf, "currency": "RUB", "day": "2026-12-01", "rate": "1"},
    )
    assert errors_in(rouble.text) == {"currency": "a rate needs two different currencies"}
    assert position(runtime) == before

    operator, operator_csrf, _ = web_client(runtime, "operator", locale="ru")
    before = position(runtime)
    page = operator.get("/admin/exchange-rates", params={"day": "2026-12-06"})
    assert "Курсы валют" in page.text and "файл Банка России" in page.text
    refused = operator.post(
        "/admin/exchange-rates",
        data={"csrf_token": operator_csrf, "currency": "USD", "day": "2026-12-06", "rate": "1"},
    )
    assert refused.status_code == 403 and position(runtime) == before
