"""Issuing a document from a deal, a contract or a supplier order, and sending it to the client.

`issue_document` is the one way a document comes to be (the API, the deal page and the
demo call it): it checks the request, builds what the document says
(`services.documents.context`), picks the template in force (`template_for`) and hands
the domain a `render` callback. The domain takes the next number of the series inside
its unit of work and calls `render` with it; the callback fills the number in, renders
HTML then PDF, and stores both in the attachment store by hash. So the number, the file
and `DocumentIssued` (which records the file's SHA-256 and the template's id and
version) are one fact, and a number is never taken for a document that was not made.

Defaults, and why:

* **issued_on**: today in the business's time zone (`THREADLINE_TIMEZONE`), the date an
  accountant would write.
* **due_on**: an invoice is due `INVOICE_DAYS` (5) days after it is issued, the usual
  "оплатить в течение 5 дней" of small Russian businesses, and the date the
  `payment.due` / `payment.overdue` reminders count from; a purchase order prints the
  delivery date the supplier confirmed (none before that); other kinds have none.
* **series**: the kind's default series (`DEFAULT_SERIES`: "СЧ", "АКТ", ...) whatever the
  language, so Russian and English invoices share one gapless run of numbers.
* **seller**: our company (the company with the role ``own``); without one, issuing is
  refused with `NO_OWN_COMPANY`, since a document without its issuer's requisites is
  worthless.

`send_document_to_client` attaches an issued document's PDF to a message on one of the
client's channels; `document_file` / `document_html` give the stored bytes for downloads.
"""

# ruff: noqa: RUF002

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.application import AggregateNotFoundError

from threadline.channels.attachments import AttachmentStore
from threadline.domain.commands.documents import DocumentDraft, Numbered, RenderedFile
from threadline.domain.model.campaign import SENDABLE_CHANNELS
from threadline.domain.model.contract import Contract
from threadline.domain.model.conversation import Conversation
from threadline.domain.model.deal import Deal, DealLine, lines_from_state
from threadline.domain.model.document import DocumentKind, clean_kind, clean_series
from threadline.domain.model.errors import InvalidInput, NotFound
from threadline.domain.model.money import Money
from threadline.domain.model.reply_channels import REPLY_CHANNEL
from threadline.domain.model.requisites import printable
from threadline.domain.model.supplier_order import SupplierOrder
from threadline.projections.companies import company, company_contacts
from threadline.projections.contact_card import display_names, identities_of
from threadline.projections.documents import (
    ContractFilter,
    ContractRow,
    DocumentRow,
    contract,
    contracts_page,
    document,
)
from threadline.projections.supplier_orders import supplier_order
from threadline.services.documents.context import (
    NO_OWN_COMPANY,
    DocumentFacts,
    company_party,
    contract_part,
    own_company,
    party,
    price_lines,
)
from threadline.services.documents.links import FILE_CHANNELS
from threadline.services.documents.pdf import html_to_pdf
from threadline.services.documents.template_source import (
    TemplateChoice,
    shipped_name,
    template_for,
)
from threadline.services.documents.templating import render_html
from threadline.services.runtime import Runtime
from threadline.triggers.outbound import IDENTITY_KIND, IDENTITY_LABEL
from threadline.triggers.templates import TemplateError

INVOICE_DAYS = 5
LANGUAGES = ("ru", "en")
MAX_NOTES = 2000
PDF = "application/pdf"
HTML = "text/html; charset=utf-8"
WITHOUT_LINES = frozenset({DocumentKind.CONTRACT.value})
"""Kinds that make sense without lines (a framework contract); the rest need something sold."""

FILE_NAMES: dict[str, dict[str, str]] = {
    "ru": {
        "proposal": "КП",
        "invoice": "Счёт",
        "contract": "Договор",
        "act": "Акт",
        "upd": "УПД",
        "specification": "Спецификация",
        "price_protocol": "Протокол согласования цены",
        "purchase_order": "Заказ поставщику",
    },
    "en": {
        "proposal": "Proposal",
        "invoice": "Invoice",
        "contract": "Contract",
        "act": "Certificate of completion",
        "upd": "UPD",
        "specification": "Specification",
        "price_protocol": "Price agreement",
        "purchase_order": "Purchase order",
    },
}


