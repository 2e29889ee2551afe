"""What a rule's conditions and templates see: the contact, company, conversation and operator,
read from the views (which the runner first lets catch up with the event)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from threadline.projections.queries import Queries
from threadline.projections.segments import build_contact_filter, pairs_of
from threadline.triggers.events import TriggerEvent


class FactReader:
    def __init__(self, queries: Queries) -> None:
        self.queries = queries

    def facts(self, event: TriggerEvent, now: datetime | None = None) -> dict[str, Any]:
        contact = self.contact(str(event.contact_id)) if event.contact_id else {}
        company: dict[str, Any] = {}
        if contact.get("company_id"):
            row = self.queries.db.query_one(
                "SELECT id, name, attributes FROM companies WHERE id = ?", [contact["company_id"]]
            )
            if row is not None:
                company = {
                    "id": row["id"],
                    "name": row["name"],
                    "attributes": json.loads(row["attributes"] or "{}"),
                }
        conversation: dict[str, Any] = {}
        if event.conversation_id:
            row = self.queries.db.query_one(
                "SELECT id, channel, subject, status, assignee_id, thread_key, message_count,"
                " unread_count, last_direction"
                " FROM inbox_conversations WHERE id = ?",
                [str(event.conversation_id)],
            )
            conversation = dict(row) if row else {}
        operator: dict[str, Any] = {}
        owner = conversation.get("assignee_id") or contact.get("responsible_id")
        if owner:
            row = self.queries.db.query_one(
                "SELECT id, name, email FROM users WHERE id = ?", [owner]
            )
            operator = dict(row) if row else {}
        return {
            "event": event.facts,
            "contact": contact,
            "company": company,
            "conversation": conversation,
            "operator": operator,
            "deal": {},
            "now": now or datetime.now(UTC),
        }

    def contact(self, contact_id: str) -> dict[str, Any]:
        card = self.queries.contact(contact_id)
        if card is None:
            return {}
        identities = card.get("identities", [])
        first = {}
        for identity in identities:
            first.setdefault(identity["kind"], identity["value"])
        name = str(card.get("display_name", ""))
        return {
            **card,
            "first_name": name.split()[0] if name.split() else "",
            "email": first.get("email", ""),
            "phone": first.get("phone", ""),
            "telegram": first.get("telegram", ""),
        }

    def in_segment(self, contact_id: str, segment: dict[str, Any], registry: Any) -> bool:
        flt = build_contact_filter(pairs_of(segment), registry, field_prefix="segment")
        where, params = flt.where()
        row = self.queries.db.query_one(
            f"SELECT 1 AS hit FROM contacts c WHERE c.id = ? AND ({where})", [contact_id, *params]
        )
        return row is not None
