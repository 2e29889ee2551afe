"""A deal's history: its own events, its tasks, and the client's communication while it was open.

Nothing here is stored twice: the deal log, the task list and the contact timeline each own
their rows, and this reader merges them in log order. "While it was open" is from the deal's
creation to its close (now for an open deal); conversations linked to the deal explicitly are
shown whenever they happened. A company's deal shows the communication of every contact of
the company.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from threadline.projections.companies import company_contacts
from threadline.projections.deals import deal, deal_log, linked_conversations
from threadline.projections.sql import ViewReader
from threadline.projections.tasks import tasks_of_deal
from threadline.projections.timeline import communication_between


@dataclass(frozen=True)
class HistoryEntry:
    """One entry of a deal's history: `source` says which view it comes from."""

    at: str
    source: str  # deal, task, communication
    kind: str
    actor: str
    title: str
    data: dict[str, Any]
    ref_id: str
    conversation_id: str | None = None
    channel: str | None = None
    direction: str | None = None


def deal_history(
    db: ViewReader, deal_id: UUID | str, limit: int = 1000
) -> list[HistoryEntry] | None:
    """The deal's history in time order, or None for an unknown deal."""
    found = deal(db, deal_id)
    if found is None:
        return None
    entries = [
        HistoryEntry(row.occurred_at, "deal", row.kind, row.actor, "", row.data, row.deal_id)
        for row in deal_log(db, deal_id)
    ]
    for task in tasks_of_deal(db, deal_id):
        entries.append(
            HistoryEntry(
                task.created_at,
                "task",
                f"task.{task.status}",
                task.created_by,
                task.title,
                {"type": task.type, "due_at": task.due_at, "closed_at": task.closed_at},
                task.id,
                task.conversation_id,
            )
        )
    contacts = [found.contact_id] if found.contact_id else []
    if found.company_id:
        contacts.extend(c.id for c in company_contacts(db, found.company_id))
    rows = communication_between(
        db,
        sorted(set(contacts)),
        found.created_at,
        found.closed_at,
        linked_conversations(db, deal_id),
        limit,
    )
    for row in rows:
        entries.append(
            HistoryEntry(
                row.occurred_at,
                "communication",
                row.kind,
                row.actor,
                row.title,
                {"body": row.body[:500], **row.data},
                row.ref_id,
                row.conversation_id,
                row.channel,
                row.direction,
            )
        )
    entries.sort(key=lambda e: e.at)
    return entries[-limit:]
