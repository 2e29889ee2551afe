"""Deals: the filtered list, one deal with its lines and figures, changes, stage moves, won and
lost, linked conversations, the deal's history, and the stage history across deals.

Every write answers once the change is in the views (read-your-writes), with the deal as it
now stands. Money goes out as decimal strings with their currency (`MoneyOut`); the views'
minor units stay inside. A move's outcome is decided by the target stage's meaning (open, won,
lost), never by its name.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, status

from threadline.domain.commands.deals import UNSET
from threadline.domain.model.errors import NotFound
from threadline.domain.model.money import Money
from threadline.projections.base import ts
from threadline.projections.deal_history import deal_history
from threadline.projections.deals import (
    DealFilter,
    DealLineRow,
    DealRow,
    StageHistoryFilter,
    deal,
    deal_lines,
    deals_page,
    linked_conversations,
    stage_history,
)
from threadline.projections.inbox import conversation_contacts, latest_inquiry_source
from threadline.projections.pipelines import StageRow, pipelines
from threadline.projections.sql import ViewReader
from threadline.services.api.deal_schemas import (
    ConversationLinkIn,
    DealIn,
    DealLineOut,
    DealLinesIn,
    DealListOut,
    DealOut,
    DealPatch,
    HistoryEntryOut,
    HistoryOut,
    LostIn,
    MoneyOut,
    MoveOut,
    StageHistoryOut,
    StageMoveIn,
    StageStayOut,
    WonIn,
)
from threadline.services.api.deps import (
    Principal,
    PrincipalDep,
    RuntimeDep,
    WriterDep,
    assignee_of,
)
from threadline.services.api.schemas import CurrencyCode, Instant, Offset
from threadline.services.runtime import Runtime

router = APIRouter(prefix="/api", tags=["deals"])


# -- shaping ----------------------------------------------------------------------------------


class Names:
    """Pipeline names and stages by id, read once per request (a handful of rows)."""

    def __init__(self, db: ViewReader) -> None:
        self.pipelines: dict[str, str] = {}
        self.stages: dict[str, StageRow] = {}
        for p in pipelines(db, include_archived=True):
            self.pipelines[p.id] = p.name
            self.stages.update((s.id, s) for s in p.stages)

    def stage(self, stage_id: str | None) -> str | None:
        found = self.stages.get(stage_id or "")
        return None if found is None else found.name


def money(minor: int, currency: str) -> MoneyOut:
    return MoneyOut.of_minor(minor, currency)


def line_out(row: DealLineRow) -> DealLineOut:
    c = row.currency
    return DealLineOut(
        id=row.line_id,
        position=row.position,
        product_id=row.product_id,
        name=row.name,
        unit=row.unit,
        quantity=row.quantity,
        price=MoneyOut(amount=row.price, currency=c),
        cost=MoneyOut(amount=row.cost, currency=c),
        discount=row.discount,
        vat=row.vat,
        vat_rate=row.vat_rate,
        vat_included=row.vat_included,
        net=money(row.net_minor, c),
        vat_amount=money(row.vat_minor, c),
        total=money(row.total_minor, c),
        cost_total=money(row.cost_minor, c),
        profit=money(row.profit_minor, c),
    )


def deal_out(row: DealRow, names: Names) -> DealOut:
    c = row.currency
    found = names.stages.get(row.stage_id)
    return DealOut(
        id=row.id,
        title=row.title,
        pipeline_id=row.pipeline_id,
        pipeline=names.pipelines.get(row.pipeline_id, ""),
        stage_id=row.stage_id,
        stage="" if found is None else found.name,
        stage_meaning="" if found is None else found.meaning,
        status=row.status,
        contact_id=row.contact_id,
        company_id=row.company_id,
        manager_id=row.manager_id,
        currency=c,
        net=money(row.net_minor, c),
        vat=money(row.vat_minor, c),
        total=money(row.total_minor, c),
        cost=money(row.cost_minor, c),
        profit=money(row.profit_minor, c),
        probability=row.probability,
        probability_manual=row.probability_manual,
        expected_close=row.expected_close,
        source=row.source,
        lost_reason=row.lost_reason,
        stage_entered_at=row.stage_entered_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        closed_at=row.closed_at,
        created_by=row.created_by,
    )


def deal_detail(runtime: Runtime, deal_id: UUID | str) -> DealOut:
    """The deal with its lines (per-line figures) and linked conversations, or 404."""
    row = deal(runtime.views, deal_id)
    if row is None:
        raise NotFound("deal", str(deal_id))
    out = deal_out(row, Names(runtime.views))
    out.lines = [line_out(line) for line in deal_lines(runtime.views, deal_id)]
    out.conversations = linked_conversations(runtime.views, deal_id)
    return out


def user_filter(principal: Principal, value: str | None) -> str | None:
    """A manager filter as given: a user id, or `me` (the admin token, no user, matches none)."""
    if value is None:
        return None
    if value == "me":
        return principal.user_id or "-"
    try:
        return str(UUID(value))
    except ValueError:
        raise HTTPException(422, "manager_id is a user id or `me`") from None


# -- deals ------------------------------------------------------------------------------------


@router.get("/deals", response_model=DealListOut)
def list_deals(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    pipeline_id: UUID | None = None,
    stage_id: Annotated[str | None, Query(max_length=64)] = None,
    manager_id: Annotated[str | None, Query(description="a user id or `me`")] = None,
    contact_id: UUID | None = None,
    company_id: UUID | None = None,
    status_: Annotated[Literal["open", "won", "lost"] | None, Query(alias="status")] = None,
    source: Annotated[
        str | None, Query(max_length=200, description="a channel, utm_source, utm_campaign or form")
    ] = None,
    created_from: Annotated[Instant | None, Query(description="inclusive")] = None,
    created_to: Annotated[Instant | None, Query(description="exclusive")] = None,
    closed_from: Annotated[Instant | None, Query(description="inclusive")] = None,
    closed_to: Annotated[Instant | None, Query(description="exclusive")] = None,
    amount_min: Annotated[
        str | None, Query(max_length=40, description="total with VAT, a decimal; needs currency")
    ] = None,
    amount_max: Annotated[
        str | None, Query(max_length=40, description="total with VAT, a decimal; needs currency")
    ] = None,
    currency: CurrencyCode | None = None,
    q: Annotated[str | None, Query(max_length=200, description="text in the title")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> DealListOut:
    """Deals, newest change first, and how many match. An amount bound compares deals of
    `currency` only: amounts in different currencies are never compared with each other."""
    if (amount_min is not None or amount_max is not None) and currency is None:
        raise HTTPException(422, "an amount filter needs its currency (currency=RUB)")
    code = currency.upper() if currency else None
    flt = DealFilter(
        pipeline_id=str(pipeline_id) if pipeline_id else None,
        stage_id=stage_id,
        manager_id=user_filter(principal, manager_id),
        contact_id=str(contact_id) if contact_id else None,
        company_id=str(company_id) if company_id else None,
        status=status_,
        source=source,
        created_from=ts(created_from),
        created_to=ts(created_to),
        closed_from=ts(closed_from),
        closed_to=ts(closed_to),
        amount_min_minor=None
        if amount_min is None or code is None
        else Money.of(amount_min, code, "amount_min").minor,
        amount_max_minor=None
        if amount_max is None or code is None
        else Money.of(amount_max, code, "amount_max").minor,
        currency=code,
        q=q,
    )
    rows, total = deals_page(runtime.views, flt, limit, offset)
    names = Names(runtime.views)
    return DealListOut(items=[deal_out(r, names) for r in rows], total=total)


@router.post("/deals", response_model=DealOut, status_code=status.HTTP_201_CREATED)
def create_deal(body: DealIn, runtime: RuntimeDep, principal: WriterDep) -> DealOut:
    """Open a deal. From a conversation (`conversation_id`), the deal is linked to it, takes the
    source of its newest inquiry and, when no client is named, the conversation's contact."""
    source = None
    contact_id = body.contact_id
    if body.conversation_id is not None:
        source = latest_inquiry_source(runtime.views, body.conversation_id) or None
        if contact_id is None and body.company_id is None:
            found = conversation_contacts(runtime.views, [str(body.conversation_id)])
            owner = found.get(str(body.conversation_id))
            contact_id = UUID(owner) if owner else None
    committed = runtime.app.create_deal(
        principal.actor,
        body.title,
        body.pipeline_id,
        stage_id=body.stage_id,
        contact_id=contact_id,
        company_id=body.company_id,
        manager_id=assignee_of(principal, body.manager_id),
        currency=body.currency,
        lines=[line.raw() for line in body.lines],
        amount=None if body.amount is None else str(body.amount),
        expected_close=body.expected_close,
        source=source,
        conversation_id=body.conversation_id,
    )
    runtime.wait_for_views(committed.notification_id)
    return deal_detail(runtime, committed.value)


