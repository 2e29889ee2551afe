"""Every inquiry keeps its source (issue 13, item 5): not only the contact's first touch.

Two inquiries of one contact, each from its own campaign: the contact keeps the first
touch, each message keeps its own source, and the inbox view's typed readers give a
message's source and the newest inquiry's source of a conversation (what a deal takes).
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from threadline.domain.model.contact import Contact
from threadline.domain.model.inbound import InboundMessage
from threadline.domain.model.message import Message
from threadline.projections.inbox import inquiry_source, latest_inquiry_source
from threadline.services.runtime import Runtime


def inquiry(key: str, channel: str = "api", **source: Any) -> InboundMessage:
    return InboundMessage.create(
        channel=channel,
        dedup_key=key,
        identities=[("email", "olga@example.com")],
        sender_name="Ольга",
        text=f"inquiry {key}",
        source=source,
    )


def test_two_inquiries_of_one_contact_each_keep_their_own_campaign(runtime: Runtime) -> None:
    spring = {"utm_source": "yandex", "utm_medium": "cpc", "utm_campaign": "spring"}
    first = runtime.app.ingest(inquiry("q1", **spring, acquisition_cost="1200")).value
    autumn = {"utm_source": "google", "utm_campaign": "autumn", "referrer": "https://a.example/"}
    second = runtime.app.ingest(inquiry("q2", **autumn))
    assert first.contact_created and not second.value.contact_created
    assert second.value.contact_id == first.contact_id
    assert second.value.conversation_id == first.conversation_id

    # The contact's first touch is unchanged by the second inquiry.
    contact = runtime.app.repository.get(first.contact_id)
    assert isinstance(contact, Contact)
    first_touch = {
        "channel": "api",
        "utm_source": "yandex",
        "utm_medium": "cpc",
        "utm_campaign": "spring",
        "acquisition_cost": {"amount": "1200", "currency": "RUB"},
    }
    assert contact.source == first_touch

    # Each message keeps its own, in the log...
    one = runtime.app.repository.get(first.message_id)
    two = runtime.app.repository.get(second.value.message_id)
    assert isinstance(one, Message) and isinstance(two, Message)
    assert one.source == first_touch
    assert two.source == {
        "channel": "api",
        "utm_source": "google",
        "utm_campaign": "autumn",
        "referrer": "https://a.example/",
    }

    # ...and in the view, through the typed readers.
    runtime.wait_for_views(second.notification_id, timeout=30)
    assert inquiry_source(runtime.views, first.message_id) == first_touch
    assert inquiry_source(runtime.views, second.value.message_id) == two.source
    assert latest_inquiry_source(runtime.views, first.conversation_id) == two.source
    card = runtime.queries.contact(str(first.contact_id))
    assert card is not None and card["source"] == first_touch


def test_replies_and_notes_are_no_inquiry(runtime: Runtime) -> None:
    received = runtime.app.ingest(inquiry("r1", channel="telegram", utm_campaign="b2b")).value
    reply = runtime.app.reply(received.conversation_id, "Здравствуйте!", "user:test")
    note = runtime.app.add_note(received.conversation_id, "VIP", "user:test")
    runtime.wait_for_views(note.notification_id, timeout=30)
    assert inquiry_source(runtime.views, reply.value) is None
    assert inquiry_source(runtime.views, note.value) is None
    assert inquiry_source(runtime.views, uuid4()) is None
    # The newest inquiry, not the newest message: the reply after it changes nothing.
    latest = latest_inquiry_source(runtime.views, received.conversation_id)
    assert latest == {"channel": "telegram", "utm_campaign": "b2b"}
    assert latest_inquiry_source(runtime.views, uuid4()) is None
    messages = runtime.queries.conversation(str(received.conversation_id))
    assert messages is not None
    sources = {m["direction"]: m["source"] for m in messages["messages"]}
    assert sources == {
        "inbound": {"channel": "telegram", "utm_campaign": "b2b"},
        "outbound": {},
        "internal": {},
    }


def test_a_message_with_nothing_but_its_channel_keeps_the_channel(runtime: Runtime) -> None:
    received = runtime.app.ingest(inquiry("c1", channel="sms")).value
    message = runtime.app.repository.get(received.message_id)
    assert isinstance(message, Message)
    assert message.source == {"channel": "sms"}
