"""Files on replies: upload, reply with the file (or an issued document), the e-mail that reaches
a real SMTP server (aiosmtpd) carries it, and the outbound file downloads like an inbound one.

The SMTP adapter is the real one, sending to `smtp_capture`; the client's first e-mail is
parsed by the real MIME parser, so the reply goes into a real e-mail conversation.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from tests.channels.dovecot import SmtpCapture, smtp_capture  # noqa: F401
from tests.conftest import make_runtime
from tests.services.test_document_issuing import (
    ADMIN,
    OURS,
    TOTAL,
    WORDS_RU,
    deal,
)
from tests.waiting import wait_for
from threadline.channels.email_mime import parse_email
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime

pytestmark = pytest.mark.timeout(180)
LIMIT = 200_000
CLIENT_ADDRESS = "maria@vector.example"


@pytest.fixture
def mail_api(
    database_url: str,
    tmp_path: Path,
    smtp_capture: SmtpCapture,  # noqa: F811
) -> Iterator[tuple[TestClient, Runtime]]:
    runtime = make_runtime(
        database_url,
        admin_token="admin-secret",
        attachments_dir=str(tmp_path / "files"),
        max_attachment_bytes=LIMIT,
    )
    try:
        runtime.wait_for_views(runtime.app.seed_pipelines("test").notification_id, timeout=30)
        runtime.channels.configure(
            "support", "email", "Support", smtp_capture.settings(), actor="test"
        )
        runtime.wait_for_views(runtime.app.recorder.max_notification_id())
        runtime.channels.start(pollers=False)
        with TestClient(create_app(runtime)) as client:
            yield client, runtime
    finally:
        runtime.close()


def client_writes(runtime: Runtime) -> tuple[str, str]:
    """The client's first e-mail, as the IMAP poller would record it: (conversation, contact)."""
    mail = EmailMessage()
    mail["From"] = f"Мария Петрова <{CLIENT_ADDRESS}>"
    mail["To"] = "support@example.com"
    mail["Subject"] = "Счёт на оборудование"
    mail["Message-ID"] = f"<{uuid4()}@vector.example>"
    mail.set_content("Пришлите, пожалуйста, счёт и схему.")
    inbox = runtime.channels.inbox("support")
    assert inbox is not None
    parsed = parse_email(mail.as_bytes(), runtime.channels.attachments, inbox.id)
    committed = runtime.app.ingest(parsed)
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    return str(committed.value.conversation_id), str(committed.value.contact_id)


def upload(client: TestClient, data: bytes, name: str, kind: str, headers: Any = ADMIN) -> Any:
    return client.post("/api/attachments", files={"file": (name, data, kind)}, headers=headers)


def files_of(raw: bytes) -> dict[str, bytes]:
    mail = message_from_bytes(raw, policy=policy.default)
    found: dict[str, bytes] = {}
    for part in mail.iter_attachments():  # type: ignore[attr-defined]
        found[str(part.get_filename())] = bytes(part.get_payload(decode=True))
    return found


