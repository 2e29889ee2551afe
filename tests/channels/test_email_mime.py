"""MIME parsing: charsets, encoded headers, bodies, attachments, threading, auto-replies.

`parse_email` is pure apart from the attachment store, so these tests build raw
messages the way real mail programs write them (byte for byte where it matters)
and check what comes out.
"""

from __future__ import annotations

import base64
import hashlib
import json
import quopri
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from threadline.channels.attachments import AttachmentStore
from threadline.channels.base import Rejected
from threadline.channels.email import imap_utf7
from threadline.channels.email_mime import normalise_subject, parse_email
from threadline.domain.model.inbound import InboundMessage


@pytest.fixture
def store(tmp_path: Path) -> AttachmentStore:
    return AttachmentStore(tmp_path / "attachments", max_bytes=10_000)


def b64word(text: str, charset: str) -> str:
    return f"=?{charset}?B?{base64.b64encode(text.encode(charset)).decode()}?="


def raw_mail(headers: dict[str, str], body: bytes, content_type: str = "") -> bytes:
    lines = [f"{name}: {value}" for name, value in headers.items()]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


BASE = {
    "From": "Anna <anna@example.org>",
    "To": "support@example.com",
    "Date": "Mon, 23 Nov 2026 10:00:00 +0300",
}


# -- charsets and encoded words ---------------------------------------------------------------


def test_koi8_r_body_subject_and_name(store: AttachmentStore) -> None:
    raw = raw_mail(
        {
            **BASE,
            "From": f"{b64word('Иван Петров', 'koi8-r')} <Ivan.Petrov@Example.ORG>",
            "Subject": b64word("Счёт на оплату", "koi8-r"),
            "Message-ID": "<koi8@client.example.org>",
            "Content-Transfer-Encoding": "8bit",
        },
        "Добрый день! Пришлите счёт.".encode("koi8-r"),
        "text/plain; charset=koi8-r",
    )
    message = parse_email(raw, store, None)
    assert message.subject == "Счёт на оплату"
    assert message.sender_name == "Иван Петров"
    assert message.text == "Добрый день! Пришлите счёт."
    assert [(str(i.kind), i.value) for i in message.identities] == [
        ("email", "ivan.petrov@example.org")
    ]
    assert message.channel == "email"


def test_windows_1251_quoted_printable_body_and_q_encoded_subject(store: AttachmentStore) -> None:
    body = quopri.encodestring("Здравствуйте, товар не пришёл.".encode("windows-1251"))
    subject = "=?windows-1251?Q?" + "".join(f"={b:02X}" for b in "Жалоба".encode("cp1251")) + "?="
    raw = raw_mail(
        {**BASE, "Subject": subject, "Content-Transfer-Encoding": "quoted-printable"},
        body,
        "text/plain; charset=windows-1251",
    )
    message = parse_email(raw, store, None)
    assert message.subject == "Жалоба"
    assert message.text.strip() == "Здравствуйте, товар не пришёл."


def test_utf8_base64_body_and_a_mixed_subject(store: AttachmentStore) -> None:
    raw = raw_mail(
        {
            **BASE,
            "Subject": f"Order 42: {b64word('доставка', 'utf-8')} {b64word('завтра', 'utf-8')}",
            "Content-Transfer-Encoding": "base64",
        },
        base64.encodebytes("Привет 👋, ünïcödé".encode()),
        "text/plain; charset=utf-8",
    )
    message = parse_email(raw, store, None)
    assert message.subject == "Order 42: доставказавтра"  # adjacent encoded words join
    assert message.text.strip() == "Привет 👋, ünïcödé"


def test_unknown_charset_and_raw_8bit_headers_do_not_lose_the_message(
    store: AttachmentStore,
) -> None:
    raw = (
        b"From: =?x-unknown-charset?B?SXZhbg==?= <ivan@example.org>\r\n"
        + "Subject: Без кодирования\r\n".encode()
        + b"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\n"
        + "Текст в UTF-8".encode()
    )
    message = parse_email(raw, store, None)
    assert message.subject == "Без кодирования"
    assert message.text == "Текст в UTF-8"
    assert message.identities[0].value == "ivan@example.org"


def test_a_lying_charset_falls_back_to_replacement_characters(store: AttachmentStore) -> None:
    raw = raw_mail(BASE, b"caf\xe9 \xff\xfe ok", "text/plain; charset=utf-8")
    message = parse_email(raw, store, None)
    assert message.text.endswith(" ok") and "caf" in message.text


