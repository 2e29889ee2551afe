"""One total of amounts in several currencies: converted with rates of a stated day, or not at all.

Reports and deal views add money up here. An amount in the total's currency counts as it
is; any other is converted with the rate of the stated day (or the latest one before it,
as the Central Bank sets none on weekends and holidays). If a currency has no usable
rate, the answer names it in `missing` and carries no total: a partial sum shown as the
total would be a wrong figure nobody notices, so there is none to show.

Rates are quoted against one base (the rouble, as the Central Bank quotes them), so
dollars and euros meet through it: a cross rate is the quotient of the two rates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from threadline.domain.model.exchange_rate import convert
from threadline.domain.model.money import DEFAULT_CURRENCY, Money, clean_currency
from threadline.projections.catalogue import RateRow, rate_on
from threadline.projections.sql import ViewReader

MAX_RATE_AGE_DAYS = 14
"""How much older than the stated day a rate may be and still count as that day's rate.

The Central Bank's longest pause is the New Year holidays (rates of 31 December stand
until about 11 January); a rate older than this is not "the rate of the stated date",
and the currency is reported as missing instead."""


@dataclass(frozen=True)
class Totals:
    """The sum of amounts in `currency` on `day`, or why there is none.

    `total` is None exactly when `missing` names a currency without a usable rate.
    `rates` are the rates used, by currency, each with the day it was set for, so a
    report can print "USD 92.50 of 5 Dec" under its figure.
    """

    currency: str
    day: date
    total: Money | None
    missing: list[str] = field(default_factory=list)
    rates: dict[str, RateRow] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.total is not None


def _usable(rate: RateRow | None, day: date, max_age_days: int) -> RateRow | None:
    if rate is None or date.fromisoformat(rate.day) < day - timedelta(days=max_age_days):
        return None
    return rate


def total_in(
    db: ViewReader,
    amounts: list[Money],
    currency: str,
    day: date,
    base: str = DEFAULT_CURRENCY,
    max_age_days: int = MAX_RATE_AGE_DAYS,
) -> Totals:
    """Every amount converted to `currency` with the rates of `day`, then added.

    Each converted amount is rounded once to the target's minor unit (see `convert`), so
    the lines of a report add up to its total.
    """
    target = clean_currency(currency)
    needed = sorted({a.currency for a in amounts if a.currency != target})
    if needed and target != base:
        needed = sorted({*needed, target} - {base})
    else:
        needed = [c for c in needed if c != base]
    rates: dict[str, RateRow] = {}
    missing: list[str] = []
    for code in needed:
        found = _usable(rate_on(db, code, day, base), day, max_age_days)
        if found is None:
            missing.append(code)
        else:
            rates[code] = found
    if missing:
        # `missing` may name the target itself: without its rate nothing converts into it.
        return Totals(target, day, None, missing, rates)
    result = Money.zero(target)
    for amount in amounts:
        if amount.currency == target:
            result = result + amount
        else:
            rate, nominal = _cross(amount.currency, target, base, rates)
            result = result + convert(amount, target, rate, nominal)
    return Totals(target, day, result.rounded(), [], rates)


def _cross(source: str, target: str, base: str, rates: dict[str, RateRow]) -> tuple[Decimal, int]:
    """(rate, nominal) for `convert` from `source` to `target`, both quoted against `base`."""
    if target == base:
        quote = rates[source]
        return quote.rate, quote.nominal
    per_unit_of_target = rates[target].rate / Decimal(rates[target].nominal)
    if source == base:
        return Decimal(1) / per_unit_of_target, 1
    quote = rates[source]
    return quote.rate / per_unit_of_target, quote.nominal
