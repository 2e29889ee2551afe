"""FastAPI dependencies: the runtime, the caller, and what the caller may do.

Every `/api/` route depends on `current_principal`; routes that change
anything depend on `writer` (an auditor is read-only) or `require_roles`.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from threadline.domain.model.user import Role, token_hash
from threadline.services.api.errors import ERROR_STATUSES_ATTR
from threadline.services.runtime import Runtime

bearer = HTTPBearer(auto_error=False, description="An API token or THREADLINE_ADMIN_TOKEN")

F = TypeVar("F", bound=Callable[..., Any])


def refuses_with(*statuses: int) -> Callable[[F], F]:
    """Name the statuses a dependency refuses with: every operation using it documents them."""

    def mark(function: F) -> F:
        setattr(function, ERROR_STATUSES_ATTR, frozenset(statuses))
        return function

    return mark


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (by token) or the bootstrap admin token."""

    user_id: str | None
    role: Role
    email: str | None = None

    @property
    def actor(self) -> str:
        return f"user:{self.user_id}" if self.user_id else "admin-token"

    @property
    def can_write(self) -> bool:
        return self.role is not Role.AUDITOR


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


@refuses_with(401)
def current_principal(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    unauthorized = HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail="a valid bearer token is required (Authorization: Bearer <token>)",
        headers={"WWW-Authenticate": "Bearer"},
    )
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise unauthorized
    token = credentials.credentials
    admin_token = runtime.settings.admin_token
    if admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
        return Principal(user_id=None, role=Role.ADMIN)
    user = runtime.queries.user_by_token_hash(token_hash(token))
    if user is None:
        raise unauthorized
    return Principal(user_id=str(user["id"]), role=Role(user["role"]), email=user["email"])


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def assignee_of(principal: Principal, value: UUID | Literal["me"] | None) -> UUID | None:
    """An assignee as a request gives it: a user id, or `me` for the caller (422 for the
    admin token, which is no user)."""
    if value == "me":
        if principal.user_id is None:
            raise HTTPException(422, "the admin token is not a user; give an assignee id")
        return UUID(principal.user_id)
    return value


@refuses_with(403)
def writer(principal: PrincipalDep) -> Principal:
    """Any role but the auditor, who sees everything and changes nothing."""
    if not principal.can_write:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the auditor role is read-only")
    return principal


WriterDep = Annotated[Principal, Depends(writer)]


def require_roles(*roles: Role) -> Callable[[Principal], Principal]:
    @refuses_with(403)
    def check(principal: PrincipalDep) -> Principal:
        if principal.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"this needs one of the roles: {allowed}"
            )
        return principal

    return check


ManagerDep = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.MANAGER))]
AdminDep = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