# -- bodies -----------------------------------------------------------------------------------


def test_html_only_mail_is_sanitised_and_gets_a_text_version(store: AttachmentStore) -> None:
    html = (
        "<html><head><style>p{color:red}</style><script>alert(1)</script></head>"
        '<body><p onclick="steal()">Здравствуйте!</p><p>Доставка <b>№7</b></p>'
        '<a href="javascript:alert(2)">x</a></body></html>'
    )
    raw = raw_mail(BASE, html.encode(), "text/html; charset=utf-8")
    message = parse_email(raw, store, None)
    assert "<script" not in message.html and "onclick" not in message.html
    assert "javascript:" not in message.html
    assert "<b>№7</b>" in message.html
    assert message.text.splitlines() == ["Здравствуйте!", "Доставка №7", "x"]


def test_multipart_alternative_prefers_the_plain_part_and_keeps_the_html(
    store: AttachmentStore,
) -> None:
    email = EmailMessage()
    email["From"] = "anna@example.org"
    email["Subject"] = "Alt"
    email.set_content("Plain version")
    email.add_alternative("<p>HTML <i>version</i></p>", subtype="html")
    message = parse_email(email.as_bytes(), store, None)
    assert message.text.strip() == "Plain version"
    assert message.html.strip() == "<p>HTML <i>version</i></p>"
    assert message.attachments == ()


# -- attachments ------------------------------------------------------------------------------


def with_attachment(data: bytes, filename: str, content_type: str = "application/pdf") -> bytes:
    email = EmailMessage()
    email["From"] = "anna@example.org"
    email["Subject"] = "Документы"
    email.set_content("См. вложение")
    maintype, subtype = content_type.split("/")
    email.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return email.as_bytes()


def test_an_attachment_is_stored_by_its_hash(store: AttachmentStore) -> None:
    data = bytes(range(256)) * 10
    message = parse_email(with_attachment(data, "Договор №5.pdf"), store, None)
    assert message.text.strip() == "См. вложение"
    (attachment,) = message.attachments
    assert attachment.filename == "Договор №5.pdf"  # RFC 2231 encoded name, decoded
    assert attachment.content_type == "application/pdf"
    assert attachment.sha256 == hashlib.sha256(data).hexdigest()
    assert attachment.size == len(data) and attachment.stored and not attachment.over_limit
    assert store.path_for(attachment.sha256).read_bytes() == data


def test_an_attachment_over_the_limit_is_recorded_and_the_message_kept(
    store: AttachmentStore,
) -> None:
    data = b"x" * 20_000  # the store's limit is 10 000 bytes
    message = parse_email(with_attachment(data, "big.bin", "application/octet-stream"), store, None)
    (attachment,) = message.attachments
    assert attachment.over_limit and not attachment.stored
    assert attachment.size == 20_000
    assert not store.path_for(attachment.sha256).exists()
    assert message.text.strip() == "См. вложение"


def test_inline_images_become_attachments_and_a_forward_is_shown_and_kept(
    store: AttachmentStore,
) -> None:
    inner = EmailMessage()
    inner["From"] = "boss@example.org"
    inner["Subject"] = "Original"
    inner.set_content("Forwarded body is shown after ours")
    email = EmailMessage()
    email["From"] = "anna@example.org"
    email["Subject"] = "Fwd: Original"
    email.set_content("See below")
    email.add_related(b"\x89PNG fake", maintype="image", subtype="png", cid="<logo@x>")
    email.make_mixed()
    email.attach(_rfc822(inner))
    message = parse_email(email.as_bytes(), store, None)
    ours, forward = message.text.split("\n\n", 1)
    assert ours.strip() == "See below"
    assert forward.strip().splitlines()[:3] == [
        "---------- Forwarded message ----------",
        "From: boss@example.org",
        "Subject: Original",
    ]
    assert forward.rstrip().endswith("Forwarded body is shown after ours")
    kinds = sorted(a.content_type for a in message.attachments)
    assert kinds == ["image/png", "message/rfc822"]
    forwarded = next(a for a in message.attachments if a.content_type == "message/rfc822")
    assert b"Forwarded body" in store.read(forwarded.sha256)


def _rfc822(inner: EmailMessage) -> EmailMessage:
    part = EmailMessage()
    part.set_content(inner)
    return part


