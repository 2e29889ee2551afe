"""Documents, contracts, payments and supplier orders through the real store and views."""

# Russian company names on purpose: Cyrillic letters that look Latin are not a mistake here.
# ruff: noqa: RUF001

from __future__ import annotations

import hashlib
import threading
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest

from threadline.domain.commands.documents import DocumentDraft, Numbered, RenderedFile
from threadline.domain.commands.payments import Allocation, PaymentEntry, PaymentInput
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.model.document import DocumentKind
from threadline.domain.model.errors import Conflict, InvalidInput
from threadline.domain.model.money import Money
from threadline.domain.model.payment import AllocationHow, Direction, TargetKind, payment_id_for
from threadline.domain.model.pipeline import seeded_pipeline_id, seeded_stage_id
from threadline.domain.model.supplier_order import SupplierOrderState
from threadline.projections.documents import DocumentFilter, document, documents_page
from threadline.projections.payments import payment, suggestions_of_payment
from threadline.projections.settlements import settlement
from threadline.projections.supplier_orders import supplier_order
from threadline.services.runtime import Runtime

NEW = seeded_pipeline_id("new-clients")


def done(committed: Committed[Any]) -> Any:
    """Wait for a command's result (its events are in the log)."""
    return committed.value


RUB = "RUB"


def rendering(runtime: Runtime, seen: list[Numbered] | None = None):  # type: ignore[no-untyped-def]
    """A render that stores a small file naming the number, as the real one stores the PDF."""
    store = runtime.attachment_access.store

    def render(numbered: Numbered) -> RenderedFile:
        if seen is not None:
            seen.append(numbered)
        data = f"document {numbered.display_number}".encode()
        meta = store.put(data, f"{numbered.display_number}.pdf", "application/pdf")
        return RenderedFile({**meta.public(), "filename": meta.filename}, "0" * 64)

    return render


def invoice_draft(
    company_id: UUID | None, total: str, *, deal_id: UUID | None = None, due: date | None = None
) -> DocumentDraft:
    return DocumentDraft(
        kind=DocumentKind.INVOICE,
        series="СЧ",
        language="ru",
        issued_on=date(2026, 12, 1),
        due_on=due or date(2026, 12, 10),
        amount=Money(Decimal(total), RUB),
        vat=Money(Decimal(0), RUB),
        personal={"title": "Счёт на оплату"},
        template={"id": "shipped:invoice:ru", "version": 0, "shipped": True},
        company_id=company_id,
        deal_id=deal_id,
    )


def issue(runtime: Runtime, draft: DocumentDraft) -> UUID:
    committed = runtime.app.issue_document(draft, rendering(runtime), "user:test")
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    return committed.value


def pay(
    runtime: Runtime,
    amount: str,
    *,
    direction: Direction = Direction.IN,
    company_id: UUID | None = None,
    key: str | None = None,
    allocations: tuple[Allocation, ...] = (),
    suggestions: tuple[Allocation, ...] = (),
) -> tuple[UUID, list[UUID]]:
    payment_id = payment_id_for(key or str(uuid4()))
    entry = PaymentEntry(
        PaymentInput(
            payment_id=payment_id,
            direction=direction,
            amount=Money(Decimal(amount), RUB),
            paid_on=date(2026, 12, 5),
            counterparty={"name": "ООО Ромашка", "inn": "7707083893"},
            purpose="Оплата по счёту № СЧ-1",
            company_id=company_id,
        ),
        allocations,
        suggestions,
    )
    committed = runtime.app.record_payments([entry], "user:test")
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    return payment_id, committed.value


@pytest.fixture
def company(runtime: Runtime) -> UUID:
    company_id: UUID = runtime.app.create_company("user:test", "ООО Ромашка").value
    return company_id


def test_numbers_run_per_series_and_year_without_gaps_under_concurrency(runtime: Runtime) -> None:
    seen: list[Numbered] = []
    errors: list[BaseException] = []

    def issue_some() -> None:
        try:
            for _ in range(5):
                draft = invoice_draft(None, "10.00")
                done(runtime.app.issue_document(draft, rendering(runtime, seen), "user:test"))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=issue_some) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    runtime.wait_for_views(runtime.app.recorder.max_notification_id())
    rows, count = documents_page(runtime.views, DocumentFilter(kind="invoice"), limit=100)
    assert count == 30
    assert sorted(r.number for r in rows) == list(range(1, 31))
    assert {r.display_number for r in rows} == {f"СЧ-{n}" for n in range(1, 31)}
    # another year starts again at 1; another series has its own count
    later = DocumentDraft(
        **{**invoice_draft(None, "1").__dict__, "issued_on": date(2027, 1, 2), "due_on": None}
    )
    other = DocumentDraft(**{**invoice_draft(None, "1").__dict__, "series": "INV"})
    assert document(runtime.views, issue(runtime, later)).number == 1  # type: ignore[union-attr]
    assert document(runtime.views, issue(runtime, other)).display_number == "INV-1"  # type: ignore[union-attr]


