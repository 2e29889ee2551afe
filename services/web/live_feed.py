"""What changed in the views, said once per server for every open page.

Each open page holds a Server-Sent Events stream (`routes_events`). Before, every
stream read the views' position on its own and said only "something changed",
so every page reloaded all of its live fragments for every event: five inbox
tabs at 40 messages a second cost more than the ingest itself. This module does
the reading once per process:

- `ChangeFeed.position` reads the views' position at most once per poll for all
  streams;
- `ChangeFeed.changes` turns each new window of the log into *keys* once, and
  keeps the last windows so that every stream can ask "what changed since my
  last update" without reading the log again.

Keys say which fragments may show something new (pages mark their fragments
with the same keys in ``data-live``, see app.js):

``inbox``                   the conversation list (any message, conversation or client event)
``conversation:<id>``       that conversation (its thread, its state)
``contact:<id>``            that client (their card, timeline, cross-channel thread)
``tasks``                   task lists
``deals:<pipeline id>``     that pipeline's board (a deal in it, or the pipeline itself, changed)
``deal:<id>``               that deal's page
``notifications:<user id>`` that user's notifications (a stream keeps only its own user's,
                            as ``notifications``)
``campaigns``, ``rules``, ``templates``, ``forms``, ``inboxes``, ``contacts``
                            the admin screens and lists of those things
``*``                       anything: a window too large to read, or an event this module
                            cannot place (a company, a user, an attribute definition, an
                            aggregate added later); every live fragment reloads

Reading only topics and originator ids keeps this cheap: no event is decoded
(personal data stays encrypted); which conversation or client a message, task or
notification belongs to is looked up in the views, which already hold the window.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from threadline.projections.automation import notification_users
from threadline.projections.deals import deal as deal_row
from threadline.projections.inbox import conversation_contacts, merged_survivors, message_places
from threadline.projections.tasks import task_places
from threadline.services.visibility import SharedPosition

log = logging.getLogger("threadline.web.live")

EVERYTHING = "*"
POSITION_TTL = 0.1
"""Seconds one reading of the views' position serves every stream."""
MAX_WINDOW = 5000
"""A window longer than this (a catch-up, an import, a replay) is not read: it says `*`."""
MAX_KEYS = 500
"""A window that touches more things than this says `*`: reloading everything is cheaper."""
KEPT_WINDOWS = 512
"""Windows remembered for streams that are behind; a stream older than all of them gets `*`."""

# Aggregates whose events only the screens of that kind show, under one key each.
FAMILY_KEYS: dict[str, str] = {
    "Rule": "rules",
    "RuleFiring": "rules",
    "Timer": "rules",
    "Calendar": "rules",
    "WebhookCall": "rules",
    "Template": "templates",
    "Campaign": "campaigns",
    "CampaignRecipient": "campaigns",
    "Form": "forms",
    "Inbox": "inboxes",
    "IdentityClaim": "contacts",
}


def family_of(topic: str) -> str:
    """The aggregate class of an event's topic (``pkg.module:Message.MessageReceived`` → Message)."""
    qualname = topic.rsplit(":", 1)[-1]
    return qualname.split(".", 1)[0]


@dataclass(frozen=True)
class Window:
    """The keys of the log positions `after` < p <= `upto`."""

    after: int
    upto: int
    keys: frozenset[str]


class ChangeFeed:
    """The views' position and what changed, shared by every stream of one app."""

    def __init__(self, runtime: Any, position_ttl: float = POSITION_TTL) -> None:
        self.runtime = runtime
        self._lock = threading.Lock()
        self._windows: deque[Window] = deque(maxlen=KEPT_WINDOWS)
        self._head: int | None = None  # the position classified so far
        self._position = SharedPosition(lambda: int(runtime.views_position()), position_ttl)

    def position(self) -> int:
        """The views' position, read at most once per `position_ttl` for all callers."""
        return self._position.get()

    def changes(self, since: int) -> tuple[int, frozenset[str]]:
        """The views' position now and the keys of what changed after `since` (blocking)."""
        position = self.position()
        with self._lock:
            if self._head is None:
                self._head = since
            if position < self._head:  # the views were rebuilt: nothing before holds
                self._windows.clear()
                self._head = position
                return position, frozenset({EVERYTHING})
            if position > self._head:
                keys = self._describe(self._head, position)
                self._windows.append(Window(self._head, position, keys))
                self._head = position
            if position <= since:
                return position, frozenset() if position == since else frozenset({EVERYTHING})
            oldest = self._windows[0].after if self._windows else self._head
            if since < oldest:
                return position, frozenset({EVERYTHING})
            found: set[str] = set()
            for window in self._windows:
                if window.upto > since:
                    found |= window.keys
            return position, frozenset(found)

    def _describe(self, after: int, upto: int) -> frozenset[str]:
        if upto - after > MAX_WINDOW:
            return frozenset({EVERYTHING})
        try:
            notifications = self.runtime.app.recorder.select_notifications(
                start=after + 1, limit=upto - after, stop=upto
            )
            keys = describe(
                self.runtime.views, [(n.topic, str(n.originator_id)) for n in notifications]
            )
        except Exception:  # a view missing (API-only mode, before the worker), a lost connection
            log.debug("could not say what changed in (%s, %s]", after, upto, exc_info=True)
            return frozenset({EVERYTHING})
        return frozenset({EVERYTHING}) if len(keys) > MAX_KEYS else keys


