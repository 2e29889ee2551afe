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
  currency in the results and plan sections).

Slices: period, manager and client group narrow everything; pipeline, source and campaign
narrow the deals (results, plan fact) only; channel narrows deals by their first-touch
channel, messages and missed calls by their channel, and leaves task activity out (tasks
have no channel).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from threadline.projections.base import parse_ts, ts
from threadline.projections.reports.frame import (
    Column,
    Item,
    ItemSource,
    Measure,
    Report,
    ReportSlice,
    Section,
    SliceColumns,
    deal_slice,
    local_month,
    seconds_between,
)
from threadline.projections.reports.service import REQUEST_COLUMNS, read_requests
from threadline.projections.sales_plans import sales_plans
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


def read_deals(db: ViewReader, s: ReportSlice) -> list[Item]:
    """Deals won or lost in the period (by `closed_at`)."""
    c = DEAL_SLICE.conditions(REPORT_NAME, s)
    c.add("d.status IN ('won', 'lost')", [])
    c.add("d.closed_at IS NOT NULL", [])
    rows = db.query(
        "SELECT d.id, d.title, d.manager_id, u.name AS manager, d.closed_at, d.status,"
        " d.pipeline_id, d.currency, d.net_minor, d.profit_minor"
        " FROM deals d LEFT JOIN users u ON u.id = d.manager_id"
        f"{c.where} ORDER BY d.closed_at, d.id",
        c.params,
    )
    items = []
    for r in rows:
        won = r["status"] == "won"
        net = int(r["net_minor"])
        items.append(
            {
                "deal_id": r["id"],
                "deal_title": r["title"],
                "manager_id": r["manager_id"],
                "manager": r["manager"] or "",
                "month": local_month(r["closed_at"], s.timezone),
                "closed_at": r["closed_at"],
                "status": r["status"],
                "pipeline_id": r["pipeline_id"],
                "won": int(won),
                "lost": int(not won),
                "closed": 1,
                "currency": r["currency"],
                "won_minor": net if won else 0,
                "lost_minor": 0 if won else net,
                "profit_minor": int(r["profit_minor"]) if won else 0,
            }
        )
    return items


MESSAGE_SLICE = SliceColumns(
    period="m.created_at",
    channel="m.channel",
    company_id="k.company_id",
    contact_id="m.contact_id",
)


def read_messages(db: ViewReader, s: ReportSlice) -> list[Item]:
    """Outbound messages a user asked to send (never automatic ones, never notes)."""
    c = MESSAGE_SLICE.conditions(REPORT_NAME, _activity_slice(s))
    c.add("m.direction = 'outbound'", [])
    c.add("m.actor LIKE 'user:%'", [])
    if s.manager_id is not None:
        c.compare("m.actor", "=", f"user:{s.manager_id}")
    rows = db.query(
        "SELECT m.id, m.conversation_id, m.contact_id, m.channel, m.actor, m.created_at,"
        " u.name AS manager FROM inbox_messages m"
        " LEFT JOIN contacts k ON k.id = m.contact_id"
        " LEFT JOIN users u ON 'user:' || u.id = m.actor"
        f"{c.where} ORDER BY m.created_at, m.id",
        c.params,
    )
    return [
        {
            "message_id": r["id"],
            "conversation_id": r["conversation_id"],
            "contact_id": r["contact_id"],
            "manager_id": str(r["actor"]).partition(":")[2],
            "manager": r["manager"] or "",
            "channel": r["channel"],
            "sent_at": r["created_at"],
            "month": local_month(r["created_at"], s.timezone),
        }
        for r in rows
    ]


TASK_SLICE = SliceColumns(
    manager_id="t.assignee_id",
    company_id="k.company_id",
    contact_id="t.contact_id",
)


