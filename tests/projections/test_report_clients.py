"""The clients report on SQLite and PostgreSQL, against figures worked out by hand.

Period: March 2026 (UTC); `now` = 20 March 2026 12:00 UTC (today = 20 March).

ООО Ромашка (group VIP; its contact Анна wrote on telegram on 2 and 4 March 09:00 and by
e-mail on 3 March 09:00 => preferred telegram, last contact 4 March 09:00):
- invoices (RUB), issued 1 March:
  I1 1,000 due 5 Mar, paid in full on 4 Mar          => on time, 0 days late;
  I2 2,000 due 10 Mar, 1,500 paid 9 Mar + 500 13 Mar => fully paid 13 Mar, 3 days late;
  I3   500 due 15 Mar, unpaid                         => unpaid overdue, 20 - 15 = 5 days late;
  I4   700 due 25 Mar, unpaid                         => not due yet, not judged.
  => 4 invoices, 3 judged, 1 on time (share 1/3), 2 late, 1 unpaid overdue,
     average days late (0 + 3 + 5) / 3 = 8/3.
- deals (RUB, manager Марина): D1 1,000 won on 5 March => revenue 100,000 minor;
  D2 2,000 open, expected 28 March, probability 30 % => forecast 60,000 minor;
  D3 5,000 open, expected 15 April => outside March, no forecast.
Борис (a contact without a company; one SMS on 6 March 10:00 => preferred sms):
- D4 300 USD won on 7 March => revenue 30,000 USD minor; no invoices.
"""

# Russian names on purpose: Cyrillic letters that look Latin are not a mistake here.
# ruff: noqa: RUF001, RUF002

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from threadline.domain.commands.documents import DocumentDraft, Numbered, RenderedFile
from threadline.domain.commands.payments import Allocation, PaymentEntry, PaymentInput
from threadline.domain.model.document import DocumentKind
from threadline.domain.model.history_clock import recorded_at
from threadline.domain.model.inbound import InboundMessage
from threadline.domain.model.money import Money
from threadline.domain.model.payment import Direction, TargetKind, payment_id_for
from threadline.domain.model.pipeline import seeded_pipeline_id
from threadline.projections.reports.clients import REPORT
from threadline.projections.reports.frame import ReportSlice, run_report, section_items
from threadline.services.runtime import Runtime

NEW = seeded_pipeline_id("new-clients")
NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


