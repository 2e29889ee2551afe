"""Errors the domain raises, so that every caller can map them to one clear answer.

The HTTP layer turns each class into one status code (404, 409, 422); keeping the
classes here means the domain never has to know about HTTP.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class of every error a command can raise on purpose."""


class NotFound(DomainError):
    """The command names an aggregate that does not exist (HTTP 404)."""

    def __init__(self, kind: str, ident: object) -> None:
        super().__init__(f"{kind} {ident} not found")
        self.kind = kind
        self.ident = ident


class InvalidInput(DomainError):
    """A value breaks a domain rule (HTTP 422); `field` says which value."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Conflict(DomainError):
    """The command lost an optimistic-concurrency race or breaks uniqueness (HTTP 409)."""
