"""Inbox configuration: `GET/POST /api/inboxes`, `GET/PATCH /api/inboxes/{slug}`, channel schemas.

Secret settings (passwords, tokens) are accepted on writes and never returned:
responses say only whether each secret is set. Only admins configure or read
inboxes (an inbox shows its servers, user names and which secrets are set; the web
app's inbox screens are admin-only too); every role may read `GET /api/channels`,
which describes the forms and holds no configuration.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field

from threadline.channels.registry import load_adapters
from threadline.services.api.deps import AdminDep, PrincipalDep, RuntimeDep
from threadline.services.api.schemas import ListOut

router = APIRouter(prefix="/api", tags=["inboxes"])


class InboxIn(BaseModel):
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$", examples=["support-mail"])
    channel: str = Field(examples=["email"], description="see GET /api/channels")
    name: str = Field(min_length=1, max_length=200)
    settings: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True


class InboxPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    settings: dict[str, Any] | None = Field(
        default=None,
        description="the settings to change; a secret left out or empty keeps its value",
    )
    enabled: bool | None = None


class InboxOut(BaseModel):
    id: str
    slug: str
    channel: str
    name: str
    enabled: bool
    settings: dict[str, Any]
    secrets: dict[str, bool] = Field(description="for each secret setting: is it set")


@router.get("/channels")
def list_channels(principal: PrincipalDep) -> list[dict[str, Any]]:
    """Every channel this server can run, with the settings form of its inboxes."""
    return [
        {
            "channel": name,
            "title": adapter.title or name,
            "conversation_channels": list(adapter.conversation_channels),
            "can_send": adapter.can_send,
            "settings": [f.describe() for f in adapter.settings_schema],
        }
        for name, adapter in sorted(load_adapters().items())
    ]


@router.get("/inboxes", response_model=ListOut)
def list_inboxes(runtime: RuntimeDep, principal: AdminDep) -> ListOut:
    inboxes = runtime.channels.inboxes(enabled_only=False)
    items = [runtime.channels.describe(inbox) for inbox in inboxes]
    return ListOut(items=items, total=len(items))


@router.post("/inboxes", response_model=InboxOut, status_code=status.HTTP_201_CREATED)
def create_inbox(body: InboxIn, runtime: RuntimeDep, principal: AdminDep) -> dict[str, Any]:
    inbox = runtime.channels.configure(
        body.slug,
        body.channel,
        body.name,
        body.settings,
        principal.actor,
        enabled=body.enabled,
        create_only=True,
    )
    return runtime.channels.describe(inbox)


@router.get("/inboxes/{slug}", response_model=InboxOut)
def get_inbox(slug: str, runtime: RuntimeDep, principal: AdminDep) -> dict[str, Any]:
    inbox = runtime.channels.inbox(slug)
    if inbox is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"inbox {slug} not found")
    return runtime.channels.describe(inbox)


@router.patch("/inboxes/{slug}", response_model=InboxOut)
def patch_inbox(
    slug: str, body: InboxPatch, runtime: RuntimeDep, principal: AdminDep
) -> dict[str, Any]:
    current = runtime.channels.inbox(slug)
    if current is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"inbox {slug} not found")
    settings = dict(current.settings)
    settings.update(body.settings or {})
    inbox = runtime.channels.configure(
        slug,
        current.channel,
        body.name or current.name,
        settings,
        principal.actor,
        enabled=body.enabled,
    )
    return runtime.channels.describe(inbox)


@router.post("/inboxes/{slug}/telegram-webhook")
def register_telegram_webhook(
    slug: str, runtime: RuntimeDep, principal: AdminDep
) -> dict[str, Any]:
    """Tell Telegram to post this bot's updates to `/hooks/telegram/{slug}` (with the secret)."""
    import asyncio

    from threadline.channels.telegram import TelegramApiError, set_webhook

    inbox = runtime.channels.inbox(slug)
    if inbox is None or inbox.channel != "telegram":
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no telegram inbox {slug}")
    try:
        url = asyncio.run(set_webhook(inbox, runtime.channels.options))
    except TelegramApiError as error:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"Telegram refused: {error}") from None
    return {"webhook_url": url}


# -- rejected messages -------------------------------------------------------------------------


class RejectionOut(BaseModel):
    """A rejected e-mail (folder, UIDVALIDITY, UID) or Telegram update (`update_id`)."""

    id: str
    folder: str = Field(description="the IMAP folder (empty for a Telegram update)")
    uidvalidity: int = Field(description="0 for a Telegram update")
    uid: int = Field(description="0 for a Telegram update")
    reason: str
    rejected_at: str = Field(description="the last time it was refused (ISO 8601, UTC)")
    first_rejected_at: str
    attempts: int = Field(description="how often it was refused (the poller's and retries)")
    size: int = Field(description="bytes (a Telegram update: characters of its JSON)")
    message_id: str = Field(description="the Message-ID header, when it could be read")
    subject: str
    sender: str = Field(
        description="the From header, when it could be read; a Telegram update's sender"
    )
    update_id: int | None = Field(default=None, description="a Telegram update's id")
    chat: str = Field(default="", description="a Telegram update's chat id")
    text: str = Field(default="", description="the start of a Telegram message's text")
    retryable: bool = Field(
        default=True,
        description="false for a Telegram update too large to keep (Telegram cannot send it"
        " again, so a retry answers 409)",
    )


class RejectedListOut(BaseModel):
    items: list[RejectionOut]
    total: int


class RetryOut(BaseModel):
    id: str
    outcome: str = Field(
        description="ingested (the rejection is removed), rejected (refused again: `reason`"
        " says why, the rejection stays) or gone (no longer on the mail server)"
    )
    reason: str = ""
    message_id: str | None = None
    conversation_id: str | None = None
    duplicate: bool | None = Field(default=None, description="it was in the log already")


@router.get("/inboxes/{slug}/rejected", response_model=RejectedListOut)
def list_rejected(
    slug: str,
    runtime: RuntimeDep,
    principal: AdminDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> dict[str, Any]:
    """The messages this inbox's poller could not ingest, newest first, with the reason."""
    if runtime.channels.inbox(slug) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"inbox {slug} not found")
    store = runtime.channels.rejections
    items = [r.describe() for r in store.page(slug, limit, offset)]
    return {"items": items, "total": store.count(slug)}


@router.post(
    "/inboxes/{slug}/rejected/{rejection_id}/retry",
    response_model=RetryOut,
    responses={502: {"description": "the mail server could not be reached or refused"}},
)
def retry_rejected(
    slug: str, rejection_id: str, runtime: RuntimeDep, principal: AdminDep
) -> dict[str, Any]:
    """Fetch the message again and run it through ingest; on success the rejection is removed.

    Telegram cannot send an update again: a Telegram rejection is retried from the copy of
    the update it kept, and answers 409 when the update was too large to keep."""
    try:
        return runtime.channels.retry_rejection(slug, rejection_id)
    except ConnectionError as error:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"mail server: {error}") from None
