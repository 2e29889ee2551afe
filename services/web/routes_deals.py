"""The deals board per pipeline, moving its cards, and the filtered list of deals.

The board (`GET /deals?pipeline=<id>`) has one column per stage in the pipeline's order, each
with its count and its sums per currency (never added across currencies) and its newest
cards. A card is dragged to another column (app.js, native drag and drop) or moved with its
own "move to" form when there is no JavaScript; both post to the same route, which calls
`move_deal`: the target stage's meaning decides whether the deal moves, is won or is lost
(a lost stage needs one of the pipeline's reasons). The move is an event like any other, so
the board is rendered again from the views once they hold it (read-your-writes), and other
people's boards reload on the change feed's `deals:<pipeline id>` key.

The list (`GET /deals/list`) is where a column's "more" link leads: every deal, filtered and
paged. The deal's own page is routes_deal_page, the new-deal form routes_new_deal; app.py
registers these routes before `/deals/{deal_id}` so that `/deals/board`, `/deals/list` and
`/deals/move` are not taken for a deal's id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from threadline.domain.model.errors import InvalidInput, NotFound
from threadline.projections.base import parse_ts
from threadline.projections.companies import company_names
from threadline.projections.contact_card import display_names
from threadline.projections.deals import DealFilter, DealRow, board, deals_page
from threadline.projections.pipelines import PipelineRow, StageRow, pipeline, pipelines
from threadline.services.web.client_deals import amount, listed
from threadline.services.web.deal_views import (
    FLASHES,
    known_deal,
    manager_of,
    not_found,
    sums,
    user_names,
)
from threadline.services.web.deps import WebUser, WebUserDep, WebWriterDep
from threadline.services.web.errors import message_of, status_of
from threadline.services.web.posted_forms import (
    COMMAND_ERRORS,
    FormDep,
    field,
    is_htmx,
    local_url,
    parse_id,
    redirect,
)
from threadline.services.web.routes_contacts import people
from threadline.services.web.routes_deal_page import render_deal

router = APIRouter(include_in_schema=False)

BOARD_CARDS = 30
"""Cards per column; the column's "more" link opens the list filtered to that stage."""
LIST_SIZE = 50
MAX_PAGE = 100_000


def pick_pipeline(
    user: WebUser, wanted: str | None
) -> tuple[list[PipelineRow], PipelineRow | None]:
    """The pipelines to switch between and the one shown (the first by default)."""
    found = pipelines(user.runtime.views)
    chosen = next((p for p in found if p.id == parse_id(wanted or "")), None)
    if chosen is None and wanted and parse_id(wanted):
        chosen = pipeline(user.runtime.views, str(parse_id(wanted)))  # an archived one, by link
    return found, chosen or (found[0] if found else None)


# -- the board --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Card:
    """A deal on the board: what a manager scans a column for."""

    id: str
    title: str
    status: str
    stage_id: str
    contact_id: str | None
    client: str
    company_id: str | None
    company: str
    total: Decimal
    currency: str
    manager: str
    days: int
    stale: bool


@dataclass(frozen=True)
class Column:
    stage: StageRow
    count: int
    sums: list[tuple[Decimal, str]]
    cards: list[Card]
    more_url: str


