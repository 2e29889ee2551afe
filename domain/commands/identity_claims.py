"""Claiming an identity (an e-mail, a phone, a provider's id) for one owner, inside a command.

An identity belongs to at most one owner: the claim aggregate's id is derived from
the identity, so two writers claiming it meet on one id and the store refuses the
second. Contacts, users (their login e-mail) and outbound messages (a provider's id
for status callbacks) all claim through here, so "who holds this" and "it is taken"
are decided in one place.
"""

from __future__ import annotations

from uuid import UUID

from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.contact import Contact
from threadline.domain.model.errors import Conflict
from threadline.domain.model.identities import identity_claim_id
from threadline.domain.model.identity_claim import IdentityClaim


def claim_owner(unit: UnitOfWork, kind: str, value: str) -> UUID | None:
    """The id of whoever holds the identity (`kind`, `value`), or None if nobody does."""
    claim = unit.find(identity_claim_id(kind, value), IdentityClaim)
    return None if claim is None else claim.owner_id


def claim_identity(
    unit: UnitOfWork,
    kind: str,
    value: str,
    owner: UUID,
    actor: str,
    correlation_id: str,
    taken: str = "",
) -> IdentityClaim | None:
    """Claim (`kind`, `value`) for `owner`; the new claim, or None if `owner` holds it already.

    Raises `Conflict` (`taken`, or "<kind> <value> belongs to another contact") when
    someone else holds it. The identity value only feeds the claim's id.
    """
    claim = unit.find(identity_claim_id(kind, value), IdentityClaim)
    holder = None if claim is None else claim.owner_id
    if holder == owner:
        return None
    if holder is not None:
        raise Conflict(taken or f"{kind} {value} belongs to another contact")
    if claim is not None:  # released when its contact was forgotten: the new owner takes it
        claim.transfer(owner, actor, correlation_id)
        return claim
    return unit.add(IdentityClaim.claim(kind, value, owner, actor, correlation_id))


def claim_contact_identity(
    unit: UnitOfWork, contact: Contact, kind: str, value: str, actor: str, correlation_id: str
) -> None:
    """Give `contact` the identity: claim it (`Conflict` if another holds it), then record it."""
    claim_identity(unit, kind, value, contact.id, actor, correlation_id)
    if not contact.has_identity(kind, value):
        contact.add_identity(kind, {"value": value}, actor, correlation_id)
