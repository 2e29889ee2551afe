"""Companies: the paged list, one company with its contacts, create and change.

Requisites are checked by the domain (`domain/model/requisites.py`): a wrong check
digit of an ИНН, ОГРН or bank account answers 422 with the field's path
(``["body", "requisites", "0", "bank_accounts", "0", "account"]``), as every
domain error does. The request models here only give the shape.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field

from threadline.domain.model.errors import NotFound
from threadline.domain.model.money import Money
from threadline.projections.companies import companies_page, company, company_contacts
from threadline.projections.deals import client_money, deals_of_company
from threadline.services.api.deps import PrincipalDep, RuntimeDep, WriterDep
from threadline.services.api.schemas import IdOut, ListOut, Offset
from threadline.services.runtime import Runtime

router = APIRouter(prefix="/api/companies", tags=["companies"])

Role = Literal["client", "supplier", "partner", "own"]
LegalFormName = Literal["company", "sole_trader", "private_person"]


class BankAccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bank_name: str = Field("", max_length=300)
    bik: str = Field(..., max_length=20, description="9 digits")
    account: str = Field(..., max_length=40, description="20 digits, checked against the БИК")
    correspondent_account: str = Field("", max_length=40, description="20 digits, 301…")


class RequisiteSetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field("", max_length=300)
    inn: str = Field("", max_length=40, description="10 digits (company) or 12 (person)")
    kpp: str = Field("", max_length=40, description="companies only")
    ogrn: str = Field("", max_length=40, description="ОГРН (13 digits) or ОГРНИП (15)")
    legal_address: str = Field("", max_length=1000)
    postal_address: str = Field("", max_length=1000)
    bank_accounts: list[BankAccountIn] = Field(default_factory=list, max_length=20)


class CompanyCreateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., min_length=1, max_length=300)
    attributes: dict[str, Any] = Field(default_factory=dict)
    roles: list[Role] = Field(default_factory=list)
    legal_form: LegalFormName | None = None
    requisites: list[RequisiteSetIn] = Field(default_factory=list, max_length=20)
    client_group: str = Field("", max_length=100, description='e.g. "wholesale"; "" for none')


class CompanyPatch(BaseModel):
    """Only the fields given change; `requisites` replaces every set, `client_group` "" clears."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=300)
    attributes: dict[str, Any] | None = None
    roles: list[Role] | None = None
    legal_form: LegalFormName | None = None
    requisites: list[RequisiteSetIn] | None = Field(None, max_length=20)
    client_group: str | None = Field(None, max_length=100)


def _requisites(sets: list[RequisiteSetIn] | None) -> list[dict[str, Any]] | None:
    return None if sets is None else [s.model_dump() for s in sets]


def company_detail(runtime: Runtime, company_id: str) -> dict[str, Any]:
    """The company with its contacts, its deals (newest first) and, per currency, its won
    revenue (net of VAT) and gross profit; amounts are money objects, never summed across
    currencies. `GET /api/deals?company_id=` pages and filters the deals."""
    found = company(runtime.views, company_id)
    if found is None:
        raise NotFound("company", company_id)
    contacts = [asdict(c) for c in company_contacts(runtime.views, company_id)]
    deals = [
        {
            "id": d.id,
            "title": d.title,
            "status": d.status,
            "pipeline_id": d.pipeline_id,
            "stage_id": d.stage_id,
            "manager_id": d.manager_id,
            "total": d.total.state(),
        }
        for d in deals_of_company(runtime.views, company_id)
    ]
    money = [
        {
            "won_deals": m.won_deals,
            "revenue": Money.from_minor(m.revenue_minor, m.currency).state(),
            "gross_profit": Money.from_minor(m.profit_minor, m.currency).state(),
            "open_deals": m.open_deals,
            "open_total": Money.from_minor(m.open_total_minor, m.currency).state(),
        }
        for m in client_money(runtime.views, company_id=company_id)
    ]
    return {**asdict(found), "contacts": contacts, "deals": deals, "money": money}


@router.get("", response_model=ListOut)
def list_companies(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    q: Annotated[
        str | None, Query(max_length=200, description="text in the name or group, or an ИНН")
    ] = None,
    role: Role | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> ListOut:
    rows, total = companies_page(runtime.views, limit, offset, q=q, role=role)
    return ListOut(items=[asdict(r) for r in rows], total=total)


@router.post("", response_model=IdOut, status_code=status.HTTP_201_CREATED)
def create_company(body: CompanyCreateIn, runtime: RuntimeDep, principal: WriterDep) -> IdOut:
    committed = runtime.app.create_company(
        principal.actor,
        body.name,
        body.attributes,
        roles=body.roles,
        legal_form=body.legal_form,
        requisites=_requisites(body.requisites),
        client_group=body.client_group,
    )
    runtime.wait_for_views(committed.notification_id)
    return IdOut(id=committed.value)


@router.get("/{company_id}")
def get_company(company_id: UUID, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    return company_detail(runtime, str(company_id))


@router.patch("/{company_id}")
def patch_company(
    company_id: UUID, body: CompanyPatch, runtime: RuntimeDep, principal: WriterDep
) -> dict[str, Any]:
    committed = runtime.app.update_company(
        company_id,
        principal.actor,
        name=body.name,
        attributes=body.attributes,
        roles=body.roles,
        legal_form=body.legal_form,
        requisites=_requisites(body.requisites),
        client_group=body.client_group,
    )
    runtime.wait_for_views(committed.notification_id)
    return company_detail(runtime, str(company_id))
