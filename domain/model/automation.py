"""What rules produce besides messages and tasks: notifications for operators and webhook calls."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event


class Notification(Aggregate):
    """Something an operator must see (shown in the app; e-mailed when `email` is set).

    It names what it is about (the task, the client, the conversation) by id, so the
    app and the e-mail show their current title and name, links and the due time in the
    reader's own time zone and language, rather than a copy frozen in the rule's text.
    """

    class NotificationCreated(Aggregate.Created):
        """Version 1 had no `task_id`: a task reminder could not name or link its task."""

        user_id: UUID
        contact_id: UUID | None
        conversation_id: UUID | None
        email: bool
        personal: dict[str, Any]
        actor: str
        correlation_id: str
        task_id: UUID | None
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.setdefault("task_id", None)

    @event(NotificationCreated)
    def __init__(
        self,
        id: UUID,
        user_id: UUID,
        contact_id: UUID | None,
        conversation_id: UUID | None,
        email: bool,
        personal: dict[str, Any],
        actor: str,
        correlation_id: str,
        task_id: UUID | None = None,
    ) -> None:
        self.user_id = user_id
        self.task_id = task_id
        self.email = email
        self.read = False
        self.emailed = False

    class NotificationEmailed(Aggregate.Event):
        provider_id: str
        actor: str
        correlation_id: str

    @event(NotificationEmailed)
    def mark_emailed(self, provider_id: str, actor: str, correlation_id: str) -> None:
        """The e-mail copy went out (operators' notifications are sent at least once)."""
        self.emailed = True

    class NotificationRead(Aggregate.Event):
        actor: str
        correlation_id: str

    @event(NotificationRead)
    def mark_read(self, actor: str, correlation_id: str) -> None:
        self.read = True


class WebhookCall(Aggregate):
    """A rule's call to an outside URL; the webhook worker makes it and records the answer."""

    class WebhookRequested(Aggregate.Created):
        url: str
        payload: dict[str, Any]
        secret_set: bool
        actor: str
        correlation_id: str

    @event(WebhookRequested)
    def __init__(
        self,
        id: UUID,
        url: str,
        payload: dict[str, Any],
        secret_set: bool,
        actor: str,
        correlation_id: str,
    ) -> None:
        self.url = url
        self.state = "requested"
        self.attempts = 0

    class WebhookAttempted(Aggregate.Event):
        status: int | None
        error: str
        done: bool
        actor: str
        correlation_id: str

    @event(WebhookAttempted)
    def attempted(
        self, status: int | None, error: str, done: bool, actor: str, correlation_id: str
    ) -> None:
        self.attempts += 1
        if done:
            self.state = "delivered" if status is not None and 200 <= status < 300 else "failed"
