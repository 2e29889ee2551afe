"""The documented multi-process mode, started and broken the way an operator would.

Real processes on a PostgreSQL database of their own: `threadline migrate`, the API
(`serve --no-projections`), `worker projections`, `worker channels` and
`worker triggers`, all started at the same moment (they used to race on table
creation). Messages go in through the API with the default rules seeded; the
projections worker and then the triggers worker are killed with SIGKILL, and the
API's `/healthz` must say `degraded` (and why) while either is down, and writes
must say `Threadline-Views: behind` instead of waiting out the read-your-writes
timeout each. After both came back, every message has its rules exactly once,
and no process ever held more PostgreSQL connections than its role's budget
(`pg_stat_activity`, by the `application_name` each role sets).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from cryptography.fernet import Fernet

from tests.conftest import POSTGRES_URL, need_postgres
from tests.services.server_process import (
    ADMIN_TOKEN,
    free_port,
    threadline_env,
    threadline_executable,
)
from tests.waiting import wait_for
from threadline.domain.commands.application import Threadline
from threadline.domain.model.rule import rule_id_for
from threadline.services.store import application_name, library_env, pool_budget

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROLES = ("api", "projections", "channels", "triggers")
LAG_SECONDS = 1.0


class RoleProcess:
    """One `threadline` command as a child process with its own log; kill -9 and start again."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.log_path = workdir / f"{name}-0.log"

    def start(self) -> RoleProcess:
        self.starts += 1
        self.log_path = self.workdir / f"{self.name}-{self.starts}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [threadline_executable(), *self.args],
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_line(self, text: str, timeout: float = 60.0) -> None:
        def seen() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited early:\n{self.log()[-3000:]}")
            return text in self.log()

        wait_for(seen, f"{self.name} to print {text!r}", timeout)

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


