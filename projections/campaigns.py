"""Campaigns as people follow them: each campaign's state and every recipient's.

`campaign_recipients` has one row per queued contact; its state moves from
``queued`` to ``sent`` or ``skipped`` (with the reason) through the recipient's
own events, and from ``sent`` to ``delivered`` or ``failed`` through the
events the delivery worker records on the message, joined here by message id.
Counts per state are read with one grouped query, so they always add up to
the total. `campaign_tests` keeps the trial sends apart from the audience.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from threadline.domain.model.campaign import Campaign, CampaignRecipient
from threadline.domain.model.message import Message, failure_reason
from threadline.projections.base import Scrub, ViewProjection, dumps, handles, sid, ts
from threadline.projections.queries import ContactFilter
from threadline.projections.sql import ViewCursor, ViewReader

RECIPIENT_STATES = ("queued", "sent", "delivered", "failed", "skipped")


class CampaignProjection(ViewProjection):
    name = "campaigns"
    tables = ("campaigns", "campaign_recipients", "campaign_tests")
    forgets = (
        Scrub("campaign_recipients", {"sent_to": "", "last_error": None}),
        Scrub("campaign_tests", {"failure": None}),
    )
    schema = (
        "CREATE TABLE IF NOT EXISTS campaigns ("
        " id TEXT PRIMARY KEY, name TEXT NOT NULL, template TEXT NOT NULL,"
        " template_version BIGINT, segment TEXT NOT NULL, channel TEXT NOT NULL,"
        " per_minute BIGINT, state TEXT NOT NULL, paused BIGINT NOT NULL DEFAULT 0,"
        " queued BIGINT NOT NULL DEFAULT 0, total BIGINT, test_sends BIGINT NOT NULL DEFAULT 0,"
        " finish_reason TEXT, created_by TEXT NOT NULL, created_at TEXT NOT NULL,"
        " started_at TEXT, started_position BIGINT, resolved_at TEXT, paused_at TEXT,"
        " finished_at TEXT, updated_at TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS campaigns_state ON campaigns (state, paused)",
        "CREATE TABLE IF NOT EXISTS campaign_recipients ("
        " id TEXT PRIMARY KEY, campaign_id TEXT NOT NULL, contact_id TEXT NOT NULL,"
        " channel TEXT NOT NULL, state TEXT NOT NULL, reason TEXT, message_id TEXT,"
        " sent_to TEXT, position BIGINT NOT NULL, queued_at TEXT NOT NULL, sent_at TEXT,"
        " delivered_at TEXT, failed_at TEXT, last_error TEXT, updated_at TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS campaign_recipients_work ON campaign_recipients"
        " (campaign_id, state, channel, position)",
        "CREATE INDEX IF NOT EXISTS campaign_recipients_message ON campaign_recipients"
        " (message_id)",
        "CREATE INDEX IF NOT EXISTS campaign_recipients_sent ON campaign_recipients"
        " (sent_to, sent_at)",
        "CREATE TABLE IF NOT EXISTS campaign_tests ("
        " message_id TEXT PRIMARY KEY, campaign_id TEXT NOT NULL, contact_id TEXT NOT NULL,"
        " channel TEXT NOT NULL, state TEXT NOT NULL, failure TEXT, actor TEXT NOT NULL,"
        " sent_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS campaign_tests_campaign ON campaign_tests"
        " (campaign_id, sent_at)",
    )

    # -- campaigns ----------------------------------------------------------------------------

    @handles(Campaign.CampaignCreated)
    def _created(self, event: Any, cur: ViewCursor) -> None:
        at = ts(event.timestamp)
        cur.execute(
            "INSERT INTO campaigns (id, name, template, segment, channel, per_minute, state,"
            " created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'draft', ?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            [
                sid(event.originator_id),
                event.name,
                event.template_slug,
                dumps(event.segment),
                event.channel,
                event.per_minute,
                event.actor,
                at,
                at,
            ],
        )

    @handles(Campaign.CampaignStarted)
    def _started(self, event: Any, cur: ViewCursor) -> None:
        at = ts(event.timestamp)
        cur.execute(
            "UPDATE campaigns SET state = 'resolving', template_version = ?, started_at = ?,"
            " started_position = ?, updated_at = ? WHERE id = ?",
            [event.template_version, at, self.position_of_event, at, sid(event.originator_id)],
        )

    @handles(Campaign.CampaignAudienceQueued)
    def _queued_batch(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE campaigns SET queued = ?, updated_at = ? WHERE id = ?",
            [event.queued, ts(event.timestamp), sid(event.originator_id)],
        )

    @handles(Campaign.CampaignAudienceResolved)
    def _resolved(self, event: Any, cur: ViewCursor) -> None:
        at = ts(event.timestamp)
        cur.execute(
            "UPDATE campaigns SET state = 'sending', total = ?, resolved_at = ?, updated_at = ?"
            " WHERE id = ?",
            [event.total, at, at, sid(event.originator_id)],
        )

    @handles(Campaign.CampaignPaused, Campaign.CampaignResumed)
    def _paused(self, event: Any, cur: ViewCursor) -> None:
        at = ts(event.timestamp)
        paused = isinstance(event, Campaign.CampaignPaused)
        cur.execute(
            "UPDATE campaigns SET paused = ?, paused_at = ?, updated_at = ? WHERE id = ?",
            [int(paused), at if paused else None, at, sid(event.originator_id)],
        )

    @handles(Campaign.CampaignFinished)
    def _finished(self, event: Any, cur: ViewCursor) -> None:
        at = ts(event.timestamp)
        cur.execute(
            "UPDATE campaigns SET state = 'finished', finish_reason = ?, finished_at = ?,"
            " updated_at = ? WHERE id = ?",
            [event.reason or None, at, at, sid(event.originator_id)],
        )

    @handles(Campaign.CampaignTestSent)
    def _test(self, event: Any, cur: ViewCursor) -> None:
        at = ts(event.timestamp)
        campaign = sid(event.originator_id)
        cur.execute(
            "INSERT INTO campaign_tests (message_id, campaign_id, contact_id, channel, state,"
            " actor, sent_at, updated_at) VALUES (?, ?, ?, ?, 'sent', ?, ?, ?)"
            " ON CONFLICT (message_id) DO NOTHING",
            [
                sid(event.message_id),
                campaign,
                sid(event.contact_id),
                event.channel,
                event.actor,
                at,
                at,
            ],
        )
        cur.execute(
            "UPDATE campaigns SET test_sends = test_sends + 1, updated_at = ? WHERE id = ?",
            [at, campaign],
        )

    # -- recipients ---------------------------------------------------------------------------

    @handles(CampaignRecipient.CampaignRecipientQueued)
    def _recipient(self, event: Any, cur: ViewCursor) -> None:
        at = ts(event.timestamp)
        cur.execute(
            "INSERT INTO campaign_recipients (id, campaign_id, contact_id, channel, state,"
            " position, queued_at, updated_at) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            [
                sid(event.originator_id),
                sid(event.campaign_id),
                sid(event.contact_id),
                event.channel,
                self.position_of_event,
                at,
                at,
            ],
        )

    @handles(CampaignRecipient.CampaignRecipientSent)
    def _sent(self, event: Any, cur: ViewCursor) -> None:
        at = ts(event.timestamp)
        cur.execute(
            "UPDATE campaign_recipients SET state = 'sent', message_id = ?, channel = ?,"
            " sent_to = ?, sent_at = ?, updated_at = ? WHERE id = ?",
            [
                sid(event.message_id),
                event.channel,
                sid(event.contact_id),
                at,
                at,
                sid(event.originator_id),
            ],
        )

    @handles(CampaignRecipient.CampaignRecipientSkipped)
    def _skipped(self, event: Any, cur: ViewCursor) -> None:
        at = ts(event.timestamp)
        cur.execute(
            "UPDATE campaign_recipients SET state = 'skipped', reason = ?, updated_at = ?"
            " WHERE id = ?",
            [event.reason, at, sid(event.originator_id)],
        )

    # -- delivery, joined by message id ---------------------------------------------------------

    @handles(Message.MessageDelivered)
    def _delivered(self, event: Any, cur: ViewCursor) -> None:
        at = ts(event.timestamp)
        message = sid(event.originator_id)
        cur.execute(
            "UPDATE campaign_recipients SET state = 'delivered', delivered_at = ?,"
            " last_error = NULL, updated_at = ? WHERE message_id = ?",
            [at, at, message],
        )
        cur.execute(
            "UPDATE campaign_tests SET state = 'delivered', failure = NULL, updated_at = ?"
            " WHERE message_id = ?",
            [at, message],
        )

    @handles(Message.MessageDeliveryFailed)
    def _failed(self, event: Any, cur: ViewCursor) -> None:
        """A permanent failure ends the recipient as failed; a transient one is noted."""
        at = ts(event.timestamp)
        message = sid(event.originator_id)
        if event.permanent:
            cur.execute(
                "UPDATE campaign_recipients SET state = 'failed', failed_at = ?, reason = ?,"
                " last_error = ?, updated_at = ? WHERE message_id = ?",
                [at, failure_reason(event), failure_reason(event), at, message],
            )
            cur.execute(
                "UPDATE campaign_tests SET state = 'failed', failure = ?, updated_at = ?"
                " WHERE message_id = ?",
                [failure_reason(event), at, message],
            )
        else:
            cur.execute(
                "UPDATE campaign_recipients SET last_error = ?, updated_at = ? WHERE message_id = ?",
                [failure_reason(event), at, message],
            )


# -- queries the sender and the API share -------------------------------------------------------


def recipient_counts(db: ViewReader, campaign_id: str) -> dict[str, int]:
    """Recipients per state (every state present, zero when none)."""
    counts = dict.fromkeys(RECIPIENT_STATES, 0)
    rows = db.query(
        "SELECT state, COUNT(*) AS n FROM campaign_recipients WHERE campaign_id = ? GROUP BY state",
        [campaign_id],
    )
    for row in rows:
        counts[str(row["state"])] = int(row["n"])
    return counts


def campaign_message_ids_since(db: ViewReader, contact_id: str, since: datetime) -> frozenset[str]:
    """The ids of the campaign messages a contact was sent since `since` (the outbound
    composer's daily limit counts them by id, with the rules' messages)."""
    rows = db.query(
        "SELECT message_id FROM campaign_recipients WHERE sent_to = ? AND sent_at >= ?",
        [contact_id, ts(since)],
    )
    return frozenset(str(row["message_id"]) for row in rows)


@dataclass(frozen=True)
class CampaignRow:
    """One campaign's state (the segment decoded; `total` is None until the audience is read)."""

    id: str
    name: str
    template: str
    template_version: int | None
    segment: dict[str, Any]
    channel: str
    per_minute: int | None
    state: str
    paused: bool
    queued: int
    total: int | None
    test_sends: int
    finish_reason: str | None
    created_by: str
    created_at: str
    started_at: str | None
    started_position: int | None
    resolved_at: str | None
    paused_at: str | None
    finished_at: str | None
    updated_at: str

    @classmethod
    def of(cls, row: dict[str, Any]) -> CampaignRow:
        return cls(
            **{
                **row,
                "segment": json.loads(row["segment"]),
                "paused": bool(row["paused"]),
                "queued": int(row["queued"]),
                "test_sends": int(row["test_sends"]),
            }
        )


