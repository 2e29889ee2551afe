"""The companies: a searchable, paged list, and a company's page with its edit form.

The page shows what the business needs to invoice a counterparty (legal form, roles,
client group, every requisite set with its bank accounts) and the people who work
there. The edit form posts to the same command as `PATCH /api/companies/{id}`
(`update_company`), so a wrong check digit comes back next to its field with the
domain's own message and the API's status code, and nothing is recorded.

The form edits the first requisite set and its first bank account (the common case:
one set, one account); other sets and accounts are kept as they are. Deals are
listed on the page by the deals view (the template's `company_deals` block).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.requisites import CompanyRole, LegalForm
from threadline.projections.companies import (
    CompanyRow,
    companies_page,
    company,
    company_contacts,
)
from threadline.services.web.client_deals import client_deals
from threadline.services.web.company_money import company_money
from threadline.services.web.deps import WebUser, WebUserDep, WebWriterDep
from threadline.services.web.errors import message_of, status_of
from threadline.services.web.posted_forms import COMMAND_ERRORS, FormDep, field, parse_id, redirect

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
MAX_PAGE = 1_000_000

LEGAL_FORM_LABELS = {
    "company": "Organisation",
    "sole_trader": "Sole trader",
    "private_person": "Private person",
}
ROLE_LABELS = {
    "client": "Client",
    "supplier": "Supplier",
    "partner": "Partner",
    "own": "Our company",
}
LABELS = {"forms": LEGAL_FORM_LABELS, "roles": ROLE_LABELS}
FLASHES = {"saved": "Saved.", "created": "The company was created."}

SET_FIELDS = ("label", "inn", "kpp", "ogrn", "legal_address", "postal_address")
ACCOUNT_FIELDS = ("bank_name", "bik", "account", "correspondent_account")


def _not_found(user: WebUser) -> HTMLResponse:
    text = user._("This company does not exist.")
    return user.render("error.html", status_code=404, title="404", message=text)


def _page_number(request: Request) -> int:
    given = request.query_params.get("page", "1").strip()
    if not (given.isascii() and given.isdigit()):
        return 1
    return max(1, min(int(given[:8]), MAX_PAGE))


@router.get("/companies")
def companies_list(request: Request, user: WebUserDep) -> HTMLResponse:
    q = request.query_params.get("q", "").strip()[:200]
    role = request.query_params.get("role", "").strip()
    role = role if role in ROLE_LABELS else ""
    number = _page_number(request)
    rows, total = companies_page(
        user.runtime.views, PAGE_SIZE, (number - 1) * PAGE_SIZE, q=q or None, role=role or None
    )
    query = [(k, v) for k, v in (("q", q), ("role", role)) if v]
    return user.render(
        "companies/list.html",
        items=rows,
        total=total,
        number=number,
        pages=max(1, -(-total // PAGE_SIZE)),
        base=urlencode(query),
        q=q,
        role=role,
        labels=LABELS,
        roles=[r.value for r in CompanyRole],
        error="",
        name="",
    )


@router.post("/companies", response_model=None)
def create_company(user: WebWriterDep, form: FormDep) -> Response:
    """A new company by name; the rest is filled in on its page."""
    name = field(form, "name")
    try:
        committed = user.runtime.app.create_company(user.actor, name)
    except COMMAND_ERRORS as error:
        rows, total = companies_page(user.runtime.views, PAGE_SIZE, 0)
        return user.render(
            "companies/list.html",
            status_code=status_of(error),
            items=rows,
            total=total,
            number=1,
            pages=max(1, -(-total // PAGE_SIZE)),
            base="",
            q="",
            role="",
            labels=LABELS,
            roles=[r.value for r in CompanyRole],
            error=message_of(user, error),
            name=name,
        )
    user.runtime.wait_for_views(committed.notification_id)
    return redirect(f"/companies/{committed.value}?edit=1", "created")


def _draft_of(found: CompanyRow) -> dict[str, Any]:
    """The edit form's values from the company as it is (its first set and account)."""
    first = found.requisites[0] if found.requisites else {}
    account = (first.get("bank_accounts") or [{}])[0]
    return {
        "name": found.name,
        "roles": list(found.roles),
        "legal_form": found.legal_form or "",
        "client_group": found.client_group,
        **{key: str(first.get(key, "")) for key in SET_FIELDS},
        **{key: str(account.get(key, "")) for key in ACCOUNT_FIELDS},
    }


