"""Telephony and SMS through Twilio: webhooks in (SMS, MMS, WhatsApp, calls), REST out (SMS).

Twilio talks to us with signed, urlencoded webhooks and expects TwiML back;
we talk to Twilio through its REST API. Everything that touches the SDK lives
here so that the routes in `services/api/routes_hooks_twilio.py` stay plain:
they parse the form, pick the inbox, and call the pure functions below
(`validate_signature`, `find_inbox`, `sms_to_message`, `call_to_message`, the
TwiML builders). MMS and WhatsApp media (MediaUrl0..N) are downloaded with the
account's credentials into the attachment store before the message is recorded
(`fetch_media`); one that cannot be is recorded as "not downloaded: <reason>" and
fetched again when someone opens it (`TwilioAdapter.fetch_attachment`). `TwilioAdapter.send` delivers replies as SMS (or WhatsApp)
through the SDK's client, pointed at `THREADLINE_TWILIO_API_URL`.

Calls: the voice webhook logs the call as an inbound message (dedup key
CallSid) and answers TwiML that forwards it to the operator's number with a
ring timeout, or records a voicemail. Missed calls, answered calls with their
duration and voicemails arrive later through the after-dial action and the
status callbacks, which the routes turn into `record_call_status`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import mimetypes
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator, get_signature_algorithm
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from threadline.channels.attachments import (
    FETCH_SECONDS,
    AttachmentStore,
    FetchFailed,
    TooLarge,
    read_limited,
)
from threadline.channels.base import (
    ChannelAdapter,
    ChannelOptions,
    ChannelServices,
    DeliveryError,
    DeliveryErrorKind,
    FieldKind,
    InboxConfig,
    OutboundMessage,
    ProviderStatus,
    Rejected,
    Rejection,
    RetryOutcome,
    Sent,
    SettingField,
    describe_error,
    register,
)
from threadline.channels.problems import DeliveryProblem
from threadline.domain.model.errors import Conflict, InvalidInput
from threadline.domain.model.identities import normalise_phone
from threadline.domain.model.inbound import AttachmentMeta, InboundMessage, IngestResult

log = logging.getLogger("threadline.channels.twilio")

WHATSAPP_PREFIX = "whatsapp:"
MAX_MEDIA = 10  # Twilio delivers at most 10 media items per message
MAX_MEDIA_URL = 2000
MAX_FORM_FIELDS = 500
RECORD_MAX_SECONDS = 120
MIN_RING_SECONDS, MAX_RING_SECONDS = 5, 600  # what <Dial timeout> accepts
# Caller ids Twilio reports when the caller withholds the number.
ANONYMOUS_CALLERS = frozenset(
    {"", "anonymous", "restricted", "unknown", "private", "blocked", "unavailable", "+266696687"}
)
DIAL_MISSED_STATUSES = frozenset({"no-answer", "busy", "failed", "canceled"})
# Twilio error codes that mean "this recipient will not get anything from us".
BLOCKED_CODES = frozenset({21610})  # the recipient replied STOP (unsubscribed)
VOICEMAIL_PROMPT = "Nobody can take your call right now. Please leave a message after the tone."
UNAVAILABLE_PROMPT = "Nobody can take your call right now. Please try again later."
# Twilio's error codes (REST answers and status callbacks' ErrorCode) as plain reasons;
# https://www.twilio.com/docs/api/errors. A code not listed is `unknown`.
ERROR_PROBLEMS: dict[int, DeliveryProblem] = {
    20003: DeliveryProblem.LOGIN_REFUSED,  # authentication failed
    20404: DeliveryProblem.NOT_SET_UP,  # no such account or resource
    14107: DeliveryProblem.RATE_LIMITED,
    20429: DeliveryProblem.RATE_LIMITED,
    30001: DeliveryProblem.RATE_LIMITED,  # queue overflow
    21211: DeliveryProblem.BAD_RECIPIENT,  # invalid 'To' number
    21614: DeliveryProblem.BAD_RECIPIENT,  # 'To' is not a mobile number
    30005: DeliveryProblem.BAD_RECIPIENT,  # unknown destination handset
    63003: DeliveryProblem.BAD_RECIPIENT,  # the channel could not find the recipient
    21610: DeliveryProblem.BLOCKED,  # the recipient replied STOP
    30004: DeliveryProblem.BLOCKED,  # message blocked (by the recipient or their carrier)
    21408: DeliveryProblem.NOT_SET_UP,  # sending to this region is not enabled
    21606: DeliveryProblem.NOT_SET_UP,  # the From number cannot send
    21659: DeliveryProblem.NOT_SET_UP,  # the From number is not one of the account's
    30002: DeliveryProblem.NOT_SET_UP,  # account suspended
    30034: DeliveryProblem.NOT_SET_UP,  # US A2P 10DLC: the number is not registered
    21602: DeliveryProblem.REFUSED,  # the body is required
    21617: DeliveryProblem.REFUSED,  # the body is too long
    63016: DeliveryProblem.REFUSED,  # WhatsApp: outside the 24-hour window, needs a template
    30003: DeliveryProblem.UNDELIVERABLE,  # the handset is off or out of reach
    30006: DeliveryProblem.UNDELIVERABLE,  # a landline, or the carrier is unreachable
    21612: DeliveryProblem.UNDELIVERABLE,  # Twilio cannot route to this number
    30007: DeliveryProblem.FILTERED,  # the carrier filtered the message (spam)
}
# Twilio's Message.status when the REST API answers, as how far the message got.
ANSWER_STATUSES: dict[str, ProviderStatus] = {
    "accepted": ProviderStatus.QUEUED,  # a messaging service took it
    "scheduled": ProviderStatus.QUEUED,
    "queued": ProviderStatus.QUEUED,
    "sending": ProviderStatus.QUEUED,
    "sent": ProviderStatus.SENT,
    "delivered": ProviderStatus.DELIVERED,
    "read": ProviderStatus.DELIVERED,
}


def error_problem(code: int | str | None) -> DeliveryProblem:
    """The plain reason of a Twilio error code (a REST error's or a callback's ErrorCode)."""
    try:
        number = int(str(code).strip())
    except ValueError:  # None, empty, not a number
        return DeliveryProblem.UNKNOWN
    return ERROR_PROBLEMS.get(number, DeliveryProblem.UNKNOWN)


class FormParams(dict[str, list[str]]):
    """A urlencoded form with repeated keys kept, in the shape `RequestValidator` signs."""

    def getlist(self, name: str) -> list[str]:
        return self[name]

    def first(self, name: str) -> str:
        values = self.get(name) or [""]
        return values[0]


def parse_form(body: bytes) -> FormParams:
    """Decode a webhook body; a body that is not UTF-8 urlencoded data is a clear 400."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
            text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS, errors="strict"
        )
    except (UnicodeDecodeError, ValueError) as error:
        raise Rejected(f"the body is not a UTF-8 urlencoded form ({error})", 400) from None
    params = FormParams()
    for name, value in pairs:
        params.setdefault(name, []).append(value)
    return params


