"""Converting money with a rate: exact, rounded once to the target's minor unit, never silent.

Every expected figure is worked out by hand in the comment beside it.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.exchange_rate import convert
from threadline.domain.model.money import Money


def money(amount: str, currency: str) -> Money:
    return Money(Decimal(amount), currency)


def test_dollars_to_roubles_at_a_rate_of_the_day() -> None:
    # 100 USD * 92.5 RUB = 9250.00 RUB
    assert convert(money("100", "USD"), "RUB", Decimal("92.5")) == money("9250.00", "RUB")
    # 12.34 * 92.1234 = 1136.802756 → 1136.80
    assert convert(money("12.34", "USD"), "RUB", Decimal("92.1234")) == money("1136.80", "RUB")


def test_yen_are_quoted_per_hundred() -> None:
    # 1000 JPY at 61.2345 RUB per 100 JPY: 1000 * 61.2345 / 100 = 612.345 → 612.35 (half up)
    assert convert(money("1000", "JPY"), "RUB", Decimal("61.2345"), 100) == money("612.35", "RUB")
    # the nominal matters: read as per 1 JPY it would be 61234.50, a hundred times too much
    assert convert(money("1000", "JPY"), "RUB", Decimal("61.2345"), 1) == money("61234.50", "RUB")


def test_rounding_follows_the_target_currency() -> None:
    # 10 USD * 150.456 JPY = 1504.56 JPY → 1505 (the yen has no minor unit)
    assert convert(money("10", "USD"), "JPY", Decimal("150.456")) == money("1505", "JPY")
    # 2 EUR * 0.33335 KWD = 0.6667 KWD → 0.667 (three decimals)
    assert convert(money("2", "EUR"), "KWD", Decimal("0.33335")) == money("0.667", "KWD")


def test_refunds_round_away_from_zero_like_sales() -> None:
    # -100 USD * 92.5 = -9250.00; -0.1 EUR * 0.05 = -0.005 → -0.01 (half away from zero)
    assert convert(money("-100", "USD"), "RUB", Decimal("92.5")) == money("-9250.00", "RUB")
    assert convert(money("-0.1", "EUR"), "RUB", Decimal("0.05")) == money("-0.01", "RUB")
    assert convert(money("0.1", "EUR"), "RUB", Decimal("0.05")) == money("0.01", "RUB")


def test_the_same_currency_is_only_rounded() -> None:
    assert convert(money("10.005", "RUB"), "RUB", Decimal("1")) == money("10.01", "RUB")


@pytest.mark.parametrize(
    ("rate", "nominal"),
    [(Decimal("0"), 1), (Decimal("-92.5"), 1), (Decimal("NaN"), 1), (Decimal("92.5"), 0)],
)
def test_a_rate_that_is_no_rate_is_refused(rate: Decimal, nominal: int) -> None:
    with pytest.raises(InvalidInput) as caught:
        convert(money("100", "USD"), "RUB", rate, nominal)
    assert caught.value.field == "rate"


def test_the_target_must_be_a_currency_code() -> None:
    with pytest.raises(InvalidInput) as caught:
        convert(money("100", "USD"), "roubles", Decimal("92.5"))
    assert caught.value.field == "to_currency"
