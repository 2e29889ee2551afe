"""The deal page's documents and money: generate, list, download, send and void a document;
register a contract; create supplier orders from a won deal; payments and the settlement;
the company page's money section; who may do what.

Documents are made by the real service (template, WeasyPrint PDF, attachment store); the
page is driven with the same form posts a browser sends.
"""

# ruff: noqa: RUF001, RUF003 (Russian text on purpose)

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import make_runtime
from tests.web.helpers import web_client
from tests.web.webdeal_setup import CLIENT_EMAIL, TOTAL, settle, world
from threadline.domain.commands.payments import Allocation, PaymentEntry, PaymentInput
from threadline.domain.model.document import Document
from threadline.domain.model.money import Money
from threadline.domain.model.payment import Direction, TargetKind, payment_id_for
from threadline.projections.documents import (
    ContractFilter,
    DocumentRow,
    contracts_page,
    document,
    document_sends,
    documents_of_deal,
)
from threadline.projections.supplier_orders import SupplierOrderFilter, supplier_orders_page
from threadline.services.runtime import Runtime


@pytest.fixture
def runtime(sqlite_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(sqlite_url, attachments_dir=str(tmp_path / "attachments"))
    try:
        yield rt
    finally:
        rt.close()


def text_of(page: str) -> str:
    plain = html.unescape(re.sub(r"<[^>]+>", " ", page))
    return re.sub(r"[ \t\r\n]+", " ", plain)


def section(page: str, ident: str) -> str:
    found = re.search(rf'<section class="[^"]*" id="{ident}".*?</section>', page, re.S)
    assert found, f"no section {ident}"
    return found.group(0)


def generate(client: TestClient, csrf: str, deal_id: UUID, **fields: str) -> httpx.Response:
    data = {"csrf_token": csrf, "kind": "invoice", "language": "ru", "due_on": "", "notes": ""}
    answer: httpx.Response = client.post(
        f"/deals/{deal_id}/documents", data={**data, **fields}, follow_redirects=False
    )
    return answer


def only_document(runtime: Runtime, deal_id: UUID) -> DocumentRow:
    (row,) = documents_of_deal(runtime.views, deal_id)
    return row


def test_an_invoice_generated_on_the_deal_page_is_listed_and_downloads_as_stored(
    runtime: Runtime,
) -> None:
    w = world(runtime)
    client, csrf, _me = web_client(runtime, "operator")

    answer = generate(client, csrf, w.deal, due_on="2030-01-20", notes="Оплата в течение 5 дней")
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == f"/deals/{w.deal}?done=document"

    row = only_document(runtime, w.deal)
    assert (row.kind, row.display_number, row.due_on) == ("invoice", "СЧ-1", "2030-01-20")
    assert row.total == Money(Decimal(TOTAL), "RUB")
    page = client.get(answer.headers["location"])
    documents = text_of(section(page.text, "documents"))
    assert "The document was generated." in page.text
    assert "СЧ-1" in documents and "Invoice" in documents
    # the total, nothing paid, all of it outstanding, unpaid, never sent
    row_text = text_of(re.search(r'<tr class="document-row".*?</tr>', page.text, re.S).group(0))  # type: ignore[union-attr]
    # total, paid, outstanding, state, times sent
    assert "RUB57,902.14 RUB0.00 RUB57,902.14 unpaid 0 Download PDF" in row_text
    assert "due Jan 20, 2030" in row_text
    assert f'href="/documents/{row.id}/file"' in page.text

    download = client.get(f"/documents/{row.id}/file")
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-disposition"].startswith("attachment")
    assert download.content.startswith(b"%PDF")
    digest = hashlib.sha256(download.content).hexdigest()
    # byte-identical to what the log recorded when it was issued
    issued: object = runtime.app.repository.get(UUID(row.id))
    assert isinstance(issued, Document)
    assert digest == issued.file["sha256"] == row.file["sha256"]


def test_the_section_speaks_russian_and_reloads_on_its_own(runtime: Runtime) -> None:
    w = world(runtime)
    client, csrf, _me = web_client(runtime, "manager", locale="ru")
    assert generate(client, csrf, w.deal).status_code == 303

    fragment = client.get(f"/deals/{w.deal}/money", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text  # a fragment, not a page
    shown = text_of(fragment.text)
    assert "Документы" in shown and "Счёт" in shown and "СЧ-1" in shown
    assert "57\u00a0902,14\u00a0₽" in shown
    assert "не оплачен" in shown and "Отправить клиенту" in shown
    page = client.get(f"/deals/{w.deal}")
    assert 'hx-get="/deals/' + str(w.deal) + '/money"' in page.text
    assert f'data-live="deal:{w.deal}"' in page.text


def test_bad_input_is_refused_next_to_the_form_and_nothing_is_issued(runtime: Runtime) -> None:
    w = world(runtime)
    client, csrf, _me = web_client(runtime, "operator")

    unknown = generate(client, csrf, w.deal, kind="banana")
    assert unknown.status_code == 422
    assert 'data-error-for="generate"' in unknown.text
    assert "choose the kind of document" in unknown.text

    not_a_date = generate(client, csrf, w.deal, due_on="20.01.2030")
    assert not_a_date.status_code == 422
    assert 'data-error-for="due_on"' in not_a_date.text

    before_issue = generate(client, csrf, w.deal, due_on="2001-01-01")
    assert before_issue.status_code == 422
    assert "the due date is not before the issue date" in before_issue.text

    language = generate(client, csrf, w.deal, language="de")
    assert language.status_code == 422
    assert documents_of_deal(runtime.views, w.deal) == []


def test_without_our_own_company_the_page_says_to_set_it_up(runtime: Runtime) -> None:
    w = world(runtime)
    settle(runtime, runtime.app.update_company(w.own, "test", roles=["client"]))
    client, csrf, _me = web_client(runtime, "operator")
    answer = generate(client, csrf, w.deal)
    assert answer.status_code == 422
    assert "set up your company" in answer.text
    assert 'class="own-company-link"' in answer.text
    assert documents_of_deal(runtime.views, w.deal) == []


def test_voiding_needs_a_reason_and_shows_the_document_voided(runtime: Runtime) -> None:
    w = world(runtime)
    client, csrf, _me = web_client(runtime, "operator")
    generate(client, csrf, w.deal)
    row = only_document(runtime, w.deal)

    blank = client.post(f"/documents/{row.id}/void", data={"csrf_token": csrf, "reason": " "})
    assert blank.status_code == 422
    assert f'data-error-for="document:{row.id}"' in blank.text
    assert document(runtime.views, row.id).status == "issued"  # type: ignore[union-attr]

    voided = client.post(
        f"/documents/{row.id}/void",
        data={"csrf_token": csrf, "reason": "wrong amount", "next": f"/deals/{w.deal}"},
        follow_redirects=False,
    )
    assert voided.status_code == 303
    assert voided.headers["location"] == f"/deals/{w.deal}?done=voided"
    page = client.get(voided.headers["location"])
    rows = text_of(section(page.text, "documents"))
    assert "voided" in rows and "wrong amount" in rows
    assert f'action="/documents/{row.id}/void"' not in page.text  # nothing left to void

    again = client.post(f"/documents/{row.id}/void", data={"csrf_token": csrf, "reason": "x"})
    assert again.status_code == 409


def test_sending_to_the_client_attaches_the_pdf_on_the_chosen_channel(
    runtime: Runtime,
) -> None:
    w = world(runtime)
    client, csrf, _me = web_client(runtime, "operator")
    generate(client, csrf, w.deal)
    row = only_document(runtime, w.deal)
    page = client.get(f"/deals/{w.deal}")
    # the client's channels are offered: Olga's e-mail address
    assert f'value="email:{w.olga}"' in page.text and CLIENT_EMAIL in page.text
    # the prefilled text is in the document's language (Russian), whoever sends it
    assert "Добрый день! Направляем Счёт на оплату № СЧ-1." in html.unescape(page.text)

    sent = client.post(
        f"/documents/{row.id}/send",
        data={"csrf_token": csrf, "to": f"email:{w.olga}", "text": "Счёт во вложении."},
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text
    (send,) = document_sends(runtime.views, row.id)
    assert send.channel == "email"
    message = runtime.queries.message(send.message_id)
    assert message is not None
    assert [a["filename"] for a in message["attachments"]] == [row.file["filename"]]
    assert message["attachments"][0]["sha256"] == row.file["sha256"]
    listed = text_of(section(client.get(f"/deals/{w.deal}").text, "documents"))
    assert re.search(r"СЧ-1 .* 1 Download PDF", listed)

    no_phone = client.post(
        f"/documents/{row.id}/send", data={"csrf_token": csrf, "to": f"sms:{w.olga}"}
    )
    assert no_phone.status_code == 422
    assert "no phone number" in no_phone.text
    bogus = client.post(f"/documents/{row.id}/send", data={"csrf_token": csrf, "to": "pigeon"})
    assert bogus.status_code == 422
    assert len(document_sends(runtime.views, row.id)) == 1


def test_a_contract_is_registered_for_the_deal(runtime: Runtime) -> None:
    w = world(runtime)
    client, csrf, _me = web_client(runtime, "operator")
    form = {
        "csrf_token": csrf,
        "number": "Д-17/2026",
        "signed_on": "2026-12-01",
        "starts_on": "2026-12-01",
        "ends_on": "2027-11-30",
        "amount": "100 000,50",
        "title": "Поставка мебели",
    }
    answer = client.post(f"/deals/{w.deal}/contracts", data=form, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    (signed,) = contracts_page(runtime.views, ContractFilter(deal_id=str(w.deal)))[0]
    assert signed.number == "Д-17/2026" and signed.company_id == str(w.client)
    assert signed.amount == Money(Decimal("100000.50"), "RUB")
    contracts = text_of(section(client.get(f"/deals/{w.deal}").text, "documents"))
    assert "Д-17/2026" in contracts and "RUB100,000.50" in contracts

    bad_term = client.post(
        f"/deals/{w.deal}/contracts",
        data={**form, "number": "Д-18", "ends_on": "2026-01-01"},
    )
    assert bad_term.status_code == 422
    assert 'data-error-for="contract"' in bad_term.text
    bad_amount = client.post(
        f"/deals/{w.deal}/contracts", data={**form, "number": "Д-19", "amount": "lots"}
    )
    assert bad_amount.status_code == 422
    assert len(contracts_page(runtime.views, ContractFilter(deal_id=str(w.deal)))[0]) == 1


def test_supplier_orders_come_from_a_won_deal_and_the_skipped_lines_are_shown(
    runtime: Runtime,
) -> None:
    w = world(runtime, free_line=True)
    client, csrf, _me = web_client(runtime, "manager")
    page = client.get(f"/deals/{w.deal}")
    assert "Create supplier orders" not in page.text  # an open deal orders nothing yet
    refused = client.post(f"/deals/{w.deal}/supplier-orders", data={"csrf_token": csrf})
    assert refused.status_code == 409
    assert "won deal" in refused.text

    settle(runtime, runtime.app.win_deal(w.deal, "test"))
    page = client.get(f"/deals/{w.deal}")
    assert "Create supplier orders" in page.text
    made = client.post(
        f"/deals/{w.deal}/supplier-orders", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert made.status_code == 303 and made.headers["location"].endswith("done=orders")
    orders = supplier_orders_page(runtime.views, SupplierOrderFilter(deal_id=str(w.deal)))[0]
    assert [(o.display_number, o.supplier_id, o.amount) for o in orders] == [
        ("ЗП-1", str(w.supplier), Money(Decimal("30000.00"), "RUB"))
    ]
    shown = text_of(section(client.get(made.headers["location"]).text, "documents"))
    assert "ЗП-1" in shown and 'ООО "Поставщик"' in shown and "RUB30,000.00" in shown
    assert "Lines no supplier order carries" in shown and "Доставка" in shown

    again = client.post(
        f"/deals/{w.deal}/supplier-orders", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert again.status_code == 303  # idempotent: still the one order
    assert supplier_orders_page(runtime.views, SupplierOrderFilter(deal_id=str(w.deal)))[1] == 1


def pay(runtime: Runtime, amount: str, invoice_id: str, company_id: UUID) -> None:
    entry = PaymentEntry(
        PaymentInput(
            payment_id=payment_id_for(f"webdeal-{invoice_id}-{amount}"),
            direction=Direction.IN,
            amount=Money(Decimal(amount), "RUB"),
            paid_on=date(2026, 12, 5),
            counterparty={"name": "ООО Ромашка", "inn": "7707083893"},
            purpose="Оплата по счёту СЧ-1",
            company_id=company_id,
        ),
        (Allocation(TargetKind.INVOICE, UUID(invoice_id), Money(Decimal(amount), "RUB")),),
        (),
    )
    settle(runtime, runtime.app.record_payments([entry], "test"))


def test_payments_and_the_clients_settlement_show_on_the_deal_and_company_pages(
    runtime: Runtime,
) -> None:
    w = world(runtime)
    client, csrf, _me = web_client(runtime, "operator")
    generate(client, csrf, w.deal, due_on="2030-01-20")
    row = only_document(runtime, w.deal)
    pay(runtime, "20000.00", row.id, w.client)

    money = section(client.get(f"/deals/{w.deal}").text, "documents")
    shown = text_of(money)
    assert "partly paid" in shown
    # 57 902,14 − 20 000,00 = 37 902,14 still to pay
    assert "RUB20,000.00" in shown and "RUB37,902.14" in shown
    assert "Оплата по счёту СЧ-1" in shown and "Invoice СЧ-1" in shown
    settlement = re.search(r'<tr class="settlement-row" data-currency="RUB">.*?</tr>', money, re.S)
    assert settlement
    assert text_of(settlement.group(0)).split() == [
        "RUB", "RUB57,902.14", "RUB20,000.00", "RUB37,902.14", "RUB0.00", "0"
    ]  # fmt: skip

    company_page = client.get(f"/companies/{w.client}")
    assert company_page.status_code == 200
    company_money = text_of(section(company_page.text, "company-money"))
    assert "СЧ-1" in company_money and "RUB37,902.14" in company_money
    assert "Оплата по счёту СЧ-1" in company_money
    assert "Supplier orders" not in company_money  # a client, not a supplier


def test_a_suppliers_company_page_shows_its_orders_and_what_is_payable(
    runtime: Runtime,
) -> None:
    w = world(runtime, won=True)
    settle(runtime, runtime.app.create_supplier_orders(w.deal, "test", date(2026, 12, 1)))
    client, _csrf, _me = web_client(runtime, "operator")
    shown = text_of(section(client.get(f"/companies/{w.supplier}").text, "company-money"))
    assert "Supplier orders" in shown and "ЗП-1" in shown
    assert "Payable to the supplier: RUB30,000.00" in shown


def test_who_may_download_and_change_documents(runtime: Runtime) -> None:
    w = world(runtime)
    operator, csrf, _me = web_client(runtime, "operator")
    generate(operator, csrf, w.deal)
    row = only_document(runtime, w.deal)

    stranger = TestClient(operator.app)
    stranger.cookies.clear()
    answer = stranger.get(f"/documents/{row.id}/file", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    assert b"%PDF" not in answer.content
    assert operator.get("/documents/not-an-id/file").status_code == 404
    assert operator.get(f"/documents/{UUID(int=7)}/file").status_code == 404

    auditor, auditor_csrf, _id = web_client(runtime, "auditor")
    assert auditor.get(f"/documents/{row.id}/file").status_code == 200
    page = auditor.get(f"/deals/{w.deal}")
    assert "Generate a document" not in page.text and "Void the document" not in page.text
    refused = auditor.post(
        f"/documents/{row.id}/void", data={"csrf_token": auditor_csrf, "reason": "no"}
    )
    assert refused.status_code == 403
    assert generate(auditor, auditor_csrf, w.deal).status_code == 403
    no_csrf = operator.post(f"/documents/{row.id}/void", data={"reason": "no"})
    assert no_csrf.status_code == 403
    assert document(runtime.views, row.id).status == "issued"  # type: ignore[union-attr]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    amount=st.text(max_size=40),
    signed_on=st.one_of(st.text(max_size=20), st.dates().map(date.isoformat)),
    due_on=st.one_of(st.text(max_size=20), st.dates().map(date.isoformat)),
    kind=st.sampled_from(["invoice", "act", "", "upd ", "proposal\x00"]),
)
def test_whatever_is_typed_into_the_forms_is_answered_never_a_500(
    typed_runtime: tuple[Runtime, UUID, TestClient, str],
    amount: str,
    signed_on: str,
    due_on: str,
    kind: str,
) -> None:
    _runtime, deal_id, client, csrf = typed_runtime
    contract = client.post(
        f"/deals/{deal_id}/contracts",
        data={"csrf_token": csrf, "number": "Д-1", "signed_on": signed_on, "amount": amount},
        follow_redirects=False,
    )
    assert contract.status_code in (303, 409, 422), contract.text
    if contract.status_code == 422:
        assert 'data-error-for="contract"' in contract.text
    issued = generate(client, csrf, deal_id, kind=kind, due_on=due_on)
    assert issued.status_code in (303, 422), issued.text
    if issued.status_code == 422:
        assert 'data-error-for="generate"' in issued.text


@pytest.fixture
def typed_runtime(runtime: Runtime) -> tuple[Runtime, UUID, TestClient, str]:
    """One world for every example (building it per example would take minutes)."""
    w = world(runtime)
    client, csrf, _me = web_client(runtime, "operator")
    return runtime, w.deal, client, csrf


def test_a_due_date_reads_the_same_west_of_greenwich(sqlite_url: str, tmp_path: Path) -> None:
    """A due date is a calendar day, not a moment: New York sees 20 January, not the 19th."""
    runtime = make_runtime(
        sqlite_url, attachments_dir=str(tmp_path / "files"), timezone="America/New_York"
    )
    try:
        w = world(runtime)
        client, csrf, _me = web_client(runtime, "operator")
        generate(client, csrf, w.deal, due_on="2030-01-20")
        shown = text_of(section(client.get(f"/deals/{w.deal}").text, "documents"))
        assert "due Jan 20, 2030" in shown and "Jan 19, 2030" not in shown
    finally:
        runtime.close()