def _first(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name)
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    return "" if value is None else str(value).strip()


# -- signatures ---------------------------------------------------------------------------------


def validate_signature(
    auth_token: str,
    url: str,
    params: Mapping[str, Any],
    signature: str | None,
    signature_settings: str | None = None,
) -> bool:
    """Whether X-Twilio-Signature proves the request came from Twilio with this auth token.

    `url` is the address Twilio called (our public URL, path and query string);
    `signature_settings` is the X-Twilio-Webhooks-Signature-Settings header, which
    names the HMAC (SHA-1 when absent).
    """
    if not auth_token or not signature:
        return False
    if not isinstance(params, FormParams):
        params = FormParams(
            {k: list(v) if isinstance(v, list | tuple) else [str(v)] for k, v in params.items()}
        )
    try:
        algorithm = get_signature_algorithm(signature_settings)
        return bool(RequestValidator(auth_token).validate(url, params, signature, algorithm))
    except (ValueError, TypeError, UnicodeError):
        return False


def sign(auth_token: str, url: str, params: Mapping[str, Any]) -> str:
    """The signature Twilio would send for this request (used by tests and local tools)."""
    if not isinstance(params, FormParams):
        params = FormParams(
            {k: list(v) if isinstance(v, list | tuple) else [str(v)] for k, v in params.items()}
        )
    signature: str = RequestValidator(auth_token).compute_signature(url, params)
    return signature


# -- numbers and inboxes ------------------------------------------------------------------------


