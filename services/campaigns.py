"""The campaign sender: reads a started campaign's segment into queued recipients, then sends
them at the campaign's pace, one lane per campaign and channel.

It runs on the channel hub's asyncio loop beside the delivery worker. Its steps:

1. **Resolve** (state ``resolving``): the segment is read from the contacts view
   in id order, in batches, limited to contacts that existed when the campaign
   started (a snapshot); each batch is queued in one command that also records
   how far reading got, so a restart goes on from there and queues nobody twice.
2. **Send** (state ``sending``, not paused): each lane takes its queued
   recipients in log order, skips (with the reason recorded) those who opted
   out on the channel, have no address for it or reached the daily limit of
   automatic messages (THREADLINE_AUTOMATIC_MESSAGES_PER_DAY, one limit with the
   rules' messages: the process's outbound composer, `threadline.triggers.outbound`,
   counts both), renders the template version fixed at start, waits for its next
   slot (``per_minute``, or the channel's default) and submits the send
   command. That command records the message and marks the recipient sent in
   one transaction, after checking the campaign is not paused, so a pause takes
   effect at the very next send. The delivery worker then delivers the message.
3. **Finish**: when no recipient is queued any more.

Throttling is per campaign and channel: two campaigns on one channel each keep
their own pace.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any, Protocol
from uuid import UUID

from threadline.channels.base import wait_or_stop
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.model.attributes import AttributeRegistry
from threadline.domain.model.campaign import (
    Campaign,
    CampaignSend,
    CampaignState,
    SendOutcome,
    campaign_message_id,
)
from threadline.domain.model.errors import DomainError, InvalidInput
from threadline.projections.campaigns import (
    QueuedRecipient,
    active_campaigns,
    audience_page,
    campaign,
    queued_channels,
    queued_count,
    queued_recipients,
)
from threadline.projections.consents import consent_policies
from threadline.projections.sql import ViewReader
from threadline.services.campaign_service import campaign_problem, render_campaign, segment_filter
from threadline.triggers.outbound import AggregateReader, OutboundComposer
from threadline.triggers.templates import TemplateError

log = logging.getLogger("threadline.campaigns")

ACTOR = "worker:campaigns"
POLL_SECONDS = 0.25
AUDIENCE_BATCH = 500
LANE_PAGE = 100
# Messages a minute when the campaign does not say: what each kind of provider takes well.
DEFAULT_PER_MINUTE = {"email": 600, "sms": 60, "telegram": 1200, "whatsapp": 60}


def per_minute_of(campaign_per_minute: int | None, channel: str) -> int:
    return campaign_per_minute or DEFAULT_PER_MINUTE.get(channel, 60)


class WaitForViews(Protocol):
    """Read-your-writes: True once the views show the log up to `notification_id`."""

    def __call__(self, notification_id: int | None, timeout: float | None = None) -> bool: ...


class CampaignLog(Protocol):
    """The campaign commands the sender records its progress with (the application)."""

    @property
    def repository(self) -> AggregateReader: ...

    def attribute_registry(self) -> AttributeRegistry | None: ...

    def queue_campaign_recipients(
        self, campaign_id: UUID, entries: list[tuple[UUID, str]], cursor: str, actor: str
    ) -> Committed[int]: ...

    def complete_campaign_audience(self, campaign_id: UUID, actor: str) -> Committed[int]: ...

    def send_campaign_message(self, send: CampaignSend, actor: str) -> Committed[SendOutcome]: ...

    def skip_campaign_recipient(
        self, recipient_id: UUID, reason: str, actor: str
    ) -> Committed[SendOutcome]: ...

    def finish_campaign(self, campaign_id: UUID, reason: str, actor: str) -> Committed[bool]: ...


class CampaignSender:
    """Resolves started campaigns and sends their recipients at the throttle rate."""

    def __init__(
        self,
        app: CampaignLog,
        views: ViewReader,
        composer: OutboundComposer,
        wait_for_views: WaitForViews,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.app = app
        self.views = views
        self.composer = composer
        self.wait_for_views = wait_for_views
        self.poll_seconds = poll_seconds
        self.sent = 0
        self.skipped = 0
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._next_slot: dict[tuple[str, str], float] = {}
        self._closing = threading.Event()

    # -- the loop -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    await self.tick(stop)
                except Exception:
                    log.warning("the campaign sender failed; retrying", exc_info=True)
                await wait_or_stop(stop, self.poll_seconds)
        finally:
            self._closing.set()
            for task in self._tasks.values():
                task.cancel()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def tick(self, stop: asyncio.Event) -> None:
        """Start what is due: a resolution per starting campaign, a lane per channel."""
        self._reap()
        for active in await asyncio.to_thread(active_campaigns, self.views):
            campaign_id = active.id
            if active.state == CampaignState.RESOLVING.value:
                position = active.started_position
                self._spawn(
                    ("resolve", campaign_id),
                    partial(asyncio.to_thread, self.resolve, UUID(campaign_id), position),
                )
                continue
            channels = await asyncio.to_thread(queued_channels, self.views, campaign_id)
            if not channels and not any(key[1] == campaign_id for key in self._tasks):
                await asyncio.to_thread(self.finish_if_done, campaign_id)
            for channel in channels:
                self._spawn(
                    (channel, campaign_id),
                    partial(self.lane, campaign_id, channel, stop),
                )

    def _spawn(self, key: tuple[str, str], start: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        if key not in self._tasks:
            self._tasks[key] = asyncio.create_task(start(), name=f"campaign-{key[0]}-{key[1]}")

    def _reap(self) -> None:
        for key, task in list(self._tasks.items()):
            if not task.done():
                continue
            del self._tasks[key]
            if not task.cancelled() and task.exception() is not None:
                log.warning(
                    "campaign %s (%s) stopped with an error; it goes on at the next round",
                    key[1],
                    key[0],
                    exc_info=task.exception(),
                )

    # -- 1. the audience ------------------------------------------------------------------------

    def resolve(self, campaign_id: UUID, started_position: int | None) -> int:
        """Queue the segment's contacts in batches (going on from the recorded cursor)."""
        self.wait_for_views(started_position, timeout=10.0)
        started: Campaign = self.app.repository.get(campaign_id)
        if started.state != CampaignState.RESOLVING.value:
            return 0
        row = campaign(self.views, campaign_id)
        if row is None or row.started_at is None:
            return 0
        try:
            flt = segment_filter(started.segment, self.app.attribute_registry(), self.views)
        except InvalidInput as error:
            self.app.finish_campaign(campaign_id, f"the segment is not valid: {error}", ACTOR)
            log.warning("campaign %s: the segment is not valid: %s", campaign_id, error)
            return 0
        cursor = started.cursor
        queued = 0
        while True:
            if self._closing.is_set():
                return queued  # the next start goes on from the recorded cursor
            ids = audience_page(self.views, flt, row.started_at, cursor, AUDIENCE_BATCH)
            if not ids:
                break
            channels = self.composer.channels_for(ids, started.channel)
            entries = [(UUID(contact_id), channels[contact_id]) for contact_id in ids]
            queued += self.app.queue_campaign_recipients(campaign_id, entries, ids[-1], ACTOR).value
            cursor = ids[-1]
        committed = self.app.complete_campaign_audience(campaign_id, ACTOR)
        self.wait_for_views(committed.notification_id, timeout=10.0)
        log.info("campaign %s: %d recipients queued", campaign_id, committed.value)
        return queued

    # -- 2. sending -----------------------------------------------------------------------------

    def queued(self, campaign_id: str, channel: str, after: int) -> list[QueuedRecipient]:
        return queued_recipients(self.views, campaign_id, channel, after, LANE_PAGE)

    async def lane(self, campaign_id: str, channel: str, stop: asyncio.Event) -> None:
        """Send one campaign's recipients on one channel, one slot at a time."""
        sending: Campaign = await asyncio.to_thread(self.app.repository.get, UUID(campaign_id))
        interval = 60.0 / per_minute_of(sending.per_minute, channel)
        key = (campaign_id, channel)
        after = 0
        last: int | None = None
        try:
            while not stop.is_set():
                rows = await asyncio.to_thread(self.queued, campaign_id, channel, after)
                if not rows:
                    return
                # The consents every campaign needs, read once a page (each send re-checks the
                # version in force, so a policy revised meanwhile still counts).
                needed = await asyncio.to_thread(self.needed_consents)
                for row in rows:
                    after = row.position
                    outcome, position = await self._one(
                        sending, channel, row, key, interval, stop, needed
                    )
                    last = position or last
                    if outcome in (SendOutcome.PAUSED, SendOutcome.STOPPED):
                        return
        finally:
            if last is not None and not self._closing.is_set():
                # Let the view show this lane's work before the loop looks at it again.
                await asyncio.to_thread(self.wait_for_views, last, 5.0)

    async def _one(
        self,
        sending: Campaign,
        channel: str,
        row: QueuedRecipient,
        key: tuple[str, str],
        interval: float,
        stop: asyncio.Event,
        needed: tuple[str, ...],
    ) -> tuple[SendOutcome, int | None]:
        recipient_id = UUID(row.id)
        prepared = await asyncio.to_thread(self.prepare, sending, channel, row, needed)
        if isinstance(prepared, str):
            skipped = await asyncio.to_thread(
                self.app.skip_campaign_recipient, recipient_id, prepared, ACTOR
            )
            self.skipped += int(skipped.value is SendOutcome.SKIPPED)
            return skipped.value, skipped.notification_id
        try:
            wait = self._next_slot.get(key, 0.0) - time.monotonic()
            if wait > 0 and await wait_or_stop(stop, wait):
                self._release(prepared)
                return SendOutcome.STOPPED, None
            committed = await asyncio.to_thread(self.app.send_campaign_message, prepared, ACTOR)
        except DomainError as error:
            # This recipient cannot be sent (its contact or campaign is gone): say so, go on.
            self._release(prepared)
            log.warning("campaign recipient %s: %s", recipient_id, error)
            skipped = await asyncio.to_thread(
                self.app.skip_campaign_recipient, recipient_id, f"cannot be sent: {error}", ACTOR
            )
            return skipped.value, skipped.notification_id
        except BaseException:
            self._release(prepared)
            raise
        if committed.value is SendOutcome.SENT:
            self._next_slot[key] = time.monotonic() + interval
            self.sent += 1
        else:
            self._release(prepared)
        return committed.value, committed.notification_id

    def needed_consents(self) -> tuple[str, ...]:
        """The purposes of the consent policies marked for campaigns."""
        return tuple(p.purpose for p in consent_policies(self.views) if p.campaigns)

    def prepare(
        self, sending: Campaign, channel: str, row: QueuedRecipient, needed: tuple[str, ...] = ()
    ) -> CampaignSend | str:
        """The rendered message for one recipient, or the reason to skip them."""
        recipient_id = UUID(row.id)
        try:
            contact = self.composer.contact(UUID(row.contact_id))
        except Exception as error:
            return f"the contact cannot be read: {type(error).__name__}"
        problem = campaign_problem(contact, channel)
        if problem is not None:
            return problem
        contact_id = contact.id
        message_id = campaign_message_id(recipient_id)
        if not self.composer.take_slot(str(contact_id), message_id):
            return self.composer.limit_reason
        try:
            personal = render_campaign(self.composer, sending, contact_id, channel)
        except (TemplateError, DomainError) as error:
            self.composer.release_slot(str(contact_id), message_id)
            return f"the template cannot be rendered: {error}"
        except BaseException:
            self.composer.release_slot(str(contact_id), message_id)
            raise
        return CampaignSend(recipient_id, contact_id, channel, personal, needed)

    def _release(self, prepared: CampaignSend) -> None:
        """The message was not sent after all: its slot of the daily limit is free again."""
        self.composer.release_slot(
            str(prepared.contact_id), campaign_message_id(prepared.recipient_id)
        )

    # -- 3. the end ---------------------------------------------------------------------------

    def finish_if_done(self, campaign_id: str) -> bool:
        row = campaign(self.views, campaign_id)
        if row is None or row.state != CampaignState.SENDING.value or row.paused:
            return False
        if queued_count(self.views, campaign_id):
            return False
        committed = self.app.finish_campaign(UUID(campaign_id), "", ACTOR)
        self.wait_for_views(committed.notification_id, timeout=5.0)
        log.info("campaign %s finished", campaign_id)
        return bool(committed.value)
