"""The service report: how fast requests are answered and resolved, what is open now, CSAT.

Items are the service requests (`projections.service_requests`) opened in the period: a
client's message that found nothing of theirs waiting, up to the conversation's
resolution. First response = the first message a user sent while it was open (automatic
messages and notes never count); times are in clock seconds and in business seconds (the
inbox's calendar). "Within target" = answered with a first response of at most
`target_minutes` business minutes; its share is over the answered requests. CSAT = the
survey scores of the requests opened in the period: their average, their count and the
share of 4 and 5. "Now" counts every request open at the moment of the report, whatever the
period: open, unassigned (no operator), waiting for us (the client's last message is newer
than the last answer by a user).
"""

from __future__ import annotations

from threadline.projections.base import parse_ts
from threadline.projections.reports.frame import (
    Column,
    Item,
    ItemQuery,
    ItemSource,
    Label,
    Measure,
    Report,
    ReportOption,
    ReportSlice,
    Section,
    SliceColumns,
    local_day_sql,
    ts_literal,
)
from threadline.projections.service_requests import epoch_micros
from threadline.projections.sql import ViewReader

REPORT_NAME = "service"

REQUEST_SLICE = SliceColumns(
    period="r.opened_at",
    manager_id="r.assignee_id",
    source=("c.source_channel", "c.utm_source", "c.utm_campaign"),
    utm_campaign="c.utm_campaign",
    channel="r.channel",
    company_id="c.company_id",
    contact_id="r.contact_id",
)

# What a request is, where it came in and who has it: the same in both sources.
REQUEST_KEY = (
    Column("request_id", "Request", "id", ref="message"),
    Column("conversation_id", "Conversation", "id", ref="conversation"),
    Column("inbox_id", "Inbox id", "id", ref="inbox"),
    Column("inbox", "Inbox"),
    Column("channel", "Channel"),
    Column("contact_id", "Contact", "id", ref="contact"),
    Column("contact", "Client"),
    Column("assignee_id", "Operator id", "id", ref="user"),
    Column("assignee", "Operator"),
)

REQUEST_COLUMNS = (
    *REQUEST_KEY,
    Column("responder_id", "Responder id", "id", ref="user"),
    Column("responder", "Responder"),
    Column("opened_at", "Opened", "time"),
    Column("day", "Day opened", "day"),
    Column("first_response_at", "First response", "time"),
    Column("resolved_at", "Resolved", "time"),
    Column("requests", "Requests", "flag"),
    Column("answered", "Answered", "flag"),
    Column("resolved", "Resolved", "flag"),
    Column("within_target", "Answered within target", "flag"),
    Column("first_response_seconds", "First response time", "seconds"),
    Column("first_response_business_seconds", "First response time (business hours)", "seconds"),
    Column("resolution_seconds", "Resolution time", "seconds"),
    Column("resolution_business_seconds", "Resolution time (business hours)", "seconds"),
    Column("score", "Satisfaction score", "number"),
    Column("rated", "Rated", "flag"),
    Column("satisfied", "Rated 4 or 5", "flag"),
)


def _target_seconds(s: ReportSlice) -> float:
    minutes = s.options.get("target_minutes", 60) if s.options else 60
    return float(minutes) * 60.0


# The names of the inbox, the client, the operator are looked up by key only where a query
# uses them (a scalar subquery of a column nobody reads is never run; a LEFT JOIN would be,
# for every item of a GROUP BY).
def _name(table: str, column: str, key: str) -> str:
    return (
        f"CASE WHEN {key} IS NULL THEN '' ELSE"
        f" COALESCE((SELECT x.{column} FROM {table} x WHERE x.id = {key}), '') END"
    )


_NAMES = (
    "r.id AS request_id, r.conversation_id, r.inbox_id,"
    f" {_name('service_inboxes', 'name', 'r.inbox_id')} AS inbox, r.channel, r.contact_id,"
    f" {_name('contacts', 'display_name', 'r.contact_id')} AS contact, r.assignee_id,"
    f" {_name('users', 'name', 'r.assignee_id')} AS assignee"
)


def _label(table: str, column: str, key: str) -> Label:
    """A name as a label of its id (the same expression as `_name`'s item column): a section
    grouping by the id looks it up once per row, not once per item."""
    return Label(_name(table, column, "{" + key + "}"), by=(key,))


# The sections group by the ids: their names stay out of the GROUP BY (a name looked up per
# item and sorted with it cost the open-now fold a third of its time).
_KEY_LABELS = {
    "inbox": _label("service_inboxes", "name", "inbox_id"),
    "assignee": _label("users", "name", "assignee_id"),
}
_REQUEST_LABELS = {**_KEY_LABELS, "responder": _label("users", "name", "responder_id")}


