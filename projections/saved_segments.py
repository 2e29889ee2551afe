"""Saved segments as the API and the screens read them: name, description, the filter.

One row per live segment (a deleted one is removed); the filter is kept as the JSON list
of its query-style pairs, exactly as saved, so `segment_pairs` gives back what the
segment language reads (`threadline.projections.segments.build_contact_filter`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.money import DEFAULT_CURRENCY, clean_currency, exponent, to_decimal
from threadline.domain.model.saved_segment import SavedSegment, segment_name_key
from threadline.projections.base import ViewProjection, dumps, handles, sid, ts
from threadline.projections.queries import ClientSet, ContactFilter
from threadline.projections.sql import ViewCursor, ViewReader

# The keys of the segment language this module reads (besides the older ones).
SEGMENT_KEYS = (
    "last_contact_from",
    "last_contact_to",
    "utm_source",
    "utm_campaign",
    "abc_class",
    "abc_by",
    "abc_from",
    "abc_to",
    "balance_gt",
    "balance_lt",
    "balance_currency",
    "segment_id",
)
ABC_CLASSES = ("A", "B", "C")
ABC_BY = ("revenue", "profit")
MAX_NESTING = 5  # a segment naming a segment naming a segment ...


class SavedSegmentProjection(ViewProjection):
    name = "saved_segments"
    tables = ("saved_segments",)
    schema = (
        "CREATE TABLE IF NOT EXISTS saved_segments ("
        " id TEXT PRIMARY KEY, name TEXT NOT NULL, name_key TEXT NOT NULL,"
        " description TEXT NOT NULL, pairs TEXT NOT NULL, created_by TEXT NOT NULL,"
        " created_at TEXT NOT NULL, updated_by TEXT NOT NULL, updated_at TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS saved_segments_name ON saved_segments (name_key)",
    )

    @handles(SavedSegment.SegmentSaved)
    def _saved(self, event: Any, cur: ViewCursor) -> None:
        at = ts(event.timestamp)
        cur.execute(
            "INSERT INTO saved_segments (id, name, name_key, description, pairs, created_by,"
            " created_at, updated_by, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            [
                sid(event.originator_id),
                event.name,
                segment_name_key(event.name),
                str(event.personal.get("description", "")),
                dumps(event.pairs),
                event.actor,
                at,
                event.actor,
                at,
            ],
        )

    @handles(SavedSegment.SegmentChanged)
    def _changed(self, event: Any, cur: ViewCursor) -> None:
        sets = ["updated_by = ?", "updated_at = ?"]
        params: list[Any] = [event.actor, ts(event.timestamp)]
        if "name" in event.changes:
            sets += ["name = ?", "name_key = ?"]
            params += [event.changes["name"], segment_name_key(event.changes["name"])]
        if "pairs" in event.changes:
            sets.append("pairs = ?")
            params.append(dumps(event.changes["pairs"]))
        if "description" in event.personal:
            sets.append("description = ?")
            params.append(str(event.personal["description"]))
        cur.execute(
            f"UPDATE saved_segments SET {', '.join(sets)} WHERE id = ?",
            [*params, sid(event.originator_id)],
        )

    @handles(SavedSegment.SegmentDeleted)
    def _deleted(self, event: Any, cur: ViewCursor) -> None:
        cur.execute("DELETE FROM saved_segments WHERE id = ?", [sid(event.originator_id)])


@dataclass(frozen=True)
class SavedSegmentRow:
    id: str
    name: str
    description: str
    pairs: list[tuple[str, str]]
    created_by: str
    created_at: str
    updated_by: str
    updated_at: str

    @classmethod
    def of(cls, row: dict[str, Any]) -> SavedSegmentRow:
        return cls(
            id=str(row["id"]),
            name=str(row["name"]),
            description=str(row["description"]),
            pairs=[(str(k), str(v)) for k, v in json.loads(row["pairs"])],
            created_by=str(row["created_by"]),
            created_at=str(row["created_at"]),
            updated_by=str(row["updated_by"]),
            updated_at=str(row["updated_at"]),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "filter": [list(p) for p in self.pairs],
            "created_by": self.created_by,
            "created_at": self.created_at,
            "updated_by": self.updated_by,
            "updated_at": self.updated_at,
        }


def saved_segment(db: ViewReader, segment_id: str) -> SavedSegmentRow | None:
    row = db.query_one("SELECT * FROM saved_segments WHERE id = ?", [segment_id])
    return None if row is None else SavedSegmentRow.of(row)


def saved_segment_named(db: ViewReader, name: str) -> SavedSegmentRow | None:
    row = db.query_one("SELECT * FROM saved_segments WHERE name_key = ?", [segment_name_key(name)])
    return None if row is None else SavedSegmentRow.of(row)


def saved_segments(db: ViewReader, limit: int = 500, offset: int = 0) -> list[SavedSegmentRow]:
    """Every live segment, by name."""
    rows = db.query(
        "SELECT * FROM saved_segments ORDER BY name_key, id LIMIT ? OFFSET ?", [limit, offset]
    )
    return [SavedSegmentRow.of(row) for row in rows]


def saved_segment_count(db: ViewReader) -> int:
    row = db.query_one("SELECT COUNT(*) AS n FROM saved_segments")
    return int(row["n"]) if row else 0


# -- the keys of the segment language that need the views -------------------------------------


def relative_instant(
    raw: str | None,
    field: str,
    now: datetime | None,
    instant: Callable[[str | None, str], str | None],
) -> str | None:
    """``-90d``: 90 days before `now` (a saved "silent for 90 days" stays true to its name);
    anything else as the language reads dates (`instant`)."""
    text = (raw or "").strip()
    if text.startswith("-") and text.endswith("d") and text[1:-1].isdigit():
        days = int(text[1:-1])
        if days > 36_500:
            raise InvalidInput(field, "at most 36500 days back")
        return ts((now or datetime.now(UTC)).astimezone(UTC) - timedelta(days=days))
    return instant(raw, field)


# -- the keys of the segment language that need the views -------------------------------------

Builder = Callable[..., ContactFilter]


@dataclass(frozen=True)
class SegmentKeys:
    """The values of the newer keys, checked (nothing read from the views yet)."""

    abc_class: str | None = None
    abc_by: str = "revenue"
    abc_from: str | None = None
    abc_to: str | None = None
    balance_gt: Decimal | None = None
    balance_lt: Decimal | None = None
    balance_currency: str = DEFAULT_CURRENCY
    segment_ids: tuple[str, ...] = ()

    @property
    def needs_views(self) -> bool:
        return bool(
            self.abc_class
            or self.balance_gt is not None
            or self.balance_lt is not None
            or self.segment_ids
        )


def check_segment_keys(
    plain: Mapping[str, list[str]],
    field_prefix: str,
    instant: Callable[[str | None, str], str | None],
) -> SegmentKeys:
    """Check the newer keys' values; errors name the key (``query.abc_class``)."""

    def one(key: str) -> str | None:
        values = plain.get(key)
        return values[-1].strip() if values else None

    def field(key: str) -> str:
        return f"{field_prefix}.{key}"

    abc_class = (one("abc_class") or "").upper() or None
    if abc_class is not None and abc_class not in ABC_CLASSES:
        raise InvalidInput(field("abc_class"), "A, B or C")
    abc_by = (one("abc_by") or "revenue").lower()
    if abc_by not in ABC_BY:
        raise InvalidInput(field("abc_by"), "revenue or profit")
    currency = clean_currency(
        (one("balance_currency") or DEFAULT_CURRENCY).upper(), field("balance_currency")
    )
    amounts: dict[str, Decimal | None] = {}
    for key in ("balance_gt", "balance_lt"):
        raw = one(key)
        amounts[key] = None if not raw else to_decimal(raw, field(key))
    segment_ids: list[str] = []
    for raw in plain.get("segment_id", []):
        try:
            segment_ids.append(str(UUID(raw.strip())))
        except ValueError:
            raise InvalidInput(field("segment_id"), "the id of a saved segment") from None
    return SegmentKeys(
        abc_class=abc_class,
        abc_by=abc_by,
        abc_from=instant(one("abc_from"), field("abc_from")),
        abc_to=instant(one("abc_to"), field("abc_to")),
        balance_gt=amounts["balance_gt"],
        balance_lt=amounts["balance_lt"],
        balance_currency=currency,
        segment_ids=tuple(segment_ids),
    )


