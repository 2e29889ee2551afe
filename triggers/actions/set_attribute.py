"""``set_attribute``: set one attribute of the event's contact (``{key: segment, value: warm}``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from threadline.domain.commands.attributes import set_contact_attributes
from threadline.triggers.actions.base import ApplyContext, PreparedAction, RuleAction, register
from threadline.triggers.rule_checks import (
    RuleError,
    SaveChecks,
    action_object,
    scalar_value,
    string,
)


@register
@dataclass(frozen=True)
class SetAttribute(RuleAction):
    kind: ClassVar[str] = "set_attribute"
    keys: ClassVar[frozenset[str]] = frozenset({"key", "value"})

    key: str
    value: Any = None  # text, a number, true/false, null or a list of those

    @classmethod
    def validate(cls, spec: Any, here: str, checks: SaveChecks) -> Any:
        spec = action_object(cls.kind, cls.keys, spec, here, "the attribute to set", ".key")
        if not spec.get("key"):
            raise RuleError(f"{here}.key", "the attribute to set")
        key = string(f"{here}.key", spec["key"])
        return {"key": key, "value": scalar_value(f"{here}.value", spec.get("value"))}

    @classmethod
    def parse(cls, spec: Any) -> RuleAction:
        return cls(key=str(spec["key"]), value=spec["value"])

    def apply(self, prepared: PreparedAction, context: ApplyContext) -> dict[str, Any]:
        contact = context.contact
        if contact is None:
            return {"skipped": "no contact"}
        set_contact_attributes(
            context.unit, contact, {self.key: self.value}, context.actor, context.correlation_id
        )
        return {"key": self.key}
