"""`write_statement`: a valid ``kl_to_1c.txt`` from a few accounts and simple document specs.

The tests and the benchmark need statements of any size and shape; writing them the way
banks do (the key order of 1C:Бухгалтерия's own export, ``Кодировка=Windows``/``DOS``,
both ``ПлательщикСчет`` and ``ПлательщикРасчСчет``, the unused one of ``ДатаСписано`` /
``ДатаПоступило`` left empty, ``Плательщик`` as "ИНН <inn> <name>" next to the bare
``Плательщик1``) keeps the reader honest about real files. The balance sections are
computed from the documents, so a written statement always adds up unless a test breaks
it on purpose (through `DocumentSpec.raw` or by editing the bytes).
"""

# ruff: noqa: RUF001, RUF002

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from threadline.services.payments.cbe_model import Direction

PURPOSE_WIDTH = 210
"""Field 24 of a payment order (Положение 383-П) holds 210 characters; split purposes are
written in chunks of that width."""
_LABELS = {"cp1251": "Windows", "cp866": "DOS", "utf-8": "UTF-8"}
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class AccountSpec:
    """One of the statement owner's accounts and the owner's side of its documents."""

    account: str
    opening_balance: Decimal = Decimal("0.00")
    owner_name: str = 'ООО "Ромашка"'
    owner_inn: str = "7701000001"
    owner_kpp: str = "770101001"
    bank_name: str = "ПАО СБЕРБАНК"
    bank_city: str = "г. Москва"
    bik: str = "044525225"
    corr_account: str = "30101810400000000225"


@dataclass(frozen=True)
class DocumentSpec:
    """A payment as seen from one of the statement's accounts ("in": paid to it).

    `account` picks that account ("" = the first). `raw` overrides or adds keys after the
    generated ones (None removes a key), for files no bank writes but some bank will.
    """

    number: str
    date: dt.date
    amount: Decimal
    direction: Direction
    counterparty_name: str = ""
    counterparty_inn: str = ""
    counterparty_kpp: str = ""
    counterparty_account: str = ""
    counterparty_bank: str = ""
    counterparty_bik: str = ""
    counterparty_corr_account: str = ""
    purpose: str = ""
    kind: str = "Платежное поручение"
    account: str = ""
    priority: str = "5"
    booked_on: dt.date | None = None
    raw: Mapping[str, str | None] = field(default_factory=dict)


def write_statement(
    accounts: Sequence[AccountSpec],
    documents: Iterable[DocumentSpec],
    *,
    version: Literal["1.02", "1.03"] = "1.03",
    encoding: Literal["cp1251", "cp866", "utf-8"] = "cp1251",
    newline: Literal["\r\n", "\n"] = "\r\n",
    bom: bool = False,
    split_purpose: bool = False,
    created: dt.datetime | None = None,
    starts_on: dt.date | None = None,
    ends_on: dt.date | None = None,
    sender: str = "Threadline",
    receiver: str = "Бухгалтерия предприятия, редакция 3.0",
) -> bytes:
    """The file's bytes. ValueError for what the format cannot carry (a line break in a
    value, an amount finer than a kopeck, a character the encoding lacks).

    `split_purpose` writes the purpose only as ``НазначениеПлатежа1..N`` chunks of at
    most 210 characters, cut at spaces, as older bank exports do; otherwise it is one
    ``НазначениеПлатежа`` line, as 1C:Бухгалтерия writes it.
    """
    if not accounts:
        raise ValueError("a statement needs at least one account")
    specs = list(documents)
    by_number = {a.account: a for a in accounts}
    days = [d.booked_on or d.date for d in specs]
    created = created or dt.datetime(2024, 1, 1, 9, 0, 0)
    starts_on = starts_on or min(days, default=created.date())
    ends_on = ends_on or max(days, default=created.date())
    lines = [
        "1CClientBankExchange",
        f"ВерсияФормата={version}",
        f"Кодировка={_LABELS[encoding]}",
        f"Отправитель={sender}",
        f"Получатель={receiver}",
        f"ДатаСоздания={_day(created.date())}",
        f"ВремяСоздания={created:%H:%M:%S}",
        f"ДатаНачала={_day(starts_on)}",
        f"ДатаКонца={_day(ends_on)}",
    ]
    lines += [f"РасчСчет={a.account}" for a in accounts]
    lines += [f"Документ={kind}" for kind in dict.fromkeys(d.kind for d in specs)]
    for spec in accounts:
        mine = [d for d in specs if (d.account or accounts[0].account) == spec.account]
        received = sum((d.amount for d in mine if d.direction == "in"), Decimal(0))
        spent = sum((d.amount for d in mine if d.direction == "out"), Decimal(0))
        lines += [
            "СекцияРасчСчет",
            f"ДатаНачала={_day(starts_on)}",
            f"ДатаКонца={_day(ends_on)}",
            f"РасчСчет={spec.account}",
            f"НачальныйОстаток={_money(spec.opening_balance)}",
            f"ВсегоПоступило={_money(received)}",
            f"ВсегоСписано={_money(spent)}",
            f"КонечныйОстаток={_money(spec.opening_balance + received - spent)}",
            "КонецРасчСчет",
        ]
    for document in specs:
        own = by_number.get(document.account or accounts[0].account)
        if own is None:
            raise ValueError(f"document {document.number}: {document.account} is not an account")
        lines.append(f"СекцияДокумент={document.kind}")
        keys = _document_keys(document, own, version, split_purpose)
        for key, value in keys.items():
            if "\r" in value or "\n" in value:
                raise ValueError(f"document {document.number}: {key} holds a line break")
            lines.append(f"{key}={value}")
        lines.append("КонецДокумента")
    lines.append("КонецФайла")
    body = newline.join(lines) + newline
    try:
        encoded = body.encode(encoding)
    except UnicodeEncodeError as error:
        raise ValueError(f"{body[error.start]!r} cannot be written in {encoding}") from None
    return (b"\xef\xbb\xbf" if bom and encoding == "utf-8" else b"") + encoded