@dataclass(frozen=True)
class ActiveCampaign:
    """A campaign the sender works on: reading its audience or sending (not paused)."""

    id: str
    state: str
    started_position: int | None


@dataclass(frozen=True)
class QueuedRecipient:
    id: str
    contact_id: str
    position: int


@dataclass(frozen=True)
class RecipientRow:
    """One recipient as the API lists it, with the reason of a skip or a failure."""

    id: str
    contact_id: str
    channel: str
    state: str
    reason: str | None
    message_id: str | None
    sent_to: str | None
    queued_at: str
    sent_at: str | None
    delivered_at: str | None
    failed_at: str | None
    last_error: str | None


def campaign(db: ViewReader, campaign_id: UUID | str) -> CampaignRow | None:
    row = db.query_one("SELECT * FROM campaigns WHERE id = ?", [str(campaign_id)])
    return None if row is None else CampaignRow.of(row)


def campaigns_page(db: ViewReader, limit: int, offset: int = 0) -> list[CampaignRow]:
    """Campaigns, newest first."""
    rows = db.query(
        "SELECT * FROM campaigns ORDER BY created_at DESC, id LIMIT ? OFFSET ?", [limit, offset]
    )
    return [CampaignRow.of(r) for r in rows]


def campaign_count(db: ViewReader) -> int:
    row = db.query_one("SELECT COUNT(*) AS n FROM campaigns")
    return int(row["n"]) if row else 0


