"""The pipelines view: every funnel with its stages in board order.

Stages are rows keyed by their stable id, so a rename or a reorder updates one row and
every deal and history row that names the stage shows the new name at once, while no past
figure changes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from threadline.domain.model.pipeline import Pipeline, Stage
from threadline.projections.base import ViewProjection, dumps, handles, sid, ts
from threadline.projections.sql import ViewCursor, ViewReader


class PipelineProjection(ViewProjection):
    name = "pipelines"
    tables = ("pipelines", "pipeline_stages")
    schema = (
        "CREATE TABLE IF NOT EXISTS pipelines ("
        " id TEXT PRIMARY KEY, name TEXT NOT NULL, archived BIGINT NOT NULL,"
        " lost_reasons TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS pipeline_stages ("
        " id TEXT PRIMARY KEY, pipeline_id TEXT NOT NULL, name TEXT NOT NULL,"
        " meaning TEXT NOT NULL, probability BIGINT NOT NULL, stale_days BIGINT NOT NULL,"
        " position BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS pipeline_stages_order ON pipeline_stages"
        " (pipeline_id, position)",
    )

    def _write_stages(self, cur: ViewCursor, pipeline_id: str, stages: Sequence[Stage]) -> None:
        for position, stage in enumerate(stages):
            cur.execute(
                "INSERT INTO pipeline_stages (id, pipeline_id, name, meaning, probability,"
                " stale_days, position) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE"
                " SET name = excluded.name, probability = excluded.probability,"
                " stale_days = excluded.stale_days, position = excluded.position",
                [
                    stage.id,
                    pipeline_id,
                    stage.name,
                    stage.meaning,
                    stage.probability,
                    stage.stale_days,
                    position,
                ],
            )

    def _stages(self, cur: ViewCursor, pipeline_id: str) -> list[Stage]:
        rows = cur.execute(
            "SELECT id, name, meaning, probability, stale_days FROM pipeline_stages"
            " WHERE pipeline_id = ? ORDER BY position",
            [pipeline_id],
        ).fetchall()
        return [Stage.from_state(r) for r in rows]

    def _touch_pipeline(self, cur: ViewCursor, event: Any) -> None:
        cur.execute(
            "UPDATE pipelines SET updated_at = ? WHERE id = ?",
            [ts(event.timestamp), sid(event.originator_id)],
        )

    @handles(Pipeline.PipelineCreated)
    def _pipeline_created(self, event: Any, cur: ViewCursor) -> None:
        pipeline_id = str(event.originator_id)
        cur.execute(
            "INSERT INTO pipelines (id, name, archived, lost_reasons, created_at, updated_at)"
            " VALUES (?, ?, 0, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            [
                pipeline_id,
                event.name,
                dumps(event.lost_reasons),
                ts(event.timestamp),
                ts(event.timestamp),
            ],
        )
        self._write_stages(cur, pipeline_id, [Stage.from_state(s) for s in event.stages])

    @handles(Pipeline.PipelineRenamed)
    def _pipeline_renamed(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE pipelines SET name = ? WHERE id = ?", [event.name, sid(event.originator_id)]
        )
        self._touch_pipeline(cur, event)

    @handles(Pipeline.LostReasonsChanged)
    def _reasons(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE pipelines SET lost_reasons = ? WHERE id = ?",
            [dumps(event.lost_reasons), sid(event.originator_id)],
        )
        self._touch_pipeline(cur, event)

    @handles(Pipeline.PipelineArchived)
    def _archived(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE pipelines SET archived = ? WHERE id = ?",
            [int(event.archived), sid(event.originator_id)],
        )
        self._touch_pipeline(cur, event)

    @handles(Pipeline.StageAdded)
    def _stage_added(self, event: Any, cur: ViewCursor) -> None:
        pipeline_id = str(event.originator_id)
        stages = self._stages(cur, pipeline_id)
        stages.insert(event.position, Stage.from_state(event.stage))
        self._write_stages(cur, pipeline_id, stages)
        self._touch_pipeline(cur, event)

    @handles(Pipeline.StageChanged)
    def _stage_changed(self, event: Any, cur: ViewCursor) -> None:
        stage = Stage.from_state(event.stage)
        cur.execute(
            "UPDATE pipeline_stages SET name = ?, probability = ?, stale_days = ? WHERE id = ?",
            [stage.name, stage.probability, stage.stale_days, stage.id],
        )
        self._touch_pipeline(cur, event)

    @handles(Pipeline.StagesReordered)
    def _reordered(self, event: Any, cur: ViewCursor) -> None:
        for position, stage_id in enumerate(event.order):
            cur.execute(
                "UPDATE pipeline_stages SET position = ? WHERE id = ?", [position, stage_id]
            )
        self._touch_pipeline(cur, event)


# -- readers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageRow:
    id: str
    pipeline_id: str
    name: str
    meaning: str
    probability: int
    stale_days: int
    position: int


@dataclass(frozen=True)
class PipelineRow:
    id: str
    name: str
    archived: bool
    lost_reasons: list[str]
    stages: list[StageRow]
    created_at: str
    updated_at: str


def _pipeline_row(row: dict[str, Any], stages: list[StageRow]) -> PipelineRow:
    return PipelineRow(
        id=str(row["id"]),
        name=str(row["name"]),
        archived=bool(row["archived"]),
        lost_reasons=list(json.loads(row["lost_reasons"])),
        stages=stages,
        created_at=str(row["created_at"]),
        updated_at=str(row["updated_at"]),
    )


def pipelines(db: ViewReader, include_archived: bool = False) -> list[PipelineRow]:
    """Every pipeline with its stages in board order; the shipped ones first by creation."""
    where = "" if include_archived else " WHERE archived = 0"
    rows = db.query(f"SELECT * FROM pipelines{where} ORDER BY created_at, name")
    stages: dict[str, list[StageRow]] = {}
    for s in db.query("SELECT * FROM pipeline_stages ORDER BY pipeline_id, position"):
        stages.setdefault(str(s["pipeline_id"]), []).append(StageRow(**s))
    return [_pipeline_row(r, stages.get(str(r["id"]), [])) for r in rows]


def pipeline(db: ViewReader, pipeline_id: UUID | str) -> PipelineRow | None:
    row = db.query_one("SELECT * FROM pipelines WHERE id = ?", [str(pipeline_id)])
    if row is None:
        return None
    stages = db.query(
        "SELECT * FROM pipeline_stages WHERE pipeline_id = ? ORDER BY position", [str(pipeline_id)]
    )
    return _pipeline_row(row, [StageRow(**s) for s in stages])


def stage(db: ViewReader, stage_id: str) -> StageRow | None:
    row = db.query_one("SELECT * FROM pipeline_stages WHERE id = ?", [stage_id])
    return None if row is None else StageRow(**row)


def stage_names(db: ViewReader) -> dict[str, str]:
    """Every stage's current name by id (history shows today's names for past moves)."""
    return {str(r["id"]): str(r["name"]) for r in db.query("SELECT id, name FROM pipeline_stages")}
