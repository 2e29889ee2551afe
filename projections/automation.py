"""Automation as people read it: rules, templates, firings with their reasons, timers, notifications.

`rule_effects` maps every message, task, notification or webhook call a rule
produced to its firing, so "why did the client get this?" is one lookup from
the effect to the rule, the cause event and the conditions that held.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from threadline.domain.model.automation import Notification, WebhookCall
from threadline.domain.model.calendar import Calendar
from threadline.domain.model.rule import Rule, RuleFiring, Timer, joined_trace
from threadline.domain.model.template import Template
from threadline.projections.base import Scrub, ViewProjection, dumps, handles, sid, ts
from threadline.projections.sql import ViewCursor, ViewReader, rows_with_ids

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
    forgets = (
        Scrub("notifications", {"text": ""}),
        Scrub("rule_firings", {"trace": "[]"}),
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
                dumps(joined_trace(event.trace, getattr(event, "personal", None))),
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


# -- readers: what the trigger runner, the rules API and the admin read ------------------------


@dataclass(frozen=True)
class RuleRow:
    """One rule as the view keeps it (the definition decoded)."""

    id: str
    name: str
    enabled: bool
    version: int
    definition: dict[str, Any]
    event: str
    created_at: str
    updated_at: str
    firing_count: int
    last_fired_at: str | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> RuleRow:
        return cls(
            id=str(row["id"]),
            name=str(row["name"]),
            enabled=bool(row["enabled"]),
            version=int(row["version"]),
            definition=json.loads(row["definition"]),
            event=str(row["event"]),
            created_at=str(row["created_at"]),
            updated_at=str(row["updated_at"]),
            firing_count=int(row["firing_count"]),
            last_fired_at=row["last_fired_at"],
        )


@dataclass(frozen=True)
class TemplateRow:
    """One message template (its variants by channel decoded)."""

    id: str
    slug: str
    name: str
    variants: dict[str, Any]
    updated_at: str

    @classmethod
    def of(cls, row: dict[str, Any]) -> TemplateRow:
        return cls(
            id=str(row["id"]),
            slug=str(row["slug"]),
            name=str(row["name"]),
            variants=json.loads(row["variants"]),
            updated_at=str(row["updated_at"]),
        )


@dataclass(frozen=True)
class FiringRow:
    """One firing of a rule: its cause, the conditions' trace and the effects (decoded)."""

    id: str
    rule_id: str
    rule_version: int
    contact_id: str | None
    cause: dict[str, Any]
    outcome: str
    reason: str
    trace: Any
    effects: list[dict[str, Any]]
    depth: int
    occurred_at: str
    position: int

    @classmethod
    def of(cls, row: dict[str, Any]) -> FiringRow:
        return cls(
            id=str(row["id"]),
            rule_id=str(row["rule_id"]),
            rule_version=int(row["rule_version"]),
            contact_id=row["contact_id"],
            cause=json.loads(row["cause"]),
            outcome=str(row["outcome"]),
            reason=str(row["reason"]),
            trace=json.loads(row["trace"]),
            effects=json.loads(row["effects"]),
            depth=int(row["depth"]),
            occurred_at=str(row["occurred_at"]),
            position=int(row["position"]),
        )


@dataclass(frozen=True)
class EffectRow:
    """What a rule produced (a message, task, notification or webhook call) and its firing."""

    effect_id: str
    kind: str
    firing_id: str
    rule_id: str
    contact_id: str | None
    occurred_at: str


@dataclass(frozen=True)
class CalendarRow:
    name: str
    definition: dict[str, Any]
    updated_at: str


@dataclass(frozen=True)
class ScheduledTimer:
    """A timer still waiting, with the trigger names that cancel it."""

    id: str
    cancel_on: frozenset[str]


@dataclass(frozen=True)
class TimerRow:
    id: str
    rule_id: str
    contact_id: str | None
    conversation_id: str | None
    due_at: str
    state: str
    cancel_on: list[str]
    reason: str | None
    updated_at: str


@dataclass(frozen=True)
class NotificationRow:
    id: str
    user_id: str
    contact_id: str | None
    conversation_id: str | None
    text: str
    email: bool
    read: bool
    emailed: bool
    task_id: str | None
    created_at: str
    actor: str

    @classmethod
    def of(cls, row: dict[str, Any]) -> NotificationRow:
        return cls(
            id=str(row["id"]),
            user_id=str(row["user_id"]),
            contact_id=row["contact_id"],
            conversation_id=row["conversation_id"],
            text=str(row["text"]),
            email=bool(row["email"]),
            read=bool(row["read"]),
            emailed=bool(row["emailed"]),
            task_id=row["task_id"],
            created_at=str(row["created_at"]),
            actor=str(row["actor"]),
        )


@dataclass(frozen=True)
class WebhookCallRow:
    id: str
    url: str
    state: str
    attempts: int
    last_status: int | None
    last_error: str | None
    actor: str
    created_at: str
    updated_at: str


