"""VAT: dated rates by kind, and the one way a line's net, tax, total and profit are computed.

A rate depends on the date of the sale: Russia's standard rate is 20 % until 31 December
2025 and 22 % from 1 January 2026 (18 % before 2019). A line keeps the kind *and* the rate
it was priced at, so a figure computed once never changes when a rate does.

Each line is rounded on its own (to the currency's minor unit, half away from zero), and a
document's totals are sums of the rounded lines: the lines always agree with the total,
which is how Russian invoices and acts are checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.money import round_money

HUNDRED = Decimal(100)


class VatKind(StrEnum):
    STANDARD = "standard"
    REDUCED = "reduced"
    ZERO = "zero"
    NONE = "none"  # "без НДС": outside VAT (a simplified-tax seller), no tax line at all


# (first day, rate in percent) per kind, oldest first.
_SCHEDULE: dict[VatKind, tuple[tuple[date, Decimal], ...]] = {
    VatKind.STANDARD: (
        (date(1900, 1, 1), Decimal(18)),
        (date(2019, 1, 1), Decimal(20)),
        (date(2026, 1, 1), Decimal(22)),
    ),
    VatKind.REDUCED: ((date(1900, 1, 1), Decimal(10)),),
    VatKind.ZERO: ((date(1900, 1, 1), Decimal(0)),),
}


def clean_vat_kind(value: str, field: str = "vat") -> VatKind:
    try:
        return VatKind(value)
    except ValueError:
        raise InvalidInput(field, f"one of {[k.value for k in VatKind]}") from None


def vat_rate(kind: VatKind | str, on: date) -> Decimal | None:
    """The rate in percent of `kind` on the day `on` (None: without VAT)."""
    kind = clean_vat_kind(str(kind))
    if kind is VatKind.NONE:
        return None
    rate = _SCHEDULE[kind][0][1]
    for first_day, percent in _SCHEDULE[kind]:
        if on >= first_day:
            rate = percent
    return rate


@dataclass(frozen=True, slots=True)
class LineFigures:
    """A priced line, every figure rounded to the minor unit of `currency`."""

    currency: str
    amount: Decimal  # quantity * price - discount, as priced (with VAT if the price includes it)
    discount: Decimal
    net: Decimal  # without VAT
    vat: Decimal
    total: Decimal  # with VAT
    cost: Decimal  # cost * quantity
    profit: Decimal  # net - cost: gross profit


def price_line(
    *,
    quantity: Decimal,
    price: Decimal,
    cost: Decimal,
    discount_percent: Decimal,
    vat_rate_percent: Decimal | None,
    vat_included: bool,
    currency: str,
) -> LineFigures:
    """The figures of one line (see the module docstring for the rounding rule).

    A negative quantity is a refund: every figure is negative and rounds symmetrically.
    """
    if not Decimal(0) <= discount_percent <= HUNDRED:
        raise InvalidInput("discount", "a discount is 0 to 100 percent")
    gross = round_money(quantity * price, currency)
    discount = round_money(gross * discount_percent / HUNDRED, currency)
    amount = gross - discount
    rate = vat_rate_percent or Decimal(0)
    if vat_included:
        total = amount
        vat = round_money(amount * rate / (HUNDRED + rate), currency)
        net = total - vat
    else:
        net = amount
        vat = round_money(net * rate / HUNDRED, currency)
        total = net + vat
    cost_total = round_money(cost * quantity, currency)
    return LineFigures(currency, amount, discount, net, vat, total, cost_total, net - cost_total)
