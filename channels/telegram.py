"""Telegram through python-telegram-bot: updates in (webhook or long polling), Bot API out.

In: Telegram posts each update to `POST /hooks/telegram/{inbox}` with the inbox's secret
token in `X-Telegram-Bot-Api-Secret-Token` (webhook mode, the default), or the inbox's
poller fetches them with `getUpdates` (polling mode: for a server Telegram cannot reach).
Both paths end in `read_update`, which turns one update into an `InboundMessage`:

- the sender is the Telegram user id (in a private chat the chat id is the user id, so a
  reply to that identity reaches the same chat); only private chats are taken, because a
  reply goes to the person, not to a group;
- text and captions; photos (the largest size), documents, voice, audio, video, stickers
  are described by their `file_id` (`AttachmentMeta.reference`), and `fetch_files`
  downloads them (getFile, then the file URL) into the attachment store before the
  message is recorded; a file that cannot be downloaded is recorded as "not downloaded:
  <reason>" and fetched again when someone opens it (`fetch_attachment`);
- a shared contact that is the sender's own (`contact.user_id == from.id`) adds the phone
  as an identity, so an SMS or a call from that number later reaches the same client; any
  other shared contact is only text;
- `/start <payload>` (a `t.me/<bot>?start=<payload>` deep link) carries the lead's source,
  see `decode_start_payload`.

The poller moves its offset past an update that cannot be read or ingested, recording it as
rejected (`ChannelServices.rejections`, with a copy of the update for a retry, since Telegram
cannot send it again); only an unavailable database keeps the offset. Each poll reports to
`ChannelServices.health`, so `/healthz` shows a poller that keeps failing.

The dedup key is `<bot id>:<chat id>:<message id>`: the same whether the update came by
webhook or by polling, and distinct for two bots that both talk to one user (message ids
count per chat and bot).

Out: `send` calls sendMessage (split at Telegram's 4096-character limit) and sendDocument
for attachments. A user who blocked the bot is `BLOCKED` (recorded once, never retried);
"chat not found" and other 400s are `PERMANENT`; 429 is `TRANSIENT` with Telegram's
`retry_after`; network errors and timeouts are `TRANSIENT`.

The Bot API base URL is the `THREADLINE_TELEGRAM_API_URL` setting (a local Bot API server,
or the test double). The bot token is part of every Bot API URL, so this module also
masks it in the log records of httpx and python-telegram-bot.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import json
import logging
import mimetypes
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, ClassVar

import httpx
from telegram import Bot, Message, Update
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest

from threadline.channels.attachments import FETCH_SECONDS, AttachmentStore, FetchFailed, TooLarge
from threadline.channels.base import (
    ChannelAdapter,
    ChannelOptions,
    ChannelServices,
    DeliveryError,
    DeliveryErrorKind,
    FieldKind,
    InboxConfig,
    OutboundMessage,
    Rejected,
    Rejection,
    RetryOutcome,
    SettingField,
    describe_error,
    ingest_or_reason,
    register,
    wait_or_stop,
)
from threadline.domain.model.errors import Conflict, InvalidInput
from threadline.domain.model.identities import normalise_phone
from threadline.domain.model.inbound import AttachmentMeta, InboundMessage, IngestResult

log = logging.getLogger("threadline.channels.telegram")

CHANNEL = "telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_MESSAGE = 4096  # Telegram's limit for one text message
LONG_POLL_SECONDS = 25  # below the usual 30 s idle timeouts of proxies
RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 60.0
ALLOWED_UPDATES = ("message",)  # the only update type that becomes a message
WEBHOOK_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # Telegram's rule for secret_token
BOT_TOKEN = re.compile(r"^[0-9]+:[A-Za-z0-9_-]{20,}$")  # what @BotFather hands out

# -- deep-link payloads ------------------------------------------------------------------------
#
# A `/start` payload is at most 64 characters of [A-Za-z0-9_-]. Threadline's format is
# `key-value` pairs joined by `_`; a value runs from the first `-` to the next `_`, so it may
# hold letters, digits and `-` but no `_`:
#
#     src-google_med-cpc_cmp-spring-sale
#     -> {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring-sale"}
#
# Keys: src (utm_source), med (utm_medium), cmp (utm_campaign), ref (referrer). Unknown keys
# and malformed pairs are ignored; the raw payload is kept in the message metadata.
START_KEYS: dict[str, str] = {
    "src": "utm_source",
    "med": "utm_medium",
    "cmp": "utm_campaign",
    "ref": "referrer",
}
START_PAYLOAD = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_START_VALUE = re.compile(r"^[A-Za-z0-9-]+$")
_START_COMMAND = re.compile(r"^/start(?:@[A-Za-z0-9_]+)?(?:\s+(\S+))?\s*$")


def decode_start_payload(payload: str) -> dict[str, str]:
    """The lead source a deep-link payload carries (empty when it carries none)."""
    if not START_PAYLOAD.match(payload or ""):
        return {}
    source: dict[str, str] = {}
    for pair in payload.split("_"):
        key, dash, value = pair.partition("-")
        name = START_KEYS.get(key.lower())
        if name and dash and value and name not in source:
            source[name] = value
    return source


def encode_start_payload(source: Mapping[str, str]) -> str:
    """The payload for a deep link that attributes new leads to `source` (utm_* / referrer).

    Raises ValueError when a value holds characters Telegram does not allow or `_`, or when
    the payload would exceed 64 characters.
    """
    keys = {name: key for key, name in START_KEYS.items()}
    pairs = []
    for name, value in source.items():
        if name not in keys:
            raise ValueError(f"{name}: a deep link carries only {', '.join(sorted(keys))}")
        if not value:
            continue
        if not _START_VALUE.match(value):
            raise ValueError(f"{name}: use only letters, digits and '-' in a deep-link value")
        pairs.append(f"{keys[name]}-{value}")
    payload = "_".join(pairs)
    if not START_PAYLOAD.match(payload):
        raise ValueError("a deep-link payload has 1 to 64 characters")
    return payload


def deep_link(bot_username: str, source: Mapping[str, str]) -> str:
    """`https://t.me/<bot>?start=<payload>`: a link for an ad whose leads keep their source."""
    return f"https://t.me/{bot_username.lstrip('@')}?start={encode_start_payload(source)}"


# -- updates -> inbound messages ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ignored:
    """An update that is fine but carries nothing for the inbox (an edit, a group message)."""

    reason: str


def bot_id_of(inbox: InboxConfig) -> str:
    """The bot's numeric id: the part of its token before the colon (the slug without one)."""
    token = str(inbox.secret("bot_token"))
    head, colon, _ = token.partition(":")
    return head if colon and head.isdigit() else str(inbox.slug)


