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
- `ingest_protection_cost`: `bench/ingest.py`'s workload (`--messages`, eight submitters, views
  in their own process as under `threadline serve`) ingested into fresh stores three ways: with
  neither protection, with each contact's personal parts encrypted (`personal_cipher`), and with
  encryption and the chain's sealing follower, in messages per second; the ingest cost of both
  as a share of the unprotected rate (the target: under 25 %).

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
    parser.add_argument(
        "--only-ingest", action="store_true", help="only the ingest cost of the protections"
    )
    args = parser.parse_args(argv)
    if args.only_ingest:
        with tempfile.TemporaryDirectory(prefix="threadline-audit-bench-") as temporary:
            protection_cost(Path(temporary), args.messages)
        emit(figure="host", cpus=os.cpu_count(), load=list(os.getloadavg()))
        return 0

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
        protection_cost(folder, args.messages)
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


def ingest_rate(folder: Path, messages: list[Any], sealed: bool, chained: bool) -> dict[str, Any]:
    """Messages per second of `messages` ingested by eight submitters into a fresh store, the
    views in their own process, until the views show the last one. `sealed`: personal parts
    are encrypted with each contact's key, as under `threadline serve` (else stored in
    clear); `chained`: the sealing follower runs (else it is stopped right after the start)."""
    from ingest import Submitters

    from threadline.services.config import Settings
    from threadline.services.runtime import Runtime

    name = f"{'sealed' if sealed else 'clear'}-{'chained' if chained else 'unchained'}"
    url = f"sqlite:///{folder}/ingest-{name}.db"
    runtime = Runtime(Settings(database_url=url), views_in_process=False)
    try:
        runtime.start()
        if not chained:
            runtime._sealer.stop()
            runtime.app.commit_listeners.remove(runtime._sealer.notify)
        if not sealed:
            runtime.app.personal_mapper.keyring = None
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


def protection_cost(folder: Path, count: int) -> None:
    """The ingest cost of encryption and chaining: the same workload without either, with
    encryption alone and with both, twice each, alternating (the best of each, as the
    machine is shared)."""
    from ingest import build_workload

    workload = build_workload(count, seed=16)
    configurations = {"neither": (False, False), "encrypted": (True, False), "both": (True, True)}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in configurations}
    for round_ in range(2):
        for name, (sealed, chained) in configurations.items():
            log(f"ingest round {round_ + 1}: {name}")
            where = folder / f"r{round_}"
            runs[name].append(ingest_rate(where, workload.messages, sealed, chained))
    best = {name: max(r["messages_per_s"] for r in found) for name, found in runs.items()}
    emit(
        figure="ingest_protection_cost",
        messages=count,
        messages_per_s=best,
        runs={name: [r["messages_per_s"] for r in found] for name, found in runs.items()},
        encryption_share=round(1 - best["encrypted"] / best["neither"], 3),
        cost_share=round(1 - best["both"] / best["neither"], 3),
        target_share=0.25,
        errors=sum(r["errors"] for found in runs.values() for r in found),
    )


if __name__ == "__main__":
    sys.exit(main())
