"""The SavedSegment aggregate: a named contact filter, written once and used everywhere.

A saved segment is the segment language of `GET /api/contacts` (query-style pairs such as
``[["tag", "vip"], ["abc_class", "A"]]``) under a unique name, so a campaign's audience, a
rule's condition and a report's slice can name it by id instead of repeating the filter.
The filter is checked by the views' language before a command reaches the log (the domain
does not know the views); here it is only kept as plain pairs. Names are unique
(case-insensitively): a name is claimed by an identity claim of kind ``segment-name``,
so two writers saving the same name meet on one aggregate id and the second is refused.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from threadline.domain.model.errors import Conflict
from threadline.domain.model.history_clock import HistoryClock

SEGMENT_NAME_KIND = "segment-name"


def segment_name_key(name: str) -> str:
    """The form a name is unique in: words joined by one space, case folded."""
    return " ".join(name.split()).casefold()


class SavedSegment(Aggregate):
    """Name, description (personal: free text) and the filter as query-style pairs."""

    class SegmentSaved(HistoryClock, Aggregate.Created):
        name: str
        pairs: list[list[str]]
        personal: dict[str, Any]  # {"description": free text}
        actor: str
        correlation_id: str

    @event(SegmentSaved)
    def __init__(
        self,
        id: UUID,
        name: str,
        pairs: list[list[str]],
        personal: dict[str, Any],
        actor: str,
        correlation_id: str,
    ) -> None:
        self.name = name
        self.pairs = [list(p) for p in pairs]
        self.description = str(personal.get("description", ""))
        self.deleted = False

    class SegmentChanged(HistoryClock, Aggregate.Event):
        """Only what changed: ``name`` and/or ``pairs``; the description in `personal`."""

        changes: dict[str, Any]
        personal: dict[str, Any]
        actor: str
        correlation_id: str

    def change(
        self,
        name: str | None,
        pairs: list[list[str]] | None,
        description: str | None,
        actor: str,
        correlation_id: str,
    ) -> bool:
        """Record what differs; False when nothing does (no event)."""
        self._refuse_if_deleted()
        changes: dict[str, Any] = {}
        if name is not None and name != self.name:
            changes["name"] = name
        if pairs is not None and [list(p) for p in pairs] != self.pairs:
            changes["pairs"] = [list(p) for p in pairs]
        personal = (
            {"description": description}
            if description is not None and description != self.description
            else {}
        )
        if not changes and not personal:
            return False
        self._changed(changes, personal, actor, correlation_id)
        return True

    @event(SegmentChanged)
    def _changed(
        self, changes: dict[str, Any], personal: dict[str, Any], actor: str, correlation_id: str
    ) -> None:
        if "name" in changes:
            self.name = str(changes["name"])
        if "pairs" in changes:
            self.pairs = [list(p) for p in changes["pairs"]]
        if "description" in personal:
            self.description = str(personal["description"])

    class SegmentDeleted(HistoryClock, Aggregate.Event):
        actor: str
        correlation_id: str

    def delete(self, actor: str, correlation_id: str) -> None:
        self._refuse_if_deleted()
        self._deleted(actor, correlation_id)

    @event(SegmentDeleted)
    def _deleted(self, actor: str, correlation_id: str) -> None:
        self.deleted = True

    def _refuse_if_deleted(self) -> None:
        if self.deleted:
            raise Conflict(f"the segment {self.name!r} is deleted")
