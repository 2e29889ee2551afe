"""Ingest throughput: Threadline's ingest path against one-INSERT-per-transaction.

For each backend (SQLite, PostgreSQL) this script

1. builds N normalised `InboundMessage`s up front (seeded: ~70% new senders,
   ~25% repeat senders, ~5% exact redeliveries of an earlier message),
2. starts a fresh `Runtime` on a fresh database with its views running, and
   times N calls of `runtime.app.ingest(message)` from a pool of concurrent
   submitters, until every call has returned *and* the views show the last
   event (`runtime.wait_for_views`),
3. in the same database, with the same connection settings, times N plain
   ``INSERT``s into a scratch table, one transaction each, from the same number
   of submitter threads (the raw baseline), and again from one connection,
4. runs the same N `ingest` calls from the same submitters against the
   library's in-memory store with no views (the in-memory ceiling: what the
   Threadline path could reach if the database and the views cost nothing),

and prints one JSON object per line on stdout (progress goes to stderr). The
exit code is 0 when the measurement ran, whether or not a target was met, and
non-zero when something failed. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from threadline.domain.commands.application import Threadline
from threadline.domain.model.inbound import InboundMessage
from threadline.services.config import Settings
from threadline.services.runtime import Runtime
from threadline.services.store import library_env, sqlite_path

TARGETS = {"sqlite": 0.5, "postgres": 2.0}
CHANNELS = ("api", "email", "sms", "telegram")
WORDS = (
    *("hello", "order", "delivery", "invoice", "refund", "question", "thanks", "please"),
    *("tomorrow", "account", "payment", "address", "parcel", "tracking", "status"),
    *("urgent", "support", "price", "discount", "call", "back", "weekend", "office"),
    *("manager", "contract", "renewal", "subscription", "cancel", "update", "confirm"),
)
VIEWS_TIMEOUT = 600.0
MAX_ERRORS_SHOWN = 3
Ratios = dict[str, list[float]]
"""Each ratio figure's values over the runs of one backend."""


def log(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def emit(**fields: Any) -> None:
    print(json.dumps({"bench": "ingest", **fields}), flush=True)


# -- the workload -------------------------------------------------------------------------


@dataclass
class Sender:
    number: int
    channel: str
    identities: list[tuple[str, str | int]]
    threads: int = 0


@dataclass
class Workload:
    messages: list[InboundMessage]
    bodies: list[str]
    new_senders: int = 0
    repeat_messages: int = 0
    duplicates: int = 0


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(15, 45))).capitalize() + "."


def _new_sender(number: int, rng: random.Random) -> Sender:
    channel = rng.choice(CHANNELS)
    identities: list[tuple[str, str | int]]
    if channel == "email":
        identities = [("email", f"user{number}@example.com")]
    elif channel == "api":
        identities = [("email", f"user{number}@example.com")]
        if rng.random() < 0.3:  # a web form that also asked for a phone number
            identities.append(("phone", f"+7926{number:07d}"))
    elif channel == "sms":
        identities = [("phone", f"+7916{number:07d}")]
    else:
        identities = [("telegram", 100_000_000 + number)]
    return Sender(number, channel, identities)


def _message(index: int, sender: Sender, repeat: bool, rng: random.Random) -> InboundMessage:
    channel = sender.channel
    identities = sender.identities
    if repeat and channel in ("api", "email"):
        # the same person writes again, through either e-mail-bearing channel, by e-mail alone
        channel = rng.choice(("api", "email"))
        identities = [identities[0]]
    thread_key = None
    subject = ""
    if channel == "email":
        subject = f"Re: order {sender.number}"
        if not repeat or rng.random() < 0.3:
            sender.threads += 1
        thread_key = f"<thread-{sender.number}-{max(sender.threads, 1)}@mail.example.com>"
    dedup_key = {
        "api": f"api-{index}",
        "email": f"<msg-{index}@mail.example.com>",
        "sms": f"sms-{index}",
        "telegram": f"{100_000_000 + sender.number}:{index}",
    }[channel]
    return InboundMessage.create(
        channel=channel,
        dedup_key=dedup_key,
        identities=identities,
        sender_name=f"User {sender.number}",
        subject=subject,
        text=_text(rng),
        thread_key=thread_key,
        metadata={"bench": True, "index": index},
    )


