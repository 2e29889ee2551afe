"""Twilio's webhooks: SMS/MMS/WhatsApp, incoming calls, the after-dial action, status callbacks.

Every request goes the same way: read the urlencoded form, find the inbox
(the `inbox` query parameter our own TwiML adds, else the `To` number, else,
for status callbacks, the account and one of our numbers), check
X-Twilio-Signature with that inbox's auth token against THREADLINE_PUBLIC_URL
plus the path and query, then act. A bad or missing signature is 403, and so
is a request no inbox matches (the same answer, so the hooks do not reveal which
numbers and slugs exist); unusable input is 422 with the reason; all of it is logged to
`threadline.channels.twilio`, never with the token. A request that fails unexpectedly
after its signature was checked is kept as a rejection of the inbox (listed and
retryable, as a poller's) and answered 200: Twilio does not retry an SMS webhook, so a
500 would lose the message.

Calls are answered even when they cannot be logged (a withheld caller id):
the voice hook always returns its TwiML with 200, because Twilio would
otherwise play an error to the caller and drop the call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from threadline.channels.base import (
    TRANSIENT_INGEST_ERRORS,
    InboxConfig,
    Rejected,
    describe_error,
)
from threadline.channels.problems import DeliveryProblem
from threadline.channels.twilio import (
    DIAL_MISSED_STATUSES,
    FormParams,
    call_to_message,
    empty_twiml,
    error_problem,
    fetch_media,
    find_inbox,
    find_status_inbox,
    hangup_twiml,
    parse_form,
    sms_to_message,
    validate_signature,
    voice_twiml,
    voicemail_twiml,
    webhook_rejection,
)
from threadline.domain.model.errors import InvalidInput, NotFound
from threadline.domain.model.message import CallOutcome, Message, inbound_message_id
from threadline.services.api.deps import RuntimeDep
from threadline.services.api.errors import error_response
from threadline.services.runtime import Runtime

log = logging.getLogger("threadline.channels.twilio")
router = APIRouter(
    prefix="/hooks/twilio",
    tags=["hooks"],
    responses={
        400: {"description": "the body is not a UTF-8 urlencoded form"},
        403: {
            "description": "the X-Twilio-Signature does not match this request, or no enabled "
            "Twilio inbox has this number (To) or account (one answer for both)"
        },
        415: {"description": "not application/x-www-form-urlencoded"},
        422: {"description": "the form lacks what Twilio always sends"},
    },
)

ACTOR = "channel:twilio"
FORM_TYPE = "application/x-www-form-urlencoded"
# Twilio's MessageStatus values the log keeps, as our word for them: `read` (WhatsApp)
# implies delivered; queued, accepted and sending say nothing the log does not know.
PROVIDER_STATUSES = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "failed": "failed",
    "undelivered": "undelivered",
}
SETTLED_OUTCOMES = frozenset({CallOutcome.MISSED.value, CallOutcome.VOICEMAIL.value})
SIGNATURE_REFUSED = "the X-Twilio-Signature does not match this request"

Handler = Callable[[Runtime, InboxConfig, FormParams], Response]


def twiml(xml: str) -> Response:
    return Response(content=xml, media_type="text/xml")


def refuse(status_code: int, reason: str) -> JSONResponse:
    return error_response(status_code, reason)


def _int(value: str) -> int | None:
    text = value.strip()
    if text.isascii() and text.isdigit() and len(text) < 10:  # "²".isdigit(), but int() fails
        return int(text)
    return None


# -- the common path ----------------------------------------------------------------------------


def _locate(runtime: Runtime, params: FormParams, slug: str, status: bool) -> InboxConfig | None:
    region = runtime.settings.default_region
    account_sid = params.first("AccountSid")
    if slug:
        inbox = runtime.channels.inbox(slug)
        if inbox is None or inbox.channel != "twilio" or not inbox.enabled:
            return None
        if account_sid and str(inbox.setting("account_sid", "")) != account_sid:
            return None
        return inbox
    inboxes = runtime.channels.inboxes("twilio")
    if status:
        return find_status_inbox(
            inboxes,
            account_sid,
            [params.first("To"), params.first("From")],
            params.first("MessagingServiceSid"),
            region,
        )
    return find_inbox(inboxes, params.first("To"), region)


async def _hook(request: Request, runtime: Runtime, handler: Handler, status: bool) -> Response:
    """Parse, locate the inbox, verify the signature, then run `handler` off the event loop."""
    path = request.url.path
    remote = request.client.host if request.client else "?"
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        log.warning("415 %s from %s: content type %r", path, remote, content_type)
        return refuse(415, f"Twilio webhooks are {FORM_TYPE}")
    try:
        params = parse_form(await request.body())
    except Rejected as error:
        log.warning("%d %s from %s: %s", error.status_code, path, remote, error.reason)
        return refuse(error.status_code, error.reason)
    return await run_in_threadpool(_verified, request, runtime, params, handler, status)


def _verified(
    request: Request, runtime: Runtime, params: FormParams, handler: Handler, status: bool
) -> Response:
    path = request.url.path
    remote = request.client.host if request.client else "?"
    inbox = _locate(runtime, params, request.query_params.get("inbox", ""), status)
    if inbox is None:
        # Without an inbox there is no token to check the signature with; the answer is the
        # one a bad signature gets, so a stranger cannot probe which numbers are ours.
        log.warning("403 %s from %s: no Twilio inbox for this number or account", path, remote)
        return refuse(403, SIGNATURE_REFUSED)
    query = request.url.query
    url = runtime.settings.public_url.rstrip("/") + path + (f"?{query}" if query else "")
    signature = request.headers.get("x-twilio-signature")
    settings = request.headers.get("x-twilio-webhooks-signature-settings")
    if not validate_signature(inbox.secret("auth_token"), url, params, signature, settings):
        log.warning(
            "403 %s from %s: %s X-Twilio-Signature (inbox %s, signed URL %s)",
            path, remote, "bad" if signature else "missing", inbox.slug, url,
        )  # fmt: skip
        return refuse(403, SIGNATURE_REFUSED)
    try:
        return handler(runtime, inbox, params)
    except Rejected as error:
        log.warning("%d %s (inbox %s): %s", error.status_code, path, inbox.slug, error.reason)
        return refuse(error.status_code, error.reason)
    except InvalidInput as error:
        log.warning("422 %s (inbox %s): %s", path, inbox.slug, error)
        return refuse(422, f"{error.field}: {error.message}")
    except TRANSIENT_INGEST_ERRORS:
        raise  # 503 (database) or 409 (a race): nothing was taken, and a retry can succeed
    except Exception as error:
        return _kept_as_rejected(runtime, inbox, path, params, error)


def _kept_as_rejected(
    runtime: Runtime, inbox: InboxConfig, path: str, params: FormParams, error: Exception
) -> Response:
    """An unexpected error on one request: keep the request as a rejection and answer 200.

    Twilio does not retry an SMS webhook that failed (it logs error 11200 and drops the
    message), so a 500 would lose the message; kept, it is listed under the inbox and
    retryable once the cause is fixed. A call is still answered with its TwiML, so the
    caller is put through (or to voicemail) all the same.
    """
    hook = path.removeprefix("/hooks/twilio/")
    rejection = webhook_rejection(
        inbox.slug, hook, params, f"unexpected error: {describe_error(error)}"
    )
    runtime.channels.rejections.add(rejection)
    log.exception(
        "%s (inbox %s, %s) failed unexpectedly; kept as rejected", path, inbox.slug, rejection.key
    )
    if hook == "voice":
        return twiml(voice_twiml(inbox, runtime.settings.public_url))
    return twiml(empty_twiml())


# -- SMS, MMS, WhatsApp -------------------------------------------------------------------------


def _sms(runtime: Runtime, inbox: InboxConfig, params: FormParams) -> Response:
    message = sms_to_message(
        params, inbox, runtime.channels.attachments, runtime.settings.default_region
    )
    message = fetch_media(message, inbox, runtime.channels.options, runtime.channels.attachments)
    result = runtime.channels.ingest(message)
    log.info(
        "%s %s (%s) in inbox %s as message %s%s",
        message.metadata["kind"], message.dedup_key, message.channel, inbox.slug,
        result.message_id, " (duplicate)" if result.duplicate else "",
    )  # fmt: skip
    return twiml(empty_twiml())


@router.post("/sms", response_class=Response)
async def sms_hook(request: Request, runtime: RuntimeDep) -> Response:
    """An SMS, MMS or WhatsApp message to one of our numbers; answered with empty TwiML."""
    return await _hook(request, runtime, _sms, status=False)


# -- calls ------------------------------------------------------------------------------------


def _voice(runtime: Runtime, inbox: InboxConfig, params: FormParams) -> Response:
    answer = twiml(voice_twiml(inbox, runtime.settings.public_url))
    sid = params.first("CallSid")
    try:
        message = call_to_message(params, inbox, runtime.settings.default_region)
    except (Rejected, InvalidInput) as error:
        reason = error.reason if isinstance(error, Rejected) else str(error)
        log.warning("call %s to inbox %s answered but not logged: %s", sid, inbox.slug, reason)
        return answer
    result = runtime.channels.ingest(message)
    log.info(
        "call %s in inbox %s logged as message %s%s",
        sid, inbox.slug, result.message_id, " (duplicate)" if result.duplicate else "",
    )  # fmt: skip
    if not str(inbox.setting("forward_to", "")).strip():
        # Nobody can pick up: the call is missed from the start (a rule plans the call-back);
        # a voicemail, if the caller leaves one, refines the outcome later.
        _record_call(runtime, sid, "no-answer")
    return answer


def _record_call(
    runtime: Runtime,
    call_sid: str,
    status: str,
    duration: int | None = None,
    recording_url: str | None = None,
) -> str | None:
    try:
        committed = runtime.app.record_call_status(
            inbound_message_id("voice", call_sid),
            status,
            ACTOR,
            duration=duration,
            recording_url=recording_url,
        )
    except NotFound:
        log.info("call %s: status %s for a call that was never logged; ignored", call_sid, status)
        return None
    runtime.wait_for_views(committed.notification_id)
    outcome: str | None = committed.value
    return outcome


@router.post("/voice", response_class=Response)
async def voice_hook(request: Request, runtime: RuntimeDep) -> Response:
    """An incoming call: log it and answer TwiML that rings the operator or takes a voicemail."""
    return await _hook(request, runtime, _voice, status=False)


def _after_dial(runtime: Runtime, inbox: InboxConfig, params: FormParams) -> Response:
    sid = params.first("CallSid")
    if not sid:
        raise Rejected("CallSid is missing")
    dial_status = params.first("DialCallStatus")
    if dial_status not in DIAL_MISSED_STATUSES:
        return twiml(hangup_twiml())  # the operator talked to the caller; nothing more to do
    _record_call(runtime, sid, dial_status)
    log.info("call %s to inbox %s missed (%s)", sid, inbox.slug, dial_status)
    return twiml(voicemail_twiml(inbox, runtime.settings.public_url))


@router.post("/voice/after-dial", response_class=Response)
async def after_dial_hook(request: Request, runtime: RuntimeDep) -> Response:
    """The forward ended: a missed forward is recorded and the caller may leave a voicemail."""
    return await _hook(request, runtime, _after_dial, status=False)


# -- status callbacks ---------------------------------------------------------------------------


def _call_status(runtime: Runtime, inbox: InboxConfig, params: FormParams) -> Response:
    sid = params.first("CallSid")
    recording_url = params.first("RecordingUrl")
    recording_status = params.first("RecordingStatus")
    if recording_url and recording_status and recording_status != "completed":
        log.info("call %s: recording %s; waiting for the finished one", sid, recording_status)
        return twiml(empty_twiml())
    try:
        call: Any = runtime.app.repository.get(inbound_message_id("voice", sid))
    except Exception:  # AggregateNotFoundError: a call we never logged (e.g. withheld number)
        call = None
    if not isinstance(call, Message):
        log.info("status for call %s, which was never logged; ignored", sid)
        return twiml(empty_twiml())
    duration = _int(params.first("CallDuration"))
    if recording_url:
        if call.call_outcome == CallOutcome.VOICEMAIL.value:
            return twiml(empty_twiml())  # the <Record> action and its callback both bring it
        # A voicemail is the end of the call for us, whatever CallStatus the action carries.
        duration = duration if duration is not None else _int(params.first("RecordingDuration"))
        _record_call(runtime, sid, "completed", duration, recording_url[:2000])
        log.info("call %s: voicemail recorded", sid)
        return twiml(empty_twiml())
    status = params.first("CallStatus")
    if not status:
        raise Rejected("CallStatus (or RecordingUrl) is missing")
    if call.call_outcome in SETTLED_OUTCOMES and status not in DIAL_MISSED_STATUSES:
        # Twilio itself answered to take the voicemail, so its "completed" is not the
        # operator answering: the missed call (or voicemail) stays what it was.
        log.info("call %s: %s after %s; outcome kept", sid, status, call.call_outcome)
        return twiml(empty_twiml())
    outcome = _record_call(runtime, sid, status[:32], duration)
    log.info("call %s: %s -> %s", sid, status, outcome or "nothing new")
    return twiml(empty_twiml())


def _message_status(runtime: Runtime, inbox: InboxConfig, params: FormParams) -> Response:
    sid = params.first("MessageSid") or params.first("SmsSid")
    status = params.first("MessageStatus") or params.first("SmsStatus")
    if not status:
        raise Rejected("MessageStatus is missing")
    if status not in PROVIDER_STATUSES:
        return twiml(empty_twiml())  # queued, accepted, sending: nothing the log keeps
    message_id = runtime.app.message_for_provider_id("twilio", sid)
    if message_id is None:
        log.info("status %s for message %s, which we did not send; ignored", status, sid)
        return twiml(empty_twiml())
    code, text = params.first("ErrorCode"), params.first("ErrorMessage")
    reason = " ".join(p for p in (f"Twilio error {code}:" if code else "", text) if p)
    reason = reason or f"Twilio reported the message {status}"
    committed = runtime.app.record_provider_status(
        message_id,
        PROVIDER_STATUSES[status],
        reason[:1000],
        ACTOR,
        problem=_status_problem(status, code).value,
    )
    runtime.wait_for_views(committed.notification_id)
    log.info("message %s (%s): %s", message_id, sid, status)
    return twiml(empty_twiml())


def _status_problem(status: str, code: str) -> DeliveryProblem:
    """A failed report's plain reason: its ErrorCode's, else "undelivered" means the carrier
    could not hand it to the phone."""
    problem = error_problem(code)
    if problem is DeliveryProblem.UNKNOWN and status == "undelivered":
        return DeliveryProblem.UNDELIVERABLE
    return problem


def _status(runtime: Runtime, inbox: InboxConfig, params: FormParams) -> Response:
    if params.first("CallSid"):
        return _call_status(runtime, inbox, params)
    if params.first("MessageSid") or params.first("SmsSid"):
        return _message_status(runtime, inbox, params)
    raise Rejected("a status callback names a CallSid or a MessageSid")


@router.post("/status", response_class=Response)
async def status_hook(request: Request, runtime: RuntimeDep) -> Response:
    """Call progress (duration, recording) and message delivery reports."""
    return await _hook(request, runtime, _status, status=True)
