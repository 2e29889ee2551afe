"""Open live streams end when the server stops, so a stop does not wait for the browsers.

Before, `/ui/events` looped until the browser went away and uvicorn ran without a
graceful-shutdown timeout: a SIGTERM with a page open waited for ever (60 s and
more until an orchestrator's SIGKILL). The server here is the one `threadline
serve` runs (`cli.web_server`), told to exit the way uvicorn's signal handler
does (`should_exit`), with two logged-in streams open.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_runtime
from tests.waiting import wait_for
from tests.web.helpers import create_user, login
from threadline.services.cli import GRACEFUL_SHUTDOWN_SECONDS, web_server
from threadline.services.runtime import Runtime

PROMPTLY = 2.0  # seconds: the streams poll four times a second
STREAMS = 2


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(f"sqlite:///{tmp_path}/threadline.db")
    try:
        yield rt
    finally:
        rt.close()


class Stream(threading.Thread):
    """One open `/ui/events` stream, read line by line; notes when it said hello and when it ended."""

    def __init__(self, client: httpx.Client) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.hello = threading.Event()
        self.ended_at: float | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.client.stream("GET", "/ui/events") as response:
                assert response.status_code == 200
                for line in response.iter_lines():
                    if line == "event: hello":
                        self.hello.set()
        except httpx.HTTPError as error:  # a connection cut off counts as ended, but say so
            self.error = error
        self.ended_at = time.monotonic()


def test_open_streams_end_promptly_when_the_server_is_told_to_exit(runtime: Runtime) -> None:
    create_user(runtime, "olga@example.com", "operator", name="Olga")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = web_server(runtime, runtime.settings, "127.0.0.1", port)
    assert server.config.timeout_graceful_shutdown == GRACEFUL_SHUTDOWN_SECONDS
    serving = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    serving.start()
    clients: list[httpx.Client] = []
    try:
        wait_for(lambda: server.started, "uvicorn to start", timeout=15)
        streams = []
        for _ in range(STREAMS):
            client = httpx.Client(
                base_url=f"http://127.0.0.1:{port}",
                timeout=httpx.Timeout(5.0, read=None),  # a live stream is quiet for long
                trust_env=False,
            )
            clients.append(client)
            login(client, "olga@example.com")  # type: ignore[arg-type]
            stream = Stream(client)
            stream.start()
            streams.append(stream)
        for stream in streams:
            assert stream.hello.wait(10), "the stream never said hello"

        told = time.monotonic()
        server.should_exit = True  # what uvicorn's SIGTERM/SIGINT handler does
        for stream in streams:
            stream.join(PROMPTLY + 1)
            assert stream.ended_at is not None, "the stream is still open after the stop"
            assert stream.ended_at - told < PROMPTLY
            assert stream.error is None, f"the stream was cut, not ended: {stream.error!r}"
        serving.join(PROMPTLY + 1)
        assert not serving.is_alive(), "uvicorn is still waiting for requests"
        assert time.monotonic() - told < PROMPTLY + 1
    finally:
        server.should_exit = True
        serving.join(GRACEFUL_SHUTDOWN_SECONDS + 5)
        for client in clients:
            client.close()
        sock.close()
