"""Saved segments as the API and the web screen share them: check a filter, count it.

A saved segment's filter is the language of `GET /api/contacts`
(`threadline.projections.segments`), checked with the same `build_contact_filter` before
the segment is saved, so errors name the key (``filter.abc_class``). A filter that names
saved segments is built with the one being saved in place of its stored version, so a
segment that would contain itself is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from threadline.domain.model.attributes import AttributeRegistry
from threadline.domain.model.errors import Conflict, InvalidInput
from threadline.projections.queries import ContactFilter, Queries
from threadline.projections.saved_segments import SavedSegmentRow, saved_segments
from threadline.projections.segments import build_contact_filter
from threadline.projections.sql import ViewReader

FIELD = "filter"


def filter_pairs(given: Mapping[str, Any] | Iterable[Any] | str | None) -> list[tuple[str, str]]:
    """The filter as pairs, from a mapping (``{tag: [vip, new], abc_class: A}``), a list of
    pairs (``[[tag, vip], ...]``) or a query string (``tag=vip&abc_class=A``)."""
    if given is None:
        return []
    if isinstance(given, str):
        text = given.strip().lstrip("?")
        try:
            return [(k.strip(), v.strip()) for k, v in parse_qsl(text, strict_parsing=bool(text))]
        except ValueError:
            raise InvalidInput(FIELD, "write the filter as key=value&key=value") from None
    pairs: list[tuple[str, str]] = []
    if isinstance(given, Mapping):
        for key, value in given.items():
            for item in value if isinstance(value, list | tuple) else [value]:
                if not isinstance(item, str | int | float | bool) or isinstance(item, bool):
                    raise InvalidInput(f"{FIELD}.{key}", "expected a value or a list of values")
                pairs.append((str(key), str(item)))
        return pairs
    for i, pair in enumerate(given):
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise InvalidInput(f"{FIELD}[{i}]", "a pair [key, value]")
        pairs.append((str(pair[0]), str(pair[1])))
    return pairs


def filter_text(pairs: Iterable[tuple[str, str]]) -> str:
    """Pairs as the screen shows them (one key=value a line)."""
    return "\n".join(f"{k}={v}" for k, v in pairs)


def check_filter(
    views: ViewReader,
    registry: AttributeRegistry | None,
    pairs: list[tuple[str, str]],
    segment_id: str | None = None,
) -> ContactFilter:
    """The filter built as it will be used (`InvalidInput` naming ``filter.<key>``)."""
    for key, _ in pairs:
        if key in ("limit", "offset"):
            raise InvalidInput(f"{FIELD}.{key}", "unknown filter")
    return build_contact_filter(
        pairs,
        registry,
        field_prefix=FIELD,
        views=views,
        replacing={segment_id: pairs} if segment_id else None,
        within=(segment_id,) if segment_id else (),
    )


def matching_count(queries: Queries, flt: ContactFilter) -> int:
    return queries.contacts(flt, 1, 0)[1]


def segment_count(
    views: ViewReader, queries: Queries, registry: AttributeRegistry | None, row: SavedSegmentRow
) -> tuple[int | None, str]:
    """The live count of a saved segment's contacts, or None and why it cannot be read."""
    try:
        flt = build_contact_filter(
            row.pairs, registry, field_prefix=FIELD, views=views, within=(row.id,)
        )
    except InvalidInput as error:
        return None, f"{error.field}: {error.message}"
    return matching_count(queries, flt), ""


def refuse_if_used(views: ViewReader, segment_id: str) -> None:
    """A segment another saved segment names cannot be deleted (`Conflict`)."""
    for other in saved_segments(views, limit=10_000):
        if other.id != segment_id and ("segment_id", segment_id) in other.pairs:
            raise Conflict(f"the segment {other.name!r} uses this segment")
