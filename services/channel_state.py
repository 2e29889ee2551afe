"""Durable channel state and inbox secrets: two small key/value tables outside the log.

Neither belongs in the log. A poller's cursor (an IMAP UIDVALIDITY/UID, a
Telegram update offset) changes with every poll and is only an optimisation:
inbound input is idempotent by its dedup key, so a cursor that lags by a poll
re-reads a little and appends nothing twice. Secrets (passwords, bot tokens)
must be replaceable and removable, which an immutable log cannot offer; the log
records only which secrets an inbox has. Neither table is touched by
`threadline replay`, which drops and rebuilds only the projections' own tables.
"""

from __future__ import annotations

from threadline.projections.sql import ViewDatabase
from threadline.services.secret_box import EncryptedColumn, SecretBox

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS channel_state ( key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS inbox_secrets ("
    " inbox_slug TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,"
    " PRIMARY KEY (inbox_slug, name))",
)


def ensure_tables(db: ViewDatabase) -> None:
    with db.transaction() as cur:
        for statement in SCHEMA:
            cur.execute(statement)


class ChannelStateStore:
    """`channels.base.StateStore` on the state database (see `services.store.state_url_for`)."""

    def __init__(self, db: ViewDatabase) -> None:
        self.db = db

    def get(self, key: str) -> str | None:
        row = self.db.query_one("SELECT value FROM channel_state WHERE key = ?", [key])
        return None if row is None else str(row["value"])

    def set(self, key: str, value: str) -> None:
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO channel_state (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )


class SecretStore(EncryptedColumn):
    """Inbox secrets by inbox slug and setting name; values never reach logs or responses.

    Values are encrypted with the installation's secret key (`services.secret_box`), so
    the state database alone does not reveal them; rows written before encryption are
    encrypted by `encrypt_plaintext` at start.
    """

    def __init__(self, db: ViewDatabase, box: SecretBox) -> None:
        super().__init__(db, box, "inbox_secrets", ("inbox_slug", "name"), "value")
        self.db = db

    def get_all(self, slug: str) -> dict[str, str]:
        rows = self.db.query("SELECT name, value FROM inbox_secrets WHERE inbox_slug = ?", [slug])
        return {str(row["name"]): self.box.decrypt(str(row["value"])) for row in rows}

    def put(self, slug: str, values: dict[str, str]) -> None:
        with self.db.transaction() as cur:
            for name, value in values.items():
                cur.execute(
                    "INSERT INTO inbox_secrets (inbox_slug, name, value) VALUES (?, ?, ?)"
                    " ON CONFLICT (inbox_slug, name) DO UPDATE SET value = excluded.value",
                    [slug, name, self.box.encrypt(value)],
                )

    def delete(self, slug: str, names: list[str]) -> None:
        with self.db.transaction() as cur:
            for name in names:
                cur.execute(
                    "DELETE FROM inbox_secrets WHERE inbox_slug = ? AND name = ?", [slug, name]
                )
