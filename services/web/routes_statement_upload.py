"""Uploading a bank statement (1C `kl_to_1c.txt`) or a CSV: a preview first, then the import.

`POST /payments/import` reads the whole file and shows what importing it would do, line by
line (the day, the payer or payee, the amount, the purpose and the outcome: matched to an
invoice, partly paid with the rest due, a suggested near miss and why, unmatched, already
recorded, or an outgoing payment linked to its supplier order), with totals per outcome and
the reader's warnings. Nothing is recorded by the preview.

The uploaded bytes are kept in the attachment store (content-addressed), and the preview's
"Record N payments" form carries only their SHA-256; `POST /payments/import/apply` reads the
bytes back by that hash and imports them (`apply_import` plans again: the views may have
changed since the preview, and a plan sent by the browser is never trusted). A hash that is
not in the store is a clear 422 ("upload the file again"), never a 500. A broken file shows
its error with the line at fault and records nothing (the import reads the whole file before
recording); a file over the size limit is refused with 413 before it is read.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from threadline.domain.model.errors import InvalidInput
from threadline.services.payments.statement_import import (
    ALREADY_RECORDED,
    MAX_FILE_BYTES,
    ImportFileError,
    ImportPlan,
    apply_import,
    preview_import,
)
from threadline.services.runtime import Runtime
from threadline.services.web.deps import WebUser, WebWriterDep
from threadline.services.web.errors import message_of, status_of
from threadline.services.web.posted_forms import COMMAND_ERRORS, FormDep, field

router = APIRouter(include_in_schema=False)

SHOWN_LINES = 1000
"""Lines the preview lists (a 10,000-document statement: the totals count every line)."""
STATEMENT_TYPE = "text/plain"
FORM_OVERHEAD = 64 * 1024
"""What a multipart body carries besides the file (boundaries, the CSRF field)."""
OUTCOME_ORDER = (
    "matched",
    "partial",
    "overpaid",
    "suggested",
    "unmatched",
    "outgoing_linked",
    ALREADY_RECORDED,
)
OUTCOME_LABELS = {
    "matched": "Matched",
    "partial": "Partly paid (the rest stays due)",
    "overpaid": "Paid, with money left over",
    "suggested": "Suggested (waits for a person)",
    "unmatched": "Unmatched",
    "outgoing_linked": "Outgoing, linked to a supplier order",
    ALREADY_RECORDED: "Already recorded",
}
FORMAT_LABELS = {"1c": "1C client-bank exchange", "csv": "CSV"}


def file_limit(runtime: Runtime) -> int:
    """The largest file taken: the import's own limit, or the store's when it is smaller
    (the bytes must be kept between the preview and the import)."""
    # the settings the store is made from: `create_app` may run with the settings alone
    return min(MAX_FILE_BYTES, runtime.settings.max_attachment_bytes)


def body_limit(runtime: Runtime) -> int:
    """The body limit of `POST /payments/import` (the API app's `BodySizeLimit` gives this
    path its own), never below every other body's limit. It is twice the file's limit: a
    file somewhat over the limit reaches this page, which says so in the person's language
    (the middleware's own 413 is a line of JSON)."""
    return max(runtime.settings.max_body_bytes, 2 * file_limit(runtime) + FORM_OVERHEAD)


def upload_limit(user: WebUser) -> int:
    return file_limit(user.runtime)


def render_form(
    user: WebUser, status_code: int = 200, error: str = "", filename: str = ""
) -> HTMLResponse:
    return user.render(
        "statement_upload.html",
        status_code=status_code,
        error=error,
        filename=filename,
        limit_mb=upload_limit(user) // 2**20,
        plan=None,
        result=None,
    )


@router.get("/payments/import")
def upload_form(user: WebWriterDep) -> HTMLResponse:
    return render_form(user)


def too_large(user: WebUser, filename: str = "") -> HTMLResponse:
    message = user._(
        "The file is larger than %(size)s MB; split the statement into shorter periods."
    ) % {"size": upload_limit(user) // 2**20}
    return render_form(user, 413, message, filename)


def refused(user: WebUser, error: Exception, filename: str) -> HTMLResponse:
    """A broken file: its error with the line at fault, and that nothing was recorded."""
    if isinstance(error, ImportFileError):
        reason = user._(error.reason)
        text = (
            user._("Line %(line)s: %(reason)s") % {"line": error.line, "reason": reason}
            if error.line
            else reason
        )
    else:
        text = message_of(user, error)
    message = f"{text} — {user._('Nothing was recorded; fix the file and upload it again.')}"
    return render_form(user, status_of(error), message, filename)


@router.post("/payments/import", response_model=None)
async def preview(request: Request, user: WebWriterDep, form: FormDep) -> Response:
    """Read the file, keep its bytes, and show what importing it would do."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > upload_limit(user) + FORM_OVERHEAD:
        return too_large(user)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return render_form(user, 422, user._("Choose a statement file to upload."))
    filename = upload.filename[:255]
    data = await upload.read(upload_limit(user) + 1)
    if len(data) > upload_limit(user):
        return too_large(user, filename)
    try:
        # off the event loop: a 10,000-document statement takes a second to read and plan
        plan = await run_in_threadpool(preview_import, user.runtime, data, filename)
    except COMMAND_ERRORS as error:
        return refused(user, error, filename)
    store = user.runtime.attachment_access.store
    stored = await run_in_threadpool(store.put, data, filename, STATEMENT_TYPE)
    if not stored.stored:
        return too_large(user, filename)
    return render_plan(user, plan, filename)


def render_plan(user: WebUser, plan: ImportPlan, filename: str) -> HTMLResponse:
    counts = {k: plan.counts.get(k, 0) for k in OUTCOME_ORDER if plan.counts.get(k, 0)}
    return user.render(
        "statement_upload.html",
        error="",
        filename=filename,
        limit_mb=upload_limit(user) // 2**20,
        plan=plan,
        shown=plan.items[:SHOWN_LINES],
        hidden=max(0, len(plan.items) - SHOWN_LINES),
        counts=counts,
        labels=OUTCOME_LABELS,
        formats=FORMAT_LABELS,
        result=None,
    )


def stored_file(user: WebUser, digest: str) -> bytes:
    """The uploaded bytes the preview kept, by their SHA-256 (never a plan from the form)."""
    store = user.runtime.attachment_access.store
    try:
        return store.read(digest)
    except (ValueError, OSError):
        raise InvalidInput("file", "the uploaded file is no longer here; upload it again") from None


@router.post("/payments/import/apply", response_model=None)
def apply(user: WebWriterDep, form: FormDep) -> Response:
    """Import the previewed file: planned again now, each payment recorded once."""
    digest = field(form, "sha256").lower()
    filename = field(form, "filename")[:255]
    try:
        data = stored_file(user, digest)
        result = apply_import(user.runtime, data, user.actor)
    except COMMAND_ERRORS as error:
        return refused(user, error, filename)
    outcomes: dict[str, Any] = {
        "matched": result.matched,
        "partial": result.partial,
        "overpaid": result.overpaid,
        "suggested": result.suggested,
        "unmatched": result.unmatched,
        "outgoing_linked": result.outgoing_linked,
        ALREADY_RECORDED: result.already_recorded,
    }
    return user.render(
        "statement_upload.html",
        error="",
        filename=filename,
        limit_mb=upload_limit(user) // 2**20,
        plan=None,
        result=result,
        counts={k: v for k, v in outcomes.items() if v},
        labels=OUTCOME_LABELS,
    )
