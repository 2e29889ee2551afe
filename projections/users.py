"""Accounts and API tokens, as the API needs them to authenticate a request.

No password hashes: they live encrypted in the credential store (services), and
events of version 1 that still carry one are upcast without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from threadline.domain.model.user import User
from threadline.projections.base import ViewProjection, handles, sid, ts
from threadline.projections.sql import ViewCursor, ViewReader


class UserProjection(ViewProjection):
    name = "users"
    version = 3  # 2: timezone; 3: no password_hash column
    tables = ("users", "user_tokens")
    schema = (
        "CREATE TABLE IF NOT EXISTS users ("
        " id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL,"
        " role TEXT NOT NULL, locale TEXT NOT NULL,"
        " active BIGINT NOT NULL, created_at TEXT NOT NULL, timezone TEXT NOT NULL DEFAULT '')",
        "CREATE TABLE IF NOT EXISTS user_tokens ("
        " token_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL, label TEXT NOT NULL,"
        " created_at TEXT NOT NULL)",
    )

    @handles(User.UserCreated)
    def _created(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "INSERT INTO users (id, email, name, role, locale, active, created_at)"
            " VALUES (?, ?, ?, ?, ?, 1, ?) ON CONFLICT (id) DO NOTHING",
            [
                sid(event.originator_id),
                event.email,
                event.name,
                event.role,
                event.locale,
                ts(event.timestamp),
            ],
        )

    @handles(User.UserTokenIssued)
    def _token(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "INSERT INTO user_tokens (token_hash, user_id, label, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (token_hash) DO NOTHING",
            [event.token_hash, sid(event.originator_id), event.label, ts(event.timestamp)],
        )

    @handles(User.UserTokenRevoked)
    def _revoked(self, event: Any, cur: ViewCursor) -> None:
        cur.execute("DELETE FROM user_tokens WHERE token_hash = ?", [event.token_hash])

    @handles(User.UserRoleChanged)
    def _role(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE users SET role = ? WHERE id = ?", [event.role, sid(event.originator_id)]
        )

    @handles(User.UserLocaleChanged)
    def _locale(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE users SET locale = ? WHERE id = ?", [event.locale, sid(event.originator_id)]
        )

    @handles(User.UserTimezoneChanged)
    def _timezone(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE users SET timezone = ? WHERE id = ?", [event.timezone, sid(event.originator_id)]
        )

    @handles(User.UserDeactivated)
    def _deactivated(self, event: Any, cur: ViewCursor) -> None:
        cur.execute("UPDATE users SET active = 0 WHERE id = ?", [sid(event.originator_id)])
        cur.execute("DELETE FROM user_tokens WHERE user_id = ?", [sid(event.originator_id)])


# -- readers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserRow:
    """One account (no secrets: those live in the credential store)."""

    id: str
    email: str
    name: str
    role: str
    locale: str
    active: bool
    created_at: str
    timezone: str

    @classmethod
    def of(cls, row: dict[str, Any]) -> UserRow:
        return cls(**{**row, "active": bool(row["active"])})


def user(db: ViewReader, user_id: UUID | str) -> UserRow | None:
    row = db.query_one("SELECT * FROM users WHERE id = ?", [str(user_id)])
    return None if row is None else UserRow.of(row)


def user_by_email(db: ViewReader, email: str) -> UserRow | None:
    row = db.query_one("SELECT * FROM users WHERE email = ?", [email])
    return None if row is None else UserRow.of(row)


def active_user_ids_with_role(db: ViewReader, role: str) -> list[str]:
    """The active users of a role, by e-mail address (a rule's ``role:<role>`` team)."""
    rows = db.query("SELECT id FROM users WHERE role = ? AND active = 1 ORDER BY email", [role])
    return [str(r["id"]) for r in rows]
