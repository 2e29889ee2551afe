"""A counterparty's requisites (ИНН, КПП, ОГРН, addresses, bank accounts) and their check digits.

Every number here carries a check digit computed by an official rule, so a typing
error is caught when the number is entered, not months later when a payment bounces
or a bank statement cannot be matched. The rules:

- ИНН: 10 digits (an organisation) or 12 (a person, sole traders included); weighted
  sums modulo 11, then modulo 10 (the Federal Tax Service's algorithm).
- ОГРН: 13 digits, the first 12 as a number modulo 11, then modulo 10; ОГРНИП (a sole
  trader's): 15 digits, the first 14 modulo 13, then modulo 10.
- КПП: 9 characters: 4 digits (the tax office), 2 digits or capital letters (the
  reason), 3 digits.
- A bank account is checked against the bank's БИК with the Central Bank's key: the
  last three digits of the БИК (for a settlement account) or "0" and the БИК's fifth
  and sixth digits (for a correspondent account), followed by the 20 digits of the
  account, weighted 7, 1, 3 repeatedly, must sum to a multiple of 10; a correspondent
  account also ends with the БИК's last three digits.

Which numbers a set must or may have depends on the legal form (`check_fits`). The
messages are fixed sentences (the field path says where), so the web app can translate them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from threadline.domain.model.errors import InvalidInput


class LegalForm(StrEnum):
    """What kind of counterparty a company is; it decides which numbers its requisites need."""

    COMPANY = "company"
    SOLE_TRADER = "sole_trader"
    PRIVATE_PERSON = "private_person"


class CompanyRole(StrEnum):
    """What a counterparty is to the business; one company may be several at once."""

    CLIENT = "client"
    SUPPLIER = "supplier"
    PARTNER = "partner"
    OWN = "own"  # the business itself: the seller on its documents (issue 14)


MAX_SETS = 20
MAX_ACCOUNTS = 20
TEXT_LIMIT = 300
ADDRESS_LIMIT = 1000

CHECK_FAILED = "the check digit does not match: is there a typing error?"
ACCOUNT_MISMATCH = "does not match the БИК (wrong check digit): is there a typing error?"

_INN10_WEIGHTS = (2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN11_WEIGHTS = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12_WEIGHTS = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_ACCOUNT_WEIGHTS = (7, 1, 3) * 8  # 23 digits: a 3-digit bank part and the 20-digit account
_KPP = re.compile(r"[0-9]{4}[0-9A-Z]{2}[0-9]{3}")


def _digits(value: str, field: str) -> str:
    """`value` without the spaces people type between groups; only ASCII digits may remain."""
    text = "".join(str(value).split())
    if not (text.isascii() and text.isdigit()):
        raise InvalidInput(field, "must contain only digits")
    return text


def _weighted(digits: str, weights: Sequence[int]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights, strict=False))


def inn_is_valid(inn: str) -> bool:
    """Whether a 10- or 12-digit ИНН has the right check digit(s)."""
    if not (inn.isascii() and inn.isdigit()):
        return False
    if len(inn) == 10:
        return _weighted(inn, _INN10_WEIGHTS) % 11 % 10 == int(inn[9])
    if len(inn) == 12:
        first = _weighted(inn, _INN11_WEIGHTS) % 11 % 10
        second = _weighted(inn, _INN12_WEIGHTS) % 11 % 10
        return (first, second) == (int(inn[10]), int(inn[11]))
    return False


def check_inn(value: str, field: str = "inn") -> str:
    """The ИНН's digits, or `InvalidInput` naming `field`."""
    inn = _digits(value, field)
    if len(inn) not in (10, 12):
        raise InvalidInput(field, "must have 10 digits (an organisation) or 12 (a person)")
    if not inn_is_valid(inn):
        raise InvalidInput(field, CHECK_FAILED)
    return inn


def check_kpp(value: str, field: str = "kpp") -> str:
    kpp = "".join(str(value).split()).upper()
    if not _KPP.fullmatch(kpp):
        raise InvalidInput(field, "must be 4 digits, 2 digits or letters A-Z, then 3 digits")
    return kpp


def ogrn_is_valid(ogrn: str) -> bool:
    """Whether a 13-digit ОГРН or a 15-digit ОГРНИП has the right check digit."""
    if not (ogrn.isascii() and ogrn.isdigit()):
        return False
    if len(ogrn) == 13:
        return int(ogrn[:12]) % 11 % 10 == int(ogrn[12])
    if len(ogrn) == 15:
        return int(ogrn[:14]) % 13 % 10 == int(ogrn[14])
    return False


