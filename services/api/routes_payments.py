"""Payments: record one, import a bank file (with a dry run), allocate, undo, confirm or dismiss a
suggested match; and a client's settlement (invoiced, paid, outstanding, overdue).

Anyone signed in reads payments, as anyone reads deals and their money; recording and
allocating need a writer (the auditor only reads). A payment recorded here is matched as an
imported one is (ИНН, invoice number in the purpose, amount) unless the request names what
it pays. Writes answer once the change is in the views. A bank file is read whole before
anything is recorded: a broken one is a 422 naming its line, and nothing is recorded.
"""

from __future__ import annotations

import datetime as dt
from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from threadline.domain.model.errors import InvalidInput, NotFound
from threadline.domain.model.money import Money, round_money
from threadline.domain.model.payment import AllocationHow, Direction, TargetKind
from threadline.projections.companies import company as company_row
from threadline.projections.contact_card import contact_exists
from threadline.projections.deals import deal
from threadline.projections.documents import contract, document, open_invoices
from threadline.projections.payments import (
    AllocationRow,
    PaymentFilter,
    PaymentRow,
    SuggestionRow,
    allocations_of_payment,
    payment,
    payments_page,
    suggestion,
    suggestions_of_payment,
)
from threadline.projections.settlements import settlement
from threadline.projections.sql import ViewReader
from threadline.projections.supplier_orders import supplier_order
from threadline.services.api.deal_schemas import DecimalIn, MoneyOut
from threadline.services.api.deps import PrincipalDep, RuntimeDep, WriterDep
from threadline.services.api.schemas import CurrencyCode, Offset
from threadline.services.documents.issuing import business_today
from threadline.services.payments.statement_import import (
    MAX_FILE_BYTES,
    ImportPlan,
    PaymentRequest,
    PaymentTarget,
    apply_import,
    preview_import,
    record_single_payment,
)
from threadline.services.runtime import Runtime

router = APIRouter(prefix="/api", tags=["payments"])

IMPORT_PATH = "/api/payments/import"
FORM_OVERHEAD = 64 * 1024
"""What a multipart body carries besides the file (boundaries, headers)."""

TargetKindIn = Literal["invoice", "contract", "deal", "supplier_order"]


def body_limit(runtime: Runtime) -> int:
    """`BodySizeLimit`'s limit for the import path: a 50 MB file and its multipart envelope."""
    return max(runtime.settings.max_body_bytes, MAX_FILE_BYTES + FORM_OVERHEAD)


# -- models ------------------------------------------------------------------------------------


class CounterpartyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(max_length=500)] = ""
    inn: Annotated[str, Field(max_length=12, pattern=r"^[0-9]*$")] = ""
    kpp: Annotated[str, Field(max_length=9, pattern=r"^[0-9A-Z]*$")] = ""
    account: Annotated[str, Field(max_length=34)] = ""
    bik: Annotated[str, Field(max_length=9, pattern=r"^[0-9]*$")] = ""


class BankDocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field("", max_length=100, examples=["Платежное поручение"])
    number: str = Field("", max_length=64)
    date: dt.date | None = None  # `dt.`: the field's name hides the type in the class


class TargetIn(BaseModel):
    """What the payment pays; without `amount`, all of it that the target still needs."""

    model_config = ConfigDict(extra="forbid")
    kind: TargetKindIn
    id: UUID
    amount: DecimalIn | None = None


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    direction: Literal["in", "out"] = Field(..., description="in: from a client; out: paid")
    amount: DecimalIn = Field(..., examples=["1500.00"])
    currency: CurrencyCode = "RUB"
    paid_on: date
    counterparty: CounterpartyIn = Field(default_factory=lambda: CounterpartyIn())
    purpose: str = Field("", max_length=2000)
    bank_document: BankDocumentIn | None = None
    client_payment_id: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="your id for this payment: sending it again records nothing new",
    )
    company_id: UUID | None = None
    contact_id: UUID | None = None
    target: TargetIn | None = Field(None, description="what it pays; none: matched as imported")


class CounterpartyOut(BaseModel):
    name: str
    inn: str
    account: str


class BankDocumentOut(BaseModel):
    kind: str
    number: str
    date: str | None


class SourceOut(BaseModel):
    kind: str = Field(..., description="api, csv or statement")
    file_sha256: str | None
    line: int | None


class AllocationOut(BaseModel):
    target_kind: str
    target_id: str
    target_label: str = Field(..., description="e.g. СЧ-17, ЗП-3, a contract's number")
    amount: MoneyOut
    how: str = Field(..., description="auto, confirmed or manual")
    allocated_at: str
    actor: str


