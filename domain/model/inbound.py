"""The normalised inbound message every channel produces, and what its ingestion answers.

Channels differ in everything but this: a sender with some identities, a
provider dedup key, a thread, a body. `threadline.domain.commands.ingest` turns one such message
into events: the contact is found by any identity it carries (or created as a
lead with this message's source as its first touch), the conversation is found by thread (or
started, or reopened), and the message is appended under an id derived from
the channel and dedup key, so a second delivery is reported as a duplicate.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field, replace
from typing import Any
from uuid import UUID

from threadline.domain.model.contact import clean_source
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.html import sanitise_html
from threadline.domain.model.identities import Identity, normalise_identity
from threadline.domain.model.inbox import clean_slug
from threadline.domain.model.message import inbound_message_id

MAX_TEXT = 200_000
MAX_SUBJECT = 998
DEFAULT_THREAD = "default"
MAX_REPLY_TO = 20
MAX_CONSENTS = 10


@dataclass(frozen=True, slots=True)
class AttachmentMeta:
    """What the log knows of an attachment: the content itself is stored by hash elsewhere."""

    filename: str
    content_type: str
    size: int
    sha256: str
    stored: bool = True
    over_limit: bool = False
    reference: str = ""  # where an attachment kept at the provider is (a Telegram file id)
    # Why the bytes are not here when a download from the provider failed ("" otherwise):
    # the message is recorded all the same, and the file is fetched again when opened.
    error: str = ""

    def public(self) -> dict[str, Any]:
        described: dict[str, Any] = {
            "content_type": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
            "stored": self.stored,
            "over_limit": self.over_limit,
        }
        if self.reference:
            described["reference"] = self.reference
        if self.error:
            described["error"] = self.error
        return described


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One provider input, normalised; build it with `InboundMessage.create`."""

    channel: str
    dedup_key: str
    identities: tuple[Identity, ...]
    sender_name: str = ""
    subject: str = ""
    text: str = ""
    html: str = ""
    thread_key: str = DEFAULT_THREAD
    attachments: tuple[AttachmentMeta, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    # The inquiry's attribution, cleaned (`clean_source`): always the channel, plus what the
    # channel knows (a web form's slug, utm_* and referrer; a Telegram deep link's tags).
    # The message keeps it, and a contact created by this message takes it as first touch.
    source: dict[str, Any] = field(default_factory=dict)
    correlation_id: str = ""
    inbox_id: UUID | None = None
    # Provider ids of the messages this one answers, nearest first (e-mail: In-Reply-To,
    # then References from the newest): a reply joins the conversation of the first
    # of them the log knows, whatever thread key its own headers would give.
    reply_to: tuple[str, ...] = ()
    # The purposes whose consent box the client ticked (a web form's); recorded on the
    # contact with the message, in the version of the policy's text in force.
    consents: tuple[str, ...] = ()

    @property
    def message_id(self) -> UUID:
        message_id: UUID = inbound_message_id(self.channel, self.dedup_key)
        return message_id

    @classmethod
    def create(
        cls,
        *,
        channel: str,
        dedup_key: str,
        identities: Iterable[tuple[str, str | int]],
        sender_name: str = "",
        subject: str = "",
        text: str = "",
        html: str = "",
        thread_key: str | None = None,
        attachments: Iterable[AttachmentMeta] = (),
        metadata: dict[str, Any] | None = None,
        source: dict[str, Any] | None = None,
        correlation_id: str = "",
        default_region: str | None = None,
        inbox_id: UUID | None = None,
        reply_to: Iterable[str] = (),
        consents: Iterable[str] = (),
    ) -> InboundMessage:
        """Validate and normalise; raises `InvalidInput` naming the offending field."""
        # The last line of defence: no channel may hand the store a string UTF-8 cannot hold.
        channel, dedup_key, sender_name, subject = storable(
            (channel, dedup_key, sender_name, subject)
        )
        text, html, correlation_id = storable((text, html, correlation_id))
        thread_key = storable(thread_key)
        identities = [(kind, storable(raw)) for kind, raw in identities]
        metadata, source = storable(metadata), storable(source)
        reply_to = storable(tuple(reply_to))
        attachments = [
            replace(
                item,
                filename=storable(item.filename),
                content_type=storable(item.content_type),
                reference=storable(item.reference),
                error=storable(item.error)[:500],
            )
            for item in attachments
        ]
        if not channel or len(channel) > 32:
            raise InvalidInput("channel", "a channel name has 1 to 32 characters")
        if not dedup_key or len(dedup_key) > 512:
            raise InvalidInput("external_id", "a dedup key has 1 to 512 characters")
        normalised: list[Identity] = []
        for kind, raw in identities:
            if raw in (None, ""):
                continue
            # A sender's number is kept even when libphonenumber does not know it (a new range,
            # a short code): the message must not be lost for the library's lack of data.
            identity = normalise_identity(kind, raw, default_region, strict_phone=False)
            if identity not in normalised:
                normalised.append(identity)
        if not normalised:
            raise InvalidInput(
                "from", "the sender needs an email, a phone, a Telegram id or a visitor id"
            )
        if len(text) > MAX_TEXT:
            raise InvalidInput("text", f"text is limited to {MAX_TEXT} characters")
        if len(subject) > MAX_SUBJECT:
            raise InvalidInput("subject", f"a subject is limited to {MAX_SUBJECT} characters")
        return cls(
            channel=channel,
            dedup_key=dedup_key,
            identities=tuple(normalised),
            sender_name=" ".join(sender_name.split())[:200],
            subject=subject.strip(),
            text=text,
            html=sanitise_html(html),
            thread_key=(thread_key or DEFAULT_THREAD)[:512],
            attachments=tuple(attachments),
            metadata=dict(metadata or {}),
            source=clean_source({"channel": channel, **(source or {})}),
            correlation_id=correlation_id,
            inbox_id=inbox_id,
            reply_to=tuple(dict.fromkeys(r for r in reply_to if r and len(r) <= 998))[
                :MAX_REPLY_TO
            ],
            consents=_purposes(consents),
        )

    def replied_message_ids(self) -> list[UUID]:
        """The ids the `reply_to` provider ids may have in the log, nearest first.

        A message received on this channel has the id its dedup key gives; a reply
        Threadline sent carries its own message id as the local part of the
        Message-ID it was sent with (``<uuid@domain>``).
        """
        ids: list[UUID] = []
        for provider_id in self.reply_to:
            ids.append(inbound_message_id(self.channel, provider_id))
            local = provider_id.strip("<>").split("@", 1)[0]
            with suppress(ValueError):  # not one of ours
                ids.append(UUID(local))
        return list(dict.fromkeys(ids))


_SURROGATE = re.compile("[\ud800-\udfff]")
MAX_NESTING = 100


def without_surrogates(text: str) -> str:
    """`text` with every lone surrogate (a byte Python could not decode, or a JSON escape
    like `\\ud800`) replaced by U+FFFD: what UTF-8, and so the store, can encode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def storable(value: Any, depth: int = 0) -> Any:
    """`value` with every lone surrogate replaced by U+FFFD, through dicts, lists and tuples.

    A lone surrogate is what Python leaves for a byte it could not decode; the
    store encodes events as UTF-8, which refuses it, so one such character
    would make a message impossible to append (and a poller retry it forever).
    """
    if isinstance(value, str):
        return without_surrogates(value)
    if depth > MAX_NESTING and isinstance(value, dict | list | tuple):
        raise InvalidInput("metadata", f"nested more than {MAX_NESTING} levels deep")
    if isinstance(value, dict):
        return {storable(k, depth + 1): storable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(item, depth + 1) for item in value]
    if isinstance(value, tuple):
        return tuple(storable(item, depth + 1) for item in value)
    return value


@dataclass(frozen=True, slots=True)
class IngestResult:
    message_id: UUID
    contact_id: UUID
    conversation_id: UUID
    duplicate: bool
    contact_created: bool = False


def _purposes(consents: Iterable[str]) -> tuple[str, ...]:
    """The consents' purposes as slugs (`InvalidInput` for one that is not)."""
    purposes: list[str] = []
    for purpose in consents:
        try:
            slug = clean_slug(str(purpose))
        except InvalidInput:
            raise InvalidInput("consents", f"{str(purpose)[:40]!r} is not a purpose") from None
        if slug not in purposes:
            purposes.append(slug)
    if len(purposes) > MAX_CONSENTS:
        raise InvalidInput("consents", f"at most {MAX_CONSENTS} consents in one message")
    return tuple(purposes)