def test_a_stored_document_keeps_its_hash_in_the_log(runtime: Runtime, company: UUID) -> None:
    document_id = issue(runtime, invoice_draft(company, "57902.14"))
    row = document(runtime.views, document_id)
    assert row is not None and row.total == Money(Decimal("57902.14"), RUB)
    stored = runtime.attachment_access.store.read(row.file_sha256)
    assert hashlib.sha256(stored).hexdigest() == row.file_sha256
    issued = next(iter(runtime.app.repository.event_store.get(document_id)))
    assert issued.file["sha256"] == row.file_sha256  # type: ignore[attr-defined]
    # the same id again is the same document, not a second number
    again = runtime.app.issue_document(
        invoice_draft(company, "1"), rendering(runtime), "user:test", document_id=document_id
    ).value
    assert again == document_id
    assert documents_page(runtime.views, DocumentFilter(kind="invoice"))[1] == 1


def test_partial_payment_leaves_the_rest_due_and_the_settlement_shows_it(
    runtime: Runtime, company: UUID
) -> None:
    invoice_id = issue(runtime, invoice_draft(company, "1000.00", due=date(2026, 12, 3)))
    share = Allocation(
        TargetKind.INVOICE, invoice_id, Money(Decimal("400.00"), RUB), AllocationHow.AUTO
    )
    payment_id, recorded = pay(runtime, "400.00", allocations=(share,))
    assert recorded == [payment_id]
    row = document(runtime.views, invoice_id)
    assert row is not None and row.payment_state == "partly_paid"
    assert row.outstanding == Money(Decimal("600.00"), RUB)
    paid = payment(runtime.views, payment_id)
    assert paid is not None and paid.state == "matched" and paid.company_id == str(company)
    (figures,) = settlement(runtime.views, company_id=str(company), today=date(2026, 12, 8))
    assert figures.invoiced == Money(Decimal("1000.00"), RUB)
    assert figures.paid == Money(Decimal("400.00"), RUB)
    assert figures.outstanding == Money(Decimal("600.00"), RUB)
    assert figures.overdue == Money(Decimal("600.00"), RUB)
    assert figures.days_overdue == 5
    # the rest, paid: nothing overdue any more
    rest = Allocation(
        TargetKind.INVOICE, invoice_id, Money(Decimal("600.00"), RUB), AllocationHow.MANUAL
    )
    pay(runtime, "600.00", allocations=(rest,))
    (figures,) = settlement(runtime.views, company_id=str(company), today=date(2026, 12, 8))
    assert figures.outstanding.amount == 0 and figures.days_overdue == 0


def test_recording_the_same_payments_again_records_nothing(runtime: Runtime, company: UUID) -> None:
    first, recorded = pay(runtime, "10.00", company_id=company, key="acc|2026-12-05|17|10.00")
    assert recorded == [first]
    again, recorded = pay(runtime, "10.00", company_id=company, key="acc|2026-12-05|17|10.00")
    assert (again, recorded) == (first, [])
    (figures,) = settlement(runtime.views, company_id=str(company), today=date(2026, 12, 8))
    assert figures.paid == Money(Decimal("10.00"), RUB)  # an advance: paid, nothing invoiced
    assert figures.balance == Money(Decimal("-10.00"), RUB)


def test_a_suggestion_is_not_applied_until_a_person_confirms_it(
    runtime: Runtime, company: UUID
) -> None:
    invoice_id = issue(runtime, invoice_draft(company, "500.00"))
    near = Allocation(
        TargetKind.INVOICE, invoice_id, Money(Decimal("500.00"), RUB), reason="number 71 not 17"
    )
    payment_id, _ = pay(runtime, "500.00", company_id=company, suggestions=(near,))
    row = document(runtime.views, invoice_id)
    assert row is not None and row.paid_minor == 0
    (waiting,) = suggestions_of_payment(runtime.views, payment_id)
    assert waiting.reason == "number 71 not 17"
    committed = runtime.app.allocate_payment(
        payment_id, TargetKind.INVOICE, invoice_id, None, AllocationHow.CONFIRMED, "user:test"
    )
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    assert suggestions_of_payment(runtime.views, payment_id) == []
    row = document(runtime.views, invoice_id)
    assert row is not None and row.payment_state == "paid"


