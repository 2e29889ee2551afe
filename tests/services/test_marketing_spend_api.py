"""Marketing spend over the API: record, list, correct, remove; the CSV import (a bad line
refuses the whole file, a re-import records nothing, Russian headers in Windows-1251 with
`;`); and the sources report's CSV summing to its figures."""

# Russian headers: Cyrillic letters that look Latin are meant.
# ruff: noqa: RUF001

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime

ENGLISH = (
    "source,utm_campaign,from,to,amount,currency,note\r\n"
    "yandex,spring,2026-03-01,2026-03-31,3100.00,RUB,Директ\r\n"
    'google,,2026-03-01,2026-03-10,"1,000.00",USD,\r\n'
)
# ";" between cells, a decimal comma, dd.mm.yyyy dates, Russian headers, Windows-1251
RUSSIAN = (
    "Источник;Кампания;С;По;Сумма;Валюта;Примечание\r\n"
    "vk;осень;01.09.2026;30.09.2026;1 500,50;;Посевы\r\n"
    "vk;осень;01.09.2026;30.09.2026;1 500,50;;Посевы\r\n"  # the same row twice: two entries
).encode("cp1251")


def headers_of(runtime: Runtime, role: str = "manager") -> dict[str, str]:
    token = runtime.app.create_user(f"{role}@example.com", role, "test").value[1]
    return {"Authorization": f"Bearer {token}"}


