"""The auditor's feed: events of the log, filtered by what they concern, with actor and cause.

The audit index (`projections/audit_index.py`) finds the positions (by contact, conversation,
deal, actor, event type, correlation id, time); each event's content is then read from the log
itself at its position and decoded by the application's own mapper, so what an auditor sees is
what the log holds, not a copy. A contact's events include those of the contacts merged into it.

Every event names its actor (`user:<id>`, `channel:<name>`, `rule:<id>`, `campaign:<id>:...`,
`worker:<role>`, `cli`, ...) and carries a correlation id, and `caused_by` points at the
position of its cause where the log records one: a rule's effect (an automatic reply, a tag, a
task) at its `RuleFired`, which shares the inbound message's correlation id and points at it. `admin-token` is the bootstrap admin
token (`THREADLINE_ADMIN_TOKEN`), which is no user: its actions are flagged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from threadline.projections.sql import Conditions, ViewReader, rows_with_ids

BOOTSTRAP_ACTOR = "admin-token"
"""The actor of an action taken with the bootstrap admin token (`Principal.actor`)."""

MAX_PAGE = 1000

HIDDEN_FIELDS = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic"})
"""Event fields the feed shows as its own columns (aggregate, version, time), not in `data`."""


@dataclass(frozen=True)
class AuditFilter:
    """What an auditor narrows the feed to (every given field must match)."""

    contact_id: str | None = None
    conversation_id: str | None = None
    deal_id: str | None = None
    aggregate_id: str | None = None
    actor: str | None = None
    actor_kind: str | None = None
    event_types: tuple[str, ...] = ()
    correlation_id: str | None = None
    start: str | None = None
    end: str | None = None
    """`ts` texts: `start` inclusive, `end` exclusive."""


@dataclass(frozen=True)
class AuditEvent:
    position: int
    occurred_at: str
    event_type: str
    aggregate_type: str
    aggregate_id: str
    aggregate_version: int
    actor: str
    actor_kind: str
    actor_name: str | None
    bootstrap_token: bool
    correlation_id: str
    contact_id: str | None
    conversation_id: str | None
    deal_id: str | None
    caused_by: int | None
    data: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    next_after: int | None
    """The position to ask `after` for the next page (None: this was the last)."""


def actor_kind(actor: str) -> str:
    """`user`, `channel`, `rule`, `campaign`, `worker`, ... (the part before the first `:`)."""
    return actor.partition(":")[0]


def with_merged(db: ViewReader, contact_id: str) -> list[str]:
    """The contact and every contact merged into it (through chains of merges)."""
    found = [contact_id]
    frontier = [contact_id]
    while frontier:
        marks = ", ".join("?" for _ in frontier)  # (merges are few: short lists)
        rows = db.query(f"SELECT id FROM contacts WHERE merged_into IN ({marks})", frontier)
        frontier = [str(r["id"]) for r in rows if str(r["id"]) not in found]
        found += frontier
    return found


def _conditions(db: ViewReader, f: AuditFilter, after: int) -> Conditions:
    c = Conditions()
    c.add("position > ?", [after])
    if f.contact_id is not None:
        ids = with_merged(db, f.contact_id)
        c.add(f"contact_id IN ({', '.join('?' for _ in ids)})", ids)
    c.equal(
        (column, value)
        for column, value in (
            ("conversation_id", f.conversation_id),
            ("deal_id", f.deal_id),
            ("aggregate_id", f.aggregate_id),
            ("actor", f.actor),
            ("correlation_id", f.correlation_id),
        )
        if value is not None
    )
    if f.actor_kind is not None:
        c.add("(actor = ? OR actor LIKE ?)", [f.actor_kind, f.actor_kind + ":%"])
    if f.event_types:
        c.add(f"event_type IN ({', '.join('?' for _ in f.event_types)})", list(f.event_types))
    c.compare("occurred_at", ">=", f.start)
    c.compare("occurred_at", "<", f.end)
    return c


def audit_page(
    db: ViewReader, log: Any, f: AuditFilter, after: int = 0, limit: int = 100
) -> AuditPage:
    """One page of the feed: events after position `after`, oldest first, at most `limit`.

    `db` is the views' database (the audit index), `log` the application (its recorder and
    mapper read and decode each event at its position).
    """
    limit = max(1, min(limit, MAX_PAGE))
    c = _conditions(db, f, after)
    rows = db.query(
        f"SELECT * FROM audit_events{c.where} ORDER BY position LIMIT ?", [*c.params, limit + 1]
    )
    more = len(rows) > limit
    rows = rows[:limit]
    names = _actor_names(db, (str(r["actor"]) for r in rows))
    decoded = dict(decoded_events(log, [int(r["position"]) for r in rows]))
    events = [
        AuditEvent(
            position=int(r["position"]),
            occurred_at=str(r["occurred_at"]),
            event_type=str(r["event_type"]),
            aggregate_type=str(r["aggregate_type"]),
            aggregate_id=str(r["aggregate_id"]),
            aggregate_version=int(r["aggregate_version"]),
            actor=str(r["actor"]),
            actor_kind=actor_kind(str(r["actor"])),
            actor_name=names.get(str(r["actor"])),
            bootstrap_token=r["actor"] == BOOTSTRAP_ACTOR,
            correlation_id=str(r["correlation_id"]),
            contact_id=r["contact_id"],
            conversation_id=r["conversation_id"],
            deal_id=r["deal_id"],
            caused_by=None if r["caused_by"] is None else int(r["caused_by"]),
            data=event_data(decoded.get(int(r["position"]))),
        )
        for r in rows
    ]
    return AuditPage(events, events[-1].position if more and events else None)


def decoded_events(app: Any, positions: list[int]) -> list[tuple[int, Any]]:
    """The events at `positions`, read from the log in runs of neighbours and decoded."""
    wanted = set(positions)
    found: list[tuple[int, Any]] = []
    index = 0
    while index < len(positions):
        start = positions[index]
        end = start
        while index + 1 < len(positions) and positions[index + 1] - end <= 8:
            index += 1
            end = positions[index]
        for notification in app.recorder.select_notifications(
            start=start, limit=end - start + 1, stop=end
        ):
            if int(notification.id) in wanted:
                found.append((int(notification.id), app.mapper.to_domain_event(notification)))
        index += 1
    return found


def event_data(event: Any) -> dict[str, Any]:
    """A decoded event as JSON values (without the fields the feed shows as columns); nothing
    for an event no longer stored at its position (`threadline audit verify` says where)."""
    if event is None:
        return {}
    return {name: plain(value) for name, value in vars(event).items() if name not in HIDDEN_FIELDS}


def plain(value: Any) -> Any:
    """A decoded event's value as JSON carries it (ids and moments as text)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence | set | frozenset) and not isinstance(value, bytes):
        return [plain(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _actor_names(db: ViewReader, actors: Iterable[str]) -> dict[str, str]:
    """A readable name for the users and rules among `actors` (others have none)."""
    wanted: dict[str, set[str]] = {"user": set(), "rule": set()}
    for actor in actors:
        kind, _, rest = actor.partition(":")
        if kind in wanted and rest:
            wanted[kind].add(rest.split(":")[0])
    names: dict[str, str] = {}
    for r in rows_with_ids(db, "SELECT id, name FROM users", wanted["user"]):
        names[f"user:{r['id']}"] = str(r["name"])
    for r in rows_with_ids(db, "SELECT id, name FROM rules", wanted["rule"]):
        names[f"rule:{r['id']}"] = str(r["name"])
    return names
