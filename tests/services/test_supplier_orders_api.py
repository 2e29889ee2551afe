"""Supplier orders through the API: made from a won deal, sent with the purchase order, confirmed,
received; what is owed falls as outgoing money is allocated to the order."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_runtime
from tests.services.payments_setup import ACTOR, World, render, world
from threadline.domain.commands.documents import DocumentDraft, Numbered
from threadline.domain.model.document import DocumentKind
from threadline.domain.model.money import Money
from threadline.domain.model.pipeline import seeded_pipeline_id
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime

ADMIN = {"Authorization": "Bearer admin-secret"}


@pytest.fixture
def api(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Runtime, World]]:
    runtime = make_runtime(
        sqlite_url, admin_token="admin-secret", attachments_dir=str(tmp_path / "files")
    )
    try:
        w = world(runtime)
        with TestClient(create_app(runtime)) as client:
            yield client, runtime, w
    finally:
        runtime.close()


def printed_order(runtime: Runtime, order_id: UUID, supplier_id: UUID) -> UUID:
    """The order's purchase order, issued under the order's own number (ЗП-1)."""
    draft = DocumentDraft(
        kind=DocumentKind.PURCHASE_ORDER,
        series="ЗП",
        language="ru",
        issued_on=date(2026, 12, 1),
        due_on=None,
        amount=Money(Decimal("1800.00"), "RUB"),
        vat=Money(Decimal(0), "RUB"),
        personal={"title": "Заказ поставщику"},
        template={"id": "shipped:purchase_order:ru", "version": 0, "shipped": True},
        supplier_order_id=order_id,
        company_id=supplier_id,
        fixed_number=Numbered("ЗП", 2026, 1, "ЗП-1"),
    )
    committed = runtime.app.issue_document(draft, render(runtime), ACTOR)
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    value: UUID = committed.value
    return value


def test_an_order_is_sent_confirmed_received_and_paid(
    api: tuple[TestClient, Runtime, World],
) -> None:
    client, runtime, w = api
    order_url = f"/api/supplier-orders/{w.order}"
    order = client.get(order_url, headers=ADMIN).json()
    assert (order["display_number"], order["state"]) == ("ЗП-1", "draft")
    assert order["payable"] == {"amount": "1800.00", "currency": "RUB"}
    listed = client.get(f"/api/supplier-orders?supplier_id={w.supplier}&state=draft", headers=ADMIN)
    assert [o["id"] for o in listed.json()["items"]] == [str(w.order)]
    # a draft is not confirmed before it is sent
    refused = client.post(f"{order_url}/state", json={"state": "confirmed"}, headers=ADMIN)
    assert refused.status_code == 409, refused.text

    person = runtime.app.create_contact(ACTOR, "Пётр", [("email", "petr@supplier.example")])
    document_id = printed_order(runtime, w.order, w.supplier)
    sent = client.post(
        f"{order_url}/send",
        json={"contact_id": str(person.value), "text": "Заказ во вложении", "document_id": str(document_id)},
        headers=ADMIN,
    )  # fmt: skip
    assert sent.status_code == 201, sent.text
    assert sent.json()["document_id"] == str(document_id)
    order = client.get(order_url, headers=ADMIN).json()
    assert order["state"] == "sent" and order["document_ids"] == [str(document_id)]

    wrong = client.post(
        f"{order_url}/state", json={"state": "received", "expected_on": "2026-12-20"}, headers=ADMIN
    )
    assert wrong.status_code == 422 and "expected_on" in wrong.text
    confirmed = client.post(
        f"{order_url}/state",
        json={"state": "confirmed", "expected_on": "2026-12-20"},
        headers=ADMIN,
    )
    assert confirmed.status_code == 200, confirmed.text
    assert (confirmed.json()["state"], confirmed.json()["expected_on"]) == (
        "confirmed",
        "2026-12-20",
    )
    received = client.post(f"{order_url}/state", json={"state": "received"}, headers=ADMIN)
    assert received.json()["state"] == "received" and received.json()["received_at"]

    paid = client.post(
        "/api/payments",
        json={
            "direction": "out",
            "amount": "1000.00",
            "paid_on": "2026-12-21",
            "purpose": "Оплата по заказу",
            "target": {"kind": "supplier_order", "id": str(w.order)},
        },
        headers=ADMIN,
    )
    assert paid.status_code in (200, 201), paid.text
    order = client.get(order_url, headers=ADMIN).json()
    assert order["paid"]["amount"] == "1000.00" and order["payable"]["amount"] == "800.00"
    unpaid = client.get("/api/supplier-orders?unpaid=true", headers=ADMIN).json()
    assert [o["id"] for o in unpaid["items"]] == [str(w.order)]


def test_orders_come_only_from_a_won_deal_and_asking_again_gives_the_same(
    api: tuple[TestClient, Runtime, World],
) -> None:
    client, runtime, w = api
    open_deal = runtime.app.create_deal(
        ACTOR, "Ещё стулья", seeded_pipeline_id("new-clients"), company_id=w.romashka,
        lines=[{"name": "Стул", "price": "10", "quantity": 1}],
    ).value  # fmt: skip
    refused = client.post(f"/api/deals/{open_deal}/supplier-orders", headers=ADMIN)
    assert refused.status_code == 409 and "won deal" in refused.text
    order = client.get(f"/api/supplier-orders/{w.order}", headers=ADMIN).json()
    again = client.post(f"/api/deals/{order['deal_id']}/supplier-orders", json={}, headers=ADMIN)
    assert again.status_code == 201, again.text
    assert again.json() == {"order_ids": [str(w.order)], "skipped_lines": []}
    missing = client.get("/api/supplier-orders/00000000-0000-0000-0000-000000000000", headers=ADMIN)
    assert missing.status_code == 404
