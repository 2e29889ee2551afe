"""Readers for forgetting clients: their messages' files, the retention policy's candidates.

The tables belong to other views (the inbox, the contact cards, the deals); these
queries cross them for one purpose, so they live here rather than in each view.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

from threadline.projections.base import FORGOTTEN_NAME, ts
from threadline.projections.sql import ViewDatabase, ViewReader


def message_files(db: ViewReader, contact_ids: list[UUID]) -> set[str]:
    """The SHA-256 of every stored file of the contacts' messages (the inbox's rows)."""
    hashes: set[str] = set()
    for contact in contact_ids:
        rows = db.query(
            "SELECT attachments FROM inbox_messages WHERE contact_id = ? AND attachments != '[]'",
            [str(contact)],
        )
        for row in rows:
            for item in json.loads(row["attachments"]):
                if item.get("stored") and item.get("sha256"):
                    hashes.add(str(item["sha256"]))
    return hashes


def file_named_by_others(db: ViewReader, digest: str, contact_ids: list[UUID]) -> bool:
    """Whether a message of a contact other than `contact_ids` names the file `digest`."""
    marks = ", ".join("?" for _ in contact_ids)
    return bool(
        db.query(
            "SELECT 1 AS one FROM inbox_messages WHERE attachments LIKE ?"
            f" AND contact_id NOT IN ({marks}) LIMIT 1",
            [f'%"{digest}"%', *(str(c) for c in contact_ids)],
        )
    )


def inactive_contacts(db: ViewReader, before: datetime) -> list[UUID]:
    """The retention policy's candidates: contacts (not merged, not forgotten) whose last
    message either way, or their creation when they have none, is before `before`, and who
    have no open deal (a deal in progress is a reason to keep the client's data)."""
    rows = db.query(
        "SELECT id FROM contacts WHERE merged_into IS NULL AND display_name != ?"
        " AND COALESCE(last_contact_at, created_at) < ?"
        " AND id NOT IN (SELECT contact_id FROM deals WHERE status = 'open'"
        " AND contact_id IS NOT NULL) ORDER BY COALESCE(last_contact_at, created_at), id",
        [FORGOTTEN_NAME, ts(before)],
    )
    return [UUID(str(row["id"])) for row in rows]


def every_row(db: ViewDatabase) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table of the view database, by table: what a check that a
    forgotten client left nothing behind reads (the tests do)."""
    return {table: db.query(f"SELECT * FROM {table}") for table in _columns(db)}


# Index tables of ids only (no data of the person beyond the link), left out of an export.
INTERNAL_TABLES = ("audit_events", "audit_subjects", "audit_firings", "contact_inbound_aliases",
                   "inbox_contact_aliases", "timeline_aliases", "deal_aliases", "money_aliases",
                   "source_call_messages")  # fmt: skip


def rows_of_contact(db: ViewDatabase, contact_id: UUID | str) -> dict[str, list[dict[str, Any]]]:
    """Everything the views keep about one contact, by table: the rows whose `contact_id`
    is the contact, and its own rows in `contacts` and `inbox_contacts` (a person's data
    export, GDPR art. 15 and 20, 152-FZ art. 14)."""
    wanted = str(contact_id)
    found: dict[str, list[dict[str, Any]]] = {}
    for table, columns in _columns(db).items():
        if table in INTERNAL_TABLES:
            continue
        if "contact_id" in columns:
            rows = db.query(f"SELECT * FROM {table} WHERE contact_id = ?", [wanted])
        elif table in ("contacts", "inbox_contacts"):
            rows = db.query(f"SELECT * FROM {table} WHERE id = ?", [wanted])
        else:
            continue
        if rows:
            found[table] = rows
    return found


def _columns(db: ViewDatabase) -> dict[str, set[str]]:
    if db.postgres:
        rows = db.query(
            "SELECT table_name AS t, column_name AS c FROM information_schema.columns"
            " WHERE table_schema = current_schema()"
        )
        columns: dict[str, set[str]] = {}
        for row in rows:
            columns.setdefault(str(row["t"]), set()).add(str(row["c"]))
        return columns
    tables = db.query("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {
        str(t["name"]): {str(c["name"]) for c in db.query(f"PRAGMA table_info({t['name']})")}
        for t in tables
    }