class SuggestionOut(BaseModel):
    target_kind: str
    target_id: str
    target_label: str
    amount: MoneyOut
    reason: str
    suggested_at: str


class PaymentOut(BaseModel):
    id: str
    direction: str
    amount: MoneyOut
    allocated: MoneyOut
    unallocated: MoneyOut
    state: str = Field(..., description="unmatched, partial or matched")
    suggestion_count: int
    paid_on: str
    company_id: str | None
    contact_id: str | None
    counterparty: CounterpartyOut
    purpose: str
    bank_document: BankDocumentOut
    source: SourceOut
    recorded_at: str
    recorded_by: str


class PaymentDetailOut(PaymentOut):
    allocations: list[AllocationOut]
    suggestions: list[SuggestionOut]


class OutcomeOut(BaseModel):
    kind: str = Field(
        ..., description="matched, partial, overpaid, suggested, unmatched or outgoing_linked"
    )
    target_label: str
    reason: str


class PaymentRecordedOut(BaseModel):
    recorded: bool = Field(..., description="false: recorded before under client_payment_id")
    outcome: OutcomeOut | None
    payment: PaymentDetailOut


class PaymentListOut(BaseModel):
    items: list[PaymentOut]
    total: int


class PlannedOut(BaseModel):
    line: int
    payment_id: str
    direction: str
    amount: MoneyOut
    paid_on: str
    counterparty_name: str
    counterparty_inn: str
    purpose: str
    already_recorded: bool
    outcome: str
    target_label: str
    reason: str


class ImportOut(BaseModel):
    dry_run: bool
    file_sha256: str
    file_format: str = Field(..., description="1c or csv")
    encoding: str
    counts: dict[str, int] = Field(..., description="lines per outcome, and the total")
    warnings: list[str]
    recorded: int = Field(..., description="payments recorded now (0 in a dry run)")
    items: list[PlannedOut]


class AllocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target_kind: TargetKindIn
    target_id: UUID
    amount: DecimalIn | None = Field(None, description="none: what is left of the payment")


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=500)


class OpenInvoiceOut(BaseModel):
    id: str
    display_number: str
    issued_on: str
    due_on: str | None
    total: MoneyOut
    paid: MoneyOut
    outstanding: MoneyOut
    days_overdue: int


class SettlementOut(BaseModel):
    currency: str
    invoiced: MoneyOut
    paid: MoneyOut
    balance: MoneyOut = Field(..., description="invoiced less paid; negative: paid ahead")
    outstanding: MoneyOut
    overdue: MoneyOut
    days_overdue: int
    open_invoices: int


class SettlementsOut(BaseModel):
    on: str = Field(..., description="the day overdue is counted to")
    items: list[SettlementOut]
    open_invoices: list[OpenInvoiceOut]


# -- shaping -----------------------------------------------------------------------------------


def money_out(money: Money) -> MoneyOut:
    return MoneyOut.of_minor(money.minor, money.currency)


def target_label(db: ViewReader, kind: str, target_id: str) -> str:
    """How people name a target: a document's or order's number, a contract's, a deal's title."""
    if kind == TargetKind.INVOICE:
        found = document(db, target_id)
        return found.display_number if found else ""
    if kind == TargetKind.SUPPLIER_ORDER:
        order = supplier_order(db, target_id)
        return order.display_number if order else ""
    if kind == TargetKind.CONTRACT:
        agreement = contract(db, target_id)
        return agreement.number if agreement else ""
    found_deal = deal(db, target_id)
    return found_deal.title if found_deal else ""


def payment_out(row: PaymentRow) -> PaymentOut:
    return PaymentOut(
        id=row.id,
        direction=row.direction,
        amount=money_out(row.amount),
        allocated=MoneyOut.of_minor(row.allocated_minor, row.currency),
        unallocated=money_out(row.unallocated),
        state=row.state,
        suggestion_count=row.suggestion_count,
        paid_on=row.paid_on,
        company_id=row.company_id,
        contact_id=row.contact_id,
        counterparty=CounterpartyOut(
            name=row.counterparty_name, inn=row.counterparty_inn, account=row.counterparty_account
        ),
        purpose=row.purpose,
        bank_document=BankDocumentOut(
            kind=row.bank_kind, number=row.bank_number, date=row.bank_date
        ),
        source=SourceOut(kind=row.source_kind, file_sha256=row.source_file, line=row.source_line),
        recorded_at=row.recorded_at,
        recorded_by=row.recorded_by,
    )