def update_to_message(
    update_json: dict[str, Any],
    inbox: InboxConfig,
    attachments: AttachmentStore,
    default_region: str | None = None,
) -> InboundMessage | None:
    """One update as an inbound message; None for update types that are ignored (logged)."""
    result = read_update(update_json, inbox, attachments, default_region)
    return None if isinstance(result, Ignored) else result


def read_update(
    update_json: dict[str, Any],
    inbox: InboxConfig,
    attachments: AttachmentStore,
    default_region: str | None = None,
) -> InboundMessage | Ignored:
    """Parse the update JSON with python-telegram-bot's types; `Rejected` if malformed."""
    if not isinstance(update_json, dict):
        raise Rejected("an update is a JSON object", 400)
    try:
        update = Update.de_json(update_json, None)
    except Exception as error:  # the types reject shapes in many ways; all mean "malformed"
        raise Rejected(f"not a Telegram update ({type(error).__name__}: {error})") from None
    if update is None:
        raise Rejected("not a Telegram update")
    return read_parsed_update(update, inbox, attachments, default_region)


def read_parsed_update(
    update: Update,
    inbox: InboxConfig,
    attachments: AttachmentStore,
    default_region: str | None = None,
) -> InboundMessage | Ignored:
    """The same as `read_update` for an update python-telegram-bot already parsed (polling)."""
    update_id = update.update_id
    if not _is_int(update_id):
        raise Rejected("update_id must be an integer")
    message = update.message
    if message is None:
        kinds = sorted(k for k in update.to_dict() if k != "update_id") or ["empty"]
        ignored = Ignored(f"{', '.join(kinds)} updates are not taken")
        log.info("inbox %s: update %s ignored: %s", inbox.slug, update_id, ignored.reason)
        return ignored
    try:
        result = _read_message(update_id, message, inbox, attachments, default_region)
    except Rejected:
        raise
    except InvalidInput as error:
        raise Rejected(f"{error.field}: {error.message}") from None
    except Exception as error:  # a shape the Bot API never sends: malformed, not a crash
        log.warning("inbox %s: update %s is malformed", inbox.slug, update_id, exc_info=True)
        raise Rejected(f"malformed message ({type(error).__name__})") from None
    if isinstance(result, Ignored):
        log.info("inbox %s: update %s ignored: %s", inbox.slug, update_id, result.reason)
    return result


