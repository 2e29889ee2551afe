"""The touches view: the moments a contact was reached by a call or a trigger message.

The `touches` report asks, for each deal won, what reached its client in the N days before.
Campaign messages are read from the campaigns view (`campaign_recipients`, by recipient
and send time); calls and trigger messages are kept here, one row per touch, indexed by
contact and time:

- a call: a telephony call (a voice message, inbound or outbound) when the provider reports
  it answered, and a call an operator logged by hand (a call task completed as
  ``logged_call``, whatever outcome the operator wrote);
- a trigger message: an outbound message whose actor is a rule (``rule:<id>``), when the
  rule asked for it to be sent.

It also keeps when each deal was won (`source_wins`, indexed by the moment), so the report
reads a period's wins without scanning every deal.

A touch is recorded on the contact the event names (a contact merged later keeps its own).
"""

from __future__ import annotations

from typing import Any

from threadline.domain.commands.calls import LOGGED_CALL
from threadline.domain.model.deal import Deal
from threadline.domain.model.message import Message
from threadline.domain.model.task import Task
from threadline.projections.base import ViewProjection, handles, sid, ts
from threadline.projections.sql import ViewCursor

CALLS_KEY = "calls"
"""The touch key of every call: calls are one touch source."""


class SourcesTouchesProjection(ViewProjection):
    name = "sources_touches"
    version = 1
    tables = ("source_touches", "source_call_messages", "source_wins")
    schema = (
        "CREATE TABLE IF NOT EXISTS source_touches ("
        " id TEXT PRIMARY KEY, contact_id TEXT NOT NULL, kind TEXT NOT NULL,"
        " touch_key TEXT NOT NULL, at TEXT NOT NULL, ref_id TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS source_touches_contact ON source_touches (contact_id, at)",
        # Telephony calls by message id: a call's status events do not name the contact.
        "CREATE TABLE IF NOT EXISTS source_call_messages ("
        " id TEXT PRIMARY KEY, contact_id TEXT NOT NULL)",
        # When each deal was (last) won: the deals view has no index on closed_at, and the
        # report reads a period's wins from here (joined to the deal for its state now).
        "CREATE TABLE IF NOT EXISTS source_wins (deal_id TEXT PRIMARY KEY, closed_at TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS source_wins_closed ON source_wins (closed_at)",
    )

    @staticmethod
    def _touch(
        cur: ViewCursor, touch_id: str, contact_id: str, kind: str, key: str, at: str, ref: str
    ) -> None:
        cur.execute(
            "INSERT INTO source_touches (id, contact_id, kind, touch_key, at, ref_id)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            [touch_id, contact_id, kind, key, at, ref],
        )

    @handles(Message.MessageReceived, Message.MessageSendRequested)
    def _message(self, event: Any, cur: ViewCursor) -> None:
        message_id = sid(event.originator_id)
        contact_id = sid(event.contact_id)
        assert message_id is not None and contact_id is not None
        metadata = getattr(event, "metadata", None) or {}
        if event.channel == "voice" or metadata.get("kind") == "call":
            cur.execute(
                "INSERT INTO source_call_messages (id, contact_id) VALUES (?, ?)"
                " ON CONFLICT (id) DO NOTHING",
                [message_id, contact_id],
            )
            return
        actor = str(event.actor)
        if event.direction == "outbound" and actor.startswith("rule:"):
            rule_id = actor.partition(":")[2]
            at = ts(event.timestamp)
            self._touch(cur, message_id, contact_id, "rule", rule_id, at, message_id)

    @handles(Message.CallUpdated)
    def _call(self, event: Any, cur: ViewCursor) -> None:
        if event.outcome != "answered":
            return
        message_id = sid(event.originator_id)
        row = cur.execute(
            "SELECT contact_id FROM source_call_messages WHERE id = ?", [message_id]
        ).fetchone()
        if row is None or message_id is None:
            return
        # One touch per call: the first "answered" report is when it was taken.
        self._touch(
            cur, message_id, row["contact_id"], "call", CALLS_KEY, ts(event.timestamp), message_id
        )

    @handles(Deal.DealWon)
    def _won(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "INSERT INTO source_wins (deal_id, closed_at) VALUES (?, ?)"
            " ON CONFLICT (deal_id) DO UPDATE SET closed_at = excluded.closed_at",
            [sid(event.originator_id), ts(event.timestamp)],
        )

    @handles(Task.TaskCompleted)
    def _logged_call(self, event: Any, cur: ViewCursor) -> None:
        if getattr(event, "reason", "") != LOGGED_CALL or event.contact_id is None:
            return
        task_id = sid(event.originator_id)
        contact_id = sid(event.contact_id)
        assert task_id is not None and contact_id is not None
        self._touch(cur, task_id, contact_id, "call", CALLS_KEY, ts(event.timestamp), task_id)
