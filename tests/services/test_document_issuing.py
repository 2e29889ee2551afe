"""Issuing documents end to end: a deal becomes a numbered PDF with both parties' requisites,
its lines, VAT per rate and the amount in words; the stored file is served byte for byte and
its hash is the one the log recorded (FastAPI TestClient over a real runtime)."""

# ruff: noqa: RUF001

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from tests.conftest import make_runtime
from threadline.domain.model.amount_words import amount_in_words
from threadline.domain.model.document import Document
from threadline.domain.model.pipeline import seeded_pipeline_id
from threadline.services.api.app import create_app
from threadline.services.documents.context import jsonable
from threadline.services.documents.issuing import file_name
from threadline.services.runtime import Runtime

ADMIN = {"Authorization": "Bearer admin-secret"}
NEW = str(seeded_pipeline_id("new-clients"))
pytestmark = pytest.mark.timeout(300)

OURS = {
    "name": "ООО «Ромашка»",
    "roles": ["own"],
    "legal_form": "company",
    "requisites": [
        {
            "inn": "7707083893",
            "kpp": "773601001",
            "ogrn": "1027700132195",
            "legal_address": "117997, г. Москва, ул. Вавилова, д. 19",
            "bank_accounts": [
                {
                    "bank_name": "ПАО Сбербанк",
                    "bik": "044525225",
                    "account": "40702810200000012345",
                    "correspondent_account": "30101810400000000225",
                }
            ],
        }
    ],
}
CLIENT = {
    "name": "ООО «Вектор»",
    "roles": ["client"],
    "legal_form": "company",
    "requisites": [
        {
            "inn": "7736207543",
            "kpp": "773601001",
            "legal_address": "119021, г. Москва, ул. Льва Толстого, д. 16",
            "bank_accounts": [
                {
                    "bank_name": "АО «Т-Банк»",
                    "bik": "044525974",
                    "account": "40702810210000054321",
                }
            ],
        }
    ],
}
# Priced on 1 December 2026: standard VAT 22 %, reduced 10 %.
LINES = [
    {"name": "Маршрутизатор RT-1", "quantity": "2", "price": "12500.50", "unit": "шт",
     "vat": "standard", "vat_included": False},
    {"name": "Методическое пособие", "quantity": "3", "price": "450", "unit": "шт",
     "vat": "reduced", "vat_included": False},
    {"name": "Настройка сети", "quantity": "1", "price": "1000", "unit": "ч", "vat": "none"},
]  # fmt: skip
# 25 001.00 + 5 500.22 VAT; 1 350.00 + 135.00 VAT; 1 000.00 without VAT
TOTAL, VAT = Decimal("32986.22"), Decimal("5635.22")
WORDS_RU = "Тридцать две тысячи девятьсот восемьдесят шесть рублей 22 копейки"


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Runtime]]:
    runtime = make_runtime(
        database_url, admin_token="admin-secret", attachments_dir=str(tmp_path / "files")
    )
    try:
        committed = runtime.app.seed_pipelines("test")
        runtime.wait_for_views(committed.notification_id, timeout=30)
        with TestClient(create_app(runtime)) as client:
            yield client, runtime
    finally:
        runtime.close()


@pytest.fixture
def sqlite_api(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Runtime]]:
    runtime = make_runtime(
        sqlite_url, admin_token="admin-secret", attachments_dir=str(tmp_path / "files")
    )
    try:
        committed = runtime.app.seed_pipelines("test")
        runtime.wait_for_views(committed.notification_id, timeout=30)
        with TestClient(create_app(runtime)) as client:
            yield client, runtime
    finally:
        runtime.close()


def post(client: TestClient, path: str, body: dict[str, Any], status: int = 201) -> Any:
    response = client.post(path, json=body, headers=ADMIN)
    assert response.status_code == status, response.text
    return response.json()


def company(client: TestClient, body: dict[str, Any]) -> str:
    return str(post(client, "/api/companies", body)["id"])