def rules(db: ViewReader) -> list[RuleRow]:
    """Every rule, by name."""
    return [RuleRow.of(r) for r in db.query("SELECT * FROM rules ORDER BY name, id")]


def rules_page(db: ViewReader, limit: int, offset: int) -> list[RuleRow]:
    rows = db.query("SELECT * FROM rules ORDER BY name, id LIMIT ? OFFSET ?", [limit, offset])
    return [RuleRow.of(r) for r in rows]


def rule(db: ViewReader, rule_id: UUID | str) -> RuleRow | None:
    row = db.query_one("SELECT * FROM rules WHERE id = ?", [str(rule_id)])
    return None if row is None else RuleRow.of(row)


def rule_named(db: ViewReader, name: str) -> RuleRow | None:
    row = db.query_one("SELECT * FROM rules WHERE name = ? ORDER BY id", [name])
    return None if row is None else RuleRow.of(row)


def rule_ids(db: ViewReader) -> list[str]:
    """The ids of every rule (the runner loads each from the log)."""
    return [str(r["id"]) for r in db.query("SELECT id FROM rules")]


def rule_count(db: ViewReader) -> int:
    row = db.query_one("SELECT COUNT(*) AS n FROM rules")
    return int(row["n"]) if row else 0


def firings_of_rule(
    db: ViewReader, rule_id: UUID | str, limit: int | None = None, newest_first: bool = True
) -> list[FiringRow]:
    """The rule's firings in log order, newest first unless asked otherwise (all of them
    without `limit`)."""
    sql = "SELECT * FROM rule_firings WHERE rule_id = ? ORDER BY position"
    params: list[Any] = [str(rule_id)]
    if newest_first:
        sql += " DESC"
    if limit is not None:
        sql, params = sql + " LIMIT ?", [*params, limit]
    return [FiringRow.of(r) for r in db.query(sql, params)]


def firing(db: ViewReader, firing_id: str) -> FiringRow | None:
    row = db.query_one("SELECT * FROM rule_firings WHERE id = ?", [firing_id])
    return None if row is None else FiringRow.of(row)


def firing_count(db: ViewReader, rule_id: UUID | str | None = None) -> int:
    """Firings of one rule (or of all), whatever their outcome."""
    if rule_id is None:
        row = db.query_one("SELECT COUNT(*) AS n FROM rule_firings")
    else:
        row = db.query_one(
            "SELECT COUNT(*) AS n FROM rule_firings WHERE rule_id = ?", [str(rule_id)]
        )
    return int(row["n"]) if row else 0


def effect(db: ViewReader, effect_id: UUID | str) -> EffectRow | None:
    """The firing that produced a message, task, notification or webhook call, if a rule did."""
    row = db.query_one("SELECT * FROM rule_effects WHERE effect_id = ?", [str(effect_id)])
    return None if row is None else EffectRow(**row)


def rule_message_ids_since(db: ViewReader, contact_id: str, since: datetime) -> frozenset[str]:
    """The ids of the messages rules sent a contact since `since` (the outbound composer's
    daily limit counts them by id, so a message it has a slot for is never counted twice)."""
    rows = db.query(
        "SELECT effect_id FROM rule_effects WHERE contact_id = ? AND kind = 'message'"
        " AND occurred_at >= ?",
        [contact_id, ts(since)],
    )
    return frozenset(str(row["effect_id"]) for row in rows)


def templates(db: ViewReader) -> list[TemplateRow]:
    """Every template, by slug."""
    return [TemplateRow.of(r) for r in db.query("SELECT * FROM templates ORDER BY slug")]


def templates_page(db: ViewReader, limit: int, offset: int = 0) -> list[TemplateRow]:
    rows = db.query("SELECT * FROM templates ORDER BY slug LIMIT ? OFFSET ?", [limit, offset])
    return [TemplateRow.of(r) for r in rows]


def template(db: ViewReader, slug: str) -> TemplateRow | None:
    row = db.query_one("SELECT * FROM templates WHERE slug = ?", [slug])
    return None if row is None else TemplateRow.of(row)


def template_exists(db: ViewReader, slug: str) -> bool:
    return db.query_one("SELECT 1 AS hit FROM templates WHERE slug = ?", [slug]) is not None


@dataclass(frozen=True)
class TemplateName:
    """What a template picker lists."""

    slug: str
    name: str


def template_names(
    db: ViewReader, by_name: bool = False, limit: int | None = None
) -> list[TemplateName]:
    """Each template's slug and name, by slug (or by name, then slug)."""
    sql = "SELECT slug, name FROM templates ORDER BY " + ("name, slug" if by_name else "slug")
    params: list[Any] = []
    if limit is not None:
        sql, params = sql + " LIMIT ?", [limit]
    return [TemplateName(str(r["slug"]), str(r["name"])) for r in db.query(sql, params)]


def calendars(db: ViewReader) -> list[CalendarRow]:
    """Every named business calendar, by name."""
    rows = db.query("SELECT name, definition, updated_at FROM calendars ORDER BY name")
    return [
        CalendarRow(str(r["name"]), json.loads(r["definition"]), str(r["updated_at"])) for r in rows
    ]