def resolve_segment_keys(
    keys: SegmentKeys,
    views: ViewReader | None,
    field_prefix: str,
    build: Builder,
    *,
    now: datetime | None = None,
    within: tuple[str, ...] = (),
    replacing: Mapping[str, list[tuple[str, str]]] | None = None,
) -> tuple[tuple[ClientSet, ...], tuple[ContactFilter, ...]]:
    """The client sets (ABC class, balance) and the nested saved segments' filters.

    `build` is the language's own builder (called for a nested segment's pairs);
    `within` is the chain of segment ids being built (a cycle is refused); `replacing`
    gives pairs to use instead of a stored segment's (a segment checked before it is
    saved, so a change that would make it name itself is refused).
    """
    if not keys.needs_views:
        return (), ()
    if views is None:
        raise InvalidInput(field_prefix, "abc_class, balance_* and segment_id need the views")
    sets: list[ClientSet] = []
    if keys.abc_class:
        sets.append(_abc_set(views, keys, now))
    if keys.balance_gt is not None:
        threshold = keys.balance_gt
        sets.append(_balance_set(views, keys.balance_currency, lambda b: b > threshold))
    if keys.balance_lt is not None:
        limit = keys.balance_lt
        sets.append(_balance_set(views, keys.balance_currency, lambda b: b < limit))
    nested: list[ContactFilter] = []
    for segment_id in keys.segment_ids:
        here = f"{field_prefix}.segment_id"
        if segment_id in within:
            raise InvalidInput(here, "a segment cannot contain itself")
        if len(within) >= MAX_NESTING:
            raise InvalidInput(here, f"segments nest at most {MAX_NESTING} deep")
        pairs = (replacing or {}).get(segment_id)
        if pairs is None:
            row = saved_segment(views, segment_id)
            if row is None:
                raise InvalidInput(here, f"no saved segment with id {segment_id}")
            pairs = row.pairs
        nested.append(
            build(
                pairs,
                field_prefix=here,
                views=views,
                now=now,
                within=(*within, segment_id),
                replacing=replacing,
            )
        )
    return tuple(sets), tuple(nested)


