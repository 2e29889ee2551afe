"""Server time of the web app's pages with a large inbox (the web-app issue's acceptance).

Seeds N conversations (default 10,000) into a fresh SQLite store through the
ordinary ingest path, logs an operator in, then requests each page R times
and reads the server's own `Server-Timing: app;dur=…` header, so the figure is
the time the server spent, not the network's or the client's. The baseline in
the same run is the JSON API's `GET /api/inbox` (the same query without HTML).

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
    from threadline.domain.inbound import InboundMessage

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="1,000 conversations, 10 requests")
    args = parser.parse_args(argv)
    if args.quick:
        args.conversations, args.repeats = 1_000, 10

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
        finally:
            runtime.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
