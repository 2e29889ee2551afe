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

Not yet here (issue 16, later parts): the replay rate and the ingest cost of encryption with
chaining. One JSON object per line on stdout; progress on stderr.
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
    emit(
        figure="host",
        cpus=os.cpu_count(),
        loadavg_before=load_before,
        loadavg_after=list(os.getloadavg()),
        wall_seconds=round(time.monotonic() - wall, 1),
        backend="sqlite",
    )
    return 0 if report.intact and problem is None else 1


if __name__ == "__main__":
    sys.exit(main())
