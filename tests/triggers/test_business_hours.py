"""Business calendars: open or closed, and when they open next — across weekends, holidays, DST.

An `after` delay that lands in business hours, or an auto-reply sent only at
night, is wrong for a whole day if the calendar gets a daylight-saving change
or a holiday wrong, so those days are pinned down in two zones that change
their clocks (Europe/Berlin, America/New_York).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from threadline.triggers.business_hours import (
    DEFAULT_CALENDAR,
    WEEKDAYS,
    BusinessCalendar,
    CalendarError,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
OFFICE = {day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0, s: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, s, tzinfo=BERLIN)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_open_and_closed_within_a_day() -> None:
    calendar = BusinessCalendar("Europe/Berlin", OFFICE)
    assert calendar.is_open(berlin(2025, 3, 5, 9, 0))  # the opening minute counts
    assert calendar.is_open(berlin(2025, 3, 5, 17, 59, 59))
    assert not calendar.is_open(berlin(2025, 3, 5, 18, 0))  # the closing minute does not
    assert not calendar.is_open(berlin(2025, 3, 5, 8, 59))
    # the zone of the question does not matter, only the instant
    assert calendar.is_open(utc(2025, 3, 5, 8, 0))  # 09:00 in Berlin (CET)
    assert not calendar.is_open(utc(2025, 3, 5, 7, 59))


def test_next_open_is_the_same_instant_when_open() -> None:
    at = berlin(2025, 3, 5, 12, 0)
    assert BusinessCalendar("Europe/Berlin", OFFICE).next_open(at) is at


def test_next_open_across_a_weekend() -> None:
    calendar = BusinessCalendar("Europe/Berlin", OFFICE)
    friday_evening = berlin(2025, 3, 7, 18, 30)
    opens = calendar.next_open(friday_evening)
    assert opens == berlin(2025, 3, 10, 9, 0)
    assert opens.tzinfo is BERLIN  # answered in the zone of the question
    assert calendar.next_open(utc(2025, 3, 8, 12, 0)) == utc(2025, 3, 10, 8, 0)


def test_next_open_skips_a_holiday() -> None:
    calendar = BusinessCalendar("Europe/Berlin", OFFICE, ["2025-12-25", date(2025, 12, 26)])
    assert not calendar.is_open(berlin(2025, 12, 25, 10, 0))
    assert calendar.is_open(berlin(2025, 12, 24, 10, 0))
    # Wednesday evening before Christmas: Thursday and Friday are holidays, then the weekend
    assert calendar.next_open(berlin(2025, 12, 24, 19, 0)) == berlin(2025, 12, 29, 9, 0)


def test_holidays_are_local_dates() -> None:
    calendar = BusinessCalendar("America/New_York", OFFICE, ["2025-07-04"])
    # 02:00 UTC on July 4th is still July 3rd, 22:00, in New York: a working day, but closed
    assert not calendar.is_open(utc(2025, 7, 4, 2, 0))
    assert calendar.next_open(utc(2025, 7, 4, 2, 0)) == utc(2025, 7, 7, 13, 0)


def test_spring_forward_keeps_wall_clock_hours_in_berlin() -> None:
    calendar = BusinessCalendar("Europe/Berlin", OFFICE)
    # 09:00 is 08:00 UTC on the Friday before the change (CET) and 07:00 UTC after it (CEST)
    assert calendar.next_open(utc(2024, 3, 29, 7, 0)) == utc(2024, 3, 29, 8, 0)
    assert calendar.next_open(utc(2024, 3, 30, 12, 0)) == utc(2024, 4, 1, 7, 0)


def test_a_range_starting_in_the_skipped_hour_opens_at_the_jump() -> None:
    # On 2024-03-31 Berlin's clocks jump from 02:00 to 03:00: 02:30 never happens.
    calendar = BusinessCalendar("Europe/Berlin", {"sun": [["02:30", "05:00"]]})
    opens = calendar.next_open(utc(2024, 3, 30, 22, 0))
    assert opens == utc(2024, 3, 31, 1, 0)  # 03:00 CEST, the first instant after the gap
    assert calendar.is_open(opens)
    assert not calendar.is_open(opens - timedelta(seconds=1))


def test_fall_back_opens_twice_when_the_hour_repeats_in_berlin() -> None:
    # On 2024-10-27 Berlin's clocks go from 03:00 CEST back to 02:00 CET.
    calendar = BusinessCalendar("Europe/Berlin", {"sun": [["02:00", "02:30"]]})
    assert calendar.is_open(utc(2024, 10, 27, 0, 10))  # 02:10 CEST
    assert not calendar.is_open(utc(2024, 10, 27, 0, 40))  # 02:40 CEST
    assert calendar.next_open(utc(2024, 10, 27, 0, 40)) == utc(2024, 10, 27, 1, 0)  # 02:00 CET
    assert calendar.next_close(utc(2024, 10, 27, 1, 0)) == utc(2024, 10, 27, 1, 30)


def test_fall_back_in_new_york() -> None:
    # On 2024-11-03 New York's clocks go from 02:00 EDT back to 01:00 EST.
    calendar = BusinessCalendar("America/New_York", {"sun": [["01:30", "03:00"]]})
    assert calendar.next_open(utc(2024, 11, 3, 5, 20)) == utc(2024, 11, 3, 5, 30)  # 01:30 EDT
    # the clocks fall back to 01:00 while open: closed until 01:30 comes round again
    assert calendar.next_close(utc(2024, 11, 3, 5, 40)) == utc(2024, 11, 3, 6, 0)
    assert not calendar.is_open(utc(2024, 11, 3, 6, 10))  # 01:10 EST
    assert calendar.next_open(utc(2024, 11, 3, 6, 10)) == utc(2024, 11, 3, 6, 30)  # 01:30 EST
    assert calendar.next_close(utc(2024, 11, 3, 6, 30)) == utc(2024, 11, 3, 8, 0)  # 03:00 EST


def test_spring_forward_in_new_york() -> None:
    # On 2024-03-10 New York's clocks jump from 02:00 EST to 03:00 EDT.
    calendar = BusinessCalendar("America/New_York", {"sun": [["02:15", "04:00"]]})
    assert calendar.next_open(utc(2024, 3, 10, 6, 0)) == utc(2024, 3, 10, 7, 0)
    office = BusinessCalendar("America/New_York", OFFICE)
    assert office.next_open(utc(2024, 3, 8, 23, 0)) == utc(2024, 3, 11, 13, 0)  # 09:00 EDT


def test_a_day_open_until_midnight_runs_into_the_next() -> None:
    calendar = BusinessCalendar("UTC", {"mon": [["20:00", "24:00"]], "tue": [["00:00", "02:00"]]})
    assert calendar.is_open(utc(2025, 3, 3, 23, 59))
    assert calendar.is_open(utc(2025, 3, 4, 0, 0))
    assert calendar.next_close(utc(2025, 3, 3, 21, 0)) == utc(2025, 3, 4, 2, 0)


def test_a_calendar_that_never_opens() -> None:
    with pytest.raises(ValueError, match="never open"):
        BusinessCalendar("UTC", {}).next_open(utc(2025, 1, 1))
    closed_next_year = BusinessCalendar(
        "UTC",
        {"wed": [["09:00", "10:00"]]},
        [date(2025, 1, 1) + timedelta(days=i) for i in range(380)],
    )
    with pytest.raises(ValueError, match="never open"):
        closed_next_year.next_open(utc(2025, 1, 1))


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        DEFAULT_CALENDAR.is_open(datetime(2025, 1, 1, 10, 0))


def test_add_business_time() -> None:
    calendar = BusinessCalendar("Europe/Berlin", OFFICE, ["2025-03-10"])
    friday = berlin(2025, 3, 7, 17, 0)
    # one hour left on Friday, Monday is a holiday: the second hour is Tuesday 09:00-10:00
    assert calendar.add_business_time(friday, timedelta(hours=2)) == berlin(2025, 3, 11, 10, 0)
    assert calendar.add_business_time(friday, timedelta(minutes=30)) == berlin(2025, 3, 7, 17, 30)
    assert calendar.add_business_time(berlin(2025, 3, 8, 3, 0), timedelta(0)) == berlin(
        2025, 3, 11, 9, 0
    )
    with pytest.raises(ValueError):
        calendar.add_business_time(friday, timedelta(hours=-1))


def test_default_calendar_is_weekdays_nine_to_six_utc() -> None:
    assert DEFAULT_CALENDAR.tz == "UTC"
    assert DEFAULT_CALENDAR.is_open(utc(2025, 3, 7, 17, 59))  # Friday
    assert not DEFAULT_CALENDAR.is_open(utc(2025, 3, 8, 12, 0))  # Saturday
    assert DEFAULT_CALENDAR.to_dict()["week"] == {
        day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")
    }


def test_json_form_round_trips() -> None:
    data = {
        "tz": "Europe/Berlin",
        "week": {"mon": [["14:00", "18:00"], ["09:00", "13:00"]], "sat": [["10:00", "24:00"]]},
        "holidays": ["2025-12-26", "2025-12-25"],
    }
    calendar = BusinessCalendar.from_dict(data)
    assert calendar.to_dict() == {
        "tz": "Europe/Berlin",
        "week": {"mon": [["09:00", "13:00"], ["14:00", "18:00"]], "sat": [["10:00", "24:00"]]},
        "holidays": ["2025-12-25", "2025-12-26"],
    }
    assert BusinessCalendar.from_dict(calendar.to_dict()) == calendar


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        ({"tz": "Mars/Olympus"}, "tz", "unknown time zone"),
        ({"tz": "../../etc/passwd"}, "tz", "unknown time zone"),
        ({"tz": 5}, "tz", "IANA"),
        ({"week": {"monday": []}}, "week.monday", "unknown day"),
        ({"week": {"mon": [["9:00", "18:00"]]}}, "week.mon[0]", "a time of day"),
        ({"week": {"mon": [["09:00", "25:00"]]}}, "week.mon[0]", "a time of day"),
        ({"week": {"mon": [["24:00", "24:00"]]}}, "week.mon[0]", "a time of day"),
        ({"week": {"mon": [["18:00", "09:00"]]}}, "week.mon[0]", "ends after it starts"),
        ({"week": {"mon": [["09:00", "09:00"]]}}, "week.mon[0]", "ends after it starts"),
        ({"week": {"mon": [["09:00"]]}}, "week.mon[0]", "a pair"),
        ({"week": {"mon": "09:00-18:00"}}, "week.mon", "a list"),
        (
            {"week": {"mon": [["09:00", "13:00"], ["12:00", "18:00"]]}},
            "week.mon",
            "overlap at 12:00",
        ),
        ({"week": []}, "week", "an object"),
        ({"holidays": ["25.12.2025"]}, "holidays[0]", "a date"),
        ({"holidays": "2025-12-25"}, "holidays", "a list"),
        ({"holidays": [datetime(2025, 12, 25, tzinfo=UTC)]}, "holidays[0]", "not a date-time"),
        ({"zone": "UTC"}, "zone", "unknown part"),
    ],
)
def test_invalid_calendars_are_refused_with_the_place(
    data: dict[str, Any], path: str, message: str
) -> None:
    with pytest.raises(CalendarError) as caught:
        BusinessCalendar.from_dict(data)
    assert caught.value.path == path
    assert message in caught.value.message


def test_adjacent_ranges_are_allowed() -> None:
    calendar = BusinessCalendar("UTC", {"mon": [["09:00", "12:00"], ["12:00", "18:00"]]})
    assert calendar.is_open(utc(2025, 3, 3, 12, 0))
    assert calendar.next_close(utc(2025, 3, 3, 10, 0)) == utc(2025, 3, 3, 18, 0)


# -- property: next_open is the first open instant -------------------------------------------

clock = st.integers(0, 24 * 4).map(lambda quarter: quarter * 15)


@st.composite
def calendars(draw: st.DrawFn) -> BusinessCalendar:
    zone = draw(
        st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC"])
    )
    week: dict[str, list[list[str]]] = {}
    for day in draw(st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True)):
        bounds = sorted(set(draw(st.lists(clock, min_size=2, max_size=6))))
        pairs = [bounds[i : i + 2] for i in range(0, len(bounds) - 1, 2)]
        week[day] = [
            [f"{a // 60:02d}:{a % 60:02d}", f"{b // 60:02d}:{b % 60:02d}"] for a, b in pairs
        ]
    assume(any(week.values()))
    holidays = draw(st.lists(st.dates(date(2024, 1, 1), date(2026, 12, 31)), max_size=5))
    return BusinessCalendar(zone, week, holidays)


moments = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calendars(), moments)
def test_next_open_is_the_first_open_instant(calendar: BusinessCalendar, at: datetime) -> None:
    opens = calendar.next_open(at)
    assert opens >= at
    assert calendar.is_open(opens)
    if opens != at:
        assert not calendar.is_open(opens - timedelta(seconds=1))
        span = opens - at
        for i in range(1, 40):  # nothing in between is open either
            assert not calendar.is_open(at + span * i / 40)
        closes = calendar.next_close(opens)
        assert closes is None or closes > opens
