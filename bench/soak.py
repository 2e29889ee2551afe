"""Soak: does `threadline serve` keep its memory bounded under steady load with pages open?

Fills a fresh store with `--seed` messages (views the size of weeks of use), starts the
real server on it (`threadline serve`, the embedded SQLite default), measures the
resident memory (RSS) of each of its processes idle (the baseline), then for
`--minutes` ingests messages at a steady `--rate` through `POST /api/inbound` while
`--clients` logged-in sessions hold `/ui/events` open, reload the inbox when it
announces a change (at most once a second) and open another page every
`--browse-seconds` (an operator at work), then goes on `--idle-minutes` with no new
messages. Every `--sample-seconds` it reads each process's RSS from /proc. At the end it
fits a line through each process's samples after the warm-up and reports the slope in
MB per hour, then stops the server with SIGTERM and reports how long that took, the
exit status and any write-ahead log left behind.

stdout carries only JSON lines (`"bench": "soak"`); progress goes to stderr. Bounded:
every request has a timeout and every loop a deadline; the server listens on 127.0.0.1.

    .venv/bin/python bench/soak.py                       # 3 minutes at 20 msg/s, 5 clients
    .venv/bin/python bench/soak.py --minutes 60 --rate 40
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ADMIN_TOKEN = "soak-admin-token"
OPERATOR = "soak-operator@example.com"
PASSWORD = "soak-password-123"
USER_CREATE = ("users", "create", "--email", OPERATOR, "--role", "operator")
START_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0
PAGES = ("/inbox", "/contacts", "/tasks", "/inbox?view=all")
"""What an operator's tab shows in turn (`--browse-seconds`)."""
WARM_UP_FRACTION = 0.2
"""The first part of the loaded phase is left out of the slope: caches fill there by design."""


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def emit(**fields: Any) -> None:
    print(json.dumps({"bench": "soak", **fields}, ensure_ascii=False), flush=True)


def threadline_command() -> str:
    beside = Path(sys.executable).with_name("threadline")
    found = str(beside) if beside.exists() else shutil.which("threadline")
    if not found:
        raise SystemExit("the `threadline` console script is not installed (pip install -e .)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("THREADLINE_")}
    env.update(
        THREADLINE_DATABASE_URL=database_url,
        THREADLINE_ADMIN_TOKEN=ADMIN_TOKEN,
        PYTHONUNBUFFERED="1",
        COLUMNS="200",
    )
    return env


# -- memory of the server's processes ---------------------------------------------------------


def rss_mb(pid: int) -> float | None:
    """VmRSS of a process in MB (None once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmRSS:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else None


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command may hold spaces and parentheses: the parent pid follows the last ')'
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def role_of(pid: int, server_pid: int) -> str | None:
    if pid == server_pid:
        return "server"
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None
    if "spawn_main" in command:
        return "views"
    return None  # multiprocessing's resource tracker: a few MB that never change


def sample(server_pid: int) -> dict[str, float]:
    """RSS (MB) per role: the server process and its views child."""
    found: dict[str, float] = {}
    for pid in [server_pid, *children(server_pid)]:
        role = role_of(pid, server_pid)
        value = rss_mb(pid)
        if role is not None and value is not None:
            found[role] = found.get(role, 0.0) + value
    return found


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MB) points, in MB per hour."""
    if len(points) < 3:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return None
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return cov / var * 3600


# -- the load -----------------------------------------------------------------------------------


def log_in(base_url: str) -> httpx.Cookies:
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        if not token:
            raise RuntimeError("no CSRF token on /login")
        response = client.post(
            "/login",
            data={"email": OPERATOR, "password": PASSWORD, "csrf_token": token.group(1)},
            follow_redirects=False,
        )
        if response.status_code != 303:
            raise RuntimeError(f"login failed: {response.status_code} {response.text[:200]}")
        return client.cookies


@dataclass
class Counters:
    sent: int = 0
    accepted: int = 0
    failed: int = 0
    page_loads: int = 0
    page_errors: int = 0
    stream_errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **deltas: int) -> None:
        with self.lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)


def ingest_steadily(
    base_url: str, rate: float, until: float, counters: Counters, stop: threading.Event
) -> None:
    """POST one message every 1/rate s (on schedule, not after the previous answer)."""
    interval = 1.0 / rate
    number = 0
    next_at = time.monotonic()
    with httpx.Client(
        base_url=base_url, timeout=30.0, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ) as client:
        while not stop.is_set() and time.monotonic() < until:
            sender = number if number % 4 else number // 4  # a quarter are repeat senders
            try:
                response = client.post(
                    "/api/inbound",
                    json={
                        "channel": "api",
                        "external_id": f"soak-{number}",
                        "from": {"name": f"Client {sender}", "email": f"c{sender}@example.com"},
                        "subject": f"Order {sender % 97}",
                        "text": f"Message {number}: where is my order {sender * 7}? " * 3,
                    },
                )
                counters.add(sent=1, accepted=int(response.status_code == 201))
                counters.add(failed=int(response.status_code != 201))
            except httpx.HTTPError:
                counters.add(sent=1, failed=1)
            number += 1
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                stop.wait(delay)
            else:
                next_at = time.monotonic()  # behind: do not burst to catch up


