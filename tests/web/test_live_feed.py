"""What the live stream says changed: keys per conversation, client, task and user (both stores).

Before, the stream said only "changed" and every open page reloaded all its live
fragments for every event. These tests pin down that a window of the log is named
by what it touched, so a page showing one conversation is not told about another.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from threadline.domain.model.automation import Notification
from threadline.domain.model.inbound import InboundMessage
from threadline.services.runtime import Runtime
from threadline.services.web.live_feed import EVERYTHING, ChangeFeed, for_user


def receive(runtime: Runtime, number: int, text: str = "Hello") -> Any:
    committed = runtime.app.ingest(
        InboundMessage.create(
            channel="telegram",
            dedup_key=f"live-feed-{number}-{uuid4().hex}",
            identities=[("telegram", f"77000{number}")],
            sender_name=f"Client {number}",
            text=text,
        )
    )
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    return committed.value


def notify(runtime: Runtime, user_id: UUID) -> None:
    notification_id = uuid4()

    def command(unit: Any) -> None:
        unit.add(
            Notification(
                id=notification_id,
                user_id=user_id,
                contact_id=None,
                conversation_id=None,
                email=False,
                personal={"text": "Look"},
                actor="rule:test",
                correlation_id=str(notification_id),
            )
        )

    runtime.wait_for_views(runtime.app.writer.submit(command).notification_id)


def test_a_message_names_its_conversation_and_client_and_no_other(runtime: Runtime) -> None:
    feed = ChangeFeed(runtime, position_ttl=0)
    start = feed.changes(0)[0]
    first = receive(runtime, 1)
    second = receive(runtime, 2)
    position, keys = feed.changes(start)
    assert position == runtime.views_position()
    assert {
        "inbox",
        f"conversation:{first.conversation_id}",
        f"contact:{first.contact_id}",
        f"conversation:{second.conversation_id}",
        f"contact:{second.contact_id}",
    } <= keys
    assert EVERYTHING not in keys

    again = receive(runtime, 1, "Are you there?")  # the same client, the same conversation
    later, keys = feed.changes(position)
    assert later > position
    assert keys == {"inbox", f"conversation:{again.conversation_id}", f"contact:{again.contact_id}"}
    assert f"conversation:{second.conversation_id}" not in keys
    assert feed.changes(later) == (later, frozenset())


def test_a_stream_behind_gets_the_union_of_what_it_missed(runtime: Runtime) -> None:
    feed = ChangeFeed(runtime, position_ttl=0)
    start = feed.changes(0)[0]
    first = receive(runtime, 3)
    middle, _ = feed.changes(start)  # a faster stream read this window already
    second = receive(runtime, 4)
    _, keys = feed.changes(start)  # the slow stream: both windows, the log read once each
    assert {
        f"conversation:{first.conversation_id}",
        f"conversation:{second.conversation_id}",
    } <= keys
    _, keys = feed.changes(middle)
    assert f"conversation:{first.conversation_id}" not in keys


def test_tasks_and_notifications_say_whose_they_are(runtime: Runtime) -> None:
    feed = ChangeFeed(runtime, position_ttl=0)
    message = receive(runtime, 5)
    start = feed.changes(0)[0]
    me, colleague = uuid4(), uuid4()
    task = runtime.app.create_task(actor="test", title="Call back", contact_id=message.contact_id)
    assert runtime.wait_for_views(task.notification_id, timeout=60)
    notify(runtime, me)
    notify(runtime, colleague)
    _, keys = feed.changes(start)
    assert {"tasks", f"contact:{message.contact_id}"} <= keys
    assert "inbox" not in keys  # a task does not change the conversation list
    mine = for_user(keys, str(me))
    assert "notifications" in mine
    assert not any(key.startswith("notifications:") for key in mine)  # nobody else's
    assert "notifications" not in for_user(
        {key for key in keys if key != f"notifications:{me}"}, str(me)
    )


def test_what_cannot_be_placed_says_everything(runtime: Runtime) -> None:
    feed = ChangeFeed(runtime, position_ttl=0)
    start = feed.changes(0)[0]
    company = runtime.app.create_company(actor="test", name="Acme")  # shown on many cards
    assert runtime.wait_for_views(company.notification_id, timeout=60)
    assert feed.changes(start)[1] == {EVERYTHING}


def test_a_stream_older_than_what_the_feed_has_read_gets_everything(runtime: Runtime) -> None:
    receive(runtime, 6)
    feed = ChangeFeed(runtime, position_ttl=0)
    now = feed.changes(feed.position())[0]  # the feed starts here
    later = receive(runtime, 7)
    assert f"conversation:{later.conversation_id}" in feed.changes(now)[1]
    assert feed.changes(now - 1)[1] == {EVERYTHING}  # from before anything the feed read
