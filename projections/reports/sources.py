"""Sources and their return: leads, customers, revenue, profit and what acquiring them cost.

Which publication's ad brought the most: per source, per utm campaign and per web form.

- A **lead** is a contact created in the period (merged duplicates left out). Its source is
  its first touch: the utm_source when it has one, else the web form's slug, else the
  channel it first wrote through ("" when none of these is known); its campaign is its
  utm_campaign.
- A **customer** is a lead with at least one won deal (a deal whose contact it is).
- **Revenue** and **gross profit** are the won deals of the period's leads (net of VAT, and
  net minus cost), whenever they were won: the period chooses the leads (a cohort), and
  what the cohort bought is credited to the source that brought it. A deal's own source
  does not matter here; the same deal is credited once, to its contact's source.
- **Acquisition cost** = the leads' own costs (`acquisition_cost` of the contact) + the
  marketing spend entries of the source (and campaign) overlapping the period. An entry
  spreads evenly over its days (both ends included): a period covering 10 of its 31 days
  takes 10/31 of its amount, rounded half up to the minor unit. Without a period, every
  entry counts whole.
- **Cost per lead** = cost / leads, **cost per customer** = cost / customers,
  **return** = (gross profit - cost) / cost, **revenue per cost** = revenue / cost.

Every figure is per currency (currencies are never added). A lead counts in the currency
of its own cost, else of its first won deal, else in the currency most of the report's
money is in (the default currency when there is none). The items are the leads, the won
deals and the spend entries (column `kind`); each section's CSV sums to its figures.

Slices: period, source (the lead's channel, utm_source, utm_campaign or form; an entry's
source or campaign), utm_campaign, channel (the lead's first channel; entries whose source
is that channel), manager (the lead's responsible), pipeline (the pipeline of the lead's
first deal), client group (the lead's company's) and segment (the lead). Marketing spend
belongs to no pipeline, manager, client group or segment: under those slices the leads, their
deals and their own per-lead costs are narrowed and the spend entries are left out (the
section says so), rather than a return computed on costs the slice cannot split.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from threadline.domain.model.money import DEFAULT_CURRENCY
from threadline.projections.base import parse_ts
from threadline.projections.reports.frame import (
    Column,
    ItemQuery,
    ItemSource,
    Measure,
    Report,
    ReportSlice,
    Section,
    SliceColumns,
    is_postgres,
    local_day,
)
from threadline.projections.sql import Conditions, ViewReader

REPORT_NAME = "sources"

LEAD_SLICE = SliceColumns(
    period="c.created_at",
    pipeline_id=(
        "(SELECT d.pipeline_id FROM deals d WHERE d.contact_id = c.id"
        " ORDER BY d.created_at, d.id LIMIT 1)"
    ),
    manager_id="c.responsible_id",
    utm_campaign="c.utm_campaign",
    channel="c.source_channel",
    company_id="c.company_id",
    contact_id="c.id",
)

COLUMNS = (
    Column("kind", "Item"),  # lead, deal or spend
    Column("source", "Source"),
    Column("utm_campaign", "UTM campaign"),
    Column("form", "Form"),
    Column("channel", "Channel"),
    Column("contact_id", "Lead", "id", ref="contact"),
    Column("contact", "Lead name"),
    Column("created_at", "Lead created", "time"),
    Column("deal_id", "Deal", "id", ref="deal"),
    Column("deal_title", "Deal title"),
    Column("closed_at", "Won at", "time"),
    Column("spend_id", "Spend entry", "id", ref="marketing_spend"),
    Column("spend_from", "Spend from", "day"),
    Column("spend_to", "Spend to", "day"),
    Column("spend_days", "Days of the entry in the period", "count"),
    Column("lead", "Leads", "flag"),
    Column("customer", "Customers", "flag"),
    Column("currency", "Currency"),
    Column("revenue_minor", "Revenue", "money"),
    Column("profit_minor", "Gross profit", "money"),
    Column("lead_cost_minor", "Per-lead cost", "money"),
    Column("spend_minor", "Marketing spend", "money"),
    Column("cost_minor", "Acquisition cost", "money"),
    Column("return_minor", "Gross profit less cost", "money"),
)


def period_days(s: ReportSlice) -> tuple[date | None, date | None]:
    """The period as business dates, both inclusive (None: open)."""
    first = local_day(s.start, s.timezone) if s.start else None
    last = None
    if s.end:
        before_end = parse_ts(s.end) - timedelta(microseconds=1)
        last = before_end.astimezone(s.zone).date()
    return (date.fromisoformat(first) if first else None), last


def spend_applies(s: ReportSlice) -> bool:
    """Whether the slice leaves marketing spend whole: spend belongs to a source and a
    campaign, never to a pipeline, a manager, a client group or a segment."""
    return all(value is None for value in (s.pipeline_id, s.manager_id, s.group, s.segment))


def _form_sql(db: ViewReader) -> str:
    """The web form's slug of a contact (`contacts` as `c`): its source JSON's ``form``
    (the JSON is parsed only when it names one)."""
    if is_postgres(db):
        value = "(CAST(c.source AS JSON) ->> 'form')"
    else:
        value = "CAST(json_extract(c.source, '$.form') AS TEXT)"
    return f"COALESCE(CASE WHEN c.source LIKE '%\"form\"%' THEN {value} END, '')"


def _days_sql(db: ViewReader, first: str, last: str) -> str:
    """The days from one date (``2026-03-07`` text) to another, both counted."""
    if is_postgres(db):
        return f"(CAST({last} AS DATE) - CAST({first} AS DATE) + 1)"
    return f"(CAST(julianday({last}) - julianday({first}) AS INTEGER) + 1)"


def _date_literal(day: date) -> str:
    return f"'{day.isoformat()}'"  # a date's own text: nothing else reaches the SQL


def _lead_conditions(db: ViewReader, s: ReportSlice) -> Conditions:
    """The period's leads (`contacts` as `c`): merged ones left out, the slice applied."""
    c = LEAD_SLICE.conditions(REPORT_NAME, replace(s, source=None))
    c.add("c.merged_into IS NULL", [])
    if s.source is not None:
        # the source slice equals the channel, utm_source, utm_campaign or form (never "")
        c.add(
            f"? <> '' AND ? IN (c.source_channel, c.utm_source, c.utm_campaign, {_form_sql(db)})",
            [s.source, s.source],
        )
    return c


