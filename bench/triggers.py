"""The trigger engine under load: automatic-reply latency and rule-evaluation throughput.

Three measurements, each next to a baseline taken in the same run:

1. **Automatic-reply latency.** A fresh `Runtime` (views in a child process, as
   under `threadline serve`) with its trigger engine running, one template, one
   rule "when message.received, send_template on the same channel" and some
   enabled rules that do not match. Inbound messages are offered open-loop at a
   steady rate (a scheduler thread hands each one, at its time in a fixed
   timetable, to a small pool of submitter threads calling
   `runtime.app.ingest`). Afterwards the log is read: for every inbound message,
   the latency is the timestamp of the automatic reply's `MessageSendRequested`
   minus that of the `MessageReceived`. Baselines: the ingest call's own latency
   (timetable slot to commit) and the views' (timetable slot until the views
   show the message).
2. **Rules evaluated per second.** `decide()`, the pure evaluator, with 1,000
   active rules over a few thousand trigger events taken from the log of run 1,
   with their facts read from its views beforehand (that read is the baseline:
   the runner does it for every event that has candidate rules).
3. **Runner throughput.** A fresh runtime with 1,000 rules in a running engine:
   messages are ingested as fast as a pool of submitters can, and the clock runs
   until the runner has handled the last notification, including the firings'
   own events. The baseline is the same run with no rules.
4. **The reminder scan.** 10,000 open tasks, due at distinct times over the past
   week, and one "task.overdue → notify the assignee" rule; the clock runs from the
   runner's start until every task has its reminder in the views (target: within
   60 s, each exactly once, checked again after two more scan periods). Then the
   idle CPU of that server holding them (this process plus the views' process,
   CPU seconds a minute), against a fresh server with the same rule and no tasks.

stdout carries one JSON object per figure; progress goes to stderr. The exit
code is 0 when the measurements ran, whether or not the target was met, and 1
when something failed (an ingest error, a message without exactly one reply, a
runner that did not catch up before the deadline). See bench/README.md.
"""

from __future__ import annotations

import argparse
import bisect
import json
import logging
import math
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from eventsourcing.utils import get_topic

from threadline.domain.model.inbound import InboundMessage
from threadline.domain.model.message import Message
from threadline.domain.model.rule import RuleFiring
from threadline.projections.automation import fired_causes
from threadline.services.config import Settings
from threadline.services.runtime import Runtime
from threadline.triggers import runner as runner_module
from threadline.triggers.evaluator import ActiveRule, decide
from threadline.triggers.events import TriggerEvent, to_trigger_event
from threadline.triggers.facts import FactReader
from threadline.triggers.rules import validate_rule, when_matches

TARGET_P99_MS = 100.0
REMINDER_TARGET_SECONDS = 60.0  # 10,000 overdue tasks, each reminded once, within a minute
ACTOR = "user:bench"
TEMPLATE = "bench-auto-reply"
CHANNELS = ("email", "sms", "telegram", "web")
WORDS = (
    *("hello", "order", "delivery", "invoice", "refund", "question", "thanks", "please"),
    *("tomorrow", "account", "payment", "address", "parcel", "tracking", "status"),
    *("urgent", "support", "price", "discount", "call", "back", "weekend", "office"),
    *("manager", "contract", "renewal", "subscription", "cancel", "update", "confirm"),
)
SKUS = 200  # product codes sku-000 .. sku-199; one message in five names one
CATCH_UP_TIMEOUT = 300.0  # seconds the runner may need after the last message
SAMPLE_SECONDS = 0.001  # how often the views' position is sampled
MAX_ERRORS_SHOWN = 3


def log(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def emit(**fields: Any) -> None:
    print(json.dumps({"bench": "triggers", **fields}), flush=True)


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = max(0, math.ceil(fraction * len(sorted_values)) - 1)
    return sorted_values[index]


def summary_ms(values: list[float]) -> dict[str, Any]:
    """p50 / p90 / p99 / max / mean of latencies given in seconds, in milliseconds."""
    ordered = sorted(values)
    if not ordered:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    return {
        "n": len(ordered),
        "p50": round(percentile(ordered, 0.50) * 1000, 2),
        "p90": round(percentile(ordered, 0.90) * 1000, 2),
        "p99": round(percentile(ordered, 0.99) * 1000, 2),
        "max": round(ordered[-1] * 1000, 2),
        "mean": round(sum(ordered) / len(ordered) * 1000, 2),
    }


# -- the workload -------------------------------------------------------------------------


def _text(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(12, 40))]
    if rng.random() < 0.2:  # a message about one product
        words.insert(rng.randrange(len(words)), f"sku-{rng.randrange(SKUS):03d}")
    return " ".join(words).capitalize() + "."


def build_messages(count: int, seed: int, prefix: str) -> list[InboundMessage]:
    """~70% from a new sender, ~30% from one seen before (same channel and identity)."""
    rng = random.Random(seed)
    senders: list[tuple[str, list[tuple[str, str | int]]]] = []
    messages: list[InboundMessage] = []
    for index in range(count):
        if senders and rng.random() < 0.3:
            channel, identities = rng.choice(senders)
        else:
            number = len(senders) + 1
            channel = rng.choice(CHANNELS)
            identities = {
                "email": [("email", f"user{number}@example.com")],
                "web": [("email", f"visitor{number}@example.com")],
                "sms": [("phone", f"+7916{number:07d}")],
                "telegram": [("telegram", 100_000_000 + number)],
            }[channel]
            senders.append((channel, identities))
        messages.append(
            InboundMessage.create(
                channel=channel,
                dedup_key=f"{prefix}-{index}",
                identities=identities,
                sender_name=f"Client {rng.randrange(1, 10_000)}",
                subject="Question about my order" if channel == "email" else "",
                text=_text(rng),
                metadata={"bench": prefix, "index": index},
            )
        )
    return messages


# -- rules --------------------------------------------------------------------------------

AUTO_REPLY: dict[str, Any] = {
    "name": "Acknowledge every inbound message",
    "priority": 10,
    "when": {"event": "message.received"},
    "then": [{"send_template": {"template": TEMPLATE, "channel": "same"}}],
}
TEMPLATE_VARIANTS = {
    "default": {
        "text": "Hello {{ contact.first_name or contact.display_name }}, thank you for"
        " writing. We will answer you shortly."
    },
    "email": {
        "subject": "Re: {{ conversation.subject or 'your message' }}",
        "text": "Hello {{ contact.first_name or contact.display_name }},\n\nthank you for"
        " writing. We will answer you shortly.",
    },
}
TASK = {"create_task": {"title": "Look at {{ contact.display_name }}", "due_in": "1h"}}

# Enabled rules that are evaluated for the workload's events but never fire on it: the
# latency run's background (the engine reads facts and evaluates them for nothing).


