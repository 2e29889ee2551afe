"""Checking an inbox's settings against its channel's description, when it is saved.

A setting that is wrong when it is saved fails much later and somewhere else: a
webhook secret Telegram refuses breaks `setWebhook`, a ring time of 10^30 breaks
every call, an object where a token belongs breaks the SDK, a sandbox path
anywhere on disk lets the server (often root) append to any file. So every value
is checked by its `FieldKind` and the field's own constraints before anything is
stored, and a refusal is an `InvalidInput` naming `settings.<field>` (a 422).

Cleaning is idempotent: what was stored passes again unchanged, so an inbox read
and saved back (a PATCH, the admin form) keeps its settings as they are.
"""

from __future__ import annotations

import ipaddress
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import phonenumbers

from threadline.channels.base import FieldKind, SettingField
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.identities import normalise_email

MAX_LIST_ITEMS = 50
MAX_URL_LENGTH = 2000
MAX_HOST_LENGTH = 253
_HOST_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")

# Where the sandbox channel (and any other channel writing files) may write: `var/` in the
# server's working directory, the same data directory as the SQLite store and attachments.
DATA_DIR = Path("var")


def validate_settings(
    schema: Iterable[SettingField],
    given: Mapping[str, Any],
    kept_secrets: Iterable[str] = (),
    default_region: str | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Split `given` into plain settings and secret values, each cleaned by its field.

    `kept_secrets` names the secrets already stored, which a required secret left
    empty keeps. Raises `InvalidInput("settings.<name>", reason)`.
    """
    if not isinstance(given, Mapping):
        raise InvalidInput("settings", "expected an object of settings")
    fields = {spec.name: spec for spec in schema}
    unknown = sorted(str(name) for name in set(given) - set(fields))
    if unknown:
        raise InvalidInput(f"settings.{unknown[0]}", "unknown setting for this channel")
    stored = set(kept_secrets)
    plain: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for name, spec in fields.items():
        raw = given.get(name)
        if _empty(raw, spec):
            if spec.required and not (spec.secret and name in stored):
                raise InvalidInput(f"settings.{name}", "required")
            if not spec.secret and spec.default is not None:
                plain[name] = spec.default
            continue
        try:
            value = clean_value(spec, raw, default_region)
        except ValueError as error:
            raise InvalidInput(f"settings.{name}", str(error)) from None
        if spec.secret:
            secrets[name] = value
        else:
            plain[name] = value
    return plain, secrets


def _empty(raw: Any, spec: SettingField) -> bool:
    if raw is None:
        return True
    if isinstance(raw, str):
        return raw == "" if spec.secret else not raw.strip()
    return False


def clean_value(spec: SettingField, raw: Any, default_region: str | None = None) -> Any:
    """One value as it is stored, or `ValueError` saying what the field expects."""
    kind = spec.kind
    if kind is FieldKind.INTEGER:
        return _integer(spec, raw)
    if kind is FieldKind.BOOLEAN:
        return _boolean(raw)
    if kind is FieldKind.LIST:
        return _list(spec, raw)
    value = _text(spec, raw, strip=kind is not FieldKind.SECRET)
    if kind is FieldKind.URL:
        value = _url(value)
    elif kind is FieldKind.EMAIL:
        value = _email(value)
    elif kind is FieldKind.PHONE:
        value = _phone(value, default_region)
    if spec.choices:
        value = value.lower()
        if value not in spec.choices:
            raise ValueError(f"one of: {', '.join(spec.choices)}")
    if spec.pattern and not re.fullmatch(spec.pattern, value):
        raise ValueError(spec.pattern_help or f"does not match {spec.pattern}")
    if spec.check is not None:
        value = spec.check(value)
    return value


def _text(spec: SettingField, raw: Any, strip: bool = True) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise ValueError("expected text")
    text = str(raw)
    if strip:
        text = text.strip()
    if len(text) > spec.max_length:
        raise ValueError(f"at most {spec.max_length} characters")
    _printable(text)
    return text


def _printable(text: str) -> None:
    """No control characters (line breaks included) and no lone surrogates: a setting is one
    line, and PostgreSQL cannot store NUL."""
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cs"):
            raise ValueError("control characters are not allowed")


def _integer(spec: SettingField, raw: Any) -> int:
    low, high = spec.bounds
    if isinstance(raw, bool):
        raise ValueError("expected a whole number")
    if isinstance(raw, int):
        number = raw
    elif isinstance(raw, float) and raw.is_integer():
        number = int(raw)
    elif isinstance(raw, str) and re.fullmatch(r"[+-]?[0-9]{1,20}", raw.strip()):
        number = int(raw.strip())
    else:
        raise ValueError("expected a whole number")
    if not low <= number <= high:
        raise ValueError(f"a whole number from {low} to {high}")
    return number


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        word = raw.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise ValueError("expected true or false")


def _list(spec: SettingField, raw: Any) -> list[str]:
    if isinstance(raw, str):
        items: list[Any] = raw.split(",")
    elif isinstance(raw, list):
        items = raw
    else:
        raise ValueError("expected a list of text (or text separated by commas)")
    cleaned: list[str] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise ValueError("every item is text")
        text = str(item).strip()
        if not text:
            continue
        if len(text) > min(spec.max_length, 200):
            raise ValueError(f"an item has at most {min(spec.max_length, 200)} characters")
        _printable(text)
        cleaned.append(text)
    if len(cleaned) > MAX_LIST_ITEMS:
        raise ValueError(f"at most {MAX_LIST_ITEMS} items")
    return cleaned


def _url(text: str) -> str:
    if len(text) > MAX_URL_LENGTH or re.search(r"\s", text):
        raise ValueError(f"expected an http(s) URL of at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError for a port out of range
    except ValueError:
        raise ValueError("expected an http(s) URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or port == 0:
        raise ValueError("expected an http(s) URL")
    return text.rstrip("/")


def _email(text: str) -> str:
    try:
        return normalise_email(text)
    except InvalidInput as error:
        raise ValueError(f"not an e-mail address ({error.message})") from None


def _phone(text: str, default_region: str | None) -> str:
    """E.164. A number libphonenumber finds possible but does not know (a new range) is kept:
    the provider, not this library, is the judge of whether it rings."""
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        raise ValueError("not a phone number; write it with the country code (+...)") from None
    if not phonenumbers.is_possible_number(number):
        raise ValueError("not a possible phone number; write it with the country code (+...)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def valid_host(text: str) -> str:
    """A host name (RFC 1123 labels; `_` tolerated for internal names) or an IP address."""
    host = text.strip().rstrip(".").lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("not a host name or IP address") from None
    labels = ascii_host.split(".")
    if (
        not ascii_host
        or len(ascii_host) > MAX_HOST_LENGTH
        or not all(_HOST_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise ValueError("not a host name or IP address")
    return host


def confined_path(text: str, root: Path | None = None) -> Path:
    """The file `text` names, resolved (symbolic links followed), which must lie inside the
    data directory: refuses `..`, absolute paths elsewhere and links that lead out."""
    base = (root or DATA_DIR).resolve()
    if not text or "\x00" in text:
        raise ValueError(f"a file under {DATA_DIR}/")
    candidate = Path(text)
    if ".." in candidate.parts:
        raise ValueError(f"a file under {DATA_DIR}/, without '..'")
    full = candidate if candidate.is_absolute() else Path.cwd() / candidate
    resolved = Path(os.path.realpath(full))
    if resolved == base or not resolved.is_relative_to(base):
        raise ValueError(f"a file under {DATA_DIR}/ (the server's data directory)")
    if resolved.is_dir():
        raise ValueError("a file, not a directory")
    return resolved


def data_file(text: str) -> str:
    """`check` of a file setting: confined to the data directory, stored as written."""
    confined_path(text)
    return text
