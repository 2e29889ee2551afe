"""The rules and templates Threadline ships with (seeded by `make run`, `threadline rules defaults`).

Their ids come from stable keys, so seeding again changes nothing, and a rule a
manager edited or disabled stays as they left it.
"""

from __future__ import annotations

from typing import Any

from threadline.domain.rule import rule_id_for

TEMPLATES: tuple[dict[str, Any], ...] = (
    {
        "slug": "welcome-web-lead",
        "name": "Welcome a new web-form lead",
        "variants": {
            "email": {
                "subject": "Thank you for your request, {{ contact.first_name or 'and welcome' }}",
                "text": (
                    "Hello {{ contact.first_name or contact.display_name }},\n\n"
                    "thank you for writing to us. {{ operator.name or 'One of our team' }} will"
                    " answer you shortly.\n\nTo stop automatic e-mails: {{ unsubscribe_url }}"
                ),
                "html": (
                    "<p>Hello {{ contact.first_name or contact.display_name }},</p>"
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
                "subject": "Happy birthday, {{ contact.first_name or contact.display_name }}!",
                "text": (
                    "Dear {{ contact.first_name or contact.display_name }},\n\n"
                    "all of us wish you a happy birthday!\n\n"
                    "To stop automatic e-mails: {{ unsubscribe_url }}"
                ),
                "html": (
                    "<p>Dear {{ contact.first_name or contact.display_name }},</p>"
                    "<p>all of us wish you a happy birthday!</p>"
                    "<p style='font-size:small'><a href='{{ unsubscribe_url }}'>Unsubscribe"
                    "</a></p>"
                ),
            },
            "default": {
                "text": "Happy birthday, {{ contact.first_name or contact.display_name }}!",
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
            "if": {"field": "event.actor", "op": "starts_with", "value": "channel:"},
            "then": [
                {
                    "create_task": {
                        "title": "Reply to {{ contact.display_name }}",
                        "type": "email",
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
            "after": {"delay": "15m", "cancel_on": ["message.sent"]},
            "then": [
                {
                    "notify": {
                        "user": "responsible",
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
            "then": [{"notify": {"user": "responsible", "text": "A task is due within the hour"}}],
        },
    ),
    (
        "task-overdue",
        {
            "name": "Remind of an overdue task",
            "when": {"event": "task.overdue"},
            "then": [
                {"notify": {"user": "responsible", "text": "A task is overdue", "email": True}}
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
            # A new conversation already got its task from "answer-new-inquiry".
            "if": {
                "all": [
                    {"field": "contact.open_task_count", "op": "eq", "value": 0},
                    {"field": "conversation.message_count", "op": "gt", "value": 1},
                ]
            },
            "then": [
                {
                    "create_task": {
                        "title": "Answer {{ contact.display_name }}",
                        "type": "email",
                        "due_in": "1h",
                        "assignee": "responsible",
                    }
                }
            ],
        },
    ),
)


def default_rule_ids() -> dict[str, Any]:
    return {key: rule_id_for(key) for key, _ in RULES}


def seed_defaults(app: Any, actor: str = "defaults") -> int:
    """Add the shipped templates and rules that are not there yet; returns how many were added.

    Existing ones are left alone, so a manager's edits and disabled rules survive.
    """
    from threadline.domain.template import template_id_for
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
        if not _exists(app, rule_id):
            normalised = validate_rule(definition, lambda slug: _exists(app, template_id_for(slug)))
            app.save_rule(normalised, actor, rule_id=rule_id)
            added += 1
    return added


def _exists(app: Any, aggregate_id: Any) -> bool:
    try:
        app.repository.get(aggregate_id)
    except Exception:
        return False
    return True