# -- identity, dedup, metadata ----------------------------------------------------------------


def test_dedup_key_is_the_message_id_else_a_hash_of_the_content(store: AttachmentStore) -> None:
    with_id = raw_mail({**BASE, "Message-ID": "  <Abc.1@Client.example.org>  "}, b"x")
    assert parse_email(with_id, store, None, fallback_key="imap:s:1:1").dedup_key == (
        "<Abc.1@Client.example.org>"
    )
    without = raw_mail(BASE, b"x")
    expected = "sha256:" + hashlib.sha256(without.replace(b"\r\n", b"\n")).hexdigest()
    # The IMAP position is no key: the same message under a new UIDVALIDITY is the same message.
    assert parse_email(without, store, None, fallback_key="imap:s:7:9").dedup_key == expected
    assert parse_email(without, store, None, fallback_key="imap:s:8:1").dedup_key == expected
    assert parse_email(without.replace(b"\r\n", b"\n"), store, None).dedup_key == expected
    assert parse_email(raw_mail(BASE, b"y"), store, None).dedup_key != expected


def test_metadata_is_complete_and_holds_nothing_personal(store: AttachmentStore) -> None:
    raw = raw_mail(
        {
            **BASE,
            "From": "Анна Смирнова <anna.smirnova@example.org>",
            "Message-ID": "<m2@client.example.org>",
            "In-Reply-To": "<m1@client.example.org>",
            "References": "<m0@client.example.org> <m1@client.example.org>",
        },
        b"hello",
    )
    message = parse_email(raw, store, None, mailbox="support", folder="INBOX")
    assert message.metadata == {
        "message_id": "<m2@client.example.org>",
        "in_reply_to": "<m1@client.example.org>",
        "references": ["<m0@client.example.org>", "<m1@client.example.org>"],
        "auto_reply": False,
        "auto_reply_reason": None,
        "bounce": False,
        "date": "2026-11-23T10:00:00+03:00",
        "mailbox": "support",
        "folder": "INBOX",
    }
    dumped = json.dumps(message.metadata, ensure_ascii=False)
    assert "anna" not in dumped and "Анна" not in dumped


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   \r\n",
        b"Subject: no sender\r\n\r\nbody",
        b"From: Anna Without Address\r\nSubject: x\r\n\r\nbody",
        b"From: <not-an-address>\r\n\r\nbody",
        b"From: someone@example.invalid\r\n\r\nbody",
    ],
)
def test_input_without_a_usable_sender_is_rejected(store: AttachmentStore, raw: bytes) -> None:
    with pytest.raises(Rejected):
        parse_email(raw, store, None)


def test_sender_header_is_used_when_from_is_unusable(store: AttachmentStore) -> None:
    raw = b"From: undisclosed\r\nSender: list-owner@example.org\r\n\r\nbody"
    assert parse_email(raw, store, None).identities[0].value == "list-owner@example.org"


# -- threading --------------------------------------------------------------------------------


def test_a_new_message_is_its_own_thread_root(store: AttachmentStore) -> None:
    raw = raw_mail({**BASE, "Message-ID": "<root@client.example.org>"}, b"x")
    assert parse_email(raw, store, None).thread_key == "<root@client.example.org>"


def test_a_reply_threads_on_the_first_reference(store: AttachmentStore) -> None:
    # The client answers our reply: our References started with the client's root.
    raw = raw_mail(
        {
            **BASE,
            "Message-ID": "<answer@client.example.org>",
            "In-Reply-To": "<our-reply@example.com>",
            "References": "<root@client.example.org>\r\n <our-reply@example.com>",
        },
        b"x",
    )
    assert parse_email(raw, store, None).thread_key == "<root@client.example.org>"


def test_in_reply_to_alone_threads_on_it(store: AttachmentStore) -> None:
    raw = raw_mail(
        {**BASE, "Message-ID": "<b@c.example.org>", "In-Reply-To": "<a@c.example.org>"}, b"x"
    )
    assert parse_email(raw, store, None).thread_key == "<a@c.example.org>"


