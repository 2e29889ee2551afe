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

from threadline.domain.infrastructure.group_commit import Committed, GroupCommitWriter
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.inbox import clean_slug

CALENDAR_NAMESPACE = uuid5(NAMESPACE_URL, "https://threadline.dev/calendar")


def calendar_id_for(name: str) -> UUID:
    return uuid5(CALENDAR_NAMESPACE, clean_slug(name))


class Calendar(Aggregate):
    @event("CalendarSaved")
    def __init__(
        self, id: UUID, name: str, definition: dict[str, Any], actor: str, correlation_id: str
    ) -> None:
        self.name = name
        self.definition = definition

    @event("CalendarChanged")
    def change(self, definition: dict[str, Any], actor: str, correlation_id: str) -> None:
        self.definition = definition


class CalendarCommands:
    writer: GroupCommitWriter

    def save_calendar(
        self, name: str, definition: dict[str, Any], actor: str, correlation_id: str = ""
    ) -> Committed[UUID]:
        try:
            slug = clean_slug(name)
        except InvalidInput:
            raise InvalidInput("name", "1 to 40 lower-case letters, digits or dashes") from None
        calendar_id = calendar_id_for(slug)

        def command(unit: UnitOfWork) -> UUID:
            calendar = unit.find(calendar_id, Calendar)
            if calendar is None:
                unit.add(
                    Calendar(
                        id=calendar_id,
                        name=slug,
                        definition=definition,
                        actor=actor,
                        correlation_id=correlation_id or str(calendar_id),
                    )
                )
            elif calendar.definition != definition:
                calendar.change(definition, actor, correlation_id or str(calendar_id))
            return calendar_id

        return self.writer.submit(command)
