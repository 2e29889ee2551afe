"""The evaluator: which rules an event sets off, and how. No I/O of its own.

Given the active rules, one trigger event and the facts about it (the event,
the contact, company, deal and conversation as the views show them), it
returns one `Decision` per rule that applies: fire now, schedule (an `after`
delay), or skip with the reason (loop protection, chain depth). Everything it
needs arrives as arguments, so the in-process runner and a Kafka runner can
share it, and tests can drive it with plain dictionaries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from threadline.triggers.business_hours import BusinessCalendar
from threadline.triggers.conditions import ConditionError, evaluate, parse_duration
from threadline.triggers.events import TriggerEvent
from threadline.triggers.rules import when_matches

DEFAULT_MAX_DEPTH = 3


@dataclass(frozen=True)
class ActiveRule:
    id: UUID
    version: int
    definition: dict[str, Any]

    @property
    def priority(self) -> int:
        return int(self.definition.get("priority", 100))

    @property
    def name(self) -> str:
        return str(self.definition.get("name", ""))


@dataclass(frozen=True)
class Decision:
    rule: ActiveRule
    outcome: str  # "fire", "schedule" or "skip"
    reason: str = ""
    trace: list[Any] = field(default_factory=list)
    due_at: datetime | None = None


def decide(
    rules: Sequence[ActiveRule],
    event: TriggerEvent,
    facts: Mapping[str, Any],
    *,
    depth: int = 0,
    max_depth: int = DEFAULT_MAX_DEPTH,
    from_timer: bool = False,
    segment: Callable[[dict[str, Any]], bool] | None = None,
    calendars: Mapping[str, BusinessCalendar] | None = None,
    conditions_validated: bool = False,
) -> list[Decision]:
    """The decisions for one event, in rule priority order; a `stop` action ends the list."""
    channel = facts.get("event", {}).get("channel")
    decisions: list[Decision] = []
    for rule in sorted(rules, key=lambda r: (r.priority, r.name, str(r.id))):
        if not when_matches(rule.definition, event.names, channel):
            continue
        if event.actor == f"rule:{rule.id}":
            continue  # a rule's own output never sets the same rule off again
        if event.automatic and not event.actor.startswith("rule:"):
            continue  # auto-replies and bounces: answering them starts mail loops
        if depth >= max_depth:
            decisions.append(Decision(rule, "skip", f"rule chain deeper than {max_depth}: stopped"))
            continue
        condition = rule.definition.get("if")
        trace: list[Any] = []
        if condition is not None:
            try:
                result = evaluate(
                    condition,
                    facts,
                    segment=segment,
                    calendars=calendars,
                    validated=conditions_validated,
                )
            except ConditionError as error:  # e.g. a calendar deleted after the rule was saved
                decisions.append(
                    Decision(rule, "skip", f"the conditions cannot be checked: {error}")
                )
                continue
            trace = list(result.explain())
            if not result.matched:
                continue
        after = rule.definition.get("after")
        if after and not from_timer:
            due = event.occurred_at + parse_duration(str(after["delay"]))
            calendar_name = after.get("business_hours")
            if calendar_name and calendars and calendar_name in calendars:
                due = calendars[calendar_name].next_open(due)
            decisions.append(Decision(rule, "schedule", "", trace, due))
        else:
            decisions.append(Decision(rule, "fire", "", trace))
        if any("stop" in action for action in rule.definition.get("then", [])):
            break
    return decisions


def due_in(spec: str, now: datetime) -> datetime:
    delta: timedelta = parse_duration(spec)
    return now + delta