def test_without_ids_the_normalised_subject_and_sender_are_the_thread(
    store: AttachmentStore,
) -> None:
    def key(subject: str, sender: str = "anna@example.org") -> str:
        raw = raw_mail({"From": sender, "Subject": subject}, b"x")
        return parse_email(raw, store, None).thread_key

    assert key("Hello  World") == "subject:hello world:anna@example.org"
    assert key("Re: RE: Fwd:  hello world") == key("Hello World")
    assert key("AW: WG: Fw: Hello World") == key("Hello World")
    assert key("Отв: Ответ: Пересл: Hello World") == key("Hello World")
    assert key("Re[2]: re : Hello World") == key("Hello World")
    assert key("Hello World", "other@example.org") != key("Hello World")
    assert key("Hello Worlds") != key("Hello World")


def test_normalise_subject_strips_prefixes_only_at_the_start() -> None:
    assert normalise_subject("RE: Re:Re: Счёт") == "счёт"
    assert normalise_subject("Result: fine") == "result: fine"
    assert normalise_subject("Re: Fwd: re: a Re: b") == "a re: b"


# -- auto-replies and bounces -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Auto-Submitted": "auto-replied"}, True),
        ({"Auto-Submitted": "auto-generated; owner-email=x@example.org"}, True),
        ({"Auto-Submitted": "no"}, False),
        ({"X-Autoreply": "yes"}, True),
        ({"X-Autorespond": "Out of office"}, True),
        ({"Precedence": "bulk"}, True),
        ({"Precedence": "auto_reply"}, True),
        ({"Precedence": "first-class"}, False),
        ({"X-Auto-Response-Suppress": "DR, OOF"}, True),
        ({"X-Auto-Response-Suppress": "All"}, True),
        ({"X-Auto-Response-Suppress": "RN"}, False),
        ({}, False),
    ],
)
def test_auto_replies_are_marked(
    store: AttachmentStore, headers: dict[str, str], expected: bool
) -> None:
    message = parse_email(raw_mail({**BASE, **headers}, b"I am away"), store, None)
    assert message.metadata["auto_reply"] is expected
    assert (message.metadata["auto_reply_reason"] is not None) is expected
    assert message.metadata["bounce"] is False


DSN = b"""From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r
To: support@example.com\r
Subject: Undelivered Mail Returned to Sender\r
Message-ID: <dsn-1@mx.example.com>\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=delivery-status; boundary="BOUND"\r
\r
--BOUND\r
Content-Type: text/plain; charset=us-ascii\r
\r
I'm sorry to have to inform you that your message could not be delivered.\r
--BOUND\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns; mx.example.com\r
\r
Final-Recipient: rfc822; nobody@example.org\r
Action: failed\r
Status: 5.1.1\r
--BOUND\r
Content-Type: message/rfc822\r
\r
From: support@example.com\r
To: nobody@example.org\r
Subject: Re: your order\r
Message-ID: <our-1@example.com>\r
\r
Our original reply.\r
--BOUND--\r
"""


def test_a_delivery_status_notification_is_a_bounce(store: AttachmentStore) -> None:
    message = parse_email(DSN, store, None)
    assert message.metadata["bounce"] is True
    assert message.metadata["auto_reply"] is True
    assert "could not be delivered" in message.text
    assert "Our original reply" not in message.text
    types = sorted(a.content_type for a in message.attachments)
    assert types == ["message/delivery-status", "message/rfc822"]


def test_mail_from_postmaster_is_a_bounce_even_without_a_report(store: AttachmentStore) -> None:
    raw = raw_mail({**BASE, "From": "postmaster@example.org"}, b"Your mail bounced")
    message = parse_email(raw, store, None)
    assert message.metadata["bounce"] is True and message.metadata["auto_reply"] is True


# -- imap folder names ------------------------------------------------------------------------


def test_modified_utf7_folder_names_match_rfc_3501() -> None:
    assert imap_utf7("~peter/mail/台北/日本語") == "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
    assert imap_utf7("Отправленные") == "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-"
    assert imap_utf7("A&B") == "A&-B"


# -- robustness -------------------------------------------------------------------------------

SAMPLES = [
    DSN,
    with_attachment(b"%PDF-1.4 data", "a.pdf"),
    raw_mail(
        {**BASE, "Subject": b64word("Тема", "koi8-r"), "References": "<a@b.example.org>"},
        "Тело".encode("koi8-r"),
        "text/plain; charset=koi8-r",
    ),
    raw_mail(BASE, b"<p>hi</p>", "text/html; charset=windows-1251"),
]


