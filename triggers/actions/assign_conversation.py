"""``assign_conversation``: give the event's conversation to an operator (or to nobody)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from threadline.domain.model.conversation import Conversation
from threadline.triggers.actions.base import (
    ApplyContext,
    PrepareContext,
    PreparedAction,
    RuleAction,
    register,
)
from threadline.triggers.assignees import Assignee, validate_assignee
from threadline.triggers.rule_checks import SaveChecks, action_object


@register
@dataclass(frozen=True)
class AssignConversation(RuleAction):
    kind: ClassVar[str] = "assign_conversation"
    keys: ClassVar[frozenset[str]] = frozenset({"assignee", "user_id", "team"})

    assignee: Assignee = field(default_factory=Assignee)

    @classmethod
    def validate(cls, spec: Any, here: str, checks: SaveChecks) -> Any:
        spec = action_object(cls.kind, cls.keys, spec, here, "an object with `assignee`")
        return validate_assignee(spec, here)

    @classmethod
    def parse(cls, spec: Any) -> RuleAction:
        return cls(assignee=Assignee.parse(spec))

    def prepare(self, context: PrepareContext) -> PreparedAction:
        assignee_id = context.assignees.pick(self.assignee, context.facts, context.rule_id)
        return PreparedAction(self, assignee_id=assignee_id)

    def apply(self, prepared: PreparedAction, context: ApplyContext) -> dict[str, Any]:
        if context.event.conversation_id is None:
            return {"skipped": "the event has no conversation"}
        conversation = context.unit.get(context.event.conversation_id, Conversation)
        if conversation.assignee_id != prepared.assignee_id:
            conversation.assign(prepared.assignee_id, context.actor, context.correlation_id)
        assignee = prepared.assignee_id
        return {"assignee_id": None if assignee is None else str(assignee)}