def _rule(
    name: str,
    event: str,
    condition: dict[str, Any] | None = None,
    action: dict[str, Any] = TASK,
    channel: str = "",
) -> dict[str, Any]:
    rule: dict[str, Any] = {"name": name, "when": {"event": event}, "then": [action]}
    if channel:
        rule["when"]["channel"] = channel
    if condition is not None:
        rule["if"] = condition
    return rule


def _is(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value}


QUIET_RULES: tuple[dict[str, Any], ...] = (
    _rule("WhatsApp to the mobile team", "message.received", channel="whatsapp"),
    _rule("Calls need a callback", "message.received", channel="voice"),
    _rule("Urgent refunds", "message.received", _is("event.text", "contains", "refund-urgent")),
    _rule(
        "Order cancellations",
        "message.received",
        _is("event.text", "regex", r"\bcancel(led|lation)? order #\d{6}\b"),
        {"add_tag": "cancellation"},
    ),
    _rule(
        "VIP e-mail",
        "message.received",
        _is("contact.tags", "contains", "vip"),
        {"assign_conversation": {"assignee": "responsible"}},
        channel="email",
    ),
    _rule(
        "Very chatty clients",
        "message.received",
        _is("contact.inbound_count", "gt", 500),
        {"add_tag": "chatty"},
    ),
    _rule(
        "Customers asking about invoices",
        "message.received",
        {
            "all": [
                _is("contact.lifecycle", "eq", "customer"),
                _is("event.text", "contains", "invoice"),
            ]
        },
    ),
    _rule(
        "Partners by channel",
        "message.received",
        {
            "all": [
                _is("event.channel", "in", ["email", "web"]),
                _is("contact.tags", "contains", "partner"),
            ]
        },
        {"add_tag": "partner-request"},
    ),
    _rule(
        "Replies on WhatsApp",
        "message.sent",
        _is("event.channel", "eq", "whatsapp"),
        {"add_tag": "whatsapp-user"},
    ),
    _rule(
        "Operator replies to VIPs",
        "message.sent",
        {
            "all": [
                _is("event.actor", "starts_with", "user:"),
                _is("contact.tags", "contains", "vip"),
            ]
        },
    ),
    _rule("New WhatsApp conversation", "conversation.opened", channel="whatsapp"),
    _rule("Reopened by a VIP", "conversation.opened", _is("contact.tags", "contains", "vip")),
    _rule(
        "Leads from the 2019 newsletter",
        "lead.created",
        _is("event.source.utm_campaign", "eq", "newsletter-2019"),
        {"add_tag": "newsletter"},
    ),
    _rule(
        "Contacts from a partner portal",
        "contact.created",
        _is("event.source.referrer", "contains", "partners.example.net"),
        {"add_tag": "partner"},
    ),
    _rule(
        "VIP tag tells the manager",
        "tag.added",
        _is("event.tags", "contains", "vip"),
        {"notify": {"text": "A new VIP: {{ contact.display_name }}"}},
    ),
    _rule(
        "Web forms get a welcome",
        "form.submitted",
        action={"send_template": {"template": TEMPLATE, "channel": "email"}},
    ),
    _rule("Missed calls", "call.missed"),
    _rule(
        "Resolved: ask for feedback",
        "conversation.resolved",
        action={"send_template": {"template": TEMPLATE}},
    ),
    _rule("Won deals", "deal.won", action={"add_tag": "customer"}),
    _rule(
        "Tasks for the night shift",
        "task.created",
        _is("event.type", "eq", "night"),
        {"add_tag": "night"},
    ),
)

# (trigger name, weight) of the generated rules' `when`; most are not message.received.
EVENT_MIX: tuple[tuple[str, int], ...] = (
    ("message.received", 15),
    ("message.sent", 8),
    ("conversation.opened", 8),
    ("contact.created", 6),
    ("lead.created", 6),
    ("tag.added", 8),
    ("task.created", 8),
    ("contact.attribute_changed", 5),
    ("conversation.resolved", 5),
    ("form.submitted", 6),
    ("call.missed", 5),
    ("call.received", 3),
    ("deal.stage_changed", 7),
    ("deal.won", 4),
    ("deal.created", 1),
    ("payment.due", 1),  # date triggers: the money flow's scan reads their rows, not events
    ("contract.expiring", 1),
    ("deal.lost", 3),
)
CHANNEL_EVENTS = {"message.received", "message.sent", "conversation.opened", "form.submitted"}


def _leaf(rng: random.Random, rare: bool) -> dict[str, Any]:
    """One condition leaf; `rare` ones hold for well under 1% of the workload's events."""
    if rare:
        kind = rng.choice(("sku", "sku", "regex", "lifecycle", "count", "tag"))
        if kind == "sku":
            return _is("event.text", "contains", f"sku-{rng.randrange(SKUS):03d}")
        if kind == "regex":
            return _is("event.text", "regex", rf"\bsku-{rng.randrange(SKUS):03d}\b")
        if kind == "lifecycle":
            return _is("contact.lifecycle", "eq", rng.choice(("customer", "partner")))
        if kind == "count":
            return _is("contact.inbound_count", "gt", rng.randint(50, 500))
        return _is("contact.tags", "contains", f"segment-{rng.randrange(50)}")
    kind = rng.choice(("word", "word", "in", "regex", "count", "lead", "messages"))
    if kind == "word":
        return _is("event.text", "contains", rng.choice(WORDS))
    if kind == "in":
        return _is("event.channel", "in", rng.sample(CHANNELS, 2))
    if kind == "regex":
        first, second = rng.sample(WORDS, 2)
        return _is("event.text", "regex", rf"\b{first}\b.{{0,80}}\b{second}\b")
    if kind == "count":
        return _is("contact.inbound_count", "gt", rng.randint(0, 3))
    if kind == "lead":
        return _is("contact.lifecycle", "eq", "lead")
    return _is("conversation.message_count", "gt", rng.randint(1, 4))


