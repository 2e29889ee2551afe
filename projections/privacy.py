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
    if db.postgres:
        names = db.query(
            "SELECT table_name AS name FROM information_schema.tables"
            " WHERE table_schema = current_schema()"
        )
    else:
        names = db.query("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {str(t["name"]): db.query(f"SELECT * FROM {t['name']}") for t in names}
