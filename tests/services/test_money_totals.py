"""Totals across currencies: converted with the rates of a stated day, or no total at all.

Rates of Friday 4 December 2026 (the Central Bank sets none on Sunday the 6th):
USD 92.50, EUR 100.25 and JPY 61.2345 per 100 yen. Every expected figure is worked out by
hand in the comment beside it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest

from tests.conftest import make_runtime
from threadline.domain.model.money import Money
from threadline.services.money_totals import total_in
from threadline.services.runtime import Runtime

FRIDAY, SUNDAY = date(2026, 12, 4), date(2026, 12, 6)


def m(amount: str, currency: str) -> Money:
    return Money(Decimal(amount), currency)


@pytest.fixture(scope="module")
def rated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    runtime = make_runtime(f"sqlite:///{tmp_path_factory.mktemp('totals')}/threadline.db")
    app = runtime.app
    for currency, rate, nominal in (
        ("USD", "92.50", 1),
        ("EUR", "100.25", 1),
        ("JPY", "61.2345", 100),
    ):
        app.record_exchange_rate("test", currency, FRIDAY, rate, nominal=nominal, source="cbr")
    assert runtime.wait_for_views(app.recorder.max_notification_id(), timeout=60)
    try:
        yield runtime
    finally:
        runtime.close()


def test_a_total_in_roubles_converts_each_amount_with_fridays_rate(rated: Runtime) -> None:
    amounts = [m("100", "USD"), m("50", "EUR"), m("1000", "RUB"), m("1000", "JPY")]
    totals = total_in(rated.views, amounts, "RUB", SUNDAY)
    # 100 * 92.50 = 9250.00; 50 * 100.25 = 5012.50; 1000.00; 1000 * 61.2345 / 100 = 612.345
    # → 612.35; 9250.00 + 5012.50 + 1000.00 + 612.35 = 15874.85
    assert totals.total == m("15874.85", "RUB")
    assert totals.missing == [] and totals.complete
    assert {code: rate.day for code, rate in totals.rates.items()} == {
        "EUR": "2026-12-04",
        "JPY": "2026-12-04",
        "USD": "2026-12-04",
    }


def test_a_total_in_dollars_goes_through_the_rouble(rated: Runtime) -> None:
    amounts = [m("100", "USD"), m("50", "EUR"), m("1000", "RUB")]
    totals = total_in(rated.views, amounts, "USD", SUNDAY)
    # 50 EUR = 50 * 100.25 / 92.50 = 5012.50 / 92.50 = 54.1891… → 54.19 USD
    # 1000 RUB = 1000 / 92.50 = 10.8108… → 10.81 USD; 100 + 54.19 + 10.81 = 165.00
    assert totals.total == m("165.00", "USD")
    assert set(totals.rates) == {"USD", "EUR"}


def test_a_currency_without_a_rate_gives_no_total(rated: Runtime) -> None:
    totals = total_in(rated.views, [m("100", "USD"), m("20", "GBP"), m("5", "CHF")], "RUB", SUNDAY)
    assert totals.total is None and not totals.complete
    assert totals.missing == ["CHF", "GBP"]
    assert set(totals.rates) == {"USD"}  # what was found is still said
    # No total in a currency that has no rate itself either.
    assert total_in(rated.views, [m("100", "RUB")], "GBP", SUNDAY).missing == ["GBP"]


def test_a_day_before_any_rate_or_long_after_the_last_has_none(rated: Runtime) -> None:
    before = total_in(rated.views, [m("1", "USD"), m("1", "EUR")], "RUB", date(2026, 12, 3))
    assert (before.total, before.missing) == (None, ["EUR", "USD"])
    # 30 December is 26 days after the last rate: not the rate of that date.
    late = total_in(rated.views, [m("1", "USD")], "RUB", date(2026, 12, 30))
    assert (late.total, late.missing) == (None, ["USD"])
    # 18 December is 14 days after: still within the longest pause of the Central Bank.
    assert total_in(rated.views, [m("1", "USD")], "RUB", date(2026, 12, 18)).total == m(
        "92.50", "RUB"
    )


def test_amounts_in_the_total_currency_need_no_rate(rated: Runtime) -> None:
    totals = total_in(rated.views, [m("10.10", "GBP"), m("-2.05", "GBP")], "GBP", SUNDAY)
    assert totals.total == m("8.05", "GBP") and totals.rates == {}  # 10.10 - 2.05
    assert total_in(rated.views, [], "RUB", SUNDAY).total == m("0", "RUB")
    # A refund in dollars lowers the rouble total: 1000.00 - 10 * 92.50 = 75.00
    assert total_in(rated.views, [m("1000", "RUB"), m("-10", "USD")], "RUB", SUNDAY).total == m(
        "75.00", "RUB"
    )
