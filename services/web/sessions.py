"""Server-side sessions for the web app, in the state store.

The cookie carries only a random id (HttpOnly, SameSite=Lax, Secure behind
https); the row holds the user, the CSRF token and the expiry, so logging out
or deactivating a user ends the session at once, which a signed cookie cannot.
Only a hash of the id is stored, so a leaked database does not hand out sessions.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from threadline.projections.base import ts
from threadline.projections.sql import ViewDatabase

COOKIE = "tl_session"
LIFETIME = timedelta(hours=12)
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS web_sessions ("
    " id_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL, csrf TEXT NOT NULL,"
    " created_at TEXT NOT NULL, expires_at TEXT NOT NULL)",
)


@dataclass(frozen=True)
class Session:
    user_id: str
    csrf: str


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _stamp(at: datetime) -> str:
    return ts(at)


class SessionStore:
    def __init__(self, db: ViewDatabase) -> None:
        self.db = db
        with db.transaction() as cur:
            for statement in SCHEMA:
                cur.execute(statement)

    def create(self, user_id: str) -> tuple[str, Session]:
        session_id = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO web_sessions (id_hash, user_id, csrf, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [_hash(session_id), user_id, csrf, _stamp(now), _stamp(now + LIFETIME)],
            )
            cur.execute("DELETE FROM web_sessions WHERE expires_at < ?", [_stamp(now)])
        return session_id, Session(user_id, csrf)

    def load(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        row = self.db.query_one(
            "SELECT user_id, csrf, expires_at FROM web_sessions WHERE id_hash = ?",
            [_hash(session_id)],
        )
        if row is None or row["expires_at"] < _stamp(datetime.now(UTC)):
            return None
        return Session(str(row["user_id"]), str(row["csrf"]))

    def destroy(self, session_id: str | None) -> None:
        if session_id:
            with self.db.transaction() as cur:
                cur.execute("DELETE FROM web_sessions WHERE id_hash = ?", [_hash(session_id)])
