"""Read-your-writes, honestly: whether a request's write showed in the views before it answered.

A write request waits until the views show its change, so the client's next read
sees it. When the views are down or far behind, that wait cannot succeed: the
request used to sit out the whole timeout and then answer as if the change were
visible, slowing every webhook past its provider's patience. Now the first wait
that times out marks the views as behind; later requests wait only briefly
(`THREADLINE_READ_YOUR_WRITES_BEHIND_TIMEOUT`) until a wait succeeds again, and
every answer whose change is not yet visible says so with `Threadline-Views: behind`.

The request's mark travels in a context variable holding a mutable flag: the
HTTP middleware sets it before the route runs, and the route's worker thread
(which runs in a copy of the request's context) flips the shared flag.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextvars import ContextVar, Token

HEADER = "Threadline-Views"
BEHIND = "behind"


class RequestMark:
    """One request's answer to "did every write of mine show in the views in time?"."""

    __slots__ = ("behind",)

    def __init__(self) -> None:
        self.behind = False


_current: ContextVar[RequestMark | None] = ContextVar("threadline_views_mark", default=None)


def begin_request() -> tuple[RequestMark, Token[RequestMark | None]]:
    """Start marking the current request (the middleware calls this)."""
    mark = RequestMark()
    return mark, _current.set(mark)


def end_request(token: Token[RequestMark | None]) -> None:
    _current.reset(token)


def note_not_visible() -> None:
    """The current request's write did not show in the views in time (no request: nothing)."""
    mark = _current.get()
    if mark is not None:
        mark.behind = True


class ReadYourWrites:
    """How long a write waits for the views, learning from the last wait whether they lag."""

    def __init__(self, timeout: float, behind_timeout: float, position: Callable[[], int]) -> None:
        self.timeout = timeout
        self.behind_timeout = min(behind_timeout, timeout)
        self.position = position
        self._lock = threading.Lock()
        self.behind = False

    def wait(self, wait: Callable[[float], bool], timeout: float | None = None) -> bool:
        """Run `wait(seconds)`; an explicit `timeout` (workers, commands) is kept as given.

        Only requests (no explicit timeout) shorten their wait while the views are
        behind: a trigger runner that needs the views for its conditions waits in full.
        A short wait that saw the views move on (they are alive, only busy) goes on
        for the rest of the usual timeout.
        """
        if timeout is not None:
            visible = wait(timeout)
        elif not self.behind:
            visible = wait(self.timeout)
            self._remember(visible)
        else:
            before = self.position()
            visible = wait(self.behind_timeout)
            if not visible and self.position() > before:
                visible = wait(self.timeout - self.behind_timeout)
            self._remember(visible)
        if not visible:
            note_not_visible()
        return visible

    def _remember(self, visible: bool) -> None:
        with self._lock:
            self.behind = not visible


class SharedPosition:
    """The views' position read from the database at most once per `max_age`, for every thread.

    In an API process without the views, each waiting request polls the position;
    forty of them polling every 10 ms would each take a pooled connection for it.
    One thread reads while the others wait for and share its answer.
    """

    def __init__(self, read: Callable[[], int], max_age: float = 0.01) -> None:
        self._read = read
        self.max_age = max_age
        self._lock = threading.Lock()
        self._value = 0
        self._read_at = float("-inf")

    def get(self) -> int:
        with self._lock:
            if time.monotonic() - self._read_at >= self.max_age:
                self._value = self._read()
                self._read_at = time.monotonic()
            return self._value
