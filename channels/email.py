"""The e-mail channel: IMAP in (aioimaplib, IDLE or polling), SMTP out (aiosmtplib).

Inbound: every configured folder of an inbox's account gets its own IMAP
connection (IDLE watches one selected folder only). The position in a folder is
its UIDVALIDITY and the last UID ingested, kept in the durable channel state and
moved only after the message's ingest has committed, so a crash re-fetches at
most one message, which the Message-ID dedup key turns into a no-op. A changed
UIDVALIDITY (the server renumbered the folder) restarts the folder from the
beginning, again relying on dedup. A message that cannot be ingested (it cannot
be parsed, or any unexpected error while parsing or storing it) is recorded as
rejected (with the reason; `ChannelServices.rejections`, which an admin lists and
retries) and skipped, so one bad message never stalls a mailbox; only a database
that is unavailable leaves the cursor where it is. A new message the server
announces during a sync is synced at once (see `_Protocol`), not at the next IDLE.

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
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesHeaderParser
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
    Rejection,
    RetryOutcome,
    SettingField,
    describe_error,
    ingest_or_reason,
    register,
)
from threadline.channels.email_mime import html_to_text, parse_email
from threadline.channels.problems import DeliveryProblem
from threadline.channels.settings import MAX_HOST_LENGTH, valid_host
from threadline.domain.model.inbound import IngestResult

log = logging.getLogger("threadline.channels.email")

IMAP_TIMEOUT = 60.0
LOGOUT_TIMEOUT = 3.0
DEFAULT_SUBJECT = "Your message"
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)", re.IGNORECASE)
_REPLY_PREFIX = re.compile(r"^\s*re\s*:", re.IGNORECASE)
_COUNT = re.compile(rb"^\*\s+(\d+)\s+(EXISTS|EXPUNGE)\b", re.IGNORECASE)


class ImapError(ConnectionError):
    """The IMAP server refused or broke a step; the hub logs it and restarts the poller."""


class _Protocol(aioimaplib.IMAP4ClientProtocol):  # type: ignore[misc]
    """aioimaplib's protocol, setting `new_mail` when an untagged EXISTS says the folder grew.

    aioimaplib hands an untagged response to the command waiting for it and drops the
    rest: an EXISTS in the answer to a UID FETCH or UID SEARCH is logged and forgotten.
    A server announces a new message once, so one that arrives during a sync (after
    its UID SEARCH, before the next IDLE) would wait for the next IDLE renewal. The
    message count is followed (EXISTS sets it, EXPUNGE lowers it) so that a server
    repeating an unchanged EXISTS does not make the poller sync in a loop.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.new_mail = asyncio.Event()
        self.exists: int | None = None

    def _untagged_response(self, line: bytes) -> Any:
        match = _COUNT.match(line)
        if match is not None:
            number = int(match.group(1))
            if match.group(2).upper() == b"EXISTS":
                if self.exists is None or number > self.exists:
                    self.new_mail.set()
                self.exists = number
            elif self.exists:
                self.exists -= 1
        return super()._untagged_response(line)