def active_campaigns(db: ViewReader) -> list[ActiveCampaign]:
    """Campaigns reading their audience or sending (not paused), oldest start first."""
    rows = db.query(
        "SELECT id, state, started_position FROM campaigns"
        " WHERE state = 'resolving' OR (state = 'sending' AND paused = 0)"
        " ORDER BY started_at, id"
    )
    return [ActiveCampaign(**r) for r in rows]


def queued_channels(db: ViewReader, campaign_id: str) -> list[str]:
    """The channels a campaign still has queued recipients on, sorted."""
    rows = db.query(
        "SELECT DISTINCT channel FROM campaign_recipients WHERE campaign_id = ? AND state = 'queued'",
        [campaign_id],
    )
    return sorted(str(row["channel"]) for row in rows)


def queued_count(db: ViewReader, campaign_id: str) -> int:
    row = db.query_one(
        "SELECT COUNT(*) AS n FROM campaign_recipients WHERE campaign_id = ? AND state = 'queued'",
        [campaign_id],
    )
    return int(row["n"]) if row else 0


def queued_recipients(
    db: ViewReader, campaign_id: str, channel: str, after: int, limit: int
) -> list[QueuedRecipient]:
    """A page of a lane: the queued recipients of one channel after a queue position."""
    rows = db.query(
        "SELECT id, contact_id, position FROM campaign_recipients WHERE campaign_id = ?"
        " AND state = 'queued' AND channel = ? AND position > ? ORDER BY position LIMIT ?",
        [campaign_id, channel, after, limit],
    )
    return [QueuedRecipient(**r) for r in rows]


