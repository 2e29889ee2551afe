"""`read_statement`: the bytes of a ``kl_to_1c.txt`` in, a checked `Statement` out.

One pass over the lines with `str.partition` (no regex per line): a 10,000-document file is
about 400,000 lines, and the per-line work decides the speed. The typed fields of a
document are taken from its key dict once, at ``КонецДокумента``; the line of a key is
looked up again only when its value turns out bad, so the common path keeps no line map.
"""

# ruff: noqa: RUF001, RUF002

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time
from decimal import Decimal

from threadline.services.payments.cbe_encoding import decode
from threadline.services.payments.cbe_model import (
    AccountSection,
    Statement,
    StatementDocument,
    StatementError,
)

MAGIC = "1CClientBankExchange"
KNOWN_VERSIONS = ("1.02", "1.03")
MAX_BYTES = 50 * 1024 * 1024
MAX_DOCUMENTS = 200_000

_DOC = "СекцияДокумент"
_DOC_END = "КонецДокумента"
_ACC = "СекцияРасчСчет"
_ACC_END = "КонецРасчСчет"
_FILE_END = "КонецФайла"
_PURPOSE = "НазначениеПлатежа"


def read_statement(data: bytes, check_balances: bool = True) -> Statement:
    """Parse a 1C client-bank exchange file; StatementError names the line of any fault.

    With `check_balances` each balance section must add up and agree with the documents
    of its account (see `_check_balances`); an importer turns it off only to show a person
    what a broken file holds.
    """
    if len(data) > MAX_BYTES:
        raise StatementError(
            1, f"the file is {len(data) / 1048576:.1f} MB; statements over 50 MB are refused"
        )
    text, codec, warnings = decode(data, MAGIC)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    parser = _Parser(lines, warnings)
    parser.run()
    header = parser.header
    version = header.get("ВерсияФормата", "")
    if not version:
        warnings.append("the header has no ВерсияФормата; read as 1.03")
    elif version not in KNOWN_VERSIONS:
        warnings.append(f"format version {version} is not 1.02 or 1.03; read as 1.03")
    statement = Statement(
        version=version,
        encoding=codec,
        sender=header.get("Отправитель", ""),
        receiver=header.get("Получатель", ""),
        created=parser.created(),
        starts_on=parser.header_date("ДатаНачала"),
        ends_on=parser.header_date("ДатаКонца"),
        accounts=parser.accounts,
        documents=parser.documents,
        warnings=warnings,
        header_accounts=parser.header_accounts,
        document_kinds=parser.document_kinds,
        header=header,
    )
    if check_balances:
        _check_balances(statement)
    return statement


