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

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import replace
from datetime import date
from fractions import Fraction
from typing import Any

from threadline.domain.model.errors import InvalidInput
from threadline.projections.base import parse_ts, ts
from threadline.projections.reports.frame import (
    Column,
    Derive,
    FigureRow,
    Item,
    ItemQuery,
    ItemSource,
    Measure,
    Report,
    ReportOption,
    ReportSlice,
    Section,
    SectionResult,
    folded,
    in_background,
    period_bounds,
)
from threadline.projections.reports.turnover import (
    CLIENT_KEY_SQL,
    HAS_COMPANY,
    HAS_CONTACT,
    LINE_COLUMNS,
    SALE_COLUMNS,
    has_unlined,
    lines_query,
    sales_query,
)
from threadline.projections.sql import Conditions, ViewReader, rows_with_ids

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
    # x / total <= limit / 100, exactly: limit as a fraction, compared crosswise in integers
    a, b = Fraction(limit_a) / 100, Fraction(limit_b) / 100
    a_top, a_bottom = a.numerator * total, a.denominator
    b_top, b_bottom = b.numerator * total, b.denominator
    running = 0
    found: dict[str, tuple[float | None, float | None, str]] = {}
    for key, value in ordered:
        if value <= 0 or total == 0:
            share = None if total == 0 else value / total
            cumulative = None if total == 0 else running / total
            found[key] = (share, cumulative, "C")
            continue
        running += value
        if running * a_bottom <= a_top or value * a_bottom > a_top:
            grade = "A"
        elif running * b_bottom <= b_top:
            grade = "B"
        else:
            grade = "C"
        found[key] = (value / total, running / total, grade)
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


Classes = dict[tuple[str, str], tuple[float | None, float | None, str]]


def _once(db: ViewReader, s: ReportSlice, name: str, compute: Callable[[], Any]) -> Any:
    """`compute()`, once per report run: the transitions, both SQL sources and their classes
    read the same clients' figures (the run's memo, `ReportSlice.run`, keeps them)."""
    return s.run.once(name, s, compute)


def _client_figures(db: ViewReader, s: ReportSlice, ranked: bool = False) -> list[Item]:
    """Each client's revenue and profit per currency in the slice: `ranked`, from the fold of
    the clients' ranking when the report run folds it (the report's own period); else one
    GROUP BY in SQL (`_summed_clients`: an earlier period, a drill-down, a page of one
    section)."""

    def compute() -> list[Item]:
        ranking = folded(REPORT, "clients_revenue", s)
        if ranking is None:
            return _summed_clients(db, s).result()
        return [
            {
                "currency": row["currency"],
                "client_kind": row["client_kind"] or "",
                "client_id": row["client_id"] or None,
                "client_key": client_key(row),
                "revenue": row["m_revenue"],
                "profit": row["m_profit"],
            }
            for row in ranking
        ]

    if not ranked:
        return _summed_clients(db, s).result()
    rows: list[Item] = _once(db, s, "client_figures ranked", compute)
    return rows


def _summed_clients(db: ViewReader, s: ReportSlice) -> Future[list[Item]]:
    """Each client's figures in the slice as one GROUP BY by the client's key only (its kind
    and id read from the key; no names), on the folding threads once per run."""

    def compute() -> list[Item]:
        q = sales_query(db, s, REPORT_NAME, _client_key_column)
        rows = db.query(
            "SELECT currency, client_key, SUM(revenue_minor) AS revenue,"
            f" SUM(profit_minor) AS profit FROM ({q.sql}) i GROUP BY currency, client_key",
            q.params,
        )
        for row in rows:  # the key is "<kind>:<id>" (":" without a client: no id)
            row["client_kind"], _, client_id = row["client_key"].partition(":")
            row["client_id"] = client_id or None
        return rows

    found: Future[list[Item]] = in_background(s, "summed clients", compute)
    return found


def prepare_transitions(db: ViewReader, s: ReportSlice) -> None:
    """The earlier period's figures, started on the folding threads before the run's folds
    are awaited (the transitions read them once this period's clients are classed)."""
    earlier = _compare_period(s)
    if earlier is not None:
        _summed_clients(db, earlier)


PRODUCT_GRADES = "product_grades"
"""The run memo's name of the products' classes (both products' `finish`es rank the same rows)."""

GRADES = "client_grades"
"""The run memo's name of the clients' classes (`_client_grades`, the clients' `finish`)."""