def allocation_out(db: ViewReader, row: AllocationRow) -> AllocationOut:
    return AllocationOut(
        target_kind=row.target_kind,
        target_id=row.target_id,
        target_label=target_label(db, row.target_kind, row.target_id),
        amount=money_out(row.amount),
        how=row.how,
        allocated_at=row.allocated_at,
        actor=row.actor,
    )


def suggestion_out(db: ViewReader, row: SuggestionRow) -> SuggestionOut:
    return SuggestionOut(
        target_kind=row.target_kind,
        target_id=row.target_id,
        target_label=target_label(db, row.target_kind, row.target_id),
        amount=money_out(row.amount),
        reason=row.reason,
        suggested_at=row.suggested_at,
    )


def payment_detail(runtime: Runtime, payment_id: UUID | str) -> PaymentDetailOut:
    db = runtime.views
    row = payment(db, payment_id)
    if row is None:
        raise NotFound("payment", str(payment_id))
    return PaymentDetailOut(
        **payment_out(row).model_dump(),
        allocations=[allocation_out(db, a) for a in allocations_of_payment(db, payment_id)],
        suggestions=[suggestion_out(db, s) for s in suggestions_of_payment(db, payment_id)],
    )


def exact_money(value: Any, currency: str, field: str) -> Money:
    """An amount as given, refused (not rounded) when finer than the currency's minor unit."""
    money = Money.of(value, currency, field)
    if round_money(money.amount, money.currency) != money.amount:
        raise InvalidInput(field, f"{money.currency} has no amounts finer than its minor unit")
    return money


def plan_out(plan: ImportPlan, dry_run: bool, recorded: int) -> ImportOut:
    return ImportOut(
        dry_run=dry_run,
        file_sha256=plan.file_sha256,
        file_format=plan.file_format,
        encoding=plan.encoding,
        counts=plan.counts,
        warnings=plan.warnings,
        recorded=recorded,
        items=[
            PlannedOut(
                line=i.line,
                payment_id=str(i.payment_id),
                direction=i.direction,
                amount=money_out(i.amount),
                paid_on=i.paid_on.isoformat(),
                counterparty_name=i.counterparty_name,
                counterparty_inn=i.counterparty_inn,
                purpose=i.purpose,
                already_recorded=i.already_recorded,
                outcome=i.outcome,
                target_label=i.target_label,
                reason=i.reason,
            )
            for i in plan.items
        ],
    )


# -- payments ----------------------------------------------------------------------------------


