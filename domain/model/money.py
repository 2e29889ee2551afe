"""Money: a `Decimal` amount with its currency, and the integer minor units views keep.

Every amount in the domain has a currency; two amounts in different currencies are never
added (`CurrencyMismatch`), and converting needs a rate of a stated date (see
`exchange_rates`). Events carry money as ``{"amount": "1234.50", "currency": "RUB"}``:
plain JSON that any reader (an upcaster, an auditor's script, a later cipher) can read
exactly, without a float in between. Views keep integer minor units (kopecks, cents) so that
SQL sums are exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from threadline.domain.model.errors import InvalidInput

# ISO 4217 minor-unit exponents that differ from 2; every other code has two decimals.
_EXPONENTS = {
    "JPY": 0,
    "KRW": 0,
    "VND": 0,
    "CLP": 0,
    "ISK": 0,
    "HUF": 2,
    "KWD": 3,
    "BHD": 3,
    "OMR": 3,
    "JOD": 3,
    "TND": 3,
}
MAX_AMOUNT = Decimal("1e15")
DEFAULT_CURRENCY = "RUB"
"""The currency of amounts that never had one (lead costs recorded before money existed).
Threadline's first users are Russian businesses; the README says so where it matters."""


class CurrencyMismatch(InvalidInput):
    """Two amounts of different currencies met where one currency is needed."""

    def __init__(self, field: str, first: str, second: str) -> None:
        super().__init__(field, f"{first} and {second} cannot be added without a rate")


def exponent(currency: str) -> int:
    """How many decimals the currency's minor unit has (RUB 2, JPY 0, KWD 3)."""
    return _EXPONENTS.get(currency, 2)


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-exponent(currency))


def clean_currency(value: Any, field: str = "currency") -> str:
    """An ISO 4217 code: three Latin capitals."""
    code = str(value or "").strip().upper()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise InvalidInput(field, "a currency is a three-letter ISO 4217 code, such as RUB")
    return code


def to_decimal(value: Any, field: str) -> Decimal:
    """A finite decimal from a number or a numeric string (a comma as decimal mark too)."""
    if isinstance(value, bool) or value is None:
        raise InvalidInput(field, "expected a number")
    if isinstance(value, float):
        value = repr(value)
    text = str(value).strip().replace(" ", "").replace("\u00a0", "").replace(",", ".")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise InvalidInput(field, "expected a number") from None
    if not number.is_finite() or abs(number) >= MAX_AMOUNT:
        raise InvalidInput(field, "expected a finite number below 10^15")
    return number


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Rounded to the currency's minor unit, half away from zero (the accounting rule)."""
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in one currency. Arithmetic refuses to mix currencies."""

    amount: Decimal
    currency: str

    @classmethod
    def of(cls, amount: Any, currency: str, field: str = "amount") -> Money:
        return cls(to_decimal(amount, field), clean_currency(currency, f"{field}.currency"))

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    @classmethod
    def from_state(cls, state: dict[str, Any], field: str = "amount") -> Money:
        """From the ``{"amount", "currency"}`` form events carry."""
        if not isinstance(state, dict):
            raise InvalidInput(field, 'expected {"amount": ..., "currency": ...}')
        return cls.of(state.get("amount"), str(state.get("currency", "")), field)

    @classmethod
    def from_minor(cls, units: int, currency: str) -> Money:
        return cls(Decimal(units).scaleb(-exponent(currency)), currency)

    def state(self) -> dict[str, str]:
        """The form events carry."""
        return {"amount": str(self.amount), "currency": self.currency}

    @property
    def minor(self) -> int:
        """Integer minor units (kopecks), rounded half away from zero: what views store."""
        return int(round_money(self.amount, self.currency).scaleb(exponent(self.currency)))

    def rounded(self) -> Money:
        return Money(round_money(self.amount, self.currency), self.currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch("currency", self.currency, other.currency)

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor: Decimal | int) -> Money:
        return Money(self.amount * Decimal(factor), self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __str__(self) -> str:
        return f"{round_money(self.amount, self.currency)} {self.currency}"


def total(amounts: list[Money], currency: str) -> Money:
    """The sum of amounts that must all be in `currency` (an empty list sums to zero)."""
    result = Money.zero(currency)
    for amount in amounts:
        result = result + amount
    return result