def _body(message: InboundMessage) -> str:
    """What the baseline row carries: about what the message's own event carries."""
    return json.dumps(
        {
            "id": str(message.message_id),
            "channel": message.channel,
            "dedup_key": message.dedup_key,
            "identities": [i.as_dict() for i in message.identities],
            "sender_name": message.sender_name,
            "subject": message.subject,
            "text": message.text,
            "thread_key": message.thread_key,
            "metadata": message.metadata,
        }
    )


def build_workload(count: int, seed: int) -> Workload:
    rng = random.Random(seed)
    senders: list[Sender] = []
    originals: list[InboundMessage] = []
    workload = Workload([], [])
    for index in range(count):
        draw = rng.random()
        if draw < 0.05 and originals:
            message = rng.choice(originals)  # a provider redelivers an earlier message
            workload.duplicates += 1
        elif draw < 0.30 and senders:
            message = _message(index, rng.choice(senders), True, rng)
            workload.repeat_messages += 1
            originals.append(message)
        else:
            sender = _new_sender(len(senders) + 1, rng)
            senders.append(sender)
            message = _message(index, sender, False, rng)
            workload.new_senders += 1
            originals.append(message)
        workload.messages.append(message)
        workload.bodies.append(_body(message))
    return workload


# -- running many submitters --------------------------------------------------------------


@dataclass
class SubmitterStats:
    latencies: list[float] = field(default_factory=list)
    duplicates: int = 0
    last_notification: int = 0
    errors: list[str] = field(default_factory=list)


class Submitters:
    """`threads` workers pulling the next item from one shared iterator until it runs dry."""

    def __init__(self, threads: int, deadline: float) -> None:
        self.threads = threads
        self.deadline = deadline
        self.done = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def run(
        self, items: list[Any], call: Callable[[Any, SubmitterStats], None], label: str
    ) -> tuple[list[SubmitterStats], float]:
        source: Iterator[Any] = iter(items)
        self.done = 0
        self._stop.clear()

        def next_item() -> Any:
            with self._lock:
                return next(source, None)

        def worker() -> SubmitterStats:
            stats = SubmitterStats()
            while not self._stop.is_set():
                item = next_item()
                if item is None:
                    break
                started = time.perf_counter()
                try:
                    call(item, stats)
                except Exception:
                    stats.errors.append(traceback.format_exc())
                    if len(stats.errors) >= 10:
                        self._stop.set()  # something is systematically wrong: stop early
                    continue
                stats.latencies.append(time.perf_counter() - started)
                with self._lock:
                    self.done += 1
            return stats

        started = time.perf_counter()
        with ThreadPoolExecutor(self.threads, thread_name_prefix=f"bench-{label}") as pool:
            futures: list[Future[SubmitterStats]] = [
                pool.submit(worker) for _ in range(self.threads)
            ]
            pending = set(futures)
            while pending:
                _, pending = wait(pending, timeout=5.0, return_when=FIRST_EXCEPTION)
                if pending:
                    log(f"{label}: {self.done}/{len(items)} done")
                if time.monotonic() > self.deadline:
                    self._stop.set()
            results = [f.result() for f in futures]
        elapsed = time.perf_counter() - started
        if self._stop.is_set() and time.monotonic() > self.deadline:
            results[0].errors.append(f"{label}: stopped at the --timeout deadline\n")
        return results, elapsed


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = max(0, math.ceil(fraction * len(sorted_values)) - 1)
    return sorted_values[index]


# -- the Threadline path ------------------------------------------------------------------


@dataclass
class ThreadlineResult:
    seconds: float
    submit_seconds: float
    latencies: list[float]
    duplicates: int
    events: int
    batches: int
    commands: int
    event_bytes: float | None
    errors: list[str]


