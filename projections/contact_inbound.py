"""Inbound contacts per contact, channel and hour, and each contact's preferred channel.

An *inbound contact* is one `MessageReceived`: a client's message on any channel and an
incoming call (a call arrives as a received message on the voice channel, so an answered, a
missed and a voicemail call each count once; `CallMissed` later changes nothing here).
Replies, automatic messages of ours (rules, campaigns) and internal notes are not received
messages and never count; neither do automatic answers of the client's side (an e-mail
auto-reply or a bounce: `metadata.auto_reply` / `metadata.bounce`). Calls logged by hand are
tasks, not messages, and do not count either.

Counts are kept per UTC hour (`hour` is the `ts` of the hour's start), so a report can
count them in the business's days and months exactly for every zone with a whole-hour
offset (a zone with a half-hour offset counts a message by the start of its UTC hour).
A merged contact's buckets are added to the survivor's, and its later messages (on its old
threads) are filed under the survivor.

The preferred channel of a contact is the channel with the most inbound contacts; a tie goes
to the channel with the most recent one (and, at the same moment, to the later channel
name, so the answer never depends on the database).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from threadline.domain.model.contact import Contact
from threadline.domain.model.message import Message
from threadline.projections.base import ContactAliases, ViewProjection, handles, sid, ts
from threadline.projections.sql import ID_CHUNK, ViewCursor, ViewReader

_LATER = (
    "last_at = CASE WHEN excluded.last_at > {t}.last_at THEN excluded.last_at ELSE {t}.last_at END"
)


def is_automatic(metadata: dict[str, Any] | None) -> bool:
    """An automatic answer of the client's side (an auto-reply, a bounce): no inbound contact."""
    data = metadata or {}
    return bool(data.get("auto_reply") or data.get("bounce"))


