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
Without any ids the normalised subject plus the sender is the thread. A bounce
(see `email_bounce`) threads on the message it returns.

Decoding (`email_charsets`) never leaves undecodable bytes behind: every string
that leaves here can be encoded as UTF-8.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from html import escape
from html.parser import HTMLParser
from typing import Any
from uuid import UUID

from threadline.channels.attachments import AttachmentStore
from threadline.channels.base import Rejected
from threadline.channels.email_bounce import BounceReport, is_bounce, raw_header, read_bounce
from threadline.channels.email_charsets import decode_bytes, header_text
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.identities import normalise_email
from threadline.domain.model.inbound import (
    MAX_SUBJECT,
    MAX_TEXT,
    AttachmentMeta,
    InboundMessage,
    without_surrogates,
)

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
_FORWARDED = ("message/rfc822", "message/global")
FORWARDED_LINE = "---------- Forwarded message ----------"
_AUTO_PRECEDENCE = {"auto_reply", "bulk", "junk", "list"}


@dataclass
class _Parts:
    """What the walk over the MIME tree collects."""

    text: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[tuple[bytes, str, str]] = field(default_factory=list)
    forwarded_html: list[str] = field(default_factory=list)
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

    The dedup key is the Message-ID, else a hash of the content (`content_key`).
    `fallback_key` (the IMAP poller passes `imap:<slug>:<uidvalidity>:<uid>`) is
    no longer used for it: a UID changes when the server renumbers the folder
    (a new UIDVALIDITY), so such a key would ingest the same message again.
    `mailbox` (the inbox slug) and `folder` end up in the message metadata.
    """
    if not isinstance(raw, bytes | bytearray) or not bytes(raw).strip():
        raise Rejected("an empty message")
    raw = bytes(raw)
    try:
        message = BytesParser(policy=policy.default).parsebytes(raw)
        return _build(message, raw, attachments, inbox_id, default_region, mailbox, folder)
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
    mailbox: str,
    folder: str,
) -> InboundMessage:
    hint = _charset(message)  # raw 8-bit headers are most likely in the body's charset
    address, name = _sender(message, hint)
    subject = header_text(_raw_header(message, "Subject", hint), hint)[:MAX_SUBJECT]
    message_id = _first_id(_raw_header(message, "Message-ID", hint))
    in_reply_to = _first_id(_raw_header(message, "In-Reply-To", hint))
    references = _ids(_raw_header(message, "References", hint))
    if message_id and len(message_id) > MAX_ID_LENGTH:
        message_id = ""
    # Without a Message-ID the content is the key: an IMAP UID changes with UIDVALIDITY.
    dedup_key = message_id or content_key(raw)

    auto_reason = auto_reply_reason(message)
    bounce = is_bounce(message, address, name)
    report = _read_bounce(message, hint) if bounce else BounceReport()
    if bounce:
        auto_reason = auto_reason or "delivery status notification"
        if report.original_id and report.original_id not in (in_reply_to, *references):
            in_reply_to = in_reply_to or report.original_id
            references = [*references, report.original_id]
        if report.failed_recipients:
            # Filed under the recipient it failed for, in the conversation of the message
            # that failed; no name, so the client's card is never renamed after a mail server.
            address, name = report.failed_recipients[0], ""
        elif not address:
            address = report.daemon_address()
    if not address:
        raise Rejected("no usable sender address (From)")

    if report.original_id:
        thread_key = report.original_id
    elif references:
        thread_key = references[0]
    elif in_reply_to:
        thread_key = in_reply_to
    elif message_id:
        thread_key = message_id
    else:
        thread_key = f"subject:{normalise_subject(subject)}:{address}"

    parts = _Parts()
    _walk(message, parts, 0, hint, in_report=message.get_content_type() == "multipart/report")
    text = "\n\n".join(t for t in parts.text if t.strip())
    html = parts.html[0] if parts.html else ""
    if html and parts.forwarded_html:
        html += "".join(parts.forwarded_html)
    truncated = False
    if not text and html:
        text = html_to_text(html)
    if len(text) > MAX_TEXT:
        text, truncated = text[:MAX_TEXT], True
    if len(html) > MAX_HTML:
        html, truncated = html[:MAX_HTML], True

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
    if bounce:
        metadata["bounced_message_id"] = report.original_id or None
        metadata["delivery_status"] = report.action or None
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


def content_key(raw: bytes) -> str:
    """The dedup key of a message without a Message-ID: a hash of its bytes.

    Line endings and trailing blank space are left out, so the same message read
    over IMAP (CRLF) or from a file (LF) gives the same key.
    """
    canonical = raw.replace(b"\r\n", b"\n").rstrip()
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def _read_bounce(message: EmailMessage, hint: str | None) -> BounceReport:
    try:
        return read_bounce(message, hint)
    except Exception:  # a malformed report is still a bounce, just one that says less
        log.debug("unreadable delivery report", exc_info=True)
        return BounceReport()


# -- headers ------------------------------------------------------------------------------


def _raw_header(message: Message, name: str, hint: str | None = None) -> str:
    """The header's value (no structured parsing, which can raise on hostile input), as clean
    text: unfolded, raw 8-bit bytes decoded (UTF-8, then `hint`, then a guess)."""
    return str(raw_header(message, name, hint))


def _charset(part: Message) -> str | None:
    try:
        return part.get_content_charset()
    except Exception:
        return None


def _sender(message: EmailMessage, hint: str | None) -> tuple[str, str]:
    """The first usable address of From (then Sender) and its display name; ("", name) if none.

    `addr (Full Name)`, the old comment form, gives the name from the comment.
    """
    name_seen = ""
    for header in ("From", "Sender"):
        raw = _raw_header(message, header, hint)
        if not raw:
            continue
        for name, address in _addresses(message, header, raw):
            name = header_text(name, hint)
            name_seen = name_seen or name
            if not address:
                continue
            try:
                return normalise_email(address), name
            except InvalidInput:
                continue
    return "", name_seen


def _addresses(message: EmailMessage, header: str, raw: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    with contextlib.suppress(Exception):
        found.extend(getaddresses([raw]))
    try:  # the structured parser copes with a few forms getaddresses does not
        parsed = message[header]
        for item in getattr(parsed, "addresses", ()):
            found.append((item.display_name or "", item.addr_spec or ""))
    except Exception:
        pass
    return [(without_surrogates(name), without_surrogates(address)) for name, address in found]


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


# -- bodies and attachments -----------------------------------------------------------------


def _walk(part: Message, found: _Parts, depth: int, hint: str | None, in_report: bool) -> None:
    """Collect bodies and attachments, showing what mail programs show.

    A text part is shown unless it is marked `attachment`; one with a file name
    is kept as an attachment too. An attached message (a forward) is kept whole
    as an .eml attachment and its text is shown after ours, under the header
    summary mail programs write; the message a bounce returns is not shown.
    """
    found.count += 1
    if found.count > MAX_PARTS or depth > MAX_DEPTH:
        return
    content_type = part.get_content_type()
    maintype = part.get_content_maintype()
    if part.is_multipart() and maintype == "multipart":
        payload = part.get_payload()
        report = in_report or content_type == "multipart/report"
        if isinstance(payload, list):
            for child in payload:
                if isinstance(child, Message):
                    _walk(child, found, depth + 1, hint, report)
        return
    charset = _charset(part) or hint
    if maintype == "multipart":  # a multipart without a usable boundary: keep it readable
        found.text.append(decode_bytes(_payload_bytes(part), charset, hint))
        return
    disposition = _disposition(part)
    filename = _filename(part, hint)
    if maintype == "message" or part.is_multipart():
        data = _message_bytes(part)
        default = "message.eml" if content_type == "message/rfc822" else "details.txt"
        found.attachments.append((data, filename or default, content_type))
        if content_type in _FORWARDED and not in_report:
            _forwarded(part, found, depth, hint)
        return
    data = _payload_bytes(part)
    if content_type in ("text/plain", "text/html") and disposition != "attachment":
        decoded = decode_bytes(data, charset, hint)
        (found.text if content_type == "text/plain" else found.html).append(decoded)
        if filename:
            found.attachments.append((data, filename, content_type))
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
        found.text.append(decode_bytes(data, charset, hint))
    else:
        found.attachments.append((data, _default_name(content_type), content_type))


def _forwarded(part: Message, found: _Parts, depth: int, hint: str | None) -> None:
    """The text of an attached message, as "Forwarded message" with From, Date, Subject, To."""
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    if not isinstance(inner, Message):
        return
    inner_hint = _charset(inner) or hint
    sub = _Parts(count=found.count)
    _walk(inner, sub, depth + 1, inner_hint, in_report=False)
    found.count = sub.count
    summary = [FORWARDED_LINE]
    for name in ("From", "Date", "Subject", "To"):
        value = header_text(_raw_header(inner, name, inner_hint), inner_hint)
        if value:
            summary.append(f"{name}: {value}")
    body = "\n\n".join(t for t in sub.text if t.strip())
    if not body and sub.html:
        body = html_to_text(sub.html[0])
    found.text.append("\n".join(summary) + "\n\n" + body)
    quoted = sub.html[0] if sub.html else f"<pre>{escape(body)}</pre>"
    heading = "<br>".join(escape(line) for line in summary)
    found.forwarded_html.append(f"<hr><p>{heading}</p><blockquote>{quoted}</blockquote>")
    found.forwarded_html.extend(sub.forwarded_html)
    found.attachments.extend(sub.attachments)


def _disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:
        return None


def _filename(part: Message, hint: str | None) -> str:
    """The file name, decoded like a header (RFC 2231, RFC 2047 words, raw 8-bit bytes).

    Read from the raw header: the stdlib's own decoding has already replaced
    bytes of a wrong or missing charset by the time it returns.
    """
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        raw = next((str(v) for k, v in part.raw_items() if k.lower() == header), "")
        if not raw:
            continue
        legacy = Message()  # compat32, given the bytes as latin-1 text: nothing is lost
        legacy[header] = raw.encode("utf-8", "surrogateescape").decode("latin-1")
        try:
            value = legacy.get_param(param, header=header)
        except Exception:
            continue
        if isinstance(value, tuple):  # RFC 2231: (charset, language, bytes as latin-1 text)
            charset, _, text = value
            data = str(text).encode("latin-1", "replace")
            name = decode_bytes(data, str(charset or ""), hint)
        elif isinstance(value, str):
            name = decode_bytes(email.utils.unquote(value).encode("latin-1", "replace"), None, hint)
        else:
            continue
        if name.strip():
            return str(header_text(name, hint))
    return ""


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
