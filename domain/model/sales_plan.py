"""The SalesPlan aggregate: what one manager is to achieve in one business month.

A plan is a revenue target (money with its currency) and, optionally, a gross-profit target
in the same currency and a number of deals to win. Its id is `uuid5` of the manager and the
month, so setting the plan of the same manager and month again is a change of that plan,
never a second plan. Clearing it records `SalesPlanCleared`; setting it again afterwards
records `SalesPlanChanged` with the new targets.
"""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from threadline.domain.model.errors import Conflict
from threadline.domain.model.history_clock import HistoryClock

SALES_PLAN_NAMESPACE = uuid5(NAMESPACE_URL, "https://threadline.dev/sales-plan")


def sales_plan_id(manager_id: UUID, month: str) -> UUID:
    """The one plan of a manager and a month (``2026-03``)."""
    return uuid5(SALES_PLAN_NAMESPACE, f"{manager_id}:{month}")


class SalesPlan(Aggregate):
    """Targets of one manager for one month; `cleared` once the plan was withdrawn."""

    class SalesPlanSet(HistoryClock, Aggregate.Created):
        manager_id: UUID
        month: str
        revenue: dict[str, str]  # Money.state()
        gross_profit: dict[str, str] | None
        deals_won: int | None
        actor: str
        correlation_id: str

    @event(SalesPlanSet)
    def __init__(
        self,
        id: UUID,
        manager_id: UUID,
        month: str,
        revenue: dict[str, str],
        gross_profit: dict[str, str] | None,
        deals_won: int | None,
        actor: str,
        correlation_id: str,
    ) -> None:
        self.manager_id = manager_id
        self.month = month
        self.revenue = revenue
        self.gross_profit = gross_profit
        self.deals_won = deals_won
        self.cleared = False

    class SalesPlanChanged(HistoryClock, Aggregate.Event):
        """The plan's targets as they are now (all of them, not only what changed)."""

        manager_id: UUID
        month: str
        revenue: dict[str, str]
        gross_profit: dict[str, str] | None
        deals_won: int | None
        actor: str
        correlation_id: str

    def targets(self) -> dict[str, Any]:
        return {
            "revenue": self.revenue,
            "gross_profit": self.gross_profit,
            "deals_won": self.deals_won,
        }

    def change(
        self,
        revenue: dict[str, str],
        gross_profit: dict[str, str] | None,
        deals_won: int | None,
        actor: str,
        correlation_id: str,
    ) -> bool:
        """Set new targets (a cleared plan is set again); False when nothing would change."""
        wanted = {"revenue": revenue, "gross_profit": gross_profit, "deals_won": deals_won}
        if not self.cleared and wanted == self.targets():
            return False
        self._changed(
            self.manager_id,
            self.month,
            revenue,
            gross_profit,
            deals_won,
            actor,
            correlation_id,
        )
        return True

    @event(SalesPlanChanged)
    def _changed(
        self,
        manager_id: UUID,
        month: str,
        revenue: dict[str, str],
        gross_profit: dict[str, str] | None,
        deals_won: int | None,
        actor: str,
        correlation_id: str,
    ) -> None:
        self.revenue = revenue
        self.gross_profit = gross_profit
        self.deals_won = deals_won
        self.cleared = False

    class SalesPlanCleared(HistoryClock, Aggregate.Event):
        manager_id: UUID
        month: str
        actor: str
        correlation_id: str

    def clear(self, actor: str, correlation_id: str) -> None:
        if self.cleared:
            raise Conflict(f"the sales plan of {self.month} is already cleared")
        self._cleared(self.manager_id, self.month, actor, correlation_id)

    @event(SalesPlanCleared)
    def _cleared(self, manager_id: UUID, month: str, actor: str, correlation_id: str) -> None:
        self.cleared = True
