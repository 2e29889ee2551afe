"""Inbox configuration: `GET/POST /api/inboxes`, `GET/PATCH /api/inboxes/{slug}`, channel schemas.

Secret settings (passwords, tokens) are accepted on writes and never returned:
responses say only whether each secret is set. Admins configure inboxes;
everyone else may read them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status
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
def list_inboxes(runtime: RuntimeDep, principal: PrincipalDep) -> ListOut:
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
def get_inbox(slug: str, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
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
