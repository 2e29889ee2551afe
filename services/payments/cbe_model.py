"""What a 1C client-bank exchange file reads into: the statement, its balance sections, its
documents, and the one error type (see `client_bank_exchange` for the format and sources).

The typed fields are the ones payment matching needs; every key of a document is also kept
in `raw`, because banks add keys of their own and a later reader may want one of them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from threadline.domain.model.errors import InvalidInput

Direction = Literal["in", "out"]


class StatementError(InvalidInput):
    """The file cannot be read as a statement; `line` is the 1-based physical line at fault.

    A subclass of `InvalidInput` so that an upload endpoint answers 422 with the message
    without a handler of its own; `str()` is "line N: message", which is what a person
    opening the file in a text editor needs.
    """

    def __init__(self, line: int, message: str) -> None:
        super().__init__("file", f"line {line}: {message}")
        self.line = line
        self.reason = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class AccountSection:
    """One ``СекцияРасчСчет ... КонецРасчСчет`` block: an account's figures for an interval.

    A figure the bank left out is None (and takes no part in the balance check).
    """

    line: int
    end_line: int
    account: str
    starts_on: dt.date | None
    ends_on: dt.date | None
    opening_balance: Decimal | None
    total_in: Decimal | None
    total_out: Decimal | None
    closing_balance: Decimal | None


@dataclass(frozen=True, slots=True)
class StatementDocument:
    """One ``СекцияДокумент=<kind> ... КонецДокумента`` block.

    `line` is the line of ``СекцияДокумент`` and `end_line` of ``КонецДокумента``, so a
    caller reporting a problem with a payment can point at it in the file. Empty strings
    stand for keys the bank left out or wrote empty.
    """

    line: int
    end_line: int
    kind: str
    number: str
    date: dt.date
    amount: Decimal
    payer_name: str
    payer_inn: str
    payer_kpp: str
    payer_account: str
    payer_bank: str
    payer_bik: str
    payer_corr_account: str
    payee_name: str
    payee_inn: str
    payee_kpp: str
    payee_account: str
    payee_bank: str
    payee_bik: str
    payee_corr_account: str
    written_off_on: dt.date | None
    received_on: dt.date | None
    purpose: str
    payment_priority: str
    raw: dict[str, str]

    def direction_for(self, account: str | Collection[str]) -> Direction | None:
        """ "in" when the money came to `account` (or one of them), "out" when it left it.

        None when the document names neither: a statement may list a payment of another
        account, and the caller decides what to tell the person importing it.
        """
        accounts: Collection[str] = (account,) if isinstance(account, str) else account
        if self.payee_account and self.payee_account in accounts:
            return "in"
        if self.payer_account and self.payer_account in accounts:
            return "out"
        return None


@dataclass(frozen=True, slots=True)
class Statement:
    """A whole file. `encoding` is the Python codec the bytes were decoded with."""

    version: str
    encoding: str
    sender: str
    receiver: str
    created: dt.datetime | None
    starts_on: dt.date | None
    ends_on: dt.date | None
    accounts: list[AccountSection]
    documents: list[StatementDocument]
    warnings: list[str] = field(default_factory=list)
    header_accounts: list[str] = field(default_factory=list)
    document_kinds: list[str] = field(default_factory=list)
    header: dict[str, str] = field(default_factory=dict)

    @property
    def account_numbers(self) -> frozenset[str]:
        """The statement's own accounts: the header's ``РасчСчет`` lines and the sections'."""
        return frozenset(self.header_accounts) | {a.account for a in self.accounts}

    def direction(self, document: StatementDocument) -> Direction | None:
        """`StatementDocument.direction_for` against all of the statement's accounts."""
        return document.direction_for(self.account_numbers)
