"""A document sent where a file cannot go: the SMS carries a signed link that serves the PDF
as stored, without a login; a forged or voided link does not."""

# ruff: noqa: RUF001

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_runtime
from tests.services.payments_setup import ACTOR, render
from threadline.domain.commands.documents import DocumentDraft
from threadline.domain.model.document import DocumentKind
from threadline.domain.model.money import Money
from threadline.projections.documents import document, document_sends
from threadline.services.api.app import create_app
from threadline.services.documents.issuing import send_document_to_client
from threadline.services.runtime import Runtime

ADMIN = {"Authorization": "Bearer admin-secret"}
LINK = re.compile(r"https?://\S+(/d/\S+)")


@pytest.fixture
def api(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Runtime]]:
    runtime = make_runtime(
        sqlite_url, admin_token="admin-secret", attachments_dir=str(tmp_path / "files")
    )
    try:
        with TestClient(create_app(runtime)) as client:
            yield client, runtime
    finally:
        runtime.close()


def issued_for(runtime: Runtime, contact_id: UUID) -> UUID:
    draft = DocumentDraft(
        kind=DocumentKind.INVOICE,
        series="СЧ",
        language="ru",
        issued_on=date(2026, 12, 1),
        due_on=date(2026, 12, 10),
        amount=Money(Decimal("1500.00"), "RUB"),
        vat=Money(Decimal(0), "RUB"),
        personal={"title": "Счёт на оплату"},
        template={"id": "shipped:invoice:ru", "version": 0, "shipped": True},
        contact_id=contact_id,
    )
    committed = runtime.app.issue_document(draft, render(runtime), ACTOR)
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    value: UUID = committed.value
    return value


def sent_text(runtime: Runtime, message_id: UUID) -> tuple[str, list[object]]:
    (created,) = runtime.app.repository.event_store.get(message_id, lte=1)
    return str(created.personal["text"]), list(created.attachments)  # type: ignore[attr-defined]


def test_an_sms_carries_a_signed_link_that_serves_the_stored_pdf(
    api: tuple[TestClient, Runtime],
) -> None:
    client, runtime = api
    contact = runtime.app.create_contact(ACTOR, "Анна", [("phone", "+79161234567")]).value
    document_id = issued_for(runtime, contact)
    message_id = send_document_to_client(runtime, document_id, "sms", "Ваш счёт", ACTOR)
    text, files = sent_text(runtime, message_id)
    assert files == []  # an SMS cannot carry the file: the link goes instead
    found = LINK.search(text)
    assert text.startswith("Ваш счёт\n") and found is not None
    row = document(runtime.views, document_id)
    assert row is not None and [s.channel for s in document_sends(runtime.views, document_id)] == [
        "sms"
    ]
    answer = client.get(found.group(1))  # no login
    assert answer.status_code == 200
    assert answer.content == runtime.attachment_access.store.read(row.file_sha256)
    assert answer.headers["etag"] == f'"{row.file_sha256}"'

    token = found.group(1).removeprefix("/d/")
    other = issued_for(runtime, contact)
    forged = f"{other}.{token.partition('.')[2]}"
    assert client.get(f"/d/{forged}").status_code == 404
    assert client.get("/d/not-a-token").status_code == 404

    runtime.wait_for_views(
        runtime.app.void_document(document_id, "wrong amount", ACTOR).notification_id
    )
    assert client.get(found.group(1)).status_code == 410


def test_files_are_refused_on_a_channel_that_cannot_carry_them(
    api: tuple[TestClient, Runtime],
) -> None:
    client, runtime = api
    contact = runtime.app.create_contact(ACTOR, "Борис", [("phone", "+79161234568")]).value
    first, second = issued_for(runtime, contact), issued_for(runtime, contact)
    via_sms = send_document_to_client(runtime, first, "sms", "Счёт", ACTOR)
    (created,) = runtime.app.repository.event_store.get(via_sms, lte=1)
    conversation_id = created.conversation_id  # type: ignore[attr-defined]
    refused = client.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"text": "Оба счёта", "document_ids": [str(first), str(second)]},
        headers=ADMIN,
    )
    assert refused.status_code == 422 and "cannot carry files" in refused.text
    one = client.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"text": "Второй счёт", "document_ids": [str(second)]},
        headers=ADMIN,
    )
    assert one.status_code == 201, one.text
    text, files = sent_text(runtime, UUID(one.json()["message_id"]))
    assert files == [] and LINK.search(text) is not None
