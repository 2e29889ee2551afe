"""Reading a CSV of payments that a person exported from a bank or typed into a spreadsheet.

Such files come in whatever the program that wrote them chose: UTF-8 with or without a BOM
(Google Sheets, LibreOffice), Windows-1251 (Excel on a Russian Windows, most bank clients),
cp866 (old DOS-era accounting programs); `;` as the delimiter where the decimal mark is a
comma, `,` or tab elsewhere; CRLF or LF. Columns are found by their names in Russian or
English, in any order; columns that are not recognised are ignored (a bank adds balances,
branch codes and the like).

Nothing is imported half-way: `read_payments_csv` reports every bad row with its line, and
the caller refuses the whole file when there is any (`parse_or_raise` does exactly that), so
a person fixes the file and imports it again instead of hunting for which rows got in.
Problems of the file as a whole (too large, no header, the required columns missing) raise
`PaymentFileError` at once.

This module reads only the bytes it is given and knows nothing of the store: recording and
matching payments are other modules' work.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Literal, TypeVar

from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.money import (
    DEFAULT_CURRENCY,
    MAX_AMOUNT,
    clean_currency,
    exponent,
    quantum,
)

MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 100_000
SNIFF_CHARS = 2048
Direction = Literal["in", "out"]
T = TypeVar("T")


class PaymentFileError(ValueError):
    """The file cannot be imported; `line` is the 1-based line at fault (0: the whole file)."""

    def __init__(self, line: int, message: str, errors: tuple[RowError, ...] = ()) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line
        self.message = message
        self.errors = errors


@dataclass(frozen=True, slots=True)
class PaymentRow:
    """One payment as the file states it, seen from the account owner's side.

    `direction` is "in" for money received and "out" for money paid; `amount` is always
    positive. The counterparty is the other side: the payer of an incoming payment, the
    payee of an outgoing one.
    """

    line: int
    direction: Direction
    amount: Decimal
    currency: str
    paid_on: date
    counterparty_name: str = ""
    counterparty_inn: str = ""
    counterparty_kpp: str = ""
    counterparty_account: str = ""
    counterparty_bik: str = ""
    purpose: str = ""
    document_number: str = ""
    document_date: date | None = None


@dataclass(frozen=True, slots=True)
class RowError:
    """A cell that cannot be read: its line, the column as the file names it, and why."""

    line: int
    column: str
    message: str


@dataclass(frozen=True, slots=True)
class ParsedFile:
    rows: list[PaymentRow]
    encoding: str
    errors: list[RowError] = field(default_factory=list)


# --- decoding --------------------------------------------------------------------------------


def _cyrillic_letters(text: str) -> int:
    return sum(1 for char in text if "\u0410" <= char <= "\u044f" or char in "Ёё")


def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding name) of the file's bytes.

    UTF-8 is tried first and strictly: text in a single-byte Cyrillic encoding is almost
    never valid UTF-8 (its letters are bytes >= 0x80 that do not form UTF-8 sequences), so
    a strict success is a reliable answer. Otherwise the file is Windows-1251 or cp866, and
    both decode nearly any byte, so neither fails; but only the right one turns the bytes of
    Russian words into Cyrillic letters (U+0410 to U+044F, and Ё). Read in the wrong one, half of the letters
    become box-drawing signs or Ђ-like symbols (cp866's upper case is cp1251's punctuation
    block, cp1251's upper case is cp866's pseudo-graphics), so the encoding with more letters
    in that range wins; a tie (no Cyrillic at all) goes to Windows-1251, the more common.
    """
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    candidates: list[tuple[int, int, str, str]] = []
    for rank, encoding in enumerate(("cp1251", "cp866")):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:  # cp1251 leaves 0x98 undefined
            continue
        candidates.append((_cyrillic_letters(text), -rank, text, encoding))
    _, _, text, encoding = max(candidates)
    return text, encoding


# --- columns ---------------------------------------------------------------------------------


