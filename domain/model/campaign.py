"""Campaigns: one template sent to a segment, one recipient aggregate per contact.

Why it is built this way:

* **A recipient is an aggregate** whose id is ``uuid5(campaign id, contact id)``
  and whose message id is ``uuid5(recipient id, "message")``. Queueing a
  contact twice (a restart while the audience is read) finds the recipient
  already in the store; sending records the `MessageSendRequested` and the
  recipient's `CampaignRecipientSent` in one command, so after any crash a
  recipient is either still queued (nothing went out) or sent (exactly one
  message exists). A restart can therefore never send the same campaign to a
  contact twice.
* **The commands decide, the sender only proposes.** The sender renders the
  message and picks the moment (the throttle); the send command re-checks
  inside the writer that the campaign is running and not paused, that the
  recipient is still queued and that the contact has not opted out on that
  channel, against the aggregates themselves rather than a view that may lag.
* **Delivered and failed are not recipient events:** the delivery worker
  records them on the message (`MessageDelivered`, `MessageDeliveryFailed`),
  and the campaigns view joins them by message id.

Personal data (the rendered text) travels only in the message's ``personal``
field; campaign and recipient events carry ids, channels and reasons.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from threadline.domain.model.errors import Conflict, InvalidInput
from threadline.domain.model.inbox import clean_slug
from threadline.domain.model.template import template_id_for

CAMPAIGN_CHANNELS = ("email", "sms", "telegram", "same")
# The conversation channels a campaign message can go out on ("same" picks one of them).
SENDABLE_CHANNELS = ("email", "sms", "telegram", "whatsapp")
MAX_PER_MINUTE = 60_000
MAX_NAME = 200
AUTOMATIC_THREAD = "automatic"  # the thread rules write to as well: one per contact and channel


class CampaignState(StrEnum):
    DRAFT = "draft"
    RESOLVING = "resolving"  # started: the segment is being read into queued recipients
    SENDING = "sending"
    FINISHED = "finished"


class RecipientState(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    SKIPPED = "skipped"


class SendOutcome(StrEnum):
    SENT = "sent"
    SKIPPED = "skipped"  # the command found an opt-out or a duplicate person
    ALREADY = "already"  # handled before (a restart, a view that had not caught up)
    PAUSED = "paused"
    STOPPED = "stopped"  # finished, or not running
    STALE = "stale"  # the contact was merged since the sender looked: prepare again


def recipient_id_for(campaign_id: UUID, contact_id: UUID) -> UUID:
    return uuid5(campaign_id, str(contact_id))


def campaign_message_id(recipient_id: UUID) -> UUID:
    return uuid5(recipient_id, "message")


class Campaign(Aggregate):
    """A template, a segment, a channel and a throttle; started, paused, resumed, finished."""

    class CampaignCreated(Aggregate.Created):
        name: str
        template_slug: str
        template_id: UUID
        segment: dict[str, Any]
        channel: str
        per_minute: int | None
        actor: str
        correlation_id: str

    @event(CampaignCreated)
    def __init__(
        self,
        id: UUID,
        name: str,
        template_slug: str,
        template_id: UUID,
        segment: dict[str, Any],
        channel: str,
        per_minute: int | None,
        actor: str,
        correlation_id: str,
    ) -> None:
        self.name = name
        self.template_slug = template_slug
        self.template_id = template_id
        self.template_version: int | None = None
        self.segment = segment
        self.channel = channel
        self.per_minute = per_minute
        self.state = CampaignState.DRAFT.value
        self.paused = False
        self.queued = 0
        self.cursor = ""
        self.total: int | None = None

    def start(self, template_version: int, actor: str, correlation_id: str) -> None:
        """Start reading the audience; only a draft starts (`Conflict` otherwise)."""
        if self.state != CampaignState.DRAFT.value:
            raise Conflict(f"campaign {self.id} is already {self.state}")
        self._started(template_version, actor, correlation_id)

    class CampaignStarted(Aggregate.Event):
        template_version: int
        actor: str
        correlation_id: str

    @event(CampaignStarted)
    def _started(self, template_version: int, actor: str, correlation_id: str) -> None:
        """The template version is fixed here, so every recipient gets the same text."""
        self.state = CampaignState.RESOLVING.value
        self.template_version = template_version

    class CampaignAudienceQueued(Aggregate.Event):
        count: int
        queued: int
        cursor: str
        actor: str
        correlation_id: str

    @event(CampaignAudienceQueued)
    def audience_queued(
        self, count: int, queued: int, cursor: str, actor: str, correlation_id: str
    ) -> None:
        """One batch of the segment's contacts was queued; `cursor` is where reading goes on."""
        self.queued = queued
        self.cursor = cursor

    class CampaignAudienceResolved(Aggregate.Event):
        total: int
        actor: str
        correlation_id: str

    @event(CampaignAudienceResolved)
    def audience_resolved(self, total: int, actor: str, correlation_id: str) -> None:
        self.state = CampaignState.SENDING.value
        self.total = total

    def pause(self, actor: str, correlation_id: str) -> None:
        """Hold the sending (nothing recorded if paused already); `Conflict` unless running."""
        if not self.running:
            raise Conflict(f"campaign {self.id} is {self.state}: nothing to pause")
        if not self.paused:
            self._paused(actor, correlation_id)

    class CampaignPaused(Aggregate.Event):
        actor: str
        correlation_id: str

    @event(CampaignPaused)
    def _paused(self, actor: str, correlation_id: str) -> None:
        self.paused = True

    def resume(self, actor: str, correlation_id: str) -> None:
        """Go on sending (nothing recorded if not paused); `Conflict` unless running."""
        if not self.running:
            raise Conflict(f"campaign {self.id} is {self.state}: nothing to resume")
        if self.paused:
            self._resumed(actor, correlation_id)

    class CampaignResumed(Aggregate.Event):
        actor: str
        correlation_id: str

    @event(CampaignResumed)
    def _resumed(self, actor: str, correlation_id: str) -> None:
        self.paused = False

    class CampaignFinished(Aggregate.Event):
        reason: str
        actor: str
        correlation_id: str

    @event(CampaignFinished)
    def finish(self, reason: str, actor: str, correlation_id: str) -> None:
        """Every recipient was handled (`reason` is empty), or the campaign cannot go on."""
        self.state = CampaignState.FINISHED.value

    class CampaignTestSent(Aggregate.Event):
        contact_id: UUID
        message_id: UUID
        channel: str
        actor: str
        correlation_id: str

    @event(CampaignTestSent)
    def test_sent(
        self, contact_id: UUID, message_id: UUID, channel: str, actor: str, correlation_id: str
    ) -> None:
        """A trial send to one contact: a message of its own, never a recipient."""

    @property
    def running(self) -> bool:
        return self.state in (CampaignState.RESOLVING.value, CampaignState.SENDING.value)

    def hold(self) -> SendOutcome | None:
        """Why no recipient may be sent to or skipped now (stopped, paused), or None."""
        if self.state != CampaignState.SENDING.value:
            return SendOutcome.STOPPED
        if self.paused:
            return SendOutcome.PAUSED
        return None


