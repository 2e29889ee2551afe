"""Identity claims: the store's own uniqueness check for identities.

A claim's id is ``uuid5(kind:value)``, so two writers that both try to give the
same e-mail address to a new contact collide on the same aggregate id and the
store rejects the second one; no separate unique index can drift from the log.
The claim carries no identity value, only the owning contact.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from threadline.domain.model.identities import identity_claim_id


class IdentityClaim(Aggregate):
    """Binds one normalised identity to exactly one contact (or user, for logins)."""

    @classmethod
    def claim(
        cls, kind: str, value: str, owner_id: UUID, actor: str, correlation_id: str
    ) -> IdentityClaim:
        """Create the claim; the identity value only feeds the id and is never stored."""
        return cls(
            id=identity_claim_id(kind, value),
            kind=kind,
            owner_id=owner_id,
            actor=actor,
            correlation_id=correlation_id,
        )

    class IdentityClaimed(Aggregate.Created):
        kind: str
        owner_id: UUID
        actor: str
        correlation_id: str

    @event(IdentityClaimed)
    def __init__(
        self, id: UUID, kind: str, owner_id: UUID, actor: str, correlation_id: str
    ) -> None:
        self.kind = kind
        self.owner_id: UUID | None = owner_id

    class IdentityClaimTransferred(Aggregate.Event):
        owner_id: UUID
        actor: str
        correlation_id: str

    @event(IdentityClaimTransferred)
    def transfer(self, owner_id: UUID, actor: str, correlation_id: str) -> None:
        self.owner_id = owner_id

    class IdentityClaimReleased(Aggregate.Event):
        """Its contact was forgotten: the identity is free, and a client who writes from it
        again becomes a new contact (the claim is transferred to it)."""

        actor: str
        correlation_id: str

    @event(IdentityClaimReleased)
    def release(self, actor: str, correlation_id: str) -> None:
        self.owner_id = None
