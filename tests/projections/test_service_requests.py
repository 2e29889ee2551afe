"""Service requests on SQLite and PostgreSQL: first response, business hours, reopen.

Events are recorded at fixed moments: `recorded_at` for the event classes on the history
clock, and the library's event clock for the others (conversation events, send requests). No calendar is saved
in the first test, so business hours are the built-in Monday to Friday 09:00-18:00 UTC.
6 March 2026 is a Friday, 9 March the Monday after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eventsourcing.domain import CanCreateTimestamp

from threadline.domain.model.history_clock import recorded_at
from threadline.domain.model.inbound import InboundMessage
from threadline.projections.service_requests import business_seconds, conversation_requests
from threadline.services.runtime import Runtime
from threadline.triggers.business_hours import DEFAULT_CALENDAR, BusinessCalendar

FRIDAY = datetime(2026, 3, 6, tzinfo=UTC)
MONDAY = datetime(2026, 3, 9, tzinfo=UTC)


class EventClock:
    """The moment new events are recorded at (None: the real time)."""

    def __init__(self) -> None:
        self.moment: datetime | None = None

    def now(self) -> datetime:
        return self.moment or datetime.now(UTC)

    @contextmanager
    def at(self, moment: datetime) -> Iterator[None]:
        previous, self.moment = self.moment, moment
        try:
            with recorded_at(moment):  # the event classes on the history clock
                yield
        finally:
            self.moment = previous


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> EventClock:
    found = EventClock()
    monkeypatch.setattr(CanCreateTimestamp, "create_timestamp", staticmethod(found.now))
    return found


def inbound(runtime: Runtime, key: str, text: str, email: str = "client@example.com") -> Any:
    return runtime.app.ingest(
        InboundMessage.create(
            channel="email",
            dedup_key=key,
            identities=[("email", email)],
            sender_name="Клиент",
            subject="Вопрос",
            text=text,
        )
    ).value


def settle(runtime: Runtime) -> None:
    assert runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=60)


def test_first_response_ignores_automatic_messages_and_notes_and_counts_business_hours(
    runtime: Runtime, clock: EventClock
) -> None:
    app = runtime.app
    anna = app.create_user("anna@example.com", "operator", "test", name="Анна").value[0]
    with clock.at(FRIDAY + timedelta(hours=17, minutes=30)):
        first = inbound(runtime, "m1", "Добрый вечер, вопрос по заказу")
    conversation = first.conversation_id
    with clock.at(FRIDAY + timedelta(hours=17, minutes=31)):
        app.reply(conversation, "We got your message", "rule:autoreply")  # automatic
    with clock.at(FRIDAY + timedelta(hours=17, minutes=32)):
        app.add_note(conversation, "Check the order", f"user:{anna}")  # an internal note
    with clock.at(FRIDAY + timedelta(hours=17, minutes=33)):
        app.reply(conversation, "Campaign", "campaign:spring")  # automatic
    with clock.at(FRIDAY + timedelta(hours=17, minutes=40)):
        inbound(runtime, "m2", "Ещё вопрос")  # the client again: the same request
    with clock.at(MONDAY + timedelta(hours=8)):
        app.assign_conversation(conversation, anna, "user:admin")
    with clock.at(MONDAY + timedelta(hours=9, minutes=15)):
        app.reply(conversation, "Here is the answer", f"user:{anna}")
    with clock.at(MONDAY + timedelta(hours=10)):
        app.change_conversation_status(conversation, "resolved", f"user:{anna}")
    # reopened by the client: a new request
    with clock.at(MONDAY + timedelta(hours=11)):
        inbound(runtime, "m3", "И ещё одно")
    with clock.at(MONDAY + timedelta(hours=11, minutes=20)):
        app.reply(conversation, "Done", f"user:{anna}")
    settle(runtime)

    requests = conversation_requests(runtime.views, str(conversation))
    assert len(requests) == 2
    one, two = requests
    assert one["id"] == str(first.message_id)
    assert one["opened_at"] == "2026-03-06T17:30:00.000000Z"
    assert one["first_response_at"] == "2026-03-09T09:15:00.000000Z"
    assert one["responder_id"] == str(anna) and one["assignee_id"] == str(anna)
    # clock: Fri 17:30 -> Mon 09:15 = 2 days 15 h 45 min = 63.75 h = 229,500 s
    assert one["first_response_seconds"] == 229_500
    # business: Fri 17:30-18:00 (30 min) + Mon 09:00-09:15 (15 min) = 45 min = 2,700 s
    assert one["first_response_business_seconds"] == 2_700
    # resolved Mon 10:00: clock 64.5 h = 232,200 s; business 30 + 60 min = 5,400 s
    assert one["resolution_seconds"] == 232_200
    assert one["resolution_business_seconds"] == 5_400
    # the second request: Mon 11:00, answered 11:20 (1,200 s both ways), still open
    assert two["opened_at"] == "2026-03-09T11:00:00.000000Z"
    assert two["first_response_seconds"] == two["first_response_business_seconds"] == 1_200
    assert two["resolved_at"] is None and two["resolution_seconds"] is None


def test_an_inbox_calendar_as_it_stood_times_the_request(
    runtime: Runtime, clock: EventClock
) -> None:
    """A calendar named `default` open 08:00-20:00 every day in Moscow (UTC+3), then changed
    to 10:00-12:00: the first response is timed by the calendar of its own moment."""
    app = runtime.app
    daily = {day: [["08:00", "20:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    with clock.at(FRIDAY):
        app.save_calendar("default", {"tz": "Europe/Moscow", "week": daily}, "test")
    # Saturday 7 March 16:30 UTC = 19:30 Moscow; answered Sunday 05:30 UTC = 08:30 Moscow
    saturday = FRIDAY + timedelta(days=1)
    with clock.at(saturday + timedelta(hours=16, minutes=30)):
        first = inbound(runtime, "c1", "Вопрос", email="other@example.com")
    with clock.at(saturday + timedelta(hours=16, minutes=31)):
        app.reply(first.conversation_id, "Answer", "user:1")
    with clock.at(saturday + timedelta(hours=17)):
        app.save_calendar("default", {"tz": "Europe/Moscow", "week": {"sun": []}}, "test")
    with clock.at(saturday + timedelta(hours=17, minutes=30)):
        app.change_conversation_status(first.conversation_id, "resolved", "user:1")
    settle(runtime)
    (request,) = conversation_requests(runtime.views, str(first.conversation_id))
    # first response at 19:31 Moscow, open till 20:00: 60 s, with the calendar of then
    assert request["first_response_business_seconds"] == 60
    # resolved at 20:30 Moscow, after the calendar closed every day: 0 s of business time
    assert request["resolution_business_seconds"] == 0
    assert request["resolution_seconds"] == 3_600


@pytest.mark.parametrize(
    ("start", "hours"),
    [
        (datetime(2026, 3, 6, 17, 0, tzinfo=UTC), 2),  # Friday 17:00 + 2 h -> Monday 10:00
        (datetime(2026, 3, 7, 12, 0, tzinfo=UTC), 3),  # Saturday -> Monday 12:00
        (datetime(2026, 3, 9, 8, 0, tzinfo=UTC), 20),  # across two working days
    ],
)
def test_business_seconds_agree_with_the_trigger_calendar(start: datetime, hours: int) -> None:
    """`business_seconds` measures back what `BusinessCalendar.add_business_time` adds."""
    end = DEFAULT_CALENDAR.add_business_time(start, timedelta(hours=hours))
    assert business_seconds(None, start, end) == hours * 3600
    berlin = BusinessCalendar(
        "Europe/Berlin",
        {"mon": [["09:00", "13:00"], ["14:00", "18:00"]], "fri": [["09:00", "24:00"]]},
        ["2026-03-09"],
    )
    end = berlin.add_business_time(start, timedelta(hours=hours))
    assert business_seconds(berlin.to_dict(), start, end) == hours * 3600