def run_threadline(
    database_url: str, workload: Workload, submitters: int, deadline: float
) -> ThreadlineResult:
    # views_in_process=False: the views run in their own process, as under `threadline serve`.
    runtime = Runtime(Settings(database_url=database_url), views_in_process=False)
    try:
        runtime.start()
        app = runtime.app
        start_events = app.recorder.max_notification_id() or 0
        start_batches, start_commands = app.writer.batches, app.writer.commands

        def ingest(message: InboundMessage, stats: SubmitterStats) -> None:
            committed = app.ingest(message)
            if committed.value.duplicate:
                stats.duplicates += 1
            if committed.notification_id is not None:
                stats.last_notification = max(stats.last_notification, committed.notification_id)

        pool = Submitters(submitters, deadline)
        started = time.perf_counter()
        results, submit_seconds = pool.run(workload.messages, ingest, "threadline")
        errors = [e for r in results for e in r.errors]
        last = max((r.last_notification for r in results), default=0)
        last = max(last, app.recorder.max_notification_id() or 0)
        views_deadline = time.monotonic() + VIEWS_TIMEOUT
        while not runtime.wait_for_views(last, timeout=5.0):
            if runtime.runner.last_error is not None:
                log(f"views: last error {runtime.runner.last_error!r}")
            if time.monotonic() > views_deadline:
                errors.append(
                    f"views did not reach notification {last} within {VIEWS_TIMEOUT:.0f}s "
                    f"(at {runtime.runner.position()}; last error {runtime.runner.last_error!r})\n"
                )
                break
            log(f"views: at {runtime.runner.position()} of {last}")
        seconds = time.perf_counter() - started
        latencies = sorted(x for r in results for x in r.latencies)
        events = (app.recorder.max_notification_id() or 0) - start_events
        return ThreadlineResult(
            seconds=seconds,
            submit_seconds=submit_seconds,
            latencies=latencies,
            duplicates=sum(r.duplicates for r in results),
            events=events,
            batches=app.writer.batches - start_batches,
            commands=app.writer.commands - start_commands,
            event_bytes=_message_event_bytes(app),
            errors=errors,
        )
    finally:
        runtime.close()


def _message_event_bytes(app: Any) -> float | None:
    """Mean stored size of the first few hundred message-received events (for the README)."""
    try:
        notifications = app.recorder.select_notifications(start=1, limit=2000)
    except Exception:
        return None
    sizes = [
        len(n.state)
        for n in notifications
        if "message" in n.topic.lower() and "receiv" in n.topic.lower()
    ]
    return round(sum(sizes) / len(sizes), 1) if sizes else None


# -- the in-memory ceiling -----------------------------------------------------------------


@dataclass
class CeilingResult:
    seconds: float
    cpu_seconds: float
    errors: list[str]


def run_in_memory_ceiling(workload: Workload, submitters: int, deadline: float) -> CeilingResult:
    """The same `ingest` calls on the library's in-memory (POPO) recorder, no views.

    This is every step of the Threadline path that is not database or view work
    (identity resolution, the library's aggregates and events, JSON transcoding,
    group commit, the submitters' hand-over), so no storage or projection design
    can make the real run faster than this on the same machine. The POPO
    recorder's own bookkeeping (its uniqueness sets) is about a tenth of it.
    """
    app = Threadline(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    try:

        def ingest(message: InboundMessage, stats: SubmitterStats) -> None:
            app.ingest(message)

        cpu_before = time.process_time()
        results, seconds = Submitters(submitters, deadline).run(
            workload.messages, ingest, "ceiling"
        )
        cpu_seconds = time.process_time() - cpu_before
    finally:
        app.close()
    return CeilingResult(seconds, cpu_seconds, [e for r in results for e in r.errors])


# -- the raw baseline ---------------------------------------------------------------------


@dataclass
class BaselineResult:
    seconds: float
    rows: int
    body_bytes: float
    errors: list[str]


def run_sqlite_baseline(
    path: str, bodies: list[str], submitters: int, deadline: float
) -> BaselineResult:
    """The library's connection settings: autocommit + explicit BEGIN, WAL, default synchronous."""

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=30, cached_statements=True
        )
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode=WAL")
        return conn

    setup = connect()
    setup.execute("DROP TABLE IF EXISTS bench_baseline")
    setup.execute("CREATE TABLE bench_baseline (id TEXT PRIMARY KEY, body TEXT)")
    connections = [connect() for _ in range(submitters)]
    local = threading.local()
    spare = iter(connections)
    spare_lock = threading.Lock()

    def insert(row: tuple[str, str], stats: SubmitterStats) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            with spare_lock:
                conn = local.conn = next(spare)
        conn.execute("BEGIN")
        try:
            conn.execute("INSERT INTO bench_baseline (id, body) VALUES (?, ?)", row)
        except BaseException:
            conn.rollback()
            raise
        conn.commit()

    rows = [(uuid.uuid4().hex, body) for body in bodies]
    try:
        results, seconds = Submitters(submitters, deadline).run(rows, insert, "baseline")
        count = setup.execute("SELECT count(*) FROM bench_baseline").fetchone()[0]
        setup.execute("DROP TABLE bench_baseline")
    finally:
        for conn in connections:
            conn.close()
        setup.close()
    errors = [e for r in results for e in r.errors]
    return BaselineResult(seconds, count, _mean_len(bodies), errors)


