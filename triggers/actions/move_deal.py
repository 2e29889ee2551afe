"""``move_deal``: move the event's deal to a stage (deals arrive with the sales release)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from threadline.triggers.actions.base import ApplyContext, PreparedAction, RuleAction, register
from threadline.triggers.rule_checks import RuleError, SaveChecks, action_object, string


@register
@dataclass(frozen=True)
class MoveDeal(RuleAction):
    kind: ClassVar[str] = "move_deal"
    keys: ClassVar[frozenset[str]] = frozenset({"stage"})

    stage: str

    @classmethod
    def validate(cls, spec: Any, here: str, checks: SaveChecks) -> Any:
        spec = action_object(
            cls.kind, cls.keys, spec, here, "the stage to move the deal to", ".stage"
        )
        if not spec.get("stage"):
            raise RuleError(f"{here}.stage", "the stage to move the deal to")
        return {"stage": string(f"{here}.stage", spec["stage"])}

    @classmethod
    def parse(cls, spec: Any) -> RuleAction:
        return cls(stage=str(spec.get("stage", "")))

    def apply(self, prepared: PreparedAction, context: ApplyContext) -> dict[str, Any]:
        return {"skipped": "deals arrive with the sales release"}