def _check(raw: bytes, store: AttachmentStore) -> None:
    try:
        message = parse_email(raw, store, None, fallback_key="imap:x:1:1")
    except Rejected as rejected:
        assert rejected.reason
        return
    assert isinstance(message, InboundMessage)
    assert message.identities and message.dedup_key and message.thread_key
    storable_strings(message)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=2000))
def test_arbitrary_bytes_give_a_message_or_a_rejection(store: AttachmentStore, raw: bytes) -> None:
    _check(raw, store)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sample=st.sampled_from(SAMPLES),
    edits=st.lists(
        st.tuples(st.integers(0, 10_000), st.integers(0, 255), st.sampled_from("rid")),
        min_size=1,
        max_size=12,
    ),
    cut=st.none() | st.integers(0, 10_000),
)
def test_mutated_real_messages_give_a_message_or_a_rejection(
    store: AttachmentStore, sample: bytes, edits: list[tuple[int, int, str]], cut: int | None
) -> None:
    data = bytearray(sample)
    for position, value, operation in edits:
        index = position % (len(data) + 1)
        if operation == "r" and index < len(data):
            data[index] = value
        elif operation == "i":
            data.insert(index, value)
        elif index < len(data):
            del data[index]
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    _check(bytes(data), store)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    subject=st.text(max_size=200),
    name=st.text(max_size=60),
    body=st.text(max_size=500),
    charset=st.sampled_from(["utf-8", "koi8-r", "windows-1251", "iso-8859-5", "x-bogus"]),
)
def test_generated_headers_and_bodies_never_escape_as_other_errors(
    store: AttachmentStore, subject: str, name: str, body: str, charset: str
) -> None:
    encoded_body = body.encode(charset if charset != "x-bogus" else "utf-8", "replace")
    raw = (
        f"From: {name} <anna@example.org>\r\nSubject: {subject}\r\n".encode("utf-8", "replace")
        + f"Content-Type: text/plain; charset={charset}\r\n\r\n".encode()
        + encoded_body
    )
    _check(raw, store)


def test_a_reply_names_the_messages_it_answers_nearest_first(store: AttachmentStore) -> None:
    raw = raw_mail(
        {
            **BASE,
            "Message-ID": "<c@client.example.org>",
            "In-Reply-To": "<b@client.example.org>",
            "References": "<a@client.example.org> <b@client.example.org>",
        },
        b"x",
    )
    message = parse_email(raw, store, None)
    assert message.reply_to == ("<b@client.example.org>", "<a@client.example.org>")


# -- real mail: charsets mail programs decode, and nothing undecodable gets out ---------------


def storable_strings(value: object, where: str = "message") -> None:
    """Every string in `value` (a message, recursively) can be encoded as UTF-8."""
    if isinstance(value, str):
        value.encode("utf-8")  # raises UnicodeEncodeError on a lone surrogate
    elif isinstance(value, dict):
        for key, item in value.items():
            storable_strings(key, where)
            storable_strings(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for item in value:
            storable_strings(item, where)
    elif isinstance(value, InboundMessage):
        for name in InboundMessage.__slots__:
            storable_strings(getattr(value, name), f"{where}.{name}")
    elif hasattr(value, "__dataclass_fields__"):
        for name in value.__dataclass_fields__:
            storable_strings(getattr(value, name), f"{where}.{name}")


def test_an_encoded_word_that_declares_the_wrong_charset_falls_back(
    store: AttachmentStore,
) -> None:
    cp1251 = "".join(f"={b:02X}" for b in "Привет".encode("cp1251"))
    raw = raw_mail(
        {
            **BASE,
            "From": "=?utf-8?Q?Jos=E9_Garc=EDa?= <jose@example.org>",
            "Subject": f"=?utf-8?Q?{cp1251}?= =?x-no-such?Q?caf=E9?=",
        },
        b"x",
    )
    message = parse_email(raw, store, None)
    assert message.sender_name == "José García"
    assert message.subject == "Привет" + "café"
    storable_strings(message)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Анна Смирнова".encode(), "Анна Смирнова"),
        ("Анна Смирнова".encode("cp1251"), "Анна Смирнова"),
        ("José García".encode("cp1252"), "José García"),
        ("Größe Müller".encode("latin-1"), "Größe Müller"),
    ],
)
def test_raw_8bit_display_names_are_decoded(
    store: AttachmentStore, name: bytes, expected: str
) -> None:
    raw = b"From: " + name + b" <anna@example.org>\r\nSubject: " + name + b"\r\n\r\nbody"
    message = parse_email(raw, store, None)
    assert message.sender_name == expected
    assert message.subject == expected
    storable_strings(message)