def _spend_conditions(s: ReportSlice) -> Conditions:
    """The spend entries (`marketing_spend` as `m`) overlapping the period, removed ones left
    out, the source slices applied."""
    first, last = period_days(s)
    c = Conditions()
    c.add("m.removed = 0", [])
    c.compare("m.ends_on", ">=", first.isoformat() if first else None)
    c.compare("m.starts_on", "<=", last.isoformat() if last else None)
    c.compare("m.utm_campaign", "=", s.utm_campaign)
    c.compare("m.source", "=", s.channel)
    if s.source is not None:
        c.add("? IN (m.source, m.utm_campaign)", [s.source])
    return c


def _spend_days_sql(db: ViewReader, s: ReportSlice) -> str:
    """The days of an entry (`m`) inside the period."""
    first, last = period_days(s)
    inside_from = (
        f"CASE WHEN m.starts_on > {_date_literal(first)} THEN m.starts_on"
        f" ELSE {_date_literal(first)} END"
        if first
        else "m.starts_on"
    )
    inside_to = (
        f"CASE WHEN m.ends_on < {_date_literal(last)} THEN m.ends_on ELSE {_date_literal(last)} END"
        if last
        else "m.ends_on"
    )
    return _days_sql(db, inside_from, inside_to)


# A won deal (`deals` as `w`) that is the first its client won (by the moment, then the id):
# the client's only won deal, the usual case, is told from the index alone.
_FIRST_WON = (
    "((SELECT COUNT(*) FROM deals v WHERE v.contact_id = w.contact_id AND v.status = 'won') = 1"
    " OR NOT EXISTS (SELECT 1 FROM deals v WHERE v.contact_id = w.contact_id"
    " AND v.status = 'won' AND (COALESCE(v.closed_at, '') < COALESCE(w.closed_at, '')"
    " OR (COALESCE(v.closed_at, '') = COALESCE(w.closed_at, '') AND v.id < w.id))))"
)


