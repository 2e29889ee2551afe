"""Documents a deal ends in: proposals, invoices, contracts, acts, УПД and the rest.

A document is issued once and never changes: its PDF is stored by hash (the attachment
store) and `DocumentIssued` records the hash, the template version that made it, the
totals and a snapshot of what it says (parties' requisites, lines) in its ``personal``
part, since a sole trader's requisites are personal data. A wrong document is voided
(`DocumentVoided`, with a reason) and a new one issued; its number stays used, as
accounting wants.

Numbers run per series and year without gaps: `DocumentSeries` (one aggregate per series
and year, a ``uuid5`` id) hands out the next number in the same unit of work that records
the document, so two documents issued at once in two processes conflict on the series'
version and the writer runs the loser again with the next number (see `group_commit`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from threadline.domain.model.errors import Conflict, InvalidInput
from threadline.domain.model.history_clock import HistoryClock

SERIES_NAMESPACE = uuid5(NAMESPACE_URL, "https://threadline.dev/document-series")
MAX_SERIES = 20


class DocumentKind(StrEnum):
    PROPOSAL = "proposal"  # коммерческое предложение
    INVOICE = "invoice"  # счёт на оплату
    CONTRACT = "contract"  # договор
    ACT = "act"  # акт выполненных работ (оказанных услуг)
    UPD = "upd"  # универсальный передаточный документ
    SPECIFICATION = "specification"  # спецификация к договору
    PRICE_PROTOCOL = "price_protocol"  # протокол согласования цены
    PURCHASE_ORDER = "purchase_order"  # заказ поставщику


DEFAULT_SERIES: dict[str, str] = {
    DocumentKind.PROPOSAL: "КП",
    DocumentKind.INVOICE: "СЧ",
    DocumentKind.CONTRACT: "Д",
    DocumentKind.ACT: "АКТ",  # noqa: RUF001 (Cyrillic on purpose)
    DocumentKind.UPD: "УПД",
    DocumentKind.SPECIFICATION: "СП",
    DocumentKind.PRICE_PROTOCOL: "ПСЦ",
    DocumentKind.PURCHASE_ORDER: "ЗП",
}
"""The series a kind is numbered in unless a business picks its own."""


def clean_kind(value: str, field: str = "kind") -> DocumentKind:
    try:
        return DocumentKind(str(value))
    except ValueError:
        choices = ", ".join(k.value for k in DocumentKind)
        raise InvalidInput(field, f"one of {choices}") from None


def clean_series(value: str | None, kind: DocumentKind) -> str:
    """A short prefix such as "СЧ" or "INV"; "" numbers the kind without one."""
    series = DEFAULT_SERIES[kind] if value is None else " ".join(str(value).split())
    if len(series) > MAX_SERIES or any(c in series for c in "/\\"):
        raise InvalidInput("series", f"a series is up to {MAX_SERIES} characters, no slashes")
    return series


def series_id(series: str, year: int) -> UUID:
    return uuid5(SERIES_NAMESPACE, f"{series}|{year}")


def display_number(series: str, number: int) -> str:
    """How a number is printed and searched: "СЧ-15", or "15" without a series."""
    return f"{series}-{number}" if series else str(number)


class DocumentSeries(Aggregate):
    """The counter of one series in one year; each number taken names its document."""

    class SeriesStarted(Aggregate.Created):
        series: str
        year: int

    @event(SeriesStarted)
    def __init__(self, id: UUID, series: str, year: int) -> None:
        self.series = series
        self.year = year
        self.last_number = 0

    class NumberTaken(Aggregate.Event):
        number: int
        document_id: UUID

    @event(NumberTaken)
    def _taken(self, number: int, document_id: UUID) -> None:
        self.last_number = number

    def take_next(self, document_id: UUID) -> int:
        number = self.last_number + 1
        self._taken(number, document_id)
        return number


class DocumentStatus(StrEnum):
    ISSUED = "issued"
    VOIDED = "voided"


class Document(Aggregate):
    """An issued document: its number, parties, totals and the stored file's hash.

    `file` is the stored PDF's `AttachmentMeta.public()` form (filename, content type,
    size, sha256, stored), so the document can be attached to a message as it is.
    `html_sha256` is the hash of the HTML the PDF was made from. Links (`deal_id`,
    `contract_id`, `supplier_order_id`) say what the document belongs to; `company_id` and
    `contact_id` name the counterparty (the buyer, or the supplier of a purchase order).
    """

    class DocumentIssued(HistoryClock, Aggregate.Created):
        kind: str
        series: str
        year: int
        number: int
        display_number: str
        language: str
        issued_on: str
        due_on: str | None
        deal_id: UUID | None
        contract_id: UUID | None
        supplier_order_id: UUID | None
        company_id: UUID | None
        contact_id: UUID | None
        seller_id: UUID | None
        amount: dict[str, str]  # the total, VAT included
        vat: dict[str, str]
        template: dict[str, Any]  # {"id", "version", "shipped"}
        file: dict[str, Any]
        html_sha256: str
        personal: dict[str, Any]  # {"title", "notes", "seller", "buyer", "lines"}: what it says
        actor: str
        correlation_id: str

    @event(DocumentIssued)
    def __init__(
        self,
        id: UUID,
        kind: str,
        series: str,
        year: int,
        number: int,
        display_number: str,
        language: str,
        issued_on: str,
        due_on: str | None,
        deal_id: UUID | None,
        contract_id: UUID | None,
        supplier_order_id: UUID | None,
        company_id: UUID | None,
        contact_id: UUID | None,
        seller_id: UUID | None,
        amount: dict[str, str],
        vat: dict[str, str],
        template: dict[str, Any],
        file: dict[str, Any],
        html_sha256: str,
        personal: dict[str, Any],
        actor: str,
        correlation_id: str,
    ) -> None:
        self.kind = kind
        self.series = series
        self.number = number
        self.display_number = display_number
        self.issued_on = issued_on
        self.due_on = due_on
        self.deal_id = deal_id
        self.contract_id = contract_id
        self.supplier_order_id = supplier_order_id
        self.company_id = company_id
        self.contact_id = contact_id
        self.amount = amount
        self.file = dict(file)
        self.status = DocumentStatus.ISSUED.value
        self.sent_in: list[UUID] = []

    class DocumentSent(HistoryClock, Aggregate.Event):
        """Attached to an outgoing message (`message_id`) on one of the client's channels."""

        message_id: UUID
        conversation_id: UUID
        channel: str
        contact_id: UUID | None
        actor: str
        correlation_id: str

    @event(DocumentSent)
    def mark_sent(
        self,
        message_id: UUID,
        conversation_id: UUID,
        channel: str,
        contact_id: UUID | None,
        actor: str,
        correlation_id: str,
    ) -> None:
        self.sent_in.append(message_id)

    class DocumentVoided(HistoryClock, Aggregate.Event):
        reason: str
        actor: str
        correlation_id: str

    def void(self, reason: str, actor: str, correlation_id: str) -> None:
        if self.status == DocumentStatus.VOIDED.value:
            raise Conflict(f"document {self.display_number} is already voided")
        if not reason.strip():
            raise InvalidInput("reason", "say why the document is voided")
        self._voided(reason.strip()[:500], actor, correlation_id)

    @event(DocumentVoided)
    def _voided(self, reason: str, actor: str, correlation_id: str) -> None:
        self.status = DocumentStatus.VOIDED.value