@router.get("/deals/{deal_id}", response_model=DealOut)
def get_deal(deal_id: UUID, runtime: RuntimeDep, principal: PrincipalDep) -> DealOut:
    """The deal with stage and pipeline names, its lines with their figures, and totals."""
    return deal_detail(runtime, deal_id)


@router.patch("/deals/{deal_id}", response_model=DealOut)
def patch_deal(
    deal_id: UUID, body: DealPatch, runtime: RuntimeDep, principal: WriterDep
) -> DealOut:
    given = body.model_fields_set

    def field(name: str) -> Any:
        """The value given (None included: it clears or resets), or UNSET when left out."""
        return getattr(body, name) if name in given else UNSET

    committed = runtime.app.update_deal(
        deal_id,
        principal.actor,
        title=body.title,
        expected_close=field("expected_close"),
        probability=field("probability"),
        manager_id=assignee_of(principal, body.manager_id) if "manager_id" in given else UNSET,
        contact_id=field("contact_id"),
        company_id=field("company_id"),
    )
    runtime.wait_for_views(committed.notification_id)
    return deal_detail(runtime, deal_id)


@router.put("/deals/{deal_id}/lines", response_model=DealOut)
def put_lines(
    deal_id: UUID, body: DealLinesIn, runtime: RuntimeDep, principal: WriterDep
) -> DealOut:
    """Replace every line (an empty list leaves a deal of zero)."""
    committed = runtime.app.change_deal_lines(
        deal_id, [line.raw() for line in body.lines], principal.actor
    )
    runtime.wait_for_views(committed.notification_id)
    return deal_detail(runtime, deal_id)


