"""Consent commands: a person opts a client back in to automatic messages, with a reason.

Opt-outs are recorded by the system when a client writes STOP or follows an
unsubscribe link (`ContactOptedOut`); only a person may undo one, and the reason
they give travels in the `ContactOptedIn` event, so an auditor sees who overrode
a client's STOP and why. A mixin of `Threadline`, like every command module.
"""

from __future__ import annotations

from uuid import UUID, uuid4

from threadline.domain.commands.base import Commands
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.contact import Contact, survivor


class ConsentCommands(Commands):
    def opt_in_contact(
        self, contact_id: UUID, channel: str, reason: str, actor: str
    ) -> Committed[UUID]:
        """Opt the contact (or the client it was merged into) back in on `channel`.

        Returns the id of the contact that changed; the aggregate refuses an empty
        reason and a channel that is not opted out (`InvalidInput`, 422).
        """
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> UUID:
            contact = survivor(unit.get(contact_id, Contact), lambda i: unit.get(i, Contact))
            contact.opt_in(channel, reason, actor, correlation_id)
            return UUID(str(contact.id))

        return self.writer.submit(command)
