"""Password hashes, encrypted in the state database: the `PasswordStore` of the application.

An immutable log can never forget a hash written into it, and an argon2 hash is
still something to crack offline; so the log records only that a password was
set, and the hash lives here, encrypted with the installation's secret key
(`services.secret_box`). Like inbox secrets, this table is not a projection:
`threadline replay` does not touch it.

Databases from before this change have hashes in version-1 `UserCreated` and
`UserPasswordChanged` events. `import_from_log` copies them here once (the latest
per user; a hash set since, through the store, is never overwritten) and remembers
how far it read, so later starts read only new events.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from threadline.domain.model.user import User
from threadline.projections.base import ts
from threadline.projections.sql import ViewDatabase
from threadline.services.secret_box import EncryptedColumn, SecretBox

log = logging.getLogger(__name__)

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS user_credentials ("
    " user_id TEXT PRIMARY KEY, password_hash TEXT NOT NULL, source TEXT NOT NULL,"
    " updated_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS user_credentials_import ("
    " id BIGINT PRIMARY KEY, position BIGINT NOT NULL)",
)
_LEGACY_TOPICS = [
    f"{User.__module__}:{User.__qualname__}.UserCreated",
    f"{User.__module__}:{User.__qualname__}.UserPasswordChanged",
]
_PAGE = 500


def _now() -> str:
    return ts(datetime.now(UTC))


class CredentialStore(EncryptedColumn):
    """Encrypted argon2 hashes by user id."""

    def __init__(self, db: ViewDatabase, box: SecretBox) -> None:
        super().__init__(db, box, "user_credentials", ("user_id",), "password_hash")
        self.db = db
        with db.transaction() as cur:
            for statement in SCHEMA:
                cur.execute(statement)

    def set_password_hash(self, user_id: UUID, password_hash: str) -> None:
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO user_credentials (user_id, password_hash, source, updated_at)"
                " VALUES (?, ?, 'set', ?) ON CONFLICT (user_id) DO UPDATE SET"
                " password_hash = excluded.password_hash, source = excluded.source,"
                " updated_at = excluded.updated_at",
                [str(user_id), self.box.encrypt(password_hash), _now()],
            )

    def password_hash(self, user_id: str) -> str | None:
        row = self.db.query_one(
            "SELECT password_hash FROM user_credentials WHERE user_id = ?", [str(user_id)]
        )
        return None if row is None else self.box.decrypt(str(row["password_hash"]))

    def import_from_log(self, app: Any) -> int:
        """Copy hashes from version-1 user events into the store; returns how many."""
        row = self.db.query_one("SELECT position FROM user_credentials_import WHERE id = 1", [])
        position = 0 if row is None else int(row["position"])
        copied = 0
        while True:
            page = app.recorder.select_notifications(
                position + 1, _PAGE, topics=_LEGACY_TOPICS, inclusive_of_start=True
            )
            if not page:
                break
            with self.db.transaction() as cur:
                for notification in page:
                    password_hash = _legacy_hash(app, notification)
                    if password_hash:
                        # Only over rows copied from the log: a hash set through the
                        # store is newer than any version-1 event.
                        cur.execute(
                            "INSERT INTO user_credentials"
                            " (user_id, password_hash, source, updated_at) VALUES (?, ?, 'log', ?)"
                            " ON CONFLICT (user_id) DO UPDATE SET"
                            " password_hash = excluded.password_hash,"
                            " updated_at = excluded.updated_at"
                            " WHERE user_credentials.source = 'log'",
                            [
                                str(notification.originator_id),
                                self.box.encrypt(password_hash),
                                _now(),
                            ],
                        )
                        copied += 1
                position = page[-1].id
                cur.execute(
                    "INSERT INTO user_credentials_import (id, position) VALUES (1, ?)"
                    " ON CONFLICT (id) DO UPDATE SET position = excluded.position",
                    [position],
                )
        if copied:
            log.info(
                "copied %d password hashes from old user events to the credential store", copied
            )
        return copied


def _legacy_hash(app: Any, notification: Any) -> str | None:
    """The `password_hash` of a stored version-1 event (read before upcasting drops it)."""
    mapper = app.mapper
    data = notification.state
    cipher = getattr(mapper, "cipher", None)
    if cipher is not None:
        data = cipher.decrypt(data)
    compressor = getattr(mapper, "compressor", None)
    if compressor is not None:
        data = compressor.decompress(data)
    try:
        state = mapper.transcoder.decode(data)
    except (ValueError, json.JSONDecodeError):
        return None
    if not isinstance(state, dict) or state.get("class_version", 1) != 1:
        return None
    value = state.get("password_hash")
    return value if isinstance(value, str) and value else None
