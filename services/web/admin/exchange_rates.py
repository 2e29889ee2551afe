"""The exchange rates screen: the rates in force on a day, a rate typed in, the Bank's file.

A manager sees, for a day, the rate each currency has then (the day's own or the latest
before it, marked with its own date), types in a rate the Central Bank published, or
uploads the Bank's daily file (`XML_daily.asp`) as `threadline rates import` reads it.
Both go through the same code as the API (`record_exchange_rate`, `import_cbr_rates`), so
the same rate twice changes nothing and a malformed file records nothing and says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from threadline.domain.model.errors import InvalidInput
from threadline.projections.catalogue import rates_on
from threadline.services.cbr_rates import MAX_FILE_BYTES, CbrFileError, import_cbr_rates
from threadline.services.web.admin.common import EditorDep, can_edit, text, wait
from threadline.services.web.deps import WebUser, WebUserDep
from threadline.services.web.errors import message_of, status_of
from threadline.services.web.posted_forms import COMMAND_ERRORS, FormDep, redirect

router = APIRouter()

FLASHES = {
    "recorded": "The rate is recorded.",
    "unchanged": "This rate was recorded already; nothing changed.",
}


@dataclass
class RateDraft:
    """The "enter a rate" form as typed."""

    currency: str = ""
    day: str = ""
    rate: str = ""
    nominal: str = "1"
    errors: dict[str, str] = field(default_factory=dict)


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


def _count(request: Request, name: str) -> int | None:
    given = request.query_params.get(name, "")
    return int(given) if given.isascii() and given.isdigit() and len(given) < 6 else None


def _page(
    user: WebUser,
    day: date,
    draft: RateDraft | None = None,
    status_code: int = 200,
    messages: list[str] | None = None,
    import_error: str = "",
) -> HTMLResponse:
    return user.render(
        "admin/exchange_rates.html",
        status_code=status_code,
        day=day.isoformat(),
        rates=rates_on(user.runtime.views, day),
        draft=draft or RateDraft(day=day.isoformat()),
        import_error=import_error,
        editable=can_edit(user),
        flashes=messages or [],
    )


@router.get("/exchange-rates")
def rates_page(request: Request, user: WebUserDep) -> HTMLResponse:
    day = _day(request.query_params.get("day", "")) or datetime.now(user.zone).date()
    messages = []
    done = request.query_params.get("done")
    if done in FLASHES:
        messages.append(user._(FLASHES[done]))
    recorded, unchanged = _count(request, "recorded"), _count(request, "unchanged")
    if done == "imported" and recorded is not None and unchanged is not None:
        messages.append(
            user._("The file is imported: {recorded} rates recorded, {unchanged} already there.")
            .replace("{recorded}", str(recorded))
            .replace("{unchanged}", str(unchanged))
        )
    return _page(user, day, messages=messages)


@router.post("/exchange-rates", response_model=None)
def rate_record(user: EditorDep, form: FormDep) -> Response:
    draft = RateDraft(
        currency=text(form, "currency").strip().upper(),
        day=text(form, "day").strip(),
        rate=text(form, "rate").strip(),
        nominal=text(form, "nominal").strip() or "1",
    )
    day = _day(draft.day)
    shown = day or datetime.now(user.zone).date()
    if day is None:
        draft.errors["day"] = user._("a date like 2026-12-06")
    if not (draft.nominal.isascii() and draft.nominal.isdigit() and len(draft.nominal) <= 7):
        draft.errors["nominal"] = user._("a whole number, such as 1 or 100")
    if draft.errors or day is None:
        return _page(user, shown, draft, 422)
    try:
        committed = user.runtime.app.record_exchange_rate(
            user.actor, draft.currency, day, draft.rate, nominal=int(draft.nominal)
        )
    except COMMAND_ERRORS as error:
        key = error.field if isinstance(error, InvalidInput) else "form"
        draft.errors["currency" if key == "base" else key] = message_of(user, error)
        return _page(user, shown, draft, status_of(error))
    wait(user.runtime, committed)
    done = "recorded" if committed.value else "unchanged"
    return redirect(f"/admin/exchange-rates?{urlencode({'day': day.isoformat()})}", done)


@router.post("/exchange-rates/import", response_model=None)
def rates_import(user: EditorDep, form: FormDep) -> Response:
    upload = form.get("file")
    data = upload.file.read(MAX_FILE_BYTES + 1) if isinstance(upload, UploadFile) else b""
    try:
        result = import_cbr_rates(user.runtime.app, data, user.actor)
    except CbrFileError as error:
        today = datetime.now(user.zone).date()
        return _page(user, today, status_code=422, import_error=str(error))
    user.runtime.wait_for_views(result.last_notification_id)
    query = urlencode(
        {
            "day": result.day.isoformat(),
            "recorded": result.recorded,
            "unchanged": result.unchanged,
            "done": "imported",
        }
    )
    return redirect(f"/admin/exchange-rates?{query}")
