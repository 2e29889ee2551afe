"""Read-side queries over the views: what the API and the web app ask.

Each function is one or two indexed SQL queries; none touches the log. The
contact filter here is the segment language the trigger engine and campaigns
reuse later, so it lives with the views, not with the HTTP layer.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from threadline.projections.companies import companies_page, company_contacts
from threadline.projections.companies import company as company_row
from threadline.projections.contact_card import opt_outs_of
from threadline.projections.contact_inbound import PREFERRED_CHANNEL_CLAUSE, preferred_channel
from threadline.projections.sql import ViewReader, searchable

COMPARATORS = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


@dataclass(frozen=True)
class AttributeCondition:
    """`key op value`; `numeric` compares numbers, otherwise text (ISO dates compare as text)."""

    key: str
    op: str
    value: str | float
    numeric: bool


@dataclass(frozen=True)
class ClientSet:
    """Contacts whose id is in `contact_ids` or whose company is in `company_ids`; `negate`:
    neither. Built from figures SQL cannot filter on directly (an ABC class, a balance)."""

    contact_ids: tuple[str, ...] = ()
    company_ids: tuple[str, ...] = ()
    negate: bool = False

    def clause(self) -> tuple[str, list[Any]]:
        parts: list[str] = []
        params: list[Any] = []
        if self.contact_ids:
            parts.append(f"c.id IN ({','.join('?' * len(self.contact_ids))})")
            params.extend(self.contact_ids)
        if self.company_ids:
            marks = ",".join("?" * len(self.company_ids))
            parts.append(f"(c.company_id IS NOT NULL AND c.company_id IN ({marks}))")
            params.extend(self.company_ids)
        inner = " OR ".join(parts) or "1=0"
        return (f"NOT ({inner})" if self.negate else f"({inner})"), params


@dataclass(frozen=True)
class ContactFilter:
    tags: tuple[str, ...] = ()
    lifecycle: str | None = None
    responsible_id: str | None = None
    company_id: str | None = None
    source_channel: str | None = None
    attributes: tuple[AttributeCondition, ...] = ()
    created_from: str | None = None
    created_to: str | None = None
    text: str | None = None
    preferred_channel: str | None = None  # most inbound contacts (contact_inbound)
    # saved segments helper: last contact, first touch, client sets, nested saved segments
    last_contact_from: str | None = None
    last_contact_to: str | None = None
    utm_source: str | None = None
    utm_campaign: str | None = None
    client_sets: tuple[ClientSet, ...] = ()  # abc_class, balance_*: resolved when built
    segments: tuple[ContactFilter, ...] = ()  # segment_id: the saved segment's filter

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for tag in self.tags:
            clauses.append(
                "EXISTS (SELECT 1 FROM contact_tags t WHERE t.contact_id = c.id AND t.tag = ?)"
            )
            params.append(tag)
        for column, value in (
            ("lifecycle", self.lifecycle),
            ("responsible_id", self.responsible_id),
            ("company_id", self.company_id),
            ("source_channel", self.source_channel),
        ):
            if value is not None:
                clauses.append(f"c.{column} = ?")
                params.append(value)
        for condition in self.attributes:
            column = "a.num_value" if condition.numeric else "a.text_value"
            operator = COMPARATORS[condition.op]
            if condition.op == "ne":
                clauses.append(
                    "NOT EXISTS (SELECT 1 FROM contact_attributes a WHERE a.contact_id = c.id"
                    f" AND a.key = ? AND {column} = ?)"
                )
            else:
                clauses.append(
                    "EXISTS (SELECT 1 FROM contact_attributes a WHERE a.contact_id = c.id"
                    f" AND a.key = ? AND {column} {operator} ?)"
                )
            params.extend([condition.key, condition.value])
        if self.created_from:
            clauses.append("c.created_at >= ?")
            params.append(self.created_from)
        if self.created_to:
            clauses.append("c.created_at < ?")
            params.append(self.created_to)
        if self.text:
            clauses.append("c.search LIKE ?")
            params.append(f"%{searchable(self.text.lower())}%")
        if self.preferred_channel is not None:
            clauses.append(PREFERRED_CHANNEL_CLAUSE)
            params.append(self.preferred_channel)
        self._segment_clauses(clauses, params)
        return (" AND ".join(clauses) or "1=1"), params

    def _segment_clauses(self, clauses: list[str], params: list[Any]) -> None:
        """The keys of saved segments (last contact, utm, client sets, nested segments)."""
        if self.last_contact_from:
            clauses.append("c.last_contact_at >= ?")
            params.append(self.last_contact_from)
        if self.last_contact_to:
            clauses.append("c.last_contact_at < ?")
            params.append(self.last_contact_to)
        for column, value in (("utm_source", self.utm_source), ("utm_campaign", self.utm_campaign)):
            if value is not None:
                clauses.append(f"c.{column} = ?")
                params.append(value)
        for client_set in self.client_sets:
            clause, more = client_set.clause()
            clauses.append(clause)
            params.extend(more)
        for segment in self.segments:
            clause, more = segment.where()
            clauses.append(f"({clause})")
            params.extend(more)


@dataclass(frozen=True)
class InboxFilter:
    status: str | None = None
    channel: str | None = None
    assignee_id: str | None = None
    unassigned: bool = False
    contact_id: str | None = None
    text: str | None = None
    statuses: tuple[str, ...] = field(default_factory=tuple)


def _name_tokens(name: str) -> frozenset[str]:
    return frozenset(token for token in (name or "").lower().split() if token)


def _contact_row(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["attributes"] = json.loads(out.pop("attributes") or "{}")
    out["tags"] = json.loads(out.pop("tags") or "[]")
    out["source"] = json.loads(out.pop("source") or "{}")
    out.pop("search", None)
    for column in (
        "source_channel",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "referrer",
        "acquisition_cost_minor",
        "acquisition_currency",
    ):
        out.pop(column, None)
    return out


class Queries:
    def __init__(self, db: ViewReader) -> None:
        self.db = db

    # -- contacts -----------------------------------------------------------------------------

    def contacts(
        self, flt: ContactFilter, limit: int = 50, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        where, params = flt.where()
        where = f"c.merged_into IS NULL AND ({where})"
        total = self.db.query_one(f"SELECT COUNT(*) AS n FROM contacts c WHERE {where}", params)
        rows = self.db.query(
            f"SELECT * FROM contacts c WHERE {where} ORDER BY c.created_at DESC, c.id LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return [_contact_row(r) for r in rows], int(total["n"] if total else 0)

    def contact(self, contact_id: str) -> dict[str, Any] | None:
        row = self.db.query_one("SELECT * FROM contacts WHERE id = ?", [contact_id])
        if row is None:
            return None
        card = _contact_row(row)
        card["identities"] = self.db.query(
            "SELECT kind, value FROM contact_identities WHERE contact_id = ? ORDER BY kind, value",
            [contact_id],
        )
        card["channels"] = self.db.query(
            "SELECT channel, last_inbound_at, last_outbound_at, message_count"
            " FROM contact_channels WHERE contact_id = ? ORDER BY channel",
            [contact_id],
        )
        card["opt_outs"] = opt_outs_of(self.db, contact_id)
        card["preferred_channel"] = preferred_channel(self.db, contact_id)
        if card.get("company_id"):
            card["company"] = self.db.query_one(
                "SELECT id, name FROM companies WHERE id = ?", [card["company_id"]]
            )
        return card

    def duplicates(self, contact_id: str, limit: int = 10) -> list[dict[str, Any]]:
        """Contacts that are probably the same person, best first, each with its reasons.

        Identities themselves cannot be shared (the store keeps each one on one
        contact), so the signals are softer: the same name (in any word order), the
        same mailbox name at another domain, phone numbers with the same last seven
        digits, the same company.
        """
        me = self.contact(contact_id)
        if me is None:
            return []
        name_tokens = _name_tokens(me["display_name"])
        emails = [i["value"] for i in me["identities"] if i["kind"] == "email"]
        phones = [i["value"] for i in me["identities"] if i["kind"] == "phone"]
        candidates: dict[str, list[tuple[float, str]]] = {}

        def consider(rows: list[dict[str, Any]], score: float, reason: str) -> None:
            for row in rows:
                other = str(row["id"])
                if other != contact_id:
                    candidates.setdefault(other, []).append((score, reason))

        live = "merged_into IS NULL AND id != ?"
        if len(" ".join(name_tokens)) >= 3:
            for token in sorted(name_tokens, key=len, reverse=True)[:2]:
                rows = self.db.query(
                    f"SELECT id, display_name FROM contacts WHERE {live}"
                    " AND LOWER(display_name) LIKE ? LIMIT 200",
                    [contact_id, f"%{token}%"],
                )
                consider(
                    [r for r in rows if _name_tokens(r["display_name"]) == name_tokens],
                    0.6,
                    "same name",
                )
        for email in emails:
            local = email.partition("@")[0]
            if len(local) >= 4:
                rows = self.db.query(
                    "SELECT DISTINCT i.contact_id AS id FROM contact_identities i"
                    " JOIN contacts c ON c.id = i.contact_id WHERE c.merged_into IS NULL"
                    " AND i.kind = 'email' AND i.value LIKE ? AND i.value != ?",
                    [f"{local}@%", email],
                )
                consider(rows, 0.5, f"same mailbox name ({local}@…)")
        for phone in phones:
            digits = "".join(ch for ch in phone if ch.isdigit())
            if len(digits) >= 7:
                rows = self.db.query(
                    "SELECT DISTINCT i.contact_id AS id FROM contact_identities i"
                    " JOIN contacts c ON c.id = i.contact_id WHERE c.merged_into IS NULL"
                    " AND i.kind = 'phone' AND i.value LIKE ? AND i.value != ?",
                    [f"%{digits[-7:]}", phone],
                )
                consider(rows, 0.4, "phone numbers end alike")
        if me.get("company_id"):
            rows = self.db.query(
                f"SELECT id FROM contacts WHERE {live} AND company_id = ?",
                [contact_id, me["company_id"]],
            )
            consider([r for r in rows if str(r["id"]) in candidates], 0.2, "same company")
        ranked = []
        for other, signals in candidates.items():
            card = self.contact(other)
            if card is None or card.get("merged_into"):
                continue
            score = min(1.0, sum(score for score, _ in signals))
            ranked.append(
                {
                    "contact_id": other,
                    "display_name": card["display_name"],
                    "score": round(score, 2),
                    "reasons": [reason for _, reason in signals],
                    "identities": card["identities"],
                }
            )
        ranked.sort(key=lambda c: (-c["score"], c["display_name"]))
        return ranked[:limit]

    def contact_by_identity(self, kind: str, value: str) -> str | None:
        row = self.db.query_one(
            "SELECT contact_id FROM contact_identities WHERE kind = ? AND value = ?", [kind, value]
        )
        return None if row is None else str(row["contact_id"])

    def timeline(
        self, contact_id: str, limit: int = 200, before_seq: int | None = None
    ) -> list[dict[str, Any]]:
        params: list[Any] = [contact_id]
        extra = ""
        if before_seq is not None:
            extra = " AND seq < ?"
            params.append(before_seq)
        rows = self.db.query(
            f"SELECT * FROM timeline WHERE contact_id = ?{extra} ORDER BY seq DESC, id DESC LIMIT ?",
            [*params, limit],
        )
        for row in rows:
            row["data"] = json.loads(row["data"] or "{}")
        rows.reverse()
        return rows

    def companies(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Delegates to `projections.companies` (the view that owns the table)."""
        return [asdict(row) for row in companies_page(self.db, limit, offset)[0]]

    def company(self, company_id: str) -> dict[str, Any] | None:
        found = company_row(self.db, company_id)
        if found is None:
            return None
        return {
            **asdict(found),
            "contacts": [asdict(c) for c in company_contacts(self.db, company_id)],
        }

    # -- inbox --------------------------------------------------------------------------------

    def inbox(
        self, flt: InboxFilter, limit: int = 50, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        clauses: list[str] = []
        params: list[Any] = []
        if flt.status:
            clauses.append("status = ?")
            params.append(flt.status)
        if flt.statuses:
            clauses.append(f"status IN ({','.join('?' * len(flt.statuses))})")
            params.extend(flt.statuses)
        if flt.channel:
            clauses.append("channel = ?")
            params.append(flt.channel)
        if flt.assignee_id:
            clauses.append("assignee_id = ?")
            params.append(flt.assignee_id)
        if flt.unassigned:
            clauses.append("assignee_id IS NULL")
        if flt.contact_id:
            clauses.append("contact_id = ?")
            params.append(flt.contact_id)
        if flt.text:
            pattern = f"%{searchable(flt.text.lower())}%"
            clauses.append(
                "(search LIKE ? OR EXISTS (SELECT 1 FROM inbox_messages m"
                " WHERE m.conversation_id = inbox_conversations.id AND m.search LIKE ?))"
            )
            params.extend([pattern, pattern])
        where = " AND ".join(clauses) or "1=1"
        total = self.db.query_one(
            f"SELECT COUNT(*) AS n FROM inbox_conversations WHERE {where}", params
        )
        rows = self.db.query(
            f"SELECT * FROM inbox_conversations WHERE {where}"
            " ORDER BY updated_at DESC, id LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        for row in rows:
            row.pop("search", None)
        return rows, int(total["n"] if total else 0)

    def conversation(self, conversation_id: str) -> dict[str, Any] | None:
        row = self.db.query_one("SELECT * FROM inbox_conversations WHERE id = ?", [conversation_id])
        if row is None:
            return None
        row.pop("search", None)
        messages = self.db.query(
            "SELECT * FROM inbox_messages WHERE conversation_id = ? ORDER BY position, id",
            [conversation_id],
        )
        for message in messages:
            message.pop("search", None)
            message["attachments"] = json.loads(message["attachments"] or "[]")
            message["metadata"] = json.loads(message["metadata"] or "{}")
            message["failure"] = json.loads(message["failure"]) if message.get("failure") else None
            message["source"] = json.loads(message.get("source") or "{}")
        row["messages"] = messages
        return row

    def message(self, message_id: str) -> dict[str, Any] | None:
        """One message of the inbox view (attachments and metadata decoded), for serving its
        files without reading its whole conversation."""
        row = self.db.query_one("SELECT * FROM inbox_messages WHERE id = ?", [message_id])
        if row is None:
            return None
        row.pop("search", None)
        row["attachments"] = json.loads(row["attachments"] or "[]")
        row["metadata"] = json.loads(row["metadata"] or "{}")
        row["source"] = json.loads(row.get("source") or "{}")
        return row

    # -- tasks ----------------------------------------------------------------------------------

    def tasks(
        self,
        status: str | None = "open",
        assignee_id: str | None = None,
        contact_id: str | None = None,
        due_before: str | None = None,
        due_after: str | None = None,
        limit: int = 100,
        offset: int = 0,
        undated: bool = False,
    ) -> list[dict[str, Any]]:
        """Tasks in due order (undated last, then by creation); `undated`: only those without."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("status", status),
            ("assignee_id", assignee_id),
            ("contact_id", contact_id),
        ):
            if value:
                clauses.append(f"{column} = ?")
                params.append(value)
        if due_before:
            clauses.append("due_at < ?")
            params.append(due_before)
        if due_after:
            clauses.append("due_at >= ?")
            params.append(due_after)
        if undated:
            clauses.append("due_at IS NULL")
        where = " AND ".join(clauses) or "1=1"
        return self.db.query(
            f"SELECT * FROM tasks WHERE {where} ORDER BY due_at IS NULL, due_at, created_at LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )

    def task(self, task_id: str) -> dict[str, Any] | None:
        return self.db.query_one("SELECT * FROM tasks WHERE id = ?", [task_id])

    # -- users ----------------------------------------------------------------------------------

    def user_by_token_hash(self, digest: str) -> dict[str, Any] | None:
        return self.db.query_one(
            "SELECT u.id, u.email, u.name, u.role, u.locale FROM user_tokens t"
            " JOIN users u ON u.id = t.user_id WHERE t.token_hash = ? AND u.active = 1",
            [digest],
        )

    def user_by_email(self, email: str) -> dict[str, Any] | None:
        return self.db.query_one("SELECT * FROM users WHERE email = ?", [email])

    def users(self) -> list[dict[str, Any]]:
        return self.db.query(
            "SELECT id, email, name, role, locale, active, created_at FROM users ORDER BY email"
        )


def contact_in_filter(db: ViewReader, contact_id: str, flt: ContactFilter) -> bool:
    """Whether one contact matches a filter (a rule's segment condition)."""
    where, params = flt.where()
    row = db.query_one(
        f"SELECT 1 AS hit FROM contacts c WHERE c.id = ? AND ({where})", [contact_id, *params]
    )
    return row is not None