def _read_message(
    update_id: int,
    message: Message,
    inbox: InboxConfig,
    attachments: AttachmentStore,
    default_region: str | None,
) -> InboundMessage | Ignored:
    chat, sender = message.chat, message.from_user
    if chat is None or not _is_int(chat.id) or not _is_int(message.message_id):
        raise Rejected("a message needs an integer message_id and chat.id")
    if chat.type != "private":
        return Ignored(f"messages in {chat.type} chats are not taken (only private chats)")
    if sender is None:
        return Ignored("a message without a sender")
    if not _is_int(sender.id):
        raise Rejected("from.id must be an integer")
    if sender.is_bot:
        return Ignored("messages from bots are not taken")

    text = _text(message.text) or _text(message.caption)
    kind = "text"
    identities: list[tuple[str, str | int]] = [("telegram", sender.id)]
    files: list[dict[str, Any]] = []
    metas: list[AttachmentMeta] = []
    metadata: dict[str, Any] = {
        "chat_id": chat.id,
        "message_id": message.message_id,
        "update_id": update_id,
        "bot_id": bot_id_of(inbox),
    }
    source: dict[str, str] = {}

    start = _START_COMMAND.match(text) if text.startswith("/start") else None
    if start:
        kind = "start"
        payload = start.group(1) or ""
        if payload:
            metadata["start_payload"] = payload[:128]
            source = decode_start_payload(payload)
    photos = [p for p in message.photo or () if _file_id(p.file_id)]
    missing = 1 if message.photo and not photos else 0
    if message.photo:
        kind = "photo"
    if photos:
        largest = max(photos, key=lambda p: (_int(p.width) * _int(p.height), _int(p.file_size)))
        file_id = _file_id(largest.file_id)
        unique = _file_id(largest.file_unique_id) or file_id[-16:]
        metas.append(
            attachments.describe_remote(
                f"photo_{unique}.jpg", "image/jpeg", _int(largest.file_size), file_id
            )
        )
        files.append(
            {
                "kind": "photo",
                "file_id": file_id,
                "file_unique_id": unique,
                "width": _int(largest.width),
                "height": _int(largest.height),
            }
        )
    for media_kind, media in _media(message):
        if kind in ("text", "start"):
            kind = media_kind
        file_id = _file_id(media.file_id)
        if not file_id:
            log.warning("telegram %s without a file_id: the message is kept without it", media_kind)
            missing += 1
            continue
        if any(f["file_id"] == file_id for f in files):
            continue  # an animation also arrives as a document: describe it once
        unique = _file_id(getattr(media, "file_unique_id", "")) or file_id[-16:]
        filename = _text(getattr(media, "file_name", "")) or _default_name(media_kind, unique)
        content_type = _text(getattr(media, "mime_type", "")) or _guess_type(media_kind, filename)
        metas.append(
            attachments.describe_remote(filename, content_type, _int(media.file_size), file_id)
        )
        files.append({"kind": media_kind, "file_id": file_id, "file_unique_id": unique})
    if message.contact is not None:
        kind = "contact"
        shared = message.contact
        own = shared.user_id is not None and shared.user_id == sender.id
        phone = _phone(_text(shared.phone_number), default_region)
        name = " ".join(p for p in (_text(shared.first_name), _text(shared.last_name)) if p)
        described = ", ".join(p for p in (name, phone or _text(shared.phone_number)) if p)
        text = f"Shared contact: {described}" if not text else f"{text}\n{described}"
        metadata["contact_own"] = own
        if own and phone:
            identities.append(("phone", phone))
        elif own:
            log.info("inbox %s: update %s: the shared phone is not valid", inbox.slug, update_id)
    if message.location is not None and not text:
        kind = "location"
        text = f"Location: {message.location.latitude}, {message.location.longitude}"
    if missing:
        metadata["files_missing"] = missing
    if not text and not metas and not missing:
        return Ignored("a message without text, media or contact (a service message)")
    metadata["kind"] = kind
    if files:
        metadata["files"] = files
    return InboundMessage.create(
        channel=CHANNEL,
        dedup_key=f"{metadata['bot_id']}:{chat.id}:{message.message_id}",
        identities=identities,
        sender_name=_sender_name(sender.first_name, sender.last_name, sender.username),
        text=text,
        thread_key=str(chat.id),
        attachments=metas,
        metadata=metadata,
        source=source,
        default_region=default_region,
        inbox_id=inbox.id,
    )


_MEDIA_KINDS = ("document", "animation", "audio", "voice", "video", "video_note", "sticker")


def _media(message: Message) -> list[tuple[str, Any]]:
    found = []
    for name in ("animation", *(k for k in _MEDIA_KINDS if k != "animation")):
        media = getattr(message, name, None)
        if media is not None:
            found.append((name, media))
    return found


def _default_name(kind: str, unique: str) -> str:
    extension = {
        "animation": ".mp4",
        "audio": ".mp3",
        "voice": ".ogg",
        "video": ".mp4",
        "video_note": ".mp4",
        "sticker": ".webp",
    }.get(kind, "")
    return f"{kind}_{unique}{extension}"


def _guess_type(kind: str, filename: str) -> str:
    guessed = mimetypes.guess_type(filename)[0]
    if guessed:
        return guessed
    return {"voice": "audio/ogg", "video_note": "video/mp4", "sticker": "image/webp"}.get(
        kind, "application/octet-stream"
    )


def _phone(raw: str, default_region: str | None) -> str | None:
    """E.164, or None. Telegram sends its users' numbers in full, often without the '+'."""
    digits = raw.strip()
    if not digits:
        return None
    if not digits.startswith("+"):
        digits = f"+{digits}"
    try:
        return normalise_phone(digits, default_region)
    except InvalidInput:
        return None


def _sender_name(first: Any, last: Any, username: Any) -> str:
    name = " ".join(p for p in (_text(first), _text(last)) if p)
    return name or _text(username)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(value: Any) -> int:
    return value if _is_int(value) and value >= 0 else 0


def _file_id(value: Any) -> str:
    """A usable file id, or "" when there is none. python-telegram-bot turns a JSON `null`
    into the text "None" (it calls `str()`), which no real file id is: that is missing too,
    and a file without an id is left out while the message is kept."""
    if not isinstance(value, str) or value in ("", "None") or len(value) > 512:
        return ""
    return value


