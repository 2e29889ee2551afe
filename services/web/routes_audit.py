"""The audit screen (admins and auditors): a client's history with actor and cause, the card as
it stood at a chosen moment, the exports, verifying the chain, and the access log.

Everything here reads what the audit services already compute, so the screen shows exactly
what `GET /api/audit/...` and `threadline audit ...` answer:

- `GET /audit`: open a client's history by id or by a search (the contacts list's search),
  the verify panel, a link to the access log.
- `GET /audit/contacts/{id}`: the feed for the client (`services/audit_feed.py`, the contacts
  merged into it included), oldest first, a page at a time; each row links to the row of its
  cause. `?at=` (a `datetime-local` value in the user's zone) adds the card and timeline as
  they stood then (`services/history_at.py`). Opening it is a read of the client's data, so
  the access log records it; so does each export (`.../export.jsonl`, `.../export.html`,
  `services/audit_export.py`).
- `POST /audit/verify` walks the whole log against the chain (`EventChain.verify`) on a thread
  of its own, since a big log takes minutes and a request must not wait for it; the panel
  (`GET /audit/verify`, an HTMX partial) polls itself while the walk runs. Verifying changes
  nothing, so auditors may start it.
- `GET /audit/access`: who read which client, conversation, attachment or export.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from threadline.domain.model.errors import InvalidInput
from threadline.projections.base import parse_ts, ts
from threadline.projections.contact_card import identities_of
from threadline.projections.queries import ContactFilter
from threadline.projections.users import user as user_row
from threadline.services.access_log import AccessEntry, AccessQuery
from threadline.services.audit_chain import ChainReport, EventChain
from threadline.services.audit_export import (
    ExportScope,
    attachments,
    chain_state,
    exported_events,
    render_html,
    summary,
    write_jsonl,
)
from threadline.services.audit_feed import AuditEvent, AuditFilter, audit_page
from threadline.services.history_at import NotYetIndexed, contact_at, position_at
from threadline.services.web.deps import Forbidden, WebUser, WebUserDep
from threadline.services.web.errors import message_of
from threadline.services.web.local_time import parse_local
from threadline.services.web.posted_forms import is_htmx, parse_id
from threadline.services.web.routes_contacts import LABELS, whole_number

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

AUDITORS = ("admin", "auditor")
HISTORY_PAGE = 100
ACCESS_PAGE = 100
SEARCH_LIMIT = 20
ACCESS_KINDS = ("contact", "conversation", "attachment", "export")
LARGEST_POSITION = 2**63 - 1


async def web_auditor(user: WebUserDep) -> WebUser:
    """The audit screen shows every event's content, personal data included: admins and
    auditors only (the API's rule for `/api/audit/...`)."""
    if user.role not in AUDITORS:
        raise Forbidden(user._("Only auditors and admins can open the audit screen."))
    return user


AuditorDep = Annotated[WebUser, Depends(web_auditor)]


def _not_found(user: WebUser, message: str) -> HTMLResponse:
    return user.render("error.html", status_code=404, title="404", message=message)


# -- verifying the chain ----------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyRun:
    """One walk of the log against the chain: running (`finished_at` None) or finished with
    its report (or the error that stopped it)."""

    started_at: str
    total: int
    checked: int = 0
    finished_at: str | None = None
    report: ChainReport | None = None
    error: str = ""

    @property
    def running(self) -> bool:
        return self.finished_at is None


class Verifications:
    """The verification of one web app (one per process): at most one walk at a time, since a
    second would only read the whole log again for the same answer; the last one is kept so
    every auditor's panel shows it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: VerifyRun | None = None

    @property
    def current(self) -> VerifyRun | None:
        with self._lock:
            return self._current

    def start(self, chain: EventChain, total: int) -> VerifyRun:
        """Start a walk on a thread of its own; the one already running if there is one."""
        with self._lock:
            if self._current is not None and self._current.running:
                return self._current
            run = VerifyRun(started_at=ts(datetime.now(UTC)), total=total)
            self._current = run
        threading.Thread(
            target=self._walk, args=(chain,), name="threadline-audit-verify", daemon=True
        ).start()
        return run

    def _update(self, **changes: Any) -> None:
        with self._lock:
            if self._current is not None:
                self._current = dataclasses.replace(self._current, **changes)

    def _walk(self, chain: EventChain) -> None:
        def progress(checked: int, total: int) -> None:
            self._update(checked=checked, total=max(total, checked))

        try:
            report = chain.verify(progress)
        except Exception as error:  # the database went away: say so on the panel
            log.warning("verifying the event chain failed", exc_info=True)
            self._update(error=str(error) or type(error).__name__)
        else:
            self._update(checked=report.checked, report=report)
        finally:
            self._update(finished_at=ts(datetime.now(UTC)))


_STATE_LOCK = threading.Lock()


def verifications(request: Request) -> Verifications:
    """The app's verification state (made at the first use, on the FastAPI app's state)."""
    with _STATE_LOCK:
        found: Verifications | None = getattr(request.app.state, "audit_verifications", None)
        if found is None:
            found = Verifications()
            request.app.state.audit_verifications = found
        return found


def _verify_panel(user: WebUser) -> HTMLResponse:
    return user.render("audit/_verify.html", run=verifications(user.request).current)


@router.get("/audit/verify")
def verify_panel(user: AuditorDep) -> HTMLResponse:
    """The verify panel (an HTMX partial that polls itself while a walk runs)."""
    return _verify_panel(user)


@router.post("/audit/verify", response_model=None)
def start_verify(user: AuditorDep) -> Response:
    """Start verifying the whole log (or show the walk already running)."""
    runtime = user.runtime
    total = int(runtime.app.recorder.max_notification_id() or 0)
    verifications(user.request).start(runtime.chain, total)
    if is_htmx(user):
        return _verify_panel(user)
    return RedirectResponse("/audit#verify", status_code=303)


# -- the start page ---------------------------------------------------------------------------


@router.get("/audit", response_model=None)
def audit_home(user: AuditorDep, q: str = "") -> Response:
    """Open a client's history by id, or list the clients a search finds."""
    text = q.strip()[:200]
    known = parse_id(text) if text else None
    if known is not None:
        return RedirectResponse(f"/audit/contacts/{known}", status_code=303)
    runtime = user.runtime
    matches: list[dict[str, Any]] = []
    if text:  # a search is no read of one client's data (the access log leaves lists out)
        matches, _ = runtime.queries.contacts(ContactFilter(text=text), SEARCH_LIMIT, 0)
    return user.render(
        "audit/index.html",
        q=text,
        matches=matches,
        identities=identities_of(runtime.views, [str(c["id"]) for c in matches]),
        run=verifications(user.request).current,
    )


