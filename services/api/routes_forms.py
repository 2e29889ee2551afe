"""Public web-form routes (no authentication): the form page, the embed snippet, submissions.

`POST /forms/{slug}` takes urlencoded, multipart and JSON bodies. Its order of
checks is the point: an unknown or disabled form is 404; a browser request
from a site not on the form's allow-list is 403 (the form's own page is always
allowed); a client over the form's per-minute limit is 429; then the body is
read (415 for other types), a filled honeypot is answered like a success with
nothing ingested, and field errors are 422 naming every field. What a
submission becomes is decided in `threadline.channels.webforms`.

The page and the embed show one separate, unticked box per consent the form asks
for, labelled with the policy's title, its full text and version readable beside it
(read from the views: `consent_policy`); a required box left unticked is a field
error named ``consent:<purpose>``.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from threadline.channels.base import InboxConfig
from threadline.channels.webforms import (
    ACTOR,
    MAX_FILES,
    CleanSubmission,
    InvalidSubmission,
    RequestContext,
    SlidingWindowLimiter,
    Submission,
    UploadedFile,
    build_inbound,
    clean_submission,
    clean_text,
    client_address,
    consent_ticked,
    origin_allowed,
    own_origins,
    submission_from_json,
    submission_from_pairs,
)
from threadline.domain.model.errors import DomainError, InvalidInput
from threadline.domain.model.form import (
    HONEYPOT_FIELD,
    REFERRER_FIELD,
    TOKEN_FIELD,
    UTM_FIELDS,
    VISITOR_FIELD,
    FormDefinition,
)
from threadline.domain.model.inbound import IngestResult
from threadline.projections.consents import consent_policy
from threadline.services.api.deps import RuntimeDep
from threadline.services.runtime import Runtime

log = logging.getLogger("threadline.channels.webforms")
router = APIRouter(prefix="/forms", tags=["forms"])

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent.parent / "templates"),
    autoescape=select_autoescape(["html"]),
)
INPUT_TYPES = {"text": "text", "email": "email", "phone": "tel", "number": "number", "date": "date"}
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'"
PREFLIGHT_MAX_AGE = "600"
_limiter_lock = threading.Lock()


# -- helpers -----------------------------------------------------------------------------------


def _form(runtime: Runtime, slug: str) -> FormDefinition | None:
    """The enabled form of this slug, or None (unknown and disabled forms look the same)."""
    form = runtime.app.form(slug)
    if form is None or not form.enabled:
        return None
    return form.spec


@dataclass(frozen=True)
class ConsentBox:
    """One consent box as the page and the embed show it: the policy's words and version."""

    name: str
    purpose: str
    required: bool
    title: str
    text: str
    text_version: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "purpose": self.purpose,
            "required": self.required,
            "title": self.title,
            "text": self.text,
            "text_version": self.text_version,
        }


def _consent_boxes(runtime: Runtime, form: FormDefinition) -> list[ConsentBox]:
    """The form's consents with their policies' current title and text. Saving the form
    checked each policy exists and a policy never goes away; until the views have it
    (just published), the box is labelled with the purpose."""
    boxes = []
    for consent in form.consents:
        policy = consent_policy(runtime.views, consent.purpose)
        boxes.append(
            ConsentBox(
                name=consent.field_name,
                purpose=consent.purpose,
                required=consent.required,
                title=policy.title if policy is not None else consent.purpose,
                text=policy.text if policy is not None else "",
                text_version=policy.text_version if policy is not None else None,
            )
        )
    return boxes


def _webforms_inbox(runtime: Runtime) -> InboxConfig | None:
    """The optional inbox of the webforms channel: its settings, and where conversations file."""
    inboxes = runtime.channels.inboxes("webforms")
    return inboxes[0] if inboxes else None


def _limiter(request: Request) -> SlidingWindowLimiter:
    state = request.app.state
    limiter = getattr(state, "webform_limiter", None)
    if limiter is None:
        with _limiter_lock:
            limiter = getattr(state, "webform_limiter", None)
            if limiter is None:
                limiter = state.webform_limiter = SlidingWindowLimiter()
    return limiter


def _wants_html(request: Request, content_type: str) -> bool:
    """A browser's own form post (not a script's): answer with pages and redirects."""
    return content_type in FORM_TYPES and "text/html" in request.headers.get("accept", "")


