"""Typed custom attributes and the registry that defines them.

Segments are only as good as the data: "staff size over 50" needs a number,
"birthday this month" needs a date. Every attribute a contact or company may
carry is first defined here with its type, and every value is coerced to that
type before it is recorded, so filters never meet "fifty" in a number field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from threadline.domain.model.errors import InvalidInput

REGISTRY_ID: UUID = uuid5(NAMESPACE_URL, "https://threadline.dev/attribute-registry")
_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

AttributeValue = str | float | int | bool | list[str] | None


class AttributeType(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    DATE = "date"
    CHOICE = "choice"
    MULTI_CHOICE = "multi_choice"
    BOOLEAN = "boolean"


class AttributeScope(StrEnum):
    CONTACT = "contact"
    COMPANY = "company"


@dataclass(frozen=True, slots=True)
class AttributeDefinition:
    """What one custom attribute is: its key, type, allowed options, and whether it is personal."""

    key: str
    label: str
    type: AttributeType
    options: tuple[str, ...] = ()
    personal: bool = False
    scope: AttributeScope = AttributeScope.CONTACT

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "type": str(self.type),
            "options": list(self.options),
            "personal": self.personal,
            "scope": str(self.scope),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttributeDefinition:
        return cls(
            key=data["key"],
            label=data["label"],
            type=AttributeType(data["type"]),
            options=tuple(data.get("options") or ()),
            personal=bool(data.get("personal", False)),
            scope=AttributeScope(data.get("scope", "contact")),
        )


def validate_definition(definition: AttributeDefinition) -> None:
    field = f"attributes.{definition.key}"
    if not _KEY_RE.match(definition.key):
        raise InvalidInput(field, "a key is lower-case letters, digits and _ (max 63)")
    if not definition.label.strip():
        raise InvalidInput(field, "a label is required")
    choice_types = (AttributeType.CHOICE, AttributeType.MULTI_CHOICE)
    if definition.type in choice_types and not definition.options:
        raise InvalidInput(field, "a choice attribute needs at least one option")
    if definition.type not in choice_types and definition.options:
        raise InvalidInput(field, "only choice attributes take options")
    if len(set(definition.options)) != len(definition.options):
        raise InvalidInput(field, "options must be unique")


def coerce_value(definition: AttributeDefinition, raw: Any) -> AttributeValue:
    """Return `raw` as the attribute's type, or raise `InvalidInput` that names the attribute.

    ``None`` clears the attribute.
    """
    field = f"attributes.{definition.key}"
    if raw is None:
        return None
    kind = definition.type
    if kind is AttributeType.TEXT:
        if not isinstance(raw, str | int | float) or isinstance(raw, bool):
            raise InvalidInput(field, "expected text")
        text = str(raw)
        if len(text) > 2000:
            raise InvalidInput(field, "text is limited to 2000 characters")
        return text
    if kind is AttributeType.NUMBER:
        if isinstance(raw, bool):
            raise InvalidInput(field, "expected a number")
        try:
            number = float(raw)
        except (TypeError, ValueError):
            raise InvalidInput(field, f"expected a number, got {raw!r}") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise InvalidInput(field, "expected a finite number")
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if kind is AttributeType.DATE:
        try:
            return date.fromisoformat(str(raw)).isoformat()
        except ValueError:
            raise InvalidInput(field, f"expected a date YYYY-MM-DD, got {raw!r}") from None
    if kind is AttributeType.BOOLEAN:
        if isinstance(raw, bool):
            return raw
        lowered = str(raw).strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise InvalidInput(field, f"expected true or false, got {raw!r}")
    if kind is AttributeType.CHOICE:
        if raw not in definition.options:
            raise InvalidInput(field, f"{raw!r} is not one of {list(definition.options)}")
        return str(raw)
    values = raw if isinstance(raw, list) else [raw]
    unknown = [value for value in values if value not in definition.options]
    if unknown:
        raise InvalidInput(field, f"{unknown!r} not among {list(definition.options)}")
    return sorted({str(value) for value in values})


class AttributeRegistry(Aggregate):
    """The one registry of attribute definitions; an aggregate so every change is audited."""

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return REGISTRY_ID

    class AttributeRegistryCreated(Aggregate.Created):
        actor: str
        correlation_id: str

    @event(AttributeRegistryCreated)
    def __init__(self, actor: str, correlation_id: str) -> None:
        self.definitions: dict[str, dict[str, Any]] = {}

    def definition(
        self, key: str, scope: AttributeScope = AttributeScope.CONTACT
    ) -> AttributeDefinition:
        data = self.definitions.get(f"{scope}:{key}")
        if data is None:
            raise InvalidInput(f"attributes.{key}", "no such attribute is defined")
        return AttributeDefinition.from_dict(data)

    def all(self) -> list[AttributeDefinition]:
        return [AttributeDefinition.from_dict(d) for d in self.definitions.values()]

    def define(self, definition: AttributeDefinition, actor: str, correlation_id: str) -> None:
        validate_definition(definition)
        existing = self.definitions.get(f"{definition.scope}:{definition.key}")
        if existing is not None and existing["type"] != str(definition.type):
            raise InvalidInput(
                f"attributes.{definition.key}", "the type of an existing attribute cannot change"
            )
        self._attribute_defined(definition.as_dict(), actor, correlation_id)

    class AttributeDefined(Aggregate.Event):
        definition: dict[str, Any]
        actor: str
        correlation_id: str

    @event(AttributeDefined)
    def _attribute_defined(
        self, definition: dict[str, Any], actor: str, correlation_id: str
    ) -> None:
        self.definitions[f"{definition['scope']}:{definition['key']}"] = definition
