"""A rule's conditions see the effects of the firings before it, for the same contact.

The runner submits firings without waiting for each commit. Before a rule with
conditions reads facts, the earlier firings for the same contact (else conversation)
must have committed and the views must show them: a repeat message handled in the same
page as the first one's firing must see the task that firing created ("every waiting
conversation has an open task" would add a second).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import wait as wait_all
from typing import Any

from threadline.triggers.events import TriggerEvent

# How many contacts' "own effects" positions are remembered (oldest forgotten first).
EFFECTS_REMEMBERED = 10_000


def effects_key(trigger: TriggerEvent) -> str | None:
    """Whose facts a firing's effects change: the contact's (else the conversation's)."""
    if trigger.contact_id is not None:
        return f"contact:{trigger.contact_id}"
    if trigger.conversation_id is not None:
        return f"conversation:{trigger.conversation_id}"
    return None


class OwnEffects:
    """Per contact, the firings not yet committed and the log position of the last one that was."""

    def __init__(self, wait_for_views: Callable[[int], bool]) -> None:
        self.wait_for_views = wait_for_views
        self._lock = threading.Lock()
        self._unsettled: dict[str, list[Future[Any]]] = {}
        self._at: OrderedDict[str, int] = OrderedDict()

    def track(self, trigger: TriggerEvent, future: Future[Any]) -> None:
        key = effects_key(trigger)
        if key is None:
            return
        with self._lock:
            self._unsettled.setdefault(key, []).append(future)
        future.add_done_callback(lambda done: self._committed(key, done))

    def _committed(self, key: str, future: Future[Any]) -> None:
        """Note where a firing's effects landed in the log (runs when its commit resolves)."""
        position = None
        if not future.cancelled() and future.exception() is None:
            position = future.result().notification_id
        with self._lock:
            waiting = self._unsettled.get(key)
            if waiting is not None and future in waiting:
                waiting.remove(future)
                if not waiting:
                    del self._unsettled[key]
            if position is not None and position > self._at.get(key, 0):
                self._at[key] = position
                self._at.move_to_end(key)
                while len(self._at) > EFFECTS_REMEMBERED:
                    self._at.popitem(last=False)

    def see(self, trigger: TriggerEvent) -> None:
        """Wait until the views show this runner's earlier effects for the trigger's contact.

        Raises if the views do not get there (the page is retried).
        """
        key = effects_key(trigger)
        if key is None:
            return
        with self._lock:
            waiting = list(self._unsettled.get(key, ()))
        wait_all(waiting, timeout=60)
        position = 0
        for future in waiting:
            if future.done() and not future.cancelled() and future.exception() is None:
                position = max(position, future.result().notification_id or 0)
        with self._lock:
            position = max(position, self._at.get(key, 0))
        if position and not self.wait_for_views(position):
            raise RuntimeError(
                f"the views have not reached this runner's own effects at {position}"
            )
