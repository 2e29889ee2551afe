"""The contact card: who a contact is, how to reach them, what we know, how often we talk.

Attribute values are kept one row per value (text, number) so that any segment
filter ("staff size at least 50", "birthday before 1990") is a plain indexed
comparison on both databases.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from threadline.domain.model.contact import Contact
from threadline.domain.model.conversation import Conversation
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.message import Message
from threadline.domain.model.money import Money
from threadline.domain.model.task import Task
from threadline.projections.base import (
    FORGOTTEN_NAME,
    Scrub,
    ViewProjection,
    dumps,
    handles,
    sid,
    ts,
)
from threadline.projections.sql import ViewCursor, ViewReader

COUNT_COLUMNS = ("inbound_count", "outbound_count", "note_count", "conversation_count")


def _cost_columns(source: dict[str, Any]) -> tuple[int | None, str | None]:
    """The acquisition cost as integer minor units and its currency (views keep no floats)."""
    cost = source.get("acquisition_cost")
    if not isinstance(cost, dict):
        return None, None
    try:
        money = Money.from_state(cost, "source.acquisition_cost")
    except InvalidInput:  # the model cleans every cost; an odd one is shown, not summed
        return None, None
    return money.minor, money.currency


class ContactCardProjection(ViewProjection):
    name = "contact_cards"
    # 2: merged_into; 3: contact_opt_outs; 4: the acquisition cost as money (minor units);
    # 5: companies moved to their own view (projections/companies.py)
    version = 5
    tables = (
        "contacts",
        "contact_opt_outs",
        "contact_identities",
        "contact_attributes",
        "contact_tags",
        "contact_channels",
    )
    forgets = (
        Scrub(
            "contacts",
            {"display_name": FORGOTTEN_NAME, "attributes": "{}", "search": "", "referrer": None},
            "id = ?",
        ),
        Scrub("contact_attributes"),
        Scrub("contact_identities"),
        Scrub("contact_opt_outs", {"reason": ""}),
    )
    schema = (
        "CREATE TABLE IF NOT EXISTS contacts ("
        " id TEXT PRIMARY KEY, display_name TEXT NOT NULL, lifecycle TEXT NOT NULL,"
        " responsible_id TEXT, company_id TEXT, source TEXT NOT NULL,"
        " source_channel TEXT, utm_source TEXT, utm_medium TEXT, utm_campaign TEXT,"
        " referrer TEXT, acquisition_cost_minor BIGINT, acquisition_currency TEXT,"
        " attributes TEXT NOT NULL, tags TEXT NOT NULL,"
        " created_at TEXT NOT NULL, updated_at TEXT NOT NULL, last_contact_at TEXT,"
        " inbound_count BIGINT NOT NULL DEFAULT 0, outbound_count BIGINT NOT NULL DEFAULT 0,"
        " note_count BIGINT NOT NULL DEFAULT 0, conversation_count BIGINT NOT NULL DEFAULT 0,"
        " open_task_count BIGINT NOT NULL DEFAULT 0, search TEXT NOT NULL, merged_into TEXT)",
        "CREATE INDEX IF NOT EXISTS contacts_created ON contacts (created_at)",
        "CREATE INDEX IF NOT EXISTS contacts_lifecycle ON contacts (lifecycle)",
        # A company's people (the clients report reads them per company).
        "CREATE INDEX IF NOT EXISTS contacts_company ON contacts (company_id)",
        "CREATE TABLE IF NOT EXISTS contact_identities ("
        " kind TEXT NOT NULL, value TEXT NOT NULL, contact_id TEXT NOT NULL,"
        " PRIMARY KEY (kind, value))",
        "CREATE INDEX IF NOT EXISTS contact_identities_contact ON contact_identities (contact_id)",
        "CREATE TABLE IF NOT EXISTS contact_attributes ("
        " contact_id TEXT NOT NULL, key TEXT NOT NULL, text_value TEXT,"
        " num_value DOUBLE PRECISION)",
        "CREATE INDEX IF NOT EXISTS contact_attributes_contact ON contact_attributes (contact_id)",
        "CREATE INDEX IF NOT EXISTS contact_attributes_text ON contact_attributes (key, text_value)",
        "CREATE INDEX IF NOT EXISTS contact_attributes_num ON contact_attributes (key, num_value)",
        "CREATE TABLE IF NOT EXISTS contact_tags ("
        " contact_id TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (contact_id, tag))",
        "CREATE INDEX IF NOT EXISTS contact_tags_tag ON contact_tags (tag)",
        "CREATE TABLE IF NOT EXISTS contact_channels ("
        " contact_id TEXT NOT NULL, channel TEXT NOT NULL, last_inbound_at TEXT,"
        " last_outbound_at TEXT, message_count BIGINT NOT NULL DEFAULT 0,"
        " PRIMARY KEY (contact_id, channel))",
        # One row per channel a contact opted out of ("*": every channel); opting in deletes it.
        "CREATE TABLE IF NOT EXISTS contact_opt_outs ("
        " contact_id TEXT NOT NULL, channel TEXT NOT NULL, reason TEXT NOT NULL,"
        " actor TEXT NOT NULL, opted_out_at TEXT NOT NULL, PRIMARY KEY (contact_id, channel))",
    )

    # -- contacts -------------------------------------------------------------------------

    # A contact created in a batch is written once, at the end of the batch or before any
    # other handler, with its identities' search words and its first counters folded in:
    # one INSERT where a new sender's first message took four statements.
    deferring_handlers = frozenset({"_created", "_identity", "_conversation", "_message"})

    def write_fresh(self, cur: ViewCursor, row: dict[str, Any]) -> None:
        cur.execute(
            "INSERT INTO contacts (id, display_name, lifecycle, responsible_id, source,"
            " source_channel, utm_source, utm_medium, utm_campaign, referrer,"
            " acquisition_cost_minor, acquisition_currency, attributes, tags, created_at,"
            " updated_at, search, conversation_count, inbound_count, outbound_count, note_count,"
            " last_contact_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{}', '[]', ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            [
                *row["values"],
                row["search"],
                *(row[c] for c in _FRESH_COUNTERS),
                row["last_contact_at"],
            ],
        )

    @handles(Contact.ContactCreated)
    def _created(self, event: Any, cur: ViewCursor) -> None:
        name = event.personal.get("display_name", "")
        source = event.source
        contact_id = str(event.originator_id)
        self.fresh[contact_id] = {
            "values": [
                contact_id,
                name,
                event.lifecycle,
                sid(event.responsible_id),
                dumps(source),
                source.get("channel"),
                source.get("utm_source"),
                source.get("utm_medium"),
                source.get("utm_campaign"),
                source.get("referrer"),
                *_cost_columns(source),
                ts(event.timestamp),
                ts(event.timestamp),
            ],
            "search": name.lower(),
            **dict.fromkeys(_FRESH_COUNTERS, 0),
            "last_contact_at": None,
        }
        for identity in event.personal.get("identities", []):
            self._add_identity(cur, contact_id, identity["kind"], identity["value"])

    @handles(Contact.ContactIdentityAdded)
    def _identity(self, event: Any, cur: ViewCursor) -> None:
        value = event.personal.get("value")
        if value:  # a forgotten contact's identities no longer open
            self._add_identity(cur, sid(event.originator_id), event.kind, value)

    def _add_identity(self, cur: ViewCursor, contact_id: str | None, kind: str, value: str) -> None:
        cur.execute(
            "INSERT INTO contact_identities (kind, value, contact_id) VALUES (?, ?, ?)"
            " ON CONFLICT (kind, value) DO UPDATE SET contact_id = excluded.contact_id",
            [kind, value, contact_id],
        )
        fresh = self.fresh.get(contact_id or "")
        if fresh is not None:
            fresh["search"] += " " + value.lower()
            return
        cur.execute(
            "UPDATE contacts SET search = search || ? WHERE id = ?",
            [" " + value.lower(), contact_id],
        )

    @handles(Contact.ContactRenamed)
    def _renamed(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE contacts SET display_name = ?, updated_at = ? WHERE id = ?",
            [event.personal.get("display_name", ""), ts(event.timestamp), sid(event.originator_id)],
        )
        self._refresh_search(cur, event)

    @handles(Contact.ContactAttributesChanged)
    def _attributes(self, event: Any, cur: ViewCursor) -> None:
        contact_id = sid(event.originator_id)
        row = cur.execute("SELECT attributes FROM contacts WHERE id = ?", [contact_id]).fetchone()
        if row is None:
            return
        attributes = json.loads(row["attributes"])
        for key, value in {**event.values, **event.personal}.items():
            cur.execute(
                "DELETE FROM contact_attributes WHERE contact_id = ? AND key = ?", [contact_id, key]
            )
            if value is None:
                attributes.pop(key, None)
                continue
            attributes[key] = value
            for item in value if isinstance(value, list) else [value]:
                number = float(item) if isinstance(item, int | float) else None
                cur.execute(
                    "INSERT INTO contact_attributes (contact_id, key, text_value, num_value)"
                    " VALUES (?, ?, ?, ?)",
                    [contact_id, key, _text_form(item), number],
                )
        cur.execute(
            "UPDATE contacts SET attributes = ?, updated_at = ? WHERE id = ?",
            [dumps(attributes), ts(event.timestamp), contact_id],
        )

    @handles(Contact.ContactTagsAdded, Contact.ContactTagsRemoved)
    def _tags(self, event: Any, cur: ViewCursor) -> None:
        contact_id = sid(event.originator_id)
        if not isinstance(event, Contact.ContactTagsRemoved):
            for tag in event.tags:
                cur.execute(
                    "INSERT INTO contact_tags (contact_id, tag) VALUES (?, ?)"
                    " ON CONFLICT (contact_id, tag) DO NOTHING",
                    [contact_id, tag],
                )
        else:
            for tag in event.tags:
                cur.execute(
                    "DELETE FROM contact_tags WHERE contact_id = ? AND tag = ?", [contact_id, tag]
                )
        tags = [
            r["tag"]
            for r in cur.execute(
                "SELECT tag FROM contact_tags WHERE contact_id = ? ORDER BY tag", [contact_id]
            ).fetchall()
        ]
        cur.execute(
            "UPDATE contacts SET tags = ?, updated_at = ? WHERE id = ?",
            [dumps(tags), ts(event.timestamp), contact_id],
        )

    @handles(Contact.ContactResponsibleAssigned)
    def _responsible(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE contacts SET responsible_id = ?, updated_at = ? WHERE id = ?",
            [sid(event.responsible_id), ts(event.timestamp), sid(event.originator_id)],
        )

    @handles(Contact.ContactLifecycleChanged)
    def _lifecycle(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE contacts SET lifecycle = ?, updated_at = ? WHERE id = ?",
            [event.lifecycle, ts(event.timestamp), sid(event.originator_id)],
        )

    @handles(Contact.ContactCompanyLinked)
    def _company(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE contacts SET company_id = ?, updated_at = ? WHERE id = ?",
            [sid(event.company_id), ts(event.timestamp), sid(event.originator_id)],
        )

    @handles(Contact.ContactAbsorbed)
    def _absorbed(self, event: Any, cur: ViewCursor) -> None:
        """The survivor takes the duplicate's identities, tags, values and activity counts."""
        survivor, duplicate = sid(event.originator_id), sid(event.duplicate_id)
        for identity in event.personal.get("identities", []):
            self._add_identity(cur, survivor, identity["kind"], identity["value"])
        cur.execute(
            "UPDATE contact_identities SET contact_id = ? WHERE contact_id = ?",
            [survivor, duplicate],
        )
        if event.tags:
            self._tags(_Tags(event.originator_id, event.timestamp, event.tags), cur)
        values = {**event.values, **event.personal.get("attributes", {})}
        if values:
            self._attributes(_Values(event.originator_id, event.timestamp, values), cur)
        if event.responsible_id is not None:
            self._responsible(event, cur)
        counts = cur.execute(
            f"SELECT {', '.join(COUNT_COLUMNS)}, open_task_count, last_contact_at"
            " FROM contacts WHERE id = ?",
            [duplicate],
        ).fetchone()
        if counts is not None:
            cur.execute(
                "UPDATE contacts SET "
                + ", ".join(f"{c} = {c} + ?" for c in (*COUNT_COLUMNS, "open_task_count"))
                + ", last_contact_at = CASE WHEN last_contact_at IS NULL OR last_contact_at < ?"
                " THEN ? ELSE last_contact_at END WHERE id = ?",
                [
                    *(counts[c] for c in (*COUNT_COLUMNS, "open_task_count")),
                    counts["last_contact_at"] or "",
                    counts["last_contact_at"],
                    survivor,
                ],
            )
        if event.source:
            source = event.source
            cur.execute(
                "UPDATE contacts SET source = ?, source_channel = ?, utm_source = ?,"
                " utm_medium = ?, utm_campaign = ?, referrer = ?, acquisition_cost_minor = ?,"
                " acquisition_currency = ? WHERE id = ?",
                [
                    dumps(source),
                    source.get("channel"),
                    source.get("utm_source"),
                    source.get("utm_medium"),
                    source.get("utm_campaign"),
                    source.get("referrer"),
                    *_cost_columns(source),
                    survivor,
                ],
            )
        self._refresh_search(cur, event)

    @handles(Contact.ContactOptedOut)
    def _opted_out(self, event: Any, cur: ViewCursor) -> None:
        """Keep the first opt-out of a channel: when and why the client said stop."""
        cur.execute(
            "INSERT INTO contact_opt_outs (contact_id, channel, reason, actor, opted_out_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (contact_id, channel) DO NOTHING",
            [sid(event.originator_id), event.channel, event.reason, event.actor,
             ts(event.timestamp)],
        )  # fmt: skip

    @handles(Contact.ContactOptedIn)
    def _opted_in(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "DELETE FROM contact_opt_outs WHERE contact_id = ? AND channel = ?",
            [sid(event.originator_id), event.channel],
        )

    @handles(Contact.ContactMerged)
    def _merged(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE contacts SET merged_into = ?, updated_at = ? WHERE id = ?",
            [sid(event.survivor_id), ts(event.timestamp), sid(event.originator_id)],
        )

    def _refresh_search(self, cur: ViewCursor, event: Any) -> None:
        contact_id = sid(event.originator_id)
        row = cur.execute("SELECT display_name FROM contacts WHERE id = ?", [contact_id]).fetchone()
        if row is None:
            return
        values = [
            r["value"]
            for r in cur.execute(
                "SELECT value FROM contact_identities WHERE contact_id = ?", [contact_id]
            ).fetchall()
        ]
        search = " ".join([row["display_name"], *values]).lower()
        cur.execute("UPDATE contacts SET search = ? WHERE id = ?", [search, contact_id])

    # -- activity counters ------------------------------------------------------------------

    @handles(Conversation.ConversationStarted)
    def _conversation(self, event: Any, cur: ViewCursor) -> None:
        fresh = self.fresh.get(str(event.contact_id))
        if fresh is not None:
            fresh["conversation_count"] += 1
            return
        cur.execute(
            "UPDATE contacts SET conversation_count = conversation_count + 1 WHERE id = ?",
            [sid(event.contact_id)],
        )

    @handles(Message.MessageReceived, Message.MessageSendRequested, Message.MessageNoteAdded)
    def _message(self, event: Any, cur: ViewCursor) -> None:
        contact_id = sid(event.contact_id)
        at = ts(event.timestamp)
        fresh = self.fresh.get(contact_id or "")
        if isinstance(event, Message.MessageNoteAdded):
            if fresh is not None:
                fresh["note_count"] += 1
                return
            cur.execute(
                "UPDATE contacts SET note_count = note_count + 1 WHERE id = ?", [contact_id]
            )
            return
        inbound = isinstance(event, Message.MessageReceived)
        column = "inbound_count" if inbound else "outbound_count"
        if fresh is not None:
            fresh[column] += 1
            fresh["last_contact_at"] = at
        else:
            cur.execute(
                f"UPDATE contacts SET {column} = {column} + 1, last_contact_at = ? WHERE id = ?",
                [at, contact_id],
            )
        last_column = "last_inbound_at" if inbound else "last_outbound_at"
        cur.execute(
            f"INSERT INTO contact_channels (contact_id, channel, {last_column}, message_count)"
            " VALUES (?, ?, ?, 1) ON CONFLICT (contact_id, channel) DO UPDATE SET"
            f" {last_column} = excluded.{last_column},"
            " message_count = contact_channels.message_count + 1",
            [contact_id, event.channel, at],
        )

    @handles(Task.TaskCreated, Task.TaskCompleted, Task.TaskCancelled)
    def _task(self, event: Any, cur: ViewCursor) -> None:
        if event.contact_id is None:
            return
        delta = 1 if isinstance(event, Task.TaskCreated) else -1
        cur.execute(
            "UPDATE contacts SET open_task_count = open_task_count + ? WHERE id = ?",
            [delta, sid(event.contact_id)],
        )


