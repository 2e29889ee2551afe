"""The clock of deal events, which an import of past history may set back.

A deal's figures are folds of its events' times (time in stage, won per month), so a demo
or an import of deals from another CRM must be able to record moves at the moments they
happened. `recorded_at` sets the time the next events of the classes that use this clock
take; it is process-wide (commands run on the writer's thread), so it is for seeding and
imports run on their own, never while the app serves requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from eventsourcing.domain import datetime_now_with_tzinfo

_moment: datetime | None = None


class HistoryClock:
    """Mixed into an event class: its timestamp is `recorded_at`'s moment while one is set."""

    @staticmethod
    def create_timestamp() -> datetime:
        return _moment if _moment is not None else datetime_now_with_tzinfo()


@contextmanager
def recorded_at(moment: datetime) -> Iterator[None]:
    """Events of `HistoryClock` classes created inside take `moment` as their time."""
    global _moment
    if moment.tzinfo is None:
        raise ValueError("a recorded time needs a time zone")
    previous, _moment = _moment, moment.astimezone(UTC)
    try:
        yield
    finally:
        _moment = previous
