"""Company commands: the organisations contacts belong to."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from threadline.domain.commands.attributes import coerce_attributes
from threadline.domain.commands.base import Commands, required_text
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.attributes import REGISTRY_ID, AttributeRegistry, AttributeScope
from threadline.domain.model.company import Company


class CompanyCommands(Commands):
    def create_company(
        self, actor: str, name: str, attributes: dict[str, Any] | None = None
    ) -> Committed[UUID]:
        required_text("name", name, 300)
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> UUID:
            company = unit.add(
                Company(name=name.strip(), actor=actor, correlation_id=correlation_id)
            )
            if attributes:
                registry = unit.find(REGISTRY_ID, AttributeRegistry)
                values, personal = coerce_attributes(registry, attributes, AttributeScope.COMPANY)
                company.change_attributes(values, personal, actor, correlation_id)
            return company.id

        return self.writer.submit(command)