def read_tasks(db: ViewReader, s: ReportSlice) -> list[Item]:
    """Tasks done in the period, and open tasks due in the period before `now`."""
    if s.channel is not None:
        return []  # tasks have no channel: a channel's activity is its messages and calls
    activity = replace(_activity_slice(s), manager_id=s.manager_id)
    c = TASK_SLICE.conditions(REPORT_NAME, activity, period=False)
    now = s.now_ts
    done = Conditions().add("t.status = 'done'", [])
    done.compare("t.closed_at", ">=", s.start).compare("t.closed_at", "<", s.end)
    overdue = Conditions().add("t.status = 'open'", []).add("t.due_at < ?", [now])
    overdue.compare("t.due_at", ">=", s.start).compare("t.due_at", "<", s.end)
    c.add(
        f"(({' AND '.join(done.clauses)}) OR ({' AND '.join(overdue.clauses)}))",
        [*done.params, *overdue.params],
    )
    rows = db.query(
        "SELECT t.id, t.type, t.status, t.due_at, t.closed_at, t.assignee_id,"
        " u.name AS manager FROM tasks t"
        " LEFT JOIN contacts k ON k.id = t.contact_id"
        " LEFT JOIN users u ON u.id = t.assignee_id"
        f"{c.where} ORDER BY COALESCE(t.closed_at, t.due_at), t.id",
        c.params,
    )
    items = []
    for r in rows:
        is_done = r["status"] == "done"
        late = is_done and r["due_at"] is not None and r["closed_at"] > r["due_at"]
        items.append(
            {
                "task_id": r["id"],
                "type": r["type"],
                "manager_id": r["assignee_id"],
                "manager": r["manager"] or "",
                "status": r["status"],
                "due_at": r["due_at"],
                "closed_at": r["closed_at"],
                "done": int(is_done),
                "call": int(is_done and r["type"] == "call"),
                "meeting": int(is_done and r["type"] == "meeting"),
                "done_late": int(late),
                "overdue": int(not is_done),
            }
        )
    return items


MISSED_SLICE = SliceColumns(
    period="m.created_at",
    channel="m.channel",
    company_id="k.company_id",
    contact_id="m.contact_id",
)


def first_return(rang_at: str, returns: list[tuple[str, str]]) -> tuple[str, str] | None:
    """The first (time, user id) of `returns` after `rang_at` and within 24 hours of it."""
    start = parse_ts(rang_at)
    limit = ts(start + RETURN_WINDOW)
    found = [r for r in returns if rang_at < r[0] <= limit]
    return min(found) if found else None


def read_missed_calls(db: ViewReader, s: ReportSlice) -> list[Item]:
    """Missed inbound calls in the period, each with who returned it within 24 hours."""
    c = MISSED_SLICE.conditions(REPORT_NAME, _activity_slice(s))
    c.add("m.direction = 'inbound'", [])
    c.add("m.channel = 'voice'", [])
    c.add("m.metadata LIKE ?", ['%"outcome":"missed"%'])
    rows = db.query(
        "SELECT m.id, m.conversation_id, m.contact_id, m.created_at, v.assignee_id"
        " FROM inbox_messages m LEFT JOIN contacts k ON k.id = m.contact_id"
        " LEFT JOIN inbox_conversations v ON v.id = m.conversation_id"
        f"{c.where} ORDER BY m.created_at, m.id",
        c.params,
    )
    if not rows:
        return []
    returns = _returns(db, rows)
    names = {r["id"]: r["name"] for r in db.query("SELECT id, name FROM users")}
    items = []
    for r in rows:
        found = first_return(r["created_at"], returns.get(r["contact_id"], []))
        manager_id = found[1] if found else r["assignee_id"]
        if s.manager_id is not None and manager_id != s.manager_id:
            continue
        items.append(
            {
                "message_id": r["id"],
                "conversation_id": r["conversation_id"],
                "contact_id": r["contact_id"],
                "manager_id": manager_id,
                "manager": names.get(manager_id, "") if manager_id else "",
                "rang_at": r["created_at"],
                "returned_at": found[0] if found else None,
                "missed": 1,
                "returned": int(found is not None),
                "seconds_to_return": seconds_between(r["created_at"], found[0]) if found else None,
            }
        )
    return items


