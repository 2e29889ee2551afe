"""A message's attachments in the web app: `GET /attachments/{message_id}/{index}`.

The inbox thread points its image previews, audio players and download links
here. A logged-in user gets the file (see `services/attachment_access.py`, shared
with the API); anyone else is sent to the login page, and a message or index that
does not exist is the same 404 page as any other missing thing.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from threadline.services.attachment_access import (
    AttachmentMissing,
    AttachmentUnavailable,
    file_response,
)
from threadline.services.web.deps import WebUser, WebUserDep

router = APIRouter(include_in_schema=False)
MAX_INDEX = 1000


def _page(user: WebUser, status_code: int, message: str) -> HTMLResponse:
    return user.render(
        "error.html", status_code=status_code, title=str(status_code), message=message
    )


@router.get("/attachments/{message_id}/{index}")
def attachment(message_id: str, index: str, user: WebUserDep) -> Response:
    """The file of one attachment, inline for images and audio, else as a download."""
    try:
        parsed = UUID(message_id)
        number = int(index)
    except ValueError:
        return _page(user, 404, user._("No such attachment."))
    if not 0 <= number <= MAX_INDEX:
        return _page(user, 404, user._("No such attachment."))
    try:
        found = user.runtime.attachment_access.open(str(parsed), number)
    except AttachmentMissing:
        return _page(user, 404, user._("No such attachment."))
    except AttachmentUnavailable as error:
        return _page(user, 502, f"{user._('The file could not be downloaded.')} ({error.reason})")
    target = f"{parsed}/{number}"
    user.runtime.access_log.record(
        user, "attachment", target, via="web", path=user.request.url.path
    )
    return file_response(found)
