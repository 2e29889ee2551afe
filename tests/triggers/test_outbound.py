"""The outbound composer: one daily limit for rule and campaign messages, one channel choice.

Through the real store and views (SQLite and PostgreSQL), with the process's one
composer (`runtime.composer`) that the trigger runner and the campaign sender share.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from tests.conftest import make_runtime
from tests.waiting import wait_for
from threadline.domain.model.campaign import campaign_message_id, recipient_id_for
from threadline.domain.model.inbound import InboundMessage
from threadline.projections.automation import firings_of_rule
from threadline.projections.campaigns import campaign, recipients_page
from threadline.services.runtime import Runtime
from threadline.triggers.outbound import (
    CAMPAIGN_FALLBACK,
    Composed,
    ContactReach,
    Refusal,
    choose_channel,
    reply_options,
)
from threadline.triggers.rules import validate_rule

ACTOR = "user:test"
LIMIT_REASON = "rate limit: 2 automatic messages a day"


@pytest.fixture
def engine(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    """A runtime whose daily limit is 2, with rules and the channel worker running."""
    runtime = make_runtime(
        database_url, attachments_dir=str(tmp_path / "a"), automatic_messages_per_day=2
    )
    runtime.channels.configure(
        "sandbox", "sandbox", "Sandbox", {"path": "var/test-outbound.jsonl"}, ACTOR
    )
    runtime.channels.start(pollers=False)
    runtime.start_triggers()
    try:
        yield runtime
    finally:
        runtime.close()


def inbound(runtime: Runtime, key: str) -> Any:
    committed = runtime.app.ingest(
        InboundMessage.create(
            channel="api",
            dedup_key=key,
            identities=[("email", "vera@example.com")],
            sender_name="Vera Orlova",
            text=f"Question {key}",
        )
    )
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    return committed.value


def answer_rule(runtime: Runtime) -> UUID:
    runtime.app.save_template(
        "hello", "Hello", {"default": {"text": "Hello {{ contact.first_name }}"}}, ACTOR
    )
    definition = {
        "name": "Answer",
        "when": {"event": "message.received"},
        "then": [{"send_template": {"template": "hello", "channel": "same"}}],
    }
    rule_id: UUID = runtime.app.save_rule(validate_rule(definition, lambda s: True), ACTOR).value
    runtime.wait_for_views(runtime.app.recorder.max_notification_id())
    return rule_id


def effects(runtime: Runtime, rule_id: UUID) -> list[dict[str, Any]]:
    """Each firing's send_template effect, oldest first."""
    return [f.effects[0] for f in reversed(firings_of_rule(runtime.views, rule_id, 100))]


def run_campaign(runtime: Runtime, name: str) -> str:
    """A campaign to every contact by e-mail; its id once it has finished."""
    created = runtime.app.create_campaign(name, "hello", {}, "email", None, ACTOR)
    runtime.app.start_campaign(created.value, ACTOR)
    wait_for(
        lambda: (row := campaign(runtime.views, created.value)) and row.state == "finished",
        f"campaign {name} finished",
    )
    return str(created.value)


def test_rule_and_campaign_messages_count_against_one_daily_limit(engine: Runtime) -> None:
    rule_id = answer_rule(engine)
    first = inbound(engine, "q-1")
    contact = str(first.contact_id)
    wait_for(lambda: len(effects(engine, rule_id)) == 1, "the rule answered")
    assert "message_id" in effects(engine, rule_id)[0]

    warm = run_campaign(engine, "Warm")
    rows, _ = recipients_page(engine.views, warm, None, 10)
    assert [(r.contact_id, r.state) for r in rows] in (
        [(contact, "sent")],
        [(contact, "delivered")],
    )
    # One rule message and one campaign message: the limit of 2 is reached, each counted once
    # (the views show both, and the composer's own slots for them are the same messages).
    engine.wait_for_views(engine.app.recorder.max_notification_id())
    assert engine.composer.automatic_today(contact) == 2

    # The next of either kind is refused, with the same reason.
    inbound(engine, "q-2")
    wait_for(lambda: len(effects(engine, rule_id)) == 2, "the rule looked at the second one")
    assert effects(engine, rule_id)[1]["skipped"] == LIMIT_REASON

    late = run_campaign(engine, "Late")
    rows, _ = recipients_page(engine.views, late, None, 10)
    assert [(r.contact_id, r.state, r.reason) for r in rows] == [(contact, "skipped", LIMIT_REASON)]


def test_slots_taken_before_the_views_show_them_count_for_both_kinds(engine: Runtime) -> None:
    composer = engine.composer
    message = inbound(engine, "q-1")
    contact = str(message.contact_id)
    engine.app.save_template("hello", "Hello", {"default": {"text": "Hi"}}, ACTOR)
    engine.wait_for_views(engine.app.recorder.max_notification_id())
    facts = composer.facts(message.contact_id, "preview", {"type": "preview"})

    # A rule message and a campaign message decided, neither recorded yet.
    decided = composer.rule_message("hello", "email", facts, uuid4())
    assert isinstance(decided, Composed) and decided.channel == "email"
    recipient = campaign_message_id(recipient_id_for(uuid4(), message.contact_id))
    assert composer.take_slot(contact, recipient)
    assert composer.automatic_today(contact) == 2

    # The limit holds for both kinds; taking a slot again for the same message is free.
    refused = composer.rule_message("hello", "email", facts, uuid4())
    assert refused == Refusal(LIMIT_REASON)
    assert not composer.take_slot(contact, uuid4())
    assert composer.take_slot(contact, recipient)

    # A message that is not sent after all gives its slot back.
    composer.release_slot(contact, recipient)
    assert composer.automatic_today(contact) == 1
    assert isinstance(composer.rule_message("hello", "email", facts, uuid4()), Composed)


def test_same_answers_the_conversation_else_where_the_contact_wrote_else_an_address() -> None:
    wrote = ContactReach("c", wrote_on=("web", "telegram"), identity_kinds=("email", "telegram"))
    assert choose_channel("sms", wrote) == "sms"
    assert choose_channel("same", wrote, conversation_channel="api") == "email"
    assert choose_channel("same", wrote) == "email"  # a web form is answered by e-mail
    phone_only = ContactReach("c", identity_kinds=("phone",))
    assert choose_channel("same", phone_only) is None  # a rule opens no paid channel
    assert choose_channel("same", phone_only, fallback=CAMPAIGN_FALLBACK) == "sms"
    unreachable = ContactReach("c", wrote_on=("whatsapp",), identity_kinds=("email",))
    assert choose_channel("same", unreachable) == "email"
    assert reply_options("web", ["web", "sms"], ["email", "phone"]) == ["web", "sms", "email"]


def test_the_rules_see_the_slots_campaigns_took_before_the_views_show_them(
    engine: Runtime,
) -> None:
    rule_id = answer_rule(engine)
    first = inbound(engine, "q-1")
    contact = str(first.contact_id)
    wait_for(lambda: len(effects(engine, rule_id)) == 1, "the rule answered")
    # A campaign lane has just decided on a message for the contact: not recorded yet, so no
    # view shows it, but the process's one composer (the runner's too) holds its slot.
    recipient = recipient_id_for(uuid4(), first.contact_id)
    assert engine.composer.take_slot(contact, campaign_message_id(recipient))

    inbound(engine, "q-2")
    wait_for(lambda: len(effects(engine, rule_id)) == 2, "the rule looked at the second one")
    assert effects(engine, rule_id)[1]["skipped"] == LIMIT_REASON