def run_postgres_baseline(
    conninfo: str, schema: str, bodies: list[str], submitters: int, deadline: float
) -> BaselineResult:
    """psycopg, autocommit connections, one explicit transaction (BEGIN/INSERT/COMMIT) each."""
    import psycopg

    table = f'"{schema}".bench_baseline'
    setup = psycopg.connect(conninfo, autocommit=True, connect_timeout=10)
    setup.execute(f"DROP TABLE IF EXISTS {table}")
    setup.execute(f"CREATE TABLE {table} (id TEXT PRIMARY KEY, body TEXT)")
    connections = [
        psycopg.connect(conninfo, autocommit=True, connect_timeout=10) for _ in range(submitters)
    ]
    local = threading.local()
    spare = iter(connections)
    spare_lock = threading.Lock()
    statement = f"INSERT INTO {table} (id, body) VALUES (%s, %s)"

    def insert(row: tuple[str, str], stats: SubmitterStats) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            with spare_lock:
                conn = local.conn = next(spare)
        with conn.transaction():
            conn.execute(statement, row)

    rows = [(uuid.uuid4().hex, body) for body in bodies]
    try:
        results, seconds = Submitters(submitters, deadline).run(rows, insert, "baseline")
        count = setup.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
        setup.execute(f"DROP TABLE {table}")
    finally:
        for conn in connections:
            conn.close()
        setup.close()
    errors = [e for r in results for e in r.errors]
    return BaselineResult(seconds, count, _mean_len(bodies), errors)


def _mean_len(bodies: list[str]) -> float:
    return round(sum(len(b.encode()) for b in bodies) / max(1, len(bodies)), 1)


# -- reporting ----------------------------------------------------------------------------


@dataclass
class RunFigures:
    """Everything one run of a backend measured."""

    threadline: ThreadlineResult
    baseline: BaselineResult
    baseline_one_connection: BaselineResult
    ceiling: CeilingResult


def report(
    backend: str, workload: Workload, submitters: int, figures: RunFigures, run: int
) -> dict[str, float]:
    """Print the run's figures; returns its ratios by figure name (for the medians)."""
    tl, base, single, ceiling = (
        figures.threadline,
        figures.baseline,
        figures.baseline_one_connection,
        figures.ceiling,
    )
    n = len(workload.messages)
    tl_rate = n / tl.seconds
    base_rate = base.rows / base.seconds
    single_rate = single.rows / single.seconds
    ceiling_rate = n / ceiling.seconds
    target = TARGETS[backend]
    common = {"backend": backend, "run": run}
    emit(
        **common,
        figure="threadline_msgs_per_s",
        value=round(tl_rate, 1),
        messages=n,
        submitters=submitters,
        seconds=round(tl.seconds, 3),
        submit_seconds=round(tl.submit_seconds, 3),
        views_lag_seconds=round(tl.seconds - tl.submit_seconds, 3),
        duplicates_reported=tl.duplicates,
        duplicates_expected=workload.duplicates,
        new_senders=workload.new_senders,
        repeat_sender_messages=workload.repeat_messages,
    )
    emit(
        **common,
        figure="ingest_latency_p50_ms",
        value=round(percentile(tl.latencies, 0.50) * 1000, 2),
    )
    emit(
        **common,
        figure="ingest_latency_p99_ms",
        value=round(percentile(tl.latencies, 0.99) * 1000, 2),
    )
    emit(
        **common,
        figure="events_appended",
        value=tl.events,
        per_message=round(tl.events / n, 2),
        message_event_bytes_mean=tl.event_bytes,
    )
    emit(
        **common,
        figure="batches",
        value=tl.batches,
        commands=tl.commands,
        mean_batch=round(tl.commands / tl.batches, 1) if tl.batches else None,
    )
    emit(
        **common,
        figure="baseline_inserts_per_s",
        value=round(base_rate, 1),
        rows=base.rows,
        submitters=submitters,
        seconds=round(base.seconds, 3),
        body_bytes_mean=base.body_bytes,
    )
    emit(
        **common,
        figure="baseline_one_connection_inserts_per_s",
        value=round(single_rate, 1),
        rows=single.rows,
        submitters=1,
        seconds=round(single.seconds, 3),
    )
    emit(
        **common,
        figure="ceiling_in_memory_msgs_per_s",
        value=round(ceiling_rate, 1),
        submitters=submitters,
        seconds=round(ceiling.seconds, 3),
        cpu_us_per_message=round(ceiling.cpu_seconds / n * 1e6, 1),
    )
    ratios = {
        "ratio": tl_rate / base_rate,
        "ratio_one_connection": tl_rate / single_rate,
        "ceiling_ratio": ceiling_rate / base_rate,
    }
    emit(
        **common,
        figure="ratio",
        value=round(ratios["ratio"], 3),
        target=target,
        meets_target=ratios["ratio"] >= target,
    )
    emit(**common, figure="ratio_one_connection", value=round(ratios["ratio_one_connection"], 3))
    emit(
        **common,
        figure="ceiling_ratio",
        value=round(ratios["ceiling_ratio"], 3),
        target=target,
        target_reachable=ratios["ceiling_ratio"] >= target,
    )
    return ratios


