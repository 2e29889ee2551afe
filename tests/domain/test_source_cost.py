"""The lead source's acquisition cost is money: a decimal string with a currency, never a float.

`clean_source` takes the money form, or a number / numeric string with
`acquisition_currency` (RUB when left out); anything else is a clear `InvalidInput`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from threadline.domain.model.contact import clean_source
from threadline.domain.model.errors import InvalidInput
from threadline.triggers.conditions import evaluate
from threadline.triggers.templates import render


@pytest.mark.parametrize(
    ("given_source", "cost"),
    [
        ({"acquisition_cost": 12.5}, {"amount": "12.5", "currency": "RUB"}),
        ({"acquisition_cost": 1500}, {"amount": "1500", "currency": "RUB"}),
        ({"acquisition_cost": "1 500,50"}, {"amount": "1500.50", "currency": "RUB"}),
        (
            {"acquisition_cost": "99.90", "acquisition_currency": "eur"},
            {"amount": "99.90", "currency": "EUR"},
        ),
        (
            {"acquisition_cost": {"amount": "250", "currency": "USD"}},
            {"amount": "250", "currency": "USD"},
        ),
        (
            {"acquisition_cost": {"amount": 0.1, "currency": "KZT"}, "acquisition_currency": "KZT"},
            {"amount": "0.1", "currency": "KZT"},
        ),
        # 0.1 + 0.2 as a float client computes it: the binary noise is rounded off.
        ({"acquisition_cost": 0.30000000000000004}, {"amount": "0.3", "currency": "RUB"}),
        ({"acquisition_cost": "1E+3"}, {"amount": "1000", "currency": "RUB"}),
        ({"acquisition_cost": -0.0}, {"amount": "0", "currency": "RUB"}),
    ],
)
def test_the_cost_becomes_money(given_source: dict[str, Any], cost: dict[str, str]) -> None:
    assert clean_source({"channel": "api", **given_source}) == {
        "channel": "api",
        "acquisition_cost": cost,
    }


@pytest.mark.parametrize(
    ("given_source", "field"),
    [
        ({"acquisition_cost": -1}, "source.acquisition_cost"),
        ({"acquisition_cost": "a lot"}, "source.acquisition_cost"),
        ({"acquisition_cost": float("nan")}, "source.acquisition_cost"),
        ({"acquisition_cost": "Infinity"}, "source.acquisition_cost"),
        ({"acquisition_cost": 10**15}, "source.acquisition_cost"),
        ({"acquisition_cost": True}, "source.acquisition_cost"),
        ({"acquisition_cost": [5]}, "source.acquisition_cost"),
        ({"acquisition_cost": {"amount": "5"}}, "source.acquisition_cost.currency"),
        (
            {"acquisition_cost": "5", "acquisition_currency": "рубль"},
            "source.acquisition_cost.currency",
        ),
        (
            {"acquisition_cost": {"amount": "5", "currency": "USD"}, "acquisition_currency": "EUR"},
            "source.acquisition_currency",
        ),
        ({"acquisition_currency": "USD"}, "source.acquisition_currency"),
        ({"cost": 5}, "source.cost"),
    ],
)
def test_a_cost_that_is_no_money_is_refused_naming_its_field(
    given_source: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        clean_source(given_source)
    assert refused.value.field == field


def _no_float(value: Any) -> bool:
    if isinstance(value, float):
        return False
    if isinstance(value, dict):
        return all(_no_float(v) for v in value.values())
    return True


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.text(max_size=30),
    st.from_regex(r"-?[0-9 ]{1,18}([.,][0-9]{0,14})?", fullmatch=True),
)
costs = st.one_of(
    scalars,
    st.lists(scalars, max_size=2),
    st.fixed_dictionaries({"amount": scalars, "currency": st.one_of(st.text(max_size=4), scalars)}),
    st.dictionaries(st.text(max_size=8), scalars, max_size=3),
)


@given(
    cost=costs, currency=st.one_of(st.none(), st.just(""), st.sampled_from(["RUB", "usd"]), scalars)
)
def test_any_cost_is_money_or_a_clear_refusal(cost: Any, currency: Any) -> None:
    source: dict[str, Any] = {"channel": "web", "acquisition_cost": cost}
    if currency is not None:
        source["acquisition_currency"] = currency
    try:
        cleaned = clean_source(source)
    except InvalidInput as refused:
        assert refused.field.startswith("source.acquisition_")
        return
    assert _no_float(cleaned)
    money = cleaned.get("acquisition_cost")
    if money is None:  # an empty cost is no cost
        assert cost is None or (isinstance(cost, str) and not cost.strip())
        return
    assert set(money) == {"amount", "currency"}
    amount = Decimal(money["amount"])
    assert amount.is_finite() and amount >= 0 and "E" not in money["amount"]
    assert len(money["currency"]) == 3 and money["currency"].isalpha()
    assert money["currency"].isupper() and money["currency"].isascii()
    if isinstance(cost, float):
        assert abs(amount - Decimal(repr(cost))) <= Decimal("0.5e-10")
        expected = "RUB" if currency in (None, "") else str(currency).strip().upper()
        assert money["currency"] == expected


def test_a_template_shows_the_cost_with_its_currency() -> None:
    """`{{ contact.source.acquisition_cost }}` reads "1500.50 RUB", never a mapping or a float."""
    source = clean_source({"channel": "web", "acquisition_cost": "1500.5"})
    variants = {"default": {"text": "{{ contact.source.acquisition_cost }}"}}
    rendered = render(variants, "web", {"contact": {"display_name": "A", "source": source}})
    assert rendered.text == "1500.50 RUB"
    usd = clean_source({"acquisition_cost": 12, "acquisition_currency": "USD"})
    assert render(variants, "web", {"contact": {"source": usd}}).text == "12.00 USD"


@pytest.mark.parametrize(
    ("op", "limit", "holds"),
    [
        ("gt", 1000, True),
        ("gt", 1500.5, False),
        ("gte", 1500.5, True),
        ("lte", 1500.5, True),
        ("lt", 1500.49, False),
        ("lt", 2000, True),
    ],
)
def test_a_rule_orders_the_cost_by_its_amount(op: str, limit: float, holds: bool) -> None:
    """Rules written when the cost was a float (`acquisition_cost gt 1000`) keep working."""
    source = clean_source({"channel": "web", "acquisition_cost": "1500.50"})
    facts = {"contact": {"source": source}, "now": datetime(2026, 1, 1, tzinfo=UTC)}
    node = {"field": "contact.source.acquisition_cost", "op": op, "value": limit}
    assert evaluate(node, facts).matched is holds
    currency = {"field": "contact.source.acquisition_cost.currency", "op": "eq", "value": "RUB"}
    assert evaluate(currency, facts).matched
