"""The contacts' keys (crypto-shredding, `threadline.domain.infrastructure.personal_cipher`).

One random AES-256 key per contact, in the table `contact_keys` of the **store's**
database (beside `event_chain` and `access_log`), so every process that reads the
log (the views process, `threadline replay`, the auditors' feed) opens it the way it
opens the log. Each key is **wrapped** with the secret key (`THREADLINE_SECRET_KEY`,
Fernet), which is not in any database: a copy of the store, keys and all, opens
nothing without it. `secrets rotate` re-wraps them.

Forgetting a contact overwrites its row with a tombstone (no key, the time); the
key is gone from the database from that commit on, and the processes that had it
cached drop it when they read the contact's `ContactForgotten` (or when told here).
A database backup taken before still holds the key: see the README's list of copies
outside the log.

Keys are cached per process (a dict; a key is 32 bytes). New contacts take their ids
from a pool of ids whose keys were stored ahead, `POOL` at a time
(`threadline.domain.model.contact_ids`), so storing a new client's first message
costs no extra write; `ensure` makes, in one transaction before the group-commit
writer stores a batch, any key still missing (a contact made with an id of its own).
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from threadline.projections.sql import ViewDatabase
from threadline.services.secret_box import SecretBox

log = logging.getLogger(__name__)

KEY_BYTES = 32
POOL = 256  # keys stored ahead for new contacts, per refill
MAX_CACHED = 200_000  # keys kept in memory (a replay of a large store reads every contact's)
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS contact_keys (contact_id TEXT PRIMARY KEY,"
    " wrapped TEXT, created_at TEXT NOT NULL, destroyed_at TEXT)",
)
_FORGOTTEN = b""  # the cache's mark of a destroyed key


class DatabaseKeyring:
    """`Keyring` over the store's database; thread-safe (the writer and readers share it)."""

    def __init__(self, store_recorder: Any, box: SecretBox) -> None:
        self.db = ViewDatabase(store_recorder)
        self.db.create_schema(SCHEMA)
        self.box = box
        self._keys: dict[UUID, bytes] = {}
        self._pool: deque[UUID] = deque()
        self._lock = threading.RLock()  # `next_contact_id` refills under it

    def key_for(self, contact_id: UUID, create: bool) -> bytes | None:
        cached = self._keys.get(contact_id)
        if cached is None:
            cached = self._load([contact_id]).get(contact_id)
            if cached is None and create:
                self.ensure([contact_id])
                cached = self._keys.get(contact_id)
        return cached or None

    def ensure(self, contact_ids: Iterable[UUID]) -> None:
        missing = [c for c in contact_ids if c not in self._keys]
        if not missing:
            return
        found = self._load(missing)
        new = [c for c in missing if c not in found]
        if not new:
            return
        made = {c: secrets.token_bytes(KEY_BYTES) for c in new}
        now = datetime.now(UTC).isoformat()
        with self.db.transaction() as cur:
            for contact, key in made.items():
                cur.execute(
                    "INSERT INTO contact_keys (contact_id, wrapped, created_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (contact_id) DO NOTHING",
                    [str(contact), self.box.encrypt(key.hex()), now],
                )
        self._load(new)  # another process may have been first: its key is the key

    def next_contact_id(self) -> UUID:
        """An id for a new contact whose key is stored already (`contact_ids.install`): the
        pool is refilled `POOL` keys at a time, one transaction per refill."""
        with self._lock:
            if not self._pool:
                try:
                    self._pool.extend(self._reserve(POOL))
                except Exception:  # the store is away or closed: the key is made on storing
                    log.warning("could not store keys ahead for new contacts", exc_info=True)
                    return uuid4()
            return self._pool.popleft()

    def _reserve(self, count: int) -> list[UUID]:
        made = {uuid4(): secrets.token_bytes(KEY_BYTES) for _ in range(count)}
        now = datetime.now(UTC).isoformat()
        with self.db.transaction() as cur:
            for contact, key in made.items():
                cur.execute(
                    "INSERT INTO contact_keys (contact_id, wrapped, created_at) VALUES (?, ?, ?)",
                    [str(contact), self.box.encrypt(key.hex()), now],
                )
        self._remember(made)
        return list(made)

    def forgotten(self, contact_ids: Iterable[UUID]) -> None:
        with self._lock:
            for contact in contact_ids:
                self._keys[contact] = _FORGOTTEN

    def destroy(self, contact_ids: Iterable[UUID]) -> int:
        """Forget the contacts' keys for good (a tombstone row each); how many were there."""
        contacts = list(dict.fromkeys(contact_ids))
        now = datetime.now(UTC).isoformat()
        destroyed = 0
        with self.db.transaction() as cur:
            for contact in contacts:
                row = cur.execute(
                    "SELECT wrapped FROM contact_keys WHERE contact_id = ?", [str(contact)]
                ).fetchone()
                destroyed += int(row is not None and row["wrapped"] is not None)
                cur.execute(
                    "INSERT INTO contact_keys (contact_id, wrapped, created_at, destroyed_at)"
                    " VALUES (?, NULL, ?, ?) ON CONFLICT (contact_id) DO UPDATE"
                    " SET wrapped = NULL, destroyed_at = excluded.destroyed_at",
                    [str(contact), now, now],
                )
        self.forgotten(contacts)
        log.info("contact keys destroyed: %d of %d contacts", destroyed, len(contacts))
        return destroyed

    def rotate(self) -> int:
        """Re-wrap every key with the secret box's first key (`threadline secrets rotate`)."""
        rows = self.db.query(
            "SELECT contact_id, wrapped FROM contact_keys WHERE wrapped IS NOT NULL"
        )
        with self.db.transaction() as cur:
            for row in rows:
                cur.execute(
                    "UPDATE contact_keys SET wrapped = ? WHERE contact_id = ? AND wrapped = ?",
                    [self.box.rotate(str(row["wrapped"])), row["contact_id"], row["wrapped"]],
                )
        return len(rows)

    def _remember(self, keys: dict[UUID, bytes]) -> None:
        """Cache `keys`; past `MAX_CACHED` the cache starts again (every key, tombstones
        included, is read back from the database when next needed)."""
        with self._lock:
            if len(self._keys) + len(keys) > MAX_CACHED:
                self._keys.clear()
            self._keys.update(keys)

    def _load(self, contact_ids: list[UUID]) -> dict[UUID, bytes]:
        """Read the rows of `contact_ids` into the cache; the keys found (tombstones as b"")."""
        found: dict[UUID, bytes] = {}
        for start in range(0, len(contact_ids), 500):
            chunk = contact_ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = self.db.query(
                f"SELECT contact_id, wrapped FROM contact_keys WHERE contact_id IN ({marks})",
                [str(c) for c in chunk],
            )
            for row in rows:
                wrapped = row["wrapped"]
                key = _FORGOTTEN if wrapped is None else bytes.fromhex(self.box.decrypt(wrapped))
                found[UUID(str(row["contact_id"]))] = key
        self._remember(found)
        return found
