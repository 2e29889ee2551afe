"""Defined web forms, for listing them without loading every Form aggregate."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from threadline.domain.model.form import Form
from threadline.projections.base import ViewProjection, dumps, handles, sid, ts
from threadline.projections.sql import ViewCursor, ViewReader


class FormsProjection(ViewProjection):
    name = "forms"
    tables = ("forms",)
    schema = (
        "CREATE TABLE IF NOT EXISTS forms ("
        " id TEXT PRIMARY KEY, slug TEXT NOT NULL UNIQUE, name TEXT NOT NULL,"
        " definition TEXT NOT NULL, enabled BIGINT NOT NULL,"
        " created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
    )

    @handles(Form.FormDefined)
    def _defined(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "INSERT INTO forms (id, slug, name, definition, enabled, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, 1, ?, ?) ON CONFLICT (id) DO NOTHING",
            [
                sid(event.originator_id),
                event.slug,
                str(event.definition.get("name", event.slug)),
                dumps(event.definition),
                ts(event.timestamp),
                ts(event.timestamp),
            ],
        )

    @handles(Form.FormChanged)
    def _changed(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE forms SET name = ?, definition = ?, updated_at = ? WHERE id = ?",
            [
                str(event.definition.get("name", "")),
                dumps(event.definition),
                ts(event.timestamp),
                sid(event.originator_id),
            ],
        )

    @handles(Form.FormEnabledChanged)
    def _enabled(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE forms SET enabled = ?, updated_at = ? WHERE id = ?",
            [int(event.enabled), ts(event.timestamp), sid(event.originator_id)],
        )


# -- readers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FormRow:
    """One defined web form (its definition decoded)."""

    id: str
    slug: str
    name: str
    definition: dict[str, Any]
    enabled: bool
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, row: dict[str, Any]) -> FormRow:
        return cls(
            **{**row, "definition": json.loads(row["definition"]), "enabled": bool(row["enabled"])}
        )


def form(db: ViewReader, slug: str) -> FormRow | None:
    row = db.query_one("SELECT * FROM forms WHERE slug = ?", [slug])
    return None if row is None else FormRow.of(row)


def forms(db: ViewReader, limit: int | None = None, offset: int = 0) -> list[FormRow]:
    """The forms by slug (a page of them with `limit`)."""
    sql = "SELECT * FROM forms ORDER BY slug"
    params: list[Any] = []
    if limit is not None:
        sql, params = sql + " LIMIT ? OFFSET ?", [limit, offset]
    return [FormRow.of(r) for r in db.query(sql, params)]
