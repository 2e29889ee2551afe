"""Inbox commands: configure the inboxes messages come in through and leave by.

An inbox is identified by its slug; its settings are data in the log, its secrets
only named here (their values live in the secret store).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from threadline.domain.commands.base import Commands
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.errors import Conflict, InvalidInput
from threadline.domain.model.inbox import Inbox, clean_slug, inbox_id_for


class InboxCommands(Commands):
    def configure_inbox(
        self,
        slug: str,
        channel: str,
        name: str,
        settings: dict[str, Any],
        secret_names: list[str],
        actor: str,
        enabled: bool | None = None,
        create_only: bool = False,
    ) -> Committed[UUID]:
        """Create the inbox or change it; records nothing when nothing changed."""
        slug = clean_slug(slug)
        if not name.strip():
            raise InvalidInput("name", "must not be empty")
        inbox_id = inbox_id_for(slug)
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> UUID:
            inbox = unit.find(inbox_id, Inbox)
            if inbox is None:
                inbox = unit.add(
                    Inbox(
                        id=inbox_id,
                        slug=slug,
                        channel=channel,
                        name=name.strip(),
                        settings=settings,
                        secret_names=secret_names,
                        actor=actor,
                        correlation_id=correlation_id,
                    )
                )
            else:
                if create_only:
                    raise Conflict(f"an inbox with slug {slug!r} exists")
                if inbox.channel != channel:
                    raise InvalidInput("channel", f"inbox {slug} is a {inbox.channel} inbox")
                if (
                    inbox.name != name.strip()
                    or inbox.settings != settings
                    or inbox.secret_names != sorted(secret_names)
                ):
                    inbox.reconfigure(name.strip(), settings, secret_names, actor, correlation_id)
            if enabled is not None and enabled != inbox.enabled:
                inbox.set_enabled(enabled, actor, correlation_id)
            return inbox_id

        return self.writer.submit(command)
