"""What the payment tests start from: clients and a supplier known by ИНН, invoices, an order.

Invoices are issued through the real command with a render that stores a small file (the
PDF itself is other tests' business); the supplier order comes from a won deal, as in use.
"""

# ruff: noqa: RUF001

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from uuid import UUID

from threadline.domain.commands.documents import DocumentDraft, Numbered, RenderedFile
from threadline.domain.model.document import DocumentKind
from threadline.domain.model.money import Money
from threadline.domain.model.pipeline import seeded_pipeline_id, seeded_stage_id
from threadline.services.runtime import Runtime

ROMASHKA_INN = "7707083893"
LUTIK_INN = "7736207543"
SUPPLIER_INN = "5001007329"
STRANGER_INN = "7712345671"
OUR_ACCOUNT = "40702810900000000001"
ROMASHKA_ACCOUNT = "40702810938000000001"
LUTIK_ACCOUNT = "40702810938000000002"
SUPPLIER_ACCOUNT = "40702810938000000003"
ACTOR = "user:test"


def settle(runtime: Runtime) -> None:
    assert runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=60)


def company(runtime: Runtime, name: str, inn: str, roles: list[str] | None = None) -> UUID:
    committed = runtime.app.create_company(
        ACTOR, name, legal_form="company", requisites=[{"inn": inn}], roles=roles
    )
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    value: UUID = committed.value
    return value


def render(runtime: Runtime):  # type: ignore[no-untyped-def]
    store = runtime.attachment_access.store

    def rendered(numbered: Numbered) -> RenderedFile:
        meta = store.put(f"{numbered.display_number}".encode(), "doc.pdf", "application/pdf")
        return RenderedFile({**meta.public(), "filename": meta.filename}, "0" * 64)

    return rendered


def invoice(
    runtime: Runtime,
    company_id: UUID | None,
    total: str,
    *,
    currency: str = "RUB",
    due: date = date(2026, 12, 10),
    series: str = "СЧ",
    contract_id: UUID | None = None,
) -> UUID:
    draft = DocumentDraft(
        kind=DocumentKind.INVOICE,
        series=series,
        language="ru",
        issued_on=date(2026, 12, 1),
        due_on=due,
        amount=Money(Decimal(total), currency),
        vat=Money(Decimal(0), currency),
        personal={"title": "Счёт на оплату"},
        template={"id": "shipped:invoice:ru", "version": 0, "shipped": True},
        company_id=company_id,
        contract_id=contract_id,
    )
    committed = runtime.app.issue_document(draft, render(runtime), ACTOR)
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    value: UUID = committed.value
    return value


def invoices(runtime: Runtime, company_id: UUID, *totals: str) -> list[UUID]:
    return [invoice(runtime, company_id, total) for total in totals]


def supplier_order(runtime: Runtime, supplier_id: UUID, client_id: UUID, cost: str) -> UUID:
    """A won deal of one product from `supplier_id` at `cost`: its order (ЗП-n) is returned."""
    _ = runtime.app.seed_pipelines("test").value
    product = runtime.app.create_product(
        ACTOR, "Стул", str(Decimal(cost) * 2), cost=cost, supplier_id=supplier_id
    ).value
    deal_id = runtime.app.create_deal(
        ACTOR,
        "Стулья",
        seeded_pipeline_id("new-clients"),
        company_id=client_id,
        lines=[{"product_id": str(product), "quantity": 1}],
    ).value
    _ = runtime.app.move_deal(deal_id, seeded_stage_id("new-clients", "paid"), ACTOR).value
    made = runtime.app.create_supplier_orders(deal_id, ACTOR, date(2026, 12, 1))
    assert runtime.wait_for_views(made.notification_id, timeout=60)
    (order_id,) = made.value.order_ids
    return order_id


@dataclass(frozen=True)
class World:
    """Two clients (Ромашка with СЧ-1..3, Лютик with СЧ-4) and a supplier with ЗП-1."""

    romashka: UUID
    lutik: UUID
    supplier: UUID
    sch1: UUID  # 1000.00
    sch2: UUID  # 2500.00
    sch3: UUID  # 700.00
    sch4: UUID  # 300.00 (Лютик)
    order: UUID  # 1800.00, ЗП-1


def world(runtime: Runtime) -> World:
    romashka = company(runtime, 'ООО "Ромашка"', ROMASHKA_INN)
    lutik = company(runtime, 'ООО "Лютик"', LUTIK_INN)
    supplier = company(runtime, 'ООО "Поставщик"', SUPPLIER_INN, roles=["supplier"])
    sch1, sch2, sch3 = invoices(runtime, romashka, "1000.00", "2500.00", "700.00")
    sch4 = invoice(runtime, lutik, "300.00")
    order = supplier_order(runtime, supplier, romashka, "1800.00")
    settle(runtime)
    return World(romashka, lutik, supplier, sch1, sch2, sch3, sch4, order)