def _normal(name: str) -> str:
    """A header cell as compared: lower case, ё as its plain letter, `_` as a space, no quotes or `:`."""
    name = name.strip().strip("\ufeff").lower().replace("ё", "\u0435").replace("_", " ")
    name = re.sub(r"[\"'«»:*]", "", name)
    return re.sub(r"\s+", " ", name).strip()


# field -> the names a column of it may have. "payer_*" and "payee_*" fields name one side of
# the payment; they give the counterparty according to the row's direction.
_ALIASES: dict[str, tuple[str, ...]] = {
    "paid_on": (
        "дата",
        "date",
        "paid on",
        "дата платежа",
        "дата операции",
        "дата проводки",
        "payment date",
    ),
    "amount": ("сумма", "amount", "сумма платежа", "sum"),
    "direction": ("направление", "вид", "вид операции", "direction", "type"),
    "income": ("приход", "поступление", "кредит", "credit", "income"),
    "outgo": ("расход", "списание", "дебет", "debit", "expense"),
    "currency": ("валюта", "currency", "код валюты"),
    "name": ("контрагент", "counterparty", "counterparty name", "наименование контрагента"),
    "payer_name": ("плательщик", "payer", "наименование плательщика", "payer name"),
    "payee_name": ("получатель", "payee", "наименование получателя", "payee name"),
    "inn": ("инн", "inn", "инн контрагента", "counterparty inn"),
    "payer_inn": ("инн плательщика", "payer inn"),
    "payee_inn": ("инн получателя", "payee inn"),
    "kpp": ("кпп", "kpp", "кпп контрагента", "counterparty kpp"),
    "payer_kpp": ("кпп плательщика", "payer kpp"),
    "payee_kpp": ("кпп получателя", "payee kpp"),
    "account": ("счет", "account", "счет контрагента", "расчетный счет", "counterparty account"),
    "payer_account": ("счет плательщика", "payer account"),
    "payee_account": ("счет получателя", "payee account"),
    "bik": ("бик", "bik", "бик банка", "bic", "counterparty bik"),
    "payer_bik": ("бик плательщика", "бик банка плательщика", "payer bik"),
    "payee_bik": ("бик получателя", "бик банка получателя", "payee bik"),
    "purpose": ("назначение платежа", "назначение", "purpose", "payment purpose", "description"),
    "number": ("номер", "number", "номер документа", "№", "№ документа", "document number"),
    "document_date": ("дата документа", "document date"),
}
_FIELD_OF = {_normal(alias): name for name, aliases in _ALIASES.items() for alias in aliases}
EXPECTED = (
    "a header row naming at least the date (Дата, date, paid_on) and the amount "
    "(Сумма, amount), or two columns of incoming and outgoing amounts (Приход and Расход)"
)


@dataclass(frozen=True, slots=True)
class _Header:
    """Which cell of a row holds which field, and each field's column name as written."""

    index: dict[str, int]
    title: dict[str, str]
    width: int

    def cell(self, row: list[str], name: str) -> str:
        position = self.index.get(name)
        return row[position].strip() if position is not None and position < len(row) else ""

    def side(self, row: list[str], name: str, direction: Direction) -> str:
        """A counterparty field: the generic column, else the side the direction names, else
        the only side the file has (a list of receipts often has just "Плательщик")."""
        own, other = ("payer_", "payee_") if direction == "in" else ("payee_", "payer_")
        for candidate in (name, own + name, other + name):
            if candidate in self.index:
                value = self.cell(row, candidate)
                if value or candidate != name:
                    return value
        return ""


def _read_header(cells: list[str], line: int) -> _Header:
    index: dict[str, int] = {}
    title: dict[str, str] = {}
    for position, cell in enumerate(cells):
        name = _FIELD_OF.get(_normal(cell))
        if name is None:
            continue
        if name in index:
            raise PaymentFileError(
                line, f"the columns {title[name]!r} and {cell.strip()!r} mean the same thing"
            )
        index[name] = position
        title[name] = cell.strip()
    has_amount = "amount" in index or ("income" in index and "outgo" in index)
    if "paid_on" not in index or not has_amount:
        found = ", ".join(repr(cell.strip()) for cell in cells if cell.strip()) or "nothing"
        raise PaymentFileError(line, f"expected {EXPECTED}; found {found}")
    return _Header(index, title, len(cells))