@dataclass(frozen=True)
class IssueRequest:
    """What to print. Name one source: `deal_id`, `contract_id`, `supplier_order_id` (a
    purchase order), or only `company_id` / `contact_id` (a contract without lines).
    None means the default (see the module docstring); `document_id` makes a retry one
    document."""

    kind: str
    deal_id: UUID | None = None
    contract_id: UUID | None = None
    supplier_order_id: UUID | None = None
    company_id: UUID | None = None
    contact_id: UUID | None = None
    language: str = "ru"
    series: str | None = None
    issued_on: date | None = None
    due_on: date | None = None
    valid_until: date | None = None
    notes: str = ""
    seller_id: UUID | None = None
    document_id: UUID | None = None


@dataclass
class _Source:
    """What a request resolves to before anything is rendered."""

    lines: list[DealLine] = field(default_factory=list)
    currency: str = "RUB"
    deal: dict[str, Any] = field(default_factory=dict)
    deal_id: UUID | None = None
    contract: ContractRow | None = None
    supplier_order_id: UUID | None = None
    company_id: UUID | None = None
    contact_id: UUID | None = None
    fixed_number: Numbered | None = None
    due_on: date | None = None


def business_today(runtime: Runtime) -> date:
    """Today where the business is (`THREADLINE_TIMEZONE`)."""
    return datetime.now(ZoneInfo(runtime.settings.timezone or "UTC")).date()


def _aggregate(runtime: Runtime, aggregate_id: UUID, kind: type[Any], field_name: str) -> Any:
    """The aggregate a request names, or 422 on that field (it is the client's input)."""
    found: Any
    try:
        found = runtime.app.repository.get(aggregate_id)
    except AggregateNotFoundError:
        found = None
    if not isinstance(found, kind):
        raise InvalidInput(field_name, f"no such {field_name.removesuffix('_id')}")
    return found


def _uuid(value: Any) -> UUID | None:
    return None if value is None else UUID(str(value))


def _from_deal(runtime: Runtime, deal_id: UUID, source: _Source) -> None:
    deal: Deal = _aggregate(runtime, deal_id, Deal, "deal_id")
    source.lines = list(deal.lines)
    source.currency = deal.currency
    source.deal = {"id": str(deal.id), "title": deal.title}
    source.deal_id = deal.id
    source.company_id = source.company_id or deal.company_id
    source.contact_id = source.contact_id or deal.contact_id
    if source.contract is None:
        active, _ = contracts_page(
            runtime.views, ContractFilter(status="active", deal_id=str(deal.id)), limit=1
        )
        source.contract = active[0] if active else None


def _from_contract(runtime: Runtime, contract_id: UUID, source: _Source) -> None:
    _aggregate(runtime, contract_id, Contract, "contract_id")
    row = contract(runtime.views, contract_id)
    if row is None:  # recorded, not in the views yet: wait for them once
        runtime.wait_for_views(runtime.app.recorder.max_notification_id())
        row = contract(runtime.views, contract_id)
    if row is None:
        raise InvalidInput("contract_id", "no such contract")
    source.contract = row
    source.company_id = source.company_id or _uuid(row.company_id)
    source.contact_id = source.contact_id or _uuid(row.contact_id)


def _contract_line(row: ContractRow) -> list[DealLine]:
    """A contract without a deal prints one line: its subject at its amount."""
    amount = row.amount
    if amount is None:
        return []
    name = row.title or f"Договор № {row.number}"
    return [
        DealLine(id="contract", name=name, quantity=Decimal(1), price=amount.amount, vat="none")
    ]


def _from_order(runtime: Runtime, order_id: UUID, source: _Source) -> None:
    order: SupplierOrder = _aggregate(runtime, order_id, SupplierOrder, "supplier_order_id")
    created: Any = next(iter(runtime.app.repository.event_store.get(order_id, lte=1)))
    source.lines = lines_from_state(list(order.lines))
    source.currency = order.currency
    source.supplier_order_id = order.id
    source.company_id = order.supplier_id
    source.fixed_number = Numbered(
        created.series, created.year, created.number, created.display_number
    )
    row = supplier_order(runtime.views, order_id)
    if row is not None and row.expected_on:
        source.due_on = date.fromisoformat(row.expected_on)
    if order.deal_id is not None:
        deal: Any
        try:
            deal = runtime.app.repository.get(order.deal_id)
        except AggregateNotFoundError:
            deal = None
        if isinstance(deal, Deal):
            source.deal = {"id": str(deal.id), "title": deal.title}
            source.deal_id = deal.id


