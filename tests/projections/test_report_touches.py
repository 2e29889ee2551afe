"""The touches report on SQLite and PostgreSQL, against figures worked out by hand.

Messages and calls take the real time (they are not back-dated), so the touches happen
"now" (T, within a second or two) and the wins are recorded at fixed distances after T0,
a moment taken just before them:

- C1 is reached by the campaign "Spring mailing" (a sent recipient), by a message of a rule
  (actor rule:R) and by two logged calls (the second is the latest call).
  - A (Анна, 1,000.00, profit 400.00): won at T0 + 29 days: within 30 days of each touch
    (29 days minus the seconds between T0 and the touch).
  - B (Борис, 2,000.00): won at T0 + 31 days: more than 30 days after every touch.
- C2 has no touch: D (Анна, 500.00) won at T0 + 5 days.

With days=30 (the default): calls, the campaign and the rule each bring A (1 deal,
1,000.00); B and D are "none" (2 deals, 2,500.00). With days=32, B counts for each touch
source too, and only D is left without a touch.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from threadline.domain.model.campaign import (
    CampaignSend,
    campaign_message_id,
    recipient_id_for,
)
from threadline.domain.model.history_clock import recorded_at
from threadline.domain.model.message import Message
from threadline.domain.model.pipeline import seeded_pipeline_id
from threadline.projections.reports.frame import ReportSlice, run_report, section_items
from threadline.projections.reports.touches import REPORT
from threadline.services.runtime import Runtime

NEW = seeded_pipeline_id("new-clients")
DAY = 86400.0


def build(runtime: Runtime) -> dict[str, Any]:
    app = runtime.app
    app.seed_pipelines("test")
    anna, _ = app.create_user("anna@example.com", "manager", "test", name="Анна").value
    boris, _ = app.create_user("boris@example.com", "manager", "test", name="Борис").value
    c1 = app.create_contact("test", "C1", identities=[("email", "c1@example.com")]).value
    c2 = app.create_contact("test", "C2").value
    t0 = datetime.now(UTC)

    # the campaign's message to C1
    app.save_template("spring", "Spring", {"default": {"text": "Весна!"}}, "test")
    campaign = app.create_campaign("Spring mailing", "spring", {}, "email", None, "test").value
    app.start_campaign(campaign, "test")
    app.queue_campaign_recipients(campaign, [(c1, "email")], str(c1), "test")
    app.complete_campaign_audience(campaign, "test")
    recipient = recipient_id_for(campaign, c1)
    app.send_campaign_message(
        CampaignSend(recipient, c1, "email", {"text": "Весна!", "subject": "Весна"}), "campaigns"
    )
    # a rule's message to C1, in the conversation the campaign opened
    sent = runtime.app.repository.get(campaign_message_id(recipient))
    assert isinstance(sent, Message)
    rule = uuid4()
    app.reply(sent.conversation_id, "Весенняя скидка", f"rule:{rule}")
    # two logged calls
    app.log_call(f"user:{anna}", "outbound", "answered", 60, contact_id=c1)
    app.log_call(f"user:{anna}", "inbound", "answered", 30, contact_id=c1)

    def won(title: str, contact: UUID, manager: UUID, price: str, cost: str, after: float) -> UUID:
        line = {"name": title, "quantity": 1, "price": price, "cost": cost, "vat": "none"}
        with recorded_at(t0 + timedelta(days=1)):
            deal = app.create_deal(
                "test", title, NEW, contact_id=contact, manager_id=manager, lines=[line]
            ).value
        with recorded_at(t0 + timedelta(days=after)):
            app.win_deal(deal, "test")
        return deal

    a = won("A", c1, anna, "1000", "600", 29)
    b = won("B", c1, boris, "2000", "0", 31)
    d = won("D", c2, anna, "500", "0", 5)
    assert runtime.wait_for_views(app.recorder.max_notification_id(), timeout=60)
    return {
        **{"t0": t0, "campaign": campaign, "rule": rule, "a": a, "b": b, "d": d},
        **{"anna": anna, "boris": boris},
    }


def window(t0: datetime, **values: Any) -> ReportSlice:
    """From T0's day to 40 days later: every win of the data set."""
    start = datetime.combine(t0.date(), datetime.min.time(), UTC)
    return ReportSlice(
        start=start.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
        end=(start + timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
        options=values.pop("options", {"days": 30}),
        **values,
    )


def rows_of(result: Any, section: str) -> dict[Any, dict[str, Any]]:
    found = next(s for s in result.sections if s.section.name == section)
    return {tuple(r.key.values()): r.values for r in found.rows}


def test_touches_figures_by_hand(runtime: Runtime) -> None:
    ids = build(runtime)
    campaign, rule = str(ids["campaign"]), str(ids["rule"])
    result = run_report(runtime.views, REPORT, window(ids["t0"]))
    by_touch = rows_of(result, "by_touch")
    assert set(by_touch) == {
        ("call", "calls", "Calls", "RUB"),
        ("campaign", campaign, "Spring mailing", "RUB"),
        ("rule", rule, rule, "RUB"),  # no rule of that id in the views: its id is its name
        ("none", "", "No touch", "RUB"),
    }
    calls = by_touch[("call", "calls", "Calls", "RUB")]
    # A once, though two calls reached C1; won 29 days (less a few seconds) after the touch
    assert (calls["deals"], calls["revenue"], calls["profit"]) == (1, 100_000, 40_000)
    assert 28.99 < calls["avg_days"] <= 29.0
    assert by_touch[("campaign", campaign, "Spring mailing", "RUB")]["revenue"] == 100_000
    assert by_touch[("rule", rule, rule, "RUB")]["deals"] == 1
    none = by_touch[("none", "", "No touch", "RUB")]
    # B (31 days: too late) and D (no touch): 2,000 + 500
    assert (none["deals"], none["revenue"], none["profit"]) == (2, 250_000, 250_000)
    by_kind = rows_of(result, "by_kind")
    assert {key[0]: (v["deals"], v["revenue"]) for key, v in by_kind.items()} == {
        "call": (1, 100_000),
        "campaign": (1, 100_000),
        "rule": (1, 100_000),
        "none": (2, 250_000),
    }
    # the call's item is the latest of the two calls, and only it
    _, _, items = section_items(
        runtime.views, REPORT, "by_touch", window(ids["t0"]), {"kind": "call"}, "revenue"
    )
    assert [i["deal_id"] for i in items] == [str(ids["a"])]

    wider = run_report(runtime.views, REPORT, window(ids["t0"], options={"days": 32}))
    kinds = {key[0]: (v["deals"], v["revenue"]) for key, v in rows_of(wider, "by_kind").items()}
    # B is now 31 days after each touch: 1,000 + 2,000 for each source; D alone untouched
    assert kinds == {
        "call": (2, 300_000),
        "campaign": (2, 300_000),
        "rule": (2, 300_000),
        "none": (1, 50_000),
    }


def test_slices(runtime: Runtime) -> None:
    ids = build(runtime)
    by_anna = run_report(runtime.views, REPORT, window(ids["t0"], manager_id=str(ids["anna"])))
    kinds = {key[0]: v["deals"] for key, v in rows_of(by_anna, "by_kind").items()}
    assert kinds == {"call": 1, "campaign": 1, "rule": 1, "none": 1}  # A, and D untouched
    # the period narrows by when the deal was won: the first 10 days hold only D
    first = ReportSlice(
        start=window(ids["t0"]).start,
        end=(ids["t0"] + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
        options={"days": 30},
    )
    assert list(rows_of(run_report(runtime.views, REPORT, first), "by_kind")) == [("none", "RUB")]


def test_touches_csv_over_the_api(sqlite_runtime: Runtime) -> None:
    from fastapi.testclient import TestClient

    from threadline.services.api.app import create_app

    runtime = sqlite_runtime
    ids = build(runtime)
    token = runtime.app.create_user("boss@example.com", "manager", "test").value[1]
    headers = {"Authorization": f"Bearer {token}"}
    start = ids["t0"].date()
    end = start + timedelta(days=39)
    query = f"from={start}&to={end}"
    with TestClient(create_app(runtime)) as http:
        page = http.get(f"/api/reports/touches?{query}&days=32", headers=headers)
        assert page.status_code == 200, page.text
        section = next(s for s in page.json()["sections"] if s["name"] == "by_kind")
        exported = http.get(
            f"/api/reports/touches/sections/by_kind/items.csv?{query}&days=32", headers=headers
        )
        rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
        for row in section["rows"]:
            mine = [r for r in rows if r["kind"] == row["key"]["kind"]]
            assert len(mine) == row["values"]["deals"]
            revenue = sum(float(r["revenue_minor"]) for r in mine)
            assert revenue * 100 == pytest.approx(row["values"]["revenue"])
        assert len(rows) == 7  # A and B for three kinds, D
        bad = http.get(f"/api/reports/touches?{query}&days=0", headers=headers)
        assert bad.status_code == 422


def test_touches_before_the_period_count(runtime: Runtime) -> None:
    """A period starting 20 days after the touches: A (won at T0 + 29 days) still counts
    for each touch source, B (T0 + 31) has none within 30 days, D (T0 + 5) is before it."""
    ids = build(runtime)
    start = ids["t0"] + timedelta(days=20)
    late = ReportSlice(
        start=start.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        end=(start + timedelta(days=20)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        options={"days": 30},
    )
    kinds = {
        key[0]: (v["deals"], v["revenue"])
        for key, v in rows_of(run_report(runtime.views, REPORT, late), "by_kind").items()
    }
    assert kinds == {
        "call": (1, 100_000),
        "campaign": (1, 100_000),
        "rule": (1, 100_000),
        "none": (1, 200_000),
    }
