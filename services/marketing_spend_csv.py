"""Reading a CSV of marketing spend (what each source and campaign cost over a period).

Columns, found by name in Russian or English in any order (others are ignored): source,
utm_campaign, from, to, amount, currency, note; source, from, to and amount are required,
currency defaults to RUB. `,` or `;` between cells (`;` where the decimal mark is a comma),
UTF-8 (with or without a BOM) or Windows-1251. Dates as 2026-03-01 or 01.03.2026.

The whole file is checked before anything is recorded: every bad row is reported with its
line (`SpendFileError`), and the caller refuses the file. Each entry's id comes from its
content (`imported_spend_id`), so importing the same file again records nothing twice.
"""

# Russian column names: Cyrillic letters that look Latin are meant.
# ruff: noqa: RUF001

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from threadline.domain.commands.marketing_spend import SpendEntry, clean_spend, imported_spend_id
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.money import DEFAULT_CURRENCY, Money
from threadline.services.payments.csv_payments import decode

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000
MAX_ERRORS_SHOWN = 10

_ALIASES: dict[str, tuple[str, ...]] = {
    "source": ("source", "источник", "utm source", "канал", "площадка"),
    "utm_campaign": ("utm campaign", "campaign", "кампания", "рекламная кампания"),
    "from": ("from", "с", "начало", "дата начала", "period from", "start", "starts on"),
    "to": ("to", "по", "конец", "дата окончания", "period to", "end", "ends on"),
    "amount": ("amount", "сумма", "расход", "стоимость", "cost"),
    "currency": ("currency", "валюта"),
    "note": ("note", "примечание", "комментарий", "comment"),
}
REQUIRED = ("source", "from", "to", "amount")


def _normal(name: str) -> str:
    name = name.strip().strip("\ufeff").lower().replace("ё", "е").replace("_", " ")
    name = re.sub(r"[\"'«»:*]", "", name)
    return re.sub(r"\s+", " ", name).strip()


_FIELD_OF = {_normal(alias): name for name, aliases in _ALIASES.items() for alias in aliases}


class SpendFileError(InvalidInput):
    """The file cannot be imported; the message names the line(s) at fault."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__("file", message)
        self.line = line


@dataclass(frozen=True, slots=True)
class SpendFile:
    entries: list[tuple[int, UUID, SpendEntry]]  # (line, id, entry)
    encoding: str


def _date(text: str, field: str) -> date:
    for pattern in ("%Y-%m-%d", "%d.%m.%Y", "%d.%m.%y", "%d/%m/%Y"):
        try:
            return datetime.strptime(text.strip(), pattern).date()
        except ValueError:
            continue
    raise InvalidInput(field, f"not a date: {text!r} (2026-03-01 or 01.03.2026)")


def _amount(text: str) -> str:
    """The amount as `Money.of` reads it: with both `,` and `.` in it, the last one is the
    decimal mark and the other groups thousands ("1,000.50", "1.000,50"); a lone `,` is a
    decimal comma ("1500,50"); spaces group thousands ("1 500,50")."""
    cleaned = text.replace(" ", "").replace("\u00a0", "")
    if "," in cleaned and "." in cleaned:
        if cleaned.rfind(",") > cleaned.rfind("."):
            cleaned = cleaned.replace(".", "").replace(",", ".")
        else:
            cleaned = cleaned.replace(",", "")
    return cleaned


def _delimiter(header_line: str) -> str:
    return ";" if header_line.count(";") > header_line.count(",") else ","


def read_spend_csv(data: bytes) -> SpendFile:
    """Every entry of the file, or `SpendFileError` naming the lines at fault."""
    try:
        return _read(data)
    except csv.Error as error:  # a broken quote, a cell over the size limit...
        raise SpendFileError(f"the file is not a readable CSV: {error}") from None


def _read(data: bytes) -> SpendFile:
    if len(data) > MAX_BYTES:
        raise SpendFileError(f"the file is larger than {MAX_BYTES // 2**20} MB")
    text, encoding = decode(data)
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise SpendFileError("the file is empty: a header row is expected", 1)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(lines[0]))
    header = next(reader)
    index: dict[str, int] = {}
    for position, heading in enumerate(header):
        name = _FIELD_OF.get(_normal(heading))
        if name is not None and name not in index:
            index[name] = position
    missing = [name for name in REQUIRED if name not in index]
    if missing:
        raise SpendFileError(
            f"line 1: the header has no column {', '.join(missing)} (expected: source,"
            " utm_campaign, from, to, amount, currency, note; or Источник, Кампания, С, По,"
            " Сумма, Валюта, Примечание)",
            1,
        )

    def cell(row: list[str], name: str) -> str:
        position = index.get(name)
        return row[position].strip() if position is not None and position < len(row) else ""

    entries: list[tuple[int, UUID, SpendEntry]] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    first_bad = 0
    for row in reader:
        line = reader.line_num
        if not any(c.strip() for c in row):
            continue
        if len(entries) + len(errors) >= MAX_ROWS:
            raise SpendFileError(f"line {line}: at most {MAX_ROWS} rows per file", line)
        try:
            starts_on = _date(cell(row, "from"), "from")
            ends_on = _date(cell(row, "to"), "to")
            currency = cell(row, "currency") or DEFAULT_CURRENCY
            amount = Money.of(_amount(cell(row, "amount")), currency, "amount")
            entry = clean_spend(
                cell(row, "source"),
                cell(row, "utm_campaign"),
                starts_on,
                ends_on,
                amount,
                cell(row, "note"),
            )
        except InvalidInput as error:
            first_bad = first_bad or line
            errors.append(f"line {line}: {error.field}: {error.message}")
            continue
        key = entry.content_key()
        occurrence = seen.get(key, 0)
        seen[key] = occurrence + 1
        entries.append((line, imported_spend_id(entry, occurrence), entry))
    if errors:
        shown = "; ".join(errors[:MAX_ERRORS_SHOWN])
        more = len(errors) - MAX_ERRORS_SHOWN
        suffix = f"; and {more} more" if more > 0 else ""
        raise SpendFileError(f"nothing was imported: {shown}{suffix}", first_bad)
    if not entries:
        raise SpendFileError("the file has a header but no rows", 2)
    return SpendFile(entries=entries, encoding=encoding)
