"""What every command mixin of `Threadline` stands on: the writer and a unit for reading.

Each command module is a mixin of one aggregate or use case; `Threadline` composes
them with the library's `Application`. A mixin reaches the application only
through what is declared here, so it can be read (and type-checked) on its own.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.application import Application

from threadline.domain.infrastructure.group_commit import GroupCommitWriter
from threadline.domain.infrastructure.unit_of_work import IdentityMap, UnitOfWork
from threadline.domain.model.errors import InvalidInput


class Commands:
    """The base of every command mixin: commands go through `writer`, reads through a unit."""

    writer: GroupCommitWriter
    default_region: str | None

    def _read_unit(self) -> UnitOfWork:
        """A unit of work for reading in the caller's thread (nothing is saved through it)."""
        assert isinstance(self, Application), "a command mixin is part of an Application"
        app: Application[UUID] = self
        return UnitOfWork(IdentityMap(app))


def required_text(field: str, value: str, limit: int) -> str:
    """`value` if it has some non-blank text and at most `limit` characters."""
    if not value or not value.strip():
        raise InvalidInput(field, "must not be empty")
    if len(value) > limit:
        raise InvalidInput(field, f"is limited to {limit} characters")
    return value
