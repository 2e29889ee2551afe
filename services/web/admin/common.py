"""What every admin screen shares: who may change what, posted forms, errors, paging.

Managers and admins edit rules, templates, campaigns and forms; only admins
configure inboxes (they hold the channels' passwords); operators and auditors
read. A page shows its forms disabled to whoever may not submit them, and the
POST routes refuse them again (403), so a forced request changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.identities import normalise_identity
from threadline.projections.contact_card import contact_exists, contact_of_identity
from threadline.projections.sql import row_count
from threadline.services.runtime import Runtime
from threadline.services.web.deps import Forbidden, WebUser, WebWriterDep

EDITORS = ("admin", "manager")
ADMINS = ("admin",)
PAGE_SIZE = 50

# Messages after a redirect are named by a code in the query string (never free text).
FLASHES = {
    "saved": "Saved.",
    "created": "Created.",
    "enabled": "Switched on.",
    "disabled": "Switched off.",
    "started": "The campaign has started.",
    "paused": "The campaign is paused.",
    "resumed": "The campaign goes on.",
    "tested": "The test message is on its way.",
    "imported": "The rules file was imported.",
    "retried": "The message was fetched again and is in the inbox now.",
    "retry-rejected": "The message was refused again; the list says why.",
    "retry-gone": "The message is no longer on the mail server.",
    "retry-failed": "The mail server could not be reached; try again later.",
}


def can_edit(user: WebUser, roles: tuple[str, ...] = EDITORS) -> bool:
    return user.role in roles


def _require(roles: tuple[str, ...]) -> Callable[[WebUser], WebUser]:
    def check(user: WebWriterDep) -> WebUser:
        if user.role not in roles:
            if roles == ADMINS:
                raise Forbidden(user._("Only admins can change inboxes."))
            raise Forbidden(user._("Only managers and admins can change this."))
        return user

    return check


EditorDep = Annotated[WebUser, Depends(_require(EDITORS))]
AdminOnlyDep = Annotated[WebUser, Depends(_require(ADMINS))]


def text(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name)
    return value if isinstance(value, str) else default


def checked(form: FormData, name: str) -> bool:
    return text(form, name).lower() in ("1", "on", "true", "yes")


def flashes(user: WebUser, code: str | None) -> list[str]:
    return [user._(FLASHES[code])] if code in FLASHES else []


def not_found(user: WebUser, message: str) -> HTMLResponse:
    return user.render("error.html", status_code=404, title="404", message=message)


def wait(runtime: Runtime, committed: Any) -> None:
    runtime.wait_for_views(committed.notification_id)


@dataclass(frozen=True)
class Pager:
    """One page of a long list: pages are LIMIT/OFFSET queries, never the whole table."""

    number: int
    total: int
    size: int = PAGE_SIZE

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def has_prev(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def pager(runtime: Runtime, table: str, page: int) -> Pager:
    total = row_count(runtime.views, table)
    found = Pager(1, total)
    return Pager(min(max(page, 1), found.pages), total)


def find_contact(runtime: Runtime, given: str) -> str | None:
    """A contact by id, e-mail address, phone number or Telegram id (what an operator has)."""
    given = given.strip()
    if not given:
        return None
    try:
        contact_id = str(UUID(given))
    except ValueError:
        contact_id = ""
    if contact_id:
        return contact_id if contact_exists(runtime.views, contact_id) else None
    for kind in ("email", "phone", "telegram", "web"):
        try:
            value = normalise_identity(kind, given, runtime.settings.default_region).value
        except InvalidInput:
            continue
        found = contact_of_identity(runtime.views, kind, value)
        if found is not None:
            return found
    return None
