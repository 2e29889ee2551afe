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

Every figure is folded by the database: the facts are one SELECT (invoices, won and open
deals), each fact carrying its client's last contact and preferred channel as lookups and
subqueries (a contact's preferred channel as `contact_preferred` keeps it, a company's
ranked the same way over its contacts' `contact_inbound_totals`), so no item is built in
Python.

Money sections keep the currency in their key; the discipline section counts invoices of
every currency together (days, not amounts). Slices: pipeline, manager, source, campaign and
channel are the deal's (an invoice's through its deal), group is the client's company's
client group, segment the fact's contact.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from threadline.projections.reports.frame import (
    Column,
    ItemQuery,
    ItemSource,
    Label,
    Measure,
    Report,
    ReportSlice,
    Section,
    deal_slice,
    is_postgres,
    local_day,
    seconds_sql,
)
from threadline.projections.sql import ViewReader

REPORT_NAME = "clients"

_DAY = re.compile(r"\d{4}-\d\d-\d\d")

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


# Who a fact's client is: its company when it has one, else its contact ('': nobody's).
def _client_columns(company: str, contact: str) -> str:
    has_company = f"COALESCE({company}, '') <> ''"
    return (
        f"CASE WHEN {has_company} THEN 'company' ELSE 'contact' END AS client_kind,"
        f" CASE WHEN {has_company} THEN {company} ELSE COALESCE({contact}, '') END AS client_id"
    )


def _bytewise(db: ViewReader, expression: str) -> str:
    """Texts compared by code point, as Python compares them (PostgreSQL: the C collation)."""
    return f'{expression} COLLATE "C"' if is_postgres(db) else expression


def _day_literal(value: str) -> str:
    """A ``YYYY-MM-DD`` text as a SQL literal (checked to be one: nothing else reaches the SQL)."""
    if not _DAY.fullmatch(value):
        raise ValueError(f"not a day: {value!r}")
    return f"'{value}'"


def _days_sql(db: ViewReader, start: str, end: str) -> str:
    """Whole days from one ``YYYY-MM-DD`` text to another (SQL expressions)."""
    midnight = "'T00:00:00.000000Z'"
    seconds = seconds_sql(db, f"({start} || {midnight})", f"({end} || {midnight})")
    return f"CAST({seconds} / 86400 AS BIGINT)"


# The day an invoice became fully paid: its allocations in the order of their payments' bank
# days (then amounts), the first whose running sum reaches the invoice's total.
_FULLY_PAID = (
    "(SELECT MIN(w.day) FROM (SELECT substr(p.paid_on, 1, 10) AS day,"
    " SUM(a.amount_minor) OVER (ORDER BY substr(p.paid_on, 1, 10), a.amount_minor"
    " ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running"
    " FROM payment_allocations a JOIN payments p ON p.id = a.payment_id"
    " WHERE a.target_kind = 'invoice' AND a.target_id = x.id) w"
    " WHERE w.running >= x.total_minor)"
)

_NO_LIMIT = 2**63 - 1

# An invoice's deal is joined only for the slices that are the deal's.
_DEAL_DIMENSIONS = ("pipeline_id", "manager_id", "source", "utm_campaign", "channel")


def _invoices_sql(db: ViewReader, s: ReportSlice) -> tuple[str, list[Any]]:
    c = INVOICE_SLICE.conditions(REPORT_NAME, s, period=False)
    c.add("x.kind = 'invoice' AND x.status = 'issued' AND x.due_on IS NOT NULL", [])
    c.compare("x.due_on", ">=", local_day(s.start, s.timezone))
    c.compare("x.due_on", "<", local_day(s.end, s.timezone))
    deal = (
        " LEFT JOIN deals d ON d.id = x.deal_id"
        if any(getattr(s, name) is not None for name in _DEAL_DIMENSIONS)
        else ""
    )
    invoices = (
        "SELECT x.id, x.display_number, x.currency, x.total_minor,"
        f" substr(x.due_on, 1, 10) AS due_on, {_FULLY_PAID} AS paid_on,"
        f" {_client_columns('x.company_id', 'x.contact_id')}"
        # a LIMIT keeps this SELECT apart from the one below (merged into it, the fully paid
        # day would be computed once for every use of it)
        f" FROM documents x{deal}{c.where} LIMIT {_NO_LIMIT}"
    )
    # judged: fully paid, or not and overdue (due before today); late by the paid day or today
    today = _day_literal(local_day(s.now_ts, s.timezone) or s.now.date().isoformat())
    overdue = f"(v.paid_on IS NULL AND v.due_on < {today})"
    sql = (
        "SELECT 'invoice' AS fact, v.id AS fact_id, v.display_number AS title, v.client_kind,"
        " v.client_id, v.currency, v.total_minor AS invoice_minor, v.due_on,"
        f" v.paid_on, CASE WHEN v.paid_on IS NOT NULL OR {overdue} THEN 1 ELSE 0 END AS judged,"
        " CASE WHEN v.paid_on <= v.due_on THEN 1 ELSE 0 END AS on_time,"
        f" CASE WHEN v.paid_on > v.due_on OR {overdue} THEN 1 ELSE 0 END AS late,"
        f" CASE WHEN {overdue} THEN 1 ELSE 0 END AS unpaid_overdue,"
        f" CASE WHEN v.paid_on > v.due_on THEN {_days_sql(db, 'v.due_on', 'v.paid_on')}"
        " WHEN v.paid_on IS NOT NULL THEN 0"
        f" WHEN {overdue} THEN {_days_sql(db, 'v.due_on', today)} END AS days_late,"
        " 0 AS won, 0 AS open, 0 AS revenue_minor, 0 AS forecast_minor"
        f" FROM ({invoices}) v"
    )
    return sql, c.params


