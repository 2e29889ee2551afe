"""The audit index: every event of the log, by position, with who caused it and what it is about.

An auditor asks "everything that happened to this client", "everything this rule or this user
did", "what followed from this inbound message" (its correlation id) and "what happened between
these two moments". The log answers none of these without reading all of it, so this view
keeps one row per event: its position, time, type, aggregate, actor and correlation id, and the
contact, conversation and deal it concerns.

What an event concerns: its own `contact_id`, `conversation_id` and `deal_id` fields where it
has them; a contact's, conversation's or deal's own events concern that aggregate; and an event
without such fields (a delivery receipt, a conversation assigned) concerns what its aggregate's
earlier events did (`audit_subjects` keeps that per aggregate, the latest values winning: a deal
moved to another client concerns the new client from then on). A conversation's contact is known
from the conversation. `caused_by` is the position of what an event answers: a rule firing's
cause (the inbound message), and for a rule's effects their firing. The rows hold ids only: the event's content is read from the log itself
when an auditor pages through them (`threadline.services.audit_feed`), so nothing personal is
copied here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from threadline.projections.base import ViewProjection, sid, ts
from threadline.projections.sql import ViewCursor

SUBJECTS_CACHED = 200_000
"""Aggregates whose subjects the view remembers between batches (a rebuild reads the log in
order: an aggregate's later events mostly follow soon after its first)."""

Subjects = tuple[str | None, str | None, str | None]
"""(contact, conversation, deal) an aggregate's events concern."""


class AuditIndexProjection(ViewProjection):
    name = "audit_index"
    version = 1
    tables = ("audit_events", "audit_subjects", "audit_firings")
    schema = (
        "CREATE TABLE IF NOT EXISTS audit_events ("
        " position BIGINT PRIMARY KEY, occurred_at TEXT NOT NULL, event_type TEXT NOT NULL,"
        " aggregate_type TEXT NOT NULL, aggregate_id TEXT NOT NULL,"
        " aggregate_version BIGINT NOT NULL, actor TEXT NOT NULL, correlation_id TEXT NOT NULL,"
        " contact_id TEXT, conversation_id TEXT, deal_id TEXT, caused_by BIGINT)",
        "CREATE INDEX IF NOT EXISTS audit_events_contact ON audit_events (contact_id, position)",
        "CREATE INDEX IF NOT EXISTS audit_events_conversation"
        " ON audit_events (conversation_id, position)",
        "CREATE INDEX IF NOT EXISTS audit_events_deal ON audit_events (deal_id, position)",
        "CREATE INDEX IF NOT EXISTS audit_events_actor ON audit_events (actor, position)",
        "CREATE INDEX IF NOT EXISTS audit_events_correlation"
        " ON audit_events (correlation_id, position)",
        # (no index by type or aggregate: each would cost every event a b-tree insert, and a
        # feed narrowed by them alone scans by position, as the filters above narrow first)
        # the time-to-position index: "as of a moment" and time ranges
        "CREATE INDEX IF NOT EXISTS audit_events_time ON audit_events (occurred_at, position)",
        "CREATE TABLE IF NOT EXISTS audit_subjects ("
        " aggregate_id TEXT PRIMARY KEY, contact_id TEXT, conversation_id TEXT, deal_id TEXT)",
        "CREATE TABLE IF NOT EXISTS audit_firings (firing_id TEXT PRIMARY KEY,"
        " position BIGINT NOT NULL)",
    )
    every_event = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.subjects: dict[str, Subjects] = {}

    def drop_tables(self) -> None:
        self.subjects = {}
        super().drop_tables()

    def apply_events(self, cur: ViewCursor, events: Sequence[tuple[int, Any]]) -> None:
        """One row per event, written together; the subjects learned on the way kept per
        aggregate (read from the table when the cache does not know one)."""
        if len(self.subjects) > SUBJECTS_CACHED:
            self.subjects = {}
        rows: list[list[Any]] = []
        changed: dict[str, Subjects] = {}
        firings: dict[str, int] = {}
        for position, event in events:
            aggregate_type, _, event_type = type(event).__qualname__.rpartition(".")
            aggregate_type = aggregate_type or event_type
            aggregate = str(event.originator_id)
            own = _own_subjects(aggregate_type, aggregate, event)
            known = self._subjects(cur, aggregate)
            contact, conversation, deal = (
                mine or before for mine, before in zip(own, known, strict=True)
            )
            if contact is None and conversation is not None and conversation != aggregate:
                contact = self._subjects(cur, conversation)[0]
            found: Subjects = (contact, conversation, deal)
            if found != known:
                self.subjects[aggregate] = changed[aggregate] = found
            caused_by = None
            if event_type == "RuleFired":  # the event the rule answered, by its position
                firings[aggregate] = position
                cause = getattr(event, "cause", None) or {}
                caused_by = cause.get("notification_id")
            rows.append(
                [
                    position,
                    ts(event.timestamp),
                    event_type,
                    aggregate_type,
                    aggregate,
                    int(event.originator_version),
                    str(getattr(event, "actor", "") or ""),
                    str(getattr(event, "correlation_id", "") or ""),
                    contact,
                    conversation,
                    deal,
                    caused_by,
                ]
            )
        self._effects_of_firings(cur, rows, firings)
        if rows:
            cur.executemany(
                "INSERT INTO audit_events (position, occurred_at, event_type, aggregate_type,"
                " aggregate_id, aggregate_version, actor, correlation_id, contact_id,"
                " conversation_id, deal_id, caused_by)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        if firings:
            cur.executemany(
                "INSERT INTO audit_firings (firing_id, position) VALUES (?, ?)"
                " ON CONFLICT (firing_id) DO NOTHING",
                list(firings.items()),
            )
        if changed:
            cur.executemany(
                "INSERT INTO audit_subjects (aggregate_id, contact_id, conversation_id, deal_id)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (aggregate_id) DO UPDATE SET"
                " contact_id = excluded.contact_id, conversation_id = excluded.conversation_id,"
                " deal_id = excluded.deal_id",
                [(aggregate, *found) for aggregate, found in changed.items()],
            )

    def _effects_of_firings(
        self, cur: ViewCursor, rows: list[list[Any]], firings: dict[str, int]
    ) -> None:
        """A rule's effects (a tag, a task, an automatic reply: actor `rule:<id>`) carry their
        firing's id as correlation id: each is caused by that `RuleFired` (in this batch, or
        an earlier one's, which `audit_firings` remembers)."""
        for row in rows:
            if row[11] is None and row[6].startswith("rule:") and row[2] != "RuleFired":
                firing = row[7]
                position = firings.get(firing)
                if position is None and firing:
                    found = cur.execute(
                        "SELECT position FROM audit_firings WHERE firing_id = ?", [firing]
                    ).fetchone()
                    position = None if found is None else int(found["position"])
                row[11] = position

    def _subjects(self, cur: ViewCursor, aggregate: str) -> Subjects:
        found = self.subjects.get(aggregate)
        if found is None:
            row = cur.execute(
                "SELECT contact_id, conversation_id, deal_id FROM audit_subjects"
                " WHERE aggregate_id = ?",
                [aggregate],
            ).fetchone()
            found = (
                (None, None, None)
                if row is None
                else (row["contact_id"], row["conversation_id"], row["deal_id"])
            )
            self.subjects[aggregate] = found
        return found


def _own_subjects(aggregate_type: str, aggregate: str, event: Any) -> Subjects:
    """What an event names itself: its fields, or its aggregate when that is a contact,
    a conversation or a deal (an identity claim names its owner)."""
    contact = sid(getattr(event, "contact_id", None))
    conversation = sid(getattr(event, "conversation_id", None))
    deal = sid(getattr(event, "deal_id", None))
    if aggregate_type == "Contact":
        contact = aggregate
    elif aggregate_type == "Conversation":
        conversation = aggregate
    elif aggregate_type == "Deal":
        deal = aggregate
    elif aggregate_type == "IdentityClaim":
        contact = sid(getattr(event, "owner_id", None)) or contact
    return (contact or None, conversation or None, deal or None)