def _resolve(runtime: Runtime, request: IssueRequest, kind: DocumentKind) -> _Source:
    source = _Source(company_id=request.company_id, contact_id=request.contact_id)
    purchase = kind is DocumentKind.PURCHASE_ORDER
    if purchase != (request.supplier_order_id is not None):
        if purchase:
            raise InvalidInput(
                "supplier_order_id", "a purchase order is printed from a supplier order"
            )
        raise InvalidInput("kind", "a supplier order is printed as a purchase_order")
    if request.supplier_order_id is not None:
        _from_order(runtime, request.supplier_order_id, source)
        return source
    if request.contract_id is not None:
        _from_contract(runtime, request.contract_id, source)
    deal_id = request.deal_id or _uuid(source.contract.deal_id if source.contract else None)
    if deal_id is not None:
        _from_deal(runtime, deal_id, source)
    elif source.contract is not None:
        amount = source.contract.amount
        source.lines = _contract_line(source.contract)
        source.currency = amount.currency if amount else source.currency
    if source.company_id is None and source.contact_id is None:
        raise InvalidInput(
            "deal_id",
            "name what the document is for: a deal, a contract, a supplier order or a client",
        )
    if not source.lines and kind.value not in WITHOUT_LINES:
        raise InvalidInput(
            "deal_id",
            f"a {kind.value} needs lines: issue it from a deal with lines, a contract with an amount or a supplier order",
        )
    return source


def _check(request: IssueRequest) -> tuple[DocumentKind, str, str]:
    kind = clean_kind(request.kind)
    if request.language not in LANGUAGES:
        raise InvalidInput("language", "one of ru, en")
    notes = printable(request.notes or "", "notes").strip()
    if len(notes) > MAX_NOTES:
        raise InvalidInput("notes", f"is limited to {MAX_NOTES} characters")
    return kind, clean_series(request.series, kind), notes


def _parties(
    runtime: Runtime, request: IssueRequest, kind: DocumentKind, source: _Source
) -> tuple[UUID, dict[str, Any], dict[str, Any]]:
    """(our company's id, seller, buyer): we sell, except on a purchase order."""
    if request.seller_id is not None:
        ours = company(runtime.views, str(request.seller_id))
        if ours is None:
            raise InvalidInput("seller_id", "no such company")
    else:
        ours = own_company(runtime.views)
        if ours is None:
            raise InvalidInput("seller_id", NO_OWN_COMPANY)
    us = company_party(ours)
    client = party(
        runtime.views,
        str(source.company_id) if source.company_id else None,
        str(source.contact_id) if source.contact_id else None,
    )
    if kind is DocumentKind.PURCHASE_ORDER:
        return UUID(ours.id), client, us
    return UUID(ours.id), us, client


def file_name(kind: str, language: str, display_number: str, issued_on: date) -> str:
    """ "Счёт СЧ-15 от 07.12.2026.pdf" / "Invoice СЧ-15 2026-12-07.pdf"."""
    name = FILE_NAMES["en" if language == "en" else "ru"][kind]
    if language == "en":
        return f"{name} {display_number} {issued_on.isoformat()}.pdf"
    return f"{name} {display_number} от {issued_on:%d.%m.%Y}.pdf"


def _renderer(store: AttachmentStore, choice: TemplateChoice, facts: DocumentFacts) -> Any:
    """The callback the domain calls with the number it took."""

    def render(numbered: Numbered) -> RenderedFile:
        context = facts.context(numbered.series, numbered.number, numbered.display_number)
        try:
            html = render_html(choice.source, context)
        except TemplateError as error:
            raise InvalidInput(
                "template", f"the {facts.kind} template ({facts.language}) failed: {error}"
            ) from None
        pdf = html_to_pdf(html)
        name = file_name(facts.kind, facts.language, numbered.display_number, facts.issued_on)
        meta = store.put(pdf, name, PDF)
        if not meta.stored:
            raise InvalidInput(
                "document",
                f"the PDF ({meta.size} bytes) is larger than the attachment limit"
                f" ({store.max_bytes} bytes)",
            )
        encoded = html.encode("utf-8")
        store.put(encoded, name.removesuffix(".pdf") + ".html", HTML)
        return RenderedFile(
            file={**meta.public(), "filename": meta.filename},
            html_sha256=hashlib.sha256(encoded).hexdigest(),
        )

    return render


