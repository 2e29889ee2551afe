"""The one small surface every channel offers, so that adding a channel touches one file.

A channel module defines a `ChannelAdapter` subclass and registers it with
`@register`. The adapter describes its settings (the API and the web app turn
that description into the inbox configuration form and use it to redact
secrets), turns provider input into `InboundMessage`s (webhooks call the
module's own parse functions, pollers run in `run`), and delivers one
`OutboundMessage` in `send`, returning the provider's id or raising a
classified `DeliveryError`.

Channels import `threadline.domain` only; what they need from the running
process (ingestion, durable state, attachment storage, provider base URLs)
arrives in `ChannelServices`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Protocol
from uuid import UUID

from threadline.channels.attachments import AttachmentStore, FetchFailed
from threadline.domain.infrastructure.store_access import CONNECTION_ERRORS
from threadline.domain.model.errors import Conflict, InvalidInput
from threadline.domain.model.inbound import InboundMessage, IngestResult


class FieldKind(StrEnum):
    TEXT = "text"
    SECRET = "secret"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    URL = "url"
    EMAIL = "email"
    PHONE = "phone"
    LIST = "list"


# What a field accepts when it says nothing else: short single-line text, a 32-bit integer.
DEFAULT_MAX_LENGTH = 500
DEFAULT_INTEGER_RANGE = (-(2**31), 2**31 - 1)


@dataclass(frozen=True, slots=True)
class SettingField:
    """One field of an inbox's configuration form; `SECRET` fields never leave the server.

    The constraints are checked when an inbox is saved (`validate_setting`), so a
    value the provider would refuse, or one that would hurt the server (a ring time
    of 10^30, a file path anywhere on disk), is a 422 naming the field instead of a
    failure much later: `minimum`/`maximum` bound an `INTEGER`; `max_length`, `pattern`
    (a full match, explained by `pattern_help`) and `choices` constrain text and secrets;
    `check` is a channel's own test (it returns the cleaned value or raises `ValueError`
    with the reason).
    """

    name: str
    label: str
    kind: FieldKind = FieldKind.TEXT
    required: bool = False
    default: Any = None
    help: str = ""
    minimum: int | None = None
    maximum: int | None = None
    max_length: int = DEFAULT_MAX_LENGTH
    pattern: str = ""
    pattern_help: str = ""
    choices: tuple[str, ...] = ()
    check: Callable[[str], str] | None = field(default=None, compare=False, repr=False)

    @property
    def secret(self) -> bool:
        return self.kind is FieldKind.SECRET

    @property
    def bounds(self) -> tuple[int, int]:
        """The inclusive range of an `INTEGER` field."""
        low, high = DEFAULT_INTEGER_RANGE
        return (
            low if self.minimum is None else self.minimum,
            high if self.maximum is None else self.maximum,
        )

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "kind": self.kind.value,
            "required": self.required,
            "default": self.default,
            "help": self.help,
        }
        if self.kind is FieldKind.INTEGER:
            described["minimum"], described["maximum"] = self.bounds
        elif self.kind is not FieldKind.BOOLEAN:
            described["max_length"] = self.max_length
        if self.pattern:
            described["pattern"] = self.pattern
        if self.choices:
            described["choices"] = list(self.choices)
        return described


@dataclass(frozen=True)
class InboxConfig:
    """One configured inbox as a channel sees it: plain settings plus resolved secrets."""

    id: UUID
    slug: str
    channel: str
    name: str
    settings: dict[str, Any]
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    enabled: bool = True

    def setting(self, name: str, default: Any = None) -> Any:
        value = self.settings.get(name)
        return default if value in (None, "") else value

    def secret(self, name: str) -> str:
        return self.secrets.get(name, "")


class DeliveryErrorKind(StrEnum):
    TRANSIENT = "transient"  # try again later (network, 5xx, rate limit)
    PERMANENT = "permanent"  # the provider refused this message for good
    BLOCKED = "blocked"  # the recipient blocked us or unsubscribed at the provider


class DeliveryError(Exception):
    """A send that did not happen, classified so the worker knows whether to retry.

    `reason` is the technical detail (for admins and logs); `problem`, when the channel
    knows it, is the plain reason (a `DeliveryProblem` value) shown to operators;
    without it the worker reads it from the exception chain (`problems.problem_of`).
    """

    def __init__(
        self,
        kind: DeliveryErrorKind,
        reason: str,
        retry_after: float | None = None,
        problem: str = "",
    ):
        super().__init__(f"{kind.value}: {reason}")
        self.kind = kind
        self.reason = reason
        self.retry_after = retry_after
        self.problem = problem

    @property
    def permanent(self) -> bool:
        return self.kind is not DeliveryErrorKind.TRANSIENT


class ProviderStatus(StrEnum):
    """Where an outbound message stands at its provider, in the provider's own terms."""

    QUEUED = "queued"  # the provider took it and will send it (Twilio's queued/accepted)
    SENT = "sent"  # handed on: an SMTP server accepted it, the Bot API put it in the chat
    DELIVERED = "delivered"  # the provider reported it reached the recipient's device


