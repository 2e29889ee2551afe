"""One raw e-mail (RFC 5322 bytes) into one `InboundMessage`: pure functions, no I/O but the
attachment store.

Mail in the wild is messy: bodies in koi8-r or windows-1251 or a charset no codec
knows, RFC 2047 encoded words in subjects and names, raw 8-bit headers,
truncated MIME trees. Everything here is forgiving: a part that cannot be
decoded is decoded with replacement characters rather than dropped, and the only
exception that leaves `parse_email` is `Rejected` (for input that cannot be a
message at all, such as one without a usable sender address), so a poller can
record the rejection and move on instead of stalling on one bad message.

Threading follows the headers mail programs write. The message names what it
answers (`reply_to`: In-Reply-To, then References from the newest), and ingest
puts it into the conversation of the first of those the log knows, so a mail
program that writes only In-Reply-To still threads. Otherwise the first entry of
References is the thread's root, so a client's answer to our reply (whose
References start with the client's root) lands in the same conversation.
Without any ids the normalised subject plus the sender is the thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any
from uuid import UUID

from threadline.channels.attachments import AttachmentStore
from threadline.channels.base import Rejected
from threadline.domain.errors import InvalidInput
from threadline.domain.identities import normalise_email
from threadline.domain.inbound import MAX_SUBJECT, MAX_TEXT, AttachmentMeta, InboundMessage

log = logging.getLogger("threadline.channels.email")

CHANNEL = "email"
MAX_HTML = 1_000_000
MAX_PARTS = 500
MAX_DEPTH = 30
MAX_REFERENCES = 20
MAX_ID_LENGTH = 500

_PREFIX = re.compile(
    r"^\s*(?:(?:re|fwd?|aw|wg|sv|vs|antw|tr|rif|отв|ответ|пересл)\s*(?:\[\d+\]|\(\d+\))?\s*[:\uff1a]\s*)+",
    re.IGNORECASE,
)
_MSG_ID = re.compile(r"<[^<>\s]+>")
_BOUNCE_SENDERS = ("mailer-daemon", "postmaster")
_AUTO_PRECEDENCE = {"auto_reply", "bulk", "junk", "list"}


@dataclass
class _Parts:
    """What the walk over the MIME tree collects."""

    text: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[tuple[bytes, str, str]] = field(default_factory=list)
    count: int = 0


def parse_email(
    raw: bytes,
    attachments: AttachmentStore,
    inbox_id: UUID | None,
    default_region: str | None = None,
    fallback_key: str = "",
    *,
    mailbox: str = "",
    folder: str = "",
) -> InboundMessage:
    """Parse one message; raises `Rejected(reason)` and nothing else for bad input.

    `fallback_key` is the dedup key when the message has no Message-ID (the IMAP
    poller passes `imap:<slug>:<uidvalidity>:<uid>`); `mailbox` (the inbox slug)
    and `folder` end up in the message metadata.
    """
    if not isinstance(raw, bytes | bytearray) or not bytes(raw).strip():
        raise Rejected("an empty message")
    raw = bytes(raw)
    try:
        message = BytesParser(policy=policy.default).parsebytes(raw)
        return _build(
            message, raw, attachments, inbox_id, default_region, fallback_key, mailbox, folder
        )
    except Rejected:
        raise
    except InvalidInput as error:
        raise Rejected(f"{error.field}: {error.message}") from None
    except OSError:
        raise  # the attachment store failed: not the message's fault, so not a rejection
    except Exception as error:  # the stdlib parser's surprises on hostile input
        log.debug("unparseable message", exc_info=True)
        raise Rejected(f"unparseable message ({type(error).__name__})") from None


def _build(
    message: EmailMessage,
    raw: bytes,
    store: AttachmentStore,
    inbox_id: UUID | None,
    default_region: str | None,
    fallback_key: str,
    mailbox: str,
    folder: str,
) -> InboundMessage:
    fallback_charset = message.get_content_charset() or "utf-8"
    address, name = _sender(message, fallback_charset)
    subject = _header_text(message, "Subject", fallback_charset)[:MAX_SUBJECT]
    message_id = _first_id(_raw_header(message, "Message-ID"))
    in_reply_to = _first_id(_raw_header(message, "In-Reply-To"))
    references = _ids(_raw_header(message, "References"))
    if message_id and len(message_id) > MAX_ID_LENGTH:
        message_id = ""
    dedup_key = message_id or fallback_key or "sha256:" + hashlib.sha256(raw).hexdigest()
    if references:
        thread_key = references[0]
    elif in_reply_to:
        thread_key = in_reply_to
    elif message_id:
        thread_key = message_id
    else:
        thread_key = f"subject:{normalise_subject(subject)}:{address}"

    parts = _Parts()
    _walk(message, parts, 0)
    text = "\n\n".join(t for t in parts.text if t.strip())
    html = parts.html[0] if parts.html else ""
    truncated = False
    if not text and html:
        text = html_to_text(html)
    if len(text) > MAX_TEXT:
        text, truncated = text[:MAX_TEXT], True
    if len(html) > MAX_HTML:
        html, truncated = html[:MAX_HTML], True

    auto_reason = auto_reply_reason(message)
    bounce = is_bounce(message, address)
    if bounce and auto_reason is None:
        auto_reason = "delivery status notification"
    metadata: dict[str, Any] = {
        "message_id": message_id or None,
        "in_reply_to": in_reply_to or None,
        "references": _trim_references(references),
        "auto_reply": auto_reason is not None,
        "auto_reply_reason": auto_reason,
        "bounce": bounce,
        "date": _date(message),
        "mailbox": mailbox or None,
    }
    if folder:
        metadata["folder"] = folder
    if truncated:
        metadata["truncated"] = True

    # Validate the sender before storing anything: a rejected message leaves no files.
    identities = [("email", address)]
    stored: list[AttachmentMeta] = [
        store.put(data, filename, content_type)
        for data, filename, content_type in parts.attachments
    ]
    return InboundMessage.create(
        channel=CHANNEL,
        dedup_key=dedup_key,
        identities=identities,
        sender_name=name,
        subject=subject,
        text=text,
        html=html,
        thread_key=thread_key,
        attachments=stored,
        metadata=metadata,
        default_region=default_region,
        inbox_id=inbox_id,
        reply_to=[*([in_reply_to] if in_reply_to else []), *reversed(references)],
    )


# -- headers ------------------------------------------------------------------------------


def _raw_header(message: Message, name: str) -> str:
    """The header's raw value (no structured parsing, which can raise on hostile input)."""
    for key, value in message.raw_items():
        if key.lower() == name.lower():
            return str(value)
    return ""