def scheduled_timers(
    db: ViewReader,
    *,
    conversation_id: UUID | str | None = None,
    contact_id: UUID | str | None = None,
) -> list[ScheduledTimer]:
    """The timers still waiting on a conversation (if given), else on a contact."""
    if conversation_id is not None:
        column, value = "conversation_id", str(conversation_id)
    else:
        column, value = "contact_id", str(contact_id)
    rows = db.query(
        f"SELECT id, cancel_on FROM rule_timers WHERE state = 'scheduled' AND {column} = ?",
        [value],
    )
    return [
        ScheduledTimer(str(r["id"]), frozenset(json.loads(r["cancel_on"] or "[]"))) for r in rows
    ]


def due_timer_ids(db: ViewReader, now: datetime, limit: int = 100) -> list[str]:
    """Scheduled timers due at `now`, soonest first."""
    rows = db.query(
        "SELECT id FROM rule_timers WHERE state = 'scheduled' AND due_at <= ?"
        " ORDER BY due_at LIMIT ?",
        [ts(now), limit],
    )
    return [str(r["id"]) for r in rows]


def timers(
    db: ViewReader,
    rule_id: UUID | str | None = None,
    conversation_id: UUID | str | None = None,
    state: str | None = None,
    contact_id: UUID | str | None = None,
) -> list[TimerRow]:
    """Every timer (of one rule, conversation or contact, in one state, as given), by due time."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("rule_id", rule_id),
        ("conversation_id", conversation_id),
        ("state", state),
        ("contact_id", contact_id),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(str(value))
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = db.query(f"SELECT * FROM rule_timers{where} ORDER BY due_at, id", params)
    return [TimerRow(**{**r, "cancel_on": json.loads(r["cancel_on"] or "[]")}) for r in rows]


def notifications_of(
    db: ViewReader, user_id: str, unread_only: bool = False
) -> list[NotificationRow]:
    """A user's notifications, newest first (at most 200)."""
    sql = "SELECT * FROM notifications WHERE user_id = ?"
    if unread_only:
        sql += " AND read = 0"
    rows = db.query(sql + " ORDER BY created_at DESC LIMIT 200", [user_id])
    return [NotificationRow.of(r) for r in rows]


def notifications(db: ViewReader) -> list[NotificationRow]:
    """Every notification, oldest first."""
    rows = db.query("SELECT * FROM notifications ORDER BY created_at, id")
    return [NotificationRow.of(r) for r in rows]


def notification(db: ViewReader, notification_id: UUID | str) -> NotificationRow | None:
    row = db.query_one("SELECT * FROM notifications WHERE id = ?", [str(notification_id)])
    return None if row is None else NotificationRow.of(row)


def unsent_notification_count(db: ViewReader) -> int:
    """Notifications whose e-mail copy is not sent yet (whether or not one is wanted)."""
    row = db.query_one("SELECT COUNT(*) AS n FROM notifications WHERE emailed = 0")
    return int(row["n"]) if row else 0


def webhook_calls(
    db: ViewReader, state: str | None = None, limit: int | None = None
) -> list[WebhookCallRow]:
    """Webhook calls (of one state, if given), oldest first."""
    sql = "SELECT * FROM webhook_calls"
    params: list[Any] = []
    if state is not None:
        sql, params = sql + " WHERE state = ?", [state]
    sql += " ORDER BY created_at"
    if limit is not None:
        sql, params = sql + " LIMIT ?", [*params, limit]
    return [WebhookCallRow(**r) for r in db.query(sql, params)]


def notification_users(db: ViewReader, notification_ids: Iterable[str]) -> dict[str, str]:
    """The user of each notification the view knows, by notification id."""
    select = "SELECT id, user_id FROM notifications"
    return {str(r["id"]): str(r["user_id"]) for r in rows_with_ids(db, select, notification_ids)}


def fired_causes(db: ViewReader, rule_id: UUID | str) -> list[dict[str, Any]]:
    """The cause of each firing of the rule that fired (not skipped), decoded."""
    rows = db.query(
        "SELECT cause FROM rule_firings WHERE rule_id = ? AND outcome = 'fired'", [str(rule_id)]
    )
    return [json.loads(r["cause"]) for r in rows]


def firing_causes(db: ViewReader, rule_id: UUID | str) -> list[dict[str, Any]]:
    """The cause of each firing of the rule, whatever its outcome, decoded."""
    rows = db.query("SELECT cause FROM rule_firings WHERE rule_id = ?", [str(rule_id)])
    return [json.loads(r["cause"]) for r in rows]


def timer(db: ViewReader, timer_id: UUID | str) -> TimerRow | None:
    rows = db.query("SELECT * FROM rule_timers WHERE id = ?", [str(timer_id)])
    return next(
        (TimerRow(**{**r, "cancel_on": json.loads(r["cancel_on"] or "[]")}) for r in rows), None
    )
