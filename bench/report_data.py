"""The data set of `bench/reports.py`: three years of a sales team's log, generated fast.

Each *story* is one client inquiry and the deal that follows it: the application's own
commands (`ingest`, `reply`, `record_delivered`, `create_deal`, `move_deal`, `win_deal` /
`lose_deal`, `create_task`, `complete_task`, `change_conversation_status`) are captured
instead of submitted (a copy of the application whose writer hands back the command) and run
one after another in the story's unit of work, so every check and every event is the real
one. 200 stories share one identity map, as the group-commit writer's batches do, and their
events (~2,400) are saved in one transaction through the writer's own `_save_events`, in time
order (`chronological`).

Historical time: the library stamps an event with `eventsourcing.domain.datetime_now_with_tzinfo`
(and deals, through `history_clock`, with the same function); the bench replaces that
function, for the generation only, with one that returns the story step's moment while the
writer thread runs that step. The stories are spread evenly over `YEARS` years ending a few
days before now, in the order of their numbers.

Per story (seeded by its number, so threads share no state): an inbound message on the
contact's channel (email, telegram, sms, whatsapp, web form; 45 % of stories bring a new
contact, the rest a returning one; utm source and campaign on the first touch), a reply by
the manager a few minutes to hours later (15 % by an automatic rule instead, and 15 % of
stories a second inbound message and a second reply), the delivery of a quarter of the
channel replies, a
deal (70 % for the client's company, with one to three product lines), one to three stage
moves (a tenth of them back), then won (30 %) or lost with a reason (30 %), a call or
meeting task (60 %, most completed) and the conversation resolved (80 %).
"""

from __future__ import annotations

import copy
import random
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

YEARS = 3
STORY_NAMESPACE = UUID("5d7c9a0e-3f7b-4a52-9c55-1f0e8a6b2d41")
CHANNELS = ("email", "telegram", "sms", "whatsapp", "web")
GROUPS = ("Retail", "Wholesale", "Medical", "Government", "")
UTM = (
    ("google", "brand"),
    ("google", "racks-2025"),
    ("yandex", "search"),
    ("yandex", "retarget"),
    ("newsletter", "spring"),
    ("", ""),
    ("", ""),
)
PRODUCTS = (
    ("Warehouse rack", "18500", "11200", "standard"),
    ("Pallet truck", "32000", "21500", "standard"),
    ("Barcode scanner", "14900", "9800", "standard"),
    ("Medical gloves, box", "650", "380", "reduced"),
    ("Staff training, day", "25000", "9000", "none"),
    ("Rack for export", "17900", "11200", "zero"),
    ("Shelf label printer", "8900", "5100", "standard"),
    ("Forklift service", "12000", "4000", "standard"),
)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class HistoricalClock:
    """Replaces the library's event clock while the log is generated (see the docstring)."""

    def __init__(self) -> None:
        self.moment: datetime | None = None
        self._patched: list[tuple[Any, Any]] = []

    def now(self) -> datetime:
        return self.moment if self.moment is not None else datetime.now(UTC)

    def __enter__(self) -> HistoricalClock:
        import eventsourcing.domain

        from threadline.domain.model import history_clock

        for module in (eventsourcing.domain, history_clock):
            self._patched.append((module, module.datetime_now_with_tzinfo))
            module.datetime_now_with_tzinfo = self.now  # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc: object) -> None:
        for module, original in self._patched:
            module.datetime_now_with_tzinfo = original
        self._patched.clear()
        self.moment = None


class _Capture:
    """A writer that hands the command back instead of running it."""

    def submit(self, command: Any, prefetch: Any = None, timeout: float = 60.0) -> Any:
        return command

    def submit_nowait(self, command: Any, prefetch: Any = None) -> Any:
        return command


