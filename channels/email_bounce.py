"""Delivery reports (bounces): which message did not arrive, to whom, and what happened.

A bounce comes with an empty envelope sender (`Return-Path: <>`), often from
`MAILER-DAEMON <>` with no address at all, so it cannot be filed under its
sender like other mail. What matters is inside: the Message-ID of the message
that failed (in the returned `message/rfc822` or `text/rfc822-headers` part, an
`Original-Message-ID` field, or quoted in a plain bounce's text) and the
recipient it failed for (`Final-Recipient` of RFC 3464, Exim's
`X-Failed-Recipients`). `email_mime` files the bounce as a reply to that message
in the failed recipient's conversation, marked `bounce` so triggers leave it alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses

from threadline.channels.email_charsets import decode_bytes, unfold
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.identities import normalise_email

_BOUNCE_SENDERS = ("mailer-daemon", "postmaster")
_DAEMON_NAMES = ("mailer-daemon", "postmaster", "mail delivery")
_MSG_ID = re.compile(r"<[^<>\s]+>")
_QUOTED_ID = re.compile(r"^[ \t>]*(?:Original-)?Message-ID:[ \t]*(<[^<>\s]+>)", re.I | re.M)
_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}$")
MAX_PARTS = 200
MAX_ID_LENGTH = 500


@dataclass
class BounceReport:
    """What a delivery report says; empty fields when it does not say."""

    original_id: str = ""
    failed_recipients: list[str] = field(default_factory=list)
    action: str = ""  # RFC 3464 Action of the first recipient: failed, delayed, delivered…
    reporting_host: str = ""

    def daemon_address(self) -> str:
        """`mailer-daemon@<reporting MTA>`: an identity for a report that names nobody."""
        if not self.reporting_host:
            return ""
        try:
            return normalise_email(f"mailer-daemon@{self.reporting_host}")
        except InvalidInput:
            return ""


def raw_header(message: Message, name: str, hint: str | None = None) -> str:
    """A header's value as clean text (unfolded, raw 8-bit bytes decoded), or ""."""
    for key, value in message.raw_items():
        if key.lower() == name.lower():
            return str(unfold(str(value), hint))
    return ""


def is_bounce(message: Message, sender: str, sender_name: str = "") -> bool:
    """A delivery status notification: a report of delivery-status, or from the mail daemon."""
    try:
        if (
            message.get_content_type() == "multipart/report"
            and str(message.get_param("report-type", "")).lower() == "delivery-status"
        ):
            return True
    except Exception:
        pass
    if raw_header(message, "X-Failed-Recipients").strip():
        return True
    if sender:
        return sender.split("@", 1)[0] in _BOUNCE_SENDERS
    # No sender address at all (`MAILER-DAEMON <>`): a notification if the envelope was null.
    null_envelope = raw_header(message, "Return-Path").strip() == "<>"
    return null_envelope or any(word in sender_name.lower() for word in _DAEMON_NAMES)


def read_bounce(message: Message, hint: str | None = None) -> BounceReport:
    """Read the report's parts; tolerant of every shape seen in the wild."""
    report = BounceReport()
    failed: list[str] = []
    others: list[str] = []
    texts: list[str] = []
    for part in _parts(message):
        content_type = part.get_content_type()
        if content_type in ("message/delivery-status", "message/global-delivery-status"):
            _read_status(_status_text(part, hint), report, failed, others)
        elif content_type in ("message/rfc822", "message/global") and not report.original_id:
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                report.original_id = _first_id(raw_header(inner[0], "Message-ID", hint))
        elif content_type == "text/rfc822-headers" and not report.original_id:
            headers = HeaderParser().parsestr(_text(part, hint))
            report.original_id = _first_id(raw_header(headers, "Message-ID", hint))
        elif content_type == "text/plain":
            texts.append(_text(part, hint))
    if not report.original_id:
        for name in ("Original-Message-ID", "X-Original-Message-ID"):
            report.original_id = _first_id(raw_header(message, name, hint))
            if report.original_id:
                break
    if not report.original_id:  # a plain bounce quoting the message it returns
        for text in texts:
            match = _QUOTED_ID.search(text)
            if match and len(match.group(1)) <= MAX_ID_LENGTH:
                report.original_id = match.group(1)
                break
    for _, address in getaddresses([raw_header(message, "X-Failed-Recipients", hint)]):
        failed.append(address)
    report.failed_recipients = _valid([*failed, *others])
    return report


def _parts(message: Message) -> list[Message]:
    found: list[Message] = []
    stack = [message]
    while stack and len(found) < MAX_PARTS:
        part = stack.pop(0)
        found.append(part)
        if part.get_content_maintype() == "multipart":
            payload = part.get_payload()
            if isinstance(payload, list):
                stack.extend(p for p in payload if isinstance(p, Message))
    return found


def _status_text(part: Message, hint: str | None) -> str:
    """The fields of a delivery-status part; Python parses it into blocks of headers."""
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks = [
            "\n".join(f"{key}: {unfold(str(value), hint)}" for key, value in block.raw_items())
            for block in payload
            if isinstance(block, Message)
        ]
        return "\n\n".join(blocks)
    return _text(part, hint)


def _read_status(text: str, report: BounceReport, failed: list[str], others: list[str]) -> None:
    """RFC 3464 fields: Reporting-MTA once, then Final-Recipient and Action per recipient."""
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        fields: dict[str, str] = {}
        for line in re.sub(r"\n[ \t]+", " ", block).split("\n"):
            name, colon, value = line.partition(":")
            if colon:
                fields.setdefault(name.strip().lower(), value.strip())
        if "reporting-mta" in fields and not report.reporting_host:
            host = fields["reporting-mta"].rpartition(";")[2].strip().rstrip(".")
            report.reporting_host = host if _HOST.match(host) else ""
        if not report.original_id:
            for name in ("original-message-id", "x-original-message-id"):
                report.original_id = _first_id(fields.get(name, ""))
                if report.original_id:
                    break
        recipient = fields.get("final-recipient") or fields.get("original-recipient") or ""
        if not recipient:
            continue
        address = recipient.rpartition(";")[2].strip().strip("<>")
        action = fields.get("action", "").split()[0].lower() if fields.get("action") else ""
        if not report.action:
            report.action = action[:20]
        (failed if action in ("failed", "") else others).append(address)


def _text(part: Message, hint: str | None) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        payload = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return str(decode_bytes(payload, charset, hint))


def _first_id(value: str) -> str:
    for match in _MSG_ID.findall(value or ""):
        if len(match) <= MAX_ID_LENGTH:
            return str(match)
    return ""


def _valid(addresses: list[str]) -> list[str]:
    valid: list[str] = []
    for address in addresses:
        try:
            normalised = normalise_email(address)
        except InvalidInput:
            continue
        if normalised not in valid:
            valid.append(normalised)
    return valid
