"""The payments screen: tabs and search, a payment's page, confirming and dismissing a suggested
match, allocating by hand, removing an allocation, recording a payment by hand.

Everything goes through the real commands and views (SQLite); each test checks the page and
what the views hold after the form posted.
"""

# ruff: noqa: RUF001 (Russian company names and purposes on purpose)

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import make_runtime
from tests.web.helpers import web_client
from tests.web.money_helpers import ROMASHKA_INN, issue, new_company, pay, settle, text_of
from threadline.domain.commands.payments import Allocation
from threadline.domain.model.money import Money
from threadline.domain.model.payment import AllocationHow, Direction, TargetKind
from threadline.domain.model.pipeline import seeded_pipeline_id
from threadline.projections.documents import document
from threadline.projections.payments import (
    PaymentFilter,
    allocations_of_payment,
    payment,
    payments_page,
    suggestions_of_payment,
)
from threadline.services.runtime import Runtime


@pytest.fixture
def runtime(sqlite_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(sqlite_url, attachments_dir=str(tmp_path / "attachments"))
    try:
        yield rt
    finally:
        rt.close()


def listed(page: str) -> set[str]:
    return set(re.findall(r'data-payment-id="([^"]+)"', page))


def rub(amount: str) -> Money:
    return Money(Decimal(amount), "RUB")


def paid_of(runtime: Runtime, invoice: UUID) -> Decimal:
    row = document(runtime.views, invoice)
    assert row is not None
    return row.paid.amount


def test_the_tabs_and_the_search_narrow_the_list(runtime: Runtime) -> None:
    client, _csrf, _me = web_client(runtime, "manager")
    romashka = new_company(runtime, "ООО Ромашка", ROMASHKA_INN)
    invoice = issue(runtime, "1000.00", company_id=romashka)
    unmatched = pay(runtime, "100.00", purpose="Предоплата за коробки")
    partial = pay(
        runtime,
        "500.00",
        company_id=romashka,
        allocations=(Allocation(TargetKind.INVOICE, invoice, rub("200.00"), AllocationHow.AUTO),),
    )
    suggested = pay(
        runtime,
        "1000.00",
        company_id=romashka,
        purpose="Оплата по счёту № 71",
        suggestions=(
            Allocation(TargetKind.INVOICE, invoice, rub("800.00"), reason="the purpose names 71"),
        ),
    )
    outgoing = pay(
        runtime, "300.00", direction=Direction.OUT, name="ООО Поставщик", inn="7736207543"
    )
    everyone = {str(p) for p in (unmatched, partial, suggested, outgoing)}

    page = client.get("/payments")
    assert page.status_code == 200
    assert listed(page.text) == everyone
    assert 'href="/payments"' in page.text and 'href="/contracts"' in page.text  # the nav
    expected = {
        "in": {unmatched, partial, suggested},
        "out": {outgoing},
        "unmatched": {unmatched, suggested, outgoing},
        "partial": {partial},
        "suggested": {suggested},
    }
    for tab, wanted in expected.items():
        shown = client.get("/payments", params={"tab": tab})
        assert shown.status_code == 200
        assert listed(shown.text) == {str(p) for p in wanted}, tab
        count = re.search(rf'data-tab="{tab}"[^>]*>.*?<span class="badge">(\d+)</span>', shown.text)
        assert count and int(count.group(1)) == len(wanted)

    by_purpose = client.get("/payments", params={"q": "коробки"})
    assert listed(by_purpose.text) == {str(unmatched)}
    by_payer = client.get("/payments", params={"q": "Поставщик"})
    assert listed(by_payer.text) == {str(outgoing)}
    by_inn = client.get("/payments", params={"q": "7736207543"})
    assert listed(by_inn.text) == {str(outgoing)}
    both = client.get("/payments", params={"q": "71", "tab": "suggested"})
    assert listed(both.text) == {str(suggested)}
    bad_day = client.get("/payments", params={"from": "yesterday"})
    assert bad_day.status_code == 422 and 'data-error-for="from"' in bad_day.text


def test_any_search_text_answers_without_an_error(runtime: Runtime) -> None:
    client, _csrf, _me = web_client(runtime, "auditor")
    pay(runtime, "100.00")

    @settings(max_examples=40, deadline=None)
    @given(q=st.text(max_size=60), tab=st.text(max_size=12), page=st.text(max_size=6))
    def check(q: str, tab: str, page: str) -> None:
        answer = client.get("/payments", params={"q": q, "tab": tab, "page": page})
        assert answer.status_code == 200

    check()


def test_a_payments_page_shows_it_as_the_bank_reported_it(runtime: Runtime) -> None:
    client, _csrf, _me = web_client(runtime, "operator")
    romashka = new_company(runtime, "ООО Ромашка", ROMASHKA_INN)
    payment_id = pay(
        runtime, "1234.50", company_id=romashka, purpose="Оплата по счёту СЧ-1 от 01.12.2026"
    )
    page = client.get(f"/payments/{payment_id}")
    assert page.status_code == 200
    text = text_of(page.text)
    for fact in (
        "ООО Ромашка",
        ROMASHKA_INN,
        "40702810938000000001",
        "Оплата по счёту СЧ-1 от 01.12.2026",
        "Платежное поручение № 512",
        "Bank statement",
        "line 14",
        "RUB1,234.50",
    ):
        assert fact in text, fact
    assert client.get(f"/payments/{UUID(int=5)}").status_code == 404
    assert client.get("/payments/not-an-id").status_code == 404


def test_confirming_a_suggestion_allocates_it_and_dismissing_drops_it(runtime: Runtime) -> None:
    client, csrf, _me = web_client(runtime, "manager")
    romashka = new_company(runtime, "ООО Ромашка", ROMASHKA_INN)
    first = issue(runtime, "800.00", company_id=romashka)
    second = issue(runtime, "800.00", company_id=romashka)
    reason = "the purpose names invoice 71; СЧ-1 of this payer is for exactly this amount"
    payment_id = pay(
        runtime,
        "800.00",
        company_id=romashka,
        purpose="Оплата по счёту № 71",
        suggestions=(
            Allocation(TargetKind.INVOICE, first, rub("800.00"), reason=reason),
            Allocation(TargetKind.INVOICE, second, rub("800.00"), reason="same amount"),
        ),
    )
    page = client.get(f"/payments/{payment_id}")
    assert reason in text_of(page.text) and "СЧ-1" in page.text and "СЧ-2" in page.text
    assert paid_of(runtime, first) == 0  # a suggestion is never applied by itself

    dismissed = client.post(
        f"/payments/{payment_id}/suggestions/dismiss",
        data={"csrf_token": csrf, "kind": "invoice", "target_id": str(second)},
        follow_redirects=False,
    )
    assert dismissed.status_code == 303
    assert [s.target_id for s in suggestions_of_payment(runtime.views, payment_id)] == [str(first)]
    assert allocations_of_payment(runtime.views, payment_id) == []

    confirmed = client.post(
        f"/payments/{payment_id}/suggestions/confirm",
        data={"csrf_token": csrf, "kind": "invoice", "target_id": str(first)},
    )
    assert confirmed.status_code == 200
    assert "The suggested match was confirmed." in confirmed.text
    [allocation] = allocations_of_payment(runtime.views, payment_id)
    assert (allocation.target_id, allocation.how) == (str(first), "confirmed")
    assert allocation.amount == rub("800.00")
    assert paid_of(runtime, first) == Decimal("800.00")
    assert suggestions_of_payment(runtime.views, payment_id) == []
    row = payment(runtime.views, payment_id)
    assert row is not None and row.state == "matched"

    again = client.post(
        f"/payments/{payment_id}/suggestions/confirm",
        data={"csrf_token": csrf, "kind": "invoice", "target_id": str(first)},
    )
    assert again.status_code == 422 and 'data-error-for="suggestions"' in again.text
    assert "no such suggestion on this payment" in again.text


def test_allocating_by_hand_from_the_list_and_by_number(runtime: Runtime) -> None:
    client, csrf, _me = web_client(runtime, "manager")
    romashka = new_company(runtime, "ООО Ромашка", ROMASHKA_INN)
    invoice = issue(runtime, "1000.00", company_id=romashka)
    other = issue(runtime, "700.00", company_id=romashka)
    payment_id = pay(runtime, "1500.00", company_id=romashka)

    page = client.get(f"/payments/{payment_id}")
    options = re.findall(r'<option value="invoice:([^"]+)"', page.text)
    assert options == [str(invoice), str(other)]  # the payer's open invoices, oldest first

    picked = client.post(
        f"/payments/{payment_id}/allocations",
        data={"csrf_token": csrf, "pick": f"invoice:{invoice}", "amount": "1000,00"},
        follow_redirects=False,
    )
    assert picked.status_code == 303
    assert paid_of(runtime, invoice) == Decimal("1000.00")

    too_much = client.post(
        f"/payments/{payment_id}/allocations",
        data={"csrf_token": csrf, "kind": "invoice", "number": "СЧ-2", "amount": "600"},
    )
    assert too_much.status_code == 422 and 'data-error-for="allocate"' in too_much.text
    unknown = client.post(
        f"/payments/{payment_id}/allocations",
        data={"csrf_token": csrf, "kind": "invoice", "number": "СЧ-99"},
    )
    assert unknown.status_code == 422 and "no invoice numbered СЧ-99" in unknown.text
    garbage = client.post(
        f"/payments/{payment_id}/allocations",
        data={"csrf_token": csrf, "kind": "invoice", "number": "СЧ-2", "amount": "lots"},
    )
    assert garbage.status_code == 422
    wrong_kind = client.post(
        f"/payments/{payment_id}/allocations",
        data={"csrf_token": csrf, "kind": "supplier_order", "number": "1"},
    )
    assert wrong_kind.status_code == 422

    # by number, the amount left empty: the rest of the payment (500.00)
    rest = client.post(
        f"/payments/{payment_id}/allocations",
        data={"csrf_token": csrf, "kind": "invoice", "number": "сч-2", "amount": ""},
        follow_redirects=False,
    )
    assert rest.status_code == 303
    assert paid_of(runtime, other) == Decimal("500.00")
    row = payment(runtime.views, payment_id)
    assert row is not None and row.state == "matched" and row.unallocated.amount == 0
    assert {a.how for a in allocations_of_payment(runtime.views, payment_id)} == {"manual"}


def test_a_deal_and_a_contract_are_found_by_their_link_and_number(runtime: Runtime) -> None:
    client, csrf, _me = web_client(runtime, "manager")
    settle(runtime, runtime.app.seed_pipelines("test"))
    romashka = new_company(runtime, "ООО Ромашка", ROMASHKA_INN)
    deal_id = settle(
        runtime,
        runtime.app.create_deal(
            actor="test",
            title="Boxes",
            company_id=romashka,
            pipeline_id=seeded_pipeline_id("new-clients"),
        ),
    )
    contract_id = settle(
        runtime,
        runtime.app.register_contract("12/2026", date(2026, 12, 1), "test", company_id=romashka),
    )
    payment_id = pay(runtime, "300.00", company_id=romashka)
    by_link = client.post(
        f"/payments/{payment_id}/allocations",
        data={
            "csrf_token": csrf,
            "kind": "deal",
            "number": f"http://x/deals/{deal_id}",
            "amount": "100",
        },
        follow_redirects=False,
    )
    assert by_link.status_code == 303
    by_number = client.post(
        f"/payments/{payment_id}/allocations",
        data={"csrf_token": csrf, "kind": "contract", "number": "12/2026"},
        follow_redirects=False,
    )
    assert by_number.status_code == 303
    paid = {
        (a.target_kind, a.target_id): a.amount
        for a in allocations_of_payment(runtime.views, payment_id)
    }
    assert paid == {
        ("deal", str(deal_id)): rub("100.00"),
        ("contract", str(contract_id)): rub("200.00"),
    }
    page = text_of(client.get(f"/payments/{payment_id}").text)
    assert "Deal Boxes" in page and "Contract 12/2026" in page


def test_removing_an_allocation_needs_a_reason_and_frees_the_money(runtime: Runtime) -> None:
    client, csrf, _me = web_client(runtime, "manager")
    romashka = new_company(runtime, "ООО Ромашка", ROMASHKA_INN)
    invoice = issue(runtime, "400.00", company_id=romashka)
    payment_id = pay(
        runtime,
        "400.00",
        company_id=romashka,
        allocations=(Allocation(TargetKind.INVOICE, invoice, rub("400.00"), AllocationHow.AUTO),),
    )
    form = {"csrf_token": csrf, "kind": "invoice", "target_id": str(invoice)}
    no_reason = client.post(f"/payments/{payment_id}/allocations/remove", data=form)
    assert no_reason.status_code == 422
    assert f'data-error-for="remove-invoice-{invoice}"' in no_reason.text
    assert len(allocations_of_payment(runtime.views, payment_id)) == 1

    removed = client.post(
        f"/payments/{payment_id}/allocations/remove",
        data={**form, "reason": "another client's money"},
        follow_redirects=False,
    )
    assert removed.status_code == 303
    assert allocations_of_payment(runtime.views, payment_id) == []
    assert paid_of(runtime, invoice) == 0
    row = payment(runtime.views, payment_id)
    assert row is not None and row.state == "unmatched"
    gone = client.post(
        f"/payments/{payment_id}/allocations/remove", data={**form, "reason": "twice"}
    )
    assert gone.status_code == 422 and 'data-error-for="allocations"' in gone.text


def test_an_auditor_sees_the_payment_but_cannot_change_it(runtime: Runtime) -> None:
    client, csrf, _me = web_client(runtime, "auditor")
    romashka = new_company(runtime, "ООО Ромашка", ROMASHKA_INN)
    invoice = issue(runtime, "400.00", company_id=romashka)
    payment_id = pay(runtime, "400.00", company_id=romashka)
    page = client.get(f"/payments/{payment_id}")
    assert page.status_code == 200 and 'id="allocation-form"' not in page.text
    refused = client.post(
        f"/payments/{payment_id}/allocations",
        data={"csrf_token": csrf, "pick": f"invoice:{invoice}"},
    )
    assert refused.status_code == 403
    assert allocations_of_payment(runtime.views, payment_id) == []
    assert client.get("/payments/new").status_code == 403


def test_recording_a_payment_by_hand_finds_the_company_and_records_once(runtime: Runtime) -> None:
    client, csrf, _me = web_client(runtime, "manager", locale="ru")
    romashka = new_company(runtime, "ООО Ромашка", ROMASHKA_INN)
    invoice = issue(runtime, "5000.00", company_id=romashka)
    form_page = client.get("/payments/new")
    assert form_page.status_code == 200 and "Записать платёж" in form_page.text
    token = re.search(r'name="token" value="([^"]+)"', form_page.text)
    assert token
    form = {
        "csrf_token": csrf,
        "token": token.group(1),
        "direction": "in",
        "amount": "2 500,10",
        "currency": "RUB",
        "paid_on": "2026-12-06",
        "name": "ООО Ромашка",
        "inn": ROMASHKA_INN,
        "purpose": "Оплата по счёту СЧ-1",
    }
    bad = client.post("/payments", data={**form, "inn": "12345"})
    assert bad.status_code == 422 and 'data-error-for="inn"' in bad.text
    bad_amount = client.post("/payments", data={**form, "amount": "-5"})
    assert bad_amount.status_code == 422 and 'data-error-for="amount"' in bad_amount.text
    assert payments_page(runtime.views, PaymentFilter())[1] == 0

    first = client.post("/payments", data=form, follow_redirects=False)
    assert first.status_code == 303
    second = client.post("/payments", data=form, follow_redirects=False)  # a double submit
    assert second.headers["location"] == first.headers["location"]
    rows, count = payments_page(runtime.views, PaymentFilter())
    assert count == 1
    assert rows[0].company_id == str(romashka) and rows[0].amount == rub("2500.10")
    assert rows[0].source_kind == "web" and rows[0].paid_on == "2026-12-06"
    # matched as an imported payment is: the payer's invoice named in the purpose, partly paid
    [allocation] = allocations_of_payment(runtime.views, rows[0].id)
    assert (allocation.target_id, allocation.how) == (str(invoice), "auto")
    assert paid_of(runtime, invoice) == Decimal("2500.10")
    page = client.get(first.headers["location"])
    assert "Платёж записан." in page.text
