"""The base of every read model: an `eventsourcing.projection.Projection` over SQL tables.

A view handles the events it registers with `apply.register`, receives them in
batches (one transaction per batch, with the library's tracking row written in
the same transaction), and can drop its tables to be rebuilt from position zero.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, overload
from uuid import UUID

from eventsourcing.persistence import Tracking, TrackingRecorder
from eventsourcing.projection import Projection
from eventsourcing.utils import get_topic

from threadline.projections.sql import ViewCursor, ViewDatabase


@overload
def ts(value: datetime) -> str: ...


@overload
def ts(value: None) -> None: ...


@overload
def ts(value: datetime | None) -> str | None: ...


def ts(value: datetime | None) -> str | None:
    """One sortable text form for every timestamp in every view (UTC, microseconds, Z)."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # isoformat is twice as fast as strftime and views call this for every row they write.
    return value.isoformat(timespec="microseconds")[:-6] + "Z"


@overload
def utc_ts(value: datetime) -> str: ...


@overload
def utc_ts(value: None) -> None: ...


@overload
def utc_ts(value: datetime | None) -> str | None: ...


def utc_ts(value: datetime | None) -> str | None:
    """`ts` of a moment someone typed or sent: one without a zone is UTC, as every stored
    time is (`ts` alone would read it in the server's local zone)."""
    if value is None:
        return None
    return ts(value if value.tzinfo is not None else value.replace(tzinfo=UTC))


TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
"""The text form `ts` writes, for the few places that need the format itself."""


def parse_ts(text: str) -> datetime:
    """The aware UTC datetime of a `ts` text: the one inverse of the one format.

    `fromisoformat` reads the format (with its ``Z``) several times faster than `strptime`,
    which matters where reports parse thousands of timestamps per request.
    """
    return datetime.fromisoformat(text).astimezone(UTC)


def sid(value: UUID | str | None) -> str | None:
    return None if value is None else str(value)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


Handler = Callable[[Any, Any, ViewCursor], None]

FORGOTTEN_NAME = "Forgotten contact"
"""What a view shows for the name of a contact that was forgotten (`Scrub`)."""


@dataclass(frozen=True)
class Scrub:
    """What a view does to a forgotten contact's rows in one of its tables: set the columns
    of `set_to` (names and texts blanked; ids, times, amounts and states kept, so the
    history keeps its shape), or delete the rows (`set_to` None). `where` selects the
    rows; each `?` in it is the contact's id."""

    table: str
    set_to: dict[str, Any] | None = None
    where: str = "contact_id = ?"

    def apply(self, cur: ViewCursor, contact_id: str) -> None:
        ids = [contact_id] * self.where.count("?")
        if self.set_to is None:
            cur.execute(f"DELETE FROM {self.table} WHERE {self.where}", ids)
            return
        assignments = ", ".join(f"{column} = ?" for column in self.set_to)
        cur.execute(
            f"UPDATE {self.table} SET {assignments} WHERE {self.where}",
            [*self.set_to.values(), *ids],
        )


class StalePosition(Exception):
    """Another runner moved this view on since its position was read; re-read and go on."""

    def __init__(self, name: str, expected: int, current: int) -> None:
        super().__init__(f"view {name} is at {current}, not {expected}")
        self.current = current


def handles(*event_classes: type) -> Callable[[Handler], Handler]:
    """Mark a view method as the handler of the given event classes."""

    def mark(method: Handler) -> Handler:
        method.__dict__.setdefault("_handles", []).extend(event_classes)
        return method

    return mark


def preview(text: str, length: int = 140) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= length else flat[: length - 1] + "…"