def recipients_page(
    db: ViewReader, campaign_id: str, state: str | None, limit: int, offset: int = 0
) -> tuple[list[RecipientRow], int]:
    """The recipients in queue order (of one state, if given) and how many there are."""
    where, params = "campaign_id = ?", [campaign_id]
    if state is not None:
        where += " AND state = ?"
        params.append(state)
    total = db.query_one(f"SELECT COUNT(*) AS n FROM campaign_recipients WHERE {where}", params)
    rows = db.query(
        "SELECT id, contact_id, channel, state, reason, message_id, sent_to, queued_at, sent_at,"
        f" delivered_at, failed_at, last_error FROM campaign_recipients WHERE {where}"
        " ORDER BY position LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return [RecipientRow(**r) for r in rows], int(total["n"]) if total else 0


def audience_page(
    db: ViewReader, flt: ContactFilter, created_by: str, after: str, limit: int
) -> list[str]:
    """Ids of the segment's live contacts that existed at `created_by`, after `after`, in id order.

    A campaign reads its audience in such pages, so a contact created after the
    start is not in it and a restart goes on from the recorded cursor.
    """
    where, params = flt.where()
    rows = db.query(
        "SELECT c.id FROM contacts c WHERE c.merged_into IS NULL AND c.created_at <= ?"
        f" AND c.id > ? AND ({where}) ORDER BY c.id LIMIT ?",
        [created_by, after, *params, limit],
    )
    return [str(r["id"]) for r in rows]
