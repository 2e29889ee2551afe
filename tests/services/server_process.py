"""`threadline serve` as a real child process, for tests that need one.

The CLI and crash-recovery tests check what an operator actually runs: the
console script, its environment variables, a real socket and, above all, a
process that can be killed with SIGKILL. An in-process ASGI client can do none
of that, so these tests start the server the way a user would and talk to it
over HTTP with `httpx`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest

ADMIN_TOKEN = "tl-test-admin-token"
"""The bootstrap admin token every test server gets, so tests need no user accounts."""

START_TIMEOUT = 60.0
STOP_GRACE = 10.0


def threadline_executable() -> str:
    """The console script of the venv running the tests (not whatever is first on PATH)."""
    beside_python = Path(sys.executable).with_name("threadline")
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("threadline")
    if found is None:
        pytest.fail("the `threadline` console script is not installed (pip install -e .)")
    return found


def free_port() -> int:
    """A port nobody listens on right now; a fresh one per start avoids TIME_WAIT surprises."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def threadline_env(
    database_url: str, admin_token: str | None = ADMIN_TOKEN, **extra: str
) -> dict[str, str]:
    """The child's environment: the caller's, minus any THREADLINE_* that could leak in.

    A developer's shell may export THREADLINE_VIEWS_URL or a production
    THREADLINE_ADMIN_TOKEN; inheriting them would point the child at other data.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("THREADLINE_")}
    env["THREADLINE_DATABASE_URL"] = database_url
    if admin_token:
        env["THREADLINE_ADMIN_TOKEN"] = admin_token
    env.setdefault("COLUMNS", "200")  # rich must not wrap messages the tests look for
    env["PYTHONUNBUFFERED"] = "1"  # the log file must be current when a test reads its tail
    env.update(extra)
    return env


class ServerProcess:
    """One `threadline serve` on 127.0.0.1 and a free port; `start()` again after a stop or kill.

    Every start gets a new port and its own log file in `workdir`, so a
    restarted server's log never hides the crashed one's.
    """

    def __init__(
        self,
        database_url: str,
        workdir: Path,
        admin_token: str = ADMIN_TOKEN,
        extra_env: dict[str, str] | None = None,
        name: str = "server",
    ) -> None:
        self.database_url = database_url
        self.workdir = workdir
        self.admin_token = admin_token
        self.extra_env = dict(extra_env or {})
        self.name = name
        self.port: int | None = None
        self.log_path: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._starts = 0
        self._groups: list[int] = []

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> ServerProcess:
        """Launch the server and return once `/healthz` answers 200 (or fail with its log)."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running at {self.base_url}")
        self._starts += 1
        self.port = free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{self.name}-{self._starts}.log"
        command = [
            threadline_executable(),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                command,
                cwd=self.workdir,
                env=threadline_env(self.database_url, self.admin_token, **self.extra_env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C meant for pytest must not reach the server
            )
        self._groups.append(self._process.pid)
        try:
            self.wait_health(lambda _health: True, timeout=timeout, what="answer /healthz with 200")
        except BaseException:
            self.stop()  # a half-started server must not outlive the failed test
            raise
        return self

    def kill9(self) -> None:
        """SIGKILL: no shutdown hook, no flush, no closing of connections — a crash."""
        process = self._require_process()
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=STOP_GRACE)

    def stop(self, grace: float = STOP_GRACE) -> int | None:
        """SIGTERM for a clean shutdown; SIGKILL if it is not gone within `grace` seconds."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=grace)
        for group in self._groups:
            self._end_leftovers(group)
        return process.returncode

    @staticmethod
    def _end_leftovers(group: int) -> None:
        """SIGKILL what is left of the server's own process group (e.g. a views child).

        The server runs in a session of its own (`start_new_session`), so its
        group id is its pid and holds only processes this helper started; a
        straggler would otherwise outlive the test and hold the database.
        """
        with suppress(ProcessLookupError, PermissionError):  # already empty
            os.killpg(group, signal.SIGKILL)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        return self._require_process().pid

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- talking to it ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError(f"{self.name} has not been started")
        return f"http://127.0.0.1:{self.port}"

    def client(self, token: str | None = None, timeout: float = 10.0) -> httpx.Client:
        """An HTTP client for this server, authenticated as `token` (default: the admin token)."""
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token or self.admin_token}"},
            timeout=timeout,
        )

    def health(self) -> dict[str, Any]:
        """`GET /healthz` once; raises on a transport error or a non-200 answer."""
        response = httpx.get(f"{self.base_url}/healthz", timeout=5.0)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def wait_health(
        self,
        until: Callable[[dict[str, Any]], bool],
        timeout: float = START_TIMEOUT,
        what: str = "report the expected health",
    ) -> dict[str, Any]:
        """Poll `/healthz` until it answers 200 and `until(body)` holds; fail with the log tail.

        Bounded because a server that never comes up must fail the test with
        its own explanation, not hang the suite until pytest-timeout fires.
        """
        process = self._require_process()
        deadline = time.monotonic() + timeout
        last: str = "no answer yet"
        while True:
            code = process.poll()
            if code is not None:
                pytest.fail(
                    f"{self.name} exited with code {code} before it would {what}\n{self.log_tail()}"
                )
            try:
                body = self.health()
            except (httpx.HTTPError, ValueError) as error:
                last = f"{type(error).__name__}: {error}"
            else:
                if until(body):
                    return body
                last = f"healthz said {body}"
            if time.monotonic() >= deadline:
                pytest.fail(
                    f"{self.name} did not {what} within {timeout:.0f}s (last: {last})\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.1)

    def log_tail(self, lines: int = 60) -> str:
        """The end of the current log, for failure messages."""
        if self.log_path is None or not self.log_path.exists():
            return f"--- {self.name}: no log ---"
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return f"--- {self.log_path} (last {len(text)} lines) ---\n" + "\n".join(text)

    def _require_process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError(f"{self.name} has not been started")
        return self._process


@contextmanager
def server_pool(
    database_url: str, workdir: Path, extra_env: dict[str, str] | None = None
) -> Iterator[Callable[[], ServerProcess]]:
    """A factory of started servers on one database, every one of them stopped on exit.

    Tests use it from a fixture that depends on the database fixture, so the
    servers are gone before a PostgreSQL schema is dropped under them.
    """
    servers: list[ServerProcess] = []

    def start() -> ServerProcess:
        server = ServerProcess(
            database_url, workdir, name=f"server{len(servers) + 1}", extra_env=extra_env
        )
        servers.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in servers:
            server.stop()
