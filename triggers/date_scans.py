"""The date-driven triggers: schedules (`at`), birthdays, tasks overdue or due soon, deals
that stayed in a stage too long (`deal.stale`), and the money flow's dates (contracts
expiring, payments due or overdue, supplier orders unconfirmed: `money_scans`).

No single event sets these off; the runner's loop calls `DateScans.scan` every few
seconds and each rule runs for what crossed its edge since the last scan. Where each
scan got to lives in the state store, so a restart neither repeats nor skips.

A stale deal has no single edge to sweep (each stage has its own limit), so the open
deals are read page by page (`stale_deals`) at most once a minute — staleness is counted
in days. Each stay in a stage is one cause, ``deal.stale:<deal id>:<entered at>``, and the
firing id derives from it: a restart re-reads the stays but the store refuses a second
firing (the scan first looks the firing up, so it does not even prepare one), while a
later stay in the same stage is a new cause and fires again.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from uuid import UUID

from threadline.domain.model.rule import firing_id
from threadline.projections.automation import firing
from threadline.projections.base import ts
from threadline.projections.contact_card import contacts_with_attribute_ending
from threadline.projections.deals import StaleDeal, stale_deals
from threadline.projections.sql import ViewReader
from threadline.projections.tasks import DueTask, open_dated_task, open_tasks_due_after
from threadline.triggers.definition import At
from threadline.triggers.evaluator import ActiveRule, due_in
from threadline.triggers.events import TriggerEvent
from threadline.triggers.money_scans import MoneyScans
from threadline.triggers.rule_book import RuleBook
from threadline.triggers.rules import next_run
from threadline.triggers.state_store import StateStore
from threadline.triggers.timers import RunsRules
from threadline.triggers.trigger_names import MONEY_DATES

SCAN_PAGE = 500  # tasks reminded per rule and scan; a full page scans again at once
SCAN_KEY = "triggers:scan:"  # + rule id: the (due time, task id) a task-date rule swept to
TASK_DATES = ("task.overdue", "task.due_soon")
TASK_MOVES = frozenset({"task.created", "task.rescheduled"})  # events that set a due time
BIRTHDAY_AT = At(cron="0 9 * * *", timezone="UTC")  # a birthday rule without `at`
STALE = "deal.stale"
STALE_SCAN_EVERY = timedelta(minutes=1)  # how often open deals are checked against their limit


class ScanRunner(RunsRules, Protocol):
    def position(self) -> int: ...

    def wait_for_views(self, position: int) -> bool: ...

    def settle_in_flight(self) -> None: ...


class DateScans:
    def __init__(
        self, book: RuleBook, views: ViewReader, state: StateStore, runner: ScanRunner
    ) -> None:
        self.book = book
        self.views = views
        self.state = state
        self.runner = runner
        self._marks: dict[UUID, tuple[str, str] | None] = {}
        # deal.stale: per rule, the stays already handled (still stale at the last scan).
        self._stale_seen: dict[UUID, set[str]] = {}
        self._last_stale_scan: datetime | None = None
        # contracts expiring, invoices and supplier payments due or overdue, orders unconfirmed
        self.money = MoneyScans(views, runner)

    def scan(self, now: datetime | None = None) -> bool:
        """Run the date-driven triggers due by `now`; True if a task scan has more pages."""
        now = now or datetime.now(UTC)
        more = False
        rules = list(self.book.rules.values())
        # The task scans read the views: they must show every task event the runner has
        # passed, or a task changed just before its mark moves would be missed
        # (`behind_the_mark` covers only the events read after the scan).
        dated = [r for r in rules if r.spec.when.event in (*TASK_DATES, STALE, *MONEY_DATES)]
        views_ready = not dated or self.runner.wait_for_views(self.runner.position())
        for rule in rules:
            event = rule.spec.when.event
            if event == "birthday" or rule.spec.at is not None:
                self._scheduled(rule, now)
            elif event in TASK_DATES and views_ready:
                more = self._task_dates(rule, event, now) or more
        stale = [r for r in rules if r.spec.when.event == STALE and r.spec.at is None]
        if stale and views_ready and self._stale_scan_due(now):
            self._stale_deals(stale, now)
        money = [r for r in rules if r.spec.when.event in MONEY_DATES and r.spec.at is None]
        if money and views_ready and self.money.due(now):
            self.money.scan(money, self.book.calendars, now)
        return more

    # -- schedules and birthdays --------------------------------------------------------------

    def _scheduled(self, rule: ActiveRule, now: datetime) -> None:
        """Run a scheduled rule once per occurrence; one missed while down runs at start."""
        key = f"schedule:{rule.id}"
        at = rule.spec.at or BIRTHDAY_AT
        birthday = rule.spec.when.event == "birthday"
        last = self.state.get(key)
        if last is None:
            self.state.set(key, now.isoformat())
            # A new rule runs at its next occurrence, except a birthday rule, which greets
            # today's birthdays at once if its time of day has already passed.
            if not birthday:
                return
            last_time = now - timedelta(days=1)
        else:
            last_time = datetime.fromisoformat(last)
        occurrence = next_run(at, last_time)
        if occurrence > now:
            return
        self.state.set(key, now.isoformat())
        if birthday:
            self._birthdays(rule, occurrence, occurrence.date())
        else:
            trigger = TriggerEvent(
                names=("schedule",),
                cause_key=f"schedule:{occurrence.isoformat()}",
                occurred_at=occurrence,
                facts={"type": "schedule", "occurrence": occurrence.isoformat()},
            )
            self.runner.run_rules([rule], trigger)

    def _birthdays(self, rule: ActiveRule, occurrence: datetime, day: date) -> None:
        attribute = rule.spec.when.attribute or "birthday"
        suffix = f"-{day.month:02d}-{day.day:02d}"
        candidates = [suffix]
        if day.month == 2 and day.day == 28 and not _leap(day.year):
            candidates.append("-02-29")
        for ending in candidates:
            for contact_id in contacts_with_attribute_ending(self.views, attribute, ending):
                trigger = TriggerEvent(
                    names=("birthday",),
                    # once a year per contact; the key (a firing's id, a timer's cause) does
                    # not say the birthday itself, which is personal
                    cause_key=f"birthday:{contact_id}:{day.year}",
                    occurred_at=occurrence,
                    facts={"type": "birthday", "date": day.isoformat()},
                    contact_id=UUID(contact_id),
                )
                self.runner.run_rules([rule], trigger)

    # -- tasks --------------------------------------------------------------------------------

    def _task_dates(self, rule: ActiveRule, event: str, now: datetime) -> bool:
        """Remind each open task once per due time: one page in due order from the mark.

        `task.overdue` sweeps the tasks whose due time has passed; `task.due_soon` those
        whose due time the window's leading edge (now + `within`) has reached, so a task
        is reminded as it enters the window, not just before it is due. The mark is the
        last task reminded, as (due time, id), kept in the state store: a scan reads only
        what crossed the edge since the last one, never the same task twice, and a task
        rescheduled past the mark is reminded again at its new time. A task that lands
        behind the mark (created already overdue, or due inside the window already swept)
        is reminded as its event is read (`behind_the_mark`). True if the page was full.
        """
        after_due, after_id = self._mark(rule) or ("", "")
        if event == "task.overdue":
            edge = ts(now)
        else:
            edge = ts(due_in(_within(rule), now))
            if after_due < ts(now):  # due before now is overdue, no longer "due soon"
                after_due, after_id = ts(now), ""
        tasks = open_tasks_due_after(self.views, edge, after_due, after_id, SCAN_PAGE)
        for task in tasks:
            self.runner.run_rules([rule], _task_trigger(event, task, now), wait=False)
        # The page's firings commit together; the mark moves only once they have.
        self.runner.settle_in_flight()
        if tasks:
            self._set_mark(rule, (str(tasks[-1].due_at), str(tasks[-1].id)))
        return len(tasks) == SCAN_PAGE

    def behind_the_mark(self, trigger: TriggerEvent) -> None:
        """A task created or rescheduled to a time a scan has already swept is reminded now.

        Scans move forward only; without this, a task created already overdue, or due in
        ten minutes when the due-soon window has swept an hour ahead, would never be.
        """
        if not TASK_MOVES.intersection(trigger.names):
            return
        rules = [
            rule
            for name in TASK_DATES
            for rule in self.book.by_event.get(name, ())
            if self._mark(rule) is not None  # else the scan has not started: it will
        ]
        if not rules:
            return
        if not self.runner.wait_for_views(trigger.notification_id):
            raise RuntimeError("the views have not reached a task's new due time")  # retried
        task = open_dated_task(self.views, str(trigger.facts.get("task_id", "")))
        if task is None:
            return
        now = datetime.now(UTC)
        due = str(task.due_at)
        for rule in rules:
            mark = self._mark(rule)
            if mark is None or due > mark[0]:
                continue  # the scan will reach it
            event = rule.spec.when.event
            if (event == "task.overdue") != (due < ts(now)):
                continue  # not yet overdue, or already past due (no longer "due soon")
            self.runner.run_rules([rule], _task_trigger(event, task, now), wait=False)

    def _mark(self, rule: ActiveRule) -> tuple[str, str] | None:
        if rule.id not in self._marks:
            stored = self.state.get(f"{SCAN_KEY}{rule.id}")
            due, task = json.loads(stored) if stored else (None, None)
            self._marks[rule.id] = (str(due), str(task)) if due is not None else None
        return self._marks[rule.id]

    def _set_mark(self, rule: ActiveRule, mark: tuple[str, str]) -> None:
        self.state.set(f"{SCAN_KEY}{rule.id}", json.dumps(list(mark)))
        self._marks[rule.id] = mark

    # -- deals ---------------------------------------------------------------------------------

    def _stale_scan_due(self, now: datetime) -> bool:
        last = self._last_stale_scan
        if last is not None and abs(now - last) < STALE_SCAN_EVERY:
            return False
        self._last_stale_scan = now
        return True

    def _stale_deals(self, rules: list[ActiveRule], now: datetime) -> None:
        """Run each `deal.stale` rule once per stay of an open deal past its stage's limit."""
        still: dict[UUID, set[str]] = {rule.id: set() for rule in rules}
        after: str | None = ""
        while after is not None:
            page, after = stale_deals(self.views, now, after, SCAN_PAGE)
            for deal in page:
                trigger = _stale_trigger(deal, now)
                due = []
                for rule in rules:
                    still[rule.id].add(trigger.cause_key)
                    if trigger.cause_key in self._stale_seen.get(rule.id, ()):
                        continue
                    if firing(self.views, str(firing_id(rule.id, trigger.cause_key))):
                        continue  # fired before a restart
                    due.append(rule)
                if due:
                    self.runner.run_rules(due, trigger, wait=False)
            self.runner.settle_in_flight()
        # Only the stays still stale are remembered: a deal that moved on is forgotten.
        self._stale_seen = still


