"""Which channels clients use to reach us: inbound contacts per client, channel and month.

An inbound contact is a received message or an incoming call (answered or missed), as
`projections/contact_inbound.py` counts them; replies, automatic messages and notes never
count. Items are one per (contact, channel, business day) with the number of inbound
contacts that day, so every figure is a sum of the items' `inbound` column and the CSV sums
to the figures. Shares: a client's share of a channel is that channel's inbound contacts
over all of the client's inbound contacts in the slice; the overall share is the channel's
over every inbound contact; over time, the channel's share of its month.

Slices: the period (when the contact came in), `channel` (the channel it came in on),
`source` / `utm_campaign` (the contact's first touch: contacts.source_channel, utm_source,
utm_campaign), `group` (the contact's company's client group), `segment`, and
`manager_id` (the contact's responsible). There is no pipeline outside deals: slicing by
pipeline is refused.
"""

from __future__ import annotations

from typing import Any

from threadline.projections.reports.frame import (
    Column,
    FigureRow,
    Item,
    ItemSource,
    Measure,
    Report,
    ReportSlice,
    Section,
    SliceColumns,
    local_day,
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


def read_inbound(db: ViewReader, s: ReportSlice) -> list[Item]:
    """The hour buckets of the slice, added up per contact, channel and business day."""
    c = INBOUND_SLICE.conditions(REPORT_NAME, s)
    rows = db.query(
        "SELECT b.contact_id, b.channel, b.hour, b.count, b.last_at, c.display_name"
        " FROM contact_inbound b LEFT JOIN contacts c ON c.id = b.contact_id"
        f"{c.where} ORDER BY b.hour, b.contact_id, b.channel",
        c.params,
    )
    items: dict[tuple[str, str, str], Item] = {}
    for r in rows:
        day = local_day(r["hour"], s.timezone) or ""
        key = (str(r["contact_id"]), str(r["channel"]), day)
        item = items.get(key)
        if item is None:
            items[key] = {
                "contact_id": key[0],
                "contact": r["display_name"] or "",
                "channel": key[1],
                "day": day,
                "month": day[:7],
                "inbound": int(r["count"]),
                "last_at": r["last_at"],
            }
        else:
            item["inbound"] += int(r["count"])
            item["last_at"] = max(item["last_at"], r["last_at"])
    return sorted(
        items.values(), key=lambda i: (i["day"], i["contact"], i["contact_id"], i["channel"])
    )


def _shares_within(*keys: str) -> Any:
    """A `finish` adding `share`: the row's inbound over its group's (by `keys`; none: all)."""

    def finish(rows: list[FigureRow], s: ReportSlice) -> list[FigureRow]:
        totals: dict[tuple[Any, ...], int] = {}
        for row in rows:
            group = tuple(row.key[k] for k in keys)
            totals[group] = totals.get(group, 0) + int(row.values["inbound"])
        for row in rows:
            whole = totals[tuple(row.key[k] for k in keys)]
            row.values["share"] = row.values["inbound"] / whole if whole else None
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
    sources=(ItemSource("inbound", "Inbound contacts", INBOUND_COLUMNS, read_inbound),),
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
            source="inbound",
            group_by=("channel",),
            measures=(
                Measure("inbound", "Inbound contacts", "sum", "inbound"),
                Measure("clients", "Clients", "distinct", "contact_id"),
            ),
            order="-inbound",
            finish=_shares_within(),
            extra=(SHARE,),
            chart="inbound",
        ),
        Section(
            name="over_time",
            title="Channels by month",
            source="inbound",
            group_by=("month", "channel"),
            measures=(
                Measure("inbound", "Inbound contacts", "sum", "inbound"),
                Measure("clients", "Clients", "distinct", "contact_id"),
            ),
            finish=_shares_within("month"),
            extra=(SHARE,),
            chart="inbound",
        ),
    ),
)
