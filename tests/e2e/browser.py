"""Browser tests' fixtures: Debian's Chromium through Playwright, and the real app under uvicorn.

Playwright's own browser download cannot work here, so `browser` launches the
system Chromium (/usr/bin/chromium). Without it the tests skip, unless
THREADLINE_REQUIRE_SERVICES=1 (CI), where they fail.

`live_server` runs `create_app` over a fresh SQLite runtime with uvicorn in a
background thread on a free 127.0.0.1 port; it records every request it
answers (method, path, Origin, status), so a test can see what the browser
really sent, CORS preflights included. `serve_pages` is a second tiny server
(another origin) for pages that embed something from the first.

Use them in a test module with
``from tests.e2e.browser import browser, live_server, page  # noqa: F401``.
Screenshots go to `ARTIFACTS` (tests/e2e/artifacts/, not in git).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tests.conftest import REQUIRE_SERVICES, make_runtime
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-gpu",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
ADMIN_TOKEN = "admin-secret"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
START_TIMEOUT = 10.0
PAGE_TIMEOUT_MS = 15_000


def need_chromium() -> None:
    if CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK):
        return
    reason = f"{CHROMIUM} is missing (apt-get install chromium)"
    if REQUIRE_SERVICES:
        pytest.fail(f"Chromium is required (THREADLINE_REQUIRE_SERVICES=1): {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per test module; each test takes its own context (`page`).

    Per module, not per session: Playwright's sync API keeps an event loop running on the
    main thread while it is started, where `asyncio.run` refuses to start, and with the
    suite's files spread over workers any file may follow a browser module on its worker.
    """
    need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page in a fresh context (its own cookies and CORS preflight cache)."""
    context = browser.new_context()
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def bind_free_port() -> socket.socket:
    """A listening socket on 127.0.0.1; the port is known before the server starts."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    origin: str | None
    status: int


class RecordingApp:
    """ASGI middleware noting each HTTP request and the status it was answered with."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[SeenRequest] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}

        async def noting_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.seen.append(
                    SeenRequest(
                        scope["method"], scope["path"], headers.get("origin"), message["status"]
                    )
                )
            await send(message)

        await self.app(scope, receive, noting_send)


@contextmanager
def serve_asgi(app: Any, sock: socket.socket) -> Iterator[str]:
    """Run `app` with uvicorn on `sock` in a background thread; yields the base URL."""
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        server.should_exit = True
        thread.join(START_TIMEOUT)
        sock.close()
        raise RuntimeError("uvicorn did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT)
        sock.close()


@dataclass
class LiveServer:
    """The running app: its base URL, its runtime, an API client and what it answered."""

    url: str
    runtime: Runtime
    recorder: RecordingApp
    client: httpx.Client = field(repr=False)

    @property
    def seen(self) -> list[SeenRequest]:
        return list(self.recorder.seen)

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call the operator API as the bootstrap admin."""
        headers = {**ADMIN, **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)


@contextmanager
def running_app(tmp_path: Path, **overrides: Any) -> Iterator[LiveServer]:
    """A fresh SQLite runtime (settings overridable) served by uvicorn; closed afterwards."""
    sock = bind_free_port()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings: dict[str, Any] = {
        "admin_token": ADMIN_TOKEN,
        "attachments_dir": str(tmp_path / "attachments"),
        "public_url": url,
        **overrides,
    }
    runtime = make_runtime(f"sqlite:///{tmp_path}/threadline.db", **settings)
    recorder = RecordingApp(create_app(runtime))
    try:
        with (
            serve_asgi(recorder, sock) as base,
            httpx.Client(base_url=base, timeout=15, trust_env=False) as client,
        ):
            yield LiveServer(base, runtime, recorder, client)
    finally:
        runtime.close()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    with running_app(tmp_path) as server:
        yield server


@contextmanager
def serve_pages(pages: Mapping[str, str]) -> Iterator[str]:
    """A second origin: serves fixed HTML by path (query strings ignored); yields the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path.split("?", 1)[0])
            if body is None:
                self.send_error(404)
                return
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(START_TIMEOUT)
