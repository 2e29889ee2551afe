"""Saved segments on the web: the list with each segment's live count, create, edit, delete.

The filter is typed as the query string of `GET /api/contacts` (one ``key=value`` a line, or
joined with ``&``) and checked exactly as the API checks it (`segments_service.check_filter`),
so an error names the key. The "Count" button (and typing, through HTMX) shows how many
contacts match the filter as written, before it is saved. Admins and managers change
segments; auditors may look.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from threadline.domain.model.errors import InvalidInput
from threadline.projections.saved_segments import (
    SavedSegmentRow,
    saved_segment,
    saved_segments,
)
from threadline.services.segments_service import (
    check_filter,
    filter_pairs,
    filter_text,
    matching_count,
    refuse_if_used,
    segment_count,
)
from threadline.services.web.admin.common import EditorDep
from threadline.services.web.deps import Forbidden, WebUser, WebUserDep
from threadline.services.web.errors import message_of, status_of
from threadline.services.web.posted_forms import COMMAND_ERRORS, FormDep, field, parse_id, redirect

router = APIRouter(include_in_schema=False)

READERS = ("admin", "manager", "auditor")
PREVIEW = 20  # contacts shown under a segment's form
FLASHES = {
    "saved": "The segment was saved.",
    "deleted": "The segment was deleted.",
}
KEYS_HELP = (
    "tag",
    "lifecycle",
    "responsible_id",
    "company_id",
    "source",
    "created_from",
    "created_to",
    "q",
    "preferred_channel",
    "last_contact_from",
    "last_contact_to",
    "utm_source",
    "utm_campaign",
    "abc_class",
    "abc_by",
    "abc_from",
    "abc_to",
    "balance_gt",
    "balance_lt",
    "balance_currency",
    "segment_id",
    "attr.KEY",
    "attr.KEY.OP",
)


def _reader(user: WebUser) -> None:
    if user.role not in READERS:
        raise Forbidden(user._("Only managers and admins can change this."))


def _known(user: WebUser, segment_id: str) -> SavedSegmentRow | None:
    known = parse_id(segment_id)
    return saved_segment(user.runtime.views, known) if known else None


def _not_found(user: WebUser) -> HTMLResponse:
    text = user._("This segment does not exist.")
    return user.render("error.html", status_code=404, title="404", message=text)


def _field_of(error: Exception) -> str:
    name = str(getattr(error, "field", "") or "")
    if name in ("name", "description"):
        return name
    return "filter" if isinstance(error, InvalidInput) else "name"


def _problem(user: WebUser, error: Exception) -> str:
    """The message, naming the filter's key when the filter is wrong (``abc_class: ...``)."""
    text = message_of(user, error)
    name = str(getattr(error, "field", "") or "")
    if isinstance(error, InvalidInput) and name.startswith("filter"):
        return f"{name.removeprefix('filter').lstrip('.')}: {text}".lstrip(": ")
    return text


@router.get("/segments")
def segments_list(user: WebUserDep, done: str | None = None) -> HTMLResponse:
    _reader(user)
    runtime = user.runtime
    registry = runtime.app.attribute_registry()
    rows = []
    for row in saved_segments(runtime.views):
        count, problem = segment_count(runtime.views, runtime.queries, registry, row)
        rows.append({"row": row, "count": count, "problem": problem})
    return user.render(
        "segments.html",
        items=rows,
        flashes=[user._(FLASHES[done])] if done in FLASHES else [],
    )


def _render_form(
    user: WebUser,
    found: SavedSegmentRow | None,
    draft: dict[str, str],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    flash: str | None = None,
) -> HTMLResponse:
    runtime = user.runtime
    count: int | None = None
    problem = ""
    contacts: list[dict[str, Any]] = []
    try:
        flt = check_filter(
            runtime.views,
            runtime.app.attribute_registry(),
            _pairs(draft.get("filter", "")),
            found.id if found else None,
        )
        contacts, count = runtime.queries.contacts(flt, PREVIEW, 0)
    except InvalidInput as error:
        problem = _problem(user, error)
    return user.render(
        "segments_edit.html",
        status_code=status_code,
        segment=found,
        draft=draft,
        errors=errors or {},
        count=count,
        problem=problem,
        contacts=contacts,
        keys=KEYS_HELP,
        can_edit=user.role in ("admin", "manager"),
        flashes=[user._(FLASHES[flash])] if flash in FLASHES else [],
    )


