"""What `/healthz` tells whom, and how far behind the log the views and the triggers are.

The pollers' error texts go only to an admin's bearer token.

`/healthz` answers anyone (load balancers call it without credentials). A poller's last
error is free text from the mail server or the connection (a host name, a user name, the
server's refusal), so an anonymous caller sees only the error's kind (`ImapError`), while
the state, the failure counts and the last success stay visible to everyone.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials
from starlette.concurrency import run_in_threadpool

from threadline.domain.model.user import Role
from threadline.services.api.deps import current_principal
from threadline.services.runtime import Runtime
from threadline.triggers.runner import POSITION_KEY


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


def lag(runtime: Runtime, log_position: int) -> dict[str, Any]:
    """How far the views and the trigger runner are behind the log, from their positions.

    Each lag is given in events and as the age in seconds of the oldest event not yet
    applied (or handled): a dead worker on a quiet system is zero behind, while one
    that misses a steady trickle is behind by more seconds every second. The trigger
    runner's position is the one it stores after each page; `None` before it first ran.
    """
    views = runtime.views_position()
    stored = runtime.channels.state.get(POSITION_KEY)
    triggers = None if stored is None else int(stored)
    return {
        "views_position": views,
        "views_lag": max(0, log_position - views),
        "views_lag_seconds": _age_of_next(runtime, views, log_position),
        "triggers_position": triggers,
        "triggers_lag": None if triggers is None else max(0, log_position - triggers),
        "triggers_lag_seconds": (
            None if triggers is None else _age_of_next(runtime, triggers, log_position)
        ),
    }


def _age_of_next(runtime: Runtime, position: int, log_position: int) -> float:
    """Seconds since the first event after `position` was recorded (0 when there is none)."""
    if position >= log_position:
        return 0.0
    notifications = runtime.app.recorder.select_notifications(start=position + 1, limit=1)
    if not notifications:
        return 0.0
    try:
        event = runtime.app.mapper.to_domain_event(notifications[0])
    except Exception:  # an event this version cannot read still counts as one behind
        return 0.0
    recorded = getattr(event, "timestamp", None)
    if not isinstance(recorded, datetime):
        return 0.0
    return round(max(0.0, (datetime.now(UTC) - recorded).total_seconds()), 3)


def problems(
    runtime: Runtime, lags: dict[str, Any], pollers: dict[str, dict[str, Any]]
) -> list[str]:
    """Why `/healthz` says `degraded` (empty: `ok`); thresholds are settings."""
    settings = runtime.settings
    found: list[str] = []
    if not runtime.views_healthy():
        found.append("views_failing")
    if lags["views_lag_seconds"] > settings.health_views_lag_seconds:
        found.append("views_behind")
    triggers_age = lags["triggers_lag_seconds"]
    if triggers_age is not None and triggers_age > settings.health_triggers_lag_seconds:
        found.append("triggers_behind")
    if any(p["state"] != "ok" for p in pollers.values()):
        found.append("pollers_failing")
    return found
