"""Documents: issue one from a deal, a contract or a supplier order, list them, download the
stored PDF, void, send to the client; and uploads for replies (`POST /api/attachments`).

Issuing answers once the document is in the views, with its number, totals and the stored
file (`services.documents.issuing` does the work). The PDF served is the stored file itself,
byte for byte, its `ETag` the SHA-256 that `DocumentIssued` recorded in the log, so an
auditor can compare a download with the log. Every user who may read the app may read its
documents, as with conversations and deals (there is no per-record visibility); writes need
a writer role.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, File, Header, Path, Query, Request, UploadFile, status
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from threadline.domain.model.document import DocumentKind
from threadline.domain.model.errors import NotFound
from threadline.projections.documents import (
    DocumentFilter,
    DocumentRow,
    document,
    documents_page,
)
from threadline.services.api.deal_schemas import MoneyOut
from threadline.services.api.deps import PrincipalDep, RuntimeDep, WriterDep
from threadline.services.api.errors import error_response
from threadline.services.api.schemas import Offset
from threadline.services.documents.issuing import (
    IssueRequest,
    StoredFile,
    business_today,
    document_file,
    document_html,
    issue_document,
    send_document_to_client,
)
from threadline.services.runtime import Runtime

router = APIRouter(prefix="/api", tags=["documents"])

Kind = DocumentKind  # an enum: OpenAPI lists the kinds
Day = Annotated[date, Field(ge=date(1990, 1, 1), le=date(2999, 12, 31), description="YYYY-MM-DD")]
UPLOAD_CHUNK = 1 << 20
MULTIPART_OVERHEAD = 64 * 1024
"""Room for the multipart headers around a file as large as the store takes."""


def upload_limit(runtime: Runtime) -> int:
    """The body limit of `POST /api/attachments`: the store's file limit plus the form's
    own bytes (never below the limit of every other body)."""
    settings = runtime.settings  # all there is when the app is built for its OpenAPI only
    return max(settings.max_body_bytes, settings.max_attachment_bytes + MULTIPART_OVERHEAD)


class DocumentIn(BaseModel):
    """Name one source: `deal_id`, `contract_id`, `supplier_order_id` (kind
    `purchase_order`), or a client (`company_id` / `contact_id`) for a contract without
    lines. Left out: today, the kind's series, an invoice due in 5 days, our company
    (the company with the role `own`) as the seller."""

    model_config = ConfigDict(extra="forbid")
    kind: Kind
    deal_id: UUID | None = None
    contract_id: UUID | None = None
    supplier_order_id: UUID | None = None
    company_id: UUID | None = None
    contact_id: UUID | None = None
    language: Literal["ru", "en"] = "ru"
    series: str | None = Field(None, max_length=20, description='e.g. "СЧ"; "" for none')
    issued_on: Day | None = None
    due_on: Day | None = None
    valid_until: Day | None = Field(None, description="proposals: valid until")
    notes: str = Field("", max_length=2000)
    seller_id: UUID | None = Field(None, description="default: the company with the role own")
    client_document_id: UUID | None = Field(
        None, description="idempotency key: the same id twice issues one document"
    )


class FileOut(BaseModel):
    filename: str
    size: int
    sha256: str
    url: str


class DocumentOut(BaseModel):
    id: str
    kind: str
    title: str
    language: str
    series: str
    year: int
    number: int
    display_number: str
    issued_on: str
    due_on: str | None
    total: MoneyOut
    vat: MoneyOut
    paid: MoneyOut
    outstanding: MoneyOut
    payment_state: str
    days_overdue: int
    status: str
    void_reason: str | None
    file: FileOut
    html_sha256: str
    deal_id: str | None
    contract_id: str | None
    supplier_order_id: str | None
    company_id: str | None
    contact_id: str | None
    seller_id: str | None
    sent_count: int
    last_sent_at: str | None
    template: dict[str, Any]
    created_at: str
    created_by: str


class DocumentListOut(BaseModel):
    items: list[DocumentOut]
    total: int


class VoidIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(..., min_length=1, max_length=500)


class SendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: Literal["email", "sms", "telegram", "whatsapp"] | None = Field(
        None, description="default: the conversation's channel, else email"
    )
    text: str = Field("", max_length=100_000, description='"" for the default covering text')
    contact_id: UUID | None = Field(
        None, description="default: the document's contact, else the first of its company "
        "with an address on the channel"
    )  # fmt: skip
    conversation_id: UUID | None = None
    client_message_id: UUID | None = None


class SentOut(BaseModel):
    message_id: UUID


class UploadOut(BaseModel):
    sha256: str
    filename: str
    content_type: str
    size: int


def money(minor: int, currency: str) -> MoneyOut:
    return MoneyOut.of_minor(minor, currency)


def document_out(row: DocumentRow, today: date) -> DocumentOut:
    c = row.currency
    return DocumentOut(
        id=row.id,
        kind=row.kind,
        title=row.title,
        language=row.language,
        series=row.series,
        year=row.year,
        number=row.number,
        display_number=row.display_number,
        issued_on=row.issued_on,
        due_on=row.due_on,
        total=money(row.total_minor, c),
        vat=money(row.vat_minor, c),
        paid=money(row.paid_minor, c),
        outstanding=money(row.outstanding.minor, c),
        payment_state=row.payment_state,
        days_overdue=row.days_overdue(today),
        status=row.status,
        void_reason=row.void_reason,
        file=FileOut(
            filename=str(row.file.get("filename") or ""),
            size=int(row.file.get("size") or 0),
            sha256=row.file_sha256,
            url=f"/api/documents/{row.id}/file",
        ),
        html_sha256=row.html_sha256,
        deal_id=row.deal_id,
        contract_id=row.contract_id,
        supplier_order_id=row.supplier_order_id,
        company_id=row.company_id,
        contact_id=row.contact_id,
        seller_id=row.seller_id,
        sent_count=row.sent_count,
        last_sent_at=row.last_sent_at,
        template=row.template,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def document_detail(runtime: Runtime, document_id: UUID | str) -> DocumentOut:
    row = document(runtime.views, document_id)
    if row is None:
        raise NotFound("document", str(document_id))
    return document_out(row, business_today(runtime))


@router.post("/documents", response_model=DocumentOut, status_code=status.HTTP_201_CREATED)
def post_document(body: DocumentIn, runtime: RuntimeDep, principal: WriterDep) -> DocumentOut:
    """Issue a document: numbered in its series and year without gaps, rendered from the
    template in force, its PDF stored and its SHA-256 recorded in the log."""
    request = IssueRequest(
        kind=body.kind,
        deal_id=body.deal_id,
        contract_id=body.contract_id,
        supplier_order_id=body.supplier_order_id,
        company_id=body.company_id,
        contact_id=body.contact_id,
        language=body.language,
        series=body.series,
        issued_on=body.issued_on,
        due_on=body.due_on,
        valid_until=body.valid_until,
        notes=body.notes,
        seller_id=body.seller_id,
        document_id=body.client_document_id,
    )
    document_id = issue_document(runtime, request, principal.actor)
    return document_detail(runtime, document_id)


@router.get("/documents", response_model=DocumentListOut)
def list_documents(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    kind: Kind | None = None,
    status_: Annotated[Literal["issued", "voided"] | None, Query(alias="status")] = None,
    payment_state: Literal["unpaid", "partly_paid", "paid", "overdue"] | None = None,
    deal_id: UUID | None = None,
    company_id: UUID | None = None,
    contact_id: UUID | None = None,
    supplier_order_id: UUID | None = None,
    q: Annotated[str | None, Query(max_length=100, description="the number: СЧ-15 or 15")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> DocumentListOut:
    """Documents, newest first, and how many match."""
    today = business_today(runtime)
    flt = DocumentFilter(
        kind=kind,
        status=status_,
        payment_state=payment_state,
        deal_id=str(deal_id) if deal_id else None,
        company_id=str(company_id) if company_id else None,
        contact_id=str(contact_id) if contact_id else None,
        supplier_order_id=str(supplier_order_id) if supplier_order_id else None,
        q=q,
        today=today,
    )
    rows, total = documents_page(runtime.views, flt, limit, offset)
    return DocumentListOut(items=[document_out(r, today) for r in rows], total=total)


@router.get("/documents/{document_id}", response_model=DocumentOut)
def get_document(document_id: UUID, runtime: RuntimeDep, principal: PrincipalDep) -> DocumentOut:
    return document_detail(runtime, document_id)


def _stored_response(found: StoredFile, if_none_match: str | None, inline: bool) -> Response:
    etag = f'"{found.sha256}"'
    headers = {
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, max-age=3600",
        "Referrer-Policy": "no-referrer",
    }
    if if_none_match and etag in [tag.strip() for tag in if_none_match.split(",")]:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return FileResponse(
        found.path,
        media_type=found.content_type,
        filename=found.filename,
        content_disposition_type="inline" if inline else "attachment",
        headers=headers,
    )


@router.get(
    "/documents/{document_id}/file",
    response_class=Response,
    responses={
        200: {
            "description": "The stored PDF, byte for byte; `ETag` is its SHA-256 as the log "
            "recorded it.",
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        },
        304: {"description": "`If-None-Match` names the file's ETag"},
    },
)  # fmt: skip
def get_document_file(
    document_id: UUID,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The document's PDF as a download."""
    return _stored_response(document_file(runtime, document_id), if_none_match, inline=False)


