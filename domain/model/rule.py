"""Rules, their firings and their timers: automation as events, so an auditor can replay it.

A rule is data (`definition`: when / if / after / at / then), validated by the
trigger engine before it reaches the log; every change of it is an event.

A firing's id is ``uuid5(rule id, cause)``: re-reading the log after a crash,
or a redelivery from Kafka, finds the firing already in the store and does
nothing, so a rule fires at most once per cause. The firing records the
conditions that held and what the actions produced, which is what
"why did the client get this?" is answered from.

A timer is the durable form of ``after`` (and of scheduled rules): scheduled,
fired or cancelled as events. Its id is derived the same way, so scheduling
the same delay twice is impossible.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

FIRING_NAMESPACE = uuid5(NAMESPACE_URL, "https://threadline.dev/rule-firing")
TIMER_NAMESPACE = uuid5(NAMESPACE_URL, "https://threadline.dev/rule-timer")
RULE_NAMESPACE = uuid5(NAMESPACE_URL, "https://threadline.dev/rule")


def rule_id_for(key: str) -> UUID:
    """Stable ids for shipped rules, so seeding them twice changes nothing."""
    return uuid5(RULE_NAMESPACE, key)


def firing_id(rule_id: UUID, cause_key: str) -> UUID:
    return uuid5(FIRING_NAMESPACE, f"{rule_id}:{cause_key}")


def timer_id(rule_id: UUID, cause_key: str) -> UUID:
    return uuid5(TIMER_NAMESPACE, f"{rule_id}:{cause_key}")


class Rule(Aggregate):
    """A named automation: its definition and whether it is active."""

    class RuleCreated(Aggregate.Created):
        name: str
        definition: dict[str, Any]
        actor: str
        correlation_id: str

    @event(RuleCreated)
    def __init__(
        self,
        id: UUID,
        name: str,
        definition: dict[str, Any],
        actor: str,
        correlation_id: str,
    ) -> None:
        self.name = name
        self.definition = definition
        self.enabled = True

    class RuleChanged(Aggregate.Event):
        name: str
        definition: dict[str, Any]
        actor: str
        correlation_id: str

    @event(RuleChanged)
    def change(
        self, name: str, definition: dict[str, Any], actor: str, correlation_id: str
    ) -> None:
        self.name = name
        self.definition = definition

    class RuleEnabledChanged(Aggregate.Event):
        enabled: bool
        actor: str
        correlation_id: str

    @event(RuleEnabledChanged)
    def set_enabled(self, enabled: bool, actor: str, correlation_id: str) -> None:
        self.enabled = enabled


class FiringOutcome(StrEnum):
    FIRED = "fired"
    SKIPPED = "skipped"  # conditions held but a guard stopped it (opt-out, rate limit, depth)
    SCHEDULED = "scheduled"  # an `after` delay: the timer will fire it


def split_trace(trace: list[Any]) -> tuple[list[Any], dict[str, Any]]:
    """A condition trace as (what the rule compared, the event's values it compared them to):
    the leaves without `actual`, and `{"actual": [...]}` in the leaves' order."""
    public: list[Any] = []
    actual: list[Any] = []
    for leaf in trace:
        if isinstance(leaf, dict):
            public.append({k: v for k, v in leaf.items() if k != "actual"})
            actual.append(leaf.get("actual"))
        else:
            public.append(leaf)
            actual.append(None)
    return public, {"actual": actual}


def joined_trace(trace: list[Any], personal: dict[str, Any] | None) -> list[Any]:
    """The whole trace again; a forgotten contact's leaves show no values."""
    actual = list((personal or {}).get("actual") or [])
    joined: list[Any] = []
    for index, leaf in enumerate(trace):
        if isinstance(leaf, dict) and index < len(actual):
            joined.append({**leaf, "actual": actual[index]})
        else:
            joined.append(leaf)
    return joined


class RuleFiring(Aggregate):
    """One rule applied to one cause: the trace of its conditions and what its actions did."""

    class RuleFired(Aggregate.Created):
        """`trace` is what each condition compared (field, operator, expected value, result);
        the values the event held (`actual`: a message's text, a name) are in
        `personal["actual"]`, one per leaf (`split_trace`, `joined_trace`). Version 1 kept
        them in the trace: it reads as version 2."""

        class_version = 2
        rule_id: UUID
        rule_version: int
        cause: dict[str, Any]
        contact_id: UUID | None
        outcome: str
        reason: str
        trace: list[Any]
        effects: list[dict[str, Any]]
        depth: int
        actor: str
        correlation_id: str
        personal: dict[str, Any]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["trace"], state["personal"] = split_trace(state["trace"])

    @event(RuleFired)
    def __init__(
        self,
        id: UUID,
        rule_id: UUID,
        rule_version: int,
        cause: dict[str, Any],
        contact_id: UUID | None,
        outcome: str,
        reason: str,
        trace: list[Any],
        effects: list[dict[str, Any]],
        depth: int,
        actor: str,
        correlation_id: str,
        personal: dict[str, Any],
    ) -> None:
        self.rule_id = rule_id
        self.contact_id = contact_id
        self.outcome = outcome
        self.effects = effects


class TimerState(StrEnum):
    SCHEDULED = "scheduled"
    FIRED = "fired"
    CANCELLED = "cancelled"


# Facts that copy personal data out of the cause event (a message's text and subject, a
# task's title) or are personal themselves (a birthday's date): a timer never keeps them.
PERSONAL_FACTS = frozenset({"text", "subject", "title", "date"})


def cause_reference(cause: dict[str, Any]) -> dict[str, Any]:
    """A timer's cause as a reference to the event that set it off, not a copy of it.

    A cause read from the log names its event (`originator_id`, `version`,
    `notification_id`), and the trigger runner reads the facts again when the timer
    fires, so the log does not carry every message's text twice. A derived cause
    (an overdue task, a schedule, a birthday) has no event to read: its few facts stay,
    without personal ones.
    """
    kept = {key: value for key, value in cause.items() if key != "facts"}
    if not cause.get("originator_id"):
        facts = cause.get("facts") or {}
        kept["facts"] = {key: value for key, value in facts.items() if key not in PERSONAL_FACTS}
    return kept


class Timer(Aggregate):
    """A rule's pending delay: fires once at `due_at` unless its reason goes away first."""

    class TimerScheduled(Aggregate.Created):
        """Version 2 references its cause (`cause_reference`); version 1 copied the cause
        event's facts, message text and subject included, and loads as version 2."""

        class_version = 2
        rule_id: UUID
        cause: dict[str, Any]
        due_at: datetime
        contact_id: UUID | None
        conversation_id: UUID | None
        cancel_on: list[str]
        actor: str
        correlation_id: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["cause"] = cause_reference(state["cause"])

    @event(TimerScheduled)
    def __init__(
        self,
        id: UUID,
        rule_id: UUID,
        cause: dict[str, Any],
        due_at: datetime,
        contact_id: UUID | None,
        conversation_id: UUID | None,
        cancel_on: list[str],
        actor: str,
        correlation_id: str,
    ) -> None:
        self.rule_id = rule_id
        self.cause = cause
        self.due_at = due_at
        self.contact_id = contact_id
        self.conversation_id = conversation_id
        self.state = TimerState.SCHEDULED.value

    class TimerFired(Aggregate.Event):
        actor: str
        correlation_id: str

    @event(TimerFired)
    def fire(self, actor: str, correlation_id: str) -> None:
        self.state = TimerState.FIRED.value

    class TimerCancelled(Aggregate.Event):
        reason: str
        actor: str
        correlation_id: str

    @event(TimerCancelled)
    def cancel(self, reason: str, actor: str, correlation_id: str) -> None:
        self.state = TimerState.CANCELLED.value
