"""The rules and business calendars the runner works with, indexed by the event they wait for.

Rules are loaded from the log (the aggregate, at its current version) and kept only
while enabled and readable; the index by `when.event`, the names that cancel timers and
the rules that read business calendars are rebuilt together (`index`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Protocol
from uuid import UUID

from threadline.domain.model.conversation import Conversation
from threadline.domain.model.inbox import Inbox
from threadline.domain.model.rule import Rule
from threadline.projections.automation import calendars as calendar_rows
from threadline.projections.automation import rule_ids
from threadline.projections.sql import ViewReader
from threadline.triggers.business_hours import DEFAULT_CALENDAR, BusinessCalendar
from threadline.triggers.conditions import ConditionError, validate_condition
from threadline.triggers.evaluator import ActiveRule
from threadline.triggers.events import TriggerEvent

log = logging.getLogger("threadline.triggers")


class AggregateReader(Protocol):
    def get(self, aggregate_id: UUID, *, version: int | None = None) -> Any: ...


class RuleBook:
    def __init__(self, aggregates: AggregateReader, views: ViewReader) -> None:
        self.aggregates = aggregates
        self.views = views
        self.rules: dict[UUID, ActiveRule] = {}
        self.by_event: dict[str, list[ActiveRule]] = {}
        self.cancelling: set[str] = set()  # event names that cancel some rule's timers
        self.using_calendars: set[UUID] = set()
        self.calendars: dict[str, BusinessCalendar] = {"default": DEFAULT_CALENDAR}
        self.stale = False  # a rule changed since the index was built

    # -- calendars ----------------------------------------------------------------------------

    def load_calendars(self) -> None:
        calendars: dict[str, BusinessCalendar] = {"default": DEFAULT_CALENDAR}
        for row in calendar_rows(self.views):
            try:
                calendars[row.name] = BusinessCalendar.from_dict(row.definition)
            except ValueError:
                log.warning("calendar %s cannot be read; ignored", row.name)
        self.calendars = calendars

    def reload_calendar(self, calendar_id: UUID) -> None:
        calendar = self.aggregates.get(calendar_id)
        self.calendars[calendar.name] = BusinessCalendar.from_dict(calendar.definition)

    def calendars_for(self, trigger: TriggerEvent) -> dict[str, BusinessCalendar]:
        """The named calendars, plus `inbox`: the calendar of the conversation's inbox."""
        calendars = dict(self.calendars)
        calendars["inbox"] = calendars["default"]
        if trigger.conversation_id is None:
            return calendars
        try:
            conversation: Conversation = self.aggregates.get(trigger.conversation_id)
        except Exception:
            return calendars
        if conversation.inbox_id is not None:
            try:
                inbox: Inbox = self.aggregates.get(conversation.inbox_id)
            except Exception:
                return calendars
            calendars["inbox"] = calendars.get(inbox.slug, calendars["default"])
        return calendars

    # -- rules --------------------------------------------------------------------------------

    def load(self) -> None:
        """Every rule the views list, from the log."""
        self.load_calendars()
        self.load_ids(UUID(rule_id) for rule_id in rule_ids(self.views))

    def load_ids(self, ids: Iterable[UUID]) -> None:
        self.rules = {}
        for rule_id in ids:
            self.reload(rule_id)
        self.index()

    def reload(self, rule_id: UUID) -> None:
        """The rule as the log has it now (dropped if disabled, gone or unreadable)."""
        try:
            rule: Rule = self.aggregates.get(rule_id)
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
            active = ActiveRule(rule_id, rule.version, rule.definition)
        except (ConditionError, KeyError, ValueError, TypeError) as error:
            log.warning("rule %s (%s) is not loaded: %s", rule.name, rule_id, error)
            self.rules.pop(rule_id, None)
            return
        self.rules[rule_id] = active

    def index(self) -> None:
        index: dict[str, list[ActiveRule]] = defaultdict(list)
        for rule in sorted(self.rules.values(), key=lambda r: (r.priority, r.name, str(r.id))):
            index[rule.spec.when.event].append(rule)
        self.by_event = dict(index)
        self.stale = False
        self.cancelling = {
            name
            for rule in self.rules.values()
            if rule.spec.after is not None
            for name in rule.spec.after.cancel_on
        }
        # Which rules need business calendars (finding an inbox's costs two reads per event).
        self.using_calendars = {
            rule.id for rule in self.rules.values() if rule.spec.uses_business_hours
        }

    def candidates(self, trigger: TriggerEvent) -> list[ActiveRule]:
        found: list[ActiveRule] = []
        for name in trigger.names:
            found.extend(self.by_event.get(name, ()))
        return found
