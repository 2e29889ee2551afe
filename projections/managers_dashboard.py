"""What the manager's dashboard reads: one user's tasks for today, open deals by stage, and the
revenue won in a month (the fact set against the month's sales plan).

Each is one query on an indexed column of its view: tasks by (assignee, status, due time),
deals by (manager, status).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from threadline.projections.pipelines import pipelines
from threadline.projections.sql import ViewReader

TODAY_LIMIT = 100


def tasks_due_before(
    db: ViewReader, user_id: str, until: str, limit: int = TODAY_LIMIT
) -> list[dict[str, Any]]:
    """The user's open tasks due before `until` (a `ts` text: the end of their today), overdue
    ones included, earliest first."""
    return db.query(
        "SELECT id, type, title, due_at, contact_id, deal_id, conversation_id FROM tasks"
        " WHERE assignee_id = ? AND status = 'open' AND due_at IS NOT NULL AND due_at < ?"
        " ORDER BY due_at, id LIMIT ?",
        [user_id, until, limit],
    )


@dataclass(frozen=True)
class StageDeals:
    pipeline_id: str
    pipeline: str
    stage_id: str
    stage: str
    position: int
    currency: str
    deals: int
    total_minor: int  # the deals' totals (with VAT), as the board sums them


def open_deals_by_stage(db: ViewReader, manager_id: str) -> list[StageDeals]:
    """The manager's open deals: count and sum per pipeline, stage (board order) and currency."""
    rows = db.query(
        "SELECT pipeline_id, stage_id, currency, COUNT(*) AS n, SUM(total_minor) AS total"
        " FROM deals WHERE manager_id = ? AND status = 'open'"
        " GROUP BY pipeline_id, stage_id, currency",
        [manager_id],
    )
    if not rows:
        return []
    names: dict[str, tuple[str, str, int, int]] = {}
    for order, p in enumerate(pipelines(db, include_archived=True)):
        for stage in p.stages:
            names[stage.id] = (p.name, stage.name, order, stage.position)
    found = []
    for r in rows:
        pipeline, stage, order, position = names.get(r["stage_id"], ("", r["stage_id"], 0, 0))
        found.append(
            (
                (order, position, r["currency"]),
                StageDeals(
                    pipeline_id=r["pipeline_id"],
                    pipeline=pipeline,
                    stage_id=r["stage_id"],
                    stage=stage,
                    position=position,
                    currency=r["currency"],
                    deals=int(r["n"]),
                    total_minor=int(r["total"] or 0),
                ),
            )
        )
    return [deal for _, deal in sorted(found, key=lambda pair: pair[0])]


def won_by_currency(db: ViewReader, manager_id: str, start: str, end: str) -> dict[str, int]:
    """Net revenue of the manager's deals won in [start, end) (`closed_at`), per currency."""
    rows = db.query(
        "SELECT currency, SUM(net_minor) AS net FROM deals"
        " WHERE manager_id = ? AND status = 'won' AND closed_at >= ? AND closed_at < ?"
        " GROUP BY currency",
        [manager_id, start, end],
    )
    return {r["currency"]: int(r["net"] or 0) for r in rows}
