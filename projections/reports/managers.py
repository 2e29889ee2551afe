"""The managers report: results, activity and plan against fact, per manager.

Figures and their exact rules (the README says the same for users):

- **Results** (per manager, business month of `closed_at`, currency): deals won and lost
  (count and net amount), revenue (= net of won deals) and gross profit (won deals'
  `profit_minor`). The manager is the deal's `manager_id`.
- **Messages sent**: outbound messages whose actor is a user (``user:<id>``), by the time
  they were asked to go out. Messages of rules, campaigns, the system and triggers (any other
  actor) and internal notes (direction ``internal``) never count.
- **Tasks** (the task's assignee): tasks done in the period (every type), of which calls
  (tasks of type ``call`` done: a call logged by hand is a call task created done, a
  planned call done counts too) and meetings (type ``meeting`` done); *done late* = done in
  the period after their due time; *overdue* = still open tasks whose due time is in the
  period and before `now`.
- **Missed calls**: inbound voice calls with the outcome ``missed`` that rang in the
  period. A missed call is *returned* when, within 24 hours after it rang, a user sent an
  outbound message (a call or a reply, any channel) to the same contact or completed a call
  task on that contact; it counts for the first user who did so. A call not returned counts
  for the conversation's assignee (no manager when it has none).
- **Plan vs fact** (per manager, month, currency): the plan's revenue, gross-profit and
  deals targets (`sales_plans`, months of the period) against revenue, gross profit and
  deals won in those months; done = fact / plan (none without a plan).
- **Comparison**: one row per manager with the counts side by side (money stays per
  currency in the results and plan sections): its items are the other sources' items (one
  SELECT, for drill-downs and CSV), and a report run adds up the other sections' figures per
  manager rather than folding those items again, so its counts are theirs.

Slices: period, manager and client group narrow everything; pipeline, source and campaign
narrow the deals (results, plan fact) only; channel narrows deals by their first-touch
channel, messages and missed calls by their channel, and leaves task activity out (tasks
have no channel).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

from threadline.projections.base import parse_ts, ts
from threadline.projections.reports.frame import (
    Column,
    FigureRow,
    ItemQuery,
    ItemSource,
    Label,
    Measure,
    Report,
    ReportSlice,
    Section,
    SectionResult,
    SliceColumns,
    deal_slice,
    is_postgres,
    local_month,
    local_month_sql,
    seconds_sql,
)
from threadline.projections.reports.service import REQUEST_COLUMNS, requests_query
from threadline.projections.sql import Conditions, ViewReader

REPORT_NAME = "managers"
RETURN_WINDOW = timedelta(hours=24)

DEAL_SLICE = deal_slice("d.closed_at")


def _activity_slice(s: ReportSlice) -> ReportSlice:
    """Activity is not narrowed by deal-only dimensions (pipeline, source, campaign)."""
    return replace(s, pipeline_id=None, source=None, utm_campaign=None, manager_id=None)


MANAGER = (
    Column("manager_id", "Manager id", "id", ref="user"),
    Column("manager", "Manager"),
)

DEAL_COLUMNS = (
    Column("deal_id", "Deal", "id", ref="deal"),
    Column("deal_title", "Deal title"),
    *MANAGER,
    Column("month", "Month closed", "month"),
    Column("closed_at", "Closed at", "time"),
    Column("status", "Status"),
    Column("pipeline_id", "Pipeline id", "id", ref="pipeline"),
    Column("won", "Deals won", "flag"),
    Column("lost", "Deals lost", "flag"),
    Column("closed", "Deals closed", "flag"),
    Column("currency", "Currency"),
    Column("won_minor", "Won amount (net)", "money"),
    Column("lost_minor", "Lost amount (net)", "money"),
    Column("profit_minor", "Gross profit", "money"),
)

MESSAGE_COLUMNS = (
    Column("message_id", "Message", "id", ref="message"),
    Column("conversation_id", "Conversation", "id", ref="conversation"),
    Column("contact_id", "Contact", "id", ref="contact"),
    *MANAGER,
    Column("channel", "Channel"),
    Column("sent_at", "Sent", "time"),
    Column("month", "Month", "month"),
)

TASK_COLUMNS = (
    Column("task_id", "Task", "id", ref="task"),
    Column("type", "Type"),
    *MANAGER,
    Column("status", "Status"),
    Column("due_at", "Due", "time"),
    Column("closed_at", "Done", "time"),
    Column("done", "Tasks done", "flag"),
    Column("call", "Calls", "flag"),
    Column("meeting", "Meetings done", "flag"),
    Column("done_late", "Done late", "flag"),
    Column("overdue", "Overdue (open)", "flag"),
)

MISSED_COLUMNS = (
    Column("message_id", "Missed call", "id", ref="message"),
    Column("conversation_id", "Conversation", "id", ref="conversation"),
    Column("contact_id", "Contact", "id", ref="contact"),
    *MANAGER,
    Column("rang_at", "Rang", "time"),
    Column("returned_at", "Returned", "time"),
    Column("missed", "Missed calls", "flag"),
    Column("returned", "Returned within 24 h", "flag"),
    Column("seconds_to_return", "Time to return", "seconds"),
)

PLAN_COLUMNS = (
    Column("kind", "Row"),  # plan, or deal (a won deal's fact)
    Column("deal_id", "Deal", "id", ref="deal"),
    *MANAGER,
    Column("month", "Month", "month"),
    Column("currency", "Currency"),
    Column("plan_minor", "Revenue plan", "money"),
    Column("fact_minor", "Revenue", "money"),
    Column("plan_profit_minor", "Gross profit plan", "money"),
    Column("fact_profit_minor", "Gross profit", "money"),
    Column("plan_deals", "Deals won plan", "count"),
    Column("fact_deals", "Deals won", "flag"),
)

COMPARISON_COLUMNS = (
    Column("kind", "Row"),  # deal, message, task, missed_call
    Column("ref_id", "Item", "id"),
    *MANAGER,
    Column("won", "Deals won", "flag"),
    Column("lost", "Deals lost", "flag"),
    Column("message", "Messages sent", "flag"),
    Column("call", "Calls", "flag"),
    Column("meeting", "Meetings done", "flag"),
    Column("done", "Tasks done", "flag"),
    Column("overdue", "Overdue (open)", "flag"),
    Column("done_late", "Done late", "flag"),
    Column("missed", "Missed calls", "flag"),
    Column("returned", "Missed calls returned", "flag"),
    Column("answered", "First responses", "flag"),
    Column("first_response_business_seconds", "First response time (business hours)", "seconds"),
)


# -- reading ----------------------------------------------------------------------------------
#
# Every source is one SELECT (the database folds the figures): the comparison is the same
# SELECTs side by side (UNION ALL), so its counts are the other sections' by construction.
# The contacts (a client's group) are joined only when the slice asks for them, so an item
# costs no lookup it does not need.

_WON = "CASE WHEN d.status = 'won' THEN 1 ELSE 0 END"


def _manager_name(manager_id: str) -> str:
    """A manager's name from their id ('' without one or without a user): what every source's
    `LEFT JOIN users u` + `COALESCE(u.name, '')` gives."""
    return f"COALESCE((SELECT n.name FROM users n WHERE n.id = {manager_id}), '')"


_LABELS = {"manager": Label(_manager_name("{manager_id}"), by=("manager_id",))}
"""Every section groups by the manager's id: the name is looked up once per row after the
GROUP BY, not once per item before it (nor sorted with every item)."""


def deals_query(db: ViewReader, s: ReportSlice) -> ItemQuery:
    """Deals won or lost in the period (by `closed_at`)."""
    c = DEAL_SLICE.conditions(REPORT_NAME, s)
    c.add("d.status IN ('won', 'lost')", [])
    c.add("d.closed_at IS NOT NULL", [])
    sql = (
        "SELECT d.id AS deal_id, d.title AS deal_title, d.manager_id,"
        f" COALESCE(u.name, '') AS manager, {local_month_sql(db, 'd.closed_at', s)} AS month,"
        f" d.closed_at, d.status, d.pipeline_id, {_WON} AS won, 1 - {_WON} AS lost,"
        " 1 AS closed, d.currency,"
        " CASE WHEN d.status = 'won' THEN d.net_minor ELSE 0 END AS won_minor,"
        " CASE WHEN d.status = 'won' THEN 0 ELSE d.net_minor END AS lost_minor,"
        " CASE WHEN d.status = 'won' THEN d.profit_minor ELSE 0 END AS profit_minor"
        f" FROM deals d LEFT JOIN users u ON u.id = d.manager_id{c.where}"
    )
    return ItemQuery(sql, c.params, "closed_at, deal_id", labels=_LABELS)


MESSAGE_SLICE = SliceColumns(
    period="m.created_at",
    channel="m.channel",
    company_id="k.company_id",
    contact_id="m.contact_id",
)

_ACTOR_USER = "substr(m.actor, 6)"  # the user id of a `user:<id>` actor


def _client_join(s: ReportSlice, contact: str) -> str:
    """The contacts join a client-group slice reads the company through (only then)."""
    return f" LEFT JOIN contacts k ON k.id = {contact}" if s.group is not None else ""


def messages_query(db: ViewReader, s: ReportSlice) -> ItemQuery:
    """Outbound messages a user asked to send (never automatic ones, never notes)."""
    c = MESSAGE_SLICE.conditions(REPORT_NAME, _activity_slice(s))
    c.add("m.direction = 'outbound'", [])
    c.add("m.actor LIKE 'user:%'", [])
    if s.manager_id is not None:
        c.compare("m.actor", "=", f"user:{s.manager_id}")
    sql = (
        "SELECT m.id AS message_id, m.conversation_id, m.contact_id,"
        f" {_ACTOR_USER} AS manager_id, COALESCE(u.name, '') AS manager, m.channel,"
        f" m.created_at AS sent_at, {local_month_sql(db, 'm.created_at', s)} AS month"
        f" FROM inbox_messages m{_client_join(s, 'm.contact_id')}"
        f" LEFT JOIN users u ON u.id = {_ACTOR_USER}{c.where}"
    )
    return ItemQuery(sql, c.params, "sent_at, message_id", labels=_LABELS)


TASK_SLICE = SliceColumns(
    manager_id="t.assignee_id",
    company_id="k.company_id",
    contact_id="t.contact_id",
)

_DONE = "t.status = 'done'"


def tasks_query(db: ViewReader, s: ReportSlice) -> ItemQuery:
    """Tasks done in the period, and open tasks due in the period before `now`."""
    activity = replace(_activity_slice(s), manager_id=s.manager_id)
    c = TASK_SLICE.conditions(REPORT_NAME, replace(activity, channel=None), period=False)
    if s.channel is not None:
        c.add("1 = 0", [])  # tasks have no channel: a channel's activity is its messages and calls
    done = Conditions().add(_DONE, [])
    done.compare("t.closed_at", ">=", s.start).compare("t.closed_at", "<", s.end)
    overdue = Conditions().add("t.status = 'open'", []).add("t.due_at < ?", [s.now_ts])
    overdue.compare("t.due_at", ">=", s.start).compare("t.due_at", "<", s.end)
    c.add(
        f"(({' AND '.join(done.clauses)}) OR ({' AND '.join(overdue.clauses)}))",
        [*done.params, *overdue.params],
    )
    sql = (
        "SELECT t.id AS task_id, t.type, t.assignee_id AS manager_id,"
        " COALESCE(u.name, '') AS manager, t.status, t.due_at, t.closed_at,"
        f" CASE WHEN {_DONE} THEN 1 ELSE 0 END AS done,"
        f" CASE WHEN {_DONE} AND t.type = 'call' THEN 1 ELSE 0 END AS call,"
        f" CASE WHEN {_DONE} AND t.type = 'meeting' THEN 1 ELSE 0 END AS meeting,"
        f" CASE WHEN {_DONE} AND t.due_at IS NOT NULL AND t.closed_at > t.due_at"
        " THEN 1 ELSE 0 END AS done_late,"
        f" CASE WHEN {_DONE} THEN 0 ELSE 1 END AS overdue"
        f" FROM tasks t{_client_join(s, 't.contact_id')}"
        f" LEFT JOIN users u ON u.id = t.assignee_id{c.where}"
    )
    return ItemQuery(sql, c.params, "COALESCE(closed_at, due_at), task_id", labels=_LABELS)


MISSED_SLICE = SliceColumns(
    period="m.created_at",
    channel="m.channel",
    company_id="k.company_id",
    contact_id="m.contact_id",
)


def first_return(rang_at: str, returns: list[tuple[str, str]]) -> tuple[str, str] | None:
    """The first (time, user id) of `returns` after `rang_at` and within 24 hours of it.

    The rule `missed_calls_query` applies in SQL (kept here as its plain statement)."""
    start = parse_ts(rang_at)
    limit = ts(start + RETURN_WINDOW)
    found = [r for r in returns if rang_at < r[0] <= limit]
    return min(found) if found else None


def _a_day_later_sql(db: ViewReader, column: str) -> str:
    """The `ts` text 24 hours after a `ts` column (UTC: a day is always 24 hours)."""
    if is_postgres(db):
        whole = (
            f"to_char(CAST({column} AS TIMESTAMPTZ) AT TIME ZONE 'UTC' + INTERVAL '1 day',"
            " 'YYYY-MM-DD\"T\"HH24:MI:SS')"
        )
    else:
        whole = f"strftime('%Y-%m-%dT%H:%M:%S', {column}, '+1 day')"
    return f"{whole} || substr({column}, 20)"  # the microseconds and the Z as they were


def missed_calls_query(db: ViewReader, s: ReportSlice) -> ItemQuery:
    """Missed inbound calls in the period, each with who returned it within 24 hours.

    The first return is the least (time, user id) among the users' outbound messages to the
    contact and the call tasks done on it in (rang, rang + 24 h]: `time || ' ' || user` in
    one MIN, the `ts` texts being all of one length (27 characters).
    """
    c = MISSED_SLICE.conditions(REPORT_NAME, _activity_slice(s))
    c.add("m.direction = 'inbound'", [])
    c.add("m.channel = 'voice'", [])
    c.add("m.metadata LIKE ?", ['%"outcome":"missed"%'])
    until = _a_day_later_sql(db, "m.created_at")
    returns = (
        "SELECT o.created_at || ' ' || substr(o.actor, 6) AS mark FROM inbox_messages o"
        " WHERE o.direction = 'outbound' AND o.created_at > m.created_at"
        f" AND o.created_at <= {until} AND o.contact_id = m.contact_id"
        " AND o.actor LIKE 'user:%'"
        " UNION ALL SELECT r.closed_at || ' ' || r.assignee_id FROM tasks r"
        " WHERE r.contact_id = m.contact_id AND r.type = 'call' AND r.status = 'done'"
        f" AND r.assignee_id IS NOT NULL AND r.closed_at > m.created_at AND r.closed_at <= {until}"
    )
    calls = (
        "SELECT m.id, m.conversation_id, m.contact_id, m.created_at, v.assignee_id,"
        f" (SELECT MIN(x.mark) FROM ({returns}) x) AS first_mark"
        f" FROM inbox_messages m{_client_join(s, 'm.contact_id')}"
        f" LEFT JOIN inbox_conversations v ON v.id = m.conversation_id{c.where}"
    )
    # each call's first return is looked up once (MATERIALIZED: a database inlining `f`
    # would repeat the lookup for every column that reads it)
    returned_at = "substr(f.first_mark, 1, 27)"
    manager_id = "COALESCE(substr(f.first_mark, 29), f.assignee_id)"
    seconds = seconds_sql(db, "f.created_at", returned_at)
    manager = Conditions().compare(manager_id, "=", s.manager_id)
    sql = (
        f"WITH f AS MATERIALIZED ({calls})"
        f" SELECT f.id AS message_id, f.conversation_id, f.contact_id, {manager_id} AS manager_id,"
        f" COALESCE(u.name, '') AS manager, f.created_at AS rang_at, {returned_at} AS returned_at,"
        " 1 AS missed, CASE WHEN f.first_mark IS NULL THEN 0 ELSE 1 END AS returned,"
        f" CASE WHEN f.first_mark IS NULL THEN NULL ELSE {seconds} END AS seconds_to_return"
        f" FROM f LEFT JOIN users u ON u.id = {manager_id}{manager.where}"
    )
    return ItemQuery(sql, [*c.params, *manager.params], "rang_at, message_id", labels=_LABELS)


def _months_of(s: ReportSlice) -> list[str] | None:
    """The business months the period touches (None: unbounded)."""
    if s.start is None or s.end is None:
        return None
    first = local_month(s.start, s.timezone)
    last = local_month(ts(parse_ts(s.end) - timedelta(microseconds=1)), s.timezone)
    assert first is not None and last is not None
    months = []
    year, month = int(first[:4]), int(first[5:])
    while f"{year:04d}-{month:02d}" <= last:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def plan_fact_query(db: ViewReader, s: ReportSlice) -> ItemQuery:
    """The plans of the period's months (one item each) and the deals won in the period.

    Plans have no client: a group slice shows the facts only."""
    plans = Conditions().compare("p.manager_id", "=", s.manager_id)
    months = _months_of(s)
    if s.group is not None or months == []:
        plans.add("1 = 0", [])
    elif months is not None:
        plans.add(f"p.month IN ({','.join('?' * len(months))})", months)
    deals = deals_query(db, s)
    rows = (
        "SELECT 'plan' AS kind, NULL AS deal_id, p.manager_id, p.month, p.currency,"
        " p.revenue_minor AS plan_minor, 0 AS fact_minor,"
        " COALESCE(p.gross_profit_minor, 0) AS plan_profit_minor, 0 AS fact_profit_minor,"
        " COALESCE(p.deals_won, 0) AS plan_deals, 0 AS fact_deals"
        f" FROM sales_plans p{plans.where}"
        " UNION ALL SELECT 'deal', i.deal_id, i.manager_id, i.month, i.currency,"
        " 0, i.won_minor, 0, i.profit_minor, 0, 1"
        f" FROM ({deals.sql}) i WHERE i.status = 'won'"
    )
    return ItemQuery(
        _named(rows, PLAN_COLUMNS),
        [*plans.params, *deals.params],
        "month, manager_id, kind DESC, deal_id",
        labels=_LABELS,
    )


def _named(rows: str, columns: tuple[Column, ...]) -> str:
    """`rows` (a UNION ALL without the manager's name) with the name looked up outside it:
    the branches of a UNION ALL compute every column they list for every row, so a fold
    that leaves the name to its label then never looks it up per item."""
    listed = ", ".join(
        f"{_manager_name('b.manager_id')} AS manager" if c.name == "manager" else f"b.{c.name}"
        for c in columns
    )
    return f"SELECT {listed} FROM ({rows}) b"


FLAGS = (
    "won",
    "lost",
    "message",
    "call",
    "meeting",
    "done",
    "overdue",
    "done_late",
    "missed",
    "returned",
    "answered",
)


def first_responses_query(db: ViewReader, s: ReportSlice) -> ItemQuery:
    """The service report's requests, answered ones, with the responder as the manager.

    A conversation belongs to no pipeline, so a pipeline slice leaves them all (a manager's
    first-response time is theirs whatever the deals); the manager slice is the operator the
    conversation is assigned to, as in the service report.
    """
    q = requests_query(db, replace(s, pipeline_id=None))
    columns = ", ".join(f"q.{column.name}" for column in REQUEST_COLUMNS)
    sql = (
        f"SELECT {columns}, q.responder_id AS manager_id, q.responder AS manager"
        f" FROM ({q.sql}) q WHERE q.answered = 1"
    )
    return ItemQuery(sql, q.params, q.order, labels={**q.labels, **_LABELS})


def comparison_query(db: ViewReader, s: ReportSlice) -> ItemQuery:
    """Every item of the other sections as one row of per-manager flags (UNION ALL): what the
    comparison's drill-downs and CSV list, and what a page of that section alone folds (a
    report run derives it from the other sections: `side_by_side`)."""
    branches: list[tuple[ItemQuery, str, str, dict[str, str], str]] = [
        (deals_query(db, s), "deal", "deal_id", {"won": "won", "lost": "lost"}, "NULL"),
        (messages_query(db, s), "message", "message_id", {"message": "1"}, "NULL"),
        (
            tasks_query(db, s),
            "task",
            "task_id",
            {name: name for name in ("call", "meeting", "done", "overdue", "done_late")},
            "NULL",
        ),
        (
            missed_calls_query(db, s),
            "missed_call",
            "message_id",
            {"missed": "1", "returned": "returned"},
            "NULL",
        ),
        (
            first_responses_query(db, s),
            "request",
            "request_id",
            {"answered": "1"},
            "first_response_business_seconds",
        ),
    ]
    selects: list[str] = []
    params: list[Any] = []
    for query, kind, ref, flags, seconds in branches:
        values = ", ".join(
            f"{_item(flags[name]) if name in flags else '0'} AS {name}" for name in FLAGS
        )
        selects.append(
            f"SELECT '{kind}' AS kind, i.{ref} AS ref_id, i.manager_id, {values},"
            f" CAST({_item(seconds)} AS DOUBLE PRECISION) AS first_response_business_seconds"
            f" FROM ({query.sql}) i"
        )
        params.extend(query.params)
    return ItemQuery(
        _named(" UNION ALL ".join(selects), COMPARISON_COLUMNS),
        params,
        "kind, ref_id",
        labels=_LABELS,
    )


def _item(value: str) -> str:
    """An item column of a comparison branch (`i.<name>`), or a literal as it is."""
    return f"i.{value}" if value.isidentifier() and value != "NULL" else value


# -- the comparison from the other sections ---------------------------------------------------

SIDE_BY_SIDE: tuple[tuple[str, dict[str, str]], ...] = (
    ("results", {"won": "won", "lost": "lost"}),
    ("messages", {"messages": "messages"}),
    ("tasks", {name: name for name in ("calls", "meetings", "done", "overdue", "done_late")}),
    ("missed_calls", {"missed": "missed", "returned": "returned"}),
    ("first_response", {"answered": "answered", "median_first_response": "median_business"}),
)
"""Each section the comparison reads, and which of its figures gives which comparison figure.
Those sections fold the comparison's very items (its branches are their sources, with no
`where`): so its sums are theirs added up per manager, and its median the first-response
section's (only first responses carry a response time)."""