def _client_grades(db: ViewReader, s: ReportSlice, ranked: bool = True) -> tuple[Classes, Classes]:
    """The clients' classes by revenue and by profit in the slice (once per run; `ranked`:
    the report's own period, see `_client_figures`)."""
    found: tuple[Classes, Classes] = _once(
        db, s, GRADES, lambda: _classes(_client_figures(db, s, ranked), "client_key", s)
    )
    return found


def _client_names(db: ViewReader, rows: Iterable[Item]) -> dict[str, tuple[str, str]]:
    """Each client's name and client group by its key (as turnover's items name them)."""
    ids: dict[str, set[str]] = {"company": set(), "contact": set()}
    for row in rows:
        if row["client_kind"] in ids:
            ids[row["client_kind"]].add(row["client_id"])
    found: dict[str, tuple[str, str]] = {}
    for r in rows_with_ids(db, "SELECT id, name, client_group FROM companies", ids["company"]):
        found[f"company:{r['id']}"] = (r["name"] or "", r["client_group"] or "")
    for r in rows_with_ids(db, "SELECT id, display_name FROM contacts", ids["contact"]):
        found[f"contact:{r['id']}"] = (r["display_name"] or "", "")
    return found


NONE: tuple[float | None, float | None, str] = (None, None, ABSENT)
"""The figures of a client without won deals in a period (transitions only)."""


def _client_key_column(product_key: str) -> tuple[str, Sequence[object]]:
    return f", {CLIENT_KEY_SQL} AS client_key", ()


def _classes(rows: list[Item], key: str, s: ReportSlice) -> tuple[Classes, Classes]:
    """The classes by revenue and by profit of folded rows (`key`: their key column)."""
    limit_a, limit_b = _limits(s)
    return tuple(  # type: ignore[return-value]
        classify_by_currency(
            ((r["currency"], r[key], int(r[figure])) for r in rows), limit_a, limit_b
        )
        for figure in ("revenue", "profit")
    )


_PLAIN = re.compile(r"[^?\\\x00]*")
"""A text that may be a SQL literal: no `?` (the PostgreSQL placeholder), no backslash."""


def _text(value: str, params: list[object]) -> str:
    """A key as SQL: a literal (quotes doubled) where it may be one, else a parameter (keys
    are ids: a class's list may hold more of them than a statement takes parameters)."""
    if _PLAIN.fullmatch(value):
        return "'" + value.replace("'", "''") + "'"
    params.append(value)
    return "?"


def _class_sql(classes: Classes, key_sql: str, params: list[object]) -> str:
    """A CASE giving each item its class by (currency, key): the A and B keys listed (an
    IN list is a lookup in SQL), every other key C (as a client without won deals)."""
    listed: dict[str, list[str]] = {"A": [], "B": []}
    for (currency, key), (_, _, grade) in sorted(classes.items()):
        if grade in listed:
            listed[grade].append(_text(f"{currency}|{key}", params))
    here = f"d.currency || '|' || ({key_sql})"
    branches = "".join(
        f" WHEN {here} IN ({', '.join(texts)}) THEN '{grade}'"
        for grade, texts in listed.items()
        if texts
    )
    return f"CASE{branches} ELSE 'C' END" if branches else "'C'"


def _client_class_sql(classes: Classes, params: list[object]) -> str:
    """A sale's client class (`deals` as `d`) as a CASE by currency and client kind over the
    client's id: the A and B ids listed (an IN list is a lookup; no key text is built per
    item), every other client C (as a client without won deals)."""
    listed: dict[str, dict[str, dict[str, list[str]]]] = {}
    for (currency, key), (_, _, grade) in sorted(classes.items()):
        if grade in ("A", "B"):
            kind, _, client_id = key.partition(":")
            grades = listed.setdefault(currency, {}).setdefault(kind, {})
            grades.setdefault(grade, []).append(client_id)
    if not listed:
        return "'C'"

    def by_id(column: str, grades: Mapping[str, list[str]]) -> str:
        branches = "".join(
            f" WHEN {column} IN ({', '.join(_text(i, params) for i in ids)}) THEN '{grade}'"
            for grade, ids in sorted(grades.items())
        )
        return f"CASE{branches} ELSE 'C' END" if branches else "'C'"

    currencies = ""
    for currency, kinds in listed.items():
        currencies += f" WHEN {_text(currency, params)} THEN CASE"
        currencies += f" WHEN {HAS_COMPANY} THEN {by_id('d.company_id', kinds.get('company', {}))}"
        currencies += f" WHEN {HAS_CONTACT} THEN {by_id('d.contact_id', kinds.get('contact', {}))}"
        nobody = kinds.get("", {})  # the sales without a client: key ":"
        currencies += f" ELSE '{min(nobody, default='C')}' END"
    return f"CASE d.currency{currencies} ELSE 'C' END"