def test_record_list_correct_remove(sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    manager = headers_of(runtime)
    auditor = headers_of(runtime, "auditor")
    body: dict[str, Any] = {
        "source": "yandex",
        "utm_campaign": "spring",
        "from": "2026-03-01",
        "to": "2026-03-31",
        "amount": "3100.00",
        "currency": "RUB",
        "note": "Директ",
    }
    with TestClient(create_app(runtime)) as http:
        made = http.post("/api/marketing-spend", json=body, headers=manager)
        assert made.status_code == 201, made.text
        entry = made.json()
        assert (entry["from"], entry["to"], entry["days"]) == ("2026-03-01", "2026-03-31", 31)
        assert entry["amount"] == {"amount": "3100.00", "currency": "RUB"}
        # an auditor reads but does not write
        listed = http.get("/api/marketing-spend?from=2026-03-31&to=2026-04-30", headers=auditor)
        assert listed.status_code == 200 and listed.json()["total"] == 1
        assert listed.json()["totals"] == [{"amount": "3100.00", "currency": "RUB"}]
        assert http.post("/api/marketing-spend", json=body, headers=auditor).status_code == 403
        # February does not overlap March
        assert http.get("/api/marketing-spend?to=2026-02-28", headers=manager).json()["total"] == 0
        # bad input: a clear 422 naming the field
        for wrong, field in (
            ({"to": "2026-02-01"}, "to"),
            ({"amount": "-1"}, "amount"),
            ({"amount": "1.001"}, "amount"),
            ({"source": ""}, "source"),
            ({"currency": "рубли"}, "currency"),
        ):
            refused = http.post("/api/marketing-spend", json={**body, **wrong}, headers=manager)
            assert refused.status_code == 422, (wrong, refused.text)
            assert field in str(refused.json()["detail"][0]["loc"]), refused.text
        corrected = http.put(
            f"/api/marketing-spend/{entry['id']}",
            json={**body, "amount": "3000", "utm_campaign": ""},
            headers=manager,
        )
        assert corrected.status_code == 200, corrected.text
        assert corrected.json()["amount"]["amount"] == "3000.00"
        assert corrected.json()["utm_campaign"] == ""
        gone = http.delete(f"/api/marketing-spend/{entry['id']}", headers=manager)
        assert gone.status_code == 204
        assert http.get("/api/marketing-spend", headers=manager).json()["total"] == 0
        assert (
            http.delete(f"/api/marketing-spend/{entry['id']}", headers=manager).status_code == 409
        )
        again = http.put(f"/api/marketing-spend/{entry['id']}", json=body, headers=manager)
        assert again.status_code == 409
        missing = "00000000-0000-0000-0000-000000000000"
        assert http.get(f"/api/marketing-spend/{missing}", headers=manager).status_code == 404


def test_csv_import(sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    manager = headers_of(runtime)
    with TestClient(create_app(runtime)) as http:
        first = http.post(
            "/api/marketing-spend/import",
            files={"file": ("spend.csv", ENGLISH.encode(), "text/csv")},
            headers=manager,
        )
        assert first.status_code == 200, first.text
        assert (first.json()["rows"], first.json()["recorded"]) == (2, 2)
        # the same file again records nothing
        second = http.post("/api/marketing-spend/import", content=ENGLISH.encode(), headers=manager)
        assert second.json() == {**first.json(), "recorded": 0, "already_recorded": 2}
        russian = http.post("/api/marketing-spend/import", content=RUSSIAN, headers=manager)
        assert russian.status_code == 200, russian.text
        assert (russian.json()["recorded"], russian.json()["encoding"]) == (2, "cp1251")
        vk = http.get("/api/marketing-spend?source=vk", headers=manager).json()
        assert [i["amount"] for i in vk["items"]] == [{"amount": "1500.50", "currency": "RUB"}] * 2
        assert vk["items"][0]["utm_campaign"] == "осень" and vk["items"][0]["note"] == "Посевы"
        google = http.get("/api/marketing-spend?source=google", headers=manager).json()
        assert google["items"][0]["amount"] == {"amount": "1000.00", "currency": "USD"}
        # a bad line 3 (dates the wrong way round) and line 4 (no amount): 422 naming them,
        # and the good line 2 is not recorded either
        broken = (
            "source,from,to,amount\r\n"
            "telegram,2026-05-01,2026-05-31,100\r\n"
            "telegram,2026-05-31,2026-05-01,100\r\n"
            "telegram,2026-05-01,2026-05-31,\r\n"
        )
        refused = http.post("/api/marketing-spend/import", content=broken.encode(), headers=manager)
        assert refused.status_code == 422
        message = refused.json()["detail"][0]["msg"]
        assert "line 3: to" in message and "line 4: amount" in message, message
        assert (
            http.get("/api/marketing-spend?source=telegram", headers=manager).json()["total"] == 0
        )
        no_header = http.post(
            "/api/marketing-spend/import", content=b"a,b\r\n1,2\r\n", headers=manager
        )
        assert no_header.status_code == 422 and "line 1" in no_header.json()["detail"][0]["msg"]


def test_sources_report_csv_sums_to_its_figures(sqlite_runtime: Runtime) -> None:
    """Two yandex leads today (per-lead cost 100.00 and none) and a yandex entry of 700.00
    over the 7 days from today: the report for today alone takes 1/7 of it, 100.00; the
    cost is 100.00 + 100.00 = 200.00 for 2 leads."""
    runtime = sqlite_runtime
    manager = headers_of(runtime)
    app = runtime.app
    today = datetime.now(ZoneInfo(runtime.settings.timezone)).date()  # the business's day
    app.create_contact(
        "test",
        "Лид 1",
        source={"utm_source": "yandex", "acquisition_cost": {"amount": "100", "currency": "RUB"}},
    )
    app.create_contact("test", "Лид 2", source={"utm_source": "yandex"})
    body = {
        "source": "yandex",
        "from": str(today),
        "to": str(today + timedelta(days=6)),
        "amount": "700",
    }
    with TestClient(create_app(runtime)) as http:
        assert http.post("/api/marketing-spend", json=body, headers=manager).status_code == 201
        query = f"from={today}&to={today}"
        page = http.get(f"/api/reports/sources?{query}", headers=manager)
        assert page.status_code == 200, page.text
        section = next(s for s in page.json()["sections"] if s["name"] == "sources")
        row = next(r for r in section["rows"] if r["key"]["source"] == "yandex")
        assert (row["values"]["leads"], row["values"]["spend"], row["values"]["cost"]) == (
            2,
            10_000,
            20_000,
        )
        exported = http.get(
            f"/api/reports/sources/sections/sources/items.csv?{query}", headers=manager
        )
        assert exported.status_code == 200
        rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
        mine = [r for r in rows if r["source"] == "yandex"]
        assert sum(int(r["lead"]) for r in mine) == 2
        assert round(sum(float(r["cost_minor"]) for r in mine) * 100) == 20_000
        # spend belongs to no manager: under a manager slice it is left out, never guessed
        by_manager = http.get(f"/api/reports/sources?{query}&manager_id=x", headers=manager)
        assert by_manager.status_code == 200
        sliced = next(s for s in by_manager.json()["sections"] if s["name"] == "sources")
        assert all(r["values"]["spend"] == 0 for r in sliced["rows"])
