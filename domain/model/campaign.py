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
from uuid import UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate, event

from threadline.domain.infrastructure.group_commit import Committed, GroupCommitWriter
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.contact import Contact
from threadline.domain.model.conversation import (
    Conversation,
    ConversationStatus,
    conversation_id_for,
)
from threadline.domain.model.errors import Conflict, InvalidInput
from threadline.domain.model.inbox import clean_slug
from threadline.domain.model.message import Message
from threadline.domain.model.template import Template, template_id_for

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

    @event("CampaignCreated")
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

    @event("CampaignStarted")
    def start(self, template_version: int, actor: str, correlation_id: str) -> None:
        """The template version is fixed here, so every recipient gets the same text."""
        self.state = CampaignState.RESOLVING.value
        self.template_version = template_version

    @event("CampaignAudienceQueued")
    def audience_queued(
        self, count: int, queued: int, cursor: str, actor: str, correlation_id: str
    ) -> None:
        """One batch of the segment's contacts was queued; `cursor` is where reading goes on."""
        self.queued = queued
        self.cursor = cursor

    @event("CampaignAudienceResolved")
    def audience_resolved(self, total: int, actor: str, correlation_id: str) -> None:
        self.state = CampaignState.SENDING.value
        self.total = total

    @event("CampaignPaused")
    def pause(self, actor: str, correlation_id: str) -> None:
        self.paused = True

    @event("CampaignResumed")
    def resume(self, actor: str, correlation_id: str) -> None:
        self.paused = False

    @event("CampaignFinished")
    def finish(self, reason: str, actor: str, correlation_id: str) -> None:
        """Every recipient was handled (`reason` is empty), or the campaign cannot go on."""
        self.state = CampaignState.FINISHED.value

    @event("CampaignTestSent")
    def test_sent(
        self, contact_id: UUID, message_id: UUID, channel: str, actor: str, correlation_id: str
    ) -> None:
        """A trial send to one contact: a message of its own, never a recipient."""

    @property
    def running(self) -> bool:
        return self.state in (CampaignState.RESOLVING.value, CampaignState.SENDING.value)


class CampaignRecipient(Aggregate):
    """One contact of a campaign's audience: queued, then sent or skipped (with the reason)."""

    @event("CampaignRecipientQueued")
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

    @event("CampaignRecipientSent")
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

    @event("CampaignRecipientSkipped")
    def skip(self, reason: str, actor: str, correlation_id: str) -> None:
        self.state = RecipientState.SKIPPED.value


@dataclass(frozen=True)
class CampaignSend:
    """What the sender prepared for one recipient: who, on which channel, the rendered text."""

    recipient_id: UUID
    contact_id: UUID
    channel: str
    personal: dict[str, Any]


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


def survivor(unit: UnitOfWork, contact: Contact) -> Contact:
    """The contact a merged duplicate now lives on (a few hops at most)."""
    hops = 0
    while contact.merged_into is not None and hops < 10:
        contact = unit.get(contact.merged_into, Contact)
        hops += 1
    return contact


def automatic_conversation(
    unit: UnitOfWork, contact: Contact, channel: str, actor: str, correlation_id: str
) -> Conversation:
    """The contact's automatic thread on `channel` (shared with rules), started if missing.

    A thread a campaign starts is marked pending (written to, waiting for the client), as
    an operator's reply marks it, so a large campaign does not fill the open inbox; the
    client's answer reopens it.
    """
    wanted = conversation_id_for(contact.id, channel, AUTOMATIC_THREAD)
    existing = unit.find(wanted, Conversation)
    if existing is not None:
        return existing
    conversation = unit.add(
        Conversation(
            id=wanted,
            contact_id=contact.id,
            channel=channel,
            thread_key=AUTOMATIC_THREAD,
            personal={"subject": ""},
            actor=actor,
            correlation_id=correlation_id,
        )
    )
    conversation.change_status(ConversationStatus.PENDING.value, None, actor, correlation_id)
    return conversation