class _Imap(aioimaplib.IMAP4):  # type: ignore[misc]
    """`aioimaplib.IMAP4` (plain, or TLS with `ssl_context`) speaking through `_Protocol`."""

    def create_client(
        self,
        host: str,
        port: int,
        loop: asyncio.AbstractEventLoop | None,
        conn_lost_cb: Any = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        running = loop if loop is not None else asyncio.get_running_loop()
        protocol = _Protocol(running, conn_lost_cb)
        self.protocol = protocol
        self._client_task = running.create_task(
            running.create_connection(lambda: protocol, host, port, ssl=ssl_context)
        )


@register
class EmailAdapter(ChannelAdapter):
    channel = "email"
    title = "E-mail (IMAP + SMTP)"
    conversation_channels = ("email",)
    recipient_kind = {"email": "email"}
    settings_schema = (
        SettingField(
            "imap_host",
            "IMAP server",
            help="Leave empty for a send-only inbox.",
            max_length=MAX_HOST_LENGTH,
            check=valid_host,
        ),
        SettingField(
            "imap_port", "IMAP port", FieldKind.INTEGER, default=993, minimum=1, maximum=65535
        ),
        SettingField(
            "imap_security",
            "IMAP security",
            default="ssl",
            help="ssl, starttls or none",
            choices=("ssl", "starttls", "none"),
        ),
        SettingField("imap_username", "IMAP user name", max_length=320),
        SettingField("imap_password", "IMAP password", FieldKind.SECRET, max_length=1000),
        SettingField(
            "imap_folders",
            "IMAP folders",
            FieldKind.LIST,
            default=["INBOX"],
            help="Every folder listed is watched.",
            max_length=200,
        ),
        SettingField(
            "smtp_host",
            "SMTP server",
            help="Leave empty for a receive-only inbox.",
            max_length=MAX_HOST_LENGTH,
            check=valid_host,
        ),
        SettingField(
            "smtp_port", "SMTP port", FieldKind.INTEGER, default=587, minimum=1, maximum=65535
        ),
        SettingField(
            "smtp_security",
            "SMTP security",
            default="starttls",
            help="starttls, tls or none",
            choices=("starttls", "tls", "none"),
        ),
        SettingField("smtp_username", "SMTP user name", max_length=320),
        SettingField("smtp_password", "SMTP password", FieldKind.SECRET, max_length=1000),
        SettingField(
            "from_address",
            "From address",
            FieldKind.EMAIL,
            help="Required for sending.",
            max_length=320,
        ),
        SettingField("from_name", "From name", max_length=200),
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
            log.error("IMAP %s: cannot connect or log in: %s", where, describe_error(error))
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
                if _mail_announced(client):
                    # A message arrived during the sync (after its UID SEARCH) and the
                    # server said so in the answer to a later command; it will not say so
                    # again in IDLE, so sync again now instead of at the next renewal.
                    continue
                if idle:
                    await self._idle(client, stop, lost)
                else:
                    await _wait_any((stop, lost), self._interval())
                _check(lost)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.error("IMAP %s: %s", where, describe_error(error))
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
        """Ingest every message above the cursor, moving the cursor after each; returns a count.

        The cursor moves past a message once it is ingested or recorded as rejected; only a
        database that is unavailable (or a connection error) leaves it, so the message is
        fetched again when the poller restarts.
        """
        key = cursor_key(self.inbox.slug, folder)
        cursor = await asyncio.to_thread(self._load_cursor, key)
        last_uid = 0
        if cursor is not None and cursor[0] == uidvalidity:
            last_uid = cursor[1]
        elif cursor is not None:
            log.warning(
                "IMAP %s: UIDVALIDITY changed from %d to %d; reading the folder again from the "
                "start (messages seen before are recognised by their Message-ID, or by their content"
                " when they have none)",
                self._where(folder),
                cursor[0],
                uidvalidity,
            )
        if cursor is None or cursor[0] != uidvalidity:
            await asyncio.to_thread(self._save_cursor, key, uidvalidity, last_uid)
        _check(lost)
        _forget_announcements(client)  # what the search below finds needs no second look
        uids = await self._search_after(client, last_uid)
        handled = 0
        for uid in uids:
            if stop.is_set():
                break
            _check(lost)
            raw = await self._fetch(client, uid)
            if raw is not None:
                await self._handle(raw, folder, uidvalidity, uid, stop)
                handled += 1
            await asyncio.to_thread(self._save_cursor, key, uidvalidity, uid)
            self.services.health.succeeded(self.inbox.slug)
        self.services.health.succeeded(self.inbox.slug)
        return handled

    async def _handle(
        self, raw: bytes, folder: str, uidvalidity: int, uid: int, stop: asyncio.Event | None = None
    ) -> IngestResult | None:
        """Ingest one fetched message, or record it as rejected (with the reason) and return
        None; raises only what must not move the cursor (see `_ingest`)."""
        result, reason = await self._ingest(raw, folder, uidvalidity, uid, stop)
        if result is None:
            await self._reject(raw, folder, uidvalidity, uid, reason)
            return None
        log.info(
            "IMAP %s: UID %d ingested as message %s%s",
            self._where(folder),
            uid,
            result.message_id,
            " (duplicate)" if result.duplicate else "",
        )
        return result

    async def _ingest(
        self, raw: bytes, folder: str, uidvalidity: int, uid: int, stop: asyncio.Event | None
    ) -> tuple[IngestResult | None, str]:
        """Parse and ingest: the result, or None and why the message cannot be taken (any
        error on this one message; see `ingest_or_reason`)."""
        slug = self.inbox.slug

        async def attempt() -> IngestResult:
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
            return await self.services.ingest(message)

        what = f"IMAP {self._where(folder)}: message UID {uid}"
        return await ingest_or_reason(attempt, what, stop, log)

    async def _reject(
        self, raw: bytes, folder: str, uidvalidity: int, uid: int, reason: str
    ) -> None:
        message_id, subject, sender = _summary(raw)
        rejection = Rejection(
            inbox_slug=self.inbox.slug,
            folder=folder,
            uidvalidity=uidvalidity,
            uid=uid,
            reason=reason,
            size=len(raw),
            message_id=message_id,
            subject=subject,
            sender=sender,
        )
        await asyncio.to_thread(self.services.rejections.add, rejection)

    async def retry(self, rejection: Rejection) -> tuple[RetryOutcome, str, IngestResult | None]:
        """Fetch a rejected message again (its own connection) and run it through ingest."""
        folder, uid = rejection.folder, rejection.uid
        lost = asyncio.Event()
        try:
            client = await self._connect(lost)
        except (OSError, aioimaplib.AioImapException) as error:
            raise ImapError(f"cannot connect or log in: {describe_error(error)}") from None
        try:
            try:
                uidvalidity = await self._select(client, folder)
            except ImapError as error:
                return RetryOutcome.GONE, str(error), None
            if uidvalidity != rejection.uidvalidity:
                reason = f"folder {folder!r} was renumbered (UIDVALIDITY {uidvalidity})"
                return RetryOutcome.GONE, reason, None
            raw = await self._fetch(client, uid)
        except (OSError, aioimaplib.AioImapException) as error:
            raise ImapError(f"fetching UID {uid} failed: {describe_error(error)}") from None
        finally:
            await _logout(client, lost)
        if raw is None:
            return RetryOutcome.GONE, f"UID {uid} is no longer in folder {folder!r}", None
        result, reason = await self._ingest(raw, folder, uidvalidity, uid, None)
        if result is None:
            await self._reject(raw, folder, uidvalidity, uid, reason)
            return RetryOutcome.REJECTED, reason, None
        return RetryOutcome.INGESTED, "", result

    # -- IMAP plumbing ----------------------------------------------------------------------

    async def _connect(self, lost: asyncio.Event) -> aioimaplib.IMAP4:
        """Connect, upgrade to TLS as configured, log in; `lost` is set if the server hangs up."""
        host = str(self.inbox.setting("imap_host"))
        port = int(self.inbox.setting("imap_port", 993))
        security = str(self.inbox.setting("imap_security", "ssl")).lower()
        if security == "ssl":
            client: aioimaplib.IMAP4 = _Imap(
                host=host, port=port, timeout=IMAP_TIMEOUT, ssl_context=ssl.create_default_context()
            )
        elif security in ("starttls", "none"):
            client = _Imap(host=host, port=port, timeout=IMAP_TIMEOUT)
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
                DeliveryErrorKind.PERMANENT,
                f"inbox {self.inbox.slug} has no smtp_host",
                problem=DeliveryProblem.NOT_SET_UP,
            )
        email = self.build_message(message)
        security = str(self.inbox.setting("smtp_security", "starttls")).lower()
        if security not in ("starttls", "tls", "none"):
            raise DeliveryError(
                DeliveryErrorKind.PERMANENT,
                f"smtp_security must be starttls, tls or none, not {security!r}",
                problem=DeliveryProblem.NOT_SET_UP,
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
                DeliveryErrorKind.TRANSIENT, f"SMTP {host}: {describe_error(error)}"
            ) from None
        return str(email["Message-ID"])

    def build_message(self, message: OutboundMessage) -> EmailMessage:
        """The MIME message of one reply, with the threading headers mail programs follow."""
        from_address = str(self.inbox.setting("from_address", ""))
        if "@" not in from_address:
            raise DeliveryError(
                DeliveryErrorKind.PERMANENT,
                f"inbox {self.inbox.slug} has no from_address",
                problem=DeliveryProblem.NOT_SET_UP,
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


def _mail_announced(client: aioimaplib.IMAP4) -> bool:
    new_mail = getattr(client.protocol, "new_mail", None)
    return isinstance(new_mail, asyncio.Event) and new_mail.is_set()


def _forget_announcements(client: aioimaplib.IMAP4) -> None:
    new_mail = getattr(client.protocol, "new_mail", None)
    if isinstance(new_mail, asyncio.Event):
        new_mail.clear()


def _summary(raw: bytes) -> tuple[str, str, str]:
    """Message-ID, Subject and From of a message for its rejection record, best effort:
    it must work on exactly the messages the parser could not take, so it never raises."""
    try:
        headers = BytesHeaderParser(policy=policy.compat32).parsebytes(raw[:65536])
    except Exception:
        return "", "", ""
    message_id, subject, sender = (
        _header_text(headers.get(name)) for name in ("Message-ID", "Subject", "From")
    )
    return message_id, subject, sender


def _header_text(value: Any) -> str:
    if value is None:
        return ""
    try:
        text = str(make_header(decode_header(str(value))))
    except Exception:
        text = str(value)
    return " ".join(text.split())[:300]


def _check(lost: asyncio.Event | None) -> None:
    if lost is not None and lost.is_set():
        raise ImapError("the server closed the connection")
