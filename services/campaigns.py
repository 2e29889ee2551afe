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
   automatic messages (THREADLINE_AUTOMATIC_MESSAGES_PER_DAY, shared with the
   rules), renders the template version fixed at start, waits for its next
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
from collections import defaultdict, deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from threadline.channels.base import wait_or_stop
from threadline.domain.model.campaign import (
    SENDABLE_CHANNELS,
    Campaign,
    CampaignSend,
    CampaignState,
    SendOutcome,
)
from threadline.domain.model.contact import Contact
from threadline.domain.model.errors import Conflict, DomainError, InvalidInput
from threadline.domain.model.template import Template
from threadline.projections.base import ts
from threadline.projections.campaigns import campaign_messages_since
from threadline.projections.queries import ContactFilter
from threadline.projections.segments import build_contact_filter, pairs_of
from threadline.triggers.events import TriggerEvent
from threadline.triggers.facts import FactReader
from threadline.triggers.templates import TemplateError, render

if TYPE_CHECKING:
    from threadline.services.runtime import Runtime

log = logging.getLogger("threadline.campaigns")

ACTOR = "worker:campaigns"
POLL_SECONDS = 0.25
AUDIENCE_BATCH = 500
LANE_PAGE = 100
# Messages a minute when the campaign does not say: what each kind of provider takes well.
DEFAULT_PER_MINUTE = {"email": 600, "sms": 60, "telegram": 1200, "whatsapp": 60}
IDENTITY_KIND = {"email": "email", "sms": "phone", "whatsapp": "phone", "telegram": "telegram"}
IDENTITY_LABEL = {"email": "e-mail address", "phone": "phone number", "telegram": "Telegram chat"}
# Conversations on these channels are answered by e-mail (as the delivery worker does).
ANSWERED_BY = {"web": "email", "api": "email"}
# Without a channel the contact last wrote on, "same" uses the first identity found here.
FALLBACK_ORDER = (("email", "email"), ("telegram", "telegram"), ("phone", "sms"))


def per_minute_of(campaign_per_minute: int | None, channel: str) -> int:
    return campaign_per_minute or DEFAULT_PER_MINUTE.get(channel, 60)


def segment_filter(runtime: Runtime, segment: Any) -> ContactFilter:
    """The campaign's audience in the segment language; errors name ``segment.<key>``."""
    if not isinstance(segment, Mapping):
        raise InvalidInput("segment", "a mapping of filters, as in GET /api/contacts")
    for key, value in segment.items():
        if key in ("limit", "offset"):
            raise InvalidInput(f"segment.{key}", "unknown filter")
        values = value if isinstance(value, list | tuple) else [value]
        if not values or not all(isinstance(v, str | int | float | bool) for v in values):
            raise InvalidInput(f"segment.{key}", "expected a value or a list of values")
    return build_contact_filter(
        pairs_of(segment), runtime.app.attribute_registry(), field_prefix="segment"
    )


def audience_query(flt: ContactFilter) -> tuple[str, list[Any]]:
    """Contacts of the segment that existed at a moment, after a cursor, in id order."""
    where, params = flt.where()
    sql = (
        "SELECT c.id FROM contacts c WHERE c.merged_into IS NULL AND c.created_at <= ?"
        f" AND c.id > ? AND ({where}) ORDER BY c.id LIMIT ?"
    )
    return sql, params


