"""Turnover: revenue and gross profit of won deals by manager, product, client, group, month.

Revenue is a won deal's net amount (without VAT, `deals.net_minor`); gross profit is its
`profit_minor` (net - cost). Both count in the business month of the deal's `closed_at`,
per currency (a RUB figure and a USD figure are never added together). Only deals whose
status is "won" now count: a deal won and reopened drops out, as it does from the board.

The client of a deal is its company when it has one, else its contact; the client group is
the company's `client_group` ("" for a contact without a company).

Two item sources sum to the same totals: one item per won deal (the manager, client, group
and month sections) and one item per deal line (the product section: the line's own net
and profit; a line without a catalogue product is grouped under its own name). Should a
deal's lines not add up to the deal's figures, one extra item "Deal amount without lines"
carries the difference, so the product section's total always equals the deal total.

Both sources are SQL (the database folds the sections). Names (manager, client, product)
are scalar lookups by primary key in the item SELECT, so a section that does not show one
never reads it, and one grouped by the manager's or client's id too reads it once per row
(`LABELS`), not once per deal. The manager, group and month sections are folded together
(`shared_fold`: few combinations of their keys). The extra "without lines" items are a
second branch of the lines SELECT, added only when some deal of the slice has lines that
do not add up (one probe per report).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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
    local_month_sql,
)
from threadline.projections.sql import Conditions, ViewReader

REPORT_NAME = "turnover"

UNLINED = "Deal amount without lines"
"""The product name of the item carrying what a deal's lines leave out of its figures."""

SALE_SLICE = deal_slice("d.closed_at")

_SALE_FIELDS = (
    Column("deal_id", "Deal", "id", ref="deal"),
    Column("deal_title", "Deal title"),
    Column("closed_at", "Won at", "time"),
    Column("month", "Month", "month"),
    Column("pipeline_id", "Pipeline id", "id", ref="pipeline"),
    Column("manager_id", "Manager id", "id", ref="user"),
    Column("manager", "Manager"),
    Column("client_kind", "Client kind"),
    Column("client_id", "Client id", "id"),
    Column("client", "Client"),
    Column("client_group", "Client group"),
    Column("contact_id", "Contact id", "id", ref="contact"),
)

SALE_COLUMNS = (
    *_SALE_FIELDS,
    Column("currency", "Currency"),
    Column("revenue_minor", "Revenue", "money"),
    Column("profit_minor", "Gross profit", "money"),
)

LINE_COLUMNS = (
    *_SALE_FIELDS,
    Column("line_id", "Line", "id"),
    Column("product_id", "Product id", "id", ref="product"),
    Column("product", "Product"),
    Column("currency", "Currency"),
    Column("revenue_minor", "Revenue", "money"),
    Column("profit_minor", "Gross profit", "money"),
)


HAS_COMPANY = "COALESCE(d.company_id, '') <> ''"
HAS_CONTACT = "COALESCE(d.contact_id, '') <> ''"
"""Whether a sale's client is its company; else (`HAS_CONTACT`) its contact (`deals` as `d`)."""

CLIENT_KEY_SQL = (
    f"CASE WHEN {HAS_COMPANY} THEN 'company:' || d.company_id"
    f" WHEN {HAS_CONTACT} THEN 'contact:' || d.contact_id ELSE ':' END"
)
"""A sale's client as `abc.client_key` spells it (``company:<id>``, ``contact:<id>``, ``:``)."""

PRODUCT_SQL = (
    "CASE WHEN COALESCE(l.product_id, '') <> '' THEN COALESCE(NULLIF("
    "(SELECT p.name FROM products p WHERE p.id = l.product_id), ''), l.name) ELSE l.name END"
)
"""A deal line's product name (`deal_lines` as `l`): the catalogue's, else the line's own."""

PRODUCT_KEY_SQL = (
    "CASE WHEN COALESCE(l.product_id, '') <> '' THEN 'id:' || l.product_id"
    " ELSE 'name:' || l.name END"
)
"""A deal line's product as `abc.product_key` spells it (``id:<id>``, ``name:<line name>``)."""


