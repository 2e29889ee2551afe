"""The channels report on SQLite and PostgreSQL, against figures worked out by hand.

Business zone Europe/Moscow (UTC+3); March 2026 there is [28 Feb 21:00 UTC, 31 Mar 21:00 UTC).

- Анна (first touch telegram; responsible: the manager Марина; company ООО Альфа in group
  VIP): telegram at 2 Mar 10:00 and 10:20 UTC (one hour bucket, one item of 2) and at
  3 Mar 09:00; e-mail at 5 Mar 12:00. Our reply does not count.
  => March: telegram 3, e-mail 1; her shares 3/4 and 1/4.
- Борис (first touch SMS, no responsible, no company): SMS at 2 Mar 11:00 UTC and at
  31 Mar 20:30 UTC (23:30 in Moscow: still March); a call at 31 Mar 22:30 UTC, which is
  1 April 01:30 in Moscow: April. => March: SMS 2 (share 1); April: voice 1.
- Overall March: 6 inbound contacts: telegram 3 (1/2), SMS 2 (1/3), e-mail 1 (1/6).
"""

# Russian names on purpose: Cyrillic letters that look Latin are not a mistake here.
# ruff: noqa: RUF001, RUF002

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.history_clock import recorded_at
from threadline.domain.model.inbound import InboundMessage
from threadline.projections.reports.channels import REPORT
from threadline.projections.reports.frame import ReportSlice, run_report, section_items
from threadline.services.runtime import Runtime

MOSCOW = "Europe/Moscow"
NOW = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)


def receive(runtime: Runtime, moment: datetime, key: str, channel: str, **kw: Any) -> Any:
    identities = [(k, kw.pop(k)) for k in ("email", "phone", "telegram") if k in kw]
    with recorded_at(moment):
        return runtime.app.ingest(
            InboundMessage.create(
                channel=channel, dedup_key=key, identities=identities, text="hi", **kw
            )
        ).value


