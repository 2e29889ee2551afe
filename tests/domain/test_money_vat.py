"""Money, VAT and gross profit on cases computed by hand (the expected figures are written out).

Rules under test: a line is rounded on its own to the minor unit, half away from zero; VAT
included in a price is price x rate / (100 + rate); VAT added is net x rate / 100; gross
profit is the net amount less cost x quantity; the Russian standard rate is 20 % until
31 December 2025 and 22 % from 1 January 2026; amounts of two currencies never add up.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from threadline.domain.model.deal import DealLine, clean_line, deal_figures
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.money import CurrencyMismatch, Money
from threadline.domain.model.vat import price_line, vat_rate

D = Decimal


def line(**fields: object) -> DealLine:
    return clean_line({"name": "item", **fields}, 0, date(2026, 3, 1))


def test_the_standard_rate_changes_on_1_january_2026() -> None:
    assert vat_rate("standard", date(2025, 12, 31)) == D(20)
    assert vat_rate("standard", date(2026, 1, 1)) == D(22)
    assert vat_rate("standard", date(2018, 12, 31)) == D(18)
    assert vat_rate("reduced", date(2026, 1, 1)) == D(10)
    assert vat_rate("zero", date(2026, 1, 1)) == D(0)
    assert vat_rate("none", date(2026, 1, 1)) is None


def test_vat_included_at_20_percent_before_the_change() -> None:
    # 3 x 1,200.00 = 3,600.00 with VAT; VAT = 3,600 x 20 / 120 = 600.00; net 3,000.00;
    # cost 3 x 700.00 = 2,100.00; gross profit 3,000.00 - 2,100.00 = 900.00
    f = clean_line(
        {"name": "Window", "quantity": 3, "price": "1200.00", "cost": "700", "vat": "standard"},
        0,
        date(2025, 12, 31),
    ).figures("RUB")
    assert (f.total, f.vat, f.net, f.cost, f.profit) == (
        D("3600.00"),
        D("600.00"),
        D("3000.00"),
        D("2100.00"),
        D("900.00"),
    )


def test_vat_included_at_22_percent_from_the_change() -> None:
    # VAT = 3,600 x 22 / 122 = 649.180327... → 649.18; net 2,950.82; profit 2,950.82 - 2,100 = 850.82
    f = clean_line(
        {"name": "Window", "quantity": 3, "price": "1200.00", "cost": "700", "vat": "standard"},
        0,
        date(2026, 1, 1),
    ).figures("RUB")
    assert (f.total, f.vat, f.net, f.profit) == (
        D("3600.00"),
        D("649.18"),
        D("2950.82"),
        D("850.82"),
    )


def test_vat_added_to_a_discounted_price() -> None:
    # 2 x 999.99 = 1,999.98; 10 % discount = 199.998 → 200.00; net 1,799.98;
    # VAT 22 % = 395.9956 → 396.00; total 2,195.98; cost 2 x 500 = 1,000.00; profit 799.98
    f = line(
        quantity=2, price="999.99", cost=500, discount=10, vat="standard", vat_included=False
    ).figures("RUB")
    assert (f.discount, f.net, f.vat, f.total, f.cost, f.profit) == (
        D("200.00"),
        D("1799.98"),
        D("396.00"),
        D("2195.98"),
        D("1000.00"),
        D("799.98"),
    )


def test_reduced_rate_and_without_vat() -> None:
    reduced = line(quantity=1, price="110.00", vat="reduced").figures("RUB")
    assert (reduced.net, reduced.vat) == (D("100.00"), D("10.00"))
    without = line(quantity=5, price="19.99", vat="none").figures("RUB")
    assert (without.total, without.vat, without.net) == (D("99.95"), D("0"), D("99.95"))


def test_a_refund_is_a_negative_quantity_and_rounds_symmetrically() -> None:
    # -1 x 1,200.00 with 22 % included: VAT -216.393... → -216.39, net -983.61,
    # cost -700.00, profit -283.61
    f = line(quantity=-1, price="1200.00", cost=700, vat="standard").figures("RUB")
    assert (f.total, f.vat, f.net, f.cost, f.profit) == (
        D("-1200.00"),
        D("-216.39"),
        D("-983.61"),
        D("-700.00"),
        D("-283.61"),
    )


def test_lines_are_rounded_one_by_one_and_the_total_is_their_sum() -> None:
    # each 0.10 with 22 % included: VAT 0.018032... → 0.02, net 0.08; three lines: VAT 0.06,
    # net 0.24, total 0.30 (computing VAT on the 0.30 total would give 0.05: lines would
    # not agree with the document)
    lines = [line(id=f"l{i}", quantity=1, price="0.10", vat="standard") for i in range(3)]
    totals = deal_figures(lines, "RUB")
    assert (totals.total, totals.vat, totals.net) == (D("0.30"), D("0.06"), D("0.24"))


def test_a_currency_without_minor_units_rounds_to_whole_units() -> None:
    # 3 x 333 JPY = 999 net; VAT 10 % added = 99.9 → 100; total 1,099
    f = line(quantity=3, price=333, vat="reduced", vat_included=False).figures("JPY")
    assert (f.net, f.vat, f.total) == (D("999"), D("100"), D("1099"))
    assert Money(D("1099"), "JPY").minor == 1099
    assert Money(D("12.345"), "RUB").minor == 1235


def test_a_full_discount_costs_nothing_and_the_cost_remains() -> None:
    f = line(quantity=1, price="500", cost="120", discount=100, vat="standard").figures("RUB")
    assert (f.total, f.net, f.profit) == (D("0.00"), D("0.00"), D("-120.00"))


def test_two_currencies_never_add_up() -> None:
    with pytest.raises(CurrencyMismatch):
        _ = Money(D(1), "RUB") + Money(D(1), "USD")
    assert Money(D("1.50"), "EUR") + Money(D("2.25"), "EUR") == Money(D("3.75"), "EUR")


def test_bad_lines_are_refused_with_the_field_named() -> None:
    for fields, field in (
        ({"quantity": 0, "price": 1}, "lines[0].quantity"),
        ({"quantity": 1, "price": "abc"}, "lines[0].price"),
        ({"quantity": 1, "price": 1, "discount": 101}, "lines[0].discount"),
        ({"quantity": 1, "price": 1, "vat": "twenty"}, "lines[0].vat"),
        ({"quantity": 1, "price": -5}, "lines[0].price"),
    ):
        with pytest.raises(InvalidInput) as error:
            line(**fields)
        assert error.value.field == field


@given(
    quantity=st.integers(min_value=-50, max_value=50).filter(bool),
    cents=st.integers(min_value=0, max_value=10_000_000),
    discount=st.integers(min_value=0, max_value=100),
    rate=st.sampled_from([None, D(0), D(10), D(20), D(22)]),
    included=st.booleans(),
)
def test_every_line_agrees_with_itself(
    quantity: int, cents: int, discount: int, rate: Decimal | None, included: bool
) -> None:
    f = price_line(
        quantity=D(quantity),
        price=D(cents) / 100,
        cost=D(0),
        discount_percent=D(discount),
        vat_rate_percent=rate,
        vat_included=included,
        currency="RUB",
    )
    assert f.net + f.vat == f.total
    assert f.amount == (f.total if included else f.net)
    for value in (f.net, f.vat, f.total, f.discount):
        assert value == value.quantize(D("0.01"))
    if rate in (None, D(0)):
        assert f.vat == 0
