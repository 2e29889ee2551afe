"""Delayed rules (`after`): cancelling their timers when the awaited event happens, firing them when due.

A timer waits for people: an event named in the rule's ``after.cancel_on`` (a reply,
``message.sent``) cancels the timers of its conversation (else contact). Because a
timer may be scheduled after the event that should cancel it was read, the runner also
remembers where each cancelling event last happened (`mark`), and a timer checks those
marks before it fires.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

from threadline.domain.infrastructure.group_commit import Command, Committed
from threadline.domain.model.rule import Timer
from threadline.projections.automation import due_timer_ids, scheduled_timers
from threadline.projections.sql import ViewReader
from threadline.triggers.evaluator import ActiveRule
from threadline.triggers.events import TriggerEvent, to_trigger_event
from threadline.triggers.firing import cancel_timer_command
from threadline.triggers.rule_book import RuleBook
from threadline.triggers.state_store import StateStore

AUTOMATIC = "rule:"
WORKER = "worker:triggers"
DUE_PAGE = 100


class Writer(Protocol):
    def submit(self, command: Command[Any]) -> Committed[Any]: ...


class Repository(Protocol):
    @property
    def event_store(self) -> Any: ...

    def get(self, aggregate_id: UUID, *, version: int | None = None) -> Any: ...


class RunsRules(Protocol):
    def run_rules(
        self,
        rules: list[ActiveRule],
        trigger: TriggerEvent,
        from_timer: UUID | None = None,
        cause_key: str | None = None,
        depth: int | None = None,
        wait: bool = True,
    ) -> list[UUID]: ...


def scope_of(conversation_id: Any, contact_id: Any) -> str:
    return f"conversation:{conversation_id}" if conversation_id else f"contact:{contact_id}"


class Timers:
    def __init__(
        self,
        book: RuleBook,
        views: ViewReader,
        state: StateStore,
        repository: Repository,
        writer: Writer,
        runner: RunsRules,
    ) -> None:
        self.book = book
        self.views = views
        self.state = state
        self.repository = repository
        self.writer = writer
        self.runner = runner
        self._tried: set[UUID] = set()

    def _cancel(self, timer: UUID, reason: str) -> None:
        self.writer.submit(cancel_timer_command(timer, reason, WORKER))

    # -- cancelling ---------------------------------------------------------------------------

    def cancel_for(self, trigger: TriggerEvent) -> None:
        """A timer waits for people: automatic output (a welcome message) does not cancel it."""
        if trigger.conversation_id is None and trigger.contact_id is None:
            return
        if trigger.actor.startswith(AUTOMATIC) or not self.book.cancelling.intersection(
            trigger.names
        ):
            return  # no active rule waits for anything this event could end
        self._mark(trigger)
        if trigger.conversation_id is not None:
            waiting = scheduled_timers(self.views, conversation_id=trigger.conversation_id)
        else:
            waiting = scheduled_timers(self.views, contact_id=trigger.contact_id)
        for timer in waiting:
            hit = timer.cancel_on.intersection(trigger.names)
            if hit:
                self._cancel(UUID(timer.id), f"{sorted(hit)[0]} ({trigger.cause_key})")

    def _mark(self, trigger: TriggerEvent) -> None:
        """Remember where in the log a cancelling event last happened, per conversation.

        A timer may be scheduled after the event that should cancel it was read (the reply
        came quickly); firing checks these marks, so such a timer is cancelled anyway.
        """
        wanted = self.book.cancelling.intersection(trigger.names)
        scope = scope_of(trigger.conversation_id, trigger.contact_id)
        for name in wanted:
            self.state.set(f"mark:{scope}:{name}", str(trigger.notification_id))

    def _cancelled_since(self, timer: Timer, rule: ActiveRule) -> str | None:
        cause_position = int(timer.cause.get("notification_id", 0))
        scope = scope_of(timer.conversation_id, timer.contact_id)
        cancel_on = rule.spec.after.cancel_on if rule.spec.after else ()
        for name in cancel_on:
            position = int(self.state.get(f"mark:{scope}:{name}") or 0)
            if position > cause_position:
                return f"{name} (at {position})"
        return None

    # -- firing -------------------------------------------------------------------------------

    def fire_due(self) -> bool:
        """Fire the timers that came due; True if any was tried.

        A timer just fired or cancelled still shows as scheduled until the views apply
        that: it is not tried again meanwhile (no do-nothing rounds while the views lag).
        """
        shown = [UUID(timer) for timer in due_timer_ids(self.views, datetime.now(UTC), DUE_PAGE)]
        fresh = [timer for timer in shown if timer not in self._tried]
        for timer in fresh:
            self.fire(timer)
            self._tried.add(timer)
        self._tried.intersection_update(shown)
        return bool(fresh)

    def fire(self, timer_id: UUID) -> None:
        timer: Timer = self.repository.get(timer_id)
        if timer.state != "scheduled":
            return
        rule = self.book.rules.get(timer.rule_id)
        if rule is None:
            self._cancel(timer_id, "the rule is disabled or gone")
            return
        cancelled_by = self._cancelled_since(timer, rule)
        if cancelled_by is not None:
            self._cancel(timer_id, cancelled_by)
            return
        trigger = self._cause(timer)
        if trigger is None:
            self._cancel(timer_id, "its cause cannot be read")
            return
        done = self.runner.run_rules(
            [rule],
            trigger,
            from_timer=timer_id,
            cause_key=f"timer:{timer_id}",
            depth=int(timer.cause.get("depth", 0)),
        )
        if not done:
            self._cancel(timer_id, "the conditions no longer hold")

    def _cause(self, timer: Timer) -> TriggerEvent | None:
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
            found = self.repository.event_store.get(
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
        deal = cause.get("deal_id")
        if deal and "deal_id" not in facts:  # a task's deal, found when the timer was set
            facts = {**facts, "deal_id": str(deal)}
        return TriggerEvent(
            names=tuple(cause.get("names", [])),
            cause_key=str(cause.get("key")),
            occurred_at=datetime.fromisoformat(cause["occurred_at"]),
            facts=facts,
            contact_id=timer.contact_id,
            conversation_id=timer.conversation_id,
            deal_id=UUID(str(deal)) if deal else None,
            actor=str(cause.get("actor", "")),
            correlation_id=str(cause.get("correlation_id", "")),
            notification_id=int(cause.get("notification_id", 0)),
        )
