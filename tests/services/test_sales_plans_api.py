"""Sales plans over the API (set, change, read, clear, refusals) and the managers report's
plan section over the API, whose CSV sums to its figures.

Анна's plan for March 2020: first 4,000 RUB, then 5,000 RUB with a gross-profit target of
1,000 and 4 deals. Her deal D1 (1,000 net) is won on 10 March 2020, so the report shows
plan 5,000, fact 1,000, done 1,000 / 5,000 = 20 %.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from threadline.domain.model.history_clock import recorded_at
from threadline.domain.model.pipeline import seeded_pipeline_id
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime

NEW = seeded_pipeline_id("new-clients")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_sales_plans_over_the_api(sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    app = runtime.app
    _ = app.seed_pipelines("test").value
    anna, anna_token = app.create_user("anna@example.com", "manager", "test", name="Анна").value
    auditor = app.create_user("audit@example.com", "auditor", "test").value[1]
    operator = app.create_user("op@example.com", "operator", "test").value[1]
    client = app.create_contact("test", "Клиент").value
    with recorded_at(datetime(2020, 2, 1, tzinfo=UTC)):
        d1 = app.create_deal("test", "D1", NEW, contact_id=client, manager_id=anna, amount="1000")
        d1_id = d1.value
    with recorded_at(datetime(2020, 3, 10, 12, tzinfo=UTC)):
        _ = app.win_deal(d1_id, "test").value
    assert runtime.wait_for_views(app.recorder.max_notification_id(), timeout=60)
    me = bearer(anna_token)
    path = f"/api/sales-plans/{anna}/2020-03"
    with TestClient(create_app(runtime)) as http:
        first = http.put(path, json={"revenue": "4000"}, headers=me)
        assert first.status_code == 200, first.text
        assert first.json()["revenue"] == {"amount": "4000.00", "currency": "RUB"}
        assert first.json()["gross_profit"] is None and first.json()["manager"] == "Анна"
        body = {"revenue": "5000", "gross_profit": "1000", "deals_won": 4}
        changed = http.put(path, json=body, headers=me)
        assert changed.status_code == 200
        assert changed.json()["id"] == first.json()["id"]  # the same plan, changed
        assert changed.json()["gross_profit"] == {"amount": "1000.00", "currency": "RUB"}
        listed = http.get("/api/sales-plans?month=2020-03", headers=me).json()["items"]
        assert [(p["month"], p["revenue"]["amount"], p["deals_won"]) for p in listed] == [
            ("2020-03", "5000.00", 4)
        ]
        assert http.get("/api/sales-plans?month=2020-04", headers=me).json()["items"] == []

        # the plan against the fact in the managers report, and its CSV
        page = http.get("/api/reports/managers?from=2020-03-01&to=2020-03-31", headers=me)
        assert page.status_code == 200, page.text
        plan = next(s for s in page.json()["sections"] if s["name"] == "plan")
        [row] = plan["rows"]
        assert (row["values"]["plan"], row["values"]["fact"]) == (500000, 100000)
        assert row["values"]["done"] == 0.2  # 1,000 of 5,000
        exported = http.get(
            "/api/reports/managers/sections/plan/items.csv?from=2020-03-01&to=2020-03-31",
            headers=me,
        )
        assert exported.status_code == 200
        rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
        assert sorted(r["kind"] for r in rows) == ["deal", "plan"]
        assert sum(float(r["plan_minor"]) for r in rows) == 5000.0  # major units in the CSV
        assert sum(float(r["fact_minor"]) for r in rows) == 1000.0

        # refusals: a month that is none, negative amounts, a manager that is no user
        def refused(url: str, payload: dict[str, Any], field: str) -> None:
            answer = http.put(url, json=payload, headers=me)
            assert answer.status_code == 422, answer.text
            assert field in str(answer.json()["detail"])

        refused(f"/api/sales-plans/{anna}/2020-13", {"revenue": "1"}, "month")
        refused(f"/api/sales-plans/{anna}/20-03-1", {"revenue": "1"}, "month")
        refused(path, {"revenue": "-1"}, "revenue")
        refused(path, {"revenue": "1", "gross_profit": "-5"}, "gross_profit")
        refused(path, {"revenue": "1", "deals_won": -1}, "deals_won")
        refused(path, {"revenue": "1.001"}, "revenue")
        refused(f"/api/sales-plans/{client}/2020-03", {"revenue": "1"}, "manager_id")
        bad_id = http.put("/api/sales-plans/nope/2020-03", json={"revenue": "1"}, headers=me)
        assert bad_id.status_code == 422
        # roles: the auditor and an operator read, never write
        assert http.put(path, json={"revenue": "1"}, headers=bearer(auditor)).status_code == 403
        assert http.delete(path, headers=bearer(operator)).status_code == 403
        assert http.get(path, headers=bearer(auditor)).status_code == 200

        assert http.delete(path, headers=me).status_code == 204
        assert http.get(path, headers=me).status_code == 404
        assert http.delete(path, headers=me).status_code == 404
        assert http.get("/api/sales-plans", headers=me).json()["items"] == []
        # set again after clearing: the same plan again
        again = http.put(path, json={"revenue": "700", "currency": "EUR"}, headers=me)
        assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
        assert again.json()["revenue"] == {"amount": "700.00", "currency": "EUR"}