def browse(
    base_url: str, cookies: httpx.Cookies, counters: Counters, stop: threading.Event
) -> None:
    """One open tab: the live stream, and the inbox reloaded on a change (at most 1/s)."""
    last_load = 0.0
    while not stop.is_set():
        try:
            with (
                httpx.Client(base_url=base_url, cookies=cookies, timeout=30.0) as client,
                client.stream("GET", "/ui/events") as events,
            ):
                for line in events.iter_lines():
                    if stop.is_set():
                        return
                    if not line.startswith("event: changed"):
                        continue
                    if time.monotonic() - last_load < 1.0:
                        continue
                    last_load = time.monotonic()
                    page = client.get("/inbox")
                    counters.add(page_loads=1, page_errors=int(page.status_code != 200))
        except httpx.HTTPError:
            counters.add(stream_errors=1)
            stop.wait(1.0)


def navigate(
    base_url: str, cookies: httpx.Cookies, counters: Counters, stop: threading.Event, every: float
) -> None:
    """The operator at work in that tab: another page every `every` s, new messages or not."""
    number = 0
    with httpx.Client(base_url=base_url, cookies=cookies, timeout=30.0) as client:
        while not stop.wait(every):
            try:
                page = client.get(PAGES[number % len(PAGES)])
                counters.add(page_loads=1, page_errors=int(page.status_code != 200))
            except httpx.HTTPError:
                counters.add(page_errors=1)
            number += 1


def seed(database_url: str, count: int) -> float:
    """Fill the store before the server starts: views the size of weeks of use, not minutes.

    A page cache can only grow as large as the pages a connection reads, so a soak on a
    fresh store would not show what a cache per connection costs a server that has run
    for months. Seeded in this process through `Threadline.ingest`, the views kept in
    place; returns the seconds it took.
    """
    from concurrent.futures import ThreadPoolExecutor

    from threadline.domain.model.inbound import InboundMessage
    from threadline.services.config import Settings
    from threadline.services.runtime import Runtime

    started = time.monotonic()
    runtime = Runtime(Settings(database_url=database_url))
    try:
        runtime.start()

        def one(number: int) -> None:
            sender = number if number % 4 else number // 4
            runtime.app.ingest(
                InboundMessage.create(
                    channel=("email", "telegram", "sms", "api")[number % 4],
                    dedup_key=f"seed-{number}",
                    identities=[("email", f"s{sender}@example.com")],
                    sender_name=f"Client {sender}",
                    subject=f"Question {number % 97}",
                    text=f"Seeded message {number}: where is my order {sender * 7}? " * 3,
                )
            )

        with ThreadPoolExecutor(max_workers=16) as pool:
            for done, _ in enumerate(pool.map(one, range(count)), start=1):
                if done % 5000 == 0:
                    log(f"  seeded {done}/{count}")
        runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=600)
    finally:
        runtime.close()
    return time.monotonic() - started