def strip_whatsapp(number: str) -> tuple[str, bool]:
    """("+15551234567", True) for "whatsapp:+15551234567"; the flag says it was WhatsApp."""
    text = (number or "").strip()
    if text.lower().startswith(WHATSAPP_PREFIX):
        return text[len(WHATSAPP_PREFIX) :].strip(), True
    return text, False


def normalise_number(raw: str, default_region: str | None = None) -> str | None:
    """E.164 for a Twilio number field (with or without "whatsapp:"), None if it is not one."""
    number, _ = strip_whatsapp(raw)
    if not number:
        return None
    try:
        return normalise_phone(number, default_region)
    except InvalidInput:
        return None


def inbox_numbers(inbox: InboxConfig, default_region: str | None = None) -> set[str]:
    """Our numbers of one inbox (the SMS/voice number and the WhatsApp sender), in E.164."""
    numbers = set()
    for name in ("phone_number", "whatsapp_number"):
        number = normalise_number(str(inbox.setting(name, "")), default_region)
        if number:
            numbers.add(number)
    return numbers


def find_inbox(
    inboxes: Iterable[InboxConfig], to_number: str, default_region: str | None = None
) -> InboxConfig | None:
    """The Twilio inbox whose number a webhook's `To` is (WhatsApp prefix allowed)."""
    wanted = normalise_number(to_number, default_region)
    if wanted is None:
        return None
    for inbox in inboxes:
        if inbox.channel == "twilio" and wanted in inbox_numbers(inbox, default_region):
            return inbox
    return None


def find_status_inbox(
    inboxes: Iterable[InboxConfig],
    account_sid: str,
    numbers: Iterable[str],
    messaging_service_sid: str = "",
    default_region: str | None = None,
) -> InboxConfig | None:
    """The inbox a status callback belongs to: its account, and one of its numbers (or its
    messaging service) among To/From, since outbound callbacks have our number in From."""
    wanted = {n for n in (normalise_number(x, default_region) for x in numbers) if n}
    for inbox in inboxes:
        if inbox.channel != "twilio" or not account_sid:
            continue
        if str(inbox.setting("account_sid", "")) != account_sid:
            continue
        service = str(inbox.setting("messaging_service_sid", ""))
        if wanted & inbox_numbers(inbox, default_region) or (
            service and service == messaging_service_sid
        ):
            return inbox
    return None


# -- inbound messages and calls -----------------------------------------------------------------