# -- a client's history -----------------------------------------------------------------------


def _history_rows(events: list[AuditEvent], links: dict[str, str]) -> list[dict[str, Any]]:
    """Each event with what it says and a link to the row of its cause: an anchor on this
    page, else the page that starts at the cause."""
    shown = {e.position for e in events}
    rows = []
    for event in events:
        cause = event.caused_by
        href = None
        if cause is not None:
            href = (
                f"#p{cause}"
                if cause in shown
                else "?" + urlencode({"after": cause - 1, **links}) + f"#p{cause}"
            )
        rows.append(
            {
                "event": event,
                "summary": summary(event),
                "attachments": attachments(event),
                "cause_href": href,
            }
        )
    return rows


def _card_then(
    user: WebUser, contact_id: str, raw: str
) -> tuple[dict[str, Any] | None, str, int, str]:
    """The card as of the moment typed in `raw` (the user's zone): (card, problem, status,
    the moment in UTC). A problem is a message to show; status 404: no such client then."""
    try:
        moment = ts(parse_local(raw, user.zone, "at"))
    except InvalidInput as error:
        return None, message_of(user, error), 422, ""
    runtime = user.runtime
    position = position_at(runtime.views, moment)
    try:
        card = contact_at(runtime.app, runtime.views, contact_id, position)
    except NotYetIndexed:
        problem = user._("The audit index has not reached that moment yet; try again in a moment.")
        return None, problem, 503, moment
    if card is None:
        return None, "", 404, moment
    card["position"] = position
    card["timeline"] = list(reversed(card["timeline"]))  # newest first, as the client's page
    return card, "", 200, moment


def _local_seconds(moment: str, user: WebUser) -> str:
    """The moment asked for, back in its `datetime-local` input in the user's zone, to the
    second (`local_input` keeps minutes, and an auditor's moment is often within one)."""
    return parse_ts(moment).astimezone(user.zone).strftime("%Y-%m-%dT%H:%M:%S")


