"""What a rule's conditions and templates see: the contact, company, conversation, deal and
operator, read from the views (which the runner first lets catch up with the event).

``company`` is the company the event names (an invoice's buyer, a supplier order's supplier),
else the contact's, else the deal's. ``deal`` is the deal the event names (a deal event, a task of a deal, a stale deal):
`deal_facts` of the deals view, so ``deal.open_task_count`` already counts the task whose
completion is being handled. ``deal.amount`` is the total as a decimal text (templates
write ``{{ deal.amount }} {{ deal.currency }}``); ``deal.total`` is the same money as
``{amount, currency}``, which conditions order by its amount (``deal.total gt 100000``).

The views may be further on than the event: two quick attribute changes are both in
the card before the runner looks at the first. For an event of the contact itself the
contact's own fields are therefore taken from the aggregate as it was at that event,
so `contact.attribute_changed` with `staff >= 500` sees the value that change set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from threadline.domain.model.contact import first_name_of
from threadline.projections.companies import company_facts
from threadline.projections.deals import deal_facts
from threadline.projections.documents import document
from threadline.projections.inbox import conversation_facts
from threadline.projections.queries import Queries, contact_in_filter
from threadline.projections.segments import build_contact_filter, pairs_of
from threadline.projections.sql import ViewReader
from threadline.projections.tasks import open_tasks_of_conversation
from threadline.projections.users import user
from threadline.triggers.events import TriggerEvent

ContactAsOf = Callable[[str, int], Any]
"""Loads a contact aggregate at a version (None if it cannot)."""

# The fields of the card that the Contact aggregate itself holds.
OWN_FIELDS = ("display_name", "lifecycle", "attributes", "tags", "responsible_id")


class FactReader:
    def __init__(self, queries: Queries, contact_as_of: ContactAsOf | None = None) -> None:
        self.queries = queries
        self.views: ViewReader = queries.db
        self.contact_as_of = contact_as_of

    def facts(self, event: TriggerEvent, now: datetime | None = None) -> dict[str, Any]:
        contact = self.contact(str(event.contact_id)) if event.contact_id else {}
        if contact:
            contact = self._as_of_event(contact, event)
        deal = self.deal(str(event.deal_id), now) if event.deal_id else {}
        company: dict[str, Any] = {}
        # The company the event names (an invoice's buyer, a supplier order's supplier), else
        # the contact's, else the deal's (a deal may name only a company).
        company_id = (
            event.facts.get("company_id") or contact.get("company_id") or deal.get("company_id")
        )
        if company_id:
            found = company_facts(self.views, str(company_id))
            if found is not None:
                company = asdict(found)
        conversation: dict[str, Any] = {}
        if event.conversation_id:
            shown = conversation_facts(self.views, event.conversation_id)
            if shown is not None:
                conversation = asdict(shown)
                conversation["open_task_count"] = open_tasks_of_conversation(self.views, shown.id)
        operator: dict[str, Any] = {}
        owner = (
            conversation.get("assignee_id")
            or contact.get("responsible_id")
            or deal.get("manager_id")  # a deal of a company nobody is responsible for
        )
        if owner:
            account = user(self.views, str(owner))
            if account is not None:
                operator = {"id": account.id, "name": account.name, "email": account.email}
        return {
            "event": self._paid_invoice(event.facts),
            "contact": contact,
            "company": company,
            "conversation": conversation,
            "operator": operator,
            "deal": deal,
            "now": now or datetime.now(UTC),
        }

    def _paid_invoice(self, facts: dict[str, Any]) -> dict[str, Any]:
        """A payment allocated to an invoice: what is left to pay on it, as the views show it
        (``event.paid_in_full`` is what "the invoice is paid" rules test)."""
        if facts.get("type") != "payment.allocated" or facts.get("target_kind") != "invoice":
            return facts
        invoice = document(self.views, str(facts.get("target_id")))
        if invoice is None:
            return facts
        return {
            **facts,
            "document_number": invoice.display_number,
            "outstanding": invoice.outstanding.state(),
            "paid_in_full": invoice.payment_state == "paid",
        }

    def deal(self, deal_id: str, now: datetime | None = None) -> dict[str, Any]:
        """The deal as rules see it (`deal.*`), or {} when the views do not have it."""
        found = deal_facts(self.views, deal_id, now)
        if found is None:
            return {}
        shown = asdict(found)
        shown["total"] = {"amount": found.amount, "currency": found.currency}
        return shown

    def _as_of_event(self, contact: dict[str, Any], event: TriggerEvent) -> dict[str, Any]:
        originator = event.extra.get("originator_id")
        version = event.extra.get("version")
        if self.contact_as_of is None or originator != contact.get("id") or version is None:
            return contact
        then = self.contact_as_of(str(originator), int(version))
        if then is None:
            return contact
        own = {name: getattr(then, name) for name in OWN_FIELDS}
        own["responsible_id"] = str(own["responsible_id"]) if own["responsible_id"] else None
        own["attributes"] = dict(own["attributes"])
        own["tags"] = list(own["tags"])
        values = [i["value"] for i in contact.get("identities", [])]
        return {**contact, **own, "first_name": first_name_of(own["display_name"], values)}

    def contact(self, contact_id: str) -> dict[str, Any]:
        card = self.queries.contact(contact_id)
        if card is None:
            return {}
        identities = card.get("identities", [])
        first: dict[str, str] = {}
        for identity in identities:
            first.setdefault(identity["kind"], identity["value"])
        return {
            **card,
            "first_name": first_name_of(
                card.get("display_name", ""), [i["value"] for i in identities]
            ),
            "email": first.get("email", ""),
            "phone": first.get("phone", ""),
            "telegram": first.get("telegram", ""),
        }

    def in_segment(self, contact_id: str, segment: dict[str, Any], registry: Any) -> bool:
        flt = build_contact_filter(
            pairs_of(segment), registry, field_prefix="segment", views=self.views
        )
        return contact_in_filter(self.views, contact_id, flt)
