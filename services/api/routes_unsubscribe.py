"""`/unsubscribe/{token}`: the link in every automatic e-mail.

GET shows a confirmation page and changes nothing (mail scanners open links);
POST records the opt-out, as RFC 8058's one-click `List-Unsubscribe-Post` does.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import HTMLResponse

from threadline.services.api.deps import RuntimeDep
from threadline.triggers.opt_outs import opt_out

router = APIRouter(tags=["automation"])

PAGE = (
    "<!doctype html><html><head><meta charset=utf-8><meta name=viewport"
    " content='width=device-width'><title>{title}</title></head><body style='font-family:"
    "system-ui,sans-serif;max-width:32rem;margin:3rem auto'>{body}</body></html>"
)


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
def confirm_page(token: str, runtime: RuntimeDep) -> HTMLResponse:
    if runtime.triggers and runtime.unsubscribe.verify(token) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "this unsubscribe link is not valid")
    body = (
        "<h1>Unsubscribe</h1><p>Stop automatic e-mails to this address?</p>"
        f"<form method=post action='/unsubscribe/{escape(token)}'>"
        "<button type=submit>Unsubscribe</button></form>"
    )
    return HTMLResponse(PAGE.format(title="Unsubscribe", body=body))


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe(token: str, runtime: RuntimeDep) -> HTMLResponse:
    contact_id = runtime.triggers and runtime.unsubscribe.verify(token)
    if not contact_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "this unsubscribe link is not valid")
    opt_out(runtime.app, contact_id, "email", "the unsubscribe link")
    body = "<h1>Done</h1><p>You will get no more automatic e-mails from us.</p>"
    return HTMLResponse(PAGE.format(title="Unsubscribed", body=body))
