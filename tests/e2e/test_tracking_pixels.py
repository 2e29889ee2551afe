"""A tracking pixel in Chromium: nothing reaches its server until the operator clicks "Load images".

The pixel's server is a second local HTTP server that records every request. The
page's `load` event waits for every frame, srcdoc frames included, so once
`goto` returns, any image the thread would load has been requested. The page
must also raise no Content-Security-Policy violation: the whole inbox runs
under the policy.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.e2e.browser import LiveServer, screenshot
from tests.e2e.test_inbox_live import log_in
from tests.waiting import wait_for
from tests.web.helpers import create_user
from threadline.domain.model.inbound import InboundMessage

pytestmark = pytest.mark.slow

GIF = bytes.fromhex(
    "47494638396101000100800000ffffff00000021f90401000000002c00000000010001000002024401003b"
)


@contextmanager
def pixel_server() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """Serves a 1x1 GIF at any path; yields its base URL and the requests' headers."""
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
            self.send_response(200)
            self.send_header("Content-Type", "image/gif")
            self.send_header("Content-Length", str(len(GIF)))
            self.end_headers()
            self.wfile.write(GIF)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_remote_images_load_only_after_the_click(live_server: LiveServer, page: Any) -> None:
    server = live_server
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text)
            if "Content Security Policy" in message.text or "Refused to" in message.text
            else None
        ),
    )
    create_user(server.runtime, "pixel-operator@example.com", "operator")
    with pixel_server() as (pixel_url, requests):
        committed = server.runtime.app.ingest(
            InboundMessage.create(
                channel="email",
                dedup_key="pixel-mail-1",
                identities=[("email", "newsletter@example.com")],
                sender_name="Newsletter",
                subject="Our offer",
                text="Our offer",
                html=f'<p>Our offer</p><img src="{pixel_url}/open.gif?m=1" alt="">',
            )
        )
        server.runtime.wait_for_views(committed.notification_id)
        conversation_id = committed.value.conversation_id

        log_in(server, page, "pixel-operator@example.com")
        page.goto(f"{server.url}/inbox/{conversation_id}")  # waits for `load`, frames included
        page.locator("iframe.message-html").wait_for()
        page.get_by_text("Remote images blocked").wait_for()
        assert requests == [], "the pixel was fetched before anyone asked for images"

        page.get_by_role("button", name="Load images").click()
        page.get_by_text("Remote images shown").wait_for()
        wait_for(lambda: requests, "the pixel to be fetched after the click")
        assert len(requests) == 1
        assert requests[0]["path"] == "/open.gif?m=1"
        assert "referer" not in requests[0]  # no-referrer: the sender does not learn our URL
        screenshot(page, "tracking-pixel-loaded")
    assert violations == []


def test_the_screens_run_under_the_policy_without_a_violation(
    live_server: LiveServer, page: Any
) -> None:
    """Every screen, with HTMX and the event stream working, and nothing refused."""
    server = live_server
    refused: list[str] = []
    page.on(
        "console",
        lambda message: refused.append(message.text) if "Refused to" in message.text else None,
    )
    create_user(server.runtime, "csp-admin@example.com", "admin")
    committed = server.runtime.app.ingest(
        InboundMessage.create(
            channel="email",
            dedup_key="csp-mail-1",
            identities=[("email", "client@example.com")],
            sender_name="Client",
            subject="Hello",
            text="Hello",
            html="<p>Hello <b>there</b></p>",
        )
    )
    server.runtime.wait_for_views(committed.notification_id)
    result = committed.value
    log_in(server, page, "csp-admin@example.com")
    for path in (
        f"/inbox/{result.conversation_id}",
        "/contacts",
        f"/contacts/{result.contact_id}",
        "/tasks",
        "/admin/rules",
        "/admin/templates",
        "/admin/campaigns",
        "/admin/forms",
        "/admin/inboxes",
    ):
        response = page.goto(f"{server.url}{path}")
        assert response is not None and response.status == 200, path
        assert "default-src 'self'" in response.headers["content-security-policy"]
    # HTMX works: the client card of the open conversation is loaded by an HTMX request.
    page.goto(f"{server.url}/inbox/{result.conversation_id}")
    page.locator("#client-card .card").first.wait_for()
    assert refused == []