def _header_score(cells: list[str]) -> int:
    return sum(1 for cell in cells if _normal(cell) in _FIELD_OF)


def _dialect(text: str) -> str:
    """The delimiter: the one under which the header names the most known columns.

    `csv.Sniffer` alone guesses wrong on files such as "Дата;Сумма" + "01.02.2026;1 234,56"
    (the comma is consistent too), so its guess only breaks ties. It sees only the first
    `SNIFF_CHARS`: its regular expressions take super-linear time (measured: 8 KB of `"`
    and newlines take 1.3 s, 64 KB over a minute), and a tie needs no more than the header.
    """
    try:
        sniffed = csv.Sniffer().sniff(text[:SNIFF_CHARS], delimiters=",;\t").delimiter
    except csv.Error:
        sniffed = ";"
    first = next((line for line in io.StringIO(text, newline="") if line.strip()), "")
    order = [sniffed, *(d for d in ";,\t" if d != sniffed)]

    def score(delimiter: str) -> int:
        try:
            return _header_score(next(csv.reader([first], delimiter=delimiter), []))
        except csv.Error:  # a cell over the field limit: not a header under this delimiter
            return 0

    scores = {d: score(d) for d in order}
    return max(order, key=lambda d: (scores[d], -order.index(d)))


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(first physical line, cells) of each non-blank record; a quoted cell may span lines."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    end = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise PaymentFileError(reader.line_num, f"the file is not valid CSV: {error}") from None
        start, end = end + 1, reader.line_num
        if any(cell.strip() for cell in cells):
            yield start, cells


# --- values ----------------------------------------------------------------------------------

_SPACES = re.compile(r"[ \u00a0\u202f\u2009]")
_GROUPED = re.compile(r"[0-9]{1,3}(?:[ \u00a0\u202f\u2009][0-9]{3})+|[0-9]+")


def parse_amount(text: str, currency: str = DEFAULT_CURRENCY) -> Decimal:
    """A signed amount written as "1 234,56", "1234.56", "1 234.56" or "1,234.56".

    Spaces (also no-break and thin ones) may only group thousands; one `,` or `.` is the
    decimal mark, and when both appear the last one is, the other grouping thousands. More
    decimals than the currency's minor unit are refused rather than rounded: a bank file
    states exact amounts, so extra digits mean a column was misread.
    """
    value = text.strip().replace("\u2212", "-")
    sign = ""
    if value[:1] in "+-" and value:
        sign, value = value[0].replace("+", ""), value[1:].strip()
    marks = [char for char in value if char in ",."]
    whole, fraction = value, ""
    if marks:
        mark = marks[-1]
        whole, _, fraction = value.rpartition(mark)
        other = "," if mark == "." else "."
        if other in whole:
            if not re.fullmatch(rf"[0-9]{{1,3}}(?:{re.escape(other)}[0-9]{{3}})+", whole):
                raise ValueError(f"the amount {text!r} is not a number")
            whole = whole.replace(other, "")
    if not _GROUPED.fullmatch(whole) or not re.fullmatch(r"[0-9]*", fraction):
        raise ValueError(f"the amount {text!r} is not a number")
    if marks and not fraction:
        raise ValueError(f"the amount {text!r} is not a number")
    if len(fraction) > exponent(currency):
        raise ValueError(
            f"the amount {text!r} has more decimals than {currency} has ({exponent(currency)})"
        )
    try:
        number = Decimal(sign + _SPACES.sub("", whole) + ("." + fraction if fraction else ""))
    except InvalidOperation:
        raise ValueError(f"the amount {text!r} is not a number") from None
    if abs(number) >= MAX_AMOUNT:
        raise ValueError(f"the amount {text!r} is too large (the limit is 10^15)")
    return number.quantize(quantum(currency))  # exact: it has no more decimals than that


_DATE_FORMATS = (("%d.%m.%Y", "DD.MM.YYYY"), ("%Y-%m-%d", "YYYY-MM-DD"), ("%d/%m/%Y", "DD/MM/YYYY"))


