"""Campaign commands: draft, start, pause, resume, queue the audience, send, finish.

The sender (in services/) renders each message and picks the moment; the send
command re-checks inside the writer, against the aggregates rather than a view
that may lag, that the campaign runs unpaused, the recipient is still queued and
the contact has not opted out. See `threadline.domain.model.campaign` for why
recipients are aggregates.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from threadline.domain.commands.base import Commands
from threadline.domain.commands.consent import current_policy
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.campaign import (
    AUTOMATIC_THREAD,
    Campaign,
    CampaignRecipient,
    CampaignSend,
    CampaignState,
    RecipientState,
    SendOutcome,
    campaign_message_id,
    check_campaign_input,
    recipient_id_for,
    template_id_of,
)
from threadline.domain.model.contact import Contact, survivor
from threadline.domain.model.conversation import (
    Conversation,
    ConversationStatus,
    conversation_id_for,
)
from threadline.domain.model.errors import Conflict, InvalidInput
from threadline.domain.model.message import Message
from threadline.domain.model.template import Template


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
        Conversation.start(
            id=wanted,
            contact_id=contact.id,
            channel=channel,
            thread_key=AUTOMATIC_THREAD,
            subject="",
            address=None,
            actor=actor,
            correlation_id=correlation_id,
        )
    )
    conversation.change_status(ConversationStatus.PENDING.value, None, actor, correlation_id)
    return conversation


class CampaignCommands(Commands):
    """The campaign commands of the application (the sender in services/ submits most)."""

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
            template = unit.get(campaign.template_id, Template)
            campaign.start(template.version, actor, str(campaign_id))

        return self.writer.submit(command)

    def pause_campaign(self, campaign_id: UUID, actor: str) -> Committed[None]:
        def command(unit: UnitOfWork) -> None:
            unit.get(campaign_id, Campaign).pause(actor, str(campaign_id))

        return self.writer.submit(command)

    def resume_campaign(self, campaign_id: UUID, actor: str) -> Committed[None]:
        def command(unit: UnitOfWork) -> None:
            unit.get(campaign_id, Campaign).resume(actor, str(campaign_id))

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
            held = campaign.hold()
            if held is not None:
                return held
            contact = survivor(
                unit.get(recipient.contact_id, Contact), lambda i: unit.get(i, Contact)
            )
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
            for purpose in send.consents:
                policy = current_policy(unit, purpose)
                if not contact.has_consent(policy.purpose, policy.text_version):
                    recipient.skip(
                        f"no consent to {policy.purpose} (text version {policy.text_version})",
                        actor,
                        correlation_id,
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
            held = unit.get(recipient.campaign_id, Campaign).hold()
            if held is not None:
                return held
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
            contact = survivor(unit.get(contact_id, Contact), lambda i: unit.get(i, Contact))
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