class MessageBuilder:
    """What a campaign message to one contact needs: the channel, the checks, the text.

    The sender and the test send use it alike, so a test shows exactly what the
    campaign will send.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.facts = FactReader(runtime.queries)
        self.unsubscribe_url: Callable[[str], str] | None = (
            runtime.triggers.settings.unsubscribe_url
        )
        self._templates: dict[tuple[UUID, int | None], Template] = {}
        self._lock = threading.Lock()

    def channels_for(self, contact_ids: list[str], wanted: str) -> dict[str, str]:
        """Each contact's channel: the campaign's own, or for "same" the one they last wrote
        on (web and API conversations are answered by e-mail), else one they can be reached on."""
        if wanted != "same":
            return dict.fromkeys(contact_ids, wanted)
        if not contact_ids:
            return {}
        marks = ",".join("?" for _ in contact_ids)
        views = self.runtime.views
        recent: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for row in views.query(
            "SELECT contact_id, channel, last_inbound_at FROM contact_channels"
            f" WHERE contact_id IN ({marks}) AND last_inbound_at IS NOT NULL",
            contact_ids,
        ):
            recent[row["contact_id"]].append((row["last_inbound_at"], row["channel"]))
        kinds: dict[str, set[str]] = defaultdict(set)
        for row in views.query(
            f"SELECT contact_id, kind FROM contact_identities WHERE contact_id IN ({marks})",
            contact_ids,
        ):
            kinds[row["contact_id"]].add(row["kind"])
        chosen: dict[str, str] = {}
        for contact_id in contact_ids:
            has = kinds.get(contact_id, set())
            channel = ""
            for _, written in sorted(recent.get(contact_id, []), reverse=True):
                candidate = ANSWERED_BY.get(written, written)
                if candidate in SENDABLE_CHANNELS and IDENTITY_KIND[candidate] in has:
                    channel = candidate
                    break
            if not channel:
                channel = next((c for kind, c in FALLBACK_ORDER if kind in has), "email")
            chosen[contact_id] = channel
        return chosen

    def contact(self, contact_id: UUID) -> Contact:
        """The contact, or the one it was merged into."""
        repository = self.runtime.app.repository
        contact: Contact = repository.get(contact_id)
        hops = 0
        while contact.merged_into is not None and hops < 10:
            contact = repository.get(contact.merged_into)
            hops += 1
        return contact

    @staticmethod
    def problem(contact: Contact, channel: str) -> str | None:
        """Why this contact must not get a campaign message on `channel`, if they must not."""
        if contact.has_opted_out(channel):
            return f"opted out of automatic messages on {channel}"
        kind = IDENTITY_KIND.get(channel)
        if kind is None:
            return f"campaigns cannot send {channel} messages"
        if not any(identity["kind"] == kind for identity in contact.identities):
            return f"no {IDENTITY_LABEL[kind]} to send {channel} to"
        return None

    def template(self, campaign: Campaign) -> Template:
        """The version fixed when the campaign started (the current one before that)."""
        key = (campaign.template_id, campaign.template_version)
        with self._lock:
            cached = self._templates.get(key)
        if cached is not None:
            return cached
        template: Template = self.runtime.app.repository.get(
            campaign.template_id, version=campaign.template_version
        )
        if campaign.template_version is not None:
            with self._lock:
                self._templates[key] = template
        return template

    def render(self, campaign: Campaign, contact: Contact, channel: str) -> dict[str, Any]:
        """Subject, text and HTML for this contact (raises `TemplateError`)."""
        trigger = TriggerEvent(
            names=("campaign",),
            cause_key=f"campaign:{campaign.id}:{contact.id}",
            occurred_at=datetime.now(UTC),
            facts={"type": "campaign", "campaign_id": str(campaign.id)},
            contact_id=contact.id,
        )
        context = self.facts.facts(trigger)
        if self.unsubscribe_url is not None:
            context["unsubscribe_url"] = self.unsubscribe_url(str(contact.id))
        rendered = render(self.template(campaign).variants, channel, context)
        return {
            "subject": rendered.subject or "",
            "text": rendered.text or "",
            "html": rendered.html or "",
        }


@dataclass(frozen=True)
class TestSend:
    message_id: UUID
    contact_id: UUID
    channel: str
    notification_id: int | None


def send_test(runtime: Runtime, campaign_id: UUID, contact_id: UUID, actor: str) -> TestSend:
    """Render the campaign's template for one contact and send it to them, as a test."""
    campaign: Campaign = runtime.app.repository.get(campaign_id)
    builder = MessageBuilder(runtime)
    contact = builder.contact(contact_id)
    channel = builder.channels_for([str(contact.id)], campaign.channel)[str(contact.id)]
    problem = builder.problem(contact, channel)
    if problem is not None and problem.startswith("opted out"):
        raise Conflict(f"the contact {problem}")
    if problem is not None:
        raise InvalidInput("contact_id", problem)
    try:
        personal = builder.render(campaign, contact, channel)
    except TemplateError as error:
        raise InvalidInput("template", str(error)) from None
    committed = runtime.app.send_campaign_test(campaign_id, contact.id, channel, personal, actor)
    return TestSend(committed.value, contact.id, channel, committed.notification_id)


