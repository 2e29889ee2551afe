"""Document commands: issue a numbered document, send it to the client, void it.

Rendering needs the number and the number must not be taken unless the document is
recorded, so `issue_document` takes the number from the series and calls `render` with it
inside one unit of work: the file is stored (by hash) and `DocumentIssued` recorded
together with the series' `NumberTaken`, or neither is. If another process took the
number first, the writer runs the command again and it renders with the next number, so
numbers have no gaps and no repeats.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID, uuid4

from threadline.domain.commands.base import Commands, required_text
from threadline.domain.commands.campaigns import automatic_conversation
from threadline.domain.commands.conversations import MAX_REPLY, split_attachments
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.contact import Contact, survivor
from threadline.domain.model.conversation import Conversation, ConversationStatus
from threadline.domain.model.document import (
    Document,
    DocumentKind,
    DocumentSeries,
    DocumentStatus,
    display_number,
    series_id,
)
from threadline.domain.model.errors import Conflict, InvalidInput
from threadline.domain.model.message import Message
from threadline.domain.model.money import Money


@dataclass(frozen=True)
class DocumentDraft:
    """Everything a document says except its number, which the series gives."""

    kind: DocumentKind
    series: str
    language: str
    issued_on: date
    due_on: date | None
    amount: Money
    vat: Money
    personal: dict[str, Any]
    template: dict[str, Any]
    deal_id: UUID | None = None
    contract_id: UUID | None = None
    supplier_order_id: UUID | None = None
    company_id: UUID | None = None
    contact_id: UUID | None = None
    seller_id: UUID | None = None
    fixed_number: Numbered | None = None
    """A purchase order is printed under its order's number, not a new one."""


@dataclass(frozen=True)
class Numbered:
    """The number a document is about to be issued under (what `render` prints)."""

    series: str
    year: int
    number: int
    display_number: str


@dataclass(frozen=True)
class RenderedFile:
    """The stored PDF (`AttachmentMeta.public()` form) and the hash of its HTML."""

    file: dict[str, Any]
    html_sha256: str
    extra: dict[str, Any] = field(default_factory=dict)


def take_number(unit: UnitOfWork, series: str, year: int, document_id: UUID) -> Numbered:
    """The next number of `series` in `year`, recorded in `unit` for `document_id`."""
    counter_id = series_id(series, year)
    counter = unit.find(counter_id, DocumentSeries)
    if counter is None:
        counter = unit.add(DocumentSeries(id=counter_id, series=series, year=year))
    number = counter.take_next(document_id)
    return Numbered(series, year, number, display_number(series, number))


class DocumentCommands(Commands):
    def issue_document(
        self,
        draft: DocumentDraft,
        render: Callable[[Numbered], RenderedFile],
        actor: str,
        document_id: UUID | None = None,
    ) -> Committed[UUID]:
        """Number, render and record a document; the same `document_id` again is one document."""
        new_id = document_id or uuid4()
        correlation_id = str(new_id)
        if draft.due_on is not None and draft.due_on < draft.issued_on:
            raise InvalidInput("due_on", "the due date is not before the issue date")

        def command(unit: UnitOfWork) -> UUID:
            if unit.exists(new_id):
                return new_id
            numbered = draft.fixed_number or take_number(
                unit, draft.series, draft.issued_on.year, new_id
            )
            rendered = render(numbered)
            unit.add(
                Document(
                    id=new_id,
                    kind=draft.kind.value,
                    series=draft.series,
                    year=numbered.year,
                    number=numbered.number,
                    display_number=numbered.display_number,
                    language=draft.language,
                    issued_on=draft.issued_on.isoformat(),
                    due_on=draft.due_on.isoformat() if draft.due_on else None,
                    deal_id=draft.deal_id,
                    contract_id=draft.contract_id,
                    supplier_order_id=draft.supplier_order_id,
                    company_id=draft.company_id,
                    contact_id=draft.contact_id,
                    seller_id=draft.seller_id,
                    amount=draft.amount.rounded().state(),
                    vat=draft.vat.rounded().state(),
                    template=dict(draft.template),
                    file=dict(rendered.file),
                    html_sha256=rendered.html_sha256,
                    personal={**draft.personal, **rendered.extra},
                    actor=actor,
                    correlation_id=correlation_id,
                )
            )
            return new_id

        return self.writer.submit(command)

    def void_document(self, document_id: UUID, reason: str, actor: str) -> Committed[None]:
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> None:
            unit.get(document_id, Document).void(reason, actor, correlation_id)

        return self.writer.submit(command)

    def send_document(
        self,
        document_id: UUID,
        contact_id: UUID,
        channel: str,
        text: str,
        actor: str,
        conversation_id: UUID | None = None,
        message_id: UUID | None = None,
        attach: bool = True,
    ) -> Committed[UUID]:
        """A reply carrying the document's file, in `conversation_id` or the contact's
        automatic thread on `channel`; recorded with `DocumentSent` in one unit. `attach`
        False: the text carries a link to the file instead (a channel without files)."""
        required_text("text", text, MAX_REPLY)
        new_id = message_id or uuid4()

        def command(unit: UnitOfWork) -> UUID:
            if unit.exists(new_id):
                return new_id
            document = unit.get(document_id, Document)
            request_document_send(
                unit, document, contact_id, channel, text, conversation_id, new_id, actor, attach
            )
            return new_id

        return self.writer.submit(command)


def request_document_send(
    unit: UnitOfWork,
    document: Document,
    contact_id: UUID,
    channel: str,
    text: str,
    conversation_id: UUID | None,
    message_id: UUID,
    actor: str,
    attach: bool = True,
) -> Conversation:
    """Record a reply carrying `document`'s file (unless `attach` is False: the text then
    links to it) and `DocumentSent`, in `unit`."""
    correlation_id = str(message_id)
    if document.status == DocumentStatus.VOIDED.value:
        raise Conflict(f"document {document.display_number} is voided")
    if not document.file.get("stored"):
        raise Conflict(f"document {document.display_number} has no stored file")
    files, names = split_attachments([document.file] if attach else [])
    if conversation_id is not None:
        conversation = unit.get(conversation_id, Conversation)
    else:
        contact = survivor(unit.get(contact_id, Contact), lambda i: unit.get(i, Contact))
        conversation = automatic_conversation(unit, contact, channel, actor, correlation_id)
    channel = channel or conversation.channel
    unit.add(
        Message.request_send(
            id=message_id,
            conversation_id=conversation.id,
            contact_id=conversation.contact_id,
            channel=channel,
            personal={"text": text, "html": "", "attachment_names": names},
            attachments=files,
            actor=actor,
            correlation_id=correlation_id,
        )
    )
    if conversation.status == ConversationStatus.OPEN.value:
        conversation.change_status(ConversationStatus.PENDING.value, None, actor, correlation_id)
    document.mark_sent(
        message_id, conversation.id, channel, conversation.contact_id, actor, correlation_id
    )
    return conversation