def _utm_from_query(request: Request) -> dict[str, str]:
    found = {}
    for name in UTM_FIELDS:
        value = clean_text(request.query_params.get(name, "")).strip()
        if value:
            found[name] = value[:500]
    return found


def _page(
    form: FormDefinition,
    consents: list[ConsentBox],
    token: str,
    utm: dict[str, str],
    referrer: str,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    given = values or {}
    html = TEMPLATES.get_template("forms/page.html").render(
        form=form,
        action=f"/forms/{form.slug}",
        token=token,
        utm=utm,
        referrer=referrer,
        values={k: v for k, v in given.items() if isinstance(v, str)},
        errors=errors or {},
        labels={f.name: f.label for f in form.fields} | {b.name: b.title for b in consents},
        consents=consents,
        # Boxes are never ticked for the client: only their own tick, on the page again.
        ticked={b.name for b in consents if consent_ticked(given.get(b.name))},
        has_files=any(f.type == "file" for f in form.fields),
        input_types=INPUT_TYPES,
        honeypot=HONEYPOT_FIELD,
        token_field=TOKEN_FIELD,
        referrer_field=REFERRER_FIELD,
    )
    return HTMLResponse(
        html,
        status_code=status_code,
        headers={"Cache-Control": "no-store", "Content-Security-Policy": PAGE_POLICY},
    )


def _message_page(title: str, message: str, status_code: int, headers: dict[str, str]) -> Response:
    html = TEMPLATES.get_template("forms/message.html").render(title=title, message=message)
    return HTMLResponse(
        html,
        status_code=status_code,
        headers={**headers, "Cache-Control": "no-store", "Content-Security-Policy": PAGE_POLICY},
    )


def _refuse(
    status_code: int, detail: str, html: bool, headers: dict[str, str] | None = None
) -> Response:
    headers = headers or {}
    if html:
        return _message_page("The form could not be sent", detail, status_code, headers)
    return JSONResponse({"detail": detail}, status_code=status_code, headers=headers)


def _not_found(slug: str, html: bool) -> Response:
    return _refuse(404, f"there is no form {slug!r} (or it is switched off)", html)


def _success(
    form: FormDefinition, result: dict[str, Any], html: bool, headers: dict[str, str]
) -> Response:
    if html:
        target = form.thank_you_url or f"/forms/{form.slug}/thanks"
        return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER, headers=headers)
    code = status.HTTP_200_OK if result["duplicate"] else status.HTTP_201_CREATED
    return JSONResponse(result, status_code=code, headers=headers)


# -- the page, its thank-you page, the embed snippet -------------------------------------------


@router.get("/{slug}", response_class=HTMLResponse)
def form_page(slug: str, request: Request, runtime: RuntimeDep) -> Response:
    """The form as a plain HTML page; utm_* of its own URL and its referrer travel along."""
    form = _form(runtime, slug)
    if form is None:
        return _not_found(slug, html=True)
    referrer = clean_text(request.headers.get("referer", ""))[:2000]
    consents = _consent_boxes(runtime, form)
    return _page(form, consents, str(uuid.uuid4()), _utm_from_query(request), referrer)


@router.get("/{slug}/thanks", response_class=HTMLResponse)
def thanks_page(slug: str, runtime: RuntimeDep) -> Response:
    form = _form(runtime, slug)
    if form is None:
        return _not_found(slug, html=True)
    return _message_page(form.name, form.thank_you_text, 200, {})


@router.get("/{slug}/embed.js")
def embed_script(slug: str, runtime: RuntimeDep) -> Response:
    """JavaScript that renders the form into any page and submits it with fetch as JSON."""
    form = _form(runtime, slug)
    headers = {"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"}
    media_type = "application/javascript; charset=utf-8"
    if form is None:
        body = f"/* Threadline: there is no form {json.dumps(slug)[:60].replace('*/', '')} */\n"
        return Response(body, status_code=404, media_type=media_type, headers=headers)
    config = {
        "slug": form.slug,
        "name": form.name,
        "fields": [
            {k: v for k, v in f.as_dict().items() if k != "default" or f.type != "file"}
            for f in form.fields
        ],
        "submit_label": form.submit_label,
        "thank_you_text": form.thank_you_text,
        "thank_you_url": form.thank_you_url,
        "honeypot": HONEYPOT_FIELD,
        "token_field": TOKEN_FIELD,
        "referrer_field": REFERRER_FIELD,
        "utm_fields": list(UTM_FIELDS),
        "consents": [box.as_dict() for box in _consent_boxes(runtime, form)],
    }
    body = TEMPLATES.get_template("forms/embed.js").render(slug=form.slug, config=config)
    return Response(body, media_type=media_type, headers=headers)