def generated_rules(count: int, seed: int) -> list[dict[str, Any]]:
    """`count` rules: the auto-reply, the quiet ones, then a seeded mix of the rest.

    Each generated rule has one to three leaves under `all` (or `any`); about one in
    hundred has only common leaves, so a message sets off about one rule besides the
    auto-reply, as in a real set where most rules are about something else.
    """
    rng = random.Random(seed)
    rules: list[dict[str, Any]] = [AUTO_REPLY, *QUIET_RULES][:count]
    names = [name for name, _ in EVENT_MIX]
    weights = [weight for _, weight in EVENT_MIX]
    while len(rules) < count:
        number = len(rules)
        event = rng.choices(names, weights)[0]
        when: dict[str, Any] = {"event": event}
        if event in CHANNEL_EVENTS and rng.random() < 0.3:
            when["channel"] = rng.choice((*CHANNELS, "whatsapp", "voice"))
        common_only = rng.random() < 0.01
        leaves = [_leaf(rng, rare=not common_only)]
        leaves += [_leaf(rng, rare=False) for _ in range(rng.randint(0, 2))]
        rng.shuffle(leaves)
        condition: dict[str, Any] = (
            leaves[0] if len(leaves) == 1 else {rng.choice(("all", "all", "any")): leaves}
        )
        if "any" in condition:  # keep `any` rules rare too: the rare leaf must hold as well
            condition = {"all": [_leaf(rng, rare=not common_only), condition]}
        draw = rng.random()
        if draw < 0.4:
            action: dict[str, Any] = {"add_tag": f"auto-{number % 40}"}
        elif draw < 0.75:
            action = TASK
        elif draw < 0.9:
            action = {"assign_conversation": {"assignee": "responsible"}}
        else:
            action = {"send_template": {"template": TEMPLATE, "channel": "same"}}
        rules.append(
            {
                "name": f"Generated rule {number} ({event})",
                "priority": rng.randint(20, 200),
                "when": when,
                "if": condition,
                "then": [action],
            }
        )
    return [validate_rule(rule, lambda slug: slug == TEMPLATE) for rule in rules]


# -- a runtime ----------------------------------------------------------------------------


@dataclass
class Store:
    """Where one run's runtime lives; `new_url()` gives a fresh database each call."""

    name: str
    workdir: str
    postgres_conninfo: str = ""
    schemas: list[str] = field(default_factory=list)

    def new_url(self, label: str) -> str:
        if self.name == "sqlite":
            path = os.path.join(self.workdir, f"{label}-{uuid.uuid4().hex[:8]}.db")
            return f"sqlite:///{os.path.abspath(path)}"
        schema = f"bench_{label.replace('-', '_')}_{uuid.uuid4().hex[:10]}"
        self.schemas.append(schema)
        return f"{self.postgres_conninfo}?schema={schema}"

    def drop(self) -> None:
        if not self.schemas:
            return
        import psycopg

        try:
            with psycopg.connect(self.postgres_conninfo, autocommit=True, connect_timeout=10) as db:
                for schema in self.schemas:
                    db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            log(f"postgres: dropped schemas {', '.join(self.schemas)}")
            self.schemas.clear()
        except Exception as error:
            log(f"postgres: could not drop schemas {self.schemas}: {error!r}")


def open_runtime(store: Store, label: str) -> Runtime:
    settings = Settings(database_url=store.new_url(label)).with_overrides(
        automatic_messages_per_day=10**9,  # every message gets its reply, however many
        log_level="WARNING",
        attachments_dir=os.path.join(store.workdir, "attachments"),
        run_channels=False,
    )
    # views_in_process=False: the views run in their own process, as under `threadline serve`.
    runtime = Runtime(settings, views_in_process=False)
    runtime.start()
    return runtime


def install_rules(
    runtime: Runtime, rules: list[dict[str, Any]], deadline: float
) -> list[uuid.UUID]:
    """The template and the rules, saved concurrently (the writer batches them)."""
    app = runtime.app
    app.save_template(TEMPLATE, "Automatic acknowledgement", TEMPLATE_VARIANTS, ACTOR)
    if not rules:
        return []
    with ThreadPoolExecutor(16, thread_name_prefix="bench-rules") as pool:
        futures = [pool.submit(app.save_rule, rule, ACTOR) for rule in rules]
        _, pending = wait(futures, timeout=max(1.0, deadline - time.monotonic()))
        if pending:
            raise TimeoutError(f"{len(pending)} rules not saved before the deadline")
        ids = [f.result().value for f in futures]
    last = app.recorder.max_notification_id() or 0
    if not runtime.wait_for_views(last, timeout=60.0):
        raise TimeoutError("the views did not show the rules within 60 s")
    return ids


class RunnerBreakdown:
    """Where the trigger runner's thread spends its wall time (`--breakdown`).

    Wraps, on this runtime's objects only, the calls the runner's loop makes, and counts
    the time only when the caller is the runner's own thread (named ``triggers``), so
    the parts do not overlap: reading and decoding the log, cancelling timers, waiting
    for the views, reading facts, deciding, preparing actions, committing the firing
    (the writer's round trip), looking up a chain's depth, saving the position, due
    timers, and sleeping for want of work. A part counts only when no other part is
    being timed (decoding inside `repository.get` while preparing actions is
    ``prepare_actions``). What is left is ``other`` (turning events into trigger
    events, the loop itself, and waiting for the GIL outside these calls).
    """

    def __init__(self, runtime: Runtime) -> None:
        import threadline.triggers.runner as runner_module

        self.seconds: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self._inside: list[str] = []  # the part being timed (only the runner's thread)
        self.started = time.monotonic()
        self.stopped: float | None = None
        triggers = runtime.triggers
        app = runtime.app
        self._wrap(app.recorder, "select_notifications", "read_log")
        self._wrap(app.mapper, "to_domain_event", "decode_events")
        self._wrap(triggers, "_cancel_timers", "cancel_timers")
        self._wrap(triggers, "wait_for_views", "wait_for_views")
        self._wrap(triggers.facts, "facts", "read_facts")
        self._wrap(triggers, "_prepare_actions", "prepare_actions")
        self._wrap(app.writer, "submit", "commit_firing")
        self._wrap(triggers, "_depth", "depth_lookup")
        self._wrap(triggers.state, "set", "save_position")
        self._wrap(triggers, "fire_due_timers", "due_timers")
        self._wrap(triggers._wake, "wait", "idle")
        self._module = runner_module
        self._decide = runner_module.decide
        runner_module.decide = self._timed(self._decide, "decide")  # type: ignore[attr-defined]
        follower = getattr(runtime.follower, "_process", None)
        self._views_pid: int | None = getattr(follower, "pid", None)
        self._cpu_start = self._cpu()
        self._cpu_stop: dict[str, float] = {}

    def _timed(self, call: Callable[..., Any], part: str) -> Callable[..., Any]:
        seconds, calls, inside = self.seconds, self.calls, self._inside

        def timed(*args: Any, **kwargs: Any) -> Any:
            if inside or threading.current_thread().name != "triggers":
                return call(*args, **kwargs)  # another thread, or nested in a timed part
            inside.append(part)
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                seconds[part] += time.perf_counter() - started
                calls[part] += 1
                inside.pop()

        return timed

    def _wrap(self, owner: Any, name: str, part: str) -> None:
        setattr(owner, name, self._timed(getattr(owner, name), part))

    def _cpu(self) -> dict[str, float]:
        """CPU seconds so far: this process, its long-lived threads, the views process."""
        times = os.times()
        cpu = {"process": times.user + times.system}
        wanted = {"triggers": "runner_thread", "threadline-writer": "writer_thread"}
        for thread in threading.enumerate():
            if thread.name in wanted and thread.native_id is not None:
                cpu[wanted[thread.name]] = _proc_cpu(f"/proc/self/task/{thread.native_id}/stat")
        if self._views_pid is not None:
            cpu["views_process"] = _proc_cpu(f"/proc/{self._views_pid}/stat")
        return cpu

    def stop(self) -> None:
        self.stopped = time.monotonic()
        self._cpu_stop = self._cpu()
        self._module.decide = self._decide  # type: ignore[attr-defined]

    def figure(self, messages: int) -> dict[str, Any]:
        wall = (self.stopped or time.monotonic()) - self.started
        parts = dict(self.seconds)
        parts["other"] = max(0.0, wall - sum(parts.values()))
        order = sorted(parts, key=lambda part: -parts[part])
        cpu = {
            key: self._cpu_stop[key] - self._cpu_start.get(key, 0.0)
            for key in self._cpu_stop
            if not math.isnan(self._cpu_stop[key])
        }
        if "process" in cpu:
            cpu["other_threads"] = cpu["process"] - sum(
                cpu.get(k, 0.0) for k in ("runner_thread", "writer_thread")
            )
        return {
            "wall_seconds": round(wall, 3),
            "cpu_ms_per_message": {
                k: round(v / max(1, messages) * 1000, 3) for k, v in cpu.items()
            },
            "cpu_share_of_a_core": {k: round(v / wall, 3) for k, v in cpu.items()},
            "ms_per_message": {p: round(parts[p] / max(1, messages) * 1000, 3) for p in order},
            "share": {p: round(parts[p] / wall, 3) for p in order},
            "calls": dict(self.calls),
        }


