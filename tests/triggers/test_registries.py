"""The registries rules are built from: trigger names by event class, and actions by kind.

Each is one place to add to; these tests keep them complete (every event class of the
domain is either named or deliberately unseen) and keep the names valid before the table
existed valid (the names of the editor's list, and the one derived from each class name).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import Aggregate, CanMutateAggregate

import threadline.domain.model as model
from threadline.triggers.actions.base import SkippedAction
from threadline.triggers.actions.registry import load_actions
from threadline.triggers.assignees import Assignee
from threadline.triggers.definition import After, At, RuleDefinition, When, parse_action
from threadline.triggers.rules import RuleError, parse_rule, validate_rule
from threadline.triggers.trigger_names import (
    AWAITED_TRIGGERS,
    EVENT_TRIGGERS,
    OFFERED,
    TRIGGER_NAMES,
    UNSEEN_EVENTS,
    facts_of,
)

# The names the editor listed (and the validator knew by name) before the table existed.
LISTED_BEFORE = (
    "message.received", "message.sent", "lead.created", "form.submitted", "call.received",
    "call.missed", "conversation.opened", "conversation.resolved", "conversation.unanswered",
    "task.created", "task.due_soon", "task.overdue", "contact.attribute_changed", "tag.added",
    "birthday", "schedule", "deal.created", "deal.stage_changed", "deal.won", "deal.lost",
    "contract.expiring", "payment.due", "payment.overdue",
)  # fmt: skip


# Classes that came after the table (no name was ever derived from them) whose aggregate's
# name is two words: named as the aggregate reads, not split after its first word.
NAMED_AS_THEIR_AGGREGATE = {
    "SupplierOrderCreated": "supplier_order.created",
    "SupplierOrderStateChanged": "supplier_order.state_changed",
}


def _event_classes() -> set[str]:
    names: set[str] = set()
    for info in pkgutil.iter_modules(model.__path__):
        module = importlib.import_module(f"{model.__name__}.{info.name}")
        for aggregate in vars(module).values():
            if not (inspect.isclass(aggregate) and issubclass(aggregate, Aggregate)):
                continue
            for nested in vars(aggregate).values():
                if (
                    inspect.isclass(nested)
                    and issubclass(nested, CanMutateAggregate)
                    and nested.__name__ not in ("Event", "Created")
                ):
                    names.add(nested.__name__)
    return names


def _derived_from_class_name(name: str) -> str:
    """How a name was made from the class name before the table (`DealStageChanged`)."""
    words = [w.lower() for w in re.findall(r"[A-Z][a-z0-9]*", name)]
    return words[0] + ("." + "_".join(words[1:]) if len(words) > 1 else "")


def test_every_event_class_is_named_or_deliberately_unseen() -> None:
    classes = _event_classes()
    assert classes, "no event classes found"
    missing = sorted(classes - set(EVENT_TRIGGERS) - UNSEEN_EVENTS)
    assert not missing, f"add these event classes to triggers/trigger_names.py: {missing}"
    assert not set(EVENT_TRIGGERS) & UNSEEN_EVENTS
    assert not (set(EVENT_TRIGGERS) | UNSEEN_EVENTS) - classes, "the table names no such class"


def test_the_table_keeps_every_name_valid_before_it() -> None:
    for event_class, triggers in EVENT_TRIGGERS.items():
        assert triggers.name == NAMED_AS_THEIR_AGGREGATE.get(
            event_class, _derived_from_class_name(event_class)
        )
    assert set(LISTED_BEFORE) <= set(TRIGGER_NAMES)
    # The editor offers what works: the names before (contracts and payments moved to the
    # money flow's place), the deal and task names that arrived with deals, then the money
    # flow's (each has a firing test).
    money = ("contract.expiring", "payment.due", "payment.overdue")
    before = tuple(name for name in LISTED_BEFORE if name not in money)
    expected = (
        *before, "deal.stale", "task.completed", "task.cancelled", *money,
        "supplier_order.unconfirmed", "supplier_payment.due", "supplier_payment.overdue",
        "document.issued", "document.sent", "contract.registered", "payment.received",
        "payment.allocated", "supplier_order.confirmed",
    )  # fmt: skip
    assert expected == OFFERED
    for name in LISTED_BEFORE:
        definition = {"name": "R", "when": {"event": name}, "then": [{"add_tag": "x"}]}
        if name == "conversation.unanswered":
            definition["when"] = {"event": name, "unanswered_for": "2h"}
        validate_rule(definition)
    # Contracts and payments arrived with the documents issue: nothing is awaited any more.
    assert AWAITED_TRIGGERS == ()
    # A well-formed name of a later release is still accepted; a malformed one is not.
    validate_rule({"name": "R", "when": "invoice.paid", "then": [{"add_tag": "x"}]})
    with pytest.raises(RuleError) as refused:
        validate_rule({"name": "R", "when": "no such event!", "then": [{"add_tag": "x"}]})
    assert (refused.value.path, refused.value.message) == (
        "when.event",
        "unknown event 'no such event!'",
    )


def test_names_carry_their_facts() -> None:
    assert {"channel", "text", "contact_id", "metadata"} <= set(facts_of("message.received"))
    assert {"channel", "text"} <= set(facts_of("form.submitted"))
    assert "changed" in facts_of("contact.attribute_changed")
    assert set(facts_of("task.overdue")) == {"type", "task_id", "due_at", "assignee_id"}
    assert facts_of("nothing.here") == ()


def test_every_action_kind_is_registered() -> None:
    assert set(load_actions()) == {
        "send_template",
        "create_task",
        "assign_conversation",
        "add_tag",
        "set_attribute",
        "move_deal",
        "notify",
        "webhook",
        "stop",
    }


def test_a_definition_is_parsed_once_into_typed_values() -> None:
    user = uuid4()
    given: dict[str, Any] = {
        "name": "Everything",
        "priority": 5,
        "when": {"event": "form.submitted", "channel": "web"},
        "if": {"all": [{"field": "contact.lifecycle", "op": "eq", "value": "lead"}]},
        "after": {"delay": "2h", "cancel_on": ["message.sent"], "business_hours": "default"},
        "at": {"cron": "0 9 * * *", "timezone": "Europe/Moscow"},
        "then": [
            {"send_template": "welcome"},
            {"create_task": {"title": "Call back", "type": "call", "due_in": "15m"}},
            {"assign_conversation": {"assignee": f"user:{user}"}},
            {"add_tag": " Web-Lead "},
            {"set_attribute": {"key": "segment", "value": "warm"}},
            {"move_deal": {"stage": "qualified"}},
            {"notify": {"text": "New lead", "email": True}},
            {"webhook": {"url": "https://example.com/hook", "secret": "s"}},
            {"stop": True},
        ],
    }
    normalised = validate_rule(given)
    # The JSON the log stores keeps its shape.
    assert normalised["then"] == [
        {"send_template": {"template": "welcome", "channel": "same"}},
        {
            "create_task": {
                "title": "Call back",
                "type": "call",
                "due_in": "15m",
                "assignee": "responsible",
            }
        },
        {"assign_conversation": {"assignee": "user", "user_id": str(user)}},
        {"add_tag": "web-lead"},
        {"set_attribute": {"key": "segment", "value": "warm"}},
        {"move_deal": {"stage": "qualified"}},
        {"notify": {"text": "New lead", "email": True, "assignee": "responsible"}},
        {"webhook": {"url": "https://example.com/hook", "secret": "s"}},
        {"stop": True},
    ]
    rule = parse_rule(given)
    assert rule == RuleDefinition.parse(normalised)
    assert rule.when == When(event="form.submitted", channel="web")
    assert rule.after == After("2h", ("message.sent",), "default")
    assert rule.at == At("0 9 * * *", "Europe/Moscow")
    assert rule.priority == 5 and rule.stops and rule.uses_business_hours
    assert [action.kind for action in rule.actions] == [
        next(iter(item)) for item in normalised["then"]
    ]
    assign = rule.actions[2]
    assert assign.assignee == Assignee("user", UUID(str(user)))
    assert dict(rule.document) == normalised


def test_a_stored_item_no_action_reads_is_skipped_not_fatal() -> None:
    unknown = parse_action({"teleport": {}})
    assert isinstance(unknown, SkippedAction)
    assert (unknown.item_kind, unknown.reason) == ("teleport", "unknown action teleport")
    unreadable = parse_action({"create_task": {"type": "call"}})
    assert isinstance(unreadable, SkippedAction)
    assert (unreadable.item_kind, unreadable.reason) == ("create_task", "KeyError: 'title'")


def test_validation_errors_name_the_same_paths() -> None:
    cases = [
        ({"teleport": {}}, "then[0].teleport", "unknown action"),
        ({"add_tag": ""}, "then[0].add_tag", "the tag to add"),
        ({"create_task": {"title": "x", "when": 1}}, "then[0].create_task.when",
         "unknown; create_task takes assignee, deal, due_in, reply, team, title, type, user_id"),
        ({"create_task": {"title": "x", "type": "fax"}}, "then[0].create_task.type",
         "one of call, email, sms, whatsapp, telegram, web, meeting, proposal, other, channel"),
        ({"notify": {"text": "x", "assignee": "round_robin"}}, "then[0].notify.team",
         "a list of user ids (or role:operator) to share it"),
        ({"webhook": {"url": "ftp://x"}}, "then[0].webhook.url", "an http(s) URL"),
        ({"stop": False}, "then[0].stop", "stop: true"),
        ({"send_template": {}}, "then[0].send_template", "name the template"),
    ]  # fmt: skip
    for action, path, message in cases:
        with pytest.raises(RuleError) as refused:
            validate_rule({"name": "R", "when": "message.received", "then": [action]})
        assert (refused.value.path, refused.value.message) == (path, message)