# -- files: getFile, then the download -----------------------------------------------------------


async def download_file(client: BotClient, file_id: str, max_bytes: int) -> bytes:
    """One file's bytes: `getFile` for its path, then `GET <base>/file/bot<token>/<path>` (the
    Bot API's wire format, through the same base URL as every other call). `FetchFailed`
    (or `TooLarge`) says why not, without the token."""
    try:
        found = await client.bot.get_file(file_id)
    except TelegramError as error:
        raise FetchFailed(f"getFile failed: {client.scrub(str(error))}") from None
    if _int(found.file_size) > max_bytes:
        raise TooLarge(max_bytes)
    if not found.file_path:
        raise FetchFailed("Telegram gave no file path (the file may be over its 20 MB limit)")
    try:
        data = bytes(await found.download_as_bytearray())
    except (TelegramError, httpx.HTTPError, OSError, RuntimeError) as error:
        raise FetchFailed(f"download failed: {describe_error(error, client.scrub)}") from None
    if len(data) > max_bytes:
        raise TooLarge(max_bytes)
    return data


async def fetch_files(
    message: InboundMessage,
    inbox: InboxConfig,
    options: ChannelOptions,
    store: AttachmentStore,
    client: BotClient | None = None,
) -> InboundMessage:
    """`message` with each file kept at Telegram downloaded into the store, so an operator
    sees the photo and hears the voice message; a file that cannot be downloaded within
    `FETCH_SECONDS` (for the whole message) is marked "not downloaded: <reason>" and the
    message is recorded all the same (the file is fetched again when someone opens it)."""
    pending = [i for i, a in enumerate(message.attachments) if a.reference and not a.stored]
    pending = [i for i in pending if not message.attachments[i].over_limit]
    if not pending:
        return message
    found = list(message.attachments)
    own = client is None
    try:
        client = client or BotClient(inbox, options)
    except InvalidInput as error:
        for i in pending:
            item = found[i]
            found[i] = store.not_downloaded(
                item.filename, item.content_type, item.size, item.reference, error.message
            )
        return replace(message, attachments=tuple(found))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FETCH_SECONDS
    try:
        for i in pending:
            found[i] = await _fetch_one(client, store, found[i], deadline - loop.time())
    finally:
        if own:
            await client.aclose()
    log.info(
        "inbox %s: message %s: %d of %d file(s) downloaded",
        inbox.slug,
        message.dedup_key,
        sum(1 for i in pending if found[i].stored),
        len(pending),
    )
    return replace(message, attachments=tuple(found))


async def _fetch_one(
    client: BotClient, store: AttachmentStore, item: AttachmentMeta, seconds: float
) -> AttachmentMeta:
    if item.size > store.max_bytes:  # Telegram said how large it is: no need to ask
        return store.too_large(item.filename, item.content_type, item.size, item.reference)
    try:
        if seconds <= 0:
            raise TimeoutError
        data = await asyncio.wait_for(
            download_file(client, item.reference, store.max_bytes), seconds
        )
    except TooLarge:
        return store.too_large(item.filename, item.content_type, item.size, item.reference)
    except FetchFailed as error:
        reason = error.reason
    except TimeoutError:
        reason = f"timed out after {FETCH_SECONDS:.0f} s"
    else:
        return await asyncio.to_thread(
            store.fetched, item.reference, data, item.filename, item.content_type
        )
    log.warning("telegram file %s not downloaded: %s", item.filename, reason)
    return store.not_downloaded(item.filename, item.content_type, item.size, item.reference, reason)


# -- the webhook's secret ----------------------------------------------------------------------


def secret_matches(inbox: InboxConfig, given: str | None) -> bool:
    """True when the request carries the inbox's webhook secret (constant-time compare).

    An inbox without a secret accepts no webhook at all: anyone could post updates to it.
    """
    expected = inbox.secret("webhook_secret")
    if not expected or not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def webhook_url(inbox: InboxConfig, options: ChannelOptions) -> str:
    return f"{options.public_url.rstrip('/')}/hooks/telegram/{inbox.slug}"


# -- the Bot API client ------------------------------------------------------------------------

_TOKEN_IN_URL = re.compile(r"/bot\d+(?::|%3A)[A-Za-z0-9_-]+", re.IGNORECASE)


