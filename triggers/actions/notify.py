"""``notify``: tell an operator in the app (and by e-mail with ``email: true``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar
from uuid import UUID

from threadline.domain.model.automation import Notification
from threadline.domain.model.user import User
from threadline.triggers.actions.base import (
    ApplyContext,
    PrepareContext,
    PreparedAction,
    RuleAction,
    register,
)
from threadline.triggers.assignees import Assignee, validate_assignee
from threadline.triggers.rule_checks import (
    MAX_TEXT,
    RuleError,
    SaveChecks,
    action_object,
    optional_string,
    string,
    text_template,
)


@register
@dataclass(frozen=True)
class Notify(RuleAction):
    kind: ClassVar[str] = "notify"
    keys: ClassVar[frozenset[str]] = frozenset(
        {"text", "user", "email", "assignee", "user_id", "team"}
    )

    text: str
    email: bool = False
    assignee: Assignee = field(default_factory=Assignee)

    @classmethod
    def validate(cls, spec: Any, here: str, checks: SaveChecks) -> Any:
        spec = action_object(cls.kind, cls.keys, spec, here, "what to tell the operator", ".text")
        if not isinstance(spec.get("text"), str) or not spec["text"]:
            raise RuleError(f"{here}.text", "what to tell the operator")
        string(f"{here}.text", spec["text"], MAX_TEXT)
        text_template(f"{here}.text", spec["text"])
        optional_string(spec, "user", here)
        if "email" in spec and not isinstance(spec["email"], bool):
            raise RuleError(f"{here}.email", "true or false")
        return {
            **spec,
            **validate_assignee({"assignee": spec.get("user", "responsible"), **spec}, here),
        }

    @classmethod
    def parse(cls, spec: Any) -> RuleAction:
        return cls(
            text=str(spec["text"]), email=bool(spec.get("email")), assignee=Assignee.parse(spec)
        )

    def prepare(self, context: PrepareContext) -> PreparedAction:
        assignee_id = context.assignees.pick(self.assignee, context.facts, context.rule_id)
        return PreparedAction(
            self, assignee_id=assignee_id, rendered={"text": context.text(self.text)}
        )

    def apply(self, prepared: PreparedAction, context: ApplyContext) -> dict[str, Any]:
        if prepared.assignee_id is None:
            why = "no responsible operator"
            if self.assignee.team:
                why += " and nobody active in the team"
            return {"skipped": f"nobody to notify ({why})"}
        context.unit.get(prepared.assignee_id, User)
        event = context.event
        context.unit.add(
            Notification(
                id=context.effect_id,
                user_id=prepared.assignee_id,
                contact_id=context.contact.id if context.contact else None,
                conversation_id=event.conversation_id,
                email=self.email,
                personal={"text": prepared.rendered.get("text", "")},
                actor=context.actor,
                correlation_id=context.correlation_id,
                # A task's events and reminders name the task: the notification links it.
                task_id=_uuid(event.facts.get("task_id")),
            )
        )
        return {
            "notification_id": str(context.effect_id),
            "user_id": str(prepared.assignee_id),
        }


def _uuid(value: Any) -> UUID | None:
    try:
        return None if value in (None, "") else UUID(str(value))
    except ValueError:
        return None
