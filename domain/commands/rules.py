"""Commands of the trigger engine that are plain data changes: rules and templates.

Firings, timers and the actions they cause are built by `threadline.triggers`
(it knows the rule format) and submitted to the same writer.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from threadline.domain.infrastructure.group_commit import Committed, GroupCommitWriter
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.errors import Conflict, InvalidInput
from threadline.domain.model.inbox import clean_slug
from threadline.domain.model.rule import Rule
from threadline.domain.model.template import Template, template_id_for


class RuleCommands:
    writer: GroupCommitWriter

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

    def save_template(
        self, slug: str, name: str, variants: dict[str, Any], actor: str, create_only: bool = False
    ) -> Committed[UUID]:
        slug = clean_slug(slug)
        if not name.strip():
            raise InvalidInput("name", "must not be empty")
        template_id = template_id_for(slug)
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> UUID:
            template = unit.find(template_id, Template)
            if template is None:
                unit.add(
                    Template(
                        id=template_id,
                        slug=slug,
                        name=name.strip(),
                        variants=variants,
                        actor=actor,
                        correlation_id=correlation_id,
                    )
                )
            elif create_only:
                raise Conflict(f"a template with slug {slug!r} exists")
            elif template.variants != variants or template.name != name.strip():
                template.change(name.strip(), variants, actor, correlation_id)
            return template_id

        return self.writer.submit(command)
