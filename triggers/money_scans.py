"""The money flow's date triggers: contracts expiring, invoices and supplier payments due or
overdue, supplier orders not confirmed.

Each is one cause per row and date, fired once per rule:

=============================  =====================================  ===================
name                           cause (fires again when it changes)    counts, by default
=============================  =====================================  ===================
``contract.expiring``          an active contract and its ``ends_on``  30 days before
``payment.due``                an unpaid invoice and its ``due_on``    1 day before
``payment.overdue``            the same                                1 day after
``supplier_payment.due``       an unpaid supplier order, its due day   1 day before
``supplier_payment.overdue``   the same                                1 day after
``supplier_order.unconfirmed`` a sent order and when it was sent       2 days after
=============================  =====================================  ===================

A prolonged contract (a new ``ends_on``) is a new cause, so it is reminded again; an
overdue invoice is reminded once (a rule that wants to nag again can create a task due
later — one firing per invoice keeps the log and the inbox quiet). Paid invoices, closed
contracts, confirmed or cancelled orders and paid orders are not read at all.

**When they fire: on a business calendar.** A rule counts ``days_before`` / ``days_after``
(its `when`) in calendar days, or with ``business_days: true`` in working days of its
``calendar`` (``default`` unless it names one; a name no calendar has is the default): a day
with opening hours that is not a holiday. On working days a date that falls on a closed day is taken as the next working
day, as the civil code has it for a term (ГК РФ ст. 193): an invoice due on Saturday is
due on Monday, so it is "due in 1 working day" on Friday and overdue on Tuesday. Either
way a reminder fires when the calendar opens on its day (09:00 of the calendar's zone by
default), never at midnight; on a closed day it waits for the next opening. A
"before" reminder that comes too late (the date itself has passed, e.g. a contract
registered after its end) is not sent; an "after" one is (an invoice already overdue when
the rule is made is reminded once). An unconfirmed order counts from the moment it was
sent: sent on Friday at 17:00, two working days later is Tuesday at 17:00.

Like `deal.stale`, the rows are read at most once a minute, only the rows whose time has
come are considered, and a cause already fired is skipped from memory (the rows still due
at the last scan) or, after a restart, because its firing id is already in the views (and,
if the views lag, the store refuses a second firing all the same).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, Protocol, TypeVar
from uuid import UUID

from threadline.domain.model.rule import firing_id
from threadline.projections.automation import firing
from threadline.projections.documents import (
    ContractRow,
    DocumentRow,
    contracts_ending_between,
    invoices_due_between,
)
from threadline.projections.sql import ViewReader
from threadline.projections.supplier_orders import (
    SupplierOrderRow,
    orders_sent_before,
    payables_due_between,
)
from threadline.triggers.business_hours import WEEKDAYS, BusinessCalendar
from threadline.triggers.evaluator import ActiveRule
from threadline.triggers.events import TriggerEvent
from threadline.triggers.trigger_names import MONEY_AFTER, MONEY_BEFORE, MONEY_DATES

MONEY_SCAN_EVERY = timedelta(minutes=1)
LOOK_BACK = timedelta(days=45)  # a date on closed days may still be "due" this long after
MAX_WALK = 800  # days a working-day count may walk (a calendar closed longer: calendar days)
EARLIEST = date(1, 1, 1)

Row = TypeVar("Row")


class RunsMoneyRules(Protocol):
    def run_rules(
        self, rules: list[ActiveRule], trigger: TriggerEvent, *, wait: bool = ...
    ) -> Any: ...

    def settle_in_flight(self) -> None: ...


@dataclass(frozen=True)
class Days:
    """How one rule counts days: calendar days, or working days of its business calendar."""

    calendar: BusinessCalendar
    business: bool

    @classmethod
    def of(cls, rule: ActiveRule, calendars: dict[str, BusinessCalendar]) -> Days:
        when = rule.spec.when
        calendar = calendars.get(when.calendar or "default") or calendars["default"]
        open_some_day = any(calendar.week[day] for day in WEEKDAYS)
        return cls(calendar, when.business_days and open_some_day)

    def today(self, now: datetime) -> date:
        return now.astimezone(self.calendar.zone).date()

    def working(self, day: date) -> bool:
        week = self.calendar.week[WEEKDAYS[day.weekday()]]
        return bool(week) and day not in self.calendar.holidays

    def effective(self, day: date) -> date:
        """The day a term ending on `day` really ends: the next working day if it is closed."""
        if not self.business:
            return day
        for _ in range(MAX_WALK):
            if self.working(day):
                return day
            day += timedelta(days=1)
        return day

    def shift(self, day: date, days: int) -> date:
        """`days` (working) days after `day`, or before it when negative."""
        if not self.business:
            return day + timedelta(days=days)
        step, left = timedelta(days=1 if days > 0 else -1), abs(days)
        for _ in range(MAX_WALK):
            if left == 0:
                break
            day += step
            if self.working(day):
                left -= 1
        return day

    def opening(self, day: date, at: time = time()) -> datetime:
        """When the calendar opens on `day` at or after `at` (the next opening if it is shut)."""
        return _opening(self.calendar, day, at)


@lru_cache(maxsize=4096)
def _opening(calendar: BusinessCalendar, day: date, at: time) -> datetime:
    """Cached: a scan asks it for every row, and most rows share a few days."""
    local = datetime.combine(day, at, tzinfo=calendar.zone)
    try:
        return calendar.next_open(local).astimezone(UTC)
    except ValueError:  # never open: the day's start will do
        return local.astimezone(UTC)


def _before(days: Days, count: int, on: str | None, now: datetime) -> tuple[datetime, date] | None:
    """When a "before" reminder of a date fires, if it is due by `now` and not too late."""
    if not on:
        return None
    last_day = days.effective(date.fromisoformat(on))
    fires = days.opening(days.shift(last_day, -count))
    if fires > now or days.today(now) > last_day:
        return None
    return fires, last_day


def _after(days: Days, count: int, on: str | None, now: datetime) -> tuple[datetime, date] | None:
    """When an "after" reminder of a date fires, if it is due by `now`."""
    if not on:
        return None
    last_day = days.effective(date.fromisoformat(on))
    fires = days.opening(days.shift(last_day, count))
    return (fires, last_day) if fires <= now else None


# Money is a fact twice: ``{amount, currency}`` (``amount``, ``outstanding``...), which
# conditions order by amount (``event.outstanding gt 10000``), and its decimal text
# (``amount_text``...), which templates print: ``{{ event.outstanding_text }} {{ event.currency }}``.


class MoneyScans:
    """Runs the money flow's date rules (`scan`), once per rule and cause."""

    def __init__(self, views: ViewReader, runner: RunsMoneyRules) -> None:
        self.views = views
        self.runner = runner
        self._seen: dict[UUID, set[str]] = {}  # per rule: the causes due at its last scan
        self._last_scan: datetime | None = None

    def due(self, now: datetime) -> bool:
        last = self._last_scan
        if last is not None and abs(now - last) < MONEY_SCAN_EVERY:
            return False
        self._last_scan = now
        return True

    def scan(
        self, rules: list[ActiveRule], calendars: dict[str, BusinessCalendar], now: datetime
    ) -> None:
        seen: dict[UUID, set[str]] = {}
        for rule in rules:
            name = rule.spec.when.event
            if name not in MONEY_DATES or rule.spec.at is not None:
                continue
            days = Days.of(rule, calendars)
            still: set[str] = set()
            for trigger in self._found(rule, name, days, now):
                still.add(trigger.cause_key)
                if trigger.cause_key in self._seen.get(rule.id, ()):
                    continue
                if firing(self.views, str(firing_id(rule.id, trigger.cause_key))):
                    continue  # fired before a restart
                self.runner.run_rules([rule], trigger, wait=False)
            self.runner.settle_in_flight()
            seen[rule.id] = still
        # Only the causes still due are remembered: a paid invoice is forgotten.
        self._seen = seen

    def _found(self, rule: ActiveRule, name: str, days: Days, now: datetime) -> list[TriggerEvent]:
        when = rule.spec.when
        today = days.today(now)
        if name in MONEY_BEFORE:
            count = MONEY_BEFORE[name] if when.days_before is None else when.days_before
            # Far enough ahead for `count` working days (their effective date is not later).
            last = days.shift(today, count + 1) if days.business else today + timedelta(count)
            first = today - LOOK_BACK
            if name == "contract.expiring":
                return _triggers(
                    contracts_ending_between(self.views, first, last),
                    lambda c: _before(days, count, c.ends_on, now),
                    lambda c, fires, day: _contract(c, fires, day, today, days),
                )
            if name == "payment.due":
                return _triggers(
                    invoices_due_between(self.views, first, last),
                    lambda d: _before(days, count, d.due_on, now),
                    lambda d, fires, day: _invoice(name, d, fires, day, today, days),
                )
            return _triggers(
                payables_due_between(self.views, first, last),
                lambda o: _before(days, count, o.payment_due_on, now),
                lambda o, fires, day: _order(name, o, fires, day, today, days),
            )
        count = MONEY_AFTER[name] if when.days_after is None else when.days_after
        if name == "supplier_order.unconfirmed":
            found = []
            for order in orders_sent_before(self.views, _ts(now)):
                fires = _sent_plus(days, order, count)
                if fires is not None and fires <= now:
                    found.append(_unconfirmed(order, fires, today, days))
            return found
        if name == "payment.overdue":
            return _triggers(
                invoices_due_between(self.views, EARLIEST, today),
                lambda d: _after(days, count, d.due_on, now),
                lambda d, fires, day: _invoice(name, d, fires, day, today, days),
            )
        return _triggers(
            payables_due_between(self.views, EARLIEST, today),
            lambda o: _after(days, count, o.payment_due_on, now),
            lambda o, fires, day: _order(name, o, fires, day, today, days),
        )


