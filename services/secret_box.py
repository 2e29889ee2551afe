"""Encryption of the state database's secrets (inbox secrets, password hashes) at rest.

A leaked copy of the state database (a backup, a disk image) must not hand out
bot tokens, mailbox passwords or password hashes, so each value is encrypted with
Fernet (AES-128-CBC with an HMAC-SHA256, from `cryptography`) under a key that is
not in the database: `THREADLINE_SECRET_KEY` from the environment, or in the
embedded mode a key file made on first start (mode 0600) beside the SQLite state
database. Rotation: start with `THREADLINE_SECRET_KEY=<new>` and
`THREADLINE_SECRET_KEY_OLD=<old>` (both are read, the new one writes), then run
`threadline secrets rotate` to re-encrypt every value with the new key.

Encrypted values carry the prefix `enc:v1:`; a value without it is a plain-text
row from before encryption, which `encrypt_plaintext` converts on start. A check
value encrypted with the key is stored too, so a wrong key stops the start with
an error that says what to do instead of failing later on one inbox.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from threadline.projections.sql import ViewDatabase
from threadline.services.config import Settings
from threadline.services.store import sqlite_path

log = logging.getLogger(__name__)

PREFIX = "enc:v1:"
KEY_FILE_NAME = "threadline-secret.key"
_CHECK_PLAINTEXT = "threadline secret key check"
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS secret_key_check ( id BIGINT PRIMARY KEY, token TEXT NOT NULL)",
)


class SecretKeyError(Exception):
    """The key cannot decrypt what the state database holds, or is not a Fernet key."""


class SecretBox:
    """Encrypts with the first key; decrypts with any of them (the old one while rotating)."""

    def __init__(self, keys: list[str], source: str = "THREADLINE_SECRET_KEY") -> None:
        fernets = []
        for key in keys:
            try:
                fernets.append(Fernet(key.strip().encode()))
            except (ValueError, TypeError):
                raise SecretKeyError(
                    f"{source} is not a Fernet key (32 url-safe base64-encoded bytes); "
                    "make one with `threadline secrets new-key`"
                ) from None
        self.source = source
        self._fernet = MultiFernet(fernets)

    def encrypt(self, value: str) -> str:
        return PREFIX + self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, value: str) -> str:
        """The plain value; a row from before encryption (no prefix) is returned as it is."""
        if not value.startswith(PREFIX):
            return value
        try:
            return self._fernet.decrypt(value[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise SecretKeyError(wrong_key_message(self.source)) from None

    def rotate(self, value: str) -> str:
        """The value encrypted with the first key (plain-text rows are encrypted)."""
        if not value.startswith(PREFIX):
            return self.encrypt(value)
        try:
            return PREFIX + self._fernet.rotate(value[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise SecretKeyError(wrong_key_message(self.source)) from None


class EncryptedColumn:
    """A table whose one column holds values encrypted with the box (a store's base class).

    Table and column names come from the stores, never from input.
    """

    def __init__(
        self, db: ViewDatabase, box: SecretBox, table: str, keys: tuple[str, ...], column: str
    ) -> None:
        self.box = box
        self._encrypted = (db, table, keys, column)

    def encrypt_plaintext(self) -> int:
        """Encrypt the rows stored before encryption existed (at start); returns how many."""
        return self._rewrite(only_plaintext=True)

    def rotate(self) -> int:
        """Re-encrypt every value with the box's first key (`threadline secrets rotate`)."""
        return self._rewrite(only_plaintext=False)

    def _rewrite(self, only_plaintext: bool) -> int:
        """Rewrite the column with the box's first key; returns how many rows.

        A row changed meanwhile is left alone: the update matches the value it read.
        """
        db, table, keys, column = self._encrypted
        selected = ", ".join((*keys, column))
        rows = [
            row
            for row in db.query(f"SELECT {selected} FROM {table}")
            if not (only_plaintext and str(row[column]).startswith(PREFIX))
        ]
        if not rows:  # the usual start: no write transaction at all
            return 0
        match = " AND ".join(f"{key} = ?" for key in keys)
        with db.transaction() as cur:
            for row in rows:
                cur.execute(
                    f"UPDATE {table} SET {column} = ? WHERE {match} AND {column} = ?",
                    [self.box.rotate(str(row[column])), *(row[key] for key in keys), row[column]],
                )
        return len(rows)


def wrong_key_message(source: str) -> str:
    return (
        f"the secret key ({source}) does not decrypt the secrets in the state database. "
        "Start with the key they were encrypted with (THREADLINE_SECRET_KEY, or the key file "
        f"{KEY_FILE_NAME} that was beside the state database). To change keys, set "
        "THREADLINE_SECRET_KEY=<new key> and THREADLINE_SECRET_KEY_OLD=<old key> and run "
        "`threadline secrets rotate`."
    )


def key_file_path(state_url: str) -> Path:
    """Beside a SQLite state database (`var/` by default); `var/` in the working directory
    otherwise (PostgreSQL, where production sets THREADLINE_SECRET_KEY instead)."""
    if state_url.startswith("sqlite:///") and ":memory:" not in state_url:
        return Path(sqlite_path(state_url)).parent / KEY_FILE_NAME
    return Path("var") / KEY_FILE_NAME


def _read_or_make_key_file(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written to a temporary file first and linked into place: two processes starting
    # at once end up with the same key, and nobody reads a half-written file.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret-key-")
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, Fernet.generate_key() + b"\n")
        os.close(fd)
        try:
            os.link(temporary, path)
            log.warning(
                "THREADLINE_SECRET_KEY is not set: generated the secret key file %s (mode 0600). "
                "Keep it with the database backups but apart from them; production sets "
                "THREADLINE_SECRET_KEY instead.",
                path,
            )
        except FileExistsError:
            pass
    finally:
        os.unlink(temporary)
    return path.read_text().strip()


def settings_secret_box(settings: Settings, state_url: str) -> SecretBox:
    """The box of the key the settings name (or the key file beside the state database),
    unchecked: `open_secret_box` checks it where the state database is opened."""
    if settings.secret_key:
        keys, source = [settings.secret_key], "THREADLINE_SECRET_KEY"
    else:
        path = key_file_path(state_url)
        keys, source = [_read_or_make_key_file(path)], f"the key file {path}"
    if settings.secret_key_old:
        keys.append(settings.secret_key_old)
    return SecretBox(keys, source)


def open_secret_box(settings: Settings, state_url: str, state_db: ViewDatabase) -> SecretBox:
    """The box for this installation; checks the key against the database's check value."""
    box = settings_secret_box(settings, state_url)
    source = box.source
    with state_db.transaction() as cur:
        for statement in SCHEMA:
            cur.execute(statement)
    row = state_db.query_one("SELECT token FROM secret_key_check WHERE id = 1", [])
    if row is None:  # the first start: whichever process is first sets the check value
        with state_db.transaction() as cur:
            cur.execute(
                "INSERT INTO secret_key_check (id, token) VALUES (1, ?)"
                " ON CONFLICT (id) DO NOTHING",
                [box.encrypt(_CHECK_PLAINTEXT)],
            )
        row = state_db.query_one("SELECT token FROM secret_key_check WHERE id = 1", [])
        assert row is not None
    if box.decrypt(str(row["token"])) != _CHECK_PLAINTEXT:
        raise SecretKeyError(wrong_key_message(source))
    return box


def rotate_check_value(state_db: ViewDatabase, box: SecretBox) -> None:
    with state_db.transaction() as cur:
        row = cur.execute("SELECT token FROM secret_key_check WHERE id = 1").fetchone()
        if row is not None:
            cur.execute(
                "UPDATE secret_key_check SET token = ? WHERE id = 1",
                [box.rotate(str(row["token"]))],
            )
