"""Calendar commands: save a business calendar (opening hours, time zone, holidays) by name."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from threadline.domain.commands.base import Commands
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.calendar import Calendar, calendar_id_for
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.inbox import clean_slug


class CalendarCommands(Commands):
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
