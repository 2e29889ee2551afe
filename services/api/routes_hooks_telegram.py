"""The Telegram webhook: `POST /hooks/telegram/{inbox}`.

Telegram retries every answer that is not 2xx, so only requests that are really wrong get
one: a missing or wrong secret token, or no enabled Telegram inbox with that slug (403,
the same answer for both, so the hook does not reveal which inboxes exist), a body that is
not a JSON object (400), an update that cannot be read or stored (422: nested deeper than
64 levels, a lone UTF-16 surrogate, NaN, a number beyond 64 bits, or an unreadable shape).
Updates the inbox does not take (edits, group messages, member changes) are answered 200
with what was ignored; one whose reading or storing fails unexpectedly is recorded as a
rejected update (listed and retryable under the inbox, like a poller's) and answered 200,
since Telegram's retries would fail the same way and hold back the chat's later updates; and the same update twice is one message (the second answer says
`duplicate`).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from threadline.channels import telegram
from threadline.channels.base import TRANSIENT_INGEST_ERRORS, Rejected, describe_error
from threadline.services.api.deps import RuntimeDep
from threadline.services.api.errors import error_response
from threadline.services.api.limits import JsonRefused, strict_json_loads

log = logging.getLogger("threadline.channels.telegram")

router = APIRouter(prefix="/hooks", tags=["hooks"])
SECRET_REFUSED = "secret token missing or wrong"


@router.post(
    "/telegram/{inbox}",
    responses={
        400: {"description": "the body is not a JSON object"},
        403: {
            "description": "missing or wrong X-Telegram-Bot-Api-Secret-Token, or no enabled "
            "Telegram inbox with this slug (one answer for both)"
        },
        422: {"description": "the update cannot be read"},
    },
)
async def telegram_webhook(inbox: str, request: Request, runtime: RuntimeDep) -> JSONResponse:
    """Take one update Telegram posts to the inbox's webhook."""
    config = await run_in_threadpool(runtime.channels.inbox, inbox)
    remote = request.client.host if request.client else "unknown"
    if config is None or not config.enabled or config.channel != telegram.CHANNEL:
        # The same answer as a wrong secret: a stranger must not learn which slugs exist.
        log.warning("403 telegram inbox %r from %s: no enabled Telegram inbox", inbox, remote)
        return error_response(403, SECRET_REFUSED)
    given = request.headers.get(telegram.SECRET_HEADER)
    if not telegram.secret_matches(config, given):
        why = "missing" if not given else "wrong"
        if not config.secret("webhook_secret"):
            why = "not configured for the inbox"
        log.warning("403 telegram inbox %s from %s: secret token %s", config.slug, remote, why)
        return error_response(403, SECRET_REFUSED)
    body = await request.body()
    try:
        update: Any = strict_json_loads(body)
    except JsonRefused as error:
        if error.malformed:
            log.warning("400 telegram inbox %s from %s: body is not JSON", config.slug, remote)
            return error_response(400, "the body is not JSON")
        log.warning("422 telegram inbox %s from %s: %s", config.slug, remote, error)
        return error_response(422, str(error))
    if not isinstance(update, dict):
        log.warning("400 telegram inbox %s from %s: not a JSON object", config.slug, remote)
        return error_response(400, "an update is a JSON object")
    try:
        result = telegram.read_update(
            update, config, runtime.channels.attachments, runtime.settings.default_region
        )
        if isinstance(result, telegram.Ignored):
            return JSONResponse({"ok": True, "ignored": result.reason})
        result = await telegram.fetch_files(
            result, config, runtime.channels.options, runtime.channels.attachments
        )
        ingested = await run_in_threadpool(runtime.channels.ingest, result)
    except Rejected as error:
        log.warning(
            "%d telegram inbox %s, update %s: %s",
            error.status_code,
            config.slug,
            update.get("update_id"),
            error.reason,
        )
        return error_response(error.status_code, error.reason)
    except TRANSIENT_INGEST_ERRORS:
        raise  # 503 (database) or 409 (a race): Telegram retries, and a retry can succeed
    except Exception as error:
        # A retry would fail the same way and hold back every later update of the chat, so
        # the update is kept as a rejection, listed and retryable like a poller's, and
        # Telegram is told it arrived.
        update_id = update.get("update_id")
        rejection = telegram.update_rejection(
            config.slug,
            update_id if isinstance(update_id, int) else 0,
            update,
            f"unexpected error: {describe_error(error)}",
        )
        await run_in_threadpool(runtime.channels.rejections.add, rejection)
        log.exception(
            "telegram inbox %s, update %s failed unexpectedly; recorded as rejected",
            config.slug,
            update_id,
        )
        return JSONResponse({"ok": True, "rejected": rejection.reason})
    return JSONResponse(
        {"ok": True, "message_id": str(ingested.message_id), "duplicate": ingested.duplicate}
    )
