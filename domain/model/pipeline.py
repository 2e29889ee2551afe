"""The Pipeline aggregate: a sales funnel with ordered stages, each with a stable id.

History refers to a stage by its id, never by its name or position, so a stage can be
renamed or moved and no past figure changes. A stage's *meaning* (open, won, lost) is what
decides a deal's outcome; winning and losing are explicit deal events, so nothing ever
compares a stage's name to find out whether a deal was won.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from threadline.domain.model.errors import Conflict, InvalidInput

PIPELINE_NAMESPACE = uuid5(NAMESPACE_URL, "https://threadline.dev/pipeline")
MAX_STAGES = 50
MAX_NAME = 120
MAX_REASONS = 50


class StageMeaning(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


@dataclass(frozen=True, slots=True)
class Stage:
    """One column of the board: `probability` is the default win chance in percent;
    a deal older than `stale_days` in the stage is stale (a trigger), 0 for never."""

    id: str
    name: str
    meaning: str = StageMeaning.OPEN.value
    probability: int = 0
    stale_days: int = 0

    def state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Stage:
        return cls(
            id=str(state["id"]),
            name=str(state["name"]),
            meaning=str(state.get("meaning", StageMeaning.OPEN.value)),
            probability=int(state.get("probability", 0)),
            stale_days=int(state.get("stale_days", 0)),
        )


def clean_stage(
    stage_id: str, name: str, meaning: str, probability: int | None, stale_days: int
) -> Stage:
    """A valid stage; won stages default to 100 %, lost ones to 0 % (and may be nothing else)."""
    name = " ".join(str(name or "").split())
    if not name or len(name) > MAX_NAME:
        raise InvalidInput("name", f"a stage name has 1 to {MAX_NAME} characters")
    try:
        kind = StageMeaning(meaning)
    except ValueError:
        raise InvalidInput("meaning", f"one of {[m.value for m in StageMeaning]}") from None
    if kind is StageMeaning.WON:
        probability = 100
    elif kind is StageMeaning.LOST or probability is None:
        probability = 0
    if not 0 <= probability <= 100:
        raise InvalidInput("probability", "a probability is 0 to 100 percent")
    if not 0 <= stale_days <= 3650:
        raise InvalidInput("stale_days", "0 (never) to 3650 days")
    return Stage(stage_id, name, kind.value, probability, stale_days)


def clean_reasons(reasons: list[str]) -> list[str]:
    cleaned = list(dict.fromkeys(" ".join(str(r).split()) for r in reasons if str(r).strip()))
    if len(cleaned) > MAX_REASONS or any(len(r) > 200 for r in cleaned):
        raise InvalidInput("lost_reasons", f"at most {MAX_REASONS} reasons of 200 characters")
    return cleaned


def seeded_pipeline_id(key: str) -> UUID:
    """The id of a shipped pipeline (deterministic: seeding twice meets the same aggregate)."""
    return uuid5(PIPELINE_NAMESPACE, key)


def seeded_stage_id(pipeline_key: str, stage_key: str) -> str:
    return str(uuid5(PIPELINE_NAMESPACE, f"{pipeline_key}/{stage_key}"))


class Pipeline(Aggregate):
    """A funnel. Invariants: stage ids unique, at least one open, one won and one lost stage."""

    class PipelineCreated(Aggregate.Created):
        name: str
        stages: list[dict[str, Any]]
        lost_reasons: list[str]
        actor: str
        correlation_id: str

    @event(PipelineCreated)
    def __init__(
        self,
        id: UUID,
        name: str,
        stages: list[dict[str, Any]],
        lost_reasons: list[str],
        actor: str,
        correlation_id: str,
    ) -> None:
        self.name = name
        self.stages = [Stage.from_state(s) for s in stages]
        self.lost_reasons = list(lost_reasons)
        self.archived = False

    @staticmethod
    def check_stages(stages: list[Stage]) -> None:
        """Refuse a stage list the board could not work with."""
        if len(stages) > MAX_STAGES:
            raise InvalidInput("stages", f"at most {MAX_STAGES} stages")
        if len({s.id for s in stages}) != len(stages):
            raise InvalidInput("stages", "stage ids must be unique")
        meanings = {s.meaning for s in stages}
        for needed in StageMeaning:
            if needed.value not in meanings:
                raise InvalidInput("stages", f"a pipeline needs at least one {needed.value} stage")

    def stage(self, stage_id: str) -> Stage:
        for stage in self.stages:
            if stage.id == stage_id:
                return stage
        raise InvalidInput("stage_id", f"pipeline {self.id} has no stage {stage_id}")

    def first_stage(self, meaning: StageMeaning) -> Stage:
        return next(s for s in self.stages if s.meaning == meaning.value)

    class PipelineRenamed(Aggregate.Event):
        name: str
        actor: str
        correlation_id: str

    @event(PipelineRenamed)
    def rename(self, name: str, actor: str, correlation_id: str) -> None:
        self.name = name

    class StageAdded(Aggregate.Event):
        stage: dict[str, Any]
        position: int
        actor: str
        correlation_id: str

    def add_stage(self, stage: Stage, position: int, actor: str, correlation_id: str) -> None:
        if any(s.id == stage.id for s in self.stages):
            raise Conflict(f"stage {stage.id} exists")
        if len(self.stages) >= MAX_STAGES:
            raise InvalidInput("stages", f"at most {MAX_STAGES} stages")
        position = max(0, min(position, len(self.stages)))
        self._stage_added(stage.state(), position, actor, correlation_id)

    @event(StageAdded)
    def _stage_added(
        self, stage: dict[str, Any], position: int, actor: str, correlation_id: str
    ) -> None:
        self.stages.insert(position, Stage.from_state(stage))

    class StageChanged(Aggregate.Event):
        """A stage's name, default probability or stale limit changed (its id and meaning never)."""

        stage: dict[str, Any]
        actor: str
        correlation_id: str

    def change_stage(self, stage: Stage, actor: str, correlation_id: str) -> None:
        old = self.stage(stage.id)
        if old.meaning != stage.meaning:
            raise InvalidInput("meaning", "a stage's meaning cannot change; add a new stage")
        if old != stage:
            self._stage_changed(stage.state(), actor, correlation_id)

    @event(StageChanged)
    def _stage_changed(self, stage: dict[str, Any], actor: str, correlation_id: str) -> None:
        changed = Stage.from_state(stage)
        self.stages = [changed if s.id == changed.id else s for s in self.stages]

    class StagesReordered(Aggregate.Event):
        order: list[str]
        actor: str
        correlation_id: str

    def reorder(self, order: list[str], actor: str, correlation_id: str) -> None:
        if sorted(order) != sorted(s.id for s in self.stages):
            raise InvalidInput("order", "name every stage of the pipeline exactly once")
        if order != [s.id for s in self.stages]:
            self._reordered(order, actor, correlation_id)

    @event(StagesReordered)
    def _reordered(self, order: list[str], actor: str, correlation_id: str) -> None:
        by_id = {s.id: s for s in self.stages}
        self.stages = [by_id[i] for i in order]

    class LostReasonsChanged(Aggregate.Event):
        lost_reasons: list[str]
        actor: str
        correlation_id: str

    @event(LostReasonsChanged)
    def change_lost_reasons(self, lost_reasons: list[str], actor: str, correlation_id: str) -> None:
        self.lost_reasons = list(lost_reasons)

    class PipelineArchived(Aggregate.Event):
        archived: bool
        actor: str
        correlation_id: str

    @event(PipelineArchived)
    def archive(self, archived: bool, actor: str, correlation_id: str) -> None:
        self.archived = archived