def issue_document(runtime: Runtime, request: IssueRequest, actor: str) -> UUID:
    """Number, render, store and record a document; answers once the views show it.

    Raises `InvalidInput` (422) for a request that cannot make a document, with the field."""
    kind, series, notes = _check(request)
    if request.document_id is not None and document(runtime.views, request.document_id):
        return request.document_id  # a retry of a document already issued
    source = _resolve(runtime, request, kind)
    seller_id, seller, buyer = _parties(runtime, request, kind, source)
    issued_on = request.issued_on or business_today(runtime)
    due_on = request.due_on
    if due_on is None and kind is DocumentKind.INVOICE:
        due_on = issued_on + timedelta(days=INVOICE_DAYS)
    if due_on is None and kind is DocumentKind.PURCHASE_ORDER:
        due_on = source.due_on
    if due_on is not None and due_on < issued_on:
        raise InvalidInput("due_on", "the due date is not before the issue date")
    priced = price_lines(runtime.views, source.lines, source.currency)
    facts = DocumentFacts(
        kind=kind.value,
        language=request.language,
        title=shipped_name(kind.value, request.language),
        issued_on=issued_on,
        due_on=due_on,
        valid_until=request.valid_until,
        notes=notes,
        seller=seller,
        buyer=buyer,
        priced=priced,
        deal=source.deal,
        contract=contract_part(source.contract),
    )
    choice = template_for(runtime.app, kind.value, request.language)
    draft = DocumentDraft(
        kind=kind,
        series=series,
        language=request.language,
        issued_on=issued_on,
        due_on=due_on,
        amount=Money(priced.total, source.currency),
        vat=Money(priced.vat, source.currency),
        personal=facts.snapshot(),
        template={"id": choice.id, "version": choice.version, "shipped": choice.shipped},
        deal_id=source.deal_id,
        contract_id=UUID(source.contract.id) if source.contract else None,
        supplier_order_id=source.supplier_order_id,
        company_id=source.company_id,
        contact_id=source.contact_id,
        seller_id=seller_id,
        fixed_number=source.fixed_number,
    )
    render = _renderer(runtime.attachment_access.store, choice, facts)
    committed = runtime.app.issue_document(draft, render, actor, document_id=request.document_id)
    runtime.wait_for_views(committed.notification_id)
    return committed.value


# -- sending ------------------------------------------------------------------------------------


def default_send_text(row: DocumentRow) -> str:
    """The message a document goes with unless the operator writes one."""
    if row.language == "en":
        return f"Hello! Please find attached {row.title or row.kind} {row.display_number}."
    return f"Добрый день! Направляем {row.title or 'документ'} № {row.display_number}."


def _has_address(runtime: Runtime, contact_id: str, channel: str) -> bool:
    kind = IDENTITY_KIND[channel]
    return any(i.kind == kind for i in identities_of(runtime.views, [contact_id])[contact_id])


def recipient(
    runtime: Runtime, row: DocumentRow, channel: str, contact_id: UUID | None = None
) -> UUID:
    """Who gets the document on `channel`: the contact named, else the document's contact,
    else the first contact of its company with an address on that channel (422 otherwise)."""
    label = IDENTITY_LABEL[IDENTITY_KIND[channel]]
    wanted = str(contact_id) if contact_id else row.contact_id
    if wanted:
        if not display_names(runtime.views, [wanted]):
            raise InvalidInput("contact_id", "no such contact")
        if not _has_address(runtime, wanted, channel):
            raise InvalidInput(
                "channel", f"the client has no {label} to send a {channel} message to"
            )
        return UUID(wanted)
    people = company_contacts(runtime.views, row.company_id) if row.company_id else []
    for person in people:
        if _has_address(runtime, person.id, channel):
            return UUID(person.id)
    raise InvalidInput(
        "channel", f"no contact of the client has a {label} to send a {channel} message to"
    )


