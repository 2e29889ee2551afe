"""The in-process trigger runner (embedded mode): the log in, firings and timers out.

One thread follows the log from its own durable position. For each event it
cancels the timers whose reason went away (`timers`), lets the views catch up
(rules read contacts and conversations from them), asks the evaluator which rules
apply, prepares each firing (each action's `prepare`: rendered templates through
the outbound composer, assignees, ...) and submits it as one command (`firing`).
Between pages it fires due timers and runs the date-driven triggers (`date_scans`).

Exactly once comes from the store, not from this loop: firing and timer ids
are derived from the rule and the cause, so re-reading events after a crash
(the position is saved after the page is handled) appends nothing twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from threadline.domain.commands.application import Threadline
from threadline.domain.model.calendar import Calendar
from threadline.domain.model.errors import DomainError
from threadline.domain.model.message import CallOutcome
from threadline.domain.model.rule import Rule, RuleFiring, firing_id
from threadline.projections.queries import Queries
from threadline.projections.sql import ViewDatabase
from threadline.triggers.actions.base import (
    MessageComposer,
    PrepareContext,
    PreparedAction,
    effect_id_for,
)
from threadline.triggers.assignees import AssigneePicker
from threadline.triggers.date_scans import DateScans
from threadline.triggers.evaluator import ActiveRule, Decision, decide
from threadline.triggers.events import TriggerEvent, to_trigger_event
from threadline.triggers.facts import FactReader
from threadline.triggers.firing import (
    PreparedFiring,
    complete_reply_task_command,
    firing_command,
    schedule_command,
)
from threadline.triggers.opt_outs import stop_word_opt_out
from threadline.triggers.own_effects import OwnEffects
from threadline.triggers.rule_book import RuleBook
from threadline.triggers.state_store import StateStore
from threadline.triggers.templates import TemplateError
from threadline.triggers.timers import AUTOMATIC, Timers

log = logging.getLogger("threadline.triggers")

PAGE = 500
IDLE_SECONDS = 0.25
SCAN_SECONDS = 5.0  # how often the date-driven triggers look for what crossed their edge
POSITION_KEY = "triggers:position"
# Actors whose outbound messages are not a person's reply (rules, campaigns, workers).
NOT_A_REPLY = (AUTOMATIC, "worker:", "campaign:")
# What a failing `prepare` skips its action with (the error's type and text).
PREPARE_ERRORS = (TemplateError, DomainError, KeyError, ValueError)


@dataclass(frozen=True)
class TriggerSettings:
    max_depth: int = 3
    public_url: str = "http://127.0.0.1:8000"
    views_timeout: float = 5.0


class TriggerRunner:
    def __init__(
        self,
        app: Threadline,
        views: ViewDatabase,
        queries: Queries,
        state: StateStore,
        wait_for_views: Callable[[int], bool],
        composer: MessageComposer,
        settings: TriggerSettings | None = None,
    ) -> None:
        self.app = app
        self.views = views
        self.queries = queries
        self.state = state
        self.wait_for_views = wait_for_views
        self.settings = settings or TriggerSettings()
        self.facts = FactReader(queries, self._contact_as_of)
        self.composer = composer
        self.book = RuleBook(app.repository, views)
        self.assignees = AssigneePicker(views, state)
        self.effects = OwnEffects(lambda position: self.wait_for_views(position))
        self.timers = Timers(self.book, views, state, app.repository, app.writer, self)
        self.scans = DateScans(self.book, views, state, self)
        self._in_flight: list[tuple[Decision, Future[Any], str]] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_scan = 0.0
        # The loop and callers such as tests or `scan_dates` from another thread take turns.
        self._lock = threading.RLock()
        self.fired = 0
        self.last_error: str | None = None

    @property
    def rules(self) -> dict[UUID, ActiveRule]:
        """The enabled rules, by id."""
        return self.book.rules

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Follow the log in a thread, from the stored position.

        A first start (no position stored yet) begins just before the first rule was
        created: what arrived before this runner first ran (a worker started after the API
        took messages) still gets its rules, and the history from before any rule existed
        is not fired. The rules then come from the log as it is read, so each applies from
        its creation on, not to what happened before it.
        """
        if self._thread is not None:
            return
        if self.state.get(POSITION_KEY) is None:
            self.state.set(POSITION_KEY, str(self.first_position()))
            self.book.load_calendars()
        elif self.wait_for_views(self.position()):
            self.load_rules()
        else:  # the views are behind (their worker is down): the log has every rule
            self.book.load_calendars()
            self._load_rules_from_log()
        self.app.commit_listeners.append(lambda _n: self._wake.set())
        self._thread = threading.Thread(target=self._loop, name="triggers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None

    def position(self) -> int:
        return int(self.state.get(POSITION_KEY) or 0)

    def first_position(self) -> int:
        """Where a first start begins: just before the log's first `RuleCreated` (the head
        of the log when there is no rule yet: nothing before it could have fired)."""
        first = self.app.recorder.select_notifications(
            start=1, limit=1, topics=[get_topic(Rule.RuleCreated)]
        )
        if first:
            return int(first[0].id) - 1
        return self.app.recorder.max_notification_id() or 0

    def _load_rules_from_log(self) -> None:
        """The rules created up to the stored position, found by their `RuleCreated`."""
        position, start = self.position(), 1
        ids: list[UUID] = []
        while start <= position:
            page = self.app.recorder.select_notifications(
                start=start, limit=PAGE, stop=position, topics=[get_topic(Rule.RuleCreated)]
            )
            if not page:
                break
            ids.extend(UUID(str(notification.originator_id)) for notification in page)
            start = page[-1].id + 1
        self.book.load_ids(ids)

    def begin_after_history(self) -> None:
        """Make what the log holds now history that rules never see (seeded demo data).

        Only before the first start: once a position is stored, the runner owns it.
        """
        if self.state.get(POSITION_KEY) is None:
            self.state.set(POSITION_KEY, str(self.app.recorder.max_notification_id() or 0))

    def _loop(self) -> None:
        scan_more = False
        while not self._stop.is_set():
            try:
                with self._lock:
                    worked = self.step()
                    if scan_more or time.monotonic() - self._last_scan > SCAN_SECONDS:
                        self._last_scan = time.monotonic()
                        scan_more = self.scan_dates()
                        worked = worked or scan_more
                    worked = self.fire_due_timers() or worked
                self.last_error = None
            except Exception as error:  # keep the loop alive; the page is retried
                self.last_error = f"{type(error).__name__}: {error}"
                log.exception("the trigger runner failed; retrying")
                worked = False
                self._stop.wait(1.0)
            if not worked:
                self._wake.wait(IDLE_SECONDS)
                self._wake.clear()

    def load_rules(self) -> None:
        """Every rule (and calendar) the views list, read from the log."""
        self.book.load()

    # -- the log ----------------------------------------------------------------------------

    def step(self) -> bool:
        """Handle one page of the log; True if there was anything."""
        position = self.position()
        notifications = self.app.recorder.select_notifications(
            start=position + 1, limit=PAGE, inclusive_of_start=True
        )
        if not notifications:
            return False
        for notification in notifications:
            event = self.app.mapper.to_domain_event(notification)
            self.handle(event, notification.id)
        if self.book.stale:
            self.book.index()
        self.settle_in_flight()
        self.state.set(POSITION_KEY, str(notifications[-1].id))
        return True

    def handle(self, domain_event: Any, notification_id: int) -> None:
        if isinstance(domain_event, Rule.Event):
            # Indexed once before the next other event: a first start reads every rule's
            # creation from the log, and re-indexing all rules for each made that quadratic.
            self.book.reload(domain_event.originator_id)
            self.book.stale = True
            return
        if isinstance(domain_event, Calendar.Event):
            self.book.reload_calendar(domain_event.originator_id)
            return
        if self.book.stale:
            self.book.index()
        trigger = to_trigger_event(domain_event, notification_id)
        if trigger is None:
            return
        self._cancel_timers(trigger)
        stop_word_opt_out(self.app, trigger)
        self._complete_reply_task(trigger)
        self.scans.behind_the_mark(trigger)
        candidates = self.book.candidates(trigger)
        if not candidates:
            return
        trigger = self._with_links(trigger, domain_event)
        self.wait_for_views(notification_id)
        self.run_rules(candidates, trigger, wait=False)

    def _with_links(self, trigger: TriggerEvent, domain_event: Any) -> TriggerEvent:
        """What the event does not name, its aggregate does: `CallMissed` names only its message
        (its contact and thread are the message's), and a task's later events (completed,
        cancelled...) do not name its deal (the task's, which never changes). One load serves
        both, and only when something is missing."""
        wants_contact = trigger.contact_id is None
        wants_deal = (
            trigger.deal_id is None
            and "task_id" in trigger.facts
            and "deal_id" not in trigger.facts
        )
        if not (wants_contact or wants_deal):
            return trigger
        try:
            aggregate: Any = self.app.repository.get(
                domain_event.originator_id, version=domain_event.originator_version
            )
        except Exception:
            return trigger
        contact_id = getattr(aggregate, "contact_id", None) if wants_contact else None
        if contact_id is not None:
            conversation_id = getattr(aggregate, "conversation_id", None)
            trigger = replace(
                trigger,
                contact_id=contact_id,
                conversation_id=trigger.conversation_id or conversation_id,
            )
        deal_id = getattr(aggregate, "deal_id", None) if wants_deal else None
        if deal_id is not None:
            facts = {**trigger.facts, "deal_id": str(deal_id)}
            trigger = replace(trigger, deal_id=deal_id, facts=facts)
        return trigger

    def _contact_as_of(self, contact_id: str, version: int) -> Any:
        try:
            return self.app.repository.get(UUID(contact_id), version=version)
        except Exception:  # a missing or unreadable aggregate: the card alone will do
            log.debug("contact %s at version %d not loaded", contact_id, version, exc_info=True)
            return None

    # -- running rules ----------------------------------------------------------------------

    def run_rules(
        self,
        rules: list[ActiveRule],
        trigger: TriggerEvent,
        from_timer: UUID | None = None,
        cause_key: str | None = None,
        depth: int | None = None,
        wait: bool = True,
    ) -> list[UUID]:
        if any(rule.spec.condition is not None for rule in rules):
            self.effects.see(trigger)  # a rule without conditions need not wait for it
        facts = self.facts.facts(trigger)
        depth = self._depth(trigger) if depth is None else depth
        registry = None

        def segment(flt: dict[str, Any]) -> bool:
            nonlocal registry
            if trigger.contact_id is None:
                return False
            registry = registry or self.app.attribute_registry()
            return self.facts.in_segment(str(trigger.contact_id), flt, registry)

        decisions = decide(
            rules,
            trigger,
            facts,
            depth=depth,
            max_depth=self.settings.max_depth,
            from_timer=from_timer is not None,
            segment=segment,
            calendars=(
                self.book.calendars_for(trigger)
                if any(r.id in self.book.using_calendars for r in rules)
                else self.book.calendars
            ),
            conditions_validated=True,
        )
        done: list[UUID] = []
        waiting: list[tuple[Decision, Future[Any]]] = []
        for decision in decisions:
            prepared = PreparedFiring(
                decision=decision,
                event=trigger,
                cause_key=cause_key or trigger.cause_key,
                depth=depth,
                actions=[],
                timer_to_fire=from_timer,
            )
            if decision.outcome == "schedule":
                command = schedule_command(prepared)
            else:
                if decision.outcome == "fire":
                    prepared.actions = self._prepare_actions(
                        decision, trigger, facts, prepared.cause_key
                    )
                command = firing_command(prepared)
            future = self.app.writer.submit_nowait(command)
            self.effects.track(trigger, future)
            waiting.append((decision, future))
        if not wait:
            # The page's firings commit together; `step` waits for all of them before it
            # moves the position, so a crash re-reads the page (and the ids dedupe).
            self._in_flight.extend((d, f, trigger.cause_key) for d, f in waiting)
            return done
        for decision, future in waiting:
            result = self._settle(decision, future, trigger.cause_key)
            if result is not None:
                done.append(result)
        return done

    def _prepare_actions(
        self, decision: Decision, trigger: TriggerEvent, facts: dict[str, Any], cause_key: str
    ) -> list[PreparedAction]:
        """What each action of a firing rule needs before the write (errors skip that action)."""
        rule = decision.rule
        firing = firing_id(rule.id, cause_key)
        now = datetime.now(UTC)
        prepared: list[PreparedAction] = []
        for index, action in enumerate(rule.spec.actions):
            context = PrepareContext(
                rule_id=rule.id,
                rule_name=rule.name,
                event=trigger,
                facts=facts,
                now=now,
                effect_id=effect_id_for(firing, index),
                assignees=self.assignees,
                messages=self.composer,
            )
            try:
                prepared.append(action.prepare(context))
            except PREPARE_ERRORS as error:
                prepared.append(PreparedAction(action, skip=f"{type(error).__name__}: {error}"))
        return prepared

    def _settle(self, decision: Decision, future: Future[Any], cause_key: str) -> UUID | None:
        try:
            result: UUID | None = future.result(timeout=60).value
        except DomainError as error:
            log.warning("rule %s on %s: %s", decision.rule.name, cause_key, error)
            return None
        if result is not None:
            self.fired += 1
        return result

    def settle_in_flight(self) -> None:
        """Wait for the firings submitted without waiting (`run_rules(wait=False)`)."""
        in_flight, self._in_flight = self._in_flight, []
        for decision, future, cause_key in in_flight:
            self._settle(decision, future, cause_key)

    def _depth(self, trigger: TriggerEvent) -> int:
        """How many rules stand behind this event (0 for what people and clients did)."""
        if not trigger.actor.startswith(AUTOMATIC):
            return 0
        try:
            firing = UUID(trigger.correlation_id)
        except ValueError:
            return 1
        for created in self.app.repository.event_store.get(firing, lte=1):
            if isinstance(created, RuleFiring.RuleFired):
                return int(created.depth) + 1
        return 1

    # -- replies ----------------------------------------------------------------------------

    def _complete_reply_task(self, trigger: TriggerEvent) -> None:
        """A person's reply (or an answered call) completes the conversation's reply task."""
        if "message.sent" in trigger.names:
            if trigger.conversation_id is None or trigger.actor.startswith(NOT_A_REPLY):
                return
            message_id = None
        elif (
            "call.updated" in trigger.names
            and trigger.facts.get("outcome") == CallOutcome.ANSWERED.value
        ):
            message_id = UUID(str(trigger.extra["originator_id"]))
        else:
            return
        future = self.app.writer.submit_nowait(
            complete_reply_task_command(
                trigger.conversation_id,
                message_id,
                trigger.actor,
                trigger.correlation_id or trigger.cause_key,
            )
        )
        self.effects.track(trigger, future)
        future.result(timeout=60)

    # -- timers and date-driven triggers ----------------------------------------------------

    def _cancel_timers(self, trigger: TriggerEvent) -> None:
        self.timers.cancel_for(trigger)

    def fire_due_timers(self) -> bool:
        """Fire the timers that came due; True if any was tried."""
        with self._lock:
            return self.timers.fire_due()

    def fire_timer(self, timer_id: UUID) -> None:
        self.timers.fire(timer_id)

    def scan_dates(self, now: datetime | None = None) -> bool:
        """Run the date-driven triggers due by `now`; True if a task scan has more pages."""
        with self._lock:
            return self.scans.scan(now)
