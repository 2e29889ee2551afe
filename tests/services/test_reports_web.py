"""The reports section of the web app, on the funnel report, against figures worked out by hand.

Three deals in the shipped "New clients" pipeline (stages in order: Mutual intent, Invoice
or documents, Confirmation, ..., Paid (won), Lost), recorded from T0 = 2 March 2026 09:00 UTC:

- Alpha (Анна, 1,000 RUB): intent at T0, confirmation at +2 h, won at +1 d 2 h.
- Beta (Анна, 2,000 RUB): intent at +1 h, lost ("Too expensive") at +5 h.
- Gamma (Борис, 500 RUB): intent at +2 h, invoice at +3 h, still there.

So for March, in the "Stages" section:
- Mutual intent: entries 3 (one stay of each deal); advanced 2 (Alpha to confirmation,
  Gamma to invoice); lost 1 (Beta); moved back, moved out, still there 0; won later 1
  (Alpha); conversion 2/3 = 66.7 %; to won 1/3 = 33.3 %; time in stage 2 h, 4 h, 1 h:
  average 7 h / 3 = 2 h 20 min, median 2 h.
- Confirmation: Alpha's one stay of 24 h, ended by the win: entries 1, advanced 1, "1 d".
- Invoice or documents (Gamma), Paid (Alpha), Lost (Beta): one entry each, so the total
  of entries is 3 + 1 + 1 + 1 + 1 = 7.
"Win rate": the closing entries are Alpha's win and Beta's loss: 1 of 2 = 50 %.
"Lost deals": Beta, "Too expensive", at Mutual intent, Анна: 1 deal, 2,000.00 RUB.
"""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from tests.web.helpers import web_client
from threadline.domain.model.history_clock import recorded_at
from threadline.domain.model.pipeline import seeded_pipeline_id, seeded_stage_id
from threadline.projections.reports import registry
from threadline.projections.reports.frame import (
    Column,
    ItemSource,
    Measure,
    Report,
    ReportSlice,
    Section,
    SliceColumns,
)
from threadline.projections.sql import ViewReader
from threadline.services.runtime import Runtime

NEW = seeded_pipeline_id("new-clients")
INTENT = seeded_stage_id("new-clients", "mutual-intent")
INVOICE = seeded_stage_id("new-clients", "invoice-or-documents")
CONFIRM = seeded_stage_id("new-clients", "confirmation")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MARCH = "from=2026-03-01&to=2026-03-31"


def at(moment: datetime, command: Any) -> Any:
    with recorded_at(moment):
        return command().value


def build(runtime: Runtime) -> dict[str, UUID]:
    app = runtime.app
    app.seed_pipelines("test")
    anna, _ = app.create_user("anna@example.com", "manager", "test", name="Анна").value
    boris, _ = app.create_user("boris@example.com", "manager", "test", name="Борис").value
    contact = app.create_contact("test", "Клиент").value

    def deal(title: str, manager: UUID, amount: str) -> UUID:
        made: UUID = app.create_deal(
            "test", title, NEW, contact_id=contact, manager_id=manager, amount=amount
        ).value
        return made

    with recorded_at(T0):
        alpha = deal("Alpha", anna, "1000")
    at(T0 + timedelta(hours=2), lambda: app.move_deal(alpha, CONFIRM, "test"))
    at(T0 + timedelta(days=1, hours=2), lambda: app.win_deal(alpha, "test"))
    with recorded_at(T0 + timedelta(hours=1)):
        beta = deal("Beta", anna, "2000")
    at(T0 + timedelta(hours=5), lambda: app.lose_deal(beta, "Too expensive", "test"))
    with recorded_at(T0 + timedelta(hours=2)):
        gamma = deal("Gamma", boris, "500")
    at(T0 + timedelta(hours=3), lambda: app.move_deal(gamma, INVOICE, "test"))
    assert runtime.wait_for_views(app.recorder.max_notification_id(), timeout=60)
    return {"alpha": alpha, "beta": beta, "gamma": gamma, "anna": anna}


def section_html(page: str, name: str) -> str:
    found = re.search(rf'<section[^>]*id="section-{name}".*?</section>', page, re.S)
    assert found, f"no section {name}"
    return found.group(0)


def figures(block: str, row_text: str) -> dict[str, tuple[str, str | None]]:
    """The figure cells (text, drill link) of the table row holding `row_text`."""
    for row in re.findall(r'<tr class="report-(?:row|total)">(.*?)</tr>', block, re.S):
        if f">{row_text}<" in row:
            cells = re.findall(
                r'<td class="figure" data-measure="(\w+)">(?:<a href="([^"]*)">)?([^<]*)', row
            )
            return {
                m: (html.unescape(text), html.unescape(href) or None) for m, href, text in cells
            }
    raise AssertionError(f"no row {row_text!r}")


def drill_titles(page: str) -> list[str]:
    return re.findall(r'<td data-column="deal_title"><a href="/deals/[^"]+">([^<]*)</a>', page)


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))


