"""The supplier orders screens: the list with its filters, an order's page, printing the
purchase order, sending it to the supplier, and its states (confirmed, received, cancelled).

Orders come from won deals through the real command; the purchase order is rendered by the
real documents service and sent through the real send command.
"""

# ruff: noqa: RUF001, RUF002 (Russian text on purpose)

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest

from tests.conftest import make_runtime
from tests.web.helpers import web_client
from tests.web.webdeal_setup import SUPPLIER_EMAIL, World, company, person, settle, world
from threadline.domain.commands.payments import Allocation, PaymentEntry, PaymentInput
from threadline.domain.model.money import Money
from threadline.domain.model.payment import Direction, TargetKind, payment_id_for
from threadline.domain.model.pipeline import seeded_pipeline_id, seeded_stage_id
from threadline.domain.model.supplier_order import SupplierOrderState
from threadline.projections.documents import DocumentFilter, document_sends, documents_page
from threadline.projections.supplier_orders import supplier_order
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


def ordered(runtime: Runtime) -> tuple[World, UUID]:
    """The won deal's one order (ЗП-1, 30 000 ₽ to ООО "Поставщик")."""
    w = world(runtime, won=True)
    made = settle(runtime, runtime.app.create_supplier_orders(w.deal, "test", date(2026, 12, 1)))
    (order_id,) = made.order_ids
    return w, order_id


def second_supplier_order(runtime: Runtime, client_id: UUID) -> tuple[UUID, UUID]:
    """Another supplier with its own won deal: ЗП-2 for 500 ₽."""
    other = company(runtime, 'ООО "Лютик"', "7712345671", ["supplier"])
    product = settle(
        runtime, runtime.app.create_product("test", "Лампа", "900", cost="500", supplier_id=other)
    )
    deal_id = settle(
        runtime,
        runtime.app.create_deal(
            actor="test",
            title="Лампы",
            pipeline_id=seeded_pipeline_id("new-clients"),
            company_id=client_id,
            lines=[{"product_id": str(product), "quantity": "1"}],
        ),
    )
    settle(runtime, runtime.app.move_deal(deal_id, seeded_stage_id("new-clients", "paid"), "test"))
    made = settle(runtime, runtime.app.create_supplier_orders(deal_id, "test", date(2026, 12, 2)))
    return other, made.order_ids[0]


def rows_of(page: str) -> list[str]:
    return [
        text_of(row) for row in re.findall(r'<tr class="supplier-order-row".*?</tr>', page, re.S)
    ]


def test_the_list_filters_by_state_and_supplier(runtime: Runtime) -> None:
    w, first = ordered(runtime)
    other, second = second_supplier_order(runtime, w.client)
    settle(
        runtime,
        runtime.app.change_supplier_order_state(second, SupplierOrderState.CANCELLED, "test"),
    )
    client, _csrf, _me = web_client(runtime, "operator")

    page = client.get("/supplier-orders")
    assert page.status_code == 200
    assert 'href="/supplier-orders" class="on"' in page.text  # the nav entry, current
    everything = rows_of(page.text)
    assert len(everything) == 2
    assert any(
        "ЗП-1" in r and 'ООО "Поставщик"' in r and "draft" in r and "RUB30,000.00" in r
        for r in everything
    )
    # a cancelled order owes nothing
    assert any("ЗП-2" in r and "cancelled" in r and "RUB0.00" in r for r in everything)

    drafts = rows_of(client.get("/supplier-orders?state=draft").text)
    assert len(drafts) == 1 and "ЗП-1" in drafts[0]
    of_other = rows_of(client.get(f"/supplier-orders?supplier={other}").text)
    assert len(of_other) == 1 and "ЗП-2" in of_other[0]
    unpaid = rows_of(client.get("/supplier-orders?unpaid=1").text)
    assert [r.split()[0] for r in unpaid] == ["ЗП-1"]
    # nonsense filters are ignored, never a 500
    assert len(rows_of(client.get("/supplier-orders?state=lost&supplier=x&page=-3").text)) == 2
    assert first != second


