"""Forgetting a client (issue 16, part 2): crypto-shredding through the real store.

A client writes by e-mail (with a file), by Telegram (a contact merged into the first
one), and a rule fires on their text; another client writes by SMS and shares a file.
Then an admin forgets the first client. Afterwards no string of theirs appears in any
view, API answer, export or log line, in the store's bytes neither before nor after
(their personal parts are sealed), the chain still verifies, a replay brings nothing
back, the other client is untouched, and a new message from the same address starts a
new contact.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_runtime
from tests.services.test_personal_data_scan import (
    BODY,
    EMAIL,
    NAME,
    PHONE,
    REPLY_ID,
    ROOT_ID,
    SUBJECT,
    TELEGRAM_NAME,
    TELEGRAM_USER,
    _feed,
)
from threadline.domain.model.inbound import InboundMessage
from threadline.projections.base import FORGOTTEN_NAME
from threadline.projections.privacy import every_row
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime

ADMIN = {"Authorization": "Bearer admin-secret"}
SECRET_FILE = b"%PDF passport scan of Zebedee Quimby"
SHARED_FILE = b"the shop's price list, sent to everyone"
FORGOTTEN = (
    NAME, EMAIL, "zebedee", "quimby", SUBJECT, ROOT_ID, REPLY_ID, BODY, TELEGRAM_NAME,
    str(TELEGRAM_USER), "zanzibar via telegram", "passport-scan",
)  # fmt: skip


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Runtime]]:
    runtime = make_runtime(
        database_url, admin_token="admin-secret", attachments_dir=str(tmp_path / "files")
    )
    runtime.start_triggers()
    try:
        with TestClient(create_app(runtime)) as client:
            yield client, runtime
    finally:
        runtime.close()


def _with_file(runtime: Runtime, key: str, who: tuple[str, str], data: bytes, name: str) -> Any:
    store = runtime.attachment_access.store
    message = InboundMessage.create(
        channel="email" if who[0] == "email" else "sms", dedup_key=key, identities=[who],
        text="see the file", attachments=[store.put(data, name, "application/pdf")],
    )  # fmt: skip
    return runtime.app.ingest(message).value


def _views_text(runtime: Runtime) -> str:
    """Every row of every view table, as one lower-case text."""
    tables = every_row(runtime.views)
    return "\n".join(json.dumps(tables[t], default=str) for t in sorted(tables)).lower()


def _found(text: str, secrets: tuple[str, ...] = FORGOTTEN) -> list[str]:
    lowered = text.lower()
    return [secret for secret in secrets if secret.lower() in lowered]


def _store_bytes(database_url: str, runtime: Runtime) -> str:
    """The stored events' state as the store holds it (sealed personal parts included)."""
    states = []
    start = 1
    while page := runtime.app.recorder.select_notifications(start, 1000):
        states += [n.state.decode("utf-8", "replace") for n in page]
        start = page[-1].id + 1
    if database_url.startswith("sqlite:///"):
        path = Path(database_url.removeprefix("sqlite:///"))
        with sqlite3.connect(path) as raw:
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        states.append(path.read_bytes().decode("latin-1"))
    return "\n".join(states)


def test_a_forgotten_client_leaves_no_trace_and_the_log_keeps_its_shape(
    api: tuple[TestClient, Runtime],
    database_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, runtime = api
    _, conversation_id, contact = _feed(runtime, tmp_path)
    telegram = client.get("/api/contacts", params={"q": TELEGRAM_NAME}, headers=ADMIN).json()
    [telegram_contact] = [UUID(item["id"]) for item in telegram["items"]]
    runtime.app.merge_contacts(contact, telegram_contact, "user:test")
    with_secret = _with_file(
        runtime, "<file-1@x>", ("email", EMAIL), SECRET_FILE, "passport-scan.pdf"
    )
    _with_file(runtime, "<file-2@x>", ("email", EMAIL), SHARED_FILE, "prices.pdf")
    sms = _with_file(runtime, "SM-file", ("phone", PHONE), SHARED_FILE, "prices.pdf")
    committed = runtime.app.ingest(
        InboundMessage.create(channel="api", dedup_key="last", identities=[("phone", PHONE)],
                              text="phone client is here")
    )  # fmt: skip
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    assert with_secret.contact_id == contact and sms.contact_id != contact
    assert _found(_views_text(runtime))  # the views knew them...
    assert not _found(_store_bytes(database_url, runtime))  # ...the store never in clear
    store = runtime.attachment_access.store
    secret_path = store.path_for(hashlib.sha256(SECRET_FILE).hexdigest())
    shared_path = store.path_for(hashlib.sha256(SHARED_FILE).hexdigest())
    assert secret_path.exists() and shared_path.exists()

    assert client.post(f"/api/contacts/{contact}/forget", headers={}).status_code == 401
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    answer = client.post(f"/api/contacts/{telegram_contact}/forget", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body["forgotten"]) == {str(contact), str(telegram_contact)}  # the whole person
    assert (body["files_deleted"], body["files_kept"]) == (1, 1)
    assert not secret_path.exists() and shared_path.exists()

    assert not _found(_views_text(runtime)), _found(_views_text(runtime))
    assert PHONE in _views_text(runtime)  # the other client is untouched
    card = client.get(f"/api/contacts/{contact}", headers=ADMIN)
    assert card.status_code == 200 and card.json()["display_name"] == FORGOTTEN_NAME
    answers = [
        card.text,
        client.get(f"/api/contacts/{contact}/timeline", headers=ADMIN).text,
        client.get(f"/api/conversations/{conversation_id}", headers=ADMIN).text,
        client.get("/api/audit/events", params={"contact_id": str(contact), "limit": 1000},
                   headers=ADMIN).text,
        client.get("/api/audit/export", params={"contact_id": str(contact), "format": "html"},
                   headers=ADMIN).text,
        client.get(f"/api/audit/contacts/{contact}", headers=ADMIN).text,
    ]  # fmt: skip
    assert not _found("\n".join(answers))
    timeline = client.get(f"/api/contacts/{contact}/timeline", headers=ADMIN).json()
    assert timeline["items"]  # the history keeps its shape: the rows are there, blank
    assert not _found("\n".join(record.getMessage() for record in caplog.records))
    assert not _found(_store_bytes(database_url, runtime))
    report = runtime.chain.verify()
    assert report.broken_at is None, report.reason  # the chain covers the sealed bytes

    # a replay brings nothing back: the personal parts do not open any more
    runtime.rebuild_views()
    assert not _found(_views_text(runtime))
    assert FORGOTTEN_NAME.lower() in _views_text(runtime) and PHONE in _views_text(runtime)
    # forgetting again changes nothing; the address is free for a new contact
    again = client.post(f"/api/contacts/{contact}/forget", headers=ADMIN).json()
    assert again["forgotten"] == []
    back = runtime.app.ingest(
        InboundMessage.create(channel="email", dedup_key="<back@x>", identities=[("email", EMAIL)],
                              sender_name="Zebedee Again", text="it is me again")
    ).value  # fmt: skip
    assert back.contact_created and back.contact_id != contact
    assert runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=60)
    assert "zebedee again" in _views_text(runtime)
    assert client.post(f"/api/contacts/{UUID(int=7)}/forget", headers=ADMIN).status_code == 404