def _proc_cpu(stat_path: str) -> float:
    """utime + stime of a process or thread from /proc, in seconds (NaN if unreadable)."""
    try:
        with open(stat_path) as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for_runner(runtime: Runtime, deadline: float, label: str) -> tuple[bool, float]:
    """Until the runner has handled everything in the log; (caught up?, monotonic time)."""
    triggers = runtime.triggers
    last_report = time.monotonic()
    while True:
        position = triggers.position()
        head = runtime.app.recorder.max_notification_id() or 0
        now = time.monotonic()
        if position >= head:
            return True, now
        if now > deadline:
            log(f"{label}: the runner is at {position} of {head} at the deadline")
            return False, now
        if now - last_report > 5.0:
            last_report = now
            log(f"{label}: runner at {position} of {head} (last error {triggers.last_error!r})")
        time.sleep(0.005)


# -- 1. automatic-reply latency -----------------------------------------------------------


@dataclass
class Offer:
    """One inbound message of the timetable and what happened to it (monotonic seconds)."""

    message: InboundMessage
    due: float = math.nan  # its slot in the timetable
    started: float = math.nan  # when a submitter called ingest
    committed: float = math.nan  # when ingest returned
    notification_id: int | None = None
    error: str | None = None


class ViewsWatch(threading.Thread):
    """Samples the views' position (shared memory with the views process) every millisecond."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(name="bench-views-watch", daemon=True)
        self.runtime = runtime
        self.times: list[float] = []
        self.positions: list[int] = []
        self.halt = threading.Event()

    def run(self) -> None:
        last = -1
        while not self.halt.is_set():
            position = self.runtime.views_position()
            if position != last:
                self.times.append(time.monotonic())
                self.positions.append(position)
                last = position
            time.sleep(SAMPLE_SECONDS)

    def seen_at(self, notification_id: int) -> float | None:
        index = bisect.bisect_left(self.positions, notification_id)
        return self.times[index] if index < len(self.times) else None


def offer_open_loop(
    runtime: Runtime, offers: list[Offer], rate: float, submitters: int, deadline: float
) -> None:
    """Hand each message to the pool at its slot, whether or not earlier ones are done."""

    def submit(offer: Offer) -> None:
        offer.started = time.monotonic()
        try:
            offer.notification_id = runtime.app.ingest(offer.message).notification_id
        except Exception:
            offer.error = traceback.format_exc()
        offer.committed = time.monotonic()

    interval = 1.0 / rate
    with ThreadPoolExecutor(submitters, thread_name_prefix="bench-submit") as pool:
        start = time.monotonic() + 0.05
        futures = []
        last_report = start
        for index, offer in enumerate(offers):
            due = start + index * interval
            now = time.monotonic()
            if now > deadline:
                log("latency: the deadline passed while offering messages")
                break
            if due > now:
                time.sleep(due - now)
            offer.due = due
            futures.append(pool.submit(submit, offer))
            if due - last_report > 5.0:
                last_report = due
                log(f"latency: {index + 1}/{len(offers)} offered")
        wait(futures, timeout=max(1.0, deadline - time.monotonic()))


@dataclass
class LogReading:
    received: dict[str, float]  # inbound message id -> MessageReceived timestamp (epoch s)
    replies: dict[str, list[float]]  # inbound message id -> reply timestamps (fired)
    skipped: dict[str, str]  # inbound message id -> why the auto-reply was skipped
    notifications: int


def read_replies(runtime: Runtime, start: int, rule_id: uuid.UUID, deadline: float) -> LogReading:
    """Pair each auto-reply firing with its inbound message, from the stored events."""
    app = runtime.app
    topics = [
        get_topic(Message.MessageReceived),
        get_topic(Message.MessageSendRequested),
        get_topic(RuleFiring.RuleFired),
    ]
    received: dict[str, float] = {}
    sent: dict[str, float] = {}
    firings: list[tuple[str, str, list[str], float, str]] = []
    head = app.recorder.max_notification_id() or 0
    position = start
    read = 0
    while position <= head and time.monotonic() < deadline:
        page = app.recorder.select_notifications(start=position, limit=1000, topics=topics)
        if not page:
            break
        for notification in page:
            event = app.mapper.to_domain_event(notification)
            stamp = event.timestamp.timestamp()
            if isinstance(event, Message.MessageReceived):
                received[str(event.originator_id)] = stamp
            elif isinstance(event, Message.MessageSendRequested):
                sent[str(event.originator_id)] = stamp
            elif isinstance(event, RuleFiring.RuleFired) and event.rule_id == rule_id:
                effects = [str(e["message_id"]) for e in event.effects if "message_id" in e]
                skipped = "; ".join(str(e["skipped"]) for e in event.effects if "skipped" in e)
                cause = str(event.cause.get("originator_id", ""))
                firings.append((cause, event.outcome, effects, stamp, event.reason or skipped))
        read += len(page)
        position = page[-1].id + 1
    replies: dict[str, list[float]] = {}
    skipped_by: dict[str, str] = {}
    for cause, outcome, effects, stamp, reason in firings:
        if outcome == "fired" and effects:
            replies.setdefault(cause, []).extend(sent.get(e, stamp) for e in effects)
        else:
            skipped_by[cause] = reason or outcome
    return LogReading(received, replies, skipped_by, read)


@dataclass
class LatencyResult:
    figures: list[dict[str, Any]]
    errors: list[str]
    runtime: Runtime | None  # kept open for the evaluator's facts; the caller closes it
    first_notification: int


def run_latency(store: Store, args: argparse.Namespace, deadline: float) -> LatencyResult:
    runtime = open_runtime(store, "latency")
    errors: list[str] = []
    try:
        rules = generated_rules(1 + args.other_rules, args.seed)
        rule_ids = install_rules(runtime, rules, deadline)
        auto_reply = rule_ids[0]
        runtime.start_triggers()
        caught_up, _ = wait_for_runner(runtime, time.monotonic() + 60, "latency setup")
        if not caught_up:
            raise TimeoutError("the runner did not read the rules within 60 s")
        log(f"{store.name} latency: {len(rules)} rules, warming up")
        warmup = [Offer(m) for m in build_messages(int(args.rate), args.seed + 1, "warmup")]
        offer_open_loop(runtime, warmup, args.rate, args.submitters, deadline)
        wait_for_runner(runtime, time.monotonic() + 60, "latency warm-up")
        first = (runtime.app.recorder.max_notification_id() or 0) + 1
        count = max(1, round(args.rate * args.duration))
        offers = [Offer(m) for m in build_messages(count, args.seed, "load")]
        log(f"{store.name} latency: {count} messages at {args.rate:g}/s, open loop")
        watch = ViewsWatch(runtime)
        watch.start()
        breakdown = RunnerBreakdown(runtime) if args.breakdown else None
        wall_offset = time.time() - time.monotonic()
        offer_open_loop(runtime, offers, args.rate, args.submitters, deadline)
        last = max((o.notification_id or 0 for o in offers), default=0)
        views_deadline = time.monotonic() + 60
        while not runtime.wait_for_views(last, timeout=1.0) and time.monotonic() < views_deadline:
            log(f"latency: views at {runtime.views_position()} of {last}")
        caught_up, _ = wait_for_runner(
            runtime, min(deadline, time.monotonic() + CATCH_UP_TIMEOUT), "latency"
        )
        watch.halt.set()
        watch.join(timeout=5)
        if breakdown is not None:
            breakdown.stop()
        if not caught_up:
            errors.append("latency: the runner did not catch up before the deadline\n")
        errors.extend(o.error for o in offers if o.error)
        reading = read_replies(runtime, first, auto_reply, deadline)
        figures = latency_figures(store.name, args, offers, reading, watch, wall_offset, errors)
        if breakdown is not None:
            figures.append(
                {
                    "figure": "runner_breakdown",
                    "store": store.name,
                    "run": "latency",
                    "rules": len(rules),
                    **breakdown.figure(len(offers)),
                }
            )
        return LatencyResult(figures, errors, runtime, first)
    except BaseException:
        runtime.close()
        raise


def latency_figures(
    store: str,
    args: argparse.Namespace,
    offers: list[Offer],
    reading: LogReading,
    watch: ViewsWatch,
    wall_offset: float,
    errors: list[str],
) -> list[dict[str, Any]]:
    reply_latency: list[float] = []  # MessageReceived -> MessageSendRequested (event times)
    from_slot: list[float] = []  # timetable slot -> MessageSendRequested
    ingest: list[float] = []  # timetable slot -> ingest returned (the commit)
    ingest_call: list[float] = []  # ingest called -> returned (no pool queueing)
    views: list[float] = []  # timetable slot -> the views show the message
    after_views: list[float] = []  # the views show the message -> MessageSendRequested
    missing: list[str] = []
    duplicates = 0
    offered = [o for o in offers if not math.isnan(o.due)]
    for offer in offered:
        key = str(offer.message.message_id)
        if offer.error is None:
            ingest.append(offer.committed - offer.due)
            ingest_call.append(offer.committed - offer.started)
        seen = watch.seen_at(offer.notification_id) if offer.notification_id else None
        if seen is not None:
            views.append(seen - offer.due)
        replies = reading.replies.get(key, [])
        if len(replies) > 1:
            duplicates += 1
        if not replies or key not in reading.received:
            missing.append(key)
            continue
        reply = min(replies)
        reply_latency.append(reply - reading.received[key])
        from_slot.append(reply - (wall_offset + offer.due))
        if seen is not None:
            after_views.append(reply - (wall_offset + seen))
    starts = sorted(o.started for o in offered if not math.isnan(o.started))
    achieved = (len(starts) - 1) / (starts[-1] - starts[0]) if len(starts) > 1 else float("nan")
    lateness = [o.started - o.due for o in offered if not math.isnan(o.started)]
    reply = summary_ms(reply_latency)
    base = summary_ms(ingest)
    if missing:
        reasons = Counter(reading.skipped.get(k, "no firing recorded") for k in missing)
        errors.append(f"latency: {len(missing)} messages without a reply: {dict(reasons)}\n")
    if duplicates:
        errors.append(f"latency: {duplicates} messages with more than one reply\n")
    common = {"store": store, "rate_per_s": args.rate, "rules": 1 + args.other_rules}
    figures = [
        {
            "figure": "auto_reply_latency_ms",
            **common,
            "p50": reply["p50"],
            "p90": reply["p90"],
            "p99": reply["p99"],
            "max": reply["max"],
            "mean": reply["mean"],
            "messages": len(offers),
            "offered": len(offered),
            "offered_rate_per_s": round(achieved, 1),
            "duration_s": args.duration,
            "replies": len(reply_latency),
            "missing": len(missing),
            "duplicates": duplicates,
            "from_slot_p50": summary_ms(from_slot)["p50"],
            "from_slot_p99": summary_ms(from_slot)["p99"],
            "target_p99_ms": TARGET_P99_MS,
            "met": bool(reply["p99"] is not None and reply["p99"] < TARGET_P99_MS)
            and not missing
            and not duplicates,
            "baseline": "ingest_commit_latency_ms",
            "baseline_p50": base["p50"],
            "baseline_p99": base["p99"],
        },
        {
            "figure": "ingest_commit_latency_ms",
            **common,
            **{k: base[k] for k in ("p50", "p90", "p99", "max", "mean")},
            "call_p50": summary_ms(ingest_call)["p50"],
            "call_p99": summary_ms(ingest_call)["p99"],
            "submitters": args.submitters,
            "submit_late_max_ms": round(max(lateness, default=0.0) * 1000, 2),
            "note": "timetable slot to the return of app.ingest (its commit)",
        },
        {
            "figure": "views_latency_ms",
            **common,
            **{k: summary_ms(views)[k] for k in ("n", "p50", "p90", "p99", "max", "mean")},
            "note": "timetable slot until the views process shows the message",
        },
        {
            "figure": "reply_after_views_ms",
            **common,
            **{k: summary_ms(after_views)[k] for k in ("n", "p50", "p90", "p99", "max", "mean")},
            "note": "views show the message -> the reply's MessageSendRequested",
        },
    ]
    return figures


# -- 2. decide(): rules evaluated per second ----------------------------------------------


@dataclass
class Prepared:
    event: TriggerEvent
    facts: dict[str, Any]
    channel: str | None


def prepare_events(
    runtime: Runtime, first: int, count: int, deadline: float
) -> tuple[list[Prepared], float]:
    """Trigger events from the latency run's log, each with its facts read from the views.

    Returns them and the seconds the fact reads took (the baseline figure).
    """
    app = runtime.app
    reader = FactReader(runtime.queries)
    prepared: list[Prepared] = []
    read_seconds = 0.0
    position = first
    head = app.recorder.max_notification_id() or 0
    while len(prepared) < count and position <= head and time.monotonic() < deadline:
        page = app.recorder.select_notifications(start=position, limit=500)
        if not page:
            break
        for notification in page:
            event = app.mapper.to_domain_event(notification)
            trigger = to_trigger_event(event, notification.id)
            if trigger is None:
                continue
            started = time.perf_counter()
            facts = reader.facts(trigger)
            read_seconds += time.perf_counter() - started
            channel = facts.get("event", {}).get("channel")
            prepared.append(Prepared(trigger, facts, channel))
            if len(prepared) >= count:
                break
        position = page[-1].id + 1
    return prepared, read_seconds


def _evaluated(rule: ActiveRule, item: Prepared) -> bool:
    """Whether `decide` gets as far as this rule's conditions for this event."""
    if not when_matches(rule.definition, item.event.names, item.channel):
        return False
    if item.event.actor == f"rule:{rule.id}":
        return False
    if item.event.automatic and not item.event.actor.startswith("rule:"):
        return False
    return "if" in rule.definition