def report_median(backend: str, ratios: dict[str, list[float]]) -> None:
    """The figures to quote: the median of each ratio over the runs (noise moves single runs)."""
    for name, values in ratios.items():
        if not values:
            continue
        median = statistics.median(values)
        verdict: dict[str, Any] = {}
        if name == "ratio":
            verdict = {"target": TARGETS[backend], "meets_target": median >= TARGETS[backend]}
        elif name == "ceiling_ratio":
            verdict = {"target": TARGETS[backend], "target_reachable": median >= TARGETS[backend]}
        emit(
            backend=backend,
            figure=f"{name}_median",
            value=round(median, 3),
            runs=len(values),
            min=round(min(values), 3),
            max=round(max(values), 3),
            **verdict,
        )


def show_errors(label: str, errors: list[str]) -> None:
    if not errors:
        return
    log(f"{label}: {len(errors)} error(s); the first {min(len(errors), MAX_ERRORS_SHOWN)}:")
    for text in errors[:MAX_ERRORS_SHOWN]:
        print(text, file=sys.stderr, end="" if text.endswith("\n") else "\n")


# -- backends -----------------------------------------------------------------------------


def bench_sqlite(
    args: argparse.Namespace, workload: Workload, deadline: float, run: int, ratios: Ratios
) -> bool:
    name = f"threadline-{uuid.uuid4().hex[:8]}.db"
    url = f"sqlite:///{os.path.abspath(os.path.join(args.workdir, name))}"
    path = sqlite_path(url)
    assert library_env(url)["SQLITE_DBNAME"] == path
    log(f"sqlite: threadline run on {path}")
    tl = run_threadline(url, workload, args.submitters, deadline)
    log(f"sqlite: threadline {len(workload.messages) / tl.seconds:.0f} msg/s; baselines next")
    base = run_sqlite_baseline(path, workload.bodies, args.submitters, deadline)
    single = run_sqlite_baseline(path, workload.bodies, 1, deadline)
    figures = RunFigures(tl, base, single, _ceiling("sqlite", args, workload, deadline))
    return _finish("sqlite", args, workload, figures, run, ratios)


def bench_postgres(
    args: argparse.Namespace, workload: Workload, deadline: float, run: int, ratios: Ratios
) -> bool:
    import psycopg

    parts = urlsplit(args.postgres_url)
    conninfo = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    url = f"{conninfo}?schema={schema}"
    log(f"postgres: threadline run in schema {schema}")
    try:
        tl = run_threadline(url, workload, args.submitters, deadline)
        log(f"postgres: threadline {len(workload.messages) / tl.seconds:.0f} msg/s; baselines next")
        base = run_postgres_baseline(conninfo, schema, workload.bodies, args.submitters, deadline)
        single = run_postgres_baseline(conninfo, schema, workload.bodies, 1, deadline)
    finally:
        try:
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            log(f"postgres: dropped schema {schema}")
        except Exception as error:
            log(f"postgres: could not drop schema {schema}: {error!r}")
    figures = RunFigures(tl, base, single, _ceiling("postgres", args, workload, deadline))
    return _finish("postgres", args, workload, figures, run, ratios)