@dataclass(frozen=True)
class Sent:
    """What `send` returns when the provider's answer says more than "accepted": its id and
    how far the message got (`queued` at Twilio). A plain `str` return means `sent`."""

    provider_id: str
    status: ProviderStatus = ProviderStatus.SENT


class Rejected(Exception):
    """Provider input that cannot become a message; the caller answers `status_code`, logs
    `reason`, and (for pollers) records the rejection so the input is not fetched again."""

    def __init__(self, reason: str, status_code: int = 422) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code


@dataclass(frozen=True)
class OutboundMessage:
    """One reply to deliver, with everything the provider needs and nothing it does not."""

    message_id: UUID
    conversation_id: UUID
    contact_id: UUID
    channel: str  # the conversation channel: email, telegram, sms, whatsapp, voice, web, api
    recipient: str  # the identity value: an address, an E.164 phone, a Telegram chat id
    recipient_name: str = ""
    subject: str = ""
    own_subject: bool = False  # the message's own subject (a template's), not the thread's
    text: str = ""
    html: str = ""
    thread_key: str = ""
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    attachments: tuple[dict[str, Any], ...] = ()
    attempt: int = 1


class StateStore(Protocol):
    """Durable key/value state for pollers (an IMAP UID, a Telegram offset)."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str) -> None: ...


@dataclass(frozen=True)
class Rejection:
    """One polled message refused for good (unreadable, or its ingest failed for a reason a
    retry would not cure): recorded so the poller's cursor can move past it and an admin
    can see it and retry it.

    An IMAP message is found at the provider again by `folder`, `uidvalidity` and `uid`.
    A Telegram update cannot be fetched again (Telegram forgets it once the offset moves
    past it), so it has an `update_id` instead, and the update itself is kept in `raw`
    (its JSON, empty when it was too large to keep) for a retry to read; `chat` and
    `text` (the start of the message's text) tell an admin which message it was.
    A webhook request (Twilio's) cannot be fetched again either: `key` is the provider's
    id for it (a MessageSid or CallSid), `chat` the hook it came to and `raw` the request.
    """

    inbox_slug: str
    folder: str = ""
    uidvalidity: int = 0
    uid: int = 0
    reason: str = ""
    size: int = 0
    message_id: str = ""
    subject: str = ""
    sender: str = ""
    update_id: int | None = None
    chat: str = ""
    text: str = ""
    raw: str = field(default="", repr=False)
    key: str = ""


TRANSIENT_INGEST_ERRORS: tuple[type[BaseException], ...] = (
    *CONNECTION_ERRORS,
    TimeoutError,
    Conflict,
)
"""Ingest errors that say nothing about the message (the database is down or busy, the
writer timed out or lost a race): a poller keeps its cursor and tries the same message
again, instead of recording it as rejected."""


class RetryOutcome(StrEnum):
    INGESTED = "ingested"  # the message is in the log now (or was already: a duplicate)
    REJECTED = "rejected"  # refused again; the rejection holds the new reason
    GONE = "gone"  # no longer at the provider (deleted, or the folder was renumbered)


class RejectionLog(Protocol):
    """Where a poller records what it skipped; the services layer keeps it in a table."""

    def add(self, rejection: Rejection) -> None: ...


class PollerReport(Protocol):
    """Where a poller says it got through a round, so `/healthz` tells stuck from quiet, and
    (a poller that retries on its own instead of crashing, such as Telegram's) that a round
    failed, so `/healthz` tells a poller that keeps failing from one that is waiting."""

    def succeeded(self, slug: str) -> None: ...

    def failed(self, slug: str, error: str) -> None: ...


class _Unrecorded:
    """The default rejection log and poller report: keeps nothing (for parser unit tests)."""

    def add(self, rejection: Rejection) -> None:
        return None

    def succeeded(self, slug: str) -> None:
        return None

    def failed(self, slug: str, error: str) -> None:
        return None


@dataclass(frozen=True)
class ChannelOptions:
    """Process-wide channel settings, read from `THREADLINE_*` by the services layer."""

    public_url: str = "http://127.0.0.1:8000"
    telegram_api_url: str = "https://api.telegram.org"
    twilio_api_url: str = "https://api.twilio.com"
    default_region: str | None = None
    poll_interval: float = 30.0
    send_timeout: float = 30.0


@dataclass
class ChannelServices:
    """What a channel may use from the running process."""

    ingest: Callable[[InboundMessage], Awaitable[IngestResult]]
    state: StateStore
    attachments: AttachmentStore
    options: ChannelOptions = field(default_factory=ChannelOptions)
    extra: dict[str, Any] = field(default_factory=dict)
    rejections: RejectionLog = field(default_factory=_Unrecorded)
    health: PollerReport = field(default_factory=_Unrecorded)


class ChannelAdapter:
    """Base of every channel; subclasses set the class attributes and override what they do.

    `conversation_channels` names the conversation channels the inbox serves (a
    Twilio inbox serves `sms`, `whatsapp` and `voice`); `recipient_kind` maps each
    to the identity kind a reply is addressed to.
    """

    channel: ClassVar[str] = ""
    title: ClassVar[str] = ""
    settings_schema: ClassVar[tuple[SettingField, ...]] = ()
    conversation_channels: ClassVar[tuple[str, ...]] = ()
    recipient_kind: ClassVar[dict[str, str]] = {}
    can_send: ClassVar[bool] = True

    def __init__(self, inbox: InboxConfig, services: ChannelServices) -> None:
        self.inbox = inbox
        self.services = services

    @classmethod
    def secret_fields(cls) -> set[str]:
        return {f.name for f in cls.settings_schema if f.secret}

    async def send(self, message: OutboundMessage) -> str | Sent:
        """Deliver one message; return the provider's id (or a `Sent` saying how far it got)
        or raise `DeliveryError`."""
        raise DeliveryError(
            DeliveryErrorKind.PERMANENT, f"the {self.channel} channel cannot send messages"
        )

    async def run(self, stop: asyncio.Event) -> None:
        """A poller's loop (IMAP, Telegram long polling); webhook-only channels return at once."""
        return None

    async def aclose(self) -> None:
        """Release connections; called when the inbox is reconfigured or the process stops."""
        return None

    async def retry(self, rejection: Rejection) -> tuple[RetryOutcome, str, IngestResult | None]:
        """Fetch a rejected message again and ingest it: the outcome, a reason when it is not
        ingested, and the ingest result when it is. Only pollers that record rejections can."""
        raise NotImplementedError(f"the {self.channel} channel cannot fetch a message again")

    async def fetch_attachment(self, reference: str) -> bytes:
        """Download a file kept at the provider (a Telegram file id, a Twilio media URL) that
        was not downloaded when its message arrived; `FetchFailed` says why not. Only
        channels whose messages carry such references can."""
        raise FetchFailed(f"the {self.channel} channel keeps no files at a provider")


ADAPTERS: dict[str, type[ChannelAdapter]] = {}


def describe_error(error: BaseException, scrub: Callable[[str], str] = str, doing: str = "") -> str:
    """`Kind: what failed: the error`, as rejections, logs and `/healthz` show it (an
    anonymous `/healthz` caller sees only the kind, the text before the first colon).
    `scrub` removes what must not be shown (a bot token in a URL)."""
    text = scrub(str(error)).strip()
    parts = [part for part in (doing, text) if part]
    return f"{type(error).__name__}: {': '.join(parts)}" if parts else type(error).__name__


async def ingest_or_reason(
    attempt: Callable[[], Awaitable[IngestResult | None]],
    what: str,
    stop: asyncio.Event | None,
    log: logging.Logger,
) -> tuple[IngestResult | None, str]:
    """Run one polled message's read-and-ingest: the result, or None and why it cannot be
    taken (None and no reason: `attempt` found nothing to take, the input is ignored).

    Any error on one message is that message's rejection (a parser gap, a value the store
    refuses, a bug), so one message can never stop a poller. Except errors that say
    nothing about the message (`TRANSIENT_INGEST_ERRORS`: the database is unavailable, the
    writer timed out or lost a race) and anything while the poller is being stopped (the
    writer may be closing): those are raised, and the cursor or offset stays.
    """
    try:
        return await attempt(), ""
    except (Rejected, InvalidInput) as error:
        reason = error.reason if isinstance(error, Rejected) else str(error)
        log.warning("%s rejected: %s", what, reason)
        return None, reason or "rejected"
    except TRANSIENT_INGEST_ERRORS:
        raise
    except Exception as error:
        if stop is not None and stop.is_set():
            raise
        log.exception("%s failed unexpectedly; recorded as rejected", what)
        return None, f"unexpected error: {describe_error(error)}"


def register(adapter: type[ChannelAdapter]) -> type[ChannelAdapter]:
    """Class decorator: make an adapter known under its `channel` name."""
    if not adapter.channel:
        raise ValueError(f"{adapter.__name__} has no channel name")
    ADAPTERS[adapter.channel] = adapter
    return adapter


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`, waking at once when `stop` is set; True if it was set."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True