class ViewProjection(Projection[TrackingRecorder]):
    """A projection whose view is a set of SQL tables in the view database."""

    name = "view"
    # Raise when the tables change shape: a stored view of another version is rebuilt.
    version = 1
    tables: tuple[str, ...] = ()
    schema: tuple[str, ...] = ()
    _handlers: dict[type, Handler] = {}
    # Handlers that may keep rows in `self.fresh` instead of writing them (see `apply_batch`).
    deferring_handlers: frozenset[str] = frozenset()
    # A view of every event of the log (the audit index): the runner decodes them all for it,
    # and its `apply_events` sees each one, handled or not.
    every_event: bool = False
    fresh: dict[str, dict[str, Any]]
    position_of_event: int = 0
    # What the view scrubs when a contact is forgotten (`ContactForgotten`): every table
    # that keeps a name, an address or a text of a client names itself here.
    forgets: tuple[Scrub, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        handlers: dict[type, Handler] = {}
        for klass in reversed(cls.__mro__):
            for attribute in vars(klass).values():
                for event_class in getattr(attribute, "_handles", ()):
                    handlers[event_class] = attribute
        if cls.forgets:
            from threadline.domain.model.contact import Contact

            handlers.setdefault(Contact.ContactForgotten, ViewProjection.scrub_forgotten)
        cls._handlers = handlers

    def scrub_forgotten(self, event: Any, cur: ViewCursor) -> None:
        """`ContactForgotten`: apply the view's `forgets` to the contact's rows."""
        contact_id = str(event.originator_id)
        for scrub in self.forgets:
            scrub.apply(cur, contact_id)

    def __init__(self, view: TrackingRecorder, upstream: str = "Threadline") -> None:
        super().__init__(view)
        self.db = ViewDatabase(view)
        self.fresh = {}
        # Views share one tracking table, so each tracks the upstream log under its own key.
        self.tracking_name = f"{upstream}.{self.name}"
        if self.stored_version() != self.version:
            # (before creating anything: the new schema may index a column the old lacks)
            self.drop_tables()  # forgets the position too: the runner rebuilds it from zero
            self.record_version()
        else:
            self.create_tables()

    def stored_version(self) -> int | None:
        with self.db.transaction() as cur:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS view_versions (name TEXT PRIMARY KEY,"
                " version BIGINT NOT NULL)"
            )
            row = cur.execute(
                "SELECT version FROM view_versions WHERE name = ?", [self.tracking_name]
            ).fetchone()
            if row is None and self.position() == 0:
                # A view never built: nothing to rebuild, just remember its version.
                cur.execute(
                    "INSERT INTO view_versions (name, version) VALUES (?, ?)",
                    [self.tracking_name, self.version],
                )
                return self.version
        return None if row is None else int(row["version"])

    def record_version(self) -> None:
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO view_versions (name, version) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET version = excluded.version",
                [self.tracking_name, self.version],
            )

    @classmethod
    def handled_topics(cls) -> frozenset[str]:
        return frozenset(get_topic(t) for t in cls._handlers)

    def create_tables(self) -> None:
        self.db.create_schema(self.schema)

    def drop_tables(self) -> None:
        """Drop the view and its tracking position, so the next run rebuilds it from zero."""
        with self.db.transaction() as cur:
            for table in self.tables:
                cur.execute(f"DROP TABLE IF EXISTS {table}")
            self.db.forget_position(cur, self.tracking_name)
        self.create_tables()

    def position(self) -> int:
        return self.db.position(self.tracking_name)

    def before_batch(self, cur: ViewCursor) -> None:
        """Read, once per batch, what the handlers would otherwise query event by event."""

    def write_fresh(self, cur: ViewCursor, row: dict[str, Any]) -> None:
        """Write one row a deferring handler kept in `self.fresh` (views that defer say how).

        A view may fold several events of one batch into one row write (a new
        contact and its first counters): its `deferring_handlers` keep the row in
        `self.fresh` (by id) and update it there. `apply_batch` writes the kept rows
        before any other handler runs and at the end of the batch, so every other
        handler, and every reader after the commit, sees the rows as if each event
        had been written on its own.
        """
        raise NotImplementedError(f"{type(self).__name__} defers rows but cannot write them")

    def _flush_fresh(self, cur: ViewCursor) -> None:
        for row in self.fresh.values():
            self.write_fresh(cur, row)
        self.fresh.clear()

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        """The library's one-event entry point; batches go through `process_batch`."""
        self.process_batch([(tracking.notification_id, domain_event)], tracking)

    def process_batch(
        self,
        events: Sequence[tuple[int, Any]],
        tracking: Tracking,
        expected_position: int | None = None,
    ) -> None:
        """Apply (notification id, event) pairs and move the tracking row, in one transaction.

        With `expected_position`, the batch applies only if the view is still exactly
        there: a second runner of the same view (an orphaned process, two workers during
        a rolling update) that overtook this one makes it raise `StalePosition` instead
        of applying events twice. While a handler runs, `self.position_of_event` is the
        event's place in the log.
        """
        with self.db.transaction() as cur:
            self.apply_batch(cur, events, tracking, expected_position)

    def apply_batch(
        self,
        cur: ViewCursor,
        events: Sequence[tuple[int, Any]],
        tracking: Tracking,
        expected_position: int | None = None,
    ) -> None:
        """`process_batch` inside a transaction the caller owns (several views share one)."""
        if expected_position is not None:
            current = self.db.locked_position(cur, self.tracking_name)
            if current != expected_position:
                raise StalePosition(self.name, expected_position, current)
        self.fresh = {}  # nothing kept from a batch that failed half-way
        self.before_batch(cur)
        with self.db.pipelined(cur) as batch_cur:
            self.apply_events(batch_cur, events)
        self.db.insert_tracking(cur, tracking)

    def apply_events(self, cur: ViewCursor, events: Sequence[tuple[int, Any]]) -> None:
        """The batch's events, each to its handler (a view of every event may take the whole
        batch at once instead)."""
        deferring = self.deferring_handlers
        for notification_id, domain_event in events:
            handler = self._handlers.get(type(domain_event))
            if handler is not None:  # events a view does not handle leave it unchanged
                if self.fresh and handler.__name__ not in deferring:
                    self._flush_fresh(cur)
                self.position_of_event = notification_id
                handler(self, domain_event, cur)
        self._flush_fresh(cur)