def contact(client: TestClient, company_id: str | None, email: str | None = None) -> str:
    body: dict[str, Any] = {"name": "Мария Петрова"}
    if email:
        body["identities"] = [{"kind": "email", "value": email}]
    found = str(post(client, "/api/contacts", body)["id"])
    if company_id:
        patched = client.patch(
            f"/api/contacts/{found}", json={"company_id": company_id}, headers=ADMIN
        )
        assert patched.status_code == 200, patched.text
    return found


def deal(client: TestClient, company_id: str | None, contact_id: str | None, **extra: Any) -> str:
    body = {
        "title": "Сеть для Вектора",
        "pipeline_id": NEW,
        "company_id": company_id,
        "contact_id": contact_id,
        "expected_close": "2026-12-01",
        "lines": LINES,
        **extra,
    }
    return str(post(client, "/api/deals", body)["id"])


def setup_sale(client: TestClient, email: str | None = "maria@vector.example") -> dict[str, str]:
    ours = company(client, OURS)
    theirs = company(client, CLIENT)
    person = contact(client, theirs, email)
    return {
        "ours": ours,
        "company": theirs,
        "contact": person,
        "deal": deal(client, theirs, person),
    }


def invoice(client: TestClient, deal_id: str, status: int = 201, **extra: Any) -> Any:
    body = {"kind": "invoice", "deal_id": deal_id, "issued_on": "2026-12-07", **extra}
    return post(client, "/api/documents", body, status)


def pdf_text(data: bytes) -> str:
    text = "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)
    return " ".join(text.replace("\u00a0", " ").split())


def issued_event(runtime: Runtime, document_id: str) -> Any:
    first = next(iter(runtime.app.repository.event_store.get(UUID(document_id), lte=1)))
    assert isinstance(first, Document.DocumentIssued)
    return first


# -- the document and its file ------------------------------------------------------------------