@router.post("/deals/{deal_id}/stage", response_model=MoveOut)
def move_deal(
    deal_id: UUID, body: StageMoveIn, runtime: RuntimeDep, principal: WriterDep
) -> MoveOut:
    """Move to a stage: `moved` (open stage), `won`, `lost` (needs a reason from the pipeline's
    list) or `unchanged`. With `pipeline_id`, to an open stage of another pipeline."""
    committed = runtime.app.move_deal(
        deal_id, body.stage_id, principal.actor, reason=body.reason, pipeline_id=body.pipeline_id
    )
    runtime.wait_for_views(committed.notification_id)
    return MoveOut.model_validate(
        {"outcome": committed.value, "deal": deal_detail(runtime, deal_id)}
    )


@router.post("/deals/{deal_id}/won", response_model=DealOut)
def win_deal(
    deal_id: UUID, runtime: RuntimeDep, principal: WriterDep, body: WonIn | None = None
) -> DealOut:
    """Win the deal (409 when it is already won); its contact becomes a customer."""
    committed = runtime.app.win_deal(
        deal_id, principal.actor, stage_id=None if body is None else body.stage_id
    )
    runtime.wait_for_views(committed.notification_id)
    return deal_detail(runtime, deal_id)


@router.post("/deals/{deal_id}/lost", response_model=DealOut)
def lose_deal(deal_id: UUID, body: LostIn, runtime: RuntimeDep, principal: WriterDep) -> DealOut:
    """Lose the deal with a reason from its pipeline's list (422 otherwise)."""
    committed = runtime.app.lose_deal(deal_id, body.reason, principal.actor, stage_id=body.stage_id)
    runtime.wait_for_views(committed.notification_id)
    return deal_detail(runtime, deal_id)


