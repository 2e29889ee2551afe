"""What every page that takes a form shares: the posted body, its fields, the answer.

The contact, task and admin pages all post forms and answer with a redirect (POST, then
redirect, then GET); keeping these helpers in one module keeps one page module from
importing another's.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from eventsourcing.persistence import RecordConflictError
from fastapi import Depends, Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData

from threadline.domain.model.errors import DomainError
from threadline.services.web.deps import WebUser

# What a command may refuse with; a page shows it as a message, never a 500.
COMMAND_ERRORS = (DomainError, RecordConflictError)


async def _posted_form(request: Request) -> FormData:
    """The parsed body (Starlette keeps it, so the CSRF check's parse is reused)."""
    return await request.form()


FormDep = Annotated[FormData, Depends(_posted_form)]


def field(form: FormData, name: str) -> str:
    """A posted text field, trimmed ("" when missing or a file)."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def is_htmx(user: WebUser) -> bool:
    """Whether the request came from HTMX (answer with a fragment, not a page)."""
    return bool(user.request.headers.get("HX-Request"))


def local_url(value: str, default: str) -> str:
    """Only paths of this app are followed after a form (no open redirect)."""
    if value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


def redirect(url: str, flash: str | None = None) -> RedirectResponse:
    """POST, then redirect, then GET: a reload never submits twice."""
    target = f"{url}{'&' if '?' in url else '?'}done={flash}" if flash else url
    return RedirectResponse(target, status_code=303)


def parse_id(value: str) -> str | None:
    """The id in a URL or form, or None when it is not a UUID."""
    try:
        return str(UUID(value))
    except ValueError:
        return None