def utc(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def build(runtime: Runtime) -> dict[str, UUID]:
    app = runtime.app
    marina, _ = app.create_user("marina@example.com", "manager", "test", name="Марина").value
    alpha = app.create_company("test", "ООО Альфа", client_group="VIP").value
    anna = receive(runtime, utc(2, 10), "a1", "telegram", telegram="501", sender_name="Анна")
    receive(runtime, utc(2, 10, 20), "a2", "telegram", telegram="501")
    receive(runtime, utc(3, 9), "a3", "telegram", telegram="501")
    receive(
        runtime, utc(5, 12), "a4", "email", email="anna@example.com", telegram="501",
        sender_name="Анна",
    )  # fmt: skip
    with recorded_at(utc(5, 13)):
        _ = app.reply(anna.conversation_id, "Ответ", "user:test").value
    _ = app.update_contact(anna.contact_id, "test", responsible_id=marina, company_id=alpha).value
    boris = receive(runtime, utc(2, 11), "b1", "sms", phone="+79161112233", sender_name="Борис")
    receive(runtime, utc(31, 20, 30), "b2", "sms", phone="+79161112233")
    receive(
        runtime, utc(31, 22, 30), "b3", "voice", phone="+79161112233",
        metadata={"kind": "call", "call": {"sid": "CA1", "direction": "inbound", "status": "ringing"}},
    )  # fmt: skip
    assert runtime.wait_for_views(app.recorder.max_notification_id(), timeout=60)
    return {"anna": anna.contact_id, "boris": boris.contact_id, "marina": marina}


def march(**values: Any) -> ReportSlice:
    return ReportSlice(
        start="2026-02-28T21:00:00.000000Z",
        end="2026-03-31T21:00:00.000000Z",
        timezone=MOSCOW,
        now=NOW,
        **values,
    )


def rows_of(result: Any, section: str) -> dict[Any, dict[str, Any]]:
    found = next(s for s in result.sections if s.section.name == section)
    return {tuple(r.key.values()): r.values for r in found.rows}


def test_channel_shares_by_hand(runtime: Runtime) -> None:
    ids = build(runtime)
    anna, boris = str(ids["anna"]), str(ids["boris"])
    result = run_report(runtime.views, REPORT, march())
    clients = rows_of(result, "clients")
    assert {k: (v["inbound"], v["days"], v["share"]) for k, v in clients.items()} == {
        (anna, "Анна", "telegram"): (3, 2, pytest.approx(3 / 4)),
        (anna, "Анна", "email"): (1, 1, pytest.approx(1 / 4)),
        (boris, "Борис", "sms"): (2, 2, pytest.approx(1.0)),
    }
    overall = next(s for s in result.sections if s.section.name == "overall")
    assert [(r.key["channel"], r.values["inbound"], r.values["clients"]) for r in overall.rows] == [
        ("telegram", 3, 1),
        ("sms", 2, 1),
        ("email", 1, 1),
    ]
    assert [r.values["share"] for r in overall.rows] == [
        pytest.approx(1 / 2),
        pytest.approx(1 / 3),
        pytest.approx(1 / 6),
    ]
    assert overall.total.values["inbound"] == 6
    # the call of 31 March 22:30 UTC is April in Moscow: over the whole history it is its
    # month's only contact
    months = rows_of(
        run_report(runtime.views, REPORT, ReportSlice(timezone=MOSCOW, now=NOW)), "over_time"
    )
    assert {k: (v["inbound"], v["share"]) for k, v in months.items()} == {
        ("2026-03", "telegram"): (3, pytest.approx(1 / 2)),
        ("2026-03", "sms"): (2, pytest.approx(1 / 3)),
        ("2026-03", "email"): (1, pytest.approx(1 / 6)),
        ("2026-04", "voice"): (1, pytest.approx(1.0)),
    }
    # drill-down: Анна's telegram figure is her two telegram days, 2 + 1
    _, _, items = section_items(
        runtime.views, REPORT, "clients", march(), {"contact_id": anna, "channel": "telegram"},
        "inbound",
    )  # fmt: skip
    assert [(i["day"], i["inbound"]) for i in items] == [("2026-03-02", 2), ("2026-03-03", 1)]


def test_slices(runtime: Runtime) -> None:
    ids = build(runtime)

    def inbound(**values: Any) -> dict[str, int]:
        result = run_report(runtime.views, REPORT, march(**values))
        return {k[0]: v["inbound"] for k, v in rows_of(result, "overall").items()}

    assert inbound(manager_id=str(ids["marina"])) == {"telegram": 3, "email": 1}  # Анна's
    assert inbound(channel="sms") == {"sms": 2}
    assert inbound(source="sms") == {"sms": 2}  # Борис's first touch
    assert inbound(source="telegram") == {"telegram": 3, "email": 1}
    assert inbound(group="VIP") == {"telegram": 3, "email": 1}
    assert inbound(group="") == {"sms": 2}
    with pytest.raises(InvalidInput) as refused:
        run_report(runtime.views, REPORT, march(pipeline_id="p1"))
    assert refused.value.args and "pipeline_id" in str(refused.value)


def test_channels_over_the_api_csv_sums_to_the_figures(sqlite_runtime: Runtime) -> None:
    from fastapi.testclient import TestClient

    from threadline.services.api.app import create_app

    runtime = sqlite_runtime
    build(runtime)
    token = runtime.app.create_user("boss@example.com", "manager", "test").value[1]
    headers = {"Authorization": f"Bearer {token}"}
    query = "from=2026-03-01&to=2026-03-31"
    with TestClient(create_app(runtime)) as http:
        page = http.get(f"/api/reports/channels?{query}", headers=headers)
        assert page.status_code == 200, page.text
        overall = next(s for s in page.json()["sections"] if s["name"] == "overall")
        figures = {r["key"]["channel"]: r["values"]["inbound"] for r in overall["rows"]}
        # the test settings' business zone is UTC: the call of 31 March 22:30 is March
        assert figures == {"telegram": 3, "sms": 2, "email": 1, "voice": 1}
        exported = http.get(
            f"/api/reports/channels/sections/overall/items.csv?{query}", headers=headers
        )
        assert exported.status_code == 200
        rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
        for channel, figure in figures.items():
            assert sum(int(r["inbound"]) for r in rows if r["channel"] == channel) == figure
        assert sum(int(r["inbound"]) for r in rows) == overall["total"]["values"]["inbound"] == 7
        refused = http.get(f"/api/reports/channels?{query}&pipeline_id=x", headers=headers)
        assert refused.status_code == 422


def test_overall_drills_into_hour_buckets(runtime: Runtime) -> None:
    """The overall and by-month sections fold the hour buckets themselves (no days needed):
    their figures equal the per-day items' and their drill-down lists the buckets."""
    ids = build(runtime)
    anna = str(ids["anna"])
    result = run_report(runtime.views, REPORT, march())
    overall = next(s for s in result.sections if s.section.name == "overall")
    telegram = next(r for r in overall.rows if r.key["channel"] == "telegram")
    assert (telegram.values["inbound"], telegram.items) == (3, 2)  # two hour buckets
    _, source, items = section_items(
        runtime.views, REPORT, "overall", march(), {"channel": "telegram"}, "inbound"
    )
    assert source.name == "buckets"
    assert [(i["contact_id"], i["contact"], i["hour"], i["day"], i["inbound"]) for i in items] == [
        (anna, "Анна", "2026-03-02T10:00:00.000000Z", "2026-03-02", 2),
        (anna, "Анна", "2026-03-03T09:00:00.000000Z", "2026-03-03", 1),
    ]
    # Борис's call of 31 March 22:30 UTC is in the April bucket of the by-month section
    _, _, april = section_items(
        runtime.views,
        REPORT,
        "over_time",
        ReportSlice(timezone=MOSCOW, now=NOW),
        {"month": "2026-04"},
    )
    assert [(i["channel"], i["day"], i["inbound"]) for i in april] == [("voice", "2026-04-01", 1)]