class CampaignSender:
    """Resolves started campaigns and sends their recipients at the throttle rate."""

    def __init__(self, runtime: Runtime, poll_seconds: float = POLL_SECONDS) -> None:
        self.runtime = runtime
        self.app = runtime.app
        self.views = runtime.views
        self.poll_seconds = poll_seconds
        self.builder = MessageBuilder(runtime)
        self.per_day = runtime.settings.automatic_messages_per_day
        self.sent = 0
        self.skipped = 0
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._next_slot: dict[tuple[str, str], float] = {}
        self._recent: dict[str, deque[float]] = defaultdict(deque)
        self._recent_lock = threading.Lock()
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
        for row in await asyncio.to_thread(self.active):
            campaign_id = str(row["id"])
            if row["state"] == CampaignState.RESOLVING.value:
                position = row["started_position"]
                self._spawn(
                    ("resolve", campaign_id),
                    lambda c=campaign_id, p=position: asyncio.to_thread(self.resolve, UUID(c), p),
                )
                continue
            channels = await asyncio.to_thread(self.queued_channels, campaign_id)
            if not channels and not any(key[1] == campaign_id for key in self._tasks):
                await asyncio.to_thread(self.finish_if_done, campaign_id)
            for channel in channels:
                self._spawn(
                    (channel, campaign_id),
                    lambda c=campaign_id, ch=channel: self.lane(c, ch, stop),
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

    def active(self) -> list[dict[str, Any]]:
        return self.views.query(
            "SELECT id, state, started_position FROM campaigns"
            " WHERE state = 'resolving' OR (state = 'sending' AND paused = 0)"
            " ORDER BY started_at, id"
        )

    def queued_channels(self, campaign_id: str) -> list[str]:
        rows = self.views.query(
            "SELECT DISTINCT channel FROM campaign_recipients"
            " WHERE campaign_id = ? AND state = 'queued'",
            [campaign_id],
        )
        return sorted(str(row["channel"]) for row in rows)

    # -- 1. the audience ------------------------------------------------------------------------

    def resolve(self, campaign_id: UUID, started_position: int | None) -> int:
        """Queue the segment's contacts in batches (going on from the recorded cursor)."""
        self.runtime.wait_for_views(started_position, timeout=10.0)
        campaign: Campaign = self.app.repository.get(campaign_id)
        if campaign.state != CampaignState.RESOLVING.value:
            return 0
        row = self.views.query_one(
            "SELECT started_at FROM campaigns WHERE id = ?", [str(campaign_id)]
        )
        if row is None or row["started_at"] is None:
            return 0
        try:
            flt = segment_filter(self.runtime, campaign.segment)
        except InvalidInput as error:
            self.app.finish_campaign(campaign_id, f"the segment is not valid: {error}", ACTOR)
            log.warning("campaign %s: the segment is not valid: %s", campaign_id, error)
            return 0
        sql, params = audience_query(flt)
        cursor = campaign.cursor
        queued = 0
        while True:
            if self._closing.is_set():
                return queued  # the next start goes on from the recorded cursor
            rows = self.views.query(sql, [row["started_at"], cursor, *params, AUDIENCE_BATCH])
            if not rows:
                break
            ids = [str(r["id"]) for r in rows]
            channels = self.builder.channels_for(ids, campaign.channel)
            entries = [(UUID(contact_id), channels[contact_id]) for contact_id in ids]
            queued += self.app.queue_campaign_recipients(campaign_id, entries, ids[-1], ACTOR).value
            cursor = ids[-1]
        committed = self.app.complete_campaign_audience(campaign_id, ACTOR)
        self.runtime.wait_for_views(committed.notification_id, timeout=10.0)
        log.info("campaign %s: %d recipients queued", campaign_id, committed.value)
        return queued

    # -- 2. sending -----------------------------------------------------------------------------

    def queued(self, campaign_id: str, channel: str, after: int) -> list[dict[str, Any]]:
        return self.views.query(
            "SELECT id, contact_id, position FROM campaign_recipients WHERE campaign_id = ?"
            " AND state = 'queued' AND channel = ? AND position > ? ORDER BY position LIMIT ?",
            [campaign_id, channel, after, LANE_PAGE],
        )

    async def lane(self, campaign_id: str, channel: str, stop: asyncio.Event) -> None:
        """Send one campaign's recipients on one channel, one slot at a time."""
        campaign: Campaign = await asyncio.to_thread(self.app.repository.get, UUID(campaign_id))
        interval = 60.0 / per_minute_of(campaign.per_minute, channel)
        key = (campaign_id, channel)
        after = 0
        last: int | None = None
        try:
            while not stop.is_set():
                rows = await asyncio.to_thread(self.queued, campaign_id, channel, after)
                if not rows:
                    return
                for row in rows:
                    after = int(row["position"])
                    outcome, position = await self._one(campaign, channel, row, key, interval, stop)
                    last = position or last
                    if outcome in (SendOutcome.PAUSED, SendOutcome.STOPPED):
                        return
        finally:
            if last is not None and not self._closing.is_set():
                # Let the view show this lane's work before the loop looks at it again.
                await asyncio.to_thread(self.runtime.wait_for_views, last, 5.0)

    async def _one(
        self,
        campaign: Campaign,
        channel: str,
        row: dict[str, Any],
        key: tuple[str, str],
        interval: float,
        stop: asyncio.Event,
    ) -> tuple[SendOutcome, int | None]:
        recipient_id = UUID(row["id"])
        prepared = await asyncio.to_thread(self.prepare, campaign, channel, row)
        if isinstance(prepared, str):
            skipped = await asyncio.to_thread(
                self.app.skip_campaign_recipient, recipient_id, prepared, ACTOR
            )
            self.skipped += int(skipped.value is SendOutcome.SKIPPED)
            return skipped.value, skipped.notification_id
        try:
            wait = self._next_slot.get(key, 0.0) - time.monotonic()
            if wait > 0 and await wait_or_stop(stop, wait):
                self._release(str(prepared.contact_id))
                return SendOutcome.STOPPED, None
            committed = await asyncio.to_thread(self.app.send_campaign_message, prepared, ACTOR)
        except DomainError as error:
            # This recipient cannot be sent (its contact or campaign is gone): say so, go on.
            self._release(str(prepared.contact_id))
            log.warning("campaign recipient %s: %s", recipient_id, error)
            skipped = await asyncio.to_thread(
                self.app.skip_campaign_recipient, recipient_id, f"cannot be sent: {error}", ACTOR
            )
            return skipped.value, skipped.notification_id
        except BaseException:
            self._release(str(prepared.contact_id))
            raise
        if committed.value is SendOutcome.SENT:
            self._next_slot[key] = time.monotonic() + interval
            self.sent += 1
        else:
            self._release(str(prepared.contact_id))
        return committed.value, committed.notification_id

    def prepare(self, campaign: Campaign, channel: str, row: dict[str, Any]) -> CampaignSend | str:
        """The rendered message for one recipient, or the reason to skip them."""
        try:
            contact = self.builder.contact(UUID(row["contact_id"]))
        except Exception as error:
            return f"the contact cannot be read: {type(error).__name__}"
        problem = self.builder.problem(contact, channel)
        if problem is not None:
            return problem
        if not self._reserve(str(contact.id)):
            return f"rate limit: {self.per_day} automatic messages a day"
        try:
            personal = self.builder.render(campaign, contact, channel)
        except (TemplateError, DomainError) as error:
            self._release(str(contact.id))
            return f"the template cannot be rendered: {error}"
        except BaseException:
            self._release(str(contact.id))
            raise
        return CampaignSend(UUID(row["id"]), contact.id, channel, personal)

    # -- the daily limit of automatic messages ----------------------------------------------------

    def automatic_today(self, contact_id: str) -> int:
        """Rule messages and campaign messages of the last 24 hours (this process's newest
        sends count even before the views show them)."""
        since = datetime.now(UTC) - timedelta(days=1)
        rules = self.views.query_one(
            "SELECT COUNT(*) AS n FROM rule_effects WHERE contact_id = ? AND kind = 'message'"
            " AND occurred_at >= ?",
            [contact_id, ts(since)],
        )
        campaigns = campaign_messages_since(self.views, contact_id, since)
        recent = self._recent[contact_id]
        cutoff = time.time() - 86_400
        while recent and recent[0] < cutoff:
            recent.popleft()
        return int(rules["n"] if rules else 0) + max(campaigns, len(recent))

    def _reserve(self, contact_id: str) -> bool:
        with self._recent_lock:
            if self.automatic_today(contact_id) >= self.per_day:
                return False
            self._recent[contact_id].append(time.time())
            return True

    def _release(self, contact_id: str) -> None:
        with self._recent_lock:
            recent = self._recent[contact_id]
            if recent:
                recent.pop()

    # -- 3. the end ---------------------------------------------------------------------------

    def finish_if_done(self, campaign_id: str) -> bool:
        row = self.views.query_one(
            "SELECT state, paused FROM campaigns WHERE id = ?", [campaign_id]
        )
        if row is None or row["state"] != CampaignState.SENDING.value or row["paused"]:
            return False
        left = self.views.query_one(
            "SELECT COUNT(*) AS n FROM campaign_recipients WHERE campaign_id = ?"
            " AND state = 'queued'",
            [campaign_id],
        )
        if left is not None and int(left["n"]):
            return False
        committed = self.app.finish_campaign(UUID(campaign_id), "", ACTOR)
        self.runtime.wait_for_views(committed.notification_id, timeout=5.0)
        log.info("campaign %s finished", campaign_id)
        return bool(committed.value)
