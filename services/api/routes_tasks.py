"""Tasks: list (today, overdue, upcoming by due filters), create, complete, reschedule."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, status

from threadline.projections.base import ts
from threadline.services.api.deps import PrincipalDep, RuntimeDep, WriterDep, assignee_of
from threadline.services.api.schemas import (
    AssignIn,
    IdOut,
    Instant,
    ListOut,
    Offset,
    RescheduleIn,
    TaskIn,
)

router = APIRouter(prefix="/api/tasks", tags=["tasks"])


@router.get("", response_model=ListOut)
def list_tasks(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    status_: Annotated[
        str | None, Query(alias="status", pattern="^(open|done|cancelled|all)$")
    ] = "open",
    assignee: Annotated[str | None, Query(description="a user id or `me`")] = None,
    contact_id: UUID | None = None,
    due_before: Instant | None = None,
    due_after: Instant | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> ListOut:
    assignee_id = None
    if assignee == "me":
        assignee_id = principal.user_id or "-"
    elif assignee:
        try:
            assignee_id = str(UUID(assignee))
        except ValueError:
            raise HTTPException(422, "assignee is a user id or `me`") from None
    items = runtime.queries.tasks(
        status=None if status_ == "all" else status_,
        assignee_id=assignee_id,
        contact_id=str(contact_id) if contact_id else None,
        due_before=ts(due_before) if due_before else None,
        due_after=ts(due_after) if due_after else None,
        limit=limit,
        offset=offset,
    )
    return ListOut(items=items, total=None)


@router.post("", response_model=IdOut, status_code=status.HTTP_201_CREATED)
def create_task(body: TaskIn, runtime: RuntimeDep, principal: WriterDep) -> IdOut:
    committed = runtime.app.create_task(
        actor=principal.actor,
        title=body.title,
        type=body.type,
        due_at=body.due_at,
        assignee_id=assignee_of(principal, body.assignee_id),
        contact_id=body.contact_id,
        deal_id=body.deal_id,
        conversation_id=body.conversation_id,
        notes=body.notes,
    )
    runtime.wait_for_views(committed.notification_id)
    return IdOut(id=committed.value)


@router.get("/{task_id}")
def get_task(task_id: UUID, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    task = runtime.queries.task(str(task_id))
    if task is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"task {task_id} not found")
    return task


@router.post("/{task_id}/complete")
def complete_task(task_id: UUID, runtime: RuntimeDep, principal: WriterDep) -> dict[str, Any]:
    committed = runtime.app.complete_task(task_id, principal.actor)
    runtime.wait_for_views(committed.notification_id)
    return get_task(task_id, runtime, principal)


@router.post("/{task_id}/cancel")
def cancel_task(task_id: UUID, runtime: RuntimeDep, principal: WriterDep) -> dict[str, Any]:
    committed = runtime.app.cancel_task(task_id, principal.actor)
    runtime.wait_for_views(committed.notification_id)
    return get_task(task_id, runtime, principal)


@router.post("/{task_id}/reschedule")
def reschedule_task(
    task_id: UUID, body: RescheduleIn, runtime: RuntimeDep, principal: WriterDep
) -> dict[str, Any]:
    committed = runtime.app.reschedule_task(task_id, body.due_at, principal.actor)
    runtime.wait_for_views(committed.notification_id)
    return get_task(task_id, runtime, principal)


@router.post("/{task_id}/assign")
def assign_task(
    task_id: UUID, body: AssignIn, runtime: RuntimeDep, principal: WriterDep
) -> dict[str, Any]:
    committed = runtime.app.reassign_task(
        task_id, assignee_of(principal, body.assignee_id), principal.actor
    )
    runtime.wait_for_views(committed.notification_id)
    return get_task(task_id, runtime, principal)