class CampaignCommands:
    """The campaign commands of the application (the sender in services/ submits most)."""

    writer: GroupCommitWriter

    def create_campaign(
        self,
        name: str,
        template: str,
        segment: dict[str, Any],
        channel: str,
        per_minute: int | None,
        actor: str,
    ) -> Committed[UUID]:
        """Record a draft; the segment is checked by the caller (it is the views' language)."""
        cleaned = check_campaign_input(name, channel, per_minute)
        slug, template_id = template_id_of(template)
        new_id = uuid4()
        correlation_id = str(new_id)

        def command(unit: UnitOfWork) -> UUID:
            if unit.find(template_id, Template) is None:
                raise InvalidInput("template", f"no template with the slug {slug!r}")
            unit.add(
                Campaign(
                    id=new_id,
                    name=cleaned,
                    template_slug=slug,
                    template_id=template_id,
                    segment=dict(segment),
                    channel=channel,
                    per_minute=per_minute,
                    actor=actor,
                    correlation_id=correlation_id,
                )
            )
            return new_id

        return self.writer.submit(command)

    def start_campaign(self, campaign_id: UUID, actor: str) -> Committed[None]:
        def command(unit: UnitOfWork) -> None:
            campaign = unit.get(campaign_id, Campaign)
            if campaign.state != CampaignState.DRAFT.value:
                raise Conflict(f"campaign {campaign_id} is already {campaign.state}")
            template = unit.get(campaign.template_id, Template)
            campaign.start(template.version, actor, str(campaign_id))

        return self.writer.submit(command)

    def pause_campaign(self, campaign_id: UUID, actor: str) -> Committed[None]:
        def command(unit: UnitOfWork) -> None:
            campaign = unit.get(campaign_id, Campaign)
            if not campaign.running:
                raise Conflict(f"campaign {campaign_id} is {campaign.state}: nothing to pause")
            if not campaign.paused:
                campaign.pause(actor, str(campaign_id))

        return self.writer.submit(command)

    def resume_campaign(self, campaign_id: UUID, actor: str) -> Committed[None]:
        def command(unit: UnitOfWork) -> None:
            campaign = unit.get(campaign_id, Campaign)
            if not campaign.running:
                raise Conflict(f"campaign {campaign_id} is {campaign.state}: nothing to resume")
            if campaign.paused:
                campaign.resume(actor, str(campaign_id))

        return self.writer.submit(command)

    def queue_campaign_recipients(
        self, campaign_id: UUID, entries: list[tuple[UUID, str]], cursor: str, actor: str
    ) -> Committed[int]:
        """Queue one batch of the audience (contact id, channel); contacts queued before are
        left alone, so reading the segment again after a restart adds nobody twice."""

        def command(unit: UnitOfWork) -> int:
            campaign = unit.get(campaign_id, Campaign)
            if campaign.state != CampaignState.RESOLVING.value:
                return 0
            ids = [recipient_id_for(campaign_id, contact_id) for contact_id, _ in entries]
            unit.prefetch(ids)
            added = 0
            for (contact_id, channel), recipient_id in zip(entries, ids, strict=True):
                if unit.exists(recipient_id):
                    continue
                unit.add(
                    CampaignRecipient(
                        id=recipient_id,
                        campaign_id=campaign_id,
                        contact_id=contact_id,
                        channel=channel,
                        actor=actor,
                        correlation_id=str(campaign_id),
                    )
                )
                added += 1
            campaign.audience_queued(
                added, campaign.queued + added, cursor, actor, str(campaign_id)
            )
            return added

        return self.writer.submit(command)

    def complete_campaign_audience(self, campaign_id: UUID, actor: str) -> Committed[int]:
        def command(unit: UnitOfWork) -> int:
            campaign = unit.get(campaign_id, Campaign)
            if campaign.state == CampaignState.RESOLVING.value:
                campaign.audience_resolved(campaign.queued, actor, str(campaign_id))
            return campaign.queued

        return self.writer.submit(command)

    def send_campaign_message(self, send: CampaignSend, actor: str) -> Committed[SendOutcome]:
        """Record the message and mark the recipient sent, in one transaction, or say why not."""

        def command(unit: UnitOfWork) -> SendOutcome:
            recipient = unit.get(send.recipient_id, CampaignRecipient)
            if recipient.state != RecipientState.QUEUED.value:
                return SendOutcome.ALREADY
            campaign = unit.get(recipient.campaign_id, Campaign)
            correlation_id = str(campaign.id)
            if campaign.state != CampaignState.SENDING.value:
                return SendOutcome.STOPPED
            if campaign.paused:
                return SendOutcome.PAUSED
            contact = survivor(unit, unit.get(recipient.contact_id, Contact))
            if contact.id != send.contact_id:
                return SendOutcome.STALE
            if contact.id != recipient.contact_id and unit.exists(
                recipient_id_for(campaign.id, contact.id)
            ):
                recipient.skip(
                    f"merged into contact {contact.id}, a recipient of this campaign too",
                    actor,
                    correlation_id,
                )
                return SendOutcome.SKIPPED
            if contact.has_opted_out(send.channel):
                recipient.skip(
                    f"opted out of automatic messages on {send.channel}", actor, correlation_id
                )
                return SendOutcome.SKIPPED
            message_id = campaign_message_id(recipient.id)
            if unit.exists(message_id):
                return SendOutcome.ALREADY
            conversation = automatic_conversation(
                unit, contact, send.channel, actor, correlation_id
            )
            unit.add(
                Message.request_send(
                    id=message_id,
                    conversation_id=conversation.id,
                    contact_id=contact.id,
                    channel=send.channel,
                    personal=dict(send.personal),
                    attachments=[],
                    actor=actor,
                    correlation_id=correlation_id,
                )
            )
            recipient.mark_sent(message_id, send.channel, contact.id, actor, correlation_id)
            return SendOutcome.SENT

        return self.writer.submit(command)

    def skip_campaign_recipient(
        self, recipient_id: UUID, reason: str, actor: str
    ) -> Committed[SendOutcome]:
        """Record why a recipient gets nothing (only while the campaign runs unpaused)."""

        def command(unit: UnitOfWork) -> SendOutcome:
            recipient = unit.get(recipient_id, CampaignRecipient)
            if recipient.state != RecipientState.QUEUED.value:
                return SendOutcome.ALREADY
            campaign = unit.get(recipient.campaign_id, Campaign)
            if campaign.state != CampaignState.SENDING.value:
                return SendOutcome.STOPPED
            if campaign.paused:
                return SendOutcome.PAUSED
            recipient.skip(reason, actor, str(recipient.campaign_id))
            return SendOutcome.SKIPPED

        return self.writer.submit(command)

    def finish_campaign(self, campaign_id: UUID, reason: str, actor: str) -> Committed[bool]:
        def command(unit: UnitOfWork) -> bool:
            campaign = unit.get(campaign_id, Campaign)
            if campaign.state == CampaignState.FINISHED.value:
                return False
            campaign.finish(reason, actor, str(campaign_id))
            return True

        return self.writer.submit(command)

    def send_campaign_test(
        self,
        campaign_id: UUID,
        contact_id: UUID,
        channel: str,
        personal: dict[str, Any],
        actor: str,
    ) -> Committed[UUID]:
        """One trial message to one contact, recorded on the campaign, not as a recipient."""
        message_id = uuid4()
        correlation_id = str(campaign_id)

        def command(unit: UnitOfWork) -> UUID:
            campaign = unit.get(campaign_id, Campaign)
            contact = survivor(unit, unit.get(contact_id, Contact))
            if contact.has_opted_out(channel):
                raise Conflict(f"the contact opted out of automatic messages on {channel}")
            conversation = automatic_conversation(unit, contact, channel, actor, correlation_id)
            unit.add(
                Message.request_send(
                    id=message_id,
                    conversation_id=conversation.id,
                    contact_id=contact.id,
                    channel=channel,
                    personal=dict(personal),
                    attachments=[],
                    actor=actor,
                    correlation_id=correlation_id,
                )
            )
            campaign.test_sent(contact.id, message_id, channel, actor, correlation_id)
            return message_id

        return self.writer.submit(command)
