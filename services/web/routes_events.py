"""Live updates: one Server-Sent Events stream per open page.

The stream says ``changed`` whenever the views move past a new position of the
log (a message arrived, a status changed, a task came due), and pages ask HTMX
to reload the fragments that may have changed (`hx-trigger="sse:changed"`).
One cheap signal for every page keeps the server simple: the fragments are
rendered from the views like any other request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

from threadline.services.web.deps import WebUserDep

router = APIRouter(include_in_schema=False)

POLL_SECONDS = 0.25
HEARTBEAT_SECONDS = 15.0


@router.get("/ui/events")
async def events(request: Request, user: WebUserDep) -> StreamingResponse:
    runtime = user.runtime

    async def stream() -> AsyncIterator[str]:
        last = await asyncio.to_thread(runtime.views_position)
        yield f"retry: 2000\nevent: hello\ndata: {last}\n\n"
        quiet = 0.0
        while not await request.is_disconnected():
            await asyncio.sleep(POLL_SECONDS)
            position = await asyncio.to_thread(runtime.views_position)
            if position != last:
                last = position
                quiet = 0.0
                yield f"event: changed\ndata: {position}\n\n"
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
    row = user.runtime.views.query_one(
        "SELECT COUNT(*) AS n FROM notifications WHERE user_id = ? AND read = 0", [user.id]
    )
    count = int(row["n"]) if row else 0
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
