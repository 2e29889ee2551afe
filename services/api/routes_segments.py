"""Saved segments: a named contact filter, usable by campaigns, rules and reports.

`filter` is the language of `GET /api/contacts`, given as an object
(``{"tag": ["vip"], "abc_class": "A"}``) or as a list of ``[key, value]`` pairs; it is
checked when saved (422 naming ``filter.<key>``). Names are unique (409). Everyone may read;
admins and managers write.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from threadline.domain.model.errors import NotFound
from threadline.projections.saved_segments import (
    SavedSegmentRow,
    saved_segment,
    saved_segment_count,
    saved_segments,
)
from threadline.services.api.deps import ManagerDep, PrincipalDep, RuntimeDep
from threadline.services.api.schemas import ListOut, Offset
from threadline.services.runtime import Runtime
from threadline.services.segments_service import (
    check_filter,
    filter_pairs,
    refuse_if_used,
    segment_count,
)

router = APIRouter(prefix="/api/segments", tags=["segments"])

FilterValue = str | int | float | list[str]


class SegmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=2000)
    filter: (
        dict[str, FilterValue] | list[Annotated[list[str], Field(min_length=2, max_length=2)]]
    ) = Field(
        default_factory=dict,
        max_length=200,
        description="filters as in GET /api/contacts (an object, or [key, value] pairs); "
        "{} is every contact",
    )


class SegmentOut(BaseModel):
    id: str
    name: str
    description: str
    filter: list[list[str]]
    count: int | None = Field(None, description="contacts matching now (null: unreadable)")
    problem: str = Field("", description="why the filter cannot be read now, if so")
    created_by: str
    created_at: str
    updated_by: str
    updated_at: str


def _out(runtime: Runtime, row: SavedSegmentRow) -> SegmentOut:
    count, problem = segment_count(
        runtime.views, runtime.queries, runtime.app.attribute_registry(), row
    )
    return SegmentOut(**row.as_dict(), count=count, problem=problem)


def _row(runtime: Runtime, segment_id: UUID) -> SavedSegmentRow:
    row = saved_segment(runtime.views, str(segment_id))
    if row is None:
        raise NotFound("segment", segment_id)
    return row


@router.get("", response_model=ListOut)
def list_segments(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> ListOut:
    """Saved segments by name, each with the live count of its contacts."""
    rows = saved_segments(runtime.views, limit, offset)
    return ListOut(
        items=[_out(runtime, row).model_dump() for row in rows],
        total=saved_segment_count(runtime.views),
    )


@router.post("", response_model=SegmentOut, status_code=status.HTTP_201_CREATED)
def create_segment(body: SegmentIn, runtime: RuntimeDep, principal: ManagerDep) -> SegmentOut:
    pairs = filter_pairs(body.filter)
    check_filter(runtime.views, runtime.app.attribute_registry(), pairs)
    committed = runtime.app.save_segment(
        body.name, pairs, principal.actor, description=body.description
    )
    runtime.wait_for_views(committed.notification_id)
    return _out(runtime, _row(runtime, committed.value))


@router.get("/{segment_id}", response_model=SegmentOut)
def get_segment(segment_id: UUID, runtime: RuntimeDep, principal: PrincipalDep) -> SegmentOut:
    return _out(runtime, _row(runtime, segment_id))


@router.put("/{segment_id}", response_model=SegmentOut)
def change_segment(
    segment_id: UUID, body: SegmentIn, runtime: RuntimeDep, principal: ManagerDep
) -> SegmentOut:
    """Replace name, description and filter (the filter may not name this segment)."""
    _row(runtime, segment_id)
    pairs = filter_pairs(body.filter)
    check_filter(runtime.views, runtime.app.attribute_registry(), pairs, str(segment_id))
    committed = runtime.app.change_segment(
        segment_id, principal.actor, name=body.name, pairs=pairs, description=body.description
    )
    runtime.wait_for_views(committed.notification_id)
    return _out(runtime, _row(runtime, segment_id))


@router.delete("/{segment_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_segment(segment_id: UUID, runtime: RuntimeDep, principal: ManagerDep) -> Response:
    """Delete (409 while another saved segment names it); the name is free again."""
    _row(runtime, segment_id)
    refuse_if_used(runtime.views, str(segment_id))
    committed = runtime.app.delete_segment(segment_id, principal.actor)
    runtime.wait_for_views(committed.notification_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{segment_id}/contacts", response_model=ListOut)
def segment_contacts(
    segment_id: UUID,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> ListOut:
    """The segment's contacts now, newest first, as `GET /api/contacts` pages them."""
    row = _row(runtime, segment_id)
    flt = check_filter(runtime.views, runtime.app.attribute_registry(), row.pairs, row.id)
    items, total = runtime.queries.contacts(flt, limit, offset)
    return ListOut(items=items, total=total)
