"""A deal's page (`GET /deals/{id}`, its live part `/deals/{id}/live`) and the forms on it.

The deal's page shows what the views hold of it: figures per line and in total, every stay
in a stage with its exact duration (the current one included), the deal's history with the
client's communication, and its tasks; its forms (won, lost, details, lines, tasks, calls)
post, then redirect (they work without JavaScript), and an error comes back next to its form
with the API's status code. The stage form posts to the board's move route (routes_deals),
which shows this page again with the error when the move is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from threadline.domain.commands.deals import UNSET, Unset
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.vat import VatKind
from threadline.projections.catalogue import ProductRow, products_page
from threadline.projections.companies import company
from threadline.projections.contact_card import display_names
from threadline.projections.deal_history import HistoryEntry, deal_history
from threadline.projections.deals import (
    DealRow,
    StageHistoryFilter,
    deal,
    deal_lines,
    stage_history,
)
from threadline.projections.pipelines import pipeline, pipelines
from threadline.projections.tasks import TaskRow, tasks_of_deal
from threadline.services.web.client_deals import amount
from threadline.services.web.deal_money import deal_money
from threadline.services.web.deal_views import (
    FLASHES,
    actor_name,
    duration,
    known_deal,
    money_of,
    not_found,
    user_names,
)
from threadline.services.web.deps import WebUser, WebUserDep, WebWriterDep
from threadline.services.web.errors import message_of, status_of
from threadline.services.web.local_time import parse_local
from threadline.services.web.posted_forms import (
    COMMAND_ERRORS,
    FormDep,
    field,
    parse_id,
    redirect,
)
from threadline.services.web.routes_contacts import LABELS, people

router = APIRouter(include_in_schema=False)

NEW_LINE_ROWS = 2
"""Empty rows the line editor adds below the deal's lines ("add rows" adds more)."""
MAX_LINE_ROWS = 200
PICKER_PRODUCTS = 500
"""Products the line editor's picker offers (by name); a larger catalogue is typed as free lines."""


@dataclass(frozen=True)
class LineView:
    id: str
    product_id: str | None
    name: str
    unit: str
    quantity: str
    price: Decimal
    cost: Decimal
    discount: str
    vat: str
    vat_rate: str | None
    vat_included: bool
    net: Decimal
    vat_amount: Decimal
    total: Decimal
    cost_total: Decimal
    profit: Decimal


@dataclass(frozen=True)
class StayView:
    stage: str
    kind: str
    entered_at: str
    left_at: str | None
    duration: str
    actor: str
    total: Decimal
    currency: str
    probability: int
    reason: str | None


def plain_number(text: str) -> str:
    """A stored decimal without trailing zeros ("2.000" → "2", "100" stays), as typed."""
    return format(Decimal(text).normalize(), "f")


def lines_of(user: WebUser, deal_id: str) -> list[LineView]:
    out = []
    for line in deal_lines(user.runtime.views, deal_id):
        code = line.currency
        out.append(
            LineView(
                id=line.line_id,
                product_id=line.product_id,
                name=line.name,
                unit=line.unit,
                quantity=plain_number(line.quantity),
                price=Decimal(line.price),
                cost=Decimal(line.cost),
                discount=plain_number(line.discount),
                vat=line.vat,
                vat_rate=None if line.vat_rate is None else plain_number(line.vat_rate),
                vat_included=line.vat_included,
                net=amount(line.net_minor, code),
                vat_amount=amount(line.vat_minor, code),
                total=amount(line.total_minor, code),
                cost_total=amount(line.cost_minor, code),
                profit=amount(line.profit_minor, code),
            )
        )
    return out


def stays_of(user: WebUser, found: DealRow, stage_names: dict[str, str]) -> list[StayView]:
    names = user_names(user)
    return [
        StayView(
            stage=stage_names.get(stay.stage_id, stay.stage_id),
            kind=stay.kind,
            entered_at=stay.entered_at,
            left_at=stay.left_at,
            duration=duration(user, stay.seconds_in_stage),
            actor=actor_name(stay.actor, names),
            total=amount(stay.amount_minor, stay.currency),
            currency=stay.currency,
            probability=stay.probability,
            reason=stay.reason,
        )
        for stay in stage_history(user.runtime.views, StageHistoryFilter(deal_id=found.id))
    ]


def history_of(user: WebUser, found: DealRow, stage_names: dict[str, str]) -> list[dict[str, Any]]:
    names = user_names(user)
    entries: list[HistoryEntry] = deal_history(user.runtime.views, found.id) or []
    out = []
    for entry in reversed(entries):  # newest first, as the timeline reads
        data = entry.data
        out.append(
            {
                "at": entry.at,
                "source": entry.source,
                "kind": entry.kind,
                "actor": actor_name(entry.actor, names),
                "title": entry.title,
                "from_stage": stage_names.get(str(data.get("from_stage_id") or ""), ""),
                "to_stage": stage_names.get(
                    str(data.get("to_stage_id") or data.get("stage_id") or ""), ""
                ),
                "money": money_of(data.get("amount")),
                "data": data,
                "conversation_id": entry.conversation_id,
                "channel": entry.channel,
                "direction": entry.direction,
                "manager": names.get(str(data.get("manager_id") or ""), ""),
            }
        )
    return out


