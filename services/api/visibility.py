"""`Threadline-Views: behind` on an answer whose write the views did not show in time.

A client (or a provider's webhook) then knows that a read right after may not
see the change yet, instead of being told nothing; see
`threadline.services.visibility` for how a request gets marked.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import MutableHeaders

from threadline.services.visibility import BEHIND, HEADER, begin_request, end_request

Scope = dict[str, Any]


class ViewsVisibility:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        mark, token = begin_request()

        async def marked_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and mark.behind:
                MutableHeaders(scope=message).append(HEADER, BEHIND)
            await send(message)

        try:
            await self.app(scope, receive, marked_send)
        finally:
            end_request(token)