def _client_classes(db: ViewReader, s: ReportSlice) -> tuple[str, list[object]]:
    """The client key and both client classes as item columns over `d` (once per run)."""

    def compute() -> tuple[str, list[object]]:
        by_revenue, by_profit = _client_grades(db, s)
        params: list[object] = []
        revenue = _client_class_sql(by_revenue, params)
        profit = _client_class_sql(by_profit, params)
        return (
            f", {CLIENT_KEY_SQL} AS client_key, {revenue} AS class_revenue,"
            f" {profit} AS class_profit",
            params,
        )

    found: tuple[str, list[object]] = _once(db, s, "client_classes", compute)
    return found


CLIENT_CLASSES = frozenset({"class_revenue", "class_profit"})
PRODUCT_CLASSES = frozenset({"product_class_revenue", "product_class_profit"})


def abc_sales_query(db: ViewReader, s: ReportSlice) -> ItemQuery:
    """Turnover's won deals, each with its client's classes (classified first, per client)."""
    columns, params = _client_classes(db, s)
    return sales_query(db, s, REPORT_NAME, lambda _: (columns, params))


def abc_sales_fold(db: ViewReader, s: ReportSlice, needed: frozenset[str]) -> ItemQuery:
    """The won deals as a fold reads them: without the clients' classes unless it needs
    them (the clients' rankings fold without waiting for the classification)."""
    if needed & CLIENT_CLASSES:
        return abc_sales_query(db, s)
    return sales_query(db, s, REPORT_NAME, _client_key_column)


def abc_lines_query(db: ViewReader, s: ReportSlice) -> ItemQuery:
    """Turnover's deal lines, each with its client's classes and its product's."""
    return _lines_query(db, s, client_classes=True, product_classes=True)


def abc_lines_fold(db: ViewReader, s: ReportSlice, needed: frozenset[str]) -> ItemQuery:
    """The deal lines as a fold reads them: the classes only where the fold needs them (no
    section groups by a product's class: the products are classed once, by `finish`)."""
    return _lines_query(
        db,
        s,
        client_classes=bool(needed & CLIENT_CLASSES),
        product_classes=bool(needed & PRODUCT_CLASSES),
    )


def _lines_query(
    db: ViewReader, s: ReportSlice, client_classes: bool, product_classes: bool
) -> ItemQuery:
    unlined: bool = _once(db, s, "unlined", lambda: has_unlined(db, s, REPORT_NAME))
    columns, params = (
        _client_classes(db, s) if client_classes else (f", {CLIENT_KEY_SQL} AS client_key", [])
    )

    def product_key(key_sql: str) -> tuple[str, Sequence[object]]:
        return f", {key_sql} AS product_key", ()

    if not product_classes:
        return lines_query(
            db, s, REPORT_NAME, lambda key_sql: (columns + product_key(key_sql)[0], params), unlined
        )
    q = lines_query(db, s, REPORT_NAME, product_key, unlined)
    rows = db.query(
        "SELECT currency, product_key, SUM(revenue_minor) AS revenue,"
        f" SUM(profit_minor) AS profit FROM ({q.sql}) i GROUP BY currency, product_key",
        q.params,
    )
    by_revenue, by_profit = _classes(rows, "product_key", s)

    def more(key_sql: str) -> tuple[str, Sequence[object]]:
        own: list[object] = list(params)
        revenue = _class_sql(by_revenue, key_sql, own)
        profit = _class_sql(by_profit, key_sql, own)
        return (
            f"{columns}, {key_sql} AS product_key, {revenue} AS product_class_revenue,"
            f" {profit} AS product_class_profit",
            own,
        )

    return lines_query(db, s, REPORT_NAME, more, unlined)