def _time_decide(
    items: list[Prepared],
    rules_for: Callable[[Prepared], list[ActiveRule]],
    min_seconds: float,
    deadline: float,
) -> tuple[int, float, int]:
    """Run decide over the events, whole passes, for at least `min_seconds`."""
    passes = 0
    decisions = 0
    elapsed = 0.0
    candidates = [rules_for(item) for item in items]
    while (elapsed < min_seconds or passes == 0) and time.monotonic() < deadline:
        started = time.perf_counter()
        for item, rules in zip(items, candidates, strict=True):
            decisions += len(decide(rules, item.event, item.facts))
        elapsed += time.perf_counter() - started
        passes += 1
    return passes, elapsed, decisions


def run_decide(
    store: str,
    runtime: Runtime,
    first: int,
    args: argparse.Namespace,
    deadline: float,
) -> list[dict[str, Any]]:
    log(f"decide: reading {args.decide_events} trigger events and their facts")
    items, read_seconds = prepare_events(runtime, first, args.decide_events, deadline)
    if not items:
        raise RuntimeError("no trigger events in the latency run's log")
    rules = [
        ActiveRule(uuid.uuid4(), 1, definition)
        for definition in generated_rules(args.rules, args.seed)
    ]
    index: dict[str, list[ActiveRule]] = {}
    for rule in rules:
        index.setdefault(rule.definition["when"]["event"], []).append(rule)

    def candidates(item: Prepared) -> list[ActiveRule]:
        return [r for name in item.event.names for r in index.get(name, ())]

    evaluated = sum(_evaluated(rule, item) for item in items for rule in rules)
    candidate_count = sum(len(candidates(item)) for item in items)
    kinds = Counter(item.event.names[0] for item in items)
    log(f"decide: {len(items)} events, {len(rules)} rules; timing")
    passes, seconds, decisions = _time_decide(items, lambda _: rules, args.decide_seconds, deadline)
    passes_i, seconds_i, decisions_i = _time_decide(
        items, candidates, args.decide_seconds, deadline
    )
    events = len(items)
    common = {"store": store, "rules": len(rules), "events": events}
    return [
        {
            "figure": "rules_evaluated_per_s",
            **common,
            "value": round(evaluated * passes / seconds),
            "rules_considered_per_s": round(len(rules) * events * passes / seconds),
            "events_decided_per_s": round(events * passes / seconds, 1),
            "evaluated_per_event": round(evaluated / events, 2),
            "decisions_per_event": round(decisions / passes / events, 3),
            "us_per_event": round(seconds / passes / events * 1e6, 1),
            "passes": passes,
            "seconds": round(seconds, 3),
            "event_kinds": dict(kinds.most_common(8)),
            "baseline": "facts_reads_per_s",
            "baseline_value": round(events / read_seconds, 1),
            "baseline_us_per_event": round(read_seconds / events * 1e6, 1),
            "note": "all rules passed to decide() for every event",
        },
        {
            "figure": "rules_evaluated_per_s_indexed",
            **common,
            "value": round(evaluated * passes_i / seconds_i),
            "candidates_per_s": round(candidate_count * passes_i / seconds_i),
            "events_decided_per_s": round(events * passes_i / seconds_i, 1),
            "candidates_per_event": round(candidate_count / events, 2),
            "decisions_per_event": round(decisions_i / passes_i / events, 3),
            "us_per_event": round(seconds_i / passes_i / events * 1e6, 1),
            "passes": passes_i,
            "seconds": round(seconds_i, 3),
            "baseline": "facts_reads_per_s",
            "baseline_value": round(events / read_seconds, 1),
            "note": "only the rules whose `when` names the event, as the runner passes them",
        },
    ]