def test_8bit_bytes_in_ids_and_auto_submitted_never_reach_the_message(
    store: AttachmentStore,
) -> None:
    raw = (
        b"From: anna@example.org\r\n"
        b"Message-ID: <caf\xe9-1@client.example.org>\r\n"
        b"In-Reply-To: <\xff\xfe@client.example.org>\r\n"
        b"References: <r\xe9f@client.example.org> <\xd0\xb8\xd0\xb4@client.example.org>\r\n"
        b"Auto-Submitted: auto-\xe9replied\r\n"
        b"Subject: ids\r\n\r\nbody"
    )
    message = parse_email(raw, store, None)
    storable_strings(message)
    assert message.metadata["message_id"] == "<café-1@client.example.org>"
    assert message.metadata["references"][1] == "<ид@client.example.org>"
    assert message.metadata["auto_reply"] is True
    assert message.dedup_key == "<café-1@client.example.org>"


@pytest.mark.parametrize(
    ("charset", "text", "codec"),
    [
        ("iso-8859-8-i", "שלום עולם", "iso-8859-8"),
        ("x-mac-cyrillic", "Привет, мир", "mac-cyrillic"),
        ("gb2312", "王堃喆", "gbk"),  # 堃 and 喆 are GBK characters outside GB2312
        ("ks_c_5601-1987", "안녕하세요", "cp949"),
        ("iso-8859-1", "Preis: 10 €", "cp1252"),  # € is windows-1252's 0x80
        ("tis-620", "สวัสดี", "cp874"),
        ("shift_jis", "①こんにちは", "cp932"),  # ① is a Windows-31J character
    ],
)
def test_charset_aliases_decode_like_mail_programs(
    store: AttachmentStore, charset: str, text: str, codec: str
) -> None:
    word = f"=?{charset}?B?{base64.b64encode(text.encode(codec)).decode()}?="
    raw = raw_mail(
        {**BASE, "Subject": word, "Content-Transfer-Encoding": "8bit"},
        text.encode(codec),
        f"text/plain; charset={charset}",
    )
    message = parse_email(raw, store, None)
    assert message.subject == text
    assert message.text == text


def test_a_utf8_body_that_is_really_windows_1251_is_read_as_cyrillic(
    store: AttachmentStore,
) -> None:
    raw = raw_mail(
        BASE, "Добрый день, счёт приложен.".encode("cp1251"), "text/plain; charset=utf-8"
    )
    assert parse_email(raw, store, None).text == "Добрый день, счёт приложен."


def test_attachment_names_with_8bit_bytes_or_a_wrong_charset_are_clean(
    store: AttachmentStore,
) -> None:
    raw = (
        b"From: anna@example.org\r\nSubject: files\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nsee files\r\n"
        b"--B\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="\xc4\xee\xe3\xee\xe2\xee\xf0.pdf"\r\n\r\n'
        b"%PDF\r\n"
        b"--B\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="=?utf-8?Q?Jos=E9.pdf?="\r\n\r\n'
        b"%PDF2\r\n--B--\r\n"
    )
    message = parse_email(raw, store, None)
    assert [a.filename for a in message.attachments] == ["Договор.pdf", "José.pdf"]
    storable_strings(message)


HOSTILE_HEADERS = ("From", "Subject", "Message-ID", "In-Reply-To", "References", "Auto-Submitted")


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    values=st.dictionaries(st.sampled_from(HOSTILE_HEADERS), st.binary(max_size=80), max_size=6),
    name=st.binary(max_size=40),
    filename=st.binary(max_size=40),
    charset=st.sampled_from(
        ["utf-8", "iso-8859-8-i", "gb2312", "x-mac-cyrillic", "unicode-escape", "utf-7", "x-?"]
    ),
    word=st.binary(max_size=30),
)
def test_arbitrary_header_bytes_give_storable_strings_or_a_rejection(
    store: AttachmentStore,
    values: dict[str, bytes],
    name: bytes,
    filename: bytes,
    charset: str,
    word: bytes,
) -> None:
    def line(value: bytes) -> bytes:
        return value.replace(b"\r", b" ").replace(b"\n", b" ")

    encoded = f"=?{charset}?B?{base64.b64encode(word).decode()}?=".encode()
    headers = [b"From: " + line(name) + b" " + encoded + b" <anna@example.org>"]
    headers += [k.encode() + b": " + line(v) + b" " + encoded for k, v in values.items()]
    raw = (
        b"\r\n".join(headers)
        + b'\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\n'
        + f"Content-Type: text/plain; charset={charset}\r\n\r\n".encode()
        + word
        + b'\r\n--B\r\nContent-Type: text/plain\r\nContent-Disposition: inline; filename="'
        + line(filename).replace(b'"', b"")
        + b'"\r\n\r\n'
        + word
        + b"\r\n--B--\r\n"
    )
    try:
        message = parse_email(raw, store, None)
    except Rejected as rejected:
        assert rejected.reason
        return
    storable_strings(message)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=2000))