@router.get("/payments", response_model=PaymentListOut)
def list_payments(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    direction: Literal["in", "out"] | None = None,
    state: Literal["unmatched", "partial", "matched"] | None = None,
    suggested: Annotated[
        bool | None, Query(description="true: only payments with matches waiting for a person")
    ] = None,
    company_id: UUID | None = None,
    contact_id: UUID | None = None,
    paid_from: Annotated[date | None, Query(description="inclusive")] = None,
    paid_to: Annotated[date | None, Query(description="inclusive")] = None,
    q: Annotated[
        str | None, Query(max_length=200, description="payer/payee, ИНН or purpose")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> PaymentListOut:
    """Payments, newest day first, and how many match."""
    where = PaymentFilter(
        direction=direction,
        state=state,
        suggested=suggested,
        company_id=str(company_id) if company_id else None,
        contact_id=str(contact_id) if contact_id else None,
        paid_from=paid_from.isoformat() if paid_from else None,
        paid_to=paid_to.isoformat() if paid_to else None,
        q=q,
    )
    rows, total = payments_page(runtime.views, where, limit, offset)
    return PaymentListOut(items=[payment_out(r) for r in rows], total=total)


@router.post(
    "/payments",
    response_model=PaymentRecordedOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {
            "model": PaymentRecordedOut,
            "description": "recorded before under this client_payment_id; nothing changed",
        }
    },
)
def record_payment(
    body: PaymentIn, runtime: RuntimeDep, principal: WriterDep, response: Response
) -> PaymentRecordedOut:
    """Record one payment. Without `target` it is matched as an imported one: an invoice of
    the payer (by ИНН) named in the purpose and not overpaid is allocated; a near miss is
    suggested; outgoing money is linked to a supplier's open order."""
    amount = exact_money(body.amount, body.currency, "amount")
    if body.company_id is not None and company_row(runtime.views, str(body.company_id)) is None:
        raise NotFound("company", str(body.company_id))
    if body.contact_id is not None and not contact_exists(runtime.views, body.contact_id):
        raise NotFound("contact", str(body.contact_id))
    target = None
    if body.target is not None:
        share = (
            None
            if body.target.amount is None
            else exact_money(body.target.amount, body.currency, "target.amount")
        )
        target = PaymentTarget(TargetKind(body.target.kind), body.target.id, share)
    bank: dict[str, Any] = {}
    if body.bank_document is not None:
        bank = body.bank_document.model_dump(exclude_none=True)
        if body.bank_document.date is not None:
            bank["date"] = body.bank_document.date.isoformat()
    request = PaymentRequest(
        direction=Direction(body.direction),
        amount=amount,
        paid_on=body.paid_on,
        counterparty={k: v for k, v in body.counterparty.model_dump().items() if v},
        purpose=body.purpose,
        bank_document=bank,
        client_payment_id=body.client_payment_id,
        company_id=body.company_id,
        contact_id=body.contact_id,
        target=target,
    )
    result, notification_id = record_single_payment(runtime, request, principal.actor)
    runtime.wait_for_views(notification_id)
    if not result.recorded:
        response.status_code = status.HTTP_200_OK
    outcome = None
    if result.recorded:
        outcome = OutcomeOut(
            kind=result.outcome.kind.value,
            target_label=result.outcome.target_label,
            reason=result.outcome.reason,
        )
    return PaymentRecordedOut(
        recorded=result.recorded,
        outcome=outcome,
        payment=payment_detail(runtime, result.payment_id),
    )


@router.get("/payments/{payment_id}", response_model=PaymentDetailOut)
def get_payment(payment_id: UUID, runtime: RuntimeDep, principal: PrincipalDep) -> PaymentDetailOut:
    """The payment as the bank reported it, what it pays, and the matches waiting for a person."""
    return payment_detail(runtime, payment_id)


IMPORT_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        },
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "text/plain": {"schema": {"type": "string"}},
        "text/csv": {"schema": {"type": "string"}},
    },
}


async def uploaded_bytes(request: Request) -> bytes:
    """The file of a multipart upload (field `file`), else the raw body; 413 over 50 MB."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=1, max_fields=10)
        except HTTPException:
            raise
        except Exception:
            raise HTTPException(400, "the multipart body cannot be read") from None
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise HTTPException(422, "send the statement as the multipart field `file`")
        data = await upload.read(MAX_FILE_BYTES + 1)
    else:
        data = await request.body()
    if len(data) > MAX_FILE_BYTES:
        raise HTTPException(
            413,
            f"the file is larger than {MAX_FILE_BYTES // 2**20} MB; split it into smaller files",
        )
    return data


@router.post(
    "/payments/import",
    response_model=ImportOut,
    openapi_extra={"requestBody": IMPORT_BODY},
    responses={413: {"description": "the file is larger than 50 MB"}},
)
async def import_payments(
    request: Request,
    runtime: RuntimeDep,
    principal: WriterDep,
    dry_run: Annotated[
        bool, Query(description="true: only say what importing would do; record nothing")
    ] = False,
) -> ImportOut:
    """Import a bank file: a 1C client-bank statement (`kl_to_1c.txt`, 1.02/1.03, Windows,
    DOS or UTF-8) or a CSV of payments, as the multipart field `file` or as the raw body.

    The whole file is read first: a broken one is refused with 422 naming the line, and
    nothing is recorded. Importing the same file again records nothing. Each line's outcome:
    matched, partial (the rest stays due), overpaid (the rest unallocated), suggested (a near
    miss for a person to confirm), unmatched, outgoing_linked or already_recorded."""
    data = await uploaded_bytes(request)
    if dry_run:
        plan = await run_in_threadpool(preview_import, runtime, data)
        return plan_out(plan, True, 0)
    result = await run_in_threadpool(apply_import, runtime, data, principal.actor)
    assert result.plan is not None
    return plan_out(result.plan, False, result.recorded)


@router.post("/payments/{payment_id}/allocations", response_model=PaymentDetailOut)
def allocate(
    payment_id: UUID, body: AllocationIn, runtime: RuntimeDep, principal: WriterDep
) -> PaymentDetailOut:
    """Allocate (part of) the payment to a target by hand."""
    found = payment(runtime.views, payment_id)
    if found is None:
        raise NotFound("payment", str(payment_id))
    amount = None if body.amount is None else exact_money(body.amount, found.currency, "amount")
    committed = runtime.app.allocate_payment(
        payment_id,
        TargetKind(body.target_kind),
        body.target_id,
        amount,
        AllocationHow.MANUAL,
        principal.actor,
    )
    runtime.wait_for_views(committed.notification_id)
    return payment_detail(runtime, payment_id)


@router.delete(
    "/payments/{payment_id}/allocations/{target_kind}/{target_id}",
    response_model=PaymentDetailOut,
)
def remove_allocation(
    payment_id: UUID,
    target_kind: TargetKindIn,
    target_id: UUID,
    runtime: RuntimeDep,
    principal: WriterDep,
    body: ReasonIn | None = None,
) -> PaymentDetailOut:
    """Undo an allocation (the money is unallocated again); `reason` is kept in the log."""
    committed = runtime.app.remove_payment_allocation(
        payment_id,
        TargetKind(target_kind),
        target_id,
        "" if body is None else body.reason,
        principal.actor,
    )
    runtime.wait_for_views(committed.notification_id)
    return payment_detail(runtime, payment_id)


@router.post(
    "/payments/{payment_id}/suggestions/{target_kind}/{target_id}/confirm",
    response_model=PaymentDetailOut,
)
def confirm_suggestion(
    payment_id: UUID,
    target_kind: TargetKindIn,
    target_id: UUID,
    runtime: RuntimeDep,
    principal: WriterDep,
) -> PaymentDetailOut:
    """Apply a suggested match: the suggestion's amount is allocated (`how=confirmed`)."""
    found = suggestion(runtime.views, payment_id, target_kind, target_id)
    if found is None:
        raise NotFound("suggestion", f"{payment_id}/{target_kind}/{target_id}")
    committed = runtime.app.allocate_payment(
        payment_id,
        TargetKind(target_kind),
        target_id,
        found.amount,
        AllocationHow.CONFIRMED,
        principal.actor,
    )
    runtime.wait_for_views(committed.notification_id)
    return payment_detail(runtime, payment_id)


