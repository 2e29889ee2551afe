"""The contracts screens: the list with its filters (active, closed, expiring within 30 days,
search), a contract's page with its terms, documents and payments, prolonging and closing."""

# ruff: noqa: RUF001 (Russian company names on purpose)

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from tests.conftest import make_runtime
from tests.web.helpers import web_client
from tests.web.money_helpers import ROMASHKA_INN, issue, new_company, pay, settle, text_of
from threadline.domain.commands.payments import Allocation
from threadline.domain.model.money import Money
from threadline.domain.model.payment import AllocationHow, TargetKind
from threadline.domain.model.pipeline import seeded_pipeline_id
from threadline.projections.documents import contract
from threadline.services.runtime import Runtime

TODAY = date.today()


@pytest.fixture
def runtime(sqlite_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(sqlite_url, attachments_dir=str(tmp_path / "attachments"))
    try:
        yield rt
    finally:
        rt.close()


def register(runtime: Runtime, number: str, company: UUID, **kw: Any) -> UUID:
    kw.setdefault("signed_on", TODAY - timedelta(days=100))
    signed = kw.pop("signed_on")
    contract_id: UUID = settle(
        runtime, runtime.app.register_contract(number, signed, "test", company_id=company, **kw)
    )
    return contract_id


def listed(page: str) -> list[str]:
    return re.findall(r'data-contract-id="([^"]+)"', page)


def test_the_list_filters_active_closed_expiring_and_searches(runtime: Runtime) -> None:
    client, _csrf, _me = web_client(runtime, "operator")
    romashka = new_company(runtime, "ООО Ромашка", ROMASHKA_INN)
    soon = register(
        runtime, "1/2026", romashka, ends_on=TODAY + timedelta(days=10), title="Коробки"
    )
    later = register(runtime, "2/2026", romashka, ends_on=TODAY + timedelta(days=90))
    open_ended = register(runtime, "3/2026", romashka)
    closed = register(runtime, "4/2026", romashka, ends_on=TODAY + timedelta(days=5))
    settle(runtime, runtime.app.close_contract(closed, "terminated", "test"))

    page = client.get("/contracts")
    assert page.status_code == 200
    assert set(listed(page.text)) == {str(c) for c in (soon, later, open_ended, closed)}
    assert "ООО Ромашка" in page.text and "10 days left" in text_of(page.text)
    active = client.get("/contracts", params={"status": "active"})
    assert set(listed(active.text)) == {str(soon), str(later), str(open_ended)}
    assert listed(client.get("/contracts", params={"status": "closed"}).text) == [str(closed)]
    expiring = client.get("/contracts", params={"status": "expiring"})
    assert listed(expiring.text) == [str(soon)]  # the closed one ends sooner, but is closed
    assert listed(client.get("/contracts", params={"q": "Коробки"}).text) == [str(soon)]
    assert listed(client.get("/contracts", params={"q": "2/2026"}).text) == [str(later)]
    both = client.get("/contracts", params={"q": "2/2026", "status": "expiring"})
    assert listed(both.text) == []
    odd = client.get("/contracts", params={"status": "x", "q": "%_\x00", "page": "-1"})
    assert odd.status_code == 200


def test_a_contracts_page_shows_terms_documents_and_payments(runtime: Runtime) -> None:
    client, _csrf, _me = web_client(runtime, "manager")
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
    contract_id = register(
        runtime,
        "12/2026",
        romashka,
        deal_id=deal_id,
        amount=Money(Decimal("5000.00"), "RUB"),
        ends_on=TODAY + timedelta(days=20),
    )
    invoice = issue(
        runtime, "3000.00", company_id=romashka, deal_id=deal_id, contract_id=contract_id
    )
    issue(runtime, "99.00", company_id=romashka, deal_id=deal_id)  # not under the contract
    to_invoice = pay(
        runtime,
        "1200.00",
        company_id=romashka,
        allocations=(
            Allocation(
                TargetKind.INVOICE, invoice, Money(Decimal("1200.00"), "RUB"), AllocationHow.AUTO
            ),
        ),
    )
    to_contract = pay(
        runtime,
        "300.00",
        company_id=romashka,
        allocations=(
            Allocation(
                TargetKind.CONTRACT,
                contract_id,
                Money(Decimal("300.00"), "RUB"),
                AllocationHow.MANUAL,
            ),
        ),
    )

    page = client.get(f"/contracts/{contract_id}")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Contract 12/2026" in text and "ООО Ромашка" in text and "Boxes" in text
    assert "RUB5,000.00" in text and "20 days left" in text
    assert re.findall(r'data-document-id="([^"]+)"', page.text) == [str(invoice)]
    assert "СЧ-1" in text and "СЧ-2" not in text
    shown = set(re.findall(r'<tr data-payment-id="([^"]+)"', page.text))
    assert shown == {str(to_invoice), str(to_contract)}
    paid = re.search(r'class="contract-paid">([^<]*)<', page.text)
    assert paid and "RUB1,500.00" in paid.group(1)  # 1200 through the invoice + 300 direct
    assert client.get(f"/contracts/{UUID(int=1)}").status_code == 404
    assert client.get("/contracts/nope").status_code == 404


def test_prolonging_and_closing(runtime: Runtime) -> None:
    client, csrf, _me = web_client(runtime, "manager", locale="ru")
    romashka = new_company(runtime, "ООО Ромашка", ROMASHKA_INN)
    contract_id = register(runtime, "7/2026", romashka, ends_on=TODAY + timedelta(days=3))
    url = f"/contracts/{contract_id}"

    before = client.post(f"{url}/prolong", data={"csrf_token": csrf, "ends_on": "2000-01-01"})
    assert before.status_code == 422 and 'data-error-for="ends_on"' in before.text
    garbage = client.post(f"{url}/prolong", data={"csrf_token": csrf, "ends_on": "soon"})
    assert garbage.status_code == 422
    later = (TODAY + timedelta(days=365)).isoformat()
    prolonged = client.post(f"{url}/prolong", data={"csrf_token": csrf, "ends_on": later})
    assert prolonged.status_code == 200 and "Дата окончания изменена." in prolonged.text
    row = contract(runtime.views, contract_id)
    assert row is not None and row.ends_on == later

    no_reason = client.post(f"{url}/close", data={"csrf_token": csrf, "reason": " "})
    assert no_reason.status_code == 422
    closed = client.post(
        f"{url}/close",
        data={"csrf_token": csrf, "reason": "the work is done"},
        follow_redirects=False,
    )
    assert closed.status_code == 303
    row = contract(runtime.views, contract_id)
    assert row is not None and (row.status, row.close_reason) == ("closed", "the work is done")
    page = client.get(url)
    assert "Закрыт" in page.text and 'id="contract-prolong"' not in page.text
    refused = client.post(f"{url}/prolong", data={"csrf_token": csrf, "ends_on": later})
    assert refused.status_code == 422


def test_an_auditor_reads_but_cannot_prolong(runtime: Runtime) -> None:
    client, csrf, _me = web_client(runtime, "auditor")
    romashka = new_company(runtime, "ООО Ромашка", ROMASHKA_INN)
    contract_id = register(runtime, "8/2026", romashka, ends_on=TODAY + timedelta(days=3))
    page = client.get(f"/contracts/{contract_id}")
    assert page.status_code == 200 and 'id="contract-actions"' not in page.text
    refused = client.post(
        f"/contracts/{contract_id}/close", data={"csrf_token": csrf, "reason": "x"}
    )
    assert refused.status_code == 403
    row = contract(runtime.views, contract_id)
    assert row is not None and row.status == "active"