@router.post("/deals/{deal_id}/conversations", response_model=DealOut)
def link_conversation(
    deal_id: UUID, body: ConversationLinkIn, runtime: RuntimeDep, principal: WriterDep
) -> DealOut:
    """Link a conversation: it shows in the deal's history whenever it happened."""
    committed = runtime.app.link_deal_conversation(deal_id, body.conversation_id, principal.actor)
    runtime.wait_for_views(committed.notification_id)
    return deal_detail(runtime, deal_id)


@router.get("/deals/{deal_id}/history", response_model=HistoryOut)
def get_history(
    deal_id: UUID,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> HistoryOut:
    """The deal's own events, its tasks, and the client's communication while it was open
    (plus linked conversations whenever they happened), in time order."""
    entries = deal_history(runtime.views, deal_id, limit)
    if entries is None:
        raise NotFound("deal", str(deal_id))
    return HistoryOut(items=[HistoryEntryOut.model_validate(asdict(e)) for e in entries])


# -- stage history ----------------------------------------------------------------------------


@router.get("/stage-history", response_model=StageHistoryOut)
def get_stage_history(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    deal_id: UUID | None = None,
    pipeline_id: UUID | None = None,
    stage_id: Annotated[str | None, Query(max_length=64, description="entered this stage")] = None,
    from_stage_id: Annotated[str | None, Query(max_length=64)] = None,
    kind: Literal["created", "moved", "won", "lost"] | None = None,
    manager_id: Annotated[str | None, Query(description="a user id or `me`")] = None,
    actor: Annotated[str | None, Query(max_length=200, description="e.g. `user:<id>`")] = None,
    entered_from: Annotated[Instant | None, Query(description="inclusive")] = None,
    entered_to: Annotated[Instant | None, Query(description="exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    offset: Offset = 0,
) -> StageHistoryOut:
    """Every stay of a deal in a stage across deals, in log order.

    Compared with Bitrix24's `crm.stagehistory.list` (rows of ID, TYPE_ID 1 created / 2 moved
    / 3 finished, OWNER_ID, CREATED_TIME, STAGE_ID, STAGE_SEMANTIC_ID; filter and `start`
    paging by 50): each row here also names the stage it came from (`from_stage_id`), who
    moved it (`actor`), the deal's amount with its currency and the probability at that
    moment, the lost reason, when the deal left the stage (`left_at`) and the exact
    `seconds_in_stage` (the current stay counted to now), so time in stage needs no second
    query. Stages are referred to by id; the names are today's, so a renamed stage changes no
    row but its label. Won and lost are their own kinds, not a stage name compared.
    """
    flt = StageHistoryFilter(
        deal_id=str(deal_id) if deal_id else None,
        pipeline_id=str(pipeline_id) if pipeline_id else None,
        stage_id=stage_id,
        from_stage_id=from_stage_id,
        kind=kind,
        manager_id=user_filter(principal, manager_id),
        actor=actor,
        entered_from=ts(entered_from),
        entered_to=ts(entered_to),
    )
    stays = stage_history(runtime.views, flt, limit, offset)
    names = Names(runtime.views)
    items = [
        StageStayOut(
            id=s.id,
            deal_id=s.deal_id,
            pipeline_id=s.pipeline_id,
            kind=s.kind,
            from_stage_id=s.from_stage_id,
            from_stage=names.stage(s.from_stage_id),
            stage_id=s.stage_id,
            stage=names.stage(s.stage_id) or "",
            entered_at=s.entered_at,
            left_at=s.left_at,
            actor=s.actor,
            manager_id=s.manager_id,
            contact_id=s.contact_id,
            amount=money(s.amount_minor, s.currency),
            probability=s.probability,
            reason=s.reason,
            seconds_in_stage=s.seconds_in_stage,
        )
        for s in stays
    ]
    return StageHistoryOut(items=items)
