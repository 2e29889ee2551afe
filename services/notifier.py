"""E-mail copies of operators' notifications (a rule's `notify` with `email: true`).

Sent through the first enabled e-mail inbox that can send, to the operator's
login address, naming the task, client and conversation with absolute links
(`services.notification_mail`). Unlike replies to clients, a notification to a colleague is sent
at least once: a crash between sending and recording may repeat one, which is
better than an operator missing an overdue-task reminder.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol
from uuid import UUID

from threadline.channels.base import (
    ChannelAdapter,
    DeliveryError,
    InboxConfig,
    OutboundMessage,
    Sent,
    wait_or_stop,
)
from threadline.domain.infrastructure.group_commit import Command, Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.automation import Notification
from threadline.projections.notification_details import (
    UnsentNotification,
    for_mail,
    unsent_after,
)
from threadline.projections.sql import ViewReader
from threadline.services.notification_mail import NotificationMail, compose

log = logging.getLogger("threadline.notifier")

ACTOR = "worker:notifier"
POLL_SECONDS = 1.0
PAGE = 20
RETRY_SECONDS = 60.0  # how long a notification that could not be sent waits for a retry
START = ("", "")  # the position before every notification


class MailChannels(Protocol):
    """The inboxes to send through (the channel hub)."""

    def inboxes(
        self, channel: str | None = None, enabled_only: bool = True
    ) -> list[InboxConfig]: ...

    def adapter(self, inbox: InboxConfig) -> ChannelAdapter: ...


class CommandWriter(Protocol):
    """Runs a command in the log's next batch (the application's group-commit writer)."""

    def submit(self, command: Command[None]) -> Committed[None]: ...


class NotificationMailer:
    """Sends each unsent notification in creation order from a position kept in memory.

    A pass reads the next page after the position (an index range, however many wait),
    so notifications that cannot be sent (no e-mail inbox, a mail server down, an
    inactive operator) are not read and sorted again every second. The position goes
    back to the start once every `RETRY_SECONDS`: that retries what failed and picks up
    a notification that reached the views behind the position. Nothing is read while
    no inbox can send e-mail.
    """

    def __init__(
        self,
        channels: MailChannels,
        views: ViewReader,
        writer: CommandWriter,
        public_url: str,
        time_zone: str,
    ) -> None:
        self.channels = channels
        self.views = views
        self.writer = writer
        self.public_url = public_url
        self.time_zone = time_zone
        self.after = START  # (created_at, id) of the last notification tried
        self.retry_at = 0.0  # monotonic time of the next pass from the start
        self.tried = 0  # sends attempted (for tests and the bench)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:
                log.warning("e-mailing notifications failed; retrying", exc_info=True)
            await wait_or_stop(stop, POLL_SECONDS)

    async def run_once(self) -> int:
        """One pass: send the next page of unsent notifications; how many were tried."""
        if not await asyncio.to_thread(self._senders):
            return 0  # nothing can send e-mail yet; the notifications stay in the app
        if self.after == START or time.monotonic() >= self.retry_at:
            self.after, self.retry_at = START, time.monotonic() + RETRY_SECONDS
        rows = await asyncio.to_thread(self.due)
        tried = 0
        for row in rows:
            self.after = (row.created_at, row.id)
            if row.active:
                await self.send(row)
                tried += 1
        self.tried += tried
        return tried

    def _senders(self) -> list[InboxConfig]:
        """The enabled e-mail inboxes that can send (an SMTP server is set)."""
        return [i for i in self.channels.inboxes("email") if i.setting("smtp_host")]

    def due(self) -> list[UnsentNotification]:
        """The next page after the position (`notifications_unsent` serves the range)."""
        return unsent_after(self.views, self.after, PAGE)

    async def send(self, row: UnsentNotification) -> None:
        inboxes = await asyncio.to_thread(self._senders)
        if not inboxes:
            return  # nothing can send e-mail yet; the notification stays in the app
        notification_id = UUID(row.id)
        mail = await asyncio.to_thread(self.compose, notification_id)
        if mail is None:
            return  # read or gone meanwhile
        message = OutboundMessage(
            message_id=notification_id,
            conversation_id=UUID(row.conversation_id) if row.conversation_id else notification_id,
            contact_id=UUID(row.contact_id) if row.contact_id else notification_id,
            channel="email",
            recipient=row.email,
            recipient_name=row.name or "",
            subject=mail.subject,
            own_subject=True,
            text=mail.text,
        )
        try:
            answer = await self.channels.adapter(inboxes[0]).send(message)
        except DeliveryError as error:
            log.warning("notification %s not e-mailed: %s", notification_id, error)
            if error.permanent:
                await asyncio.to_thread(self._record, notification_id, f"failed: {error.reason}")
            return
        provider_id = answer.provider_id if isinstance(answer, Sent) else answer
        await asyncio.to_thread(self._record, notification_id, provider_id)

    def compose(self, notification_id: UUID) -> NotificationMail | None:
        """The mail in the operator's language and time zone, naming and linking what it is about."""
        note = for_mail(self.views, notification_id)
        if note is None:
            return None
        time_zone = str(note.get("timezone") or self.time_zone or "UTC")
        return compose(note, self.public_url, note.get("locale"), time_zone)

    def _record(self, notification_id: UUID, provider_id: str) -> None:
        def command(unit: UnitOfWork) -> None:
            notification = unit.get(notification_id, Notification)
            if not notification.emailed:
                notification.mark_emailed(provider_id, ACTOR, str(notification_id))

        self.writer.submit(command)
