"""The read models on SQLite and PostgreSQL: contents, filters, exactly-once, rebuild."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, Tracking

from threadline.domain.model.attributes import AttributeDefinition, AttributeType
from threadline.domain.model.inbound import InboundMessage
from threadline.projections.queries import AttributeCondition, ContactFilter, InboxFilter
from threadline.projections.sql import table_rows
from threadline.services.config import Settings
from threadline.services.runtime import Runtime


def ingest(runtime: Runtime, key: str, channel: str = "email", **kw: Any) -> Any:
    identities = [(k, kw.pop(k)) for k in ("email", "phone", "telegram") if k in kw]
    committed = runtime.app.ingest(
        InboundMessage.create(channel=channel, dedup_key=key, identities=identities, **kw)
    )
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    return committed.value


def settle(runtime: Runtime) -> None:
    assert runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=60)


def test_contact_card(runtime: Runtime) -> None:
    first = ingest(
        runtime, "c1", email="ivan@example.com", sender_name="Иван Петров", text="Добрый день"
    )
    ingest(runtime, "c2", channel="sms", email="ivan@example.com", phone="+79161112233", text="SMS")
    runtime.app.reply(first.conversation_id, "Answer", "user:1")
    runtime.app.create_task("user:1", "Call", contact_id=first.contact_id)
    settle(runtime)
    card = runtime.queries.contact(str(first.contact_id))
    assert card is not None
    assert card["display_name"] == "Иван Петров"
    assert {(i["kind"], i["value"]) for i in card["identities"]} == {
        ("email", "ivan@example.com"),
        ("phone", "+79161112233"),
    }
    assert card["lifecycle"] == "lead" and card["source"] == {"channel": "email"}
    assert (card["inbound_count"], card["outbound_count"]) == (2, 1)
    assert card["conversation_count"] == 2 and card["open_task_count"] == 1
    channels = {c["channel"]: c for c in card["channels"]}
    assert channels["email"]["last_outbound_at"] is not None
    assert channels["sms"]["message_count"] == 1


def test_timeline_holds_every_message_note_and_task_in_order(runtime: Runtime) -> None:
    thread = ingest(runtime, "t1", email="t@example.com", subject="Order", text="Where is it?")
    runtime.app.reply(thread.conversation_id, "On its way", "user:1")
    runtime.app.add_note(thread.conversation_id, "checked the warehouse", "user:1")
    task_id = runtime.app.create_task("user:1", "Follow up", contact_id=thread.contact_id).value
    runtime.app.complete_task(task_id, "user:1")
    runtime.app.change_conversation_status(thread.conversation_id, "resolved", "user:1")
    settle(runtime)
    kinds = [row["kind"] for row in runtime.queries.timeline(str(thread.contact_id))]
    assert kinds == [
        "contact.created",  # carries the identities it was created with
        "conversation.started",
        "message.received",
        "conversation.status_changed",  # the reply set it pending, in the reply's transaction
        "message.sent",
        "note.added",
        "task.created",
        "task.completed",
        "conversation.status_changed",
    ]
    rows = runtime.queries.timeline(str(thread.contact_id))
    assert rows[2]["body"] == "Where is it?" and rows[2]["actor"] == "channel:email"
    assert rows[6]["state"] == "done"
    assert rows[0]["data"]["identities"] == [{"kind": "email", "value": "t@example.com"}]


def test_inbox_row_unread_and_filters(runtime: Runtime) -> None:
    user_id = runtime.app.create_user("op@example.com", "operator", "cli").value[0]
    a = ingest(runtime, "i1", email="a@example.com", sender_name="Анна", text="Счёт на оплату")
    ingest(runtime, "i2", email="a@example.com", text="ещё вопрос")
    b = ingest(
        runtime, "i3", channel="telegram", telegram="55", sender_name="Bob", text="Price list?"
    )
    rows, total = runtime.queries.inbox(InboxFilter())
    assert total == 2
    row_a = next(r for r in rows if r["id"] == str(a.conversation_id))
    assert row_a["unread_count"] == 2 and row_a["last_message"] == "ещё вопрос"
    assert row_a["contact_name"] == "Анна" and row_a["channel"] == "email"
    runtime.app.mark_conversation_read(a.conversation_id, "user:1")
    runtime.app.assign_conversation(b.conversation_id, user_id, "user:1")
    runtime.app.change_conversation_status(a.conversation_id, "resolved", "user:1")
    settle(runtime)

    def ids(flt: InboxFilter) -> set[str]:
        return {r["id"] for r in runtime.queries.inbox(flt)[0]}

    assert ids(InboxFilter(channel="telegram")) == {str(b.conversation_id)}
    assert ids(InboxFilter(status="resolved")) == {str(a.conversation_id)}
    assert ids(InboxFilter(assignee_id=str(user_id))) == {str(b.conversation_id)}
    assert ids(InboxFilter(unassigned=True)) == {str(a.conversation_id)}
    assert ids(InboxFilter(text="СЧЁТ")) == {str(a.conversation_id)}  # Cyrillic, any case
    assert ids(InboxFilter(text="price")) == {str(b.conversation_id)}
    assert ids(InboxFilter(text="100%_")) == set()
    assert runtime.queries.conversation(str(a.conversation_id))["unread_count"] == 0


def test_reply_delivery_state_is_visible(runtime: Runtime) -> None:
    thread = ingest(runtime, "d1", email="d@example.com")
    message_id = runtime.app.reply(thread.conversation_id, "ok", "user:1").value
    message = runtime.app.repository.get(message_id)
    message.mark_delivered("provider-1", "worker:delivery", "c")
    runtime.app.save(message)
    settle(runtime)
    messages = runtime.queries.conversation(str(thread.conversation_id))["messages"]
    sent = next(m for m in messages if m["id"] == str(message_id))
    assert sent["state"] == "sent" and sent["provider_id"] == "provider-1"


def test_each_event_applies_exactly_once(runtime: Runtime) -> None:
    ingest(runtime, "x1", email="x@example.com")
    settle(runtime)
    projection = next(p for p in runtime.projections if p.name == "contact_cards")
    position = projection.position()
    notifications = runtime.app.recorder.select_notifications(start=1, limit=position)
    events = [runtime.app.mapper.to_domain_event(n) for n in notifications]
    with pytest.raises(IntegrityError):  # the tracking row refuses a second application
        projection.process_batch(
            [(n.id, e) for n, e in zip(notifications, events, strict=True)],
            Tracking(projection.tracking_name, position),
        )
    card_count = runtime.queries.contacts(ContactFilter())[1]
    assert card_count == 1


def test_replay_rebuilds_identical_views(runtime: Runtime) -> None:
    for i in range(30):
        ingest(runtime, f"r{i}", email=f"user{i % 7}@example.com", text=f"text {i}")
    runtime.app.create_task(
        "user:1", "Due", due_at=datetime.now(UTC) + timedelta(hours=1)
    )  # fmt: skip
    settle(runtime)
    before = (runtime.queries.inbox(InboxFilter(), limit=500), runtime.queries.tasks(status=None))
    contacts_before = runtime.queries.contacts(ContactFilter(), limit=500)
    runtime.runner.stop()
    runtime.rebuild_views()
    after = (runtime.queries.inbox(InboxFilter(), limit=500), runtime.queries.tasks(status=None))
    assert after == before
    assert runtime.queries.contacts(ContactFilter(), limit=500) == contacts_before


def test_contact_filters(runtime: Runtime) -> None:
    runtime.app.define_attribute(AttributeDefinition("staff", "Staff", AttributeType.NUMBER), "u")
    runtime.app.define_attribute(
        AttributeDefinition("industry", "Industry", AttributeType.CHOICE, ("retail", "it")), "u"
    )
    small = ingest(runtime, "f1", email="small@example.com", sender_name="Small Shop")
    big = ingest(runtime, "f2", email="big@example.com", sender_name="Big Corp")
    runtime.app.update_contact(small.contact_id, "u", attributes={"staff": 5, "industry": "retail"})
    runtime.app.update_contact(
        big.contact_id, "u", attributes={"staff": 500, "industry": "it"}, add_tags=["vip"]
    )
    runtime.app.update_contact(big.contact_id, "u", lifecycle="customer")
    settle(runtime)

    def names(flt: ContactFilter) -> set[str]:
        return {c["display_name"] for c in runtime.queries.contacts(flt)[0]}

    assert names(ContactFilter(tags=("vip",))) == {"Big Corp"}
    assert names(ContactFilter(lifecycle="lead")) == {"Small Shop"}
    assert names(ContactFilter(attributes=(AttributeCondition("staff", "gte", 50, True),))) == {
        "Big Corp"
    }
    assert names(
        ContactFilter(attributes=(AttributeCondition("industry", "eq", "retail", False),))
    ) == {"Small Shop"}
    assert names(ContactFilter(text="corp")) == {"Big Corp"}
    assert names(ContactFilter(text="small@example")) == {"Small Shop"}
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert names(ContactFilter(created_to=tomorrow)) == {"Small Shop", "Big Corp"}
    assert names(ContactFilter(created_from=tomorrow)) == set()


def test_one_big_page_builds_the_same_cards_as_event_by_event(database_url: str) -> None:
    """The contact card and the inbox fold a new contact's or conversation's first events
    into one row write per page; the rows must come out as if applied event by event."""
    writer = Runtime(Settings(database_url=database_url), run_views=False)
    try:
        anna = writer.app.ingest(
            InboundMessage.create(
                channel="email",
                dedup_key="a1",
                identities=[("email", "anna@example.com"), ("phone", "+79161234567")],
                sender_name="Анна",
                text="Здравствуйте",
            )
        ).value
        boris = writer.app.ingest(
            InboundMessage.create(
                channel="telegram", dedup_key="b1", identities=[("telegram", 4242)], text="Hi"
            )
        ).value
        # Handlers that do not fold (a rename, tags) between events that do.
        writer.app.update_contact(anna.contact_id, "user:1", name="Анна Петрова", add_tags=["vip"])
        writer.app.ingest(
            InboundMessage.create(
                channel="sms", dedup_key="a2", identities=[("phone", "+79161234567")], text="SMS"
            )
        )
        writer.app.update_contact(boris.contact_id, "user:1", identities=[("email", "b@x.org")])
        writer.app.reply(anna.conversation_id, "Ответ", "user:1")
        writer.app.add_note(boris.conversation_id, "note", "user:1")
        writer.app.create_task("user:1", "Call", contact_id=boris.contact_id)
    finally:
        writer.close()

    def cards(page_size: int) -> list[dict[str, Any]]:
        runtime = Runtime(Settings(database_url=database_url))
        try:
            runtime.runner.page_size = page_size
            runtime.rebuild_views()
            return [
                *table_rows(runtime.views, "contacts", "id"),
                *table_rows(runtime.views, "contact_identities", "kind, value"),
                *table_rows(runtime.views, "inbox_conversations", "id"),
            ]
        finally:
            runtime.close()

    one_by_one = cards(page_size=1)
    together = cards(page_size=1000)
    assert together == one_by_one
    anna_row = next(r for r in together if r.get("id") == str(anna.contact_id))
    assert (anna_row["inbound_count"], anna_row["outbound_count"]) == (2, 1)
    assert anna_row["conversation_count"] == 2
    assert "anna@example.com" in anna_row["search"] and "+79161234567" in anna_row["search"]
    boris_row = next(r for r in together if r.get("id") == str(boris.contact_id))
    assert boris_row["search"] == "4242 4242 b@x.org"  # name (the id itself), identities
    assert (boris_row["note_count"], boris_row["open_task_count"]) == (1, 1)
    anna_thread = next(r for r in together if r.get("id") == str(anna.conversation_id))
    assert (anna_thread["message_count"], anna_thread["unread_count"]) == (2, 0)
    assert anna_thread["last_direction"] == "outbound" and anna_thread["last_message"] == "Ответ"
    assert anna_thread["contact_name"] == "Анна Петрова"
