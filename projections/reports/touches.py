"""Events and information sources: what was won within N days after a call, a mailing
campaign or a trigger message — "sales after calls, profit after a campaign".

The items are won deals (closed in the period) paired with what touched their client
(the deal's contact) before the win:

- **calls**: a telephony call reported answered, or a call logged by hand (one touch
  source, "calls");
- **a mailing campaign**: the campaign's message to the contact (the campaigns view's
  recipients, at the moment it was sent); one touch source per campaign;
- **a trigger message**: an outbound message a rule asked to send (actor ``rule:<id>``);
  one touch source per rule.

A deal counts once per touch source: with the latest touch of that source before the win,
when the win came at most N days after it (option `days`, default 30; exactly N days
counts). A deal touched by two campaigns counts for each of them, so the rows of
"By campaign, rule or calls" may add up to more than the deals won; "By kind" counts a deal
once per kind (calls, campaigns, triggers), with its latest touch of that kind. Deals won
with no touch within N days are the kind "none", so the kinds compare with all sales.

Revenue is the deal's net amount (without VAT), gross profit its net minus cost, per
currency. Slices: period (the deal's closed_at), pipeline, manager, source / utm campaign /
channel (the deal's own source), client group and segment.
"""

from __future__ import annotations

from datetime import timedelta

from threadline.projections.base import parse_ts, ts
from threadline.projections.reports.frame import (
    Column,
    ItemQuery,
    ItemSource,
    Measure,
    Report,
    ReportOption,
    ReportSlice,
    Section,
    deal_slice,
    is_postgres,
    local_month_sql,
    seconds_sql,
    ts_literal,
)
from threadline.projections.sql import ViewReader

REPORT_NAME = "touches"
DAY = 86400.0
KIND_LABELS = {"call": "Calls", "campaign": "Campaign", "rule": "Trigger", "none": "No touch"}

DEAL_SLICE = deal_slice("w.closed_at")

COLUMNS = (
    Column("deal_id", "Deal", "id", ref="deal"),
    Column("deal_title", "Deal title"),
    Column("contact_id", "Contact", "id", ref="contact"),
    Column("closed_at", "Won at", "time"),
    Column("month", "Month won", "month"),
    Column("manager_id", "Manager id", "id", ref="user"),
    Column("manager", "Manager"),
    Column("kind", "Touch kind"),  # call, campaign, rule, none
    Column("touch_key", "Touch source id", "id"),
    Column("touch", "Touch source"),
    Column("touch_at", "Touched", "time"),
    Column("days_after", "Days from touch to win", "number"),
    Column("first_of_kind", "Latest touch of its kind", "flag"),
    Column("currency", "Currency"),
    Column("revenue_minor", "Revenue", "money"),
    Column("profit_minor", "Gross profit", "money"),
)


