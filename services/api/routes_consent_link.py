"""`/consent/{token}`: where a client agrees to a policy's current text, or withdraws.

The link comes in a message (`{{ consent_urls["marketing"] }}`), typically when the
text changed and the client's consent to the older one no longer counts. GET shows
the text in force with an unticked box and changes nothing (mail scanners open
links); POST records the consent (`via: link`) or, with `withdraw`, the withdrawal.
"""

from __future__ import annotations

from html import escape
from uuid import UUID

from fastapi import APIRouter, Form, HTTPException, status
from fastapi.responses import HTMLResponse

from threadline.domain.model.errors import NotFound
from threadline.projections.consents import PolicyRow, consent_policy
from threadline.services.api.deps import RuntimeDep
from threadline.services.api.routes_unsubscribe import PAGE

router = APIRouter(tags=["consent"])
ACTOR = "channel:consent-link"


def _policy(runtime: RuntimeDep, token: str) -> tuple[str, PolicyRow]:
    found = runtime.consent_links.verify_consent(token)
    policy = None if found is None else consent_policy(runtime.views, found[1])
    if found is None or policy is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "this consent link is not valid")
    return str(found[0]), policy


@router.get("/consent/{token}", response_class=HTMLResponse)
def consent_page(token: str, runtime: RuntimeDep) -> HTMLResponse:
    _, policy = _policy(runtime, token)
    action = f"/consent/{escape(token)}"
    body = (
        f"<h1>{escape(policy.title)}</h1>"
        f"<div style='white-space:pre-wrap'>{escape(policy.text)}</div>"
        f"<p style='color:#666'>Version {policy.text_version}</p>"
        f"<form method=post action='{action}'><label><input type=checkbox name=agree"
        f" value=yes required> {escape(policy.title)}</label><p><button type=submit>"
        "I agree</button></p></form>"
        f"<form method=post action='{action}'><input type=hidden name=withdraw value=yes>"
        "<button type=submit>I withdraw my consent</button></form>"
    )
    return HTMLResponse(PAGE.format(title=escape(policy.title), body=body))


@router.post("/consent/{token}", response_class=HTMLResponse)
def consent_answer(
    token: str, runtime: RuntimeDep, agree: str = Form(""), withdraw: str = Form("")
) -> HTMLResponse:
    contact, policy = _policy(runtime, token)
    try:
        if withdraw == "yes":
            position = runtime.app.withdraw_consent(
                UUID(contact), policy.purpose, "link", "", ACTOR
            ).notification_id
            done = "Your consent is withdrawn."
        elif agree == "yes":
            position = runtime.app.give_consent(
                UUID(contact), policy.purpose, "link", ACTOR
            ).notification_id
            done = "Thank you: your consent is recorded."
        else:
            body = "<h1>Nothing changed</h1><p>Tick the box to agree.</p>"
            return HTMLResponse(PAGE.format(title="Consent", body=body), status_code=422)
    except NotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "this consent link is not valid") from None
    runtime.wait_for_views(position)
    body = f"<h1>{escape(policy.title)}</h1><p>{done}</p>"
    return HTMLResponse(PAGE.format(title="Consent", body=body))
