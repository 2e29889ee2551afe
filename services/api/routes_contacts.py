"""Contacts: the filtered list, the card, the timeline, create and change, opt back in."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from threadline.domain.model.errors import NotFound
from threadline.projections.segments import build_contact_filter
from threadline.services.api.deps import PrincipalDep, RuntimeDep, WriterDep
from threadline.services.api.schemas import (
    MAX_OFFSET,
    ContactIn,
    ContactPatch,
    IdOut,
    ListOut,
    Offset,
)

router = APIRouter(prefix="/api/contacts", tags=["contacts"])


@router.get("", response_model=ListOut)
def list_contacts(
    request: Request,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    tag: Annotated[list[str] | None, Query(description="all given tags must be present")] = None,
    lifecycle: str | None = None,
    responsible_id: UUID | None = None,
    company_id: UUID | None = None,
    source: Annotated[str | None, Query(description="the channel the lead came from")] = None,
    created_from: Annotated[str | None, Query(description="ISO date or time, inclusive")] = None,
    created_to: Annotated[str | None, Query(description="ISO date or time, exclusive")] = None,
    q: Annotated[
        str | None, Query(max_length=200, description="text in name or identities")
    ] = None,
    preferred_channel: Annotated[
        str | None,
        Query(max_length=64, description="the channel of most inbound contacts (ties: latest)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> ListOut:
    """Filter contacts; attributes filter as `attr.industry=retail` or `attr.staff_size.gte=50`."""
    # The named parameters above document the filter in OpenAPI; the segment language
    # (shared with rules and campaigns) reads them, and the attr.* ones, from the query.
    flt = build_contact_filter(
        request.query_params.multi_items(), runtime.app.attribute_registry(), views=runtime.views
    )
    items, total = runtime.queries.contacts(flt, limit, offset)
    return ListOut(items=items, total=total)


@router.post("", response_model=IdOut, status_code=status.HTTP_201_CREATED)
def create_contact(body: ContactIn, runtime: RuntimeDep, principal: WriterDep) -> IdOut:
    committed = runtime.app.create_contact(
        actor=principal.actor,
        name=body.name,
        identities=[(i.kind, i.value) for i in body.identities],
        attributes=body.attributes,
        tags=body.tags,
        source=body.source.model_dump(exclude_none=True) if body.source else None,
        lifecycle=body.lifecycle,
        responsible_id=body.responsible_id,
    )
    runtime.wait_for_views(committed.notification_id)
    return IdOut(id=committed.value)


@router.get("/{contact_id}")
def get_contact(
    contact_id: UUID, request: Request, runtime: RuntimeDep, principal: PrincipalDep
) -> dict[str, Any]:
    card = runtime.queries.contact(str(contact_id))
    if card is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"contact {contact_id} not found")
    runtime.access_log.record(
        principal, "contact", str(contact_id), via="api", path=request.url.path
    )
    card["open_tasks"] = runtime.queries.tasks(status="open", contact_id=str(contact_id), limit=50)
    return card


@router.patch("/{contact_id}")
def patch_contact(
    contact_id: UUID, body: ContactPatch, runtime: RuntimeDep, principal: WriterDep
) -> dict[str, Any]:
    given = body.model_fields_set
    committed = runtime.app.update_contact(
        contact_id,
        actor=principal.actor,
        name=body.name,
        attributes=body.attributes,
        tags=body.tags,
        add_tags=body.add_tags,
        remove_tags=body.remove_tags,
        lifecycle=body.lifecycle,
        responsible_id=body.responsible_id if "responsible_id" in given else False,
        company_id=body.company_id if "company_id" in given else False,
        identities=[(i.kind, i.value) for i in body.identities or []],
    )
    runtime.wait_for_views(committed.notification_id)
    card = runtime.queries.contact(str(contact_id))
    if card is None:
        raise NotFound("contact", contact_id)
    return card


@router.get("/{contact_id}/timeline", response_model=ListOut)
def get_timeline(
    contact_id: UUID,
    request: Request,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    before: Annotated[
        int | None,
        Query(ge=0, le=MAX_OFFSET, description="the `seq` of the oldest row already shown"),
    ] = None,
) -> ListOut:
    if runtime.queries.contact(str(contact_id)) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"contact {contact_id} not found")
    runtime.access_log.record(
        principal, "contact", str(contact_id), via="api", path=request.url.path
    )
    items = runtime.queries.timeline(str(contact_id), limit, before)
    return ListOut(items=items, total=None)


class MergeIn(BaseModel):
    other_id: UUID = Field(description="the duplicate: it is folded into the contact in the path")


@router.post("/{contact_id}/merge")
def merge_contact(
    contact_id: UUID, body: MergeIn, runtime: RuntimeDep, principal: WriterDep
) -> dict[str, Any]:
    """Merge `other_id` into this contact: identities, tags, missing attribute values and the
    whole timeline move over; the other contact stays in the log, marked as merged."""
    committed = runtime.app.merge_contacts(contact_id, body.other_id, principal.actor)
    runtime.wait_for_views(committed.notification_id)
    card = runtime.queries.contact(str(contact_id))
    if card is None:
        raise NotFound("contact", contact_id)
    return card


class OptInIn(BaseModel):
    channel: str = Field(
        min_length=1, max_length=40, description="the opted-out channel (`*` for every channel)"
    )
    reason: str = Field(
        min_length=1, max_length=500, description="why the client may get automatic messages again"
    )


@router.post("/{contact_id}/opt-in")
def opt_in_contact(
    contact_id: UUID, body: OptInIn, runtime: RuntimeDep, principal: WriterDep
) -> dict[str, Any]:
    """Undo an opt-out (a STOP, an unsubscribe link); the reason is recorded in the log.

    422 when the channel is not opted out or the reason is blank. Answers the card,
    whose `opt_outs` lists the channels still opted out (channel, reason, when).
    """
    committed = runtime.app.opt_in_contact(contact_id, body.channel, body.reason, principal.actor)
    runtime.wait_for_views(committed.notification_id)
    card = runtime.queries.contact(str(committed.value))
    if card is None:
        raise NotFound("contact", contact_id)
    return card


@router.get("/{contact_id}/duplicates", response_model=ListOut)
def get_duplicates(
    contact_id: UUID,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> ListOut:
    """Likely duplicates of this contact, best first, with a score (0 to 1) and the reasons."""
    if runtime.queries.contact(str(contact_id)) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"contact {contact_id} not found")
    items = runtime.queries.duplicates(str(contact_id), limit)
    return ListOut(items=items, total=len(items))
