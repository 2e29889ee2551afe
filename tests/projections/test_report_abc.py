"""The ABC report on SQLite and PostgreSQL, every share and class worked out by hand.

The data set is tests/projections/abc_dataset.py (read its table first). Limits 80 / 95 %.

March, RUB, revenue (total 10,000): Альфа 5,000 (D1 4,000 + D2 1,000) = 50 %, cum 50 -> A;
Бета 3,000 = 30 %, cum exactly 80 -> A (a cumulative share ON the limit stays A);
Гамма 1,500 = 15 %, cum exactly 95 -> B (on the B limit: B); Дарья 500 = 5 %, cum 100 -> C.

March, RUB, gross profit (positive total 1,000 + 2,000 + 600 = 3,600): Бета 2,000 = 5/9 ->
A; Альфа 1,000 (D1 1,000 + D2 0), cum 3,000/3,600 = 83.3 % -> first past 80: B (the crossing
rule); Гамма 600, cum 100 % -> C (past 95); Дарья -100 -> C (negative value).

March, USD: revenue Альфа 900 of 1,000 = 90 %: cum 90 is past 80, yet its own share alone is
above 80 -> A (the exception); Дарья 100, cum 100 -> C. Profit: Альфа 500 of 600 = 83.3 % ->
A (the exception again), Дарья 100 -> C.

February (the earlier period), RUB revenue (total 10,000): Гамма 6,000 (60 %) A, Бета 3,000
cum 90 -> B, Альфа 1,000 cum 100 -> C. USD: Альфа 500 alone = 100 % -> A.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import pytest

from tests.projections.abc_dataset import FEBRUARY, MARCH, build_sales
from threadline.domain.model.errors import InvalidInput
from threadline.projections.reports.abc import REPORT, classify, contact_abc_classes
from threadline.projections.reports.frame import ReportSlice, run_report, section_items
from threadline.services.runtime import Runtime


def march(**options: Any) -> ReportSlice:
    return ReportSlice(start=MARCH[0], end=MARCH[1], options=options)


def rows_of(result: Any, section: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    found = next(s for s in result.sections if s.section.name == section)
    return [(r.key, r.values) for r in found.rows]


def test_classify_rule_at_the_limits() -> None:
    # exactly 80 % cumulative stays A, exactly 95 % stays B
    assert {
        k: v[2] for k, v in classify([("a", 50), ("b", 30), ("c", 15), ("d", 5)], 80, 95).items()
    } == {
        "a": "A",
        "b": "A",
        "c": "B",
        "d": "C",
    }
    # sorted 70, 14 (cum 84: crosses A -> B), 11 (cum 95 -> B), 5 (-> C)
    assert [
        classify([("a", 70), ("b", 11), ("c", 14), ("d", 5)], 80, 95)[k][2] for k in "abcd"
    ] == [
        "A",
        "B",
        "B",
        "C",
    ]
    # one item of 85 %: past the A limit alone, still A; 70 % + 27 % jumps past both -> C
    assert classify([("a", 85), ("b", 15)], 80, 95)["a"][2] == "A"
    assert classify([("a", 70), ("b", 27), ("c", 3)], 80, 95)["b"][2] == "C"
    # zero and negative values are C; shares are of the positive total (100)
    found = classify([("a", 100), ("z", 0), ("n", -20)], 80, 95)
    assert found["z"] == (0.0, 1.0, "C") and found["n"] == (-0.2, 1.0, "C")
    # nothing positive: every item C, no share
    assert classify([("a", 0)], 80, 95) == {"a": (None, None, "C")}


def test_abc_classes_by_hand(runtime: Runtime) -> None:
    data = build_sales(runtime)
    result = run_report(runtime.views, REPORT, march())
    revenue = [
        (k["currency"], k["client"], v["revenue"], v["share"], v["cumulative"], v["class"])
        for k, v in rows_of(result, "clients_revenue")
    ]
    assert revenue == [
        ("RUB", "Альфа", 500000, pytest.approx(0.5), pytest.approx(0.5), "A"),
        ("RUB", "Бета", 300000, pytest.approx(0.3), pytest.approx(0.8), "A"),
        ("RUB", "Гамма", 150000, pytest.approx(0.15), pytest.approx(0.95), "B"),
        ("RUB", "Дарья", 50000, pytest.approx(0.05), pytest.approx(1.0), "C"),
        ("USD", "Альфа", 90000, pytest.approx(0.9), pytest.approx(0.9), "A"),
        ("USD", "Дарья", 10000, pytest.approx(0.1), pytest.approx(1.0), "C"),
    ]
    profit = [
        (k["currency"], k["client"], v["profit"], v["class"])
        for k, v in rows_of(result, "clients_profit")
    ]
    assert profit == [
        ("RUB", "Бета", 200000, "A"),
        ("RUB", "Альфа", 100000, "B"),
        ("RUB", "Гамма", 60000, "C"),
        ("RUB", "Дарья", -10000, "C"),
        ("USD", "Альфа", 50000, "A"),
        ("USD", "Дарья", 10000, "C"),
    ]
    # per class: RUB A = Альфа + Бета (D1, D2, D3): 8,000 revenue, 1,000 + 0 + 2,000 profit
    classes = {
        (k["class_revenue"], k["currency"]): v for k, v in rows_of(result, "classes_revenue")
    }
    assert classes == {
        ("A", "RUB"): {"clients": 2, "deals": 3, "revenue": 800000, "profit": 300000},
        ("B", "RUB"): {"clients": 1, "deals": 1, "revenue": 150000, "profit": 60000},
        ("C", "RUB"): {"clients": 1, "deals": 1, "revenue": 50000, "profit": -10000},
        ("A", "USD"): {"clients": 1, "deals": 1, "revenue": 90000, "profit": 50000},
        ("C", "USD"): {"clients": 1, "deals": 1, "revenue": 10000, "profit": 10000},
    }
    # products, RUB revenue: Widget 4,000 + 1,500 = 5,500 (55 %) A; Gadget 3,000, cum 85 %:
    # crosses 80 -> B; Service 1,000 + 500 = 1,500, cum 100 -> C. USD: Widget 90 % -> A.
    products = [
        (k["currency"], k["product"], v["revenue"], v["class"])
        for k, v in rows_of(result, "products_revenue")
    ]
    assert products == [
        ("RUB", "Widget", 550000, "A"),
        ("RUB", "Gadget", 300000, "B"),
        ("RUB", "Service", 150000, "C"),
        ("USD", "Widget", 90000, "A"),
        ("USD", "Service", 10000, "C"),
    ]
    # products, RUB profit: Gadget 2,000 of 3,600 (Widget 1,000 + 600) -> A; Widget cum 100 %
    # jumps past both limits -> C; Service 0 - 100 = -100 -> C
    assert [
        (k["product"], v["profit"], v["class"])
        for k, v in rows_of(result, "products_profit")
        if k["currency"] == "RUB"
    ] == [("Gadget", 200000, "A"), ("Widget", 160000, "C"), ("Service", -10000, "C")]
    # what each class buys: A (RUB) = D1 Widget 4,000, D3 Gadget 3,000, D2 Service 1,000
    bought = [
        (k["class_revenue"], k["currency"], k["product"], v["revenue"])
        for k, v in rows_of(result, "class_products")
    ]
    assert bought == [
        ("A", "RUB", "Widget", 400000),
        ("A", "RUB", "Gadget", 300000),
        ("A", "RUB", "Service", 100000),
        ("A", "USD", "Widget", 90000),
        ("B", "RUB", "Widget", 150000),
        ("C", "RUB", "Service", 50000),
        ("C", "USD", "Service", 10000),
    ]
    top_two = run_report(runtime.views, REPORT, march(top=2))
    a_rub = [
        k["product"]
        for k, _ in rows_of(top_two, "class_products")
        if k["class_revenue"] == "A" and k["currency"] == "RUB"
    ]
    assert a_rub == ["Widget", "Gadget"]
    # no earlier period given: the 31 days before March (29 January to 28 February), which
    # hold exactly February's deals, so the same transitions as February named outright
    named = march(compare_from=date(2026, 2, 1), compare_to=date(2026, 2, 28))
    assert rows_of(result, "transitions") == rows_of(
        run_report(runtime.views, REPORT, named), "transitions"
    )
    assert rows_of(result, "transitions")  # and there are some (worked out below)
    # the whole history has nothing before it: no transitions
    whole = ReportSlice(options={})
    assert rows_of(run_report(runtime.views, REPORT, whole), "transitions") == []

    # other limits: 50 / 90 -> Альфа 50 % A, Бета cum 80 crosses 50 -> B, Гамма cum 95 -> C
    other = run_report(runtime.views, REPORT, march(limit_a=50.0, limit_b=90.0))
    assert [v["class"] for k, v in rows_of(other, "clients_revenue") if k["currency"] == "RUB"] == [
        "A",
        "B",
        "C",
        "C",
    ]
    # drill-down: RUB class A by revenue -> the deals of Альфа and Бета
    _, _, items = section_items(
        runtime.views, REPORT, "classes_revenue", march(), {"class_revenue": "A", "currency": "RUB"}
    )
    assert sorted(i["deal_id"] for i in items) == sorted(data.deals[d] for d in ("D1", "D2", "D3"))
    with pytest.raises(InvalidInput):
        run_report(runtime.views, REPORT, march(limit_a=95.0, limit_b=80.0))


def test_transitions_between_two_periods(runtime: Runtime) -> None:
    data = build_sales(runtime)
    s = march(compare_from=date(2026, 2, 1), compare_to=date(2026, 2, 28))
    result = run_report(runtime.views, REPORT, s)
    # revenue: RUB Альфа C -> A, Бета B -> A, Гамма A -> B, Дарья - -> C (nothing in February);
    # USD Альфа A -> A (unchanged), Дарья - -> C
    moves = {
        (k["class_before"], k["class_now"], k["currency"]): (v["clients"], v["changed"])
        for k, v in rows_of(result, "transitions")
    }
    assert moves == {
        ("C", "A", "RUB"): (1, 1),
        ("B", "A", "RUB"): (1, 1),
        ("A", "B", "RUB"): (1, 1),
        ("-", "C", "RUB"): (1, 1),
        ("A", "A", "USD"): (1, 0),
        ("-", "C", "USD"): (1, 1),
    }
    # profit, February RUB (2,400 + 2,000 + 1,000 = 5,400): Гамма 44 % A, Бета cum 81.5 % B,
    # Альфа C; March: Бета A, Альфа B, Гамма C, Дарья C. USD: Альфа A -> A, Дарья - -> C.
    profit_moves = {
        (k["class_before_profit"], k["class_now_profit"], k["currency"]): v["clients"]
        for k, v in rows_of(result, "transitions_profit")
    }
    assert profit_moves == {
        ("B", "A", "RUB"): 1,
        ("C", "B", "RUB"): 1,
        ("A", "C", "RUB"): 1,
        ("-", "C", "RUB"): 1,
        ("A", "A", "USD"): 1,
        ("-", "C", "USD"): 1,
    }
    # "whose preferences changed": the changed figure drills to the clients that moved
    _, _, changed = section_items(
        runtime.views, REPORT, "transitions", s, {"currency": "USD"}, "changed"
    )
    assert [(i["client"], i["class_before"], i["class_now"]) for i in changed] == [
        ("Дарья", "-", "C")
    ]
    _, _, gamma = section_items(
        runtime.views, REPORT, "transitions", s, {"class_before": "A", "class_now": "B"}, "changed"
    )
    assert [(i["client_id"], i["revenue_before_minor"], i["revenue_now_minor"]) for i in gamma] == [
        (data.gamma, 600000, 150000)
    ]
    with pytest.raises(InvalidInput):
        run_report(
            runtime.views,
            REPORT,
            march(compare_from=date(2026, 2, 28), compare_to=date(2026, 2, 1)),
        )


def test_contact_abc_classes_for_segments(runtime: Runtime) -> None:
    data = build_sales(runtime)
    # March by revenue: Иван -> Альфа (A in RUB and USD), Пётр -> Бета (A), Дарья C, Жанна
    # (no deals) C
    assert contact_abc_classes(runtime.views, *MARCH) == {
        data.ivan: "A",
        data.petr: "A",
        data.darya: "C",
        data.zhanna: "C",
    }
    # March by profit: Альфа is B in RUB, A in USD -> the best, A; Бета A
    by_profit = contact_abc_classes(runtime.views, *MARCH, by="profit")
    assert (by_profit[data.ivan], by_profit[data.petr], by_profit[data.darya]) == ("A", "A", "C")
    # February by revenue: Альфа C in RUB, A in USD -> A; Бета B; Дарья no deals -> C
    february = contact_abc_classes(runtime.views, *FEBRUARY)
    assert (february[data.ivan], february[data.petr], february[data.darya]) == ("A", "B", "C")
    # limits 50 / 90 in March: Бета's cumulative 80 % crosses 50 -> B
    assert contact_abc_classes(runtime.views, *MARCH, limit_a=50, limit_b=90)[data.petr] == "B"
    with pytest.raises(InvalidInput):
        contact_abc_classes(runtime.views, None, None, by="margin")
    with pytest.raises(InvalidInput):
        contact_abc_classes(runtime.views, None, None, limit_a=90, limit_b=90)
    with pytest.raises(InvalidInput):  # a limit of 0 would make every client A
        contact_abc_classes(runtime.views, None, None, limit_a=0, limit_b=90)


def test_abc_over_the_api(sqlite_runtime: Runtime) -> None:
    from fastapi.testclient import TestClient

    from threadline.services.api.app import create_app

    runtime = sqlite_runtime
    build_sales(runtime)
    token = runtime.app.create_user("boss@example.com", "manager", "test").value[1]
    headers = {"Authorization": f"Bearer {token}"}
    march_q = "from=2026-03-01&to=2026-03-31"
    with TestClient(create_app(runtime)) as http:
        page = http.get(
            f"/api/reports/abc?{march_q}&compare_from=2026-02-01&compare_to=2026-02-28",
            headers=headers,
        )
        assert page.status_code == 200, page.text
        sections = {s["name"]: s for s in page.json()["sections"]}
        classes = [
            (r["key"]["client"], r["values"]["class"])
            for r in sections["clients_revenue"]["rows"]
            if r["key"]["currency"] == "RUB"
        ]
        assert classes == [("Альфа", "A"), ("Бета", "A"), ("Гамма", "B"), ("Дарья", "C")]
        assert sections["transitions"]["total"]["values"] == {"clients": 6, "changed": 5}
        # the CSV of clients by revenue: one row per deal; RUB revenue sums to 10,000.00
        exported = http.get(
            f"/api/reports/abc/sections/clients_revenue/items.csv?{march_q}", headers=headers
        )
        assert exported.status_code == 200
        rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
        assert len(rows) == 7  # D1..D7
        rub = [r for r in rows if r["currency"] == "RUB"]
        assert sum(float(r["revenue_minor"]) for r in rub) == pytest.approx(10000.0)
        assert {r["client"]: r["class_revenue"] for r in rub} == {
            "Альфа": "A",
            "Бета": "A",
            "Гамма": "B",
            "Дарья": "C",
        }
        bad = http.get(f"/api/reports/abc?{march_q}&limit_a=95&limit_b=80", headers=headers)
        assert bad.status_code == 422 and "limit_a" in bad.text
        assert (
            http.get(f"/api/reports/abc?{march_q}&limit_a=120", headers=headers).status_code == 422
        )


def test_every_label_is_translated() -> None:
    from pathlib import Path

    from babel.messages.pofile import read_po

    from threadline.projections.reports import turnover

    po = Path(__file__).parents[2] / "services/web/locales/ru/LC_MESSAGES/abc.po"
    with po.open("rb") as source:
        russian = {m.id: m.string for m in read_po(source, locale="ru") if m.id}
    labels = {turnover.UNLINED}
    for report in (turnover.REPORT, REPORT):
        labels |= {report.title, report.description}
        for item_source in report.sources:
            labels |= {item_source.label, *(c.label for c in item_source.columns)}
        for section in report.sections:
            labels |= {section.title, *(m.label for m in (*section.measures, *section.extra))}
            labels |= {section.note} - {""}
        labels |= {option.label for option in report.options}
    assert sorted(label for label in labels if not russian.get(label)) == []
