"""The rules and templates Threadline ships with (seeded by `make run`, `threadline rules defaults`).

Their ids come from stable keys, so seeding again changes nothing, and a rule a
manager edited or disabled stays as they left it. A shipped rule nobody edited
(its definition is exactly one Threadline shipped before, see `SUPERSEDED`) is
brought up to the current definition.

Every shipped rule that tells or asks someone reaches a person: tasks and
notifications go to the responsible operator, else the conversation's assignee,
else the least busy active operator (``team: ["role:operator"]``).

"Every open deal has an open task" (a deal nobody has a next step for is a client being
lost) is four rules, one per moment a deal can be left without one — a rule waits for one
event: the deal is created, a task of it is completed or cancelled, or it is moved (which
reopens a won or lost deal). Each checks the deal as the views show it after that event
(the runner waits for them, and for the tasks its own earlier firings made), so when the
last of two tasks is completed one task is made, and when the first is, none.

The money flow's reminders (contracts expiring, invoices overdue, supplier orders and
payments) are tasks for the deal's manager; the letter to a client before an invoice is due
is shipped disabled (see `MONEY_RULES`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from threadline.domain.model.rule import rule_id_for

TEMPLATES: tuple[dict[str, Any], ...] = (
    {
        "slug": "welcome-web-lead",
        "name": "Welcome a new web-form lead",
        "variants": {
            "email": {
                "subject": "Thank you for your request, {{ contact.first_name or 'and welcome' }}",
                "text": (
                    # No first name (a contact known by a number or an address): "Hello,".
                    "Hello{{ ' ' ~ contact.first_name if contact.first_name }},\n\n"
                    "thank you for writing to us. {{ operator.name or 'One of our team' }} will"
                    " answer you shortly.\n\nTo stop automatic e-mails: {{ unsubscribe_url }}"
                ),
                "html": (
                    "<p>Hello{{ ' ' ~ contact.first_name if contact.first_name }},</p>"
                    "<p>thank you for writing to us. {{ operator.name or 'One of our team' }}"
                    " will answer you shortly.</p>"
                    "<p style='font-size:small'><a href='{{ unsubscribe_url }}'>Unsubscribe"
                    "</a></p>"
                ),
            },
            "default": {
                "text": "Thank you for your request! We will answer you shortly.",
            },
        },
    },
    {
        "slug": "birthday-greeting",
        "name": "Birthday greeting",
        "variants": {
            "email": {
                "subject": "Happy birthday{{ ', ' ~ contact.first_name if contact.first_name }}!",
                "text": (
                    "Hello{{ ' ' ~ contact.first_name if contact.first_name }},\n\n"
                    "all of us wish you a happy birthday!\n\n"
                    "To stop automatic e-mails: {{ unsubscribe_url }}"
                ),
                "html": (
                    "<p>Hello{{ ' ' ~ contact.first_name if contact.first_name }},</p>"
                    "<p>all of us wish you a happy birthday!</p>"
                    "<p style='font-size:small'><a href='{{ unsubscribe_url }}'>Unsubscribe"
                    "</a></p>"
                ),
            },
            "default": {
                "text": "Happy birthday{{ ', ' ~ contact.first_name if contact.first_name }}!",
            },
        },
    },
)

RULES: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "welcome-web-lead",
        {
            "name": "Welcome a new web-form lead",
            "priority": 10,
            "when": {"event": "form.submitted"},
            "if": {"field": "contact.lifecycle", "op": "eq", "value": "lead"},
            "then": [{"send_template": {"template": "welcome-web-lead", "channel": "email"}}],
        },
    ),
    (
        "answer-new-inquiry",
        {
            "name": "Reply to a new inquiry within 15 minutes",
            "priority": 20,
            "when": {"event": "conversation.opened"},
            # A call is answered or missed, not replied to: a missed one gets "call back".
            "if": {
                "all": [
                    {"field": "event.actor", "op": "starts_with", "value": "channel:"},
                    {"field": "conversation.channel", "op": "ne", "value": "voice"},
                ]
            },
            "then": [
                {
                    "create_task": {
                        "title": "Reply to {{ contact.display_name }}",
                        # The conversation's reply task: one open at most, a reply completes it.
                        "type": "channel",
                        "reply": True,
                        "due_in": "15m",
                        "assignee": "responsible",
                        "team": ["role:operator"],
                    }
                }
            ],
        },
    ),
    (
        "no-reply-escalation",
        {
            "name": "Nobody replied within 15 minutes",
            "priority": 30,
            "when": {"event": "message.received"},
            "if": {"field": "conversation.channel", "op": "ne", "value": "voice"},
            "after": {"delay": "15m", "cancel_on": ["message.sent"]},
            "then": [
                {
                    "notify": {
                        "user": "responsible",
                        "team": ["role:operator"],
                        "text": "{{ contact.display_name }} has waited 15 minutes for a reply",
                        "email": True,
                    }
                }
            ],
        },
    ),
    (
        "call-back-missed-call",
        {
            "name": "Call back after a missed call",
            "priority": 10,
            "when": {"event": "call.missed"},
            "then": [
                {
                    "create_task": {
                        "title": "Call back {{ contact.display_name }}",
                        "type": "call",
                        # One open call-back per thread however often they call; a reply or
                        # an answered call completes it.
                        "reply": True,
                        "due_in": "30m",
                        "assignee": "responsible",
                        "team": ["role:operator"],
                    }
                }
            ],
        },
    ),
    (
        "task-due-soon",
        {
            "name": "Remind of a task due within the hour",
            "when": {"event": "task.due_soon"},
            "then": [
                {
                    "notify": {
                        "user": "responsible",
                        "team": ["role:operator"],
                        "text": "A task is due within the hour",
                    }
                }
            ],
        },
    ),
    (
        "task-overdue",
        {
            "name": "Remind of an overdue task",
            "when": {"event": "task.overdue"},
            "then": [
                {
                    "notify": {
                        "user": "responsible",
                        "team": ["role:operator"],
                        "text": "A task is overdue",
                        "email": True,
                    }
                }
            ],
        },
    ),
    (
        "birthday-greeting",
        {
            "name": "Birthday greeting",
            "when": {"event": "birthday"},
            "at": {"cron": "0 9 * * *", "timezone": "UTC"},
            "then": [{"send_template": {"template": "birthday-greeting", "channel": "same"}}],
        },
    ),
    (
        "owner-for-waiting-conversation",
        {
            "name": "Every conversation waiting for us has an owner",
            "priority": 40,
            "when": {"event": "message.received"},
            "if": {
                "all": [
                    {"field": "conversation.assignee_id", "op": "is_not_set"},
                    {"field": "contact.responsible_id", "op": "is_set"},
                ]
            },
            "then": [{"assign_conversation": {"assignee": "responsible"}}],
        },
    ),
    (
        "open-task-for-waiting-conversation",
        {
            "name": "Every conversation waiting for us has an open task",
            "priority": 50,
            "when": {"event": "message.received"},
            # A new conversation already got its task from "answer-new-inquiry"; the runner
            # lets the views show the tasks its earlier firings made before this is read.
            "if": {
                "all": [
                    {"field": "conversation.open_task_count", "op": "eq", "value": 0},
                    {"field": "conversation.message_count", "op": "gt", "value": 1},
                    {"field": "conversation.channel", "op": "ne", "value": "voice"},
                ]
            },
            "then": [
                {
                    "create_task": {
                        "title": "Answer {{ contact.display_name }}",
                        "type": "channel",
                        "reply": True,
                        "due_in": "1h",
                        "assignee": "responsible",
                        "team": ["role:operator"],
                    }
                }
            ],
        },
    ),
)


def _open_deal_task(key: str, name: str, event: str) -> tuple[str, dict[str, Any]]:
    """One of the four "every open deal has an open task" rules (see the module's text)."""
    return (
        key,
        {
            "name": f"Every open deal has an open task: {name}",
            "priority": 60,
            "when": {"event": event},
            "if": {
                "all": [
                    {"field": "deal.status", "op": "eq", "value": "open"},
                    {"field": "deal.open_task_count", "op": "eq", "value": 0},
                ]
            },
            "then": [
                {
                    "create_task": {
                        "title": "Next step for {{ deal.title }}",
                        "type": "other",
                        "due_in": "1d",
                        "deal": True,
                        "assignee": "deal_manager",
                        "team": ["role:operator"],
                    }
                }
            ],
        },
    )


# Their keys, in the order of the moments above.
OPEN_DEAL_TASK_KEYS = (
    "open-deal-task-created",
    "open-deal-task-task-completed",
    "open-deal-task-task-cancelled",
    "open-deal-task-moved",
)

RULES = (
    *RULES,
    _open_deal_task(OPEN_DEAL_TASK_KEYS[0], "a new deal", "deal.created"),
    _open_deal_task(OPEN_DEAL_TASK_KEYS[1], "its last task completed", "task.completed"),
    _open_deal_task(OPEN_DEAL_TASK_KEYS[2], "its last task cancelled", "task.cancelled"),
    _open_deal_task(OPEN_DEAL_TASK_KEYS[3], "a moved or reopened deal", "deal.stage_changed"),
)


# -- the money flow's reminders ------------------------------------------------------------------
#
# Tasks for people, on working days of the default calendar: a contract ending in 30 days, an
# invoice not paid a working day after its due day, a supplier order not confirmed in two
# working days, a supplier payment due in two. Each goes to the deal's manager, else the
# contact's responsible, else the least busy operator. The reminder to the CLIENT before an
# invoice is due is shipped too, but disabled (`SHIPPED_DISABLED`): an automatic letter about
# money to a client is the business's decision, which it makes by enabling the rule.

_TO_MANAGER = {"assignee": "deal_manager", "team": ["role:operator"], "type": "other"}

TEMPLATES = (
    *TEMPLATES,
    {
        "slug": "invoice-due-reminder",
        "name": "Invoice due reminder (to the client)",
        "variants": {
            "email": {
                "subject": "Invoice {{ event.number }} is due on {{ event.due_on }}",
                "text": (
                    "Hello{{ ' ' ~ contact.first_name if contact.first_name }},\n\n"
                    "a friendly reminder: invoice {{ event.number }} for"
                    " {{ event.outstanding_text }} {{ event.currency }} is due on"
                    " {{ event.due_on }}. If you have already paid it, thank you, and please"
                    " ignore this letter.\n\n"
                    "{{ operator.name or 'Your manager' }}\n\n"
                    "To stop automatic e-mails: {{ unsubscribe_url }}"
                ),
            },
            "default": {
                "text": (
                    "A reminder: invoice {{ event.number }} for {{ event.outstanding_text }}"
                    " {{ event.currency }} is due on {{ event.due_on }}."
                ),
            },
        },
    },
)

MONEY_RULES: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "contract-expiring-task",
        {
            "name": "A contract ends in 30 days: renew or close it",
            "priority": 70,
            "when": {"event": "contract.expiring", "days_before": 30},
            "then": [
                {
                    "create_task": {
                        "title": (
                            "Contract {{ event.number }}{{ ' with ' ~ company.name if"
                            " company.name }} ends on {{ event.ends_on }}: renew or close it"
                        ),
                        "due_in": "7d",
                        **_TO_MANAGER,
                    }
                }
            ],
        },
    ),
    (
        "invoice-overdue-task",
        {
            "name": "An invoice is overdue: call the client",
            "priority": 70,
            "when": {"event": "payment.overdue", "days_after": 1, "business_days": True},
            "then": [
                {
                    "create_task": {
                        "title": (
                            "Invoice {{ event.number }}{{ ' of ' ~ company.name if company.name }}"
                            " is overdue: {{ event.outstanding_text }} {{ event.currency }}"
                            " unpaid since {{ event.due_on }}"
                        ),
                        "due_in": "1d",
                        **_TO_MANAGER,
                        "type": "call",
                    }
                }
            ],
        },
    ),
    (
        "supplier-order-unconfirmed-task",
        {
            "name": "A supplier order is not confirmed in 2 working days",
            "priority": 70,
            "when": {"event": "supplier_order.unconfirmed", "days_after": 2, "business_days": True},
            "then": [
                {
                    "create_task": {
                        "title": (
                            "Supplier order {{ event.number }}{{ ' to ' ~ company.name if"
                            " company.name }} is not confirmed yet"
                        ),
                        "due_in": "1d",
                        **_TO_MANAGER,
                    }
                }
            ],
        },
    ),
    (
        "supplier-payment-due-task",
        {
            "name": "A supplier payment is due in 2 working days",
            "priority": 70,
            "when": {"event": "supplier_payment.due", "days_before": 2, "business_days": True},
            "then": [
                {
                    "create_task": {
                        "title": (
                            "Pay {{ event.payable_text }} {{ event.currency }} for supplier"
                            " order {{ event.number }}{{ ' to ' ~ company.name if company.name }}"
                            " by {{ event.payment_due_on }}"
                        ),
                        "due_in": "1d",
                        **_TO_MANAGER,
                    }
                }
            ],
        },
    ),
    (
        "invoice-due-reminder",
        {
            "name": "Remind the client 3 days before an invoice is due",
            "priority": 70,
            "when": {"event": "payment.due", "days_before": 3, "business_days": True},
            "then": [{"send_template": {"template": "invoice-due-reminder", "channel": "email"}}],
        },
    ),
)
MONEY_RULE_KEYS = tuple(key for key, _ in MONEY_RULES)
# Shipped disabled: seeded once in that state (a manager enables it), never re-enabled.
SHIPPED_DISABLED = frozenset({"invoice-due-reminder"})

