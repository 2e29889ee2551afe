"""The User aggregate: an operator, manager, admin or auditor account.

The log records the SHA-256 of each API token (a token itself is shown once,
when it is issued) and that a password was set; the password's argon2 hash is
kept outside the log, in the credential store.
"""

from __future__ import annotations

import hashlib
import secrets
from enum import StrEnum
from typing import Any
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


def _forget_hash(state: dict[str, Any]) -> None:
    """Upcast a version-1 event: it carried the password hash, now it says one was set.

    The hash itself was copied out to the credential store (see
    `threadline.services.credentials`), which reads the stored record, not this event.
    """
    state["password_set"] = bool(state.pop("password_hash", None))


class User(Aggregate):
    """A person who logs in; the role decides what they may change.

    The log says only whether a password was set: its hash lives in the credential
    store, which can replace and erase it, unlike the immutable log (version 1 of
    `UserCreated` and `UserPasswordChanged` carried the hash; the upcasters drop it).
    """

    class UserCreated(Aggregate.Created):
        email: str
        name: str
        role: str
        password_set: bool
        locale: str
        actor: str
        correlation_id: str
        class_version = 2
        upcast_v1_v2 = staticmethod(_forget_hash)

    class UserPasswordChanged(Aggregate.Event):
        actor: str
        correlation_id: str
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.pop("password_hash", None)

    @event(UserCreated)
    def __init__(
        self,
        email: str,
        name: str,
        role: str,
        password_set: bool,
        locale: str,
        actor: str,
        correlation_id: str,
    ) -> None:
        self.email = email
        self.name = name
        self.role = role
        self.has_password = password_set
        self.locale = locale
        self.timezone = ""  # an IANA name; "" is the installation's default
        self.active = True
        self.token_hashes: list[str] = []

    class UserTokenIssued(Aggregate.Event):
        token_hash: str
        label: str
        actor: str
        correlation_id: str

    @event(UserTokenIssued)
    def issue_token(self, token_hash: str, label: str, actor: str, correlation_id: str) -> None:
        self.token_hashes.append(token_hash)

    class UserTokenRevoked(Aggregate.Event):
        token_hash: str
        actor: str
        correlation_id: str

    @event(UserTokenRevoked)
    def revoke_token(self, token_hash: str, actor: str, correlation_id: str) -> None:
        self.token_hashes = [h for h in self.token_hashes if h != token_hash]

    @event(UserPasswordChanged)
    def change_password(self, actor: str, correlation_id: str) -> None:
        self.has_password = True

    class UserRoleChanged(Aggregate.Event):
        role: str
        actor: str
        correlation_id: str

    @event(UserRoleChanged)
    def change_role(self, role: str, actor: str, correlation_id: str) -> None:
        self.role = role

    class UserLocaleChanged(Aggregate.Event):
        locale: str
        actor: str
        correlation_id: str

    @event(UserLocaleChanged)
    def change_locale(self, locale: str, actor: str, correlation_id: str) -> None:
        """The language of the web app for this user (en, ru)."""
        self.locale = locale

    class UserTimezoneChanged(Aggregate.Event):
        timezone: str
        actor: str
        correlation_id: str

    @event(UserTimezoneChanged)
    def change_timezone(self, timezone: str, actor: str, correlation_id: str) -> None:
        """The time zone the web app shows this user's times in ("" for the default)."""
        self.timezone = timezone

    class UserDeactivated(Aggregate.Event):
        actor: str
        correlation_id: str

    @event(UserDeactivated)
    def deactivate(self, actor: str, correlation_id: str) -> None:
        self.active = False