# -- 3. the runner end to end -------------------------------------------------------------


def run_runner(
    store: Store, args: argparse.Namespace, rule_count: int, deadline: float
) -> tuple[dict[str, Any], list[str]]:
    label = f"runner-{rule_count}"
    runtime = open_runtime(store, label)
    errors: list[str] = []
    try:
        rules = generated_rules(rule_count, args.seed) if rule_count else []
        install_rules(runtime, rules, deadline)
        runtime.start_triggers()
        # A first start reads the rules' creation from the log (see TriggerRunner.start).
        wait_for_runner(runtime, deadline, label)
        loaded = len(runtime.triggers.rules)
        if loaded != rule_count:
            errors.append(f"{label}: the runner loaded {loaded} rules, not {rule_count}\n")
        start_head = runtime.app.recorder.max_notification_id() or 0
        messages = build_messages(args.runner_messages, args.seed + 2, label)
        log(f"{store.name} {label}: {len(messages)} messages, {args.runner_submitters} submitters")
        source: Iterator[InboundMessage] = iter(messages)
        lock = threading.Lock()

        def worker() -> int:
            done = 0
            while time.monotonic() < deadline:
                with lock:
                    message = next(source, None)
                if message is None:
                    break
                try:
                    runtime.app.ingest(message)
                    done += 1
                except Exception:
                    errors.append(traceback.format_exc())
            return done

        breakdown = RunnerBreakdown(runtime) if args.breakdown else None
        started = time.monotonic()
        with ThreadPoolExecutor(args.runner_submitters, thread_name_prefix="bench-ingest") as pool:
            futures = [pool.submit(worker) for _ in range(args.runner_submitters)]
            ingested = sum(f.result() for f in futures)
        ingest_done = time.monotonic()
        caught_up, done_at = wait_for_runner(
            runtime, min(deadline, ingest_done + CATCH_UP_TIMEOUT), label
        )
        if breakdown is not None:
            breakdown.stop()
            emit(
                figure="runner_breakdown",
                store=store.name,
                run=label,
                rules=rule_count,
                **breakdown.figure(ingested),
            )
        if not caught_up:
            errors.append(f"{label}: the runner did not catch up before the deadline\n")
        seconds = done_at - started
        head = runtime.app.recorder.max_notification_id() or 0
        figure = {
            "store": store.name,
            "rules": rule_count,
            "messages": ingested,
            "value": round(ingested / seconds, 1),
            "seconds": round(seconds, 3),
            "ingest_seconds": round(ingest_done - started, 3),
            "runner_lag_seconds": round(done_at - ingest_done, 3),
            "notifications": head - start_head,
            "fired": runtime.triggers.fired,
            "fired_per_message": round(runtime.triggers.fired / max(1, ingested), 3),
            "submitters": args.runner_submitters,
        }
        return figure, errors
    finally:
        runtime.close()


