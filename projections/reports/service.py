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

from typing import Any

from threadline.projections.reports.frame import (
    Column,
    Item,
    ItemSource,
    Measure,
    Report,
    ReportOption,
    ReportSlice,
    Section,
    SliceColumns,
    local_day,
    seconds_between,
)
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

_SELECT = (
    "SELECT r.*, i.name AS inbox, c.display_name AS contact, a.name AS assignee,"
    " p.name AS responder FROM service_requests r"
    " LEFT JOIN service_inboxes i ON i.id = r.inbox_id"
    " LEFT JOIN contacts c ON c.id = r.contact_id"
    " LEFT JOIN users a ON a.id = r.assignee_id"
    " LEFT JOIN users p ON p.id = r.responder_id"
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


def read_requests(db: ViewReader, s: ReportSlice) -> list[Item]:
    """The requests opened in the period (items of the timing and CSAT sections)."""
    c = REQUEST_SLICE.conditions(REPORT_NAME, s)
    rows = db.query(f"{_SELECT}{c.where} ORDER BY r.opened_at, r.id", c.params)
    target = _target_seconds(s)
    items: list[Item] = []
    for r in rows:
        business = r["first_response_business_seconds"]
        score = r["score"]
        items.append(
            {
                "request_id": r["id"],
                "conversation_id": r["conversation_id"],
                "inbox_id": r["inbox_id"],
                "inbox": r["inbox"] or "",
                "channel": r["channel"],
                "contact_id": r["contact_id"],
                "contact": r["contact"] or "",
                "assignee_id": r["assignee_id"],
                "assignee": r["assignee"] or "",
                "responder_id": r["responder_id"],
                "responder": r["responder"] or "",
                "opened_at": r["opened_at"],
                "day": local_day(r["opened_at"], s.timezone),
                "first_response_at": r["first_response_at"],
                "resolved_at": r["resolved_at"],
                "requests": 1,
                "answered": int(r["first_response_at"] is not None),
                "resolved": int(r["resolved_at"] is not None),
                "within_target": int(business is not None and float(business) <= target),
                "first_response_seconds": _float(r["first_response_seconds"]),
                "first_response_business_seconds": _float(business),
                "resolution_seconds": _float(r["resolution_seconds"]),
                "resolution_business_seconds": _float(r["resolution_business_seconds"]),
                "score": None if score is None else int(score),
                "rated": int(score is not None),
                "satisfied": int(score is not None and int(score) >= 4),
            }
        )
    return items


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


REQUESTS = ItemSource("requests", "Service requests", REQUEST_COLUMNS, read_requests)
"""First-response items per responder (`responder_id`, `first_response_seconds`,
`first_response_business_seconds`): the managers report may take this source as it is."""


OPEN_COLUMNS = (
    *REQUEST_KEY,
    Column("opened_at", "Opened", "time"),
    Column("open", "Open", "flag"),
    Column("unassigned", "Unassigned", "flag"),
    Column("waiting", "Waiting for us", "flag"),
    Column("waiting_seconds", "Waiting for", "seconds"),
)


def read_open(db: ViewReader, s: ReportSlice) -> list[Item]:
    """Every request open now (the period does not narrow what is open at this moment)."""
    c = REQUEST_SLICE.conditions(REPORT_NAME, s, period=False)
    c.add("r.resolved_at IS NULL", [])
    c.compare("r.opened_at", "<=", s.now_ts)
    rows = db.query(f"{_SELECT}{c.where} ORDER BY r.opened_at, r.id", c.params)
    items: list[Item] = []
    for r in rows:
        waiting = r["last_response_at"] is None or r["last_inbound_at"] > r["last_response_at"]
        items.append(
            {
                "request_id": r["id"],
                "conversation_id": r["conversation_id"],
                "inbox_id": r["inbox_id"],
                "inbox": r["inbox"] or "",
                "channel": r["channel"],
                "contact_id": r["contact_id"],
                "contact": r["contact"] or "",
                "assignee_id": r["assignee_id"],
                "assignee": r["assignee"] or "",
                "opened_at": r["opened_at"],
                "open": 1,
                "unassigned": int(r["assignee_id"] is None),
                "waiting": int(waiting),
                "waiting_seconds": (
                    max(0.0, seconds_between(r["last_inbound_at"], s.now_ts) or 0.0)
                    if waiting
                    else None
                ),
            }
        )
    return items


OPEN_NOW = ItemSource("open", "Requests open now", OPEN_COLUMNS, read_open)


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


def _rated(item: Item) -> bool:
    return bool(item["rated"])


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
    sections=(
        Section(
            name="by_inbox",
            title="By inbox",
            source="requests",
            group_by=("inbox_id", "inbox"),
            measures=_timing(),
            chart="median_first_response_business",
        ),
        Section(
            name="by_channel",
            title="By channel",
            source="requests",
            group_by=("channel",),
            measures=_timing(),
            chart="median_first_response_business",
        ),
        Section(
            name="by_operator",
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
            keep=lambda item: bool(item["answered"]),
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
            title="Satisfaction (CSAT) by operator",
            source="requests",
            group_by=("assignee_id", "assignee"),
            keep=_rated,
            measures=CSAT,
            chart="avg_score",
        ),
        Section(
            name="csat_by_inbox",
            title="Satisfaction (CSAT) by inbox",
            source="requests",
            group_by=("inbox_id", "inbox"),
            keep=_rated,
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