RULES = (*RULES, *MONEY_RULES)


# Fingerprints (see `fingerprint`) of definitions shipped before, per rule key: a stored rule
# that still has one of them was never edited, so seeding replaces it with today's.
SUPERSEDED: dict[str, frozenset[str]] = {
    # Before issue 11: tasks of type e-mail on every (re-)opening, notifications to nobody.
    "answer-new-inquiry": frozenset({"3ebfbd990320e44482c48daf5dfbabd9"}),
    "no-reply-escalation": frozenset({"58fdf33dc2db271881f3d34c8fb62123"}),
    "call-back-missed-call": frozenset({"97253fbc9b5639a2915b4a1354492842"}),
    "task-due-soon": frozenset({"d1efc4ab3df37dc929a76892b2c9c2a8"}),
    "task-overdue": frozenset({"5930fdf8fc5536a7dc2df0e332ca5afb"}),
    "open-task-for-waiting-conversation": frozenset({"dbc5e2be4b7800303f2fc8646bc2bce0"}),
}


def fingerprint(definition: dict[str, Any]) -> str:
    """A stable digest of a normalised rule definition (key order does not matter)."""
    text = json.dumps(definition, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def default_rule_ids() -> dict[str, Any]:
    return {key: rule_id_for(key) for key, _ in RULES}


def seed_defaults(app: Any, actor: str = "defaults") -> int:
    """Add the shipped templates and rules that are not there yet; returns how many were added.

    Existing ones are left alone, so a manager's edits and disabled rules survive; a rule
    still exactly as an earlier release shipped it is updated to today's definition (counted).
    """
    from threadline.domain.model.template import template_id_for
    from threadline.triggers.rules import validate_rule
    from threadline.triggers.templates import validate_template

    added = 0
    for template in TEMPLATES:
        if not _exists(app, template_id_for(template["slug"])):
            validate_template(template["variants"])
            app.save_template(template["slug"], template["name"], template["variants"], actor)
            added += 1
    for key, definition in RULES:
        rule_id = rule_id_for(key)
        stored = _stored_definition(app, rule_id)
        if stored is not None and fingerprint(stored) not in SUPERSEDED.get(key, ()):
            continue
        normalised = validate_rule(definition, lambda slug: _exists(app, template_id_for(slug)))
        if stored is None and key in SHIPPED_DISABLED:
            _create_disabled(app, normalised, rule_id, actor)
            added += 1
        elif stored != normalised:
            app.save_rule(normalised, actor, rule_id=rule_id)
            added += 1
    return added


def _create_disabled(app: Any, definition: dict[str, Any], rule_id: Any, actor: str) -> Any:
    """A new rule that is disabled from its first event on (one unit: it never runs)."""
    from uuid import uuid4

    from threadline.domain.model.rule import Rule

    correlation_id = str(uuid4())

    def command(unit: Any) -> None:
        if unit.find(rule_id, Rule) is not None:
            return
        rule = unit.add(
            Rule(
                id=rule_id,
                name=definition["name"],
                definition=definition,
                actor=actor,
                correlation_id=correlation_id,
            )
        )
        rule.set_enabled(False, actor, correlation_id)

    return app.writer.submit(command)


def _stored_definition(app: Any, rule_id: Any) -> dict[str, Any] | None:
    try:
        rule = app.repository.get(rule_id)
    except Exception:
        return None
    return dict(rule.definition)


def _exists(app: Any, aggregate_id: Any) -> bool:
    try:
        app.repository.get(aggregate_id)
    except Exception:
        return False
    return True