def _ranked(
    key: Callable[[Mapping[str, Any]], str], figure: str, memo: str | None = None
) -> Callable[[list[FigureRow], ReportSlice], list[FigureRow]]:
    """A `finish` that adds share, cumulative share and class, per currency, largest first.

    `memo`: the name under which the run keeps the same rows' classes by revenue and by
    profit, classified already (the clients': the class columns of the items need them
    first); they are classified here only when the run has not.
    """
    index = tuple(FIGURES).index(figure)

    def finish(rows: list[FigureRow], s: ReportSlice) -> list[FigureRow]:
        def own() -> tuple[Classes, ...]:
            limit_a, limit_b = _limits(s)
            return tuple(
                classify_by_currency(
                    ((r.key["currency"], key(r.key), int(r.values[f] or 0)) for r in rows),
                    limit_a,
                    limit_b,
                )
                for f in FIGURES
            )

        everything: tuple[Classes, ...] = own() if memo is None else s.run.once(memo, s, own)
        classes = everything[index]
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
    """One item per client and currency with won deals in either period: its two classes
    (each period's figures and classes read once per run: the classes of the sales are
    those of this period)."""
    return _transitions_items(db, s, listed=True)


def fold_transitions(db: ViewReader, s: ReportSlice) -> list[Item]:
    """`read_transitions` for the sections' fold: the classes and the currency alone."""
    return _transitions_items(db, s, listed=False)


def _transitions_items(db: ViewReader, s: ReportSlice, listed: bool) -> list[Item]:
    earlier = _compare_period(s)
    if earlier is None:
        _limits(s)
        return []
    # one figures row per (currency, client key) and period: the key is what they group by
    then = {(r["currency"], r["client_key"]): r for r in _client_figures(db, earlier)}
    now = {(r["currency"], r["client_key"]): r for r in _client_figures(db, s, ranked=True)}
    (then_revenue, then_profit), (now_revenue, now_profit) = (
        _client_grades(db, earlier, ranked=False),
        _client_grades(db, s),
    )
    names = _client_names(db, [*then.values(), *now.values()]) if listed else {}
    nobody: dict[str, Any] = {"revenue": 0, "profit": 0}
    items: list[Item] = []
    for here in {**then, **now}:
        revenue_before = then_revenue.get(here, NONE)[2]
        revenue_now = now_revenue.get(here, NONE)[2]
        profit_before = then_profit.get(here, NONE)[2]
        profit_now = now_profit.get(here, NONE)[2]
        item: Item = {
            "currency": here[0],
            "class_before": revenue_before,
            "class_now": revenue_now,
            "changed": int(revenue_before != revenue_now),
            "class_before_profit": profit_before,
            "class_now_profit": profit_now,
            "changed_profit": int(profit_before != profit_now),
        }
        if listed:  # what only the listing shows (a fold groups by the classes alone)
            before, after = then.get(here, nobody), now.get(here, nobody)
            row = after if here in now else before
            client, group = names.get(here[1], ("", ""))
            item.update(
                client_kind=row["client_kind"],
                client_id=row["client_id"],
                client=client,
                client_group=group,
                revenue_before_minor=int(before["revenue"]),
                revenue_now_minor=int(after["revenue"]),
                profit_before_minor=int(before["profit"]),
                profit_now_minor=int(after["profit"]),
            )
        items.append(item)
    if listed:
        items.sort(key=lambda i: (i["currency"], i["client"], client_key(i)))
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


def _money(per_deal: bool = False) -> tuple[Measure, ...]:
    """Deals, revenue and profit; `per_deal`: over items that are deals (one each: counted)."""
    return (
        Measure("deals", "Deals", "count")
        if per_deal
        else Measure("deals", "Deals", "distinct", "deal_id"),
        Measure("revenue", "Revenue", "sum", "revenue_minor", kind="money"),
        Measure("profit", "Gross profit", "sum", "profit_minor", kind="money"),
    )


def _buyers() -> tuple[Measure, ...]:
    """The figures of what a class buys: its buyers, deals and money."""
    return (Measure("clients", "Clients", "distinct", "client_key"), *_money())


def _ranking(figure: str) -> tuple[Measure, ...]:
    label = "revenue" if figure == "revenue" else "gross profit"
    return (
        Measure("share", f"Share of {label}", "count", kind="percent"),
        Measure("cumulative", f"Cumulative share of {label}", "count", kind="percent"),
        Measure("class", "Class", "count", kind="text"),
    )


