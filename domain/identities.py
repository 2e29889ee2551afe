"""Normalising the identities a contact can be recognised by.

Identity resolution only works if the same person always produces the same
string: an e-mail is validated and lower-cased, a phone number becomes E.164,
Telegram ids are decimal integers. Everything that enters the log goes through
`normalise_identity` first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from uuid import NAMESPACE_URL, UUID, uuid5

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from threadline.domain.errors import InvalidInput

IDENTITY_NAMESPACE = uuid5(NAMESPACE_URL, "https://threadline.dev/identity")
_WEB_VISITOR_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class IdentityKind(StrEnum):
    """The kinds of identity a contact may carry."""

    EMAIL = "email"
    PHONE = "phone"
    TELEGRAM = "telegram"
    WEB = "web"


@dataclass(frozen=True, slots=True)
class Identity:
    """One normalised identity, e.g. ``Identity("email", "anna@example.com")``."""

    kind: IdentityKind
    value: str

    @property
    def claim_id(self) -> UUID:
        """The id of the claim aggregate that makes this identity unique in the store."""
        return identity_claim_id(self.kind, self.value)

    def as_dict(self) -> dict[str, str]:
        return {"kind": str(self.kind), "value": self.value}


@lru_cache(maxsize=65536)
def identity_claim_id(kind: str, value: str) -> UUID:
    # Cached: a message's identities are looked up by claim id several times per ingest.
    return uuid5(IDENTITY_NAMESPACE, f"{kind}:{value}")


def normalise_email(raw: str) -> str:
    """Validate syntax (no DNS look-up) and lower-case the whole address."""
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidInput("email", str(error)) from None
    return result.normalized.lower()


def normalise_phone(raw: str, default_region: str | None = None) -> str:
    """Parse a phone number and return it in E.164 (``+79161234567``).

    Numbers without a country code are read in `default_region`; without one
    they must start with ``+``.
    """
    text = raw.strip()
    if not text or len(text) > 40:
        raise InvalidInput("phone", "a phone number has 1 to 40 characters")
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as error:
        raise InvalidInput("phone", f"not a phone number ({error})") from None
    if not phonenumbers.is_possible_number(number) or not phonenumbers.is_valid_number(number):
        raise InvalidInput("phone", f"{text!r} is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_telegram(raw: str | int) -> str:
    text = str(raw).strip()
    if not text.isdigit() or len(text) > 20 or int(text) <= 0:
        raise InvalidInput("telegram", "a Telegram user id is a positive integer")
    return str(int(text))


def normalise_web_visitor(raw: str) -> str:
    text = raw.strip()
    if not _WEB_VISITOR_RE.match(text):
        raise InvalidInput("web", "a web visitor id has 1 to 128 letters, digits or _.:-")
    return text


def normalise_identity(
    kind: str | IdentityKind, raw: str | int, default_region: str | None = None
) -> Identity:
    """Return the normalised identity or raise `InvalidInput` naming the field."""
    try:
        ident_kind = IdentityKind(kind)
    except ValueError:
        raise InvalidInput("kind", f"unknown identity kind {kind!r}") from None
    if ident_kind is IdentityKind.EMAIL:
        value = normalise_email(str(raw))
    elif ident_kind is IdentityKind.PHONE:
        value = normalise_phone(str(raw), default_region)
    elif ident_kind is IdentityKind.TELEGRAM:
        value = normalise_telegram(raw)
    else:
        value = normalise_web_visitor(str(raw))
    return Identity(ident_kind, value)
