"""Serving a message's attachments: which bytes, fetched again if need be, and safe headers.

The API (`GET /api/messages/{id}/attachments/{index}`) and the web app
(`GET /attachments/{id}/{index}`) check who is asking (a token, a session) and
then both call `AttachmentAccess.open` (`runtime.attachment_access`) and
`file_response`, so the two answer alike.
Every user of the app may read every conversation (the auditor too), so a
logged-in caller may open any message's files; a message or an index that does
not exist, and a file that was never stored (over the size limit), is a 404.

A file kept at a provider that could not be downloaded when its message came in
(recorded "not downloaded: <reason>") is fetched again here, through the
channel of the message's inbox, when someone opens it: that is the retry path.
A failure is remembered for `RETRY_SECONDS`, so a thread that is reloaded does
not hammer the provider, and answered 502 with the reason.

The answer never lets a file run as a page: images and audio the browser can
show are served inline with their type, everything else as a download
(`Content-Disposition: attachment`), HTML, SVG, XML and scripts as
`application/octet-stream`; always with `X-Content-Type-Options: nosniff` and a
policy that allows nothing (`default-src 'none'; sandbox`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

from starlette.responses import FileResponse

from threadline.channels.attachments import AttachmentStore, FetchFailed
from threadline.channels.base import ChannelAdapter, InboxConfig
from threadline.channels.telegram import bot_id_of
from threadline.channels.twilio import find_inbox

log = logging.getLogger("threadline.attachments")

RETRY_SECONDS = 30.0
PREVIEW_IMAGES = frozenset(
    {"image/jpeg", "image/png", "image/gif", "image/webp", "image/avif", "image/bmp"}
)
PLAYABLE_AUDIO = frozenset(
    {
        "audio/ogg",
        "audio/opus",
        "audio/mpeg",
        "audio/mp3",
        "audio/mp4",
        "audio/x-m4a",
        "audio/aac",
        "audio/wav",
        "audio/x-wav",
        "audio/webm",
        "audio/flac",
    }
)
_ACTIVE = ("html", "xml", "svg", "javascript", "ecmascript", "xhtml")
POLICY = "default-src 'none'; sandbox"
CONVERSATION_CHANNEL_INBOXES = {"telegram": "telegram", "sms": "twilio", "whatsapp": "twilio"}


class MessageReader(Protocol):
    """One message of the inbox view, attachments included (`Queries.message`)."""

    def message(self, message_id: str) -> dict[str, Any] | None: ...


class AttachmentChannels(Protocol):
    """The inboxes a file can be fetched again through (the channel hub)."""

    def inbox_by_id(self, inbox_id: UUID) -> InboxConfig | None: ...

    def inboxes(
        self, channel: str | None = None, enabled_only: bool = True
    ) -> list[InboxConfig]: ...

    def adapter(self, inbox: InboxConfig) -> ChannelAdapter: ...


class AggregateReader(Protocol):
    """Aggregates by id (the application's repository): a message's conversation."""

    def get(self, aggregate_id: UUID, *, version: int | None = None) -> Any: ...


class AttachmentMissing(Exception):
    """No such message, no such attachment, or no bytes to serve: answered 404."""


class AttachmentUnavailable(Exception):
    """The file is at the provider and could not be fetched again: answered 502."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class AttachmentFile:
    path: Path
    filename: str
    content_type: str  # the type served: never one a browser would run
    inline: bool


def base_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def preview_kind(content_type: str) -> str:
    """ "image" for an <img>, "audio" for an <audio controls>, "" for a download link."""
    kind = base_type(content_type)
    if kind in PREVIEW_IMAGES:
        return "image"
    if kind in PLAYABLE_AUDIO:
        return "audio"
    return ""


def served_type(content_type: str) -> str:
    kind = base_type(content_type)
    if not kind or "/" not in kind or any(word in kind for word in _ACTIVE):
        return "application/octet-stream"
    return kind


def attachment_url(message_id: str, index: int, api: bool = False) -> str:
    if api:
        return f"/api/messages/{message_id}/attachments/{index}"
    return f"/attachments/{message_id}/{index}"


def describe(store: AttachmentStore, message: dict[str, Any]) -> list[dict[str, Any]]:
    """The attachments of one inbox-view message as a thread shows them: name, size, the
    link, whether the bytes are here, the preview to show and why a file is missing."""
    out = []
    for index, item in enumerate(message.get("attachments") or []):
        size = int(item.get("size") or 0)
        available = store.locate(item) is not None
        content_type = str(item.get("content_type") or "")
        out.append(
            {
                "filename": str(item.get("filename") or content_type or "?"),
                "kb": max(0.1, round(size / 1024, 1)) if size else 0,
                "size": size,
                "content_type": content_type,
                "url": attachment_url(str(message["id"]), index),
                "available": available,
                "preview": preview_kind(content_type) if available else "",
                "retryable": not available
                and bool(item.get("reference"))
                and not item.get("over_limit"),
                "over_limit": bool(item.get("over_limit")),
                "reason": str(item.get("error") or "").removeprefix("not downloaded: "),
            }
        )
    return out


_failures: dict[str, tuple[float, str]] = {}
_failures_lock = threading.Lock()


class AttachmentAccess:
    """Opens a message's files: from the attachment store, else fetched again at the provider."""

    def __init__(
        self,
        messages: MessageReader,
        store: AttachmentStore,
        channels: AttachmentChannels,
        aggregates: AggregateReader,
        default_region: str | None,
    ) -> None:
        self.messages = messages
        self.store = store
        self.channels = channels
        self.aggregates = aggregates
        self.default_region = default_region

    def open(self, message_id: str, index: int) -> AttachmentFile:
        """The file of attachment `index` of a message; fetched from its provider when it was
        not downloaded. Raises `AttachmentMissing` (404) or `AttachmentUnavailable` (502)."""
        message = self.messages.message(message_id)
        items = (message or {}).get("attachments") or []
        if message is None or not 0 <= index < len(items):
            raise AttachmentMissing(message_id)
        item: dict[str, Any] = items[index]
        path = self.store.locate(item)
        if path is None:
            reference = str(item.get("reference") or "")
            if not reference or item.get("over_limit"):
                raise AttachmentMissing(message_id)
            path = self._fetch_again(message, item, reference)
        content_type = str(item.get("content_type") or "")
        return AttachmentFile(
            path=path,
            filename=str(item.get("filename") or "attachment"),
            content_type=served_type(content_type),
            inline=preview_kind(content_type) != "",
        )

    def _fetch_again(self, message: dict[str, Any], item: dict[str, Any], reference: str) -> Path:
        store = self.store
        key = f"{message['id']}:{reference}"
        with _failures_lock:
            failed = _failures.get(key)
        if failed is not None and time.monotonic() - failed[0] < RETRY_SECONDS:
            raise AttachmentUnavailable(failed[1])
        inbox = self._inbox_of(message)
        if inbox is None:
            reason = "not downloaded: the inbox it came through is gone or disabled"
            raise AttachmentUnavailable(reason)
        adapter = self.channels.adapter(inbox)
        try:
            data = asyncio.run(adapter.fetch_attachment(reference))
        except FetchFailed as error:  # TooLarge too
            reason = f"not downloaded: {error.reason}"
            now = time.monotonic()
            with _failures_lock:
                for stale in [k for k, (at, _) in _failures.items() if now - at >= RETRY_SECONDS]:
                    del _failures[stale]  # bounded: only failures of the last RETRY_SECONDS stay
                _failures[key] = (now, reason)
            log.warning("attachment of message %s fetched again, failed: %s", message["id"], reason)
            raise AttachmentUnavailable(reason) from None
        filename = str(item.get("filename") or "attachment")
        stored = store.fetched(reference, data, filename, str(item.get("content_type") or ""))
        with _failures_lock:
            _failures.pop(key, None)
        log.info("attachment %s of message %s downloaded on request", filename, message["id"])
        path = store.locate(item)
        if path is None or not stored.stored:
            raise AttachmentMissing(str(message["id"]))
        return path

    def _inbox_of(self, message: dict[str, Any]) -> InboxConfig | None:
        """The enabled inbox a message came through: its conversation's, else (an older
        conversation that names none) the one its metadata points at."""
        hub = self.channels
        try:
            conversation = self.aggregates.get(UUID(str(message["conversation_id"])))
            inbox_id = getattr(conversation, "inbox_id", None)
        except Exception:  # not found, or not a conversation: fall back to the metadata
            inbox_id = None
        inbox = hub.inbox_by_id(inbox_id) if isinstance(inbox_id, UUID) else None
        if inbox is not None and inbox.enabled:
            return inbox
        channel = CONVERSATION_CHANNEL_INBOXES.get(str(message.get("channel")))
        metadata = message.get("metadata") or {}
        if channel == "telegram":
            wanted = str(metadata.get("bot_id") or "")
            return next((i for i in hub.inboxes("telegram") if bot_id_of(i) == wanted), None)
        if channel == "twilio":
            return find_inbox(
                hub.inboxes("twilio"), str(metadata.get("to") or ""), self.default_region
            )
        return None


def file_response(found: AttachmentFile) -> FileResponse:
    """The file, as something a browser shows (an image, audio) or downloads, never runs."""
    return FileResponse(
        found.path,
        media_type=found.content_type,
        filename=found.filename,
        content_disposition_type="inline" if found.inline else "attachment",
        headers={
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": POLICY,
            "Cache-Control": "private, max-age=3600",
            "Referrer-Policy": "no-referrer",
        },
    )
