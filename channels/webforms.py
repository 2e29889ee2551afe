"""Web forms: a visitor's submission becomes an inbound message on the "web" channel.

The HTTP side (routes_forms.py) reads the request and calls the pure functions
here, which know nothing of HTTP: `submission_from_pairs` / `submission_from_json`
gather what was posted, `clean_submission` checks it against the form's
definition (every error names its field), `build_inbound` turns it into an
`InboundMessage` (dedup key: the page's idempotency token, or a hash of the
values), and `SlidingWindowLimiter` keeps one client from flooding a form.

Consent boxes (``consent:<purpose>``, one per purpose the form asks for) count as
ticked only for an explicit tick (`CONSENT_TICKS`, or JSON ``true``): consent must be
an unambiguous act. A required one left unticked is an error like a missing required
field; the ticked ones travel with the message (`InboundMessage.consents`) and ingest
records each in the policy's text in force.

The adapter sends nothing: replies to a web conversation go out
through another inbox (the delivery worker falls back to e-mail for "web").
Its one setting is the opt-in to read the client address from X-Forwarded-For.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID

from threadline.channels.base import ChannelAdapter, FieldKind, SettingField, register
from threadline.domain.model.attributes import AttributeRegistry, AttributeType, coerce_value
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.form import (
    HONEYPOT_FIELD,
    REFERRER_FIELD,
    TOKEN_FIELD,
    UTM_FIELDS,
    VISITOR_FIELD,
    FormConsent,
    FormDefinition,
    FormField,
    clean_origin,
    consent_field,
)
from threadline.domain.model.identities import normalise_email, normalise_phone
from threadline.domain.model.inbound import AttachmentMeta, InboundMessage

log = logging.getLogger("threadline.channels.webforms")

CHANNEL = "web"
ACTOR = "channel:web"
TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,128}$")
VISITOR = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
# Control characters other than tab and newlines, and lone surrogates (which JSON can carry):
# neither belongs in a message, and PostgreSQL text columns refuse NUL outright.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
SOURCE_LIMIT = 2000
FALSE_WORDS = frozenset({"", "0", "false", "no", "off"})
# What a ticked consent box sends: the page's "yes", a browser's default "on", or a script's
# true (JSON true, or "true"/"1"); anything else, garbage included, is not a consent.
CONSENT_TICKS = frozenset({"yes", "on", "true", "1"})
MAX_FILES = 10


class InvalidSubmission(Exception):
    """A submission the form cannot accept; `errors` maps each field to what is wrong."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


@dataclass(frozen=True, slots=True)
class UploadedFile:
    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class Submission:
    """What one POST carried, before it is checked against the form: single values per name."""

    values: dict[str, str | bool] = field(default_factory=dict)
    files: list[UploadedFile] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def honeypot_filled(self) -> bool:
        """Bots fill every input; people never see this one."""
        value = self.values.get(HONEYPOT_FIELD)
        return isinstance(value, str) and value.strip() != ""


@dataclass(frozen=True)
class RequestContext:
    """What the request says besides its body: the query string, Referer, the visitor cookie."""

    query: Mapping[str, str] = field(default_factory=dict)
    referer: str = ""
    visitor_cookie: str = ""


@dataclass(frozen=True)
class CleanSubmission:
    """A submission that the form accepts: values normalised, attribution gathered."""

    values: dict[str, str | bool]
    files: tuple[UploadedFile, ...]
    token: str
    source: dict[str, str]
    visitor_id: str
    email: str
    phone: str
    name: str
    attributes: dict[str, Any]
    # The purposes whose consent box was ticked, in the form's order.
    consents: tuple[str, ...] = ()


def clean_text(value: str) -> str:
    return _UNPRINTABLE.sub("", value)


def submission_from_pairs(pairs: Iterable[tuple[str, str | UploadedFile]]) -> Submission:
    """A urlencoded or multipart body; the first value of a repeated name wins."""
    submission = Submission()
    for name, value in pairs:
        if isinstance(value, UploadedFile):
            if len(submission.files) < MAX_FILES:
                submission.files.append(value)
            continue
        if name not in submission.values:
            submission.values[name] = clean_text(value)
    return submission