# -- running it ---------------------------------------------------------------------------


# -- 4. the reminder scan -----------------------------------------------------------------

REMINDER_RULE = {
    "name": "Remind overdue tasks",
    "when": "task.overdue",
    "then": [{"notify": {"user": "responsible", "text": "Overdue: {{ event.task_id }}"}}],
}


def _server_cpu(runtime: Runtime) -> float:
    """CPU seconds used so far by this process and the views' child process."""
    total = _proc_cpu("/proc/self/stat")
    process = getattr(runtime.follower, "_process", None)
    if process is not None and process.pid is not None:
        child = _proc_cpu(f"/proc/{process.pid}/stat")
        total += 0.0 if math.isnan(child) else child
    return total


def idle_cpu_per_minute(runtime: Runtime, seconds: float) -> float:
    """CPU seconds a minute the server uses while nothing happens (sampled over `seconds`)."""
    before, started = _server_cpu(runtime), time.monotonic()
    time.sleep(seconds)  # the measurement itself: the server is left alone
    return (_server_cpu(runtime) - before) / (time.monotonic() - started) * 60.0


def create_due_tasks(runtime: Runtime, count: int, owner: uuid.UUID, deadline: float) -> None:
    """`count` open tasks, due at distinct times over the past week, created concurrently."""
    now = datetime.now(UTC)
    step = timedelta(days=7) / max(count, 1)

    def create(index: int) -> None:
        runtime.app.create_task(
            ACTOR, f"Task {index}", due_at=now - timedelta(minutes=1) - step * index,
            assignee_id=owner,
        )  # fmt: skip

    with ThreadPoolExecutor(16, thread_name_prefix="bench-tasks") as pool:
        futures = [pool.submit(create, i) for i in range(count)]
        _, pending = wait(futures, timeout=max(1.0, deadline - time.monotonic()))
        if pending:
            raise TimeoutError(f"{len(pending)} tasks not created before the deadline")
        for future in futures:
            future.result()


def reminded(runtime: Runtime, rule_id: uuid.UUID) -> tuple[int, int]:
    """(firings of the rule, distinct tasks among their causes), from the views."""
    causes = fired_causes(runtime.views, rule_id)
    tasks = {cause["key"].split(":")[1] for cause in causes}
    return len(causes), len(tasks)


def run_reminders(
    store: Store, args: argparse.Namespace, deadline: float
) -> tuple[list[dict[str, Any]], list[str]]:
    """10,000 overdue tasks: the time until each got one reminder, and the idle CPU after,
    against a fresh server with the same rule and no tasks (the baseline, measured first)."""
    figures: list[dict[str, Any]] = []
    errors: list[str] = []
    fresh = open_runtime(store, "reminders-fresh")
    try:
        fresh.app.create_user("owner@example.com", "operator", ACTOR)
        fresh.app.save_rule(validate_rule(REMINDER_RULE), ACTOR)
        fresh.start_triggers()
        wait_for_runner(fresh, deadline, "reminders-fresh")
        time.sleep(2 * runner_module.SCAN_SECONDS)  # settled, as the loaded server below
        baseline_cpu = idle_cpu_per_minute(fresh, args.reminder_idle)
    finally:
        fresh.close()
    runtime = open_runtime(store, "reminders")
    try:
        owner, _ = runtime.app.create_user("owner@example.com", "operator", ACTOR).value
        rule_id = runtime.app.save_rule(validate_rule(REMINDER_RULE), ACTOR).value
        log(f"{store.name} reminders: creating {args.reminder_tasks} overdue tasks")
        create_due_tasks(runtime, args.reminder_tasks, owner, deadline)
        head = runtime.app.recorder.max_notification_id() or 0
        if not runtime.wait_for_views(head, timeout=120.0):
            raise TimeoutError("the views did not show the tasks within 120 s")
        started = time.monotonic()
        runtime.start_triggers()
        count, tasks = 0, 0
        while time.monotonic() < deadline:
            count, tasks = reminded(runtime, rule_id)
            if tasks >= args.reminder_tasks:
                break
            time.sleep(0.05)
        seconds = time.monotonic() - started
        time.sleep(2 * runner_module.SCAN_SECONDS)  # further scans: nothing may fire again
        wait_for_runner(runtime, deadline, "reminders")
        runtime.wait_for_views(runtime.app.recorder.max_notification_id() or 0, timeout=60.0)
        count, tasks = reminded(runtime, rule_id)
        exactly_once = count == tasks == args.reminder_tasks
        if not exactly_once:
            errors.append(
                f"reminders: {count} firings for {tasks} of {args.reminder_tasks} tasks\n"
            )
        figures.append(
            {
                "figure": "reminder_scan_seconds",
                "store": store.name,
                "tasks": args.reminder_tasks,
                "value": round(seconds, 2),
                "per_second": round(args.reminder_tasks / seconds, 1) if seconds else None,
                "reminders": count,
                "exactly_once": exactly_once,
                "target_seconds": REMINDER_TARGET_SECONDS,
                "met": exactly_once and seconds < REMINDER_TARGET_SECONDS,
            }
        )
        loaded_cpu = idle_cpu_per_minute(runtime, args.reminder_idle)
        figures.append(
            {
                "figure": "reminder_idle_cpu_s_per_min",
                "store": store.name,
                "open_tasks": args.reminder_tasks,
                "value": round(loaded_cpu, 3),
                "baseline": "fresh server, same rule, no tasks",
                "baseline_value": round(baseline_cpu, 3),
                "ratio": round(loaded_cpu / baseline_cpu, 2) if baseline_cpu else None,
                "sampled_seconds": args.reminder_idle,
            }
        )
    finally:
        runtime.close()
    return figures, errors


