"""A rule definition as typed values, parsed once from the JSON the log stores.

`rules.validate_rule` checks a definition and returns its normalised JSON (the shape
the log, the API and the rules file keep); `RuleDefinition.parse` turns that JSON into
these frozen values, which the evaluator and the runner use instead of nested dicts.
Parsing trusts what was validated at save time, but stays lenient: an action it
cannot read becomes an action that is skipped with the reason when the rule fires.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from threadline.triggers.actions.base import RuleAction, SkippedAction
from threadline.triggers.actions.registry import action_class


@dataclass(frozen=True)
class When:
    """The event a rule answers to, and its filters."""

    event: str
    channel: str | None = None
    attribute: str | None = None  # birthday: which date attribute (default `birthday`)
    within: str | None = None  # task.due_soon: how far ahead (default 1h)
    # The money flow's dates (`money_scans`): how many days before or after the date (None:
    # the name's default), counted in business days of `calendar` when `business_days`.
    days_before: int | None = None
    days_after: int | None = None
    business_days: bool = False
    calendar: str | None = None  # the calendar whose opening hours it fires at (default)

    def matches(self, names: tuple[str, ...], channel: str | None) -> bool:
        if self.event not in names:
            return False
        return not self.channel or self.channel == channel

    @classmethod
    def parse(cls, when: Mapping[str, Any]) -> When:
        return cls(
            event=str(when["event"]),
            channel=when.get("channel") or None,
            attribute=when.get("attribute") or None,
            within=when.get("within") or None,
            days_before=_days(when.get("days_before")),
            days_after=_days(when.get("days_after")),
            business_days=bool(when.get("business_days")),
            calendar=when.get("calendar") or None,
        )


def _days(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True)
class After:
    """A delay: the rule fires later, unless an event in `cancel_on` happens first."""

    delay: str
    cancel_on: tuple[str, ...] = ()
    business_hours: str | None = None  # the calendar whose opening hours the delay ends in

    @classmethod
    def parse(cls, after: Mapping[str, Any]) -> After:
        return cls(
            delay=str(after["delay"]),
            cancel_on=tuple(str(name) for name in after.get("cancel_on", [])),
            business_hours=after.get("business_hours") or None,
        )


@dataclass(frozen=True)
class At:
    """A schedule: a cron expression in a time zone."""

    cron: str
    timezone: str = "UTC"

    @classmethod
    def parse(cls, at: Mapping[str, Any]) -> At:
        return cls(cron=str(at["cron"]), timezone=str(at.get("timezone", "UTC")))


@dataclass(frozen=True)
class RuleDefinition:
    name: str
    priority: int
    when: When
    actions: tuple[RuleAction, ...]
    condition: Any = None  # the `if` tree (checked and evaluated by `conditions`)
    after: After | None = None
    at: At | None = None
    # The JSON it was parsed from, as stored (read-only).
    document: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def stops(self) -> bool:
        """A `stop` action: when this rule fires, the rules after it skip the event."""
        return any(action.stops for action in self.actions)

    @property
    def uses_business_hours(self) -> bool:
        """Whether the rule reads business calendars (finding an inbox's costs two reads)."""
        return "business_hours" in json.dumps(dict(self.document), default=str)

    @classmethod
    def parse(cls, definition: Mapping[str, Any]) -> RuleDefinition:
        after = definition.get("after")
        at = definition.get("at")
        return cls(
            name=str(definition.get("name", "")),
            priority=int(definition.get("priority", 100)),
            when=When.parse(definition["when"]),
            actions=tuple(parse_action(item) for item in definition.get("then", [])),
            condition=definition.get("if"),
            after=After.parse(after) if after else None,
            at=At.parse(at) if at else None,
            document=MappingProxyType(dict(definition)),
        )


def parse_action(item: Mapping[str, Any]) -> RuleAction:
    """One saved `then` item (``{kind: spec}``) as its action."""
    ((kind, spec),) = item.items()
    found = action_class(kind)
    if found is None:
        return SkippedAction(name=kind, reason=f"unknown action {kind}")
    try:
        return found.parse(spec)
    except (KeyError, ValueError, TypeError) as error:
        return SkippedAction(name=kind, reason=f"{type(error).__name__}: {error}")