def test_arbitrary_bytes_give_storable_strings_or_a_rejection(
    store: AttachmentStore, raw: bytes
) -> None:
    try:
        message = parse_email(b"From: anna@example.org\r\n" + raw, store, None)
    except Rejected as rejected:
        assert rejected.reason
        return
    storable_strings(message)


# -- special-use senders and bounces ----------------------------------------------------------


@pytest.mark.parametrize(
    ("sender", "identity"),
    [
        ("Printer <scanner@office.local>", "scanner@office.local"),
        ("root@localhost", "root@localhost"),
        ("ci@build.test", "ci@build.test"),
        ("nas@router.home.arpa", "nas@router.home.arpa"),
        ("app@svc.corp.internal", "app@svc.corp.internal"),
        ("demo@shop.example", "demo@shop.example"),
        ("Device <dev@[192.0.2.1]>", "dev@[192.0.2.1]"),
        ("dev6@[IPv6:2001:DB8::1]", "dev6@[IPv6:2001:db8::1]"),
    ],
)
def test_senders_at_special_use_domains_and_address_literals_are_accepted(
    store: AttachmentStore, sender: str, identity: str
) -> None:
    message = parse_email(raw_mail({**BASE, "From": sender}, b"hello"), store, None)
    assert message.identities[0].value == identity


NULL_SENDER_DSN = b"""Return-Path: <>\r
From: MAILER-DAEMON <>\r
To: support@example.com\r
Subject: Delivery Status Notification (Failure)\r
Message-ID: <dsn-2@mx.example.net>\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=delivery-status; boundary="R"\r
\r
--R\r
Content-Type: text/plain\r
\r
Delivery to nobody@example.org failed permanently.\r
--R\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns; mx.example.net\r
\r
Final-Recipient: rfc822; Nobody@Example.org\r
Action: failed\r
Status: 5.1.1\r
--R\r
Content-Type: RETURNED_PART\r
\r
RETURNED_BODY\r
--R--\r
"""
RETURNED_MESSAGE = (
    b"message/rfc822",
    b"From: support@example.com\r\nTo: nobody@example.org\r\nSubject: Re: order\r\n"
    b"Message-ID: <our-7@example.com>\r\n\r\nOur reply.",
)
RETURNED_HEADERS = (
    b"text/rfc822-headers",
    b"From: support@example.com\r\nTo: nobody@example.org\r\nSubject: Re: order\r\n"
    b"Message-ID: <our-7@example.com>",
)


@pytest.mark.parametrize("returned", [RETURNED_MESSAGE, RETURNED_HEADERS])
def test_a_bounce_with_an_empty_sender_threads_on_the_returned_message(
    store: AttachmentStore, returned: tuple[bytes, bytes]
) -> None:
    raw = NULL_SENDER_DSN.replace(b"RETURNED_PART", returned[0]).replace(
        b"RETURNED_BODY", returned[1]
    )
    message = parse_email(raw, store, None)
    assert [(str(i.kind), i.value) for i in message.identities] == [
        ("email", "nobody@example.org")
    ]  # the recipient it failed for, not a "MAILER-DAEMON" card without an address
    assert message.sender_name == ""  # never renames the client after a mail server
    assert message.metadata["bounce"] is True and message.metadata["auto_reply"] is True
    assert message.metadata["in_reply_to"] == "<our-7@example.com>"
    assert message.metadata["bounced_message_id"] == "<our-7@example.com>"
    assert message.metadata["delivery_status"] == "failed"
    assert message.reply_to[0] == "<our-7@example.com>"
    assert message.thread_key == "<our-7@example.com>"
    assert "failed permanently" in message.text and "Our reply" not in message.text


