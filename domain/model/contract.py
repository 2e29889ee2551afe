"""The Contract aggregate: an agreement with a client or a supplier, its amount and its term.

A contract is a business fact of its own (number, dates, amount, counterparty), whether or
not Threadline printed it: many are signed on the client's paper. The printed one is a
`Document` of kind ``contract`` that names the contract. Its end date drives the
``contract.expiring`` trigger; a prolonged contract records `ContractChanged` with the new
end date, so the reminder comes again for the new term.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from threadline.domain.model.errors import Conflict
from threadline.domain.model.history_clock import HistoryClock


class ContractStatus(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"  # terminated or fulfilled before (or at) its end


class Contract(Aggregate):
    class ContractRegistered(HistoryClock, Aggregate.Created):
        number: str
        signed_on: str
        starts_on: str | None
        ends_on: str | None
        amount: dict[str, str] | None  # None: a framework agreement without a total
        deal_id: UUID | None
        company_id: UUID | None
        contact_id: UUID | None
        personal: dict[str, Any]  # {"title": subject of the contract}
        actor: str
        correlation_id: str

    @event(ContractRegistered)
    def __init__(
        self,
        id: UUID,
        number: str,
        signed_on: str,
        starts_on: str | None,
        ends_on: str | None,
        amount: dict[str, str] | None,
        deal_id: UUID | None,
        company_id: UUID | None,
        contact_id: UUID | None,
        personal: dict[str, Any],
        actor: str,
        correlation_id: str,
    ) -> None:
        self.number = number
        self.signed_on = signed_on
        self.starts_on = starts_on
        self.ends_on = ends_on
        self.amount = amount
        self.deal_id = deal_id
        self.company_id = company_id
        self.contact_id = contact_id
        self.title = str(personal.get("title", ""))
        self.status = ContractStatus.ACTIVE.value

    class ContractChanged(HistoryClock, Aggregate.Event):
        """Only what changed: any of number, signed_on, starts_on, ends_on, amount, title."""

        changes: dict[str, Any]
        personal: dict[str, Any]
        contact_id: UUID | None
        actor: str
        correlation_id: str

    def change(
        self, changes: dict[str, Any], title: str | None, actor: str, correlation_id: str
    ) -> None:
        if self.status != ContractStatus.ACTIVE.value:
            raise Conflict(f"contract {self.number} is closed")
        different = {k: v for k, v in changes.items() if getattr(self, k) != v}
        personal = {"title": title} if title is not None and title != self.title else {}
        if different or personal:
            self._changed(different, personal, self.contact_id, actor, correlation_id)

    @event(ContractChanged)
    def _changed(
        self,
        changes: dict[str, Any],
        personal: dict[str, Any],
        contact_id: UUID | None,
        actor: str,
        correlation_id: str,
    ) -> None:
        for key, value in changes.items():
            setattr(self, key, value)
        if "title" in personal:
            self.title = str(personal["title"])

    class ContractClosed(HistoryClock, Aggregate.Event):
        reason: str
        contact_id: UUID | None
        actor: str
        correlation_id: str

    def close(self, reason: str, actor: str, correlation_id: str) -> None:
        if self.status == ContractStatus.CLOSED.value:
            raise Conflict(f"contract {self.number} is already closed")
        self._closed(reason.strip()[:500], self.contact_id, actor, correlation_id)

    @event(ContractClosed)
    def _closed(
        self, reason: str, contact_id: UUID | None, actor: str, correlation_id: str
    ) -> None:
        self.status = ContractStatus.CLOSED.value
