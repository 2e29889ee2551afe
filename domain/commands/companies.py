"""Company commands: create a counterparty and change what is given of it.

Input is cleaned and its check digits verified before the command is queued (so a
typing error never waits for the writer); whether the requisites fit the legal form
depends on the company as it is, so that is decided inside the command
(`Company.revise`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID, uuid4

from threadline.domain.commands.attributes import coerce_attributes
from threadline.domain.commands.base import Commands, required_text
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.attributes import REGISTRY_ID, AttributeRegistry, AttributeScope
from threadline.domain.model.company import Company
from threadline.domain.model.requisites import (
    RequisiteSet,
    clean_client_group,
    clean_legal_form,
    clean_roles,
    parse_requisites,
    printable,
)

NAME_LIMIT = 300


class _Cleaned:
    """The optional fields of a create or an update, cleaned; None means "not given"."""

    def __init__(
        self,
        name: str | None,
        roles: Sequence[str] | None,
        legal_form: str | None,
        requisites: Sequence[Any] | None,
        client_group: str | None,
    ) -> None:
        self.name = (
            printable(required_text("name", name, NAME_LIMIT).strip(), "name")
            if name is not None
            else None
        )
        self.roles = clean_roles(roles) if roles is not None else None
        self.legal_form = clean_legal_form(legal_form) if legal_form is not None else None
        self.requisites: tuple[RequisiteSet, ...] | None = (
            parse_requisites(requisites) if requisites is not None else None
        )
        self.client_group = clean_client_group(client_group) if client_group is not None else None

    def apply(self, company: Company, actor: str, correlation_id: str) -> None:
        company.revise(
            actor,
            correlation_id,
            name=self.name,
            roles=self.roles,
            legal_form=self.legal_form,
            requisites=self.requisites,
            client_group=self.client_group,
        )


def _set_attributes(
    unit: UnitOfWork, company: Company, attributes: dict[str, Any], actor: str, correlation_id: str
) -> None:
    """Record the attribute values that differ from the company's (nothing if none do)."""
    registry = unit.find(REGISTRY_ID, AttributeRegistry)
    values, personal = coerce_attributes(registry, attributes, AttributeScope.COMPANY)
    changed_values = {k: v for k, v in values.items() if company.attributes.get(k) != v}
    changed_personal = {k: v for k, v in personal.items() if company.attributes.get(k) != v}
    if changed_values or changed_personal:
        company.change_attributes(changed_values, changed_personal, actor, correlation_id)


class CompanyCommands(Commands):
    def create_company(
        self,
        actor: str,
        name: str,
        attributes: dict[str, Any] | None = None,
        roles: Sequence[str] | None = None,
        legal_form: str | None = None,
        requisites: Sequence[Any] | None = None,
        client_group: str | None = None,
    ) -> Committed[UUID]:
        """A new company; the optional fields are recorded as their own events after it."""
        cleaned = _Cleaned(name, roles, legal_form, requisites, client_group)
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> UUID:
            company = unit.add(
                Company(name=str(cleaned.name), actor=actor, correlation_id=correlation_id)
            )
            cleaned.apply(company, actor, correlation_id)
            if attributes:
                _set_attributes(unit, company, attributes, actor, correlation_id)
            return company.id

        return self.writer.submit(command)

    def update_company(
        self,
        company_id: UUID,
        actor: str,
        name: str | None = None,
        attributes: dict[str, Any] | None = None,
        roles: Sequence[str] | None = None,
        legal_form: str | None = None,
        requisites: Sequence[Any] | None = None,
        client_group: str | None = None,
    ) -> Committed[None]:
        """Change what is given (None: leave as it is); only values that change are recorded.

        `requisites` replaces every set (an empty list removes them); `client_group` ""
        takes the company out of its group; `attributes` with a None value clears it.
        """
        cleaned = _Cleaned(name, roles, legal_form, requisites, client_group)
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> None:
            company = unit.get(company_id, Company)
            cleaned.apply(company, actor, correlation_id)
            if attributes:
                _set_attributes(unit, company, attributes, actor, correlation_id)

        return self.writer.submit(command)
