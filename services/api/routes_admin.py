"""Accounts and the attribute registry (companies: `routes_companies`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from threadline.domain.model.attributes import AttributeDefinition, AttributeScope, AttributeType
from threadline.services.api.deps import AdminDep, ManagerDep, PrincipalDep, RuntimeDep
from threadline.services.api.schemas import (
    AttributeIn,
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
