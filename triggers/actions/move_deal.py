"""``move_deal``: move the event's deal to a stage (``{stage: <stage id>}``).

The stage's meaning decides, as when a person moves the deal: an open stage moves it
(reopening a closed deal), a won stage wins it (its contact becomes a customer), a lost
stage loses it with the item's ``reason`` (one of the pipeline's reasons). A stage of
another pipeline needs that pipeline's id in ``pipeline``. Stage ids are stable (renaming
or reordering stages keeps rules working); the rule editor lists them.

The move happens inside the firing's unit of work (`move_deal_in`), so the firing's
deterministic id, checked first in that unit, makes a redelivered event move once. What
cannot be done (the event names no deal, no such stage, a lost stage without a reason,
a deal already won) is recorded as skipped with the reason; it never fails the firing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar
from uuid import UUID

from threadline.domain.commands.deals import move_deal_in
from threadline.domain.model.errors import DomainError
from threadline.triggers.actions.base import (
    ApplyContext,
    PrepareContext,
    PreparedAction,
    RuleAction,
    register,
)
from threadline.triggers.rule_checks import RuleError, SaveChecks, action_object, string


@register
@dataclass(frozen=True)
class MoveDeal(RuleAction):
    kind: ClassVar[str] = "move_deal"
    keys: ClassVar[frozenset[str]] = frozenset({"stage", "pipeline", "reason"})

    stage: str
    pipeline: str = ""
    reason: str = ""

    @classmethod
    def validate(cls, spec: Any, here: str, checks: SaveChecks) -> Any:
        spec = action_object(
            cls.kind, cls.keys, spec, here, "the stage to move the deal to", ".stage"
        )
        if not spec.get("stage"):
            raise RuleError(f"{here}.stage", "the stage to move the deal to")
        out = {"stage": string(f"{here}.stage", spec["stage"]).strip()}
        if spec.get("pipeline"):
            pipeline = string(f"{here}.pipeline", spec["pipeline"]).strip()
            try:
                out["pipeline"] = str(UUID(pipeline))
            except ValueError:
                raise RuleError(f"{here}.pipeline", "a pipeline id") from None
        if spec.get("reason"):
            out["reason"] = string(f"{here}.reason", spec["reason"]).strip()
        return out

    @classmethod
    def parse(cls, spec: Any) -> RuleAction:
        return cls(
            stage=str(spec.get("stage", "")),
            pipeline=str(spec.get("pipeline") or ""),
            reason=str(spec.get("reason") or ""),
        )

    def prepare(self, context: PrepareContext) -> PreparedAction:
        if context.event.deal_id is None:
            return PreparedAction(self, skip="the event names no deal")
        return PreparedAction(self)

    def apply(self, prepared: PreparedAction, context: ApplyContext) -> dict[str, Any]:
        deal_id = context.event.deal_id
        if deal_id is None:
            return {"skipped": "the event names no deal"}
        try:
            outcome = move_deal_in(
                context.unit,
                deal_id,
                self.stage,
                context.actor,
                context.correlation_id,
                reason=self.reason,
                pipeline_id=UUID(self.pipeline) if self.pipeline else None,
            )
        except DomainError as error:
            return {"skipped": str(error), "deal_id": str(deal_id), "stage_id": self.stage}
        return {"deal_id": str(deal_id), "stage_id": self.stage, "outcome": outcome}
