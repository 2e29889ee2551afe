"""Server time of the web app's pages with a large inbox (the web-app issue's acceptance).

Seeds N conversations (default 10,000) into a fresh SQLite store through the
ordinary ingest path, logs an operator in, then requests each page R times
and reads the server's own `Server-Timing: app;dur=…` header, so the figure is
the time the server spent, not the network's or the client's. The baseline in
the same run is the JSON API's `GET /api/inbox` (the same query without HTML).

The `live_burst` figure: open inbox tabs (SSE streams) during a steady burst of messages, and
the fragment reloads each makes, against what the old stream (four fragments per change) caused.

Prints one JSON object per figure on stdout; progress goes to stderr.
Target: the inbox page under 200 ms server time with 10,000 conversations.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

TARGET_MS = 200.0


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def emit(**fields: Any) -> None:
    print(json.dumps({"bench": "ui", **fields}, ensure_ascii=False), flush=True)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def seed(runtime: Any, conversations: int) -> float:
    from threadline.domain.model.inbound import InboundMessage

    started = time.monotonic()

    def one(number: int) -> None:
        runtime.app.ingest(
            InboundMessage.create(
                channel=("email", "telegram", "sms", "web")[number % 4],
                dedup_key=f"ui-bench-{number}",
                identities=[("email", f"client{number}@example.com")],
                sender_name=f"Client {number}",
                subject=f"Question {number % 97}",
                text=f"Message number {number}: where is my order {number * 7}?",
            )
        )

    with ThreadPoolExecutor(max_workers=32) as pool:
        for done, _ in enumerate(pool.map(one, range(conversations)), start=1):
            if done % 1000 == 0:
                log(f"  seeded {done}/{conversations}")
    runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=300)
    return time.monotonic() - started


def server_ms(response: Any) -> float:
    match = re.search(r"app;dur=([0-9.]+)", response.headers.get("server-timing", ""))
    if match is None:
        raise RuntimeError("no Server-Timing header: is the middleware installed?")
    return float(match.group(1))


def measure(client: Any, path: str, repeats: int, headers: dict[str, str]) -> dict[str, Any] | None:
    for _ in range(3):  # warm-up: templates compiled, caches filled
        first = client.get(path, headers=headers)
        if first.status_code == 404:
            return None
        if first.status_code != 200:
            raise RuntimeError(f"GET {path}: {first.status_code} {first.text[:200]}")
    times = [server_ms(client.get(path, headers=headers)) for _ in range(repeats)]
    return {
        "path": path,
        "p50_ms": round(statistics.median(times), 2),
        "p99_ms": round(percentile(times, 0.99), 2),
        "max_ms": round(max(times), 2),
        "requests": repeats,
        "bytes": len(first.content),
    }


POLL_SECONDS_BEFORE = 0.25  # the old stream: one "changed" per poll that saw the views move


def live_burst(
    runtime: Any, password: str, tabs: int, messages: int, rate: float
) -> dict[str, Any]:
    """What a burst costs open inbox tabs: fragment reloads per tab now, and with the old stream.

    The app runs under uvicorn; `tabs` logged-in clients hold `/ui/events` open, each standing for
    an inbox tab showing one conversation that the burst does not touch. From the keys of every
    `changed` event a tab receives, the reloads it makes are counted as app.js makes them (the list
    on `inbox`, the thread on that conversation or client, the card on that client, the badge on
    `notifications`; all four on `*`). The old stream sent `changed` on every poll (4 a second)
    that saw the views move, and each made a tab reload all four fragments: a poller here counts
    those polls.
    """
    import socket
    import threading

    import httpx
    import uvicorn

    from threadline.domain.model.inbound import InboundMessage
    from threadline.services.api.app import create_app

    shown = runtime.app.ingest(
        InboundMessage.create(
            channel="telegram", dedup_key="live-shown", identities=[("telegram", "5550000")],
            sender_name="Shown Client", text="the conversation the tabs show",
        )
    ).value  # fmt: skip
    runtime.wait_for_views(runtime.app.recorder.max_notification_id())
    watched = {
        "thread": {"*", f"conversation:{shown.conversation_id}", f"contact:{shown.contact_id}"},
        "card": {"*", f"contact:{shown.contact_id}"},
        "list": {"*", "inbox"},
        "badge": {"*", "notifications"},
    }
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), log_level="warning", timeout_graceful_shutdown=2)
    )
    from threadline.services.web.routes_events import end_streams_when

    end_streams_when(server.config.app, lambda: server.should_exit)
    serving = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    serving.start()
    while not server.started:
        time.sleep(0.05)
    reloads = [dict.fromkeys(watched, 0) for _ in range(tabs)]
    events = [0] * tabs
    ready = threading.Barrier(tabs + 1)

    def tab(index: int) -> None:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", timeout=httpx.Timeout(10, read=None)
        ) as client:
            page = client.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token is not None, "no login form"
            client.post(
                "/login",
                data={"email": "operator@example.com", "password": password,
                      "csrf_token": token.group(1)},
            )  # fmt: skip
            with client.stream("GET", "/ui/events") as stream:
                kind = ""
                for line in stream.iter_lines():
                    if line.startswith("event: "):
                        kind = line[7:]
                        if kind == "hello":
                            ready.wait()
                    elif line.startswith("data: ") and kind == "changed":
                        keys = set(json.loads(line[6:])["keys"])
                        events[index] += 1
                        for name, wanted in watched.items():
                            reloads[index][name] += bool(keys & wanted)

    threads = [threading.Thread(target=tab, args=(i,), daemon=True) for i in range(tabs)]
    for thread in threads:
        thread.start()
    ready.wait()
    old_polls = 0
    polling = threading.Event()

    def old_stream() -> None:
        nonlocal old_polls
        last = runtime.views_position()
        while not polling.is_set():
            time.sleep(POLL_SECONDS_BEFORE)
            position = runtime.views_position()
            if position != last:
                last, old_polls = position, old_polls + 1

    poller = threading.Thread(target=old_stream, daemon=True)
    poller.start()
    started = time.monotonic()
    for number in range(messages):  # a steady rate, like the soak
        time.sleep(max(0.0, started + number / rate - time.monotonic()))
        runtime.app.ingest(
            InboundMessage.create(
                channel="telegram", dedup_key=f"live-{number}",
                identities=[("telegram", f"99{number:06d}")], sender_name=f"Burst {number}",
                text=f"burst message {number}",
            )
        )  # fmt: skip
    runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=120)
    time.sleep(2.5)  # the last coalesced update, and the old poller's last poll
    polling.set()
    seconds = time.monotonic() - started
    server.should_exit = True
    serving.join(10)
    per_tab = [sum(r.values()) for r in reloads]
    return {
        "tabs": tabs,
        "messages": messages,
        "rate_per_s": rate,
        "seconds": round(seconds, 1),
        "changed_events_per_tab": round(statistics.mean(events), 1),
        "reloads_per_tab": round(statistics.mean(per_tab), 1),
        "reloads_per_tab_by_fragment": {
            name: round(statistics.mean(r[name] for r in reloads), 1) for name in watched
        },
        "reloads_per_tab_before": 4 * old_polls,
        "reloads_per_tab_before_upper": 4 * messages,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--tabs", type=int, default=5, help="open inbox tabs in the live figure")
    parser.add_argument("--burst", type=int, default=400, help="messages in the live figure")
    parser.add_argument("--rate", type=float, default=40.0, help="their rate (messages a second)")
    parser.add_argument("--quick", action="store_true", help="1,000 conversations, 10 requests")
    args = parser.parse_args(argv)
    if args.quick:
        args.conversations, args.repeats, args.burst = 1_000, 10, 200

    from fastapi.testclient import TestClient

    from threadline.services.api.app import create_app
    from threadline.services.config import Settings
    from threadline.services.runtime import Runtime

    with tempfile.TemporaryDirectory(prefix="threadline-ui-bench-") as folder:
        settings = Settings(database_url=f"sqlite:///{folder}/t.db").with_overrides(
            admin_token="bench-admin", attachments_dir=str(Path(folder) / "a"), run_channels=False
        )
        runtime = Runtime(settings)
        runtime.start()
        try:
            log(f"seeding {args.conversations} conversations")
            seconds = seed(runtime, args.conversations)
            emit(figure="seed", conversations=args.conversations, seconds=round(seconds, 1))
            password = "bench-password-1"
            runtime.app.create_user("operator@example.com", "operator", "bench", password=password)
            runtime.wait_for_views(runtime.app.recorder.max_notification_id())
            client = TestClient(create_app(runtime))
            page = client.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token is not None, "no login form"
            answer = client.post(
                "/login",
                data={"email": "operator@example.com", "password": password,
                      "csrf_token": token.group(1)},
                follow_redirects=False,
            )  # fmt: skip
            assert answer.status_code == 303, answer.text
            baseline = measure(
                client, "/api/inbox?limit=50", args.repeats, {"Authorization": "Bearer bench-admin"}
            )
            assert baseline is not None
            emit(figure="api_inbox_ms", conversations=args.conversations, **baseline)
            for path in ("/inbox?view=all", "/inbox/list?view=all", "/contacts", "/tasks"):
                result = measure(client, path, args.repeats, {})
                if result is None:
                    emit(figure="page_ms", path=path, skipped="the page does not exist")
                    continue
                fields: dict[str, Any] = {
                    "figure": "page_ms",
                    "conversations": args.conversations,
                    **result,
                    "baseline": "api_inbox_ms",
                    "baseline_p50_ms": baseline["p50_ms"],
                }
                if path.startswith("/inbox?"):
                    fields["target_ms"] = TARGET_MS
                    fields["met"] = result["p99_ms"] < TARGET_MS
                emit(**fields)
            log(f"live updates: {args.tabs} tabs, {args.burst} messages at {args.rate}/s")
            emit(
                figure="live_burst",
                **live_burst(runtime, password, args.tabs, args.burst, args.rate),
            )
        finally:
            runtime.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