def _class_summary(name: str, title: str, field: str, clients: str) -> Section:
    return Section(
        name=name,
        title=title,
        source="sales",
        group_by=(field, "currency"),
        measures=(
            Measure("clients", "Clients", "distinct", "client_key"),
            *_money(per_deal=True),
        ),
        chart="revenue" if field == "class_revenue" else "profit",
        derive=_summed_classes(field, clients),
        derive_from=(clients,),
    )


def _summed_classes(field: str, clients: str) -> Derive:
    """A class summary added up from the clients' ranking (`clients`): each client row is
    one client of one currency with its class, so a class's clients are its rows, its
    deals and money their sums (a run folds the sales once for both)."""

    def derive(results: Mapping[str, SectionResult]) -> tuple[list[FigureRow], FigureRow]:
        sums: dict[tuple[str, str], list[int]] = {}  # clients, deals, revenue, profit, items
        every: set[tuple[Any, Any]] = set()
        for client in results[clients].rows:
            key, values = client.key, client.values
            here = (values["class"], key["currency"])
            sum_ = sums.get(here)
            if sum_ is None:
                sum_ = sums[here] = [0, 0, 0, 0, 0]
            sum_[0] += 1
            sum_[1] += values["deals"]
            sum_[2] += values["revenue"]
            sum_[3] += values["profit"]
            sum_[4] += client.items
            every.add((key["client_kind"] or "", key["client_id"] or ""))
        rows = [
            FigureRow(
                key={field: grade, "currency": currency},
                values=dict(zip(_SUMMED, figures[:4], strict=True)),
                items=figures[4],
            )
            for (grade, currency), figures in sums.items()
        ]
        everything = [sum(figures[i] for figures in sums.values()) for i in range(5)]
        everything[0] = len(every)
        total = FigureRow(
            key={}, values=dict(zip(_SUMMED, everything[:4], strict=True)), items=everything[4]
        )
        return rows, total

    return derive


_SUMMED = ("clients", "deals", "revenue", "profit")


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
        ItemSource(
            "sales", "Won deals", ABC_SALE_COLUMNS, query=abc_sales_query, fold=abc_sales_fold
        ),
        ItemSource(
            "lines",
            "Deal lines of won deals",
            ABC_LINE_COLUMNS,
            query=abc_lines_query,
            fold=abc_lines_fold,
        ),
        ItemSource(
            "transitions",
            "Clients in either period",
            TRANSITION_COLUMNS,
            read_transitions,
            read_folded=fold_transitions,
            prepare=prepare_transitions,
        ),
    ),
    sections=(
        Section(
            name="clients_revenue",
            title="Clients by revenue",
            source="sales",
            group_by=("client_kind", "client_id", "client", "currency"),
            measures=_money(per_deal=True),
            finish=_ranked(client_key, "revenue", GRADES),
            extra=_ranking("revenue"),
            chart="revenue",
        ),
        Section(
            name="clients_profit",
            title="Clients by gross profit",
            source="sales",
            group_by=("client_kind", "client_id", "client", "currency"),
            measures=_money(per_deal=True),
            finish=_ranked(client_key, "profit", GRADES),
            extra=_ranking("profit"),
            chart="profit",
        ),
        _class_summary(
            "classes_revenue", "Client classes by revenue", "class_revenue", "clients_revenue"
        ),
        _class_summary(
            "classes_profit", "Client classes by gross profit", "class_profit", "clients_profit"
        ),
        Section(
            name="products_revenue",
            title="Products by revenue",
            source="lines",
            group_by=("product_id", "product", "currency"),
            measures=_buyers(),
            finish=_ranked(product_key, "revenue", PRODUCT_GRADES),
            extra=_ranking("revenue"),
            chart="revenue",
            shared_fold=True,
        ),
        Section(
            name="products_profit",
            title="Products by gross profit",
            source="lines",
            group_by=("product_id", "product", "currency"),
            measures=_buyers(),
            finish=_ranked(product_key, "profit", PRODUCT_GRADES),
            extra=_ranking("profit"),
            chart="profit",
            shared_fold=True,
        ),
        Section(
            name="class_products",
            title="What each class buys most",
            source="lines",
            group_by=("class_revenue", "product_id", "product", "currency"),
            measures=_buyers(),
            finish=_top_per_class,
            shared_fold=True,
            chart="revenue",
            note="Clients' class by revenue; the top products per class (option top).",
        ),
        _transitions("transitions", "Class transitions (revenue)", ""),
        _transitions("transitions_profit", "Class transitions (gross profit)", "_profit"),
    ),
    options=OPTIONS,
)