class ContactInboundProjection(ViewProjection):
    name = "contact_inbound"
    version = 1
    tables = (
        "contact_inbound",
        "contact_inbound_totals",
        "contact_preferred",
        "contact_inbound_aliases",
    )
    schema = (
        "CREATE TABLE IF NOT EXISTS contact_inbound ("
        " contact_id TEXT NOT NULL, channel TEXT NOT NULL, hour TEXT NOT NULL,"
        " count BIGINT NOT NULL, last_at TEXT NOT NULL,"
        " PRIMARY KEY (contact_id, channel, hour))",
        "CREATE INDEX IF NOT EXISTS contact_inbound_hour ON contact_inbound (hour)",
        "CREATE INDEX IF NOT EXISTS contact_inbound_channel ON contact_inbound (channel, hour)",
        "CREATE TABLE IF NOT EXISTS contact_inbound_totals ("
        " contact_id TEXT NOT NULL, channel TEXT NOT NULL, count BIGINT NOT NULL,"
        " last_at TEXT NOT NULL, PRIMARY KEY (contact_id, channel))",
        "CREATE TABLE IF NOT EXISTS contact_preferred ("
        " contact_id TEXT PRIMARY KEY, channel TEXT NOT NULL, count BIGINT NOT NULL,"
        " last_at TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS contact_preferred_channel ON contact_preferred (channel)",
        "CREATE TABLE IF NOT EXISTS contact_inbound_aliases ("
        " id TEXT PRIMARY KEY, survivor_id TEXT NOT NULL)",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.aliases = ContactAliases("contact_inbound_aliases")
        super().__init__(*args, **kwargs)

    def before_batch(self, cur: ViewCursor) -> None:
        self.aliases.load(cur)

    @handles(Message.MessageReceived)
    def _received(self, event: Any, cur: ViewCursor) -> None:
        if event.direction != "inbound" or is_automatic(getattr(event, "metadata", None)):
            return
        contact_id = self.aliases.survivor(sid(event.contact_id))
        if contact_id is None:
            return
        at = ts(event.timestamp)
        hour = ts(event.timestamp.replace(minute=0, second=0, microsecond=0))
        self._add(cur, contact_id, event.channel, hour, 1, at)
        self._add_total(cur, contact_id, event.channel, 1, at)
        total = cur.execute(
            "SELECT channel, count, last_at FROM contact_inbound_totals"
            " WHERE contact_id = ? AND channel = ?",
            [contact_id, event.channel],
        ).fetchone()
        current = cur.execute(
            "SELECT channel, count, last_at FROM contact_preferred WHERE contact_id = ?",
            [contact_id],
        ).fetchone()
        # Only this channel's count and time grew: the preferred one is it or stays as it was.
        if total is not None and (
            current is None
            or current["channel"] == total["channel"]
            or _rank(total) > _rank(current)
        ):
            self._prefer(cur, contact_id, total)

    def _add(
        self, cur: ViewCursor, contact_id: str, channel: str, hour: str, count: int, at: str
    ) -> None:
        cur.execute(
            "INSERT INTO contact_inbound (contact_id, channel, hour, count, last_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (contact_id, channel, hour) DO UPDATE SET"
            " count = contact_inbound.count + excluded.count, "
            + _LATER.format(t="contact_inbound"),
            [contact_id, channel, hour, count, at],
        )

    def _add_total(
        self, cur: ViewCursor, contact_id: str, channel: str, count: int, at: str
    ) -> None:
        cur.execute(
            "INSERT INTO contact_inbound_totals (contact_id, channel, count, last_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (contact_id, channel) DO UPDATE SET"
            " count = contact_inbound_totals.count + excluded.count, "
            + _LATER.format(t="contact_inbound_totals"),
            [contact_id, channel, count, at],
        )

    def _prefer(self, cur: ViewCursor, contact_id: str, row: dict[str, Any]) -> None:
        cur.execute(
            "INSERT INTO contact_preferred (contact_id, channel, count, last_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (contact_id) DO UPDATE SET"
            " channel = excluded.channel, count = excluded.count, last_at = excluded.last_at",
            [contact_id, row["channel"], int(row["count"]), row["last_at"]],
        )

    @handles(Contact.ContactMerged)
    def _merged(self, event: Any, cur: ViewCursor) -> None:
        duplicate, survivor = str(event.originator_id), str(event.survivor_id)
        self.aliases.record(cur, duplicate, survivor)
        buckets = cur.execute(
            "SELECT channel, hour, count, last_at FROM contact_inbound WHERE contact_id = ?",
            [duplicate],
        ).fetchall()
        for b in buckets:
            self._add(cur, survivor, b["channel"], b["hour"], int(b["count"]), b["last_at"])
        totals = cur.execute(
            "SELECT channel, count, last_at FROM contact_inbound_totals WHERE contact_id = ?",
            [duplicate],
        ).fetchall()
        for t in totals:
            self._add_total(cur, survivor, t["channel"], int(t["count"]), t["last_at"])
        for table in ("contact_inbound", "contact_inbound_totals", "contact_preferred"):
            cur.execute(f"DELETE FROM {table} WHERE contact_id = ?", [duplicate])
        merged = cur.execute(
            "SELECT channel, count, last_at FROM contact_inbound_totals WHERE contact_id = ?",
            [survivor],
        ).fetchall()
        if merged:
            self._prefer(cur, survivor, max(merged, key=_rank))


def _rank(row: dict[str, Any]) -> tuple[int, str, str]:
    """Most inbound contacts first; a tie: the most recent; then the later channel name."""
    return (int(row["count"]), str(row["last_at"]), str(row["channel"]))


# -- readers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelTotal:
    """A contact's inbound contacts on one channel, all time, and the last one's time."""

    contact_id: str
    channel: str
    count: int
    last_at: str


def preferred_channel(db: ViewReader, contact_id: str) -> str | None:
    """The contact's preferred channel (None: it never wrote or called)."""
    row = db.query_one("SELECT channel FROM contact_preferred WHERE contact_id = ?", [contact_id])
    return None if row is None else str(row["channel"])


def inbound_totals(db: ViewReader, contact_ids: Iterable[str]) -> list[ChannelTotal]:
    """Every (contact, channel) total of the given contacts."""
    wanted = sorted(set(contact_ids))
    found: list[ChannelTotal] = []
    for start in range(0, len(wanted), ID_CHUNK):
        chunk = wanted[start : start + ID_CHUNK]
        marks = ",".join("?" * len(chunk))
        rows = db.query(
            "SELECT contact_id, channel, count, last_at FROM contact_inbound_totals"
            f" WHERE contact_id IN ({marks}) ORDER BY contact_id, channel",
            chunk,
        )
        found.extend(
            ChannelTotal(str(r["contact_id"]), str(r["channel"]), int(r["count"]), r["last_at"])
            for r in rows
        )
    return found


def preferred_of(totals: Iterable[ChannelTotal]) -> str | None:
    """The preferred channel over some totals (one contact's, or a company's contacts' summed)."""
    summed: dict[str, dict[str, Any]] = {}
    for t in totals:
        row = summed.setdefault(t.channel, {"channel": t.channel, "count": 0, "last_at": ""})
        row["count"] += t.count
        row["last_at"] = max(row["last_at"], t.last_at)
    if not summed:
        return None
    return str(max(summed.values(), key=_rank)["channel"])


PREFERRED_CHANNEL_CLAUSE = (
    "EXISTS (SELECT 1 FROM contact_preferred p WHERE p.contact_id = c.id AND p.channel = ?)"
)
"""The segment condition "preferred channel is ?" over the contacts view aliased `c`."""
