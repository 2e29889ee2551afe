"""Security headers on every response: a Content-Security-Policy, nosniff, no Referer.

The policy allows only this app's own scripts, styles, images and frames: no
inline script, no `eval` (so no `hx-on` attributes or trigger filters; app.js
does that work), and no image from elsewhere, so even HTML that slipped past the
sanitiser cannot load a tracking pixel or run a script. A message whose remote
images the operator asked for is served by its own route with its own, looser
policy (`routes_inbox.REMOTE_CONTENT_POLICY`); a response that sets a policy keeps
it and gets only `nosniff` (the public form pages, whose posts must carry their
Origin, which `Referrer-Policy: no-referrer` would turn into `null`). The interactive API docs (`/docs`, `/redoc`)
load Swagger UI from a CDN with an inline script, so they get no policy.

A pure ASGI middleware rather than Starlette's `BaseHTTPMiddleware`, which
would buffer the event stream (`/ui/events`).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
WITHOUT_POLICY = ("/docs", "/redoc")
HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)


class SecurityHeaders:
    def __init__(self, app: ASGIApp, policy: str = POLICY) -> None:
        self.app = app
        self.policy = policy.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        with_policy = not path.startswith(WITHOUT_POLICY)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                if b"content-security-policy" in present:
                    # The route set its own policy and chose its referrer behaviour with it:
                    # a public form page must send its Origin when it posts (no-referrer
                    # would make that `null` and the form's origin check refuse it).
                    wanted = [HEADERS[0]]
                else:
                    wanted = [*HEADERS]
                    if with_policy:
                        wanted.append((b"content-security-policy", self.policy))
                headers.extend((name, value) for name, value in wanted if name not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