def test_an_invoice_prints_both_parties_lines_vat_per_rate_and_the_amount_in_words(
    api: tuple[TestClient, Runtime],
) -> None:
    client, runtime = api
    sale = setup_sale(client)
    doc = invoice(client, sale["deal"], notes="Оплата в течение 5 дней")

    assert (doc["kind"], doc["display_number"], doc["series"], doc["year"]) == (
        "invoice", "СЧ-1", "СЧ", 2026,
    )  # fmt: skip
    assert doc["total"] == {"amount": str(TOTAL), "currency": "RUB"}
    assert doc["vat"] == {"amount": str(VAT), "currency": "RUB"}
    assert (doc["payment_state"], doc["status"], doc["sent_count"]) == ("unpaid", "issued", 0)
    assert doc["due_on"] == "2026-12-12"  # an invoice is due five days after it is issued
    assert (doc["deal_id"], doc["company_id"], doc["contact_id"], doc["seller_id"]) == (
        sale["deal"], sale["company"], sale["contact"], sale["ours"],
    )  # fmt: skip
    assert doc["template"] == {"id": "shipped:invoice:ru", "version": None, "shipped": True}
    assert doc["file"]["filename"] == "Счёт СЧ-1 от 07.12.2026.pdf"

    # What the document says is in the log, as JSON.
    event = issued_event(runtime, doc["id"])
    said = event.personal
    assert said["seller"]["inn"] == "7707083893" and said["seller"]["kpp"] == "773601001"
    assert said["seller"]["bank"] == OURS["requisites"][0]["bank_accounts"][0]
    assert said["buyer"]["name"] == "ООО «Вектор»" and said["buyer"]["inn"] == "7736207543"
    assert said["buyer"]["bank"]["account"] == "40702810210000054321"
    assert said["buyer"]["bank"]["correspondent_account"] == ""
    assert [(line["number"], line["name"], line["net"], line["vat_rate"], line["vat"],
             line["total"]) for line in said["lines"]] == [
        (1, "Маршрутизатор RT-1", "25001.00", "22", "5500.22", "30501.22"),
        (2, "Методическое пособие", "1350.00", "10", "135.00", "1485.00"),
        (3, "Настройка сети", "1000.00", None, "0.00", "1000.00"),
    ]  # fmt: skip
    assert said["totals"]["vat_rates"] == [
        {"rate": "10", "vat": "135.00"},
        {"rate": "22", "vat": "5500.22"},
    ]
    assert said["totals"]["total"] == str(TOTAL) and said["notes"] == "Оплата в течение 5 дней"
    assert event.amount == {"amount": str(TOTAL), "currency": "RUB"}

    # The PDF: the number, the amount, the words, both parties.
    response = client.get(doc["file"]["url"], headers=ADMIN)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"].startswith("attachment")
    text = pdf_text(response.content)
    assert amount_in_words(TOTAL, "RUB", "ru") == WORDS_RU
    for expected in ("СЧ-1", "32 986,22", WORDS_RU, "7707083893", "7736207543", "Вектор"):
        assert expected in text, expected

    # Byte-identical to what is stored, and the hash is the log's.
    digest = hashlib.sha256(response.content).hexdigest()
    assert digest == event.file["sha256"] == doc["file"]["sha256"]
    assert response.headers["etag"] == f'"{digest}"'
    stored = runtime.attachment_access.store.read(digest)
    assert stored == response.content and len(stored) == doc["file"]["size"]
    again = client.get(doc["file"]["url"], headers={**ADMIN, "If-None-Match": f'"{digest}"'})
    assert again.status_code == 304
    html = client.get(f"/api/documents/{doc['id']}/html", headers=ADMIN)
    assert hashlib.sha256(html.content).hexdigest() == event.html_sha256
    assert "sandbox" in html.headers["content-security-policy"]

    listed = client.get(f"/api/documents?deal_id={sale['deal']}", headers=ADMIN).json()
    assert [d["id"] for d in listed["items"]] == [doc["id"]] and listed["total"] == 1
    assert client.get("/api/documents?q=СЧ-1", headers=ADMIN).json()["total"] == 1
    assert client.get(f"/api/documents/{doc['id']}", headers=ADMIN).json() == doc
    assert client.get(f"/api/documents/{uuid4()}", headers=ADMIN).status_code == 404
    assert client.get(doc["file"]["url"]).status_code == 401


def test_an_english_invoice_spells_the_amount_in_english(
    sqlite_api: tuple[TestClient, Runtime],
) -> None:
    client, _ = sqlite_api
    sale = setup_sale(client)
    doc = invoice(client, sale["deal"], language="en")
    assert doc["file"]["filename"] == "Invoice СЧ-1 2026-12-07.pdf"
    text = pdf_text(client.get(doc["file"]["url"], headers=ADMIN).content)
    words = amount_in_words(TOTAL, "RUB", "en")
    assert words.startswith("Thirty") and "22" in words
    for expected in ("32,986.22", " ".join(words.split()), "7736207543"):
        assert expected in text, expected


def test_a_private_client_is_the_buyer_when_the_deal_has_no_company(
    sqlite_api: tuple[TestClient, Runtime],
) -> None:
    client, runtime = sqlite_api
    company(client, OURS)
    person = contact(client, None, "ivan@example.net")
    doc = invoice(client, deal(client, None, person), language="en")
    buyer = issued_event(runtime, doc["id"]).personal["buyer"]
    assert (buyer["name"], buyer["legal_form"], buyer["email"], buyer["inn"]) == (
        "Мария Петрова", "private_person", "ivan@example.net", "",
    )  # fmt: skip
    assert doc["company_id"] is None and doc["contact_id"] == person


# -- numbering ----------------------------------------------------------------------------------


