"""The deal views: deals with their money and lines, and every stage move.

Money is kept in integer minor units with its currency beside it, so SQL sums are exact and
never mix currencies. `deal_stage_history` has one row per stay in a stage (entered by the
creation, a move, a win or a loss); the next move closes the row (`left_at`), so the time in
a stage, the current stay included, is `(left_at or now) - entered_at`, exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from threadline.domain.model.contact import Contact
from threadline.domain.model.deal import Deal, DealLine, deal_figures, lines_from_state
from threadline.domain.model.money import Money
from threadline.projections.base import (
    ContactAliases,
    Scrub,
    ViewProjection,
    dumps,
    handles,
    parse_ts,
    sid,
    ts,
)
from threadline.projections.pipelines import pipeline, pipelines, stage
from threadline.projections.sql import Conditions, ViewCursor, ViewReader, searchable
from threadline.projections.tasks import open_tasks_of_deal

DEAL_COLUMNS = (
    "id, pipeline_id, stage_id, status, title, contact_id, company_id, manager_id, currency,"
    " net_minor, vat_minor, total_minor, cost_minor, profit_minor, probability,"
    " probability_manual, expected_close, source_channel, source_utm_source,"
    " source_utm_campaign, source_form, source, lost_reason, stage_entered_at, created_at,"
    " updated_at, closed_at, created_by"
)


class DealProjection(ViewProjection):
    name = "deals"
    version = 5  # 2: pipelines in own view; 4: a stay keeps how it ended; 5: lines_short
    tables = (
        "deals",
        "deal_lines",
        "deal_stage_history",
        "deal_log",
        "deal_conversations",
        "deal_aliases",
    )
    forgets = (
        Scrub("deals", {"title": ""}),
        Scrub("deal_log", {"data": "{}"}, "deal_id IN (SELECT id FROM deals WHERE contact_id = ?)"),
    )
    schema = (
        "CREATE TABLE IF NOT EXISTS deals ("
        " id TEXT PRIMARY KEY, pipeline_id TEXT NOT NULL, stage_id TEXT NOT NULL,"
        " status TEXT NOT NULL, title TEXT NOT NULL, contact_id TEXT, company_id TEXT,"
        " manager_id TEXT, currency TEXT NOT NULL, net_minor BIGINT NOT NULL,"
        " vat_minor BIGINT NOT NULL, total_minor BIGINT NOT NULL, cost_minor BIGINT NOT NULL,"
        " profit_minor BIGINT NOT NULL, probability BIGINT NOT NULL,"
        " probability_manual BIGINT NOT NULL, expected_close TEXT, source_channel TEXT,"
        " source_utm_source TEXT, source_utm_campaign TEXT, source_form TEXT,"
        " source TEXT NOT NULL, lost_reason TEXT, stage_entered_at TEXT NOT NULL,"
        " created_at TEXT NOT NULL, updated_at TEXT NOT NULL, closed_at TEXT,"
        " created_by TEXT NOT NULL,"
        # 1 when the deal's own net or profit is not the sum of its lines' minor units: the
        # turnover and ABC reports add the rest as a line of its own. (Today a deal's figures
        # are its lines' sums, so it stays 0 unless pricing ever rounds per deal.)
        " lines_short BIGINT NOT NULL DEFAULT 0)",
        # The board: a stage's open deals, newest change first.
        # A stage's status is implied by its meaning, so the board's cards need no status key.
        "CREATE INDEX IF NOT EXISTS deals_board ON deals (pipeline_id, stage_id, updated_at)",
        # The board's count and sum per stage and currency, read from the index alone.
        "CREATE INDEX IF NOT EXISTS deals_board_sums ON deals"
        " (pipeline_id, stage_id, currency, total_minor)",
        "CREATE INDEX IF NOT EXISTS deals_status ON deals (status, updated_at)",
        # A pipeline's open (won, lost) deals: `GET /api/deals?pipeline_id=&status=` counts them
        # from this index alone (2 ms at 100,000 deals, against 33 ms through deals_status).
        "CREATE INDEX IF NOT EXISTS deals_pipeline_status ON deals"
        " (pipeline_id, status, updated_at)",
        "CREATE INDEX IF NOT EXISTS deals_manager ON deals (manager_id, status)",
        "CREATE INDEX IF NOT EXISTS deals_contact ON deals (contact_id)",
        "CREATE INDEX IF NOT EXISTS deals_company ON deals (company_id)",
        "CREATE INDEX IF NOT EXISTS deals_created ON deals (created_at)",
        # The reports' won (lost) deals of a period: revenue is counted when a deal closes.
        "CREATE INDEX IF NOT EXISTS deals_closed ON deals (status, closed_at)",
        # Whether a period has won deals whose lines leave some of their figures out (few).
        "CREATE INDEX IF NOT EXISTS deals_closed_short ON deals (status, closed_at)"
        " WHERE lines_short = 1",
        # The forecast's deals expected to close in a period; a client's won (open) deals.
        "CREATE INDEX IF NOT EXISTS deals_expected_close ON deals (expected_close)",
        "CREATE INDEX IF NOT EXISTS deals_contact_status ON deals (contact_id, status)",
        # The clients report's open deals expected to close in a period.
        "CREATE INDEX IF NOT EXISTS deals_status_expected ON deals (status, expected_close)",
        # The sources report's won deals of the period's leads, read from the index alone.
        "CREATE INDEX IF NOT EXISTS deals_contact_won ON deals"
        " (contact_id, status, closed_at, currency, net_minor, profit_minor)",
        "CREATE TABLE IF NOT EXISTS deal_lines ("
        " deal_id TEXT NOT NULL, line_id TEXT NOT NULL, position BIGINT NOT NULL,"
        " product_id TEXT, name TEXT NOT NULL, unit TEXT NOT NULL, quantity TEXT NOT NULL,"
        " price TEXT NOT NULL, cost TEXT NOT NULL, discount TEXT NOT NULL, vat TEXT NOT NULL,"
        " vat_rate TEXT, vat_included BIGINT NOT NULL, currency TEXT NOT NULL,"
        " net_minor BIGINT NOT NULL, vat_minor BIGINT NOT NULL, total_minor BIGINT NOT NULL,"
        " cost_minor BIGINT NOT NULL, profit_minor BIGINT NOT NULL,"
        " PRIMARY KEY (deal_id, line_id))",
        "CREATE INDEX IF NOT EXISTS deal_lines_product ON deal_lines (product_id)",
        "CREATE TABLE IF NOT EXISTS deal_stage_history ("
        " id TEXT PRIMARY KEY, deal_id TEXT NOT NULL, pipeline_id TEXT NOT NULL,"
        " kind TEXT NOT NULL, from_stage_id TEXT, stage_id TEXT NOT NULL,"
        " entered_at TEXT NOT NULL, left_at TEXT, actor TEXT NOT NULL,"
        " manager_id TEXT, contact_id TEXT, currency TEXT NOT NULL,"
        " amount_minor BIGINT NOT NULL, probability BIGINT NOT NULL, reason TEXT,"
        " seq BIGINT NOT NULL, next_kind TEXT, next_stage_id TEXT, next_pipeline_id TEXT,"
        " stay_seconds DOUBLE PRECISION, deal_status TEXT NOT NULL DEFAULT 'open')",
        "CREATE INDEX IF NOT EXISTS deal_stage_history_deal ON deal_stage_history (deal_id, seq)",
        "CREATE INDEX IF NOT EXISTS deal_stage_history_time ON deal_stage_history (entered_at)",
        "CREATE INDEX IF NOT EXISTS deal_stage_history_stage ON deal_stage_history"
        " (stage_id, entered_at)",
        "CREATE TABLE IF NOT EXISTS deal_log ("
        " id TEXT PRIMARY KEY, deal_id TEXT NOT NULL, seq BIGINT NOT NULL,"
        " occurred_at TEXT NOT NULL, kind TEXT NOT NULL, actor TEXT NOT NULL,"
        " data TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS deal_log_deal ON deal_log (deal_id, seq)",
        "CREATE TABLE IF NOT EXISTS deal_conversations ("
        " deal_id TEXT NOT NULL, conversation_id TEXT NOT NULL, linked_at TEXT NOT NULL,"
        " actor TEXT NOT NULL, PRIMARY KEY (deal_id, conversation_id))",
        "CREATE TABLE IF NOT EXISTS deal_aliases (id TEXT PRIMARY KEY, survivor_id TEXT NOT NULL)",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.aliases = ContactAliases("deal_aliases")
        super().__init__(*args, **kwargs)

    def before_batch(self, cur: ViewCursor) -> None:
        self.aliases.load(cur)

    # -- deals ---------------------------------------------------------------------------------

    def _log(self, cur: ViewCursor, event: Any, kind: str, data: dict[str, Any]) -> None:
        cur.execute(
            "INSERT INTO deal_log (id, deal_id, seq, occurred_at, kind, actor, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            [
                f"{event.originator_id}:{event.originator_version}",
                sid(event.originator_id),
                self.position_of_event,
                ts(event.timestamp),
                kind,
                event.actor,
                dumps(data),
            ],
        )

    def _deal(self, cur: ViewCursor, deal_id: str) -> dict[str, Any] | None:
        return cur.execute(
            "SELECT currency, total_minor, manager_id, contact_id, stage_id, pipeline_id,"
            " probability FROM deals WHERE id = ?",
            [deal_id],
        ).fetchone()

    def _write_lines(
        self, cur: ViewCursor, deal_id: str, lines: list[DealLine], currency: str
    ) -> dict[str, int]:
        """Replace the deal's lines; returns the deal's totals in minor units and whether
        its lines leave some of them out (`lines_short`)."""
        cur.execute("DELETE FROM deal_lines WHERE deal_id = ?", [deal_id])
        minors: list[tuple[int, int]] = []  # each line's net and profit
        for position, line in enumerate(lines):
            f = line.figures(currency)
            minors.append((Money(f.net, currency).minor, Money(f.profit, currency).minor))
            cur.execute(
                "INSERT INTO deal_lines (deal_id, line_id, position, product_id, name, unit,"
                " quantity, price, cost, discount, vat, vat_rate, vat_included, currency,"
                " net_minor, vat_minor, total_minor, cost_minor, profit_minor)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    deal_id,
                    line.id,
                    position,
                    line.product_id,
                    line.name,
                    line.unit,
                    str(line.quantity),
                    str(line.price),
                    str(line.cost),
                    str(line.discount),
                    line.vat,
                    None if line.vat_rate is None else str(line.vat_rate),
                    int(line.vat_included),
                    currency,
                    Money(f.net, currency).minor,
                    Money(f.vat, currency).minor,
                    Money(f.total, currency).minor,
                    Money(f.cost, currency).minor,
                    Money(f.profit, currency).minor,
                ],
            )
        totals = deal_figures(lines, currency)
        figures = {
            "net_minor": Money(totals.net, currency).minor,
            "vat_minor": Money(totals.vat, currency).minor,
            "total_minor": Money(totals.total, currency).minor,
            "cost_minor": Money(totals.cost, currency).minor,
            "profit_minor": Money(totals.profit, currency).minor,
        }
        line_sums = (sum(net for net, _ in minors), sum(profit for _, profit in minors))
        short = (figures["net_minor"], figures["profit_minor"]) != line_sums
        return {**figures, "lines_short": int(short)}

    def _enter_stage(
        self,
        cur: ViewCursor,
        event: Any,
        kind: str,
        pipeline_id: str,
        from_stage: str | None,
        stage_id: str,
        deal: dict[str, Any],
        probability: int,
        reason: str | None = None,
    ) -> None:
        deal_id = str(event.originator_id)
        at = ts(event.timestamp)
        # The move that ends a stay says how it ended and how long it lasted (the funnel
        # folds both in SQL); every stay of the deal carries the deal's status now.
        ending = cur.execute(
            "SELECT id, entered_at FROM deal_stage_history WHERE deal_id = ? AND left_at IS NULL",
            [deal_id],
        ).fetchall()
        for stay in ending:
            lasted = (event.timestamp - parse_ts(stay["entered_at"])).total_seconds()
            cur.execute(
                "UPDATE deal_stage_history SET left_at = ?, next_kind = ?, next_stage_id = ?,"
                " next_pipeline_id = ?, stay_seconds = ? WHERE id = ?",
                [at, kind, stage_id, pipeline_id, max(0.0, lasted), stay["id"]],
            )
        status = {"won": "won", "lost": "lost"}.get(kind, "open")
        if kind != "created":
            cur.execute(
                "UPDATE deal_stage_history SET deal_status = ? WHERE deal_id = ?",
                [status, deal_id],
            )
        amount = Money.from_state(event.amount)  # every event that enters a stage carries it
        cur.execute(
            "INSERT INTO deal_stage_history (id, deal_id, pipeline_id, kind, from_stage_id,"
            " stage_id, entered_at, left_at, actor, manager_id, contact_id, currency,"
            " amount_minor, probability, reason, seq, deal_status)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            [
                f"{event.originator_id}:{event.originator_version}",
                deal_id,
                pipeline_id,
                kind,
                from_stage,
                stage_id,
                at,
                event.actor,
                deal.get("manager_id"),
                deal.get("contact_id"),
                amount.currency,
                amount.minor,
                probability,
                reason,
                self.position_of_event,
                status,
            ],
        )

    @handles(Deal.DealCreated)
    def _deal_created(self, event: Any, cur: ViewCursor) -> None:
        deal_id = str(event.originator_id)
        currency = event.currency
        totals = self._write_lines(cur, deal_id, lines_from_state(event.lines), currency)
        source = dict(event.source or {})
        contact_id = self.aliases.survivor(sid(event.contact_id))
        at = ts(event.timestamp)
        cur.execute(
            f"INSERT INTO deals ({DEAL_COLUMNS}, lines_short) VALUES"
            " (?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, NULL, ?, ?,"
            " ?, NULL, ?, ?) ON CONFLICT (id) DO NOTHING",
            [
                deal_id,
                sid(event.pipeline_id),
                event.stage_id,
                str(event.personal.get("title", "")),
                contact_id,
                sid(event.company_id),
                sid(event.manager_id),
                currency,
                totals["net_minor"],
                totals["vat_minor"],
                totals["total_minor"],
                totals["cost_minor"],
                totals["profit_minor"],
                event.probability,
                event.expected_close,
                source.get("channel"),
                source.get("utm_source"),
                source.get("utm_campaign"),
                source.get("form"),
                dumps(source),
                at,
                at,
                at,
                event.actor,
                totals["lines_short"],
            ],
        )
        deal = {"manager_id": sid(event.manager_id), "contact_id": contact_id}
        self._enter_stage(
            cur,
            event,
            "created",
            sid(event.pipeline_id) or "",
            None,
            event.stage_id,
            deal,
            event.probability,
        )
        self._log(cur, event, "created", {"stage_id": event.stage_id, "amount": event.amount})

    def _move(self, event: Any, cur: ViewCursor, kind: str, status: str, probability: int) -> None:
        deal_id = str(event.originator_id)
        deal = self._deal(cur, deal_id)
        if deal is None:
            return
        reason = getattr(event, "reason", None)
        at = ts(event.timestamp)
        closed = at if status != "open" else None
        cur.execute(
            "UPDATE deals SET pipeline_id = ?, stage_id = ?, status = ?, probability = ?,"
            " lost_reason = ?, stage_entered_at = ?, updated_at = ?, closed_at = ? WHERE id = ?",
            [
                sid(event.pipeline_id),
                event.to_stage_id,
                status,
                probability,
                reason,
                at,
                at,
                closed,
                deal_id,
            ],
        )
        self._enter_stage(
            cur,
            event,
            kind,
            sid(event.pipeline_id) or "",
            event.from_stage_id,
            event.to_stage_id,
            deal,
            probability,
            reason,
        )
        data = {"from_stage_id": event.from_stage_id, "to_stage_id": event.to_stage_id}
        if reason:
            data["reason"] = reason
        self._log(cur, event, kind, {**data, "amount": event.amount, "probability": probability})

    @handles(Deal.DealStageChanged)
    def _stage_moved(self, event: Any, cur: ViewCursor) -> None:
        self._move(event, cur, "moved", "open", event.probability)

    @handles(Deal.DealWon)
    def _won(self, event: Any, cur: ViewCursor) -> None:
        self._move(event, cur, "won", "won", 100)

    @handles(Deal.DealLost)
    def _lost(self, event: Any, cur: ViewCursor) -> None:
        self._move(event, cur, "lost", "lost", 0)

    @handles(Deal.DealLinesChanged)
    def _lines(self, event: Any, cur: ViewCursor) -> None:
        deal_id = str(event.originator_id)
        deal = self._deal(cur, deal_id)
        if deal is None:
            return
        totals = self._write_lines(cur, deal_id, lines_from_state(event.lines), deal["currency"])
        cur.execute(
            "UPDATE deals SET net_minor = ?, vat_minor = ?, total_minor = ?, cost_minor = ?,"
            " profit_minor = ?, lines_short = ?, updated_at = ? WHERE id = ?",
            [*totals.values(), ts(event.timestamp), deal_id],
        )
        self._log(cur, event, "lines_changed", {"amount": event.amount, "lines": len(event.lines)})

    @handles(Deal.DealDetailsChanged)
    def _details(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE deals SET title = ?, expected_close = ?, updated_at = ? WHERE id = ?",
            [
                str(event.personal.get("title", "")),
                event.expected_close,
                ts(event.timestamp),
                sid(event.originator_id),
            ],
        )
        self._log(cur, event, "details_changed", {"expected_close": event.expected_close})

    @handles(Deal.DealProbabilitySet)
    def _probability(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE deals SET probability = ?, probability_manual = ?, updated_at = ? WHERE id = ?",
            [event.probability, int(event.manual), ts(event.timestamp), sid(event.originator_id)],
        )
        self._log(
            cur,
            event,
            "probability_set",
            {"probability": event.probability, "manual": event.manual},
        )

    @handles(Deal.DealManagerChanged)
    def _manager(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE deals SET manager_id = ?, updated_at = ? WHERE id = ?",
            [sid(event.manager_id), ts(event.timestamp), sid(event.originator_id)],
        )
        self._log(cur, event, "manager_changed", {"manager_id": sid(event.manager_id)})

    @handles(Deal.DealClientChanged)
    def _client(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "UPDATE deals SET contact_id = ?, company_id = ?, updated_at = ? WHERE id = ?",
            [
                self.aliases.survivor(sid(event.contact_id)),
                sid(event.company_id),
                ts(event.timestamp),
                sid(event.originator_id),
            ],
        )
        self._log(
            cur,
            event,
            "client_changed",
            {"contact_id": sid(event.contact_id), "company_id": sid(event.company_id)},
        )

    @handles(Deal.DealConversationLinked)
    def _conversation(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "INSERT INTO deal_conversations (deal_id, conversation_id, linked_at, actor)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (deal_id, conversation_id) DO NOTHING",
            [
                sid(event.originator_id),
                sid(event.conversation_id),
                ts(event.timestamp),
                event.actor,
            ],
        )
        self._log(
            cur, event, "conversation_linked", {"conversation_id": sid(event.conversation_id)}
        )

    @handles(Contact.ContactMerged)
    def _merged(self, event: Any, cur: ViewCursor) -> None:
        duplicate, survivor = str(event.originator_id), str(event.survivor_id)
        self.aliases.record(cur, duplicate, survivor)
        cur.execute("UPDATE deals SET contact_id = ? WHERE contact_id = ?", [survivor, duplicate])


# -- readers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DealRow:
    """A deal as the views show it: money in minor units of `currency`."""

    id: str
    pipeline_id: str
    stage_id: str
    status: str
    title: str
    contact_id: str | None
    company_id: str | None
    manager_id: str | None
    currency: str
    net_minor: int
    vat_minor: int
    total_minor: int
    cost_minor: int
    profit_minor: int
    probability: int
    probability_manual: bool
    expected_close: str | None
    source_channel: str | None
    source_utm_source: str | None
    source_utm_campaign: str | None
    source_form: str | None
    source: dict[str, Any]
    lost_reason: str | None
    stage_entered_at: str
    created_at: str
    updated_at: str
    closed_at: str | None
    created_by: str

    @property
    def total(self) -> Money:
        return Money.from_minor(self.total_minor, self.currency)

    @property
    def profit(self) -> Money:
        return Money.from_minor(self.profit_minor, self.currency)


def _deal_row(row: dict[str, Any]) -> DealRow:
    values = dict(row)
    values["source"] = json.loads(values["source"] or "{}")
    values["probability_manual"] = bool(values["probability_manual"])
    return DealRow(**values)


def deal(db: ViewReader, deal_id: UUID | str) -> DealRow | None:
    row = db.query_one(f"SELECT {DEAL_COLUMNS} FROM deals WHERE id = ?", [str(deal_id)])
    return None if row is None else _deal_row(row)


@dataclass(frozen=True)
class DealFilter:
    """What `GET /api/deals` and the board narrow deals by (None: any)."""

    pipeline_id: str | None = None
    stage_id: str | None = None
    manager_id: str | None = None
    contact_id: str | None = None
    company_id: str | None = None
    status: str | None = None  # open, won, lost
    source: str | None = None  # a channel, utm_source, utm_campaign or form
    created_from: str | None = None
    created_to: str | None = None
    closed_from: str | None = None
    closed_to: str | None = None
    amount_min_minor: int | None = None
    amount_max_minor: int | None = None
    currency: str | None = None
    q: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        conditions = Conditions().equal(
            (
                ("pipeline_id", self.pipeline_id),
                ("stage_id", self.stage_id),
                ("manager_id", self.manager_id),
                ("contact_id", self.contact_id),
                ("company_id", self.company_id),
                ("status", self.status),
                ("currency", self.currency),
            )
        )
        if self.source is not None:
            conditions.add(
                "(source_channel = ? OR source_utm_source = ? OR source_utm_campaign = ?"
                " OR source_form = ?)",
                [self.source] * 4,
            )
        conditions.compare("created_at", ">=", self.created_from)
        conditions.compare("created_at", "<", self.created_to)
        conditions.compare("closed_at", ">=", self.closed_from)
        conditions.compare("closed_at", "<", self.closed_to)
        conditions.compare("total_minor", ">=", self.amount_min_minor)
        conditions.compare("total_minor", "<=", self.amount_max_minor)
        if self.q:
            conditions.add("LOWER(title) LIKE ?", [f"%{searchable(self.q.lower())}%"])
        return conditions.where, conditions.params


def deals_page(
    db: ViewReader, flt: DealFilter, limit: int = 100, offset: int = 0
) -> tuple[list[DealRow], int]:
    """One page of deals, newest change first, and how many match in all."""
    where, params = flt.where()
    rows = db.query(
        f"SELECT {DEAL_COLUMNS} FROM deals{where} ORDER BY updated_at DESC, id LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    count = db.query_one(f"SELECT COUNT(*) AS n FROM deals{where}", params)
    return [_deal_row(r) for r in rows], int(count["n"]) if count else 0


@dataclass(frozen=True)
class StageSummary:
    """One column of the board: how many deals and how much money, per currency."""

    stage_id: str
    count: int
    totals_minor: dict[str, int]
    deals: list[DealRow]


def board(
    db: ViewReader, pipeline_id: str, per_stage: int = 30, manager_id: str | None = None
) -> list[StageSummary]:
    """The board of a pipeline: per stage its deals (open ones in open stages; won or lost
    in their stages), newest change first, at most `per_stage` cards, with count and sums."""
    found = pipeline(db, pipeline_id)
    if found is None:
        return []
    owner = " AND manager_id = ?" if manager_id else ""
    extra = [manager_id] if manager_id else []
    sums: dict[str, dict[str, int]] = {}
    counts: dict[str, int] = {}
    for row in db.query(
        "SELECT stage_id, currency, COUNT(*) AS n, SUM(total_minor) AS total FROM deals"
        f" WHERE pipeline_id = ?{owner} GROUP BY stage_id, currency",
        [pipeline_id, *extra],
    ):
        stage_id = str(row["stage_id"])
        counts[stage_id] = counts.get(stage_id, 0) + int(row["n"])
        sums.setdefault(stage_id, {})[str(row["currency"])] = int(row["total"] or 0)
    columns = []
    for s in found.stages:
        rows = db.query(
            f"SELECT {DEAL_COLUMNS} FROM deals WHERE pipeline_id = ? AND stage_id = ?{owner}"
            " ORDER BY updated_at DESC, id LIMIT ?",
            [pipeline_id, s.id, *extra, per_stage],
        )
        columns.append(
            StageSummary(
                s.id, counts.get(s.id, 0), sums.get(s.id, {}), [_deal_row(r) for r in rows]
            )
        )
    return columns


@dataclass(frozen=True)
class DealLineRow:
    deal_id: str
    line_id: str
    position: int
    product_id: str | None
    name: str
    unit: str
    quantity: str
    price: str
    cost: str
    discount: str
    vat: str
    vat_rate: str | None
    vat_included: bool
    currency: str
    net_minor: int
    vat_minor: int
    total_minor: int
    cost_minor: int
    profit_minor: int


def deal_lines(db: ViewReader, deal_id: UUID | str) -> list[DealLineRow]:
    rows = db.query("SELECT * FROM deal_lines WHERE deal_id = ? ORDER BY position", [str(deal_id)])
    return [DealLineRow(**{**r, "vat_included": bool(r["vat_included"])}) for r in rows]


INTERNAL_STAY_COLUMNS = (
    "seq",
    "next_kind",
    "next_stage_id",
    "next_pipeline_id",
    "stay_seconds",
    "deal_status",
)
"""What `deal_stage_history` keeps for the reports and the API's stays do not show."""