def send_document_to_client(
    runtime: Runtime,
    document_id: UUID,
    channel: str,
    text: str,
    actor: str,
    contact_id: UUID | None = None,
    conversation_id: UUID | None = None,
    message_id: UUID | None = None,
) -> UUID:
    """Send the document's PDF as an attachment on `channel` (in `conversation_id`, else the
    client's automatic thread there); records `DocumentSent`. Returns the message's id.
    A channel that cannot carry files (SMS, WhatsApp) gets a signed link to the PDF in the
    text instead (`services/documents/links.py`).

    `channel` "" with a conversation answers on the conversation's own channel; an empty
    `text` sends `default_send_text`."""
    row = document(runtime.views, document_id)
    if row is None:
        raise NotFound("document", document_id)
    conversation = None
    if conversation_id is not None:
        conversation = _aggregate(runtime, conversation_id, Conversation, "conversation_id")
        to = conversation.contact_id
        if channel and channel not in SENDABLE_CHANNELS:
            raise InvalidInput("channel", f"one of {', '.join(SENDABLE_CHANNELS)}")
    else:
        if channel not in SENDABLE_CHANNELS:
            raise InvalidInput("channel", f"one of {', '.join(SENDABLE_CHANNELS)}")
        to = recipient(runtime, row, channel, contact_id)
    body = text.strip() or default_send_text(row)
    sent_on = channel or (conversation.channel if conversation is not None else "")
    carries_files = REPLY_CHANNEL.get(sent_on, sent_on) in FILE_CHANNELS
    if not carries_files:  # an SMS or WhatsApp message: a signed link to the PDF instead
        body = f"{body}\n{runtime.document_links.url(str(document_id))}"
    committed = runtime.app.send_document(
        document_id,
        to,
        channel,
        body,
        actor,
        conversation_id=conversation_id,
        message_id=message_id,
        attach=carries_files,
    )
    runtime.wait_for_views(committed.notification_id)
    return committed.value


# -- the stored files ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredFile:
    path: Path
    filename: str
    content_type: str
    sha256: str
    size: int


def document_file(runtime: Runtime, document_id: UUID | str) -> StoredFile:
    """The document's PDF as stored when it was issued (byte for byte); `NotFound` if none."""
    row = document(runtime.views, document_id)
    if row is None:
        raise NotFound("document", document_id)
    path = runtime.attachment_access.store.locate(row.file)
    if path is None:
        raise NotFound("document file", document_id)
    return StoredFile(
        path=path,
        filename=str(row.file.get("filename") or f"{row.display_number}.pdf"),
        content_type=PDF,
        sha256=row.file_sha256,
        size=int(row.file.get("size") or 0),
    )


def document_html(runtime: Runtime, document_id: UUID | str) -> StoredFile:
    """The HTML the PDF was made from (kept by hash beside it); `NotFound` if not kept."""
    row = document(runtime.views, document_id)
    if row is None:
        raise NotFound("document", document_id)
    store = runtime.attachment_access.store
    try:
        path = store.path_for(row.html_sha256)
    except ValueError:
        raise NotFound("document html", document_id) from None
    if not path.is_file():
        raise NotFound("document html", document_id)
    name = str(row.file.get("filename") or row.display_number).removesuffix(".pdf") + ".html"
    return StoredFile(path, name, HTML, row.html_sha256, path.stat().st_size)


def reply_attachments(
    runtime: Runtime, uploads: list[dict[str, Any]], document_ids: list[UUID]
) -> list[dict[str, Any]]:
    """The files a reply carries, as `reply(attachments=...)` takes them: uploaded files
    (each must be in the store: 422 naming it otherwise), then issued documents' PDFs."""
    store = runtime.attachment_access.store
    files: list[dict[str, Any]] = []
    for index, upload in enumerate(uploads):
        digest = str(upload.get("sha256") or "")
        try:
            path = store.path_for(digest)
        except ValueError:
            raise InvalidInput(f"attachments.{index}.sha256", "not a SHA-256") from None
        if not path.is_file():
            raise InvalidInput(
                f"attachments.{index}.sha256",
                "no such uploaded file: upload it with POST /api/attachments first",
            )
        name = str(upload.get("filename") or "attachment").replace("/", "_").replace("\\", "_")
        name = printable(name, f"attachments.{index}.filename")[:255]
        content_type = str(upload.get("content_type") or "")
        content_type = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        files.append(
            {
                "filename": name,
                "content_type": content_type[:255],
                "size": path.stat().st_size,
                "sha256": digest,
                "stored": True,
                "over_limit": False,
            }
        )
    for index, document_id in enumerate(document_ids):
        row = document(runtime.views, document_id)
        if row is None:
            raise InvalidInput(f"document_ids.{index}", "no such document")
        if row.status != "issued":
            raise InvalidInput(f"document_ids.{index}", f"document {row.display_number} is voided")
        if store.locate(row.file) is None:
            raise InvalidInput(f"document_ids.{index}", "the document's file is not stored")
        files.append(dict(row.file))
    return files