def submission_from_json(document: Any) -> Submission:
    """A JSON object of name -> text, number, true/false or null; anything else is an error."""
    if not isinstance(document, dict):
        raise InvalidSubmission({"body": "expected a JSON object of field name -> value"})
    submission = Submission()
    for name, value in document.items():
        if value is None:
            continue
        if isinstance(value, bool):
            submission.values[name] = value
        elif isinstance(value, int | float):
            if isinstance(value, float) and not math.isfinite(value):
                submission.errors[name] = "expected a finite number"
                continue
            submission.values[name] = str(value)
        elif isinstance(value, str):
            submission.values[name] = clean_text(value)
        else:
            submission.errors[name] = "expected a single value (text, number or true/false)"
    return submission


def _text_of(value: str | bool) -> str:
    if isinstance(value, bool):
        return "yes" if value else ""
    return value


def _check_field(form_field: FormField, raw: str | bool | None, region: str | None) -> str | bool:
    """The normalised value of one field; raises `ValueError` saying what is wrong."""
    if form_field.type == "checkbox":
        checked = raw if isinstance(raw, bool) else (raw or "").strip().lower() not in FALSE_WORDS
        if form_field.required and not checked:
            raise ValueError("must be checked")
        return checked
    text = _text_of(raw) if raw is not None else ""
    text = text if form_field.type == "textarea" else " ".join(text.split())
    text = text.strip()
    if not text:
        if form_field.required:
            raise ValueError("is required")
        return ""
    if len(text) > form_field.max_length:
        raise ValueError(f"is limited to {form_field.max_length} characters")
    kind = form_field.type
    if kind == "email":
        try:
            return normalise_email(text)
        except (InvalidInput, ValueError):
            raise ValueError("is not a valid e-mail address") from None
    if kind == "phone":
        try:
            return normalise_phone(text, region)
        except (InvalidInput, ValueError):
            raise ValueError("is not a valid phone number (include the country code)") from None
    if kind == "number":
        try:
            number = float(text.replace(",", "."))
        except ValueError:
            raise ValueError("expected a number") from None
        if not math.isfinite(number):
            raise ValueError("expected a finite number")
        return text
    if kind == "date":
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            raise ValueError("expected a date YYYY-MM-DD") from None
    if kind == "select" and text not in form_field.options:
        raise ValueError(f"choose one of {list(form_field.options)}")
    return text


def consent_ticked(raw: str | bool | None) -> bool:
    """Whether a consent box's value is a tick (only an explicit one is)."""
    if isinstance(raw, bool):
        return raw
    return raw is not None and raw.strip().lower() in CONSENT_TICKS


def consent_error(title: str) -> str:
    """What a required consent box left unticked says (the title is the policy's own words)."""
    return f"Tick the box to agree: {title}"


def _check_consents(
    consents: Iterable[FormConsent],
    values: Mapping[str, str | bool],
    titles: Mapping[str, str],
    errors: dict[str, str],
) -> tuple[str, ...]:
    """The ticked purposes; a required box left unticked adds its error."""
    ticked = []
    for consent in consents:
        if consent_ticked(values.get(consent.field_name)):
            ticked.append(consent.purpose)
        elif consent.required:
            errors[consent.field_name] = consent_error(titles.get(consent.purpose, consent.purpose))
    return tuple(ticked)


def _attribute_value(
    registry: AttributeRegistry | None, key: str, value: str | bool, form_field: FormField
) -> Any:
    """The value as the attribute's type; `ValueError` when it cannot be one."""
    if registry is None:
        raise ValueError("the contact attribute this field feeds is not defined")
    try:
        definition = registry.definition(key)
        raw: Any = value
        if isinstance(value, bool) and definition.type is not AttributeType.BOOLEAN:
            raw = "yes" if value else "no"
        elif form_field.type == "number" and isinstance(value, str):
            raw = value.replace(",", ".")
        return coerce_value(definition, raw)
    except InvalidInput as error:
        raise ValueError(error.message) from None


