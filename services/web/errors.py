"""Domain errors as the web pages show them: the JSON API's status, the domain's own words."""

from __future__ import annotations

from eventsourcing.persistence import RecordConflictError

from threadline.domain.model.errors import Conflict, InvalidInput, NotFound
from threadline.services.web.deps import WebUser


def status_of(error: Exception) -> int:
    """The status the JSON API answers the same error with."""
    if isinstance(error, InvalidInput):
        return 422
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, Conflict | RecordConflictError):
        return 409
    return 400


def message_of(user: WebUser, error: Exception) -> str:
    """The message next to the form, translated when the catalogue knows it."""
    if isinstance(error, InvalidInput):
        return user._(error.message)
    if isinstance(error, RecordConflictError):
        return user._("Someone changed this at the same time; reload and try again.")
    return str(error)
