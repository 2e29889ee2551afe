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
from threadline.triggers.definition import RuleDefinition
from threadline.triggers.events import TriggerEvent

DEFAULT_MAX_DEPTH = 3


@dataclass(frozen=True)
class ActiveRule:
    """A loaded rule: its stored definition and, parsed from it once, its typed `spec`."""

    id: UUID
    version: int
    definition: Mapping[str, Any]
    spec: RuleDefinition = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "spec", RuleDefinition.parse(self.definition))

    @property
    def priority(self) -> int:
        return self.spec.priority

    @property
    def name(self) -> str:
        return self.spec.name


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
        spec = rule.spec
        if not spec.when.matches(event.names, channel):
            continue
        if event.actor == f"rule:{rule.id}":
            continue  # a rule's own output never sets the same rule off again
        if event.automatic and not event.actor.startswith("rule:"):
            continue  # auto-replies and bounces: answering them starts mail loops
        if depth >= max_depth:
            decisions.append(Decision(rule, "skip", f"rule chain deeper than {max_depth}: stopped"))
            continue
        condition = spec.condition
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
        after = spec.after
        if after and not from_timer:
            due = event.occurred_at + parse_duration(after.delay)
            calendar_name = after.business_hours
            if calendar_name and calendars and calendar_name in calendars:
                due = calendars[calendar_name].next_open(due)
            decisions.append(Decision(rule, "schedule", "", trace, due))
        else:
            decisions.append(Decision(rule, "fire", "", trace))
        if spec.stops:
            break
    return decisions


def due_in(spec: str, now: datetime) -> datetime:
    delta: timedelta = parse_duration(spec)
    return now + delta
