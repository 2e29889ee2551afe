"""Contact commands: create, change and merge contacts.

An identity a contact is given is claimed first (`identity_claims`), so one
e-mail address or phone number never belongs to two contacts.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from threadline.domain.commands.attributes import set_contact_attributes
from threadline.domain.commands.base import Commands
from threadline.domain.commands.identity_claims import claim_contact_identity, claim_identity
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.company import Company
from threadline.domain.model.contact import (
    Contact,
    Lifecycle,
    clean_lifecycle,
    clean_source,
    clean_tag,
)
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.identities import normalise_identity
from threadline.domain.model.user import User


class ContactCommands(Commands):
    def create_contact(
        self,
        actor: str,
        name: str,
        identities: list[tuple[str, str]] = (),  # type: ignore[assignment]
        attributes: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        source: dict[str, Any] | None = None,
        lifecycle: str = Lifecycle.LEAD.value,
        responsible_id: UUID | None = None,
    ) -> Committed[UUID]:
        normalised = [normalise_identity(k, v, self.default_region) for k, v in identities]
        if not name.strip() and not normalised:
            # Nothing would tell this row from the next "Unnamed client": refuse it.
            raise InvalidInput(
                "name", "a contact needs a name or an identity (e-mail, phone, Telegram id)"
            )
        cleaned_source = clean_source(source)
        cleaned_tags = sorted({clean_tag(t) for t in tags or []})
        clean_lifecycle(lifecycle)
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> UUID:
            contact = unit.add(
                Contact(
                    personal={
                        "display_name": name.strip() or (normalised[0].value if normalised else ""),
                        "identities": [i.as_dict() for i in normalised],
                    },
                    lifecycle=lifecycle,
                    source=cleaned_source,
                    responsible_id=responsible_id,
                    actor=actor,
                    correlation_id=correlation_id,
                )
            )
            for identity in normalised:
                claim_identity(
                    unit, str(identity.kind), identity.value, contact.id, actor, correlation_id
                )
            if attributes:
                set_contact_attributes(unit, contact, attributes, actor, correlation_id)
            if cleaned_tags:
                contact.add_tags(cleaned_tags, actor, correlation_id)
            return contact.id

        return self.writer.submit(command)

    def update_contact(
        self,
        contact_id: UUID,
        actor: str,
        name: str | None = None,
        attributes: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        add_tags: list[str] | None = None,
        remove_tags: list[str] | None = None,
        lifecycle: str | None = None,
        responsible_id: UUID | bool | None = False,
        identities: list[tuple[str, str]] | None = None,
        company_id: UUID | bool | None = False,
    ) -> Committed[None]:
        """Change what is given; `False` for the optional ids means "leave as it is"."""
        if name is not None and not name.strip():
            raise InvalidInput("name", "must not be empty")
        if lifecycle is not None:
            clean_lifecycle(lifecycle)
        wanted_tags = None if tags is None else {clean_tag(t) for t in tags}
        plus = {clean_tag(t) for t in add_tags or []}
        minus = {clean_tag(t) for t in remove_tags or []}
        normalised = [normalise_identity(k, v, self.default_region) for k, v in identities or []]
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> None:
            contact = unit.get(contact_id, Contact)
            if name is not None and name.strip() != contact.display_name:
                contact.rename({"display_name": name.strip()}, actor, correlation_id)
            if attributes:
                set_contact_attributes(unit, contact, attributes, actor, correlation_id)
            current = set(contact.tags)
            target = (wanted_tags if wanted_tags is not None else current) | plus
            target -= minus
            if target - current:
                contact.add_tags(sorted(target - current), actor, correlation_id)
            if current - target:
                contact.remove_tags(sorted(current - target), actor, correlation_id)
            if lifecycle is not None and lifecycle != contact.lifecycle:
                contact.change_lifecycle(lifecycle, actor, correlation_id)
            if responsible_id is not False and responsible_id != contact.responsible_id:
                if isinstance(responsible_id, UUID):
                    unit.get(responsible_id, User)
                contact.assign_responsible(
                    responsible_id if isinstance(responsible_id, UUID) else None,
                    actor,
                    correlation_id,
                )
            if company_id is not False and company_id != contact.company_id:
                if isinstance(company_id, UUID):
                    unit.get(company_id, Company)
                contact.link_company(
                    company_id if isinstance(company_id, UUID) else None, actor, correlation_id
                )
            for identity in normalised:
                claim_contact_identity(
                    unit, contact, str(identity.kind), identity.value, actor, correlation_id
                )

        return self.writer.submit(command)

    def merge_contacts(self, survivor_id: UUID, duplicate_id: UUID, actor: str) -> Committed[UUID]:
        """Fold `duplicate_id` into `survivor_id`; the duplicate's history stays in the log."""
        if survivor_id == duplicate_id:
            raise InvalidInput("other_id", "a contact cannot be merged with itself")
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> UUID:
            survivor = unit.get(survivor_id, Contact)
            duplicate = unit.get(duplicate_id, Contact)
            survivor.absorb_duplicate(duplicate, actor, correlation_id)
            return survivor_id

        return self.writer.submit(command)
