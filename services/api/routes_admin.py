"""Accounts, the attribute registry and companies."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, status

from threadline.domain.model.attributes import AttributeDefinition, AttributeScope, AttributeType
from threadline.services.api.deps import AdminDep, ManagerDep, PrincipalDep, RuntimeDep, WriterDep
from threadline.services.api.schemas import (
    AttributeIn,
    CompanyIn,
    IdOut,
    ListOut,
    UserCreatedOut,
    UserIn,
)

router = APIRouter(prefix="/api", tags=["admin"])


@router.get("/me")
def me(principal: PrincipalDep) -> dict[str, Any]:
    return {"user_id": principal.user_id, "role": principal.role.value, "email": principal.email}


@router.get("/users", response_model=ListOut)
def list_users(runtime: RuntimeDep, principal: ManagerDep) -> ListOut:
    return ListOut(items=runtime.queries.users())


@router.post("/users", response_model=UserCreatedOut, status_code=status.HTTP_201_CREATED)
def create_user(body: UserIn, runtime: RuntimeDep, principal: AdminDep) -> UserCreatedOut:
    committed = runtime.app.create_user(
        body.email,
        body.role,
        principal.actor,
        name=body.name,
        password=body.password,
        locale=body.locale,
    )
    runtime.wait_for_views(committed.notification_id)
    user_id, token = committed.value
    return UserCreatedOut(id=user_id, token=token)


@router.get("/attributes", response_model=ListOut)
def list_attributes(runtime: RuntimeDep, principal: PrincipalDep) -> ListOut:
    registry = runtime.app.attribute_registry()
    items = [d.as_dict() for d in registry.all()] if registry else []
    return ListOut(items=items, total=len(items))


@router.post("/attributes", status_code=status.HTTP_201_CREATED)
def define_attribute(
    body: AttributeIn, runtime: RuntimeDep, principal: ManagerDep
) -> dict[str, Any]:
    definition = AttributeDefinition(
        key=body.key,
        label=body.label,
        type=AttributeType(body.type),
        options=tuple(body.options),
        personal=body.personal,
        scope=AttributeScope(body.scope),
    )
    runtime.app.define_attribute(definition, principal.actor)
    return definition.as_dict()


@router.get("/companies", response_model=ListOut)
def list_companies(runtime: RuntimeDep, principal: PrincipalDep) -> ListOut:
    return ListOut(items=runtime.queries.companies(limit=500))


@router.post("/companies", response_model=IdOut, status_code=status.HTTP_201_CREATED)
def create_company(body: CompanyIn, runtime: RuntimeDep, principal: WriterDep) -> IdOut:
    committed = runtime.app.create_company(principal.actor, body.name, body.attributes)
    runtime.wait_for_views(committed.notification_id)
    return IdOut(id=committed.value)


@router.get("/companies/{company_id}")
def get_company(company_id: UUID, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    company = runtime.queries.company(str(company_id))
    if company is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"company {company_id} not found")
    return company
