"""The deal page's "Documents" section: generate, download, send and void documents, register
a contract, create supplier orders; and `/documents/{id}/file`, the PDF as it was stored.

Every form posts, then redirects back (they work without JavaScript); a refusal shows the
deal's page again with the message next to its form and the API's status code (422 with the
field for bad input, 409 for a conflict), never a 500. Generating and sending go through the
documents service (`services/documents/issuing.py`), which the API uses too, so a document
made here is numbered, rendered and stored exactly like one made through `POST /api/documents`.

The section reloads on its own (`GET /deals/{id}/money`) when the log moves on, so a payment
imported elsewhere shows up on an open deal page.

Who may do what follows the deal page: anyone logged in sees and downloads (every user may
read every deal and conversation, see `services/attachment_access.py`), an auditor changes
nothing; someone not logged in is sent to the login page, and a document that does not
exist is a 404.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.datastructures import FormData

from threadline.domain.model.errors import InvalidInput, NotFound
from threadline.domain.model.money import Money
from threadline.projections.deals import DealRow
from threadline.projections.documents import DocumentRow, document
from threadline.services.attachment_access import POLICY
from threadline.services.documents.issuing import (
    IssueRequest,
    document_file,
    issue_document,
    send_document_to_client,
)
from threadline.services.web.deal_money import CLIENT_KINDS, LANGUAGES, deal_money, local_today
from threadline.services.web.deal_views import known_deal, not_found
from threadline.services.web.deps import WebUser, WebUserDep, WebWriterDep
from threadline.services.web.errors import message_of, status_of
from threadline.services.web.posted_forms import (
    COMMAND_ERRORS,
    FormDep,
    field,
    local_url,
    parse_id,
    redirect,
)
from threadline.services.web.routes_deal_page import render_deal

router = APIRouter(include_in_schema=False)


def posted_date(form: FormData, name: str, required: bool = False) -> date | None:
    """A date field (the browser's YYYY-MM-DD); empty is None unless required."""
    text = field(form, name)
    if not text:
        if required:
            raise InvalidInput(name, "a date is needed")
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise InvalidInput(name, "not a date (YYYY-MM-DD)") from None


def posted_amount(form: FormData, name: str, currency: str) -> Money | None:
    """An amount as people type it ("57 902,14" or "57902.14"); empty is None."""
    text = field(form, name).replace("\u00a0", "").replace(" ", "").replace(",", ".")
    if not text:
        return None
    if len(text) > 30:
        raise InvalidInput(name, "not an amount")
    return Money.of(text, currency, name)


def money_fragment(user: WebUser, found: DealRow) -> HTMLResponse:
    return user.render(
        "deals/deal_documents.html",
        deal=found,
        money=deal_money(user, found),
        errors={},
        draft={},
    )


@router.get("/deals/{deal_id}/money", response_model=None)
def deal_money_fragment(deal_id: str, user: WebUserDep) -> Response:
    """The section alone: what the page reloads when the log moves on."""
    found = known_deal(user, deal_id)
    if found is None:
        return not_found(user)
    return money_fragment(user, found)


def back_to_deal(deal_id: str, flash: str) -> Response:
    return redirect(f"/deals/{deal_id}", flash)


@router.post("/deals/{deal_id}/documents", response_model=None)
def generate(deal_id: str, user: WebWriterDep, form: FormDep) -> Response:
    """Issue a document of the deal: numbered, rendered to PDF and stored, then listed."""
    found = known_deal(user, deal_id)
    if found is None:
        return not_found(user)
    draft = {k: field(form, k) for k in ("kind", "language", "due_on", "notes")}
    try:
        if draft["kind"] not in CLIENT_KINDS:
            raise InvalidInput("kind", "choose the kind of document")
        if draft["language"] not in LANGUAGES:
            raise InvalidInput("language", "choose Russian or English")
        if len(draft["notes"]) > 2000:
            raise InvalidInput("notes", "at most 2000 characters")
        due_on = posted_date(form, "due_on")
        request = IssueRequest(
            kind=draft["kind"],
            deal_id=UUID(found.id),
            language=draft["language"],
            issued_on=local_today(user),
            due_on=due_on if draft["kind"] == "invoice" else None,
            notes=draft["notes"],
        )
        issue_document(user.runtime, request, user.actor)
        user.runtime.wait_for_views(user.runtime.app.recorder.max_notification_id())
    except COMMAND_ERRORS as error:
        message = message_of(user, error)
        errors = {"generate": message}
        if isinstance(error, InvalidInput) and error.field in ("due_on", "seller_id"):
            # the field's own place: the date input, or the link to set up our company
            errors["own_company" if error.field == "seller_id" else "due_on"] = message
        return render_deal(user, found.id, status_of(error), errors, draft={"documents": draft})
    return back_to_deal(found.id, "document")


@router.post("/deals/{deal_id}/contracts", response_model=None)
def register(deal_id: str, user: WebWriterDep, form: FormDep) -> Response:
    """A contract of the deal (its client is taken from the deal)."""
    found = known_deal(user, deal_id)
    if found is None:
        return not_found(user)
    keys = ("number", "signed_on", "starts_on", "ends_on", "amount", "title")
    draft = {k: field(form, k) for k in keys}
    try:
        signed_on = posted_date(form, "signed_on", required=True)
        assert signed_on is not None
        committed = user.runtime.app.register_contract(
            draft["number"],
            signed_on,
            user.actor,
            starts_on=posted_date(form, "starts_on"),
            ends_on=posted_date(form, "ends_on"),
            amount=posted_amount(form, "amount", found.currency),
            deal_id=UUID(found.id),
            title=draft["title"],
        )
    except COMMAND_ERRORS as error:
        return render_deal(
            user,
            found.id,
            status_of(error),
            {"contract": message_of(user, error)},
            draft={"contract": draft},
        )
    user.runtime.wait_for_views(committed.notification_id)
    return back_to_deal(found.id, "contract")


@router.post("/deals/{deal_id}/supplier-orders", response_model=None)
def order_from_suppliers(deal_id: str, user: WebWriterDep, form: FormDep) -> Response:
    """One purchase order per supplier of the won deal's products (again: nothing new)."""
    found = known_deal(user, deal_id)
    if found is None:
        return not_found(user)
    try:
        committed = user.runtime.app.create_supplier_orders(
            UUID(found.id), user.actor, local_today(user)
        )
        made = committed.value
    except COMMAND_ERRORS as error:
        return render_deal(
            user, found.id, status_of(error), {"supplier_orders": message_of(user, error)}
        )
    user.runtime.wait_for_views(committed.notification_id)
    return back_to_deal(found.id, "orders" if made.order_ids else "no_orders")


def known_document(user: WebUser, document_id: str) -> DocumentRow | None:
    known = parse_id(document_id)
    return document(user.runtime.views, known) if known else None


def missing_document(user: WebUser) -> HTMLResponse:
    text = user._("This document does not exist.")
    return user.render("error.html", status_code=404, title="404", message=text)


@router.get("/documents/{document_id}/file", response_model=None)
def download(document_id: str, user: WebUserDep) -> Response:
    """The PDF byte for byte as it was issued (its SHA-256 is in the log), as a download."""
    found = known_document(user, document_id)
    if found is None:
        return missing_document(user)
    try:
        stored = document_file(user.runtime, found.id)
    except NotFound:
        return missing_document(user)
    return FileResponse(
        stored.path,
        media_type=stored.content_type,
        filename=stored.filename,
        content_disposition_type="attachment",
        headers={
            "ETag": f'"{stored.sha256}"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": POLICY,
            "Cache-Control": "private, max-age=3600",
            "Referrer-Policy": "no-referrer",
        },
    )


def document_refused(
    user: WebUser, found: DocumentRow, error: Exception, draft: dict[str, Any] | None = None
) -> Response:
    """The deal's page with the message at the document's row; a document of no deal: a page."""
    message = message_of(user, error)
    if found.deal_id:
        return render_deal(
            user, found.deal_id, status_of(error), {f"document:{found.id}": message}, draft=draft
        )
    code = status_of(error)
    return user.render("error.html", status_code=code, title=str(code), message=message)


def back_from(form: FormData, found: DocumentRow, flash: str) -> Response:
    default = f"/deals/{found.deal_id}" if found.deal_id else "/supplier-orders"
    return redirect(local_url(field(form, "next"), default), flash)


@router.post("/documents/{document_id}/void", response_model=None)
def void(document_id: str, user: WebWriterDep, form: FormDep) -> Response:
    found = known_document(user, document_id)
    if found is None:
        return missing_document(user)
    try:
        reason = field(form, "reason")
        if not reason:
            raise InvalidInput("reason", "say why the document is voided")
        committed = user.runtime.app.void_document(UUID(found.id), reason[:500], user.actor)
    except COMMAND_ERRORS as error:
        return document_refused(user, found, error)
    user.runtime.wait_for_views(committed.notification_id)
    return back_from(form, found, "voided")


def posted_recipient(form: FormData) -> tuple[str, UUID | None]:
    """The send form's choice, "<channel>:<contact id>" (or a bare channel)."""
    channel, _, person = field(form, "to").partition(":")
    if not channel:
        raise InvalidInput("to", "choose how to send the document")
    contact = parse_id(person) if person else None
    if person and contact is None:
        raise InvalidInput("to", "no such client")
    return channel, UUID(contact) if contact else None


@router.post("/documents/{document_id}/send", response_model=None)
def send(document_id: str, user: WebWriterDep, form: FormDep) -> Response:
    """Send the PDF to the client on the chosen channel, as an attachment to a message."""
    found = known_document(user, document_id)
    if found is None:
        return missing_document(user)
    try:
        channel, contact_id = posted_recipient(form)
        text = field(form, "text")
        if len(text) > 5000:
            raise InvalidInput("text", "at most 5000 characters")
        send_document_to_client(
            user.runtime, UUID(found.id), channel, text, user.actor, contact_id=contact_id
        )
        user.runtime.wait_for_views(user.runtime.app.recorder.max_notification_id())
    except COMMAND_ERRORS as error:
        return document_refused(user, found, error)
    return back_from(form, found, "sent")