def _draft_posted(form: FormData) -> dict[str, Any]:
    roles = [v for v in form.getlist("roles") if isinstance(v, str)]
    return {
        "name": field(form, "name"),
        "roles": roles,
        "legal_form": field(form, "legal_form"),
        "client_group": field(form, "client_group"),
        **{key: field(form, key) for key in (*SET_FIELDS, *ACCOUNT_FIELDS)},
    }


def _requisites_of(found: CompanyRow, draft: dict[str, Any]) -> list[dict[str, Any]]:
    """Every set, the first replaced by the form's (dropped when the form's is all empty)."""
    sets = [dict(s) for s in found.requisites]
    first = dict(sets[0]) if sets else {}
    accounts = list(first.get("bank_accounts") or [])
    account = {key: draft[key] for key in ACCOUNT_FIELDS}
    # Clearing every field of the form's account removes it; the other accounts stay.
    accounts = [account, *accounts[1:]] if any(account.values()) else accounts[1:]
    edited = {**{key: draft[key] for key in SET_FIELDS}, "bank_accounts": accounts}
    rest = sets[1:]
    if any(edited[key] for key in SET_FIELDS) or accounts:
        return [edited, *rest]
    return rest


def _error_key(path: str) -> str:
    """The form field a domain error's path names (`requisites.0.bank_accounts.0.bik` → bik);
    a set or account the form does not show is reported above the form."""
    if not path.startswith("requisites."):
        return path
    parts = path.split(".")
    shown = parts[1] == "0" and (len(parts) < 5 or parts[3] == "0")
    return parts[-1] if shown else "form"


def _render_page(
    user: WebUser,
    found: CompanyRow,
    *,
    status_code: int = 200,
    editing: bool = False,
    draft: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    flash: str | None = None,
) -> HTMLResponse:
    return user.render(
        "companies/page.html",
        status_code=status_code,
        company=found,
        contacts=company_contacts(user.runtime.views, found.id),
        client_deals=client_deals(user.runtime.views, company_id=found.id),
        money=company_money(user, found),  # documents, payments, settlement (company_money)
        editing=editing and user.can_write,
        draft=draft or _draft_of(found),
        errors=errors or {},
        labels=LABELS,
        roles=[r.value for r in CompanyRole],
        legal_forms=[f.value for f in LegalForm],
        flashes=[user._(FLASHES[flash])] if flash in FLASHES else [],
    )


@router.get("/companies/{company_id}", response_model=None)
def company_page(
    company_id: str, user: WebUserDep, edit: str | None = None, done: str | None = None
) -> Response:
    known = parse_id(company_id)
    found = company(user.runtime.views, known) if known else None
    if found is None:
        return _not_found(user)
    return _render_page(user, found, editing=bool(edit), flash=done)


@router.post("/companies/{company_id}", response_model=None)
def save_company(company_id: str, user: WebWriterDep, form: FormDep) -> Response:
    known = parse_id(company_id)
    found = company(user.runtime.views, known) if known else None
    if found is None:
        return _not_found(user)
    draft = _draft_posted(form)
    try:
        if not draft["name"]:
            raise InvalidInput("name", "must not be empty")
        committed = user.runtime.app.update_company(
            UUID(found.id),
            user.actor,
            name=draft["name"],
            roles=draft["roles"],
            legal_form=draft["legal_form"] or None,
            requisites=_requisites_of(found, draft),
            client_group=draft["client_group"],
        )
    except COMMAND_ERRORS as error:
        key = _error_key(error.field) if isinstance(error, InvalidInput) else "form"
        return _render_page(
            user,
            found,
            status_code=status_of(error),
            editing=True,
            draft=draft,
            errors={key: message_of(user, error)},
        )
    user.runtime.wait_for_views(committed.notification_id)
    return redirect(f"/companies/{found.id}", "saved")