def test_a_reply_carries_an_uploaded_file_to_the_clients_mailbox_and_serves_it_back(
    mail_api: tuple[TestClient, Runtime],
    smtp_capture: SmtpCapture,  # noqa: F811
) -> None:
    client, runtime = mail_api
    conversation_id, _ = client_writes(runtime)
    scheme = b"%PDF-1.4 a wiring scheme\n" + bytes(range(256)) * 40
    uploaded = upload(client, scheme, "Схема сети.pdf", "application/pdf")
    assert uploaded.status_code == 201, uploaded.text
    meta = uploaded.json()
    assert meta == {
        "sha256": hashlib.sha256(scheme).hexdigest(),
        "filename": "Схема сети.pdf",
        "content_type": "application/pdf",
        "size": len(scheme),
    }

    reply = {
        "text": "Схема во вложении.",
        "attachments": [{"sha256": meta["sha256"], "filename": "Схема сети.pdf"}],
    }
    response = client.post(
        f"/api/conversations/{conversation_id}/messages", json=reply, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    message_id = response.json()["message_id"]

    (sent,) = smtp_capture.wait_for(1)
    assert sent.rcpt_tos == [CLIENT_ADDRESS]
    assert files_of(sent.raw) == {"Схема сети.pdf": scheme}

    thread = client.get(f"/api/conversations/{conversation_id}", headers=ADMIN).json()
    [outbound] = [m for m in thread["messages"] if m["id"] == message_id]
    assert [(a["filename"], a["size"]) for a in outbound["attachments"]] == [
        ("Схема сети.pdf", len(scheme))
    ]
    url = f"/api/messages/{message_id}/attachments/0"
    download = client.get(url, headers=ADMIN)
    assert download.status_code == 200 and download.content == scheme
    assert download.headers["content-disposition"].startswith("attachment")
    # access: a caller without a token is refused; what is not there is a 404
    assert client.get(url).status_code == 401
    assert client.get(f"/api/messages/{message_id}/attachments/1", headers=ADMIN).status_code == 404
    assert client.get(f"/api/messages/{uuid4()}/attachments/0", headers=ADMIN).status_code == 404
    operator = client.post(
        "/api/users", json={"email": "op@example.com", "role": "operator"}, headers=ADMIN
    ).json()
    as_operator = {"Authorization": f"Bearer {operator['token']}"}
    assert client.get(url, headers=as_operator).content == scheme


def test_an_issued_document_sent_in_a_conversation_is_recorded_and_arrives_as_a_pdf(
    mail_api: tuple[TestClient, Runtime],
    smtp_capture: SmtpCapture,  # noqa: F811
) -> None:
    client, runtime = mail_api
    conversation_id, contact_id = client_writes(runtime)
    assert client.post("/api/companies", json=OURS, headers=ADMIN).status_code == 201
    deal_id = deal(client, None, contact_id)
    issued = client.post(
        "/api/documents", json={"kind": "invoice", "deal_id": deal_id}, headers=ADMIN
    ).json()

    reply = {"text": "Счёт во вложении.", "document_ids": [issued["id"]]}
    response = client.post(
        f"/api/conversations/{conversation_id}/messages", json=reply, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    (sent,) = smtp_capture.wait_for(1)
    files = files_of(sent.raw)
    pdf = files[issued["file"]["filename"]]
    assert hashlib.sha256(pdf).hexdigest() == issued["file"]["sha256"]
    text = " ".join(
        "\n".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(pdf)).pages)
        .replace("\u00a0", " ")
        .split()
    )
    assert f"{TOTAL:,}".replace(",", " ").replace(".", ",") in text and WORDS_RU in text
    shown = client.get(f"/api/documents/{issued['id']}", headers=ADMIN).json()
    assert shown["sent_count"] == 1  # recorded as sent to the client

    # Two files at once: an upload and the document, attached as they are.
    note = upload(client, b"price list", "prices.txt", "text/plain").json()
    both = {
        "text": "И прайс-лист.",
        "attachments": [{"sha256": note["sha256"], "filename": "prices.txt"}],
        "document_ids": [issued["id"]],
    }
    response = client.post(
        f"/api/conversations/{conversation_id}/messages", json=both, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    second = wait_for(lambda: len(smtp_capture.messages) >= 2 and smtp_capture.messages[1])
    assert set(files_of(second.raw)) == {"prices.txt", issued["file"]["filename"]}

    # The document's own send route, into the conversation, on its channel.
    sent = client.post(
        f"/api/documents/{issued['id']}/send",
        json={"conversation_id": conversation_id},
        headers=ADMIN,
    )
    assert sent.status_code == 201, sent.text
    third = wait_for(lambda: len(smtp_capture.messages) >= 3 and smtp_capture.messages[2])
    assert third.rcpt_tos == [CLIENT_ADDRESS]
    assert list(files_of(third.raw)) == [issued["file"]["filename"]]
    message = runtime.queries.message(sent.json()["message_id"])
    assert message is not None and message["conversation_id"] == conversation_id
    shown = client.get(f"/api/documents/{issued['id']}", headers=ADMIN).json()
    assert shown["sent_count"] == 2


def test_files_that_cannot_go_are_refused_clearly(
    mail_api: tuple[TestClient, Runtime],
) -> None:
    client, runtime = mail_api
    conversation_id, _ = client_writes(runtime)
    url = f"/api/conversations/{conversation_id}/messages"

    too_large = upload(client, b"x" * (LIMIT + 1), "big.bin", "application/octet-stream")
    assert too_large.status_code == 413
    assert str(LIMIT) in too_large.json()["detail"]
    assert upload(client, b"ok", "ok.txt", "text/plain").status_code == 201

    missing = {"text": "x", "attachments": [{"sha256": "ab" * 32, "filename": "gone.pdf"}]}
    refused = client.post(url, json=missing, headers=ADMIN)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "attachments", "0", "sha256"]
    bad_hash = {"text": "x", "attachments": [{"sha256": "../etc", "filename": "a"}]}
    assert client.post(url, json=bad_hash, headers=ADMIN).status_code == 422
    unknown_document = {"text": "x", "document_ids": [str(uuid4())]}
    refused = client.post(url, json=unknown_document, headers=ADMIN)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "document_ids", "0"]
    stored = upload(client, b"note", "n.txt", "text/plain").json()
    note = {
        "text": "internal",
        "internal": True,
        "attachments": [{"sha256": stored["sha256"], "filename": "n.txt"}],
    }
    assert client.post(url, json=note, headers=ADMIN).status_code == 422

    auditor = client.post(
        "/api/users", json={"email": "a@example.com", "role": "auditor"}, headers=ADMIN
    ).json()
    audit = {"Authorization": f"Bearer {auditor['token']}"}
    assert upload(client, b"x", "x.txt", "text/plain", headers=audit).status_code == 403
    assert client.post("/api/attachments", files={"file": ("x", b"x")}).status_code == 401