def _stale_trigger(deal: StaleDeal, now: datetime) -> TriggerEvent:
    """One stay of a deal past its stage's limit (a later stay in the stage: a new cause)."""
    return TriggerEvent(
        names=(STALE,),
        cause_key=f"{STALE}:{deal.id}:{deal.stage_entered_at}",
        occurred_at=now,
        facts={
            "type": STALE,
            "deal_id": deal.id,
            "stage_id": deal.stage_id,
            "stage_entered_at": deal.stage_entered_at,
            "stale_days": deal.stale_days,
            "manager_id": deal.manager_id,
        },
        contact_id=UUID(str(deal.contact_id)) if deal.contact_id else None,
        deal_id=UUID(deal.id),
    )


def _task_trigger(event: str, task: DueTask, now: datetime) -> TriggerEvent:
    """One reminder's cause: the task at one due time (a new due time, a new cause)."""
    return TriggerEvent(
        names=(event,),
        cause_key=f"{event}:{task.id}:{task.due_at}",
        occurred_at=now,
        facts={
            "type": event,
            "task_id": task.id,
            "due_at": task.due_at,
            "assignee_id": task.assignee_id,
        },
        contact_id=UUID(str(task.contact_id)) if task.contact_id else None,
        conversation_id=UUID(str(task.conversation_id)) if task.conversation_id else None,
    )


def _within(rule: ActiveRule) -> str:
    return rule.spec.when.within or "1h"


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
