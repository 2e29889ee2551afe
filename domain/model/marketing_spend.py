"""Marketing spend: what was paid for advertising from one source over a period.

An entry names the source (a utm_source, a channel or a web form's slug, as the sources
report keys leads), optionally the utm campaign, the period it paid for (first and last
day, both inclusive, business dates) and the amount with its currency. The sources report
spreads an entry evenly over its days, so a report for part of the period takes that part
of the amount. Entries are recorded, corrected and removed; a removed entry stays in the
log (an auditor sees it) but counts nowhere and refuses corrections.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from threadline.domain.model.errors import Conflict
from threadline.domain.model.history_clock import HistoryClock

SPEND_FIELDS = ("source", "utm_campaign", "starts_on", "ends_on", "amount")
"""What a correction may change besides the note (the note is personal: free text)."""


class MarketingSpend(Aggregate):
    class MarketingSpendRecorded(HistoryClock, Aggregate.Created):
        source: str
        utm_campaign: str  # "" when the entry is for the source as a whole
        starts_on: str  # ISO date, inclusive
        ends_on: str  # ISO date, inclusive
        amount: dict[str, str]  # Money.state()
        personal: dict[str, Any]  # {"note": ...}
        actor: str
        correlation_id: str

    @event(MarketingSpendRecorded)
    def __init__(
        self,
        id: UUID,
        source: str,
        utm_campaign: str,
        starts_on: str,
        ends_on: str,
        amount: dict[str, str],
        personal: dict[str, Any],
        actor: str,
        correlation_id: str,
    ) -> None:
        self.source = source
        self.utm_campaign = utm_campaign
        self.starts_on = starts_on
        self.ends_on = ends_on
        self.amount = amount
        self.note = str(personal.get("note", ""))
        self.removed = False

    class MarketingSpendCorrected(HistoryClock, Aggregate.Event):
        """Only what changed: any of `SPEND_FIELDS`; the note in `personal`."""

        changes: dict[str, Any]
        personal: dict[str, Any]
        actor: str
        correlation_id: str

    def correct(
        self, changes: dict[str, Any], note: str | None, actor: str, correlation_id: str
    ) -> bool:
        """Record what differs from the entry now; False when nothing does."""
        self._refuse_if_removed()
        different = {k: v for k, v in changes.items() if getattr(self, k) != v}
        personal = {"note": note} if note is not None and note != self.note else {}
        if not different and not personal:
            return False
        self._corrected(different, personal, actor, correlation_id)
        return True

    @event(MarketingSpendCorrected)
    def _corrected(
        self, changes: dict[str, Any], personal: dict[str, Any], actor: str, correlation_id: str
    ) -> None:
        for key, value in changes.items():
            setattr(self, key, value)
        if "note" in personal:
            self.note = str(personal["note"])

    class MarketingSpendRemoved(HistoryClock, Aggregate.Event):
        actor: str
        correlation_id: str

    def remove(self, actor: str, correlation_id: str) -> None:
        self._refuse_if_removed()
        self._removed(actor, correlation_id)

    @event(MarketingSpendRemoved)
    def _removed(self, actor: str, correlation_id: str) -> None:
        self.removed = True

    def _refuse_if_removed(self) -> None:
        if self.removed:
            raise Conflict(f"marketing spend entry {self.id} was removed")
