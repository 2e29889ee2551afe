"""Importing the Bank of Russia's daily rates file (``XML_daily.asp``) into the log.

The file is what https://www.cbr.ru/scripts/XML_daily.asp?date_req=DD/MM/YYYY answers:
``<ValCurs Date="06.12.2026">`` holding one ``<Valute>`` per currency with its
``CharCode``, ``Nominal`` (100 for the yen) and ``Value`` with a decimal comma, in
windows-1251 as its prolog declares. Each rate becomes `record_exchange_rate(...,
source="cbr")`, which changes nothing when the same rate is recorded again, so importing
a file twice (or a cron job that overlaps a person) is harmless.

The file comes from outside, so the parser is the stdlib's expat with the dangerous parts
refused: a document type declaration (and with it any entity, internal or external) is an
error, so no entity expansion ("billion laughs") and no external fetch can happen. The
whole file is checked before the first rate is recorded: a malformed file records nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol
from xml.etree.ElementTree import Element, TreeBuilder
from xml.parsers import expat

from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.money import clean_currency

SOURCE = "cbr"
BASE = "RUB"
DAILY_URL = "https://www.cbr.ru/scripts/XML_daily.asp"
MAX_FILE_BYTES = 2_000_000
"""A real daily file is about 10 kB; anything far larger is not one."""

WHAT_TO_DO = (
    f"Download the day's file again from {DAILY_URL}?date_req=DD/MM/YYYY (the Bank of"
    " Russia's daily rates, XML_daily.asp) and import it unchanged; nothing was imported."
)
_DAY = re.compile(r"^(\d{2})[./](\d{2})[./](\d{4})$")


class CbrFileError(ValueError):
    """The file is not a readable Bank of Russia daily file; the message says why and what
    to do."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"{problem}. {WHAT_TO_DO}")
        self.problem = problem


@dataclass(frozen=True)
class CbrRate:
    """`rate` roubles for `nominal` units of `currency`."""

    currency: str
    nominal: int
    rate: Decimal
    name: str


@dataclass(frozen=True)
class CbrFile:
    day: date
    rates: list[CbrRate]


@dataclass(frozen=True)
class ImportResult:
    """What an import did: rates new or changed in the log, and rates already there."""

    day: date
    recorded: int
    unchanged: int
    last_notification_id: int | None

    @property
    def total(self) -> int:
        return self.recorded + self.unchanged


class RateRecorder(Protocol):
    """The one command an import needs (`Threadline.record_exchange_rate`)."""

    def record_exchange_rate(
        self,
        actor: str,
        currency: str,
        day: date,
        rate: Any,
        nominal: int = 1,
        source: str = "manual",
        base: str = BASE,
    ) -> Committed[bool]: ...


def _refuse_dtd(*_: Any) -> int:
    """Every DTD and entity handler: expat stops at the first declaration, before expanding."""
    raise CbrFileError(
        "the file declares a document type or entities, which a rates file never does"
    )


def _tree(data: bytes) -> Element:
    """The document's root element, parsed by expat with DTDs and entities refused."""
    builder = TreeBuilder()
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_dtd
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.buffer_text = True
    try:
        parser.Parse(data, True)
    except expat.ExpatError as error:
        raise CbrFileError(f"the file is not well-formed XML ({error})") from None
    except (LookupError, UnicodeError) as error:
        raise CbrFileError(f"the file's encoding cannot be read ({error})") from None
    return builder.close()


def _text(valute: Element, tag: str, index: int) -> str:
    child = valute.find(tag)
    value = (child.text or "").strip() if child is not None else ""
    if not value:
        raise CbrFileError(f"currency entry {index} has no <{tag}>")
    return value


def _day(text: str) -> date:
    match = _DAY.match(text.strip())
    if match is None:
        raise CbrFileError(f'<ValCurs Date="{text[:20]}"> is not a date like 06.12.2026')
    day_, month, year = (int(g) for g in match.groups())
    try:
        return date(year, month, day_)
    except ValueError:
        raise CbrFileError(f'<ValCurs Date="{text}"> is not a real date') from None


def _rate(valute: Element, index: int) -> CbrRate:
    code_text = _text(valute, "CharCode", index)
    try:
        code = clean_currency(code_text)
    except InvalidInput:
        raise CbrFileError(
            f"currency entry {index}: {code_text[:20]!r} is not a currency code"
        ) from None
    nominal_text = _text(valute, "Nominal", index)
    if not nominal_text.isdigit() or int(nominal_text) < 1:
        raise CbrFileError(f"{code}: <Nominal>{nominal_text[:20]}</Nominal> is not a whole number")
    value_text = _text(valute, "Value", index)
    try:
        rate = Decimal(value_text.replace(" ", "").replace("\u00a0", "").replace(",", "."))
    except InvalidOperation:
        rate = Decimal(0)
    if not rate.is_finite() or rate <= 0 or rate >= Decimal("1e12"):
        raise CbrFileError(f"{code}: <Value>{value_text[:20]}</Value> is not a positive rate")
    name_node = valute.find("Name")
    name = (name_node.text or "").strip() if name_node is not None else ""
    return CbrRate(code, int(nominal_text), rate, name)


def parse_cbr_daily(data: bytes) -> CbrFile:
    """The day and the rates of a daily file, or `CbrFileError` saying what is wrong."""
    if not data.strip():
        raise CbrFileError("the file is empty")
    if len(data) > MAX_FILE_BYTES:
        raise CbrFileError(f"the file is larger than {MAX_FILE_BYTES:,} bytes")
    root = _tree(data)
    if root.tag != "ValCurs":
        raise CbrFileError(f"the document is <{root.tag[:40]}>, not <ValCurs>")
    day = _day(root.get("Date", ""))
    valutes = root.findall("Valute")
    if not valutes:
        raise CbrFileError("the file holds no <Valute> (currency) entries")
    rates: dict[str, CbrRate] = {}
    for index, valute in enumerate(valutes, start=1):
        rate = _rate(valute, index)
        if rate.currency == BASE:
            raise CbrFileError("the file quotes the rouble against itself")
        if rate.currency in rates:
            raise CbrFileError(f"{rate.currency} is quoted twice")
        rates[rate.currency] = rate
    return CbrFile(day, list(rates.values()))


def import_cbr_rates(
    app: RateRecorder,
    data: bytes,
    actor: str,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Record every rate of the file (checked whole first); `progress(done, total)` after
    each. Rates already recorded with the same value count as unchanged."""
    parsed = parse_cbr_daily(data)
    recorded = unchanged = 0
    last: int | None = None
    total = len(parsed.rates)
    for done, rate in enumerate(parsed.rates, start=1):
        committed = app.record_exchange_rate(
            actor,
            rate.currency,
            parsed.day,
            rate.rate,
            nominal=rate.nominal,
            source=SOURCE,
            base=BASE,
        )
        if committed.value:
            recorded += 1
            last = committed.notification_id or last
        else:
            unchanged += 1
        if progress is not None:
            progress(done, total)
    return ImportResult(parsed.day, recorded, unchanged, last)
