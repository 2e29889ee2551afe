"""The unified inbox: one row per conversation, every channel, plus each thread's messages.

Operators filter by status, channel and assignee and search text; the row
carries what a list needs (contact name, last message preview, unread count)
so the list is one indexed query, however many conversations there are.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from threadline.domain.model.contact import Contact
from threadline.domain.model.conversation import Conversation
from threadline.domain.model.message import Message, failure_reason, full_metadata
from threadline.projections.base import (
    FORGOTTEN_NAME,
    ContactAliases,
    Scrub,
    ViewProjection,
    dumps,
    handles,
    merge_call,
    preview,
    sid,
    ts,
)
from threadline.projections.sql import ViewCursor, ViewReader, rows_with_ids


class InboxProjection(ViewProjection):
    name = "inbox"
    # 2: a message's state is the provider's word (queued, sent, delivered);
    # 3: an inbound message's source (its inquiry's attribution)
    version = 3
    tables = ("inbox_conversations", "inbox_messages", "inbox_contacts", "inbox_contact_aliases")
    forgets = (
        Scrub("inbox_contacts", {"name": FORGOTTEN_NAME, "lower_name": ""}, "id = ?"),
        Scrub(
            "inbox_conversations",
            {
                "contact_name": FORGOTTEN_NAME,
                "thread_key": "",
                "subject": "",
                "last_message": "",
                "search": "",
            },
        ),
        Scrub(
            "inbox_messages",
            {
                "text": "",
                "html": "",
                "subject": "",
                "sender_name": "",
                "metadata": "{}",
                "failure": None,
                "search": "",
            },
        ),
    )
    schema = (
        "CREATE TABLE IF NOT EXISTS inbox_conversations ("
        " id TEXT PRIMARY KEY, contact_id TEXT NOT NULL, contact_name TEXT NOT NULL,"
        " channel TEXT NOT NULL, thread_key TEXT NOT NULL, subject TEXT NOT NULL,"
        " status TEXT NOT NULL, assignee_id TEXT, snoozed_until TEXT,"
        " last_message TEXT NOT NULL DEFAULT '', last_direction TEXT, last_message_at TEXT,"
        " unread_count BIGINT NOT NULL DEFAULT 0, message_count BIGINT NOT NULL DEFAULT 0,"
        " created_at TEXT NOT NULL, updated_at TEXT NOT NULL, search TEXT NOT NULL DEFAULT '')",
        "CREATE INDEX IF NOT EXISTS inbox_updated ON inbox_conversations (updated_at)",
        "CREATE INDEX IF NOT EXISTS inbox_status ON inbox_conversations (status, updated_at)",
        "CREATE INDEX IF NOT EXISTS inbox_contact ON inbox_conversations (contact_id)",
        "CREATE TABLE IF NOT EXISTS inbox_messages ("
        " id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, contact_id TEXT NOT NULL,"
        " position BIGINT NOT NULL, direction TEXT NOT NULL, channel TEXT NOT NULL,"
        " state TEXT NOT NULL, text TEXT NOT NULL, html TEXT NOT NULL, subject TEXT NOT NULL,"
        " sender_name TEXT NOT NULL, attachments TEXT NOT NULL, metadata TEXT NOT NULL,"
        " actor TEXT NOT NULL, provider_id TEXT, failure TEXT, created_at TEXT NOT NULL,"
        " updated_at TEXT NOT NULL, search TEXT NOT NULL, source TEXT NOT NULL DEFAULT '{}')",
        # The managers report's messages sent (and missed calls) of a period.
        "CREATE INDEX IF NOT EXISTS inbox_messages_time ON inbox_messages (direction, created_at)",
        "CREATE INDEX IF NOT EXISTS inbox_messages_inbound"
        " ON inbox_messages (conversation_id, direction, position)",
        "CREATE INDEX IF NOT EXISTS inbox_messages_conversation"
        " ON inbox_messages (conversation_id, position)",
        "CREATE TABLE IF NOT EXISTS inbox_contacts ("
        " id TEXT PRIMARY KEY, name TEXT NOT NULL, lower_name TEXT NOT NULL)",
        # A merged contact's later messages (on its old threads) show under the survivor.
        "CREATE TABLE IF NOT EXISTS inbox_contact_aliases ("
        " id TEXT PRIMARY KEY, survivor_id TEXT NOT NULL)",
    )

    @handles(Contact.ContactCreated, Contact.ContactRenamed)
    def _contact_name(self, event: Any, cur: ViewCursor) -> None:
        name = event.personal.get("display_name", "")
        contact_id = sid(event.originator_id)
        cur.execute(
            "INSERT INTO inbox_contacts (id, name, lower_name) VALUES (?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET name = excluded.name, lower_name = excluded.lower_name",
            [contact_id, name, name.lower()],
        )
        if isinstance(event, Contact.ContactRenamed):
            rows = cur.execute(
                "SELECT id, subject FROM inbox_conversations WHERE contact_id = ?", [contact_id]
            ).fetchall()
            for row in rows:
                cur.execute(
                    "UPDATE inbox_conversations SET contact_name = ?, search = ? WHERE id = ?",
                    [name, f"{name} {row['subject']}".lower(), row["id"]],
                )

    @handles(Contact.ContactForgotten)
    def _forgotten(self, event: Any, cur: ViewCursor) -> None:
        """Blank the contact's names and texts (`forgets`); its messages keep their files'
        sizes, types and hashes, not their names."""
        self.scrub_forgotten(event, cur)
        rows = cur.execute(
            "SELECT id, attachments FROM inbox_messages WHERE contact_id = ? AND attachments != '[]'",
            [str(event.originator_id)],
        ).fetchall()
        for row in rows:
            items = [{**item, "filename": ""} for item in json.loads(row["attachments"])]
            cur.execute(
                "UPDATE inbox_messages SET attachments = ? WHERE id = ?", [dumps(items), row["id"]]
            )

    # A conversation started in a batch is written once, with its messages' summary
    # (last message, counts) folded in: one INSERT instead of an INSERT and an UPDATE
    # per message. See `ViewProjection.write_fresh`.
    deferring_handlers = frozenset({"_started", "_message"})

    def write_fresh(self, cur: ViewCursor, row: dict[str, Any]) -> None:
        cur.execute(
            "INSERT INTO inbox_conversations (id, contact_id, contact_name, channel,"
            " thread_key, subject, status, created_at, updated_at, search, last_message,"
            " last_direction, last_message_at, unread_count, message_count)"
            " SELECT ?, ?, COALESCE(MAX(name), ''), ?, ?, ?, 'open', ?, ?,"
            " COALESCE(MAX(lower_name), '') || ?, ?, ?, ?, ?, ?"
            " FROM inbox_contacts WHERE id = ? ON CONFLICT (id) DO NOTHING",
            [
                row["id"],
                row["contact_id"],
                row["channel"],
                row["thread_key"],
                row["subject"],
                row["created_at"],
                row["updated_at"],
                " " + row["subject"].lower(),
                row["last_message"],
                row["last_direction"],
                row["last_message_at"],
                row["unread_count"],
                row["message_count"],
                row["contact_id"],
            ],
        )

    @handles(Conversation.ConversationStarted)
    def _started(self, event: Any, cur: ViewCursor) -> None:
        conversation_id = str(event.originator_id)
        self.fresh[conversation_id] = {
            "id": conversation_id,
            "contact_id": sid(event.contact_id),
            "channel": event.channel,
            "thread_key": event.personal.get("thread_key", event.thread_key),
            "subject": event.personal.get("subject", ""),
            "created_at": ts(event.timestamp),
            "updated_at": ts(event.timestamp),
            "last_message": "",
            "last_direction": None,
            "last_message_at": None,
            "unread_count": 0,
            "message_count": 0,
        }

    @handles(Conversation.ConversationAssigned)
    def _assigned(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE inbox_conversations SET assignee_id = ?, updated_at = ? WHERE id = ?",
            [sid(event.assignee_id), ts(event.timestamp), sid(event.originator_id)],
        )

    @handles(Conversation.ConversationStatusChanged)
    def _status(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE inbox_conversations SET status = ?, snoozed_until = ?, updated_at = ?"
            " WHERE id = ?",
            [event.status, ts(event.snoozed_until), ts(event.timestamp), sid(event.originator_id)],
        )

    @handles(Conversation.ConversationRead)
    def _read(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE inbox_conversations SET unread_count = 0 WHERE id = ?",
            [sid(event.originator_id)],
        )

    @handles(Message.MessageReceived, Message.MessageSendRequested, Message.MessageNoteAdded)
    def _message(self, event: Any, cur: ViewCursor) -> None:
        personal = event.personal
        text = personal.get("text", "")
        at = ts(event.timestamp)
        state = {"inbound": "received", "outbound": "requested"}.get(event.direction, "note")
        cur.execute(
            "INSERT INTO inbox_messages (id, conversation_id, contact_id, position, direction,"
            " channel, state, text, html, subject, sender_name, attachments, metadata, actor,"
            " created_at, updated_at, search, source)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            [
                sid(event.originator_id),
                sid(event.conversation_id),
                self.aliases.survivor(sid(event.contact_id)),
                self.position_of_event,
                event.direction,
                event.channel,
                state,
                text,
                personal.get("html", ""),
                personal.get("subject", ""),
                personal.get("sender_name", ""),
                dumps(_attachments(event)),
                dumps(full_metadata(event)),
                event.actor,
                at,
                at,
                text.lower()[:5000],
                dumps(getattr(event, "source", None) or {}),
            ],
        )
        conversation_id = sid(event.conversation_id)
        fresh = self.fresh.get(conversation_id or "")
        if isinstance(event, Message.MessageNoteAdded):
            if fresh is not None:
                fresh["updated_at"] = at
                return
            cur.execute(
                "UPDATE inbox_conversations SET updated_at = ? WHERE id = ?", [at, conversation_id]
            )
            return
        if fresh is not None:
            inbound = event.direction == "inbound"
            fresh.update(
                last_message=preview(text),
                last_direction=event.direction,
                last_message_at=at,
                updated_at=at,
                unread_count=fresh["unread_count"] + 1 if inbound else 0,
                message_count=fresh["message_count"] + 1,
            )
            return
        unread = "unread_count + 1" if event.direction == "inbound" else "0"
        cur.execute(
            "UPDATE inbox_conversations SET last_message = ?, last_direction = ?,"
            f" last_message_at = ?, updated_at = ?, unread_count = {unread},"
            " message_count = message_count + 1 WHERE id = ?",
            [preview(text), event.direction, at, at, conversation_id],
        )

    @handles(Message.MessageDeliveryAttempted)
    def _attempt(self, event: Any, cur: ViewCursor) -> None:
        self._set_state(cur, event, "sending", None)

    @handles(Message.MessageDelivered)
    def _delivered(self, event: Any, cur: ViewCursor) -> None:
        """The provider took it: the state is its word (`sent`, or `queued` at Twilio)."""
        cur.execute(
            "UPDATE inbox_messages SET state = ?, provider_id = ?, failure = NULL,"
            " updated_at = ? WHERE id = ?",
            [event.status, event.provider_id, ts(event.timestamp), sid(event.originator_id)],
        )

    @handles(Message.MessageDeliveryFailed)
    def _failed(self, event: Any, cur: ViewCursor) -> None:
        failure = {
            "reason": failure_reason(event),
            "problem": event.problem,
            "permanent": event.permanent,
            "retry_at": ts(event.retry_at),
        }
        self._set_state(cur, event, "failed" if event.permanent else "retrying", failure)

    @handles(Message.MessageDeliveryConfirmed)
    def _confirmed(self, event: Any, cur: ViewCursor) -> None:
        """A later report of the provider: `sent` on to the carrier, or `delivered`."""
        self._set_state(cur, event, event.status, None)

    def _set_state(
        self, cur: ViewCursor, event: Any, state: str, failure: dict[str, Any] | None
    ) -> None:
        cur.execute(
            "UPDATE inbox_messages SET state = ?, failure = ?, updated_at = ? WHERE id = ?",
            [
                state,
                None if failure is None else dumps(failure),
                ts(event.timestamp),
                sid(event.originator_id),
            ],
        )

    @handles(Message.CallUpdated, Message.CallMissed)
    def _call(self, event: Any, cur: ViewCursor) -> None:
        row = cur.execute(
            "SELECT metadata FROM inbox_messages WHERE id = ?", [sid(event.originator_id)]
        ).fetchone()
        if row is None:
            return
        metadata = json.loads(row["metadata"] or "{}")
        call = merge_call(metadata.get("call"), event)
        metadata["call"] = call
        cur.execute(
            "UPDATE inbox_messages SET metadata = ?, updated_at = ? WHERE id = ?",
            [dumps(metadata), ts(event.timestamp), sid(event.originator_id)],
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.aliases = ContactAliases("inbox_contact_aliases")
        super().__init__(*args, **kwargs)

    def before_batch(self, cur: ViewCursor) -> None:
        self.aliases.load(cur)

    @handles(Contact.ContactMerged)
    def _merged(self, event: Any, cur: ViewCursor) -> None:
        duplicate, survivor = str(event.originator_id), str(event.survivor_id)
        self.aliases.record(cur, duplicate, survivor)
        name = cur.execute("SELECT name FROM inbox_contacts WHERE id = ?", [survivor]).fetchone()
        cur.execute(
            "UPDATE inbox_conversations SET contact_id = ?, contact_name = ? WHERE contact_id = ?",
            [survivor, name["name"] if name else "", duplicate],
        )
        cur.execute(
            "UPDATE inbox_messages SET contact_id = ? WHERE contact_id = ?", [survivor, duplicate]
        )


def _attachments(event: Any) -> list[dict[str, Any]]:
    names = event.personal.get("attachment_names", [])
    items = list(getattr(event, "attachments", []) or [])
    return [
        {**item, "filename": names[i] if i < len(names) else ""} for i, item in enumerate(items)
    ]


# -- readers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConversationFacts:
    """What a rule sees of a conversation (`open_task_count` comes from the task list)."""

    id: str
    channel: str
    subject: str
    status: str
    assignee_id: str | None
    thread_key: str
    message_count: int
    unread_count: int
    last_direction: str | None


@dataclass(frozen=True)
class InboxMessageRow:
    """One message of a thread (attachments, metadata and failure decoded)."""

    id: str
    conversation_id: str
    contact_id: str
    position: int
    direction: str
    channel: str
    state: str
    text: str
    html: str
    subject: str
    sender_name: str
    attachments: list[dict[str, Any]]
    metadata: dict[str, Any]
    actor: str
    provider_id: str | None
    failure: dict[str, Any] | None
    created_at: str
    updated_at: str
    source: dict[str, Any]  # an inbound message's attribution; {} for replies and notes

    @classmethod
    def of(cls, row: dict[str, Any]) -> InboxMessageRow:
        values = {k: v for k, v in row.items() if k != "search"}
        values["attachments"] = json.loads(row["attachments"] or "[]")
        values["metadata"] = json.loads(row["metadata"] or "{}")
        values["failure"] = json.loads(row["failure"]) if row.get("failure") else None
        values["source"] = json.loads(row.get("source") or "{}")
        return cls(**values)


def conversation_facts(db: ViewReader, conversation_id: UUID | str) -> ConversationFacts | None:
    row = db.query_one(
        "SELECT id, channel, subject, status, assignee_id, thread_key, message_count,"
        " unread_count, last_direction FROM inbox_conversations WHERE id = ?",
        [str(conversation_id)],
    )
    return None if row is None else ConversationFacts(**row)


def channel_messages(
    db: ViewReader, channel: str, direction: str | None = None
) -> list[InboxMessageRow]:
    """Every message of one channel (inbound or outbound only, if given), by position in
    its thread (tests and tools; the screens read a conversation at a time)."""
    sql, params = "SELECT * FROM inbox_messages WHERE channel = ?", [channel]
    if direction is not None:
        sql, params = sql + " AND direction = ?", [channel, direction]
    rows = db.query(sql + " ORDER BY position, created_at, id", params)
    return [InboxMessageRow.of(r) for r in rows]


@dataclass(frozen=True)
class MessagePlace:
    """Which conversation and contact a message belongs to."""

    id: str
    conversation_id: str
    contact_id: str


def message_places(db: ViewReader, message_ids: Iterable[str]) -> list[MessagePlace]:
    """The place of each message the view knows (unknown ids are left out)."""
    select = "SELECT id, conversation_id, contact_id FROM inbox_messages"
    return [MessagePlace(**r) for r in rows_with_ids(db, select, message_ids)]


def conversation_contacts(db: ViewReader, conversation_ids: Iterable[str]) -> dict[str, str]:
    """The contact of each conversation the view knows, by conversation id."""
    select = "SELECT id, contact_id FROM inbox_conversations"
    return {str(r["id"]): str(r["contact_id"]) for r in rows_with_ids(db, select, conversation_ids)}


def merged_survivors(db: ViewReader, contact_ids: Iterable[str]) -> dict[str, str]:
    """The survivor of each of the contacts that was merged, by merged contact id."""
    select = "SELECT id, survivor_id FROM inbox_contact_aliases"
    return {str(r["id"]): str(r["survivor_id"]) for r in rows_with_ids(db, select, contact_ids)}


def inbox_message(db: ViewReader, message_id: UUID | str) -> InboxMessageRow | None:
    """One message of the inbox view, if the view has it yet."""
    row = db.query_one("SELECT * FROM inbox_messages WHERE id = ?", [str(message_id)])
    return None if row is None else InboxMessageRow.of(row)


def inquiry_source(db: ViewReader, message_id: UUID | str) -> dict[str, Any] | None:
    """The source of one inbound message (channel, form, utm_*, referrer, cost), as it came.

    None when the view does not know the message (yet), or it is a reply or a note: those
    are no inquiry. A deal started from a message takes this as its source.
    """
    row = db.query_one(
        "SELECT source FROM inbox_messages WHERE id = ? AND direction = 'inbound'",
        [str(message_id)],
    )
    return None if row is None else _source_of(row)


def latest_inquiry_source(db: ViewReader, conversation_id: UUID | str) -> dict[str, Any] | None:
    """The source of the newest inbound message of a conversation (None: it has none yet).

    A deal opened from a conversation is attributed to the inquiry that brought the client
    back this time, not to the contact's first touch (which the contact card keeps).
    """
    row = db.query_one(
        "SELECT source FROM inbox_messages WHERE conversation_id = ? AND direction = 'inbound'"
        " ORDER BY position DESC, created_at DESC, id DESC LIMIT 1",
        [str(conversation_id)],
    )
    return None if row is None else _source_of(row)


def _source_of(row: dict[str, Any]) -> dict[str, Any]:
    source = json.loads(row["source"] or "{}")
    return source if isinstance(source, dict) else {}
