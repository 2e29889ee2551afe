"""The Company aggregate: a counterparty (client, supplier, partner) and its requisites.

Contacts point to a company; its attributes are typed like a contact's. A company
has a legal form (company, sole trader, private person) that decides which
requisites it may have (`requisites.check_fits`), roles, and an optional client
group that price lists and reports slice by. Requisites travel in the events'
``personal`` part: for sole traders and private persons they are personal data, and
keeping every company's the same way keeps the rule simple.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.domain import Aggregate, event

from threadline.domain.model.requisites import RequisiteSet, check_fits


class Company(Aggregate):
    """A counterparty; contacts point to it, its attributes are typed like a contact's."""

    class CompanyCreated(Aggregate.Created):
        name: str
        actor: str
        correlation_id: str

    @event(CompanyCreated)
    def __init__(self, name: str, actor: str, correlation_id: str) -> None:
        self.name = name
        self.attributes: dict[str, Any] = {}
        self.roles: list[str] = []
        self.legal_form: str | None = None
        self.requisites: tuple[RequisiteSet, ...] = ()
        self.client_group = ""

    class CompanyRenamed(Aggregate.Event):
        name: str
        actor: str
        correlation_id: str

    @event(CompanyRenamed)
    def rename(self, name: str, actor: str, correlation_id: str) -> None:
        self.name = name

    class CompanyAttributesChanged(Aggregate.Event):
        values: dict[str, Any]
        personal: dict[str, Any]
        actor: str
        correlation_id: str

    @event(CompanyAttributesChanged)
    def change_attributes(
        self, values: dict[str, Any], personal: dict[str, Any], actor: str, correlation_id: str
    ) -> None:
        for key, value in {**values, **personal}.items():
            if value is None:
                self.attributes.pop(key, None)
            else:
                self.attributes[key] = value

    class CompanyRolesChanged(Aggregate.Event):
        roles: list[str]
        actor: str
        correlation_id: str

    @event(CompanyRolesChanged)
    def change_roles(self, roles: list[str], actor: str, correlation_id: str) -> None:
        self.roles = list(roles)

    class CompanyLegalFormChanged(Aggregate.Event):
        legal_form: str
        actor: str
        correlation_id: str

    @event(CompanyLegalFormChanged)
    def change_legal_form(self, legal_form: str, actor: str, correlation_id: str) -> None:
        self.legal_form = legal_form

    class CompanyRequisitesChanged(Aggregate.Event):
        personal: dict[str, Any]  # {"requisites": [RequisiteSet.state(), ...]}
        actor: str
        correlation_id: str

    @event(CompanyRequisitesChanged)
    def change_requisites(self, personal: dict[str, Any], actor: str, correlation_id: str) -> None:
        self.requisites = tuple(RequisiteSet.from_state(s) for s in personal["requisites"])

    class CompanyGroupChanged(Aggregate.Event):
        client_group: str  # "" when the company is in no group
        actor: str
        correlation_id: str

    @event(CompanyGroupChanged)
    def change_group(self, client_group: str, actor: str, correlation_id: str) -> None:
        self.client_group = client_group

    def revise(
        self,
        actor: str,
        correlation_id: str,
        *,
        name: str | None = None,
        roles: list[str] | None = None,
        legal_form: str | None = None,
        requisites: Sequence[RequisiteSet] | None = None,
        client_group: str | None = None,
    ) -> None:
        """Record what differs from the company as it is, once the result is consistent.

        Values come cleaned (`requisites` module); the legal form and the requisites are
        checked together, as they will stand after the change, so changing both at once
        works and changing one alone cannot leave requisites the form may not have.
        """
        form = legal_form if legal_form is not None else self.legal_form
        sets = tuple(requisites) if requisites is not None else self.requisites
        if legal_form is not None or requisites is not None:
            check_fits(form, sets)
        if name is not None and name != self.name:
            self.rename(name, actor, correlation_id)
        if roles is not None and roles != self.roles:
            self.change_roles(roles, actor, correlation_id)
        if legal_form is not None and legal_form != self.legal_form:
            self.change_legal_form(legal_form, actor, correlation_id)
        if requisites is not None and sets != self.requisites:
            state = {"requisites": [s.state() for s in sets]}
            self.change_requisites(state, actor, correlation_id)
        if client_group is not None and client_group != self.client_group:
            self.change_group(client_group, actor, correlation_id)
