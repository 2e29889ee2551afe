"""Big report sections a page at a time: the API's `rows` and `.../sections/{section}`, the web
app's first rows with a link to the section's own page, paged.

The data is the funnel of test_reports_web (three deals in March, figures worked out by hand
there): its "Stages" section has a row per stage the deals entered (Mutual intent, Invoice or
documents, Confirmation, Paid, Lost) and 7 entries in all. Pages of two rows make its five
rows three pages; the totals row stays over all of them.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.services.test_reports_web import MARCH, build, figures, section_html
from tests.web.helpers import web_client
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime
from threadline.services.web import routes_reports as web_reports

STAGES = ["Mutual intent", "Invoice or documents", "Confirmation", "Paid", "Lost"]


def api(runtime: Runtime) -> tuple[TestClient, dict[str, str]]:
    token = runtime.app.create_user("boss@example.com", "manager", "test").value[1]
    assert runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=60)
    return TestClient(create_app(runtime)), {"Authorization": f"Bearer {token}"}


def fixed(value: Any) -> Any:
    """Rows and totals without their times in stage: an open stay is measured to the real
    `now`, which moves between two requests."""
    if isinstance(value, dict):
        return {k: fixed(v) for k, v in value.items() if not k.endswith("_seconds")}
    if isinstance(value, list):
        return [fixed(v) for v in value]
    return value


def stage_names(rows: list[dict[str, Any]]) -> list[str]:
    return [row["key"]["stage"] for row in rows]


def test_the_api_gives_the_first_rows_and_pages_a_section(runtime: Runtime) -> None:
    build(runtime)
    http, headers = api(runtime)
    with http:
        whole = http.get(f"/api/reports/funnel?{MARCH}", headers=headers)
        assert whole.status_code == 200, whole.text
        stages = whole.json()["sections"][0]
        assert stages["name"] == "stages"
        assert sorted(stage_names(stages["rows"])) == sorted(STAGES)
        assert stages["rows_total"] == 5 and stages["total"]["values"]["entries"] == 7
        everything = stages["rows"]

        # `rows` keeps the first rows in the section's order; the totals stay over all
        two = http.get(f"/api/reports/funnel?{MARCH}&rows=2", headers=headers).json()
        for full, cut in zip(whole.json()["sections"], two["sections"], strict=True):
            assert fixed(cut["rows"]) == fixed(full["rows"][:2]), cut["name"]
            assert cut["rows_total"] == full["rows_total"] == len(full["rows"])
            assert fixed(cut["total"]) == fixed(full["total"])

        # the section's pages are consecutive slices whose union is the whole section
        pages = []
        for offset in range(0, 8, 2):
            page = http.get(
                f"/api/reports/funnel/sections/stages?{MARCH}&offset={offset}&limit=2",
                headers=headers,
            )
            assert page.status_code == 200, page.text
            body = page.json()
            assert (body["report"], body["name"], body["offset"], body["limit"]) == (
                "funnel",
                "stages",
                offset,
                2,
            )
            assert body["rows_total"] == 5 and fixed(body["total"]) == fixed(stages["total"])
            assert body["slice"] == whole.json()["slice"]
            pages.append(body["rows"])
        assert [len(p) for p in pages] == [2, 2, 1, 0]
        assert fixed([row for page in pages for row in page]) == fixed(everything)
        default = http.get(f"/api/reports/funnel/sections/stages?{MARCH}", headers=headers)
        assert fixed(default.json()["rows"]) == fixed(everything)
        assert default.json()["limit"] == 200

        # a slice narrows the section as it narrows the report
        narrowed = http.get(
            f"/api/reports/funnel/sections/stages?{MARCH}&manager_id=nobody", headers=headers
        ).json()
        assert narrowed["rows_total"] == 0 and narrowed["total"]["values"]["entries"] == 0

        for bad in ("rows=0", "rows=10001", "rows=x"):
            assert http.get(f"/api/reports/funnel?{bad}", headers=headers).status_code == 422, bad
        for bad in ("limit=0", "limit=10001", "offset=-1", "offset=x"):
            answer = http.get(f"/api/reports/funnel/sections/stages?{bad}", headers=headers)
            assert answer.status_code == 422, bad
        most = http.get(f"/api/reports/funnel?{MARCH}&rows=10000", headers=headers).json()
        assert fixed(most["sections"]) == fixed(whole.json()["sections"])
        assert http.get("/api/reports/funnel/sections/nope", headers=headers).status_code == 404
        assert http.get("/api/reports/nope/sections/stages", headers=headers).status_code == 404
        # the drill-down of a figure is where it was
        drill = http.get(f"/api/reports/funnel/sections/stages/items?{MARCH}", headers=headers)
        assert drill.status_code == 200 and drill.json()["total"] == 7


def test_openapi_documents_rows_total_and_the_section_page(sqlite_runtime: Runtime) -> None:
    with TestClient(create_app(sqlite_runtime)) as http:
        spec = http.get("/openapi.json").json()
    section_out = spec["components"]["schemas"]["SectionOut"]
    assert "rows_total" in section_out["properties"] and "rows_total" in section_out["required"]
    report = spec["paths"]["/api/reports/{name}"]["get"]
    rows = next(p for p in report["parameters"] if p["name"] == "rows")
    assert rows["schema"]["maximum"] == 10000 and rows["schema"]["default"] == 200
    page = spec["paths"]["/api/reports/{name}/sections/{section}"]["get"]
    assert {"limit", "offset", "from", "to"} <= {p["name"] for p in page["parameters"]}


def row_names(block: str) -> list[str]:
    """The stage of each row of the table (its last key cell: pipeline, position, stage)."""
    rows = re.findall(r'<tr class="report-row">(.*?)</tr>', block, re.S)
    return [re.findall(r"<td>(?:<a [^>]*>)?([^<]*)", row)[-1] for row in rows]


def test_the_web_report_shows_first_rows_and_the_section_page_pages(
    sqlite_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(sqlite_runtime)
    client, _csrf, _me = web_client(sqlite_runtime, "manager")
    whole = section_html(client.get(f"/reports/funnel?{MARCH}").text, "stages")
    everything = row_names(whole)
    assert sorted(everything) == sorted(STAGES)
    assert 'class="report-all"' not in whole  # every row is shown: no link

    monkeypatch.setattr(web_reports, "SHOWN", 2)
    monkeypatch.setattr(web_reports, "PAGE_SIZE", 2)
    page = client.get(f"/reports/funnel?{MARCH}")
    assert page.status_code == 200
    stages = section_html(page.text, "stages")
    assert row_names(stages) == everything[:2]
    assert stages.count("<rect") == 2  # the chart draws the rows shown
    assert figures(stages, "Total")["entries"][0] == "7"  # over all the rows
    link = re.search(r'<a class="report-all" href="([^"]+)">all 5 rows</a>', stages)
    assert link, stages
    href = html.unescape(link.group(1))
    assert href == f"/reports/funnel/stages?{MARCH}"

    seen = []
    for number in (1, 2, 3):
        shown = client.get(f"{href}&page={number}")
        assert shown.status_code == 200, shown.text
        block = section_html(shown.text, "stages")
        assert figures(block, "Total")["entries"][0] == "7"
        assert 'class="report-all"' not in block
        assert ('rel="prev"' in shown.text) == (number > 1)
        assert ('rel="next"' in shown.text) == (number < 3)
        assert block.count("<rect") == len(row_names(block))
        seen.extend(row_names(block))
    assert seen == everything
    next_link = re.search(r'<a href="([^"]+)" rel="next"', client.get(href).text)
    assert next_link and html.unescape(next_link.group(1)) == f"{href}&page=2"
    assert "Rows 5\u20135 of 5" in client.get(f"{href}&page=9").text  # past the end: the last page

    russian, _csrf, _me = web_client(sqlite_runtime, "auditor", locale="ru")
    assert "все строки (5)" in russian.get(f"/reports/funnel?{MARCH}").text
    assert "Строки 1\u20132 из 5" in russian.get(href).text

    assert client.get(f"/reports/funnel/nope?{MARCH}").status_code == 404
    assert client.get("/reports/nope/stages").status_code == 404
    assert client.get("/reports/funnel/stages?from=2026-13-01").status_code == 422
    assert (
        client.get(f"/reports/funnel/stages.csv?{MARCH}")
        .headers["content-type"]
        .startswith("text/csv")
    )  # the CSV's path is not taken for a section's
    operator, _csrf, _me = web_client(sqlite_runtime, "operator")
    assert operator.get(href).status_code == 403