class _Parser:
    """The state machine over the lines; `lines[0]` is the magic line, already checked."""

    def __init__(self, lines: list[str], warnings: list[str]) -> None:
        self.lines = lines
        self.warnings = warnings
        self.header: dict[str, str] = {}
        self.header_lines: dict[str, int] = {}
        self.header_accounts: list[str] = []
        self.document_kinds: list[str] = []
        self.accounts: list[AccountSection] = []
        self.documents: list[StatementDocument] = []

    def run(self) -> None:
        lines = self.lines
        documents = self.documents
        pairs: dict[str, str] | None = None  # the open document's keys
        section: dict[str, str] | None = None  # the open balance section's keys
        kind = ""
        opened = 0  # the line of the open section
        number = 1
        for number in range(2, len(lines) + 1):
            line = lines[number - 1].rstrip()
            if not line:
                continue
            key, sep, value = line.partition("=")
            if pairs is not None:
                if sep and key != _DOC:
                    pairs[key] = value
                    continue
                if line == _DOC_END:
                    documents.append(self.document(kind, pairs, opened, number))
                    pairs = None
                    continue
                if key in (_DOC, _ACC, _ACC_END, _FILE_END, _DOC_END):
                    raise StatementError(
                        opened,
                        f"the document section ({kind}) is not closed: КонецДокумента "
                        f"is missing before line {number}",
                    )
                raise StatementError(number, f"expected key=value, found {line[:60]!r}")
            if section is not None:
                if sep:
                    section[key] = value
                elif line == _ACC_END:
                    self.accounts.append(self.account(section, opened, number))
                    section = None
                elif line in (_DOC, _ACC, _FILE_END, _DOC_END):
                    raise StatementError(
                        opened,
                        f"the balance section is not closed: КонецРасчСчет is missing "
                        f"before line {number}",
                    )
                else:
                    raise StatementError(number, f"expected key=value, found {line[:60]!r}")
                continue
            if key == _DOC:
                kind = value.strip() if sep else ""
                if not kind:
                    raise StatementError(number, "СекцияДокумент without a document kind")
                if len(documents) >= MAX_DOCUMENTS:
                    raise StatementError(
                        number, f"more than {MAX_DOCUMENTS:,} documents in one statement"
                    )
                pairs, opened = {}, number
            elif line == _ACC:
                section, opened = {}, number
            elif line == _FILE_END:
                if any(rest.strip() for rest in lines[number:]):
                    self.warnings.append(f"lines after КонецФайла (line {number}) were ignored")
                return
            elif not sep:
                raise StatementError(number, f"expected key=value, found {line[:60]!r}")
            elif key in (_ACC_END, _DOC_END):
                raise StatementError(number, f"{key} without its opening section")
            else:
                self.header_key(key, value, number)
        if pairs is not None:
            raise StatementError(
                opened,
                f"the document section ({kind}) is not closed: the file ends without "
                "КонецДокумента (was it cut off?)",
            )
        if section is not None:
            raise StatementError(
                opened, "the balance section is not closed: the file ends without КонецРасчСчет"
            )
        while number > 1 and not lines[number - 1].strip():
            number -= 1
        raise StatementError(number, "the file ends without КонецФайла: it was cut off")

    def header_key(self, key: str, value: str, number: int) -> None:
        if key == "РасчСчет":
            self.header_accounts.append(value.strip())
        elif key == "Документ":
            self.document_kinds.append(value.strip())
        else:
            if self.accounts or self.documents:
                self.warnings.append(f"line {number}: {key} outside any section, kept as header")
            self.header[key] = value
            self.header_lines[key] = number

    def header_date(self, key: str) -> date | None:
        value = self.header.get(key, "").strip()
        return _date(value, key, self.header_lines.get(key, 1)) if value else None

    def created(self) -> datetime | None:
        day = self.header_date("ДатаСоздания")
        clock = self.header.get("ВремяСоздания", "").strip()
        if day is None:
            return None
        if not clock:
            return datetime.combine(day, time())
        try:
            return datetime.combine(day, time.fromisoformat(clock))
        except ValueError:
            line = self.header_lines["ВремяСоздания"]
            raise StatementError(line, f"ВремяСоздания {clock!r} is not HH:MM:SS") from None

    def key_line(self, start: int, end: int, key: str) -> int:
        """The line of `key` between lines `start` and `end`: errors only, so no map is kept."""
        prefix = key + "="
        for number in range(start, end + 1):
            if self.lines[number - 1].startswith(prefix):
                return number
        return start

    def account(self, keys: dict[str, str], start: int, end: int) -> AccountSection:
        account = keys.get("РасчСчет", "").strip()
        if not account:
            raise StatementError(start, "the balance section has no РасчСчет")

        def amount(key: str) -> Decimal | None:
            value = keys.get(key, "").strip()
            if not value:
                return None
            figure = _amount(value, signed=True)
            if figure is None:
                raise _bad_amount(self.key_line(start, end, key), key, value)
            return figure

        def day(key: str) -> date | None:
            value = keys.get(key, "").strip()
            return _date(value, key, self.key_line(start, end, key)) if value else None

        return AccountSection(
            line=start,
            end_line=end,
            account=account,
            starts_on=day("ДатаНачала"),
            ends_on=day("ДатаКонца"),
            opening_balance=amount("НачальныйОстаток"),
            total_in=amount("ВсегоПоступило"),
            total_out=amount("ВсегоСписано"),
            closing_balance=amount("КонечныйОстаток"),
        )

    def document(self, kind: str, keys: dict[str, str], start: int, end: int) -> StatementDocument:
        get = keys.get
        amount_text = get("Сумма", "").strip()
        if not amount_text:
            raise StatementError(start, f"the document ({kind}) has no Сумма")
        amount = _amount(amount_text, signed=False)
        if amount is None:
            raise _bad_amount(self.key_line(start, end, "Сумма"), "Сумма", amount_text)
        date_text = get("Дата", "").strip()
        if not date_text:
            raise StatementError(start, f"the document ({kind}) has no Дата")

        def day(key: str, text: str) -> date:
            try:
                return _parse_date(text)
            except ValueError:
                line = self.key_line(start, end, key)
                raise StatementError(line, f"{key} {text!r} is not a date DD.MM.YYYY") from None

        written = get("ДатаСписано", "").strip()
        received = get("ДатаПоступило", "").strip()
        return StatementDocument(
            line=start,
            end_line=end,
            kind=kind,
            number=get("Номер", "").strip(),
            date=day("Дата", date_text),
            amount=amount,
            payer_name=_name(get("Плательщик1", ""), get("Плательщик", "")),
            payer_inn=get("ПлательщикИНН", "").strip(),
            payer_kpp=get("ПлательщикКПП", "").strip(),
            payer_account=(get("ПлательщикСчет") or get("ПлательщикРасчСчет") or "").strip(),
            payer_bank=get("ПлательщикБанк1", ""),
            payer_bik=get("ПлательщикБИК", "").strip(),
            payer_corr_account=get("ПлательщикКорсчет", "").strip(),
            payee_name=_name(get("Получатель1", ""), get("Получатель", "")),
            payee_inn=get("ПолучательИНН", "").strip(),
            payee_kpp=get("ПолучательКПП", "").strip(),
            payee_account=(get("ПолучательСчет") or get("ПолучательРасчСчет") or "").strip(),
            payee_bank=get("ПолучательБанк1", ""),
            payee_bik=get("ПолучательБИК", "").strip(),
            payee_corr_account=get("ПолучательКорсчет", "").strip(),
            written_off_on=day("ДатаСписано", written) if written else None,
            received_on=day("ДатаПоступило", received) if received else None,
            purpose=get(_PURPOSE) or _split_purpose(keys),
            payment_priority=get("Очередность", "").strip(),
            raw=keys,
        )