def clean_submission(
    form: FormDefinition,
    submission: Submission,
    context: RequestContext,
    registry: AttributeRegistry | None,
    default_region: str | None = None,
    consent_titles: Mapping[str, str] | None = None,
) -> CleanSubmission:
    """Check every field against the definition; raise `InvalidSubmission` with all errors.

    `consent_titles` (purpose -> the policy's title) words the error of a required
    consent box left unticked; without it the purpose names the box."""
    errors = dict(submission.errors)
    values: dict[str, str | bool] = {}
    for form_field in form.fields:
        if form_field.type == "file":
            if form_field.required and not any(
                f.field == form_field.name and f.data for f in submission.files
            ):
                errors[form_field.name] = "attach a file"
            continue
        try:
            values[form_field.name] = _check_field(
                form_field, submission.values.get(form_field.name), default_region
            )
        except ValueError as error:
            errors[form_field.name] = str(error)

    def mapped(target: str) -> str:
        target_field = form.target_field(target)
        if target_field is None or target_field.name in errors:
            return ""
        value = values.get(target_field.name, "")
        return value if isinstance(value, str) else ""

    email_field, phone_field = form.target_field("email"), form.target_field("phone")
    email, phone = mapped("email"), mapped("phone")
    if email and email_field is not None and email_field.type != "email":
        try:
            email = normalise_email(email)
        except (InvalidInput, ValueError):
            errors[email_field.name] = "is not a valid e-mail address"
            email = ""
    if phone and phone_field is not None and phone_field.type != "phone":
        try:
            phone = normalise_phone(phone, default_region)
        except (InvalidInput, ValueError):
            errors[phone_field.name] = "is not a valid phone number (include the country code)"
            phone = ""
    identity_fields = [f for f in (email_field, phone_field) if f is not None]
    if not email and not phone and not any(f.name in errors for f in identity_fields):
        for target_field in identity_fields:  # say it once the fields themselves are fine
            errors[target_field.name] = "give an e-mail address or a phone number"

    attributes: dict[str, Any] = {}
    for name, key in form.attribute_mapping().items():
        value = values.get(name, "")
        if name in errors or value == "":
            continue
        source_field = form.field(name)
        if source_field is None:  # the definition's check refuses such a mapping
            continue
        try:
            attributes[key] = _attribute_value(registry, key, value, source_field)
        except ValueError as error:
            errors[name] = str(error)

    consents = _check_consents(form.consents, submission.values, consent_titles or {}, errors)

    token = submission.values.get(TOKEN_FIELD, "")
    token = token.strip() if isinstance(token, str) else ""
    if token and not TOKEN.match(token):
        errors[TOKEN_FIELD] = "the form's token is damaged; reload the page"
    if errors:
        raise InvalidSubmission(errors)
    return CleanSubmission(
        values=values,
        files=tuple(submission.files),
        token=token,
        source=_source(submission, context),
        visitor_id=_visitor(submission, context),
        email=email,
        phone=phone,
        name=mapped("name"),
        attributes=attributes,
        consents=consents,
    )


def _source(submission: Submission, context: RequestContext) -> dict[str, str]:
    """utm_* from the body (the page copied them) or else the query string; the referrer
    from the body's field, or the Referer header when the body has no such field at all."""
    source: dict[str, str] = {}
    for name in UTM_FIELDS:
        value = submission.values.get(name)
        if not isinstance(value, str) or not value.strip():
            value = clean_text(context.query.get(name, ""))
        if value.strip():
            source[name] = value.strip()[:SOURCE_LIMIT]
    if REFERRER_FIELD in submission.values:
        referrer = submission.values[REFERRER_FIELD]
        referrer = referrer if isinstance(referrer, str) else ""
    else:
        referrer = clean_text(context.referer)
    if referrer.strip():
        source["referrer"] = referrer.strip()[:SOURCE_LIMIT]
    return source


def _visitor(submission: Submission, context: RequestContext) -> str:
    """The site's visitor id (a `tl_visitor` cookie or field); ignored when malformed."""
    for raw in (context.visitor_cookie, submission.values.get(VISITOR_FIELD, "")):
        if isinstance(raw, str) and VISITOR.match(raw.strip()):
            return raw.strip()
    return ""