def test_the_orders_page_prints_sends_and_moves_the_order(runtime: Runtime) -> None:
    w, order_id = ordered(runtime)
    client, csrf, _me = web_client(runtime, "manager")

    page = client.get(f"/supplier-orders/{order_id}")
    assert page.status_code == 200
    shown = text_of(page.text)
    assert "Supplier order ЗП-1" in shown and "Комплект стульев" in shown
    assert "Payable RUB30,000.00" in shown and "Paid RUB0.00" in shown
    assert "Dec 15, 2026" in shown  # paid 14 days after the order
    assert SUPPLIER_EMAIL in page.text  # Ivan, who gets the order

    early = client.post(
        f"/supplier-orders/{order_id}/send",
        data={"csrf_token": csrf, "contact_id": str(w.ivan), "text": "Заказ во вложении"},
    )
    assert early.status_code == 422
    assert "issue the purchase order first" in early.text

    printed = client.post(
        f"/supplier-orders/{order_id}/document",
        data={"csrf_token": csrf, "language": "ru"},
        follow_redirects=False,
    )
    assert printed.status_code == 303, printed.text
    (purchase,) = documents_page(runtime.views, DocumentFilter(supplier_order_id=str(order_id)))[0]
    assert (purchase.kind, purchase.display_number) == ("purchase_order", "ЗП-1")
    page = client.get(printed.headers["location"])
    assert "The purchase order was issued." in page.text
    assert f'href="/documents/{purchase.id}/file"' in page.text
    pdf = client.get(f"/documents/{purchase.id}/file")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")

    sent = client.post(
        f"/supplier-orders/{order_id}/send",
        data={"csrf_token": csrf, "contact_id": str(w.ivan), "text": "Заказ во вложении"},
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text
    assert supplier_order(runtime.views, order_id).state == "sent"  # type: ignore[union-attr]
    (send,) = document_sends(runtime.views, purchase.id)
    message = runtime.queries.message(send.message_id)
    assert message is not None and message["attachments"][0]["sha256"] == purchase.file["sha256"]

    confirmed = client.post(
        f"/supplier-orders/{order_id}/state",
        data={"csrf_token": csrf, "state": "confirmed", "expected_on": "2026-12-20"},
        follow_redirects=False,
    )
    assert confirmed.status_code == 303
    shown = text_of(client.get(confirmed.headers["location"]).text)
    assert "The order is confirmed." in shown and "Expected delivery Dec 20, 2026" in shown

    received = client.post(
        f"/supplier-orders/{order_id}/state", data={"csrf_token": csrf, "state": "received"}
    )
    assert received.status_code == 200 and "The order is received." in received.text
    too_late = client.post(
        f"/supplier-orders/{order_id}/state", data={"csrf_token": csrf, "state": "cancelled"}
    )
    assert too_late.status_code == 409
    assert 'data-error-for="state"' in too_late.text
    assert supplier_order(runtime.views, order_id).state == "received"  # type: ignore[union-attr]


def test_bad_moves_and_dates_are_422_and_change_nothing(runtime: Runtime) -> None:
    _w, order_id = ordered(runtime)
    client, csrf, _me = web_client(runtime, "operator")
    for data in (
        {"state": "sent"},
        {"state": "shipped"},
        {"state": "confirmed", "expected_on": "20.12.2026"},
    ):
        answer = client.post(
            f"/supplier-orders/{order_id}/state", data={"csrf_token": csrf, **data}
        )
        assert answer.status_code == 422, data
        assert 'data-error-for="state"' in answer.text
    nobody = client.post(
        f"/supplier-orders/{order_id}/send", data={"csrf_token": csrf, "contact_id": "nobody"}
    )
    assert nobody.status_code == 422
    assert supplier_order(runtime.views, order_id).state == "draft"  # type: ignore[union-attr]
    assert client.get("/supplier-orders/nothing").status_code == 404
    assert client.get(f"/supplier-orders/{UUID(int=3)}").status_code == 404


def test_an_outgoing_payment_lowers_what_is_payable(runtime: Runtime) -> None:
    w, order_id = ordered(runtime)
    entry = PaymentEntry(
        PaymentInput(
            payment_id=payment_id_for("webdeal-out-1"),
            direction=Direction.OUT,
            amount=Money(Decimal("12000.00"), "RUB"),
            paid_on=date(2026, 12, 3),
            counterparty={"name": 'ООО "Поставщик"', "inn": "5001007329"},
            purpose="Оплата по заказу ЗП-1",
            company_id=w.supplier,
        ),
        (Allocation(TargetKind.SUPPLIER_ORDER, order_id, Money(Decimal("12000.00"), "RUB")),),
        (),
    )
    settle(runtime, runtime.app.record_payments([entry], "test"))
    client, _csrf, _me = web_client(runtime, "operator")
    shown = text_of(client.get(f"/supplier-orders/{order_id}").text)
    assert "Paid RUB12,000.00" in shown and "Payable RUB18,000.00" in shown
    assert "Оплата по заказу ЗП-1" in shown and "Supplier order ЗП-1" in shown


def test_an_auditor_reads_but_cannot_change_orders(runtime: Runtime) -> None:
    w, order_id = ordered(runtime)
    person(runtime, "Пётр", "petr@supplier.example", w.supplier)
    auditor, csrf, _me = web_client(runtime, "auditor")
    page = auditor.get(f"/supplier-orders/{order_id}")
    assert page.status_code == 200
    assert "Send to supplier" not in page.text and "Issue the purchase order" not in page.text
    refused = auditor.post(
        f"/supplier-orders/{order_id}/state", data={"csrf_token": csrf, "state": "cancelled"}
    )
    assert refused.status_code == 403
    assert supplier_order(runtime.views, order_id).state == "draft"  # type: ignore[union-attr]