class _RedactBotTokens(logging.Filter):
    """httpx logs every request URL at INFO, and the bot token is part of that URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        redacted = _TOKEN_IN_URL.sub("/bot<token>", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def _install_redaction() -> None:
    for name in ("httpx", "telegram.Bot", "telegram.request"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactBotTokens) for f in logger.filters):
            logger.addFilter(_RedactBotTokens())


_install_redaction()


class TelegramApiError(Exception):
    """A Bot API call of an admin action (setWebhook) failed; the message names why."""


class BotClient:
    """A `telegram.Bot` with its two HTTP clients, bound to the event loop that made it."""

    def __init__(self, inbox: InboxConfig, options: ChannelOptions) -> None:
        token = inbox.secret("bot_token")
        if not token:
            raise InvalidInput("settings.bot_token", "the inbox has no bot token")
        self.token = token
        base = options.telegram_api_url.rstrip("/")
        read_timeout = max(5.0, min(options.send_timeout - 5.0, 20.0))
        self.requests = (
            HTTPXRequest(connection_pool_size=2, read_timeout=10.0, connect_timeout=5.0),
            HTTPXRequest(connection_pool_size=8, read_timeout=read_timeout, connect_timeout=5.0),
        )
        self.bot = Bot(
            token,
            base_url=f"{base}/bot",
            base_file_url=f"{base}/file/bot",
            request=self.requests[1],
            get_updates_request=self.requests[0],
        )
        self.loop = asyncio.get_running_loop()

    def scrub(self, text: str) -> str:
        return text.replace(self.token, "<token>")

    async def raw_updates(self, offset: int | None) -> list[dict[str, Any]]:
        """getUpdates as plain JSON (no long poll), for a batch the library cannot read."""
        payload: dict[str, Any] = {"timeout": 0, "allowed_updates": list(ALLOWED_UPDATES)}
        if offset is not None:
            payload["offset"] = offset
        try:
            async with httpx.AsyncClient(timeout=10.0) as http:
                response = await http.post(f"{self.bot.base_url}/getUpdates", json=payload)
            body = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise NetworkError(f"getUpdates as JSON failed: {type(error).__name__}") from None
        if not isinstance(body, dict) or body.get("ok") is not True:
            described = body.get("description") if isinstance(body, dict) else None
            raise NetworkError(f"getUpdates as JSON failed: {described or response.status_code}")
        result = body.get("result")
        return [u for u in result if isinstance(u, dict)] if isinstance(result, list) else []

    async def aclose(self) -> None:
        await asyncio.gather(*(r.shutdown() for r in self.requests), return_exceptions=True)


async def set_webhook(inbox: InboxConfig, options: ChannelOptions) -> str:
    """Point the bot's webhook at this server (`setWebhook` with the inbox's secret token).

    Returns the URL set. Raises `InvalidInput` when the inbox lacks a valid secret and
    `TelegramApiError` when the Bot API refuses.
    """
    secret = inbox.secret("webhook_secret")
    if not WEBHOOK_SECRET.match(secret):
        raise InvalidInput(
            "settings.webhook_secret", "a webhook secret has 1 to 256 of A-Z, a-z, 0-9, _ and -"
        )
    url = webhook_url(inbox, options)
    client = BotClient(inbox, options)
    try:
        await client.bot.set_webhook(
            url=url, secret_token=secret, allowed_updates=list(ALLOWED_UPDATES)
        )
    except TelegramError as error:
        raise TelegramApiError(f"setWebhook failed: {client.scrub(str(error))}") from None
    finally:
        await client.aclose()
    log.info("inbox %s: webhook set to %s", inbox.slug, url)
    return url


def classify(error: TelegramError, scrub: Callable[[str], str] = str) -> DeliveryError:
    """A Bot API error as the delivery worker needs it: retry, stop, or blocked."""
    reason = scrub(str(error)) or type(error).__name__
    if isinstance(error, RetryAfter):
        return DeliveryError(DeliveryErrorKind.TRANSIENT, reason, _retry_seconds(error))
    if isinstance(error, Forbidden):  # blocked by the user, user deactivated, kicked
        return DeliveryError(DeliveryErrorKind.BLOCKED, reason)
    if isinstance(error, InvalidToken):
        return DeliveryError(
            DeliveryErrorKind.PERMANENT,
            "the Bot API refused the inbox's bot token (wrong or revoked; or "
            "THREADLINE_TELEGRAM_API_URL is not a Bot API server)",
        )
    if isinstance(error, BadRequest | ChatMigrated):  # BadRequest is a NetworkError subclass
        return DeliveryError(DeliveryErrorKind.PERMANENT, reason)
    if isinstance(error, TimedOut | NetworkError):
        return DeliveryError(DeliveryErrorKind.TRANSIENT, reason)
    return DeliveryError(DeliveryErrorKind.PERMANENT, reason)


def _retry_seconds(error: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 deprecates the int form of this attribute
        warnings.simplefilter("ignore")
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def split_text(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Telegram's message limit, respected at line (or word) boundaries where possible."""
    chunks: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit)
        if cut < limit // 2:
            cut = rest.rfind(" ", 0, limit)
        if cut < limit // 2:
            cut = limit
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        chunks.append(rest)
    return chunks


def _plain(html_text: str) -> str:
    without_tags = re.sub(r"<(br|/p|/div|/li)[^>]*>", "\n", html_text, flags=re.IGNORECASE)
    return html.unescape(re.sub(r"<[^>]+>", "", without_tags)).strip()


# -- the adapter -------------------------------------------------------------------------------