LABELS = {
    "manager": Label(
        "COALESCE((SELECT u.name FROM users u WHERE u.id = {manager_id}), '')", by=("manager_id",)
    ),
    "client": Label(
        "CASE {client_kind} WHEN 'company' THEN COALESCE("
        "(SELECT co.name FROM companies co WHERE co.id = {client_id}), '')"
        " WHEN 'contact' THEN COALESCE("
        "(SELECT c.display_name FROM contacts c WHERE c.id = {client_id}), '') ELSE '' END",
        by=("client_kind", "client_id"),
    ),
}
"""The names of `sale_fields_sql` as looked up once per grouped row (the same values: the
client kind is "company" exactly when the client id is the company's, "contact" likewise)."""


def sale_fields_sql(db: ViewReader, s: ReportSlice) -> str:
    """The SELECT list of `_SALE_FIELDS` over `deals` as `d` (names by primary key)."""
    month = local_month_sql(db, "d.closed_at", s)
    return (
        "d.id AS deal_id, d.title AS deal_title, d.closed_at,"
        f" {month} AS month, d.pipeline_id, d.manager_id,"
        " COALESCE((SELECT u.name FROM users u WHERE u.id = d.manager_id), '') AS manager,"
        f" CASE WHEN {HAS_COMPANY} THEN 'company' WHEN {HAS_CONTACT} THEN 'contact'"
        " ELSE '' END AS client_kind,"
        f" CASE WHEN {HAS_COMPANY} THEN d.company_id WHEN {HAS_CONTACT} THEN d.contact_id"
        " END AS client_id,"
        f" CASE WHEN {HAS_COMPANY} THEN COALESCE("
        "(SELECT co.name FROM companies co WHERE co.id = d.company_id), '')"
        f" WHEN {HAS_CONTACT} THEN COALESCE("
        "(SELECT c.display_name FROM contacts c WHERE c.id = d.contact_id), '')"
        " ELSE '' END AS client,"
        f" CASE WHEN {HAS_COMPANY} THEN COALESCE("
        "(SELECT co.client_group FROM companies co WHERE co.id = d.company_id), '')"
        " ELSE '' END AS client_group,"
        " d.contact_id"
    )


def won(s: ReportSlice, report: str = REPORT_NAME) -> Conditions:
    """The deals won in the slice (status "won" now, `closed_at` in the period), as `d`."""
    c = SALE_SLICE.conditions(report, s)
    c.add("d.status = 'won'", [])
    c.add("d.closed_at IS NOT NULL", [])
    return c


SALE_ORDER = "closed_at, deal_id"
LINE_ORDER = "closed_at, deal_id, CASE WHEN line_id = '' THEN 1 ELSE 0 END, line_id"


More = Callable[[str], tuple[str, Sequence[object]]]
"""Extra item columns (``, expr AS name`` over `d`, and `l` for lines) and their parameters,
given the SQL of the item's product key (`PRODUCT_KEY_SQL`, or the "without lines" key)."""


def sales_query(
    db: ViewReader, s: ReportSlice, report: str = REPORT_NAME, more: More | None = None
) -> ItemQuery:
    """One item per deal won in the slice."""
    c = won(s, report)
    extra, extra_params = more("NULL") if more else ("", ())
    sql = (
        f"SELECT {sale_fields_sql(db, s)}, d.currency, d.net_minor AS revenue_minor,"
        f" d.profit_minor AS profit_minor{extra} FROM deals d{c.where}"
    )
    return ItemQuery(sql, [*extra_params, *c.params], SALE_ORDER, LABELS)


# A deal whose own figures are not its lines' sums (`deals` as `d`; kept by the deals view).
_UNLINED_DEAL = "d.lines_short = 1"


def has_unlined(db: ViewReader, s: ReportSlice, report: str = REPORT_NAME) -> bool:
    """Whether a deal won in the slice has figures its lines leave out."""
    c = won(s, report)
    c.add(_UNLINED_DEAL, [])
    return bool(db.query(f"SELECT d.id FROM deals d{c.where} LIMIT 1", c.params))


