"""Business calendars: opening hours, time zone and holidays, by name.

Rules test `business_hours` and push `after` delays to the next open hour
against a calendar. A calendar named like an inbox's slug is that inbox's
calendar (`{business_hours: {calendar: inbox}}` picks the conversation's own);
`default` is used when no other applies. The trigger engine validates the
definition before it reaches the log.
"""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from threadline.domain.model.inbox import clean_slug

CALENDAR_NAMESPACE = uuid5(NAMESPACE_URL, "https://threadline.dev/calendar")


def calendar_id_for(name: str) -> UUID:
    return uuid5(CALENDAR_NAMESPACE, clean_slug(name))


class Calendar(Aggregate):
    class CalendarSaved(Aggregate.Created):
        name: str
        definition: dict[str, Any]
        actor: str
        correlation_id: str

    @event(CalendarSaved)
    def __init__(
        self, id: UUID, name: str, definition: dict[str, Any], actor: str, correlation_id: str
    ) -> None:
        self.name = name
        self.definition = definition

    class CalendarChanged(Aggregate.Event):
        definition: dict[str, Any]
        actor: str
        correlation_id: str

    @event(CalendarChanged)
    def change(self, definition: dict[str, Any], actor: str, correlation_id: str) -> None:
        self.definition = definition
