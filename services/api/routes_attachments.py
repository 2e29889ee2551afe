"""Attachments of a message, inbound or outbound: `GET /api/messages/{id}/attachments/{index}`.

`index` counts from 0 in the order of the message's `attachments` list (as
`GET /api/conversations/{id}` shows it). What is served, how, and when a file is
fetched from its provider again is `services/attachment_access.py`, shared with
the web app's `/attachments/{id}/{index}`.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from threadline.services.api.deps import PrincipalDep, RuntimeDep
from threadline.services.api.errors import error_response
from threadline.services.attachment_access import (
    AttachmentMissing,
    AttachmentUnavailable,
    file_response,
)

router = APIRouter(prefix="/api", tags=["attachments"])
NOT_FOUND = "no such attachment"


@router.get(
    "/messages/{message_id}/attachments/{index}",
    response_class=Response,
    responses={
        200: {
            "description": "The file. Images and audio a browser can show come inline with "
            "their type; anything else as a download (`Content-Disposition: attachment`), "
            "HTML, SVG, XML and scripts as `application/octet-stream`; always with "
            "`X-Content-Type-Options: nosniff`.",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        },
        404: {"description": "no such message or attachment, or the file was never stored "
              "(over the size limit)"},
        502: {"description": "the file is kept at the provider (Telegram, Twilio) and could not "
              "be downloaded now; the reason says why"},
    },
)  # fmt: skip
def get_attachment(
    message_id: UUID,
    index: Annotated[int, Path(ge=0, le=1000)],
    request: Request,
    runtime: RuntimeDep,
    principal: PrincipalDep,
) -> Response:
    """One attachment of a message: a client's photo, voice message, MMS picture, form upload
    or a reply's file. A file that was not downloaded when the message came in is fetched
    from the provider now (and kept)."""
    try:
        found = runtime.attachment_access.open(str(message_id), index)
    except AttachmentMissing:
        return error_response(404, NOT_FOUND)
    except AttachmentUnavailable as error:
        return error_response(502, error.reason)
    target = f"{message_id}/{index}"
    runtime.access_log.record(principal, "attachment", target, via="api", path=request.url.path)
    return file_response(found)