def _returns(db: ViewReader, calls: list[dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    """Per contact, (time, user id) of every user's outbound message and call task done
    between the first missed call and 24 hours after the last."""
    contacts = sorted({r["contact_id"] for r in calls})
    start = min(r["created_at"] for r in calls)
    end = ts(parse_ts(max(r["created_at"] for r in calls)) + RETURN_WINDOW)
    found: dict[str, list[tuple[str, str]]] = {}
    for at in range(0, len(contacts), 400):
        chunk = contacts[at : at + 400]
        marks = ",".join("?" * len(chunk))
        for r in db.query(
            "SELECT contact_id, created_at AS at, actor FROM inbox_messages"
            " WHERE direction = 'outbound' AND actor LIKE 'user:%'"
            f" AND created_at > ? AND created_at <= ? AND contact_id IN ({marks})",
            [start, end, *chunk],
        ):
            user = str(r["actor"]).partition(":")[2]
            found.setdefault(r["contact_id"], []).append((r["at"], user))
        for r in db.query(
            "SELECT contact_id, closed_at AS at, assignee_id FROM tasks"
            " WHERE type = 'call' AND status = 'done' AND assignee_id IS NOT NULL"
            f" AND closed_at > ? AND closed_at <= ? AND contact_id IN ({marks})",
            [start, end, *chunk],
        ):
            found.setdefault(r["contact_id"], []).append((r["at"], r["assignee_id"]))
    return found


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


def read_plan_fact(db: ViewReader, s: ReportSlice) -> list[Item]:
    """The plans of the period's months, one item each (`enrich` adds the won deals)."""
    if s.group is not None:
        return []  # plans have no client: a group slice shows the facts only
    return [
        {
            "kind": "plan",
            "deal_id": None,
            "manager_id": plan.manager_id,
            "manager": plan.manager,
            "month": plan.month,
            "currency": plan.currency,
            "plan_minor": plan.revenue_minor,
            "fact_minor": 0,
            "plan_profit_minor": plan.gross_profit_minor or 0,
            "fact_profit_minor": 0,
            "plan_deals": plan.deals_won or 0,
            "fact_deals": 0,
        }
        for plan in sales_plans(db, manager_id=s.manager_id, months=_months_of(s))
    ]


def _fact_item(deal: Item) -> Item:
    return {
        "kind": "deal",
        "deal_id": deal["deal_id"],
        "manager_id": deal["manager_id"],
        "manager": deal["manager"],
        "month": deal["month"],
        "currency": deal["currency"],
        "plan_minor": 0,
        "fact_minor": deal["won_minor"],
        "plan_profit_minor": 0,
        "fact_profit_minor": deal["profit_minor"],
        "plan_deals": 0,
        "fact_deals": 1,
    }


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


def read_first_responses(db: ViewReader, s: ReportSlice) -> list[Item]:
    """The service report's requests, answered ones, with the responder as the manager.

    A conversation belongs to no pipeline, so a pipeline slice leaves them all (a manager's
    first-response time is theirs whatever the deals); the manager slice is the operator the
    conversation is assigned to, as in the service report.
    """
    answered = read_requests(db, replace(s, pipeline_id=None))
    return [
        {**r, "manager_id": r["responder_id"], "manager": r["responder"]}
        for r in answered
        if r["answered"]
    ]


def _nothing(db: ViewReader, s: ReportSlice) -> list[Item]:
    """A source `enrich` fills from the others (each view is read once per request)."""
    return []


def _flags(kind: str, ref: str, row: Item, **flags: int) -> Item:
    return {
        "kind": kind,
        "ref_id": ref,
        "manager_id": row["manager_id"],
        "manager": row["manager"],
        **{name: flags.get(name, 0) for name in FLAGS},
    }


def combine(items: dict[str, list[Item]], s: ReportSlice, db: ViewReader) -> None:
    """Add the won deals to the plan items, and every item to the comparison."""
    deals = items["deals"]
    items["plan_fact"] = items["plan_fact"] + [_fact_item(d) for d in deals if d["won"]]
    together = [_flags("deal", d["deal_id"], d, won=d["won"], lost=d["lost"]) for d in deals]
    together += [_flags("message", m["message_id"], m, message=1) for m in items["messages"]]
    together += [
        _flags(
            "task",
            t["task_id"],
            t,
            call=t["call"],
            meeting=t["meeting"],
            done=t["done"],
            overdue=t["overdue"],
            done_late=t["done_late"],
        )
        for t in items["tasks"]
    ]
    together += [
        _flags("missed_call", c["message_id"], c, missed=1, returned=c["returned"])
        for c in items["missed_calls"]
    ]
    together += [
        {
            **_flags("request", r["request_id"], r, answered=1),
            "first_response_business_seconds": r["first_response_business_seconds"],
        }
        for r in items["first_responses"]
    ]
    items["comparison"] = together


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
        ItemSource("deals", "Deals closed", DEAL_COLUMNS, read_deals),
        ItemSource("messages", "Messages sent by managers", MESSAGE_COLUMNS, read_messages),
        ItemSource("tasks", "Tasks done and overdue", TASK_COLUMNS, read_tasks),
        ItemSource("missed_calls", "Missed calls", MISSED_COLUMNS, read_missed_calls),
        ItemSource("plan_fact", "Plans and won deals", PLAN_COLUMNS, read_plan_fact),
        ItemSource(
            "first_responses",
            "First responses",
            (*REQUEST_COLUMNS, *MANAGER),
            read_first_responses,
        ),
        ItemSource("comparison", "Everything per manager", COMPARISON_COLUMNS, _nothing),
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
        ),
    ),
    enrich=combine,
)
