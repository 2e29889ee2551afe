"""The contact timeline: everything that happened with one contact, in log order.

Messages, notes, conversation changes, tasks, contact changes and a deal's creation,
stage moves, win and loss each become a row (on the deal's contact's timeline). The row
keeps the actor and correlation id, so the timeline doubles as an audit trail.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from threadline.domain.model.contact import Contact
from threadline.domain.model.conversation import Conversation
from threadline.domain.model.deal import Deal
from threadline.domain.model.message import Message
from threadline.domain.model.task import Task
from threadline.projections.base import (
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
from threadline.projections.sql import ViewCursor, ViewReader


class TimelineProjection(ViewProjection):
    name = "timeline"
    version = 3  # 2: opt-out and opt-in rows; 3: deal rows (consent rows: no new shape)
    tables = ("timeline", "timeline_conversations", "timeline_aliases")
    forgets = (Scrub("timeline", {"title": "", "body": "", "data": "{}"}),)
    schema = (
        "CREATE TABLE IF NOT EXISTS timeline ("
        " id TEXT PRIMARY KEY, contact_id TEXT NOT NULL, occurred_at TEXT NOT NULL,"
        " seq BIGINT NOT NULL, kind TEXT NOT NULL, ref_id TEXT NOT NULL,"
        " conversation_id TEXT, channel TEXT, direction TEXT, state TEXT,"
        " title TEXT NOT NULL, body TEXT NOT NULL, data TEXT NOT NULL,"
        " actor TEXT NOT NULL, correlation_id TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS timeline_contact ON timeline (contact_id, seq)",
        "CREATE INDEX IF NOT EXISTS timeline_ref ON timeline (ref_id)",
        "CREATE TABLE IF NOT EXISTS timeline_conversations ("
        " id TEXT PRIMARY KEY, contact_id TEXT NOT NULL, channel TEXT NOT NULL)",
        # Contacts merged into another: their later rows land on the survivor's timeline.
        "CREATE TABLE IF NOT EXISTS timeline_aliases ("
        " id TEXT PRIMARY KEY, survivor_id TEXT NOT NULL)",
    )

    def _row(
        self,
        cur: ViewCursor,
        event: Any,
        contact_id: Any,
        kind: str,
        *,
        title: str = "",
        body: str = "",
        conversation_id: Any = None,
        channel: str | None = None,
        direction: str | None = None,
        state: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        cur.execute(
            "INSERT INTO timeline (id, contact_id, occurred_at, seq, kind, ref_id,"
            " conversation_id, channel, direction, state, title, body, data, actor,"
            " correlation_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            [
                f"{event.originator_id}:{event.originator_version}",
                self.aliases.survivor(sid(contact_id)),
                ts(event.timestamp),
                self.position_of_event,
                kind,
                sid(event.originator_id),
                sid(conversation_id),
                channel,
                direction,
                state,
                title,
                body,
                dumps(data or {}),
                getattr(event, "actor", ""),
                getattr(event, "correlation_id", ""),
            ],
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.aliases = ContactAliases("timeline_aliases")
        super().__init__(*args, **kwargs)

    def before_batch(self, cur: ViewCursor) -> None:
        self.aliases.load(cur)

    def _conversation(self, cur: ViewCursor, conversation_id: Any) -> dict[str, Any] | None:
        return cur.execute(
            "SELECT contact_id, channel FROM timeline_conversations WHERE id = ?",
            [sid(conversation_id)],
        ).fetchone()

    # -- contact ------------------------------------------------------------------------------

    @handles(Contact.ContactCreated)
    def _contact_created(self, event: Any, cur: ViewCursor) -> None:
        self._row(
            cur,
            event,
            event.originator_id,
            "contact.created",
            title=event.personal.get("display_name", ""),
            channel=event.source.get("channel"),
            data={
                "lifecycle": event.lifecycle,
                "source": event.source,
                "identities": event.personal.get("identities", []),
            },
        )

    @handles(Contact.ContactIdentityAdded)
    def _identity(self, event: Any, cur: ViewCursor) -> None:
        self._row(
            cur, event, event.originator_id, "contact.identity_added",
            title=event.personal.get("value", ""), data={"kind": event.kind},
        )  # fmt: skip

    @handles(Contact.ContactTagsAdded, Contact.ContactTagsRemoved)
    def _tags(self, event: Any, cur: ViewCursor) -> None:
        added = isinstance(event, Contact.ContactTagsAdded)
        self._row(
            cur, event, event.originator_id,
            "contact.tags_added" if added else "contact.tags_removed",
            title=", ".join(event.tags), data={"tags": event.tags},
        )  # fmt: skip

    @handles(Contact.ContactAttributesChanged)
    def _attributes(self, event: Any, cur: ViewCursor) -> None:
        changed = {**event.values, **event.personal}
        self._row(
            cur, event, event.originator_id, "contact.attributes_changed",
            title=", ".join(sorted(changed)), data={"attributes": changed},
        )  # fmt: skip

    @handles(Contact.ContactLifecycleChanged)
    def _lifecycle(self, event: Any, cur: ViewCursor) -> None:
        self._row(
            cur, event, event.originator_id, "contact.lifecycle_changed", title=event.lifecycle
        )

    @handles(Contact.ContactOptedOut, Contact.ContactOptedIn)
    def _consent(self, event: Any, cur: ViewCursor) -> None:
        """Opt-outs (a STOP, an unsubscribe link) and a person's opt-in, with the reason."""
        kind = (
            "contact.opted_out"
            if isinstance(event, Contact.ContactOptedOut)
            else "contact.opted_in"
        )
        self._row(
            cur, event, event.originator_id, kind, title=event.channel, body=event.reason,
            data={"channel": event.channel, "reason": event.reason},
        )  # fmt: skip

    @handles(Contact.ContactConsentGiven, Contact.ContactConsentWithdrawn)
    def _consent_record(self, event: Any, cur: ViewCursor) -> None:
        """A consent to a purpose given (in which version of the text, how) or withdrawn."""
        if isinstance(event, Contact.ContactConsentGiven):
            kind = "consent.given"
            data = {"purpose": event.purpose, "text_version": event.text_version, "via": event.via}
        else:
            kind, data = "consent.withdrawn", {"purpose": event.purpose, "via": event.via}
        self._row(cur, event, event.originator_id, kind, title=event.purpose, data=data)

    @handles(Contact.ContactMerged)
    def _merged(self, event: Any, cur: ViewCursor) -> None:
        """The duplicate's whole history moves to the survivor's timeline, and stays there."""
        duplicate, survivor = str(event.originator_id), str(event.survivor_id)
        self.aliases.record(cur, duplicate, survivor)
        cur.execute(
            "UPDATE timeline SET contact_id = ? WHERE contact_id = ?", [survivor, duplicate]
        )
        self._row(
            cur, event, survivor, "contact.merged", title="",
            data={"merged_contact_id": duplicate},
        )  # fmt: skip

    @handles(Contact.ContactAbsorbed)
    def _absorbed(self, event: Any, cur: ViewCursor) -> None:
        self._row(
            cur, event, event.originator_id, "contact.absorbed",
            data={"duplicate_id": sid(event.duplicate_id), "tags": event.tags,
                  "identities": event.personal.get("identities", [])},
        )  # fmt: skip

    @handles(Contact.ContactResponsibleAssigned)
    def _responsible(self, event: Any, cur: ViewCursor) -> None:
        self._row(
            cur, event, event.originator_id, "contact.responsible_assigned",
            data={"responsible_id": sid(event.responsible_id)},
        )  # fmt: skip

    # -- conversations --------------------------------------------------------------------

    @handles(Conversation.ConversationStarted)
    def _started(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "INSERT INTO timeline_conversations (id, contact_id, channel) VALUES (?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            [sid(event.originator_id), sid(event.contact_id), event.channel],
        )
        self._row(
            cur, event, event.contact_id, "conversation.started",
            title=event.personal.get("subject", ""), conversation_id=event.originator_id,
            channel=event.channel,
        )  # fmt: skip

    @handles(Conversation.ConversationStatusChanged, Conversation.ConversationAssigned)
    def _conversation_changed(self, event: Any, cur: ViewCursor) -> None:
        conversation = self._conversation(cur, event.originator_id)
        if conversation is None:
            return
        if isinstance(event, Conversation.ConversationStatusChanged):
            kind, title, data = "conversation.status_changed", event.status, {}
        else:
            kind, title = "conversation.assigned", ""
            data = {"assignee_id": sid(event.assignee_id)}
        self._row(
            cur, event, conversation["contact_id"], kind, title=title, data=data,
            conversation_id=event.originator_id, channel=conversation["channel"],
        )  # fmt: skip

    # -- messages -------------------------------------------------------------------------

    @handles(Message.MessageReceived, Message.MessageSendRequested, Message.MessageNoteAdded)
    def _message(self, event: Any, cur: ViewCursor) -> None:
        kind = {
            "inbound": "message.received",
            "outbound": "message.sent",
        }.get(event.direction, "note.added")
        state = {"inbound": "received", "outbound": "requested"}.get(event.direction, "note")
        text = event.personal.get("text", "")
        metadata = getattr(event, "metadata", None) or {}
        data: dict[str, Any] = {"attachments": len(getattr(event, "attachments", []) or [])}
        if metadata.get("kind") == "call":
            kind = "call.received"
            data["call"] = dict(metadata.get("call") or {})
        if metadata.get("auto_reply") or metadata.get("bounce"):
            data["automatic"] = True
        self._row(
            cur, event, event.contact_id, kind,
            title=event.personal.get("subject", "") or preview(text, 80), body=text,
            conversation_id=event.conversation_id, channel=event.channel,
            direction=event.direction, state=state, data=data,
        )  # fmt: skip

    @handles(
        Message.MessageDeliveryAttempted,
        Message.MessageDelivered,
        Message.MessageDeliveryFailed,
        Message.MessageDeliveryConfirmed,
    )
    def _delivery(self, event: Any, cur: ViewCursor) -> None:
        if isinstance(event, Message.MessageDeliveryAttempted):
            state = "sending"
        elif isinstance(event, Message.MessageDeliveryFailed):
            state = "failed" if event.permanent else "retrying"
        else:  # the provider's word: queued or sent when it took it, sent or delivered later
            state = event.status
        cur.execute(
            "UPDATE timeline SET state = ? WHERE ref_id = ? AND kind = 'message.sent'",
            [state, sid(event.originator_id)],
        )

    @handles(Message.CallUpdated, Message.CallMissed)
    def _call(self, event: Any, cur: ViewCursor) -> None:
        """A call's row carries direction, duration and outcome; a missed call gets its own row."""
        row = cur.execute(
            "SELECT id, contact_id, conversation_id, channel, data FROM timeline"
            " WHERE ref_id = ? AND kind IN ('call.received', 'message.received')",
            [sid(event.originator_id)],
        ).fetchone()
        if row is None:
            return
        data = json.loads(row["data"] or "{}")
        call = merge_call(data.get("call"), event)
        data["call"] = call
        cur.execute(
            "UPDATE timeline SET data = ?, state = ? WHERE id = ?",
            [dumps(data), call["outcome"], row["id"]],
        )
        if isinstance(event, Message.CallMissed):
            self._row(
                cur, event, row["contact_id"], "call.missed", title=event.status,
                conversation_id=row["conversation_id"], channel=row["channel"],
                direction=call.get("direction", "inbound"), state="missed", data={"call": call},
            )  # fmt: skip

    # -- tasks ----------------------------------------------------------------------------

    @handles(Task.TaskCreated)
    def _task_created(self, event: Any, cur: ViewCursor) -> None:
        if event.contact_id is None:
            return
        self._row(
            cur, event, event.contact_id, "task.created",
            title=event.personal.get("title", ""), body=event.personal.get("notes", ""),
            conversation_id=event.conversation_id, state="open",
            data={"type": event.type, "due_at": ts(event.due_at),
                  "assignee_id": sid(event.assignee_id)},
        )  # fmt: skip

    @handles(Task.TaskCompleted, Task.TaskCancelled, Task.TaskRescheduled, Task.TaskReassigned)
    def _task_changed(self, event: Any, cur: ViewCursor) -> None:
        if event.contact_id is None:
            return
        created = cur.execute(
            "SELECT title FROM timeline WHERE ref_id = ? AND kind = 'task.created'",
            [sid(event.originator_id)],
        ).fetchone()
        title = created["title"] if created else ""
        data: dict[str, str | None]
        if isinstance(event, Task.TaskCompleted):
            kind, data = "task.completed", {}
        elif isinstance(event, Task.TaskCancelled):
            kind, data = "task.cancelled", {}
        elif isinstance(event, Task.TaskRescheduled):
            kind, data = "task.rescheduled", {"due_at": ts(event.due_at)}
        else:
            kind, data = "task.reassigned", {"assignee_id": sid(event.assignee_id)}
        self._row(cur, event, event.contact_id, kind, title=title, data=data)
        if kind in ("task.completed", "task.cancelled"):
            cur.execute(
                "UPDATE timeline SET state = ? WHERE ref_id = ? AND kind = 'task.created'",
                ["done" if kind == "task.completed" else "cancelled", sid(event.originator_id)],
            )

    # -- deals ----------------------------------------------------------------------------

    @handles(Deal.DealCreated)
    def _deal_created(self, event: Any, cur: ViewCursor) -> None:
        if event.contact_id is None:  # a company's deal without a contact: no timeline
            return
        self._row(
            cur, event, event.contact_id, "deal.created",
            title=str(event.personal.get("title", "")), state="open",
            data={"pipeline_id": sid(event.pipeline_id), "stage_id": event.stage_id,
                  "amount": event.amount, "probability": event.probability},
        )  # fmt: skip

    @handles(Deal.DealStageChanged, Deal.DealWon, Deal.DealLost)
    def _deal_moved(self, event: Any, cur: ViewCursor) -> None:
        """A move, a win or a loss, titled with the deal's title as its creation row has it."""
        if event.contact_id is None:
            return
        created = cur.execute(
            "SELECT title FROM timeline WHERE ref_id = ? AND kind = 'deal.created'",
            [sid(event.originator_id)],
        ).fetchone()
        data: dict[str, Any] = {
            "pipeline_id": sid(event.pipeline_id),
            "from_stage_id": event.from_stage_id,
            "to_stage_id": event.to_stage_id,
            "amount": event.amount,
        }
        if isinstance(event, Deal.DealStageChanged):
            kind, state = "deal.stage_changed", "open"
            data["probability"] = event.probability
        elif isinstance(event, Deal.DealWon):
            kind, state = "deal.won", "won"
        else:
            kind, state = "deal.lost", "lost"
            data["reason"] = event.reason
        title = created["title"] if created else ""
        body = event.reason if isinstance(event, Deal.DealLost) else ""
        self._row(
            cur, event, event.contact_id, kind, title=title, body=body, state=state, data=data
        )


