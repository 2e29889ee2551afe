"""`Server-Timing: app;dur=<ms>` on every response: how long the server spent on a request.

Browsers show it in their developer tools, and `bench/ui.py` reads it to measure
page rendering apart from the network and the client.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.datastructures import MutableHeaders

Scope = dict[str, Any]


class ServerTiming:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                elapsed = (time.perf_counter() - started) * 1000
                MutableHeaders(scope=message).append("server-timing", f"app;dur={elapsed:.2f}")
            await send(message)

        await self.app(scope, receive, timed_send)