def opt_outs_of(db: ViewReader, contact_id: str) -> list[dict[str, Any]]:
    """The channels a contact opted out of, oldest first: channel, reason, actor, opted_out_at."""
    return db.query(
        "SELECT channel, reason, actor, opted_out_at FROM contact_opt_outs"
        " WHERE contact_id = ? ORDER BY opted_out_at, channel",
        [contact_id],
    )


class _Tags:
    """A tags-added event's shape, for applying a merge's tags with the same handler."""

    def __init__(self, originator_id: Any, timestamp: Any, tags: list[str]) -> None:
        self.originator_id, self.timestamp, self.tags = originator_id, timestamp, tags


class _Values:
    def __init__(self, originator_id: Any, timestamp: Any, values: dict[str, Any]) -> None:
        self.originator_id, self.timestamp = originator_id, timestamp
        self.values: dict[str, Any] = values
        self.personal: dict[str, Any] = {}


def _text_form(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# The counters a contact created in the batch collects before its row is written, in the
# order of the INSERT's columns (last_contact_at follows them).
_FRESH_COUNTERS = ("conversation_count", "inbound_count", "outbound_count", "note_count")


# -- readers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelActivity:
    """When a contact last wrote on a channel."""

    contact_id: str
    channel: str
    last_inbound_at: str


def contact_exists(db: ViewReader, contact_id: UUID | str) -> bool:
    return db.query_one("SELECT id FROM contacts WHERE id = ?", [str(contact_id)]) is not None


def acquisition_cost(db: ViewReader, contact_id: UUID | str) -> Money | None:
    """What acquiring the contact (its first touch) cost, from the minor units the view keeps;
    None when no cost was recorded. Costs per lead and per campaign sum these, by currency."""
    row = db.query_one(
        "SELECT acquisition_cost_minor, acquisition_currency FROM contacts WHERE id = ?",
        [str(contact_id)],
    )
    if row is None or row["acquisition_cost_minor"] is None or not row["acquisition_currency"]:
        return None
    return Money.from_minor(int(row["acquisition_cost_minor"]), str(row["acquisition_currency"]))


def contacts_of_responsible(db: ViewReader, user_id: UUID | str) -> list[str]:
    """The ids of the clients a user is responsible for (merged duplicates left out), in id
    order: what a bulk hand-over hands on."""
    rows = db.query(
        "SELECT id FROM contacts WHERE responsible_id = ? AND merged_into IS NULL ORDER BY id",
        [str(user_id)],
    )
    return [str(r["id"]) for r in rows]


def contact_of_identity(db: ViewReader, kind: str, value: str) -> str | None:
    """The contact an identity (kind, normalised value) belongs to."""
    row = db.query_one(
        "SELECT contact_id FROM contact_identities WHERE kind = ? AND value = ?", [kind, value]
    )
    return None if row is None else str(row["contact_id"])


def contacts_with_attribute_ending(db: ViewReader, key: str, ending: str) -> list[str]:
    """Contacts whose text attribute `key` ends with `ending` (a birthday's "-MM-DD")."""
    rows = db.query(
        "SELECT DISTINCT contact_id FROM contact_attributes WHERE key = ? AND text_value LIKE ?",
        [key, f"%{ending}"],
    )
    return [str(r["contact_id"]) for r in rows]


def inbound_channels(db: ViewReader, contact_ids: Sequence[str]) -> list[ChannelActivity]:
    """The channels each of the contacts has written on, with the time of the last message."""
    if not contact_ids:
        return []
    marks = ",".join("?" for _ in contact_ids)
    rows = db.query(
        "SELECT contact_id, channel, last_inbound_at FROM contact_channels"
        f" WHERE contact_id IN ({marks}) AND last_inbound_at IS NOT NULL",
        list(contact_ids),
    )
    return [ChannelActivity(**r) for r in rows]


def identity_kinds(db: ViewReader, contact_ids: Sequence[str]) -> dict[str, set[str]]:
    """The kinds of identity (email, phone, telegram, ...) each of the contacts has."""
    kinds: dict[str, set[str]] = {}
    if not contact_ids:
        return kinds
    marks = ",".join("?" for _ in contact_ids)
    for row in db.query(
        f"SELECT contact_id, kind FROM contact_identities WHERE contact_id IN ({marks})",
        list(contact_ids),
    ):
        kinds.setdefault(str(row["contact_id"]), set()).add(str(row["kind"]))
    return kinds


def display_names(db: ViewReader, contact_ids: Sequence[str]) -> dict[str, str]:
    """The display name of each of the contacts the view knows."""
    if not contact_ids:
        return {}
    marks = ",".join("?" for _ in contact_ids)
    rows = db.query(
        f"SELECT id, display_name FROM contacts WHERE id IN ({marks})", list(contact_ids)
    )
    return {str(r["id"]): str(r["display_name"]) for r in rows}


@dataclass(frozen=True)
class Identity:
    """One way to reach a contact: an e-mail address, a phone number, a Telegram id..."""

    kind: str
    value: str


def identities_of(db: ViewReader, contact_ids: Sequence[str]) -> dict[str, list[Identity]]:
    """The identities of each of the contacts (one query for a page), by kind and value."""
    found: dict[str, list[Identity]] = {cid: [] for cid in contact_ids}
    if not contact_ids:
        return found
    marks = ",".join("?" for _ in contact_ids)
    rows = db.query(
        "SELECT contact_id, kind, value FROM contact_identities"
        f" WHERE contact_id IN ({marks}) ORDER BY kind, value",
        list(contact_ids),
    )
    for row in rows:
        found[str(row["contact_id"])].append(Identity(str(row["kind"]), str(row["value"])))
    return found
