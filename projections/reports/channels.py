"""Which channels clients use to reach us: inbound contacts per client, channel and month.

An inbound contact is a received message or an incoming call (answered or missed), as
`projections/contact_inbound.py` counts them; replies, automatic messages and notes never
count. The view keeps them per contact, channel and UTC hour; every figure is a sum of the
items' `inbound` column, so the CSV sums to the figures. The clients section's items are one
per (contact, channel, business day) with the number of inbound contacts that day (its
"days with contacts" counts them); the overall and by-month sections need no days, so their
items are the hour buckets themselves, each with its business day and month: adding the
buckets up into days is a sort the database would repeat for each of their queries. Those two
fold together, in one pass over the buckets by channel and month (`shared_fold`: a period has
few such rows), added up in Python to each one's keys. Shares:
a client's share of a channel is that channel's inbound contacts over all of the client's
inbound contacts in the slice; the overall share is the channel's over every inbound
contact; over time, the channel's share of its month.

Slices: the period (when the contact came in), `channel` (the channel it came in on),
`source` / `utm_campaign` (the contact's first touch: contacts.source_channel, utm_source,
utm_campaign), `group` (the contact's company's client group), `segment`, and
`manager_id` (the contact's responsible). There is no pipeline outside deals: slicing by
pipeline is refused.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from threadline.projections.reports.frame import (
    Column,
    FigureRow,
    ItemQuery,
    ItemSource,
    Measure,
    Report,
    ReportSlice,
    Section,
    SliceColumns,
    local_day_sql,
    local_month_sql,
)
from threadline.projections.sql import ViewReader

REPORT_NAME = "channels"

INBOUND_SLICE = SliceColumns(
    period="b.hour",
    manager_id="c.responsible_id",
    source=("c.source_channel", "c.utm_source", "c.utm_campaign"),
    utm_campaign="c.utm_campaign",
    channel="b.channel",
    company_id="c.company_id",
    contact_id="b.contact_id",
)

INBOUND_COLUMNS = (
    Column("contact_id", "Client id", "id", ref="contact"),
    Column("contact", "Client"),
    Column("channel", "Channel"),
    Column("day", "Day", "day"),
    Column("month", "Month", "month"),
    Column("inbound", "Inbound contacts", "count"),
    Column("last_at", "Last inbound contact", "time"),
)

BUCKET_COLUMNS = (*INBOUND_COLUMNS[:3], Column("hour", "Hour", "time"), *INBOUND_COLUMNS[3:])
"""The view's hour buckets: a day's item split by the hour it came in."""

# The slices read from the contact card (`c`); the others are the bucket's own columns.
_CONTACT_SLICES = ("manager_id", "source", "utm_campaign", "group")


def _buckets(db: ViewReader, s: ReportSlice) -> tuple[str, list[Any]]:
    """The FROM and WHERE of the slice's hour buckets (`b`). The contact card (`c`) is joined
    only when the slice reads it: SQLite keeps a LEFT JOIN that no column uses."""
    c = INBOUND_SLICE.conditions(REPORT_NAME, s)
    card = (
        " LEFT JOIN contacts c ON c.id = b.contact_id"
        if any(getattr(s, name) is not None for name in _CONTACT_SLICES)
        else ""
    )
    return f"contact_inbound b{card}{c.where}", list(c.params)


def inbound_query(db: ViewReader, s: ReportSlice) -> ItemQuery:
    """The hour buckets of the slice, added up per contact, channel and business day; the
    client's name is looked up per day, after the buckets are added up."""
    buckets, params = _buckets(db, s)
    day = local_day_sql(db, "b.hour", s)
    days = (
        "SELECT h.contact_id, h.channel, h.day, CAST(SUM(h.count) AS BIGINT) AS inbound,"
        " MAX(h.last_at) AS last_at FROM (SELECT b.contact_id, b.channel, b.count, b.last_at,"
        f" {day} AS day FROM {buckets}) h GROUP BY h.contact_id, h.channel, h.day"
    )
    sql = (
        "SELECT g.contact_id, COALESCE(n.display_name, '') AS contact, g.channel, g.day,"
        " substr(g.day, 1, 7) AS month, g.inbound, g.last_at"
        f" FROM ({days}) g LEFT JOIN contacts n ON n.id = g.contact_id"
    )
    return ItemQuery(sql, params, "day, contact, contact_id, channel")


