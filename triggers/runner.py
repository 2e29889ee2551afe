"""The in-process trigger runner (embedded mode): the log in, firings and timers out.

One thread follows the log from its own durable position. For each event it
cancels the timers whose reason went away, lets the views catch up (rules read
contacts and conversations from them), asks the evaluator which rules apply,
prepares each firing (renders templates, picks assignees, checks opt-out and
the per-contact rate limit) and submits it as one command. Between pages it
fires due timers and runs the date-driven triggers (schedules, birthdays,
overdue tasks).

Exactly once comes from the store, not from this loop: firing and timer ids
are derived from the rule and the cause, so re-reading events after a crash
(the position is saved after the page is handled) appends nothing twice.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import wait as wait_all
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.utils import get_topic

from threadline.domain.commands.application import Threadline
from threadline.domain.model.calendar import Calendar
from threadline.domain.model.contact import Contact
from threadline.domain.model.conversation import Conversation
from threadline.domain.model.errors import DomainError
from threadline.domain.model.inbox import Inbox
from threadline.domain.model.message import CallOutcome
from threadline.domain.model.reply_channels import REPLY_CHANNEL
from threadline.domain.model.rule import Rule, RuleFiring, Timer
from threadline.domain.model.template import Template, template_id_for
from threadline.projections.base import ts
from threadline.projections.campaigns import campaign_messages_since
from threadline.projections.queries import Queries
from threadline.projections.sql import ViewDatabase
from threadline.triggers.actions import (
    PreparedAction,
    PreparedFiring,
    cancel_timer_command,
    complete_reply_task_command,
    firing_command,
    schedule_command,
)
from threadline.triggers.business_hours import DEFAULT_CALENDAR, BusinessCalendar
from threadline.triggers.conditions import ConditionError, validate_condition
from threadline.triggers.evaluator import ActiveRule, Decision, decide, due_in
from threadline.triggers.events import TriggerEvent, to_trigger_event
from threadline.triggers.facts import FactReader
from threadline.triggers.templates import TemplateError, render

log = logging.getLogger("threadline.triggers")

PAGE = 500
IDLE_SECONDS = 0.25
SCAN_SECONDS = 5.0  # how often the date-driven triggers look for what crossed their edge
SCAN_PAGE = 500  # tasks reminded per rule and scan; a full page scans again at once
SCAN_KEY = "triggers:scan:"  # + rule id: the (due time, task id) a task-date rule swept to
TASK_DATES = ("task.overdue", "task.due_soon")
TASK_MOVES = frozenset({"task.created", "task.rescheduled"})  # events that set a due time
POSITION_KEY = "triggers:position"
STOP_WORDS = {"stop", "/stop", "unsubscribe", "стоп", "отписаться"}
OPT_OUT_CHANNELS = {"sms", "whatsapp", "telegram"}
AUTOMATIC = "rule:"
# Actors whose outbound messages are not a person's reply (rules, campaigns, workers).
NOT_A_REPLY = (AUTOMATIC, "worker:", "campaign:")
# How many contacts' "own effects" positions the runner remembers (oldest forgotten first).
EFFECTS_REMEMBERED = 10_000


class StateStore(Protocol):
    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str) -> None: ...


@dataclass(frozen=True)
class TriggerSettings:
    max_depth: int = 3
    automatic_per_day: int = 3
    public_url: str = "http://127.0.0.1:8000"
    unsubscribe_url: Callable[[str], str] | None = None
    views_timeout: float = 5.0


class TriggerRunner:
    def __init__(
        self,
        app: Threadline,
        views: ViewDatabase,
        queries: Queries,
        state: StateStore,
        wait_for_views: Callable[[int], bool],
        settings: TriggerSettings | None = None,
    ) -> None:
        self.app = app
        self.views = views
        self.queries = queries
        self.state = state
        self.wait_for_views = wait_for_views
        self.settings = settings or TriggerSettings()
        self.facts = FactReader(queries, self._contact_as_of)
        self.calendars: dict[str, BusinessCalendar] = {"default": DEFAULT_CALENDAR}
        self.rules: dict[UUID, ActiveRule] = {}
        self.by_event: dict[str, list[ActiveRule]] = {}
        self.cancelling: set[str] = set()
        self.using_calendars: set[UUID] = set()
        self._in_flight: list[tuple[Decision, Future[Any], str]] = []
        self._recent_automatic: dict[str, deque[tuple[float, str]]] = defaultdict(deque)
        self._round_robin: dict[str, int] = {}
        # Item: a rule's conditions see the effects of the firings before it. Per contact,
        # the firings not yet committed and the log position of the last committed one.
        self._effects_lock = threading.Lock()
        self._unsettled: dict[str, list[Future[Any]]] = {}
        self._effects_at: OrderedDict[str, int] = OrderedDict()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_scan = 0.0
        # The loop and callers such as tests or `scan_dates` from another thread take turns.
        self._lock = threading.RLock()
        self._scan_marks: dict[UUID, tuple[str, str] | None] = {}
        self._timers_tried: set[UUID] = set()
        self._index_stale = False
        self.fired = 0
        self.last_error: str | None = None

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
            self.load_calendars()
        elif self.wait_for_views(self.position()):
            self.load_rules()
        else:  # the views are behind (their worker is down): the log has every rule
            self.load_calendars()
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
            return first[0].id - 1
        return self.app.recorder.max_notification_id() or 0

    def _load_rules_from_log(self) -> None:
        """The rules created up to the stored position, found by their `RuleCreated`."""
        position, start = self.position(), 1
        self.rules = {}
        while start <= position:
            page = self.app.recorder.select_notifications(
                start=start, limit=PAGE, stop=position, topics=[get_topic(Rule.RuleCreated)]
            )
            if not page:
                break
            for notification in page:
                self._reload_rule(notification.originator_id)
            start = page[-1].id + 1
        self._index()

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

    # -- rules ------------------------------------------------------------------------------

    def load_calendars(self) -> None:
        calendars: dict[str, BusinessCalendar] = {"default": DEFAULT_CALENDAR}
        for row in self.views.query("SELECT name, definition FROM calendars"):
            try:
                calendars[row["name"]] = BusinessCalendar.from_dict(json.loads(row["definition"]))
            except ValueError:
                log.warning("calendar %s cannot be read; ignored", row["name"])
        self.calendars = calendars

    def _reload_calendar(self, calendar_id: UUID) -> None:
        calendar: Calendar = self.app.repository.get(calendar_id)
        self.calendars[calendar.name] = BusinessCalendar.from_dict(calendar.definition)

    def _calendars_for(self, trigger: TriggerEvent) -> dict[str, BusinessCalendar]:
        """The named calendars, plus `inbox`: the calendar of the conversation's inbox."""
        calendars = dict(self.calendars)
        calendars["inbox"] = calendars["default"]
        if trigger.conversation_id is None:
            return calendars
        try:
            conversation: Conversation = self.app.repository.get(trigger.conversation_id)
        except Exception:
            return calendars
        if conversation.inbox_id is not None:
            try:
                inbox: Inbox = self.app.repository.get(conversation.inbox_id)
            except Exception:
                return calendars
            calendars["inbox"] = calendars.get(inbox.slug, calendars["default"])
        return calendars

    def load_rules(self) -> None:
        self.load_calendars()
        rows = self.views.query("SELECT id FROM rules")
        self.rules = {}
        for row in rows:
            self._reload_rule(UUID(row["id"]))
        self._index()

    def _reload_rule(self, rule_id: UUID) -> None:
        try:
            rule: Rule = self.app.repository.get(rule_id)
        except Exception:
            self.rules.pop(rule_id, None)
            return
        if not rule.enabled:
            self.rules.pop(rule_id, None)
            return
        condition = rule.definition.get("if")
        try:
            # Validated once here, so every evaluation can skip it (it is half the cost).
            if condition is not None:
                validate_condition(condition)
        except ConditionError as error:
            log.warning("rule %s (%s) is not loaded: %s", rule.name, rule_id, error)
            self.rules.pop(rule_id, None)
            return
        self.rules[rule_id] = ActiveRule(rule_id, rule.version, rule.definition)

    def _index(self) -> None:
        index: dict[str, list[ActiveRule]] = defaultdict(list)
        for rule in sorted(self.rules.values(), key=lambda r: (r.priority, r.name, str(r.id))):
            index[rule.definition["when"]["event"]].append(rule)
        self.by_event = dict(index)
        self._index_stale = False
        self.cancelling = self._cancelling_names()
        # Which rules need business calendars (finding an inbox's costs two reads per event).
        self.using_calendars = {
            rule.id
            for rule in self.rules.values()
            if "business_hours" in json.dumps(rule.definition)
        }

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
        if self._index_stale:
            self._index()
        in_flight, self._in_flight = self._in_flight, []
        for decision, future, cause_key in in_flight:
            self._settle(decision, future, cause_key)
        self.state.set(POSITION_KEY, str(notifications[-1].id))
        return True

    def handle(self, domain_event: Any, notification_id: int) -> None:
        if isinstance(domain_event, Rule.Event):
            # Indexed once before the next other event: a first start reads every rule's
            # creation from the log, and re-indexing all rules for each made that quadratic.
            self._reload_rule(domain_event.originator_id)
            self._index_stale = True
            return
        if isinstance(domain_event, Calendar.Event):
            self._reload_calendar(domain_event.originator_id)
            return
        if self._index_stale:
            self._index()
        trigger = to_trigger_event(domain_event, notification_id)
        if trigger is None:
            return
        self._cancel_timers(trigger)
        self._record_opt_out(trigger)
        self._complete_reply_task(trigger)
        self._behind_the_mark(trigger)
        candidates = self._candidates(trigger)
        if not candidates:
            return
        trigger = self._with_links(trigger, domain_event)
        self.wait_for_views(notification_id)
        self.run_rules(candidates, trigger, wait=False)

    def _with_links(self, trigger: TriggerEvent, domain_event: Any) -> TriggerEvent:
        """Events such as `CallMissed` name only their message: find its contact and thread."""
        if trigger.contact_id is not None:
            return trigger
        try:
            aggregate = self.app.repository.get(
                domain_event.originator_id, version=domain_event.originator_version
            )
        except Exception:
            return trigger
        contact_id = getattr(aggregate, "contact_id", None)
        conversation_id = getattr(aggregate, "conversation_id", None)
        if contact_id is None:
            return trigger
        from dataclasses import replace

        return replace(
            trigger,
            contact_id=contact_id,
            conversation_id=trigger.conversation_id or conversation_id,
        )

    def _candidates(self, trigger: TriggerEvent) -> list[ActiveRule]:
        found: list[ActiveRule] = []
        for name in trigger.names:
            found.extend(self.by_event.get(name, ()))
        return found

    def _contact_as_of(self, contact_id: str, version: int) -> Any:
        try:
            return self.app.repository.get(UUID(contact_id), version=version)
        except Exception:  # a missing or unreadable aggregate: the card alone will do
            log.debug("contact %s at version %d not loaded", contact_id, version, exc_info=True)
            return None

    def run_rules(
        self,
        rules: list[ActiveRule],
        trigger: TriggerEvent,
        from_timer: UUID | None = None,
        cause_key: str | None = None,
        depth: int | None = None,
        wait: bool = True,
    ) -> list[UUID]:
        if any("if" in rule.definition for rule in rules):
            self._see_own_effects(trigger)  # a rule without conditions need not wait for it
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
                self._calendars_for(trigger)
                if any(r.id in self.using_calendars for r in rules)
                else self.calendars
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
                    prepared.actions = self._prepare_actions(decision, trigger, facts)
                command = firing_command(prepared)
            future = self.app.writer.submit_nowait(command)
            self._track_effects(trigger, future)
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

    # -- seeing the runner's own effects -----------------------------------------------------

    @staticmethod
    def _effects_key(trigger: TriggerEvent) -> str | None:
        """Whose facts a firing's effects change: the contact's (else the conversation's)."""
        if trigger.contact_id is not None:
            return f"contact:{trigger.contact_id}"
        if trigger.conversation_id is not None:
            return f"conversation:{trigger.conversation_id}"
        return None

    def _track_effects(self, trigger: TriggerEvent, future: Future[Any]) -> None:
        key = self._effects_key(trigger)
        if key is None:
            return
        with self._effects_lock:
            self._unsettled.setdefault(key, []).append(future)
        future.add_done_callback(lambda done: self._effects_committed(key, done))

    def _effects_committed(self, key: str, future: Future[Any]) -> None:
        """Note where a firing's effects landed in the log (runs when its commit resolves)."""
        position = None
        if not future.cancelled() and future.exception() is None:
            position = future.result().notification_id
        with self._effects_lock:
            waiting = self._unsettled.get(key)
            if waiting is not None and future in waiting:
                waiting.remove(future)
                if not waiting:
                    del self._unsettled[key]
            if position is not None and position > self._effects_at.get(key, 0):
                self._effects_at[key] = position
                self._effects_at.move_to_end(key)
                while len(self._effects_at) > EFFECTS_REMEMBERED:
                    self._effects_at.popitem(last=False)

    def _see_own_effects(self, trigger: TriggerEvent) -> None:
        """Before a rule reads facts, let the earlier firings for the same contact commit and
        the views show them: a repeat message handled in the same page as the first one's
        firing must see the task that firing created ("every waiting conversation has an open
        task" would add a second). Raises if the views do not get there (the page is retried).
        """
        key = self._effects_key(trigger)
        if key is None:
            return
        with self._effects_lock:
            waiting = list(self._unsettled.get(key, ()))
        wait_all(waiting, timeout=60)
        position = 0
        for future in waiting:
            if future.done() and not future.cancelled() and future.exception() is None:
                position = max(position, future.result().notification_id or 0)
        with self._effects_lock:
            position = max(position, self._effects_at.get(key, 0))
        if position and not self.wait_for_views(position):
            raise RuntimeError(
                f"the views have not reached this runner's own effects at {position}"
            )

    def _settle(self, decision: Decision, future: Future[Any], cause_key: str) -> UUID | None:
        try:
            result: UUID | None = future.result(timeout=60).value
        except DomainError as error:
            log.warning("rule %s on %s: %s", decision.rule.name, cause_key, error)
            return None
        if result is not None:
            self.fired += 1
        return result

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

    # -- replies --------------------------------------------------------------------------

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
        self._track_effects(trigger, future)
        future.result(timeout=60)

    # -- preparing actions ------------------------------------------------------------------

    def _prepare_actions(
        self, decision: Decision, trigger: TriggerEvent, facts: dict[str, Any]
    ) -> list[PreparedAction]:
        prepared: list[PreparedAction] = []
        now = datetime.now(UTC)
        for spec_item in decision.rule.definition.get("then", []):
            ((kind, spec),) = spec_item.items()
            action = PreparedAction(kind=kind, spec=spec)
            try:
                if kind == "send_template":
                    self._prepare_message(action, trigger, facts, now)
                elif kind in ("create_task", "assign_conversation", "notify"):
                    action.assignee_id = self._assignee(spec, facts, decision.rule.id)
                    if kind == "create_task":
                        action.due_at = due_in(str(spec.get("due_in", "1d")), now)
                        action.rendered = {"title": self._text(spec["title"], facts)}
                    if kind == "notify":
                        action.rendered = {"text": self._text(spec["text"], facts)}
                elif kind == "webhook":
                    action.rendered = {
                        "rule_id": str(decision.rule.id),
                        "rule": decision.rule.name,
                        "event": trigger.names[0],
                        "cause": trigger.cause_key,
                        "contact_id": str(trigger.contact_id) if trigger.contact_id else None,
                        "conversation_id": str(trigger.conversation_id)
                        if trigger.conversation_id
                        else None,
                    }
            except (TemplateError, DomainError, KeyError, ValueError) as error:
                action.skip = f"{type(error).__name__}: {error}"
            prepared.append(action)
        return prepared

    def _prepare_message(
        self, action: PreparedAction, trigger: TriggerEvent, facts: dict[str, Any], now: datetime
    ) -> None:
        contact = facts.get("contact") or {}
        if not contact:
            action.skip = "no contact to write to"
            return
        channel = self._channel(action.spec.get("channel", "same"), trigger, facts)
        if channel is None:
            action.skip = "the contact has no channel a message can go to"
            return
        action.channel = channel
        contact_id = str(contact["id"])
        aggregate: Contact = self.app.repository.get(UUID(contact_id))
        if aggregate.has_opted_out(channel):
            action.skip = f"opted out of automatic messages on {channel}"
            return
        if self._automatic_today(contact_id) >= self.settings.automatic_per_day:
            action.skip = f"rate limit: {self.settings.automatic_per_day} automatic messages a day"
            return
        template: Template = self.app.repository.get(template_id_for(action.spec["template"]))
        context = dict(facts)
        if self.settings.unsubscribe_url is not None:
            context["unsubscribe_url"] = self.settings.unsubscribe_url(contact_id)
        rendered = render(template.variants, channel, context)
        action.rendered = {
            "subject": rendered.subject or "",
            "text": rendered.text or "",
            "html": rendered.html or "",
        }
        self._recent_automatic[contact_id].append((time.time(), str(trigger.cause_key)))

    def _channel(self, wanted: str, trigger: TriggerEvent, facts: dict[str, Any]) -> str | None:
        """The channel the message goes out on. "same" answers the conversation the way a
        reply to it leaves: a web form's or the API's conversation by e-mail (the message
        still belongs to that conversation; see `actions._conversation_for`)."""
        if wanted and wanted != "same":
            return wanted
        conversation = facts.get("conversation") or {}
        if conversation.get("channel"):
            own = str(conversation["channel"])
            return REPLY_CHANNEL.get(own, own)
        contact = facts.get("contact") or {}
        channels = sorted(
            contact.get("channels", []),
            key=lambda c: c.get("last_inbound_at") or "",
            reverse=True,
        )
        if channels:
            last = str(channels[0]["channel"])
            return REPLY_CHANNEL.get(last, last)
        if contact.get("email"):
            return "email"
        return None

    def _automatic_today(self, contact_id: str) -> int:
        since = datetime.now(UTC) - timedelta(days=1)
        rows = self.views.query(
            "SELECT effect_id FROM rule_effects WHERE contact_id = ? AND kind = 'message'"
            " AND occurred_at >= ?",
            [contact_id, since.strftime("%Y-%m-%dT%H:%M:%S.%fZ")],
        )
        recent = self._recent_automatic[contact_id]
        cutoff = time.time() - 86_400
        while recent and recent[0][0] < cutoff:
            recent.popleft()
        # The view may not show the newest firings yet; the runner's memory covers them.
        # Campaign messages count towards the same daily limit.
        return max(len(rows), len(recent)) + campaign_messages_since(self.views, contact_id, since)

    def _assignee(self, spec: dict[str, Any], facts: dict[str, Any], rule_id: UUID) -> UUID | None:
        mode = spec.get("assignee", "responsible")
        if mode == "unassigned":
            return None
        if mode == "user":
            return UUID(spec["user_id"])
        if mode == "responsible":
            event = facts.get("event") or {}
            owner = (
                (
                    event.get("assignee_id")
                    if str(event.get("type", "")).startswith("task")
                    else None
                )
                or (facts.get("contact") or {}).get("responsible_id")
                or (facts.get("conversation") or {}).get("assignee_id")
            )
            if owner:
                return UUID(str(owner))
            if not spec.get("team"):
                return None
            mode = "least_busy"
        team = self._team(spec.get("team", []))
        if not team:
            return None
        if mode == "round_robin":
            key = f"round-robin:{rule_id}"
            turn = int(self.state.get(key) or 0)
            self.state.set(key, str(turn + 1))
            return UUID(team[turn % len(team)])
        counts = {member: 0 for member in team}
        marks = ",".join("?" for _ in team)
        for row in self.views.query(
            f"SELECT assignee_id, COUNT(*) AS n FROM tasks WHERE status = 'open'"
            f" AND assignee_id IN ({marks}) GROUP BY assignee_id",
            team,
        ):
            counts[row["assignee_id"]] = int(row["n"])
        return UUID(min(team, key=lambda member: (counts[member], team.index(member))))

    def _team(self, members: list[str]) -> list[str]:
        """User ids, with ``role:<role>`` expanded to the active users of that role."""
        team: list[str] = []
        for member in members:
            if member.startswith("role:"):
                rows = self.views.query(
                    "SELECT id FROM users WHERE role = ? AND active = 1 ORDER BY email",
                    [member[5:]],
                )
                team.extend(str(row["id"]) for row in rows)
            else:
                team.append(member)
        return list(dict.fromkeys(team))

    @staticmethod
    def _text(text: str, facts: dict[str, Any]) -> str:
        rendered = render({"default": {"text": text}}, "default", facts)
        return rendered.text or text

    # -- timers -----------------------------------------------------------------------------

    def _cancel_timers(self, trigger: TriggerEvent) -> None:
        """A timer waits for people: automatic output (a welcome message) does not cancel it."""
        if trigger.conversation_id is None and trigger.contact_id is None:
            return
        if trigger.actor.startswith(AUTOMATIC) or not self.cancelling.intersection(trigger.names):
            return  # no active rule waits for anything this event could end
        self._mark(trigger)
        if trigger.conversation_id is not None:
            rows = self.views.query(
                "SELECT id, cancel_on FROM rule_timers WHERE state = 'scheduled'"
                " AND conversation_id = ?",
                [str(trigger.conversation_id)],
            )
        else:
            rows = self.views.query(
                "SELECT id, cancel_on FROM rule_timers WHERE state = 'scheduled'"
                " AND contact_id = ?",
                [str(trigger.contact_id)],
            )
        for row in rows:
            cancel_on = set(json.loads(row["cancel_on"] or "[]"))
            hit = cancel_on.intersection(trigger.names)
            if hit:
                reason = f"{sorted(hit)[0]} ({trigger.cause_key})"
                self.app.writer.submit(
                    cancel_timer_command(UUID(row["id"]), reason, "worker:triggers")
                )

    def _cancelling_names(self) -> set[str]:
        names: set[str] = set()
        for rule in self.rules.values():
            names.update(rule.definition.get("after", {}).get("cancel_on", []))
        return names

    def _scope(self, conversation_id: Any, contact_id: Any) -> str:
        return f"conversation:{conversation_id}" if conversation_id else f"contact:{contact_id}"

    def _mark(self, trigger: TriggerEvent) -> None:
        """Remember where in the log a cancelling event last happened, per conversation.

        A timer may be scheduled after the event that should cancel it was read (the reply
        came quickly); firing checks these marks, so such a timer is cancelled anyway.
        """
        wanted = self.cancelling.intersection(trigger.names)
        scope = self._scope(trigger.conversation_id, trigger.contact_id)
        for name in wanted:
            self.state.set(f"mark:{scope}:{name}", str(trigger.notification_id))

    def _cancelled_since(self, timer: Timer) -> str | None:
        cause_position = int(timer.cause.get("notification_id", 0))
        scope = self._scope(timer.conversation_id, timer.contact_id)
        rule = self.rules.get(timer.rule_id)
        cancel_on = rule.definition.get("after", {}).get("cancel_on", []) if rule else []
        for name in cancel_on:
            position = int(self.state.get(f"mark:{scope}:{name}") or 0)
            if position > cause_position:
                return f"{name} (at {position})"
        return None

    def fire_due_timers(self) -> bool:
        """Fire the timers that came due; True if any was tried.

        A timer just fired or cancelled still shows as scheduled until the views apply
        that: it is not tried again meanwhile (no do-nothing rounds while the views lag).
        """
        now = ts(datetime.now(UTC))
        with self._lock:
            rows = self.views.query(
                "SELECT id FROM rule_timers WHERE state = 'scheduled' AND due_at <= ?"
                " ORDER BY due_at LIMIT 100",
                [now],
            )
            shown = [UUID(row["id"]) for row in rows]
            fresh = [timer for timer in shown if timer not in self._timers_tried]
            for timer in fresh:
                self.fire_timer(timer)
                self._timers_tried.add(timer)
            self._timers_tried.intersection_update(shown)
        return bool(fresh)

    def fire_timer(self, timer_id: UUID) -> None:
        timer: Timer = self.app.repository.get(timer_id)
        if timer.state != "scheduled":
            return
        rule = self.rules.get(timer.rule_id)
        if rule is None:
            self.app.writer.submit(
                cancel_timer_command(timer_id, "the rule is disabled or gone", "worker:triggers")
            )
            return
        cancelled_by = self._cancelled_since(timer)
        if cancelled_by is not None:
            self.app.writer.submit(cancel_timer_command(timer_id, cancelled_by, "worker:triggers"))
            return
        cause = timer.cause
        trigger = self._timer_cause(timer)
        if trigger is None:
            self.app.writer.submit(
                cancel_timer_command(timer_id, "its cause cannot be read", "worker:triggers")
            )
            return
        done = self.run_rules(
            [rule],
            trigger,
            from_timer=timer_id,
            cause_key=f"timer:{timer_id}",
            depth=int(cause.get("depth", 0)),
        )
        if not done:
            self.app.writer.submit(
                cancel_timer_command(timer_id, "the conditions no longer hold", "worker:triggers")
            )

    def _timer_cause(self, timer: Timer) -> TriggerEvent | None:
        """The timer's cause as rules see it, with its facts read again from the log.

        `TimerScheduled` keeps a reference to its cause (the event's id and version, its
        log position), not a copy of its facts: copying every message's text and subject
        into its timers made a third of the log's bytes. None if the event is gone.
        """
        cause = timer.cause
        facts: dict[str, Any] = dict(cause.get("facts") or {})
        originator = cause.get("originator_id")
        if originator:
            version = int(cause.get("version", 0))
            found = self.app.repository.event_store.get(
                UUID(str(originator)), gt=version - 1, lte=version
            )
            events = list(found)
            described = (
                to_trigger_event(events[0], int(cause.get("notification_id", 0)))
                if events
                else None
            )
            if described is None:
                return None
            facts = described.facts
        return TriggerEvent(
            names=tuple(cause.get("names", [])),
            cause_key=str(cause.get("key")),
            occurred_at=datetime.fromisoformat(cause["occurred_at"]),
            facts=facts,
            contact_id=timer.contact_id,
            conversation_id=timer.conversation_id,
            actor=str(cause.get("actor", "")),
            correlation_id=str(cause.get("correlation_id", "")),
            notification_id=int(cause.get("notification_id", 0)),
        )

    # -- opt-out ----------------------------------------------------------------------------

    def _record_opt_out(self, trigger: TriggerEvent) -> None:
        facts = trigger.facts
        if "message.received" not in trigger.names or trigger.contact_id is None:
            return
        channel = str(facts.get("channel", ""))
        text = " ".join(str(facts.get("text", "")).lower().split())
        if channel in OPT_OUT_CHANNELS and text in STOP_WORDS:
            opt_out(self.app, trigger.contact_id, channel, f"the client wrote {text!r}")

    # -- date-driven triggers ---------------------------------------------------------------

    def scan_dates(self, now: datetime | None = None) -> bool:
        """Run the date-driven triggers due by `now`; True if a task scan has more pages."""
        now = now or datetime.now(UTC)
        more = False
        with self._lock:
            rules = list(self.rules.values())
            # The task scans read the views: they must show every task event this runner
            # has passed, or a task changed just before its mark moves would be missed
            # (`_behind_the_mark` covers only the events read after the scan).
            dated = [r for r in rules if r.definition["when"]["event"] in TASK_DATES]
            views_ready = not dated or self.wait_for_views(self.position())
            for rule in rules:
                event = rule.definition["when"]["event"]
                if event == "birthday" or rule.definition.get("at"):
                    self._scheduled(rule, now)
                elif event in TASK_DATES and views_ready:
                    more = self._task_dates(rule, event, now) or more
        return more

    def _scheduled(self, rule: ActiveRule, now: datetime) -> None:
        """Run a scheduled rule once per occurrence; one missed while down runs at start."""
        from threadline.triggers.rules import next_run

        key = f"schedule:{rule.id}"
        definition = rule.definition
        if not definition.get("at"):
            definition = {**definition, "at": {"cron": "0 9 * * *", "timezone": "UTC"}}
        last = self.state.get(key)
        if last is None:
            self.state.set(key, now.isoformat())
            # A new rule runs at its next occurrence, except a birthday rule, which greets
            # today's birthdays at once if its time of day has already passed.
            if definition["when"]["event"] != "birthday":
                return
            last_time = now - timedelta(days=1)
        else:
            last_time = datetime.fromisoformat(last)
        occurrence = next_run(definition, last_time)
        if occurrence is None or occurrence > now:
            return
        self.state.set(key, now.isoformat())
        day = occurrence.date()
        if definition["when"]["event"] == "birthday":
            self._birthdays(rule, definition, occurrence, day)
        else:
            trigger = TriggerEvent(
                names=("schedule",),
                cause_key=f"schedule:{occurrence.isoformat()}",
                occurred_at=occurrence,
                facts={"type": "schedule", "occurrence": occurrence.isoformat()},
            )
            self.run_rules([rule], trigger)

    def _birthdays(
        self, rule: ActiveRule, definition: dict[str, Any], occurrence: datetime, day: date
    ) -> None:
        attribute = str(definition["when"].get("attribute", "birthday"))
        suffix = f"-{day.month:02d}-{day.day:02d}"
        candidates = [suffix]
        if day.month == 2 and day.day == 28 and not _leap(day.year):
            candidates.append("-02-29")
        for ending in candidates:
            rows = self.views.query(
                "SELECT DISTINCT contact_id FROM contact_attributes WHERE key = ?"
                " AND text_value LIKE ?",
                [attribute, f"%{ending}"],
            )
            for row in rows:
                trigger = TriggerEvent(
                    names=("birthday",),
                    cause_key=f"birthday:{row['contact_id']}:{day.isoformat()}",
                    occurred_at=occurrence,
                    facts={"type": "birthday", "date": day.isoformat()},
                    contact_id=UUID(row["contact_id"]),
                )
                self.run_rules([rule], trigger)

    def _task_dates(self, rule: ActiveRule, event: str, now: datetime) -> bool:
        """Remind each open task once per due time: one page in due order from the mark.

        `task.overdue` sweeps the tasks whose due time has passed; `task.due_soon` those
        whose due time the window's leading edge (now + `within`) has reached, so a task
        is reminded as it enters the window, not just before it is due. The mark is the
        last task reminded, as (due time, id), kept in the state store: a scan reads only
        what crossed the edge since the last one, never the same task twice, and a task
        rescheduled past the mark is reminded again at its new time. A task that lands
        behind the mark (created already overdue, or due inside the window already swept)
        is reminded as its event is read (`_behind_the_mark`). True if the page was full.
        """
        after_due, after_id = self._scan_mark(rule) or ("", "")
        if event == "task.overdue":
            edge = ts(now)
        else:
            edge = ts(due_in(self._within(rule), now))
            if after_due < ts(now):  # due before now is overdue, no longer "due soon"
                after_due, after_id = ts(now), ""
        rows = self.views.query(
            "SELECT id, contact_id, conversation_id, due_at, assignee_id FROM tasks"
            " WHERE status = 'open' AND due_at < ? AND (due_at > ? OR (due_at = ? AND id > ?))"
            " ORDER BY due_at, id LIMIT ?",
            [edge, after_due, after_due, after_id, SCAN_PAGE],
        )
        for row in rows:
            self.run_rules([rule], self._task_trigger(event, row, now), wait=False)
        # The page's firings commit together; the mark moves only once they have.
        self._settle_in_flight()
        if rows:
            self._set_scan_mark(rule, (str(rows[-1]["due_at"]), str(rows[-1]["id"])))
        return len(rows) == SCAN_PAGE

    def _behind_the_mark(self, trigger: TriggerEvent) -> None:
        """A task created or rescheduled to a time a scan has already swept is reminded now.

        Scans move forward only; without this, a task created already overdue, or due in
        ten minutes when the due-soon window has swept an hour ahead, would never be.
        """
        if not TASK_MOVES.intersection(trigger.names):
            return
        rules = [
            rule
            for name in TASK_DATES
            for rule in self.by_event.get(name, ())
            if self._scan_mark(rule) is not None  # else the scan has not started: it will
        ]
        if not rules:
            return
        if not self.wait_for_views(trigger.notification_id):
            raise RuntimeError("the views have not reached a task's new due time")  # retried
        row = self.views.query_one(
            "SELECT id, contact_id, conversation_id, due_at, assignee_id FROM tasks"
            " WHERE id = ? AND status = 'open' AND due_at IS NOT NULL",
            [str(trigger.facts.get("task_id", ""))],
        )
        if row is None:
            return
        now = datetime.now(UTC)
        due = str(row["due_at"])
        for rule in rules:
            mark = self._scan_mark(rule)
            if mark is None or due > mark[0]:
                continue  # the scan will reach it
            event = rule.definition["when"]["event"]
            if (event == "task.overdue") != (due < ts(now)):
                continue  # not yet overdue, or already past due (no longer "due soon")
            self.run_rules([rule], self._task_trigger(event, row, now), wait=False)

    @staticmethod
    def _task_trigger(event: str, row: dict[str, Any], now: datetime) -> TriggerEvent:
        """One reminder's cause: the task at one due time (a new due time, a new cause)."""
        return TriggerEvent(
            names=(event,),
            cause_key=f"{event}:{row['id']}:{row['due_at']}",
            occurred_at=now,
            facts={
                "type": event,
                "task_id": row["id"],
                "due_at": row["due_at"],
                "assignee_id": row["assignee_id"],
            },
            contact_id=UUID(row["contact_id"]) if row["contact_id"] else None,
            conversation_id=UUID(row["conversation_id"]) if row["conversation_id"] else None,
        )

    @staticmethod
    def _within(rule: ActiveRule) -> str:
        return str(rule.definition["when"].get("within", "1h"))

    def _scan_mark(self, rule: ActiveRule) -> tuple[str, str] | None:
        if rule.id not in self._scan_marks:
            stored = self.state.get(f"{SCAN_KEY}{rule.id}")
            due, task = json.loads(stored) if stored else (None, None)
            self._scan_marks[rule.id] = (str(due), str(task)) if due is not None else None
        return self._scan_marks[rule.id]

    def _set_scan_mark(self, rule: ActiveRule, mark: tuple[str, str]) -> None:
        self.state.set(f"{SCAN_KEY}{rule.id}", json.dumps(list(mark)))
        self._scan_marks[rule.id] = mark

    def _settle_in_flight(self) -> None:
        """Wait for the firings submitted without waiting (`run_rules(wait=False)`)."""
        in_flight, self._in_flight = self._in_flight, []
        for decision, future, cause_key in in_flight:
            self._settle(decision, future, cause_key)


def opt_out(app: Threadline, contact_id: UUID, channel: str, reason: str) -> None:
    """Record that a contact wants no automatic messages on `channel` (``*`` for all)."""

    def command(unit: Any) -> None:
        contact = unit.get(contact_id, Contact)
        while contact.merged_into is not None:
            contact = unit.get(contact.merged_into, Contact)
        if not contact.has_opted_out(channel):
            contact.opt_out(channel, reason, "worker:triggers", str(contact_id))

    app.writer.submit(command)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
