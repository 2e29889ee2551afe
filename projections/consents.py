"""The consent policies and each client's consents, with whether they are still current.

A consent counts where a purpose needs it only for the policy text in force: when the
business changes the text, consents to the older version show as outdated (campaigns
skip those clients, forms ask again). A consent record has no personal content (a
purpose, a version, when and how), so it stays when its client is forgotten: it is
the evidence that the processing before was lawful.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from threadline.domain.model.consent_policy import ConsentPolicy
from threadline.domain.model.contact import Contact
from threadline.projections.base import ViewProjection, handles, sid, ts
from threadline.projections.sql import ViewCursor, ViewReader


class ConsentProjection(ViewProjection):
    name = "consents"
    tables = ("consent_policies", "contact_consents")
    schema = (
        "CREATE TABLE IF NOT EXISTS consent_policies ("
        " purpose TEXT PRIMARY KEY, policy_id TEXT NOT NULL, title TEXT NOT NULL, text TEXT NOT NULL,"
        " text_version BIGINT NOT NULL, campaigns BIGINT NOT NULL, updated_at TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS contact_consents ("
        " contact_id TEXT NOT NULL, purpose TEXT NOT NULL, text_version BIGINT,"
        " given_at TEXT, via TEXT NOT NULL, withdrawn_at TEXT,"
        " PRIMARY KEY (contact_id, purpose))",
    )

    @handles(ConsentPolicy.PolicyPublished)
    def _published(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "INSERT INTO consent_policies (purpose, policy_id, title, text, text_version,"
            " campaigns, updated_at) VALUES (?, ?, ?, ?, 1, ?, ?) ON CONFLICT (purpose) DO NOTHING",
            [
                event.purpose,
                sid(event.originator_id),
                event.title,
                event.text,
                int(event.campaigns),
                ts(event.timestamp),
            ],
        )

    @handles(ConsentPolicy.PolicyRevised)
    def _revised(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE consent_policies SET title = ?, text = ?, text_version = ?, campaigns = ?,"
            " updated_at = ? WHERE policy_id = ?",
            [
                event.title,
                event.text,
                event.text_version,
                int(event.campaigns),
                ts(event.timestamp),
                sid(event.originator_id),
            ],
        )

    @handles(Contact.ContactConsentGiven)
    def _given(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "INSERT INTO contact_consents (contact_id, purpose, text_version, given_at, via,"
            " withdrawn_at) VALUES (?, ?, ?, ?, ?, NULL) ON CONFLICT (contact_id, purpose)"
            " DO UPDATE SET text_version = excluded.text_version, given_at = excluded.given_at,"
            " via = excluded.via, withdrawn_at = NULL",
            [
                sid(event.originator_id),
                event.purpose,
                event.text_version,
                ts(event.timestamp),
                event.via,
            ],
        )

    @handles(Contact.ContactConsentWithdrawn)
    def _withdrawn(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE contact_consents SET withdrawn_at = ?, via = ?"
            " WHERE contact_id = ? AND purpose = ?",
            [ts(event.timestamp), event.via, sid(event.originator_id), event.purpose],
        )


# -- readers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyRow:
    purpose: str
    title: str
    text: str
    text_version: int
    campaigns: bool
    updated_at: str

    @classmethod
    def of(cls, row: dict[str, Any]) -> PolicyRow:
        return cls(
            purpose=str(row["purpose"]),
            title=str(row["title"]),
            text=str(row["text"]),
            text_version=int(row["text_version"]),
            campaigns=bool(row["campaigns"]),
            updated_at=str(row["updated_at"]),
        )


@dataclass(frozen=True)
class ConsentRow:
    """One purpose for one client: `status` is `current` (agreed to the text in force),
    `outdated` (to an older text), `withdrawn`, or `none`."""

    purpose: str
    title: str
    status: str
    text_version: int | None
    current_version: int
    given_at: str | None
    via: str
    withdrawn_at: str | None


def consent_policies(db: ViewReader) -> list[PolicyRow]:
    return [PolicyRow.of(r) for r in db.query("SELECT * FROM consent_policies ORDER BY purpose")]


def consent_policy(db: ViewReader, purpose: str) -> PolicyRow | None:
    row = db.query_one("SELECT * FROM consent_policies WHERE purpose = ?", [purpose])
    return None if row is None else PolicyRow.of(row)


def consents_of(db: ViewReader, contact_id: UUID | str) -> list[ConsentRow]:
    """Every policy, with where the client stands on it."""
    rows = db.query(
        "SELECT p.purpose, p.title, p.text_version AS current_version, c.text_version,"
        " c.given_at, c.via, c.withdrawn_at FROM consent_policies p LEFT JOIN contact_consents c"
        " ON c.purpose = p.purpose AND c.contact_id = ? ORDER BY p.purpose",
        [str(contact_id)],
    )
    found = []
    for row in rows:
        given = row["text_version"]
        if row["withdrawn_at"]:
            status = "withdrawn"
        elif given is None:
            status = "none"
        elif int(given) >= int(row["current_version"]):
            status = "current"
        else:
            status = "outdated"
        found.append(
            ConsentRow(
                purpose=str(row["purpose"]),
                title=str(row["title"]),
                status=status,
                text_version=None if given is None else int(given),
                current_version=int(row["current_version"]),
                given_at=row["given_at"],
                via=str(row["via"] or ""),
                withdrawn_at=row["withdrawn_at"],
            )
        )
    return found