def _requests(s: ReportSlice) -> str:
    """The FROM of both sources: the client's card only when the slice reads it (its first
    touch, its company)."""
    if s.source is None and s.utm_campaign is None and s.group is None:
        return " FROM service_requests r"
    return " FROM service_requests r LEFT JOIN contacts c ON c.id = r.contact_id"


def requests_query(db: ViewReader, s: ReportSlice) -> ItemQuery:
    """The requests opened in the period (items of the timing and CSAT sections): the
    durations are the view's (business seconds computed when the request was answered or
    resolved); "within target" compares the business first response with the option.
    Answered / resolved read the durations (set with the moments, in the covering index)."""
    c = REQUEST_SLICE.conditions(REPORT_NAME, s)
    sql = (
        f"SELECT {_NAMES}, r.responder_id,"
        f" {_name('users', 'name', 'r.responder_id')} AS responder, r.opened_at,"
        f" {local_day_sql(db, 'r.opened_at', s)} AS day, r.first_response_at, r.resolved_at,"
        " 1 AS requests,"
        " CASE WHEN r.first_response_seconds IS NULL THEN 0 ELSE 1 END AS answered,"
        " CASE WHEN r.resolution_seconds IS NULL THEN 0 ELSE 1 END AS resolved,"
        " CASE WHEN r.first_response_business_seconds <= ? THEN 1 ELSE 0 END AS within_target,"
        " r.first_response_seconds, r.first_response_business_seconds,"
        " r.resolution_seconds, r.resolution_business_seconds, r.score,"
        " CASE WHEN r.score IS NULL THEN 0 ELSE 1 END AS rated,"
        " CASE WHEN r.score >= 4 THEN 1 ELSE 0 END AS satisfied"
        f"{_requests(s)}{c.where}"
    )
    return ItemQuery(
        sql, [_target_seconds(s), *c.params], "opened_at, request_id", labels=_REQUEST_LABELS
    )


REQUESTS = ItemSource("requests", "Service requests", REQUEST_COLUMNS, query=requests_query)
"""First-response items per responder (`responder_id`, `first_response_seconds`,
`first_response_business_seconds`): the managers report may take this source as it is."""


def read_requests(db: ViewReader, s: ReportSlice) -> list[Item]:
    """The requests opened in the period as items (what `requests_query` selects)."""
    return REQUESTS.items(db, s)


OPEN_COLUMNS = (
    *REQUEST_KEY,
    Column("opened_at", "Opened", "time"),
    Column("open", "Open", "flag"),
    Column("unassigned", "Unassigned", "flag"),
    Column("waiting", "Waiting for us", "flag"),
    Column("waiting_seconds", "Waiting for", "seconds"),
)

# Waiting for us: the client's last message is newer than the last answer by a user.
_WAITING = "(r.last_response_at IS NULL OR r.last_inbound_at > r.last_response_at)"


def open_query(db: ViewReader, s: ReportSlice) -> ItemQuery:
    """Every request open now (the period does not narrow what is open at this moment);
    "waiting for" runs from the client's last message to `now`."""
    c = REQUEST_SLICE.conditions(REPORT_NAME, s, period=False)
    c.add("r.resolved_at IS NULL", [])
    c.compare("r.opened_at", "<=", s.now_ts)
    now = ts_literal(s.now_ts)
    # exact to the microsecond, as `seconds_sql`, from the view's integer clock (no text parsed)
    micros = epoch_micros(parse_ts(s.now_ts))
    waited = f"CAST({micros} - r.last_inbound_micros AS DOUBLE PRECISION) / 1000000"
    sql = (
        f"SELECT {_NAMES}, r.opened_at, 1 AS open,"
        " CASE WHEN r.assignee_id IS NULL THEN 1 ELSE 0 END AS unassigned,"
        f" CASE WHEN {_WAITING} THEN 1 ELSE 0 END AS waiting,"
        f" CASE WHEN NOT {_WAITING} THEN NULL WHEN r.last_inbound_at >= {now} THEN 0.0"
        f" ELSE {waited} END"
        f" AS waiting_seconds{_requests(s)}{c.where}"
    )
    return ItemQuery(sql, c.params, "opened_at, request_id", labels=_KEY_LABELS)


OPEN_NOW = ItemSource("open", "Requests open now", OPEN_COLUMNS, query=open_query)