def _split_purpose(keys: dict[str, str]) -> str:
    """НазначениеПлатежа1..N joined by spaces: the lines a bank split a long purpose into.

    The standard names six; a few banks write more, so reading goes on past 6 while the
    keys continue.
    """
    parts: list[str] = []
    index = 1
    while True:
        value = keys.get(f"{_PURPOSE}{index}")
        if value is None and index >= 6:
            return " ".join(parts)
        if value:
            parts.append(value)
        index += 1


def _name(clean: str, full: str) -> str:
    """Плательщик1 (the bare name) when given, else Плательщик without 1C's "ИНН 7701... " lead."""
    if clean:
        return clean
    if full.startswith("ИНН "):
        digits, _, rest = full[4:].partition(" ")
        if digits.isdigit():
            return rest
    return full


def _parse_date(text: str) -> date:
    digits = text[:2] + text[3:5] + text[6:]
    if len(text) != 10 or text[2] != "." or text[5] != "." or not digits.isdigit():
        raise ValueError(text)
    if not digits.isascii():
        raise ValueError(text)
    return date(int(text[6:]), int(text[3:5]), int(text[:2]))


def _date(text: str, key: str, line: int) -> date:
    try:
        return _parse_date(text)
    except ValueError:
        raise StatementError(line, f"{key} {text!r} is not a date DD.MM.YYYY") from None


def _amount(text: str, signed: bool) -> Decimal | None:
    """An amount as "1234.56" or "1234,56"; balances may be negative (an overdraft).

    None for anything else. Checked by hand rather than by `Decimal()` alone, which would
    also take "1e5", "NaN" and non-ASCII digits; at most 18 digits of roubles and 2 of
    kopecks, so that no sum over a 50 MB file can overflow the decimal context.
    """
    body = text[1:] if signed and text.startswith("-") else text
    whole, dot, fraction = body.replace(",", ".", 1).partition(".")
    if (
        whole.isdigit()
        and whole.isascii()
        and len(whole) <= 18
        and (not dot or (fraction.isdigit() and fraction.isascii() and len(fraction) <= 2))
    ):
        return Decimal(text.replace(",", ".", 1))
    return None


def _bad_amount(line: int, key: str, text: str) -> StatementError:
    return StatementError(line, f"{key} {text!r} is not an amount (such as 1234.56)")


def _check_balances(statement: Statement) -> None:
    """Each section must add up, and its documents must sum to its turnovers.

    Opening + received − written off = closing; the credits are the documents paid to the
    section's account, the debits those paid from it. When an account has several sections
    (one per day, as some banks write), a document counts in the section whose interval
    holds its booking date (ДатаПоступило / ДатаСписано, else Дата).
    """
    sections_of: dict[str, int] = defaultdict(int)
    for section in statement.accounts:
        sections_of[section.account] += 1
    credits: dict[str, list[StatementDocument]] = defaultdict(list)
    debits: dict[str, list[StatementDocument]] = defaultdict(list)
    for document in statement.documents:
        if document.payee_account in sections_of:
            credits[document.payee_account].append(document)
        if document.payer_account in sections_of:
            debits[document.payer_account].append(document)
    for section in statement.accounts:
        opening, total_in = section.opening_balance, section.total_in
        total_out, closing = section.total_out, section.closing_balance
        if None not in (opening, total_in, total_out, closing):
            assert opening is not None and total_in is not None
            assert total_out is not None and closing is not None
            if opening + total_in - total_out != closing:
                raise StatementError(
                    section.line,
                    f"the balance section of account {section.account} does not add up: "
                    f"{opening:.2f} + {total_in:.2f} − {total_out:.2f} ≠ {closing:.2f}",
                )
        single = sections_of[section.account] == 1
        for figure, documents, label, direction in (
            (total_in, credits[section.account], "ВсегоПоступило", "received"),
            (total_out, debits[section.account], "ВсегоСписано", "written off"),
        ):
            if figure is None:
                continue
            total = sum(
                (d.amount for d in documents if single or _within(section, d, direction)),
                Decimal(0),
            )
            if total != figure:
                raise StatementError(
                    section.line,
                    f"the documents of account {section.account} add up to {total:.2f} "
                    f"{direction}, but the balance section says {label}={figure:.2f}",
                )


def _within(section: AccountSection, document: StatementDocument, direction: str) -> bool:
    booked = document.received_on if direction == "received" else document.written_off_on
    day = booked or document.date
    if section.starts_on is not None and day < section.starts_on:
        return False
    return section.ends_on is None or day <= section.ends_on