def merge_call(existing: dict[str, Any] | None, event: Any) -> dict[str, Any]:
    """A call's data after a `CallUpdated` or `CallMissed` event (status, outcome, duration,
    recording), shared by the inbox and the timeline so both tell the same story."""
    call = dict(existing or {})
    call["status"] = event.status
    call["outcome"] = getattr(event, "outcome", "missed")
    if getattr(event, "duration", None) is not None:
        call["duration"] = event.duration
    recording = (getattr(event, "personal", None) or {}).get("recording_url")
    if recording:
        call["recording_url"] = recording
    return call


class ContactAliases:
    """Merged contacts and their survivors, as a view keeps them in its own table.

    A view that files rows by contact sends a merged contact's later rows to the
    survivor. The table is read once per batch (merges are rare) and a merge
    re-points the aliases that led to the duplicate, so chains of merges end at
    the last survivor.
    """

    def __init__(self, table: str) -> None:
        self.table = table
        self.survivors: dict[str, str] = {}

    def load(self, cur: ViewCursor) -> None:
        rows = cur.execute(f"SELECT id, survivor_id FROM {self.table}").fetchall()
        self.survivors = {str(r["id"]): str(r["survivor_id"]) for r in rows}

    def survivor(self, contact_id: str | None) -> str | None:
        return self.survivors.get(contact_id, contact_id) if contact_id else contact_id

    def record(self, cur: ViewCursor, duplicate: str, survivor: str) -> None:
        cur.execute(
            f"UPDATE {self.table} SET survivor_id = ? WHERE survivor_id = ?", [survivor, duplicate]
        )
        cur.execute(
            f"INSERT INTO {self.table} (id, survivor_id) VALUES (?, ?)"
            " ON CONFLICT (id) DO UPDATE SET survivor_id = excluded.survivor_id",
            [duplicate, survivor],
        )
        self.survivors = {
            k: (survivor if v == duplicate else v) for k, v in self.survivors.items()
        } | {duplicate: survivor}
