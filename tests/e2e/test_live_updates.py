"""An open inbox tab under a burst: a few coalesced reloads of only what changed, and all of it shown.

Before, every event made every inbox tab fetch its four live fragments (the list,
the thread, the client card, the notification badge), so five tabs at 40 messages
a second doubled the server's CPU. Now the stream sends at most one update per
`COALESCE_SECONDS` naming what changed, and the page reloads only the fragments
showing it, never two requests for one fragment at a time.

The app runs under uvicorn with a middleware that counts each fragment's requests
and how many were in flight at once; Chromium holds the inbox open on one client's
conversation while other clients write, then while that client writes.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_runtime
from tests.e2e.browser import ADMIN, ADMIN_TOKEN, bind_free_port, screenshot, serve_asgi
from tests.waiting import wait_for
from tests.web.helpers import PASSWORD, create_user
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime
from threadline.services.web.routes_events import COALESCE_SECONDS

pytestmark = pytest.mark.slow

OTHERS = 40  # clients who write while the tab shows someone else (the list holds 50)
FOLLOW_UPS = 5  # then the open conversation's client writes this many
FRAGMENTS = {
    "list": re.compile(r"^/inbox/list$"),
    "thread": re.compile(r"^/inbox/[^/]+/thread$"),
    "card": re.compile(r"^/contacts/[^/]+/card$"),
    "badge": re.compile(r"^/ui/notifications/count$"),
}


def fragment_of(path: str) -> str | None:
    return next((name for name, pattern in FRAGMENTS.items() if pattern.match(path)), None)


@dataclass
class FragmentCounter:
    """ASGI middleware: requests per live fragment, and the most in flight at once for each."""

    app: Any
    started: Counter[str] = field(default_factory=Counter)
    in_flight: Counter[str] = field(default_factory=Counter)
    most_in_flight: Counter[str] = field(default_factory=Counter)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        name = fragment_of(scope["path"]) if scope["type"] == "http" else None
        if name is None:
            await self.app(scope, receive, send)
            return
        self.started[name] += 1
        self.in_flight[name] += 1
        self.most_in_flight[name] = max(self.most_in_flight[name], self.in_flight[name])
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight[name] -= 1

    def since(self, before: Counter[str]) -> dict[str, int]:
        return {name: self.started[name] - before[name] for name in FRAGMENTS}


@dataclass
class Served:
    url: str
    runtime: Runtime
    counter: FragmentCounter
    client: httpx.Client


@contextmanager
def served(tmp_path: Path) -> Iterator[Served]:
    sock = bind_free_port()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    runtime = make_runtime(
        f"sqlite:///{tmp_path}/threadline.db",
        admin_token=ADMIN_TOKEN,
        attachments_dir=str(tmp_path / "attachments"),
        public_url=url,
    )
    counter = FragmentCounter(create_app(runtime))
    try:
        with (
            serve_asgi(counter, sock) as base,
            httpx.Client(base_url=base, headers=ADMIN, timeout=15, trust_env=False) as client,
        ):
            yield Served(base, runtime, counter, client)
    finally:
        runtime.close()


def write(server: Served, number: int, telegram_id: str, name: str, text: str) -> str:
    response = server.client.post(
        "/api/inbound",
        json={
            "channel": "telegram",
            "external_id": f"burst-{number}",
            "from": {"name": name, "telegram_id": telegram_id},
            "text": text,
        },
    )
    assert response.status_code == 201, response.text
    conversation_id: str = response.json()["conversation_id"]
    return conversation_id


def settled(page: Any, server: Served) -> None:
    """Wait until the page's stream has told it about everything in the log so far and no
    fragment is loading: a change from before the count starts must not be counted."""
    head = server.runtime.app.recorder.max_notification_id() or 0

    def caught_up() -> bool:
        told = page.evaluate("document.documentElement.dataset.livePosition || '0'")
        loading = page.evaluate("document.querySelector('.htmx-request') !== null")
        return int(told) >= head and not loading and not any(server.counter.in_flight.values())

    wait_for(caught_up, "the page to catch up with the log", 15)


def test_a_burst_costs_an_open_tab_a_few_reloads_of_what_changed(tmp_path: Path, page: Any) -> None:
    with served(tmp_path) as server:
        conversation_id = write(server, 0, "5550000", "Anna Petrova", "First question")
        create_user(server.runtime, "olga@example.com", "operator", name="Olga")
        page.goto(f"{server.url}/login")
        page.fill('input[name="email"]', "olga@example.com")
        page.fill('input[name="password"]', PASSWORD)
        page.click('#login-form button[type="submit"]')
        page.wait_for_url(f"{server.url}/inbox")
        page.goto(f"{server.url}/inbox/{conversation_id}")
        page.locator("#client-card #contact-card").wait_for()  # loaded once, on "load"
        page.locator("#notification-count").wait_for(state="attached")
        wait_for(lambda: server.counter.started["badge"] >= 1, "the badge's first load", 15)
        settled(page, server)  # what happened before (the account, the login) is behind us
        page.evaluate("window.__notReloaded = true")
        before = Counter(server.counter.started)

        # Other clients write: only the list may reload, and only a few times.
        started = time.monotonic()
        for number in range(1, OTHERS + 1):
            write(server, number, f"777{number:04d}", f"Client {number:02d}", f"Burst {number}")
        burst_seconds = time.monotonic() - started
        rows = page.locator("#inbox-list .inbox-row")
        wait_for(lambda: rows.count() == OTHERS + 1, "every conversation in the list", 30)
        page.locator("#inbox-list .inbox-row", has_text="Client 01").wait_for()
        fetched = server.counter.since(before)
        assert fetched["thread"] == 0, "the thread reloaded for other clients' messages"
        assert fetched["card"] == 0, "the card reloaded for other clients' messages"
        assert fetched["badge"] == 0, "the badge reloaded without a notification"
        # one reload per coalescing interval of the burst, and one for the last window
        assert 1 <= fetched["list"] <= burst_seconds / COALESCE_SECONDS + 3, (
            fetched,
            burst_seconds,
        )
        assert sum(fetched.values()) < OTHERS  # before: 4 per change, up to 4 * OTHERS

        # The open conversation's client writes: the thread and the card follow, coalesced.
        before = Counter(server.counter.started)
        for number in range(FOLLOW_UPS):
            write(server, 100 + number, "5550000", "Anna Petrova", f"Follow-up {number}")
        thread = page.locator("#thread")
        for number in range(FOLLOW_UPS):
            thread.get_by_text(f"Follow-up {number}").wait_for()
        fetched = server.counter.since(before)
        assert fetched["thread"] >= 1 and fetched["card"] >= 1
        assert sum(fetched.values()) < 4 * FOLLOW_UPS
        assert page.evaluate("window.__notReloaded") is True  # live swaps, no page reload
        assert max(server.counter.most_in_flight.values()) == 1, server.counter.most_in_flight
        screenshot(page, "live-burst")
