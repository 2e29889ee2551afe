"""``add_tag``: tag the event's contact (``add_tag: vip``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from threadline.domain.model.contact import clean_tag
from threadline.triggers.actions.base import ApplyContext, PreparedAction, RuleAction, register
from threadline.triggers.rule_checks import RuleError, SaveChecks, string


@register
@dataclass(frozen=True)
class AddTag(RuleAction):
    kind: ClassVar[str] = "add_tag"

    tag: str

    @classmethod
    def validate(cls, spec: Any, here: str, checks: SaveChecks) -> Any:
        if not isinstance(spec, str) or not spec.strip():
            raise RuleError(here, "the tag to add")
        return string(here, spec).strip().lower()

    @classmethod
    def parse(cls, spec: Any) -> RuleAction:
        return cls(tag=str(spec))

    def apply(self, prepared: PreparedAction, context: ApplyContext) -> dict[str, Any]:
        contact = context.contact
        if contact is None:
            return {"skipped": "no contact"}
        tag = clean_tag(self.tag)
        if tag not in contact.tags:
            contact.add_tags([tag], context.actor, context.correlation_id)
        return {"tag": tag}
