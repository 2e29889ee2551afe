"""Automation as people read it: rules, templates, firings with their reasons, timers, notifications.

`rule_effects` maps every message, task, notification or webhook call a rule
produced to its firing, so "why did the client get this?" is one lookup from
the effect to the rule, the cause event and the conditions that held.
"""

from __future__ import annotations

from typing import Any

from threadline.domain.model.automation import Notification, WebhookCall
from threadline.domain.model.calendar import Calendar
from threadline.domain.model.rule import Rule, RuleFiring, Timer
from threadline.domain.model.template import Template
from threadline.projections.base import ViewProjection, dumps, handles, sid, ts
from threadline.projections.sql import ViewCursor

EFFECT_KEYS = ("message_id", "task_id", "notification_id", "webhook_id")


class AutomationProjection(ViewProjection):
    name = "automation"
    version = 4  # 2: calendars; 3: notifications.emailed; 4: notifications.task_id
    tables = (
        "rules",
        "templates",
        "rule_firings",
        "rule_effects",
        "rule_timers",
        "notifications",
        "webhook_calls",
        "calendars",
    )
    schema = (
        "CREATE TABLE IF NOT EXISTS rules ("
        " id TEXT PRIMARY KEY, name TEXT NOT NULL, enabled BIGINT NOT NULL,"
        " version BIGINT NOT NULL, definition TEXT NOT NULL, event TEXT NOT NULL,"
        " created_at TEXT NOT NULL, updated_at TEXT NOT NULL, firing_count BIGINT NOT NULL"
        " DEFAULT 0, last_fired_at TEXT)",
        "CREATE TABLE IF NOT EXISTS templates ("
        " id TEXT PRIMARY KEY, slug TEXT NOT NULL UNIQUE, name TEXT NOT NULL,"
        " variants TEXT NOT NULL, updated_at TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS rule_firings ("
        " id TEXT PRIMARY KEY, rule_id TEXT NOT NULL, rule_version BIGINT NOT NULL,"
        " contact_id TEXT, cause TEXT NOT NULL, outcome TEXT NOT NULL, reason TEXT NOT NULL,"
        " trace TEXT NOT NULL, effects TEXT NOT NULL, depth BIGINT NOT NULL,"
        " occurred_at TEXT NOT NULL, position BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS rule_firings_rule ON rule_firings (rule_id, position)",
        "CREATE INDEX IF NOT EXISTS rule_firings_contact ON rule_firings (contact_id, occurred_at)",
        "CREATE TABLE IF NOT EXISTS rule_effects ("
        " effect_id TEXT PRIMARY KEY, kind TEXT NOT NULL, firing_id TEXT NOT NULL,"
        " rule_id TEXT NOT NULL, contact_id TEXT, occurred_at TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS rule_effects_contact ON rule_effects (contact_id, kind,"
        " occurred_at)",
        "CREATE TABLE IF NOT EXISTS rule_timers ("
        " id TEXT PRIMARY KEY, rule_id TEXT NOT NULL, contact_id TEXT, conversation_id TEXT,"
        " due_at TEXT NOT NULL, state TEXT NOT NULL, cancel_on TEXT NOT NULL,"
        " reason TEXT, updated_at TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS rule_timers_due ON rule_timers (state, due_at)",
        "CREATE INDEX IF NOT EXISTS rule_timers_conversation ON rule_timers (conversation_id)",
        "CREATE INDEX IF NOT EXISTS rule_timers_contact ON rule_timers (contact_id)",
        "CREATE TABLE IF NOT EXISTS notifications ("
        " id TEXT PRIMARY KEY, user_id TEXT NOT NULL, contact_id TEXT, conversation_id TEXT,"
        " text TEXT NOT NULL, email BIGINT NOT NULL, read BIGINT NOT NULL,"
        " emailed BIGINT NOT NULL DEFAULT 0, task_id TEXT,"
        " created_at TEXT NOT NULL, actor TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS notifications_user ON notifications (user_id, read)",
        # The notifier's position: unsent e-mail copies in creation order.
        "CREATE INDEX IF NOT EXISTS notifications_unsent ON notifications"
        " (email, emailed, created_at, id)",
        "CREATE TABLE IF NOT EXISTS webhook_calls ("
        " id TEXT PRIMARY KEY, url TEXT NOT NULL, state TEXT NOT NULL,"
        " attempts BIGINT NOT NULL, last_status BIGINT, last_error TEXT,"
        " actor TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS webhook_calls_state ON webhook_calls (state)",
        "CREATE TABLE IF NOT EXISTS calendars ("
        " id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, definition TEXT NOT NULL,"
        " updated_at TEXT NOT NULL)",
    )

    @handles(Calendar.CalendarSaved)
    def _calendar(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "INSERT INTO calendars (id, name, definition, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            [sid(event.originator_id), event.name, dumps(event.definition), ts(event.timestamp)],
        )

    @handles(Calendar.CalendarChanged)
    def _calendar_changed(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE calendars SET definition = ?, updated_at = ? WHERE id = ?",
            [dumps(event.definition), ts(event.timestamp), sid(event.originator_id)],
        )

    @handles(Rule.RuleCreated, Rule.RuleChanged)
    def _rule(self, event: Any, cur: ViewCursor) -> None:
        at = ts(event.timestamp)
        cur.execute(
            "INSERT INTO rules (id, name, enabled, version, definition, event, created_at,"
            " updated_at) VALUES (?, ?, 1, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
            " name = excluded.name, version = excluded.version,"
            " definition = excluded.definition, event = excluded.event,"
            " updated_at = excluded.updated_at",
            [
                sid(event.originator_id),
                event.name,
                event.originator_version,
                dumps(event.definition),
                event.definition.get("when", {}).get("event", ""),
                at,
                at,
            ],
        )

    @handles(Rule.RuleEnabledChanged)
    def _rule_enabled(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE rules SET enabled = ?, version = ?, updated_at = ? WHERE id = ?",
            [
                int(event.enabled),
                event.originator_version,
                ts(event.timestamp),
                sid(event.originator_id),
            ],
        )

    @handles(Template.TemplateSaved, Template.TemplateChanged)
    def _template(self, event: Any, cur: ViewCursor) -> None:
        slug = getattr(event, "slug", None)
        if slug is not None:
            cur.execute(
                "INSERT INTO templates (id, slug, name, variants, updated_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                [
                    sid(event.originator_id),
                    slug,
                    event.name,
                    dumps(event.variants),
                    ts(event.timestamp),
                ],
            )
        else:
            cur.execute(
                "UPDATE templates SET name = ?, variants = ?, updated_at = ? WHERE id = ?",
                [event.name, dumps(event.variants), ts(event.timestamp), sid(event.originator_id)],
            )

    @handles(RuleFiring.RuleFired)
    def _fired(self, event: Any, cur: ViewCursor) -> None:
        at = ts(event.timestamp)
        firing, rule = sid(event.originator_id), sid(event.rule_id)
        cur.execute(
            "INSERT INTO rule_firings (id, rule_id, rule_version, contact_id, cause, outcome,"
            " reason, trace, effects, depth, occurred_at, position)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            [
                firing,
                rule,
                event.rule_version,
                sid(event.contact_id),
                dumps(event.cause),
                event.outcome,
                event.reason,
                dumps(event.trace),
                dumps(event.effects),
                event.depth,
                at,
                self.position_of_event,
            ],
        )
        if event.outcome == "fired":
            cur.execute(
                "UPDATE rules SET firing_count = firing_count + 1, last_fired_at = ? WHERE id = ?",
                [at, rule],
            )
        for effect in event.effects:
            for key in EFFECT_KEYS:
                if effect.get(key):
                    cur.execute(
                        "INSERT INTO rule_effects (effect_id, kind, firing_id, rule_id,"
                        " contact_id, occurred_at) VALUES (?, ?, ?, ?, ?, ?)"
                        " ON CONFLICT (effect_id) DO NOTHING",
                        [effect[key], key[:-3], firing, rule, sid(event.contact_id), at],
                    )

    @handles(Timer.TimerScheduled)
    def _timer(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "INSERT INTO rule_timers (id, rule_id, contact_id, conversation_id, due_at, state,"
            " cancel_on, updated_at) VALUES (?, ?, ?, ?, ?, 'scheduled', ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            [
                sid(event.originator_id),
                sid(event.rule_id),
                sid(event.contact_id),
                sid(event.conversation_id),
                ts(event.due_at),
                dumps(event.cancel_on),
                ts(event.timestamp),
            ],
        )

    @handles(Timer.TimerFired, Timer.TimerCancelled)
    def _timer_done(self, event: Any, cur: ViewCursor) -> None:
        fired = isinstance(event, Timer.TimerFired)
        cur.execute(
            "UPDATE rule_timers SET state = ?, reason = ?, updated_at = ? WHERE id = ?",
            [
                "fired" if fired else "cancelled",
                None if fired else event.reason,
                ts(event.timestamp),
                sid(event.originator_id),
            ],
        )

    @handles(Notification.NotificationCreated)
    def _notification(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "INSERT INTO notifications (id, user_id, contact_id, conversation_id, text, email,"
            " read, created_at, actor, task_id) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            [
                sid(event.originator_id),
                sid(event.user_id),
                sid(event.contact_id),
                sid(event.conversation_id),
                event.personal.get("text", ""),
                int(event.email),
                ts(event.timestamp),
                event.actor,
                sid(event.task_id),
            ],
        )

    @handles(Notification.NotificationEmailed)
    def _notification_emailed(self, event: Any, cur: ViewCursor) -> None:
        cur.execute("UPDATE notifications SET emailed = 1 WHERE id = ?", [sid(event.originator_id)])

    @handles(Notification.NotificationRead)
    def _notification_read(self, event: Any, cur: ViewCursor) -> None:
        cur.execute("UPDATE notifications SET read = 1 WHERE id = ?", [sid(event.originator_id)])

    @handles(WebhookCall.WebhookRequested)
    def _webhook(self, event: Any, cur: ViewCursor) -> None:
        at = ts(event.timestamp)
        cur.execute(
            "INSERT INTO webhook_calls (id, url, state, attempts, actor, created_at, updated_at)"
            " VALUES (?, ?, 'requested', 0, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            [sid(event.originator_id), event.url, event.actor, at, at],
        )

    @handles(WebhookCall.WebhookAttempted)
    def _webhook_attempt(self, event: Any, cur: ViewCursor) -> None:
        state = "requested"
        if event.done:
            ok = event.status is not None and 200 <= event.status < 300
            state = "delivered" if ok else "failed"
        cur.execute(
            "UPDATE webhook_calls SET state = ?, attempts = attempts + 1, last_status = ?,"
            " last_error = ?, updated_at = ? WHERE id = ?",
            [state, event.status, event.error, ts(event.timestamp), sid(event.originator_id)],
        )