# -- CORS ----------------------------------------------------------------------------------------


def _origin_ok(request: Request, runtime: Runtime, form: FormDefinition, origin: str) -> bool:
    own = own_origins(
        request.url.scheme, request.headers.get("host", ""), runtime.settings.public_url
    )
    return origin_allowed(form, origin, own)


@router.options("/{slug}", status_code=204)
def preflight(slug: str, request: Request, runtime: RuntimeDep) -> Response:
    """The browser's CORS preflight for a JSON post from another site."""
    form = _form(runtime, slug)
    if form is None:
        return _not_found(slug, html=False)
    origin = request.headers.get("origin")
    if origin is None or not _origin_ok(request, runtime, form, origin):
        log.info("refused a preflight for form %s from origin %r", slug, origin)
        return JSONResponse(
            {"detail": f"origin {origin!r} may not post to form {slug!r}"},
            status_code=403,
            headers={"Vary": "Origin"},
        )
    return Response(
        status_code=204,
        headers={
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type, Accept",
            "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
            "Vary": "Origin",
        },
    )


# -- submissions ---------------------------------------------------------------------------------


async def _read_submission(request: Request, content_type: str) -> Submission:
    """The body as a `Submission`; `InvalidSubmission` when it cannot be read."""
    if content_type in FORM_TYPES:
        try:
            data = await request.form(max_files=MAX_FILES, max_fields=500)
        except HTTPException as error:  # Starlette's answer to a malformed multipart body
            raise InvalidSubmission({"body": f"malformed form body ({error.detail})"}) from None
        pairs: list[tuple[str, str | UploadedFile]] = []
        for name, value in data.multi_items():
            if isinstance(value, UploadFile):
                content = await value.read()
                if content or value.filename:  # an empty file input sends an empty part
                    pairs.append(
                        (
                            name,
                            UploadedFile(
                                name, value.filename or "", value.content_type or "", content
                            ),
                        )
                    )
            else:
                pairs.append((name, value))
        return submission_from_pairs(pairs)
    raw = await request.body()
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidSubmission({"body": "not valid JSON"}) from None
    return submission_from_json(document)


def _ingest(
    runtime: Runtime, form: FormDefinition, clean: CleanSubmission, inbox: InboxConfig | None
) -> tuple[IngestResult, int | None]:
    """Store the files, append the message, then set the mapped attributes (new leads only)."""
    attachments = [
        runtime.channels.attachments.put(f.data, f.filename, f.content_type) for f in clean.files
    ]
    message = build_inbound(
        form,
        clean,
        attachments,
        inbox_id=inbox.id if inbox is not None else None,
        default_region=runtime.settings.default_region,
    )
    committed = runtime.app.ingest(message)
    result = committed.value
    last = committed.notification_id
    if not result.duplicate and clean.attributes:
        try:
            changed = runtime.app.update_contact(
                result.contact_id, actor=ACTOR, attributes=clean.attributes
            )
            last = changed.notification_id or last
        except DomainError as error:  # the message is in; the attributes can be set by hand
            log.warning(
                "form %s: could not set attributes on %s: %s", form.slug, result.contact_id, error
            )
    return result, last


