"""The rendering context of a document (the documents contract), built from what it is about.

A document is printed from a deal, a contract or a supplier order; this module turns
each of them into the one shape every template reads (`seller`, `buyer`, `lines`,
`totals`, `amount_in_words`, `deal`, `contract`), so a template never needs to know
where its figures came from:

* **Parties.** The seller is "our company": the company with the role ``own`` (or the
  one the request names); the buyer is the deal's company, else the deal's contact as
  a private person. On a purchase order it is the other way round: the supplier sells
  and we buy. Requisites are the first set's, bank details its first account's:
  that is the set and account a business keeps first for its own paperwork.
* **Lines and totals** come from the aggregates (`Deal.lines`, the order's lines),
  each priced by `DealLine.figures`, the same rounding the deal page shows, so the
  document's total always equals the deal's; VAT is summed per rate because a
  Russian invoice prints one "В том числе НДС 20 %" line per rate.
* **The snapshot.** What the document says is also recorded in the log
  (`DocumentIssued.personal`) as plain JSON (`snapshot`), so an auditor can read it
  without the template.
"""

# ruff: noqa: RUF002

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from threadline.domain.model.amount_words import amount_in_words
from threadline.domain.model.deal import DealLine
from threadline.domain.model.requisites import CompanyRole
from threadline.projections.catalogue import products_by_id
from threadline.projections.companies import CompanyRow, companies_page, company
from threadline.projections.contact_card import display_names, identities_of
from threadline.projections.documents import ContractRow
from threadline.projections.sql import ViewReader

NO_OWN_COMPANY = "set up your company: a company with the role 'own' and its requisites"
EMPTY_BANK = {"bank_name": "", "bik": "", "account": "", "correspondent_account": ""}


# -- our company --------------------------------------------------------------------------------


def own_company(views: ViewReader) -> CompanyRow | None:
    """The business itself: the first company (by name) with the role ``own``, or None."""
    rows, _ = companies_page(views, 1, 0, role=CompanyRole.OWN.value)
    return rows[0] if rows else None


# -- parties ------------------------------------------------------------------------------------


def _attribute(row: CompanyRow, key: str) -> str:
    value = row.attributes.get(key)
    return "" if value is None else str(value)


def company_party(row: CompanyRow) -> dict[str, Any]:
    """A company as a document prints it: its first requisite set and that set's first account.

    Phone, e-mail, signatory and accountant are the company's attributes of those names
    when the business defined them ("" otherwise)."""
    first: Mapping[str, Any] = row.requisites[0] if row.requisites else {}
    accounts = first.get("bank_accounts") or []
    bank = dict(EMPTY_BANK)
    if accounts:
        bank.update({k: str(v) for k, v in dict(accounts[0]).items() if k in EMPTY_BANK})
    return {
        "name": row.name,
        "legal_form": row.legal_form or "",
        "inn": str(first.get("inn", "")),
        "kpp": str(first.get("kpp", "")),
        "ogrn": str(first.get("ogrn", "")),
        "legal_address": str(first.get("legal_address", "")),
        "postal_address": str(first.get("postal_address", "")),
        "bank": bank,
        "phone": _attribute(row, "phone"),
        "email": _attribute(row, "email"),
        "signatory": _attribute(row, "signatory"),
        "accountant": _attribute(row, "accountant"),
    }


def contact_party(views: ViewReader, contact_id: str) -> dict[str, Any]:
    """A contact without a company, printed as a private person: the name and the first
    e-mail address and phone number they have."""
    name = display_names(views, [contact_id]).get(contact_id, "")
    identities = identities_of(views, [contact_id]).get(contact_id, [])

    def first(kind: str) -> str:
        return next((i.value for i in identities if i.kind == kind), "")

    return {
        "name": name,
        "legal_form": "private_person",
        "inn": "",
        "kpp": "",
        "ogrn": "",
        "legal_address": "",
        "postal_address": "",
        "bank": dict(EMPTY_BANK),
        "phone": first("phone"),
        "email": first("email"),
        "signatory": "",
        "accountant": "",
    }


def party(views: ViewReader, company_id: str | None, contact_id: str | None) -> dict[str, Any]:
    """The company if there is one (and the view has it), else the contact, else blank."""
    if company_id:
        row = company(views, company_id)
        if row is not None:
            return company_party(row)
    if contact_id:
        return contact_party(views, contact_id)
    return {**contact_party(views, ""), "legal_form": ""}