class Generator:
    def __init__(self, runtime: Any, scale: float, seed: int = 20261207) -> None:
        from threadline.domain.commands.pipelines import SEEDED_PIPELINES
        from threadline.domain.model.pipeline import seeded_pipeline_id, seeded_stage_id

        self.runtime = runtime
        self.app = runtime.app
        self.seed = seed
        self.deals = max(200, int(100_000 * scale))
        self.contacts = max(50, int(self.deals * 0.45))
        self.companies = max(20, int(5_000 * scale))
        self.managers_count = 12
        self.end = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
        self.start = self.end - timedelta(days=365 * YEARS)
        self.clock = HistoricalClock()
        self.capturing = copy.copy(self.app)
        self.capturing.writer = _Capture()
        self.pipelines: list[tuple[UUID, list[str], str, str, list[str]]] = []
        for key, _name, stages, reasons in SEEDED_PIPELINES:
            open_stages = [seeded_stage_id(key, s[0]) for s in stages if s[2] == "open"]
            won = next(seeded_stage_id(key, s[0]) for s in stages if s[2] == "won")
            lost = next(seeded_stage_id(key, s[0]) for s in stages if s[2] == "lost")
            self.pipelines.append((seeded_pipeline_id(key), open_stages, won, lost, list(reasons)))
        self.manager_ids: list[UUID] = []
        self.company_ids: list[UUID] = []
        self.failed = 0

    # -- the fixed parts ----------------------------------------------------------------------

    def setup(self) -> None:
        """Pipelines, managers and companies (with client groups), at the start of the span."""
        app = self.app
        self.clock.moment = self.start - timedelta(days=1)
        app.seed_pipelines("bench")
        for n in range(self.managers_count):
            user_id = app.create_user(
                f"rmanager{n}@example.com", "manager", "bench", name=f"Manager {n}"
            ).value[0]
            self.manager_ids.append(user_id)
        with ThreadPoolExecutor(max_workers=32) as pool:
            self.company_ids = list(
                pool.map(
                    lambda n: (
                        app.create_company(
                            "bench", f"Company {n}", client_group=GROUPS[n % len(GROUPS)] or None
                        ).value
                    ),
                    range(self.companies),
                )
            )
        self.clock.moment = None

    # -- one story ----------------------------------------------------------------------------

    def _moment(self, n: int) -> datetime:
        span = (self.end - self.start).total_seconds() - 5 * 86400
        return self.start + timedelta(seconds=span * n / self.deals)

    def story(self, n: int) -> Callable[[Any], None]:
        """The story's command: its steps run in a unit of work, each at its own moment."""
        from threadline.domain.model.inbound import InboundMessage

        rng = random.Random(self.seed * 1_000_003 + n)
        cap = self.capturing
        # a new contact (the next number) or one who wrote before
        frontier = max(1, n * self.contacts // self.deals)
        k = frontier if rng.random() < 0.45 else rng.randrange(frontier)
        channel = CHANNELS[k % len(CHANNELS)]
        identity: tuple[str, str | int] = {
            "email": ("email", f"rclient{k}@example.com"),
            "web": ("email", f"rclient{k}@example.com"),
            "telegram": ("telegram", 200_000_000 + k),
            "sms": ("phone", f"+7916{k:07d}"),
            "whatsapp": ("phone", f"+7916{k:07d}"),
        }[channel]
        utm_source, utm_campaign = UTM[k % len(UTM)]
        source = {"utm_source": utm_source, "utm_campaign": utm_campaign} if utm_source else {}
        if channel == "web":
            source["form"] = "contact-us"
        manager = self.manager_ids[(k * 7 + n) % len(self.manager_ids)]
        actor = f"user:{manager}"
        t0 = self._moment(n) + timedelta(seconds=rng.randint(0, 86_000))
        steps: list[tuple[datetime, Callable[[Any, dict[str, Any]], Any]]] = []

        def inbound(number: int) -> Callable[[Any, dict[str, Any]], Any]:
            message = InboundMessage.create(
                channel="email" if channel == "web" else channel,
                dedup_key=f"report-bench-{n}-{number}",
                identities=[identity],
                sender_name=f"Client {k}",
                subject=f"Order question {n % 97}",
                text=f"Hello, about our order {n} ({number})",
                thread_key=f"story-{n}",
                source=source,
            )

            def run(unit: Any, state: dict[str, Any]) -> Any:
                result = cap.ingest(message)(unit)
                state["conversation"] = result.conversation_id
                state["contact"] = result.contact_id
                return result

            return run

        def reply(number: int, automatic: bool) -> Callable[[Any, dict[str, Any]], Any]:
            def run(unit: Any, state: dict[str, Any]) -> Any:
                who = "rule:00000000-0000-0000-0000-00000000be0c" if automatic else actor
                message_id = uuid5(STORY_NAMESPACE, f"{n}-reply-{number}")
                state["reply"] = message_id
                return cap.reply(
                    state["conversation"], f"Thank you, {n}", who, message_id=message_id
                )(unit)

            return run

        def delivered(unit: Any, state: dict[str, Any]) -> Any:
            return cap.record_delivered(state["reply"], f"prov-{state['reply']}", "delivery")(unit)

        t = t0
        steps.append((t, inbound(1)))
        t += timedelta(minutes=rng.choice((2, 5, 15, 40, 90, 240, 600)))
        steps.append((t, reply(1, rng.random() < 0.15)))
        if channel != "web" and rng.random() < 0.25:
            steps.append((t + timedelta(seconds=5), delivered))
        if rng.random() < 0.15:
            t += timedelta(hours=rng.randint(1, 30))
            steps.append((t, inbound(2)))
            t += timedelta(minutes=rng.choice((3, 10, 60, 180)))
            steps.append((t, reply(2, False)))
        # the deal
        pipeline_id, stages, _won, _lost, reasons = self.pipelines[(0, 0, 1, 2)[n % 4]]
        deal_id = uuid5(STORY_NAMESPACE, f"deal-{n}")
        lines = [
            {
                "name": name,
                "quantity": rng.randint(1, 40),
                "price": price,
                "cost": cost,
                "vat": vat,
                "discount": rng.choice((0, 0, 0, 5, 10)),
            }
            for name, price, cost, vat in rng.sample(PRODUCTS, rng.randint(1, 3))
        ]
        company = self.company_ids[k % len(self.company_ids)] if k % 10 < 7 else None
        t += timedelta(hours=rng.randint(1, 48))
        close = (t + timedelta(days=rng.randint(5, 60))).date().isoformat()

        def create(unit: Any, state: dict[str, Any]) -> Any:
            return cap.create_deal(
                actor,
                f"Deal {n}",
                pipeline_id,
                stage_id=stages[0],
                contact_id=state["contact"],
                company_id=company,
                manager_id=manager,
                lines=lines,
                expected_close=close,
                conversation_id=state["conversation"],
                deal_id=deal_id,
            )(unit)

        steps.append((t, create))
        position = 0
        for _ in range(rng.randint(0, 3)):
            back = position > 0 and rng.random() < 0.12
            position = position - 1 if back else min(len(stages) - 1, position + 1)
            stage = stages[position]
            t += timedelta(days=rng.randint(1, 9), hours=rng.randint(0, 8))
            steps.append((t, lambda unit, state, s=stage: cap.move_deal(deal_id, s, actor)(unit)))
        outcome = rng.random()
        if outcome < 0.3:
            t += timedelta(days=rng.randint(1, 12))
            steps.append((t, lambda unit, state: cap.win_deal(deal_id, actor)(unit)))
        elif outcome < 0.6:
            reason = rng.choice(reasons)
            t += timedelta(days=rng.randint(1, 12))
            steps.append((t, lambda unit, state: cap.lose_deal(deal_id, reason, actor)(unit)))
        if rng.random() < 0.6:
            kind = "call" if rng.random() < 0.7 else "meeting"
            due = t + timedelta(days=rng.randint(1, 5))
            done = rng.random() < 0.8

            def task(unit: Any, state: dict[str, Any]) -> Any:
                state["task"] = cap.create_task(
                    actor,
                    f"{kind.title()} about deal {n}",
                    type=kind,
                    due_at=due,
                    assignee_id=manager,
                    deal_id=deal_id,
                    conversation_id=state["conversation"],
                )(unit)

            steps.append((t + timedelta(hours=1), task))
            if done:
                steps.append(
                    (
                        due - timedelta(hours=rng.randint(0, 30)),
                        lambda unit, state: cap.complete_task(state["task"], actor)(unit),
                    )
                )
        if rng.random() < 0.8:
            steps.append(
                (
                    t + timedelta(hours=2),
                    lambda unit, state: cap.change_conversation_status(
                        state["conversation"], "resolved", actor
                    )(unit),
                )
            )
        clock = self.clock

        def command(unit: Any) -> None:
            state: dict[str, Any] = {}
            latest = steps[0][0]
            for moment, step in steps:
                latest = max(latest, moment)  # a story's steps never go back in time
                clock.moment = latest
                step(unit, state)

        return command

    def batch(self, numbers: range) -> int:
        """Run the stories in one unit-of-work batch (as the group-commit writer does) and
        save their events in ONE transaction, ordered by time (see `chronological`)."""
        from threadline.domain.infrastructure.group_commit import _collect, _save_events
        from threadline.domain.infrastructure.unit_of_work import IdentityMap, UnitOfWork

        identity_map = IdentityMap(self.app)
        for n in numbers:
            unit = UnitOfWork(identity_map)
            try:
                self.story(n)(unit)
            except Exception as error:  # reported, never hidden: the count is a figure
                for aggregate_id in unit.changed():
                    identity_map.aggregates.pop(aggregate_id, None)
                self.failed += 1
                if self.failed <= 5:
                    log(f"  story {n} failed: {type(error).__name__}: {error}")
        self.clock.moment = None
        events = chronological(_collect(identity_map))
        _save_events(self.app, events)
        return len(events)

    def run(self, batch: int = 200) -> dict[str, Any]:
        started = time.monotonic()
        with self.clock:
            self.setup()
            report = max(1000, self.deals // 20)
            for first in range(0, self.deals, batch):
                self.batch(range(first, min(self.deals, first + batch)))
                done = min(self.deals, first + batch)
                if done % report < batch:
                    elapsed = time.monotonic() - started
                    events = self.app.recorder.max_notification_id() or 0
                    log(
                        f"  {done}/{self.deals} stories, {events} events"
                        f" ({events / elapsed:.0f} events/s)"
                    )
        seconds = time.monotonic() - started
        events = self.app.recorder.max_notification_id() or 0
        return {
            "events": events,
            "deals": self.deals,
            "stories_failed": self.failed,
            "contacts_max": self.contacts,
            "companies": self.companies,
            "managers": self.managers_count,
            "span": [self.start.date().isoformat(), self.end.date().isoformat()],
            "seconds": round(seconds, 1),
            "events_per_s": round(events / seconds, 1),
        }


def chronological(events: list[Any]) -> list[Any]:
    """The batch's events by time, each aggregate's own events still in version order.

    The group-commit writer saves a batch aggregate by aggregate; a story spans days and
    touches a conversation, its messages, a deal and a task, so saved that way a conversation
    would be resolved in the log before its messages were received. Here the events take the
    positions of a sort by timestamp, and each aggregate's events fill its own positions in
    their version order (a contact touched by two stories of one batch stays consistent).
    """
    order = sorted(range(len(events)), key=lambda i: events[i].timestamp)
    positions: dict[Any, list[int]] = {}
    for position, index in enumerate(order):
        positions.setdefault(events[index].originator_id, []).append(position)
    own: dict[Any, list[Any]] = {}
    for event in events:
        own.setdefault(event.originator_id, []).append(event)
    result: list[Any] = [None] * len(events)
    for originator, slots in positions.items():
        for slot, event in zip(slots, own[originator], strict=True):
            result[slot] = event
    return result
