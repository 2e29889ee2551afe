"""Contracts: register one, list and filter them, read one with its documents and payments,
change its terms (prolong it by a later end date), close it.

A contract is a business fact whether or not Threadline printed it (many are signed on the
client's paper), so it is registered here with its number, dates and amount; a printed one
is a document naming it. Anyone signed in reads contracts, as anyone reads deals; changing
them needs a writer. Writes answer once the change is in the views.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal
from uuid import NAMESPACE_URL, UUID, uuid5

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field

from threadline.domain.commands.contracts import MAX_TITLE, clean_contract_number
from threadline.domain.model.errors import NotFound
from threadline.domain.model.money import Money
from threadline.projections.documents import (
    ContractFilter,
    ContractRow,
    DocumentFilter,
    DocumentRow,
    contract,
    contracts_page,
    documents_page,
)
from threadline.projections.payments import allocations_to, payment
from threadline.services.api.deal_schemas import DecimalIn, MoneyOut
from threadline.services.api.deps import PrincipalDep, RuntimeDep, WriterDep
from threadline.services.api.routes_payments import exact_money, money_out
from threadline.services.api.schemas import CurrencyCode, Offset
from threadline.services.documents.issuing import business_today
from threadline.services.runtime import Runtime

router = APIRouter(prefix="/api", tags=["contracts"])

CONTRACT_NAMESPACE = uuid5(NAMESPACE_URL, "https://threadline.dev/api-contract")


class MoneyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: DecimalIn = Field(..., examples=["120000.00"])
    currency: CurrencyCode = "RUB"


class ContractIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: str = Field(..., min_length=1, max_length=100, examples=["Д-7/2026"])
    signed_on: date
    starts_on: date | None = None
    ends_on: date | None = None
    amount: MoneyIn | None = Field(None, description="none: a framework agreement")
    deal_id: UUID | None = None
    company_id: UUID | None = None
    contact_id: UUID | None = None
    title: str = Field("", max_length=MAX_TITLE)
    client_contract_id: str | None = Field(
        None, min_length=1, max_length=200, description="your id: sending it again adds nothing"
    )


class ContractPatch(BaseModel):
    """Only the fields given change; `ends_on` or `amount` null clears them."""

    model_config = ConfigDict(extra="forbid")
    number: str | None = Field(None, min_length=1, max_length=100)
    signed_on: date | None = None
    starts_on: date | None = None
    ends_on: date | None = None
    amount: MoneyIn | None = None
    title: str | None = Field(None, max_length=MAX_TITLE)


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=500)


class ContractOut(BaseModel):
    id: str
    number: str
    title: str
    signed_on: str
    starts_on: str | None
    ends_on: str | None
    days_left: int | None = Field(..., description="days to the end date (negative: past)")
    amount: MoneyOut | None
    paid: MoneyOut | None = Field(..., description="allocated to the contract itself")
    deal_id: str | None
    company_id: str | None
    contact_id: str | None
    status: str = Field(..., description="active or closed")
    close_reason: str | None
    created_at: str
    updated_at: str
    created_by: str


class ContractDocumentOut(BaseModel):
    id: str
    kind: str
    display_number: str
    issued_on: str
    due_on: str | None
    total: MoneyOut
    paid: MoneyOut
    outstanding: MoneyOut
    payment_state: str
    status: str


class ContractPaymentOut(BaseModel):
    payment_id: str
    paid_on: str | None
    target_kind: str = Field(..., description="contract, or invoice (one of its documents)")
    target_id: str
    target_label: str
    amount: MoneyOut
    how: str
    allocated_at: str


class ContractDetailOut(ContractOut):
    documents: list[ContractDocumentOut]
    payments: list[ContractPaymentOut]


class ContractListOut(BaseModel):
    items: list[ContractOut]
    total: int


def contract_out(row: ContractRow, today: date) -> ContractOut:
    paid = None if row.currency is None else MoneyOut.of_minor(row.paid_minor, row.currency)
    return ContractOut(
        id=row.id,
        number=row.number,
        title=row.title,
        signed_on=row.signed_on,
        starts_on=row.starts_on,
        ends_on=row.ends_on,
        days_left=row.days_left(today),
        amount=None if row.amount is None else money_out(row.amount),
        paid=paid,
        deal_id=row.deal_id,
        company_id=row.company_id,
        contact_id=row.contact_id,
        status=row.status,
        close_reason=row.close_reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
        created_by=row.created_by,
    )


def document_out(row: DocumentRow) -> ContractDocumentOut:
    return ContractDocumentOut(
        id=row.id,
        kind=row.kind,
        display_number=row.display_number,
        issued_on=row.issued_on,
        due_on=row.due_on,
        total=money_out(row.total),
        paid=money_out(row.paid),
        outstanding=money_out(row.outstanding),
        payment_state=row.payment_state,
        status=row.status,
    )


def contract_detail(runtime: Runtime, contract_id: UUID | str) -> ContractDetailOut:
    """The contract, the documents that name it, and what paid it or its documents."""
    db = runtime.views
    row = contract(db, contract_id)
    if row is None:
        raise NotFound("contract", str(contract_id))
    documents = documents_page(db, DocumentFilter(contract_id=str(contract_id)), limit=500)[0]
    targets = [("contract", row.id, row.number)] + [
        ("invoice", d.id, d.display_number) for d in documents if d.kind == "invoice"
    ]
    payments = []
    for kind, target_id, label in targets:
        for allocation in allocations_to(db, kind, target_id):
            paid = payment(db, allocation.payment_id)
            payments.append(
                ContractPaymentOut(
                    payment_id=allocation.payment_id,
                    paid_on=None if paid is None else paid.paid_on,
                    target_kind=kind,
                    target_id=target_id,
                    target_label=label,
                    amount=money_out(allocation.amount),
                    how=allocation.how,
                    allocated_at=allocation.allocated_at,
                )
            )
    return ContractDetailOut(
        **contract_out(row, business_today(runtime)).model_dump(),
        documents=[document_out(d) for d in documents],
        payments=payments,
    )


def money_of(value: MoneyIn | None, field: str) -> Money | None:
    return None if value is None else exact_money(value.amount, value.currency, field)


@router.get("/contracts", response_model=ContractListOut)
def list_contracts(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    status_: Annotated[Literal["active", "closed"] | None, Query(alias="status")] = None,
    deal_id: UUID | None = None,
    company_id: UUID | None = None,
    contact_id: UUID | None = None,
    q: Annotated[str | None, Query(max_length=200, description="number or title")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> ContractListOut:
    """Contracts, latest signed first, and how many match."""
    where = ContractFilter(
        status=status_,
        deal_id=str(deal_id) if deal_id else None,
        company_id=str(company_id) if company_id else None,
        contact_id=str(contact_id) if contact_id else None,
        q=q,
    )
    rows, total = contracts_page(runtime.views, where, limit, offset)
    today = business_today(runtime)
    return ContractListOut(items=[contract_out(r, today) for r in rows], total=total)


@router.post("/contracts", response_model=ContractDetailOut, status_code=status.HTTP_201_CREATED)
def register_contract(
    body: ContractIn, runtime: RuntimeDep, principal: WriterDep
) -> ContractDetailOut:
    """Register a contract with a client (or a supplier): a company, a contact, or a deal
    (whose client it takes)."""
    contract_id = (
        None
        if body.client_contract_id is None
        else uuid5(CONTRACT_NAMESPACE, body.client_contract_id)
    )
    committed = runtime.app.register_contract(
        body.number,
        body.signed_on,
        principal.actor,
        starts_on=body.starts_on,
        ends_on=body.ends_on,
        amount=money_of(body.amount, "amount"),
        deal_id=body.deal_id,
        company_id=body.company_id,
        contact_id=body.contact_id,
        title=body.title,
        contract_id=contract_id,
    )
    runtime.wait_for_views(committed.notification_id)
    return contract_detail(runtime, committed.value)


@router.get("/contracts/{contract_id}", response_model=ContractDetailOut)
def get_contract(
    contract_id: UUID, runtime: RuntimeDep, principal: PrincipalDep
) -> ContractDetailOut:
    """The contract with its documents and the payments to it and to its invoices."""
    return contract_detail(runtime, contract_id)


@router.patch("/contracts/{contract_id}", response_model=ContractDetailOut)
def patch_contract(
    contract_id: UUID, body: ContractPatch, runtime: RuntimeDep, principal: WriterDep
) -> ContractDetailOut:
    """Change the terms given; a later `ends_on` prolongs it (the expiry reminder comes again
    for the new term)."""
    given = body.model_fields_set
    changes: dict[str, Any] = {}
    if "number" in given and body.number is not None:
        changes["number"] = clean_contract_number(body.number)
    for name in ("signed_on", "starts_on", "ends_on"):
        if name in given:
            value = getattr(body, name)
            if value is None and name == "signed_on":
                continue  # a contract is always signed on some day
            changes[name] = None if value is None else value.isoformat()
    if "amount" in given:
        amount = money_of(body.amount, "amount")
        changes["amount"] = None if amount is None else amount.rounded().state()
    committed = runtime.app.change_contract(
        contract_id, principal.actor, changes=changes, title=body.title
    )
    runtime.wait_for_views(committed.notification_id)
    return contract_detail(runtime, contract_id)


@router.post("/contracts/{contract_id}/close", response_model=ContractDetailOut)
def close_contract(
    contract_id: UUID, runtime: RuntimeDep, principal: WriterDep, body: CloseIn | None = None
) -> ContractDetailOut:
    """Close the contract (terminated or fulfilled); 409 when it is closed already."""
    committed = runtime.app.close_contract(
        contract_id, "" if body is None else body.reason, principal.actor
    )
    runtime.wait_for_views(committed.notification_id)
    return contract_detail(runtime, contract_id)
