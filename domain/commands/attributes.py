"""Attribute commands: defining typed attributes, and setting them on a contact or company.

Values are coerced against the one registry (`AttributeRegistry`); a personal
attribute's value travels only in an event's ``personal`` part. The trigger
engine's set-attribute action sets values through `set_contact_attributes` too.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from threadline.domain.commands.base import Commands
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.attributes import (
    REGISTRY_ID,
    AttributeDefinition,
    AttributeRegistry,
    AttributeScope,
    coerce_value,
)
from threadline.domain.model.contact import Contact
from threadline.domain.model.errors import InvalidInput


class AttributeCommands(Commands):
    """The attribute registry: read it, define an attribute."""

    def attribute_registry(self) -> AttributeRegistry | None:
        # Read-only: run in the caller's thread, not through the writer.
        return self._read_unit().find(REGISTRY_ID, AttributeRegistry)

    def define_attribute(self, definition: AttributeDefinition, actor: str) -> Committed[None]:
        def command(unit: UnitOfWork) -> None:
            correlation_id = str(uuid4())
            registry = unit.find(REGISTRY_ID, AttributeRegistry)
            if registry is None:
                registry = unit.add(AttributeRegistry(actor=actor, correlation_id=correlation_id))
            registry.define(definition, actor, correlation_id)

        return self.writer.submit(command)


def coerce_attributes(
    registry: AttributeRegistry | None, attributes: dict[str, Any], scope: AttributeScope
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(plain values, personal values) of `attributes`, each coerced to its definition."""
    values: dict[str, Any] = {}
    personal: dict[str, Any] = {}
    for key, raw in attributes.items():
        if registry is None:
            raise InvalidInput(f"attributes.{key}", "no such attribute is defined")
        definition = registry.definition(key, scope)
        value = coerce_value(definition, raw)
        (personal if definition.personal else values)[key] = value
    return values, personal


def set_contact_attributes(
    unit: UnitOfWork, contact: Contact, attributes: dict[str, Any], actor: str, correlation_id: str
) -> None:
    """Record the values of `attributes` that differ from the contact's (nothing if none do)."""
    registry = unit.find(REGISTRY_ID, AttributeRegistry)
    values, personal = coerce_attributes(registry, attributes, AttributeScope.CONTACT)
    changed_values = {k: v for k, v in values.items() if contact.attributes.get(k) != v}
    changed_personal = {k: v for k, v in personal.items() if contact.attributes.get(k) != v}
    if changed_values or changed_personal:
        contact.change_attributes(changed_values, changed_personal, actor, correlation_id)
