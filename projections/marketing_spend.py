"""The marketing spend view: one row per entry (removed ones kept, flagged), and its readers.

Amounts are integer minor units with their currency. An entry's period is two business
dates, both inclusive (`starts_on`, `ends_on`); `spend_entries` finds the entries that
overlap a period, `prorated_minor` says how much of an entry falls into it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from threadline.domain.model.marketing_spend import MarketingSpend
from threadline.domain.model.money import Money
from threadline.projections.base import ViewProjection, handles, sid, ts
from threadline.projections.sql import Conditions, ViewCursor, ViewReader


class MarketingSpendProjection(ViewProjection):
    name = "marketing_spend"
    version = 1
    tables = ("marketing_spend",)
    schema = (
        "CREATE TABLE IF NOT EXISTS marketing_spend ("
        " id TEXT PRIMARY KEY, source TEXT NOT NULL, utm_campaign TEXT NOT NULL,"
        " starts_on TEXT NOT NULL, ends_on TEXT NOT NULL, currency TEXT NOT NULL,"
        " amount_minor BIGINT NOT NULL, note TEXT NOT NULL, removed BIGINT NOT NULL DEFAULT 0,"
        " created_by TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
        # The entries overlapping a period: those ending on or after its first day, read
        # from the end date on; the start date is checked on the rows found.
        "CREATE INDEX IF NOT EXISTS marketing_spend_period ON marketing_spend"
        " (removed, ends_on, starts_on)",
        "CREATE INDEX IF NOT EXISTS marketing_spend_source ON marketing_spend"
        " (source, utm_campaign)",
    )

    @handles(MarketingSpend.MarketingSpendRecorded)
    def _recorded(self, event: Any, cur: ViewCursor) -> None:
        money = Money.from_state(event.amount)
        cur.execute(
            "INSERT INTO marketing_spend (id, source, utm_campaign, starts_on, ends_on, currency,"
            " amount_minor, note, created_by, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            [
                sid(event.originator_id),
                event.source,
                event.utm_campaign,
                event.starts_on,
                event.ends_on,
                money.currency,
                money.minor,
                str(event.personal.get("note", "")),
                event.actor,
                ts(event.timestamp),
                ts(event.timestamp),
            ],
        )

    @handles(MarketingSpend.MarketingSpendCorrected)
    def _corrected(self, event: Any, cur: ViewCursor) -> None:
        values: dict[str, Any] = {}
        for name in ("source", "utm_campaign", "starts_on", "ends_on"):
            if name in event.changes:
                values[name] = event.changes[name]
        if "amount" in event.changes:
            money = Money.from_state(event.changes["amount"])
            values["currency"], values["amount_minor"] = money.currency, money.minor
        if "note" in event.personal:
            values["note"] = str(event.personal["note"])
        values["updated_at"] = ts(event.timestamp)
        columns = ", ".join(f"{name} = ?" for name in values)  # names of this module only
        cur.execute(
            f"UPDATE marketing_spend SET {columns} WHERE id = ?",
            [*values.values(), sid(event.originator_id)],
        )

    @handles(MarketingSpend.MarketingSpendRemoved)
    def _removed(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE marketing_spend SET removed = 1, updated_at = ? WHERE id = ?",
            [ts(event.timestamp), sid(event.originator_id)],
        )


# -- readers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpendRow:
    id: str
    source: str
    utm_campaign: str
    starts_on: str
    ends_on: str
    currency: str
    amount_minor: int
    note: str
    removed: bool
    created_by: str
    created_at: str
    updated_at: str

    @property
    def days(self) -> int:
        return (date.fromisoformat(self.ends_on) - date.fromisoformat(self.starts_on)).days + 1

    def prorated_minor(self, first: date | None, last: date | None) -> tuple[int, int]:
        """(days of the entry inside [first, last], its amount for those days).

        The amount is spread evenly over the entry's days; the share is rounded half up
        to the minor unit (an entry wholly inside gives exactly its amount).
        """
        start, end = date.fromisoformat(self.starts_on), date.fromisoformat(self.ends_on)
        inside_from = max(start, first) if first else start
        inside_to = min(end, last) if last else end
        days = (inside_to - inside_from).days + 1
        if days <= 0:
            return 0, 0
        total = self.days
        return days, (self.amount_minor * days * 2 + total) // (2 * total)


_COLUMNS = (
    "SELECT id, source, utm_campaign, starts_on, ends_on, currency, amount_minor, note,"
    " removed, created_by, created_at, updated_at FROM marketing_spend"
)


def _row(r: dict[str, Any]) -> SpendRow:
    return SpendRow(
        id=str(r["id"]),
        source=str(r["source"]),
        utm_campaign=str(r["utm_campaign"]),
        starts_on=str(r["starts_on"]),
        ends_on=str(r["ends_on"]),
        currency=str(r["currency"]),
        amount_minor=int(r["amount_minor"]),
        note=str(r["note"]),
        removed=bool(r["removed"]),
        created_by=str(r["created_by"]),
        created_at=str(r["created_at"]),
        updated_at=str(r["updated_at"]),
    )


@dataclass(frozen=True)
class SpendFilter:
    """Entries (not removed) overlapping [first, last] (dates, both inclusive; None: open);
    `source` and `utm_campaign` equal when given (`utm_campaign` "" : the source's own)."""

    first: date | None = None
    last: date | None = None
    source: str | None = None
    utm_campaign: str | None = None


def spend_entries(db: ViewReader, where: SpendFilter, limit: int | None = None) -> list[SpendRow]:
    c = Conditions()
    c.add("removed = 0", [])
    c.compare("ends_on", ">=", where.first.isoformat() if where.first else None)
    c.compare("starts_on", "<=", where.last.isoformat() if where.last else None)
    c.compare("source", "=", where.source)
    c.compare("utm_campaign", "=", where.utm_campaign)
    sql = f"{_COLUMNS}{c.where} ORDER BY starts_on, source, utm_campaign, id"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [_row(r) for r in db.query(sql, c.params)]


def spend_entry(db: ViewReader, spend_id: str) -> SpendRow | None:
    """One entry by id, removed ones too (the API says 409 for those)."""
    r = db.query_one(f"{_COLUMNS} WHERE id = ?", [spend_id])
    return None if r is None else _row(r)
