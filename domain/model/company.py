"""The Company aggregate: the organisation several contacts work for."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate, event


class Company(Aggregate):
    """A customer organisation; contacts point to it, its attributes are typed like a contact's."""

    class CompanyCreated(Aggregate.Created):
        name: str
        actor: str
        correlation_id: str

    @event(CompanyCreated)
    def __init__(self, name: str, actor: str, correlation_id: str) -> None:
        self.name = name
        self.attributes: dict[str, Any] = {}

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