def test_numbers_run_per_series_and_year_and_a_voided_number_stays_used(
    sqlite_api: tuple[TestClient, Runtime],
) -> None:
    client, _ = sqlite_api
    sale = setup_sale(client)
    first = invoice(client, sale["deal"])
    second = invoice(client, sale["deal"])
    act = invoice(client, sale["deal"], kind="act")
    english = invoice(client, sale["deal"], language="en")
    next_year = invoice(client, sale["deal"], issued_on="2027-01-10")
    own_series = invoice(client, sale["deal"], series="INV")
    assert [d["display_number"] for d in (first, second, act, english, next_year, own_series)] == [
        "СЧ-1", "СЧ-2", "АКТ-1", "СЧ-3", "СЧ-1", "INV-1",
    ]  # fmt: skip
    assert next_year["year"] == 2027

    voided = post(client, f"/api/documents/{second['id']}/void", {"reason": "wrong amount"}, 200)
    assert (voided["status"], voided["payment_state"], voided["void_reason"]) == (
        "voided", "voided", "wrong amount",
    )  # fmt: skip
    post(client, f"/api/documents/{second['id']}/void", {"reason": "again"}, 409)
    post(client, f"/api/documents/{second['id']}/void", {"reason": ""}, 422)
    assert invoice(client, sale["deal"])["display_number"] == "СЧ-4"

    # A retry with the same client id is the same document, and takes no number.
    key = str(uuid4())
    retried = [invoice(client, sale["deal"], client_document_id=key) for _ in range(2)]
    assert retried[0] == retried[1] and retried[0]["display_number"] == "СЧ-5"
    assert invoice(client, sale["deal"])["display_number"] == "СЧ-6"
    issued = client.get("/api/documents?kind=invoice&status=issued", headers=ADMIN).json()
    assert issued["total"] == 7  # eight invoices, one voided


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(["invoice", "act", "proposal", "upd", "purchase_order", "bill"]),
    language=st.sampled_from(["ru", "en"]),
    number=st.integers(min_value=1, max_value=10**6),
    day=st.dates(min_value=date(1990, 1, 1), max_value=date(2999, 12, 31)),
)
def test_a_file_name_says_what_and_which_and_never_makes_a_path(
    kind: str, language: str, number: int, day: date
) -> None:
    if kind == "bill":
        with pytest.raises(KeyError):
            file_name(kind, language, f"X-{number}", day)
        return
    name = file_name(kind, language, f"СЧ-{number}", day)
    assert name.endswith(".pdf") and f"СЧ-{number}" in name and "/" not in name
    assert (day.isoformat() if language == "en" else f"{day:%d.%m.%Y}") in name


@given(
    st.recursive(
        st.decimals(allow_nan=False, allow_infinity=False, places=2)
        | st.dates()
        | st.uuids()
        | st.text(max_size=5)
        | st.none(),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
        ),
        max_leaves=10,
    )
)
def test_the_snapshot_of_any_value_is_json(value: Any) -> None:
    import json

    json.dumps(jsonable(value))


# -- refusals -----------------------------------------------------------------------------------


