"""Ingesting one inbound message: find or create the contact and thread, append the message.

`ingest_command` turns one `InboundMessage` into events: the contact is found by
any identity it carries (or created as a lead with the message's source as its first
touch; a merged contact is followed to its survivor), the conversation is found by thread
(or started, or reopened), and the message is appended under an id derived from
the channel and dedup key, so a second delivery is reported as a duplicate. Every
message keeps its own source (channel, form, utm_*, referrer), whether or not it
created the contact: the contact's source is the first touch, the message's is this one.
`ingest_plan` tells the group-commit writer what to prefetch, in rounds, so a
batch of messages reads the store a few times rather than once per message.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any
from uuid import UUID

from threadline.domain.commands.base import Commands
from threadline.domain.commands.consent import record_consent
from threadline.domain.commands.identity_claims import claim_contact_identity, claim_owner
from threadline.domain.commands.surveys import record_survey_reply
from threadline.domain.infrastructure.group_commit import Command, Committed, Prefetch
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.consent_policy import ConsentPolicy, consent_policy_id
from threadline.domain.model.contact import Contact, Lifecycle, survivor
from threadline.domain.model.conversation import (
    Conversation,
    ConversationStatus,
    conversation_id_for,
)
from threadline.domain.model.identities import Identity
from threadline.domain.model.inbound import InboundMessage, IngestResult
from threadline.domain.model.message import Message


class IngestCommands(Commands):
    def ingest(self, message: InboundMessage) -> Committed[IngestResult]:
        """Append one inbound message (or report it as a duplicate); safe to call concurrently."""
        return self.writer.submit(ingest_command(message), ingest_plan(message))


def ingest_plan(message: InboundMessage) -> Prefetch:
    """The prefetch plan: first the message and claims, then the owners' contacts and threads."""

    def plan(unit: UnitOfWork) -> Iterator[Iterable[UUID]]:
        replied = message.replied_message_ids()
        policies = [consent_policy_id(purpose) for purpose in message.consents]
        yield [message.message_id, *(i.claim_id for i in message.identities), *replied, *policies]
        held = (claim_owner(unit, str(i.kind), i.value) for i in message.identities)
        owners = [owner for owner in held if owner is not None]
        answered = [m.conversation_id for m in (unit.find(r, Message) for r in replied) if m]
        yield [*owners, *answered]
        contacts = [unit.find(owner, Contact) for owner in owners]
        merged = [c.merged_into for c in contacts if c is not None and c.merged_into]
        yield merged
        threads = [
            conversation_id_for(c.id, message.channel, message.thread_key)
            for c in (unit.find(o, Contact) for o in [*owners, *merged])
            if c is not None
        ]
        yield threads

    return plan


def _resolve_contact(unit: UnitOfWork, owner: UUID) -> Contact | None:
    """The live contact behind an identity claim's owner (or a thread's), if it exists."""
    contact = unit.find(owner, Contact)
    return None if contact is None else survivor(contact, lambda i: unit.get(i, Contact))


def ingest_command(message: InboundMessage) -> Command[IngestResult]:
    """The command that appends one inbound message; see the module docstring."""

    def command(unit: UnitOfWork) -> IngestResult:
        message_id = message.message_id
        existing = unit.find(message_id, Message)
        if existing is not None:
            return IngestResult(
                message_id, existing.contact_id, existing.conversation_id, duplicate=True
            )
        actor = f"channel:{message.channel}"
        correlation_id = message.correlation_id or str(message_id)
        contact: Contact | None = None
        unclaimed: list[Identity] = []
        for identity in message.identities:
            owner = claim_owner(unit, str(identity.kind), identity.value)
            if owner is None:
                unclaimed.append(identity)
            elif contact is None:
                contact = _resolve_contact(unit, owner)
        created = contact is None
        if contact is None:
            contact = unit.add(
                Contact(
                    personal={
                        "display_name": message.sender_name or message.identities[0].value,
                        "identities": [i.as_dict() for i in unclaimed],
                    },
                    lifecycle=Lifecycle.LEAD.value,
                    source=message.source,
                    responsible_id=None,
                    actor=actor,
                    correlation_id=correlation_id,
                )
            )
        elif message.sender_name and contact.display_name in ("", *_identity_values(contact)):
            contact.rename({"display_name": message.sender_name}, actor, correlation_id)
        for identity in unclaimed:
            claim_contact_identity(
                unit, contact, str(identity.kind), identity.value, actor, correlation_id
            )
        _record_consents(unit, message, contact, actor, correlation_id)
        conversation_id = conversation_id_for(contact.id, message.channel, message.thread_key)
        conversation: Conversation | None = None
        if not created:  # a contact created just now has no conversations to ask for
            conversation = _answered_conversation(unit, message, contact) or unit.find(
                conversation_id, Conversation
            )
        if conversation is None:
            conversation = unit.add(
                Conversation.start(
                    id=conversation_id,
                    contact_id=contact.id,
                    channel=message.channel,
                    thread_key=message.thread_key,
                    subject=message.subject,
                    address=message.identities[0].as_dict(),
                    actor=actor,
                    correlation_id=correlation_id,
                    inbox_id=message.inbox_id,
                )
            )
        elif (
            not record_survey_reply(
                unit, conversation, message.text, message_id, actor, correlation_id
            )
            and conversation.status != ConversationStatus.OPEN.value
        ):  # a survey's score keeps the conversation as it is
            conversation.change_status(ConversationStatus.OPEN.value, None, actor, correlation_id)
        personal: dict[str, Any] = {
            "text": message.text,
            "html": message.html,
            "subject": message.subject,
            "sender_name": message.sender_name,
            "attachment_names": [a.filename for a in message.attachments],
        }
        unit.add(
            Message.receive(
                id=message_id,
                conversation_id=conversation.id,
                contact_id=contact.id,
                channel=message.channel,
                dedup_key=message.dedup_key,
                personal=personal,
                attachments=[a.public() for a in message.attachments],
                metadata=message.metadata,
                actor=actor,
                correlation_id=correlation_id,
                source=message.source,
            )
        )
        return IngestResult(message_id, contact.id, conversation.id, False, created)

    return command


def _record_consents(
    unit: UnitOfWork, message: InboundMessage, contact: Contact, actor: str, correlation_id: str
) -> None:
    """The consents the message carries (a form's ticked boxes), in the texts now in force."""
    form = message.source.get("form")
    via = f"form:{form}" if form else f"channel:{message.channel}"
    for purpose in message.consents:
        policy = unit.find(consent_policy_id(purpose), ConsentPolicy)
        if policy is not None:  # the form checked it exists; a policy never goes away
            record_consent(contact, policy, via, actor, correlation_id)


def _answered_conversation(
    unit: UnitOfWork, message: InboundMessage, contact: Contact
) -> Conversation | None:
    """The conversation of the nearest message this one answers, if it is this contact's.

    A reply whose headers name only its parent (In-Reply-To, no References) would
    otherwise get the parent's id as thread key and start a second conversation.
    Someone else's thread (a colleague in copy answering) is not joined: the
    sender gets a conversation of their own.
    """
    for replied_id in message.replied_message_ids():
        replied = unit.find(replied_id, Message)
        if replied is None:
            continue
        conversation = unit.find(replied.conversation_id, Conversation)
        if conversation is None:
            continue
        owner = _resolve_contact(unit, conversation.contact_id)
        if owner is not None and owner.id == contact.id:
            return conversation
    return None


def _identity_values(contact: Contact) -> list[str]:
    return [identity["value"] for identity in contact.identities]