def _triggers(
    rows: Iterable[Row],
    when: Callable[[Row], tuple[datetime, date] | None],
    make: Callable[[Row, datetime, date], TriggerEvent],
) -> list[TriggerEvent]:
    found = []
    for row in rows:
        timing = when(row)
        if timing is not None:
            found.append(make(row, *timing))
    return found


def _sent_plus(days: Days, order: SupplierOrderRow, count: int) -> datetime | None:
    """The moment `count` (working) days after the order was sent, in opening hours."""
    if not order.sent_at:
        return None
    sent = datetime.fromisoformat(order.sent_at).astimezone(days.calendar.zone)
    return days.opening(days.shift(sent.date(), count), sent.time().replace(tzinfo=None))


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def _uuid(value: str | None) -> UUID | None:
    return UUID(value) if value else None


def _common(
    name: str, fires: datetime, day: date, days: Days, links: dict[str, str | None]
) -> dict[str, Any]:
    return {
        "type": name,
        "date": day.isoformat(),  # the date counted from (the next working day if closed)
        "fires_at": fires.isoformat(),
        "business_days": days.business,
        **links,
    }


def _event(
    name: str, key: str, fires: datetime, facts: dict[str, Any], links: dict[str, str | None]
) -> TriggerEvent:
    return TriggerEvent(
        names=(name,),
        cause_key=f"{name}:{key}",
        occurred_at=fires,
        facts=facts,
        contact_id=_uuid(links.get("contact_id")),
        deal_id=_uuid(links.get("deal_id")),
        extra={"originator_id": key.split(":")[0]},
    )