def bucket_query(db: ViewReader, s: ReportSlice) -> ItemQuery:
    """The hour buckets of the slice as they are. The name is a scalar subquery: a section
    that does not show it (no section here) does not look it up, its CSV does."""
    buckets, params = _buckets(db, s)
    day = local_day_sql(db, "b.hour", s)
    sql = (
        "SELECT b.contact_id, COALESCE((SELECT n.display_name FROM contacts n"
        " WHERE n.id = b.contact_id), '') AS contact, b.channel, b.hour,"
        f" {day} AS day, {local_month_sql(db, 'b.hour', s)} AS month,"
        f" b.count AS inbound, b.last_at FROM {buckets}"
    )
    return ItemQuery(sql, params, "hour, contact, contact_id, channel")


def _shares_within(*keys: str) -> Any:
    """A `finish` adding `share`: the row's inbound over its group's (by `keys`; none: all)."""
    getter = itemgetter(*keys) if keys else None

    def finish(rows: list[FigureRow], s: ReportSlice) -> list[FigureRow]:
        # thousands of client rows: one pass to add up each group, one to divide
        inbound = [row.values["inbound"] for row in rows]
        if getter is None:
            whole = sum(inbound)
            for row, count in zip(rows, inbound, strict=True):
                row.values["share"] = count / whole if whole else None
            return rows
        groups = [getter(row.key) for row in rows]
        totals: dict[Any, int] = {}
        for key, count in zip(groups, inbound, strict=True):
            totals[key] = totals.get(key, 0) + count
        for row, key, count in zip(rows, groups, inbound, strict=True):
            whole = totals[key]
            row.values["share"] = count / whole if whole else None
        return rows

    return finish


SHARE = Measure("share", "Share", "ratio", of=("inbound", "inbound"), kind="percent")

REPORT = Report(
    name=REPORT_NAME,
    title="Channels",
    description=(
        "Inbound contacts (received messages and incoming calls, missed ones too) per"
        " client and channel with each channel's share of the client's contacts, the same"
        " over all clients, and by month; automatic messages, replies and notes never count."
    ),
    sources=(
        ItemSource("inbound", "Inbound contacts by day", INBOUND_COLUMNS, query=inbound_query),
        ItemSource("buckets", "Inbound contacts by hour", BUCKET_COLUMNS, query=bucket_query),
    ),
    sections=(
        Section(
            name="clients",
            title="Channels of each client",
            source="inbound",
            group_by=("contact_id", "contact", "channel"),
            measures=(
                Measure("inbound", "Inbound contacts", "sum", "inbound"),
                Measure("days", "Days with contacts", "count"),
            ),
            finish=_shares_within("contact_id"),
            extra=(SHARE,),
            chart="inbound",
        ),
        Section(
            name="overall",
            title="Channels over all clients",
            source="buckets",
            group_by=("channel",),
            measures=(
                Measure("inbound", "Inbound contacts", "sum", "inbound"),
                Measure("clients", "Clients", "distinct", "contact_id"),
            ),
            order="-inbound",
            shared_fold=True,  # with over_time: one pass over the buckets
            finish=_shares_within(),
            extra=(SHARE,),
            chart="inbound",
        ),
        Section(
            name="over_time",
            title="Channels by month",
            source="buckets",
            group_by=("month", "channel"),
            measures=(
                Measure("inbound", "Inbound contacts", "sum", "inbound"),
                Measure("clients", "Clients", "distinct", "contact_id"),
            ),
            shared_fold=True,
            finish=_shares_within("month"),
            extra=(SHARE,),
            chart="inbound",
        ),
    ),
)