def parse_date(text: str) -> date:
    """DD.MM.YYYY, YYYY-MM-DD or DD/MM/YYYY; a time after it (bank exports add one) is ignored."""
    day = re.split(r"[ T]", text.strip(), maxsplit=1)[0]
    for pattern, _ in _DATE_FORMATS:
        try:
            return datetime.strptime(day, pattern).date()
        except ValueError:
            continue
    formats = ", ".join(name for _, name in _DATE_FORMATS)
    raise ValueError(f"the date {text!r} is not a date ({formats})")


_DIRECTIONS: dict[str, Direction] = {
    **dict.fromkeys(
        ("in", "incoming", "income", "credit", "поступление", "приход", "зачисление", "кредит"),
        "in",
    ),
    **dict.fromkeys(
        ("out", "outgoing", "expense", "debit", "списание", "расход", "дебет"),
        "out",
    ),
}
# Codes Russian banks still write: RUR (the pre-1998 rouble code), the numeric ISO codes, ₽.
_CURRENCY_ALIASES = {
    "RUR": "RUB",
    "810": "RUB",
    "643": "RUB",
    "РУБ": "RUB",
    "РУБ.": "RUB",
    "₽": "RUB",
    "840": "USD",
    "978": "EUR",
    "156": "CNY",
}


def parse_currency(text: str) -> str:
    code = text.strip().upper()
    if not code:
        return DEFAULT_CURRENCY
    try:
        return clean_currency(_CURRENCY_ALIASES.get(code, code))
    except InvalidInput:
        raise ValueError(f"the currency {text!r} is not an ISO 4217 code such as RUB") from None


# --- rows ------------------------------------------------------------------------------------


