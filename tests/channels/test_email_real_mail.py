"""Real-world mail through a real Dovecot: what issue 10 found, end to end.

Each test writes its messages byte for byte, APPENDs them to its own Dovecot
mailbox and lets the runtime's poller ingest them exactly as `threadline serve`
would; the assertions read the views and the API.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from tests.channels.dovecot import Dovecot
from tests.waiting import wait_for
from threadline.channels.email import cursor_key
from threadline.projections.inbox import channel_messages
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime

ADMIN = {"Authorization": "Bearer admin-secret"}
pytestmark = pytest.mark.timeout(120)


def wait(predicate: Callable[[], Any], what: str) -> Any:
    """Generous: the poller connects, syncs and IDLEs on a machine other tests keep busy."""
    return wait_for(predicate, what, timeout=45)


def inbound(runtime: Runtime) -> list[dict[str, Any]]:
    return [asdict(m) for m in channel_messages(runtime.views, "email", "inbound")]


def start(runtime: Runtime, dovecot: Dovecot, user: str, **settings: Any) -> None:
    runtime.channels.configure(
        "support", "email", "Support", dovecot.settings(user, **settings), actor="test"
    )
    runtime.channels.start(delivery=False)


def b64(text: str, codec: str, label: str) -> str:
    return f"=?{label}?B?{base64.b64encode(text.encode(codec)).decode()}?="


def test_undecodable_headers_and_unknown_charsets_neither_stop_nor_spoil_the_mailbox(
    dovecot: Dovecot, database_url: str, new_runtime: Callable[..., Runtime]
) -> None:
    """Before: a lone surrogate in the sender name made the append fail, forever."""
    user = dovecot.add_user()
    messages = [
        b"From: =?utf-8?Q?Jos=E9_Garc=EDa?= <jose@example.org>\r\nSubject: wrong charset\r\n"
        b"Message-ID: <m1@client.example.org>\r\n\r\nhola",
        b"From: " + "Иван Петров".encode("cp1251") + b" <ivan@example.org>\r\n"
        b"Subject: raw cp1251\r\nMessage-ID: <m2@client.example.org>\r\n\r\nprivet",
        b"From: " + "Анна Смирнова".encode() + b" <anna@example.org>\r\n"
        b"Subject: raw utf-8\r\nMessage-ID: <m3@client.example.org>\r\n\r\nprivet",
        b"From: eight@example.org\r\nSubject: 8-bit ids\r\n"
        b"Message-ID: <caf\xe9@client.example.org>\r\nIn-Reply-To: <\xff\xfe@x.example.org>\r\n"
        b"References: <r\xe9f@x.example.org>\r\nAuto-Submitted: auto-\xe9\r\n\r\nids",
        f"From: hebrew@example.org\r\nSubject: {b64('שלום', 'iso-8859-8', 'iso-8859-8-i')}\r\n"
        "Content-Type: text/plain; charset=iso-8859-8-i\r\n\r\n".encode()
        + "שלום עולם".encode("iso-8859-8"),
        b"From: china@example.org\r\nSubject: gbk\r\n"
        b"Content-Type: text/plain; charset=gb2312\r\n\r\n" + "王堃喆".encode("gbk"),
        b"From: mac@example.org\r\nSubject: mac\r\n"
        b"Content-Type: text/plain; charset=x-mac-cyrillic\r\n\r\n"
        + "Привет".encode("mac-cyrillic"),
        b"From: last@example.org\r\nSubject: after all that\r\n\r\nstill here",
    ]
    for raw in messages:
        dovecot.append(user, raw)
    runtime = new_runtime(database_url)
    start(runtime, dovecot, user)

    rows = wait(
        lambda: len(inbound(runtime)) == len(messages) and inbound(runtime),
        "every message in the views",
    )
    by_subject = {row["subject"]: row for row in rows}
    assert by_subject["wrong charset"]["sender_name"] == "José García"
    assert by_subject["raw cp1251"]["sender_name"] == "Иван Петров"
    assert by_subject["raw utf-8"]["sender_name"] == "Анна Смирнова"
    assert by_subject["8-bit ids"]["metadata"]["message_id"] == "<café@client.example.org>"
    assert by_subject["8-bit ids"]["metadata"]["auto_reply"] is True
    assert by_subject["שלום"]["text"] == "שלום עולם"
    assert by_subject["gbk"]["text"] == "王堃喆"
    assert by_subject["mac"]["text"] == "Привет"
    assert by_subject["after all that"]["text"] == "still here"
    for row in rows:  # nothing that cannot be UTF-8 came back from the store
        json.dumps(row, ensure_ascii=False).encode("utf-8")
    rejected = runtime.state_db.query(
        "SELECT key FROM channel_state WHERE key LIKE 'imap-rejected:support:%'"
    )
    assert rejected == []


def test_senders_at_special_use_domains_and_address_literals_become_clients(
    dovecot: Dovecot, new_runtime: Callable[..., Runtime]
) -> None:
    user = dovecot.add_user()
    dovecot.append(
        user,
        b"From: Anna <anna@example.org>\r\nSubject: order\r\n"
        b"Message-ID: <order-1@client.example.org>\r\n\r\nWhere is my order?",
    )
    dovecot.append(user, b"From: Scanner <scan@office.local>\r\nSubject: scan\r\n\r\npdf")
    dovecot.append(user, b"From: dev@[192.0.2.1]\r\nSubject: literal\r\n\r\nhello")
    runtime = new_runtime()
    start(runtime, dovecot, user)
    rows = wait(lambda: len(inbound(runtime)) == 3 and inbound(runtime), "three messages")
    client = TestClient(create_app(runtime))
    identities = {
        row["subject"]: client.get(f"/api/contacts/{row['contact_id']}", headers=ADMIN).json()[
            "identities"
        ]
        for row in rows
    }
    assert identities["scan"] == [{"kind": "email", "value": "scan@office.local"}]
    assert identities["literal"] == [{"kind": "email", "value": "dev@[192.0.2.1]"}]
    assert identities["order"] == [{"kind": "email", "value": "anna@example.org"}]


def test_a_null_sender_bounce_joins_the_conversation_of_the_reply_it_reports(
    dovecot: Dovecot, new_runtime: Callable[..., Runtime]
) -> None:
    user = dovecot.add_user()
    dovecot.append(
        user,
        b"From: Anna <anna@example.org>\r\nSubject: order\r\n"
        b"Message-ID: <order-1@client.example.org>\r\n\r\nWhere is my order?",
    )
    runtime = new_runtime()
    start(runtime, dovecot, user)
    (order,) = wait(lambda: inbound(runtime), "the client's message")
    client = TestClient(create_app(runtime))
    reply = client.post(
        f"/api/conversations/{order['conversation_id']}/messages",
        json={"text": "It is on its way"},
        headers=ADMIN,
    )
    assert reply.status_code == 201, reply.text
    ours = f"<{reply.json()['message_id']}@example.com>"  # the Message-ID the reply is sent with
    bounce = (
        "Return-Path: <>\r\nFrom: MAILER-DAEMON <>\r\nTo: support@example.com\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-9@mx.example.net>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="R"\r\n\r\n'
        "--R\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--R\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n"
        "\r\nFinal-Recipient: rfc822; anna@example.org\r\nAction: failed\r\nStatus: 5.2.2\r\n"
        "--R\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: support@example.com\r\nTo: anna@example.org\r\nMessage-ID: {ours}\r\n"
        "--R--\r\n"
    )
    dovecot.append(user, bounce.encode())
    rows = wait(lambda: len(inbound(runtime)) == 2 and inbound(runtime), "the bounce")
    (bounced,) = [row for row in rows if row["metadata"].get("bounce")]
    assert bounced["conversation_id"] == order["conversation_id"]
    assert bounced["contact_id"] == order["contact_id"]
    assert bounced["metadata"]["in_reply_to"] == ours
    assert bounced["metadata"]["delivery_status"] == "failed"
    assert bounced["metadata"]["auto_reply"] is True
    contacts = client.get("/api/contacts", headers=ADMIN).json()["items"]
    assert len(contacts) == 1  # no card for "MAILER-DAEMON"
    anna = client.get(f"/api/contacts/{order['contact_id']}", headers=ADMIN).json()
    assert anna["display_name"] == "Anna"


def test_mail_without_a_message_id_is_not_ingested_again_after_a_uidvalidity_change(
    dovecot: Dovecot, new_runtime: Callable[..., Runtime]
) -> None:
    user = dovecot.add_user()
    folder = "Archive"
    dovecot.create_folder(user, folder)
    no_id = b"From: anna@example.org\r\nSubject: no id\r\nDate: Mon, 23 Nov 2026 10:00:00 +0300\r\n\r\nx"
    dovecot.append(user, no_id, folder)
    runtime = new_runtime()
    start(runtime, dovecot, user, imap_folders=[folder])
    wait(lambda: len(inbound(runtime)) == 1, "the first message")
    key = cursor_key("support", folder)
    before = json.loads(runtime.channels.state.get(key) or "{}")
    runtime.channels.stop()

    # A deleted and re-created folder has a new UIDVALIDITY: every UID is new.
    dovecot.delete_folder(user, folder)
    dovecot.create_folder(user, folder)
    dovecot.append(user, no_id, folder)
    dovecot.append(user, no_id.replace(b"no id", b"new one"), folder)
    runtime.channels.start(delivery=False)

    def moved() -> bool:
        cursor = json.loads(runtime.channels.state.get(key) or "{}")
        return cursor.get("uidvalidity") != before["uidvalidity"] and cursor["last_uid"] == 2

    wait(moved, "the poller reading the renumbered folder")
    rows = wait(
        lambda: any(r["subject"] == "new one" for r in inbound(runtime)) and inbound(runtime),
        "the new message",
    )
    assert sorted(row["subject"] for row in rows) == ["new one", "no id"]


def test_inline_text_a_forward_and_a_comment_name_reach_the_inbox(
    dovecot: Dovecot, new_runtime: Callable[..., Runtime]
) -> None:
    user = dovecot.add_user()
    raw = (
        b"From: anna@example.org (Anna Smith)\r\nSubject: Fwd: invoice\r\n"
        b"Message-ID: <fwd-1@client.example.org>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b'Content-Disposition: inline; filename="note.txt"\r\n\r\n'
        + "Смотрите ниже".encode()
        + b"\r\n--B\r\nContent-Type: message/rfc822\r\n\r\n"
        b"From: Supplier <billing@supplier.example.org>\r\nDate: Mon, 23 Nov 2026 09:00:00 +0000\r\n"
        b"Subject: Invoice 77\r\nMessage-ID: <inv-77@supplier.example.org>\r\n\r\n"
        b"Please pay invoice 77.\r\n--B--\r\n"
    )
    dovecot.append(user, raw)
    runtime = new_runtime()
    start(runtime, dovecot, user)
    (row,) = wait(lambda: inbound(runtime), "the message")
    assert row["sender_name"] == "Anna Smith"
    assert row["text"].startswith("Смотрите ниже")
    assert "---------- Forwarded message ----------" in row["text"]
    assert "Subject: Invoice 77" in row["text"] and "Please pay invoice 77." in row["text"]
    kinds = sorted(a["content_type"] for a in row["attachments"])
    assert kinds == ["message/rfc822", "text/plain"]
    contact = TestClient(create_app(runtime)).get(
        f"/api/contacts/{row['contact_id']}", headers=ADMIN
    )
    assert contact.json()["display_name"] == "Anna Smith"
    assert UUID(row["id"])
