"""What the payments, statement and contracts page tests share: a client company with an ИНН,
invoices issued through the real command (the stored file is a stand-in for the PDF), and
payments recorded through the real command."""

# ruff: noqa: RUF001 (Russian company names and purposes on purpose)

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from threadline.domain.commands.documents import DocumentDraft, Numbered, RenderedFile
from threadline.domain.commands.payments import Allocation, PaymentEntry, PaymentInput
from threadline.domain.model.document import DocumentKind
from threadline.domain.model.money import Money
from threadline.domain.model.payment import Direction, payment_id_for
from threadline.services.runtime import Runtime

RUB = "RUB"
ROMASHKA_INN = "7707083893"
ROMASHKA_ACCOUNT = "40702810938000000001"


def settle(runtime: Runtime, committed: Any) -> Any:
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    return committed.value


def text_of(page: str) -> str:
    """The page's visible text, one space between words."""
    plain = html.unescape(re.sub(r"<[^>]+>", " ", page))
    return re.sub(r"[ \t\r\n]+", " ", plain)


def new_company(runtime: Runtime, name: str, inn: str, roles: tuple[str, ...] = ()) -> UUID:
    requisites = [
        {"inn": inn, "bank_accounts": [{"bik": "044525225", "account": ROMASHKA_ACCOUNT}]}
    ]
    committed = runtime.app.create_company(
        "test", name, legal_form="company", requisites=requisites, roles=list(roles) or None
    )
    company_id: UUID = settle(runtime, committed)
    return company_id


def rendering(runtime: Runtime) -> Callable[[Numbered], RenderedFile]:
    """A render that stores a small file naming the number, as the real one stores the PDF."""
    store = runtime.attachment_access.store

    def render(numbered: Numbered) -> RenderedFile:
        meta = store.put(
            f"document {numbered.display_number}".encode(),
            f"{numbered.display_number}.pdf",
            "application/pdf",
        )
        return RenderedFile({**meta.public(), "filename": meta.filename}, "0" * 64)

    return render


def issue(
    runtime: Runtime,
    total: str,
    *,
    company_id: UUID | None = None,
    kind: DocumentKind = DocumentKind.INVOICE,
    series: str = "СЧ",
    deal_id: UUID | None = None,
    contract_id: UUID | None = None,
    contact_id: UUID | None = None,
) -> UUID:
    draft = DocumentDraft(
        kind=kind,
        series=series,
        language="ru",
        issued_on=date(2026, 12, 1),
        due_on=date(2026, 12, 10),
        amount=Money(Decimal(total), RUB),
        vat=Money(Decimal(0), RUB),
        personal={"title": "Счёт на оплату"},
        template={"id": "shipped:invoice:ru", "version": 0, "shipped": True},
        company_id=company_id,
        deal_id=deal_id,
        contract_id=contract_id,
        contact_id=contact_id,
    )
    document_id: UUID = settle(
        runtime, runtime.app.issue_document(draft, rendering(runtime), "test")
    )
    return document_id


def pay(
    runtime: Runtime,
    amount: str,
    *,
    company_id: UUID | None = None,
    direction: Direction = Direction.IN,
    name: str = "ООО Ромашка",
    inn: str = ROMASHKA_INN,
    purpose: str = "Оплата по счёту",
    paid_on: date = date(2026, 12, 5),
    allocations: tuple[Allocation, ...] = (),
    suggestions: tuple[Allocation, ...] = (),
) -> UUID:
    payment_id = payment_id_for(str(uuid4()))
    entry = PaymentEntry(
        PaymentInput(
            payment_id=payment_id,
            direction=direction,
            amount=Money(Decimal(amount), RUB),
            paid_on=paid_on,
            counterparty={"name": name, "inn": inn, "account": ROMASHKA_ACCOUNT},
            purpose=purpose,
            bank_document={"kind": "Платежное поручение", "number": "512", "date": "2026-12-05"},
            source={"kind": "statement", "file_sha256": "ab" * 32, "line": 14},
            company_id=company_id,
        ),
        allocations,
        suggestions,
    )
    settle(runtime, runtime.app.record_payments([entry], "test"))
    return payment_id
