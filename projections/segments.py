"""The segment language: the query parameters of `GET /api/contacts`, as a reusable filter.

The same words select contacts in the API, in a rule's `segment` condition and
in a campaign's audience, so a manager writes a segment once and means the same
thing everywhere: ``tag`` (repeatable), ``lifecycle``, ``responsible_id``,
``company_id``, ``source``, ``created_from``, ``created_to``, ``q``,
``preferred_channel`` (the channel of most inbound contacts), and
attributes as ``attr.KEY`` (equals) or ``attr.KEY.OP`` with OP in eq, ne, gt,
gte, lt, lte. Saved segments add (`threadline.projections.saved_segments`):
``last_contact_from`` / ``last_contact_to`` (contacts.last_contact_at; from inclusive,
to exclusive, like ``created_*``; also ``-90d``: 90 days before now), ``utm_source``, ``utm_campaign`` (first touch),
``abc_class`` (A/B/C of the contact's client; ``abc_by`` revenue or profit,
``abc_from`` / ``abc_to``, default the last 12 months), ``balance_gt`` / ``balance_lt``
(the client's balance in major units of ``balance_currency``, default RUB) and
``segment_id`` (the filter of a saved segment, repeatable). The last three groups read
the views when the filter is built, so the builder needs `views` for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from threadline.domain.model.attributes import AttributeRegistry, AttributeType
from threadline.domain.model.errors import InvalidInput
from threadline.projections.base import utc_ts
from threadline.projections.queries import COMPARATORS, AttributeCondition, ContactFilter
from threadline.projections.saved_segments import (
    SEGMENT_KEYS,
    check_segment_keys,
    relative_instant,
    resolve_segment_keys,
)
from threadline.projections.sql import ViewReader

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
    "preferred_channel",
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
    *,
    views: ViewReader | None = None,
    now: datetime | None = None,
    within: tuple[str, ...] = (),
    replacing: Mapping[str, list[tuple[str, str]]] | None = None,
) -> ContactFilter:
    """Validate and build; errors name the offending parameter (``query.attr.size.gte``).

    `views` resolves ``abc_class``, ``balance_*`` and ``segment_id`` (without it they are
    refused); `now` fixes the default ABC period; `within` / `replacing`: see
    `saved_segments.resolve_segment_keys`."""
    plain: dict[str, list[str]] = {}
    conditions: list[AttributeCondition] = []
    for name, raw in pairs:
        if name.startswith("attr."):
            conditions.append(_attribute_condition(name, raw, registry, field_prefix))
        elif name in PLAIN_KEYS or name in SEGMENT_KEYS:
            plain.setdefault(name, []).append(raw)
        elif name not in ("limit", "offset"):
            raise InvalidInput(f"{field_prefix}.{name}", "unknown filter")

    def one(key: str) -> str | None:
        values = plain.get(key)
        return values[-1] if values else None

    keys = check_segment_keys(plain, field_prefix, _instant)

    def nested(pairs: list[tuple[str, str]], **given: Any) -> ContactFilter:
        return build_contact_filter(pairs, registry, **given)

    client_sets, segments = resolve_segment_keys(
        keys, views, field_prefix, nested, now=now, within=within, replacing=replacing
    )
    return ContactFilter(
        last_contact_from=relative_instant(
            one("last_contact_from"), f"{field_prefix}.last_contact_from", now, _instant
        ),
        last_contact_to=relative_instant(
            one("last_contact_to"), f"{field_prefix}.last_contact_to", now, _instant
        ),
        utm_source=one("utm_source"),
        utm_campaign=one("utm_campaign"),
        client_sets=client_sets,
        segments=segments,
        tags=tuple(t.strip().lower() for t in plain.get("tag", [])),
        lifecycle=one("lifecycle"),
        responsible_id=one("responsible_id"),
        company_id=one("company_id"),
        source_channel=one("source"),
        attributes=tuple(conditions),
        created_from=_instant(one("created_from"), f"{field_prefix}.created_from"),
        created_to=_instant(one("created_to"), f"{field_prefix}.created_to"),
        text=one("q"),
        preferred_channel=one("preferred_channel"),
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
        return utc_ts(moment)
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


def check_segment_values(pairs: Iterable[tuple[str, str]], field_prefix: str = "segment") -> None:
    """Check the values of the saved segments' keys without reading the views (a rule's
    segment condition when it is saved); the rest of the language is checked as before."""
    plain: dict[str, list[str]] = {}
    for name, raw in pairs:
        if name in SEGMENT_KEYS:
            plain.setdefault(name, []).append(raw)
    check_segment_keys(plain, field_prefix, _instant)
    for key in ("last_contact_from", "last_contact_to"):
        for raw in plain.get(key, []):
            relative_instant(raw, f"{field_prefix}.{key}", None, _instant)