# -- the run ------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    made = args.workdir is None
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="threadline-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{workdir}/var/threadline.db"
    command = threadline_command()
    env = child_env(database_url)
    if args.seed:
        log(f"seeding {args.seed} messages")
        took = seed(database_url, args.seed)
        views = Path(f"{workdir}/var/threadline-views.db").stat().st_size / 2**20
        emit(figure="seed", messages=args.seed, seconds=round(took, 1), views_mb=round(views, 1))
    subprocess.run(
        [command, *USER_CREATE, "--password", PASSWORD],
        cwd=workdir,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    server_log = workdir / "server.log"
    with server_log.open("wb") as out:
        server = subprocess.Popen(
            [command, "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stop = threading.Event()
    threads: list[threading.Thread] = []
    status = 0
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start; see {server_log}")
            try:
                if httpx.get(f"{base_url}/healthz", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        log(f"server {server.pid} up at {base_url}; idle baseline for {args.baseline_seconds} s")
        time.sleep(args.baseline_seconds)
        baseline = sample(server.pid)
        for role, value in sorted(baseline.items()):
            emit(figure="rss_baseline", process=role, rss_mb=round(value, 1))

        counters = Counters()
        cookies = log_in(base_url)
        for number in range(args.clients):
            tab = threading.Thread(
                target=browse, args=(base_url, cookies, counters, stop), name=f"tab-{number}"
            )
            tab.start()
            threads.append(tab)
            if args.browse_seconds > 0:
                reader = threading.Thread(
                    target=navigate,
                    args=(base_url, cookies, counters, stop, args.browse_seconds),
                    name=f"reader-{number}",
                )
                reader.start()
                threads.append(reader)
        started = time.monotonic()
        load_until = started + args.minutes * 60
        end = load_until + args.idle_minutes * 60
        loader = threading.Thread(
            target=ingest_steadily, args=(base_url, args.rate, load_until, counters, stop)
        )
        loader.start()
        threads.append(loader)
        log(
            f"loading {args.minutes} min at {args.rate} msg/s with {args.clients} clients, "
            f"then {args.idle_minutes} min without messages (the clients still browse)"
        )
        series: dict[str, list[tuple[float, float, str]]] = {}
        next_sample = started
        while time.monotonic() < end:
            if server.poll() is not None:
                raise RuntimeError(f"the server exited with {server.returncode}; see {server_log}")
            now = time.monotonic()
            if now >= next_sample:
                phase = "load" if now < load_until else "idle"
                elapsed = now - started
                for role, value in sorted(sample(server.pid).items()):
                    series.setdefault(role, []).append((elapsed, value, phase))
                    emit(
                        figure="rss",
                        t_s=round(elapsed, 1),
                        phase=phase,
                        process=role,
                        rss_mb=round(value, 1),
                        accepted=counters.accepted,
                    )
                next_sample += args.sample_seconds
            time.sleep(min(1.0, max(0.0, next_sample - time.monotonic())))
        stop.set()
        for thread in threads:
            thread.join(timeout=35)

        warm = args.minutes * 60 * WARM_UP_FRACTION
        for role, points in sorted(series.items()):
            steady = [(t, v) for t, v, _ in points if t >= warm]
            idle = [(t, v) for t, v, phase in points if phase == "idle"]
            load_slope = slope_per_hour([(t, v) for t, v, p in points if t >= warm and p == "load"])
            emit(
                figure="rss_slope",
                process=role,
                baseline_mb=round(baseline.get(role, 0.0), 1),
                first_mb=round(points[0][1], 1),
                last_mb=round(points[-1][1], 1),
                max_mb=round(max(v for _, v, _ in points), 1),
                mb_per_hour=_round(slope_per_hour(steady)),
                mb_per_hour_under_load=_round(load_slope),
                mb_per_hour_idle=_round(slope_per_hour(idle)),
                samples=len(points),
                warm_up_s=round(warm),
            )
        emit(
            figure="load",
            minutes=args.minutes,
            rate=args.rate,
            clients=args.clients,
            seeded=args.seed,
            browse_seconds=args.browse_seconds,
            sent=counters.sent,
            accepted=counters.accepted,
            failed=counters.failed,
            page_loads=counters.page_loads,
            page_errors=counters.page_errors,
            stream_errors=counters.stream_errors,
        )
        if counters.failed or counters.page_errors:
            status = 1
    except Exception as error:
        log(f"soak failed: {error}")
        emit(figure="errors", error=str(error))
        status = 1
    finally:
        stop.set()
        stopped_at = time.monotonic()
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        try:
            code: int | None = server.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            code = None
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=STOP_TIMEOUT)
        emit(
            figure="stop",
            seconds=round(time.monotonic() - stopped_at, 2),
            exit_status=code,
            wal_left=sorted(p.name for p in (workdir / "var").glob("*-wal") if p.stat().st_size),
        )
        if code != 0:
            status = 1
        for thread in threads:
            thread.join(timeout=35)
        if made and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"kept {workdir} (server log: {server_log})")
    return status


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="minutes of steady load")
    parser.add_argument("--idle-minutes", type=float, default=1.0, help="idle minutes after it")
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second")
    parser.add_argument("--clients", type=int, default=5, help="open /ui/events sessions")
    parser.add_argument("--seed", type=int, default=20000, help="messages stored before")
    parser.add_argument(
        "--browse-seconds", type=float, default=2.0, help="each client opens a page this often"
    )
    parser.add_argument("--sample-seconds", type=float, default=10.0, help="RSS sampling period")
    parser.add_argument("--baseline-seconds", type=float, default=10.0, help="idle before load")
    parser.add_argument("--workdir", help="folder for the store (default: a new temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep a temp folder afterwards")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)  # a stopped bench still stops its server
    if args.minutes <= 0 or args.rate <= 0 or args.clients < 0 or args.sample_seconds <= 0:
        parser.error("--minutes, --rate and --sample-seconds must be positive")
    raise SystemExit(run(args))


if __name__ == "__main__":
    main()