def _items_sql(db: ViewReader, s: ReportSlice) -> tuple[str, list[Any]]:
    """The items as one SELECT (no UNION: a section's GROUP BY then reads only the columns
    it folds); its first parameter is the fallback currency (of a lead with neither a cost
    nor a won deal).

    `k` is the part: 0 the leads, 1 the spend entries (`m`). A lead is read with its won
    deals `w` (each deal row fetched once); `j` makes each pair a deal item (`j.lead` = 0)
    and the pair of the lead's first won deal (or the lead alone, without one) its lead
    item (`j.lead` = 1), in that deal's currency unless the lead has a cost of its own.
    """
    leads = _lead_conditions(db, s)
    spend = _spend_conditions(s)
    parts = "SELECT 0 AS part UNION ALL SELECT 1" if spend_applies(s) else "SELECT 0 AS part"
    form = _form_sql(db)
    has_cost = (
        "j.lead = 1 AND c.acquisition_cost_minor IS NOT NULL"
        " AND COALESCE(c.acquisition_currency, '') <> ''"
    )
    is_spend = "m.id IS NOT NULL"
    is_deal = "j.lead = 0"
    days = _spend_days_sql(db, s)
    total_days = _days_sql(db, "m.starts_on", "m.ends_on")
    amount = f"(m.amount_minor * {days} * 2 + {total_days}) / (2 * {total_days})"
    sql = (
        f"SELECT CASE WHEN {is_spend} THEN 'spend' WHEN {is_deal} THEN 'deal' ELSE 'lead' END"
        f" AS kind, CASE WHEN {is_spend} THEN m.source ELSE COALESCE(NULLIF(c.utm_source, ''),"
        f" NULLIF({form}, ''), c.source_channel, '') END AS source,"
        f" CASE WHEN {is_spend} THEN m.utm_campaign ELSE COALESCE(c.utm_campaign, '') END"
        f" AS utm_campaign, CASE WHEN {is_spend} THEN (CASE WHEN EXISTS (SELECT 1 FROM forms f"
        f" WHERE f.slug = m.source) THEN m.source ELSE '' END) ELSE {form} END AS form,"
        " COALESCE(c.source_channel, '') AS channel, c.id AS contact_id,"
        " COALESCE(c.display_name, '') AS contact, c.created_at,"
        f" CASE WHEN {is_deal} THEN w.id END AS deal_id,"
        f" CASE WHEN {is_deal} THEN w.title ELSE '' END AS deal_title,"
        f" CASE WHEN {is_deal} THEN w.closed_at END AS closed_at, m.id AS spend_id,"
        " m.starts_on AS spend_from, m.ends_on AS spend_to,"
        f" CASE WHEN {is_spend} THEN {days} END AS spend_days,"
        " CASE WHEN j.lead = 1 THEN 1 ELSE 0 END AS lead,"
        " CASE WHEN j.lead = 1 AND w.id IS NOT NULL THEN 1 ELSE 0 END AS customer,"
        f" CASE WHEN {is_spend} THEN m.currency WHEN {has_cost} THEN c.acquisition_currency"
        " WHEN w.id IS NOT NULL THEN w.currency ELSE ? END AS currency,"
        f" CASE WHEN {is_deal} THEN w.net_minor ELSE 0 END AS revenue_minor,"
        f" CASE WHEN {is_deal} THEN w.profit_minor ELSE 0 END AS profit_minor,"
        f" CASE WHEN {has_cost} THEN c.acquisition_cost_minor ELSE 0 END AS lead_cost_minor,"
        f" CASE WHEN {is_spend} THEN {amount} ELSE 0 END AS spend_minor,"
        f" CASE WHEN {is_spend} THEN {amount} WHEN {has_cost} THEN c.acquisition_cost_minor"
        " ELSE 0 END AS cost_minor,"
        f" CASE WHEN {is_spend} THEN -{amount} WHEN {has_cost} THEN -c.acquisition_cost_minor"
        f" WHEN {is_deal} THEN w.profit_minor ELSE 0 END AS return_minor"
        f" FROM ({parts}) k"
        f" LEFT JOIN marketing_spend m ON k.part = 1 AND {' AND '.join(spend.clauses)}"
        f" LEFT JOIN contacts c ON k.part = 0 AND {' AND '.join(leads.clauses)}"
        " LEFT JOIN deals w ON w.contact_id = c.id AND w.status = 'won'"
        " LEFT JOIN (SELECT 0 AS lead UNION ALL SELECT 1) j ON c.id IS NOT NULL"
        f" AND ((j.lead = 0 AND w.id IS NOT NULL) OR (j.lead = 1 AND (w.id IS NULL OR {_FIRST_WON})))"
        " WHERE m.id IS NOT NULL OR j.lead IS NOT NULL"
    )
    return sql, [*spend.params, *leads.params]


