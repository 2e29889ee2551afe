"""A rule's conditions see the effects of the firings before it, for the same contact.

The runner submits firings without waiting for each commit. Before a rule with
conditions reads facts, the earlier firings for the same contact (else conversation)
must have committed and the views must show them: a repeat message handled in the same
page as the first one's firing must see the task that firing created ("every waiting
conversation has an open task" would add a second). A deal's events are kept under the
deal as well (a deal may have no contact): the second of two quick task completions of a
deal must see the task the first one's "every open deal has an open task" created.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import wait as wait_all
from functools import partial
from typing import Any

from threadline.triggers.events import TriggerEvent

# How many contacts' "own effects" positions are remembered (oldest forgotten first).
EFFECTS_REMEMBERED = 10_000


def effects_keys(trigger: TriggerEvent) -> list[str]:
    """Whose facts a firing's effects change: the contact's (else the conversation's), and
    the deal's."""
    keys: list[str] = []
    if trigger.contact_id is not None:
        keys.append(f"contact:{trigger.contact_id}")
    elif trigger.conversation_id is not None:
        keys.append(f"conversation:{trigger.conversation_id}")
    if trigger.deal_id is not None:
        keys.append(f"deal:{trigger.deal_id}")
    return keys


class OwnEffects:
    """Per contact, the firings not yet committed and the log position of the last one that was."""

    def __init__(self, wait_for_views: Callable[[int], bool]) -> None:
        self.wait_for_views = wait_for_views
        self._lock = threading.Lock()
        self._unsettled: dict[str, list[Future[Any]]] = {}
        self._at: OrderedDict[str, int] = OrderedDict()

    def track(self, trigger: TriggerEvent, future: Future[Any]) -> None:
        for key in effects_keys(trigger):
            with self._lock:
                self._unsettled.setdefault(key, []).append(future)
            future.add_done_callback(partial(self._committed, key))

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
        keys = effects_keys(trigger)
        if not keys:
            return
        with self._lock:
            waiting = [future for key in keys for future in self._unsettled.get(key, ())]
        wait_all(waiting, timeout=60)
        position = 0
        for future in waiting:
            if future.done() and not future.cancelled() and future.exception() is None:
                position = max(position, future.result().notification_id or 0)
        with self._lock:
            position = max(position, *(self._at.get(key, 0) for key in keys))
        if position and not self.wait_for_views(position):
            raise RuntimeError(
                f"the views have not reached this runner's own effects at {position}"
            )