def tasks_view(user: WebUser, found: DealRow) -> list[TaskRow]:
    tasks = tasks_of_deal(user.runtime.views, found.id)
    return sorted(tasks, key=lambda t: (t.status != "open", t.due_at or "9999", t.created_at))


def catalogue(user: WebUser, currency: str) -> list[ProductRow]:
    """The products the line editor offers: those priced in the deal's currency (a product in
    another currency needs its price typed, which the domain then asks for)."""
    rows, _total = products_page(user.runtime.views, limit=PICKER_PRODUCTS)
    return [p for p in rows if p.price.currency == currency]


def deal_data(user: WebUser, found: DealRow) -> dict[str, Any]:
    views = user.runtime.views
    chosen = pipeline(views, found.pipeline_id)
    stages = chosen.stages if chosen else []
    stage_names = {s.id: s.name for p in pipelines(views, include_archived=True) for s in p.stages}
    names = user_names(user)
    client = display_names(views, [found.contact_id]) if found.contact_id else {}
    firm = company(views, found.company_id) if found.company_id else None
    lines = lines_of(user, found.id)
    return {
        "deal": found,
        "pipeline": chosen,
        "stages": stages,
        "stage": next((s for s in stages if s.id == found.stage_id), None),
        "client_name": client.get(found.contact_id or "", ""),
        "company_name": firm.name if firm else "",
        "manager_name": names.get(found.manager_id or "", ""),
        "creator": actor_name(found.created_by, names),
        "figures": {
            "net": amount(found.net_minor, found.currency),
            "vat": amount(found.vat_minor, found.currency),
            "total": amount(found.total_minor, found.currency),
            "cost": amount(found.cost_minor, found.currency),
            "profit": amount(found.profit_minor, found.currency),
        },
        "lines": lines,
        "stays": stays_of(user, found, stage_names),
        "history": history_of(user, found, stage_names),
        "tasks": tasks_view(user, found),
        "people": people(user),
        "labels": LABELS,
        "vat_kinds": [k.value for k in VatKind],
        "products": catalogue(user, found.currency),
    }


def render_deal(
    user: WebUser,
    deal_id: str,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    *,
    editing: str = "",
    rows: int = 0,
    draft: dict[str, Any] | None = None,
    flash: str | None = None,
    fragment: bool = False,
) -> HTMLResponse:
    found = deal(user.runtime.views, deal_id)
    if found is None:
        return not_found(user)
    data = deal_data(user, found)
    given = (draft or {}).get("lines")
    return user.render(
        "deals/_deal.html" if fragment else "deals/page.html",
        status_code=status_code,
        errors=errors or {},
        editing=editing if user.can_write else "",
        editor_rows=given if given else editor_rows(data["lines"], rows),
        draft=draft or {},
        flashes=[user._(FLASHES[flash])] if flash in FLASHES else [],
        money=None if fragment else deal_money(user, found),  # the documents section
        **data,
    )


def editor_rows(lines: list[LineView], wanted: int) -> list[dict[str, Any]]:
    """The line editor's rows: the deal's lines, then empty rows (`wanted` rows in all, and
    at least `NEW_LINE_ROWS` empty ones)."""
    rows: list[dict[str, Any]] = [
        {
            "id": line.id,
            "product_id": line.product_id or "",
            "name": line.name,
            "quantity": line.quantity,
            "unit": line.unit,
            "price": plain_number(str(line.price)),
            "cost": plain_number(str(line.cost)),
            "discount": line.discount,
            "vat": line.vat,
            "vat_included": line.vat_included,
            "remove": False,
        }
        for line in lines
    ]
    blank = max(NEW_LINE_ROWS, min(wanted, MAX_LINE_ROWS) - len(rows))
    empty = {key: "" for key in LINE_FIELDS} | {"vat_included": True}
    return rows + [{**empty, "remove": False} for _ in range(blank)]


@router.get("/deals/{deal_id}", response_model=None)
def deal_page(
    deal_id: str,
    user: WebUserDep,
    edit: str = "",
    rows: str = "",
    done: str | None = None,
) -> Response:
    found = known_deal(user, deal_id)
    if found is None:
        return not_found(user)
    editing = edit if edit in ("lines", "details") else ""
    shown = int(rows[:4]) if rows.isascii() and rows.isdigit() else 0
    return render_deal(user, found.id, editing=editing, rows=shown, flash=done)


