"""The e-mail channel: IMAP in (aioimaplib, IDLE or polling), SMTP out (aiosmtplib).

Inbound: every configured folder of an inbox's account gets its own IMAP
connection (IDLE watches one selected folder only). The position in a folder is
its UIDVALIDITY and the last UID ingested, kept in the durable channel state and
moved only after the message's ingest has committed, so a crash re-fetches at
most one message, which the Message-ID dedup key turns into a no-op. A changed
UIDVALIDITY (the server renumbered the folder) restarts the folder from the
beginning, again relying on dedup. A message that cannot be parsed is recorded
as rejected (with the reason) and skipped, so one bad message never stalls a
mailbox.

Outbound: a reply is a multipart/alternative message with a deterministic
Message-ID (`<message uuid@our domain>`), In-Reply-To and References taken from
the client's last message, so the client's mail program threads it, and the
client's answer threads back into the same conversation.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import ssl
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import aioimaplib
import aiosmtplib

from threadline.channels.base import (
    ChannelAdapter,
    DeliveryError,
    DeliveryErrorKind,
    FieldKind,
    OutboundMessage,
    Rejected,
    SettingField,
    register,
)
from threadline.channels.email_mime import html_to_text, parse_email
from threadline.domain.errors import InvalidInput

log = logging.getLogger("threadline.channels.email")

IMAP_TIMEOUT = 60.0
LOGOUT_TIMEOUT = 3.0
DEFAULT_SUBJECT = "Your message"
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)", re.IGNORECASE)
_REPLY_PREFIX = re.compile(r"^\s*re\s*:", re.IGNORECASE)


class ImapError(ConnectionError):
    """The IMAP server refused or broke a step; the hub logs it and restarts the poller."""


@register
class EmailAdapter(ChannelAdapter):
    channel = "email"
    title = "E-mail (IMAP + SMTP)"
    conversation_channels = ("email",)
    recipient_kind = {"email": "email"}
    settings_schema = (
        SettingField("imap_host", "IMAP server", help="Leave empty for a send-only inbox."),
        SettingField("imap_port", "IMAP port", FieldKind.INTEGER, default=993),
        SettingField("imap_security", "IMAP security", default="ssl", help="ssl, starttls or none"),
        SettingField("imap_username", "IMAP user name"),
        SettingField("imap_password", "IMAP password", FieldKind.SECRET),
        SettingField(
            "imap_folders",
            "IMAP folders",
            FieldKind.LIST,
            default=["INBOX"],
            help="Every folder listed is watched.",
        ),
        SettingField("smtp_host", "SMTP server", help="Leave empty for a receive-only inbox."),
        SettingField("smtp_port", "SMTP port", FieldKind.INTEGER, default=587),
        SettingField(
            "smtp_security", "SMTP security", default="starttls", help="starttls, tls or none"
        ),
        SettingField("smtp_username", "SMTP user name"),
        SettingField("smtp_password", "SMTP password", FieldKind.SECRET),
        SettingField("from_address", "From address", FieldKind.EMAIL, help="Required for sending."),
        SettingField("from_name", "From name"),
    )

    # -- inbound ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Watch every folder until `stop`; a connection error is raised (the hub restarts)."""
        if not self.inbox.setting("imap_host"):
            return
        folders = self.folders()
        tasks = [
            asyncio.create_task(self._watch_folder(folder, stop), name=f"imap:{folder}")
            for folder in folders
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            error = task.exception()
            if error is not None:
                raise error

    def folders(self) -> list[str]:
        configured = self.inbox.setting("imap_folders", ["INBOX"])
        if isinstance(configured, str):
            configured = configured.split(",")
        folders = [str(f).strip() for f in configured if str(f).strip()]
        return list(dict.fromkeys(folders)) or ["INBOX"]

    async def _watch_folder(self, folder: str, stop: asyncio.Event) -> None:
        where = self._where(folder)
        lost = asyncio.Event()
        try:
            client = await self._connect(lost)
        except Exception as error:
            log.error("IMAP %s: cannot connect or log in: %s", where, _describe(error))
            raise
        try:
            uidvalidity = await self._select(client, folder)
            idle = client.has_capability("IDLE")
            log.info(
                "IMAP %s: watching (UIDVALIDITY %d, %s)",
                where,
                uidvalidity,
                "IDLE" if idle else f"polling every {self._interval():.0f} s",
            )
            while not stop.is_set():
                await self.sync_folder(client, folder, uidvalidity, stop, lost)
                if stop.is_set():
                    break
                if idle:
                    await self._idle(client, stop, lost)
                else:
                    await _wait_any((stop, lost), self._interval())
                _check(lost)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.error("IMAP %s: %s", where, _describe(error))
            raise
        finally:
            await _logout(client, lost)

    async def sync_folder(
        self,
        client: aioimaplib.IMAP4,
        folder: str,
        uidvalidity: int,
        stop: asyncio.Event,
        lost: asyncio.Event | None = None,
    ) -> int:
        """Ingest every message above the cursor, moving the cursor after each; returns a count."""
        key = cursor_key(self.inbox.slug, folder)
        cursor = await asyncio.to_thread(self._load_cursor, key)
        last_uid = 0
        if cursor is not None and cursor[0] == uidvalidity:
            last_uid = cursor[1]
        elif cursor is not None:
            log.warning(
                "IMAP %s: UIDVALIDITY changed from %d to %d; reading the folder again from the "
                "start (messages seen before are recognised by their Message-ID)",
                self._where(folder),
                cursor[0],
                uidvalidity,
            )
        if cursor is None or cursor[0] != uidvalidity:
            await asyncio.to_thread(self._save_cursor, key, uidvalidity, last_uid)
        _check(lost)
        uids = await self._search_after(client, last_uid)
        handled = 0
        for uid in uids:
            if stop.is_set():
                break
            _check(lost)
            raw = await self._fetch(client, uid)
            if raw is not None:
                await self._handle(raw, folder, uidvalidity, uid)
                handled += 1
            await asyncio.to_thread(self._save_cursor, key, uidvalidity, uid)
        return handled

    async def _handle(self, raw: bytes, folder: str, uidvalidity: int, uid: int) -> None:
        slug = self.inbox.slug
        try:
            message = await asyncio.to_thread(
                parse_email,
                raw,
                self.services.attachments,
                self.inbox.id,
                self.services.options.default_region,
                f"imap:{slug}:{uidvalidity}:{uid}",
                mailbox=slug,
                folder=folder,
            )
            result = await self.services.ingest(message)
        except (Rejected, InvalidInput) as error:
            reason = error.reason if isinstance(error, Rejected) else str(error)
            log.warning("IMAP %s: message UID %d rejected: %s", self._where(folder), uid, reason)
            record = {"reason": reason, "at": datetime.now(UTC).isoformat(), "size": len(raw)}
            await asyncio.to_thread(
                self.services.state.set,
                rejected_key(slug, folder, uidvalidity, uid),
                json.dumps(record),
            )
            return
        log.info(
            "IMAP %s: UID %d ingested as message %s%s",
            self._where(folder),
            uid,
            result.message_id,
            " (duplicate)" if result.duplicate else "",
        )

    # -- IMAP plumbing ----------------------------------------------------------------------

    async def _connect(self, lost: asyncio.Event) -> aioimaplib.IMAP4:
        """Connect, upgrade to TLS as configured, log in; `lost` is set if the server hangs up."""
        host = str(self.inbox.setting("imap_host"))
        port = int(self.inbox.setting("imap_port", 993))
        security = str(self.inbox.setting("imap_security", "ssl")).lower()
        if security == "ssl":
            client: aioimaplib.IMAP4 = aioimaplib.IMAP4_SSL(
                host=host, port=port, timeout=IMAP_TIMEOUT, ssl_context=ssl.create_default_context()
            )
        elif security in ("starttls", "none"):
            client = aioimaplib.IMAP4(host=host, port=port, timeout=IMAP_TIMEOUT)
        else:
            raise ImapError(f"imap_security must be ssl, starttls or none, not {security!r}")
        # Without this a dropped connection only shows as a command timeout much later.
        client.protocol.conn_lost_cb = lambda _error: lost.set()
        try:
            await client.wait_hello_from_server()
            if security == "starttls":
                await _starttls(client, host)
            username = str(self.inbox.setting("imap_username", ""))
            response = await client.login(_quote(username), self.inbox.secret("imap_password"))
            if response.result != "OK":
                raise ImapError(f"login as {username!r} refused: {_text(response.lines)}")
        except BaseException:
            await _logout(client, lost)
            raise
        return client

    async def _select(self, client: aioimaplib.IMAP4, folder: str) -> int:
        response = await client.select(_quote(imap_utf7(folder)))
        if response.result != "OK":
            raise ImapError(f"cannot select folder {folder!r}: {_text(response.lines)}")
        for line in response.lines:
            if isinstance(line, bytes | bytearray):
                match = _UIDVALIDITY.search(bytes(line))
                if match:
                    return int(match.group(1))
        raise ImapError(f"the server sent no UIDVALIDITY for folder {folder!r}")

    async def _search_after(self, client: aioimaplib.IMAP4, last_uid: int) -> list[int]:
        # "n:*" always matches the highest UID even when it is <= n, hence the filter.
        response = await client.uid_search(f"UID {last_uid + 1}:*", charset=None)
        if response.result != "OK":
            raise ImapError(f"UID SEARCH failed: {_text(response.lines)}")
        uids: set[int] = set()
        # aioimaplib strips "* SEARCH" from the data lines; the last line is the completion.
        for line in response.lines[:-1]:
            if isinstance(line, bytes | bytearray):
                tokens = bytes(line).split()
                if tokens and tokens[0].upper() == b"SEARCH":
                    tokens = tokens[1:]
                if tokens and all(t.isdigit() for t in tokens):
                    uids.update(int(t) for t in tokens)
        return sorted(uid for uid in uids if uid > last_uid)

    async def _fetch(self, client: aioimaplib.IMAP4, uid: int) -> bytes | None:
        response = await client.uid("fetch", str(uid), "BODY.PEEK[]")
        if response.result != "OK":
            raise ImapError(f"UID FETCH {uid} failed: {_text(response.lines)}")
        literals = [bytes(line) for line in response.lines if isinstance(line, bytearray)]
        if not literals:
            log.info("IMAP %s: UID %d is gone (expunged meanwhile)", self.inbox.slug, uid)
            return None
        return max(literals, key=len)

    async def _idle(
        self, client: aioimaplib.IMAP4, stop: asyncio.Event, lost: asyncio.Event
    ) -> None:
        """Wait in IDLE until the server reports a change, `stop`, a hang-up or the interval."""
        interval = self._interval()
        queue = client.protocol.idle_queue
        while not queue.empty():
            queue.get_nowait()
        idle = await client.idle_start(timeout=interval)
        push = asyncio.ensure_future(client.wait_server_push(timeout=interval + 5))
        stopped = asyncio.ensure_future(stop.wait())
        hung_up = asyncio.ensure_future(lost.wait())
        waiters = (push, stopped, hung_up)
        try:
            await asyncio.wait(waiters, timeout=interval, return_when="FIRST_COMPLETED")
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
            if _says_bye(push):
                # A server going away (restart, `doveadm kick`) says BYE before it hangs up;
                # answering DONE would wait for a completion that never comes.
                lost.set()
            if lost.is_set():
                idle.cancel()
            else:
                if client.has_pending_idle():
                    client.idle_done()
                hung_up = asyncio.ensure_future(lost.wait())
                try:
                    await asyncio.wait(
                        (idle, hung_up), timeout=IMAP_TIMEOUT, return_when="FIRST_COMPLETED"
                    )
                finally:
                    hung_up.cancel()
                if not idle.done():
                    idle.cancel()
                    if not lost.is_set():
                        raise ImapError(f"no answer to DONE within {IMAP_TIMEOUT:.0f} s")
        _check(lost)

    def _load_cursor(self, key: str) -> tuple[int, int] | None:
        value = self.services.state.get(key)
        if not value:
            return None
        try:
            data = json.loads(value)
            return int(data["uidvalidity"]), int(data["last_uid"])
        except (ValueError, KeyError, TypeError):
            log.warning("IMAP cursor %s is unreadable (%r); starting from zero", key, value)
            return None

    def _save_cursor(self, key: str, uidvalidity: int, last_uid: int) -> None:
        self.services.state.set(key, json.dumps({"uidvalidity": uidvalidity, "last_uid": last_uid}))

    def _interval(self) -> float:
        return max(0.05, float(self.services.options.poll_interval))

    def _where(self, folder: str) -> str:
        host = self.inbox.setting("imap_host")
        port = self.inbox.setting("imap_port", 993)
        return f"{host}:{port} folder {folder!r} of inbox {self.inbox.slug}"

    # -- outbound ---------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> str:
        """Send one reply by SMTP; returns its Message-ID or raises a classified DeliveryError."""
        host = self.inbox.setting("smtp_host")
        if not host:
            raise DeliveryError(
                DeliveryErrorKind.PERMANENT, f"inbox {self.inbox.slug} has no smtp_host"
            )
        email = self.build_message(message)
        security = str(self.inbox.setting("smtp_security", "starttls")).lower()
        if security not in ("starttls", "tls", "none"):
            raise DeliveryError(
                DeliveryErrorKind.PERMANENT,
                f"smtp_security must be starttls, tls or none, not {security!r}",
            )
        username = self.inbox.setting("smtp_username") or None
        timeout = max(1.0, self.services.options.send_timeout / 3)
        try:
            await aiosmtplib.send(
                email,
                sender=str(self.inbox.setting("from_address")),
                recipients=[message.recipient],
                hostname=str(host),
                port=int(self.inbox.setting("smtp_port", 587)),
                username=username,
                password=self.inbox.secret("smtp_password") if username else None,
                use_tls=security == "tls",
                start_tls=security == "starttls",
                timeout=timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [refusal.code for refusal in error.recipients]
            detail = "; ".join(f"{r.code} {r.message}" for r in error.recipients)
            kind = (
                DeliveryErrorKind.TRANSIENT
                if codes and all(400 <= c < 500 for c in codes)
                else DeliveryErrorKind.PERMANENT
            )
            raise DeliveryError(kind, f"recipient refused: {detail}") from None
        except aiosmtplib.SMTPResponseException as error:
            kind = (
                DeliveryErrorKind.PERMANENT
                if 500 <= error.code < 600
                else DeliveryErrorKind.TRANSIENT
            )
            raise DeliveryError(kind, f"SMTP {error.code} {error.message}") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise DeliveryError(
                DeliveryErrorKind.TRANSIENT, f"SMTP {host}: {_describe(error)}"
            ) from None
        return str(email["Message-ID"])

    def build_message(self, message: OutboundMessage) -> EmailMessage:
        """The MIME message of one reply, with the threading headers mail programs follow."""
        from_address = str(self.inbox.setting("from_address", ""))
        if "@" not in from_address:
            raise DeliveryError(
                DeliveryErrorKind.PERMANENT, f"inbox {self.inbox.slug} has no from_address"
            )
        domain = from_address.rsplit("@", 1)[1]
        email = EmailMessage(policy=policy.SMTP)
        try:
            email["From"] = Address(
                _one_line(self.inbox.setting("from_name", "")), addr_spec=from_address
            )
            email["To"] = Address(_one_line(message.recipient_name), addr_spec=message.recipient)
        except (ValueError, IndexError) as error:
            raise DeliveryError(DeliveryErrorKind.PERMANENT, f"unusable address: {error}") from None
        email["Subject"] = (
            _one_line(message.subject) if message.own_subject else reply_subject(message.subject)
        )
        email["Date"] = format_datetime(datetime.now(UTC))
        email["Message-ID"] = message_id_header(message.message_id, domain)
        references = [r for r in message.references if _is_id(r)]
        if _is_id(message.in_reply_to):
            email["In-Reply-To"] = message.in_reply_to
            if message.in_reply_to not in references:
                references.append(message.in_reply_to)
        if references:
            email["References"] = " ".join(references)
        text = message.text or (html_to_text(message.html) if message.html else "")
        email.set_content(text)
        if message.html:
            email.add_alternative(message.html, subtype="html")
        for attachment in message.attachments:
            self._attach(email, attachment)
        return email

    def _attach(self, email: EmailMessage, attachment: dict[str, Any]) -> None:
        digest = str(attachment.get("sha256", ""))
        try:
            data = self.services.attachments.read(digest)
        except (OSError, ValueError):
            raise DeliveryError(
                DeliveryErrorKind.PERMANENT, f"attachment {digest[:12]} is not in the store"
            ) from None
        maintype, _, subtype = str(
            attachment.get("content_type") or "application/octet-stream"
        ).partition("/")
        if email.get_content_maintype() != "multipart" or not email.is_multipart():
            email.make_mixed()
        email.add_attachment(
            data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=str(attachment.get("filename") or "attachment"),
        )


# -- helpers ------------------------------------------------------------------------------------


def cursor_key(slug: str, folder: str) -> str:
    return f"imap:{slug}:{folder}"


def rejected_key(slug: str, folder: str, uidvalidity: int, uid: int) -> str:
    return f"imap-rejected:{slug}:{folder}:{uidvalidity}:{uid}"


def message_id_header(message_id: Any, domain: str) -> str:
    """Deterministic, so a retried send carries the same Message-ID (receivers dedup by it)."""
    return f"<{message_id}@{domain}>"


def reply_subject(subject: str) -> str:
    text = _one_line(subject)
    if not text:
        return DEFAULT_SUBJECT
    return text if _REPLY_PREFIX.match(text) else f"Re: {text}"


def _one_line(value: Any) -> str:
    return " ".join(str(value or "").split())


def _is_id(value: str) -> bool:
    return (
        bool(value)
        and value.startswith("<")
        and value.endswith(">")
        and not any(c.isspace() for c in value)
    )


def _describe(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _text(lines: list[Any]) -> str:
    return " ".join(
        bytes(line).decode("utf-8", "replace") for line in lines if isinstance(line, bytes)
    )[:300]


def _quote(value: str) -> str:
    """An IMAP quoted string (names with spaces or quotes survive)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def imap_utf7(name: str) -> str:
    """IMAP's modified UTF-7 for mailbox names (RFC 3501 5.1.3): `Входящие` → `&BBIERQQ+BDQETwRJBDgENQ-`."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            encoded = base64.b64encode("".join(pending).encode("utf-16-be")).decode()
            out.append("&" + encoded.rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


async def _starttls(client: aioimaplib.IMAP4, host: str) -> None:
    """aioimaplib has no STARTTLS: send it, then upgrade the transport in place."""
    protocol = client.protocol
    command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
    response = await asyncio.wait_for(protocol.execute(command), IMAP_TIMEOUT)
    if response.result != "OK":
        raise ImapError(f"STARTTLS refused: {_text(response.lines)}")
    loop = asyncio.get_running_loop()
    transport = await asyncio.wait_for(
        loop.start_tls(
            protocol.transport, protocol, ssl.create_default_context(), server_hostname=host
        ),
        IMAP_TIMEOUT,
    )
    protocol.transport = transport
    await asyncio.wait_for(protocol.capability(), IMAP_TIMEOUT)


async def _logout(client: aioimaplib.IMAP4, lost: asyncio.Event | None = None) -> None:
    try:
        if not (lost and lost.is_set()) and client.get_state() in ("AUTH", "SELECTED", "NONAUTH"):
            await asyncio.wait_for(client.logout(), LOGOUT_TIMEOUT)
    except Exception:  # best effort on the way out: the connection may already be gone
        pass
    finally:
        transport = getattr(client.protocol, "transport", None)
        if transport is not None:
            transport.close()


async def _wait_any(events: tuple[asyncio.Event, ...], seconds: float) -> None:
    """Sleep `seconds` or until any of `events` is set, whichever comes first."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when="FIRST_COMPLETED")
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


def _says_bye(push: asyncio.Future[Any]) -> bool:
    """Whether a finished IDLE push carried the server's untagged BYE."""
    if not push.done() or push.cancelled() or push.exception() is not None:
        return False
    lines = push.result()
    if not isinstance(lines, list):
        lines = [lines]
    for line in lines:
        if isinstance(line, str):
            line = line.encode()
        if isinstance(line, bytes | bytearray):
            words = bytes(line).upper().split()
            if words[:1] == [b"BYE"] or words[:2] == [b"*", b"BYE"]:
                return True
    return False


def _check(lost: asyncio.Event | None) -> None:
    if lost is not None and lost.is_set():
        raise ImapError("the server closed the connection")
