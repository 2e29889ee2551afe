"""The User aggregate: an operator, manager, admin or auditor account.

Only hashes are recorded: the argon2 hash of the password and the SHA-256 of
each API token. A token itself is shown once, when it is issued.
"""

from __future__ import annotations

import hashlib
import secrets
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from eventsourcing.domain import Aggregate, event


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    OPERATOR = "operator"
    AUDITOR = "auditor"


TOKEN_PREFIX = "tl_"


def is_time_zone(name: str) -> bool:
    """Whether `name` is a time zone the system's IANA database knows."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def new_api_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """Tokens are long random strings, so a fast hash is enough (unlike passwords)."""
    return hashlib.sha256(token.encode()).hexdigest()


class User(Aggregate):
    """A person who logs in; the role decides what they may change."""

    @event("UserCreated")
    def __init__(
        self,
        email: str,
        name: str,
        role: str,
        password_hash: str | None,
        locale: str,
        actor: str,
        correlation_id: str,
    ) -> None:
        self.email = email
        self.name = name
        self.role = role
        self.password_hash = password_hash
        self.locale = locale
        self.timezone = ""  # an IANA name; "" is the installation's default
        self.active = True
        self.token_hashes: list[str] = []

    @event("UserTokenIssued")
    def issue_token(self, token_hash: str, label: str, actor: str, correlation_id: str) -> None:
        self.token_hashes.append(token_hash)

    @event("UserTokenRevoked")
    def revoke_token(self, token_hash: str, actor: str, correlation_id: str) -> None:
        self.token_hashes = [h for h in self.token_hashes if h != token_hash]

    @event("UserPasswordChanged")
    def change_password(self, password_hash: str, actor: str, correlation_id: str) -> None:
        self.password_hash = password_hash

    @event("UserRoleChanged")
    def change_role(self, role: str, actor: str, correlation_id: str) -> None:
        self.role = role

    @event("UserLocaleChanged")
    def change_locale(self, locale: str, actor: str, correlation_id: str) -> None:
        """The language of the web app for this user (en, ru)."""
        self.locale = locale

    @event("UserTimezoneChanged")
    def change_timezone(self, timezone: str, actor: str, correlation_id: str) -> None:
        """The time zone the web app shows this user's times in ("" for the default)."""
        self.timezone = timezone

    @event("UserDeactivated")
    def deactivate(self, actor: str, correlation_id: str) -> None:
        self.active = False
