"""Events stored before a field existed still load: `ConversationStarted` v1 has no inbox,
`ContactCreated` v1 has a float cost of no currency, `MessageReceived` v1 has no source."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.application import Application

from tests.older_events import as_version_1, stored_as_version_1
from threadline.domain.model.contact import Contact, clean_source
from threadline.domain.model.conversation import Conversation
from threadline.domain.model.message import Message
from threadline.domain.model.money import Money
from threadline.projections.contact_card import acquisition_cost
from threadline.services.runtime import Runtime


def test_a_version_1_conversation_start_loads_without_an_inbox(tmp_path: object) -> None:
    app: Application = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    conversation = Conversation(
        id=uuid4(), contact_id=uuid4(), channel="email", thread_key="t", personal={"subject": "Hi"},
        actor="test", correlation_id="c",
    )  # fmt: skip
    [event] = conversation.collect_events()
    loaded = as_version_1(app, event, "inbox_id")
    assert loaded.inbox_id is None
    rebuilt = loaded.mutate(None)
    assert rebuilt.inbox_id is None and rebuilt.subject == "Hi"


# -- acquisition cost: a float of no currency became money (issue 13) -------------------------


def _contact_created(source: dict[str, Any]) -> Any:
    contact = Contact(
        personal={"display_name": "Old lead", "identities": []}, lifecycle="lead",
        source=source, responsible_id=None, actor="test", correlation_id="c",
    )  # fmt: skip
    [event] = contact.collect_events()
    return event


POPO: dict[str, str] = {"PERSISTENCE_MODULE": "eventsourcing.popo"}


@pytest.mark.parametrize(
    ("old_cost", "amount"),
    [(12.5, "12.5"), (1500, "1500"), (0.1, "0.1"), (2499.99, "2499.99"), (0.0, "0.0")],
)
def test_a_version_1_contact_cost_reads_as_money_in_roubles(old_cost: float, amount: str) -> None:
    app: Application = Application(env=POPO)
    event = _contact_created(clean_source({"channel": "api", "acquisition_cost": "1"}))
    old_source = {"channel": "api", "utm_source": "google", "acquisition_cost": old_cost}
    loaded = as_version_1(app, event, replaced={"source": old_source})
    expected = {
        "channel": "api",
        "utm_source": "google",
        "acquisition_cost": {"amount": amount, "currency": "RUB"},
    }
    assert loaded.source == expected
    assert loaded.mutate(None).source == expected


def test_a_version_1_contact_without_a_cost_or_with_nan_keeps_no_cost() -> None:
    app: Application = Application(env=POPO)
    event = _contact_created({"channel": "email"})
    assert as_version_1(app, event, replaced={"source": {"channel": "email"}}).source == {
        "channel": "email"
    }
    # The old cleaning let NaN through (float("nan") is not below zero): no figure to keep.
    nan = as_version_1(
        app, event, replaced={"source": {"channel": "email", "acquisition_cost": math.nan}}
    )
    assert nan.source == {"channel": "email"}


def test_a_version_1_absorption_takes_over_the_cost_as_money() -> None:
    app: Application = Application(env=POPO)
    survivor = Contact(
        personal={"display_name": "Survivor", "identities": []}, lifecycle="lead", source={},
        responsible_id=None, actor="test", correlation_id="c",
    )  # fmt: skip
    duplicate = Contact(
        personal={"display_name": "Duplicate", "identities": []}, lifecycle="lead",
        source=clean_source({"channel": "web", "acquisition_cost": "300"}),
        responsible_id=None, actor="test", correlation_id="c",
    )  # fmt: skip
    survivor.collect_events()
    survivor.absorb_duplicate(duplicate, "test", "c")
    [absorbed] = survivor.collect_events()
    assert isinstance(absorbed, Contact.ContactAbsorbed)
    loaded = as_version_1(
        app, absorbed, replaced={"source": {"channel": "web", "acquisition_cost": 300.75}}
    )
    assert loaded.source == {
        "channel": "web",
        "acquisition_cost": {"amount": "300.75", "currency": "RUB"},
    }


# -- every inquiry keeps its source: MessageReceived v1 had none ------------------------------


def test_a_version_1_received_message_reads_with_its_channel_as_source() -> None:
    app: Application = Application(env=POPO)
    message = Message.receive(
        id=uuid4(), conversation_id=uuid4(), contact_id=uuid4(), channel="telegram",
        dedup_key="k1", personal={"text": "hi"}, attachments=[], metadata={}, actor="test",
        correlation_id="c", source={"channel": "telegram", "utm_campaign": "spring"},
    )  # fmt: skip
    [event] = message.collect_events()
    assert event.source == {"channel": "telegram", "utm_campaign": "spring"}
    loaded = as_version_1(app, event, "source")
    assert loaded.source == {"channel": "telegram"}
    assert loaded.mutate(None).source == {"channel": "telegram"}


def test_replies_and_notes_keep_no_source() -> None:
    reply = Message.request_send(
        id=uuid4(), conversation_id=uuid4(), contact_id=uuid4(), channel="email",
        personal={"text": "hello"}, attachments=[], actor="user:1", correlation_id="c",
    )  # fmt: skip
    note = Message.add_note(
        id=uuid4(), conversation_id=uuid4(), contact_id=uuid4(), channel="email",
        personal={"text": "internal"}, actor="user:1", correlation_id="c",
    )  # fmt: skip
    assert reply.source == {} and note.source == {}


def test_a_stored_version_1_contact_shows_its_cost_as_money_on_the_card(
    sqlite_runtime: Runtime,
) -> None:
    """Through the real store and the contact card view: 12.5 of old is 12.50 RUB, 1250 kopecks."""
    app = sqlite_runtime.app
    event = _contact_created(clean_source({"channel": "api", "acquisition_cost": "1"}))
    stored = stored_as_version_1(
        app, event, replaced={"source": {"channel": "api", "acquisition_cost": 12.5}}
    )
    [notification_id] = app.recorder.insert_events([stored])
    assert sqlite_runtime.wait_for_views(notification_id, timeout=30)
    card = sqlite_runtime.queries.contact(str(event.originator_id))
    assert card is not None
    assert card["source"]["acquisition_cost"] == {"amount": "12.5", "currency": "RUB"}
    cost = acquisition_cost(sqlite_runtime.views, event.originator_id)
    assert cost == Money(Decimal("12.50"), "RUB") and cost.minor == 1250
    assert acquisition_cost(sqlite_runtime.views, uuid4()) is None