@register
class TelegramAdapter(ChannelAdapter):
    channel = CHANNEL
    title = "Telegram bot"
    settings_schema = (
        SettingField(
            "bot_token",
            "Bot token",
            FieldKind.SECRET,
            required=True,
            help="From @BotFather.",
            max_length=200,
            pattern=BOT_TOKEN.pattern,
            pattern_help="a bot token looks like 123456789:AAH... (from @BotFather)",
        ),
        SettingField(
            "webhook_secret",
            "Webhook secret",
            FieldKind.SECRET,
            help="Required in webhook mode: 1-256 characters of A-Z, a-z, 0-9, _ and -. Telegram "
            "sends it with every update; requests without it are refused.",
            max_length=256,
            pattern=WEBHOOK_SECRET.pattern,
            pattern_help="1-256 characters of A-Z, a-z, 0-9, _ and - (what Telegram accepts)",
        ),
        SettingField(
            "mode",
            "Mode",
            default="webhook",
            help="webhook (Telegram posts to /hooks/telegram/<inbox>) or polling (getUpdates, "
            "for a server Telegram cannot reach).",
            choices=("webhook", "polling"),
        ),
        SettingField(
            "bot_username",
            "Bot username",
            help="The bot's @username, for deep links t.me/<bot>?start=<payload>.",
            max_length=33,
            pattern=r"@?[A-Za-z][A-Za-z0-9_]{3,31}",
            pattern_help="a Telegram username: 4-32 letters, digits and _, starting with a letter",
        ),
    )
    conversation_channels = ("telegram",)
    recipient_kind: ClassVar[dict[str, str]] = {"telegram": "telegram"}

    def __init__(self, inbox: InboxConfig, services: ChannelServices) -> None:
        super().__init__(inbox, services)
        self._client: BotClient | None = None

    @property
    def mode(self) -> str:
        mode = str(self.inbox.setting("mode", "webhook")).strip().lower()
        return "polling" if mode == "polling" else "webhook"

    @property
    def offset_key(self) -> str:
        return f"telegram:{self.inbox.slug}:offset"

    def client(self) -> BotClient:
        """The Bot API client of the running loop (httpx connections belong to one loop)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client.loop is not loop:
            self._client = BotClient(self.inbox, self.services.options)
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.loop is asyncio.get_running_loop():
            await client.aclose()

    # -- out ------------------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> str:
        """sendMessage (and sendDocument per attachment); the id is `<chat id>:<message id>`."""
        try:
            chat_id = int(message.recipient)
        except ValueError:
            raise DeliveryError(
                DeliveryErrorKind.PERMANENT, f"{message.recipient!r} is not a Telegram chat id"
            ) from None
        chunks = split_text(message.text or _plain(message.html))
        if not chunks and not message.attachments:
            raise DeliveryError(DeliveryErrorKind.PERMANENT, "the reply has no text to send")
        try:
            client = self.client()
        except InvalidInput as error:
            raise DeliveryError(DeliveryErrorKind.PERMANENT, error.message) from None
        sent: list[int] = []
        try:
            for chunk in chunks:
                reply = await client.bot.send_message(chat_id=chat_id, text=chunk)
                sent.append(reply.message_id)
            for attachment in message.attachments:
                reply = await self._send_document(client, chat_id, attachment)
                sent.append(reply.message_id)
        except TelegramError as error:
            failure = classify(error, client.scrub)
            if sent and failure.kind is DeliveryErrorKind.TRANSIENT:
                # Part of the reply is in the chat already; a retry would repeat that part.
                failure = DeliveryError(
                    DeliveryErrorKind.PERMANENT,
                    f"partly delivered ({len(sent)} part(s) sent), then: {failure.reason}; "
                    "not retried, to avoid sending the first parts twice",
                )
            log.info(
                "inbox %s: message %s to chat %s: %s",
                self.inbox.slug,
                message.message_id,
                chat_id,
                failure,
            )
            raise failure from None
        return f"{chat_id}:{sent[0]}"

    async def _send_document(
        self, client: BotClient, chat_id: int, attachment: dict[str, Any]
    ) -> Message:
        """An attachment kept at Telegram goes by file id; a stored one is uploaded."""
        filename = str(attachment.get("filename") or "attachment")
        reference = str(attachment.get("reference") or "")
        if reference:
            return await client.bot.send_document(chat_id=chat_id, document=reference)
        digest = str(attachment.get("sha256") or "")
        try:
            data = await asyncio.to_thread(self.services.attachments.read, digest)
        except (OSError, ValueError):
            raise DeliveryError(
                DeliveryErrorKind.PERMANENT, f"the attachment {filename} is not stored"
            ) from None
        return await client.bot.send_document(chat_id=chat_id, document=data, filename=filename)

    async def fetch_attachment(self, reference: str) -> bytes:
        """A file id's bytes (a file that was not downloaded when its message arrived)."""
        try:
            client = BotClient(self.inbox, self.services.options)
        except InvalidInput as error:
            raise FetchFailed(error.message) from None
        try:
            return await asyncio.wait_for(
                download_file(client, reference, self.services.attachments.max_bytes),
                FETCH_SECONDS,
            )
        except TimeoutError:
            raise FetchFailed(f"timed out after {FETCH_SECONDS:.0f} s") from None
        finally:
            await client.aclose()

    # -- in (long polling) ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Long polling in polling mode; in webhook mode there is nothing to run.

        The offset moves past an update once it is ingested, ignored, or recorded as
        rejected: any error on one update that says nothing about the database (a
        malformed update, a value the store refuses, a bug) is that update's rejection,
        so one update can never stop the inbox. Only a database that is unavailable keeps
        the offset: the same update is taken again after a pause. Each round is reported
        to `ChannelServices.health` (a success, or the error), so `/healthz` shows a
        poller that keeps failing (getUpdates refused, the database down) as `degraded`.
        """
        if self.mode != "polling":
            return
        slug, health = self.inbox.slug, self.services.health
        try:
            client = self.client()
        except InvalidInput as error:
            log.error("inbox %s: polling needs a bot token", slug)
            health.failed(slug, f"{type(error).__name__}: {error}")
            await stop.wait()
            return
        pause = RETRY_FIRST_SECONDS
        # Telegram refuses getUpdates while a webhook is set.
        while not stop.is_set():
            try:
                await client.bot.delete_webhook(drop_pending_updates=False)
                break
            except TelegramError as error:
                health.failed(slug, describe_error(error, client.scrub, "deleteWebhook failed"))
                log.warning(
                    "inbox %s: deleteWebhook failed (%s); retrying in %.0f s",
                    slug,
                    client.scrub(str(error)),
                    pause,
                )
                if await wait_or_stop(stop, pause):
                    return
                pause = min(pause * 2, RETRY_MAX_SECONDS)
        stored = await asyncio.to_thread(self.services.state.get, self.offset_key)
        offset = int(stored) if stored and stored.lstrip("-").isdigit() else None
        timeout = max(1, int(min(self.services.options.poll_interval, LONG_POLL_SECONDS)))
        log.info("inbox %s: polling Telegram from offset %s", slug, offset)
        pause = RETRY_FIRST_SECONDS
        while not stop.is_set():
            try:
                updates = await _unless_stopped(self._poll(client, offset, timeout), stop)
                if updates is None:
                    return
                for update in updates:
                    update_id = _update_id(update)
                    if update_id is None:
                        log.warning("inbox %s: an update without update_id", slug)
                        continue
                    await self._take(update_id, update, stop)
                    offset = update_id + 1
                    await asyncio.to_thread(self.services.state.set, self.offset_key, str(offset))
                health.succeeded(slug)
                pause = RETRY_FIRST_SECONDS
            except TelegramError as error:
                health.failed(slug, describe_error(error, client.scrub, "getUpdates failed"))
                log.warning(
                    "inbox %s: getUpdates failed (%s); retrying in %.0f s",
                    slug,
                    client.scrub(str(error)),
                    pause,
                )
                if await wait_or_stop(stop, pause):
                    return
                pause = min(pause * 2, RETRY_MAX_SECONDS)
            except Exception as error:
                # The database is unavailable (or the poller is being stopped): the offset
                # stays where it is and the same update is taken again.
                if stop.is_set():
                    return
                health.failed(slug, describe_error(error, client.scrub))
                log.exception("inbox %s: taking an update failed; retrying", slug)
                if await wait_or_stop(stop, pause):
                    return
                pause = min(pause * 2, RETRY_MAX_SECONDS)

    async def _poll(
        self, client: BotClient, offset: int | None, timeout: int
    ) -> list[Update | dict[str, Any]]:
        """One getUpdates long poll, parsed by python-telegram-bot.

        Should the library fail to read a batch (a shape it does not know), the batch is
        fetched again as plain JSON, so the one bad update is rejected on its own instead of
        stopping the inbox at that offset for good.
        """
        try:
            updates = await client.bot.get_updates(
                offset=offset, timeout=timeout, allowed_updates=list(ALLOWED_UPDATES)
            )
            return list(updates)
        except TelegramError:
            raise
        except Exception as error:
            log.warning(
                "inbox %s: python-telegram-bot could not read a batch (%s: %s); reading it as JSON",
                self.inbox.slug,
                type(error).__name__,
                client.scrub(str(error)),
            )
            raw: list[Update | dict[str, Any]] = [*await client.raw_updates(offset)]
            return raw

    async def _take(
        self,
        update_id: int,
        update: Update | dict[str, Any],
        stop: asyncio.Event | None = None,
    ) -> IngestResult | None:
        """Ingest one polled update, or record it as rejected (with the reason); an ignored
        update is logged and passed over. Raises only what must not move the offset."""
        result, reason = await self._ingest(update_id, update, stop)
        if reason:
            await self._reject(update_id, update, reason)
        return result

    async def _ingest(
        self,
        update_id: int,
        update: Update | dict[str, Any],
        stop: asyncio.Event | None,
    ) -> tuple[IngestResult | None, str]:
        """Read and ingest: the result, or None and why the update cannot be taken (no
        reason: the update is ignored, see `Ignored`; any error on this one update is its
        rejection, see `ingest_or_reason`)."""
        options, slug = self.services.options, self.inbox.slug

        async def attempt() -> IngestResult | None:
            if isinstance(update, Update):
                read = read_parsed_update(
                    update, self.inbox, self.services.attachments, options.default_region
                )
            else:
                read = read_update(
                    update, self.inbox, self.services.attachments, options.default_region
                )
            if isinstance(read, Ignored):
                return None
            read = await fetch_files(
                read, self.inbox, options, self.services.attachments, self.client()
            )
            return await self.services.ingest(read)

        what = f"inbox {slug}: update {update_id}"
        result, reason = await ingest_or_reason(attempt, what, stop, log)
        if result is None:
            return None, reason
        log.info(
            "inbox %s: update %s -> message %s%s",
            slug,
            update_id,
            result.message_id,
            " (duplicate)" if result.duplicate else "",
        )
        return result, ""

    async def _reject(self, update_id: int, update: Update | dict[str, Any], reason: str) -> None:
        rejection = update_rejection(self.inbox.slug, update_id, update, reason)
        await asyncio.to_thread(self.services.rejections.add, rejection)

    async def retry(self, rejection: Rejection) -> tuple[RetryOutcome, str, IngestResult | None]:
        """Run a rejected update through ingest again, from the JSON its rejection kept.

        Telegram cannot send an update again (it forgets one once the offset moves past
        it), so an update too large to keep cannot be retried: that is a `Conflict` (409)
        saying so, as is a rejection that is not a Telegram update.
        """
        update_id = rejection.update_id
        if update_id is None:
            raise Conflict("this rejection is not a Telegram update; it cannot be retried here")
        if not rejection.raw:
            raise Conflict(
                f"update {update_id} cannot be retried: Telegram does not send an update "
                f"again, and this one ({rejection.size} characters of JSON) was too large to keep"
            )
        try:
            update = json.loads(rejection.raw)
        except ValueError:
            raise Conflict(f"the kept copy of update {update_id} is not readable JSON") from None
        result, reason = await self._ingest(update_id, update, None)
        if result is None:
            reason = reason or "the update carries nothing this inbox takes (it is ignored)"
            await self._reject(update_id, update, reason)
            return RetryOutcome.REJECTED, reason, None
        return RetryOutcome.INGESTED, "", result


MAX_KEPT_UPDATE = 65536
"""The largest update JSON (characters) a rejection keeps for a retry; the state
database's `MAX_RAW` is the same bound, this one saves sending a larger one there."""


