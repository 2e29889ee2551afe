"""The Inbox aggregate: one configured way in and out (a mailbox, a bot, a Twilio number, a form set).

An inbox is identified by its slug (`uuid5` of it), so a webhook URL such as
``/hooks/telegram/{slug}`` finds it without a query. Its settings are data in
the log, so every change is audited; secret values (passwords, tokens) are
kept out of the log on purpose: the log is immutable, and a leaked or rotated
credential must be removable. Events name only which secrets are set.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from threadline.domain.model.errors import InvalidInput

INBOX_NAMESPACE = uuid5(NAMESPACE_URL, "https://threadline.dev/inbox")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


def inbox_id_for(slug: str) -> UUID:
    return uuid5(INBOX_NAMESPACE, clean_slug(slug))


def clean_slug(slug: str) -> str:
    cleaned = (slug or "").strip().lower()
    if not SLUG.match(cleaned):
        raise InvalidInput("slug", "1 to 40 lower-case letters, digits or dashes")
    return cleaned


class Inbox(Aggregate):
    """Channel, name, plain settings and the names of the secrets that are set."""

    class InboxCreated(Aggregate.Created):
        slug: str
        channel: str
        name: str
        settings: dict[str, Any]
        secret_names: list[str]
        actor: str
        correlation_id: str

    @event(InboxCreated)
    def __init__(
        self,
        id: UUID,
        slug: str,
        channel: str,
        name: str,
        settings: dict[str, Any],
        secret_names: list[str],
        actor: str,
        correlation_id: str,
    ) -> None:
        self.slug = slug
        self.channel = channel
        self.name = name
        self.settings = dict(settings)
        self.secret_names = sorted(secret_names)
        self.enabled = True

    class InboxReconfigured(Aggregate.Event):
        name: str
        settings: dict[str, Any]
        secret_names: list[str]
        actor: str
        correlation_id: str

    @event(InboxReconfigured)
    def reconfigure(
        self,
        name: str,
        settings: dict[str, Any],
        secret_names: list[str],
        actor: str,
        correlation_id: str,
    ) -> None:
        self.name = name
        self.settings = dict(settings)
        self.secret_names = sorted(secret_names)

    class InboxEnabledChanged(Aggregate.Event):
        enabled: bool
        actor: str
        correlation_id: str

    @event(InboxEnabledChanged)
    def set_enabled(self, enabled: bool, actor: str, correlation_id: str) -> None:
        self.enabled = enabled
