"""The store's pseudonym key: where it lives, how a process gets it, how a wrong one is caught.

The key that derives ids from personal values (`threadline.domain.model.pseudonyms`)
must be the same in every process and for the store's whole life: a different key
gives a returning client a new contact and a redelivered message a second copy.

* **Where.** In the state database (`pseudonym_key`), encrypted with the secret key
  like inbox secrets (`secrets rotate` re-encrypts it), never in the log: whoever
  holds only a copy of the log cannot test a guess. `THREADLINE_PSEUDONYM_KEY`
  (64 hex digits, `threadline secrets pseudonym-key` prints the current one) supplies
  it where the state database was lost or is a new one.
* **Which scheme.** The store's own database records it (`pseudonym_scheme`: the
  scheme and a check value of the key), beside the log, so a state database that
  lost its key is noticed, not silently replaced: a process that cannot find the
  key the store was written with refuses to start and says what to do. A store
  whose log began before this release records the legacy scheme (its ids stay
  `uuid5`); an empty one gets a new random key.
* **When.** `open_pseudonyms` runs while the runtime is built, under the schema lock
  that roles started together take turns with, and installs the scheme process-wide.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from threadline.domain.model.pseudonyms import KEYED, LEGACY, Pseudonyms, install
from threadline.projections.sql import ViewDatabase
from threadline.services.secret_box import EncryptedColumn, SecretBox

log = logging.getLogger(__name__)

KEY_BYTES = 32
STORE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS pseudonym_scheme (id BIGINT PRIMARY KEY,"
    " scheme TEXT NOT NULL, key_check TEXT NOT NULL)",
)
STATE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS pseudonym_key (id BIGINT PRIMARY KEY, secret TEXT NOT NULL)",
)


class PseudonymKeyError(Exception):
    """The key the store was written with is not at hand, or a different key was given."""


class PseudonymKeyStore(EncryptedColumn):
    """The state database's one row with the key (hex), encrypted by the secret box."""

    def __init__(self, db: ViewDatabase, box: SecretBox) -> None:
        super().__init__(db, box, "pseudonym_key", ("id",), "secret")
        self.db = db
        db.create_schema(STATE_SCHEMA)

    def read(self) -> bytes | None:
        rows = self.db.query("SELECT secret FROM pseudonym_key WHERE id = 1")
        return bytes.fromhex(self.box.decrypt(str(rows[0]["secret"]))) if rows else None

    def write(self, key: bytes) -> None:
        """Keep `key` (the store's check value has been matched against it first)."""
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO pseudonym_key (id, secret) VALUES (1, ?)"
                " ON CONFLICT (id) DO UPDATE SET secret = excluded.secret",
                [self.box.encrypt(key.hex())],
            )


def parse_key(text: str) -> bytes:
    """`THREADLINE_PSEUDONYM_KEY`: 64 hex digits (32 bytes)."""
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise PseudonymKeyError(
            "THREADLINE_PSEUDONYM_KEY must be 64 hex digits (32 bytes); "
            "`threadline secrets pseudonym-key` prints the key a running store uses"
        )
    return key


def open_pseudonyms(
    store_recorder: Any,
    log_is_empty: bool,
    keys: PseudonymKeyStore,
    given: str | None = None,
) -> Pseudonyms:
    """The store's scheme, installed process-wide; chosen (and recorded) at its first start."""
    store = ViewDatabase(store_recorder)
    store.create_schema(STORE_SCHEMA)
    given_key = parse_key(given) if given else None
    recorded = _recorded(store)
    if recorded is None:
        stored = keys.read()
        if log_is_empty:
            key = given_key or stored or secrets.token_bytes(KEY_BYTES)
            chosen = Pseudonyms.keyed(key)
        else:
            chosen = Pseudonyms.legacy()
            log.warning(
                "pseudonyms: this store's log began before keyed ids; its ids stay uuid5 of "
                "the values (see the README, 'Personal data')"
            )
        with store.transaction() as cur:
            cur.execute(
                "INSERT INTO pseudonym_scheme (id, scheme, key_check) VALUES (1, ?, ?)"
                " ON CONFLICT (id) DO NOTHING",
                [chosen.scheme, chosen.check()],
            )
        recorded = _recorded(store)
        assert recorded is not None
        if recorded == (chosen.scheme, chosen.check()) and chosen.scheme == KEYED:
            keys.write(chosen.key)
    pseudonyms = _matching(recorded, keys, given_key)
    install(pseudonyms)
    return pseudonyms


def _recorded(store: ViewDatabase) -> tuple[str, str] | None:
    rows = store.query("SELECT scheme, key_check FROM pseudonym_scheme WHERE id = 1")
    return (str(rows[0]["scheme"]), str(rows[0]["key_check"])) if rows else None


def _matching(
    recorded: tuple[str, str], keys: PseudonymKeyStore, given: bytes | None
) -> Pseudonyms:
    """The scheme the store records, with the key whose check value it records."""
    scheme, check = recorded
    if scheme == LEGACY:
        return Pseudonyms.legacy()
    stored = keys.read()
    for key in (given, stored):
        if key is not None and Pseudonyms.keyed(key).check() == check:
            if stored != key:
                keys.write(key)  # a new state database takes the key it was given
            return Pseudonyms.keyed(key)
    if given is not None:
        raise PseudonymKeyError(
            "THREADLINE_PSEUDONYM_KEY is not the key this store's ids were made with; "
            "unset it to use the key in the state database, or give the right one"
        )
    raise PseudonymKeyError(
        "the state database does not hold the pseudonym key this store's ids were made with "
        "(a new or restored state database?). Restore the state database that belongs to the "
        "store, or start with THREADLINE_PSEUDONYM_KEY=<the key> "
        "(`threadline secrets pseudonym-key` printed it where it was)"
    )
