"""Clients: how they pay, what they bought and may buy, when we last spoke and on which channel.

A client is a deal's or an invoice's company when it has one, else its contact. Items are
facts about clients, one per invoice, won deal and open deal:

- **Payment discipline** (invoices = issued, not voided, documents of kind invoice with a
  due date, due in the period). An invoice became fully paid on the bank date (`paid_on`)
  of the payment whose allocation brought the allocated sum up to the invoice's total
  (allocations taken in order of their payments' dates). Days late = that day - the due
  date, 0 if on or before it. An invoice not fully paid whose due date is before today
  (the business day of `now`) is *unpaid overdue* and counts as late by today - due date.
  An invoice not fully paid and not yet due is not judged. Average days late is over the
  judged invoices (on-time ones count 0); the on-time share is on time / judged.
- **Revenue** = the net amount (without VAT) of deals won in the period (by `closed_at`).
- **Forecast** = each open deal's net amount x its probability, for deals expected to close
  in the period (every open deal when no period is given), rounded half up per deal.
- **Last contact** = the latest `last_contact_at` of the client's contact (of the company's
  contacts); **preferred channel** = the channel of most inbound contacts (ties: the most
  recent) of the contact, or summed over the company's contacts.

Money sections keep the currency in their key; the discipline section counts invoices of
every currency together (days, not amounts). Slices: pipeline, manager, source, campaign and
channel are the deal's (an invoice's through its deal), group is the client's company's
client group, segment the fact's contact.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from threadline.projections.contact_inbound import inbound_totals, preferred_of
from threadline.projections.reports.frame import (
    Column,
    Item,
    ItemSource,
    Measure,
    Report,
    ReportSlice,
    Section,
    deal_slice,
    local_day,
)
from threadline.projections.sql import ID_CHUNK, ViewReader

REPORT_NAME = "clients"

DEAL_SLICE = deal_slice()

INVOICE_SLICE = replace(deal_slice(), company_id="x.company_id", contact_id="x.contact_id")

FACT_COLUMNS = (
    Column("fact", "Fact"),
    Column("fact_id", "Invoice or deal", "id"),
    Column("title", "Title"),
    Column("client_kind", "Client kind"),
    Column("client_id", "Client id", "id"),
    Column("client", "Client"),
    Column("last_contact_at", "Last contact", "time"),
    Column("preferred_channel", "Preferred channel"),
    Column("currency", "Currency"),
    Column("invoice_minor", "Invoice total", "money"),
    Column("due_on", "Due", "day"),
    Column("paid_on", "Fully paid", "day"),
    Column("judged", "Invoices judged", "flag"),
    Column("on_time", "Paid on time", "flag"),
    Column("late", "Late", "flag"),
    Column("unpaid_overdue", "Unpaid overdue", "flag"),
    Column("days_late", "Days late", "count"),
    Column("won", "Won deals", "flag"),
    Column("open", "Open deals", "flag"),
    Column("revenue_minor", "Revenue (net)", "money"),
    Column("forecast_minor", "Forecast (weighted)", "money"),
)


def _client(row: dict[str, Any]) -> dict[str, Any]:
    if row["company_id"]:
        return {
            "client_kind": "company",
            "client_id": str(row["company_id"]),
            "client": row["company_name"] or "",
        }
    return {
        "client_kind": "contact",
        "client_id": str(row["contact_id"] or ""),
        "client": row["contact_name"] or "",
    }


def _blank(fact: str, fact_id: str, title: str, currency: str) -> Item:
    return {
        "fact": fact,
        "fact_id": fact_id,
        "title": title,
        "currency": currency,
        "invoice_minor": 0,
        "due_on": None,
        "paid_on": None,
        "judged": 0,
        "on_time": 0,
        "late": 0,
        "unpaid_overdue": 0,
        "days_late": None,
        "won": 0,
        "open": 0,
        "revenue_minor": 0,
        "forecast_minor": 0,
        "last_contact_at": None,
        "preferred_channel": "",
    }


def _fully_paid_days(db: ViewReader, totals: dict[str, int]) -> dict[str, str]:
    """The day each invoice became fully paid (invoices not fully paid are left out)."""
    ids = sorted(totals)
    allocations: dict[str, list[tuple[str, int]]] = {}
    for start in range(0, len(ids), ID_CHUNK):
        chunk = ids[start : start + ID_CHUNK]
        marks = ",".join("?" * len(chunk))
        rows = db.query(
            "SELECT a.target_id, a.amount_minor, p.paid_on FROM payment_allocations a"
            " JOIN payments p ON p.id = a.payment_id"
            f" WHERE a.target_kind = 'invoice' AND a.target_id IN ({marks})",
            chunk,
        )
        for r in rows:
            allocations.setdefault(str(r["target_id"]), []).append(
                (str(r["paid_on"])[:10], int(r["amount_minor"]))
            )
    paid: dict[str, str] = {}
    for invoice_id, parts in allocations.items():
        running = 0
        for day, amount in sorted(parts):
            running += amount
            if running >= totals[invoice_id]:
                paid[invoice_id] = day
                break
    return paid


def read_invoices(db: ViewReader, s: ReportSlice) -> list[Item]:
    c = INVOICE_SLICE.conditions(REPORT_NAME, s, period=False)
    c.add("x.kind = 'invoice' AND x.status = 'issued' AND x.due_on IS NOT NULL", [])
    c.compare("x.due_on", ">=", local_day(s.start, s.timezone))
    c.compare("x.due_on", "<", local_day(s.end, s.timezone))
    rows = db.query(
        "SELECT x.id, x.display_number, x.due_on, x.currency, x.total_minor, x.company_id,"
        " x.contact_id, co.name AS company_name, ct.display_name AS contact_name"
        " FROM documents x LEFT JOIN deals d ON d.id = x.deal_id"
        " LEFT JOIN companies co ON co.id = x.company_id"
        " LEFT JOIN contacts ct ON ct.id = x.contact_id"
        f"{c.where} ORDER BY x.due_on, x.id",
        c.params,
    )
    paid = _fully_paid_days(db, {str(r["id"]): int(r["total_minor"]) for r in rows})
    today = date.fromisoformat(local_day(s.now_ts, s.timezone) or s.now.date().isoformat())
    items = []
    for r in rows:
        invoice_id = str(r["id"])
        due = date.fromisoformat(str(r["due_on"])[:10])
        item = _blank("invoice", invoice_id, r["display_number"], r["currency"])
        item.update(_client(r))
        item["invoice_minor"] = int(r["total_minor"])
        item["due_on"] = due.isoformat()
        paid_on = paid.get(invoice_id)
        if paid_on is not None:
            late = max((date.fromisoformat(paid_on) - due).days, 0)
            item.update(paid_on=paid_on, judged=1, days_late=late)
            item.update(on_time=int(late == 0), late=int(late > 0))
        elif due < today:
            item.update(judged=1, late=1, unpaid_overdue=1, days_late=(today - due).days)
        items.append(item)
    return items


def read_deals(db: ViewReader, s: ReportSlice) -> list[Item]:
    won = DEAL_SLICE.conditions(REPORT_NAME, s, period=False)
    won.add("d.status = 'won'", [])
    won.compare("d.closed_at", ">=", s.start)
    won.compare("d.closed_at", "<", s.end)
    open_ = DEAL_SLICE.conditions(REPORT_NAME, s, period=False)
    open_.add("d.status = 'open'", [])
    if s.start is not None or s.end is not None:
        open_.add("d.expected_close IS NOT NULL", [])
        open_.compare("d.expected_close", ">=", local_day(s.start, s.timezone))
        open_.compare("d.expected_close", "<", local_day(s.end, s.timezone))
    select = (
        "SELECT d.id, d.title, d.status, d.currency, d.net_minor, d.probability,"
        " d.company_id, d.contact_id, co.name AS company_name, ct.display_name AS contact_name"
        " FROM deals d LEFT JOIN companies co ON co.id = d.company_id"
        " LEFT JOIN contacts ct ON ct.id = d.contact_id"
    )
    rows = db.query(f"{select}{won.where} ORDER BY d.closed_at, d.id", won.params)
    rows += db.query(f"{select}{open_.where} ORDER BY d.expected_close, d.id", open_.params)
    items = []
    for r in rows:
        if not r["company_id"] and not r["contact_id"]:
            continue  # a deal without a client is nobody's
        net = int(r["net_minor"])
        item = _blank(
            "won deal" if r["status"] == "won" else "open deal",
            str(r["id"]),
            r["title"],
            r["currency"],
        )
        item.update(_client(r))
        if r["status"] == "won":
            item.update(won=1, revenue_minor=net)
        else:
            item.update(open=1, forecast_minor=(net * int(r["probability"]) + 50) // 100)
        items.append(item)
    return items


def read_facts(db: ViewReader, s: ReportSlice) -> list[Item]:
    return [item for item in read_invoices(db, s) + read_deals(db, s) if item["client_id"]]


def _in_chunks(db: ViewReader, select: str, column: str, ids: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for start in range(0, len(ids), ID_CHUNK):
        chunk = ids[start : start + ID_CHUNK]
        marks = ",".join("?" * len(chunk))
        rows.extend(db.query(f"{select} WHERE {column} IN ({marks})", chunk))
    return rows


def enrich_clients(items: dict[str, list[Item]], s: ReportSlice, db: ViewReader) -> None:
    """Each fact gets its client's last contact and preferred channel."""
    facts = items["facts"]
    contacts = sorted({i["client_id"] for i in facts if i["client_kind"] == "contact"})
    companies = sorted({i["client_id"] for i in facts if i["client_kind"] == "company"})
    members: dict[str, list[str]] = {f"contact:{c}": [c] for c in contacts}
    last: dict[str, str | None] = {}
    select = "SELECT id, company_id, last_contact_at, merged_into FROM contacts"
    for r in _in_chunks(db, select, "id", contacts):
        last[f"contact:{r['id']}"] = r["last_contact_at"]
    for r in _in_chunks(db, select, "company_id", companies):
        if r["merged_into"]:
            continue  # folded into another contact: its survivor speaks for it
        key = f"company:{r['company_id']}"
        members.setdefault(key, []).append(str(r["id"]))
        seen = last.get(key)
        if r["last_contact_at"] and (seen is None or r["last_contact_at"] > seen):
            last[key] = r["last_contact_at"]
    totals = inbound_totals(db, {c for ids in members.values() for c in ids})
    by_contact: dict[str, list[Any]] = {}
    for t in totals:
        by_contact.setdefault(t.contact_id, []).append(t)
    preferred = {
        key: preferred_of(t for c in ids for t in by_contact.get(c, []))
        for key, ids in members.items()
    }
    for item in facts:
        key = f"{item['client_kind']}:{item['client_id']}"
        item["last_contact_at"] = last.get(key)
        item["preferred_channel"] = preferred.get(key) or ""


