"""Forgetting a contact: crypto-shredding on request (issue 16, part 2).

`forget_contact` forgets the contact a request names together with everything that is
the same person in the log: the survivor it was merged into, and every duplicate
merged into that survivor (recursively). For each of them, in this order:

1. Read what must be undone while it can still be read: the identities (their claim
   ids), which sit in the contact's sealed personal parts.
2. Destroy the contacts' keys (`Keyring.destroy`). From this moment no process can
   open their personal parts; doing it before the events are appended means no crash
   can leave a forgotten contact with a key (an append that fails is retried by the
   caller and finds the keys gone, which is what was asked).
3. Append `ContactForgotten` to each contact and release its identity claims, so a
   client who writes again later becomes a new contact, with a new key.

Every view scrubs what it kept of the contact when it reads `ContactForgotten`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import Application

from threadline.domain.commands.base import Commands
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.contact import Contact, survivor
from threadline.domain.model.identities import identity_claim_id
from threadline.domain.model.identity_claim import IdentityClaim

MAX_GROUP = 1000  # merges are few; a group this large can only come from a bug


class ForgetCommands(Commands):
    def forget_contact(self, contact_id: UUID, actor: str) -> Committed[list[UUID]]:
        """Forget the contact (and its merged duplicates); the contacts forgotten.

        Raises `NotFound` for an unknown id. Forgetting again changes nothing."""
        reader = self._read_unit()
        head = survivor(reader.get(contact_id, Contact), lambda i: reader.get(i, Contact))
        group = _merged_group(head, lambda i: reader.get(i, Contact))
        claims = {
            identity_claim_id(identity["kind"], identity["value"])
            for contact in group
            for identity in contact.identities
        }
        ids = [contact.id for contact in group]
        keyring = self._keyring()
        if keyring is not None:
            keyring.destroy(ids)
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> list[UUID]:
            forgotten: list[UUID] = []
            for member in ids:
                contact = unit.get(member, Contact)
                if not contact.forgotten:
                    contact.forget(head.id, actor, correlation_id)
                    forgotten.append(member)
            for claim_id in claims:
                claim = unit.find(claim_id, IdentityClaim)
                if claim is not None and claim.owner_id in ids:
                    claim.release(actor, correlation_id)
            return forgotten

        return self.writer.submit(command)

    def _keyring(self) -> Any:
        """The mapper's keyring (`personal_cipher`), if the runtime gave it one."""
        assert isinstance(self, Application)
        return getattr(self.mapper, "keyring", None)


def _merged_group(head: Contact, load: Callable[[UUID], Contact]) -> list[Contact]:
    """`head` and every contact merged into it, at any depth."""
    group: list[Contact] = [head]
    seen = {head.id}
    index = 0
    while index < len(group) and len(group) < MAX_GROUP:
        for duplicate_id in group[index].absorbed:
            if duplicate_id not in seen:
                seen.add(duplicate_id)
                group.append(load(duplicate_id))
        index += 1
    return group