@router.get("/deals/{deal_id}/live", response_model=None)
def deal_fragment(deal_id: str, user: WebUserDep) -> Response:
    """The deal's figures, stays, history and tasks: reloaded on ``deal:<id>`` and ``tasks``."""
    found = known_deal(user, deal_id)
    if found is None:
        return not_found(user)
    return render_deal(user, found.id, fragment=True)


def after(user: WebUser, committed: Any, deal_id: str, flash: str) -> Response:
    """Once the views hold the change: back to the deal's page (POST, redirect, GET)."""
    user.runtime.wait_for_views(committed.notification_id)
    return redirect(f"/deals/{deal_id}", flash)


def refused(
    user: WebUser,
    deal_id: str,
    key: str,
    error: Exception,
    editing: str = "",
    draft: dict[str, Any] | None = None,
) -> HTMLResponse:
    return render_deal(
        user,
        deal_id,
        status_of(error),
        {key: message_of(user, error)},
        editing=editing,
        draft=draft,
    )


@router.post("/deals/{deal_id}/won", response_model=None)
def win(deal_id: str, user: WebWriterDep, form: FormDep) -> Response:
    found = known_deal(user, deal_id)
    if found is None:
        return not_found(user)
    try:
        committed = user.runtime.app.win_deal(UUID(found.id), user.actor)
    except COMMAND_ERRORS as error:
        return refused(user, found.id, "outcome", error)
    return after(user, committed, found.id, "won")


@router.post("/deals/{deal_id}/lost", response_model=None)
def lose(deal_id: str, user: WebWriterDep, form: FormDep) -> Response:
    found = known_deal(user, deal_id)
    if found is None:
        return not_found(user)
    try:
        committed = user.runtime.app.lose_deal(UUID(found.id), field(form, "reason"), user.actor)
    except COMMAND_ERRORS as error:
        return refused(user, found.id, "outcome", error)
    return after(user, committed, found.id, "lost")


def posted_probability(text: str) -> int | None:
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 3:
        raise InvalidInput("probability", "a probability is 0 to 100 percent")
    return int(text)


@router.post("/deals/{deal_id}/details", response_model=None)
def save_details(deal_id: str, user: WebWriterDep, form: FormDep) -> Response:
    """Title, expected close, probability (empty: the stage's default) and manager."""
    found = known_deal(user, deal_id)
    if found is None:
        return not_found(user)
    draft = {k: field(form, k) for k in ("title", "expected_close", "probability", "manager_id")}
    try:
        wanted = posted_probability(draft["probability"])
        probability: int | Unset | None = UNSET
        if (wanted is None and found.probability_manual) or (
            wanted is not None and (wanted != found.probability or not found.probability_manual)
        ):
            probability = wanted
        manager = parse_id(draft["manager_id"])
        if draft["manager_id"] and manager is None:
            raise InvalidInput("manager_id", "no such user")
        committed = user.runtime.app.update_deal(
            UUID(found.id),
            user.actor,
            title=draft["title"],
            expected_close=draft["expected_close"] or None,
            probability=probability,
            manager_id=UUID(manager) if manager else None,
        )
    except COMMAND_ERRORS as error:
        key = error.field if isinstance(error, InvalidInput) else "details"
        return refused(user, found.id, key, error, editing="details", draft=draft)
    return after(user, committed, found.id, "saved")


LINE_FIELDS = ("id", "product_id", "name", "quantity", "unit", "price", "cost", "discount", "vat")


def posted_lines(form: FormData) -> tuple[list[dict[str, Any]], list[int]]:
    """The editor's rows as command lines, and which row (1-based) each line came from.

    A removed row or an empty one (no name, no price) is left out.
    """
    count = form.get("rows")
    total = int(count) if isinstance(count, str) and count.isdigit() else 0
    lines: list[dict[str, Any]] = []
    rows: list[int] = []
    for index in range(min(total, MAX_LINE_ROWS)):
        prefix = f"line-{index}-"
        if field(form, f"{prefix}remove"):
            continue
        raw = {key: field(form, prefix + key) for key in LINE_FIELDS}
        if not (raw["name"] or raw["price"] or raw["product_id"]):
            continue
        line: dict[str, Any] = {k: v for k, v in raw.items() if v != ""}
        line.setdefault("quantity", "1")
        if raw["product_id"] and not raw["name"]:
            # a product picked on an empty row: name, unit, price, cost and VAT come from the
            # catalogue (whatever else the row gives wins)
            if not raw["vat"]:
                line.pop("vat", None)
        else:
            line["vat_included"] = bool(field(form, f"{prefix}vat_included"))
        lines.append(line)
        rows.append(index + 1)
    return lines, rows