def dedup_key(
    slug: str, token: str, values: Mapping[str, str | bool], consents: Iterable[str] = ()
) -> str:
    """The page's token when there is one; else the same values (and ticked consents, which
    a second, otherwise equal submission may add) always give the same key."""
    if token:
        return f"form:{slug}:{token}"
    values = {**values, **{consent_field(purpose): True for purpose in consents}}
    canonical = json.dumps(
        {"slug": slug, "values": sorted((k, _text_of(v)) for k, v in values.items())},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return f"form:{slug}:sha256:{hashlib.sha256(canonical.encode()).hexdigest()}"


def message_text(form: FormDefinition, clean: CleanSubmission) -> str:
    """One "Label: value" line per filled-in field, in the form's order."""
    lines = []
    for form_field in form.fields:
        if form_field.type == "file":
            names = [f.filename for f in clean.files if f.field == form_field.name]
            value = ", ".join(names)
        elif form_field.type == "checkbox":
            value = "yes" if clean.values.get(form_field.name) else "no"
        else:
            value = _text_of(clean.values.get(form_field.name, ""))
        if value:
            lines.append(f"{form_field.label}: {value}")
    return "\n".join(lines)


def build_inbound(
    form: FormDefinition,
    clean: CleanSubmission,
    attachments: Iterable[AttachmentMeta] = (),
    inbox_id: UUID | None = None,
    default_region: str | None = None,
) -> InboundMessage:
    """The message one accepted submission becomes; one conversation per contact and form."""
    return InboundMessage.create(
        channel=CHANNEL,
        dedup_key=dedup_key(form.slug, clean.token, clean.values, clean.consents),
        identities=[("email", clean.email), ("phone", clean.phone), ("web", clean.visitor_id)],
        sender_name=clean.name,
        subject=f"Form: {form.name}",
        text=message_text(form, clean),
        thread_key=f"form:{form.slug}",
        attachments=attachments,
        metadata={"form": form.slug, "kind": "form"},
        # The form is part of the inquiry's attribution: which form of the site it came by.
        source={**clean.source, "form": form.slug},
        default_region=default_region,
        inbox_id=inbox_id,
        # The ticked consent boxes: ingest records each in the policy's text now in force.
        consents=clean.consents,
    )


# -- who may post ----------------------------------------------------------------------------


def origin_allowed(form: FormDefinition, origin: str, own_origins: Iterable[str]) -> bool:
    """The form's own site is always allowed; others only when the allow-list names them."""
    try:
        cleaned = clean_origin(origin)
    except ValueError:  # "null" (a sandboxed frame, a file), or garbage
        return False
    if cleaned in set(own_origins):
        return True
    return form.allows_any_origin() or cleaned in form.allowed_origins


def own_origins(scheme: str, host: str, public_url: str) -> set[str]:
    """The origins the form page itself is served under: this request's, and the public URL's."""
    found: set[str] = set()
    for candidate in (f"{scheme}://{host}", public_url):
        try:
            found.add(clean_origin(candidate.rstrip("/")))
        except ValueError:
            continue
    return found


def client_address(peer: str | None, forwarded_for: str, trust_forwarded_for: bool) -> str:
    """The peer's address, or with the opt-in the address the nearest proxy saw (the last
    X-Forwarded-For entry: earlier ones are whatever the client chose to send)."""
    if trust_forwarded_for and forwarded_for.strip():
        last = forwarded_for.split(",")[-1].strip()
        if last:
            return last[:100]
    return peer or "unknown"


class SlidingWindowLimiter:
    """At most `limit` accepted hits per key in any `window` seconds, kept in memory.

    Per process: with several server processes each allows the limit, which is
    enough to stop a script hammering one form. Refused hits are not counted, so
    a client that waits for Retry-After gets in. Memory is bounded by `max_keys`.
    """

    def __init__(
        self,
        window: float = 60.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window
        self.max_keys = max_keys
        self.clock = clock
        self._hits: OrderedDict[Hashable, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: Hashable, limit: int) -> float | None:
        """Count one hit; None when allowed, else the seconds until one would be."""
        now = self.clock()
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                hits = self._hits[key] = deque()
            self._hits.move_to_end(key)
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= limit:
                return max(0.001, hits[0] + self.window - now)
            hits.append(now)
            if len(self._hits) > self.max_keys:
                self._prune(now)
            return None

    def _prune(self, now: float) -> None:
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]:
            del self._hits[key]
        while len(self._hits) > self.max_keys:
            self._hits.popitem(last=False)


@register
class WebFormsAdapter(ChannelAdapter):
    """Web forms arrive over HTTP (POST /forms/{slug}); an inbox of this channel is optional
    and, when it exists, new web conversations are filed under it."""

    channel = "webforms"
    title = "Web forms"
    settings_schema = (
        SettingField(
            "trust_forwarded_for",
            "Behind a reverse proxy: rate-limit by the X-Forwarded-For address",
            FieldKind.BOOLEAN,
            default=False,
            help="Only when every request passes a proxy that sets X-Forwarded-For; otherwise "
            "a client can pick any address and escape the per-address limit.",
        ),
    )
    conversation_channels = ("web",)
    can_send = False
