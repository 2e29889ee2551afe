"""E-mail copies of operators' notifications (a rule's `notify` with `email: true`).

Sent through the first enabled e-mail inbox that can send, to the operator's
login address. Unlike replies to clients, a notification to a colleague is sent
at least once: a crash between sending and recording may repeat one, which is
better than an operator missing an overdue-task reminder.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any
from uuid import UUID

from threadline.channels.base import DeliveryError, OutboundMessage, wait_or_stop
from threadline.domain.automation import Notification

if TYPE_CHECKING:
    from threadline.services.channel_hub import ChannelHub

log = logging.getLogger("threadline.notifier")

ACTOR = "worker:notifier"
POLL_SECONDS = 1.0


class NotificationMailer:
    def __init__(self, hub: ChannelHub) -> None:
        self.hub = hub
        self.runtime = hub.runtime

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                rows = await asyncio.to_thread(self.due)
                for row in rows:
                    await self.send(row)
            except Exception:
                log.warning("e-mailing notifications failed; retrying", exc_info=True)
            await wait_or_stop(stop, POLL_SECONDS)

    def due(self) -> list[dict[str, Any]]:
        return self.runtime.views.query(
            "SELECT n.id, n.text, n.contact_id, n.conversation_id, u.email, u.name"
            " FROM notifications n JOIN users u ON u.id = n.user_id"
            " WHERE n.email = 1 AND n.emailed = 0 AND u.active = 1 ORDER BY n.created_at LIMIT 20"
        )

    async def send(self, row: dict[str, Any]) -> None:
        inboxes = [
            i for i in await asyncio.to_thread(self.hub.inboxes, "email") if i.setting("smtp_host")
        ]
        if not inboxes:
            return  # nothing can send e-mail yet; the notification stays in the app
        notification_id = UUID(row["id"])
        link = self.hub.options.public_url
        if row.get("conversation_id"):
            link = f"{link}/api/conversations/{row['conversation_id']}"
        message = OutboundMessage(
            message_id=notification_id,
            conversation_id=UUID(row["conversation_id"])
            if row.get("conversation_id")
            else notification_id,
            contact_id=UUID(row["contact_id"]) if row.get("contact_id") else notification_id,
            channel="email",
            recipient=row["email"],
            recipient_name=row.get("name") or "",
            subject=f"[Threadline] {row['text'][:120]}",
            own_subject=True,
            text=f"{row['text']}\n\n{link}\n",
        )
        try:
            provider_id = await self.hub.adapter(inboxes[0]).send(message)
        except DeliveryError as error:
            log.warning("notification %s not e-mailed: %s", notification_id, error)
            if error.permanent:
                await asyncio.to_thread(self._record, notification_id, f"failed: {error.reason}")
            return
        await asyncio.to_thread(self._record, notification_id, provider_id)

    def _record(self, notification_id: UUID, provider_id: str) -> None:
        def command(unit: Any) -> None:
            notification = unit.get(notification_id, Notification)
            if not notification.emailed:
                notification.mark_emailed(provider_id, ACTOR, str(notification_id))

        self.runtime.app.writer.submit(command)