_MEDIAN = "median_first_response"


def side_by_side(results: Mapping[str, SectionResult]) -> tuple[list[FigureRow], FigureRow]:
    """The comparison's rows and total from the other sections' (their items never folded a
    second time: a report run reads them once)."""
    blank: dict[str, Any] = {name: 0 for _, figures in SIDE_BY_SIDE for name in figures}
    blank[_MEDIAN] = None
    rows: dict[Any, FigureRow] = {}
    total = FigureRow(key={}, values=dict(blank), items=0)
    for name, figures in SIDE_BY_SIDE:
        result = results[name]
        for row in result.rows:
            manager_id = row.key["manager_id"]
            into = rows.get(manager_id)
            if into is None:
                key = {"manager_id": manager_id, "manager": row.key["manager"]}
                into = rows[manager_id] = FigureRow(key=key, values=dict(blank), items=0)
            _add_up(into, row, figures)
        _add_up(total, result.total, figures)
    return list(rows.values()), total


def _add_up(into: FigureRow, row: FigureRow, figures: Mapping[str, str]) -> None:
    """A section row's figures added to a comparison row (a manager has one first-response
    row, so its median is taken as it is)."""
    into.items += row.items
    for mine, theirs in figures.items():
        if mine == _MEDIAN:
            into.values[mine] = row.values[theirs]
        else:
            into.values[mine] += row.values[theirs]