def lines_query(
    db: ViewReader,
    s: ReportSlice,
    report: str = REPORT_NAME,
    more: More | None = None,
    unlined: bool | None = None,
) -> ItemQuery:
    """One item per line of the deals `sales_query` finds, plus what lines leave out (a
    second branch, only when `has_unlined`: `unlined` when the caller has probed it)."""
    c = won(s, report)
    sale = sale_fields_sql(db, s)
    extra, extra_params = more(PRODUCT_KEY_SQL) if more else ("", ())
    sql = (
        f"SELECT {sale}, l.line_id, l.product_id, {PRODUCT_SQL} AS product, d.currency,"
        f" l.net_minor AS revenue_minor, l.profit_minor AS profit_minor{extra}"
        f" FROM deals d JOIN deal_lines l ON l.deal_id = d.id{c.where}"
    )
    params: list[object] = [*extra_params, *c.params]
    if unlined is None:
        unlined = has_unlined(db, s, report)
    if unlined:
        rest = won(s, report)
        rest.add(_UNLINED_DEAL, [])
        extra, extra_params = more(f"'name:{UNLINED}'") if more else ("", ())
        net, profit = (
            f"(SELECT COALESCE(SUM(l.{f}), 0) FROM deal_lines l WHERE l.deal_id = d.id)"
            for f in ("net_minor", "profit_minor")
        )
        sql += (
            f" UNION ALL SELECT {sale}, '' AS line_id, CAST(NULL AS TEXT) AS product_id,"
            f" '{UNLINED}' AS product, d.currency,"
            f" CAST(d.net_minor - {net} AS BIGINT) AS revenue_minor,"
            f" CAST(d.profit_minor - {profit} AS BIGINT) AS profit_minor{extra}"
            f" FROM deals d{rest.where}"
        )
        params += [*extra_params, *rest.params]
    return ItemQuery(sql, params, LINE_ORDER, LABELS)


def money_measures(per_deal: bool = False) -> tuple[Measure, ...]:
    """Deals, revenue, profit and margin; `per_deal`: over items that are deals (one each, so
    counted: no distinct count, which the database folds apart)."""
    return (
        Measure("deals", "Deals", "count")
        if per_deal
        else Measure("deals", "Deals", "distinct", "deal_id"),
        Measure("revenue", "Revenue", "sum", "revenue_minor", kind="money"),
        Measure("profit", "Gross profit", "sum", "profit_minor", kind="money"),
        Measure("margin", "Margin", "ratio", of=("profit", "revenue"), kind="percent"),
    )


REPORT = Report(
    name=REPORT_NAME,
    title="Turnover",
    description=(
        "Revenue (net of VAT) and gross profit (net minus cost) of the deals won in the"
        " period, by manager, product, client, client group and month, per currency."
    ),
    sources=(
        ItemSource("sales", "Won deals", SALE_COLUMNS, query=sales_query),
        ItemSource("lines", "Deal lines of won deals", LINE_COLUMNS, query=lines_query),
    ),
    sections=(
        Section(
            name="by_manager",
            title="By manager",
            source="sales",
            group_by=("manager_id", "manager", "currency"),
            measures=money_measures(per_deal=True),
            chart="revenue",
            order="-revenue",
            shared_fold=True,
        ),
        Section(
            name="by_product",
            title="By product",
            source="lines",
            group_by=("product_id", "product", "currency"),
            measures=money_measures(),
            chart="revenue",
            order="-revenue",
            note="A line without a catalogue product is grouped under its own name.",
        ),
        Section(
            name="by_client",
            title="By client",
            source="sales",
            group_by=("client_kind", "client_id", "client", "currency"),
            measures=money_measures(per_deal=True),
            chart="revenue",
            order="-revenue",
        ),
        Section(
            name="by_group",
            title="By client group",
            source="sales",
            group_by=("client_group", "currency"),
            measures=money_measures(per_deal=True),
            chart="revenue",
            order="-revenue",
            shared_fold=True,
        ),
        Section(
            name="by_month",
            title="By month",
            source="sales",
            group_by=("month", "currency"),
            measures=money_measures(per_deal=True),
            chart="revenue",
            shared_fold=True,
        ),
    ),
)