class _Bad(ValueError):
    """A cell that cannot be read; carries the field so that the error names its column."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def _value(name: str, parse: Callable[[str], T], text: str) -> T:
    try:
        return parse(text)
    except ValueError as error:
        raise _Bad(name, str(error)) from None


_SHAPES = {
    "inn": (re.compile(r"[0-9]{10}|[0-9]{12}"), "an INN has 10 or 12 digits"),
    "kpp": (
        re.compile(r"[0-9]{4}[0-9A-Z]{2}[0-9]{3}"),
        "a KPP has 9 characters: digits, with Latin letters allowed in places 5-6",
    ),
    "bik": (re.compile(r"[0-9]{9}"), "a BIK has 9 digits"),
    "account": (re.compile(r"[0-9]{20}"), "an account number has 20 digits"),
}


def _requisite(header: _Header, cells: list[str], name: str, direction: Direction) -> str:
    """A counterparty's INN, KPP, BIK or account, checked for shape only.

    A spreadsheet turns "0274..." into 274... or 7.7e+09; such a value must stop the
    import, not become a wrong INN. Check digits are the matching step's business.
    """
    value = header.side(cells, name, direction).upper()
    shape, rule = _SHAPES[name]
    if value and not shape.fullmatch(value):
        raise _Bad(name, f"{value!r} is not valid: {rule}")
    return value


def _direction(text: str) -> Direction:
    direction = _DIRECTIONS.get(_normal(text))
    if direction is None:
        raise ValueError(
            f"the direction {text!r} is not one of in, out, поступление, списание, приход, расход"
        )
    return direction


def _amount_and_direction(
    header: _Header, cells: list[str], currency: str
) -> tuple[Decimal, Direction]:
    """A positive amount and its direction, from whichever columns the file has.

    One amount column: the direction column says which way, else the sign does (a negative
    amount is money paid out). Two columns (Приход / Расход): the one that is filled in; a
    bank writes 0,00 in the other one, so a zero counts as empty.
    """
    if "amount" in header.index:
        text = header.cell(cells, "amount")
        if not text:
            raise _Bad("amount", "the amount is empty")
        number = _value("amount", lambda t: parse_amount(t, currency), text)
        said = header.cell(cells, "direction")
        if said:
            direction = _value("direction", _direction, said)
            if number < 0 and direction == "in":
                raise _Bad("amount", f"the amount {text!r} is negative but the payment is incoming")
        else:
            direction = "out" if number < 0 else "in"
        return abs(number), direction
    found: list[tuple[Decimal, Direction]] = []
    for name, direction in (("income", "in"), ("outgo", "out")):
        text = header.cell(cells, name)
        number = _value(name, lambda t: parse_amount(t, currency), text) if text else Decimal(0)
        if number < 0:
            raise _Bad(name, f"the amount {text!r} is negative; the column already says the way")
        if number:
            found.append((number, direction))
    if len(found) != 1:
        columns = f"{header.title['income']!r} and {header.title['outgo']!r}"
        state = "both have" if found else "neither has"
        raise _Bad("income", f"{columns}: {state} an amount; exactly one must")
    return found[0]


def _row(header: _Header, cells: list[str], line: int) -> PaymentRow:
    if any(cell.strip() for cell in cells[header.width :]):
        raise _Bad("", f"the row has {len(cells)} cells, the header has {header.width}")
    currency = _value("currency", parse_currency, header.cell(cells, "currency"))
    amount, direction = _amount_and_direction(header, cells, currency)
    if not amount:
        raise _Bad("amount", "an amount of zero is not a payment")
    paid = header.cell(cells, "paid_on")
    if not paid:
        raise _Bad("paid_on", "the date is empty")
    document_date = header.cell(cells, "document_date")
    return PaymentRow(
        line=line,
        direction=direction,
        amount=amount,
        currency=currency,
        paid_on=_value("paid_on", parse_date, paid),
        counterparty_name=header.side(cells, "name", direction),
        counterparty_inn=_requisite(header, cells, "inn", direction),
        counterparty_kpp=_requisite(header, cells, "kpp", direction),
        counterparty_account=_requisite(header, cells, "account", direction),
        counterparty_bik=_requisite(header, cells, "bik", direction),
        purpose=header.cell(cells, "purpose"),
        document_number=header.cell(cells, "number"),
        document_date=(
            _value("document_date", parse_date, document_date) if document_date else None
        ),
    )


# --- the file --------------------------------------------------------------------------------


def read_payments_csv(data: bytes) -> ParsedFile:
    """Every payment of the file, and every row that cannot be read (with its line).

    Raises `PaymentFileError` for the file as a whole: over 20 MB, over 100,000 rows, not
    CSV, no header naming the date and the amount. A header with no rows gives no payments.
    """
    if len(data) > MAX_BYTES:
        raise PaymentFileError(
            0, f"the file is larger than {MAX_BYTES // 2**20} MB; split it into smaller files"
        )
    text, encoding = decode(data)
    records = _records(text, _dialect(text))
    first = next(records, None)
    if first is None:
        problem = "the file has no header row" if text.strip() else "the file is empty"
        raise PaymentFileError(1, f"{problem}; expected {EXPECTED}")
    header = _read_header(first[1], first[0])
    rows: list[PaymentRow] = []
    errors: list[RowError] = []
    for count, (line, cells) in enumerate(records, start=1):
        if count > MAX_ROWS:
            raise PaymentFileError(
                line, f"the file has more than {MAX_ROWS:,} rows; split it into smaller files"
            )
        try:
            rows.append(_row(header, cells, line))
        except _Bad as bad:
            errors.append(RowError(line, header.title.get(bad.name, ""), str(bad)))
    return ParsedFile(rows=rows, encoding=encoding, errors=errors)


def parse_or_raise(data: bytes) -> ParsedFile:
    """The file's payments, or `PaymentFileError` naming the first bad row's line.

    A file with any bad row is refused whole (see the module's docstring); the error keeps
    every row error in `errors` for a caller that lists them all.
    """
    parsed = read_payments_csv(data)
    if parsed.errors:
        first = parsed.errors[0]
        more = len(parsed.errors) - 1
        suffix = f" (and {more} more {'row' if more == 1 else 'rows'} with errors)" if more else ""
        raise PaymentFileError(first.line, first.message + suffix, tuple(parsed.errors))
    return parsed
