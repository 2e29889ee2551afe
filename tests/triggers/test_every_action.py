"""Every registered action, firing once through the real store: its effect and its record."""

from __future__ import annotations

from typing import Any

from tests.triggers.test_runner import firings, inbound, rule, tasks, template
from tests.waiting import wait_for
from threadline.domain.model.attributes import AttributeDefinition, AttributeType
from threadline.projections.automation import notifications, webhook_calls
from threadline.services.runtime import Runtime

ACTOR = "user:test"


def test_every_action_applies_its_effect_and_records_it(engine: Runtime) -> None:
    user_id, _ = engine.app.create_user("owner@example.com", "operator", ACTOR).value
    engine.app.define_attribute(
        AttributeDefinition("segment", "Segment", AttributeType.TEXT), ACTOR
    )
    template(engine, "hello", "Hello {{ contact.first_name }}")
    everything = rule(
        engine,
        {
            "name": "Everything",
            "when": {"event": "message.received", "channel": "api"},
            "then": [
                {"send_template": {"template": "hello"}},
                {"create_task": {"title": "Call {{ contact.first_name }}", "assignee": "unassigned"}},
                {"assign_conversation": {"assignee": f"user:{user_id}"}},
                {"add_tag": "Everything"},
                {"set_attribute": {"key": "segment", "value": "warm"}},
                {"move_deal": {"stage": "qualified"}},
                {"notify": {"text": "New: {{ event.text }}", "assignee": f"user:{user_id}"}},
                {"webhook": {"url": "https://example.com/hook"}},
                {"stop": True},
            ],
        },
    )  # fmt: skip
    message = inbound(engine, "m1", "Hi there")
    fired = wait_for(lambda: firings(engine, everything))[0]
    assert fired.outcome == "fired"
    effects: list[dict[str, Any]] = fired.effects
    assert [effect["action"] for effect in effects] == [
        "send_template", "create_task", "assign_conversation", "add_tag", "set_attribute",
        "move_deal", "notify", "webhook", "stop",
    ]  # fmt: skip
    sent, task, assigned, tagged, attribute, deal, notified, hook, stop = effects
    assert set(sent) == {"action", "message_id", "channel"}
    assert set(task) == {"action", "task_id", "type", "assignee_id"}
    assert (task["type"], task["assignee_id"]) == ("other", None)
    assert assigned == {"action": "assign_conversation", "assignee_id": str(user_id)}
    assert tagged == {"action": "add_tag", "tag": "everything"}
    assert attribute == {"action": "set_attribute", "key": "segment"}
    # A message names no deal (tests/triggers/test_deal_triggers.py moves one).
    assert deal == {"action": "move_deal", "skipped": "the event names no deal"}
    assert set(notified) == {"action", "notification_id", "user_id"}
    assert notified["user_id"] == str(user_id)
    assert set(hook) == {"action", "webhook_id"}
    assert stop == {"action": "stop", "stopped": True}

    contact = str(message.contact_id)
    card = wait_for(lambda: engine.queries.contact(contact))
    wait_for(lambda: "everything" in engine.queries.contact(contact)["tags"])
    wait_for(lambda: engine.queries.contact(contact)["attributes"].get("segment") == "warm")
    assert card["display_name"]
    opened = wait_for(lambda: tasks(engine, message.contact_id))
    assert opened[0].title.startswith("Call ")
    shown = wait_for(lambda: [n for n in notifications(engine.views) if n.user_id == str(user_id)])
    assert shown[0].text == "New: Hi there"
    calls = wait_for(lambda: webhook_calls(engine.views))
    assert calls[0].url == "https://example.com/hook"
    conversation = engine.app.repository.get(message.conversation_id)
    assert str(conversation.assignee_id) == str(user_id)