def _earlier_sql(db: ViewReader, column: str, days: int) -> str:
    """The `ts` text `days` whole days (of 86,400 seconds) before a `ts` column, exact to
    the microsecond."""
    if is_postgres(db):
        return (
            f"to_char((CAST({column} AS TIMESTAMPTZ) - INTERVAL '1 second' * {days * 86400})"
            " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        )
    # the whole seconds shifted, the microsecond digits of the `ts` text kept
    return f"(strftime('%Y-%m-%dT%H:%M:%S', {column}, '-{days} days') || substr({column}, 20))"


def _in_window(
    at: str, contact: str, since: str, earliest: str | None, client: str = "d.contact_id"
) -> str:
    """A touch (its moment `at`, its client `contact`) of the won deal `d`'s client within
    the N days before the win (`since` on, the win itself left out). `earliest` (N days
    before the period) bounds the index range; `since`, computed per deal, is checked on
    the touches found (`|| ''` keeps it out of the index range: computed once per touch).
    `client` is the deal's client as the index key (NULL: no lookup at all)."""
    bound = f" AND {at} >= {ts_literal(earliest)}" if earliest else ""
    return f"{contact} = {client} AND {at} < d.closed_at{bound} AND {at} || '' >= {since}"


def wins_query(db: ViewReader, s: ReportSlice) -> ItemQuery:
    """The deals won in the period (and not reopened since), each with the latest touch of
    every touch source within N days before the win, or once as "none" without one.

    One SELECT, no UNION (a section's GROUP BY then reads only the columns it folds): `k`
    is the part, 0 the touches of `source_touches` (`t`: calls and trigger messages), 1 the
    campaigns' messages (`r`). A touch is an item when no later touch of its source reached
    the client before the win; it is the latest of its kind when no touch of that kind came
    later (or at the same moment from a greater key). A deal that part 0 finds no touch for
    (`t` NULL) is the item "none" when no campaign's message reached the client either.
    """
    days = int(s.option("days"))
    c = DEAL_SLICE.conditions(REPORT_NAME, s)
    c.add("d.status = 'won'", [])
    c.add("d.closed_at = w.closed_at", [])  # won then, and not reopened since
    since = _earlier_sql(db, "d.closed_at", days)
    earliest = ts(parse_ts(s.start) - timedelta(days=days)) if s.start else None
    # a touch later than one in the window (and before the win) is in the window too
    later = (
        "SELECT 1 FROM source_touches t2 WHERE t2.contact_id = d.contact_id AND t2.at < d.closed_at"
    )
    later_sent = (
        "SELECT 1 FROM campaign_recipients r2 WHERE r2.sent_to = d.contact_id"
        " AND r2.sent_at IS NOT NULL AND r2.sent_at < d.closed_at"
    )
    c.add(
        f"((k.part = 0 AND t.id IS NOT NULL AND NOT EXISTS ({later} AND t2.kind = t.kind"
        " AND t2.touch_key = t.touch_key AND (t2.at > t.at OR (t2.at = t.at AND t2.id > t.id))))"
        " OR (k.part = 0 AND t.id IS NULL AND NOT EXISTS (SELECT 1 FROM campaign_recipients r2"
        f" WHERE r2.sent_at IS NOT NULL AND {_in_window('r2.sent_at', 'r2.sent_to', since, earliest)}))"
        f" OR (k.part = 1 AND r.id IS NOT NULL AND NOT EXISTS ({later_sent}"
        " AND r2.campaign_id = r.campaign_id"
        " AND (r2.sent_at > r.sent_at OR (r2.sent_at = r.sent_at AND r2.id > r.id)))))",
        [],
    )
    first_of_kind = (
        "CASE WHEN k.part = 1 THEN (CASE WHEN EXISTS"
        f" ({later_sent} AND (r2.sent_at > r.sent_at OR (r2.sent_at = r.sent_at"
        " AND r2.campaign_id > r.campaign_id))) THEN 0 ELSE 1 END)"
        " WHEN t.id IS NULL THEN 1"
        f" WHEN EXISTS ({later} AND t2.kind = t.kind"
        " AND (t2.at > t.at OR (t2.at = t.at AND t2.touch_key > t.touch_key))) THEN 0 ELSE 1 END"
    )
    touch_at = "CASE WHEN k.part = 1 THEN r.sent_at ELSE t.at END"

    def part_client(part: int) -> str:
        return f"CASE WHEN k.part = {part} THEN d.contact_id END"

    seconds = seconds_sql(db, touch_at, "d.closed_at")
    calls, none = KIND_LABELS["call"], KIND_LABELS["none"]
    sql = (
        "SELECT d.id AS deal_id, d.title AS deal_title, d.contact_id, d.closed_at,"
        f" {local_month_sql(db, 'd.closed_at', s)} AS month, d.manager_id,"
        " COALESCE(u.name, '') AS manager,"
        " CASE WHEN k.part = 1 THEN 'campaign' WHEN t.id IS NULL THEN 'none' ELSE t.kind END"
        " AS kind, CASE WHEN k.part = 1 THEN r.campaign_id ELSE COALESCE(t.touch_key, '') END"
        " AS touch_key, CASE WHEN k.part = 1 THEN COALESCE(NULLIF(cp.name, ''), r.campaign_id)"
        f" WHEN t.id IS NULL THEN '{none}' WHEN t.kind = 'call' THEN '{calls}'"
        " ELSE COALESCE((SELECT ru.name FROM rules ru WHERE ru.id = t.touch_key), t.touch_key)"
        f" END AS touch, {touch_at} AS touch_at,"
        f" CASE WHEN {touch_at} IS NOT NULL THEN {seconds} / {DAY} END AS days_after,"
        f" {first_of_kind} AS first_of_kind,"
        " d.currency, d.net_minor AS revenue_minor, d.profit_minor"
        " FROM source_wins w JOIN deals d ON d.id = w.deal_id"
        " LEFT JOIN users u ON u.id = d.manager_id"
        " CROSS JOIN (SELECT 0 AS part UNION ALL SELECT 1) k"
        # each part looks its own table up: the other's key is NULL, so it seeks nothing
        " LEFT JOIN source_touches t ON k.part = 0 AND"
        f" {_in_window('t.at', 't.contact_id', since, earliest, part_client(0))}"
        " LEFT JOIN campaign_recipients r ON k.part = 1 AND r.sent_at IS NOT NULL AND"
        f" {_in_window('r.sent_at', 'r.sent_to', since, earliest, part_client(1))}"
        f" LEFT JOIN campaigns cp ON cp.id = r.campaign_id{c.where}"
    )
    return ItemQuery(sql, c.params, "closed_at, deal_id, kind, touch_key")


MONEY = (
    Measure("deals", "Deals won", "count"),
    Measure("revenue", "Revenue", "sum", "revenue_minor", kind="money"),
    Measure("profit", "Gross profit", "sum", "profit_minor", kind="money"),
)

REPORT = Report(
    name=REPORT_NAME,
    title="Events and information sources",
    description=(
        "Revenue and gross profit of deals won within N days after a call, a mailing"
        " campaign or a trigger message, per campaign, rule and calls: a deal counts once"
        " per touch source, with its latest touch before the win."
    ),
    sources=(ItemSource("wins", "Won deals after touches", COLUMNS, query=wins_query),),
    sections=(
        Section(
            name="by_touch",
            title="By campaign, rule or calls",
            source="wins",
            group_by=("kind", "touch_key", "touch", "currency"),
            measures=(
                *MONEY,
                Measure("avg_days", "Average days to win", "avg", "days_after", kind="number"),
            ),
            chart="revenue",
            order="-revenue",
        ),
        Section(
            name="by_kind",
            title="By kind of touch",
            source="wins",
            group_by=("kind", "currency"),
            where="first_of_kind = 1",
            measures=MONEY,
            chart="revenue",
            order="-revenue",
        ),
        Section(
            name="by_month",
            title="By month won",
            source="wins",
            group_by=("month", "kind", "currency"),
            where="first_of_kind = 1",
            measures=MONEY,
            chart="revenue",
        ),
    ),
    options=(ReportOption("days", "Days after a touch", "int", 30, minimum=1, maximum=365),),
)