def test_requests_that_cannot_make_a_document_are_refused_with_the_field(
    sqlite_api: tuple[TestClient, Runtime],
) -> None:
    client, _ = sqlite_api
    theirs = company(client, CLIENT)
    person = contact(client, theirs)
    deal_id = deal(client, theirs, person)

    def refused(body: dict[str, Any], status: int = 422) -> Any:
        response = client.post("/api/documents", json=body, headers=ADMIN)
        assert response.status_code == status, response.text
        return response.json()["detail"]

    no_own = refused({"kind": "invoice", "deal_id": deal_id})
    assert no_own[0]["loc"] == ["body", "seller_id"]
    assert "set up your company" in no_own[0]["msg"] and "own" in no_own[0]["msg"]
    company(client, OURS)

    assert refused({"kind": "bill", "deal_id": deal_id})[0]["loc"] == ["body", "kind"]
    assert refused({"kind": "invoice", "deal_id": str(uuid4())})[0]["loc"] == ["body", "deal_id"]
    assert refused({"kind": "invoice", "deal_id": deal_id, "language": "de"})[0]["loc"] == [
        "body", "language",
    ]  # fmt: skip
    assert refused({"kind": "purchase_order", "deal_id": deal_id})[0]["loc"] == [
        "body", "supplier_order_id",
    ]  # fmt: skip
    late = {"kind": "invoice", "deal_id": deal_id, "issued_on": "2026-12-07",
            "due_on": "2026-12-01"}  # fmt: skip
    assert refused(late)[0]["loc"] == ["body", "due_on"]
    assert refused({"kind": "invoice", "company_id": theirs})[0]["loc"] == ["body", "deal_id"]
    assert refused({"kind": "invoice"})[0]["loc"] == ["body", "deal_id"]
    assert refused({"kind": "invoice", "deal_id": deal_id, "issued_on": "0001-01-01"})
    assert refused({"kind": "invoice", "deal_id": deal_id, "notes": "bad\x00"})[0]["loc"] == [
        "body", "notes",
    ]  # fmt: skip
    assert refused({"kind": "invoice", "deal_id": deal_id, "series": "A/B"})[0]["loc"] == [
        "body", "series",
    ]  # fmt: skip
    assert refused({"kind": "invoice", "deal_id": deal_id, "seller_id": str(uuid4())})
    # a contract for a client needs no lines (a framework agreement)
    framework = post(client, "/api/documents", {"kind": "contract", "company_id": theirs})
    assert framework["display_number"] == "Д-1" and framework["total"]["amount"] == "0.00"

    auditor = post(client, "/api/users", {"email": "audit@example.com", "role": "auditor"})
    audit = {"Authorization": f"Bearer {auditor['token']}"}
    body = {"kind": "invoice", "deal_id": deal_id}
    assert client.post("/api/documents", json=body, headers=audit).status_code == 403
    assert client.get("/api/documents", headers=audit).status_code == 200
    assert client.post(f"/api/documents/{uuid4()}/void", json={"reason": "x"},
                       headers=ADMIN).status_code == 404  # fmt: skip


# -- contracts and purchase orders --------------------------------------------------------------


def test_an_invoice_names_the_deals_contract_and_a_contract_alone_prints_its_amount(
    sqlite_api: tuple[TestClient, Runtime],
) -> None:
    client, runtime = sqlite_api
    sale = setup_sale(client)
    from threadline.domain.model.money import Money

    registered = runtime.app.register_contract(
        "17/2026",
        date(2026, 11, 2),
        "test",
        ends_on=date(2027, 12, 31),
        amount=None,
        deal_id=UUID(sale["deal"]),
        company_id=UUID(sale["company"]),
        contact_id=None,
        title="Поставка оборудования",
    )
    assert runtime.wait_for_views(registered.notification_id, timeout=60)
    doc = invoice(client, sale["deal"])
    assert doc["contract_id"] == str(registered.value)
    assert issued_event(runtime, doc["id"]).personal["contract"]["number"] == "17/2026"
    assert "Договор № 17/2026" in pdf_text(client.get(doc["file"]["url"], headers=ADMIN).content)

    alone = runtime.app.register_contract(
        "18/2026",
        date(2026, 11, 3),
        "test",
        amount=Money.of("1500.50", "RUB"),
        company_id=UUID(sale["company"]),
        title="Обслуживание",
    )
    assert runtime.wait_for_views(alone.notification_id, timeout=60)
    act = post(client, "/api/documents", {"kind": "act", "contract_id": str(alone.value)})
    assert act["total"]["amount"] == "1500.50" and act["company_id"] == sale["company"]
    assert act["deal_id"] is None
    text = pdf_text(client.get(act["file"]["url"], headers=ADMIN).content)
    assert "1 500,50" in text and "Одна тысяча пятьсот рублей 50 копеек" in text


