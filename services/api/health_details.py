"""What `/healthz` tells whom: the pollers' error texts only to an admin's bearer token.

`/healthz` answers anyone (load balancers call it without credentials). A poller's last
error is free text from the mail server or the connection (a host name, a user name, the
server's refusal), so an anonymous caller sees only the error's kind (`ImapError`), while
the state, the failure counts and the last success stay visible to everyone.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials
from starlette.concurrency import run_in_threadpool

from threadline.domain.user import Role
from threadline.services.api.deps import current_principal
from threadline.services.runtime import Runtime


async def admin_asking(request: Request, runtime: Runtime, timeout: float) -> bool:
    """Whether the request carries an admin's bearer token (never raises)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=token.strip())
    try:
        principal = await asyncio.wait_for(
            run_in_threadpool(current_principal, runtime, credentials), timeout
        )
    except (HTTPException, TimeoutError):
        return False
    except Exception:  # the database is down: the answer says so elsewhere
        return False
    return bool(principal.role is Role.ADMIN)


def for_anyone(pollers: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The pollers with each last error cut to its kind (the text before the first colon)."""
    shown: dict[str, dict[str, Any]] = {}
    for slug, poller in pollers.items():
        error = poller.get("last_error")
        kind = str(error).split(":", 1)[0].strip() if error else None
        shown[slug] = {**poller, "last_error": kind}
    return shown