@router.post(
    "/{slug}",
    status_code=201,
    responses={
        200: {"description": "a duplicate: this submission was received before"},
        303: {"description": "a browser's form post: on to the thank-you page"},
        403: {"description": "the Origin is not on the form's allow-list"},
        404: {"description": "no such form, or it is switched off"},
        415: {"description": "not urlencoded, multipart or JSON"},
        422: {"description": "field errors, each naming its field"},
        429: {"description": "too many submissions from this address; see Retry-After"},
    },
)
async def submit(slug: str, request: Request) -> Response:
    """Accept one submission (urlencoded, multipart with files, or JSON) as a lead's message."""
    runtime: Runtime = request.app.state.runtime
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    html = _wants_html(request, content_type)
    form = await run_in_threadpool(_form, runtime, slug)
    if form is None:
        return _not_found(slug, html)
    headers = {"Vary": "Origin"}
    origin = request.headers.get("origin")
    if origin is not None:
        if not _origin_ok(request, runtime, form, origin):
            log.info("refused a post to form %s from origin %r", slug, origin)
            return _refuse(403, f"this site may not post to form {slug!r}", html, headers)
        headers["Access-Control-Allow-Origin"] = origin

    inbox = await run_in_threadpool(_webforms_inbox, runtime)
    # With THREADLINE_TRUSTED_PROXIES the server already resolved the client from the
    # forwarded headers of those proxies only; reading the header again would undo that.
    trust = bool(
        inbox is not None
        and inbox.setting("trust_forwarded_for", False)
        and not runtime.settings.trusted_proxies
    )
    peer = request.client.host if request.client else None
    client = client_address(peer, request.headers.get("x-forwarded-for", ""), trust)
    retry_after = _limiter(request).hit((form.slug, client), form.rate_limit_per_minute)
    if retry_after is not None:
        log.warning("form %s: rate limit hit by %s", slug, client)
        wait = str(max(1, math.ceil(retry_after)))
        return _refuse(
            429,
            f"too many submissions; try again in {wait} seconds",
            html,
            {**headers, "Retry-After": wait},
        )

    if content_type not in FORM_TYPES and not (
        content_type == "application/json" or content_type.endswith("+json")
    ):
        log.info("form %s: refused content type %r", slug, content_type)
        return _refuse(
            415,
            "send application/x-www-form-urlencoded, multipart/form-data or JSON",
            html,
            headers,
        )
    consents = await run_in_threadpool(_consent_boxes, runtime, form) if form.consents else []
    try:
        submission = await _read_submission(request, content_type)
    except InvalidSubmission as error:
        return _invalid(form, consents, error.errors, None, html, headers)

    if submission.honeypot_filled:
        log.warning("form %s: honeypot filled by %s; nothing ingested", slug, client)
        fake = {
            "ok": True,
            "message_id": str(uuid.uuid4()),
            "contact_id": str(uuid.uuid4()),
            "duplicate": False,
        }
        return _success(form, fake, html, headers)

    context = RequestContext(
        query={k: v for k, v in request.query_params.items()},
        referer=request.headers.get("referer", "")[:2000],
        visitor_cookie=request.cookies.get(VISITOR_FIELD, ""),
    )
    registry = await run_in_threadpool(runtime.app.attribute_registry)
    try:
        clean = clean_submission(
            form,
            submission,
            context,
            registry,
            runtime.settings.default_region,
            consent_titles={box.purpose: box.title for box in consents},
        )
        result, last = await run_in_threadpool(_ingest, runtime, form, clean, inbox)
    except InvalidSubmission as error:
        return _invalid(form, consents, error.errors, submission, html, headers)
    except InvalidInput as error:
        errors = {error.field: error.message}
        return _invalid(form, consents, errors, submission, html, headers)
    await run_in_threadpool(runtime.wait_for_views, last)
    log.info(
        "form %s: message %s for contact %s%s",
        slug,
        result.message_id,
        result.contact_id,
        " (duplicate)" if result.duplicate else "",
    )
    body = {
        "ok": True,
        "message_id": str(result.message_id),
        "contact_id": str(result.contact_id),
        "duplicate": result.duplicate,
    }
    return _success(form, body, html, headers)


def _invalid(
    form: FormDefinition,
    consents: list[ConsentBox],
    errors: dict[str, str],
    submission: Submission | None,
    html: bool,
    headers: dict[str, str],
) -> Response:
    """422 naming every field: the page again with the messages, or FastAPI's error shape."""
    log.info("form %s: refused a submission: %s", form.slug, errors)
    if html:
        values = dict(submission.values) if submission is not None else {}
        token = values.get(TOKEN_FIELD)
        utm = {k: v for k, v in values.items() if k in UTM_FIELDS and isinstance(v, str)}
        referrer = values.get(REFERRER_FIELD, "")
        response = _page(
            form,
            consents,
            token if isinstance(token, str) and TOKEN_FIELD not in errors else str(uuid.uuid4()),
            utm,
            referrer if isinstance(referrer, str) else "",
            values=values,
            errors=errors,
            status_code=422,
        )
        response.headers.update(headers)
        return response
    detail = [
        {"loc": ["body", name], "msg": message, "type": "value_error"}
        for name, message in errors.items()
    ]
    return JSONResponse({"detail": detail}, status_code=422, headers=headers)
