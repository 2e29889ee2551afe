"""The segment language: the query parameters of `GET /api/contacts`, as a reusable filter.

The same words select contacts in the API, in a rule's `segment` condition and
in a campaign's audience, so a manager writes a segment once and means the same
thing everywhere: ``tag`` (repeatable), ``lifecycle``, ``responsible_id``,
``company_id``, ``source``, ``created_from``, ``created_to``, ``q``, and
attributes as ``attr.KEY`` (equals) or ``attr.KEY.OP`` with OP in eq, ne, gt,
gte, lt, lte.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from threadline.domain.model.attributes import AttributeRegistry, AttributeType
from threadline.domain.model.errors import InvalidInput
from threadline.projections.base import ts
from threadline.projections.queries import COMPARATORS, AttributeCondition, ContactFilter

NUMERIC_TYPES = {AttributeType.NUMBER.value, AttributeType.BOOLEAN.value}
PLAIN_KEYS = (
    "tag",
    "lifecycle",
    "responsible_id",
    "company_id",
    "source",
    "created_from",
    "created_to",
    "q",
)


def pairs_of(segment: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A segment written as a mapping (rules, campaigns) as query-style pairs."""
    pairs: list[tuple[str, str]] = []
    for key, value in segment.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            pairs.append((str(key), str(item)))
    return pairs


def build_contact_filter(
    pairs: Iterable[tuple[str, str]],
    registry: AttributeRegistry | None,
    field_prefix: str = "query",
) -> ContactFilter:
    """Validate and build; errors name the offending parameter (``query.attr.size.gte``)."""
    plain: dict[str, list[str]] = {}
    conditions: list[AttributeCondition] = []
    for name, raw in pairs:
        if name.startswith("attr."):
            conditions.append(_attribute_condition(name, raw, registry, field_prefix))
        elif name in PLAIN_KEYS:
            plain.setdefault(name, []).append(raw)
        elif name not in ("limit", "offset"):
            raise InvalidInput(f"{field_prefix}.{name}", "unknown filter")

    def one(key: str) -> str | None:
        values = plain.get(key)
        return values[-1] if values else None

    return ContactFilter(
        tags=tuple(t.strip().lower() for t in plain.get("tag", [])),
        lifecycle=one("lifecycle"),
        responsible_id=one("responsible_id"),
        company_id=one("company_id"),
        source_channel=one("source"),
        attributes=tuple(conditions),
        created_from=_instant(one("created_from"), f"{field_prefix}.created_from"),
        created_to=_instant(one("created_to"), f"{field_prefix}.created_to"),
        text=one("q"),
    )


def _instant(raw: str | None, field: str) -> str | None:
    """An ISO date stays a date (it compares with the views' timestamps as the start of that
    day); a date and time becomes the views' own UTC form. Anything else is refused, not
    read as "matches nothing"."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text).isoformat()
        moment = datetime.fromisoformat(text)
        return ts(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    except (ValueError, OverflowError):  # not a date; or at the calendar's very edge
        raise InvalidInput(
            field, "expected an ISO date or time (2026-03-01, 2026-03-01T09:30Z)"
        ) from None


def _attribute_condition(
    name: str, raw: str, registry: AttributeRegistry | None, field_prefix: str
) -> AttributeCondition:
    field = f"{field_prefix}.{name}"
    key, _, op = name[len("attr.") :].partition(".")
    op = op or "eq"
    if op not in COMPARATORS:
        raise InvalidInput(field, f"operator must be one of {sorted(COMPARATORS)}")
    if registry is None:
        raise InvalidInput(field, "no such attribute is defined")
    try:
        definition = registry.definition(key)
    except InvalidInput:
        raise InvalidInput(field, "no such attribute is defined") from None
    kind = str(definition.type)
    if kind in NUMERIC_TYPES:
        if kind == AttributeType.BOOLEAN.value:
            value: str | float = 1.0 if raw.lower() in ("1", "true", "yes") else 0.0
        else:
            try:
                value = float(raw)
            except ValueError:
                raise InvalidInput(field, f"expected a number, got {raw!r}") from None
        return AttributeCondition(key, op, value, numeric=True)
    if kind == AttributeType.DATE.value:
        try:
            raw = date.fromisoformat(raw).isoformat()
        except ValueError:
            raise InvalidInput(field, "expected a date YYYY-MM-DD") from None
    return AttributeCondition(key, op, raw, numeric=False)