def _fallback_currency(db: ViewReader, sql: str, params: list[Any]) -> str:
    """The currency of a lead with neither a cost nor a won deal: the one most of the
    report's other items are in (leads with their own currency, won deals, spend entries),
    the first of them to appear (leads, deals, entries, each in time order) on a tie; the
    default currency when there is none."""
    counted = db.query(
        f"SELECT currency, COUNT(*) AS n FROM ({sql}) i WHERE currency IS NOT NULL"
        " GROUP BY currency",
        [None, *params],
    )
    if not counted:
        return DEFAULT_CURRENCY
    most = max(int(r["n"]) for r in counted)
    tied = sorted(str(r["currency"]) for r in counted if int(r["n"]) == most)
    if len(tied) == 1:
        return tied[0]
    marks = ", ".join("?" * len(tied))
    first = db.query(
        "SELECT currency, MIN(CASE kind"
        " WHEN 'lead' THEN '0' || created_at || ' ' || contact_id"
        " WHEN 'deal' THEN '1' || COALESCE(closed_at, '') || ' ' || deal_id"
        " ELSE '2' || spend_from || ' ' || source || ' ' || utm_campaign || ' ' || spend_id"
        f" END) AS k FROM ({sql}) i WHERE currency IN ({marks}) GROUP BY currency",
        [None, *params, *tied],
    )
    return str(min(first, key=lambda r: str(r["k"]))["currency"])


def items_query(db: ViewReader, s: ReportSlice) -> ItemQuery:
    """The leads, their won deals and the spend entries (column `kind`)."""
    sql, params = _items_sql(db, s)
    order = (
        "CASE kind WHEN 'lead' THEN 0 WHEN 'deal' THEN 1 ELSE 2 END,"
        " COALESCE(closed_at, created_at, spend_from), contact_id, deal_id, source,"
        " utm_campaign, spend_id"
    )
    return ItemQuery(sql, [_fallback_currency(db, sql, params), *params], order)


MEASURES = (
    Measure("leads", "Leads", "sum", "lead"),
    Measure("customers", "Customers", "sum", "customer"),
    Measure("conversion", "Leads to customers", "ratio", of=("customers", "leads"), kind="percent"),
    Measure("revenue", "Revenue", "sum", "revenue_minor", kind="money"),
    Measure("profit", "Gross profit", "sum", "profit_minor", kind="money"),
    Measure("lead_costs", "Per-lead costs", "sum", "lead_cost_minor", kind="money"),
    Measure("spend", "Marketing spend", "sum", "spend_minor", kind="money"),
    Measure("cost", "Acquisition cost", "sum", "cost_minor", kind="money"),
    Measure("cost_per_lead", "Cost per lead", "ratio", of=("cost", "leads"), kind="money"),
    Measure(
        "cost_per_customer", "Cost per customer", "ratio", of=("cost", "customers"), kind="money"
    ),
    Measure("net_return", "Gross profit less cost", "sum", "return_minor", kind="money"),
    Measure("return", "Return on cost", "ratio", of=("net_return", "cost"), kind="percent"),
    Measure("revenue_per_cost", "Revenue per cost", "ratio", of=("revenue", "cost"), kind="number"),
)

SPEND_NOTE = (
    "Under a pipeline, manager, client group or segment slice marketing spend is left out"
    " (it belongs to none of them); the leads' own costs still count."
)

REPORT = Report(
    name=REPORT_NAME,
    title="Sources and return",
    description=(
        "Leads created in the period per source, utm campaign and form; the leads that"
        " became customers; the revenue and gross profit of their won deals; what acquiring"
        " them cost (per-lead costs and marketing spend prorated by days); cost per lead and"
        " per customer; return on the cost."
    ),
    sources=(
        ItemSource("items", "Leads, won deals and spend entries", COLUMNS, query=items_query),
    ),
    sections=(
        Section(
            name="sources",
            title="By source",
            source="items",
            group_by=("source", "currency"),
            measures=MEASURES,
            chart="profit",
            order="-revenue",
            note=SPEND_NOTE,
        ),
        Section(
            name="campaigns",
            title="By utm campaign",
            source="items",
            group_by=("source", "utm_campaign", "currency"),
            measures=MEASURES,
            chart="profit",
            order="-revenue",
            note=SPEND_NOTE,
        ),
        Section(
            name="forms",
            title="By web form",
            source="items",
            group_by=("form", "currency"),
            where="form <> ''",
            measures=MEASURES,
            chart="leads",
            order="-leads",
            note=SPEND_NOTE,
        ),
    ),
)
