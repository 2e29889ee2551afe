"""The funnel report on SQLite and PostgreSQL, against figures worked out by hand.

Four deals in the shipped "New clients" pipeline (stages in order: Mutual intent,
Invoice or documents, Confirmation, Commercial proposal, All operations done, Paid (won),
Lost), recorded at fixed moments from T0 = 2 March 2026 09:00 UTC; `now` is T0 + 3 days:

- D1 (Анна, 1,000, utm_campaign "spring", expected 25 March): intent at T0, confirmation
  at +2 h, back to intent at +1 d 2 h, confirmation again at +1 d 2 h 30 min, won at
  +2 d 2 h 30 min.
- D2 (Анна, 2,000): intent at +1 h, lost ("Too expensive") at +5 h.
- D3 (Борис, 500): intent at +2 h, invoice at +3 h, still there.
- D4 (Борис, 3,000, expected 20 March, probability set by hand to 70 %): intent at +3 h,
  still there.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from threadline.domain.model.history_clock import recorded_at
from threadline.domain.model.pipeline import seeded_pipeline_id, seeded_stage_id
from threadline.projections.reports.frame import ReportSlice, run_report, section_items
from threadline.projections.reports.funnel import REPORT
from threadline.services.runtime import Runtime

NEW = seeded_pipeline_id("new-clients")
INTENT = seeded_stage_id("new-clients", "mutual-intent")
INVOICE = seeded_stage_id("new-clients", "invoice-or-documents")
CONFIRM = seeded_stage_id("new-clients", "confirmation")
PAID = seeded_stage_id("new-clients", "paid")
LOST = seeded_stage_id("new-clients", "lost")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=3)
HOUR = 3600.0


def at(moment: datetime, command: Any) -> Any:
    with recorded_at(moment):
        return command().value


def build(runtime: Runtime) -> dict[str, Any]:
    app = runtime.app
    assert app.seed_pipelines("test").value >= 0
    anna, _ = app.create_user("anna@example.com", "manager", "test", name="Анна").value
    boris, _ = app.create_user("boris@example.com", "manager", "test", name="Борис").value
    contact = app.create_contact("test", "Клиент").value

    def deal(title: str, manager: UUID, amount: str, **extra: Any) -> UUID:
        return app.create_deal(
            "test", title, NEW, contact_id=contact, manager_id=manager, amount=amount, **extra
        ).value

    d1 = at(
        T0,
        lambda: app.create_deal(
            "test",
            "D1",
            NEW,
            contact_id=contact,
            manager_id=anna,
            amount="1000",
            expected_close="2026-03-25",
            source={"utm_campaign": "spring"},
        ),
    )
    at(T0 + timedelta(hours=2), lambda: app.move_deal(d1, CONFIRM, "test"))
    at(T0 + timedelta(days=1, hours=2), lambda: app.move_deal(d1, INTENT, "test"))
    at(T0 + timedelta(days=1, hours=2, minutes=30), lambda: app.move_deal(d1, CONFIRM, "test"))
    at(T0 + timedelta(days=2, hours=2, minutes=30), lambda: app.win_deal(d1, "test"))
    with recorded_at(T0 + timedelta(hours=1)):
        d2 = deal("D2", anna, "2000")
    at(T0 + timedelta(hours=5), lambda: app.lose_deal(d2, "Too expensive", "test"))
    with recorded_at(T0 + timedelta(hours=2)):
        d3 = deal("D3", boris, "500")
    at(T0 + timedelta(hours=3), lambda: app.move_deal(d3, INVOICE, "test"))
    with recorded_at(T0 + timedelta(hours=3)):
        d4 = deal("D4", boris, "3000", expected_close="2026-03-20")
    at(T0 + timedelta(hours=4), lambda: app.update_deal(d4, "test", probability=70))
    assert runtime.wait_for_views(app.recorder.max_notification_id(), timeout=60)
    return {"d1": d1, "d2": d2, "d3": d3, "d4": d4, "anna": anna, "boris": boris}


def march(**slice_values: Any) -> ReportSlice:
    return ReportSlice(
        start="2026-03-01T00:00:00.000000Z",
        end="2026-04-01T00:00:00.000000Z",
        now=NOW,
        **slice_values,
    )


def rows_of(result: Any, section: str) -> dict[Any, dict[str, Any]]:
    found = next(s for s in result.sections if s.section.name == section)
    return {tuple(r.key.values()): r.values for r in found.rows}


def test_funnel_figures_by_hand(runtime: Runtime) -> None:
    ids = build(runtime)
    result = run_report(runtime.views, REPORT, march())
    stages = {key[3]: values for key, values in rows_of(result, "stages").items()}
    assert set(stages) == {"Mutual intent", "Invoice or documents", "Confirmation", "Paid", "Lost"}
    intent = stages["Mutual intent"]
    # D1 twice (both advanced), D2 (lost), D3 (advanced), D4 (still there)
    assert (intent["entries"], intent["advanced"], intent["moved_back"]) == (5, 3, 0)
    assert (intent["lost"], intent["moved_out"], intent["still"]) == (1, 0, 1)
    assert intent["won_later"] == 2  # D1's two stays
    assert intent["conversion"] == pytest.approx(3 / 5)
    assert intent["to_won"] == pytest.approx(2 / 5)
    # 2 h, 30 min, 4 h, 1 h and D4's current stay of 3 days - 3 h = 69 h
    stays = [2 * HOUR, 0.5 * HOUR, 4 * HOUR, 1 * HOUR, 69 * HOUR]
    assert intent["avg_seconds"] == pytest.approx(sum(stays) / 5)
    assert intent["median_seconds"] == pytest.approx(2 * HOUR)
    confirmation = stages["Confirmation"]
    assert (confirmation["entries"], confirmation["advanced"], confirmation["moved_back"]) == (
        2,
        1,
        1,
    )
    assert confirmation["median_seconds"] == pytest.approx(24 * HOUR)
    assert (stages["Invoice or documents"]["entries"], stages["Invoice or documents"]["still"]) == (
        1,
        1,
    )
    assert stages["Paid"]["entries"] == 1 and stages["Lost"]["entries"] == 1
    # stage order is the pipeline's
    ordered = [s.key["stage"] for s in result.sections[0].rows]
    assert ordered == ["Mutual intent", "Invoice or documents", "Confirmation", "Paid", "Lost"]

    win = rows_of(result, "win_rate")[("New clients",)]
    assert (win["closed"], win["won"], win["lost"], win["win_rate"]) == (2, 1, 1, 0.5)

    lost = rows_of(result, "lost")
    assert lost == {
        ("Too expensive", "Mutual intent", str(ids["anna"]), "Анна", "RUB"): {
            "deals": 1,
            "amount": 200000,
        }
    }

    forecast = rows_of(result, "forecast")[("2026-03", "RUB")]
    # D4: 3,000 x 70 % = 2,100; D1 won: 1,000 at 100 %
    assert forecast == {
        "deals": 2,
        "weighted": 310000,
        "won": 100000,
        "pipeline_amount": 400000,
        "manual": 1,
    }


def test_slices_and_drill_down(runtime: Runtime) -> None:
    ids = build(runtime)
    by_boris = run_report(runtime.views, REPORT, march(manager_id=str(ids["boris"])))
    stages = {key[3]: v for key, v in rows_of(by_boris, "stages").items()}
    assert stages["Mutual intent"]["entries"] == 2  # D3 and D4
    assert set(stages) == {"Mutual intent", "Invoice or documents"}
    spring = run_report(runtime.views, REPORT, march(utm_campaign="spring"))
    assert {key[3]: v["entries"] for key, v in rows_of(spring, "stages").items()} == {
        "Mutual intent": 2,
        "Confirmation": 2,
        "Paid": 1,
    }
    # the period narrows by when a stay began: April has none of them
    april = ReportSlice(start="2026-04-01T00:00:00.000000Z", now=NOW)
    assert run_report(runtime.views, REPORT, april).sections[0].rows == []
    # a stage's "lost" figure drills to D2's stay, "moved back" to D1's first confirmation
    _, _, lost_items = section_items(
        runtime.views, REPORT, "stages", march(), {"stage_id": INTENT}, "lost"
    )
    assert [i["deal_id"] for i in lost_items] == [str(ids["d2"])]
    _, _, back = section_items(
        runtime.views, REPORT, "stages", march(), {"stage_id": CONFIRM}, "moved_back"
    )
    assert [(i["deal_id"], i["seconds_in_stage"]) for i in back] == [(str(ids["d1"]), 24 * HOUR)]
    _, _, manual = section_items(
        runtime.views, REPORT, "forecast", march(), {"month": "2026-03"}, "manual"
    )
    assert [i["deal_id"] for i in manual] == [str(ids["d4"])]


def test_funnel_over_the_api_csv_sums_to_the_figures(sqlite_runtime: Runtime) -> None:
    from fastapi.testclient import TestClient

    from threadline.services.api.app import create_app

    runtime = sqlite_runtime
    build(runtime)
    token = runtime.app.create_user("boss@example.com", "manager", "test").value[1]
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(runtime)) as http:
        # the API's `now` is the real one: D3 and D4 are still in their stages, which only
        # changes their time in stage, not the counts checked here
        page = http.get("/api/reports/funnel?from=2026-03-01&to=2026-03-31", headers=headers)
        assert page.status_code == 200, page.text
        stages = next(s for s in page.json()["sections"] if s["name"] == "stages")
        intent = next(r for r in stages["rows"] if r["key"]["stage_id"] == INTENT)
        assert intent["values"]["entries"] == 5
        exported = http.get(
            "/api/reports/funnel/sections/stages/items.csv?from=2026-03-01&to=2026-03-31",
            headers=headers,
        )
        assert exported.status_code == 200
        assert exported.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
        assert len(rows) == stages["total"]["values"]["entries"] == 10
        for row in stages["rows"]:
            mine = [r for r in rows if r["stage_id"] == row["key"]["stage_id"]]
            for name in ("advanced", "moved_back", "lost", "still"):
                assert sum(int(r[name]) for r in mine) == row["values"][name]
        lost = next(s for s in page.json()["sections"] if s["name"] == "lost")
        lost_csv = http.get(
            "/api/reports/funnel/sections/lost/items.csv?from=2026-03-01&to=2026-03-31",
            headers=headers,
        ).text.lstrip("\ufeff")
        amounts = [r["amount_minor"] for r in csv.DictReader(io.StringIO(lost_csv))]
        assert amounts == ["2000.00"] and lost["rows"][0]["values"]["amount"] == 200000
        drill = http.get(
            f"/api/reports/funnel/sections/stages/items?key.stage_id={INTENT}&measure=lost",
            headers=headers,
        )
        assert drill.status_code == 200 and drill.json()["total"] == 1
        # a key the section is not grouped by, an unknown figure, an unknown report
        assert (
            http.get(
                "/api/reports/funnel/sections/stages/items?key.nope=1", headers=headers
            ).status_code
            == 422
        )
        assert (
            http.get(
                "/api/reports/funnel/sections/stages/items?measure=nope", headers=headers
            ).status_code
            == 422
        )
        assert http.get("/api/reports/nope", headers=headers).status_code == 404
        assert (
            http.get(
                "/api/reports/funnel?from=2026-04-01&to=2026-03-01", headers=headers
            ).status_code
            == 422
        )
        operator = runtime.app.create_user("op@example.com", "operator", "test").value[1]
        # the token is checked against the users view: wait until it shows the new user
        assert runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=30)
        denied = http.get("/api/reports/funnel", headers={"Authorization": f"Bearer {operator}"})
        assert denied.status_code == 403
