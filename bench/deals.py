"""Deals at scale: the board page, `GET /api/deals` and a stage move seen live (issue 13).

Seeds N deals (default 100,000) into a fresh SQLite store through the ordinary commands
(`create_deal`, then `win_deal` / `lose_deal` for a share of them), from a thread pool so
that the group-commit writer saves many in one transaction, and reports the seeding rate.
The deals spread over the three shipped pipelines and their open stages, over `--companies`
client companies and `--managers` managers, with one to three lines each.

Then it closes that store and starts the real server on it, `threadline serve` in a child
process on 127.0.0.1 (views in their own process, trigger engine on, as `make run` does), and
measures, with the server's own `Server-Timing: app;dur=` header (the time the server spent,
not the network's or the client's), R requests after three warm-ups:

- `board_page_ms`: the board page `/deals?pipeline=<id>` of the largest pipeline, as a
  logged-in manager (target p99 < 200 ms);
- `api_deals_ms`: `GET /api/deals?pipeline_id=<id>&status=open&limit=50` (target p99 < 50 ms);
- `api_inbox_ms`: the baseline, `GET /api/inbox?limit=50` over `--conversations` conversations.

And `stage_move_ms`: the end-to-end time of a stage move. One client POSTs
`/api/deals/{id}/stage` while a second, logged-in client holds the live stream
(`/ui/events`) open; the figure runs from just before the request until the second client
receives the `changed` event that names the board (`deals:<pipeline id>`, or `*`, which
makes every live fragment reload). Moves are paced one at a time, each after the stream's
one-update-a-second coalescing window and at a random point of its 0.25 s poll, so a figure is
one move's latency, not the coalescing.

A page or route that answers 404 is reported as skipped. Prints one JSON object per figure
on stdout (with its target and whether it was met); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from uuid import UUID

BOARD_TARGET_MS = 200.0
API_TARGET_MS = 50.0
ADMIN_TOKEN = "bench-admin"
PASSWORD = "bench-password-1"
MANAGER_EMAIL = "manager@example.com"
COALESCE_SECONDS = 1.0  # services/web/routes_events.py: one `changed` a second per stream
POLL_SECONDS = 0.25  # ... and each stream looks at the views' position every 0.25 s
PRODUCTS = (
    # (name, price, cost, vat): list prices in RUB, VAT included
    ("Warehouse rack", "18500", "11200", "standard"),
    ("Pallet truck", "32000", "21500", "standard"),
    ("Barcode scanner", "14900", "9800", "standard"),
    ("Medical gloves, box", "650", "380", "reduced"),
    ("Staff training, day", "25000", "9000", "none"),
    ("Rack for export", "17900", "11200", "zero"),
)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def emit(**fields: Any) -> None:
    print(json.dumps({"bench": "deals", **fields}, ensure_ascii=False), flush=True)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "p50_ms": round(statistics.median(values), 2),
        "p99_ms": round(percentile(values, 0.99), 2),
        "max_ms": round(max(values), 2),
        "n": len(values),
    }


# -- seeding ----------------------------------------------------------------------------------


class Seeder:
    """Plans each deal from its number alone, so the pool's threads need no shared state."""

    def __init__(self, runtime: Any, companies: list[UUID], managers: list[UUID]) -> None:
        from threadline.domain.commands.pipelines import SEEDED_PIPELINES
        from threadline.domain.model.pipeline import seeded_pipeline_id, seeded_stage_id

        self.runtime = runtime
        self.companies = companies
        self.managers = managers
        self.pipelines: list[tuple[UUID, list[str], str]] = []  # (id, open stage ids, key)
        for key, _name, stages, _reasons in SEEDED_PIPELINES:
            open_stages = [seeded_stage_id(key, s[0]) for s in stages if s[2] == "open"]
            self.pipelines.append((seeded_pipeline_id(key), open_stages, key))
        self.reasons = {key: reasons[0] for key, _n, _s, reasons in SEEDED_PIPELINES}

    def deal(self, number: int) -> None:
        rng = random.Random(number)
        app = self.runtime.app
        # Half the deals in "New clients", the rest shared: one board is much larger.
        pipeline_id, stages, key = self.pipelines[(0, 0, 1, 2)[number % 4]]
        manager = self.managers[number % len(self.managers)]
        lines = []
        for name, price, cost, vat in rng.sample(PRODUCTS, rng.randint(1, 3)):
            lines.append(
                {
                    "name": name,
                    "quantity": rng.randint(1, 40),
                    "price": price,
                    "cost": cost,
                    "vat": vat,
                    "discount": rng.choice((0, 0, 0, 5, 10)),
                }
            )
        deal_id = app.create_deal(
            f"user:{manager}",
            f"Deal {number}",
            pipeline_id,
            stage_id=rng.choice(stages),
            company_id=self.companies[number % len(self.companies)],
            manager_id=manager,
            lines=lines,
            expected_close=f"2027-0{1 + number % 9}-{1 + number % 28:02d}",
        ).value
        outcome = rng.random()
        if outcome < 0.2:
            app.win_deal(deal_id, f"user:{manager}")
        elif outcome < 0.35:
            app.lose_deal(deal_id, self.reasons[key], f"user:{manager}")


