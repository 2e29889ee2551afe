"""A contact's card and a conversation's thread as they stood at a moment of the log.

The live views show now. An auditor asks "what did the card say, what had the client written
and what had we answered, on 3 March at 14:00": the events concerning that contact (or that
conversation) up to the position the log had reached then are read from the log and applied,
by the same projections the live views use, to a scratch database of their own, and read back
with the same queries. So the answer is what the views showed then, computed from the log, and
the live views are untouched.

**The moment as a position.** The audit index keeps each event's time beside its position
(`audit_events_time`): the log as of a moment is every event up to the last position recorded
at or before it. Positions are commit order; each event's time is taken when its command runs,
just before the commit.

What the scratch views hold is the subject's own history (its contact events, conversations,
messages, calls, tasks, deals and the contacts merged into it): names of other records that
were never an event of that history (a company's name changed by itself) show as of now
elsewhere and are left out here.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eventsourcing.persistence import InfrastructureFactory, Tracking
from eventsourcing.utils import Environment

from threadline.projections.base import ViewProjection
from threadline.projections.companies import CompanyProjection
from threadline.projections.contact_card import ContactCardProjection
from threadline.projections.contact_inbound import ContactInboundProjection
from threadline.projections.inbox import InboxProjection
from threadline.projections.queries import Queries
from threadline.projections.sql import ViewDatabase, ViewReader
from threadline.projections.timeline import TimelineProjection
from threadline.services.audit_feed import decoded_events, with_merged
from threadline.services.store import library_env

AS_OF_VIEWS: tuple[type[ViewProjection], ...] = (
    ContactCardProjection,
    CompanyProjection,
    ContactInboundProjection,
    InboxProjection,
    TimelineProjection,
)
"""The views a card and a thread are read from (what `Queries.contact`, `.timeline` and
`.conversation` read)."""


class NotYetIndexed(Exception):
    """The audit index is behind the moment asked for: its answer would be incomplete."""


def position_at(db: ViewReader, moment: str) -> int:
    """The last position recorded at or before `moment` (a `ts` text; 0: nothing yet)."""
    row = db.query_one(
        "SELECT MAX(position) AS position FROM audit_events WHERE occurred_at <= ?", [moment]
    )
    return int(row["position"] or 0) if row else 0


def indexed_position(db: ViewReader) -> int:
    """How far the audit index has read the log."""
    row = db.query_one("SELECT MAX(position) AS position FROM audit_events")
    return int(row["position"] or 0) if row else 0


def subject_positions(db: ViewReader, column: str, ids: list[str], upto: int) -> list[int]:
    """The positions of the events concerning `ids` (by `column`) up to `upto`, in order."""
    marks = ", ".join("?" for _ in ids)
    rows = db.query(
        f"SELECT position FROM audit_events WHERE {column} IN ({marks}) AND position <= ?"
        " ORDER BY position",
        [*ids, upto],
    )
    return [int(r["position"]) for r in rows]


@contextmanager
def views_of(app: Any, events: list[tuple[int, Any]], position: int) -> Iterator[Queries]:
    """Scratch views (a temporary SQLite file) with `events` applied, as of `position`."""
    with tempfile.TemporaryDirectory(prefix="threadline-as-of-") as folder:
        url = f"sqlite:///{Path(folder) / 'views.db'}"
        factory: Any = InfrastructureFactory.construct(Environment("asof", library_env(url)))
        try:
            recorder = factory.tracking_recorder()
            recorder.create_table()
            for cls in AS_OF_VIEWS:
                projection = cls(recorder, upstream=app.name)
                projection.process_batch(events, Tracking(projection.tracking_name, position))
            yield Queries(ViewDatabase(recorder))
        finally:
            factory.close()


def _checked_position(live: ViewReader, position: int) -> int:
    indexed = indexed_position(live)
    if position > indexed:
        raise NotYetIndexed(f"the audit index has reached position {indexed}, not {position}")
    return position


def contact_at(app: Any, live: ViewReader, contact_id: str, position: int) -> dict[str, Any] | None:
    """The contact's card and timeline as of `position` (None: no such contact then)."""
    position = _checked_position(live, position)
    ids = with_merged(live, contact_id)
    events = decoded_events(app, subject_positions(live, "contact_id", ids, position))
    with views_of(app, events, position) as queries:
        card = queries.contact(contact_id)
        if card is None:
            return None
        card["timeline"] = queries.timeline(contact_id, 1000, None)
        return card


def conversation_at(
    app: Any, live: ViewReader, conversation_id: str, position: int
) -> dict[str, Any] | None:
    """The conversation and its messages as of `position` (None: not started by then)."""
    position = _checked_position(live, position)
    positions = subject_positions(live, "conversation_id", [conversation_id], position)
    events = decoded_events(app, positions)
    with views_of(app, events, position) as queries:
        return queries.conversation(conversation_id)