@router.get("/audit/contacts/{contact_id}", response_model=None)
def contact_history(contact_id: str, user: AuditorDep, after: str = "", at: str = "") -> Response:
    """The client's events with actor and cause, oldest first; `at`: the card then too."""
    known = parse_id(contact_id)
    if known is None:
        return _not_found(user, user._("This client does not exist."))
    runtime = user.runtime
    start = whole_number(after, LARGEST_POSITION) or 0
    page = audit_page(
        runtime.views, runtime.app, AuditFilter(contact_id=known), start, HISTORY_PAGE
    )
    contact = runtime.queries.contact(known)
    if contact is None and not page.events and start == 0:
        return _not_found(user, user._("This client does not exist."))
    then, problem, status_code, moment = (None, "", 200, "")
    if at.strip():
        then, problem, status_code, moment = _card_then(user, known, at)
        if status_code == 404:
            return _not_found(user, user._("This client did not exist at that moment."))
    runtime.access_log.record(user, "contact", known, via="web", path=user.request.url.path)
    links = {"at": at.strip()} if at.strip() else {}
    return user.render(
        "audit/history.html",
        status_code=status_code,
        contact_id=known,
        contact=contact,
        rows=_history_rows(page.events, links),
        first_page=start == 0,
        next_url="?" + urlencode({"after": page.next_after, **links}) if page.next_after else "",
        first_url="?" + urlencode(links),
        at=at.strip(),
        at_value=_local_seconds(moment, user) if moment else at.strip()[:30],
        moment=moment,
        then=then,
        problem=problem,
        labels=LABELS,
    )


def _export(user: WebUser, contact_id: str, fmt: str) -> Response:
    """The client's history as a download (JSON lines or the readable report); recorded."""
    known = parse_id(contact_id)
    if known is None:
        return _not_found(user, user._("This client does not exist."))
    runtime = user.runtime
    scope = ExportScope(contact_id=known)
    events = list(exported_events(runtime.views, runtime.app, scope))
    if not events and runtime.queries.contact(known) is None:
        return _not_found(user, user._("This client does not exist."))
    if fmt == "html":
        exported_by = f"{user.name} ({user.actor})" if user.name else user.actor
        body = render_html(events, scope, exported_by, chain_state(runtime.chain))
        media_type = "text/html; charset=utf-8"
    else:
        buffer = io.StringIO()
        write_jsonl(iter(events), buffer)
        body = buffer.getvalue()
        media_type = "application/x-ndjson"
    runtime.access_log.record(user, "export", known, via="web", path=user.request.url.path)
    return Response(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="threadline-audit-{known}.{fmt}"'},
    )


@router.get("/audit/contacts/{contact_id}/export.jsonl", response_model=None)
def export_jsonl(contact_id: str, user: AuditorDep) -> Response:
    return _export(user, contact_id, "jsonl")


@router.get("/audit/contacts/{contact_id}/export.html", response_model=None)
def export_html(contact_id: str, user: AuditorDep) -> Response:
    return _export(user, contact_id, "html")


# -- the access log ---------------------------------------------------------------------------


def _reader_names(user: WebUser, entries: list[AccessEntry]) -> dict[str, str]:
    """The name (else e-mail) of each user among the page's readers."""
    names: dict[str, str] = {}
    for actor in {e.actor for e in entries}:
        kind, _, rest = actor.partition(":")
        known = parse_id(rest) if kind == "user" else None
        row = user_row(user.runtime.views, known) if known else None
        if row is not None:
            names[actor] = str(row.name or row.email)
    return names


@router.get("/audit/access")
def access_page(
    user: AuditorDep, actor: str = "", kind: str = "", target: str = "", after: str = ""
) -> HTMLResponse:
    """The recorded reads, oldest first (the newest last), filtered and paged by id."""
    runtime = user.runtime
    runtime.access_log.flush()  # the reads of the last moment (this page's own opener's too)
    filters = {
        "actor": actor.strip()[:200],
        "kind": kind if kind in ACCESS_KINDS else "",
        "target": target.strip()[:200],
    }
    query = AccessQuery(
        actor=filters["actor"] or None,
        kind=filters["kind"] or None,
        target_id=filters["target"] or None,
        after=whole_number(after, LARGEST_POSITION) or 0,
        limit=ACCESS_PAGE,
    )
    entries, next_after = runtime.access_log.entries(query)
    kept = {name: value for name, value in filters.items() if value}
    people = [
        {"actor": f"user:{u['id']}", "name": u["name"] or u["email"]}
        for u in runtime.queries.users()
    ]
    return user.render(
        "audit/access.html",
        entries=entries,
        names=_reader_names(user, entries),
        filters=filters,
        people=people,
        kinds=ACCESS_KINDS,
        next_url="?" + urlencode({**kept, "after": next_after}) if next_after else "",
        first_url="?" + urlencode(kept),
        first_page=query.after == 0,
    )
