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
from typing import Any

from threadline.projections.base import parse_ts, ts
from threadline.projections.reports.frame import (
    Column,
    Item,
    ItemSource,
    Measure,
    Report,
    ReportOption,
    ReportSlice,
    Section,
    deal_slice,
    local_month,
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


def _won_deals(db: ViewReader, s: ReportSlice) -> tuple[list[dict[str, Any]], str, list[Any]]:
    c = DEAL_SLICE.conditions(REPORT_NAME, s)
    c.add("d.status = 'won'", [])
    c.add("d.closed_at = w.closed_at", [])  # won then, and not reopened since
    rows = db.query(
        "SELECT d.id, d.title, d.contact_id, d.closed_at, d.manager_id, u.name AS manager,"
        " d.currency, d.net_minor, d.profit_minor FROM source_wins w"
        " JOIN deals d ON d.id = w.deal_id LEFT JOIN users u ON u.id = d.manager_id"
        f"{c.where} ORDER BY d.closed_at, d.id",
        c.params,
    )
    contacts = (
        "SELECT d.contact_id FROM source_wins w JOIN deals d ON d.id = w.deal_id"
        f"{c.where} AND d.contact_id IS NOT NULL"
    )
    return rows, contacts, list(c.params)


def _touches(
    db: ViewReader, s: ReportSlice, contacts: str, params: list[Any], days: int
) -> dict[str, list[tuple[str, str, str, str]]]:
    """contact id -> [(kind, key, name, at)] from N days before the period to its end."""
    since = None
    if s.start:
        since = ts(parse_ts(s.start) - timedelta(days=days))
    window, window_params = "", []
    if since is not None:
        window += " AND {at} >= ?"
        window_params.append(since)
    if s.end is not None:
        window += " AND {at} < ?"
        window_params.append(s.end)
    found: dict[str, list[tuple[str, str, str, str]]] = {}
    rules = {str(r["id"]): str(r["name"]) for r in db.query("SELECT id, name FROM rules")}
    for r in db.query(
        "SELECT t.contact_id, t.kind, t.touch_key, t.at FROM source_touches t"
        f" WHERE t.contact_id IN ({contacts}){window.format(at='t.at')}",
        [*params, *window_params],
    ):
        kind, key = str(r["kind"]), str(r["touch_key"])
        name = KIND_LABELS["call"] if kind == "call" else rules.get(key, key)
        found.setdefault(str(r["contact_id"]), []).append((kind, key, name, str(r["at"])))
    for r in db.query(
        "SELECT r.sent_to, r.campaign_id, r.sent_at, c.name FROM campaign_recipients r"
        " LEFT JOIN campaigns c ON c.id = r.campaign_id"
        f" WHERE r.sent_to IN ({contacts}) AND r.sent_at IS NOT NULL"
        f"{window.format(at='r.sent_at')}",
        [*params, *window_params],
    ):
        key = str(r["campaign_id"])
        found.setdefault(str(r["sent_to"]), []).append(
            ("campaign", key, str(r["name"] or key), str(r["sent_at"]))
        )
    return found


def read_items(db: ViewReader, s: ReportSlice) -> list[Item]:
    days = int(s.option("days"))
    window = timedelta(days=days)
    deals, contacts, params = _won_deals(db, s)
    touches = _touches(db, s, contacts, params, days) if deals else {}
    items: list[Item] = []
    for d in deals:
        won = parse_ts(d["closed_at"])
        latest: dict[tuple[str, str], tuple[str, str]] = {}  # (kind, key) -> (at, name)
        for kind, key, name, at in touches.get(str(d["contact_id"]), []):
            gap = won - parse_ts(at)
            if timedelta(0) < gap <= window and (
                (kind, key) not in latest or at > latest[(kind, key)][0]
            ):
                latest[(kind, key)] = (at, name)
        base = {
            "deal_id": d["id"],
            "deal_title": d["title"],
            "contact_id": d["contact_id"],
            "closed_at": d["closed_at"],
            "month": local_month(d["closed_at"], s.timezone),
            "manager_id": d["manager_id"],
            "manager": d["manager"] or "",
            "currency": d["currency"],
            "revenue_minor": int(d["net_minor"]),
            "profit_minor": int(d["profit_minor"]),
        }
        if not latest:
            items.append(
                {
                    **base,
                    "kind": "none",
                    "touch_key": "",
                    "touch": KIND_LABELS["none"],
                    "touch_at": None,
                    "days_after": None,
                    "first_of_kind": 1,
                }
            )
            continue
        newest_of_kind: dict[str, tuple[str, str]] = {}  # kind -> (at, key): the latest touch
        for (kind, key), (at, _) in latest.items():
            if kind not in newest_of_kind or (at, key) > newest_of_kind[kind]:
                newest_of_kind[kind] = (at, key)
        for (kind, key), (at, name) in sorted(latest.items()):
            items.append(
                {
                    **base,
                    "kind": kind,
                    "touch_key": key,
                    "touch": name,
                    "touch_at": at,
                    "days_after": (won - parse_ts(at)).total_seconds() / DAY,
                    "first_of_kind": int(newest_of_kind[kind] == (at, key)),
                }
            )
    return items


def _of_kind(item: Item) -> bool:
    return bool(item["first_of_kind"])


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
    sources=(ItemSource("wins", "Won deals after touches", COLUMNS, read_items),),
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
            keep=_of_kind,
            measures=MONEY,
            chart="revenue",
            order="-revenue",
        ),
        Section(
            name="by_month",
            title="By month won",
            source="wins",
            group_by=("month", "kind", "currency"),
            keep=_of_kind,
            measures=MONEY,
            chart="revenue",
        ),
    ),
    options=(ReportOption("days", "Days after a touch", "int", 30, minimum=1, maximum=365),),
)