def _timing(prefix: str = "") -> tuple[Measure, ...]:
    return (
        Measure("requests", "Requests", "count"),
        Measure("answered", "Answered", "sum", "answered"),
        Measure("resolved", "Resolved", "sum", "resolved"),
        Measure(
            "avg_first_response_business",
            "Average first response (business hours)",
            "avg",
            "first_response_business_seconds",
            kind="seconds",
        ),
        Measure(
            "median_first_response_business",
            "Median first response (business hours)",
            "median",
            "first_response_business_seconds",
            kind="seconds",
        ),
        Measure(
            "avg_first_response",
            "Average first response (clock)",
            "avg",
            "first_response_seconds",
            kind="seconds",
        ),
        Measure(
            "median_first_response",
            "Median first response (clock)",
            "median",
            "first_response_seconds",
            kind="seconds",
        ),
        Measure("within_target", "Answered within target", "sum", "within_target"),
        Measure(
            "target_share",
            "Share answered within target",
            "ratio",
            of=("within_target", "answered"),
            kind="percent",
        ),
        Measure(
            "avg_resolution_business",
            "Average resolution (business hours)",
            "avg",
            "resolution_business_seconds",
            kind="seconds",
        ),
        Measure(
            "median_resolution_business",
            "Median resolution (business hours)",
            "median",
            "resolution_business_seconds",
            kind="seconds",
        ),
        Measure(
            "avg_resolution",
            "Average resolution (clock)",
            "avg",
            "resolution_seconds",
            kind="seconds",
        ),
        Measure(
            "median_resolution",
            "Median resolution (clock)",
            "median",
            "resolution_seconds",
            kind="seconds",
        ),
    )


CSAT = (
    Measure("answers", "Survey answers", "count"),
    Measure("avg_score", "Average score", "avg", "score", kind="number"),
    Measure("satisfied", "Rated 4 or 5", "sum", "satisfied"),
    Measure(
        "satisfied_share", "Share of 4 and 5", "ratio", of=("satisfied", "answers"), kind="percent"
    ),
)

NOW = (
    Measure("open", "Open", "count"),
    Measure("unassigned", "Unassigned", "sum", "unassigned"),
    Measure("waiting", "Waiting for us", "sum", "waiting"),
    Measure("longest_wait", "Longest wait", "max", "waiting_seconds", kind="seconds"),
)


REPORT = Report(
    name=REPORT_NAME,
    title="Service",
    description=(
        "Client requests opened in the period: first-response and resolution times (average"
        " and median, in business hours and in clock time), the share answered within the"
        " target, by inbox, channel and operator; what is open, unassigned and waiting for"
        " us now; and the satisfaction score (CSAT) from the survey after resolution."
    ),
    sources=(REQUESTS, OPEN_NOW),
    # The timing sections (and the two CSAT ones) fold once, by inbox, channel and operator
    # together (few combinations), each added up from that: one pass and one listing of the
    # medians' values instead of three.
    sections=(
        Section(
            name="by_inbox",
            shared_fold=True,
            title="By inbox",
            source="requests",
            group_by=("inbox_id", "inbox"),
            measures=_timing(),
            chart="median_first_response_business",
        ),
        Section(
            name="by_channel",
            shared_fold=True,
            title="By channel",
            source="requests",
            group_by=("channel",),
            measures=_timing(),
            chart="median_first_response_business",
        ),
        Section(
            name="by_operator",
            shared_fold=True,
            title="By operator",
            source="requests",
            group_by=("assignee_id", "assignee"),
            measures=_timing(),
            chart="median_first_response_business",
        ),
        Section(
            name="responders",
            title="First responses by responder",
            source="requests",
            group_by=("responder_id", "responder"),
            where="answered = 1",
            measures=(
                Measure("answered", "First responses", "count"),
                Measure(
                    "avg_first_response_business",
                    "Average first response (business hours)",
                    "avg",
                    "first_response_business_seconds",
                    kind="seconds",
                ),
                Measure(
                    "median_first_response_business",
                    "Median first response (business hours)",
                    "median",
                    "first_response_business_seconds",
                    kind="seconds",
                ),
                Measure("within_target", "Answered within target", "sum", "within_target"),
                Measure(
                    "target_share",
                    "Share answered within target",
                    "ratio",
                    of=("within_target", "answered"),
                    kind="percent",
                ),
            ),
            chart="answered",
            order="-answered",
        ),
        Section(
            name="now",
            title="Open now",
            source="open",
            group_by=("inbox_id", "inbox", "channel", "assignee_id", "assignee"),
            measures=NOW,
            chart="waiting",
        ),
        Section(
            name="csat",
            shared_fold=True,
            title="Satisfaction (CSAT) by operator",
            source="requests",
            group_by=("assignee_id", "assignee"),
            where="rated = 1",
            measures=CSAT,
            chart="avg_score",
        ),
        Section(
            name="csat_by_inbox",
            shared_fold=True,
            title="Satisfaction (CSAT) by inbox",
            source="requests",
            group_by=("inbox_id", "inbox"),
            where="rated = 1",
            measures=CSAT,
            chart="avg_score",
        ),
    ),
    options=(
        ReportOption(
            "target_minutes",
            "Target first response, business minutes",
            "int",
            60,
            minimum=1,
            maximum=10_080,
        ),
    ),
)
