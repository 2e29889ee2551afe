"""Business calendars: when an inbox is staffed, in its own time zone.

Rules use them twice: a `business_hours` condition ("only auto-reply outside
office hours") and an `after` delay that lands in office hours ("call back in
2 hours, but not at night"). A calendar is JSON-able data, validated when it
is saved::

    {"tz": "Europe/Berlin",
     "week": {"mon": [["09:00", "13:00"], ["14:00", "18:00"]], ..., "sat": []},
     "holidays": ["2025-12-25", "2025-12-26"]}

Hours are wall-clock times in the calendar's zone, so "09:00" stays 09:00
across daylight-saving changes. On the day a change happens, the calendar
follows the wall clock: if 02:30 does not exist (clocks jump from 02:00 to
03:00), a range starting at 02:30 opens at the jump; if 01:30 happens twice
(clocks fall back), it is open during both passes. ``"24:00"`` may end a
range, so a day can be open to midnight.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_SEARCH_DAYS = 370  # a calendar closed for longer than a year is "never open"
MAX_RANGES_PER_DAY = 12
MAX_HOLIDAYS = 1_000
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_SECOND = timedelta(seconds=1)

Range = tuple[int, int]  # minutes after local midnight, [start, end)


class CalendarError(ValueError):
    """A calendar that cannot be saved; `path` names the part (``week.mon[1]``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


def _minutes(value: Any, path: str, *, end: bool) -> int:
    if isinstance(value, time):
        return value.hour * 60 + value.minute
    if end and value == "24:00":
        return 24 * 60
    match = _CLOCK.match(value) if isinstance(value, str) else None
    if match is None:
        raise CalendarError(path, f"a time of day such as 09:00, not {value!r}")
    return int(match.group(1)) * 60 + int(match.group(2))


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _day_ranges(value: Any, path: str) -> tuple[Range, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or len(value) > MAX_RANGES_PER_DAY:
        raise CalendarError(path, f"a list of at most {MAX_RANGES_PER_DAY} [start, end] pairs")
    ranges: list[Range] = []
    for i, pair in enumerate(value):
        where = f"{path}[{i}]"
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise CalendarError(where, 'a pair such as ["09:00", "18:00"]')
        start = _minutes(pair[0], where, end=False)
        stop = _minutes(pair[1], where, end=True)
        if stop <= start:
            raise CalendarError(where, "a range ends after it starts, within one day")
        ranges.append((start, stop))
    ranges.sort()
    for (_, previous_end), (start, _) in itertools.pairwise(ranges):
        if start < previous_end:
            raise CalendarError(path, f"ranges overlap at {_clock(start)}")
    return tuple(ranges)


class BusinessCalendar:
    """Opening hours per weekday in an IANA time zone, minus holidays (local dates)."""

    __slots__ = ("holidays", "tz", "week", "zone")

    def __init__(
        self,
        tz: str,
        week: Mapping[str, Any],
        holidays: Iterable[date | str] = (),
    ) -> None:
        if not isinstance(tz, str) or not tz or len(tz) > 64:
            raise CalendarError("tz", "an IANA time zone such as Europe/Berlin")
        try:
            self.zone = ZoneInfo(tz)
        except Exception:  # ZoneInfoNotFoundError or ValueError: no such zone either way
            raise CalendarError("tz", f"unknown time zone {tz!r}") from None
        self.tz = tz
        if not isinstance(week, Mapping):
            raise CalendarError("week", "an object keyed by mon, tue, ... sun")
        for key in week:
            if key not in WEEKDAYS:
                raise CalendarError(f"week.{key}", f"unknown day; use {', '.join(WEEKDAYS)}")
        self.week: dict[str, tuple[Range, ...]] = {
            day: _day_ranges(week.get(day), f"week.{day}") for day in WEEKDAYS
        }
        days: set[date] = set()
        items = list(holidays) if isinstance(holidays, Iterable) else None
        if items is None or isinstance(holidays, str | bytes) or len(items) > MAX_HOLIDAYS:
            raise CalendarError("holidays", f"a list of at most {MAX_HOLIDAYS} dates")
        for i, item in enumerate(items):
            days.add(_holiday(item, f"holidays[{i}]"))
        self.holidays = frozenset(days)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BusinessCalendar:
        """The JSON form ``{"tz", "week", "holidays"}`` (as stored and as the API takes it)."""
        if not isinstance(data, Mapping):
            raise CalendarError("", "a calendar is an object {tz, week, holidays}")
        for key in data:
            if key not in ("tz", "week", "holidays"):
                raise CalendarError(str(key), "unknown part of a calendar (tz, week, holidays)")
        return cls(data.get("tz", "UTC"), data.get("week", {}), data.get("holidays", ()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "tz": self.tz,
            "week": {
                day: [[_clock(a), _clock(b)] for a, b in ranges]
                for day, ranges in self.week.items()
                if ranges
            },
            "holidays": sorted(d.isoformat() for d in self.holidays),
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BusinessCalendar) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.tz, tuple(self.week.items()), self.holidays))

    def __repr__(self) -> str:
        return f"BusinessCalendar({self.to_dict()!r})"

    # -- questions ---------------------------------------------------------------------------

    def is_open(self, at: datetime) -> bool:
        """Whether `at` (an aware date-time) falls in an opening range on a working day."""
        local = _aware(at).astimezone(self.zone)
        if local.date() in self.holidays:
            return False
        seconds = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
        return any(
            start * 60 <= seconds < end * 60 for start, end in self.week[WEEKDAYS[local.weekday()]]
        )

    def next_open(self, at: datetime) -> datetime:
        """`at` itself when open, else the next instant the calendar opens (in `at`'s zone).

        Raises ValueError when nothing opens within `MAX_SEARCH_DAYS`.
        """
        found = self._next_state(at, True)
        if found is None:
            raise ValueError("the calendar is never open")
        return found

    def next_close(self, at: datetime) -> datetime | None:
        """`at` itself when closed, else the instant it closes; None if open the whole search."""
        return self._next_state(at, False)

    def add_business_time(self, at: datetime, delta: timedelta) -> datetime:
        """`at` plus `delta` of open time: 2h from Friday 17:00 (open to 18:00) is Monday 10:00."""
        if delta < timedelta(0):
            raise ValueError("business time only moves forward")
        remaining = delta
        current = self.next_open(at)
        for _ in range(MAX_SEARCH_DAYS * (MAX_RANGES_PER_DAY + 2)):
            close = self.next_close(current)
            if close is None or current + remaining <= close:
                return current + remaining
            remaining -= close - current
            current = self.next_open(close)
        raise ValueError("business time too far ahead")

    # -- the search --------------------------------------------------------------------------

    def _next_state(self, at: datetime, want_open: bool) -> datetime | None:
        """The first instant >= `at` whose open state is `want_open`.

        The state only changes at a range's start or end, at local midnight, or at
        a daylight-saving transition, so checking those instants in time order is
        exact. Each day's window runs from its midnight to the next one (UTC
        instants), and gathers candidates of the neighbouring days too, since
        folds can push a wall time past midnight.
        """
        at = _aware(at)
        if self.is_open(at) == want_open:
            return at
        first_day = at.astimezone(self.zone).date() - timedelta(days=1)
        cache: dict[date, list[datetime]] = {}
        for offset in range(MAX_SEARCH_DAYS + 2):
            day = first_day + timedelta(days=offset)
            window_start = self._instants(day, 0)[0]
            window_end = self._instants(day + timedelta(days=1), 0)[0]
            if window_end <= at:
                continue
            candidates = sorted(
                {
                    moment
                    for near in (day - timedelta(days=1), day, day + timedelta(days=1))
                    for moment in self._candidates(near, cache)
                    if window_start <= moment < window_end and moment > at
                }
            )
            for moment in candidates:
                if self.is_open(moment) == want_open:
                    return moment.astimezone(at.tzinfo)
        return None

    def _candidates(self, day: date, cache: dict[date, list[datetime]]) -> list[datetime]:
        if day not in cache:
            moments: list[datetime] = []
            for start, end in self.week[WEEKDAYS[day.weekday()]]:
                moments.extend(self._instants(day, start))
                moments.extend(self._instants(day, end))
            moments.extend(self._instants(day, 0))
            transition = self._transition(day)
            if transition is not None:
                moments.append(transition)
            cache[day] = moments
        return cache[day]

    def _instants(self, day: date, minutes: int) -> list[datetime]:
        """The UTC instants a local wall time maps to (two in a fold; the gap's ends in a gap)."""
        wall = datetime.combine(day, time()) + timedelta(minutes=minutes)
        return [wall.replace(tzinfo=self.zone, fold=fold).astimezone(UTC) for fold in (0, 1)]

    def _transition(self, day: date) -> datetime | None:
        """The instant the UTC offset changes during this local day, if it does (to the second)."""
        low = self._instants(day, 0)[0]
        high = self._instants(day + timedelta(days=1), 0)[0]
        before, after = (
            low.astimezone(self.zone).utcoffset(),
            high.astimezone(self.zone).utcoffset(),
        )
        if before == after:
            return None
        while high - low > _SECOND:
            middle = low + (high - low) / 2
            middle = middle.replace(microsecond=0)
            if middle.astimezone(self.zone).utcoffset() == after:
                high = middle
            else:
                low = middle
        return high


def _aware(at: datetime) -> datetime:
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("business hours need an aware date-time (with a time zone)")
    return at


def _holiday(value: Any, path: str) -> date:
    if isinstance(value, datetime):
        raise CalendarError(path, "a date (YYYY-MM-DD), not a date-time")
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise CalendarError(path, f"a date such as 2025-12-25, not {value!r}")


DEFAULT_CALENDAR = BusinessCalendar(
    "UTC", {day: [("09:00", "18:00")] for day in ("mon", "tue", "wed", "thu", "fri")}
)