def test_a_purchase_order_prints_under_the_orders_number_with_the_supplier_as_seller(
    sqlite_api: tuple[TestClient, Runtime],
) -> None:
    client, runtime = sqlite_api
    ours = company(client, OURS)
    supplier = company(client, {**CLIENT, "name": "ООО «Поставщик»", "roles": ["supplier"]})
    product = post(
        client,
        "/api/products",
        {"name": "Коммутатор", "price": "900", "cost": "600", "supplier_id": supplier,
         "vat": "none"},
    )  # fmt: skip
    person = contact(client, None, "buyer@example.net")
    deal_id = deal(client, None, person, lines=[{"product_id": product["id"], "quantity": "3"}])
    runtime.wait_for_views(runtime.app.win_deal(UUID(deal_id), "test").notification_id)
    made = runtime.app.create_supplier_orders(UUID(deal_id), "test", date(2026, 12, 7))
    assert runtime.wait_for_views(made.notification_id, timeout=60)
    (order_id,) = made.value.order_ids

    printed = post(
        client,
        "/api/documents",
        {"kind": "purchase_order", "supplier_order_id": str(order_id), "issued_on": "2026-12-07"},
    )
    assert printed["display_number"] == "ЗП-1" and printed["supplier_order_id"] == str(order_id)
    assert printed["total"]["amount"] == "1800.00"  # at cost
    assert (printed["company_id"], printed["seller_id"], printed["deal_id"]) == (
        supplier, ours, deal_id,
    )  # fmt: skip
    said = issued_event(runtime, printed["id"]).personal
    assert said["seller"]["name"] == "ООО «Поставщик»" and said["buyer"]["name"] == "ООО «Ромашка»"
    # printed again (a corrected order): the same number, a new document
    again = post(client, "/api/documents", {"kind": "purchase_order",
                                            "supplier_order_id": str(order_id)})  # fmt: skip
    assert again["display_number"] == "ЗП-1" and again["id"] != printed["id"]
    assert invoice(client, deal_id)["display_number"] == "СЧ-1"
    wrong = {"kind": "invoice", "supplier_order_id": str(order_id)}
    assert client.post("/api/documents", json=wrong, headers=ADMIN).status_code == 422


# -- sending ------------------------------------------------------------------------------------


def test_a_document_is_sent_to_the_clients_address_and_refused_without_one(
    sqlite_api: tuple[TestClient, Runtime],
) -> None:
    client, runtime = sqlite_api
    sale = setup_sale(client)
    doc = invoice(client, sale["deal"])
    url = f"/api/documents/{doc['id']}/send"
    no_phone = client.post(url, json={"channel": "sms"}, headers=ADMIN)
    assert no_phone.status_code == 422 and no_phone.json()["detail"][0]["loc"] == [
        "body", "channel",
    ]  # fmt: skip
    assert "phone number" in no_phone.json()["detail"][0]["msg"]

    sent = post(client, url, {"channel": "email", "text": "Счёт во вложении"})
    message = runtime.queries.message(sent["message_id"])
    assert message is not None and message["direction"] == "outbound"
    assert message["attachments"][0]["filename"] == doc["file"]["filename"]
    assert message["attachments"][0]["sha256"] == doc["file"]["sha256"]
    shown = client.get(f"/api/documents/{doc['id']}", headers=ADMIN).json()
    assert shown["sent_count"] == 1
    attached = client.get(f"/api/messages/{sent['message_id']}/attachments/0", headers=ADMIN)
    assert attached.status_code == 200 and attached.content == runtime.attachment_access.store.read(
        doc["file"]["sha256"]
    )

    # With no contact on the document, the company's first contact with an address gets it.
    colleague = contact(client, sale["company"], None)
    assert colleague
    framework = post(client, "/api/documents", {"kind": "contract", "company_id": sale["company"]})
    to_company = post(client, f"/api/documents/{framework['id']}/send", {"channel": "email"})
    message = runtime.queries.message(to_company["message_id"])
    assert message is not None and message["contact_id"] == sale["contact"]
    assert message["text"].startswith("Добрый день!")  # the default covering text

    post(client, f"/api/documents/{doc['id']}/void", {"reason": "replaced"}, 200)
    assert client.post(url, json={"channel": "email"}, headers=ADMIN).status_code == 409
