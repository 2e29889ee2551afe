"""What the deal-documents and supplier-order page tests (and the invoice browser test) start
from: our own company with its requisites, a client company with a contact who has an e-mail
address, a supplier with a contact, and a deal whose one line costs 57 902,14 ₽ with VAT."""

# ruff: noqa: RUF001, RUF002 (Russian names on purpose)

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from threadline.domain.model.pipeline import seeded_pipeline_id, seeded_stage_id
from threadline.services.runtime import Runtime

OWN_INN = "7736207543"
CLIENT_INN = "7707083893"
SUPPLIER_INN = "5001007329"
ACCOUNT = "40702810938000000001"
CLIENT_EMAIL = "olga@romashka.example"
SUPPLIER_EMAIL = "orders@supplier.example"
TOTAL = "57902.14"
TOTAL_RU = "57 902,14"
WORDS_RU = "Пятьдесят семь тысяч девятьсот два рубля 14 копеек"


def settle(runtime: Runtime, committed: Any) -> Any:
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    return committed.value


def company(runtime: Runtime, name: str, inn: str, roles: list[str], bank: bool = False) -> UUID:
    requisites: dict[str, Any] = {"inn": inn, "legal_address": "Москва, ул. Льва Толстого, 16"}
    if bank:
        requisites["kpp"] = "773601001"
        requisites["bank_accounts"] = [
            {"bank_name": "ПАО Сбербанк", "bik": "044525225", "account": ACCOUNT}
        ]
    committed = runtime.app.create_company(
        "test", name, legal_form="company", requisites=[requisites], roles=roles
    )
    company_id: UUID = settle(runtime, committed)
    return company_id


def person(runtime: Runtime, name: str, email: str, company_id: UUID) -> UUID:
    contact: UUID = settle(
        runtime, runtime.app.create_contact("test", name, identities=[("email", email)])
    )
    settle(runtime, runtime.app.update_contact(contact, "test", company_id=company_id))
    return contact


@dataclass(frozen=True)
class World:
    own: UUID
    client: UUID
    olga: UUID
    supplier: UUID
    ivan: UUID
    deal: UUID
    product: UUID


def world(runtime: Runtime, *, won: bool = False, free_line: bool = False) -> World:
    """Our company, ООО "Ромашка" with Olga, a supplier with Ivan, and a deal of one chair set
    (57 902,14 ₽ with VAT; cost 30 000 from the supplier); `won` wins it, `free_line` adds a
    line typed by hand (no product, so no supplier order can carry it)."""
    settle(runtime, runtime.app.seed_pipelines("test"))
    own = company(runtime, 'ООО "Трэдлайн"', OWN_INN, ["own"], bank=True)
    client = company(runtime, 'ООО "Ромашка"', CLIENT_INN, ["client"])
    olga = person(runtime, "Ольга Смирнова", CLIENT_EMAIL, client)
    supplier = company(runtime, 'ООО "Поставщик"', SUPPLIER_INN, ["supplier"])
    ivan = person(runtime, "Иван Петров", SUPPLIER_EMAIL, supplier)
    product: UUID = settle(
        runtime,
        runtime.app.create_product(
            "test", "Комплект стульев", TOTAL, cost="30000", supplier_id=supplier
        ),
    )
    lines: list[dict[str, Any]] = [{"product_id": str(product), "quantity": "1"}]
    if free_line:
        lines.append({"name": "Доставка", "quantity": "1", "price": "0", "vat": "none"})
    deal: UUID = settle(
        runtime,
        runtime.app.create_deal(
            actor="test",
            title="Стулья для Ромашки",
            pipeline_id=seeded_pipeline_id("new-clients"),
            contact_id=olga,
            company_id=client,
            lines=lines,
        ),
    )
    if won:
        settle(runtime, runtime.app.move_deal(deal, seeded_stage_id("new-clients", "paid"), "test"))
    return World(own, client, olga, supplier, ivan, deal, product)