def cards_of(
    user: WebUser, rows: list[DealRow], stages: dict[str, StageRow], now: datetime
) -> list[Card]:
    views = user.runtime.views
    clients = display_names(views, sorted({r.contact_id for r in rows if r.contact_id}))
    companies = company_names(user.runtime.views, {r.company_id for r in rows if r.company_id})
    names = user_names(user)
    cards = []
    for row in rows:
        seconds = (now - parse_ts(row.stage_entered_at)).total_seconds()
        limit = stages[row.stage_id].stale_days if row.stage_id in stages else 0
        cards.append(
            Card(
                id=row.id,
                title=row.title,
                status=row.status,
                stage_id=row.stage_id,
                contact_id=row.contact_id,
                client=clients.get(row.contact_id or "", ""),
                company_id=row.company_id,
                company=companies.get(row.company_id or "", ""),
                total=amount(row.total_minor, row.currency),
                currency=row.currency,
                manager=names.get(row.manager_id or "", ""),
                days=max(0, int(seconds // 86400)),
                stale=row.status == "open" and limit > 0 and seconds >= limit * 86400,
            )
        )
    return cards


def board_data(
    user: WebUser, chosen: PipelineRow, manager: str, now: datetime | None = None
) -> dict[str, Any]:
    moment = now or datetime.now(UTC)
    manager_id = manager_of(user, manager)
    summaries = board(user.runtime.views, chosen.id, BOARD_CARDS, manager_id)
    stages = {s.id: s for s in chosen.stages}
    columns = []
    for summary in summaries:
        query = {"pipeline": chosen.id, "stage": summary.stage_id}
        if manager:
            query["manager"] = manager
        columns.append(
            Column(
                stage=stages[summary.stage_id],
                count=summary.count,
                sums=sums(summary.totals_minor),
                cards=cards_of(user, summary.deals, stages, moment),
                more_url=f"/deals/list?{urlencode(query)}",
            )
        )
    return {"pipeline": chosen, "columns": columns, "manager": manager}


def board_query(pipeline_id: str, manager: str) -> str:
    query = {"pipeline": pipeline_id}
    if manager:
        query["manager"] = manager
    return urlencode(query)


def clean_manager(value: str | None) -> str:
    """The manager filter as the board's links carry it (anything else: everyone)."""
    if value == "mine":
        return "mine"
    return parse_id(value or "") or ""


def render_board(
    user: WebUser,
    pipeline_id: str | None,
    manager: str,
    status_code: int = 200,
    error: str = "",
) -> HTMLResponse:
    _all, chosen = pick_pipeline(user, pipeline_id)
    if chosen is None:
        return not_found(user, user._("There is no pipeline yet."))
    return user.render(
        "deals/_board.html",
        status_code=status_code,
        error=error,
        query=board_query(chosen.id, manager),
        **board_data(user, chosen, manager),
    )


@router.get("/deals")
def board_page(
    user: WebUserDep,
    pipeline: str | None = None,
    manager: str | None = None,
    done: str | None = None,
) -> HTMLResponse:
    found, chosen = pick_pipeline(user, pipeline)
    chosen_manager = clean_manager(manager)
    data: dict[str, Any] = {"pipeline": chosen, "columns": [], "manager": chosen_manager}
    if chosen is not None:
        data = board_data(user, chosen, chosen_manager)
    return user.render(
        "deals/board.html",
        pipelines=found,
        people=people(user),
        error="",
        query=board_query(chosen.id, chosen_manager) if chosen else "",
        flashes=[user._(FLASHES[done])] if done in FLASHES else [],
        **data,
    )


@router.get("/deals/board")
def board_fragment(
    user: WebUserDep, pipeline: str | None = None, manager: str | None = None
) -> HTMLResponse:
    """The board alone: the page reloads it when the change feed says ``deals:<id>``."""
    return render_board(user, pipeline, clean_manager(manager))


# -- moving a deal ----------------------------------------------------------------------------


def move(user: WebUser, deal_id: str, form: FormData) -> Response:
    """Move, win or lose (by the target stage's meaning); answer with the board or a redirect."""
    found = known_deal(user, deal_id)
    manager = clean_manager(field(form, "manager"))
    board_pipeline = field(form, "pipeline") or (found.pipeline_id if found else None)
    back = local_url(field(form, "next"), f"/deals?{board_query(board_pipeline or '', manager)}")
    if found is None:
        error: Exception = NotFound("deal", deal_id)
    else:
        try:
            target = field(form, "stage_id")
            if not target:
                raise InvalidInput("stage_id", "choose a stage")
            moved = user.runtime.app.move_deal(
                UUID(found.id), target, user.actor, reason=field(form, "reason")
            )
            outcome = moved.value
        except COMMAND_ERRORS as problem:
            error = problem
        else:
            user.runtime.wait_for_views(moved.notification_id)
            if is_htmx(user):
                return render_board(user, board_pipeline, manager)
            return redirect(back, outcome)
    if is_htmx(user):
        return render_board(
            user, board_pipeline, manager, status_of(error), message_of(user, error)
        )
    if found is not None and back.startswith(f"/deals/{found.id}"):
        return render_deal(user, found.id, status_of(error), {"move": message_of(user, error)})
    return render_board_page_with_error(user, board_pipeline, manager, error)


def render_board_page_with_error(
    user: WebUser, pipeline_id: str | None, manager: str, error: Exception
) -> HTMLResponse:
    found, chosen = pick_pipeline(user, pipeline_id)
    data: dict[str, Any] = {"pipeline": chosen, "columns": [], "manager": manager}
    if chosen is not None:
        data = board_data(user, chosen, manager)
    return user.render(
        "deals/board.html",
        status_code=status_of(error),
        pipelines=found,
        people=people(user),
        error=message_of(user, error),
        query=board_query(chosen.id, manager) if chosen else "",
        flashes=[],
        **data,
    )


@router.post("/deals/move", response_model=None)
def move_dropped(user: WebWriterDep, form: FormDep) -> Response:
    """A card dropped on a column (app.js fills the board's move form)."""
    return move(user, field(form, "deal_id"), form)


@router.post("/deals/{deal_id}/move", response_model=None)
def move_one(deal_id: str, user: WebWriterDep, form: FormDep) -> Response:
    """A card's own "move to" form (no JavaScript needed), or the deal page's stage form."""
    return move(user, deal_id, form)


# -- the list ---------------------------------------------------------------------------------


@router.get("/deals/list")
def deals_list(
    request: Request,
    user: WebUserDep,
    pipeline: str | None = None,
    stage: str | None = None,
    manager: str | None = None,
    status: str | None = None,
    q: str | None = None,
    contact: str | None = None,
    company: str | None = None,
) -> HTMLResponse:
    given = request.query_params.get("page", "1").strip()
    number = max(1, min(int(given[:8]), MAX_PAGE)) if given.isascii() and given.isdigit() else 1
    chosen_status = status if status in ("open", "won", "lost") else None
    chosen_manager = clean_manager(manager)
    text = (q or "").strip()[:200]
    flt = DealFilter(
        pipeline_id=parse_id(pipeline or ""),
        stage_id=parse_id(stage or ""),
        manager_id=manager_of(user, chosen_manager),
        status=chosen_status,
        q=text or None,
        contact_id=parse_id(contact or ""),
        company_id=parse_id(company or ""),
    )
    rows, total = deals_page(user.runtime.views, flt, LIST_SIZE, (number - 1) * LIST_SIZE)
    names = user_names(user)
    clients = display_names(
        user.runtime.views, sorted({r.contact_id for r in rows if r.contact_id})
    )
    query = [
        (k, v)
        for k, v in (
            ("pipeline", flt.pipeline_id or ""),
            ("stage", flt.stage_id or ""),
            ("manager", chosen_manager),
            ("status", chosen_status or ""),
            ("q", text),
            ("contact", flt.contact_id or ""),
            ("company", flt.company_id or ""),
        )
        if v
    ]
    return user.render(
        "deals/list.html",
        items=listed(user.runtime.views, rows),
        rows={r.id: r for r in rows},
        clients=clients,
        managers=names,
        total=total,
        number=number,
        pages=max(1, -(-total // LIST_SIZE)),
        query=urlencode(query),
        pipelines=pipelines(user.runtime.views),
        people=people(user),
        chosen={
            "pipeline": flt.pipeline_id or "",
            "stage": flt.stage_id or "",
            "manager": chosen_manager,
            "status": chosen_status or "",
            "q": text,
            "contact": flt.contact_id or "",
            "company": flt.company_id or "",
        },
    )
