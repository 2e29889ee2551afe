"""Exchange rates of a stated date: what lets two currencies meet in one figure.

Amounts in different currencies are never summed as they are; a report converts them with
the rate of a date it names (the Central Bank of Russia's official rate, entered by hand or
imported from its daily file). One aggregate per currency and day, so recording the same
day's rate twice meets the same aggregate and a correction is an event of its own.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.money import Money, clean_currency, round_money

RATE_NAMESPACE = uuid5(NAMESPACE_URL, "https://threadline.dev/exchange-rate")


def exchange_rate_id(currency: str, base: str, day: date) -> UUID:
    return uuid5(RATE_NAMESPACE, f"{currency}/{base}/{day.isoformat()}")


def convert(money: Money, to_currency: str, rate: Decimal, nominal: int = 1) -> Money:
    """`money` in `to_currency`, where `nominal` units of money's currency cost `rate` units
    of `to_currency` (the Central Bank quotes 100 JPY, so JPY comes with nominal 100).

    Pure and exact up to one rounding, to the target's minor unit, half away from zero: a
    converted amount is a figure someone reads, and rounding each amount once is what lets
    a report's lines add up to its total. The caller chooses the rate of a stated date;
    nothing here looks one up, so a conversion can never pick a rate silently.
    """
    target = clean_currency(to_currency, "to_currency")
    if not rate.is_finite() or rate <= 0 or nominal < 1:
        raise InvalidInput("rate", "a rate and its nominal are positive")
    if target == money.currency:
        return money.rounded()
    return Money(round_money(money.amount * rate / Decimal(nominal), target), target)


class ExchangeRate(Aggregate):
    """`rate` units of `base` for `nominal` units of `currency` on `day` (CBR quotes 100 JPY)."""

    class ExchangeRateRecorded(Aggregate.Created):
        currency: str
        base: str
        day: str
        rate: str
        nominal: int
        source: str
        actor: str
        correlation_id: str

    @event(ExchangeRateRecorded)
    def __init__(
        self,
        id: UUID,
        currency: str,
        base: str,
        day: str,
        rate: str,
        nominal: int,
        source: str,
        actor: str,
        correlation_id: str,
    ) -> None:
        self.currency = currency
        self.base = base
        self.day = day
        self.rate = rate
        self.nominal = nominal
        self.source = source

    class ExchangeRateCorrected(Aggregate.Event):
        rate: str
        nominal: int
        source: str
        actor: str
        correlation_id: str

    @event(ExchangeRateCorrected)
    def correct(
        self, rate: str, nominal: int, source: str, actor: str, correlation_id: str
    ) -> None:
        self.rate = rate
        self.nominal = nominal
        self.source = source