def test_a_plain_bounce_names_the_failed_recipient_and_quotes_the_message(
    store: AttachmentStore,
) -> None:
    raw = (
        b"Return-Path: <>\r\nFrom: Mail Delivery System <Mailer-Daemon@mx.example.net>\r\n"
        b"X-Failed-Recipients: gone@example.org\r\nSubject: Mail delivery failed\r\n"
        b"Message-ID: <exim-1@mx.example.net>\r\n\r\n"
        b"This message was created automatically by mail delivery software.\r\n\r\n"
        b"  gone@example.org\r\n    mailbox is full\r\n\r\n"
        b"------ This is a copy of the message, including all the headers. ------\r\n\r\n"
        b"From: support@example.com\r\nMessage-ID: <our-8@example.com>\r\nSubject: Hi\r\n\r\nHi\r\n"
    )
    message = parse_email(raw, store, None)
    assert message.identities[0].value == "gone@example.org"
    assert message.metadata["bounce"] is True
    assert message.metadata["in_reply_to"] == "<our-8@example.com>"


def test_a_bounce_that_names_no_recipient_is_filed_under_the_reporting_mail_server(
    store: AttachmentStore,
) -> None:
    raw = (
        NULL_SENDER_DSN.replace(b"Final-Recipient: rfc822; Nobody@Example.org\r\n", b"")
        .replace(b"RETURNED_PART", RETURNED_MESSAGE[0])
        .replace(b"RETURNED_BODY", RETURNED_MESSAGE[1])
    )
    message = parse_email(raw, store, None)
    assert message.identities[0].value == "mailer-daemon@mx.example.net"
    assert message.sender_name == "MAILER-DAEMON"
    assert message.metadata["in_reply_to"] == "<our-7@example.com>"


def test_a_null_sender_without_any_report_is_still_rejected(store: AttachmentStore) -> None:
    with pytest.raises(Rejected):
        parse_email(b"Return-Path: <>\r\nFrom: MAILER-DAEMON <>\r\n\r\nsomething", store, None)


# -- text mail programs show ------------------------------------------------------------------


def test_an_inline_text_part_with_a_file_name_is_shown_and_kept(store: AttachmentStore) -> None:
    raw = (
        b"From: anna@example.org\r\nSubject: log\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b'Content-Disposition: inline; filename="notes.txt"\r\n\r\n'
        + "Заметки к заказу".encode()
        + b"\r\n--B\r\nContent-Type: text/plain\r\n"
        b'Content-Disposition: attachment; filename="data.txt"\r\n\r\nnot shown\r\n--B--\r\n'
    )
    message = parse_email(raw, store, None)
    assert message.text.strip() == "Заметки к заказу"
    assert [a.filename for a in message.attachments] == ["notes.txt", "data.txt"]


def test_a_forward_in_an_html_message_is_shown_in_both_versions(store: AttachmentStore) -> None:
    inner = EmailMessage()
    inner["From"] = "Boss <boss@example.org>"
    inner["Date"] = "Mon, 23 Nov 2026 09:00:00 +0300"
    inner["Subject"] = "Квартальный отчёт"
    inner.set_content("Отчёт во вложении")
    email = EmailMessage()
    email["From"] = "anna@example.org"
    email["Subject"] = "Fwd: report"
    email.set_content("<p>FYI</p>", subtype="html")
    email.make_mixed()
    email.attach(_rfc822(inner))
    message = parse_email(email.as_bytes(), store, None)
    assert "Subject: Квартальный отчёт" in message.text
    assert "Date: Mon, 23 Nov 2026 09:00:00 +0300" in message.text
    assert "Отчёт во вложении" in message.text
    assert "FYI" in message.html and "Отчёт во вложении" in message.html


@pytest.mark.parametrize(
    ("sender", "name"),
    [
        ("anna@example.org (Anna Smith)", "Anna Smith"),
        ("anna@example.org (=?utf-8?B?0JDQvdC90LA=?=)", "Анна"),
        ('"Smith, Anna" <anna@example.org>', "Smith, Anna"),
    ],
)
def test_the_old_comment_form_keeps_the_name(
    store: AttachmentStore, sender: str, name: str
) -> None:
    message = parse_email(raw_mail({**BASE, "From": sender}, b"x"), store, None)
    assert message.sender_name == name
    assert message.identities[0].value == "anna@example.org"