class CampaignRecipient(Aggregate):
    """One contact of a campaign's audience: queued, then sent or skipped (with the reason)."""

    class CampaignRecipientQueued(Aggregate.Created):
        campaign_id: UUID
        contact_id: UUID
        channel: str
        actor: str
        correlation_id: str

    @event(CampaignRecipientQueued)
    def __init__(
        self,
        id: UUID,
        campaign_id: UUID,
        contact_id: UUID,
        channel: str,
        actor: str,
        correlation_id: str,
    ) -> None:
        self.campaign_id = campaign_id
        self.contact_id = contact_id
        self.channel = channel
        self.state = RecipientState.QUEUED.value
        self.message_id: UUID | None = None

    class CampaignRecipientSent(Aggregate.Event):
        message_id: UUID
        channel: str
        contact_id: UUID
        actor: str
        correlation_id: str

    @event(CampaignRecipientSent)
    def mark_sent(
        self,
        message_id: UUID,
        channel: str,
        contact_id: UUID,
        actor: str,
        correlation_id: str,
    ) -> None:
        """The send request is recorded in the same transaction; `contact_id` is who got it
        (the survivor, if the queued contact was merged into another since)."""
        self.state = RecipientState.SENT.value
        self.message_id = message_id

    class CampaignRecipientSkipped(Aggregate.Event):
        reason: str
        actor: str
        correlation_id: str

    @event(CampaignRecipientSkipped)
    def skip(self, reason: str, actor: str, correlation_id: str) -> None:
        self.state = RecipientState.SKIPPED.value


@dataclass(frozen=True)
class CampaignSend:
    """What the sender prepared for one recipient: who, on which channel, the rendered text."""

    recipient_id: UUID
    contact_id: UUID
    channel: str
    personal: dict[str, Any]
    # The purposes every campaign needs the client's consent to (policies marked for
    # campaigns): a client who has not agreed to the text in force is skipped.
    consents: tuple[str, ...] = ()


def check_campaign_input(name: str, channel: str, per_minute: int | None) -> str:
    """The plain checks of a new campaign; returns the cleaned name."""
    cleaned = " ".join((name or "").split())
    if not cleaned:
        raise InvalidInput("name", "must not be empty")
    if len(cleaned) > MAX_NAME:
        raise InvalidInput("name", f"is limited to {MAX_NAME} characters")
    if channel not in CAMPAIGN_CHANNELS:
        raise InvalidInput("channel", f"one of {list(CAMPAIGN_CHANNELS)}")
    if per_minute is not None and not 1 <= per_minute <= MAX_PER_MINUTE:
        raise InvalidInput("per_minute", f"from 1 to {MAX_PER_MINUTE} messages a minute")
    return cleaned


def template_id_of(slug: str) -> tuple[str, UUID]:
    try:
        cleaned = clean_slug(slug)
    except InvalidInput:
        raise InvalidInput("template", "not a template slug") from None
    return cleaned, template_id_for(cleaned)