def update_rejection(
    slug: str, update_id: int, update: Update | dict[str, Any], reason: str
) -> Rejection:
    """The rejection record of one update, best effort: it must work on exactly the updates
    that could not be read or ingested, so it never raises. The update's JSON is kept
    (ASCII-escaped, so a lone surrogate survives the database and the retry reads the same
    update) unless it is larger than `MAX_KEPT_UPDATE`."""
    try:
        data = update.to_dict() if isinstance(update, Update) else update
        raw = json.dumps(data, ensure_ascii=True, separators=(",", ":"), default=str)
    except Exception:  # RecursionError, a value to_dict cannot take: keep the summary only
        data, raw = {}, ""
    chat, sender, text = _summary(data)
    return Rejection(
        inbox_slug=slug,
        reason=reason,
        size=len(raw),
        sender=sender,
        update_id=update_id,
        chat=chat,
        text=text,
        raw=raw if len(raw) <= MAX_KEPT_UPDATE else "",
    )


def _summary(data: Any) -> tuple[str, str, str]:
    """The chat id, the sender (name, @username, id) and the start of the text of an update."""
    try:
        message: dict[str, Any] = next(
            (
                data[kind]
                for kind in ("message", "edited_message", "channel_post")
                if isinstance(data.get(kind), dict)
            ),
            {},
        )
        chat = message.get("chat")
        chat_id = chat.get("id") if isinstance(chat, dict) else None
        sender = message.get("from")
        sender = sender if isinstance(sender, dict) else {}
        name = " ".join(
            _text(sender.get(part)) for part in ("first_name", "last_name") if sender.get(part)
        )
        handle = f"@{sender['username']}" if _text(sender.get("username")) else ""
        ident = f"id {sender['id']}" if _is_int(sender.get("id")) else ""
        details = ", ".join(p for p in (handle, ident) if p)
        who = f"{name} ({details})" if name and details else name or details
        text = _text(message.get("text")) or _text(message.get("caption"))
        return (
            str(chat_id) if _is_int(chat_id) else "",
            who[:300],
            " ".join(text.split())[:300],
        )
    except Exception:
        return "", "", ""


def _update_id(update: Update | dict[str, Any]) -> int | None:
    value = update.update_id if isinstance(update, Update) else update.get("update_id")
    return value if _is_int(value) else None


async def _unless_stopped(call: Any, stop: asyncio.Event) -> Any:
    """Await `call` unless `stop` is set first (then cancel it and return None).

    Cancelling a long poll loses nothing: Telegram forgets updates only when a later
    getUpdates confirms them with a higher offset.
    """
    task = asyncio.ensure_future(call)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            return task.result()
        return None
    finally:
        for pending in (task, stopper):
            if not pending.done():
                pending.cancel()
        await asyncio.gather(task, stopper, return_exceptions=True)