class ConnectionWatch:
    """Samples `pg_stat_activity` of one database in the background, per client process.

    Each backend's client port is matched to the process holding that socket
    (`/proc/net/tcp*` and `/proc/<pid>/fd`), so a killed process's connections still
    closing cannot be counted against its restarted successor. `most` keeps, per
    process, its role, the connection names seen and the most connections at once.
    """

    def __init__(self, database: str, roles_by_pid: Callable[[], dict[int, str]]) -> None:
        self.database = database
        self.roles_by_pid = roles_by_pid
        self.most: dict[int, tuple[str, set[str], int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            while not self._stop.wait(0.1):
                rows = conn.execute(
                    "SELECT application_name, client_port FROM pg_stat_activity"
                    " WHERE datname = %s AND client_port IS NOT NULL",
                    [self.database],
                ).fetchall()
                roles = self.roles_by_pid()
                owners = _socket_owners(roles)
                counts: Counter[int] = Counter()
                names: dict[int, set[str]] = defaultdict(set)
                for name, port in rows:
                    pid = owners.get(port)
                    if pid is not None:
                        counts[pid] += 1
                        names[pid].add(name)
                for pid, count in counts.items():
                    _, seen, most = self.most.get(pid, (roles[pid], set(), 0))
                    self.most[pid] = (roles[pid], seen | names[pid], max(most, count))

    def __enter__(self) -> ConnectionWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _socket_owners(roles: dict[int, str]) -> dict[int, int]:
    """Local TCP port → the pid (among `roles`) whose socket it is."""
    inodes: dict[int, int] = {}
    for pid in roles:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes[int(target[8:-1])] = pid
        except OSError:  # the process is gone (killed a moment ago)
            continue
    owners: dict[int, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                inode = int(fields[9])
                if inode in inodes:
                    owners[int(fields[1].rsplit(":", 1)[1], 16)] = inodes[inode]
    return owners


@pytest.fixture
def fresh_database() -> Iterator[tuple[str, str]]:
    """A database of the test's own, so `pg_stat_activity` counts only its processes."""
    need_postgres()
    name = f"tl_multi_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}", name
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _post(api: httpx.Client, n: int) -> httpx.Response:
    response = api.post(
        "/api/inbound",
        json={
            "channel": "api",
            "external_id": f"multi-{n}",
            "from": {"email": f"client{n}@example.com", "name": f"Client {n}"},
            "text": f"Hello, this is message {n}",
        },
    )
    assert response.status_code == 201, response.text
    return response


def _health(api: httpx.Client) -> dict[str, Any]:
    response = api.get("/healthz")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _caught_up(api: httpx.Client) -> dict[str, Any] | None:
    health = _health(api)
    done = health["views_lag"] == 0 and health["triggers_lag"] == 0
    return health if done and health["status"] == "ok" else None


def _firings(url: str) -> tuple[dict[str, Counter[str]], list[str]]:
    """Per rule id: how often it fired (or set a timer) per conversation; and every message's
    conversation, read from the log itself."""
    app = Threadline(env={**library_env(url), "CREATE_TABLE": "no"})
    per_rule: dict[str, Counter[str]] = defaultdict(Counter)
    conversations: list[str] = []
    try:
        for notification in app.recorder.select_notifications(start=1, limit=1_000_000):
            event = app.mapper.to_domain_event(notification)
            kind = type(event).__qualname__
            if kind in ("RuleFiring.RuleFired", "Timer.TimerScheduled"):
                cause = event.cause
                per_rule[str(event.rule_id)][str(cause.get("conversation_id"))] += 1
            elif kind.endswith("MessageReceived"):
                conversations.append(str(event.conversation_id))
    finally:
        app.close()
    return per_rule, conversations


def test_the_documented_roles_start_together_survive_kills_and_stay_in_budget(
    fresh_database: tuple[str, str], tmp_path: Path
) -> None:
    url, database = fresh_database
    env = threadline_env(
        url,
        THREADLINE_SECRET_KEY=Fernet.generate_key().decode(),
        THREADLINE_PUBLIC_URL="https://threadline.example.com",
        THREADLINE_HEALTH_VIEWS_LAG_SECONDS=str(LAG_SECONDS),
        THREADLINE_HEALTH_TRIGGERS_LAG_SECONDS=str(LAG_SECONDS),
        THREADLINE_CHANNEL_POLL_INTERVAL="1",
    )
    port = free_port()
    api_env = {**env, "THREADLINE_CHANNELS": "0", "THREADLINE_TRIGGERS": "0"}
    processes = {
        "migrate": RoleProcess("migrate", ["migrate"], env, tmp_path),
        "api": RoleProcess(
            "api",
            ["serve", "--no-projections", "--host", "127.0.0.1", "--port", str(port)],
            api_env,
            tmp_path,
        ),
        **{
            role: RoleProcess(role, ["worker", role], env, tmp_path)
            for role in ("projections", "channels", "triggers")
        },
    }
    api = httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=30,
    )
    try:

        def running() -> dict[int, str]:
            return {
                p.process.pid: role
                for role, p in processes.items()
                if p.process is not None and p.process.poll() is None
            }

        with ConnectionWatch(database, running) as watch:
            # Item 12: every role at the same moment on an empty database, migrate among them.
            for process in processes.values():
                process.start()
            assert processes["migrate"].process is not None
            assert processes["migrate"].process.wait(timeout=60) == 0, processes["migrate"].log()
            for role in ("projections", "channels", "triggers"):
                processes[role].wait_for_line(f"{role} worker running")
            wait_for(lambda: _reachable(api), "the API to answer /healthz", 60)
            seeded = subprocess.run(
                [threadline_executable(), "rules", "defaults"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                timeout=120,
                check=False,
            )
            assert seeded.returncode == 0, seeded.stderr.decode()

            sent = 0
            for _ in range(10):
                response = _post(api, sent)
                sent += 1
                assert "threadline-views" not in response.headers  # the views keep up
            wait_for(lambda: _caught_up(api), "views and triggers to catch up", 60)

            # Item 14: the projections worker dies; the API says so and stops waiting long.
            processes["projections"].kill9()
            started = time.monotonic()
            behind = []
            for _ in range(6):
                behind.append(_post(api, sent))
                sent += 1
            elapsed = time.monotonic() - started
            assert all(r.headers.get("threadline-views") == "behind" for r in behind)
            # one full wait (2 s), then short ones: well under six full waits
            assert elapsed < 0.75 * 6 * 2.0, elapsed
            health = wait_for(
                lambda: "views_behind" in (h := _health(api))["problems"] and h,
                "the API's /healthz to say the views are behind while they are down",
                30,
            )
            assert health["status"] == "degraded"
            assert health["views_lag"] >= 6 and health["views_lag_seconds"] > LAG_SECONDS
            processes["projections"].start().wait_for_line("projections worker running")
            wait_for(lambda: _caught_up(api), "the restarted views to catch up", 60)
            # writes are visible in time again (within a few: the worker polls the log)
            for _ in range(5):
                visible = "threadline-views" not in _post(api, sent).headers
                sent += 1
                if visible:
                    break
            assert visible

            # ... and the triggers worker dies: its lag shows in the API's health.
            processes["triggers"].kill9()
            for _ in range(6):
                _post(api, sent)
                sent += 1
            health = wait_for(
                lambda: "triggers_behind" in (h := _health(api))["problems"] and h,
                "the API's /healthz to say the triggers are behind while they are down",
                30,
            )
            assert health["status"] == "degraded" and health["problems"] == ["triggers_behind"]
            assert health["triggers_lag"] > 0 and health["views_lag"] == 0
            processes["triggers"].start().wait_for_line("triggers worker running")
            wait_for(lambda: _caught_up(api), "the restarted triggers to catch up", 60)
        most = dict(watch.most)
        print("PostgreSQL connections at most, per process:", most)
    finally:
        api.close()
        for process in processes.values():
            process.stop()

    # Every message got its rules exactly once: the new-inquiry task and the no-reply timer.
    per_rule, conversations = _firings(url)
    assert len(conversations) == sent == len(set(conversations))
    for key in ("answer-new-inquiry", "no-reply-escalation"):
        fired = per_rule[str(rule_id_for(key))]
        assert sorted(fired) == sorted(conversations), (key, fired)
        assert set(fired.values()) == {1}, (key, fired)

    # Item 13: no process above its role's budget (two pools of size + overflow, + 1), and
    # each one's connections named after its role.
    assert {role for role, _, _ in most.values()} >= {"migrate", *ROLES}, most
    for role, names, count in most.values():
        assert names == {application_name(role)}, (role, names)
        assert count <= pool_budget(role).per_process, (role, count)


def _reachable(api: httpx.Client) -> bool:
    try:
        return api.get("/healthz").status_code == 200
    except httpx.HTTPError:
        return False