def check_ogrn(value: str, field: str = "ogrn") -> str:
    """An ОГРН (13 digits) or ОГРНИП (15 digits); which one a form needs is `check_fits`'s."""
    ogrn = _digits(value, field)
    if len(ogrn) not in (13, 15):
        raise InvalidInput(field, "must have 13 digits (ОГРН) or 15 (ОГРНИП)")
    if not ogrn_is_valid(ogrn):
        raise InvalidInput(field, CHECK_FAILED)
    return ogrn


def check_bik(value: str, field: str = "bik") -> str:
    bik = _digits(value, field)
    if len(bik) != 9:
        raise InvalidInput(field, "must have 9 digits")
    return bik


def account_key_is_valid(bank_part: str, account: str) -> bool:
    """The Central Bank's key: 3 digits of the bank then the 20 of the account, weighted 7,1,3."""
    digits = bank_part + account
    return len(digits) == 23 and digits.isdigit() and _weighted(digits, _ACCOUNT_WEIGHTS) % 10 == 0


def settlement_account_is_valid(bik: str, account: str) -> bool:
    return account_key_is_valid(bik[-3:], account)


def correspondent_account_is_valid(bik: str, account: str) -> bool:
    """A 301 account that ends with the БИК's last three digits and whose key fits."""
    return (
        account.startswith("301")
        and account[-3:] == bik[-3:]
        and account_key_is_valid("0" + bik[4:6], account)
    )


def check_account(value: str, bik: str, field: str = "account") -> str:
    """A 20-digit settlement account whose key matches the (already checked) БИК."""
    account = _digits(value, field)
    if len(account) != 20:
        raise InvalidInput(field, "must have 20 digits")
    if not settlement_account_is_valid(bik, account):
        raise InvalidInput(field, ACCOUNT_MISMATCH)
    return account


def check_correspondent_account(value: str, bik: str, field: str = "correspondent_account") -> str:
    account = _digits(value, field)
    if len(account) != 20 or not account.startswith("301"):
        raise InvalidInput(field, "must have 20 digits and start with 301")
    if not correspondent_account_is_valid(bik, account):
        raise InvalidInput(field, ACCOUNT_MISMATCH)
    return account


def printable(value: str, field: str) -> str:
    """`value` if it has no control characters: a NUL would stop a PostgreSQL view for good."""
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in value if ch not in "\t\n\r"):
        raise InvalidInput(field, "must not contain control characters")
    return value


def _text(data: Mapping[str, Any], key: str, field: str, limit: int) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{field}.{key}", "must be text")
    text = printable(" ".join(value.split()), f"{field}.{key}")
    if len(text) > limit:
        raise InvalidInput(f"{field}.{key}", f"is limited to {limit} characters")
    return text


def _mapping(value: Any, field: str) -> Mapping[str, Any]:
    if isinstance(value, BankAccount | RequisiteSet):
        return value.state()
    if not isinstance(value, Mapping):
        raise InvalidInput(field, "must be an object")
    return value


@dataclass(frozen=True)
class BankAccount:
    """One account of a counterparty at one bank."""

    bank_name: str
    bik: str
    account: str
    correspondent_account: str = ""

    def state(self) -> dict[str, str]:
        return {
            "bank_name": self.bank_name,
            "bik": self.bik,
            "account": self.account,
            "correspondent_account": self.correspondent_account,
        }

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> BankAccount:
        """As stored in an event (checked when it was recorded; never re-checked)."""
        return cls(
            bank_name=str(data.get("bank_name", "")),
            bik=str(data.get("bik", "")),
            account=str(data.get("account", "")),
            correspondent_account=str(data.get("correspondent_account", "")),
        )

    @classmethod
    def parse(cls, raw: Any, field: str) -> BankAccount:
        """A bank account as typed, cleaned and checked; `field` prefixes the error's path."""
        data = _mapping(raw, field)
        bik = check_bik(_text(data, "bik", field, 20), f"{field}.bik")
        account = check_account(_text(data, "account", field, 40), bik, f"{field}.account")
        correspondent = _text(data, "correspondent_account", field, 40)
        if correspondent:
            correspondent = check_correspondent_account(
                correspondent, bik, f"{field}.correspondent_account"
            )
        return cls(_text(data, "bank_name", field, TEXT_LIMIT), bik, account, correspondent)


