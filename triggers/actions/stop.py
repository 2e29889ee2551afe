"""``stop: true``: when this rule fires, the rules after it (by priority) skip the event."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from threadline.triggers.actions.base import ApplyContext, PreparedAction, RuleAction, register
from threadline.triggers.rule_checks import RuleError, SaveChecks


@register
@dataclass(frozen=True)
class Stop(RuleAction):
    kind: ClassVar[str] = "stop"
    stops: ClassVar[bool] = True

    @classmethod
    def validate(cls, spec: Any, here: str, checks: SaveChecks) -> Any:
        if spec is not True:
            raise RuleError(here, "stop: true")
        return True

    @classmethod
    def parse(cls, spec: Any) -> RuleAction:
        return cls()

    def apply(self, prepared: PreparedAction, context: ApplyContext) -> dict[str, Any]:
        return {"stopped": True}