def _deals_sql(s: ReportSlice, won: bool) -> tuple[str, list[Any]]:
    c = DEAL_SLICE.conditions(REPORT_NAME, s, period=False)
    if won:
        c.add("d.status = 'won'", [])
        c.compare("d.closed_at", ">=", s.start)
        c.compare("d.closed_at", "<", s.end)
    elif s.start is None and s.end is None:
        c.add("d.status = 'open'", [])
    else:
        # read through the (status, expected_close) index: a period's few open deals
        c.add("d.status = 'open'", [])
        c.add("d.expected_close IS NOT NULL", [])
        c.compare("d.expected_close", ">=", local_day(s.start, s.timezone))
        c.compare("d.expected_close", "<", local_day(s.end, s.timezone))
    forecast = "(d.net_minor * d.probability + 50) / 100"
    sql = (
        f"SELECT '{'won deal' if won else 'open deal'}' AS fact, d.id AS fact_id,"
        f" d.title, {_client_columns('d.company_id', 'd.contact_id')}, d.currency,"
        " 0 AS invoice_minor, NULL AS due_on, NULL AS paid_on, 0 AS judged, 0 AS on_time,"
        " 0 AS late, 0 AS unpaid_overdue, NULL AS days_late,"
        f" {int(won)} AS won, {int(not won)} AS open,"
        f" {'d.net_minor' if won else '0'} AS revenue_minor,"
        f" {'0' if won else forecast} AS forecast_minor"
        f" FROM deals d{c.where}"
    )
    return sql, c.params


# What a client's row shows is a function of the client (`{client_kind}`, `{client_id}`):
# the items carry it as lookups (read only by the drill-down and the CSV), a section that
# groups by the client looks it up once per client row (`Label`).
_CLIENT_BY = ("client_kind", "client_id")
_COMPANY = "{client_kind} = 'company'"
# a company's contacts; a merged one is folded into its survivor, which speaks for it
_MEMBERS = "m.company_id = {client_id} AND (m.merged_into IS NULL OR m.merged_into = '')"

_CLIENT_NAME = (
    f"COALESCE(CASE WHEN {_COMPANY} THEN (SELECT co.name FROM companies co"
    " WHERE co.id = {client_id}) ELSE (SELECT ct.display_name FROM contacts ct"
    " WHERE ct.id = {client_id}) END, '')"
)

_LAST_CONTACT = (
    f"CASE WHEN {_COMPANY} THEN (SELECT MAX(m.last_contact_at) FROM contacts m"
    f" WHERE {_MEMBERS}) ELSE (SELECT ct.last_contact_at FROM contacts ct"
    " WHERE ct.id = {client_id}) END"
)


def _preferred_channel_sql(db: ViewReader) -> str:
    """The channel of most inbound contacts; a tie: the most recent, then the later name
    (contact_inbound's `_rank`), summed over a company's contacts; a contact's own is kept
    ranked so in contact_preferred."""
    company_channel = (
        f"CASE WHEN EXISTS (SELECT 1 FROM contacts m WHERE {_MEMBERS})"
        " THEN (SELECT t.channel FROM contacts m JOIN contact_inbound_totals t"
        f" ON t.contact_id = m.id WHERE {_MEMBERS} GROUP BY t.channel"
        f" ORDER BY SUM(t.count) DESC, {_bytewise(db, 'MAX(t.last_at)')} DESC,"
        f" {_bytewise(db, 't.channel')} DESC LIMIT 1) END"
    )
    contact_channel = "SELECT p.channel FROM contact_preferred p WHERE p.contact_id = {client_id}"
    return f"COALESCE(CASE WHEN {_COMPANY} THEN {company_channel} ELSE ({contact_channel}) END, '')"


def _client_labels(db: ViewReader) -> dict[str, Label]:
    return {
        "client": Label(_CLIENT_NAME, by=_CLIENT_BY),
        "last_contact_at": Label(_LAST_CONTACT, by=_CLIENT_BY),
        "preferred_channel": Label(_preferred_channel_sql(db), by=_CLIENT_BY),
    }


def facts_query(db: ViewReader, s: ReportSlice) -> ItemQuery:
    """Invoices due, deals won and open deals expected in the period. Each fact's client's
    name, last contact and preferred channel are lookups by the client: the sections group
    by the client and look them up once per client row (labels), not per fact."""
    parts = [_invoices_sql(db, s), _deals_sql(s, won=True), _deals_sql(s, won=False)]
    facts = " UNION ALL ".join(sql for sql, _ in parts)
    labels = _client_labels(db)
    of_fact = {"client_kind": "f.client_kind", "client_id": "f.client_id"}
    looked_up = ", ".join(
        f"{labels[name].sql.format(**of_fact)} AS {name}"
        for name in ("client", "last_contact_at", "preferred_channel")
    )
    sql = (
        f"SELECT f.fact, f.fact_id, f.title, f.client_kind, f.client_id, {looked_up},"
        " f.currency, f.invoice_minor, f.due_on, f.paid_on, f.judged, f.on_time, f.late,"
        " f.unpaid_overdue, f.days_late, f.won, f.open, f.revenue_minor, f.forecast_minor"
        f" FROM ({facts}) f WHERE f.client_id <> ''"
    )
    params = [p for _, ps in parts for p in ps]
    return ItemQuery(sql, params, "fact, due_on, fact_id", labels=labels)


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
    sources=(ItemSource("facts", "Invoices and deals", FACT_COLUMNS, query=facts_query),),
    sections=(
        Section(
            name="discipline",
            title="Payment discipline",
            source="facts",
            group_by=CLIENT_KEY,
            where="fact = 'invoice'",
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
            where="fact <> 'invoice'",
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
)
