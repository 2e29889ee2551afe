"""The delivery worker: every `MessageSendRequested` goes out through its channel, once.

The loop reads due rows of the `outbox` view and, for each:
1. records `MessageDeliveryAttempted` through the Message aggregate (the store's
   version check lets exactly one worker start a given attempt);
2. calls the channel adapter's `send`;
3. records `MessageDelivered` with the provider's id and its word on the message
   (`sent`, or `queued` at Twilio: later reports move it on), or `MessageDeliveryFailed`
   with the technical reason and its plain `DeliveryProblem` (what operators read):
   transient errors are retried with exponential backoff until
   `THREADLINE_DELIVERY_MAX_ATTEMPTS`; permanent or blocked ones stop.

A crash between 1 and 3 leaves an attempt with no outcome. Whether the provider
got the message then is unknowable, so the worker never sends it again: it
records a permanent failure that says so, and the operator decides. That is
the price of "a restart never sends the same message twice".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from threadline.channels.base import (
    ChannelAdapter,
    DeliveryError,
    DeliveryErrorKind,
    InboxConfig,
    OutboundMessage,
    ProviderStatus,
    Sent,
    wait_or_stop,
)
from threadline.channels.problems import DeliveryProblem, problem_of
from threadline.channels.registry import adapter_class
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.model.contact import Contact, survivor
from threadline.domain.model.conversation import Conversation
from threadline.domain.model.message import Message
from threadline.domain.model.reply_channels import REPLY_CHANNEL
from threadline.projections.outbox import (
    DueDelivery,
    due_deliveries,
    sending_message_ids,
    thread_headers,
)
from threadline.projections.sql import ViewReader
from threadline.services.config import Settings

log = logging.getLogger("threadline.delivery")

ACTOR = "worker:delivery"
POLL_SECONDS = 0.2
BATCH = 50
IN_DOUBT_REASON = (
    "interrupted while sending: the provider may or may not have it, so it is not sent again "
    "automatically; check with the client and resend if needed"
)
# Conversations whose own channel has no way out are answered through another one.
FALLBACK_CHANNEL = REPLY_CHANNEL
STOP_GRACE = 10.0
"""Seconds a stopping worker waits for the deliveries it began (the hub waits 15 s for it)."""


class NoRoute(Exception):
    """Nothing can carry this message (no inbox for the channel, or no address)."""

    def __init__(self, reason: str, problem: DeliveryProblem = DeliveryProblem.NOT_SET_UP):
        super().__init__(reason)
        self.problem = problem


class InboxDirectory(Protocol):
    """The configured inboxes and their adapters (the channel hub)."""

    def inbox_by_id(self, inbox_id: UUID) -> InboxConfig | None: ...

    def inboxes(
        self, channel: str | None = None, enabled_only: bool = True
    ) -> list[InboxConfig]: ...

    def adapter(self, inbox: InboxConfig) -> ChannelAdapter: ...


class EventReader(Protocol):
    def get(
        self,
        originator_id: UUID,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Iterator[Any]: ...


class AggregateStore(Protocol):
    """Aggregates by id, and the events they were made of (the application's repository)."""

    @property
    def event_store(self) -> EventReader: ...

    def get(self, aggregate_id: UUID, *, version: int | None = None) -> Any: ...


class DeliveryLog(Protocol):
    """Where the worker reads messages and records each attempt's outcome (the application)."""

    @property
    def repository(self) -> AggregateStore: ...

    def start_delivery_attempt(self, message_id: UUID, actor: str) -> Committed[int | None]: ...

    def record_delivered(
        self,
        message_id: UUID,
        provider_id: str,
        actor: str,
        channel: str = "",
        status: str = "sent",
    ) -> Committed[None]: ...

    def record_delivery_failed(
        self,
        message_id: UUID,
        reason: str,
        permanent: bool,
        actor: str,
        retry_at: datetime | None = None,
        problem: str = "",
    ) -> Committed[None]: ...


class DeliveryWorker:
    """Delivers requested messages: `channels` carries them, `app` records what happened."""

    def __init__(
        self, channels: InboxDirectory, app: DeliveryLog, views: ViewReader, settings: Settings
    ) -> None:
        self.channels = channels
        self.app = app
        self.views = views
        self.settings = settings
        self.sent = 0
        self.failed = 0
        self._in_flight: set[str] = set()

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.to_thread(self.settle_interrupted_attempts)
        tasks: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                try:
                    rows = await asyncio.to_thread(self.due)
                except Exception:
                    log.warning("reading the outbox failed; retrying", exc_info=True)
                    rows = []
                tasks = {
                    asyncio.create_task(self.deliver(row))
                    for row in rows
                    if row.message_id not in self._in_flight
                }
                if tasks:
                    # `wait`, not `gather`: cancelling this loop must not cancel the deliveries
                    await asyncio.wait(tasks)
                    _log_failures(tasks)
                    tasks = set()
                    continue
                await wait_or_stop(stop, POLL_SECONDS)
        finally:
            await self._finish(tasks)

    async def _finish(self, tasks: set[asyncio.Task[None]]) -> None:
        """On stop, let the deliveries already begun end (for up to `STOP_GRACE` seconds).

        The hub stops its workers by cancelling them. A delivery cancelled after its attempt
        was recorded but before the provider was called would be taken for one interrupted
        mid-send at the next start, and never sent (see `settle_interrupted_attempts`): a
        clean stop would lose a message no provider ever saw. Only a send still running when
        the grace ends is cancelled, and that one is in doubt indeed.
        """
        pending = {task for task in tasks if not task.done()}
        if pending:
            _, pending = await asyncio.wait(pending, timeout=STOP_GRACE)
            for task in pending:
                task.cancel()
            await asyncio.wait(tasks)
        _log_failures(tasks)

    def due(self) -> list[DueDelivery]:
        return due_deliveries(self.views, datetime.now(UTC), BATCH)

    def settle_interrupted_attempts(self) -> int:
        """At start: attempts that a previous process began and never finished are in doubt."""
        settled = 0
        for key in sending_message_ids(self.views):
            message_id = UUID(key)
            message: Message = self.app.repository.get(message_id)
            if message.attempt_open:
                self.app.record_delivery_failed(
                    message_id, IN_DOUBT_REASON, True, ACTOR, problem=DeliveryProblem.IN_DOUBT
                )
                log.warning("message %s: %s", message_id, IN_DOUBT_REASON)
                settled += 1
        return settled

    async def deliver(self, row: DueDelivery) -> None:
        message_id = UUID(row.message_id)
        key = row.message_id
        self._in_flight.add(key)
        try:
            attempt = await asyncio.to_thread(self._start_attempt, message_id)
            if attempt is None:
                return  # another worker has it, or it is settled; the view will catch up
            try:
                adapter, outbound, channel = await asyncio.to_thread(
                    self.prepare, message_id, attempt
                )
            except NoRoute as error:
                await asyncio.to_thread(
                    self._fail, message_id, str(error), True, None, error.problem
                )
                return
            started = time.monotonic()
            try:
                answer = await asyncio.wait_for(
                    adapter.send(outbound), timeout=adapter.services.options.send_timeout
                )
            except DeliveryError as error:
                await self._handle_error(message_id, attempt, error)
                return
            except TimeoutError:
                # The provider may have accepted it: do not risk a second copy.
                timeout = adapter.services.options.send_timeout
                reason = f"the provider did not answer within {timeout:.0f} s; not retried"
                await asyncio.to_thread(
                    self._fail, message_id, reason, True, None, DeliveryProblem.IN_DOUBT
                )
                return
            except Exception as error:  # a bug or an unclassified error: retry a few times
                log.exception("message %s: the %s adapter raised", message_id, channel)
                await self._handle_error(
                    message_id,
                    attempt,
                    DeliveryError(
                        DeliveryErrorKind.TRANSIENT,
                        f"{type(error).__name__}: {error}",
                        problem=problem_of(error),
                    ),
                )
                return
            sent = answer if isinstance(answer, Sent) else Sent(str(answer))
            await asyncio.to_thread(self._delivered, message_id, sent, channel)
            self.sent += 1
            log.info(
                "message %s %s through %s as %s in %.0f ms",
                message_id,
                sent.status.value,
                channel,
                sent.provider_id,
                (time.monotonic() - started) * 1000,
            )
        finally:
            self._in_flight.discard(key)

    def _start_attempt(self, message_id: UUID) -> int | None:
        return self.app.start_delivery_attempt(message_id, ACTOR).value

    def _delivered(self, message_id: UUID, sent: Sent, channel: str) -> None:
        self.app.record_delivered(
            message_id, sent.provider_id, ACTOR, channel, ProviderStatus(sent.status).value
        )

    def _fail(
        self,
        message_id: UUID,
        reason: str,
        permanent: bool,
        retry_at: datetime | None,
        problem: DeliveryProblem = DeliveryProblem.UNKNOWN,
    ) -> None:
        """Record the failure: `reason` for admins and the log, `problem` for operators."""
        self.app.record_delivery_failed(
            message_id, reason, permanent, ACTOR, retry_at, problem.value
        )
        if permanent:
            self.failed += 1
            log.warning("message %s failed for good (%s): %s", message_id, problem, reason)

    async def _handle_error(self, message_id: UUID, attempt: int, error: DeliveryError) -> None:
        problem = problem_of(error)
        if error.permanent or attempt >= self.settings.delivery_max_attempts:
            reason = error.reason
            if not error.permanent:
                reason = f"{error.reason} (gave up after {attempt} attempts)"
            if error.kind is DeliveryErrorKind.BLOCKED:
                reason = f"blocked by the recipient: {error.reason}"
            await asyncio.to_thread(self._fail, message_id, reason, True, None, problem)
            return
        delay = self.settings.delivery_retry_seconds * (2 ** (attempt - 1))
        if error.retry_after is not None:
            delay = max(delay, error.retry_after)
        retry_at = datetime.now(UTC) + timedelta(seconds=delay)
        log.info("message %s: %s; retry %d in %.0f s", message_id, error.reason, attempt + 1, delay)
        await asyncio.to_thread(self._fail, message_id, error.reason, False, retry_at, problem)

    # -- building the outbound message ------------------------------------------------------

    def prepare(
        self, message_id: UUID, attempt: int
    ) -> tuple[ChannelAdapter, OutboundMessage, str]:
        """Load the message, its conversation and contact; choose the inbox and the address."""
        repository = self.app.repository
        message: Message = repository.get(message_id)
        conversation: Conversation = repository.get(message.conversation_id)
        contact = self._survivor(message.contact_id)
        channel = message.channel
        inbox, adapter_type = self._route(conversation, channel)
        if channel not in adapter_type.conversation_channels:
            channel = FALLBACK_CHANNEL.get(channel, channel)
        kind = adapter_type.recipient_kind.get(channel)
        if kind is None:
            raise NoRoute(f"the {inbox.channel} inbox {inbox.slug} cannot send {channel} messages")
        recipient = self._address(conversation, contact, kind, message.channel)
        personal = self._personal(message)
        headers = thread_headers(self.views, conversation.id)
        outbound = OutboundMessage(
            message_id=message_id,
            conversation_id=conversation.id,
            contact_id=contact.id,
            channel=channel,
            recipient=recipient,
            recipient_name=contact.display_name,
            subject=personal.get("subject") or conversation.subject,
            own_subject=bool(personal.get("subject")),
            text=personal.get("text", ""),
            html=personal.get("html", ""),
            thread_key=conversation.thread_key,
            in_reply_to=headers.message_header if headers else "",
            references=headers.refs if headers else (),
            attachments=tuple(personal.get("attachments", ())),
            attempt=attempt,
        )
        return self.channels.adapter(inbox), outbound, inbox.channel

    def _personal(self, message: Message) -> dict[str, Any]:
        """The body of the send request, read from its creation event."""
        for stored in self.app.repository.event_store.get(message.id, lte=1):
            personal = dict(getattr(stored, "personal", {}) or {})
            files = list(getattr(stored, "attachments", []) or [])
            names = list(personal.get("attachment_names") or [])
            if files:  # a reply's files: their metadata in the event, their names in personal
                personal["attachments"] = [
                    {**item, "filename": names[i] if i < len(names) else "attachment"}
                    for i, item in enumerate(files)
                ]
            return personal
        return {}

    def _survivor(self, contact_id: UUID) -> Contact:
        """The message's contact, or the one it was merged into (the address lives there)."""
        return survivor(self._contact(contact_id), self._contact)

    def _contact(self, contact_id: UUID) -> Contact:
        contact: Contact = self.app.repository.get(contact_id)
        return contact

    def _route(
        self, conversation: Conversation, channel: str
    ) -> tuple[InboxConfig, type[ChannelAdapter]]:
        """The conversation's own inbox when it can send; only then every enabled inbox."""
        own: list[InboxConfig] = []
        if conversation.inbox_id is not None:
            inbox = self.channels.inbox_by_id(conversation.inbox_id)
            if inbox is not None and inbox.enabled:
                own.append(inbox)
        everyone: list[InboxConfig] | None = None
        for wanted in (channel, FALLBACK_CHANNEL.get(channel)):
            if wanted is None:
                continue
            found = _serving(own, wanted)
            if found is None:
                everyone = self.channels.inboxes() if everyone is None else everyone
                found = _serving(everyone, wanted)
            if found is not None:
                return found
        raise NoRoute(
            f"no enabled inbox can send {channel} messages; configure one (POST /api/inboxes)"
        )

    @staticmethod
    def _address(conversation: Conversation, contact: Contact, kind: str, channel: str) -> str:
        address = conversation.address
        if address and address.get("kind") == kind and channel == conversation.channel:
            return str(address["value"])
        for identity in contact.identities:
            if identity["kind"] == kind:
                return str(identity["value"])
        raise NoRoute(
            f"the client has no {kind} to send this {channel} message to",
            DeliveryProblem.NO_ADDRESS,
        )


def _log_failures(tasks: set[asyncio.Task[None]]) -> None:
    """Log what a delivery raised (a database error, say); its outbox row says what is next."""
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.warning("a delivery failed", exc_info=task.exception())


def _serving(
    inboxes: list[InboxConfig], channel: str
) -> tuple[InboxConfig, type[ChannelAdapter]] | None:
    for inbox in inboxes:
        adapter_type = adapter_class(inbox.channel)
        if (
            adapter_type is not None
            and adapter_type.can_send
            and channel in adapter_type.conversation_channels
        ):
            return inbox, adapter_type
    return None
