"""Rule commands: save a rule, switch it on or off.

Firings, timers and the actions they cause are built by `threadline.triggers`
(it knows the rule format) and submitted to the same writer.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from threadline.domain.commands.base import Commands
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.errors import Conflict, InvalidInput
from threadline.domain.model.rule import Rule


class RuleCommands(Commands):
    def save_rule(
        self,
        definition: dict[str, Any],
        actor: str,
        rule_id: UUID | None = None,
        create_only: bool = False,
    ) -> Committed[UUID]:
        """Create the rule (a new id unless given) or change it; an unchanged rule records nothing."""
        name = str(definition.get("name", "")).strip()
        if not name:
            raise InvalidInput("name", "a rule needs a name")
        wanted = rule_id or uuid4()
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> UUID:
            rule = unit.find(wanted, Rule)
            if rule is None:
                unit.add(
                    Rule(
                        id=wanted,
                        name=name,
                        definition=definition,
                        actor=actor,
                        correlation_id=correlation_id,
                    )
                )
            elif create_only:
                raise Conflict(f"rule {wanted} exists")
            elif rule.definition != definition or rule.name != name:
                rule.change(name, definition, actor, correlation_id)
            return wanted

        return self.writer.submit(command)

    def set_rule_enabled(self, rule_id: UUID, enabled: bool, actor: str) -> Committed[None]:
        def command(unit: UnitOfWork) -> None:
            rule = unit.get(rule_id, Rule)
            if rule.enabled != enabled:
                rule.set_enabled(enabled, actor, str(uuid4()))

        return self.writer.submit(command)
