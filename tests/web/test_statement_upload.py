"""Uploading a bank statement: the preview shows each line's outcome and records nothing, the
import records, the same file again is all "already recorded", a broken file names its line
and records nothing, and only the kept bytes (by their hash) are ever imported.

The statements are written in the test with the bank helper's writer, in each encoding banks
and 1C use.
"""

# ruff: noqa: RUF001, RUF002 (Russian bank data on purpose)

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Literal
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_runtime
from tests.web.helpers import web_client
from tests.web.money_helpers import ROMASHKA_INN, issue, new_company, settle, text_of
from threadline.domain.model.pipeline import seeded_pipeline_id, seeded_stage_id
from threadline.projections.documents import document
from threadline.projections.payments import PaymentFilter, payments_page, suggestions_of_payment
from threadline.projections.supplier_orders import supplier_order
from threadline.services.payments.client_bank_exchange import (
    AccountSpec,
    DocumentSpec,
    write_statement,
)
from threadline.services.runtime import Runtime

OURS = "40702810400000000001"
ROMASHKA_ACCOUNT = "40702810938000000001"
DAY = dt.date(2026, 12, 5)
Encoding = Literal["cp1251", "cp866", "utf-8"]


@pytest.fixture
def runtime(sqlite_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(sqlite_url, attachments_dir=str(tmp_path / "attachments"))
    try:
        yield rt
    finally:
        rt.close()


def from_romashka(number: str, amount: str, purpose: str) -> DocumentSpec:
    return DocumentSpec(
        number=number,
        date=DAY,
        amount=Decimal(amount),
        direction="in",
        counterparty_name="ООО Ромашка",
        counterparty_inn=ROMASHKA_INN,
        counterparty_account=ROMASHKA_ACCOUNT,
        counterparty_bik="044525225",
        purpose=purpose,
    )


def statement(encoding: Encoding = "cp1251", broken: bool = False) -> bytes:
    documents = [
        from_romashka("101", "1000.00", "Оплата по счёту № СЧ-1 от 01.12.2026"),
        from_romashka("102", "300.00", "Частичная оплата по счёту СЧ-2"),
        from_romashka("103", "450.00", "Оплата по счёту № 4 от 01.12.2026"),
        DocumentSpec(
            number="104",
            date=DAY,
            amount=Decimal("50.00"),
            direction="in",
            counterparty_name="ИП Иванов",
            counterparty_inn="500100732259",
            counterparty_account="40802810000000000002",
            purpose="Оплата за коробки",
        ),
        DocumentSpec(
            number="7",
            date=DAY,
            amount=Decimal("200.00"),
            direction="out",
            counterparty_name="ООО Поставщик",
            counterparty_inn="7736207543",
            counterparty_account="40702810000000000003",
            purpose="Оплата аренды за декабрь",
            raw={"Сумма": "2OO.00"} if broken else {},
        ),
    ]
    return write_statement([AccountSpec(account=OURS)], documents, encoding=encoding)


@pytest.fixture
def invoices(runtime: Runtime) -> dict[str, UUID]:
    """СЧ-1 for 1000.00, СЧ-2 for 800.00 and СЧ-3 for 450.00, all of ООО Ромашка."""
    romashka = new_company(runtime, "ООО Ромашка", ROMASHKA_INN)
    return {
        f"СЧ-{n}": issue(runtime, total, company_id=romashka)
        for n, total in ((1, "1000.00"), (2, "800.00"), (3, "450.00"))
    }


def upload(client: TestClient, csrf: str, data: bytes, name: str = "kl_to_1c.txt") -> str:
    answer = client.post(
        "/payments/import",
        data={"csrf_token": csrf},
        files={"file": (name, data, "text/plain")},
    )
    assert answer.status_code == 200, answer.text
    return str(answer.text)


def outcomes(page: str) -> dict[str, str]:
    """Each listed line's outcome, by the line's text: {"ООО Ромашка 1000": "matched", ...}."""
    rows = re.findall(r'<tr data-line="(\d+)" data-outcome="([^"]+)">(.*?)</tr>', page, re.S)
    return {text_of(body).strip(): outcome for _line, outcome, body in rows}


def recorded(runtime: Runtime) -> int:
    return payments_page(runtime.views, PaymentFilter(), limit=0)[1]


@pytest.mark.parametrize("encoding", ["cp1251", "cp866", "utf-8"])
def test_the_preview_shows_each_outcome_and_records_nothing(
    runtime: Runtime, invoices: dict[str, UUID], encoding: Encoding
) -> None:
    client, csrf, _me = web_client(runtime, "manager")
    data = statement(encoding)
    page = upload(client, csrf, data)

    found = outcomes(page)
    assert len(found) == 5
    purposes = ("№ СЧ-1", "Частичная", "№ 4", "коробки", "аренды")
    by_purpose = {p: next(v for t, v in found.items() if p in t) for p in purposes}
    assert by_purpose == {
        "№ СЧ-1": "matched",
        "Частичная": "partial",
        "№ 4": "suggested",
        "коробки": "unmatched",
        "аренды": "unmatched",
    }
    text = text_of(page)
    assert "Matched → СЧ-1" in text
    assert "Partly paid (the rest stays due) → СЧ-2" in text and "500.00 RUB is still due" in text
    assert "Suggested (waits for a person) → СЧ-3" in text
    assert "the purpose names invoice" in text  # why it is only suggested
    assert "no company has the payer's ИНН 500100732259" in text
    assert "ИП Иванов" in text and "RUB1,000.00" in text and "Оплата аренды за декабрь" in text
    totals = dict(re.findall(r'<li data-outcome="([a-z_]+)">[^<]*<strong>(\d+)</strong>', page))
    assert totals == {"matched": "1", "partial": "1", "suggested": "1", "unmatched": "2"}
    assert "Record 5 payments" in page

    # nothing recorded; the bytes are kept by their hash for the import
    assert recorded(runtime) == 0
    digest = hashlib.sha256(data).hexdigest()
    assert f'name="sha256" value="{digest}"' in page
    assert runtime.attachment_access.store.read(digest) == data
    assert document(runtime.views, invoices["СЧ-1"]).paid.amount == 0  # type: ignore[union-attr]


def test_the_import_records_and_the_same_file_again_changes_nothing(
    runtime: Runtime, invoices: dict[str, UUID]
) -> None:
    client, csrf, _me = web_client(runtime, "manager")
    data = statement()
    digest = hashlib.sha256(data).hexdigest()
    upload(client, csrf, data)
    applied = client.post(
        "/payments/import/apply", data={"csrf_token": csrf, "sha256": digest, "filename": "x"}
    )
    assert applied.status_code == 200
    assert "Recorded 5 payments" in applied.text
    assert recorded(runtime) == 5
    paid = {n: document(runtime.views, i).paid.amount for n, i in invoices.items()}  # type: ignore[union-attr]
    assert paid == {"СЧ-1": Decimal("1000.00"), "СЧ-2": Decimal("300.00"), "СЧ-3": 0}
    [waiting] = payments_page(runtime.views, PaymentFilter(suggested=True))[0]
    [suggested] = suggestions_of_payment(runtime.views, waiting.id)
    assert suggested.target_id == str(invoices["СЧ-3"])  # suggested, not applied

    again = upload(client, csrf, data)
    assert set(outcomes(again).values()) == {"already_recorded"}
    assert 'id="import-apply"' not in again and "already recorded" in again
    repeated = client.post(
        "/payments/import/apply", data={"csrf_token": csrf, "sha256": digest, "filename": "x"}
    )
    assert repeated.status_code == 200 and "Recorded 0 payments" in repeated.text
    assert recorded(runtime) == 5


def test_a_broken_file_names_its_line_and_records_nothing(
    runtime: Runtime, invoices: dict[str, UUID]
) -> None:
    client, csrf, _me = web_client(runtime, "manager")
    data = statement(broken=True)
    lines = data.decode("cp1251").split("\r\n")
    wrong = lines.index("Сумма=2OO.00") + 1
    answer = client.post(
        "/payments/import",
        data={"csrf_token": csrf},
        files={"file": ("kl_to_1c.txt", data, "text/plain")},
    )
    assert answer.status_code == 422
    message = text_of(answer.text)
    assert f"Line {wrong}:" in message and "Nothing was recorded" in message
    assert recorded(runtime) == 0
    # nor can its hash be imported: the broken file was never kept
    refused = client.post(
        "/payments/import/apply",
        data={"csrf_token": csrf, "sha256": hashlib.sha256(data).hexdigest()},
    )
    assert refused.status_code == 422 and "upload it again" in refused.text
    assert recorded(runtime) == 0


@pytest.mark.parametrize("digest", ["", "../../etc/passwd", "ab" * 32, "AB" * 31 + "zz"])
def test_only_a_kept_file_is_imported(runtime: Runtime, digest: str) -> None:
    client, csrf, _me = web_client(runtime, "manager")
    answer = client.post("/payments/import/apply", data={"csrf_token": csrf, "sha256": digest})
    assert answer.status_code == 422 and 'data-error-for="file"' in answer.text
    assert recorded(runtime) == 0


def test_a_file_over_the_limit_is_refused_with_a_clear_message(
    sqlite_url: str, tmp_path: Path
) -> None:
    runtime = make_runtime(
        sqlite_url, attachments_dir=str(tmp_path / "files"), max_attachment_bytes=2 * 2**20
    )
    try:
        refuses_a_large_file(runtime)
    finally:
        runtime.close()


def refuses_a_large_file(runtime: Runtime) -> None:
    client, csrf, _me = web_client(runtime, "manager")
    answer = client.post(
        "/payments/import",
        data={"csrf_token": csrf},
        files={"file": ("big.txt", b"1CClientBankExchange\r\n" + b"x" * (3 * 2**20), "text/plain")},
    )
    assert answer.status_code == 413 and "larger than 2 MB" in answer.text
    assert client.post("/payments/import", data={"csrf_token": csrf}).status_code == 422
    assert recorded(runtime) == 0


def test_a_csv_is_previewed_the_same_way_and_auditors_cannot_upload(
    runtime: Runtime, invoices: dict[str, UUID]
) -> None:
    client, csrf, _me = web_client(runtime, "manager", locale="ru")
    data = (
        "Дата;Сумма;Плательщик;ИНН плательщика;Назначение платежа;Номер документа\n"
        f"05.12.2026;1000,00;ООО Ромашка;{ROMASHKA_INN};Оплата по счёту СЧ-1;55\n"
    ).encode("cp1251")
    page = upload(client, csrf, data, "payments.csv")
    assert list(outcomes(page).values()) == ["matched"]
    assert "Предпросмотр" in page and "Записать платежи: 1" in page

    auditor, auditor_csrf, _id = web_client(runtime, "auditor")
    refused = auditor.post(
        "/payments/import",
        data={"csrf_token": auditor_csrf},
        files={"file": ("payments.csv", data, "text/plain")},
    )
    assert refused.status_code == 403
    assert recorded(runtime) == 0


def test_an_outgoing_payment_is_linked_to_its_supplier_order(runtime: Runtime) -> None:
    client, csrf, _me = web_client(runtime, "manager")
    settle(runtime, runtime.app.seed_pipelines("test"))
    supplier = new_company(runtime, "ООО Поставщик", "7736207543", roles=("supplier",))
    buyer = new_company(runtime, "ООО Ромашка", ROMASHKA_INN)
    chair = settle(
        runtime,
        runtime.app.create_product("test", "Chair", "1000", cost="600", supplier_id=supplier),
    )
    deal_id = settle(
        runtime,
        runtime.app.create_deal(
            "test",
            "Chairs",
            seeded_pipeline_id("new-clients"),
            company_id=buyer,
            lines=[{"product_id": str(chair), "quantity": 3}],
        ),
    )
    settle(runtime, runtime.app.move_deal(deal_id, seeded_stage_id("new-clients", "paid"), "test"))
    (order_id,) = settle(
        runtime, runtime.app.create_supplier_orders(deal_id, "test", DAY)
    ).order_ids

    def to_supplier(number: str, amount: str, purpose: str) -> DocumentSpec:
        return DocumentSpec(
            number=number,
            date=DAY,
            amount=Decimal(amount),
            direction="out",
            counterparty_name="ООО Поставщик",
            counterparty_inn="7736207543",
            counterparty_account="40702810000000000003",
            purpose=purpose,
        )

    data = write_statement(
        [AccountSpec(account=OURS)],
        [to_supplier("8", "1000.00", "Оплата по заказу ЗП-1"), to_supplier("9", "300.00", "Аванс")],
    )
    page = upload(client, csrf, data)
    assert list(outcomes(page).values()) == ["outgoing_linked", "unmatched"]
    assert "Outgoing, linked to a supplier order → ЗП-1" in text_of(page)
    client.post(
        "/payments/import/apply",
        data={"csrf_token": csrf, "sha256": hashlib.sha256(data).hexdigest()},
    )
    order = supplier_order(runtime.views, order_id)
    assert order is not None and order.payable.amount == Decimal("800.00")

    # the unmatched one: its page offers the supplier's open order, never an invoice
    [advance] = payments_page(runtime.views, PaymentFilter(state="unmatched"))[0]
    advance_page = client.get(f"/payments/{advance.id}")
    assert re.findall(r'<option value="([a-z_]+):', advance_page.text) == ["supplier_order"]
    assert '<option value="invoice"' not in advance_page.text
    client.post(
        f"/payments/{advance.id}/allocations",
        data={"csrf_token": csrf, "pick": f"supplier_order:{order_id}"},
    )
    order = supplier_order(runtime.views, order_id)
    assert order is not None and order.payable.amount == Decimal("500.00")