def _contract(c: ContractRow, fires: datetime, day: date, today: date, days: Days) -> TriggerEvent:
    name = "contract.expiring"
    links = {"company_id": c.company_id, "contact_id": c.contact_id, "deal_id": c.deal_id}
    facts = {
        **_common(name, fires, day, days, links),
        "contract_id": c.id,
        "number": c.number,
        "title": c.title,
        "signed_on": c.signed_on,
        "ends_on": c.ends_on,
        "days_left": (date.fromisoformat(str(c.ends_on)) - today).days,
        "amount": c.amount.state() if c.amount is not None else None,
        "amount_text": str(c.amount.amount) if c.amount is not None else "",
    }
    return _event(name, f"{c.id}:{c.ends_on}", fires, facts, links)


def _invoice(
    name: str, d: DocumentRow, fires: datetime, day: date, today: date, days: Days
) -> TriggerEvent:
    links = {"company_id": d.company_id, "contact_id": d.contact_id, "deal_id": d.deal_id}
    facts = {
        **_common(name, fires, day, days, links),
        "document_id": d.id,
        "kind": d.kind,
        "number": d.display_number,
        "title": d.title,
        "issued_on": d.issued_on,
        "due_on": d.due_on,
        "amount": d.total.state(),
        "amount_text": str(d.total.amount),
        "paid": d.paid.state(),
        "outstanding": d.outstanding.state(),
        "outstanding_text": str(d.outstanding.amount),
        "currency": d.currency,
        "days_left": (date.fromisoformat(str(d.due_on)) - today).days,
        "days_overdue": d.days_overdue(today),
    }
    return _event(name, f"{d.id}:{d.due_on}", fires, facts, links)


def _order_facts(
    name: str, o: SupplierOrderRow, fires: datetime, day: date, today: date, days: Days
) -> tuple[dict[str, Any], dict[str, str | None]]:
    # The supplier is the order's company: `company.name` is the supplier's name.
    links = {"company_id": o.supplier_id, "contact_id": None, "deal_id": o.deal_id}
    due = o.payment_due_on
    facts = {
        **_common(name, fires, day, days, links),
        "supplier_order_id": o.id,
        "supplier_id": o.supplier_id,
        "number": o.display_number,
        "state": o.state,
        "payment_due_on": due,
        "amount": o.amount.state(),
        "amount_text": str(o.amount.amount),
        "payable": o.payable.state(),
        "payable_text": str(o.payable.amount),
        "currency": o.currency,
        "days_left": (date.fromisoformat(due) - today).days if due else None,
        "days_overdue": o.days_overdue(today),
    }
    return facts, links


def _order(
    name: str, o: SupplierOrderRow, fires: datetime, day: date, today: date, days: Days
) -> TriggerEvent:
    facts, links = _order_facts(name, o, fires, day, today, days)
    return _event(name, f"{o.id}:{o.payment_due_on}", fires, facts, links)


def _unconfirmed(o: SupplierOrderRow, fires: datetime, today: date, days: Days) -> TriggerEvent:
    name = "supplier_order.unconfirmed"
    sent_on = datetime.fromisoformat(str(o.sent_at)).astimezone(days.calendar.zone).date()
    facts, links = _order_facts(name, o, fires, sent_on, today, days)
    facts.update(sent_at=o.sent_at, expected_on=o.expected_on, days_waiting=(today - sent_on).days)
    return _event(name, f"{o.id}:{o.sent_at}", fires, facts, links)