@dataclass(frozen=True)
class StageStay:
    """One stay of a deal in a stage (Bitrix24's `crm.stagehistory.list` row, with more)."""

    id: str
    deal_id: str
    pipeline_id: str
    kind: str  # created, moved, won, lost
    from_stage_id: str | None
    stage_id: str
    entered_at: str
    left_at: str | None
    actor: str
    manager_id: str | None
    contact_id: str | None
    currency: str
    amount_minor: int
    probability: int
    reason: str | None
    seconds_in_stage: float  # until it left, or until now for the current stay


@dataclass(frozen=True)
class StageHistoryFilter:
    deal_id: str | None = None
    pipeline_id: str | None = None
    stage_id: str | None = None  # entered this stage
    from_stage_id: str | None = None
    kind: str | None = None
    manager_id: str | None = None
    actor: str | None = None
    entered_from: str | None = None
    entered_to: str | None = None


def stage_history(
    db: ViewReader,
    flt: StageHistoryFilter,
    limit: int = 500,
    offset: int = 0,
    now: datetime | None = None,
) -> list[StageStay]:
    """Stage stays across deals in log order, each with its exact duration."""
    conditions = Conditions().equal(
        (
            ("deal_id", flt.deal_id),
            ("pipeline_id", flt.pipeline_id),
            ("stage_id", flt.stage_id),
            ("from_stage_id", flt.from_stage_id),
            ("kind", flt.kind),
            ("manager_id", flt.manager_id),
            ("actor", flt.actor),
        )
    )
    conditions.compare("entered_at", ">=", flt.entered_from)
    conditions.compare("entered_at", "<", flt.entered_to)
    where, params = conditions.where, conditions.params
    rows = db.query(
        f"SELECT * FROM deal_stage_history{where} ORDER BY seq, id LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    moment = now or datetime.now(UTC)
    stays = []
    for r in rows:
        values = dict(r)
        for internal in INTERNAL_STAY_COLUMNS:
            values.pop(internal, None)
        end = parse_ts(r["left_at"]) if r["left_at"] else moment
        values["seconds_in_stage"] = max(0.0, (end - parse_ts(r["entered_at"])).total_seconds())
        stays.append(StageStay(**values))
    return stays


@dataclass(frozen=True)
class DealLogRow:
    id: str
    deal_id: str
    occurred_at: str
    kind: str
    actor: str
    data: dict[str, Any]


def deal_log(db: ViewReader, deal_id: UUID | str) -> list[DealLogRow]:
    rows = db.query(
        "SELECT id, deal_id, occurred_at, kind, actor, data FROM deal_log WHERE deal_id = ?"
        " ORDER BY seq, id",
        [str(deal_id)],
    )
    return [DealLogRow(**{**r, "data": json.loads(r["data"])}) for r in rows]


def linked_conversations(db: ViewReader, deal_id: UUID | str) -> list[str]:
    rows = db.query(
        "SELECT conversation_id FROM deal_conversations WHERE deal_id = ? ORDER BY linked_at",
        [str(deal_id)],
    )
    return [str(r["conversation_id"]) for r in rows]


def deals_of_contact(db: ViewReader, contact_id: UUID | str) -> list[DealRow]:
    rows = db.query(
        f"SELECT {DEAL_COLUMNS} FROM deals WHERE contact_id = ? ORDER BY created_at DESC",
        [str(contact_id)],
    )
    return [_deal_row(r) for r in rows]


def open_deals_of_manager(db: ViewReader, manager_id: UUID | str) -> list[str]:
    """The ids of a manager's open deals, in id order: what a bulk hand-over hands on."""
    rows = db.query(
        "SELECT id FROM deals WHERE manager_id = ? AND status = 'open' ORDER BY id",
        [str(manager_id)],
    )
    return [str(r["id"]) for r in rows]


def deals_of_company(db: ViewReader, company_id: UUID | str) -> list[DealRow]:
    rows = db.query(
        f"SELECT {DEAL_COLUMNS} FROM deals WHERE company_id = ? ORDER BY created_at DESC",
        [str(company_id)],
    )
    return [_deal_row(r) for r in rows]


@dataclass(frozen=True)
class ClientMoney:
    """Won revenue (net of VAT) and gross profit of a client, per currency (never summed across)."""

    currency: str
    won_deals: int
    revenue_minor: int
    profit_minor: int
    open_deals: int
    open_total_minor: int


def client_money(
    db: ViewReader, contact_id: str | None = None, company_id: str | None = None
) -> list[ClientMoney]:
    column, value = ("contact_id", contact_id) if contact_id else ("company_id", company_id)
    rows = db.query(
        "SELECT currency,"
        " SUM(CASE WHEN status = 'won' THEN 1 ELSE 0 END) AS won_deals,"
        " SUM(CASE WHEN status = 'won' THEN net_minor ELSE 0 END) AS revenue_minor,"
        " SUM(CASE WHEN status = 'won' THEN profit_minor ELSE 0 END) AS profit_minor,"
        " SUM(CASE WHEN status = 'open' THEN 1 ELSE 0 END) AS open_deals,"
        " SUM(CASE WHEN status = 'open' THEN total_minor ELSE 0 END) AS open_total_minor"
        f" FROM deals WHERE {column} = ? GROUP BY currency ORDER BY currency",
        [value],
    )
    return [
        ClientMoney(
            currency=str(r["currency"]),
            won_deals=int(r["won_deals"] or 0),
            revenue_minor=int(r["revenue_minor"] or 0),
            profit_minor=int(r["profit_minor"] or 0),
            open_deals=int(r["open_deals"] or 0),
            open_total_minor=int(r["open_total_minor"] or 0),
        )
        for r in rows
    ]


@dataclass(frozen=True)
class DealFacts:
    """What a rule's conditions and templates see of a deal (`deal.*`)."""

    id: str
    title: str
    pipeline_id: str
    pipeline: str
    stage_id: str
    stage: str
    stage_meaning: str
    status: str
    amount: str  # the total with VAT, as a decimal string
    currency: str
    profit: str
    probability: int
    manager_id: str | None
    contact_id: str | None
    company_id: str | None
    expected_close: str | None
    lost_reason: str | None
    open_task_count: int
    days_in_stage: int


def deal_facts(db: ViewReader, deal_id: str, now: datetime | None = None) -> DealFacts | None:
    found = deal(db, deal_id)
    if found is None:
        return None
    funnel = pipeline(db, found.pipeline_id)
    place = stage(db, found.stage_id)
    moment = now or datetime.now(UTC)
    days = (moment - parse_ts(found.stage_entered_at)).days
    return DealFacts(
        id=found.id,
        title=found.title,
        pipeline_id=found.pipeline_id,
        pipeline="" if funnel is None else funnel.name,
        stage_id=found.stage_id,
        stage="" if place is None else place.name,
        stage_meaning="" if place is None else place.meaning,
        status=found.status,
        amount=str(found.total.amount),
        currency=found.currency,
        profit=str(found.profit.amount),
        probability=found.probability,
        manager_id=found.manager_id,
        contact_id=found.contact_id,
        company_id=found.company_id,
        expected_close=found.expected_close,
        lost_reason=found.lost_reason,
        open_task_count=open_tasks_of_deal(db, deal_id),
        days_in_stage=max(0, days),
    )


@dataclass(frozen=True)
class StaleDeal:
    """An open deal that has stayed in its stage past the stage's limit."""

    id: str
    contact_id: str | None
    manager_id: str | None
    stage_id: str
    stage_entered_at: str
    stale_days: int


def stale_deals(
    db: ViewReader, now: datetime, after_id: str = "", limit: int = 500
) -> tuple[list[StaleDeal], str | None]:
    """Open deals past their stage's "stale after N days", in id order after `after_id`, and
    the id to go on after (None: the scan is done).

    Each stage with a limit gives its own cut-off time, computed here, so the query reads
    only stale deals and no date arithmetic (which SQLite and PostgreSQL spell differently)
    is needed.
    """
    limits = {
        s.id: s.stale_days
        for funnel in pipelines(db, include_archived=True)
        for s in funnel.stages
        if s.stale_days > 0 and s.meaning == "open"
    }
    if not limits:
        return [], None
    per_stage = " OR ".join("(stage_id = ? AND stage_entered_at <= ?)" for _ in limits)
    params: list[Any] = []
    for stage_id, days in limits.items():
        params.extend([stage_id, ts(now - timedelta(days=days))])
    rows = db.query(
        "SELECT id, contact_id, manager_id, stage_id, stage_entered_at FROM deals"
        f" WHERE status = 'open' AND ({per_stage}) AND id > ? ORDER BY id LIMIT ?",
        [*params, after_id, limit],
    )
    found = [StaleDeal(**r, stale_days=limits[str(r["stage_id"])]) for r in rows]
    return found, (found[-1].id if len(found) == limit else None)
