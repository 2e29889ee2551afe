"""Template commands: the message templates rules and campaigns render, by slug."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from threadline.domain.commands.base import Commands
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.errors import Conflict, InvalidInput
from threadline.domain.model.inbox import clean_slug
from threadline.domain.model.template import Template, template_id_for


class TemplateCommands(Commands):
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