def line_error(user: WebUser, error: Exception, rows: list[int]) -> str:
    """The domain's message, with the row it is about ("lines[1].price" → "Row 2")."""
    message = message_of(user, error)
    if isinstance(error, InvalidInput) and error.field.startswith("lines["):
        index = error.field[6:].split("]", 1)[0]
        if index.isdigit() and int(index) < len(rows):
            row = rows[int(index)]
            return user._("Row %(row)s: %(message)s") % {"row": row, "message": message}
    return message


@router.post("/deals/{deal_id}/lines", response_model=None)
def save_lines(deal_id: str, user: WebWriterDep, form: FormDep) -> Response:
    found = known_deal(user, deal_id)
    if found is None:
        return not_found(user)
    lines, rows = posted_lines(form)
    if field(form, "add"):  # "add rows": the same editor with more empty rows, nothing saved
        shown = int(field(form, "rows") or "0") + NEW_LINE_ROWS
        return redirect(f"/deals/{found.id}?edit=lines&rows={shown}#lines")
    try:
        if not lines:
            raise InvalidInput("lines", "a deal needs at least one line")
        committed = user.runtime.app.change_deal_lines(UUID(found.id), lines, user.actor)
    except COMMAND_ERRORS as error:
        return render_deal(
            user,
            found.id,
            status_of(error),
            {"lines": line_error(user, error, rows)},
            editing="lines",
            draft={"lines": posted_rows(form)},
        )
    return after(user, committed, found.id, "saved")


def posted_rows(form: FormData) -> list[dict[str, Any]]:
    """The editor's rows as typed (an error shows them again, not the saved lines)."""
    count = field(form, "rows")
    total = int(count) if count.isdigit() else 0
    out = []
    for index in range(min(total, MAX_LINE_ROWS)):
        prefix = f"line-{index}-"
        row: dict[str, Any] = {key: field(form, prefix + key) for key in LINE_FIELDS}
        row["vat_included"] = bool(field(form, f"{prefix}vat_included"))
        row["remove"] = bool(field(form, f"{prefix}remove"))
        out.append(row)
    return out


@router.post("/deals/{deal_id}/tasks", response_model=None)
def new_task(deal_id: str, user: WebWriterDep, form: FormDep) -> Response:
    """A task attached to the deal (and to its client), assigned to whoever is chosen."""
    found = known_deal(user, deal_id)
    if found is None:
        return not_found(user)
    draft = {k: field(form, k) for k in ("title", "type", "due_at", "assignee_id")}
    try:
        due = parse_local(draft["due_at"], user.zone, "due_at") if draft["due_at"] else None
        assignee = parse_id(draft["assignee_id"])
        committed = user.runtime.app.create_task(
            actor=user.actor,
            title=draft["title"],
            type=draft["type"] or "other",
            due_at=due,
            assignee_id=UUID(assignee) if assignee else None,
            contact_id=UUID(found.contact_id) if found.contact_id else None,
            deal_id=UUID(found.id),
        )
    except COMMAND_ERRORS as error:
        return refused(user, found.id, "task", error, draft=draft)
    return after(user, committed, found.id, "task")


@router.post("/deals/{deal_id}/calls", response_model=None)
def log_call(deal_id: str, user: WebWriterDep, form: FormDep) -> Response:
    """A call made or taken outside the telephony channel (`log_call`): a done call task of
    the deal, so it shows in the deal's history and tasks and in the client's timeline."""
    found = known_deal(user, deal_id)
    if found is None:
        return not_found(user)
    draft = {k: field(form, k) for k in ("direction", "outcome", "minutes", "note")}
    try:
        minutes = draft["minutes"]
        if minutes and not (minutes.isascii() and minutes.isdigit() and len(minutes) < 5):
            raise InvalidInput("minutes", "the duration is a whole number of minutes")
        direction, outcome = draft["direction"], draft["outcome"]
        title = " · ".join(
            part
            for part in (
                user._(DIRECTION_LABELS[direction]) if direction in DIRECTION_LABELS else "",
                user._(OUTCOME_LABELS[outcome]) if outcome in OUTCOME_LABELS else "",
                user._("%(minutes)s min") % {"minutes": minutes} if minutes else "",
            )
            if part
        )
        committed = user.runtime.app.log_call(
            actor=user.actor,
            direction=direction,
            outcome=outcome,
            duration=int(minutes) * 60 if minutes else None,
            note=draft["note"],
            contact_id=UUID(found.contact_id) if found.contact_id else None,
            deal_id=UUID(found.id),
            title=title,
        )
    except COMMAND_ERRORS as error:
        return refused(user, found.id, "call", error, draft=draft)
    return after(user, committed, found.id, "call")


DIRECTION_LABELS = {"outbound": "Outbound call", "inbound": "Inbound call"}
OUTCOME_LABELS = {"answered": "answered", "missed": "missed", "voicemail": "voicemail"}
