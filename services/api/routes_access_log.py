"""The access log for admins and auditors: `GET /api/audit/access`.

Who read which contact card, conversation, attachment or export, when, and through what
(`services/access_log.py` records them and keeps them append-only). The reads of the last
moment are still on their way to the table, so the route stores them first: a read made
just before the question is in the answer. Paged by id (`after` = the last id seen), oldest
first, so a reader that pages on never misses an entry written meanwhile.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from threadline.domain.model.user import Role
from threadline.services.access_log import MAX_PAGE, AccessQuery
from threadline.services.api.deps import Principal, RuntimeDep, require_roles
from threadline.services.api.schemas import MAX_OFFSET, Instant

router = APIRouter(prefix="/api/audit", tags=["audit"])

AuditReaderDep = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.AUDITOR))]


class AccessEntryOut(BaseModel):
    id: int = Field(..., description="increasing: page on with `after`")
    at: str = Field(..., description="when it was read (UTC, ISO 8601)")
    actor: str = Field(..., description="`user:<id>`, or `admin-token` for the bootstrap token")
    role: str = Field(..., description="the reader's role then")
    kind: Literal["contact", "conversation", "attachment", "export"]
    target_id: str = Field(
        ...,
        description="a contact or conversation id, `<message_id>/<index>` of an attachment,"
        " `<report>/<section>` of an export",
    )
    via: Literal["api", "web"]
    path: str = Field(..., description="the request's path (no query string)")


class AccessPageOut(BaseModel):
    items: list[AccessEntryOut] = Field(..., description="oldest first")
    next_after: int | None = Field(
        ..., description="pass as `after` for the next page; null: this page is the last"
    )


@router.get("/access", response_model=AccessPageOut)
def list_access(
    runtime: RuntimeDep,
    principal: AuditReaderDep,
    actor: Annotated[
        str | None, Query(max_length=200, description="`user:<id>` or `admin-token`")
    ] = None,
    kind: Literal["contact", "conversation", "attachment", "export"] | None = None,
    target_id: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[Instant | None, Query(alias="from", description="inclusive (UTC)")] = None,
    until: Annotated[Instant | None, Query(alias="to", description="exclusive (UTC)")] = None,
    after: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="the last id already seen")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> AccessPageOut:
    """Recorded reads of contact cards, conversations, attachments and exports, oldest first;
    admins and auditors only. A date and time without a zone is UTC."""
    log = runtime.access_log
    log.flush()  # the reads of the last moment (a failure is logged; their rows come later)
    query = AccessQuery(actor, kind, target_id, since, until, after, limit)
    entries, next_after = log.entries(query)
    return AccessPageOut(
        items=[AccessEntryOut.model_validate(e, from_attributes=True) for e in entries],
        next_after=next_after,
    )