def _media(params: Mapping[str, Any], attachments: AttachmentStore) -> list[AttachmentMeta]:
    """MediaUrl{i}/MediaContentType{i} as attachments kept at Twilio, described by their URL;
    `fetch_media` then downloads them."""
    found: list[AttachmentMeta] = []
    for index in range(MAX_MEDIA):
        url = _first(params, f"MediaUrl{index}")
        if not url:
            continue
        if not url.lower().startswith(("https://", "http://")) or len(url) > MAX_MEDIA_URL:
            log.warning("ignored media %d: not an http(s) URL of at most %d characters", index,
                        MAX_MEDIA_URL)  # fmt: skip
            continue
        content_type = _first(params, f"MediaContentType{index}")[:255]
        name = url.rstrip("/").rsplit("/", 1)[-1][:200] or f"media-{index}"
        extension = mimetypes.guess_extension(content_type.split(";")[0].strip()) or ""
        if extension and not name.endswith(extension):
            name += extension
        found.append(attachments.describe_remote(name, content_type, 0, reference=url))
    return found


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def download_media(
    url: str, inbox: InboxConfig, options: ChannelOptions, max_bytes: int, seconds: float
) -> bytes:
    """One media file's bytes: `GET MediaUrl` with the account SID and auth token as HTTP
    basic auth, following Twilio's redirect to its media store (httpx drops the credentials
    on a redirect to another host). Only URLs of the Twilio API (`THREADLINE_TWILIO_API_URL`)
    are fetched: the credentials go nowhere else. `FetchFailed` (or `TooLarge`) says why not.
    """
    account_sid, token = str(inbox.setting("account_sid", "")), inbox.secret("auth_token")
    if not account_sid or not token:
        raise FetchFailed("the inbox has no account SID and auth token")
    if _origin(url) != _origin(options.twilio_api_url):
        raise FetchFailed("not a media URL of the Twilio API (THREADLINE_TWILIO_API_URL)")
    deadline = time.monotonic() + seconds

    def chunks(response: httpx.Response) -> Iterator[bytes]:
        for chunk in response.iter_bytes(65536):
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout("the download took too long")
            yield chunk

    try:
        with (
            httpx.Client(
                auth=(account_sid, token),
                follow_redirects=True,
                max_redirects=5,
                timeout=max(0.5, seconds),
            ) as http,
            http.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise FetchFailed(f"Twilio answered {response.status_code}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise TooLarge(max_bytes)
            return read_limited(chunks(response), max_bytes)
    except httpx.TimeoutException:
        raise FetchFailed(f"timed out after {seconds:.0f} s") from None
    except httpx.HTTPError as error:
        raise FetchFailed(f"download failed: {describe_error(error)}") from None


def fetch_media(
    message: InboundMessage, inbox: InboxConfig, options: ChannelOptions, store: AttachmentStore
) -> InboundMessage:
    """`message` with its MMS/WhatsApp media downloaded into the store (within
    `FETCH_SECONDS` for the whole message, below Twilio's webhook timeout); a file that
    cannot be downloaded is marked "not downloaded: <reason>" and the message is recorded
    all the same (the file is fetched again when someone opens it)."""
    pending = [i for i, a in enumerate(message.attachments) if a.reference and not a.stored]
    if not pending:
        return message
    found = list(message.attachments)
    deadline = time.monotonic() + FETCH_SECONDS
    for i in pending:
        item = found[i]
        try:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FetchFailed(f"timed out after {FETCH_SECONDS:.0f} s")
            data = download_media(item.reference, inbox, options, store.max_bytes, remaining)
        except TooLarge:
            found[i] = store.too_large(item.filename, item.content_type, 0, item.reference)
        except FetchFailed as error:
            log.warning("media %s not downloaded: %s", item.filename, error.reason)
            found[i] = store.not_downloaded(
                item.filename, item.content_type, 0, item.reference, error.reason
            )
        else:
            found[i] = store.fetched(item.reference, data, item.filename, item.content_type)
    return replace(message, attachments=tuple(found))


def sms_to_message(
    params: Mapping[str, Any],
    inbox: InboxConfig,
    attachments: AttachmentStore,
    default_region: str | None = None,
) -> InboundMessage:
    """An SMS, MMS or WhatsApp message as an inbound message; the MessageSid is the dedup key.

    One conversation per client per our number (the thread key is the `To`
    number). The client's number becomes the contact's phone identity and stays
    out of the metadata, which is not personal data.
    """
    sid = _first(params, "MessageSid") or _first(params, "SmsSid")
    if not sid:
        raise Rejected("MessageSid is missing")
    sender, whatsapp = strip_whatsapp(_first(params, "From"))
    if not sender:
        raise Rejected("From is missing")
    to_raw = _first(params, "To")
    to_number = normalise_number(to_raw, default_region) or strip_whatsapp(to_raw)[0]
    media = _media(params, attachments)
    kind = "whatsapp" if whatsapp else ("mms" if media else "sms")
    return InboundMessage.create(
        channel="whatsapp" if whatsapp else "sms",
        dedup_key=sid,
        identities=[("phone", sender)],
        sender_name=_first(params, "ProfileName") if whatsapp else "",
        text=_first(params, "Body"),
        thread_key=to_number or None,
        attachments=media,
        metadata={"sid": sid, "to": to_number, "num_media": len(media), "kind": kind},
        default_region=default_region,
        inbox_id=inbox.id,
    )


def call_to_message(
    params: Mapping[str, Any], inbox: InboxConfig, default_region: str | None = None
) -> InboundMessage:
    """An incoming call as an inbound message on the voice channel (dedup key CallSid).

    A withheld caller id cannot become a contact: that raises `Rejected`, and
    the route still answers the call (forward or voicemail) so the caller is
    not dropped; the call is then only in the log file.
    """
    sid = _first(params, "CallSid")
    if not sid:
        raise Rejected("CallSid is missing")
    caller, _ = strip_whatsapp(_first(params, "From"))
    if caller.lower() in ANONYMOUS_CALLERS:
        raise Rejected("the caller withheld the number; the call is answered but not logged")
    to_raw = _first(params, "To")
    to_number = normalise_number(to_raw, default_region) or to_raw
    status = _first(params, "CallStatus") or "ringing"
    return InboundMessage.create(
        channel="voice",
        dedup_key=sid,
        identities=[("phone", caller)],
        text="Incoming call",
        thread_key=to_number or None,
        metadata={
            "kind": "call",
            "to": to_number,
            "call": {"sid": sid, "direction": "inbound", "status": status[:32]},
        },
        default_region=default_region,
        inbox_id=inbox.id,
    )


# -- TwiML --------------------------------------------------------------------------------------


def hook_url(public_url: str, name: str, inbox: InboxConfig) -> str:
    """Our webhook `name` for this inbox; the inbox slug rides along in the query string,
    because some callbacks (recording status) carry neither To nor From."""
    return f"{public_url.rstrip('/')}/hooks/twilio/{name}?inbox={quote(inbox.slug)}"


def ring_seconds(inbox: InboxConfig) -> int:
    try:
        seconds = int(inbox.setting("ring_seconds", 20))
    except (TypeError, ValueError):
        seconds = 20
    return max(MIN_RING_SECONDS, min(MAX_RING_SECONDS, seconds))


def voicemail_enabled(inbox: InboxConfig) -> bool:
    value = inbox.setting("voicemail", True)
    return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")


def voice_twiml(inbox: InboxConfig, public_url: str) -> str:
    """The answer to an incoming call: ring the operator, else voicemail (or an apology)."""
    forward_to = str(inbox.setting("forward_to", "")).strip()
    if not forward_to:
        return voicemail_twiml(inbox, public_url)
    response = VoiceResponse()
    response.dial(
        forward_to,
        timeout=ring_seconds(inbox),
        action=hook_url(public_url, "voice/after-dial", inbox),
        method="POST",
    )
    return str(response.to_xml())


def voicemail_twiml(inbox: InboxConfig, public_url: str) -> str:
    """Record a message; the recording reaches the status hook (action and callback), and
    a silent caller gets hung up on instead of hearing the prompt again."""
    response = VoiceResponse()
    if not voicemail_enabled(inbox):
        response.say(UNAVAILABLE_PROMPT)
        response.hangup()
        return str(response.to_xml())
    status_url = hook_url(public_url, "status", inbox)
    response.say(VOICEMAIL_PROMPT)
    response.record(
        max_length=RECORD_MAX_SECONDS,
        play_beep=True,
        action=status_url,
        method="POST",
        recording_status_callback=status_url,
        recording_status_callback_method="POST",
    )
    response.hangup()
    return str(response.to_xml())


def hangup_twiml() -> str:
    response = VoiceResponse()
    response.hangup()
    return str(response.to_xml())


def empty_twiml() -> str:
    """`<Response/>`: "nothing to do" for SMS and status callbacks (no auto-reply)."""
    return str(VoiceResponse().to_xml())


# -- the adapter --------------------------------------------------------------------------------


@register
class TwilioAdapter(ChannelAdapter):
    """A Twilio number: SMS/MMS, WhatsApp and calls in; SMS (or WhatsApp) replies out."""

    channel = "twilio"
    title = "Twilio (SMS, WhatsApp, calls)"
    conversation_channels = ("sms", "whatsapp", "voice")
    # A reply in a voice conversation goes out as an SMS to the caller.
    recipient_kind = {"sms": "phone", "whatsapp": "phone", "voice": "phone"}
    settings_schema = (
        SettingField("account_sid", "Account SID", required=True, help="AC...",
                     max_length=34, pattern=r"AC[0-9a-fA-F]{32}",
                     pattern_help="AC and 32 hexadecimal digits (the Twilio console shows it)"),
        SettingField("auth_token", "Auth token", FieldKind.SECRET, required=True,
                     help="Signs the webhooks and authenticates the REST calls", max_length=256),
        SettingField("phone_number", "Twilio number", FieldKind.PHONE,
                     help="The SMS sender and the number calls come in on (E.164)", max_length=40),
        SettingField("whatsapp_number", "WhatsApp sender", FieldKind.PHONE,
                     help="The number WhatsApp messages come to and go from, if any",
                     max_length=40),
        SettingField("forward_to", "Forward calls to", FieldKind.PHONE,
                     help="The operator's number; without it calls go to voicemail",
                     max_length=40),
        SettingField("ring_seconds", "Ring for (seconds)", FieldKind.INTEGER, default=20,
                     minimum=MIN_RING_SECONDS, maximum=MAX_RING_SECONDS),
        SettingField("voicemail", "Voicemail", FieldKind.BOOLEAN, default=True,
                     help="Record a message when nobody answers"),
        SettingField("messaging_service_sid", "Messaging service SID",
                     help="MG...; sends through the service instead of the number",
                     max_length=34, pattern=r"MG[0-9a-fA-F]{32}",
                     pattern_help="MG and 32 hexadecimal digits"),
    )  # fmt: skip

    def __init__(self, inbox: InboxConfig, services: ChannelServices) -> None:
        super().__init__(inbox, services)
        self._client: Client | None = None

    def client(self) -> Client:
        """The SDK client, its API domain pointed at `twilio_api_url` (a local server in tests).

        twilio-python builds every URL from `client.api.base_url`; edge and region
        are cleared so that TWILIO_EDGE/TWILIO_REGION cannot rewrite that host.
        """
        if self._client is None:
            # Give up just before the delivery worker's own deadline, so the in-doubt
            # read timeout below is what classifies a silent provider.
            timeout = max(1.0, self.services.options.send_timeout - 1.0)
            client = Client(
                str(self.inbox.setting("account_sid", "")),
                self.inbox.secret("auth_token"),
                http_client=TwilioHttpClient(timeout=timeout),
            )
            client.edge = None
            client.region = None
            client.api.base_url = self.services.options.twilio_api_url.rstrip("/")
            self._client = client
        return self._client

    async def aclose(self) -> None:
        """Close the pooled HTTP connections of the SDK client, if one was made."""
        client, self._client = self._client, None
        session = getattr(getattr(client, "http_client", None), "session", None)
        if session is not None:
            session.close()

    def message_parameters(self, message: OutboundMessage) -> dict[str, Any]:
        """To/From/Body/StatusCallback of one reply; WhatsApp conversations answer on WhatsApp."""
        recipient, _ = strip_whatsapp(message.recipient)
        if not recipient:
            raise DeliveryError(DeliveryErrorKind.PERMANENT, "no recipient number")
        if not message.text.strip():
            raise DeliveryError(DeliveryErrorKind.PERMANENT, "an SMS needs text")
        parameters: dict[str, Any] = {
            "to": recipient,
            "body": message.text,
            "status_callback": f"{self.services.options.public_url.rstrip('/')}/hooks/twilio/status",
        }
        if message.channel == "whatsapp":
            sender = str(self.inbox.setting("whatsapp_number", ""))
            if not sender:
                raise DeliveryError(
                    DeliveryErrorKind.PERMANENT,
                    f"inbox {self.inbox.slug} has no whatsapp_number to answer WhatsApp from",
                )
            parameters["to"] = WHATSAPP_PREFIX + recipient
            parameters["from_"] = WHATSAPP_PREFIX + strip_whatsapp(sender)[0]
            return parameters
        service = str(self.inbox.setting("messaging_service_sid", ""))
        sender = str(self.inbox.setting("phone_number", ""))
        if service:
            parameters["messaging_service_sid"] = service
        elif sender:
            parameters["from_"] = sender
        else:
            raise DeliveryError(
                DeliveryErrorKind.PERMANENT,
                f"inbox {self.inbox.slug} has neither phone_number nor messaging_service_sid",
            )
        return parameters

    async def retry(self, rejection: Rejection) -> tuple[RetryOutcome, str, IngestResult | None]:
        """Run a kept webhook request (an SMS or a call) through ingest again.

        Twilio does not send a webhook again once it was answered, so the rejection keeps
        the request's form (`webhook_rejection`). A status callback changes a message that
        exists rather than bringing one, and is not retried (409).
        """
        try:
            kept = json.loads(rejection.raw)
            hook, params = str(kept["hook"]), FormParams(kept["params"])
        except (ValueError, KeyError, TypeError):
            raise Conflict("this rejection holds no Twilio request to run again") from None
        region = self.services.options.default_region
        try:
            if hook == "sms":
                message = sms_to_message(params, self.inbox, self.services.attachments, region)
                message = await asyncio.to_thread(
                    fetch_media,
                    message,
                    self.inbox,
                    self.services.options,
                    self.services.attachments,
                )
            elif hook == "voice":
                message = call_to_message(params, self.inbox, region)
            else:
                raise Conflict(f"a Twilio {hook} callback cannot be run again; only SMS and calls")
        except (Rejected, InvalidInput) as error:
            return RetryOutcome.REJECTED, str(getattr(error, "reason", error)), None
        return RetryOutcome.INGESTED, "", await self.services.ingest(message)

    async def fetch_attachment(self, reference: str) -> bytes:
        """A media URL's bytes (a file that was not downloaded when its message arrived)."""
        return await asyncio.to_thread(
            download_media,
            reference,
            self.inbox,
            self.services.options,
            self.services.attachments.max_bytes,
            FETCH_SECONDS,
        )

    async def send(self, message: OutboundMessage) -> Sent:
        """Create the Message at Twilio: its SID and how far it got by Twilio's answer
        (`queued`, almost always: the status callbacks tell the rest); errors come back
        classified."""
        parameters = self.message_parameters(message)
        return await asyncio.to_thread(self._create, parameters)

    def _create(self, parameters: dict[str, Any]) -> Sent:
        try:
            created = self.client().api.account.messages.create(**parameters)
        except TwilioRestException as error:
            raise classify(error.status, error.code, str(error.msg)) from None
        except TwilioServiceException as error:
            raise classify(error.status, error.code, str(error.title)) from None
        except requests.ConnectionError as error:  # refused, reset, DNS, connect timeout
            raise DeliveryError(
                DeliveryErrorKind.TRANSIENT,
                f"cannot reach Twilio: {type(error).__name__}",
                problem=DeliveryProblem.UNREACHABLE,
            ) from None
        except requests.Timeout:
            # The request went out: Twilio may have accepted it, so do not send it twice.
            raise DeliveryError(
                DeliveryErrorKind.PERMANENT,
                "Twilio did not answer in time; the SMS may have been sent, so it is not retried",
                problem=DeliveryProblem.IN_DOUBT,
            ) from None
        except (requests.RequestException, TwilioException) as error:
            raise DeliveryError(
                DeliveryErrorKind.TRANSIENT, f"{type(error).__name__}: {error}"
            ) from None
        sid = str(getattr(created, "sid", "") or "")
        if not sid:
            raise DeliveryError(
                DeliveryErrorKind.PERMANENT, "Twilio accepted the message without a SID"
            )
        status = str(getattr(created, "status", "") or "")
        if status in ("failed", "undelivered"):
            code = getattr(created, "error_code", None)
            detail = f" (error {code}: {getattr(created, 'error_message', '')})" if code else ""
            raise DeliveryError(
                DeliveryErrorKind.PERMANENT,
                f"Twilio answered {status}{detail}",
                problem=error_problem(code),
            )
        return Sent(sid, ANSWER_STATUSES.get(status, ProviderStatus.QUEUED))


def classify(status: int | None, code: int | None, message: str) -> DeliveryError:
    """Twilio's answer as a delivery error: STOP is blocked, 429/5xx transient, other 4xx not."""
    reason = (f"Twilio {status}" + (f" error {code}" if code else "") + f": {message}")[:500]
    problem = error_problem(code)
    if problem is DeliveryProblem.UNKNOWN:
        if status == 429:
            problem = DeliveryProblem.RATE_LIMITED
        elif status == 401:
            problem = DeliveryProblem.LOGIN_REFUSED
        elif status is None or status >= 500:
            problem = DeliveryProblem.UNREACHABLE
        else:
            problem = DeliveryProblem.REFUSED
    if code in BLOCKED_CODES:
        return DeliveryError(DeliveryErrorKind.BLOCKED, reason, problem=problem)
    if status == 429 or status is None or status >= 500:
        return DeliveryError(DeliveryErrorKind.TRANSIENT, reason, problem=problem)
    return DeliveryError(DeliveryErrorKind.PERMANENT, reason, problem=problem)


def webhook_rejection(slug: str, hook: str, params: FormParams, reason: str) -> Rejection:
    """The rejection record of one webhook request that could not be taken, with the request
    kept (`raw`) for a retry: Twilio does not send it again once it was answered."""
    key = params.first("MessageSid") or params.first("SmsSid") or params.first("CallSid")
    raw = json.dumps({"hook": hook, "params": dict(params)}, ensure_ascii=True)
    return Rejection(
        inbox_slug=slug,
        reason=reason,
        size=len(raw),
        message_id=key,
        sender=params.first("From"),
        chat=f"/hooks/twilio/{hook}",
        text=params.first("Body")[:300],
        raw=raw,
        key=key or hashlib.sha256(raw.encode()).hexdigest(),
    )
