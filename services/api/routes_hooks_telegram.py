"""The Telegram webhook: `POST /hooks/telegram/{inbox}`.

Telegram retries every answer that is not 2xx, so only requests that are really wrong get
one: an unknown inbox (404), a missing or wrong secret token (403), a body that is not a
JSON object (400), an update that cannot be read (422). Updates the inbox does not take
(edits, group messages, member changes) are answered 200 with what was ignored, and the
same update twice is one message (the second answer says `duplicate`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from threadline.channels import telegram
from threadline.channels.base import Rejected
from threadline.services.api.deps import RuntimeDep

log = logging.getLogger("threadline.channels.telegram")

router = APIRouter(prefix="/hooks", tags=["hooks"])


@router.post(
    "/telegram/{inbox}",
    responses={
        400: {"description": "the body is not a JSON object"},
        403: {"description": "missing or wrong X-Telegram-Bot-Api-Secret-Token"},
        404: {"description": "no enabled Telegram inbox with this slug"},
        422: {"description": "the update cannot be read"},
    },
)
async def telegram_webhook(inbox: str, request: Request, runtime: RuntimeDep) -> JSONResponse:
    """Take one update Telegram posts to the inbox's webhook."""
    config = await run_in_threadpool(runtime.channels.inbox, inbox)
    if config is None or not config.enabled or config.channel != telegram.CHANNEL:
        return JSONResponse({"detail": "no such Telegram inbox"}, status_code=404)
    remote = request.client.host if request.client else "unknown"
    given = request.headers.get(telegram.SECRET_HEADER)
    if not telegram.secret_matches(config, given):
        why = "missing" if not given else "wrong"
        if not config.secret("webhook_secret"):
            why = "not configured for the inbox"
        log.warning("403 telegram inbox %s from %s: secret token %s", config.slug, remote, why)
        return JSONResponse({"detail": "secret token missing or wrong"}, status_code=403)
    body = await request.body()
    try:
        update: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        log.warning("400 telegram inbox %s from %s: body is not JSON", config.slug, remote)
        return JSONResponse({"detail": "the body is not JSON"}, status_code=400)
    if not isinstance(update, dict):
        log.warning("400 telegram inbox %s from %s: not a JSON object", config.slug, remote)
        return JSONResponse({"detail": "an update is a JSON object"}, status_code=400)
    try:
        result = telegram.read_update(
            update, config, runtime.channels.attachments, runtime.settings.default_region
        )
    except Rejected as error:
        log.warning(
            "%d telegram inbox %s, update %s: %s",
            error.status_code,
            config.slug,
            update.get("update_id"),
            error.reason,
        )
        return JSONResponse({"detail": error.reason}, status_code=error.status_code)
    if isinstance(result, telegram.Ignored):
        return JSONResponse({"ok": True, "ignored": result.reason})
    ingested = await run_in_threadpool(runtime.channels.ingest, result)
    return JSONResponse(
        {"ok": True, "message_id": str(ingested.message_id), "duplicate": ingested.duplicate}
    )
