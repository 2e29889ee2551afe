"""Pipeline commands: funnels and their stages, and the three funnels Threadline ships with.

Stage ids are made here once (a new uuid, or a deterministic one for a shipped stage) and
never change, so renaming or reordering a stage leaves every past figure as it was.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from threadline.domain.commands.base import Commands, required_text
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.pipeline import (
    Pipeline,
    Stage,
    clean_reasons,
    clean_stage,
    seeded_pipeline_id,
    seeded_stage_id,
)

# (key, name, stages as (key, name, meaning, probability, stale days), lost reasons)
SEEDED_PIPELINES: tuple[
    tuple[str, str, tuple[tuple[str, str, str, int, int], ...], tuple[str, ...]], ...
] = (
    (
        "new-clients",
        "New clients",
        (
            ("mutual-intent", "Mutual intent", "open", 10, 7),
            ("invoice-or-documents", "Invoice or documents", "open", 30, 5),
            ("confirmation", "Confirmation", "open", 50, 5),
            ("commercial-proposal", "Commercial proposal", "open", 60, 7),
            ("all-operations-done", "All operations done", "open", 90, 3),
            ("paid", "Paid", "won", 100, 0),
            ("lost", "Lost", "lost", 0, 0),
        ),
        ("Too expensive", "Chose a competitor", "No budget", "No answer", "Not our client"),
    ),
    (
        "repeat-sales",
        "Repeat sales",
        (
            ("offer", "Offer", "open", 30, 14),
            ("order", "Order", "open", 60, 5),
            ("invoice", "Invoice", "open", 80, 5),
            ("paid", "Paid", "won", 100, 0),
            ("lost", "Lost", "lost", 0, 0),
        ),
        ("Too expensive", "Chose a competitor", "No need now", "No answer"),
    ),
    (
        "inbound-requests",
        "Inbound requests",
        (
            ("new", "New request", "open", 10, 1),
            ("qualified", "Qualified", "open", 30, 3),
            ("proposal", "Proposal", "open", 50, 5),
            ("won", "Won", "won", 100, 0),
            ("spam", "Spam", "lost", 0, 0),
            ("lost", "Lost", "lost", 0, 0),
        ),
        ("Spam", "Not our profile", "Too expensive", "No answer"),
    ),
)


def stages_from_input(raw: list[dict[str, Any]]) -> list[Stage]:
    """Stages from API input; a stage without an id gets a new one."""
    stages = [
        clean_stage(
            str(item.get("id") or uuid4()),
            str(item.get("name", "")),
            str(item.get("meaning", "open")),
            item.get("probability"),
            int(item.get("stale_days") or 0),
        )
        for item in raw
    ]
    Pipeline.check_stages(stages)
    return stages


class PipelineCommands(Commands):
    def create_pipeline(
        self,
        actor: str,
        name: str,
        stages: list[dict[str, Any]],
        lost_reasons: list[str] | None = None,
        pipeline_id: UUID | None = None,
    ) -> Committed[UUID]:
        required_text("name", name, 120)
        cleaned = stages_from_input(stages)
        reasons = clean_reasons(lost_reasons or [])
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> UUID:
            pipeline = Pipeline(
                id=pipeline_id or uuid4(),
                name=name.strip(),
                stages=[s.state() for s in cleaned],
                lost_reasons=reasons,
                actor=actor,
                correlation_id=correlation_id,
            )
            return unit.add(pipeline).id

        return self.writer.submit(command)

    def seed_pipelines(self, actor: str) -> Committed[int]:
        """Create the shipped pipelines that do not exist yet (never touches an edited one)."""
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> int:
            created = 0
            for key, name, stages, reasons in SEEDED_PIPELINES:
                pipeline_id = seeded_pipeline_id(key)
                if unit.exists(pipeline_id):
                    continue
                states = [
                    Stage(seeded_stage_id(key, s_key), s_name, meaning, probability, stale).state()
                    for s_key, s_name, meaning, probability, stale in stages
                ]
                unit.add(
                    Pipeline(
                        id=pipeline_id,
                        name=name,
                        stages=states,
                        lost_reasons=list(reasons),
                        actor=actor,
                        correlation_id=correlation_id,
                    )
                )
                created += 1
            return created

        return self.writer.submit(command)

    def update_pipeline(
        self,
        pipeline_id: UUID,
        actor: str,
        name: str | None = None,
        lost_reasons: list[str] | None = None,
        archived: bool | None = None,
    ) -> Committed[None]:
        if name is not None:
            required_text("name", name, 120)
        reasons = None if lost_reasons is None else clean_reasons(lost_reasons)
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> None:
            pipeline = unit.get(pipeline_id, Pipeline)
            if name is not None and name.strip() != pipeline.name:
                pipeline.rename(name.strip(), actor, correlation_id)
            if reasons is not None and reasons != pipeline.lost_reasons:
                pipeline.change_lost_reasons(reasons, actor, correlation_id)
            if archived is not None and archived != pipeline.archived:
                pipeline.archive(archived, actor, correlation_id)

        return self.writer.submit(command)

    def add_stage(
        self,
        pipeline_id: UUID,
        actor: str,
        name: str,
        meaning: str = "open",
        probability: int | None = None,
        stale_days: int = 0,
        position: int | None = None,
    ) -> Committed[str]:
        stage = clean_stage(str(uuid4()), name, meaning, probability, stale_days)
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> str:
            pipeline = unit.get(pipeline_id, Pipeline)
            where = len(pipeline.stages) if position is None else position
            pipeline.add_stage(stage, where, actor, correlation_id)
            return stage.id

        return self.writer.submit(command)

    def change_stage(
        self,
        pipeline_id: UUID,
        stage_id: str,
        actor: str,
        name: str | None = None,
        probability: int | None = None,
        stale_days: int | None = None,
    ) -> Committed[None]:
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> None:
            pipeline = unit.get(pipeline_id, Pipeline)
            old = pipeline.stage(stage_id)
            stage = clean_stage(
                stage_id,
                old.name if name is None else name,
                old.meaning,
                old.probability if probability is None else probability,
                old.stale_days if stale_days is None else stale_days,
            )
            pipeline.change_stage(stage, actor, correlation_id)

        return self.writer.submit(command)

    def reorder_stages(self, pipeline_id: UUID, order: list[str], actor: str) -> Committed[None]:
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> None:
            unit.get(pipeline_id, Pipeline).reorder(list(order), actor, correlation_id)

        return self.writer.submit(command)