def test_the_funnel_page_shows_the_figures_and_drills_down(sqlite_runtime: Runtime) -> None:
    ids = build(sqlite_runtime)
    client, _csrf, _me = web_client(sqlite_runtime, "manager")
    listing = client.get("/reports")
    assert listing.status_code == 200
    assert 'href="/reports/funnel"' in listing.text and "Funnel" in listing.text
    assert 'href="/reports"' in client.get("/inbox").text  # the nav's link

    page = client.get(f"/reports/funnel?{MARCH}")
    assert page.status_code == 200, page.text
    stages = section_html(page.text, "stages")
    intent = figures(stages, "Mutual intent")
    assert {k: v[0] for k, v in intent.items()} == {
        "entries": "3",
        "advanced": "2",
        "moved_back": "0",
        "lost": "1",
        "moved_out": "0",
        "still": "0",
        "won_later": "1",
        "conversion": "66.7%",
        "to_won": "33.3%",
        "avg_seconds": "2 h 20 min",
        "median_seconds": "2 h",
    }
    assert figures(stages, "Confirmation")["avg_seconds"][0] == "1 d"
    assert figures(stages, "Total")["entries"][0] == "7"
    assert "<svg" in stages and 'class="report-chart"' in stages  # the entries as bars
    assert figures(section_html(page.text, "win_rate"), "New clients")["win_rate"][0] == "50%"
    lost = figures(section_html(page.text, "lost"), "Too expensive")
    assert lost["deals"][0] == "1" and lost["amount"][0] == "RUB2,000.00"

    # the stage's "Entries" drills to its three deals, its "Lost" to Beta alone
    entries_link = intent["entries"][1]
    assert entries_link is not None and MARCH in entries_link
    drill = client.get(entries_link)
    assert drill.status_code == 200, drill.text
    assert sorted(drill_titles(drill.text)) == ["Alpha", "Beta", "Gamma"]
    assert f'href="/deals/{ids["beta"]}"' in drill.text
    lost_link = intent["lost"][1]
    assert lost_link is not None
    assert drill_titles(client.get(lost_link).text) == ["Beta"]

    # the drill page's CSV is exactly its items; the section's CSV sums to the figures
    csv_link = re.search(r'<a class="button csv" href="([^"]+)"', drill.text)
    assert csv_link
    drilled = client.get(html.unescape(csv_link.group(1)))
    assert drilled.status_code == 200
    assert drilled.headers["content-type"].startswith("text/csv")
    assert sorted(r["deal_title"] for r in csv_rows(drilled.text)) == ["Alpha", "Beta", "Gamma"]
    whole = csv_rows(client.get(f"/reports/funnel/stages.csv?{MARCH}").text)
    assert len(whole) == 7
    mine = [r for r in whole if r["stage_id"] == INTENT]
    assert sum(int(r["advanced"]) for r in mine) == 2 and sum(int(r["lost"]) for r in mine) == 1
    amounts = [
        r["amount_minor"] for r in csv_rows(client.get(f"/reports/funnel/lost.csv?{MARCH}").text)
    ]
    assert amounts == ["2000.00"]

    # a manager's slice: Борис has only Gamma (intent and invoice)
    boris = re.search(r'<option value="([^"]+)"[^>]*>Борис</option>', page.text)
    assert boris
    narrowed = client.get(f"/reports/funnel?{MARCH}&manager_id={boris.group(1)}")
    assert figures(section_html(narrowed.text, "stages"), "Total")["entries"][0] == "2"


def test_russian_labels_and_who_may_look(sqlite_runtime: Runtime) -> None:
    build(sqlite_runtime)
    russian, _csrf, _me = web_client(sqlite_runtime, "auditor", locale="ru")
    page = russian.get(f"/reports/funnel?{MARCH}")
    assert page.status_code == 200
    for text in ("Воронка продаж", "Входы", "Продвинулись", "Конверсия в следующий этап", "Отчёты"):
        assert text in page.text, text
    intent = figures(section_html(page.text, "stages"), "Mutual intent")
    assert intent["avg_seconds"][0] == "2 ч 20 мин"
    operator, _csrf, _me = web_client(sqlite_runtime, "operator")
    assert operator.get("/reports").status_code == 403
    assert operator.get(f"/reports/funnel?{MARCH}").status_code == 403
    assert operator.get(f"/reports/funnel/stages.csv?{MARCH}").status_code == 403
    assert 'href="/reports"' not in operator.get("/inbox").text


PROBE_SLICE = SliceColumns(period="created_at", manager_id="manager_id")


def read_probe(db: ViewReader, s: ReportSlice) -> list[dict[str, Any]]:
    PROBE_SLICE.conditions("probe", s)  # refuses the dimensions it lacks, as a real one does
    return [{"label": "one", "n": 1}]


PROBE = Report(
    name="probe",
    title="Probe",
    description="A report that cannot be sliced by pipeline.",
    sources=(
        ItemSource(
            "rows", "Rows", (Column("label", "Label"), Column("n", "N", "count")), read_probe
        ),
    ),
    sections=(Section("all", "All", "rows", ("label",), (Measure("n", "N", "sum", "n"),)),),
)


def test_a_slice_the_report_cannot_take_is_a_clear_error(
    sqlite_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "REPORTS", (*registry.REPORTS, PROBE))
    client, _csrf, _me = web_client(sqlite_runtime, "admin")
    assert client.get("/reports/probe").status_code == 200
    refused = client.get(f"/reports/probe?pipeline_id={NEW}")
    assert refused.status_code == 422
    assert "The report “Probe” cannot be sliced by pipeline." in html.unescape(refused.text)
    assert 'id="report-picker"' in refused.text  # the form stays, to change the slice
    backwards = client.get("/reports/funnel?from=2026-04-01&to=2026-03-01")
    assert backwards.status_code == 422
    assert "the period starts after it ends" in backwards.text
    assert client.get("/reports/funnel?from=2026-13-01").status_code == 422
    drill = client.get("/reports/funnel/stages/items?key.nope=1")
    assert drill.status_code == 422 and "not grouped by nope" in drill.text
    assert client.get("/reports/funnel/stages/items?measure=nope").status_code == 422
    assert client.get("/reports/funnel/nope/items").status_code == 404
    assert client.get("/reports/nope").status_code == 404
    assert client.get("/reports/funnel/stages.csv?channel=" + "x" * 300).status_code == 422
