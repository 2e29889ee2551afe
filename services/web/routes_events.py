"""Live updates: one Server-Sent Events stream per open page, saying what changed.

The stream sends ``changed`` with the views' position and the keys of what changed
(``{"position": 812, "keys": ["inbox", "conversation:…", "contact:…"]}``, see
`live_feed` for the keys). Pages mark each live fragment with the keys it shows
(``data-live="inbox"``) and app.js reloads only the fragments whose keys came, one
request at a time per fragment; the fragments are rendered from the views like any
other request. Elements that still listen with ``hx-trigger="sse:changed"`` reload on
every ``changed``.

Coalescing: a stream sends at most one ``changed`` per `COALESCE_SECONDS` (the
first change after a quiet spell goes out at once), carrying everything that
changed meanwhile, so a burst of messages costs an open tab a few reloads instead
of four per message. The views' position and the log are read once per server
for all streams (`live_feed.ChangeFeed`), not once per tab.

Ending: a stream ends within `POLL_SECONDS` once the server is stopping
(`end_streams`, or a predicate given to `end_streams_when`, which `threadline serve`
points at uvicorn's ``should_exit``), so a stop does not wait for the browsers; the
browser's EventSource reconnects to whichever server comes back.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

from threadline.projections.notification_details import unread_count
from threadline.services.web.deps import WebUserDep
from threadline.services.web.live_feed import ChangeFeed, for_user

router = APIRouter(include_in_schema=False)

POLL_SECONDS = 0.25
COALESCE_SECONDS = 1.0
HEARTBEAT_SECONDS = 15.0


class LiveStreams:
    """The app's change feed and whether its streams must end (the server is stopping)."""

    def __init__(self, runtime: object) -> None:
        self.feed = ChangeFeed(runtime)
        self._ended = threading.Event()
        self._stopping: list[Callable[[], bool]] = []

    def end(self) -> None:
        self._ended.set()

    def watch(self, stopping: Callable[[], bool]) -> None:
        self._stopping.append(stopping)

    @property
    def ended(self) -> bool:
        if not self._ended.is_set() and any(stopping() for stopping in self._stopping):
            self._ended.set()
        return self._ended.is_set()


_create_lock = threading.Lock()


def live_streams(app: FastAPI) -> LiveStreams:
    """The app's `LiveStreams`, made on first use (one per app, whatever the event loop)."""
    with _create_lock:
        streams = getattr(app.state, "live_streams", None)
        if streams is None:
            streams = LiveStreams(app.state.runtime)
            app.state.live_streams = streams
        return streams


def end_streams(app: FastAPI) -> None:
    """End every open ``/ui/events`` stream of `app` (and refuse to keep new ones open)."""
    live_streams(app).end()


def end_streams_when(app: FastAPI, stopping: Callable[[], bool]) -> None:
    """End the streams once `stopping()` says so (e.g. ``lambda: server.should_exit``)."""
    live_streams(app).watch(stopping)


def changed_event(position: int, keys: frozenset[str]) -> str:
    data = json.dumps({"position": position, "keys": sorted(keys)}, separators=(",", ":"))
    return f"event: changed\ndata: {data}\n\n"


@router.get("/ui/events")
async def events(request: Request, user: WebUserDep) -> StreamingResponse:
    streams = live_streams(request.app)
    feed = streams.feed

    async def stream() -> AsyncIterator[str]:
        last = await asyncio.to_thread(feed.position)
        yield f"retry: 2000\nevent: hello\ndata: {last}\n\n"
        pending: set[str] = set()
        sent_at = float("-inf")
        quiet = 0.0
        while not streams.ended and not await request.is_disconnected():
            await asyncio.sleep(POLL_SECONDS)
            if streams.ended:
                break
            position, keys = await asyncio.to_thread(feed.changes, last)
            if position != last:
                last = position
                pending |= for_user(keys, user.id)
            if pending and time.monotonic() - sent_at >= COALESCE_SECONDS:
                yield changed_event(last, frozenset(pending))
                pending.clear()
                sent_at = time.monotonic()
                quiet = 0.0
            else:
                quiet += POLL_SECONDS
                if quiet >= HEARTBEAT_SECONDS:
                    quiet = 0.0
                    yield ": keep-alive\n\n"

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/ui/notifications/count")
def notification_count(user: WebUserDep) -> HTMLResponse:
    """The unread-notifications badge in the top bar (reloaded on every change)."""
    count = unread_count(user.runtime.views, user.id)
    if not count:
        return HTMLResponse("")
    label = user._("unread notifications")
    return HTMLResponse(
        f'<a href="/tasks#notifications" class="badge" title="{count} {label}">{count}</a>'
    )


@router.get("/ui/session")
def session_info(user: WebUserDep) -> JSONResponse:
    """Who is logged in, and the CSRF token for scripted requests (same-origin only)."""
    return JSONResponse(
        {
            "user_id": user.id,
            "name": user.name,
            "role": user.role,
            "locale": user.locale,
            "timezone": user.timezone,
            "csrf": user.csrf,
        },
        headers={"Cache-Control": "no-store"},
    )