def _abc_set(views: ViewReader, keys: SegmentKeys, now: datetime | None) -> ClientSet:
    """Contacts of the class: A and B are listed; C is every contact not in A or B (a
    contact without revenue is C)."""
    from threadline.projections.reports.abc import contact_abc_classes

    start, end = keys.abc_from, keys.abc_to
    if start is None and end is None:
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        try:
            year_ago = moment.replace(year=moment.year - 1)
        except ValueError:  # 29 February
            year_ago = moment.replace(year=moment.year - 1, day=28)
        start = ts(year_ago)
    classes = contact_abc_classes(views, start, end, by=keys.abc_by)
    if keys.abc_class == "C":
        ids = tuple(sorted(c for c, k in classes.items() if k in ("A", "B")))
        return ClientSet(contact_ids=ids, negate=True)
    return ClientSet(
        contact_ids=tuple(sorted(c for c, k in classes.items() if k == keys.abc_class))
    )


def client_balances(views: ViewReader, currency: str) -> tuple[dict[str, int], dict[str, int]]:
    """Each client's balance in minor units (issued invoices less incoming payments), as
    `projections.settlements.settlement` defines it: (by company id, by contact id for
    contacts without a company). Clients with no invoice and no payment are left out."""
    companies: dict[str, int] = {}
    contacts: dict[str, int] = {}
    for row in views.query(
        "SELECT company_id, SUM(total_minor) AS n FROM documents WHERE kind = 'invoice'"
        " AND status = 'issued' AND currency = ? AND company_id IS NOT NULL GROUP BY company_id",
        [currency],
    ):
        companies[str(row["company_id"])] = int(row["n"] or 0)
    for row in views.query(
        "SELECT d.contact_id, SUM(d.total_minor) AS n FROM documents d"
        " JOIN contacts c ON c.id = d.contact_id AND c.company_id IS NULL"
        " WHERE d.kind = 'invoice' AND d.status = 'issued' AND d.currency = ?"
        " GROUP BY d.contact_id",
        [currency],
    ):
        contacts[str(row["contact_id"])] = int(row["n"] or 0)
    # a payment counts once per client: its own company, or a company it was allocated to
    for row in views.query(
        "SELECT k.company_id, SUM(p.amount_minor) AS n FROM (SELECT id AS payment_id,"
        " company_id FROM payments WHERE direction = 'in' AND company_id IS NOT NULL UNION"
        " SELECT payment_id, company_id FROM payment_allocations WHERE company_id IS NOT NULL) k"
        " JOIN payments p ON p.id = k.payment_id WHERE p.direction = 'in' AND p.currency = ?"
        " GROUP BY k.company_id",
        [currency],
    ):
        key = str(row["company_id"])
        companies[key] = companies.get(key, 0) - int(row["n"] or 0)
    for row in views.query(
        "SELECT k.contact_id, SUM(p.amount_minor) AS n FROM (SELECT id AS payment_id,"
        " contact_id FROM payments WHERE direction = 'in' AND contact_id IS NOT NULL UNION"
        " SELECT payment_id, contact_id FROM payment_allocations WHERE contact_id IS NOT NULL) k"
        " JOIN payments p ON p.id = k.payment_id JOIN contacts c ON c.id = k.contact_id"
        " AND c.company_id IS NULL WHERE p.direction = 'in' AND p.currency = ?"
        " GROUP BY k.contact_id",
        [currency],
    ):
        key = str(row["contact_id"])
        contacts[key] = contacts.get(key, 0) - int(row["n"] or 0)
    return companies, contacts


def _balance_set(views: ViewReader, currency: str, holds: Callable[[Decimal], bool]) -> ClientSet:
    """Contacts whose client's balance (in major units of `currency`) holds the test. A
    client without invoices or payments has a balance of 0: when 0 passes, the set is
    written as "not one of the clients that fail", so those clients are in it."""
    scale = Decimal(10) ** exponent(currency)
    companies, contacts = client_balances(views, currency)

    def passes(minor: int) -> bool:
        return holds(Decimal(minor) / scale)

    if passes(0):
        return ClientSet(
            contact_ids=tuple(sorted(k for k, v in contacts.items() if not passes(v))),
            company_ids=tuple(sorted(k for k, v in companies.items() if not passes(v))),
            negate=True,
        )
    return ClientSet(
        contact_ids=tuple(sorted(k for k, v in contacts.items() if passes(v))),
        company_ids=tuple(sorted(k for k, v in companies.items() if passes(v))),
    )