def seed(runtime: Any, deals: int, companies: int, managers: int, conversations: int) -> None:
    from threadline.domain.model.inbound import InboundMessage

    app = runtime.app
    started = time.monotonic()
    app.seed_pipelines("bench")
    manager_ids = [
        app.create_user(f"manager{n}@example.com", "manager", "bench", name=f"Manager {n}").value[0]
        for n in range(managers)
    ]
    with ThreadPoolExecutor(max_workers=32) as pool:
        company_ids = list(
            pool.map(lambda n: app.create_company("bench", f"Company {n}").value, range(companies))
        )

        def inquiry(number: int) -> None:
            app.ingest(
                InboundMessage.create(
                    channel=("email", "telegram", "sms", "web")[number % 4],
                    dedup_key=f"deals-bench-{number}",
                    identities=[("email", f"client{number}@example.com")],
                    sender_name=f"Client {number}",
                    subject=f"Order question {number % 97}",
                    text=f"Message number {number}: about our order {number * 7}",
                )
            )

        list(pool.map(inquiry, range(conversations)))
    emit(
        figure="seed_clients",
        companies=companies,
        managers=managers,
        conversations=conversations,
        seconds=round(time.monotonic() - started, 1),
    )
    seeder = Seeder(runtime, company_ids, manager_ids)
    started = time.monotonic()
    step = max(1000, deals // 20)
    with ThreadPoolExecutor(max_workers=32, thread_name_prefix="deal") as pool:
        for done, _ in enumerate(pool.map(seeder.deal, range(deals)), start=1):
            if done % step == 0:
                elapsed = time.monotonic() - started
                log(f"  seeded {done}/{deals} deals ({done / elapsed:.0f}/s)")
    submitted = time.monotonic() - started
    target = app.recorder.max_notification_id()
    if not runtime.wait_for_views(target, timeout=3600):
        raise RuntimeError("the views did not catch up with the seeded deals")
    seconds = time.monotonic() - started
    emit(
        figure="seed_deals",
        deals=deals,
        seconds=round(seconds, 1),
        deals_per_s=round(deals / seconds, 1),
        submit_seconds=round(submitted, 1),
        views_lag_seconds=round(seconds - submitted, 1),
        notifications=target,
        workers=32,
    )


# -- measuring --------------------------------------------------------------------------------


def server_ms(response: Any) -> float:
    match = re.search(r"app;dur=([0-9.]+)", response.headers.get("server-timing", ""))
    if match is None:
        raise RuntimeError("no Server-Timing header: is the middleware installed?")
    return float(match.group(1))


def measure(client: Any, path: str, repeats: int, headers: dict[str, str]) -> dict[str, Any] | None:
    first = None
    for _ in range(3):  # warm-up: templates compiled, caches filled
        first = client.get(path, headers=headers)
        if first.status_code == 404:
            return None
        if first.status_code != 200:
            raise RuntimeError(f"GET {path}: {first.status_code} {first.text[:200]}")
    assert first is not None
    times = [server_ms(client.get(path, headers=headers)) for _ in range(repeats)]
    return {"path": path, **summary(times), "bytes": len(first.content)}


def log_in(client: Any) -> None:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None, "no login form"
    answer = client.post(
        "/login",
        data={"email": MANAGER_EMAIL, "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    if answer.status_code != 303:
        raise RuntimeError(f"could not log in: {answer.status_code} {answer.text[:200]}")


class Listener:
    """A second, logged-in client holding `/ui/events` open; queues (time, keys) per event."""

    def __init__(self, base_url: str) -> None:
        import httpx

        self.events: queue.Queue[tuple[float, set[str]]] = queue.Queue()
        self.ready = threading.Event()
        self.client = httpx.Client(base_url=base_url, timeout=httpx.Timeout(10, read=None))
        log_in(self.client)
        self.thread = threading.Thread(target=self._listen, daemon=True)
        self.thread.start()
        if not self.ready.wait(30):
            raise RuntimeError("the live stream did not say hello")

    def _listen(self) -> None:
        try:
            with self.client.stream("GET", "/ui/events") as stream:
                kind = ""
                for line in stream.iter_lines():
                    if line.startswith("event: "):
                        kind = line[7:]
                        if kind == "hello":
                            self.ready.set()
                    elif line.startswith("data: ") and kind == "changed":
                        seen = time.monotonic()
                        self.events.put((seen, set(json.loads(line[6:])["keys"])))
        except Exception as error:  # the server stopping ends the stream
            log(f"  live stream ended: {type(error).__name__}")

    def drain(self) -> None:
        while not self.events.empty():
            self.events.get_nowait()

    def wait_for(self, wanted: set[str], timeout: float = 15.0) -> tuple[float, set[str]] | None:
        """When an event naming one of `wanted` arrived, and which of them it named (None:
        none within `timeout`)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                seen, keys = self.events.get(timeout=left)
            except queue.Empty:
                return None
            if keys & wanted:
                return seen, keys & wanted
        return None

    def close(self) -> None:
        self.client.close()


def stage_moves(
    client: Any, base_url: str, pipeline_id: str, deal_id: str, stages: list[str], moves: int
) -> dict[str, Any]:
    """Move one open deal back and forth between two open stages, `moves` times; per move the
    time from the request to the board update seen by the listening client."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    probe = client.post(
        f"/api/deals/{deal_id}/stage", json={"stage_id": stages[0]}, headers=headers
    )
    if probe.status_code == 404:
        return {"skipped": "POST /api/deals/{id}/stage does not exist (404)"}
    if probe.status_code >= 400:
        raise RuntimeError(f"POST stage: {probe.status_code} {probe.text[:200]}")
    listener = Listener(base_url)
    wanted = {"*", f"deals:{pipeline_id}", f"deal:{deal_id}"}
    latencies: list[float] = []
    request_ms: list[float] = []
    missed = 0
    phase = random.Random(7)
    keys_seen: Counter[str] = Counter()  # `deals` (the board's key), `deal`, `*`
    last_event = time.monotonic()
    try:
        for number in range(moves):
            # Past the stream's coalescing window, so this move's update goes out at once, and
            # at a random point of its 0.25 s poll (else every move starts in the same phase).
            pause = COALESCE_SECONDS + phase.uniform(0.05, 0.05 + POLL_SECONDS)
            while time.monotonic() - last_event < pause:
                time.sleep(0.02)
            listener.drain()
            target = stages[(number + 1) % 2]
            started = time.monotonic()
            answer = client.post(
                f"/api/deals/{deal_id}/stage", json={"stage_id": target}, headers=headers
            )
            if answer.status_code >= 400:
                raise RuntimeError(f"POST stage: {answer.status_code} {answer.text[:200]}")
            request_ms.append(server_ms(answer))
            update = listener.wait_for(wanted)
            if update is None:
                missed += 1
                last_event = time.monotonic()
                continue
            last_event, named = update
            keys_seen.update(key.split(":")[0] for key in named)
            latencies.append((last_event - started) * 1000)
    finally:
        listener.close()
    result: dict[str, Any] = {
        "moves": moves,
        "missed": missed,
        "keys": dict(keys_seen),
    }
    if latencies:
        result.update(summary(latencies))
    if request_ms:
        request = summary(request_ms)
        result["request_p50_ms"] = request["p50_ms"]
        result["request_p99_ms"] = request["p99_ms"]
    return result


def deal_to_move(runtime: Any, pipeline_id: str) -> tuple[str, list[str]]:
    """An open deal of the pipeline's first open stage, and the first two open stages."""
    from threadline.projections import deals as deal_views
    from threadline.projections.deals import DealFilter
    from threadline.projections.pipelines import pipeline

    found = pipeline(runtime.views, pipeline_id)
    assert found is not None, "the shipped pipelines are missing"
    stages = [s.id for s in found.stages if s.meaning == "open"][:2]
    rows, _ = deal_views.deals_page(
        runtime.views, DealFilter(pipeline_id=pipeline_id, stage_id=stages[0], status="open"), 1
    )
    return rows[0].id, stages


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    folder: Path, database_url: str, triggers: bool = True
) -> tuple[subprocess.Popen[bytes], str]:
    """`threadline serve` on the seeded store, as `make run` starts it (the views in their own
    process, the trigger engine on), in a fresh process: its heap holds nothing of the seeding."""
    import httpx

    env = {k: v for k, v in os.environ.items() if not k.startswith("THREADLINE_")}
    env.update(
        THREADLINE_DATABASE_URL=database_url,
        THREADLINE_ADMIN_TOKEN=ADMIN_TOKEN,
        THREADLINE_CHANNELS="0",
        THREADLINE_TRIGGERS="1" if triggers else "0",
        PYTHONUNBUFFERED="1",
    )
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    command = str(Path(sys.executable).with_name("threadline"))
    with (folder / "server.log").open("wb") as out:
        server = subprocess.Popen(
            [command, "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 300
    while True:
        if server.poll() is not None or time.monotonic() > deadline:
            stop_server(server)
            raise RuntimeError(f"the server did not start; see {folder / 'server.log'}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2.0).status_code == 200:
                return server, base_url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)


def stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--companies", type=int, default=2_000)
    parser.add_argument("--managers", type=int, default=10)
    parser.add_argument(
        "--conversations", type=int, default=2_000, help="for the /api/inbox baseline"
    )
    parser.add_argument("--repeats", type=int, default=200, help="requests per page (R)")
    parser.add_argument(
        "--no-triggers",
        action="store_true",
        help="serve without the trigger engine (THREADLINE_TRIGGERS=0): shows what its scans cost",
    )
    parser.add_argument("--moves", type=int, default=50, help="stage moves timed end to end")
    parser.add_argument("--quick", action="store_true", help="5,000 deals, 30 requests, 10 moves")
    parser.add_argument(
        "--workdir",
        help="keep the store here (default: a temporary folder); a store seeded by an earlier"
        " run there is measured again without seeding",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.deals, args.companies, args.conversations = 5_000, 200, 500
        args.repeats, args.moves = 30, 10

    import httpx

    from threadline.domain.model.pipeline import seeded_pipeline_id
    from threadline.services.config import Settings
    from threadline.services.runtime import Runtime

    started = time.monotonic()
    load_before = list(os.getloadavg())
    board_pipeline = str(seeded_pipeline_id("new-clients"))
    with tempfile.TemporaryDirectory(prefix="threadline-deals-bench-") as temporary:
        folder = Path(args.workdir or temporary).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        database_url = f"sqlite:///{folder}/t.db"
        settings = Settings(database_url=database_url).with_overrides(
            admin_token=ADMIN_TOKEN, attachments_dir=str(folder / "a"), run_channels=False
        )
        runtime = Runtime(settings, views_in_process=False)  # as `threadline serve` runs
        runtime.start()
        try:
            if args.workdir and runtime.app.user_id_by_email(MANAGER_EMAIL) is not None:
                log(f"measuring the store seeded before in {folder}")  # iterating on a fix
            else:
                log(f"seeding {args.deals} deals")
                seed(runtime, args.deals, args.companies, args.managers, args.conversations)
                runtime.app.create_user(MANAGER_EMAIL, "manager", "bench", password=PASSWORD)
            runtime.wait_for_views(runtime.app.recorder.max_notification_id())
            deal_id, stages = deal_to_move(runtime, board_pipeline)
        finally:
            runtime.close()
        log("starting `threadline serve` on the store")
        server, base_url = start_server(folder, database_url, triggers=not args.no_triggers)
        try:
            client = httpx.Client(base_url=base_url, timeout=60)
            log_in(client)
            admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            log("measuring GET /api/inbox (baseline)")
            baseline = measure(client, "/api/inbox?limit=50", args.repeats, admin)
            assert baseline is not None
            emit(figure="api_inbox_ms", conversations=args.conversations, **baseline)
            for figure, path, headers, target in (
                ("board_page_ms", f"/deals?pipeline={board_pipeline}", {}, BOARD_TARGET_MS),
                (
                    "api_deals_ms",
                    f"/api/deals?pipeline_id={board_pipeline}&status=open&limit=50",
                    admin,
                    API_TARGET_MS,
                ),
            ):
                log(f"measuring GET {path}")
                result = measure(client, path, args.repeats, headers)
                if result is None:
                    emit(figure=figure, path=path, skipped="the page does not exist (404)")
                    continue
                emit(
                    figure=figure,
                    deals=args.deals,
                    **result,
                    target_p99_ms=target,
                    met=result["p99_ms"] < target,
                    baseline="api_inbox_ms",
                    baseline_p50_ms=baseline["p50_ms"],
                    baseline_p99_ms=baseline["p99_ms"],
                )
            log(f"timing {args.moves} stage moves end to end")
            emit(
                figure="stage_move_ms",
                deals=args.deals,
                **stage_moves(client, base_url, board_pipeline, deal_id, stages, args.moves),
                note="request sent -> the board's `changed` event on a second client's SSE",
            )
            client.close()
        finally:
            stop_server(server)
    emit(
        figure="host",
        cpus=os.cpu_count(),
        loadavg_before=[round(v, 2) for v in load_before],
        loadavg_after=[round(v, 2) for v in os.getloadavg()],
        wall_seconds=round(time.monotonic() - started, 1),
        quick=args.quick,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
