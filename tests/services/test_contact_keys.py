"""The contacts' keys: stored before use, cached within a bound, destroyed for good."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import pytest

from tests.conftest import make_runtime
from threadline.domain.model.inbound import InboundMessage
from threadline.services import contact_keys
from threadline.services.contact_keys import DatabaseKeyring


def test_keys_outlive_the_cache_and_a_destroyed_one_stays_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(contact_keys, "POOL", 3)
    monkeypatch.setattr(contact_keys, "MAX_CACHED", 5)
    runtime = make_runtime(f"sqlite:///{tmp_path}/threadline.db")
    try:
        keyring = runtime.app.personal_mapper.keyring
        assert isinstance(keyring, DatabaseKeyring)
        contacts = []
        for i in range(8):  # more contacts than the cache holds: it starts again, twice
            message = InboundMessage.create(
                channel="api", dedup_key=f"m{i}", identities=[("email", f"c{i}@example.org")],
                sender_name=f"Client {i}", text=f"note {i}",
            )  # fmt: skip
            contacts.append(runtime.app.ingest(message).value.contact_id)
        assert len(keyring._keys) <= 5
        assert runtime.rebuild_views() > 0  # every sealed part opens, from the database
        assert [runtime.queries.contact(str(c))["display_name"] for c in contacts] == [  # type: ignore[index]
            f"Client {i}" for i in range(8)
        ]
        assert keyring.destroy([contacts[0]]) == 1
        keyring._keys.clear()
        assert keyring.key_for(contacts[0], create=True) is None  # a tombstone makes no key
        assert keyring.key_for(contacts[1], create=False) is not None
        assert keyring.key_for(uuid4(), create=False) is None
    finally:
        runtime.close()
