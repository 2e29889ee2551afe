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
from collections import defaultdict, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from threadline.domain.application import Threadline
from threadline.domain.calendar import Calendar
from threadline.domain.contact import Contact
from threadline.domain.conversation import Conversation
from threadline.domain.errors import DomainError
from threadline.domain.inbox import Inbox
from threadline.domain.rule import Rule, RuleFiring, Timer
from threadline.domain.template import Template, template_id_for
from threadline.projections.campaigns import campaign_messages_since
from threadline.projections.queries import Queries
from threadline.projections.sql import ViewDatabase
from threadline.triggers.actions import (
    PreparedAction,
    PreparedFiring,
    cancel_timer_command,
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
SCAN_SECONDS = 20.0
POSITION_KEY = "triggers:position"
STOP_WORDS = {"stop", "/stop", "unsubscribe", "стоп", "отписаться"}
OPT_OUT_CHANNELS = {"sms", "whatsapp", "telegram"}
AUTOMATIC = "rule:"


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
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_scan = 0.0
        self.fired = 0
        self.last_error: str | None = None

    # -- life cycle -------------------------------------------------------------------------

    def start(self, from_now: bool = False) -> None:
        """Follow the log in a thread; `from_now` skips history on a first start."""
        if self._thread is not None:
            return
        if self.state.get(POSITION_KEY) is None:
            start = (self.app.recorder.max_notification_id() or 0) if from_now else 0
            self.state.set(POSITION_KEY, str(start))
        self.load_rules()
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

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.step()
                if time.monotonic() - self._last_scan > SCAN_SECONDS:
                    self._last_scan = time.monotonic()
                    self.scan_dates()
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
        in_flight, self._in_flight = self._in_flight, []
        for decision, future, cause_key in in_flight:
            self._settle(decision, future, cause_key)
        self.state.set(POSITION_KEY, str(notifications[-1].id))
        return True

    def handle(self, domain_event: Any, notification_id: int) -> None:
        if isinstance(domain_event, Rule.Event):
            self._reload_rule(domain_event.originator_id)
            self._index()
            return
        if isinstance(domain_event, Calendar.Event):
            self._reload_calendar(domain_event.originator_id)
            return
        trigger = to_trigger_event(domain_event, notification_id)
        if trigger is None:
            return
        self._cancel_timers(trigger)
        self._record_opt_out(trigger)
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
            waiting.append((decision, self.app.writer.submit_nowait(command)))
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
        if wanted and wanted != "same":
            return wanted
        conversation = facts.get("conversation") or {}
        if conversation.get("channel"):
            return str(conversation["channel"])
        contact = facts.get("contact") or {}
        channels = sorted(
            contact.get("channels", []),
            key=lambda c: c.get("last_inbound_at") or "",
            reverse=True,
        )
        if channels:
            return str(channels[0]["channel"])
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
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        rows = self.views.query(
            "SELECT id FROM rule_timers WHERE state = 'scheduled' AND due_at <= ?"
            " ORDER BY due_at LIMIT 100",
            [now],
        )
        for row in rows:
            self.fire_timer(UUID(row["id"]))
        return bool(rows)

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
        trigger = TriggerEvent(
            names=tuple(cause.get("names", [])),
            cause_key=str(cause.get("key")),
            occurred_at=datetime.fromisoformat(cause["occurred_at"]),
            facts=cause.get("facts", {}),
            contact_id=timer.contact_id,
            conversation_id=timer.conversation_id,
            actor=str(cause.get("actor", "")),
            correlation_id=str(cause.get("correlation_id", "")),
            notification_id=int(cause.get("notification_id", 0)),
        )
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

    def scan_dates(self, now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        for rule in list(self.rules.values()):
            event = rule.definition["when"]["event"]
            if event == "birthday" or rule.definition.get("at"):
                self._scheduled(rule, now)
            elif event in ("task.overdue", "task.due_soon"):
                self._task_dates(rule, event, now)

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

    def _task_dates(self, rule: ActiveRule, event: str, now: datetime) -> None:
        stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if event == "task.overdue":
            rows = self.views.query(
                "SELECT id, contact_id, conversation_id, due_at, assignee_id FROM tasks"
                " WHERE status = 'open' AND due_at IS NOT NULL AND due_at < ? LIMIT 1000",
                [stamp],
            )
        else:
            within = rule.definition["when"].get("within", "1h")
            horizon = due_in(str(within), now).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            rows = self.views.query(
                "SELECT id, contact_id, conversation_id, due_at, assignee_id FROM tasks"
                " WHERE status = 'open' AND due_at >= ? AND due_at < ? LIMIT 1000",
                [stamp, horizon],
            )
        for row in rows:
            trigger = TriggerEvent(
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
            self.run_rules([rule], trigger)


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
