"""The pseudonym key: made at a store's first start, kept, checked, given back, rotated.

Ids derived from a client's values (identity claims, inbound messages, threads) are keyed
(`threadline.domain.model.pseudonyms`); a different key would give a returning client a
second contact. These tests run the real store and the real CLI.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from uuid import uuid5

import pytest
from cryptography.fernet import Fernet

from tests.services.test_secrets_at_rest import open_runtime, raw_bytes, run_cli
from threadline.domain.model.identities import IDENTITY_NAMESPACE, Identity, identity_claim_id
from threadline.domain.model.inbound import InboundMessage
from threadline.domain.model.pseudonyms import KEYED, LEGACY, current
from threadline.services.pseudonym_key import PseudonymKeyError
from threadline.services.runtime import Runtime

EMAIL = "returning.client@example.org"
STATE = "threadline-state.db"


def _ingest(runtime: Runtime, key: str) -> tuple[str, bool]:
    message = InboundMessage.create(
        channel="api", dedup_key=key, identities=[("email", EMAIL)], text="hello"
    )
    result = runtime.app.ingest(message).value
    return str(result.contact_id), result.duplicate


def _sql(folder: Path, statement: str, database: str = "threadline.db") -> None:
    """`statement` on the store's database (or the state database: `threadline-state.db`)."""
    with sqlite3.connect(folder / database) as db:
        db.execute(statement)


def test_a_new_store_gets_a_key_that_lasts_and_ids_no_guess_confirms(tmp_path: Path) -> None:
    runtime = open_runtime(tmp_path)
    try:
        assert current().scheme == KEYED
        key = current().key
        contact, _ = _ingest(runtime, "m1")
        claim = Identity("email", EMAIL).claim_id  # type: ignore[arg-type]
        assert claim != uuid5(IDENTITY_NAMESPACE, f"email:{EMAIL}")
        assert runtime.app.repository.get(claim).owner_id.hex == contact.replace("-", "")
    finally:
        runtime.close()
    assert key.hex().encode() not in raw_bytes(tmp_path)  # encrypted in the state database
    again = open_runtime(tmp_path)
    try:
        assert current().key == key
        assert _ingest(again, "m2")[0] == contact  # the same client, found by the keyed claim
        assert _ingest(again, "m1") == (contact, True)  # a redelivery is still a duplicate
    finally:
        again.close()


def test_a_store_begun_before_keyed_ids_keeps_uuid5(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = open_runtime(tmp_path)
    try:
        _ingest(runtime, "m1")
    finally:
        runtime.close()
    # as an older release left it: events in the log, no record of a scheme, no key
    _sql(tmp_path, "DROP TABLE pseudonym_scheme")
    _sql(tmp_path, "DROP TABLE pseudonym_key", STATE)
    legacy = open_runtime(tmp_path)
    try:
        assert current().scheme == LEGACY
        assert identity_claim_id("email", EMAIL) == uuid5(IDENTITY_NAMESPACE, f"email:{EMAIL}")
        assert "began before keyed ids" in caplog.text
    finally:
        legacy.close()
    reopened = open_runtime(tmp_path)  # recorded: no warning, no key made later
    try:
        assert current().scheme == LEGACY
    finally:
        reopened.close()


def test_a_lost_key_stops_the_start_and_the_printed_key_brings_it_back(tmp_path: Path) -> None:
    runtime = open_runtime(tmp_path)
    try:
        contact, _ = _ingest(runtime, "m1")
    finally:
        runtime.close()
    printed = run_cli(tmp_path, "secrets", "pseudonym-key")
    assert printed.returncode == 0, printed.stderr
    key = printed.stdout.strip()
    assert len(key) == 64

    _sql(tmp_path, "DELETE FROM pseudonym_key", STATE)  # a new state database
    with pytest.raises(PseudonymKeyError, match="THREADLINE_PSEUDONYM_KEY"):
        open_runtime(tmp_path)
    refused = run_cli(tmp_path, "users", "list")
    assert refused.returncode == 2
    assert "THREADLINE_PSEUDONYM_KEY" in " ".join(refused.stderr.split())
    with pytest.raises(PseudonymKeyError, match="not the key"):
        open_runtime(tmp_path, pseudonym_key="ab" * 32)
    with pytest.raises(PseudonymKeyError, match="64 hex digits"):
        open_runtime(tmp_path, pseudonym_key="not-hex")

    restored = open_runtime(tmp_path, pseudonym_key=key)
    try:
        assert _ingest(restored, "m2")[0] == contact
    finally:
        restored.close()
    kept = open_runtime(tmp_path)  # the state database took the key back
    try:
        assert current().key.hex() == key
    finally:
        kept.close()


def test_rotating_the_secret_key_keeps_the_pseudonym_key_and_the_contacts_keys(
    tmp_path: Path,
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    runtime = open_runtime(tmp_path, secret_key=old)
    key = current().key
    try:
        contact, _ = _ingest(runtime, "m1")  # its name sealed with a key wrapped by `old`
    finally:
        runtime.close()
    rotated = run_cli(
        tmp_path, "secrets", "rotate", THREADLINE_SECRET_KEY=new, THREADLINE_SECRET_KEY_OLD=old
    )
    assert rotated.returncode == 0, rotated.stderr
    assert "contact keys" in " ".join(rotated.stderr.split())
    after = open_runtime(tmp_path, secret_key=new)
    try:
        assert current().key == key
        assert after.rebuild_views() > 0  # the sealed parts open with the re-wrapped key
        card = after.queries.contact(contact)
        assert card is not None and card["display_name"] == EMAIL
    finally:
        after.close()
