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

import json
from collections import Counter
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from threadline.domain.model.money import DEFAULT_CURRENCY
from threadline.projections.base import parse_ts
from threadline.projections.marketing_spend import SpendFilter, spend_entries
from threadline.projections.reports.frame import (
    Column,
    Item,
    ItemSource,
    Measure,
    Report,
    ReportSlice,
    Section,
    SliceColumns,
    local_day,
)
from threadline.projections.sql import ID_CHUNK, ViewReader

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


def _form_of(source_json: str | None) -> str:
    try:
        value = json.loads(source_json or "{}")
    except ValueError:
        return ""
    return str(value.get("form") or "") if isinstance(value, dict) else ""


def _blank_item(kind: str) -> Item:
    return {
        "kind": kind,
        "source": "",
        "utm_campaign": "",
        "form": "",
        "channel": "",
        "contact_id": None,
        "contact": "",
        "created_at": None,
        "deal_id": None,
        "deal_title": "",
        "closed_at": None,
        "spend_id": None,
        "spend_from": None,
        "spend_to": None,
        "spend_days": None,
        "lead": 0,
        "customer": 0,
        "currency": None,
        "revenue_minor": 0,
        "profit_minor": 0,
        "lead_cost_minor": 0,
        "spend_minor": 0,
        "cost_minor": 0,
        "return_minor": 0,
    }


def _read_leads(db: ViewReader, s: ReportSlice) -> list[Item]:
    c = LEAD_SLICE.conditions(REPORT_NAME, replace(s, source=None))
    c.add("c.merged_into IS NULL", [])
    rows = db.query(
        "SELECT c.id, c.display_name, c.created_at, c.source, c.source_channel, c.utm_source,"
        " c.utm_campaign, c.acquisition_cost_minor, c.acquisition_currency FROM contacts c"
        f"{c.where} ORDER BY c.created_at, c.id",
        c.params,
    )
    leads = []
    for r in rows:
        form = _form_of(r["source"])
        channel = r["source_channel"] or ""
        utm_source = r["utm_source"] or ""
        campaign = r["utm_campaign"] or ""
        if s.source is not None and s.source not in {channel, utm_source, campaign, form} - {""}:
            continue
        item = _blank_item("lead")
        cost = r["acquisition_cost_minor"]
        has_cost = cost is not None and bool(r["acquisition_currency"])
        item.update(
            source=utm_source or form or channel,
            utm_campaign=campaign,
            form=form,
            channel=channel,
            contact_id=r["id"],
            contact=r["display_name"],
            created_at=r["created_at"],
            lead=1,
            currency=r["acquisition_currency"] if has_cost else None,
            lead_cost_minor=int(cost) if has_cost else 0,
            cost_minor=int(cost) if has_cost else 0,
            return_minor=-int(cost) if has_cost else 0,
        )
        leads.append(item)
    return leads


def _read_won_deals(db: ViewReader, leads: list[Item]) -> list[Item]:
    by_contact = {lead["contact_id"]: lead for lead in leads}
    ids = sorted(by_contact)
    rows: list[dict[str, Any]] = []
    for start in range(0, len(ids), ID_CHUNK):
        chunk = ids[start : start + ID_CHUNK]
        marks = ",".join("?" * len(chunk))
        rows.extend(
            db.query(
                "SELECT id, title, contact_id, closed_at, currency, net_minor, profit_minor"
                f" FROM deals WHERE status = 'won' AND contact_id IN ({marks})",
                chunk,
            )
        )
    rows.sort(key=lambda r: (r["closed_at"] or "", r["id"]))
    deals = []
    for r in rows:
        lead = by_contact[r["contact_id"]]
        lead["customer"] = 1
        if lead["currency"] is None:
            lead["currency"] = r["currency"]  # the first won deal's currency
        item = _blank_item("deal")
        profit = int(r["profit_minor"])
        item.update(
            source=lead["source"],
            utm_campaign=lead["utm_campaign"],
            form=lead["form"],
            channel=lead["channel"],
            contact_id=lead["contact_id"],
            contact=lead["contact"],
            created_at=lead["created_at"],
            deal_id=r["id"],
            deal_title=r["title"],
            closed_at=r["closed_at"],
            currency=r["currency"],
            revenue_minor=int(r["net_minor"]),
            profit_minor=profit,
            return_minor=profit,
        )
        deals.append(item)
    return deals


def _read_spend(db: ViewReader, s: ReportSlice) -> list[Item]:
    first, last = period_days(s)
    forms = {str(r["slug"]) for r in db.query("SELECT slug FROM forms")}
    items = []
    for entry in spend_entries(db, SpendFilter(first=first, last=last)):
        if s.utm_campaign is not None and entry.utm_campaign != s.utm_campaign:
            continue
        if s.channel is not None and entry.source != s.channel:
            continue
        if s.source is not None and s.source not in (entry.source, entry.utm_campaign):
            continue
        days, amount = entry.prorated_minor(first, last)
        if days <= 0:
            continue
        item = _blank_item("spend")
        item.update(
            source=entry.source,
            utm_campaign=entry.utm_campaign,
            form=entry.source if entry.source in forms else "",
            spend_id=entry.id,
            spend_from=entry.starts_on,
            spend_to=entry.ends_on,
            spend_days=days,
            currency=entry.currency,
            spend_minor=amount,
            cost_minor=amount,
            return_minor=-amount,
        )
        items.append(item)
    return items


def read_items(db: ViewReader, s: ReportSlice) -> list[Item]:
    leads = _read_leads(db, s)
    deals = _read_won_deals(db, leads)
    spend = _read_spend(db, s) if spend_applies(s) else []
    money = Counter(i["currency"] for i in (*leads, *deals, *spend) if i["currency"])
    fallback = money.most_common(1)[0][0] if money else DEFAULT_CURRENCY
    for lead in leads:
        if lead["currency"] is None:
            lead["currency"] = fallback
    return [*leads, *deals, *spend]


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
    sources=(ItemSource("items", "Leads, won deals and spend entries", COLUMNS, read_items),),
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
            keep=lambda item: bool(item["form"]),
            measures=MEASURES,
            chart="leads",
            order="-leads",
            note=SPEND_NOTE,
        ),
    ),
)