def _document_keys(
    document: DocumentSpec, own: AccountSpec, version: str, split_purpose: bool
) -> dict[str, str]:
    incoming = document.direction == "in"
    booked = _day(document.booked_on or document.date)
    other = _Party(
        document.counterparty_name,
        document.counterparty_inn,
        document.counterparty_kpp,
        document.counterparty_account,
        document.counterparty_bank,
        "",
        document.counterparty_bik,
        document.counterparty_corr_account,
    )
    mine = _Party(
        own.owner_name,
        own.owner_inn,
        own.owner_kpp,
        own.account,
        own.bank_name,
        own.bank_city,
        own.bik,
        own.corr_account,
    )
    payer, payee = (other, mine) if incoming else (mine, other)
    keys = {
        "Номер": document.number,
        "Дата": _day(document.date),
        "Сумма": _money(document.amount, positive=True),
    }
    keys.update(payer.keys("Плательщик", "ДатаСписано", "" if incoming else booked))
    keys.update(payee.keys("Получатель", "ДатаПоступило", booked if incoming else ""))
    keys["ВидОплаты"] = "01"
    if version != "1.02":
        keys["Код"] = "0"  # the payment's unique identifier (УИП); 0 when there is none
    keys["ПлательщикКПП"] = payer.kpp
    keys["ПолучательКПП"] = payee.kpp
    keys["Очередность"] = document.priority
    if split_purpose:
        for index, chunk in enumerate(split_text(document.purpose), 1):
            keys[f"НазначениеПлатежа{index}"] = chunk
    else:
        keys["НазначениеПлатежа"] = document.purpose
    for key, value in document.raw.items():
        if value is None:
            keys.pop(key, None)
        else:
            keys[key] = value
    return keys


@dataclass(frozen=True)
class _Party:
    name: str
    inn: str
    kpp: str
    account: str
    bank: str
    city: str
    bik: str
    corr_account: str

    def keys(self, role: str, date_key: str, booked: str) -> dict[str, str]:
        """A side's keys in 1C's order; `date_key` sits right after the side's account."""
        return {
            f"{role}Счет": self.account,
            date_key: booked,
            role: f"ИНН {self.inn} {self.name}" if self.inn else self.name,
            f"{role}ИНН": self.inn,
            f"{role}1": self.name,
            f"{role}РасчСчет": self.account,
            f"{role}Банк1": self.bank,
            f"{role}Банк2": self.city,
            f"{role}БИК": self.bik,
            f"{role}Корсчет": self.corr_account,
        }


def split_text(text: str, width: int = PURPOSE_WIDTH) -> list[str]:
    """Chunks of at most `width` characters cut at single spaces (the space is dropped, and
    the reader's join by " " puts it back); a word longer than `width` is cut hard."""
    chunks: list[str] = []
    while len(text) > width:
        cut = text.rfind(" ", 1, width + 1)
        if cut <= 0:
            chunks.append(text[:width])
            text = text[width:]
        else:
            chunks.append(text[:cut])
            text = text[cut + 1 :]
    if text:
        chunks.append(text)
    return chunks


def _day(value: dt.date) -> str:
    return f"{value:%d.%m.%Y}"


def _money(amount: Decimal, positive: bool = False) -> str:
    if amount != amount.quantize(_CENT):
        raise ValueError(f"{amount} is finer than a kopeck")
    if positive and amount <= 0:
        raise ValueError(f"a document's amount must be positive, not {amount}")
    return f"{amount:.2f}"