public_router = APIRouter(tags=["documents"])


@public_router.get(
    "/d/{token}",
    response_class=Response,
    responses={
        200: {
            "description": "The stored PDF of the document the signed link names.",
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        },
        404: {"description": "not a genuine link"},
        410: {"description": "the document was voided"},
    },
)  # fmt: skip
def get_linked_document(
    token: Annotated[str, Path(max_length=200)],
    runtime: RuntimeDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """A document sent where a file cannot go (an SMS): the link in the text, signed for this
    document alone (`services/documents/links.py`), serves its PDF without a login."""
    document_id = runtime.document_links.verify(token)
    row = None if document_id is None else document(runtime.views, document_id)
    if row is None:
        return error_response(404, "no such document")
    if row.status == "voided":
        return error_response(410, "this document was voided; ask the sender for the new one")
    return _stored_response(document_file(runtime, row.id), if_none_match, inline=True)


@router.get(
    "/documents/{document_id}/html",
    response_class=Response,
    responses={
        200: {
            "description": "The HTML the PDF was made from, as stored then (not re-rendered).",
            "content": {"text/html": {"schema": {"type": "string"}}},
        }
    },
)
def get_document_html(
    document_id: UUID,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The stored HTML, shown in a sandbox that runs nothing and fetches nothing."""
    response = _stored_response(document_html(runtime, document_id), if_none_match, inline=True)
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
    )
    return response


@router.post("/documents/{document_id}/void", response_model=DocumentOut)
def void_document(
    document_id: UUID, body: VoidIn, runtime: RuntimeDep, principal: WriterDep
) -> DocumentOut:
    """Void a wrong document (409 when it already is); its number stays used."""
    committed = runtime.app.void_document(document_id, body.reason, principal.actor)
    runtime.wait_for_views(committed.notification_id)
    return document_detail(runtime, document_id)


@router.post(
    "/documents/{document_id}/send", response_model=SentOut, status_code=status.HTTP_201_CREATED
)
def send_document(
    document_id: UUID, body: SendIn, runtime: RuntimeDep, principal: WriterDep
) -> SentOut:
    """Send the PDF to the client as an attachment on `channel` (in `conversation_id`, else
    the client's automatic thread there). 422 when the client has no address on it."""
    message_id = send_document_to_client(
        runtime,
        document_id,
        body.channel or ("" if body.conversation_id else "email"),
        body.text,
        principal.actor,
        contact_id=body.contact_id,
        conversation_id=body.conversation_id,
        message_id=body.client_message_id,
    )
    return SentOut(message_id=message_id)


# -- uploads for replies --------------------------------------------------------------------


@router.post(
    "/attachments",
    response_model=UploadOut,
    status_code=status.HTTP_201_CREATED,
    responses={413: {"description": "the file is larger than the attachment limit"}},
)
async def upload_attachment(
    request: Request,
    runtime: RuntimeDep,
    principal: WriterDep,
    file: Annotated[UploadFile, File(description="the file, as multipart/form-data")],
) -> Response | UploadOut:
    """Store a file for a reply; then name it by `sha256` in `POST
    /api/conversations/{id}/messages` `attachments`."""
    store = runtime.attachment_access.store
    parts: list[bytes] = []
    size = 0
    while chunk := await file.read(UPLOAD_CHUNK):
        size += len(chunk)
        if size > store.max_bytes:
            return error_response(
                413, f"the file is larger than the attachment limit of {store.max_bytes} bytes"
            )
        parts.append(chunk)
    meta = await run_in_threadpool(
        store.put, b"".join(parts), file.filename or "attachment", file.content_type or ""
    )
    return UploadOut(
        sha256=meta.sha256, filename=meta.filename, content_type=meta.content_type, size=meta.size
    )
