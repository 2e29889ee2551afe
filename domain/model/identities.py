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
from uuid import NAMESPACE_URL, UUID, uuid5

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.pseudonyms import pseudonymous_id

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


def identity_claim_id(kind: str, value: str) -> UUID:
    """Keyed (`threadline.domain.model.pseudonyms`): a claim's id does not confirm a guessed
    address to whoever holds the log."""
    return pseudonymous_id(IDENTITY_NAMESPACE, f"{kind}:{value}")


# Special-use names that are real mail domains on company and home networks (RFC 6761,
# RFC 6762 `.local`, RFC 8375 `home.arpa`, ICANN's `.internal`). email-validator refuses
# some of them whatever its options say, so their syntax is checked under a stand-in.
PRIVATE_MAIL_DOMAINS = ("local", "localhost", "test", "home.arpa", "internal", "example")
_STAND_IN = ".private-mail.example.com"


def normalise_email(raw: str) -> str:
    """Validate syntax (no DNS look-up) and lower-case the whole address.

    Accepted besides public addresses: address literals (`user@[192.0.2.1]`,
    `user@[IPv6:2001:db8::1]`) and the special-use domains of
    `PRIVATE_MAIL_DOMAINS` (`printer@office.local`, `root@localhost`), which
    are real senders inside a company network. Still refused: `.invalid`,
    `.onion` and other reserved names no mail can come from.
    """
    text = raw.strip()
    local, at, domain = text.rpartition("@")
    bare = domain.lower().rstrip(".")
    private = bool(at) and any(
        bare == name or bare.endswith("." + name) for name in PRIVATE_MAIL_DOMAINS
    )
    try:
        result = validate_email(
            f"{local}@{domain.rstrip('.')}{_STAND_IN}" if private else text,
            check_deliverability=False,
            allow_domain_literal=True,
        )
    except (EmailNotValidError, UnicodeError) as error:
        raise InvalidInput("email", str(error).replace(_STAND_IN, "")) from None
    normalized = result.normalized.lower()
    if private:
        normalized = normalized.removesuffix(_STAND_IN)
    if normalized.endswith("]") and "@[ipv6:" in normalized:
        normalized = normalized.replace("@[ipv6:", "@[IPv6:", 1)  # the tag as RFC 5321 writes it
    return normalized


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


_PHONE_TEXT = re.compile(r"^\+?[0-9 ().\-/]+$")
MIN_RAW_PHONE_DIGITS, MAX_RAW_PHONE_DIGITS = 3, 20


def raw_phone(raw: str) -> str:
    """A number libphonenumber does not know, as its digits (with the `+` it was written with).

    Providers deliver numbers from ranges newer than the library's data, short codes
    (`900`, `12345`) and numbers of regions it cannot place; the message is kept, with
    this as the sender's identity. The same digits always give the same identity, and
    a `+` number equals its E.164 form once the library learns the range. Text that is
    not a number at all (letters, too few or too many digits) is still refused.
    """
    text = raw.strip()
    digits = "".join(char for char in text if char.isascii() and char.isdigit())
    if (
        not _PHONE_TEXT.match(text)
        or text.count("+") > 1
        or not MIN_RAW_PHONE_DIGITS <= len(digits) <= MAX_RAW_PHONE_DIGITS
    ):
        raise InvalidInput("phone", f"{text[:40]!r} is not a phone number")
    return f"+{digits}" if text.startswith("+") else digits


def normalise_phone_leniently(raw: str, default_region: str | None = None) -> str:
    """E.164 when libphonenumber knows the number, else `raw_phone` (for what providers
    deliver: the input cannot be corrected, and losing the message is worse)."""
    try:
        return normalise_phone(raw, default_region)
    except InvalidInput:
        return raw_phone(raw)


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
    kind: str | IdentityKind,
    raw: str | int,
    default_region: str | None = None,
    strict_phone: bool = True,
) -> Identity:
    """Return the normalised identity or raise `InvalidInput` naming the field.

    `strict_phone=False` (inbound messages) keeps a number libphonenumber does not
    know as its digits (`raw_phone`) instead of refusing it.
    """
    try:
        ident_kind = IdentityKind(kind)
    except ValueError:
        raise InvalidInput("kind", f"unknown identity kind {kind!r}") from None
    if ident_kind is IdentityKind.EMAIL:
        value = normalise_email(str(raw))
    elif ident_kind is IdentityKind.PHONE:
        if strict_phone:
            value = normalise_phone(str(raw), default_region)
        else:
            value = normalise_phone_leniently(str(raw), default_region)
    elif ident_kind is IdentityKind.TELEGRAM:
        value = normalise_telegram(raw)
    else:
        value = normalise_web_visitor(str(raw))
    return Identity(ident_kind, value)
