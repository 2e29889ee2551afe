"""The log's tamper evidence at scale (issue 16): sealing, verifying and checking a checkpoint.

A store is generated (`bench/report_data.py`, the reports benchmark's three years of a sales
team through the application's own commands; `--scale 0.1` is about 120,000 events) or an
existing SQLite store is copied (`--store`, e.g. the reports benchmark's `DIR/t.db`), and then,
each in events per second and against the baseline measured in the same run:

- `read_log`: the baseline, reading every stored event in position order through the
  library's notification log (what sealing and verifying cannot do without);
- `seal`: the chain built from nothing over the whole log (what a first start after the
  upgrade does in the background, and the follower's ceiling);
- `verify`: `threadline audit verify`'s walk of the log against the chain;
- `checkpoint`: checking a signed checkpoint at the log's end (recomputing every link).

- `replay`: `threadline replay`'s rebuild of every view (the audit index included) over the
  whole log, in events per second, against the target of 50,000 (issue 16, part 9);
- `ingest_chain_cost`: `bench/ingest.py`'s workload (`--messages`, eight submitters, views in
  their own process as under `threadline serve`) ingested into two fresh stores, once with the
  chain's sealing follower running and once without it, in messages per second: the ingest cost
  of chaining as a ratio (the target: encryption and chaining together under 25 % of ingest
  throughput; per-contact encryption is not built yet, so this is chaining alone).

One JSON object per line on stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def emit(**fields: Any) -> None:
    print(json.dumps({"bench": "audit", **fields}, ensure_ascii=False), flush=True)


def rate(events: int, seconds: float) -> float:
    return round(events / seconds, 1) if seconds > 0 else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.1, help="1.0: ~1,200,000 events")
    parser.add_argument("--store", help="an existing SQLite store to copy instead of generating")
    parser.add_argument(
        "--messages", type=int, default=5000, help="messages per ingest run (chain cost)"
    )
    parser.add_argument("--no-replay", action="store_true", help="skip the replay figure")
    args = parser.parse_args(argv)

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from threadline.services.audit_chain import EventChain, check_checkpoint, make_checkpoint
    from threadline.services.config import Settings
    from threadline.services.runtime import Runtime
    from threadline.services.view_stack import budget_of, open_log

    wall = time.monotonic()
    load_before = list(os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="threadline-audit-bench-") as temporary:
        folder = Path(temporary)
        url = f"sqlite:///{folder}/t.db"
        settings = Settings(database_url=url).with_overrides(
            attachments_dir=str(folder / "a"), run_channels=False
        )
        if args.store:
            log(f"copying {args.store}")
            shutil.copyfile(args.store, folder / "t.db")
        else:
            from report_data import Generator

            runtime = Runtime(settings)  # the views and the sealer not started
            try:
                generator = Generator(runtime, args.scale)
                log(f"generating {generator.deals} deals' stories")
                emit(figure="generate", **generator.run())
            finally:
                runtime.close()
        app = open_log(settings, budget_of(settings))
        chain = EventChain(app.recorder)
        with chain.db.transaction() as cur:  # seal from nothing, as a first start does
            cur.execute("DELETE FROM event_chain")
        events = int(app.recorder.max_notification_id() or 0)
        log(f"{events} events: reading, sealing, verifying")

        started = time.perf_counter()
        read = sum(1 for _ in chain._stored(events))
        baseline = rate(read, time.perf_counter() - started)
        emit(figure="read_log", events=read, events_per_s=baseline)

        started = time.perf_counter()
        sealed = chain.seal()
        seconds = time.perf_counter() - started
        emit(
            figure="seal",
            events=sealed,
            seconds=round(seconds, 1),
            events_per_s=rate(sealed, seconds),
            ratio_to_read=round(rate(sealed, seconds) / baseline, 3),
        )

        started = time.perf_counter()
        report = chain.verify()
        seconds = time.perf_counter() - started
        emit(
            figure="verify",
            events=report.checked,
            intact=report.intact,
            seconds=round(seconds, 1),
            events_per_s=rate(report.checked, seconds),
            ratio_to_read=round(rate(report.checked, seconds) / baseline, 3),
        )

        checkpoint = make_checkpoint(chain, Ed25519PrivateKey.generate())
        started = time.perf_counter()
        problem = check_checkpoint(chain, checkpoint)
        seconds = time.perf_counter() - started
        emit(
            figure="checkpoint",
            events=checkpoint["position"],
            holds=problem is None,
            seconds=round(seconds, 1),
            events_per_s=rate(int(checkpoint["position"]), seconds),
        )
        app.close()
        if not args.no_replay:
            runtime = Runtime(settings, run_views=False)
            try:
                log(f"replaying {events} events into every view")
                started = time.perf_counter()
                runtime.rebuild_views()
                seconds = time.perf_counter() - started
                emit(
                    figure="replay",
                    events=events,
                    views=len(runtime.projections),
                    seconds=round(seconds, 1),
                    events_per_s=rate(events, seconds),
                    ratio_to_read=round(rate(events, seconds) / baseline, 3),
                    target_events_per_s=REPLAY_TARGET,
                    met=rate(events, seconds) >= REPLAY_TARGET,
                )
            finally:
                runtime.close()
        chain_cost(folder, args.messages)
    emit(
        figure="host",
        cpus=os.cpu_count(),
        loadavg_before=load_before,
        loadavg_after=list(os.getloadavg()),
        wall_seconds=round(time.monotonic() - wall, 1),
        backend="sqlite",
    )
    return 0 if report.intact and problem is None else 1


REPLAY_TARGET = 50_000.0


def ingest_rate(folder: Path, messages: list[Any], chained: bool) -> dict[str, Any]:
    """Messages per second of `messages` ingested by eight submitters into a fresh store, the
    views in their own process, until the views show the last one; `chained`: the sealing
    follower runs as under `threadline serve` (else it is stopped right after the start)."""
    from ingest import Submitters

    from threadline.services.config import Settings
    from threadline.services.runtime import Runtime

    url = f"sqlite:///{folder}/ingest-{'chained' if chained else 'plain'}.db"
    runtime = Runtime(Settings(database_url=url), views_in_process=False)
    try:
        runtime.start()
        if not chained:
            runtime._sealer.stop()
            runtime.app.commit_listeners.remove(runtime._sealer.notify)
        app = runtime.app

        def ingest(message: Any, stats: Any) -> None:
            committed = app.ingest(message)
            if committed.notification_id is not None:
                stats.last_notification = max(stats.last_notification, committed.notification_id)

        started = time.perf_counter()
        results, _ = Submitters(8, time.monotonic() + 600).run(messages, ingest, "ingest")
        last = int(app.recorder.max_notification_id() or 0)
        while not runtime.wait_for_views(last, timeout=5.0):
            log(f"views at {runtime.views_position()} of {last}")
        seconds = time.perf_counter() - started
        sealed_lag = last - runtime.chain.head()[0] if chained else None
        errors = [e for r in results for e in r.errors]
        return {
            "messages_per_s": rate(len(messages), seconds),
            "events": last,
            "unsealed_at_end": sealed_lag,
            "errors": len(errors),
        }
    finally:
        runtime.close()


def chain_cost(folder: Path, count: int) -> None:
    """The ingest cost of the chain: the same workload with and without the sealer, twice
    each, alternating (the better of each pair, as the machine is shared)."""
    from ingest import build_workload

    workload = build_workload(count, seed=16)
    plain, chained = [], []
    for round_ in range(2):
        log(f"ingest round {round_ + 1}: without the sealer, then with it")
        plain.append(ingest_rate(folder / f"r{round_}", workload.messages, chained=False))
        chained.append(ingest_rate(folder / f"r{round_}", workload.messages, chained=True))
    best_plain = max(plain, key=lambda r: r["messages_per_s"])
    best_chained = max(chained, key=lambda r: r["messages_per_s"])
    cost = 1 - best_chained["messages_per_s"] / best_plain["messages_per_s"]
    emit(
        figure="ingest_chain_cost",
        messages=count,
        without_chain=best_plain,
        with_chain=best_chained,
        runs_without=[r["messages_per_s"] for r in plain],
        runs_with=[r["messages_per_s"] for r in chained],
        cost_share=round(cost, 3),
        target_share=0.25,
        encryption="not built yet (issue 16 part 2): chaining alone",
    )


if __name__ == "__main__":
    sys.exit(main())