@dataclass(frozen=True)
class RequisiteSet:
    """One set of a counterparty's details as they go on an invoice or a contract."""

    label: str = ""
    inn: str = ""
    kpp: str = ""
    ogrn: str = ""
    legal_address: str = ""
    postal_address: str = ""
    bank_accounts: tuple[BankAccount, ...] = ()

    def state(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "inn": self.inn,
            "kpp": self.kpp,
            "ogrn": self.ogrn,
            "legal_address": self.legal_address,
            "postal_address": self.postal_address,
            "bank_accounts": [a.state() for a in self.bank_accounts],
        }

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> RequisiteSet:
        return cls(
            label=str(data.get("label", "")),
            inn=str(data.get("inn", "")),
            kpp=str(data.get("kpp", "")),
            ogrn=str(data.get("ogrn", "")),
            legal_address=str(data.get("legal_address", "")),
            postal_address=str(data.get("postal_address", "")),
            bank_accounts=tuple(BankAccount.from_state(a) for a in data.get("bank_accounts", [])),
        )

    @classmethod
    def parse(cls, raw: Any, field: str) -> RequisiteSet:
        """A set as typed, cleaned and its numbers checked (whatever the legal form)."""
        data = _mapping(raw, field)
        inn = _text(data, "inn", field, 40)
        kpp = _text(data, "kpp", field, 40)
        ogrn = _text(data, "ogrn", field, 40)
        accounts = data.get("bank_accounts") or []
        if not isinstance(accounts, Sequence) or isinstance(accounts, str):
            raise InvalidInput(f"{field}.bank_accounts", "must be a list")
        if len(accounts) > MAX_ACCOUNTS:
            raise InvalidInput(f"{field}.bank_accounts", f"at most {MAX_ACCOUNTS} accounts")
        return cls(
            label=_text(data, "label", field, TEXT_LIMIT),
            inn=check_inn(inn, f"{field}.inn") if inn else "",
            kpp=check_kpp(kpp, f"{field}.kpp") if kpp else "",
            ogrn=check_ogrn(ogrn, f"{field}.ogrn") if ogrn else "",
            legal_address=_text(data, "legal_address", field, ADDRESS_LIMIT),
            postal_address=_text(data, "postal_address", field, ADDRESS_LIMIT),
            bank_accounts=tuple(
                BankAccount.parse(a, f"{field}.bank_accounts.{i}") for i, a in enumerate(accounts)
            ),
        )


def parse_requisites(raw: Any, field: str = "requisites") -> tuple[RequisiteSet, ...]:
    """Every set of a list as typed, each checked (`check_fits` then checks the legal form)."""
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise InvalidInput(field, "must be a list")
    if len(raw) > MAX_SETS:
        raise InvalidInput(field, f"at most {MAX_SETS} sets")
    return tuple(RequisiteSet.parse(item, f"{field}.{i}") for i, item in enumerate(raw))


def check_fits(legal_form: str | None, sets: Sequence[RequisiteSet]) -> None:
    """Refuse sets the legal form cannot have.

    A company needs a 10-digit ИНН and may have a КПП and a 13-digit ОГРН; a sole
    trader needs a 12-digit ИНН and may have a 15-digit ОГРНИП; a private person may
    have a 12-digit ИНН and nothing else. Requisites need a legal form to be read by.
    """
    if not sets:
        return
    if legal_form is None:
        raise InvalidInput("legal_form", "is required for requisites")
    form = LegalForm(legal_form)
    for i, item in enumerate(sets):
        at = f"requisites.{i}"
        if form is LegalForm.COMPANY:
            if len(item.inn) != 10:
                raise InvalidInput(f"{at}.inn", "a company needs a 10-digit ИНН")
            if item.ogrn and len(item.ogrn) != 13:
                raise InvalidInput(f"{at}.ogrn", "a company's ОГРН has 13 digits")
            continue
        if item.kpp:
            raise InvalidInput(f"{at}.kpp", "only a company has a КПП")
        if form is LegalForm.SOLE_TRADER:
            if len(item.inn) != 12:
                raise InvalidInput(f"{at}.inn", "a sole trader needs a 12-digit ИНН")
            if item.ogrn and len(item.ogrn) != 15:
                raise InvalidInput(f"{at}.ogrn", "a sole trader's ОГРНИП has 15 digits")
            continue
        if item.inn and len(item.inn) != 12:
            raise InvalidInput(f"{at}.inn", "a private person's ИНН has 12 digits")
        if item.ogrn:
            raise InvalidInput(f"{at}.ogrn", "a private person has no ОГРН")


def clean_legal_form(value: str) -> str:
    if not isinstance(value, str) or value not in {form.value for form in LegalForm}:
        raise InvalidInput("legal_form", "must be company, sole_trader or private_person")
    return value


def clean_roles(values: Sequence[str]) -> list[str]:
    """Known roles, each once, in the one order (client, supplier, partner, own)."""
    if isinstance(values, str):
        raise InvalidInput("roles", "must be a list")
    known = {role.value for role in CompanyRole}
    for value in values:
        if value not in known:
            raise InvalidInput("roles", "each role must be client, supplier, partner or own")
    return [role.value for role in CompanyRole if role.value in values]


def clean_client_group(value: str) -> str:
    """A client group ("wholesale", "retail"), spaces collapsed; "" means none."""
    if not isinstance(value, str):
        raise InvalidInput("client_group", "must be text")
    text = printable(" ".join(value.split()), "client_group")
    if len(text) > 100:
        raise InvalidInput("client_group", "is limited to 100 characters")
    return text
