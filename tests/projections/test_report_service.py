"""The service report on SQLite and PostgreSQL, against figures worked out by hand.

Business hours: no calendar is saved, so Monday to Friday 09:00-18:00 UTC. Surveys are on.
6 March 2026 is a Friday; `now` is Wednesday 11 March 12:00 UTC; the period is March.

- R0 (e-mail, 27 Feb 10:00, Анна answers 10:10, resolved 10:20): before the period.
- R1 (e-mail, Fri 6 Mar 17:30; a rule's auto-reply at 17:31; assigned to Анна Mon 08:00;
  Анна answers Mon 9 Mar 09:15; resolved 10:00; the client rates it "5" at 10:30):
  first response 229,500 s by the clock (63 h 45 min), 2,700 s in business hours
  (Fri 17:30-18:00 + Mon 09:00-09:15); resolution 232,200 s, 5,400 s in business hours.
- R2 (SMS, Mon 9 Mar 10:00; assigned to Борис 10:05; Борис answers 12:00; resolved 13:00;
  rated "2" at 13:30): first response 7,200 s, resolution 10,800 s (both within hours).
- R3 (e-mail, Tue 10 Mar 09:00; Анна assigned and answers 09:30; the client writes again
  10:00; open): first response 1,800 s; waiting for us since 10:00 -> 26 h = 93,600 s.
- R4 (e-mail, Tue 10 Mar 11:00; nobody assigned, no answer): waiting 25 h = 90,000 s.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eventsourcing.domain import CanCreateTimestamp

from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.history_clock import recorded_at
from threadline.domain.model.inbound import InboundMessage
from threadline.projections.reports.frame import ReportSlice, run_report, section_items
from threadline.projections.reports.service import REPORT
from threadline.services.runtime import Runtime

FRIDAY = datetime(2026, 3, 6, tzinfo=UTC)
MONDAY = datetime(2026, 3, 9, tzinfo=UTC)
TUESDAY = datetime(2026, 3, 10, tzinfo=UTC)
NOW = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)
START, END = "2026-03-01T00:00:00.000000Z", "2026-04-01T00:00:00.000000Z"


class EventClock:
    def __init__(self) -> None:
        self.moment: datetime | None = None

    def now(self) -> datetime:
        return self.moment or datetime.now(UTC)

    @contextmanager
    def at(self, moment: datetime) -> Iterator[None]:
        previous, self.moment = self.moment, moment
        try:
            with recorded_at(moment):
                yield
        finally:
            self.moment = previous


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> EventClock:
    found = EventClock()
    monkeypatch.setattr(CanCreateTimestamp, "create_timestamp", staticmethod(found.now))
    return found


def build(runtime: Runtime, clock: EventClock) -> dict[str, Any]:
    app = runtime.app
    anna = app.create_user("anna@example.com", "operator", "test", name="Анна").value[0]
    boris = app.create_user("boris@example.com", "operator", "test", name="Борис").value[0]
    app.save_survey_settings(True, [], "", "user:admin")

    def inbound(moment: datetime, key: str, text: str, **who: str) -> Any:
        channel = "sms" if "phone" in who else "email"
        with clock.at(moment):
            return app.ingest(
                InboundMessage.create(
                    channel=channel, dedup_key=key, identities=list(who.items()), text=text
                )
            ).value

    def do(moment: datetime, command: Any) -> None:
        with clock.at(moment):
            command()

    r0 = inbound(datetime(2026, 2, 27, 10, tzinfo=UTC), "r0", "Old", email="zero@example.com")
    do(
        datetime(2026, 2, 27, 10, 10, tzinfo=UTC),
        lambda: app.reply(r0.conversation_id, "A", f"user:{anna}"),
    )
    do(
        datetime(2026, 2, 27, 10, 20, tzinfo=UTC),
        lambda: app.change_conversation_status(r0.conversation_id, "resolved", f"user:{anna}"),
    )

    r1 = inbound(FRIDAY + timedelta(hours=17, minutes=30), "r1", "Вопрос", email="one@example.com")
    c1 = r1.conversation_id
    do(FRIDAY + timedelta(hours=17, minutes=31), lambda: app.reply(c1, "Auto", "rule:auto"))
    do(MONDAY + timedelta(hours=8), lambda: app.assign_conversation(c1, anna, "user:admin"))
    do(MONDAY + timedelta(hours=9, minutes=15), lambda: app.reply(c1, "Ответ", f"user:{anna}"))
    do(
        MONDAY + timedelta(hours=10),
        lambda: app.change_conversation_status(c1, "resolved", f"user:{anna}"),
    )
    inbound(MONDAY + timedelta(hours=10, minutes=30), "r1-score", "5", email="one@example.com")

    r2 = inbound(MONDAY + timedelta(hours=10), "r2", "SMS", phone="+79161112233")
    c2 = r2.conversation_id
    do(
        MONDAY + timedelta(hours=10, minutes=5),
        lambda: app.assign_conversation(c2, boris, "user:admin"),
    )
    do(MONDAY + timedelta(hours=12), lambda: app.reply(c2, "Ответ", f"user:{boris}"))
    do(
        MONDAY + timedelta(hours=13),
        lambda: app.change_conversation_status(c2, "resolved", f"user:{boris}"),
    )
    inbound(MONDAY + timedelta(hours=13, minutes=30), "r2-score", "2", phone="+79161112233")

    r3 = inbound(TUESDAY + timedelta(hours=9), "r3", "Ещё", email="three@example.com")
    c3 = r3.conversation_id
    do(
        TUESDAY + timedelta(hours=9, minutes=1),
        lambda: app.assign_conversation(c3, anna, "user:admin"),
    )
    do(TUESDAY + timedelta(hours=9, minutes=30), lambda: app.reply(c3, "Ответ", f"user:{anna}"))
    inbound(TUESDAY + timedelta(hours=10), "r3-again", "Ещё вопрос", email="three@example.com")

    inbound(TUESDAY + timedelta(hours=11), "r4", "Алло", email="four@example.com")
    assert runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=60)
    return {"anna": str(anna), "boris": str(boris)}


def rows_of(result: Any, name: str) -> Any:
    return next(s for s in result.sections if s.section.name == name)


def test_service_report(runtime: Runtime, clock: EventClock) -> None:
    people = build(runtime, clock)
    s = ReportSlice(start=START, end=END, now=NOW, options={"target_minutes": 60})
    result = run_report(runtime.views, REPORT, s)

    by_channel = rows_of(result, "by_channel")
    email = next(r for r in by_channel.rows if r.key["channel"] == "email").values
    # R1, R3, R4; answered R1 (2,700 s business) and R3 (1,800 s), both within 60 min
    assert (email["requests"], email["answered"], email["resolved"]) == (3, 2, 1)
    assert email["avg_first_response_business"] == 2_250  # (2,700 + 1,800) / 2
    assert email["median_first_response_business"] == 2_250
    assert email["avg_first_response"] == 115_650  # (229,500 + 1,800) / 2
    assert (email["within_target"], email["target_share"]) == (2, 1.0)
    assert email["avg_resolution_business"] == 5_400 and email["avg_resolution"] == 232_200
    sms = next(r for r in by_channel.rows if r.key["channel"] == "sms").values
    assert (sms["requests"], sms["answered"], sms["within_target"], sms["target_share"]) == (
        1,
        1,
        0,
        0.0,
    )
    assert sms["median_first_response"] == sms["median_first_response_business"] == 7_200
    assert sms["avg_resolution"] == sms["avg_resolution_business"] == 10_800
    total = by_channel.total.values
    # four requests; first responses 2,700 / 1,800 / 7,200 business: average 3,900, median 2,700
    assert (total["requests"], total["answered"], total["within_target"]) == (4, 3, 2)
    assert total["target_share"] == pytest.approx(2 / 3)
    assert total["avg_first_response_business"] == 3_900
    assert total["median_first_response_business"] == 2_700

    by_operator = {r.key["assignee"]: r.values for r in rows_of(result, "by_operator").rows}
    assert {name: v["requests"] for name, v in by_operator.items()} == {
        "Анна": 2,
        "Борис": 1,
        "": 1,
    }
    responders = {r.key["responder_id"]: r.values for r in rows_of(result, "responders").rows}
    assert responders[people["anna"]]["answered"] == 2
    assert responders[people["anna"]]["avg_first_response_business"] == 2_250
    assert responders[people["boris"]]["answered"] == 1

    now = rows_of(result, "now").total.values
    # R3 (waiting since Tue 10:00: 26 h) and R4 (unassigned, waiting since 11:00: 25 h)
    assert (now["open"], now["unassigned"], now["waiting"]) == (2, 1, 2)
    assert now["longest_wait"] == 93_600

    csat = rows_of(result, "csat")
    scores = {r.key["assignee"]: r.values for r in csat.rows}
    assert scores["Анна"]["avg_score"] == 5 and scores["Анна"]["satisfied_share"] == 1.0
    assert scores["Борис"]["avg_score"] == 2 and scores["Борис"]["satisfied_share"] == 0.0
    # two answers: (5 + 2) / 2 = 3.5; one of them 4 or 5
    assert (csat.total.values["answers"], csat.total.values["avg_score"]) == (2, 3.5)
    assert csat.total.values["satisfied_share"] == 0.5

    # a target of 120 min takes in R2 (7,200 s exactly): 3 of 3
    wider = run_report(
        runtime.views,
        REPORT,
        ReportSlice(start=START, end=END, now=NOW, options={"target_minutes": 120}),
    )
    assert rows_of(wider, "by_channel").total.values["target_share"] == 1.0

    # slices: the SMS channel; the operator Борис; pipelines mean nothing here
    only_sms = run_report(
        runtime.views, REPORT, ReportSlice(start=START, end=END, now=NOW, channel="sms")
    )
    assert rows_of(only_sms, "by_channel").total.values["requests"] == 1
    boris = run_report(
        runtime.views,
        REPORT,
        ReportSlice(start=START, end=END, now=NOW, manager_id=people["boris"]),
    )
    assert rows_of(boris, "by_operator").total.values["requests"] == 1
    with pytest.raises(InvalidInput):
        run_report(
            runtime.views, REPORT, ReportSlice(start=START, end=END, now=NOW, pipeline_id="x")
        )

    # the drill-down of "within target" for e-mail is R1 and R3
    _, _, items = section_items(
        runtime.views, REPORT, "by_channel", s, {"channel": "email"}, "within_target"
    )
    assert sorted(i["first_response_business_seconds"] for i in items) == [1_800, 2_700]


def test_service_report_over_the_api_csv_sums_to_the_figures(
    sqlite_runtime: Runtime, clock: EventClock
) -> None:
    from fastapi.testclient import TestClient

    from threadline.services.api.app import create_app

    runtime = sqlite_runtime
    build(runtime, clock)
    token = runtime.app.create_user("boss@example.com", "manager", "test").value[1]
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(runtime)) as http:
        page = http.get("/api/reports/service?from=2026-03-01&to=2026-03-31", headers=headers)
        assert page.status_code == 200, page.text
        section = next(s for s in page.json()["sections"] if s["name"] == "by_channel")
        assert section["total"]["values"]["requests"] == 4
        exported = http.get(
            "/api/reports/service/sections/by_channel/items.csv?from=2026-03-01&to=2026-03-31",
            headers=headers,
        )
        assert exported.status_code == 200
        rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
        assert len(rows) == 4
        for name in ("answered", "resolved", "within_target"):
            assert sum(int(r[name]) for r in rows) == section["total"]["values"][name]
        bad = http.get("/api/reports/service?target_minutes=0", headers=headers)
        assert bad.status_code == 422


def test_service_items_and_slices_through_the_client(runtime: Runtime, clock: EventClock) -> None:
    """The items behind the figures (the SQL sources as rows), and the slices that read the
    client's card (first touch, group) on both databases."""
    from threadline.projections.reports.service import read_requests

    people = build(runtime, clock)
    s = ReportSlice(start=START, end=END, now=NOW, options={"target_minutes": 60})
    items = read_requests(runtime.views, s)
    assert [i["channel"] for i in items] == ["email", "sms", "email", "email"]  # by opened_at
    first = items[0]
    assert (first["day"], first["assignee"], first["responder"]) == ("2026-03-06", "Анна", "Анна")
    assert (first["answered"], first["resolved"], first["within_target"]) == (1, 1, 1)
    assert first["first_response_seconds"] == 229_500
    assert first["first_response_business_seconds"] == 2_700
    assert (first["score"], first["rated"], first["satisfied"]) == (5, 1, 1)
    last = items[-1]
    assert (last["answered"], last["within_target"], last["assignee_id"]) == (0, 0, None)
    assert (last["assignee"], last["responder"], last["score"], last["rated"]) == ("", "", None, 0)
    assert {i["responder_id"] for i in items if i["answered"]} == {people["anna"], people["boris"]}

    _, _, waiting = section_items(runtime.views, REPORT, "now", s, measure="longest_wait")
    assert sorted(i["waiting_seconds"] for i in waiting) == [90_000, 93_600]
    names = sorted((i["contact"], i["inbox"], i["assignee"]) for i in waiting)
    assert names == [("four@example.com", "", ""), ("three@example.com", "", "Анна")]

    # the slices through the client's card: nothing of these clients has a campaign or group
    for narrowed in (
        ReportSlice(start=START, end=END, now=NOW, utm_campaign="spring"),
        ReportSlice(start=START, end=END, now=NOW, group="vip"),
    ):
        result = run_report(runtime.views, REPORT, narrowed)
        assert rows_of(result, "by_channel").total.values["requests"] == 0
        assert rows_of(result, "now").total.values["open"] == 0
    everyone = run_report(
        runtime.views, REPORT, ReportSlice(start=START, end=END, now=NOW, group="")
    )
    assert rows_of(everyone, "by_channel").total.values["requests"] == 4
    assert rows_of(everyone, "now").total.values["open"] == 2