def describe(views: Any, events: Sequence[tuple[str, str]]) -> frozenset[str]:
    """The keys of events given as (topic, originator id), placed with the views' help."""
    keys: set[str] = set()
    messages: set[str] = set()
    conversations: set[str] = set()
    contacts: set[str] = set()
    tasks: set[str] = set()
    notifications: set[str] = set()
    deals: set[str] = set()
    for topic, originator in events:
        family = family_of(topic)
        if family == "Message":
            messages.add(originator)
        elif family == "Conversation":
            conversations.add(originator)
        elif family == "Contact":
            contacts.add(originator)
            keys.add("inbox")  # names in the list; a merge moves threads
            if "Merged" in topic or "Absorbed" in topic:
                keys.add(EVERYTHING)
        elif family == "Task":
            tasks.add(originator)
            keys.add("tasks")
        elif family == "Notification":
            notifications.add(originator)
        elif family == "Deal":
            deals.add(originator)
        elif family == "Pipeline":
            keys.add(f"deals:{originator}")
        elif family in FAMILY_KEYS:
            keys.add(FAMILY_KEYS[family])
        else:
            keys.add(EVERYTHING)
    if messages or conversations:
        keys.add("inbox")
    places = message_places(views, messages)
    if len(places) < len(messages):
        keys.add(EVERYTHING)
    for place in places:
        conversations.add(place.conversation_id)
        contacts.add(place.contact_id)
    keys.update(f"conversation:{c}" for c in conversations)
    owners = conversation_contacts(views, conversations)
    if len(owners) < len(conversations):
        keys.add(EVERYTHING)
    contacts.update(owners.values())
    for task in task_places(views, tasks):
        if task.contact_id:
            contacts.add(task.contact_id)
        if task.conversation_id:
            keys.add(f"conversation:{task.conversation_id}")
    users = notification_users(views, notifications)
    if len(users) < len(notifications):
        keys.add(EVERYTHING)
    keys.update(f"notifications:{user_id}" for user_id in users.values())
    deal_places(views, deals, keys, contacts)
    # A merged client's threads show under the client they were merged into.
    contacts.update(merged_survivors(views, contacts).values())
    keys.update(f"contact:{c}" for c in contacts)
    return frozenset(keys)


def deal_places(views: Any, deals: set[str], keys: set[str], contacts: set[str]) -> None:
    """A deal's page, its pipeline's board and its client's card (which lists the deal).

    Which pipeline a deal is in now is read from the deals view (a move names it, but the
    event is not decoded here); a move to another pipeline reloads the new one's board.
    """
    if len(deals) > MAX_KEYS:
        keys.add(EVERYTHING)
        return
    for deal_id in sorted(deals):
        found = deal_row(views, deal_id)
        if found is None:
            keys.add(EVERYTHING)
            continue
        keys.add(f"deal:{deal_id}")
        keys.add(f"deals:{found.pipeline_id}")
        if found.contact_id:
            contacts.add(found.contact_id)


def for_user(keys: Iterable[str], user_id: str) -> frozenset[str]:
    """The keys one user's stream sends: their own notifications as ``notifications``, no one else's."""
    mine = f"notifications:{user_id}"
    kept: set[str] = set()
    for key in keys:
        if key == mine:
            kept.add("notifications")
        elif not key.startswith("notifications:"):
            kept.add(key)
    return frozenset(kept)