# -- the report -------------------------------------------------------------------------------

BY_MANAGER = ("manager_id", "manager")

REPORT = Report(
    name=REPORT_NAME,
    title="Managers",
    description=(
        "Per manager: deals won and lost, revenue and gross profit by month; messages sent"
        " (never automatic ones nor notes), calls, meetings, tasks done and overdue, missed"
        " calls returned within 24 hours, first-response time; the sales plan against the fact; and a side-by-side"
        " comparison."
    ),
    sources=(
        ItemSource("deals", "Deals closed", DEAL_COLUMNS, query=deals_query),
        ItemSource("messages", "Messages sent by managers", MESSAGE_COLUMNS, query=messages_query),
        ItemSource("tasks", "Tasks done and overdue", TASK_COLUMNS, query=tasks_query),
        ItemSource("missed_calls", "Missed calls", MISSED_COLUMNS, query=missed_calls_query),
        ItemSource("plan_fact", "Plans and won deals", PLAN_COLUMNS, query=plan_fact_query),
        ItemSource(
            "first_responses",
            "First responses",
            (*REQUEST_COLUMNS, *MANAGER),
            query=first_responses_query,
        ),
        ItemSource(
            "comparison", "Everything per manager", COMPARISON_COLUMNS, query=comparison_query
        ),
    ),
    sections=(
        Section(
            name="results",
            title="Deals won and lost by month",
            source="deals",
            group_by=(*BY_MANAGER, "month", "currency"),
            measures=(
                Measure("won", "Deals won", "sum", "won"),
                Measure("won_amount", "Revenue (won, net)", "sum", "won_minor", kind="money"),
                Measure("gross_profit", "Gross profit", "sum", "profit_minor", kind="money"),
                Measure("lost", "Deals lost", "sum", "lost"),
                Measure("lost_amount", "Lost amount (net)", "sum", "lost_minor", kind="money"),
                Measure("closed", "Deals closed", "count"),
                Measure("win_rate", "Win rate", "ratio", of=("won", "closed"), kind="percent"),
            ),
            chart="won_amount",
        ),
        Section(
            name="messages",
            title="Messages sent",
            source="messages",
            group_by=(*BY_MANAGER, "channel"),
            measures=(
                Measure("messages", "Messages sent", "count"),
                Measure("contacts", "Clients written to", "distinct", "contact_id"),
            ),
            chart="messages",
        ),
        Section(
            name="tasks",
            title="Calls, meetings and tasks",
            source="tasks",
            group_by=BY_MANAGER,
            measures=(
                Measure("done", "Tasks done", "sum", "done"),
                Measure("calls", "Calls", "sum", "call"),
                Measure("meetings", "Meetings done", "sum", "meeting"),
                Measure("done_late", "Done late", "sum", "done_late"),
                Measure("overdue", "Overdue (open)", "sum", "overdue"),
            ),
            chart="done",
        ),
        Section(
            name="missed_calls",
            title="Missed calls returned",
            source="missed_calls",
            group_by=BY_MANAGER,
            measures=(
                Measure("missed", "Missed calls", "count"),
                Measure("returned", "Returned within 24 h", "sum", "returned"),
                Measure(
                    "returned_share", "Returned", "ratio", of=("returned", "missed"), kind="percent"
                ),
                Measure(
                    "avg_seconds",
                    "Average time to return",
                    "avg",
                    "seconds_to_return",
                    kind="seconds",
                ),
            ),
            chart="returned",
        ),
        Section(
            name="first_response",
            title="First-response time",
            source="first_responses",
            group_by=BY_MANAGER,
            measures=(
                Measure("answered", "First responses", "count"),
                Measure(
                    "avg_business",
                    "Average first response (business hours)",
                    "avg",
                    "first_response_business_seconds",
                    kind="seconds",
                ),
                Measure(
                    "median_business",
                    "Median first response (business hours)",
                    "median",
                    "first_response_business_seconds",
                    kind="seconds",
                ),
                Measure(
                    "median_clock",
                    "Median first response (clock time)",
                    "median",
                    "first_response_seconds",
                    kind="seconds",
                ),
            ),
            chart="median_business",
            note="First responses of the service report, by the user who answered.",
        ),
        Section(
            name="plan",
            title="Plan versus fact",
            source="plan_fact",
            group_by=(*BY_MANAGER, "month", "currency"),
            measures=(
                Measure("plan", "Revenue plan", "sum", "plan_minor", kind="money"),
                Measure("fact", "Revenue", "sum", "fact_minor", kind="money"),
                Measure("done", "Plan done", "ratio", of=("fact", "plan"), kind="percent"),
                Measure(
                    "profit_plan", "Gross profit plan", "sum", "plan_profit_minor", kind="money"
                ),
                Measure("profit_fact", "Gross profit", "sum", "fact_profit_minor", kind="money"),
                Measure(
                    "profit_done",
                    "Gross profit plan done",
                    "ratio",
                    of=("profit_fact", "profit_plan"),
                    kind="percent",
                ),
                Measure("deals_plan", "Deals won plan", "sum", "plan_deals"),
                Measure("deals_fact", "Deals won", "sum", "fact_deals"),
            ),
            chart="done",
        ),
        Section(
            name="comparison",
            title="Managers side by side",
            source="comparison",
            group_by=BY_MANAGER,
            measures=(
                Measure("won", "Deals won", "sum", "won"),
                Measure("lost", "Deals lost", "sum", "lost"),
                Measure("messages", "Messages sent", "sum", "message"),
                Measure("calls", "Calls", "sum", "call"),
                Measure("meetings", "Meetings done", "sum", "meeting"),
                Measure("done", "Tasks done", "sum", "done"),
                Measure("overdue", "Overdue (open)", "sum", "overdue"),
                Measure("done_late", "Done late", "sum", "done_late"),
                Measure("missed", "Missed calls", "sum", "missed"),
                Measure("returned", "Missed calls returned", "sum", "returned"),
                Measure("answered", "First responses", "sum", "answered"),
                Measure(
                    "median_first_response",
                    "Median first response (business hours)",
                    "median",
                    "first_response_business_seconds",
                    kind="seconds",
                ),
            ),
            chart="won",
            order="-won",
            derive=side_by_side,
            derive_from=tuple(name for name, _ in SIDE_BY_SIDE),
        ),
    ),
)
