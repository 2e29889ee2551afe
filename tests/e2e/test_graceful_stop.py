"""Stopping `threadline serve` and `threadline worker` with a signal: quickly, in order, exit 0.

uvicorn captures SIGTERM and SIGINT while it serves and raises them again once it has
stopped; with Python's default handler in place that second SIGTERM killed the server
before its `runtime.close()` (exit status -15 on every stop), so the trigger runner,
channel hub and views child were never stopped in order and SQLite was never
checkpointed. These tests run the real console script, as an operator (or Docker,
Kubernetes, systemd) would, with logged-in browsers holding the live-update streams
open, and look at what a clean stop leaves: exit status 0 within 5 s, the runtime's
"closed in order" line, and no write-ahead log left beside any database file.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.services.server_process import ServerProcess, threadline_env, threadline_executable
from tests.waiting import wait_for
from threadline.services.shutdown import StopRequested, StopSignals

STOP_WITHIN = 5.0
PASSWORD = "correct-horse-battery"
OPERATOR = "olga@example.com"
BROWSERS = 3
RAW_STREAMS = 3


def create_operator(database_url: str, workdir: Path) -> None:
    """`threadline users create` before the server starts (the way an operator sets one up)."""
    workdir.mkdir(parents=True, exist_ok=True)
    command = ["users", "create", "--email", OPERATOR, "--role", "operator"]
    subprocess.run(
        [threadline_executable(), *command, "--password", PASSWORD, "--name", "Olga"],
        cwd=workdir,
        env=threadline_env(database_url),
        check=True,
        capture_output=True,
        timeout=60,
    )


def logged_in_cookies(base_url: str) -> httpx.Cookies:
    """A web session for the operator, through the login form."""
    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token, page.text
        response = client.post(
            "/login",
            data={"email": OPERATOR, "password": PASSWORD, "csrf_token": token.group(1)},
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text
        return client.cookies


class EventStream(threading.Thread):
    """One `/ui/events` stream read in a thread until the server ends it (bounded)."""

    def __init__(self, base_url: str, cookies: httpx.Cookies) -> None:
        super().__init__(daemon=True)
        self.base_url = base_url
        self.cookies = cookies
        self.opened = threading.Event()
        self.ended = threading.Event()

    def run(self) -> None:
        try:
            with (
                httpx.Client(base_url=self.base_url, cookies=self.cookies, timeout=30.0) as client,
                client.stream("GET", "/ui/events") as response,
            ):
                assert response.status_code == 200
                for line in response.iter_lines():
                    if line.startswith("event: hello"):
                        self.opened.set()
        except httpx.HTTPError:
            pass  # the server went away: that is the end of the stream too
        finally:
            self.ended.set()


def open_streams(process_log: Path) -> int:
    """How many `/ui/events` requests the server has answered (its access log says)."""
    return process_log.read_text(errors="replace").count("GET /ui/events")


def leftover_wal(directory: Path) -> dict[str, int]:
    """The write-ahead logs a stop left behind that still hold something (name → bytes)."""
    return {
        path.name: path.stat().st_size
        for path in directory.glob("*-wal")
        if path.exists() and path.stat().st_size > 0
    }


def wait_for_exit(process: Any, timeout: float) -> tuple[int | None, float]:
    started = time.monotonic()
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        code = None
    return code, time.monotonic() - started


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    database_url = f"sqlite:///{tmp_path}/var/threadline.db"
    create_operator(database_url, tmp_path / "server")
    process = ServerProcess(database_url, tmp_path / "server")
    try:
        yield process.start()
    finally:
        process.stop()


def ingest_a_few(server: ServerProcess, count: int = 5) -> None:
    with server.client() as client:
        for i in range(count):
            response = client.post(
                "/api/inbound",
                json={
                    "channel": "api",
                    "external_id": f"stop-{i}",
                    "from": {"name": f"Client {i}", "email": f"client{i}@example.com"},
                    "text": f"Message {i} before the stop",
                },
            )
            assert response.status_code == 201, response.text


def assert_closed_in_order(server: ServerProcess, code: int | None, took: float) -> None:
    log = server.log_tail(200)
    assert code == 0, f"exit status {code} after {took:.1f}s\n{log}"
    assert took < STOP_WITHIN, f"took {took:.1f}s to stop\n{log}"
    assert (
        "runtime closed in order: trigger runner, channel hub, views process, chain sealer stopped"
        in log
    ), log
    assert "SQLite checkpointed: log, views, state" in log, log
    assert "the views process exited" not in log, log
    assert leftover_wal(server.workdir.parent / "var") == {}, log


@pytest.mark.slow
def test_sigterm_with_browsers_connected_stops_within_5s_in_order_and_exits_0(
    server: ServerProcess,
    browser: Any,
) -> None:
    ingest_a_few(server)
    assert server.log_path is not None
    contexts = []
    for _ in range(BROWSERS):
        context = browser.new_context()
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.goto(f"{server.base_url}/login")
        page.fill('input[name="email"]', OPERATOR)
        page.fill('input[name="password"]', PASSWORD)
        page.click('#login-form button[type="submit"]')
        page.wait_for_url(f"{server.base_url}/inbox")
        contexts.append(context)
    cookies = logged_in_cookies(server.base_url)
    streams = [EventStream(server.base_url, cookies) for _ in range(RAW_STREAMS)]
    for stream in streams:
        stream.start()
    for stream in streams:
        assert stream.opened.wait(15), "a /ui/events stream never said hello"
    wait_for(
        lambda: open_streams(server.log_path) >= BROWSERS + RAW_STREAMS,  # type: ignore[arg-type]
        "every browser's live-update stream to be open",
        timeout=30,
    )
    try:
        process = server._require_process()
        process.send_signal(signal.SIGTERM)
        code, took = wait_for_exit(process, timeout=30)
        assert_closed_in_order(server, code, took)
        for stream in streams:
            assert stream.ended.wait(5), "a /ui/events stream outlived the server"
    finally:
        for context in contexts:
            context.close()


def test_a_signal_to_the_whole_process_group_stops_the_views_child_through_its_parent(
    server: ServerProcess,
) -> None:
    """systemd, `timeout` and a terminal's Ctrl-C signal every process of the group at once.

    The views child used to die of that signal mid-page while the server was still
    shutting down, and its supervisor took it for a crash and started it again.
    """
    ingest_a_few(server)
    process = server._require_process()
    os.killpg(process.pid, signal.SIGTERM)
    code, took = wait_for_exit(process, timeout=30)
    assert_closed_in_order(server, code, took)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_a_worker_stops_on_a_signal_closes_its_runtime_and_exits_0(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    database_url = f"sqlite:///{tmp_path}/var/threadline.db"
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [threadline_executable(), "worker", "delivery"],
            cwd=tmp_path,
            env=threadline_env(database_url),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(
            lambda: "worker running" in log_path.read_text(errors="replace"),
            "the worker to start",
            timeout=60,
        )
        process.send_signal(stop_signal)
        code, took = wait_for_exit(process, timeout=30)
        text = log_path.read_text(errors="replace")
        assert code == 0, f"exit status {code}\n{text}"
        assert took < STOP_WITHIN, f"took {took:.1f}s\n{text}"
        assert "runtime closed in order: channel hub stopped" in text, text
        assert "delivery worker stopped" in text, text
        assert leftover_wal(tmp_path / "var") == {}, text
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def stop_signals() -> Iterator[StopSignals]:
    """`StopSignals` installed in this (main) thread; pytest's own handlers come back after."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield StopSignals().install()
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def test_a_signal_while_starting_up_unwinds_through_finally_past_except_exception(
    stop_signals: StopSignals,
) -> None:
    """Catching up a large log can take minutes: a stop then must not wait for it to end,
    and an `except Exception` on the way (the one reporting a store that cannot be opened)
    must not swallow it."""
    closed = []
    with pytest.raises(StopRequested):
        try:
            try:
                signal.raise_signal(signal.SIGTERM)
                pytest.fail("the signal did not interrupt the start-up")
            except Exception:
                pytest.fail("a stop request was taken for an error")
        finally:
            closed.append("runtime")
    assert closed == ["runtime"]
    assert stop_signals.received == signal.SIGTERM


def test_a_signal_raised_again_after_the_server_stopped_is_only_recorded(
    stop_signals: StopSignals,
) -> None:
    """What uvicorn does on its way out: restore the handler it found, raise the signal again."""
    with stop_signals.watched():
        signal.raise_signal(signal.SIGTERM)
    assert stop_signals.stopped.is_set()
    stop_signals.closing()
    signal.raise_signal(signal.SIGINT)  # an impatient second Ctrl-C does not break the close
    assert stop_signals.received == signal.SIGTERM
