"""Sending replies by SMTP (aiosmtplib) to a local aiosmtpd, and the whole reply loop.

The capturing server records every envelope, so the tests read back exactly what
a mail server would have received: threading headers, both bodies, the login.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from tests.channels.dovecot import (
    Dovecot,
    SmtpCapture,
    SmtpMta,
    TlsCert,
    capture_server,
    free_port,
)
from tests.conftest import make_runtime
from threadline.channels.attachments import AttachmentStore
from threadline.channels.base import (
    ChannelOptions,
    ChannelServices,
    DeliveryError,
    DeliveryErrorKind,
    InboxConfig,
    OutboundMessage,
)
from threadline.channels.email import EmailAdapter
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime

ADMIN = {"Authorization": "Bearer admin-secret"}
pytestmark = pytest.mark.timeout(120)


class MemoryState:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def set(self, key: str, value: str) -> None:
        self.values[key] = value


async def _no_ingest(message: Any) -> Any:
    raise AssertionError("sending must not ingest")


def adapter_for(settings: dict[str, Any], tmp_path: Path) -> EmailAdapter:
    secrets = {k: str(settings.pop(k)) for k in ("smtp_password",) if k in settings}
    inbox = InboxConfig(
        id=uuid4(), slug="support", channel="email", name="Support", settings=settings,
        secrets=secrets,
    )  # fmt: skip
    services = ChannelServices(
        ingest=_no_ingest,
        state=MemoryState(),
        attachments=AttachmentStore(tmp_path / "attachments"),
        options=ChannelOptions(send_timeout=9.0),
    )
    return EmailAdapter(inbox, services)


def outbound(**overrides: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "message_id": UUID("9f1c4a52-5a7e-4c41-9d0e-4f1f3b2a6c10"),
        "conversation_id": uuid4(),
        "contact_id": uuid4(),
        "channel": "email",
        "recipient": "anna@example.org",
        "recipient_name": "Анна Смирнова",
        "subject": "Где мой заказ?",
        "text": "Заказ уже в пути.",
        "html": "<p>Заказ <b>уже в пути</b>.</p>",
        "in_reply_to": "<c2@client.example.org>",
        "references": ("<c1@client.example.org>", "<c2@client.example.org>"),
    }
    values.update(overrides)
    return OutboundMessage(**values)


def parsed(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_a_reply_carries_threading_headers_both_bodies_and_logs_in(
    smtp_capture: SmtpCapture, tmp_path: Path
) -> None:
    adapter = adapter_for(smtp_capture.settings(), tmp_path)
    provider_id = asyncio.run(adapter.send(outbound()))

    assert provider_id == "<9f1c4a52-5a7e-4c41-9d0e-4f1f3b2a6c10@example.com>"
    (captured,) = smtp_capture.wait_for(1)
    assert captured.mail_from == "support@example.com"
    assert captured.rcpt_tos == ["anna@example.org"]
    assert captured.login == smtp_capture.username
    email = parsed(captured.raw)
    assert email["Message-ID"] == provider_id
    assert email["In-Reply-To"] == "<c2@client.example.org>"
    assert email["References"].split() == ["<c1@client.example.org>", "<c2@client.example.org>"]
    assert email["Subject"] == "Re: Где мой заказ?"
    assert email["From"].addresses[0].display_name == "Threadline Support"
    assert email["To"].addresses[0].display_name == "Анна Смирнова"
    assert email["Date"] is not None
    text = email.get_body(("plain",))
    html = email.get_body(("html",))
    assert text is not None and text.get_content().strip() == "Заказ уже в пути."
    assert html is not None and "<b>уже в пути</b>" in html.get_content()


def test_subjects_message_ids_and_references_edge_cases(
    smtp_capture: SmtpCapture, tmp_path: Path
) -> None:
    adapter = adapter_for(smtp_capture.settings(), tmp_path)
    first = asyncio.run(adapter.send(outbound(subject="RE: Счёт", html="")))
    again = asyncio.run(adapter.send(outbound(subject="RE: Счёт", html="")))
    empty = asyncio.run(
        adapter.send(outbound(subject="", in_reply_to="<only@client.example.org>", references=()))
    )
    bare = asyncio.run(adapter.send(outbound(in_reply_to="", references=(), html="")))
    assert first == again  # deterministic: a retried send keeps its Message-ID
    emails = [parsed(c.raw) for c in smtp_capture.wait_for(4)]
    assert emails[0]["Subject"] == "RE: Счёт"
    assert not emails[0].is_multipart()  # no html, just text
    assert emails[2]["Subject"] == "Your message"
    assert emails[2]["References"] == "<only@client.example.org>"
    assert empty == emails[2]["Message-ID"]
    assert emails[3]["In-Reply-To"] is None and emails[3]["References"] is None
    assert bare == emails[3]["Message-ID"]


def test_a_refused_recipient_is_permanent_and_a_busy_one_transient(
    smtp_capture: SmtpCapture, tmp_path: Path
) -> None:
    adapter = adapter_for(smtp_capture.settings(), tmp_path)
    with pytest.raises(DeliveryError) as refused:
        asyncio.run(adapter.send(outbound(recipient="rejected@example.org")))
    assert refused.value.kind is DeliveryErrorKind.PERMANENT
    assert "550" in refused.value.reason
    with pytest.raises(DeliveryError) as busy:
        asyncio.run(adapter.send(outbound(recipient="later@example.org")))
    assert busy.value.kind is DeliveryErrorKind.TRANSIENT
    assert "451" in busy.value.reason
    assert smtp_capture.messages == []


def test_a_closed_port_is_transient(tmp_path: Path) -> None:
    settings = {"smtp_host": "127.0.0.1", "smtp_port": free_port(), "smtp_security": "none"}
    adapter = adapter_for({**settings, "from_address": "support@example.com"}, tmp_path)
    started = time.monotonic()
    with pytest.raises(DeliveryError) as error:
        asyncio.run(adapter.send(outbound()))
    assert error.value.kind is DeliveryErrorKind.TRANSIENT
    assert time.monotonic() - started < 5


def test_wrong_credentials_and_missing_settings_are_permanent(
    smtp_capture: SmtpCapture, tmp_path: Path
) -> None:
    wrong = adapter_for(smtp_capture.settings(smtp_password="wrong"), tmp_path)
    with pytest.raises(DeliveryError) as error:
        asyncio.run(wrong.send(outbound()))
    assert error.value.kind is DeliveryErrorKind.PERMANENT and "535" in error.value.reason
    no_host = adapter_for({"from_address": "support@example.com"}, tmp_path)
    with pytest.raises(DeliveryError) as error:
        asyncio.run(no_host.send(outbound()))
    assert error.value.kind is DeliveryErrorKind.PERMANENT
    no_from = adapter_for(smtp_capture.settings(from_address=""), tmp_path)
    with pytest.raises(DeliveryError) as error:
        asyncio.run(no_from.send(outbound()))
    assert error.value.kind is DeliveryErrorKind.PERMANENT and "from_address" in error.value.reason


def test_an_attachment_from_the_store_is_attached(
    smtp_capture: SmtpCapture, tmp_path: Path
) -> None:
    adapter = adapter_for(smtp_capture.settings(), tmp_path)
    meta = adapter.services.attachments.put(b"%PDF-1.4 invoice", "Счёт.pdf", "application/pdf")
    attachment = {
        "sha256": meta.sha256,
        "filename": meta.filename,
        "content_type": "application/pdf",
    }
    asyncio.run(adapter.send(outbound(attachments=(attachment,))))
    email = parsed(smtp_capture.wait_for(1)[0].raw)
    (part,) = list(email.iter_attachments())
    assert part.get_filename() == "Счёт.pdf"
    assert part.get_content() == b"%PDF-1.4 invoice"
    assert email.get_body(("html",)) is not None


# -- TLS --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_starttls_and_implicit_tls(trusted_tls: TlsCert, tmp_path: Path, mode: str) -> None:
    with capture_server(mode, trusted_tls) as server:
        adapter = adapter_for(server.settings(smtp_security=mode), tmp_path)
        asyncio.run(adapter.send(outbound()))
        assert server.wait_for(1)[0].login == server.username


def test_a_server_requiring_starttls_refuses_a_plain_session(
    trusted_tls: TlsCert, tmp_path: Path
) -> None:
    with capture_server("starttls", trusted_tls) as server:
        adapter = adapter_for(server.settings(smtp_security="none"), tmp_path)
        with pytest.raises(DeliveryError):
            asyncio.run(adapter.send(outbound()))
        assert server.messages == []


# -- the whole loop: IMAP in, reply out, the client's answer back in ----------------------------


@pytest.fixture
def loop_runtime(tmp_path: Path) -> Iterator[Runtime]:
    runtime = make_runtime(
        f"sqlite:///{tmp_path}/threadline.db",
        attachments_dir=str(tmp_path / "attachments"),
        admin_token="admin-secret",
        channel_poll_interval=1.0,
    )
    try:
        yield runtime
    finally:
        runtime.close()


def wait_until(predicate: Callable[[], Any], seconds: float = 15.0, what: str = "") -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or predicate}")


def test_ingest_by_imap_reply_by_smtp_and_the_answer_threads_back(
    dovecot: Dovecot,
    smtp_to_imap: SmtpMta,
    smtp_capture: SmtpCapture,
    loop_runtime: Runtime,
) -> None:
    user = dovecot.add_user()
    question = EmailMessage()
    question["From"] = "Анна Смирнова <anna@example.org>"
    question["To"] = dovecot.address(user)
    question["Subject"] = "Где мой заказ?"
    question["Message-ID"] = "<q1@client.example.org>"
    question.set_content("Заказ №42 не пришёл.")
    smtp_to_imap.send(question.as_bytes(), user)

    settings = {**dovecot.settings(user), **smtp_capture.settings()}
    loop_runtime.channels.configure("support", "email", "Support", settings, actor="test")
    loop_runtime.channels.start()
    client = TestClient(create_app(loop_runtime))
    items = wait_until(
        lambda: client.get("/api/inbox", headers=ADMIN).json()["items"], what="the question"
    )
    conversation_id = items[0]["conversation_id"]

    reply = client.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"text": "Заказ уже в пути."},
        headers=ADMIN,
    )
    assert reply.status_code == 201, reply.text
    (sent,) = smtp_capture.wait_for(1, seconds=20)
    assert sent.rcpt_tos == ["anna@example.org"]
    email = parsed(sent.raw)
    assert email["In-Reply-To"] == "<q1@client.example.org>"
    assert email["References"].split()[0] == "<q1@client.example.org>"
    assert email["Subject"] == "Re: Где мой заказ?"
    assert email.get_body(("plain",)).get_content().strip() == "Заказ уже в пути."  # type: ignore[union-attr]

    def state() -> str:
        conversation = client.get(f"/api/conversations/{conversation_id}", headers=ADMIN).json()
        mine = [m for m in conversation["messages"] if m["id"] == reply.json()["message_id"]]
        return str(mine[0]["state"]) if mine else ""

    wait_until(lambda: state() == "sent", what="the reply marked sent (accepted by SMTP)")

    # The client answers our reply; their mail program keeps our References chain.
    answer = EmailMessage()
    answer["From"] = "Анна Смирнова <anna@example.org>"
    answer["To"] = dovecot.address(user)
    answer["Subject"] = "Re: Re: Где мой заказ?"
    answer["Message-ID"] = "<q2@client.example.org>"
    answer["In-Reply-To"] = email["Message-ID"]
    answer["References"] = f"{email['References']} {email['Message-ID']}"
    answer.set_content("Спасибо!")
    smtp_to_imap.send(answer.as_bytes(), user)

    def inbound_texts() -> list[str]:
        conversation = client.get(f"/api/conversations/{conversation_id}", headers=ADMIN).json()
        return [m["text"].strip() for m in conversation["messages"] if m["direction"] == "inbound"]

    wait_until(lambda: len(inbound_texts()) == 2, what="the answer in the same conversation")
    assert inbound_texts() == ["Заказ №42 не пришёл.", "Спасибо!"]
    assert len(client.get("/api/inbox", headers=ADMIN).json()["items"]) == 1
