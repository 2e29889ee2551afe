"""Consent commands: policies of consent, clients' consents and withdrawals, opt-ins.

Opt-outs are recorded by the system when a client writes STOP or follows an
unsubscribe link (`ContactOptedOut`); only a person may undo one, and the reason
they give travels in the `ContactOptedIn` event, so an auditor sees who overrode
a client's STOP and why.

Consent to a purpose of processing (152-FZ art. 9, GDPR art. 7) is recorded with the
version of the policy's text the client agreed to (`consent_policy`): a form records
it with the message that carried the ticked box (`ingest`), an operator who has it in
writing records it here, and a withdrawal is recorded here too. A mixin of
`Threadline`, like every command module.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from threadline.domain.commands.base import Commands
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.consent_policy import ConsentPolicy, clean_policy, consent_policy_id
from threadline.domain.model.contact import MAX_REASON_LENGTH, Contact, survivor
from threadline.domain.model.errors import InvalidInput, NotFound


class ConsentCommands(Commands):
    def opt_in_contact(
        self, contact_id: UUID, channel: str, reason: str, actor: str
    ) -> Committed[UUID]:
        """Opt the contact (or the client it was merged into) back in on `channel`.

        Returns the id of the contact that changed; the aggregate refuses an empty
        reason and a channel that is not opted out (`InvalidInput`, 422).
        """
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> UUID:
            contact = survivor(unit.get(contact_id, Contact), lambda i: unit.get(i, Contact))
            contact.opt_in(channel, reason, actor, correlation_id)
            return UUID(str(contact.id))

        return self.writer.submit(command)

    def publish_consent_policy(
        self, purpose: str, title: str, text: str, campaigns: bool, actor: str
    ) -> Committed[int]:
        """Create or revise the purpose's policy; the text's version in force afterwards."""
        slug, title, text = clean_policy(purpose, title, text)
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> int:
            policy = unit.find(consent_policy_id(slug), ConsentPolicy)
            if policy is None:
                policy = unit.add(
                    ConsentPolicy(
                        id=consent_policy_id(slug), purpose=slug, title=title, text=text,
                        campaigns=campaigns, actor=actor, correlation_id=correlation_id,
                    )
                )  # fmt: skip
            else:
                policy.revise(title, text, campaigns, actor, correlation_id)
            return policy.text_version

        return self.writer.submit(command)

    def give_consent(self, contact_id: UUID, purpose: str, via: str, actor: str) -> Committed[int]:
        """Record that the client agreed to the purpose's current text; its version.

        `NotFound` for an unknown purpose; nothing is recorded when the client already
        agreed to this version."""
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> int:
            policy = current_policy(unit, purpose)
            contact = survivor(unit.get(contact_id, Contact), lambda i: unit.get(i, Contact))
            record_consent(contact, policy, via, actor, correlation_id)
            return policy.text_version

        return self.writer.submit(command)

    def withdraw_consent(
        self, contact_id: UUID, purpose: str, via: str, reason: str, actor: str
    ) -> Committed[bool]:
        """Record the withdrawal; False when the client had not agreed (nothing recorded)."""
        cleaned = " ".join(reason.split())
        if len(cleaned) > MAX_REASON_LENGTH:
            raise InvalidInput("reason", f"is limited to {MAX_REASON_LENGTH} characters")
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> bool:
            policy = current_policy(unit, purpose)
            contact = survivor(unit.get(contact_id, Contact), lambda i: unit.get(i, Contact))
            if policy.purpose not in contact.consents:
                return False
            personal: dict[str, Any] = {"reason": cleaned} if cleaned else {}
            contact.withdraw_consent(policy.purpose, via, personal, actor, correlation_id)
            return True

        return self.writer.submit(command)


def current_policy(unit: UnitOfWork, purpose: str) -> ConsentPolicy:
    """The purpose's policy; `NotFound` when the business has none."""
    try:
        policy_id = consent_policy_id(purpose)
    except InvalidInput:
        raise NotFound("consent policy", purpose) from None
    policy = unit.find(policy_id, ConsentPolicy)
    if policy is None:
        raise NotFound("consent policy", purpose)
    return policy


def record_consent(
    contact: Contact, policy: ConsentPolicy, via: str, actor: str, correlation_id: str
) -> None:
    """The client agreed to the policy's current text (unless they had already)."""
    if not contact.has_consent(policy.purpose, policy.text_version):
        contact.give_consent(policy.purpose, policy.text_version, via[:80], actor, correlation_id)
