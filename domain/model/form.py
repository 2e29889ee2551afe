"""The Form aggregate: a web form's definition, so that leads from a site land as conversations.

A form is identified by its slug (`uuid5` of it), so ``POST /forms/{slug}`` finds
it without a query. Its definition is data in the log (fields, how fields map to
contact data, where to send the visitor afterwards, which sites may embed it),
so every change is audited and a submission can always be read against the
definition that was in force.

`FormDefinition.create` validates a definition on its own (names, types,
options, URLs, origins, consents); `threadline.domain.commands.forms` adds what needs the
store: that a mapping to ``attributes.<key>`` names an attribute the registry defines, and
that each consent names a published consent policy.

A form asks for consent (152-FZ art. 9, GDPR art. 7) with one separate, unticked box per
purpose (`FormConsent`), posted as ``consent:<purpose>``: a field name cannot hold a colon,
so no field can take a box's name. Definitions recorded before forms had consents have no
``consents`` key; `FormDefinition.from_dict` reads them as having none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.inbox import clean_slug

FORM_NAMESPACE = uuid5(NAMESPACE_URL, "https://threadline.dev/form")
FIELD_NAME = re.compile(r"^[a-z0-9_]{1,40}$")
FIELD_TYPES = (
    "text",
    "email",
    "phone",
    "textarea",
    "select",
    "checkbox",
    "number",
    "date",
    "hidden",
    "file",
)
# Names the public page uses for its own hidden inputs; a form field may not take them.
HONEYPOT_FIELD = "website"
TOKEN_FIELD = "_token"
REFERRER_FIELD = "referrer"
VISITOR_FIELD = "tl_visitor"
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
RESERVED_FIELDS = frozenset(
    {HONEYPOT_FIELD, TOKEN_FIELD, REFERRER_FIELD, VISITOR_FIELD, *UTM_FIELDS}
)
# A consent box is posted as "consent:<purpose>"; FIELD_NAME has no colon, so every name
# with this prefix is the page's own, like the reserved names above.
CONSENT_PREFIX = "consent:"
MAX_CONSENTS = 10
# Which field types may feed each contact target (identity values must be typed text).
TARGET_TYPES = {
    "name": ("text", "hidden"),
    "email": ("email", "text", "hidden"),
    "phone": ("phone", "text", "hidden"),
}
ATTRIBUTE_PREFIX = "attributes."
ANY_ORIGIN = "*"
MAX_FIELDS = 50
MAX_OPTIONS = 100
MAX_LENGTH_LIMIT = 20_000
DEFAULT_MAX_LENGTH = {"textarea": 5000}
DEFAULT_RATE_LIMIT = 10
MAX_RATE_LIMIT = 10_000
DEFAULT_THANKS = "Thank you! We have your message and will be in touch soon."


def form_id_for(slug: str) -> UUID:
    return uuid5(FORM_NAMESPACE, clean_slug(slug))


def consent_field(purpose: str) -> str:
    """The name a consent box is posted under."""
    return f"{CONSENT_PREFIX}{purpose}"


def is_reserved_name(name: str) -> bool:
    """Whether the form page uses `name` itself (a hidden input, a consent box)."""
    return name in RESERVED_FIELDS or name.startswith(CONSENT_PREFIX)


@dataclass(frozen=True, slots=True)
class FormConsent:
    """One consent the form asks for: a separate, unticked box for the purpose's policy
    (its title and current text come from the policy, so a new text shows at once)."""

    purpose: str
    required: bool = False

    @property
    def field_name(self) -> str:
        return consent_field(self.purpose)

    def as_dict(self) -> dict[str, Any]:
        return {"purpose": self.purpose, "required": self.required}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FormConsent:
        return cls(purpose=str(data["purpose"]), required=bool(data.get("required", False)))


@dataclass(frozen=True, slots=True)
class FormField:
    """One input of a form; `default` pre-fills it (the value of a hidden field)."""

    name: str
    label: str
    type: str = "text"
    required: bool = False
    options: tuple[str, ...] = ()
    max_length: int = 500
    placeholder: str = ""
    default: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "required": self.required,
            "options": list(self.options),
            "max_length": self.max_length,
            "placeholder": self.placeholder,
            "default": self.default,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FormField:
        return cls(
            name=str(data["name"]),
            label=str(data["label"]),
            type=str(data.get("type", "text")),
            required=bool(data.get("required", False)),
            options=tuple(str(o) for o in data.get("options") or ()),
            max_length=int(data.get("max_length", 500)),
            placeholder=str(data.get("placeholder", "")),
            default=str(data.get("default", "")),
        )


@dataclass(frozen=True, slots=True)
class FormDefinition:
    """A whole form, validated; build it with `FormDefinition.create`.

    `allowed_origins` lists the sites (``https://shop.example``) whose pages may
    post to the form from the browser; ``["*"]`` allows every site, on purpose
    and explicitly (the form's own page is always allowed).
    """

    slug: str
    name: str
    fields: tuple[FormField, ...]
    mapping: dict[str, str] = field(default_factory=dict)
    description: str = ""
    submit_label: str = "Send"
    thank_you_text: str = DEFAULT_THANKS
    thank_you_url: str = ""
    allowed_origins: tuple[str, ...] = ()
    rate_limit_per_minute: int = DEFAULT_RATE_LIMIT
    consents: tuple[FormConsent, ...] = ()

    def field(self, name: str) -> FormField | None:
        for form_field in self.fields:
            if form_field.name == name:
                return form_field
        return None

    def target_field(self, target: str) -> FormField | None:
        """The field mapped to `target` ("email", "attributes.plan", ...), if any."""
        for name, mapped in self.mapping.items():
            if mapped == target:
                return self.field(name)
        return None

    def attribute_mapping(self) -> dict[str, str]:
        """Field name -> attribute key, for the fields mapped to custom attributes."""
        return {
            name: target[len(ATTRIBUTE_PREFIX) :]
            for name, target in self.mapping.items()
            if target.startswith(ATTRIBUTE_PREFIX)
        }

    def allows_any_origin(self) -> bool:
        return ANY_ORIGIN in self.allowed_origins

    def as_dict(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "name": self.name,
            "description": self.description,
            "fields": [f.as_dict() for f in self.fields],
            "mapping": dict(self.mapping),
            "submit_label": self.submit_label,
            "thank_you_text": self.thank_you_text,
            "thank_you_url": self.thank_you_url,
            "allowed_origins": list(self.allowed_origins),
            "rate_limit_per_minute": self.rate_limit_per_minute,
            "consents": [c.as_dict() for c in self.consents],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FormDefinition:
        """Read back a definition the log holds (already validated when it was recorded)."""
        return cls(
            slug=str(data["slug"]),
            name=str(data["name"]),
            description=str(data.get("description", "")),
            fields=tuple(FormField.from_dict(f) for f in data.get("fields") or ()),
            mapping={str(k): str(v) for k, v in (data.get("mapping") or {}).items()},
            submit_label=str(data.get("submit_label") or "Send"),
            thank_you_text=str(data.get("thank_you_text") or DEFAULT_THANKS),
            thank_you_url=str(data.get("thank_you_url") or ""),
            allowed_origins=tuple(str(o) for o in data.get("allowed_origins") or ()),
            rate_limit_per_minute=int(data.get("rate_limit_per_minute", DEFAULT_RATE_LIMIT)),
            # Definitions recorded before forms asked for consent have no such key: none.
            consents=tuple(FormConsent.from_dict(c) for c in data.get("consents") or ()),
        )

    @classmethod
    def create(cls, data: Mapping[str, Any]) -> FormDefinition:
        """Validate loose input (an API body); raises `InvalidInput` naming the offending field."""
        slug = clean_slug(_string(data.get("slug"), "slug", 40))
        name = _required_text(data.get("name"), "name", 200)
        raw_fields = data.get("fields")
        if not isinstance(raw_fields, list | tuple) or not raw_fields:
            raise InvalidInput("fields", "a form needs at least one field")
        if len(raw_fields) > MAX_FIELDS:
            raise InvalidInput("fields", f"a form has at most {MAX_FIELDS} fields")
        fields = tuple(_clean_field(raw, index) for index, raw in enumerate(raw_fields))
        seen: set[str] = set()
        for index, form_field in enumerate(fields):
            if form_field.name in seen:
                raise InvalidInput(f"fields.{index}.name", f"{form_field.name!r} is used twice")
            seen.add(form_field.name)
        definition = cls(
            slug=slug,
            name=name,
            fields=fields,
            mapping=_clean_mapping(data.get("mapping"), fields),
            description=_string(data.get("description"), "description", 2000).strip(),
            submit_label=_string(data.get("submit_label"), "submit_label", 100).strip() or "Send",
            thank_you_text=_string(data.get("thank_you_text"), "thank_you_text", 2000).strip()
            or DEFAULT_THANKS,
            thank_you_url=_clean_url(data.get("thank_you_url"), "thank_you_url"),
            allowed_origins=_clean_origins(data.get("allowed_origins")),
            rate_limit_per_minute=_rate_limit(data.get("rate_limit_per_minute")),
            consents=_clean_consents(data.get("consents")),
        )
        return definition


def _string(value: Any, name: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(name, "expected text")
    if len(value) > limit:
        raise InvalidInput(name, f"is limited to {limit} characters")
    return value


def _required_text(value: Any, name: str, limit: int) -> str:
    text = _string(value, name, limit).strip()
    if not text:
        raise InvalidInput(name, "must not be empty")
    return text


def _clean_field(raw: Any, index: int) -> FormField:
    where = f"fields.{index}"
    if not isinstance(raw, Mapping):
        raise InvalidInput(where, "a field is an object with name, label and type")
    name = _string(raw.get("name"), f"{where}.name", 40).strip()
    if not FIELD_NAME.match(name):
        raise InvalidInput(f"{where}.name", "1 to 40 lower-case letters, digits or _")
    if is_reserved_name(name):
        raise InvalidInput(f"{where}.name", f"{name!r} is reserved for the form page itself")
    kind = _string(raw.get("type"), f"{where}.type", 20).strip() or "text"
    if kind not in FIELD_TYPES:
        raise InvalidInput(f"{where}.type", f"one of {list(FIELD_TYPES)}")
    label = _string(raw.get("label"), f"{where}.label", 200).strip()
    if not label and kind != "hidden":
        raise InvalidInput(f"{where}.label", "a visible field needs a label")
    raw_options = raw.get("options") or []
    if not isinstance(raw_options, list | tuple) or len(raw_options) > MAX_OPTIONS:
        raise InvalidInput(f"{where}.options", f"a list of at most {MAX_OPTIONS} options")
    options = tuple(_string(o, f"{where}.options", 200).strip() for o in raw_options)
    if kind == "select" and (not options or not all(options)):
        raise InvalidInput(f"{where}.options", "a select field needs non-empty options")
    if kind != "select" and options:
        raise InvalidInput(f"{where}.options", "only select fields take options")
    if len(set(options)) != len(options):
        raise InvalidInput(f"{where}.options", "options must be unique")
    max_length = raw.get("max_length")
    if max_length is None:
        max_length = DEFAULT_MAX_LENGTH.get(kind, 500)
    if (
        isinstance(max_length, bool)
        or not isinstance(max_length, int)
        or not 1 <= max_length <= MAX_LENGTH_LIMIT
    ):
        raise InvalidInput(f"{where}.max_length", f"a whole number from 1 to {MAX_LENGTH_LIMIT}")
    required = raw.get("required", False)
    if not isinstance(required, bool):
        raise InvalidInput(f"{where}.required", "expected true or false")
    if required and kind == "hidden":
        raise InvalidInput(f"{where}.required", "a hidden field cannot be required")
    default = _string(raw.get("default"), f"{where}.default", max_length)
    if kind == "select" and default and default not in options:
        raise InvalidInput(f"{where}.default", "the default must be one of the options")
    return FormField(
        name=name,
        label=label or name,
        type=kind,
        required=required,
        options=options,
        max_length=max_length,
        placeholder=_string(raw.get("placeholder"), f"{where}.placeholder", 200).strip(),
        default=default,
    )


def _clean_mapping(raw: Any, fields: tuple[FormField, ...]) -> dict[str, str]:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise InvalidInput("mapping", "an object of field name -> contact target")
    by_name = {f.name: f for f in fields}
    mapping: dict[str, str] = {}
    targets: set[str] = set()
    for name, target in raw.items():
        where = f"mapping.{name}"
        if name not in by_name:
            raise InvalidInput(where, "the form has no such field")
        if not isinstance(target, str):
            raise InvalidInput(where, "expected name, email, phone or attributes.<key>")
        target = target.strip()
        kind = by_name[name].type
        if target in TARGET_TYPES:
            if kind not in TARGET_TYPES[target]:
                allowed = ", ".join(TARGET_TYPES[target])
                raise InvalidInput(where, f"{target} takes a field of type {allowed}")
        elif target.startswith(ATTRIBUTE_PREFIX) and len(target) > len(ATTRIBUTE_PREFIX):
            if kind == "file":
                raise InvalidInput(where, "a file cannot be kept in a contact attribute")
        else:
            raise InvalidInput(where, "expected name, email, phone or attributes.<key>")
        if target in targets:
            raise InvalidInput(where, f"{target} is mapped from two fields")
        targets.add(target)
        mapping[str(name)] = target
    if not targets & {"email", "phone"}:
        raise InvalidInput(
            "mapping", "map a field to email or phone: a lead needs a way to be reached"
        )
    return mapping


def _clean_url(value: Any, name: str) -> str:
    text = _string(value, name, 2000).strip()
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in text):
        raise InvalidInput(name, "expected an http(s) URL")
    return text


def clean_origin(value: str) -> str:
    """``HTTPS://Shop.Example:443/`` -> ``https://shop.example``: the form browsers send in Origin."""
    parts = urlsplit(value.strip())
    host = (parts.hostname or "").lower()
    if (
        parts.scheme.lower() not in ("http", "https")
        or not host
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise ValueError(f"{value!r} is not an origin")
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{value!r} has a bad port") from None
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _clean_origins(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple) or len(raw) > 100:
        raise InvalidInput("allowed_origins", "a list of at most 100 origins")
    origins: list[str] = []
    for index, value in enumerate(raw):
        where = f"allowed_origins.{index}"
        if not isinstance(value, str):
            raise InvalidInput(where, "expected an origin such as https://shop.example")
        if value.strip() == ANY_ORIGIN:
            origin = ANY_ORIGIN
        else:
            try:
                origin = clean_origin(value)
            except ValueError:
                raise InvalidInput(
                    where, "expected an origin such as https://shop.example (no path), or *"
                ) from None
        if origin not in origins:
            origins.append(origin)
    if ANY_ORIGIN in origins and len(origins) > 1:
        raise InvalidInput("allowed_origins", "* allows every site; list it alone")
    return tuple(origins)


def _clean_consents(raw: Any) -> tuple[FormConsent, ...]:
    """At most `MAX_CONSENTS` purposes, each once; whether a policy exists is the commands'."""
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple) or len(raw) > MAX_CONSENTS:
        raise InvalidInput(
            "consents", f"a list of at most {MAX_CONSENTS} consents, each a purpose and required"
        )
    consents: list[FormConsent] = []
    for index, item in enumerate(raw):
        where = f"consents.{index}"
        if not isinstance(item, Mapping):
            raise InvalidInput(where, "a consent is an object with purpose and required")
        try:
            purpose = clean_slug(_string(item.get("purpose"), f"{where}.purpose", 40))
        except InvalidInput as error:
            if error.field != "slug":
                raise
            raise InvalidInput(
                f"{where}.purpose",
                "a purpose is a slug: 1 to 40 lower-case letters, digits or dashes",
            ) from None
        required = item.get("required", False)
        if not isinstance(required, bool):
            raise InvalidInput(f"{where}.required", "expected true or false")
        if any(c.purpose == purpose for c in consents):
            raise InvalidInput(f"{where}.purpose", f"{purpose!r} is asked for twice")
        consents.append(FormConsent(purpose=purpose, required=required))
    return tuple(consents)


def _rate_limit(value: Any) -> int:
    if value is None:
        return DEFAULT_RATE_LIMIT
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RATE_LIMIT:
        raise InvalidInput("rate_limit_per_minute", f"a whole number from 1 to {MAX_RATE_LIMIT}")
    return value


class Form(Aggregate):
    """A form's definition (as `FormDefinition.as_dict`) and whether it accepts submissions."""

    class FormDefined(Aggregate.Created):
        slug: str
        definition: dict[str, Any]
        actor: str
        correlation_id: str

    @event(FormDefined)
    def __init__(
        self,
        id: UUID,
        slug: str,
        definition: dict[str, Any],
        actor: str,
        correlation_id: str,
    ) -> None:
        self.slug = slug
        self.definition = dict(definition)
        self.enabled = True

    class FormChanged(Aggregate.Event):
        definition: dict[str, Any]
        actor: str
        correlation_id: str

    @event(FormChanged)
    def change(self, definition: dict[str, Any], actor: str, correlation_id: str) -> None:
        self.definition = dict(definition)

    class FormEnabledChanged(Aggregate.Event):
        enabled: bool
        actor: str
        correlation_id: str

    @event(FormEnabledChanged)
    def set_enabled(self, enabled: bool, actor: str, correlation_id: str) -> None:
        self.enabled = enabled

    @property
    def spec(self) -> FormDefinition:
        return FormDefinition.from_dict(self.definition)