def test_outgoing_money_never_pays_a_customer_invoice(runtime: Runtime, company: UUID) -> None:
    invoice_id = issue(runtime, invoice_draft(company, "100.00"))
    share = Allocation(TargetKind.INVOICE, invoice_id, Money(Decimal("100.00"), RUB))
    with pytest.raises(InvalidInput, match="never a client's invoice"):
        pay(runtime, "100.00", direction=Direction.OUT, allocations=(share,))
    payment_id, _ = pay(runtime, "100.00")
    with pytest.raises(InvalidInput, match=r"only 100\.00 RUB"):
        done(
            runtime.app.allocate_payment(
                payment_id,
                TargetKind.INVOICE,
                invoice_id,
                Money(Decimal("150.00"), RUB),
                AllocationHow.MANUAL,
                "user:test",
            )
        )


def test_supplier_orders_come_from_a_won_deal_per_supplier(runtime: Runtime) -> None:
    done(runtime.app.seed_pipelines("test"))
    supplier = runtime.app.create_company("user:test", "ООО Поставщик", roles=["supplier"]).value
    client = runtime.app.create_company("user:test", "ООО Клиент").value
    chair = runtime.app.create_product(
        "user:test", "Chair", "1000", cost="600", supplier_id=supplier
    ).value
    deal_id = runtime.app.create_deal(
        "user:test",
        "Chairs",
        NEW,
        company_id=client,
        lines=[
            {"product_id": str(chair), "quantity": 3},
            {"name": "Delivery", "price": "500", "quantity": 1},
        ],
    ).value
    with pytest.raises(Conflict, match="won deal"):
        done(runtime.app.create_supplier_orders(deal_id, "user:test", date(2026, 12, 1)))
    done(runtime.app.move_deal(deal_id, seeded_stage_id("new-clients", "paid"), "user:test"))
    first = runtime.app.create_supplier_orders(deal_id, "user:test", date(2026, 12, 1))
    made = first.value
    assert made.skipped_lines == ["Delivery"]
    (order_id,) = made.order_ids
    again = runtime.app.create_supplier_orders(deal_id, "user:test", date(2026, 12, 1))
    assert again.value.order_ids == [order_id] and again.notification_id is None
    assert runtime.wait_for_views(first.notification_id, timeout=60)
    order = supplier_order(runtime.views, order_id)
    assert order is not None and order.state == "draft" and order.display_number == "ЗП-1"
    assert order.amount == Money(Decimal("1800.00"), RUB)
    assert order.payment_due_on == "2026-12-15"
    # an outgoing payment pays it; an incoming one cannot
    incoming = Allocation(TargetKind.SUPPLIER_ORDER, order_id, Money(Decimal("1800"), RUB))
    with pytest.raises(InvalidInput, match="cannot pay a supplier order"):
        pay(runtime, "1800.00", allocations=(incoming,))
    pay(
        runtime,
        "1000.00",
        direction=Direction.OUT,
        allocations=(
            incoming.__class__(TargetKind.SUPPLIER_ORDER, order_id, Money(Decimal("1000"), RUB)),
        ),
    )
    order = supplier_order(runtime.views, order_id)
    assert order is not None and order.payable == Money(Decimal("800.00"), RUB)
    with pytest.raises(InvalidInput, match="by sending it"):
        runtime.app.change_supplier_order_state(order_id, SupplierOrderState.SENT, "user:test")
    with pytest.raises(Conflict, match="draft"):
        done(
            runtime.app.change_supplier_order_state(
                order_id, SupplierOrderState.CONFIRMED, "user:test"
            )
        )


def test_contracts_register_change_and_close(runtime: Runtime, company: UUID) -> None:
    contract_id = runtime.app.register_contract(
        "Д-7/2026",
        date(2026, 1, 10),
        "user:test",
        ends_on=date(2026, 12, 31),
        amount=Money(Decimal("120000"), RUB),
        company_id=company,
        title="Поставка мебели",
    ).value
    with pytest.raises(InvalidInput, match="ends after it starts"):
        done(
            runtime.app.change_contract(contract_id, "user:test", changes={"ends_on": "2025-12-31"})
        )
    committed = runtime.app.change_contract(
        contract_id, "user:test", changes={"ends_on": "2027-12-31"}
    )
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    from threadline.projections.documents import contract

    row = contract(runtime.views, contract_id)
    assert row is not None and row.ends_on == "2027-12-31" and row.title == "Поставка мебели"
    assert row.amount == Money(Decimal("120000.00"), RUB)
    committed = runtime.app.close_contract(contract_id, "terminated", "user:test")
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    row = contract(runtime.views, contract_id)
    assert row is not None and row.status == "closed"
    with pytest.raises(Conflict):
        done(runtime.app.close_contract(contract_id, "again", "user:test"))