@router.post(
    "/payments/{payment_id}/suggestions/{target_kind}/{target_id}/dismiss",
    response_model=PaymentDetailOut,
)
def dismiss_suggestion(
    payment_id: UUID,
    target_kind: TargetKindIn,
    target_id: UUID,
    runtime: RuntimeDep,
    principal: WriterDep,
) -> PaymentDetailOut:
    """Drop a suggested match; the payment stays as it is."""
    if suggestion(runtime.views, payment_id, target_kind, target_id) is None:
        raise NotFound("suggestion", f"{payment_id}/{target_kind}/{target_id}")
    committed = runtime.app.dismiss_payment_suggestion(
        payment_id, TargetKind(target_kind), target_id, principal.actor
    )
    runtime.wait_for_views(committed.notification_id)
    return payment_detail(runtime, payment_id)


# -- settlements -------------------------------------------------------------------------------


@router.get("/settlements", response_model=SettlementsOut)
def get_settlement(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    company_id: UUID | None = None,
    contact_id: UUID | None = None,
    on: Annotated[
        date | None, Query(description="count overdue to this day; default today")
    ] = None,
) -> SettlementsOut:
    """A client's settlement per currency (invoiced, paid, balance, outstanding, overdue and
    how many days), with the open invoices and their days overdue. Name a company or a
    contact."""
    if (company_id is None) == (contact_id is None):
        raise HTTPException(422, "name a company (company_id) or a contact (contact_id)")
    today = on or business_today(runtime)
    company = str(company_id) if company_id else None
    contact = str(contact_id) if contact_id else None
    figures = settlement(runtime.views, company_id=company, contact_id=contact, today=today)
    invoices = open_invoices(runtime.views, company_id=company, contact_id=contact)
    return SettlementsOut(
        on=today.isoformat(),
        items=[
            SettlementOut(
                currency=f.currency,
                invoiced=money_out(f.invoiced),
                paid=money_out(f.paid),
                balance=money_out(f.balance),
                outstanding=money_out(f.outstanding),
                overdue=money_out(f.overdue),
                days_overdue=f.days_overdue,
                open_invoices=f.open_invoices,
            )
            for f in figures
        ],
        open_invoices=[
            OpenInvoiceOut(
                id=i.id,
                display_number=i.display_number,
                issued_on=i.issued_on,
                due_on=i.due_on,
                total=money_out(i.total),
                paid=money_out(i.paid),
                outstanding=money_out(i.outstanding),
                days_overdue=i.days_overdue(today),
            )
            for i in invoices
        ],
    )
