"""Passwords: hashed with argon2 and kept outside the log, which can never forget one.

The log records only that a password was set (`UserPasswordChanged`); the hash goes
to a `PasswordStore` (the services keep hashes encrypted in the state database,
`threadline.services.credentials`). Every check costs one argon2 verification,
whether or not the account has a hash, so timing tells nothing about accounts.
"""

from __future__ import annotations

from functools import cache
from typing import Protocol
from uuid import UUID

from argon2 import PasswordHasher

from threadline.domain.model.errors import InvalidInput

_password_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Checked against when an account has no hash (unknown, inactive, never given a
    password), so that answer costs one argon2 verification like a wrong password does."""
    return _password_hasher.hash("threadline-no-such-account")


class PasswordStore(Protocol):
    """Where password hashes live: outside the log, which can never forget one.

    The services keep them encrypted in the state database
    (`threadline.services.credentials`); the log records only that a password was set.
    """

    def set_password_hash(self, user_id: UUID, password_hash: str) -> None: ...

    def password_hash(self, user_id: str) -> str | None: ...


class MemoryPasswordStore:
    """A `PasswordStore` for an application without a state database (domain tests)."""

    def __init__(self) -> None:
        self._hashes: dict[str, str] = {}

    def set_password_hash(self, user_id: UUID, password_hash: str) -> None:
        self._hashes[str(user_id)] = password_hash

    def password_hash(self, user_id: str) -> str | None:
        return self._hashes.get(str(user_id))


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise InvalidInput("password", "a password has at least 8 characters")
    return _password_hasher.hash(password)


def argon2_verify(password_hash: str, password: str) -> bool:
    """The one place a password is checked (the login tests count the calls)."""
    return _password_hasher.verify(password_hash, password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return argon2_verify(password_hash, password)
    except Exception:
        return False


def check_password(password_hash: str | None, password: str) -> bool:
    """`verify_password` that costs the same whether or not there is a hash to check."""
    if not password_hash:
        verify_password(_dummy_hash(), password)
        return False
    return verify_password(password_hash, password)