def show_errors(label: str, errors: list[str]) -> None:
    if not errors:
        return
    log(f"{label}: {len(errors)} error(s); the first {min(len(errors), MAX_ERRORS_SHOWN)}:")
    for text in errors[:MAX_ERRORS_SHOWN]:
        print(text, file=sys.stderr, end="" if text.endswith("\n") else "\n")


def bench_store(store: Store, args: argparse.Namespace, with_decide: bool, deadline: float) -> bool:
    """Every measurement on one store; False when something failed."""
    errors: list[str] = []
    if not args.skip_latency:
        result = run_latency(store, args, deadline)
        try:
            for figure in result.figures:
                emit(**figure)
            errors.extend(result.errors)
            if with_decide and result.runtime is not None:
                for figure in run_decide(
                    store.name, result.runtime, result.first_notification, args, deadline
                ):
                    emit(**figure)
        finally:
            if result.runtime is not None:
                result.runtime.close()
    if not args.skip_runner:
        baseline, base_errors = run_runner(store, args, 0, deadline)
        loaded, load_errors = run_runner(store, args, args.rules, deadline)
        errors.extend(base_errors + load_errors)
        emit(
            figure="runner_msgs_per_s",
            **loaded,
            baseline="runner_msgs_per_s_no_rules",
            baseline_value=baseline["value"],
            baseline_seconds=baseline["seconds"],
            baseline_ingest_seconds=baseline["ingest_seconds"],
            baseline_notifications=baseline["notifications"],
            ratio=round(loaded["value"] / baseline["value"], 3) if baseline["value"] else None,
        )
    if not args.skip_reminders:
        figures, reminder_errors = run_reminders(store, args, deadline)
        for figure in figures:
            emit(**figure)
        errors.extend(reminder_errors)
    show_errors(store.name, errors)
    if errors:
        emit(figure="errors", store=store.name, value=len(errors))
    return not errors


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure the trigger engine: automatic-reply latency under a steady load, "
        "rules evaluated per second and the runner's throughput. Prints JSON lines on stdout."
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 10 s at 50/s, 200 rules")
    parser.add_argument("--rate", type=float, default=None, help="messages/s offered (200)")
    parser.add_argument("--duration", type=float, default=None, help="seconds of load (30)")
    parser.add_argument("--other-rules", type=int, default=20, help="non-matching rules (20)")
    parser.add_argument("--submitters", type=int, default=16, help="latency run's submitter pool")
    parser.add_argument("--rules", type=int, default=None, help="rules for 2. and 3. (1000)")
    parser.add_argument("--decide-events", type=int, default=3000, help="events timed in 2.")
    parser.add_argument("--decide-seconds", type=float, default=3.0, help="min timing in 2.")
    parser.add_argument(
        "--runner-messages", type=int, default=None, help="messages ingested in 3. (3000)"
    )
    parser.add_argument("--runner-submitters", type=int, default=16, help="submitters in 3.")
    parser.add_argument("--skip-latency", action="store_true", help="skip 1. and 2.")
    parser.add_argument("--skip-runner", action="store_true", help="skip 3.")
    parser.add_argument("--skip-reminders", action="store_true", help="skip 4.")
    parser.add_argument(
        "--reminder-tasks", type=int, default=None, help="overdue tasks in 4. (10000)"
    )
    parser.add_argument(
        "--reminder-idle", type=float, default=None, help="seconds of idle CPU sampled in 4. (30)"
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also time the trigger runner's thread by part (runner_breakdown figures)",
    )
    parser.add_argument("--postgres", action="store_true", help="also run on PostgreSQL")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("THREADLINE_TEST_POSTGRES_URL")
        or "postgresql://postgres@127.0.0.1:5432/test",
        help="server for --postgres; fresh schemas bench_<random> are created and dropped",
    )
    parser.add_argument("--workdir", default=None, help="folder for SQLite files (a new one)")
    parser.add_argument("--keep", action="store_true", help="keep the SQLite files afterwards")
    parser.add_argument("--seed", type=int, default=20240601, help="workload random seed")
    parser.add_argument(
        "--deadline", type=float, default=1800.0, help="seconds for the whole run per store"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    args.rate = args.rate or (50.0 if quick else 200.0)
    args.duration = args.duration or (10.0 if quick else 30.0)
    args.rules = args.rules or (200 if quick else 1000)
    args.runner_messages = args.runner_messages or (500 if quick else 3000)
    args.reminder_tasks = args.reminder_tasks or (1000 if quick else 10_000)
    args.reminder_idle = args.reminder_idle or (10.0 if quick else 30.0)
    if quick:
        args.decide_events = min(args.decide_events, 1000)
        args.decide_seconds = min(args.decide_seconds, 1.0)
    if args.rate <= 0 or args.duration <= 0 or args.submitters < 1 or args.runner_submitters < 1:
        parser.error("--rate, --duration and the submitter counts must be positive")
    if args.rules < 1 + args.other_rules or args.other_rules > len(QUIET_RULES):
        parser.error(f"--other-rules is at most {len(QUIET_RULES)} and below --rules")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    created_workdir = args.workdir is None
    if created_workdir:
        args.workdir = tempfile.mkdtemp(prefix="threadline-bench-triggers-", dir="/tmp")
    else:
        os.makedirs(args.workdir, exist_ok=True)
    started = time.monotonic()
    load_before = os.getloadavg()
    stores = [Store("sqlite", args.workdir)]
    if args.postgres:
        parts = urlsplit(args.postgres_url)
        conninfo = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        stores.append(Store("postgres", args.workdir, conninfo))
    failed = False
    try:
        for number, store in enumerate(stores):
            deadline = time.monotonic() + args.deadline
            try:
                if not bench_store(store, args, with_decide=number == 0, deadline=deadline):
                    failed = True
            except Exception as error:
                failed = True
                log(f"{store.name}: the benchmark failed")
                traceback.print_exc(file=sys.stderr)
                emit(figure="errors", store=store.name, value=1, error=repr(error))
            finally:
                store.drop()
    finally:
        if created_workdir and not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)
        else:
            log(f"SQLite files kept in {args.workdir}")
    emit(
        figure="host",
        cpus=os.cpu_count(),
        loadavg_before=[round(x, 2) for x in load_before],
        loadavg_after=[round(x, 2) for x in os.getloadavg()],
        wall_seconds=round(time.monotonic() - started, 1),
        quick=args.quick,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