def utc(day: int, hour: int = 9, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def receive(runtime: Runtime, moment: datetime, key: str, channel: str, **kw: Any) -> Any:
    identities = [(k, kw.pop(k)) for k in ("email", "phone", "telegram") if k in kw]
    with recorded_at(moment):
        return runtime.app.ingest(
            InboundMessage.create(
                channel=channel, dedup_key=key, identities=identities, text="hi", **kw
            )
        ).value


def render_with(runtime: Runtime) -> Any:
    store = runtime.attachment_access.store

    def render(numbered: Numbered) -> RenderedFile:
        meta = store.put(f"invoice {numbered.display_number}".encode(), "i.pdf", "application/pdf")
        return RenderedFile({**meta.public(), "filename": meta.filename}, "0" * 64)

    return render


def invoice(runtime: Runtime, company: UUID, total: str, due: date) -> UUID:
    draft = DocumentDraft(
        kind=DocumentKind.INVOICE,
        series="СЧ",
        language="ru",
        issued_on=date(2026, 3, 1),
        due_on=due,
        amount=Money(Decimal(total), "RUB"),
        vat=Money(Decimal(0), "RUB"),
        personal={"title": "Счёт на оплату"},
        template={"id": "shipped:invoice:ru", "version": 0, "shipped": True},
        company_id=company,
    )
    invoice_id: UUID = runtime.app.issue_document(draft, render_with(runtime), "user:test").value
    return invoice_id


def pay(runtime: Runtime, key: str, amount: str, paid_on: date, invoice_id: UUID) -> None:
    money = Money(Decimal(amount), "RUB")
    entry = PaymentEntry(
        PaymentInput(
            payment_id=payment_id_for(key),
            direction=Direction.IN,
            amount=money,
            paid_on=paid_on,
            counterparty={"name": "ООО Ромашка", "inn": "7707083893"},
            purpose="Оплата по счёту",
        ),
        (Allocation(TargetKind.INVOICE, invoice_id, money),),
    )
    _ = runtime.app.record_payments([entry], "user:test").value


def build(runtime: Runtime) -> dict[str, Any]:
    app = runtime.app
    assert app.seed_pipelines("test").value >= 0
    marina, _ = app.create_user("marina@example.com", "manager", "test", name="Марина").value
    romashka = app.create_company("test", "ООО Ромашка", client_group="VIP").value
    anna = receive(runtime, utc(2), "a1", "telegram", telegram="501", sender_name="Анна")
    receive(runtime, utc(3), "a2", "email", email="anna@example.com", telegram="501")
    receive(runtime, utc(4), "a3", "telegram", telegram="501")
    _ = app.update_contact(anna.contact_id, "test", company_id=romashka).value
    boris = receive(runtime, utc(6, 10), "b1", "sms", phone="+79161112233", sender_name="Борис")

    i1 = invoice(runtime, romashka, "1000", date(2026, 3, 5))
    i2 = invoice(runtime, romashka, "2000", date(2026, 3, 10))
    i3 = invoice(runtime, romashka, "500", date(2026, 3, 15))
    invoice(runtime, romashka, "700", date(2026, 3, 25))
    pay(runtime, "p1", "1000", date(2026, 3, 4), i1)
    pay(runtime, "p2", "1500", date(2026, 3, 9), i2)
    pay(runtime, "p3", "500", date(2026, 3, 13), i2)

    def deal(moment: datetime, title: str, amount: str, **extra: Any) -> UUID:
        with recorded_at(moment):
            deal_id: UUID = app.create_deal(
                "test", title, NEW, manager_id=marina, amount=amount, **extra
            ).value
        return deal_id

    d1 = deal(utc(3), "D1", "1000", company_id=romashka)
    with recorded_at(utc(5)):
        _ = app.win_deal(d1, "test").value
    d2 = deal(utc(3), "D2", "2000", company_id=romashka, expected_close="2026-03-28")
    with recorded_at(utc(4)):
        _ = app.update_deal(d2, "test", probability=30).value
    deal(utc(3), "D3", "5000", company_id=romashka, expected_close="2026-04-15")
    d4 = deal(utc(6), "D4", "300", contact_id=boris.contact_id, currency="USD")
    with recorded_at(utc(7)):
        _ = app.win_deal(d4, "test").value
    assert runtime.wait_for_views(app.recorder.max_notification_id(), timeout=60)
    return {
        "romashka": str(romashka),
        "anna": str(anna.contact_id),
        "boris": str(boris.contact_id),
        "marina": str(marina),
        "i3": str(i3),
    }


def march(**values: Any) -> ReportSlice:
    return ReportSlice(
        start="2026-03-01T00:00:00.000000Z", end="2026-04-01T00:00:00.000000Z", now=NOW, **values
    )


def rows_of(result: Any, section: str) -> dict[Any, dict[str, Any]]:
    found = next(s for s in result.sections if s.section.name == section)
    return {tuple(r.key.values()): r.values for r in found.rows}


def test_clients_figures_by_hand(runtime: Runtime) -> None:
    ids = build(runtime)
    result = run_report(runtime.views, REPORT, march())
    romashka = (
        "company",
        ids["romashka"],
        "ООО Ромашка",
        "2026-03-04T09:00:00.000000Z",
        "telegram",
    )
    boris = ("contact", ids["boris"], "Борис", "2026-03-06T10:00:00.000000Z", "sms")
    discipline = rows_of(result, "discipline")
    assert list(discipline) == [romashka]
    figures = discipline[romashka]
    assert {k: v for k, v in figures.items() if k not in ("on_time_share", "avg_days_late")} == {
        "invoices": 4,
        "judged": 3,
        "on_time": 1,
        "late": 2,
        "unpaid_overdue": 1,
    }
    assert figures["on_time_share"] == pytest.approx(1 / 3)
    assert figures["avg_days_late"] == pytest.approx(8 / 3)
    money = rows_of(result, "money")
    assert money == {
        (*romashka, "RUB"): {"won": 1, "revenue": 100000, "open": 1, "forecast": 60000},
        (*boris, "USD"): {"won": 1, "revenue": 30000, "open": 0, "forecast": 0},
    }
    # the unpaid overdue figure drills to I3, the late one to I2 and I3
    _, _, overdue = section_items(
        runtime.views, REPORT, "discipline", march(), {"client_id": ids["romashka"]},
        "unpaid_overdue",
    )  # fmt: skip
    assert [(i["fact_id"], i["days_late"]) for i in overdue] == [(ids["i3"], 5)]
    _, _, late = section_items(runtime.views, REPORT, "discipline", march(), None, "late")
    assert sorted((i["due_on"], i["paid_on"], i["days_late"]) for i in late) == [
        ("2026-03-10", "2026-03-13", 3),
        ("2026-03-15", None, 5),
    ]


def test_clients_slices(runtime: Runtime) -> None:
    ids = build(runtime)

    def clients(section: str, **values: Any) -> set[str]:
        return {k[2] for k in rows_of(run_report(runtime.views, REPORT, march(**values)), section)}

    assert clients("money", group="VIP") == {"ООО Ромашка"}
    assert clients("money", group="") == {"Борис"}
    assert clients("discipline", group="") == set()
    # invoices without a deal have no manager: a manager's slice keeps deals only
    assert clients("money", manager_id=ids["marina"]) == {"ООО Ромашка", "Борис"}
    assert clients("discipline", manager_id=ids["marina"]) == set()
    # April: D3 is expected then (forecast 5,000 x its stage's probability), nothing won
    april = ReportSlice(
        start="2026-04-01T00:00:00.000000Z", end="2026-05-01T00:00:00.000000Z", now=NOW
    )
    rows = rows_of(run_report(runtime.views, REPORT, april), "money")
    assert [(k[2], v["won"], v["open"]) for k, v in rows.items()] == [("ООО Ромашка", 0, 1)]


def test_clients_over_the_api_csv_sums_to_the_figures(sqlite_runtime: Runtime) -> None:
    from fastapi.testclient import TestClient

    from threadline.services.api.app import create_app

    runtime = sqlite_runtime
    build(runtime)
    token = runtime.app.create_user("boss@example.com", "manager", "test").value[1]
    headers = {"Authorization": f"Bearer {token}"}
    query = "from=2026-03-01&to=2026-03-31"
    with TestClient(create_app(runtime)) as http:
        page = http.get(f"/api/reports/clients?{query}", headers=headers)
        assert page.status_code == 200, page.text
        sections = {s["name"]: s for s in page.json()["sections"]}
        money = sections["money"]
        exported = http.get(
            f"/api/reports/clients/sections/money/items.csv?{query}", headers=headers
        )
        assert exported.status_code == 200
        rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
        for row in money["rows"]:
            mine = [r for r in rows if r["client_id"] == row["key"]["client_id"]]
            revenue = sum(Decimal(r["revenue_minor"]) for r in mine)
            assert revenue * 100 == row["values"]["revenue"]
        # 1,000 RUB for Ромашка, 300 USD for Борис
        assert sorted(r["values"]["revenue"] for r in money["rows"]) == [30000, 100000]
        discipline = http.get(
            f"/api/reports/clients/sections/discipline/items.csv?{query}", headers=headers
        ).text.lstrip("\ufeff")
        invoices = list(csv.DictReader(io.StringIO(discipline)))
        judged = sections["discipline"]["total"]["values"]["judged"]
        assert sum(int(r["judged"]) for r in invoices) == judged
        assert len(invoices) == 4


def test_clients_preferred_channel_ties_as_contact_inbound_ranks_them(runtime: Runtime) -> None:
    """A company's channels are summed over its contacts; a tie in counts goes to the most
    recent channel, and at the same moment to the later channel name (as `preferred_of`).

    ООО Тюльпан: Пётр telegram 2 and 9 March 09:00, Ольга e-mail 3 and 9 March 09:00
    => 2 : 2 at the same moment => telegram (the later name).
    ООО Лилия: Иван SMS 2 and 4 March, e-mail 5 March; Вера e-mail 10 March
    => SMS 2 : e-mail 2, e-mail the most recent => email (Иван alone prefers SMS).
    """
    from threadline.projections.contact_inbound import inbound_totals, preferred_of

    ids = build(runtime)
    app = runtime.app
    tulip = app.create_company("test", "ООО Тюльпан").value
    lily = app.create_company("test", "ООО Лилия").value
    petr = receive(runtime, utc(2), "t1", "telegram", telegram="701", sender_name="Пётр")
    receive(runtime, utc(9), "t2", "telegram", telegram="701")
    olga = receive(runtime, utc(3), "t3", "email", email="olga@example.com", sender_name="Ольга")
    receive(runtime, utc(9), "t4", "email", email="olga@example.com")
    ivan = receive(runtime, utc(2), "l1", "sms", phone="+79160000001", sender_name="Иван")
    receive(runtime, utc(4), "l2", "sms", phone="+79160000001")
    receive(runtime, utc(5), "l3", "email", email="ivan@example.com", phone="+79160000001")
    vera = receive(runtime, utc(10), "l4", "email", email="vera@example.com", sender_name="Вера")
    for contact, company in ((petr, tulip), (olga, tulip), (ivan, lily), (vera, lily)):
        _ = app.update_contact(contact.contact_id, "test", company_id=company).value
    for title, company in (("D5", tulip), ("D6", lily)):
        with recorded_at(utc(11)):
            deal_id = app.create_deal("test", title, NEW, amount="100", company_id=company).value
        with recorded_at(utc(12)):
            _ = app.win_deal(deal_id, "test").value
    assert runtime.wait_for_views(app.recorder.max_notification_id(), timeout=60)

    money = rows_of(run_report(runtime.views, REPORT, march()), "money")
    preferred = {key[2]: key[4] for key in money}
    assert preferred["ООО Тюльпан"] == "telegram"
    assert preferred["ООО Лилия"] == "email"
    assert preferred["ООО Ромашка"] == "telegram"
    assert preferred["Борис"] == "sms"
    # every client as the view's own reader ranks its contacts' summed totals
    members = {
        "ООО Тюльпан": [str(petr.contact_id), str(olga.contact_id)],
        "ООО Лилия": [str(ivan.contact_id), str(vera.contact_id)],
        "ООО Ромашка": [ids["anna"]],
        "Борис": [ids["boris"]],
    }
    for client, contacts in members.items():
        assert preferred[client] == preferred_of(inbound_totals(runtime.views, contacts))
    assert preferred_of(inbound_totals(runtime.views, [str(ivan.contact_id)])) == "sms"
