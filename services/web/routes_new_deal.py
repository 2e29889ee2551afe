"""The new-deal form (`GET /deals/new`) and its post (`POST /deals`).

The client is chosen or typed (a name, an e-mail or a phone: one match is taken, several are
offered to choose from), the company likewise by name; a deal opened from a conversation takes
the conversation's latest inquiry source and is linked to it. An error comes back next to its
field with the API's status code; a created deal redirects to its page.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from threadline.domain.model.errors import InvalidInput
from threadline.projections.companies import companies_page, company
from threadline.projections.contact_card import display_names
from threadline.projections.inbox import latest_inquiry_source
from threadline.projections.pipelines import PipelineRow, StageRow, pipelines
from threadline.projections.segments import build_contact_filter
from threadline.services.web.deps import WebUser, WebWriterDep
from threadline.services.web.errors import message_of, status_of
from threadline.services.web.posted_forms import (
    COMMAND_ERRORS,
    FormDep,
    field,
    parse_id,
    redirect,
)
from threadline.services.web.routes_contacts import people

router = APIRouter(include_in_schema=False)

CLIENT_MATCHES = 10
CURRENCIES = ("RUB", "USD", "EUR", "CNY", "KZT", "BYN")


def open_stages(found: list[PipelineRow]) -> list[tuple[PipelineRow, list[StageRow]]]:
    return [(p, [s for s in p.stages if s.meaning == "open"]) for p in found]


def client_matches(user: WebUser, text: str) -> list[dict[str, Any]]:
    """Clients whose name, e-mail or phone matches what was typed (at most a few)."""
    registry = user.runtime.app.attribute_registry()
    flt = build_contact_filter([("q", text)], registry)
    rows, _total = user.runtime.queries.contacts(flt, CLIENT_MATCHES, 0)
    return rows


def new_deal_form(
    user: WebUser,
    draft: dict[str, str],
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    matches: list[dict[str, Any]] | None = None,
) -> HTMLResponse:
    views = user.runtime.views
    found = pipelines(views)
    contact_name = ""
    if draft.get("contact_id"):
        contact_name = display_names(views, [draft["contact_id"]]).get(draft["contact_id"], "")
    firm = company(views, draft["company_id"]) if draft.get("company_id") else None
    source: dict[str, Any] = {}
    if draft.get("conversation_id"):
        source = latest_inquiry_source(views, draft["conversation_id"]) or {}
    return user.render(
        "deals/new.html",
        status_code=status_code,
        draft=draft,
        errors=errors or {},
        choices=open_stages(found),
        contact_name=contact_name,
        company_name=firm.name if firm else "",
        source=source,
        matches=matches or [],
        people=people(user),
        currencies=CURRENCIES,
    )


NEW_FIELDS = (
    "title",
    "stage",
    "contact_id",
    "company_id",
    "conversation_id",
    "client",
    "company",
    "manager_id",
    "currency",
    "amount",
    "expected_close",
)


NEW_ERROR_PLACES = frozenset(
    {"title", "stage", "client", "company", "manager_id", "amount", "lines[0].price", "currency"}
    | {"expected_close", "form"}
)
"""The new-deal form's fields that show their own error; any other goes above the form."""


@router.get("/deals/new", response_model=None)
def new_deal_page(request: Request, user: WebWriterDep) -> Response:
    given = request.query_params
    draft = {key: given.get(key, "").strip() for key in NEW_FIELDS}
    for key in ("contact_id", "company_id", "conversation_id"):
        draft[key] = parse_id(draft[key]) or ""
    if not draft["stage"]:
        # the first open stage of the pipeline asked for (the board's), else of the first one
        wanted = parse_id(given.get("pipeline", "")) or ""
        offered = [
            (p, stages) for p, stages in open_stages(pipelines(user.runtime.views)) if stages
        ]
        chosen = next((c for c in offered if c[0].id == wanted), offered[0] if offered else None)
        draft["stage"] = f"{chosen[0].id}/{chosen[1][0].id}" if chosen else ""
    draft["manager_id"] = draft["manager_id"] or user.id
    draft["currency"] = draft["currency"] or "RUB"
    if draft["contact_id"] and not draft["company_id"]:
        card = user.runtime.queries.contact(draft["contact_id"])
        company_id = (card or {}).get("company_id")
        draft["company_id"] = str(company_id) if company_id else ""
    return new_deal_form(user, draft)


def find_client(user: WebUser, draft: dict[str, str]) -> tuple[str, list[dict[str, Any]]]:
    """The contact the form names: chosen, or the one client matching what was typed."""
    if draft["contact_id"]:
        return draft["contact_id"], []
    text = draft["client"]
    if not text:
        return "", []
    matches = client_matches(user, text)
    if len(matches) == 1:
        return str(matches[0]["id"]), []
    if not matches:
        raise InvalidInput("client", "no client matches; check the name, e-mail or phone")
    return "", matches


def find_company(user: WebUser, draft: dict[str, str]) -> str:
    if draft["company_id"]:
        return draft["company_id"]
    text = draft["company"]
    if not text:
        return ""
    rows, _total = companies_page(user.runtime.views, 2, 0, q=text)
    if len(rows) != 1:
        raise InvalidInput(
            "company",
            "no company matches" if not rows else "several companies match; type more of the name",
        )
    return rows[0].id


@router.post("/deals", response_model=None)
def create(user: WebWriterDep, form: FormDep) -> Response:
    draft = {key: field(form, key) for key in NEW_FIELDS}
    matches: list[dict[str, Any]] = []
    try:
        pipeline_id, _, stage_id = draft["stage"].partition("/")
        if not parse_id(pipeline_id):
            raise InvalidInput("stage", "choose a pipeline and its stage")
        contact_id, matches = find_client(user, draft)
        if matches:
            raise InvalidInput("client", "several clients match; choose one")
        company_id = find_company(user, draft)
        manager = parse_id(draft["manager_id"])
        conversation = parse_id(draft["conversation_id"])
        source = None
        if conversation:
            source = latest_inquiry_source(user.runtime.views, conversation) or None
        committed = user.runtime.app.create_deal(
            actor=user.actor,
            title=draft["title"],
            pipeline_id=UUID(pipeline_id),
            stage_id=stage_id or None,
            contact_id=UUID(contact_id) if contact_id else None,
            company_id=UUID(company_id) if company_id else None,
            manager_id=UUID(manager) if manager else None,
            currency=draft["currency"] or "RUB",
            amount=draft["amount"] or None,
            expected_close=draft["expected_close"] or None,
            source=source,
            conversation_id=UUID(conversation) if conversation else None,
        )
        deal_id = committed.value
    except COMMAND_ERRORS as error:
        key = error.field if isinstance(error, InvalidInput) else "form"
        key = {"contact_id": "client", "company_id": "company", "stage_id": "stage"}.get(key, key)
        key = key if key in NEW_ERROR_PLACES else "form"
        return new_deal_form(user, draft, status_of(error), {key: message_of(user, error)}, matches)
    user.runtime.wait_for_views(committed.notification_id)
    return redirect(f"/deals/{deal_id}", "created")
