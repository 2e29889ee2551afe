"""ABC analysis: clients and products classed by their share of revenue and of gross profit.

Revenue, gross profit, clients and the period are those of the turnover report (won deals,
net of VAT, counted at `closed_at`; the client is the deal's company, else its contact).
Each currency is classed on its own: a client buying in RUB and in USD has a class in each.

The classification of one list (one currency, one figure: revenue or profit):

1. Items are sorted by their value, largest first (ties: by the item's key, so the order is
   the same on every run). `total` is the sum of the positive values.
2. An item's share is value / total; its cumulative share is its own share plus the shares
   of every item before it.
3. Class A while the cumulative share is at most `limit_a` (default 80 %); class B while it
   is at most `limit_b` (default 95 %); C after that. An item whose cumulative share lands
   exactly on a limit stays in the upper class (80 % exactly is A).
4. **The item that crosses a limit** — the one whose cumulative share first goes past it —
   goes to the lower class: B for the A limit, C for the B limit (a single item that takes
   the cumulative share past both limits is C).
5. **Except**: an item whose own share alone is above `limit_a` is A even so (the first
   item of a list dominated by one client), since no lower class describes it.
6. An item with a zero or negative value is C (its share is value / total, its cumulative
   share stays where the positive items left it).

Comparisons are exact (integer minor units against the limit as a fraction), so a share of
exactly 80 % is never 80.000001 %.

Sections: clients by revenue and by profit (share, cumulative share, class), products by
revenue and by profit, a summary per class, the products each revenue class buys most (top
`top` per class and currency) and, against `compare_from` / `compare_to` (the earlier period;
by default the period of the same length just before this one), the transitions of each client's class from that period to this one (A→B, ...). A client
without won deals in a period has the class "-" there.

`contact_abc_classes` gives the segments filter each contact's class (its company's class
when it belongs to a company, else its own; "C" without revenue).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import date
from fractions import Fraction
from typing import Any

from threadline.domain.model.errors import InvalidInput
from threadline.projections.base import parse_ts, ts
from threadline.projections.reports.frame import (
    Column,
    FigureRow,
    Item,
    ItemSource,
    Measure,
    Report,
    ReportOption,
    ReportSlice,
    Section,
    period_bounds,
)
from threadline.projections.reports.turnover import (
    LINE_COLUMNS,
    SALE_COLUMNS,
    read_sale_lines,
    read_sales,
)
from threadline.projections.sql import Conditions, ViewReader

REPORT_NAME = "abc"
CLASSES = ("A", "B", "C")
ABSENT = "-"
"""The class of a client in a period in which it won no deal (transitions only)."""

DEFAULTS: dict[str, Any] = {
    "limit_a": 80.0,
    "limit_b": 95.0,
    "top": 5,
    "compare_from": None,
    "compare_to": None,
}


# -- the classification -----------------------------------------------------------------------


def classify(
    values: Iterable[tuple[str, int]], limit_a: float, limit_b: float
) -> dict[str, tuple[float | None, float | None, str]]:
    """Each key's (share, cumulative share, class) for one currency and one figure.

    `values` are (key, value in minor units); shares are 0..1, the limits percent (see the
    module's docstring for the rule, the crossing item and the single-item exception).
    """
    ordered = sorted(values, key=lambda kv: (-kv[1], kv[0]))
    total = sum(v for _, v in ordered if v > 0)
    a, b = Fraction(limit_a) / 100, Fraction(limit_b) / 100
    running = 0
    found: dict[str, tuple[float | None, float | None, str]] = {}
    for key, value in ordered:
        if value <= 0 or total == 0:
            share = None if total == 0 else value / total
            cumulative = None if total == 0 else running / total
            found[key] = (share, cumulative, "C")
            continue
        running += value
        own, upto = Fraction(value, total), Fraction(running, total)
        if upto <= a or own > a:
            grade = "A"
        elif upto <= b:
            grade = "B"
        else:
            grade = "C"
        found[key] = (float(own), float(upto), grade)
    return found


def classify_by_currency(
    values: Iterable[tuple[str, str, int]], limit_a: float, limit_b: float
) -> dict[tuple[str, str], tuple[float | None, float | None, str]]:
    """`classify` per currency: (currency, key, value) in, {(currency, key): ...} out."""
    lists: dict[str, dict[str, int]] = {}
    for currency, key, value in values:
        per = lists.setdefault(currency, {})
        per[key] = per.get(key, 0) + value
    found: dict[tuple[str, str], tuple[float | None, float | None, str]] = {}
    for currency, per in lists.items():
        for key, figures in classify(per.items(), limit_a, limit_b).items():
            found[(currency, key)] = figures
    return found


def client_key(row: Mapping[str, Any]) -> str:
    return f"{row.get('client_kind') or ''}:{row.get('client_id') or ''}"


def product_key(row: Mapping[str, Any]) -> str:
    product_id = row.get("product_id")
    return f"id:{product_id}" if product_id else f"name:{row.get('product') or ''}"


FIGURES = {"revenue": "revenue_minor", "profit": "profit_minor"}


def _option(s: ReportSlice, name: str) -> Any:
    value = s.options.get(name, DEFAULTS[name])
    return DEFAULTS[name] if value is None and DEFAULTS[name] is not None else value


def _limits(s: ReportSlice) -> tuple[float, float]:
    limit_a, limit_b = float(_option(s, "limit_a")), float(_option(s, "limit_b"))
    check_limits(limit_a, limit_b)
    return limit_a, limit_b


def check_limits(limit_a: float, limit_b: float) -> None:
    if not 0 < limit_a < limit_b <= 100:
        raise InvalidInput(
            "limit_a", "limit_a must be below limit_b, both above 0 and at most 100 percent"
        )


def _classes_of(
    items: list[Item], key: Callable[[Mapping[str, Any]], str], figure: str, s: ReportSlice
) -> dict[tuple[str, str], tuple[float | None, float | None, str]]:
    limit_a, limit_b = _limits(s)
    return classify_by_currency(
        ((item["currency"], key(item), int(item[figure])) for item in items), limit_a, limit_b
    )


# -- for the segments filter -----------------------------------------------------------------


def contact_abc_classes(
    db: ViewReader,
    start: str | None,
    end: str | None,
    by: str = "revenue",
    limit_a: float = 80,
    limit_b: float = 95,
) -> dict[str, str]:
    """Every (not merged) contact's ABC class over [start, end) (`ts` texts, None: open).

    A contact of a company has its company's class, any other its own (as a client of its
    own deals); a client without won deals in the period is "C". A client buying in more
    than one currency has a class per currency: the contact gets the best of them.
    `by` is "revenue" or "profit".
    """
    if by not in FIGURES:
        raise InvalidInput("abc_by", "expected revenue or profit")
    check_limits(limit_a, limit_b)
    c = Conditions()
    c.add("d.status = 'won'", [])
    c.add("d.closed_at IS NOT NULL", [])
    c.compare("d.closed_at", ">=", start)
    c.compare("d.closed_at", "<", end)
    column = "net_minor" if by == "revenue" else "profit_minor"
    rows = db.query(
        f"SELECT d.company_id, d.contact_id, d.currency, SUM(d.{column}) AS value"
        f" FROM deals d{c.where} GROUP BY d.company_id, d.contact_id, d.currency",
        c.params,
    )
    values = []
    for r in rows:
        if r["company_id"]:
            key = client_key({"client_kind": "company", "client_id": r["company_id"]})
        elif r["contact_id"]:
            key = client_key({"client_kind": "contact", "client_id": r["contact_id"]})
        else:
            key = client_key({})
        values.append((r["currency"], key, int(r["value"])))
    best: dict[str, str] = {}
    for (_, key), (_, _, grade) in classify_by_currency(values, limit_a, limit_b).items():
        if grade < best.get(key, "D"):
            best[key] = grade
    found: dict[str, str] = {}
    for r in db.query("SELECT id, company_id FROM contacts WHERE merged_into IS NULL"):
        if r["company_id"]:
            key = client_key({"client_kind": "company", "client_id": r["company_id"]})
        else:
            key = client_key({"client_kind": "contact", "client_id": r["id"]})
        found[r["id"]] = best.get(key, "C")
    return found


# -- the report ------------------------------------------------------------------------------


LAST: tuple[float | None, float | None, str] = (None, None, "C")
"""The figures of an item missing from a classification (a deal won between two reads)."""


def _enrich(items: dict[str, list[Item]], s: ReportSlice, db: ViewReader) -> None:
    """Each deal and line gets its client's classes; each line its product's classes."""
    sales, lines = items["sales"], items["lines"]
    by_revenue = _classes_of(sales, client_key, "revenue_minor", s)
    by_profit = _classes_of(sales, client_key, "profit_minor", s)
    products_revenue = _classes_of(lines, product_key, "revenue_minor", s)
    products_profit = _classes_of(lines, product_key, "profit_minor", s)
    for group in (sales, lines):
        for item in group:
            here = (item["currency"], client_key(item))
            item["client_key"] = here[1]
            item["class_revenue"] = by_revenue.get(here, LAST)[2]
            item["class_profit"] = by_profit.get(here, LAST)[2]
    for item in lines:
        here = (item["currency"], product_key(item))
        item["product_key"] = here[1]
        item["product_class_revenue"] = products_revenue.get(here, LAST)[2]
        item["product_class_profit"] = products_profit.get(here, LAST)[2]


def _ranked(
    key: Callable[[Mapping[str, Any]], str], figure: str
) -> Callable[[list[FigureRow], ReportSlice], list[FigureRow]]:
    """A `finish` that adds share, cumulative share and class, per currency, largest first."""

    def finish(rows: list[FigureRow], s: ReportSlice) -> list[FigureRow]:
        limit_a, limit_b = _limits(s)
        classes = classify_by_currency(
            ((r.key["currency"], key(r.key), int(r.values[figure] or 0)) for r in rows),
            limit_a,
            limit_b,
        )
        for r in rows:
            share, cumulative, grade = classes[(r.key["currency"], key(r.key))]
            r.values["share"] = share
            r.values["cumulative"] = cumulative
            r.values["class"] = grade
        return sorted(
            rows,
            key=lambda r: (r.key["currency"], -int(r.values[figure] or 0), key(r.key)),
        )

    return finish


def _top_per_class(rows: list[FigureRow], s: ReportSlice) -> list[FigureRow]:
    top = int(_option(s, "top"))
    ordered = sorted(
        rows,
        key=lambda r: (
            r.key["class_revenue"],
            r.key["currency"],
            -int(r.values["revenue"] or 0),
            product_key(r.key),
        ),
    )
    kept: list[FigureRow] = []
    seen: dict[tuple[str, str], int] = {}
    for r in ordered:
        bucket = (r.key["class_revenue"], r.key["currency"])
        seen[bucket] = seen.get(bucket, 0) + 1
        if seen[bucket] <= top:
            kept.append(r)
    return kept


def _compare_period(s: ReportSlice) -> ReportSlice | None:
    start: date | None = _option(s, "compare_from")
    end: date | None = _option(s, "compare_to")
    if start is None and end is None:
        if s.start is None or s.end is None:
            return None  # the whole history has nothing before it
        # by default, the period of the same length just before this one
        length = parse_ts(s.end) - parse_ts(s.start)
        return replace(s, start=ts(parse_ts(s.start) - length), end=s.start)
    if start is not None and end is not None and start > end:
        raise InvalidInput("compare_from", "the earlier period starts after it ends")
    first, last = period_bounds(start, end, s.timezone)
    return replace(s, start=first, end=last)


def read_transitions(db: ViewReader, s: ReportSlice) -> list[Item]:
    """One item per client and currency with won deals in either period: its two classes."""
    earlier = _compare_period(s)
    if earlier is None:
        _limits(s)
        return []
    now_sales = read_sales(db, s, REPORT_NAME)
    then_sales = read_sales(db, earlier, REPORT_NAME)
    clients: dict[tuple[str, str], Item] = {}
    figures: dict[str, dict[tuple[str, str], dict[str, int]]] = {"now": {}, "then": {}}
    for when, sales in (("now", now_sales), ("then", then_sales)):
        for sale in sales:
            here = (sale["currency"], client_key(sale))
            if here not in clients or when == "now":
                clients[here] = {
                    "client_kind": sale["client_kind"],
                    "client_id": sale["client_id"],
                    "client": sale["client"],
                    "client_group": sale["client_group"],
                    "currency": sale["currency"],
                }
            totals = figures[when].setdefault(here, {"revenue": 0, "profit": 0})
            totals["revenue"] += sale["revenue_minor"]
            totals["profit"] += sale["profit_minor"]
    limit_a, limit_b = _limits(s)
    grades: dict[tuple[str, str], dict[tuple[str, str], str]] = {}
    for when in ("now", "then"):
        for name in ("revenue", "profit"):
            found = classify_by_currency(
                ((c, k, v[name]) for (c, k), v in figures[when].items()), limit_a, limit_b
            )
            grades[(when, name)] = {here: f[2] for here, f in found.items()}
    items: list[Item] = []
    for here in sorted(clients, key=lambda h: (h[0], clients[h]["client"], h[1])):
        item = dict(clients[here])
        for name in ("revenue", "profit"):
            before = grades[("then", name)].get(here, ABSENT)
            after = grades[("now", name)].get(here, ABSENT)
            suffix = "" if name == "revenue" else "_profit"
            item[f"class_before{suffix}"] = before
            item[f"class_now{suffix}"] = after
            item[f"changed{suffix}"] = int(before != after)
            item[f"{name}_before_minor"] = figures["then"].get(here, {}).get(name, 0)
            item[f"{name}_now_minor"] = figures["now"].get(here, {}).get(name, 0)
        items.append(item)
    return items


CLASS_COLUMNS = (
    Column("client_key", "Client key", "id"),
    Column("class_revenue", "Class by revenue"),
    Column("class_profit", "Class by gross profit"),
)

ABC_SALE_COLUMNS = (*SALE_COLUMNS, *CLASS_COLUMNS)
ABC_LINE_COLUMNS = (
    *LINE_COLUMNS,
    *CLASS_COLUMNS,
    Column("product_key", "Product key", "id"),
    Column("product_class_revenue", "Product class by revenue"),
    Column("product_class_profit", "Product class by gross profit"),
)
TRANSITION_COLUMNS = (
    Column("client_kind", "Client kind"),
    Column("client_id", "Client id", "id"),
    Column("client", "Client"),
    Column("client_group", "Client group"),
    Column("currency", "Currency"),
    Column("class_before", "Class before (revenue)"),
    Column("class_now", "Class now (revenue)"),
    Column("changed", "Class changed (revenue)", "flag"),
    Column("class_before_profit", "Class before (gross profit)"),
    Column("class_now_profit", "Class now (gross profit)"),
    Column("changed_profit", "Class changed (gross profit)", "flag"),
    Column("revenue_before_minor", "Revenue before", "money"),
    Column("revenue_now_minor", "Revenue now", "money"),
    Column("profit_before_minor", "Gross profit before", "money"),
    Column("profit_now_minor", "Gross profit now", "money"),
)


def _money() -> tuple[Measure, ...]:
    return (
        Measure("deals", "Deals", "distinct", "deal_id"),
        Measure("revenue", "Revenue", "sum", "revenue_minor", kind="money"),
        Measure("profit", "Gross profit", "sum", "profit_minor", kind="money"),
    )


def _ranking(figure: str) -> tuple[Measure, ...]:
    label = "revenue" if figure == "revenue" else "gross profit"
    return (
        Measure("share", f"Share of {label}", "count", kind="percent"),
        Measure("cumulative", f"Cumulative share of {label}", "count", kind="percent"),
        Measure("class", "Class", "count", kind="text"),
    )


def _class_summary(name: str, title: str, field: str) -> Section:
    return Section(
        name=name,
        title=title,
        source="sales",
        group_by=(field, "currency"),
        measures=(
            Measure("clients", "Clients", "distinct", "client_key"),
            *_money(),
        ),
        chart="revenue" if field == "class_revenue" else "profit",
    )


def _transitions(name: str, title: str, suffix: str) -> Section:
    return Section(
        name=name,
        title=title,
        source="transitions",
        group_by=(f"class_before{suffix}", f"class_now{suffix}", "currency"),
        measures=(
            Measure("clients", "Clients", "count"),
            Measure("changed", "Class changed", "sum", f"changed{suffix}"),
        ),
        chart="clients",
        note=(
            "Against compare_from / compare_to, else the period of the same length just before"
            " this one. '-': no won deal in that period."
        ),
    )


OPTIONS = (
    ReportOption("limit_a", "Class A limit, %", "percent", 80.0, 1, 100),
    ReportOption("limit_b", "Class B limit, %", "percent", 95.0, 1, 100),
    ReportOption("top", "Top products per class", "int", 5, 1, 100),
    ReportOption("compare_from", "Compare with: from", "date", None),
    ReportOption("compare_to", "Compare with: to", "date", None),
)


def _read_abc_sales(db: ViewReader, s: ReportSlice) -> list[Item]:
    _limits(s)
    return read_sales(db, s, REPORT_NAME)


def _read_abc_lines(db: ViewReader, s: ReportSlice) -> list[Item]:
    return read_sale_lines(db, s, REPORT_NAME)


REPORT = Report(
    name=REPORT_NAME,
    title="ABC analysis",
    description=(
        "Clients and products classed A, B or C by their share of revenue and, separately,"
        " of gross profit in the period (per currency; A up to limit_a % of the cumulative"
        " share, B up to limit_b %, C the rest; the item crossing a limit goes to the lower"
        " class unless its own share is above limit_a), the products each class buys most"
        " and the clients whose class changed since an earlier period."
    ),
    sources=(
        ItemSource("sales", "Won deals", ABC_SALE_COLUMNS, _read_abc_sales),
        ItemSource("lines", "Deal lines of won deals", ABC_LINE_COLUMNS, _read_abc_lines),
        ItemSource("transitions", "Clients in either period", TRANSITION_COLUMNS, read_transitions),
    ),
    sections=(
        Section(
            name="clients_revenue",
            title="Clients by revenue",
            source="sales",
            group_by=("client_kind", "client_id", "client", "currency"),
            measures=_money(),
            finish=_ranked(client_key, "revenue"),
            extra=_ranking("revenue"),
            chart="revenue",
        ),
        Section(
            name="clients_profit",
            title="Clients by gross profit",
            source="sales",
            group_by=("client_kind", "client_id", "client", "currency"),
            measures=_money(),
            finish=_ranked(client_key, "profit"),
            extra=_ranking("profit"),
            chart="profit",
        ),
        _class_summary("classes_revenue", "Client classes by revenue", "class_revenue"),
        _class_summary("classes_profit", "Client classes by gross profit", "class_profit"),
        Section(
            name="products_revenue",
            title="Products by revenue",
            source="lines",
            group_by=("product_id", "product", "currency"),
            measures=_money(),
            finish=_ranked(product_key, "revenue"),
            extra=_ranking("revenue"),
            chart="revenue",
        ),
        Section(
            name="products_profit",
            title="Products by gross profit",
            source="lines",
            group_by=("product_id", "product", "currency"),
            measures=_money(),
            finish=_ranked(product_key, "profit"),
            extra=_ranking("profit"),
            chart="profit",
        ),
        Section(
            name="class_products",
            title="What each class buys most",
            source="lines",
            group_by=("class_revenue", "product_id", "product", "currency"),
            measures=(
                Measure("clients", "Clients", "distinct", "client_key"),
                *_money(),
            ),
            finish=_top_per_class,
            chart="revenue",
            note="Clients' class by revenue; the top products per class (option top).",
        ),
        _transitions("transitions", "Class transitions (revenue)", ""),
        _transitions("transitions_profit", "Class transitions (gross profit)", "_profit"),
    ),
    options=OPTIONS,
    enrich=_enrich,
)
