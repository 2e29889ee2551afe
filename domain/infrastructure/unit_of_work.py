"""A unit of work: the aggregates one command reads and changes, saved together.

Every command runs against a `UnitOfWork` instead of the repository directly.
Within one group-commit batch all units share an identity map, so two inbound
messages from the same new sender in one batch see one contact, not two, and
the whole batch is appended in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Mapper

from threadline.domain.infrastructure.store_access import read_session, select_events_of_many
from threadline.domain.model.errors import NotFound

A = TypeVar("A", bound=Aggregate)


class IdentityMap:
    """The aggregates of one batch, loaded once and shared by the batch's units."""

    def __init__(self, app: Application[UUID]) -> None:
        self.app = app
        self.mapper: Mapper[UUID] = app.mapper
        self.aggregates: dict[UUID, Aggregate] = {}
        self.absent: set[UUID] = set()
        self.session: Any = None  # set by `reading`: the rounds of a batch share one

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Let every `prefetch` inside share one connection and read transaction."""
        with read_session(self.app.recorder) as session:
            self.session = session
            try:
                yield
            finally:
                self.session = None

    def prefetch(self, ids: Iterable[UUID]) -> None:
        """Load every aggregate of `ids` not yet in the map, in one query."""
        wanted = [i for i in ids if i not in self.aggregates and i not in self.absent]
        if not wanted:
            return
        stored = select_events_of_many(self.app.recorder, wanted, self.session)
        for aggregate_id in wanted:
            events = stored.get(aggregate_id)
            if not events:
                self.absent.add(aggregate_id)
                continue
            aggregate: Any = None
            for stored_event in events:
                domain_event: Any = self.mapper.to_domain_event(stored_event)
                aggregate = domain_event.mutate(aggregate)
            if aggregate is not None:
                self.aggregates[aggregate_id] = aggregate

    def find(self, aggregate_id: UUID) -> Aggregate | None:
        if aggregate_id in self.aggregates:
            return self.aggregates[aggregate_id]
        if aggregate_id in self.absent:
            return None
        self.prefetch([aggregate_id])
        return self.aggregates.get(aggregate_id)

    def pending(self) -> list[Aggregate]:
        return [a for a in self.aggregates.values() if a.pending_events]


class UnitOfWork:
    """What a command sees: find, get and add aggregates; all changes are saved by the batch."""

    def __init__(self, identity_map: IdentityMap) -> None:
        self._map = identity_map
        self.app = identity_map.app
        # pending-event count of each aggregate when this unit first saw it
        self.seen: dict[UUID, int] = {}

    def _saw(self, aggregate: Aggregate | None) -> None:
        if aggregate is not None and aggregate.id not in self.seen:
            self.seen[aggregate.id] = len(aggregate.pending_events)

    def changed(self) -> set[UUID]:
        """Aggregates this unit added or gave new events to."""
        aggregates = self._map.aggregates
        return {
            i
            for i, before in self.seen.items()
            if i in aggregates and len(aggregates[i].pending_events) != before
        }

    def prefetch(self, ids: Iterable[UUID]) -> None:
        self._map.prefetch(ids)

    def find(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        aggregate = self._map.find(aggregate_id)
        self._saw(aggregate)
        if aggregate is None or not isinstance(aggregate, kind):
            return None
        return aggregate

    def get(self, aggregate_id: UUID, kind: type[A]) -> A:
        aggregate = self.find(aggregate_id, kind)
        if aggregate is None:
            raise NotFound(kind.__name__.lower(), aggregate_id)
        return aggregate

    def exists(self, aggregate_id: UUID) -> bool:
        aggregate = self._map.find(aggregate_id)
        self._saw(aggregate)
        return aggregate is not None

    def add(self, aggregate: A) -> A:
        """Register a new aggregate; later units of the batch will find it."""
        self._map.aggregates[aggregate.id] = aggregate
        self._map.absent.discard(aggregate.id)
        self.seen.setdefault(aggregate.id, 0)
        return aggregate
