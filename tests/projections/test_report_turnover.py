"""The turnover report on SQLite and PostgreSQL, against figures worked out by hand.

The data set is tests/projections/abc_dataset.py (its table lists every deal's net and
profit). March 2026, by hand:

- Анна: RUB D1 4,000/1,000 + D2 1,000/0 + D4 1,500/600 = 6,500 revenue, 1,600 profit
  (3 deals); USD D6 900/500. Борис: RUB D3 3,000/2,000 + D5 500/-100 = 3,500/1,900
  (2 deals); USD D7 100/100. RUB total 10,000 / 3,500; USD 1,000 / 600.
- Products, RUB: Widget D1 4,000/1,000 + D4 1,500/600 = 5,500/1,600; Gadget D3 3,000/2,000;
  Service (no product: by its name) D2 1,000/0 + D5 500/-100 = 1,500/-100 -> 10,000/3,500,
  the same total as the deals. USD: Widget 900/500, Service 100/100.
- Clients, RUB: Альфа 5,000/1,000, Бета 3,000/2,000, Гамма 1,500/600, Дарья 500/-100.
- Groups, RUB: wholesale (Альфа) 5,000/1,000, retail (Бета) 3,000/2,000, none (Гамма +
  Дарья) 2,000/500; USD: wholesale 900/500, none 100/100.
- D12 (open) and D13 (lost) count nowhere; February's deals only without a period.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from tests.projections.abc_dataset import MARCH, NEW, build_sales
from threadline.domain.model.errors import InvalidInput
from threadline.projections.queries import ContactFilter
from threadline.projections.reports.frame import ReportSlice, run_report, section_items
from threadline.projections.reports.turnover import REPORT
from threadline.services.runtime import Runtime


def march(**values: Any) -> ReportSlice:
    return ReportSlice(start=MARCH[0], end=MARCH[1], **values)


def figures(result: Any, section: str, *names: str) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    found = next(s for s in result.sections if s.section.name == section)
    return {
        tuple(v for k, v in r.key.items() if not k.endswith("_id")): tuple(
            r.values[n] for n in names
        )
        for r in found.rows
    }


def test_turnover_figures_by_hand(runtime: Runtime) -> None:
    data = build_sales(runtime)
    result = run_report(runtime.views, REPORT, march())
    assert figures(result, "by_manager", "deals", "revenue", "profit") == {
        ("Анна", "RUB"): (3, 650000, 160000),
        ("Анна", "USD"): (1, 90000, 50000),
        ("Борис", "RUB"): (2, 350000, 190000),
        ("Борис", "USD"): (1, 10000, 10000),
    }
    margin = figures(result, "by_manager", "margin")
    assert margin[("Анна", "RUB")] == (pytest.approx(1600 / 6500),)
    assert figures(result, "by_product", "revenue", "profit") == {
        ("Widget", "RUB"): (550000, 160000),
        ("Gadget", "RUB"): (300000, 200000),
        ("Service", "RUB"): (150000, -10000),
        ("Widget", "USD"): (90000, 50000),
        ("Service", "USD"): (10000, 10000),
    }
    # largest revenue first
    products = next(s for s in result.sections if s.section.name == "by_product")
    assert [r.key["product"] for r in products.rows if r.key["currency"] == "RUB"] == [
        "Widget",
        "Gadget",
        "Service",
    ]
    assert figures(result, "by_client", "deals", "revenue", "profit") == {
        ("company", "Альфа", "RUB"): (2, 500000, 100000),
        ("company", "Бета", "RUB"): (1, 300000, 200000),
        ("company", "Гамма", "RUB"): (1, 150000, 60000),
        ("contact", "Дарья", "RUB"): (1, 50000, -10000),
        ("company", "Альфа", "USD"): (1, 90000, 50000),
        ("contact", "Дарья", "USD"): (1, 10000, 10000),
    }
    assert figures(result, "by_group", "revenue", "profit") == {
        ("wholesale", "RUB"): (500000, 100000),
        ("retail", "RUB"): (300000, 200000),
        ("", "RUB"): (200000, 50000),
        ("wholesale", "USD"): (90000, 50000),
        ("", "USD"): (10000, 10000),
    }
    assert figures(result, "by_month", "deals", "revenue", "profit") == {
        ("2026-03", "RUB"): (5, 1000000, 350000),
        ("2026-03", "USD"): (2, 100000, 60000),
    }
    # every history: February adds D8 6,000/2,400 + D9 3,000/2,000 + D10 1,000/1,000 and
    # D11 500/500 USD
    months = figures(run_report(runtime.views, REPORT, ReportSlice()), "by_month", "revenue")
    assert months == {
        ("2026-02", "RUB"): (1000000,),
        ("2026-02", "USD"): (50000,),
        ("2026-03", "RUB"): (1000000,),
        ("2026-03", "USD"): (100000,),
    }
    # Widget's RUB revenue drills to D1's and D4's lines; Service's profit to D5's only
    # (D2's Service line has profit 0)
    _, _, widget = section_items(
        runtime.views,
        REPORT,
        "by_product",
        march(),
        {"product_id": data.widget, "currency": "RUB"},
        "revenue",
    )
    assert sorted(i["deal_id"] for i in widget) == sorted([data.deals["D1"], data.deals["D4"]])
    _, _, service = section_items(
        runtime.views,
        REPORT,
        "by_product",
        march(),
        {"product_id": "", "product": "Service", "currency": "RUB"},
        "profit",
    )
    assert [(i["deal_id"], i["profit_minor"]) for i in service] == [(data.deals["D5"], -10000)]


def test_turnover_slices(runtime: Runtime) -> None:
    data = build_sales(runtime)

    def clients(**values: Any) -> dict[tuple[Any, ...], tuple[Any, ...]]:
        return figures(run_report(runtime.views, REPORT, march(**values)), "by_client", "revenue")

    # Борис: D3 (Бета), D5 and D7 (Дарья)
    assert clients(manager_id=data.boris) == {
        ("company", "Бета", "RUB"): (300000,),
        ("contact", "Дарья", "RUB"): (50000,),
        ("contact", "Дарья", "USD"): (10000,),
    }
    # utm_campaign "spring" is D1's alone; as a `source` it matches too
    assert clients(utm_campaign="spring") == {("company", "Альфа", "RUB"): (400000,)}
    assert clients(source="spring") == {("company", "Альфа", "RUB"): (400000,)}
    # group: wholesale = Альфа; "" = clients without a group (Гамма, Дарья)
    assert clients(group="wholesale") == {
        ("company", "Альфа", "RUB"): (500000,),
        ("company", "Альфа", "USD"): (90000,),
    }
    assert set(clients(group="")) == {
        ("company", "Гамма", "RUB"),
        ("contact", "Дарья", "RUB"),
        ("contact", "Дарья", "USD"),
    }
    # a segment narrows by the deal's contact: Альфа's contact Иван has D1 and D2 (D6 has
    # no contact)
    assert clients(segment=ContactFilter(company_id=data.alfa)) == {
        ("company", "Альфа", "RUB"): (500000,),
    }
    assert len(clients(pipeline_id=str(NEW))) == 6
    assert clients(pipeline_id="00000000-0000-0000-0000-000000000000") == {}
    # the lines are narrowed the same way: Борис's products
    lines = figures(
        run_report(runtime.views, REPORT, march(manager_id=data.boris)), "by_product", "revenue"
    )
    assert lines == {
        ("Gadget", "RUB"): (300000,),
        ("Service", "RUB"): (50000,),
        ("Service", "USD"): (10000,),
    }


def test_turnover_over_the_api_csv_sums_to_the_figures(sqlite_runtime: Runtime) -> None:
    from fastapi.testclient import TestClient

    from threadline.services.api.app import create_app

    runtime = sqlite_runtime
    build_sales(runtime)
    token = runtime.app.create_user("boss@example.com", "manager", "test").value[1]
    headers = {"Authorization": f"Bearer {token}"}
    march_q = "from=2026-03-01&to=2026-03-31"
    with TestClient(create_app(runtime)) as http:
        page = http.get(f"/api/reports/turnover?{march_q}", headers=headers)
        assert page.status_code == 200, page.text
        sections = {s["name"]: s for s in page.json()["sections"]}
        for name in ("by_product", "by_manager"):
            exported = http.get(
                f"/api/reports/turnover/sections/{name}/items.csv?{march_q}", headers=headers
            )
            assert exported.status_code == 200
            rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
            # by_product: one row per line (7 deals of one line each); by_manager: per deal
            assert len(rows) == 7
            for row in sections[name]["rows"]:
                key = row["key"]
                mine = [
                    r
                    for r in rows
                    if r["currency"] == key["currency"]
                    and all(r[k] == (key[k] or "") for k in key if k != "currency")
                ]
                for figure, column in (("revenue", "revenue_minor"), ("profit", "profit_minor")):
                    total = round(sum(float(r[column]) for r in mine) * 100)
                    assert total == row["values"][figure]
        rub = [r for r in sections["by_product"]["rows"] if r["key"]["currency"] == "RUB"]
        assert sum(r["values"]["revenue"] for r in rub) == 1000000  # 10,000.00 RUB
        # a dimension turnover cannot be sliced by does not exist, so every slice is known;
        # a bad date is a 422
        assert http.get("/api/reports/turnover?from=2026-13-01", headers=headers).status_code == 422


def test_turnover_refuses_nothing_it_has(runtime: Runtime) -> None:
    # every slice dimension has a column: none raises "cannot be sliced"
    for value in ("pipeline_id", "manager_id", "source", "utm_campaign", "channel", "group"):
        try:
            run_report(runtime.views, REPORT, march(**{value: "x"}))
        except InvalidInput as error:  # pragma: no cover - a failure explains itself
            pytest.fail(str(error))


def test_month_is_the_business_month(runtime: Runtime) -> None:
    # one deal of 1,000 RUB won on 31 March 22:30 UTC: 1 April 01:30 in Moscow (UTC+3)
    from datetime import UTC, datetime

    from threadline.domain.model.history_clock import recorded_at

    app = runtime.app
    with recorded_at(datetime(2026, 3, 31, 20, 0, tzinfo=UTC)):
        _ = app.seed_pipelines("test").value
        contact = app.create_contact("test", "Клиент").value
        deal = app.create_deal("test", "Late", NEW, contact_id=contact, amount="1000").value
    with recorded_at(datetime(2026, 3, 31, 22, 30, tzinfo=UTC)):
        _ = app.win_deal(deal, "test").value
    assert runtime.wait_for_views(app.recorder.max_notification_id(), timeout=60)
    utc = run_report(runtime.views, REPORT, ReportSlice())
    moscow = run_report(runtime.views, REPORT, ReportSlice(timezone="Europe/Moscow"))
    assert figures(utc, "by_month", "revenue") == {("2026-03", "RUB"): (100000,)}
    assert figures(moscow, "by_month", "revenue") == {("2026-04", "RUB"): (100000,)}


def test_the_items_of_what_lines_leave_out(runtime: Runtime) -> None:
    # every deal of the data set has lines adding up to its figures: no "without lines" item,
    # and the SELECT with that branch (run when some deal's lines do not add up) finds none
    from threadline.projections.reports.frame import ItemSource
    from threadline.projections.reports.turnover import LINE_COLUMNS, has_unlined, lines_query

    build_sales(runtime)
    assert not has_unlined(runtime.views, march())
    source = ItemSource(
        "lines", "Lines", LINE_COLUMNS, query=lambda db, s: lines_query(db, s, unlined=True)
    )
    items = source.items(runtime.views, march())
    assert len(items) == 7
    assert sum(i["revenue_minor"] for i in items if i["currency"] == "RUB") == 1000000