def _header_text(message: EmailMessage, name: str, fallback_charset: str) -> str:
    """A header as text: RFC 2047 words decoded, raw 8-bit bytes decoded as best we can."""
    raw = _raw_header(message, name)
    if not raw:
        return ""
    try:
        value = str(message[name] or "")
    except Exception:
        value = decode_words(raw)
    if _has_surrogates(value) or _has_surrogates(raw):
        value = decode_words(_repair_8bit(raw, fallback_charset))
    return " ".join(value.split())


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words (`=?koi8-r?B?...?=`), tolerating broken ones."""
    try:
        return str(make_header(decode_header(value)))
    except Exception:
        return value


def _has_surrogates(value: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in value)


def _repair_8bit(value: str, charset: str) -> str:
    """Raw 8-bit header bytes (the parser keeps them as surrogates): try UTF-8, then `charset`."""
    data = value.encode("ascii", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return decode_bytes(data, charset)


def _sender(message: EmailMessage, fallback_charset: str) -> tuple[str, str]:
    """The first usable address of From (then Sender) and its display name."""
    for header in ("From", "Sender"):
        raw = _raw_header(message, header)
        if not raw:
            continue
        if _has_surrogates(raw):
            raw = _repair_8bit(raw, fallback_charset)
        for name, address in _addresses(message, header, raw):
            if not address:
                continue
            try:
                return normalise_email(address), " ".join(decode_words(name).split())
            except InvalidInput:
                continue
    raise Rejected("no usable sender address (From)")


def _addresses(message: EmailMessage, header: str, raw: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    try:
        parsed = message[header]
        for item in getattr(parsed, "addresses", ()):
            found.append((item.display_name or "", item.addr_spec or ""))
    except Exception:
        pass
    with contextlib.suppress(Exception):
        found.extend(getaddresses([raw]))
    return found


def _first_id(value: str) -> str:
    ids = _ids(value)
    if ids:
        return ids[0]
    token = value.strip().split()[0] if value.strip() else ""
    if token and len(token) <= MAX_ID_LENGTH and "<" not in token and ">" not in token:
        return f"<{token}>"  # a bare id some mailers write without brackets
    return ""


def _ids(value: str) -> list[str]:
    return [match for match in _MSG_ID.findall(value or "") if len(match) <= MAX_ID_LENGTH]


def _trim_references(references: list[str]) -> list[str]:
    """Keep the root and the most recent ids, as RFC 5322 suggests for long chains."""
    if len(references) <= MAX_REFERENCES:
        return references
    return [references[0], *references[-(MAX_REFERENCES - 1) :]]


def normalise_subject(subject: str) -> str:
    """`Re: RE: Fwd:  Hello` → `hello`: reply and forward prefixes, case and spaces ignored."""
    previous = None
    text = subject
    while previous != text:
        previous = text
        text = _PREFIX.sub("", text)
    return " ".join(text.split()).casefold()


def _date(message: EmailMessage) -> str | None:
    raw = _raw_header(message, "Date")
    if not raw:
        return None
    try:
        parsed = parsedate_to_datetime(raw.strip())
    except Exception:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.isoformat()


# -- auto-replies and bounces ---------------------------------------------------------------


def auto_reply_reason(message: Message) -> str | None:
    """Why this message was sent by a machine (so triggers leave it alone), or None."""
    auto_submitted = _raw_header(message, "Auto-Submitted").strip().lower()
    if auto_submitted and auto_submitted.split(";")[0].strip() != "no":
        return f"Auto-Submitted: {auto_submitted.split(';')[0].strip()}"[:100]
    for name in ("X-Autoreply", "X-Autorespond"):
        if _raw_header(message, name).strip():
            return name
    precedence = _raw_header(message, "Precedence").strip().lower()
    if precedence in _AUTO_PRECEDENCE:
        return f"Precedence: {precedence}"
    suppress = {
        item.strip().lower() for item in _raw_header(message, "X-Auto-Response-Suppress").split(",")
    }
    if suppress & {"all", "oof"}:
        return "X-Auto-Response-Suppress"
    return None


def is_bounce(message: Message, sender: str) -> bool:
    """A delivery status notification: a multipart/report of delivery-status, or the daemon."""
    try:
        if (
            message.get_content_type() == "multipart/report"
            and str(message.get_param("report-type", "")).lower() == "delivery-status"
        ):
            return True
    except Exception:
        pass
    return sender.split("@", 1)[0] in _BOUNCE_SENDERS


# -- bodies and attachments -----------------------------------------------------------------


def _walk(part: Message, found: _Parts, depth: int) -> None:
    """Collect bodies and attachments; attached messages stay whole (as .eml attachments)."""
    found.count += 1
    if found.count > MAX_PARTS or depth > MAX_DEPTH:
        return
    content_type = part.get_content_type()
    maintype = part.get_content_maintype()
    if part.is_multipart() and maintype == "multipart":
        payload = part.get_payload()
        if isinstance(payload, list):
            for child in payload:
                if isinstance(child, Message):
                    _walk(child, found, depth + 1)
        return
    if maintype == "multipart":  # a multipart without a usable boundary: keep it readable
        found.text.append(decode_bytes(_payload_bytes(part), part.get_content_charset() or ""))
        return
    disposition = part.get_content_disposition()
    filename = _filename(part)
    if maintype == "message" or part.is_multipart():
        data = _message_bytes(part)
        default = "message.eml" if content_type == "message/rfc822" else "details.txt"
        found.attachments.append((data, filename or default, content_type))
        return
    data = _payload_bytes(part)
    is_body = (
        content_type in ("text/plain", "text/html") and disposition != "attachment" and not filename
    )
    if is_body:
        charset = part.get_content_charset() or "utf-8"
        decoded = decode_bytes(data, charset)
        (found.text if content_type == "text/plain" else found.html).append(decoded)
        return
    if (
        disposition == "attachment"
        or filename
        or maintype in ("image", "application", "audio", "video")
    ):
        found.attachments.append((data, filename or _default_name(content_type), content_type))
        return
    # Other inline text (text/enriched, text/calendar without a name): keep it readable.
    if maintype == "text":
        found.text.append(decode_bytes(data, part.get_content_charset() or "utf-8"))
    else:
        found.attachments.append((data, _default_name(content_type), content_type))


def _filename(part: Message) -> str:
    try:
        name = part.get_filename() or ""
    except Exception:
        name = ""
    name = decode_words(str(name)) if "=?" in str(name) else str(name)
    if _has_surrogates(name):
        name = _repair_8bit(name, "utf-8")
    return " ".join(name.split())


def _default_name(content_type: str) -> str:
    subtype = content_type.split("/", 1)[-1]
    extension = re.sub(r"[^a-z0-9]", "", subtype.lower())[:10] or "bin"
    return f"attachment.{extension}"


def _payload_bytes(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    return b""


def _message_bytes(part: Message) -> bytes:
    payload = part.get_payload()
    try:
        if isinstance(payload, list):
            return b"\r\n".join(
                p.as_bytes(policy=policy.SMTP) for p in payload if isinstance(p, Message)
            )
        if isinstance(payload, str):
            return payload.encode("utf-8", "surrogateescape")
    except Exception:
        pass
    try:
        return part.as_bytes()
    except Exception:
        return b""


def decode_bytes(data: bytes, charset: str) -> str:
    """Decode with the declared charset; unknown or lying charsets fall back to UTF-8."""
    name = (charset or "utf-8").strip().strip('"').lower()
    if name in ("", "us-ascii", "ascii", "unknown-8bit", "x-unknown", "default"):
        name = "utf-8"
    try:
        return data.decode(name)
    except (LookupError, UnicodeError, ValueError, TypeError):
        pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode(name, errors="replace")
    except (LookupError, ValueError, TypeError):
        return data.decode("utf-8", errors="replace")


class _TextExtractor(HTMLParser):
    """HTML to plain text for the preview and search of HTML-only mail."""

    _BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"}
    _SKIP = {"script", "style", "head", "title"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skipping += 1
        elif tag in self._BLOCKS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self._BLOCKS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.chunks.append(data)


def html_to_text(html: str) -> str:
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except Exception:
        return ""
    lines = (" ".join(line.split()) for line in "".join(parser.chunks).splitlines())
    return "\n".join(line for line in lines if line)