@router.get("/segments/new")
def new_segment(request: Request, user: EditorDep) -> HTMLResponse:
    written = request.query_params.get("filter", "")
    return _render_form(user, None, {"name": "", "description": "", "filter": written})


@router.get("/segments/count")
def count_fragment(request: Request, user: WebUserDep) -> HTMLResponse:
    """The live count of the filter as typed (an HTMX fragment)."""
    _reader(user)
    runtime = user.runtime
    segment_id = parse_id(request.query_params.get("segment_id", ""))
    try:
        flt = check_filter(
            runtime.views,
            runtime.app.attribute_registry(),
            _pairs(request.query_params.get("filter", "")),
            segment_id,
        )
        text = user._("%(count)s contacts match.") % {"count": matching_count(runtime.queries, flt)}
        return HTMLResponse(f'<span class="segment-count">{_escape(text)}</span>')
    except InvalidInput as error:
        message = _problem(user, error)
        return HTMLResponse(f'<span class="error segment-count">{_escape(message)}</span>')


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def _draft(form: Any) -> dict[str, str]:
    raw = form.get("filter")
    return {
        "name": field(form, "name"),
        "description": field(form, "description"),
        "filter": raw.strip() if isinstance(raw, str) else "",
    }


def _pairs(written: str) -> list[tuple[str, str]]:
    """One ``key=value`` a line (the value as typed), or one query string joined with ``&``."""
    lines = [line.strip() for line in written.replace("\r", "").split("\n") if line.strip()]
    if len(lines) == 1 and "&" in lines[0]:
        return filter_pairs(lines[0])
    pairs = []
    for line in lines:
        key, equals, value = line.partition("=")
        if not equals:
            raise InvalidInput(f"filter.{key.strip()[:50]}", "write key=value")
        pairs.append((key.strip(), value.strip()))
    return pairs


@router.post("/segments/new", response_model=None)
def create_segment(user: EditorDep, form: FormDep) -> Response:
    draft = _draft(form)
    runtime = user.runtime
    try:
        pairs = _pairs(draft["filter"])
        check_filter(runtime.views, runtime.app.attribute_registry(), pairs)
        committed = runtime.app.save_segment(
            draft["name"], pairs, user.actor, description=draft["description"]
        )
    except COMMAND_ERRORS as error:
        errors = {_field_of(error): _problem(user, error)}
        return _render_form(user, None, draft, errors, status_of(error))
    runtime.wait_for_views(committed.notification_id)
    return redirect(f"/segments/{committed.value}", "saved")


@router.get("/segments/{segment_id}", response_model=None)
def segment_page(segment_id: str, user: WebUserDep, done: str | None = None) -> Response:
    _reader(user)
    found = _known(user, segment_id)
    if found is None:
        return _not_found(user)
    draft = {
        "name": found.name,
        "description": found.description,
        "filter": filter_text(found.pairs),
    }
    return _render_form(user, found, draft, flash=done)


@router.post("/segments/{segment_id}", response_model=None)
def save_segment(segment_id: str, user: EditorDep, form: FormDep) -> Response:
    found = _known(user, segment_id)
    if found is None:
        return _not_found(user)
    draft = _draft(form)
    runtime = user.runtime
    try:
        pairs = _pairs(draft["filter"])
        check_filter(runtime.views, runtime.app.attribute_registry(), pairs, found.id)
        committed = runtime.app.change_segment(
            UUID(found.id),
            user.actor,
            name=draft["name"],
            pairs=pairs,
            description=draft["description"],
        )
    except COMMAND_ERRORS as error:
        errors = {_field_of(error): _problem(user, error)}
        return _render_form(user, found, draft, errors, status_of(error))
    runtime.wait_for_views(committed.notification_id)
    return redirect(f"/segments/{found.id}", "saved")


@router.post("/segments/{segment_id}/delete", response_model=None)
def delete_segment(segment_id: str, user: EditorDep) -> Response:
    found = _known(user, segment_id)
    if found is None:
        return _not_found(user)
    try:
        refuse_if_used(user.runtime.views, found.id)
        committed = user.runtime.app.delete_segment(UUID(found.id), user.actor)
    except COMMAND_ERRORS as error:
        draft = {
            "name": found.name,
            "description": found.description,
            "filter": filter_text(found.pairs),
        }
        errors = {"delete": message_of(user, error)}
        return _render_form(user, found, draft, errors, status_of(error))
    user.runtime.wait_for_views(committed.notification_id)
    return redirect("/segments", "deleted")