# -- lines and totals ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Priced:
    """Lines as a document prints them, with their totals, in one currency."""

    currency: str
    lines: list[dict[str, Any]]
    totals: dict[str, Any]

    @property
    def total(self) -> Decimal:
        value: Decimal = self.totals["total"]
        return value

    @property
    def vat(self) -> Decimal:
        value: Decimal = self.totals["vat"]
        return value


def price_lines(views: ViewReader, lines: Sequence[DealLine], currency: str) -> Priced:
    """Each line's figures (`DealLine.figures`, rounded per line) and the sums, VAT per rate.

    A line's `price` is as it was priced (VAT included when the line says so); `net`,
    `vat` and `total` are always without, the tax, and with it."""
    skus = {
        pid: row.sku
        for pid, row in products_by_id(
            views, [line.product_id for line in lines if line.product_id]
        ).items()
    }
    zero = Decimal(0)
    printed: list[dict[str, Any]] = []
    rates: dict[Decimal, Decimal] = {}
    for number, line in enumerate(lines, start=1):
        figures = line.figures(currency)
        printed.append(
            {
                "number": number,
                "name": line.name,
                "sku": skus.get(line.product_id or "", ""),
                "unit": line.unit,
                "quantity": line.quantity,
                "price": line.price,
                "discount": line.discount,
                "net": figures.net,
                "vat_rate": line.vat_rate,
                "vat": figures.vat,
                "total": figures.total,
            }
        )
        if line.vat_rate is not None:
            rates[line.vat_rate] = rates.get(line.vat_rate, zero) + figures.vat
    net = sum((p["net"] for p in printed), zero)
    vat = sum((p["vat"] for p in printed), zero)
    totals = {
        "net": net,
        "vat": vat,
        "total": sum((p["total"] for p in printed), zero),
        "vat_included": bool(lines) and all(line.vat_included for line in lines),
        "has_vat": bool(rates),
        "vat_rates": [{"rate": rate, "vat": rates[rate]} for rate in sorted(rates)],
    }
    return Priced(currency, printed, totals)


# -- the whole context --------------------------------------------------------------------------


def contract_part(row: ContractRow | None) -> dict[str, Any]:
    if row is None:
        return {}
    return {
        "number": row.number,
        "signed_on": date.fromisoformat(row.signed_on),
        "starts_on": date.fromisoformat(row.starts_on) if row.starts_on else None,
        "ends_on": date.fromisoformat(row.ends_on) if row.ends_on else None,
    }


@dataclass(frozen=True)
class DocumentFacts:
    """Everything a document says except its number (filled in by `with_number`)."""

    kind: str
    language: str
    title: str
    issued_on: date
    due_on: date | None
    valid_until: date | None
    notes: str
    seller: dict[str, Any]
    buyer: dict[str, Any]
    priced: Priced
    deal: dict[str, Any]
    contract: dict[str, Any]

    def context(self, series: str, number: int, display_number: str) -> dict[str, Any]:
        """The documents contract's context, numbered."""
        totals = self.priced.totals
        return {
            "kind": self.kind,
            "language": self.language,
            "document": {
                "number": number,
                "series": series,
                "display_number": display_number,
                "issued_on": self.issued_on,
                "due_on": self.due_on,
                "title": self.title,
                "currency": self.priced.currency,
                "notes": self.notes,
                "valid_until": self.valid_until,
            },
            "seller": self.seller,
            "buyer": self.buyer,
            "lines": self.priced.lines,
            "totals": totals,
            "amount_in_words": amount_in_words(
                totals["total"], self.priced.currency, self.language
            ),
            "deal": self.deal,
            "contract": self.contract,
        }

    def snapshot(self) -> dict[str, Any]:
        """What the document says, as the log keeps it: JSON only (decimals as strings,
        dates ISO), in the keys `DocumentIssued.personal` names."""
        said: dict[str, Any] = {
            "title": self.title,
            "notes": self.notes,
            "seller": jsonable(self.seller),
            "buyer": jsonable(self.buyer),
            "lines": jsonable(self.priced.lines),
            "totals": jsonable(self.priced.totals),
        }
        if self.valid_until is not None:
            said["valid_until"] = self.valid_until.isoformat()
        if self.contract:
            said["contract"] = jsonable(self.contract)
        return said


def jsonable(value: Any) -> Any:
    """`value` with decimals as strings, dates as ISO text and UUIDs as text."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value