# -- readers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineRow:
    """One row of a contact's timeline."""

    id: str
    contact_id: str
    occurred_at: str
    seq: int
    kind: str
    ref_id: str
    conversation_id: str | None
    channel: str | None
    direction: str | None
    state: str | None
    title: str
    body: str
    data: dict[str, Any]
    actor: str
    correlation_id: str


COMMUNICATION_KINDS = (
    "conversation.started",
    "message.received",
    "message.sent",
    "note.added",
    "call.received",
    "call.missed",
)
"""The timeline rows that are communication with the client (a deal's history shows these)."""


def communication_between(
    db: ViewReader,
    contact_ids: Sequence[str],
    start: str,
    end: str | None,
    conversation_ids: Sequence[str] = (),
    limit: int = 1000,
) -> list[TimelineRow]:
    """The communication rows of `contact_ids` from `start` until `end` (None: until now),
    plus every such row of `conversation_ids` whenever it happened, in log order."""
    kinds = ",".join("?" for _ in COMMUNICATION_KINDS)
    clauses: list[str] = []
    params: list[Any] = []
    if contact_ids:
        window = "occurred_at >= ?" + ("" if end is None else " AND occurred_at <= ?")
        marks = ",".join("?" for _ in contact_ids)
        clauses.append(f"(contact_id IN ({marks}) AND {window})")
        params.extend([*contact_ids, start, *([] if end is None else [end])])
    if conversation_ids:
        marks = ",".join("?" for _ in conversation_ids)
        clauses.append(f"conversation_id IN ({marks})")
        params.extend(conversation_ids)
    if not clauses:
        return []
    rows = db.query(
        f"SELECT * FROM timeline WHERE kind IN ({kinds}) AND ({' OR '.join(clauses)})"
        " ORDER BY seq, id LIMIT ?",
        [*COMMUNICATION_KINDS, *params, limit],
    )
    return [TimelineRow(**{**r, "data": json.loads(r["data"] or "{}")}) for r in rows]
