"""Pipelines: the funnels, their stages in board order, and their lost reasons.

Anyone may read them; changing them is a manager's or an admin's job, because a stage's
probability and "stale after" limit drive forecasts and rules for everyone. Stage ids never
change: renaming or reordering a stage rewrites no past figure (history refers to ids).
"""

from __future__ import annotations

from dataclasses import asdict
from uuid import UUID

from fastapi import APIRouter, status

from threadline.domain.model.errors import NotFound
from threadline.projections.pipelines import PipelineRow, pipeline, pipelines, stage
from threadline.services.api.deal_schemas import (
    NewStageIn,
    PipelineIn,
    PipelineListOut,
    PipelineOut,
    PipelinePatch,
    StageOrderIn,
    StageOut,
    StagePatch,
)
from threadline.services.api.deps import ManagerDep, PrincipalDep, RuntimeDep
from threadline.services.runtime import Runtime

router = APIRouter(prefix="/api/pipelines", tags=["pipelines"])


def pipeline_out(row: PipelineRow) -> PipelineOut:
    return PipelineOut.model_validate(asdict(row))


def found_pipeline(runtime: Runtime, pipeline_id: UUID | str) -> PipelineOut:
    row = pipeline(runtime.views, pipeline_id)
    if row is None:
        raise NotFound("pipeline", str(pipeline_id))
    return pipeline_out(row)


@router.get("", response_model=PipelineListOut)
def list_pipelines(
    runtime: RuntimeDep, principal: PrincipalDep, include_archived: bool = False
) -> PipelineListOut:
    """Every pipeline with its stages in board order and its lost reasons."""
    rows = pipelines(runtime.views, include_archived=include_archived)
    return PipelineListOut(items=[pipeline_out(r) for r in rows])


@router.get("/{pipeline_id}", response_model=PipelineOut)
def get_pipeline(pipeline_id: UUID, runtime: RuntimeDep, principal: PrincipalDep) -> PipelineOut:
    return found_pipeline(runtime, pipeline_id)


@router.post("", response_model=PipelineOut, status_code=status.HTTP_201_CREATED)
def create_pipeline(body: PipelineIn, runtime: RuntimeDep, principal: ManagerDep) -> PipelineOut:
    committed = runtime.app.create_pipeline(
        principal.actor,
        body.name,
        [s.model_dump() for s in body.stages],
        lost_reasons=body.lost_reasons,
    )
    runtime.wait_for_views(committed.notification_id)
    return found_pipeline(runtime, committed.value)


@router.patch("/{pipeline_id}", response_model=PipelineOut)
def patch_pipeline(
    pipeline_id: UUID, body: PipelinePatch, runtime: RuntimeDep, principal: ManagerDep
) -> PipelineOut:
    """Rename, change the lost reasons, archive (`true`) or bring back (`false`)."""
    committed = runtime.app.update_pipeline(
        pipeline_id,
        principal.actor,
        name=body.name,
        lost_reasons=body.lost_reasons,
        archived=body.archived,
    )
    runtime.wait_for_views(committed.notification_id)
    return found_pipeline(runtime, pipeline_id)


@router.post("/{pipeline_id}/stages", response_model=StageOut, status_code=status.HTTP_201_CREATED)
def add_stage(
    pipeline_id: UUID, body: NewStageIn, runtime: RuntimeDep, principal: ManagerDep
) -> StageOut:
    """Add a stage (at `position`, or last); it gets a new id that never changes."""
    committed = runtime.app.add_stage(
        pipeline_id,
        principal.actor,
        body.name,
        meaning=body.meaning,
        probability=body.probability,
        stale_days=body.stale_days,
        position=body.position,
    )
    runtime.wait_for_views(committed.notification_id)
    row = stage(runtime.views, committed.value)
    if row is None:  # the views have not caught up within the wait
        raise NotFound("stage", committed.value)
    return StageOut.model_validate(asdict(row))


@router.patch("/{pipeline_id}/stages/{stage_id}", response_model=PipelineOut)
def patch_stage(
    pipeline_id: UUID,
    stage_id: str,
    body: StagePatch,
    runtime: RuntimeDep,
    principal: ManagerDep,
) -> PipelineOut:
    """Rename a stage or change its default probability or stale limit (past figures stay)."""
    committed = runtime.app.change_stage(
        pipeline_id,
        stage_id,
        principal.actor,
        name=body.name,
        probability=body.probability,
        stale_days=body.stale_days,
    )
    runtime.wait_for_views(committed.notification_id)
    return found_pipeline(runtime, pipeline_id)


@router.put("/{pipeline_id}/stage-order", response_model=PipelineOut)
def reorder_stages(
    pipeline_id: UUID, body: StageOrderIn, runtime: RuntimeDep, principal: ManagerDep
) -> PipelineOut:
    """Put the stages in this order: the full list of the pipeline's stage ids."""
    committed = runtime.app.reorder_stages(pipeline_id, body.order, principal.actor)
    runtime.wait_for_views(committed.notification_id)
    return found_pipeline(runtime, pipeline_id)