CLIENT_KEY = ("client_kind", "client_id", "client", "last_contact_at", "preferred_channel")

REPORT = Report(
    name=REPORT_NAME,
    title="Clients",
    description=(
        "Per client (company, else contact): payment discipline of invoices due in the period"
        " (days late, share paid on time, unpaid overdue invoices), revenue of deals won in"
        " the period, the probability-weighted forecast of open deals, the last contact and"
        " the preferred channel."
    ),
    sources=(ItemSource("facts", "Invoices and deals", FACT_COLUMNS, read_facts),),
    sections=(
        Section(
            name="discipline",
            title="Payment discipline",
            source="facts",
            group_by=CLIENT_KEY,
            keep=lambda item: item["fact"] == "invoice",
            measures=(
                Measure("invoices", "Invoices", "count"),
                Measure("judged", "Invoices judged", "sum", "judged"),
                Measure("on_time", "Paid on time", "sum", "on_time"),
                Measure("late", "Late", "sum", "late"),
                Measure("unpaid_overdue", "Unpaid overdue", "sum", "unpaid_overdue"),
                Measure(
                    "on_time_share",
                    "Share paid on time",
                    "ratio",
                    of=("on_time", "judged"),
                    kind="percent",
                ),
                Measure("avg_days_late", "Average days late", "avg", "days_late", kind="number"),
            ),
            order="-avg_days_late",
            chart="avg_days_late",
        ),
        Section(
            name="money",
            title="Revenue and forecast",
            source="facts",
            group_by=(*CLIENT_KEY, "currency"),
            keep=lambda item: item["fact"] != "invoice",
            measures=(
                Measure("won", "Won deals", "sum", "won"),
                Measure("revenue", "Revenue (net)", "sum", "revenue_minor", kind="money"),
                Measure("open", "Open deals", "sum", "open"),
                Measure("forecast", "Forecast (weighted)", "sum", "forecast_minor", kind="money"),
            ),
            order="-revenue",
            chart="revenue",
        ),
    ),
    enrich=enrich_clients,
)