def _ceiling(
    backend: str, args: argparse.Namespace, workload: Workload, deadline: float
) -> CeilingResult:
    log(f"{backend}: in-memory ceiling next")
    return run_in_memory_ceiling(workload, args.submitters, deadline)


def _finish(
    backend: str,
    args: argparse.Namespace,
    workload: Workload,
    figures: RunFigures,
    run: int,
    ratios: Ratios,
) -> bool:
    """Print the figures; False when the run had errors (a missed target is not an error)."""
    tl = figures.threadline
    bases = (figures.baseline, figures.baseline_one_connection)
    show_errors(f"{backend} threadline", tl.errors)
    for label, base in zip(("baseline", "one-connection baseline"), bases, strict=True):
        show_errors(f"{backend} {label}", base.errors)
    show_errors(f"{backend} in-memory ceiling", figures.ceiling.errors)
    errors = len(tl.errors) + sum(len(b.errors) for b in bases) + len(figures.ceiling.errors)
    ok = not errors and all(b.rows == len(workload.messages) for b in bases)
    if tl.duplicates != workload.duplicates:
        log(f"{backend}: {tl.duplicates} duplicates reported, {workload.duplicates} expected")
        ok = False
    if tl.latencies and all(b.rows for b in bases):
        run_ratios = report(backend, workload, args.submitters, figures, run)
        if ok:
            for name, value in run_ratios.items():
                ratios.setdefault(name, []).append(value)
    if not ok:
        emit(
            backend=backend,
            figure="errors",
            value=errors,
            threadline_errors=len(tl.errors),
            baseline_errors=sum(len(b.errors) for b in bases),
            baseline_rows=[b.rows for b in bases],
        )
    return ok


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure Threadline ingest throughput against a one-INSERT-per-transaction "
        "baseline, on SQLite and PostgreSQL. Prints JSON lines on stdout."
    )
    parser.add_argument("--messages", type=int, default=20_000, help="messages to ingest")
    parser.add_argument("--submitters", type=int, default=32, help="concurrent submitter threads")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("THREADLINE_TEST_POSTGRES_URL")
        or "postgresql://postgres@127.0.0.1:5432/test",
        help="server to use; a fresh schema bench_<random> is created and dropped",
    )
    parser.add_argument(
        "--workdir", default=None, help="folder for SQLite files (default: a new folder in /tmp)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the SQLite files afterwards")
    parser.add_argument("--seed", type=int, default=20240601, help="workload random seed")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per backend (the median ratio is reported)"
    )
    parser.add_argument(
        "--timeout", type=float, default=1800.0, help="give up a backend's run after this many s"
    )
    args = parser.parse_args(argv)
    if args.messages < 1 or args.submitters < 1 or args.repeat < 1:
        parser.error("--messages, --submitters and --repeat must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    created_workdir = args.workdir is None
    if created_workdir:
        args.workdir = tempfile.mkdtemp(prefix="threadline-bench-", dir="/tmp")
    else:
        os.makedirs(args.workdir, exist_ok=True)
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    log(f"building {args.messages} messages (seed {args.seed})")
    workload = build_workload(args.messages, args.seed)
    log(
        f"{workload.new_senders} new senders, {workload.repeat_messages} repeat-sender messages, "
        f"{workload.duplicates} duplicates"
    )
    failed = False
    try:
        for backend in backends:
            ratios: Ratios = {}
            for run in range(1, args.repeat + 1):
                deadline = time.monotonic() + args.timeout
                log(f"{backend}: run {run} of {args.repeat}")
                try:
                    runner = bench_sqlite if backend == "sqlite" else bench_postgres
                    if not runner(args, workload, deadline, run, ratios):
                        failed = True
                except Exception as error:
                    failed = True
                    log(f"{backend}: the benchmark failed")
                    traceback.print_exc(file=sys.stderr)
                    emit(backend=backend, run=run, figure="errors", value=1, error=repr(error))
            report_median(backend, ratios)
    finally:
        if created_workdir and not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)
        else:
            log(f"SQLite files kept in {args.workdir}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
