"""Service requests: how fast the team answers and resolves what clients ask, in clock and business time.

A **request** opens with a client's inbound message in a conversation that has no open
request (the message's id is the request's id); later client messages belong to it until
the conversation's status changes to resolved, which resolves it. The next client message
after that (a reopened conversation) opens a new request. An operator reopening the
conversation by hand opens none (no client is waiting).

The **first response** is the first outbound message sent by a user (actor ``user:<id>``)
while the request is open; automatic messages (rules, campaigns, surveys, system),
internal notes and the client's own messages never count. The **responder** is that user;
the **operator** (assignee) is the conversation's assignee while the request is open.

Durations are kept in clock seconds and in **business seconds**: the open time of the
business calendar between the two moments. The calendar is the one named like the
conversation's inbox slug, else the one named ``default``, else Monday to Friday
09:00-18:00 UTC, as it stood when the event was recorded: this view folds the calendar
events itself, so a replay gives the same figures. (The arithmetic mirrors
`triggers.business_hours.BusinessCalendar`, which a view may not import: wall-clock ranges
in the calendar's zone, "24:00" ends a day, holidays are local dates.)

A client's reply that answers a satisfaction survey (`domain.model.survey`) opens no
request: the score goes onto the request the survey asked about.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from threadline.domain.model.calendar import Calendar
from threadline.domain.model.conversation import Conversation
from threadline.domain.model.inbox import Inbox
from threadline.domain.model.message import Message
from threadline.domain.model.survey import (
    ANSWER_DAYS,
    ConversationSurvey,
    parse_score,
    survey_message_id,
)
from threadline.projections.base import ViewProjection, dumps, handles, parse_ts, sid, ts
from threadline.projections.sql import ViewCursor, ViewReader

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_DEFINITION: dict[str, Any] = {
    "tz": "UTC",
    "week": {day: [["09:00", "18:00"]] for day in WEEKDAYS[:5]},
    "holidays": [],
}
RESPONDER_PREFIX = "user:"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_micros(value: datetime) -> int:
    """Microseconds since 1970 (UTC), exact: how long a client has waited is one subtraction
    of two of these, cheaper in a report over every open request than parsing two texts."""
    return (value - EPOCH) // timedelta(microseconds=1)


# -- business time ------------------------------------------------------------------------------


def _minutes(text: str) -> int:
    hours, _, minutes = str(text).partition(":")
    return int(hours) * 60 + int(minutes or 0)


def business_seconds(definition: Mapping[str, Any] | None, start: datetime, end: datetime) -> float:
    """Seconds of open time of a calendar (its JSON form) in [start, end)."""
    if end <= start:
        return 0.0
    spec = definition or DEFAULT_DEFINITION
    try:
        zone = ZoneInfo(str(spec.get("tz") or "UTC"))
    except Exception:  # a stored calendar was validated; a broken one counts as UTC
        zone = ZoneInfo("UTC")
    week = spec.get("week") or {}
    holidays = {date.fromisoformat(str(d)) for d in spec.get("holidays") or ()}
    ranges = {
        day: [(_minutes(a), _minutes(b)) for a, b in (week.get(day) or ())] for day in WEEKDAYS
    }
    total = 0.0
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date() + timedelta(days=1)
    while day <= last:
        if day not in holidays:
            midnight = datetime.combine(day, time())
            for a, b in ranges[WEEKDAYS[day.weekday()]]:
                opens = (midnight + timedelta(minutes=a)).replace(tzinfo=zone).astimezone(UTC)
                closes = (midnight + timedelta(minutes=b)).replace(tzinfo=zone).astimezone(UTC)
                low, high = max(opens, start), min(closes, end)
                if high > low:
                    total += (high - low).total_seconds()
        day += timedelta(days=1)
    return total


# -- the view -----------------------------------------------------------------------------------


class ServiceRequestsProjection(ViewProjection):
    name = "service_requests"
    version = 3  # 3: covering indexes and `last_inbound_micros` for the service report
    tables = (
        "service_requests",
        "service_conversations",
        "service_inboxes",
        "service_calendars",
    )
    schema = (
        "CREATE TABLE IF NOT EXISTS service_requests ("
        " id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, contact_id TEXT NOT NULL,"
        " channel TEXT NOT NULL, inbox_id TEXT, assignee_id TEXT, responder_id TEXT,"
        " calendar TEXT NOT NULL, opened_at TEXT NOT NULL, first_response_at TEXT,"
        " resolved_at TEXT, last_inbound_at TEXT NOT NULL, last_inbound_micros BIGINT NOT NULL,"
        " last_response_at TEXT,"
        " first_response_seconds DOUBLE PRECISION,"
        " first_response_business_seconds DOUBLE PRECISION,"
        " resolution_seconds DOUBLE PRECISION, resolution_business_seconds DOUBLE PRECISION,"
        " survey_message_id TEXT, survey_sent_at TEXT, score BIGINT, answered_at TEXT,"
        " answered_via TEXT)",
        # The service report's period scan reads only this index (its GROUP BYs and medians
        # need no row of the table); the same for what is open now, below.
        "CREATE INDEX IF NOT EXISTS service_requests_period ON service_requests (opened_at,"
        " channel, inbox_id, assignee_id, responder_id, first_response_seconds,"
        " first_response_business_seconds, resolution_seconds, resolution_business_seconds,"
        " score)",
        "CREATE INDEX IF NOT EXISTS service_requests_conversation"
        " ON service_requests (conversation_id, opened_at)",
        "CREATE INDEX IF NOT EXISTS service_requests_survey ON service_requests (survey_message_id)",
        "CREATE INDEX IF NOT EXISTS service_requests_open ON service_requests (opened_at,"
        " channel, inbox_id, assignee_id, last_inbound_at, last_inbound_micros, last_response_at,"
        " resolved_at)"
        " WHERE resolved_at IS NULL",
        # what is open now, by inbox, channel and operator: read in the key order, no sort
        "CREATE INDEX IF NOT EXISTS service_requests_open_keys ON service_requests (inbox_id,"
        " channel, assignee_id, opened_at, last_inbound_at, last_inbound_micros, last_response_at,"
        " resolved_at)"
        " WHERE resolved_at IS NULL",
        "CREATE TABLE IF NOT EXISTS service_conversations ("
        " id TEXT PRIMARY KEY, contact_id TEXT NOT NULL, channel TEXT NOT NULL, inbox_id TEXT,"
        " assignee_id TEXT, status TEXT NOT NULL, open_request_id TEXT, survey_sent_at TEXT,"
        " survey_reply_id TEXT)",
        "CREATE TABLE IF NOT EXISTS service_inboxes ("
        " id TEXT PRIMARY KEY, slug TEXT NOT NULL, name TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS service_calendars ("
        " id TEXT PRIMARY KEY, name TEXT NOT NULL, definition TEXT NOT NULL)",
    )

    # -- inboxes and calendars (as of each event) ---------------------------------------------

    @handles(Inbox.InboxCreated)
    def _inbox(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "INSERT INTO service_inboxes (id, slug, name) VALUES (?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET slug = excluded.slug, name = excluded.name",
            [sid(event.originator_id), event.slug, event.name],
        )

    @handles(Inbox.InboxReconfigured)
    def _inbox_renamed(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE service_inboxes SET name = ? WHERE id = ?",
            [event.name, sid(event.originator_id)],
        )

    @handles(Calendar.CalendarSaved)
    def _calendar(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "INSERT INTO service_calendars (id, name, definition) VALUES (?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET name = excluded.name,"
            " definition = excluded.definition",
            [sid(event.originator_id), str(event.name).lower(), dumps(event.definition)],
        )

    @handles(Calendar.CalendarChanged)
    def _calendar_changed(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE service_calendars SET definition = ? WHERE id = ?",
            [dumps(event.definition), sid(event.originator_id)],
        )

    def _calendar_name(self, cur: ViewCursor, inbox_id: str | None) -> str:
        """The calendar a request of this inbox is timed by (as the log stands now)."""
        if inbox_id:
            row = cur.execute(
                "SELECT c.name FROM service_inboxes i JOIN service_calendars c"
                " ON c.name = i.slug WHERE i.id = ?",
                [inbox_id],
            ).fetchone()
            if row is not None:
                return str(row["name"])
        return "default"

    def _business(self, cur: ViewCursor, calendar: str, start: str, end: datetime) -> float:
        row = cur.execute(
            "SELECT definition FROM service_calendars WHERE name = ?", [calendar]
        ).fetchone()
        definition = json.loads(row["definition"]) if row is not None else None
        return business_seconds(definition, parse_ts(start), end)

    # -- conversations ------------------------------------------------------------------------

    @handles(Conversation.ConversationStarted)
    def _started(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "INSERT INTO service_conversations (id, contact_id, channel, inbox_id, status)"
            " VALUES (?, ?, ?, ?, 'open') ON CONFLICT (id) DO NOTHING",
            [sid(event.originator_id), sid(event.contact_id), event.channel, sid(event.inbox_id)],
        )

    @handles(Conversation.ConversationAssigned)
    def _assigned(self, event: Any, cur: ViewCursor) -> None:
        conversation_id = sid(event.originator_id)
        assignee = sid(event.assignee_id)
        cur.execute(
            "UPDATE service_conversations SET assignee_id = ? WHERE id = ?",
            [assignee, conversation_id],
        )
        cur.execute(
            "UPDATE service_requests SET assignee_id = ? WHERE id IN (SELECT open_request_id"
            " FROM service_conversations WHERE id = ? AND open_request_id IS NOT NULL)",
            [assignee, conversation_id],
        )

    @handles(Conversation.ConversationStatusChanged)
    def _status(self, event: Any, cur: ViewCursor) -> None:
        conversation_id = sid(event.originator_id)
        conversation = cur.execute(
            "SELECT open_request_id FROM service_conversations WHERE id = ?", [conversation_id]
        ).fetchone()
        if conversation is None:
            return
        if event.status != "resolved" or conversation["open_request_id"] is None:
            cur.execute(
                "UPDATE service_conversations SET status = ? WHERE id = ?",
                [event.status, conversation_id],
            )
            return
        request = cur.execute(
            "SELECT id, opened_at, calendar FROM service_requests WHERE id = ?",
            [conversation["open_request_id"]],
        ).fetchone()
        cur.execute(
            "UPDATE service_conversations SET status = ?, open_request_id = NULL WHERE id = ?",
            [event.status, conversation_id],
        )
        if request is None:
            return
        at = event.timestamp
        cur.execute(
            "UPDATE service_requests SET resolved_at = ?, resolution_seconds = ?,"
            " resolution_business_seconds = ? WHERE id = ?",
            [
                ts(at),
                max(0.0, (at - parse_ts(request["opened_at"])).total_seconds()),
                self._business(cur, request["calendar"], request["opened_at"], at),
                request["id"],
            ],
        )

    # -- messages -----------------------------------------------------------------------------

    @handles(Message.MessageReceived)
    def _received(self, event: Any, cur: ViewCursor) -> None:
        conversation_id = sid(event.conversation_id)
        conversation = cur.execute(
            "SELECT * FROM service_conversations WHERE id = ?", [conversation_id]
        ).fetchone()
        if conversation is None:
            return
        at = ts(event.timestamp)
        micros = epoch_micros(event.timestamp)
        if conversation["open_request_id"] is not None:
            cur.execute(
                "UPDATE service_requests SET last_inbound_at = ?, last_inbound_micros = ?"
                " WHERE id = ?",
                [at, micros, conversation["open_request_id"]],
            )
            return
        if self._answers_survey(event, conversation):
            return
        message_id = sid(event.originator_id)
        cur.execute(
            "INSERT INTO service_requests (id, conversation_id, contact_id, channel, inbox_id,"
            " assignee_id, calendar, opened_at, last_inbound_at, last_inbound_micros)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            [
                message_id,
                conversation_id,
                conversation["contact_id"],
                conversation["channel"],
                conversation["inbox_id"],
                conversation["assignee_id"],
                self._calendar_name(cur, conversation["inbox_id"]),
                at,
                at,
                micros,
            ],
        )
        cur.execute(
            "UPDATE service_conversations SET open_request_id = ? WHERE id = ?",
            [message_id, conversation_id],
        )

    @staticmethod
    def _answers_survey(event: Any, conversation: Mapping[str, Any]) -> bool:
        """The same rule the inbound path records `SurveyAnswered` by (either order)."""
        if conversation["survey_reply_id"] == sid(event.originator_id):
            return True
        sent = conversation["survey_sent_at"]
        if sent is None or parse_score(event.personal.get("text", "")) is None:
            return False
        waited: timedelta = event.timestamp - parse_ts(sent)
        return waited <= timedelta(days=ANSWER_DAYS)

    @handles(Message.MessageSendRequested)
    def _sent(self, event: Any, cur: ViewCursor) -> None:
        if not str(event.actor).startswith(RESPONDER_PREFIX):
            return  # automatic messages never answer a client
        row = cur.execute(
            "SELECT r.id, r.opened_at, r.first_response_at, r.calendar FROM service_conversations c"
            " JOIN service_requests r ON r.id = c.open_request_id WHERE c.id = ?",
            [sid(event.conversation_id)],
        ).fetchone()
        if row is None:
            return
        at = event.timestamp
        if row["first_response_at"] is not None:
            cur.execute(
                "UPDATE service_requests SET last_response_at = ? WHERE id = ?", [ts(at), row["id"]]
            )
            return
        cur.execute(
            "UPDATE service_requests SET first_response_at = ?, last_response_at = ?,"
            " responder_id = ?, first_response_seconds = ?,"
            " first_response_business_seconds = ? WHERE id = ?",
            [
                ts(at),
                ts(at),
                str(event.actor)[len(RESPONDER_PREFIX) :],
                max(0.0, (at - parse_ts(row["opened_at"])).total_seconds()),
                self._business(cur, row["calendar"], row["opened_at"], at),
                row["id"],
            ],
        )

    # -- surveys ------------------------------------------------------------------------------

    @handles(ConversationSurvey.SurveySent)
    def _survey_sent(self, event: Any, cur: ViewCursor) -> None:
        conversation_id = sid(event.conversation_id)
        at = ts(event.timestamp)
        latest = cur.execute(
            "SELECT id FROM service_requests WHERE conversation_id = ?"
            " ORDER BY opened_at DESC, id DESC LIMIT 1",
            [conversation_id],
        ).fetchone()
        if latest is not None:
            cur.execute(
                "UPDATE service_requests SET survey_message_id = ?, survey_sent_at = ?"
                " WHERE id = ?",
                [sid(event.message_id), at, latest["id"]],
            )
        cur.execute(
            "UPDATE service_conversations SET survey_sent_at = ? WHERE id = ?",
            [at, conversation_id],
        )

    @handles(ConversationSurvey.SurveyAnswered)
    def _survey_answered(self, event: Any, cur: ViewCursor) -> None:
        conversation_id = sid(event.conversation_id)
        reply = sid(event.message_id)
        cur.execute(
            "UPDATE service_requests SET score = ?, answered_at = ?, answered_via = ?"
            " WHERE survey_message_id = ?",
            [
                int(event.score),
                ts(event.timestamp),
                event.via,
                str(survey_message_id(event.conversation_id, event.resolution)),
            ],
        )
        cur.execute(
            "UPDATE service_conversations SET survey_sent_at = NULL, survey_reply_id = ?"
            " WHERE id = ?",
            [reply, conversation_id],
        )
        if reply is not None:  # the reply came first and opened a request: it was none
            cur.execute(
                "DELETE FROM service_requests WHERE id = ? AND first_response_at IS NULL",
                [reply],
            )
            cur.execute(
                "UPDATE service_conversations SET open_request_id = NULL"
                " WHERE id = ? AND open_request_id = ?",
                [conversation_id, reply],
            )


# -- readers ------------------------------------------------------------------------------------


def conversation_survey(db: ViewReader, conversation_id: str) -> dict[str, Any] | None:
    """The latest survey of a conversation: when it was sent and its score (None: none yet)."""
    return db.query_one(
        "SELECT survey_message_id, survey_sent_at, score, answered_at, answered_via"
        " FROM service_requests WHERE conversation_id = ? AND survey_message_id IS NOT NULL"
        " ORDER BY survey_sent_at DESC LIMIT 1",
        [conversation_id],
    )


def conversation_requests(db: ViewReader, conversation_id: str) -> list[dict[str, Any]]:
    """A conversation's requests in the order they opened."""
    return db.query(
        "SELECT * FROM service_requests WHERE conversation_id = ? ORDER BY opened_at, id",
        [conversation_id],
    )
