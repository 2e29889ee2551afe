"""The clients: the filtered list, the client card beside a conversation, the full page.

The card (`GET /contacts/{id}/card`) is an HTML fragment the inbox loads next to
the open conversation and reloads on every change of the views; the full page
(`GET /contacts/{id}`) shows the same card with the possible duplicates and
the recent timeline. Every change goes through the same application commands
as the JSON API (`update_contact`, `merge_contacts`), so the typed attribute
values are checked by the attribute registry and its message is shown inline,
next to the field, with the API's status code (422/409/404).

Each small edit answers an HTMX request with the fragment it changed (one
attribute, or the whole card) and a plain form post with a redirect, so the
pages also work without JavaScript.

The card's "Consents" section lists every consent policy with where the client
stands (152-FZ art. 9, GDPR art. 7: agreed to the text in force, to an older
one, withdrawn, not given); writers record a consent obtained in writing and a
withdrawal (`give_consent` / `withdraw_consent`, via "operator").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from threadline.domain.model.attributes import AttributeScope, AttributeType
from threadline.domain.model.contact import Lifecycle
from threadline.domain.model.errors import InvalidInput, NotFound
from threadline.projections.base import FORGOTTEN_NAME
from threadline.projections.consents import consents_of
from threadline.projections.contact_card import Identity
from threadline.projections.contact_card import identities_of as identities_of_contacts
from threadline.projections.segments import build_contact_filter
from threadline.services.forgetting import forget
from threadline.services.web.client_deals import client_deals
from threadline.services.web.deps import Forbidden, WebUser, WebUserDep, WebWriterDep
from threadline.services.web.errors import message_of, status_of
from threadline.services.web.posted_forms import (
    COMMAND_ERRORS,
    FormDep,
    field,
    is_htmx,
    parse_id,
    redirect,
)

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
CARD_TIMELINE = 5
PAGE_TIMELINE = 20
TIMELINE_PAGE = 50
CARD_TASKS = 10
# Query parameters of the list page that are not segment words.
LIST_ONLY = ("page", "fk", "fop", "fv")
OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte")

LIFECYCLE_LABELS = {
    "lead": "Lead",
    "qualified": "Qualified",
    "customer": "Customer",
    "churned": "Churned",
}
KIND_LABELS = {
    "contact.created": "Client created",
    "contact.identity_added": "Identity added",
    "contact.tags_added": "Tags added",
    "contact.tags_removed": "Tags removed",
    "contact.attributes_changed": "Attributes changed",
    "contact.lifecycle_changed": "Lifecycle changed",
    "contact.merged": "Duplicate merged",
    "contact.absorbed": "Took over a duplicate",
    "contact.responsible_assigned": "Responsible changed",
    "contact.opted_out": "Opted out of automatic messages",
    "contact.opted_in": "Opted back in to automatic messages",
    "consent.given": "Consent given",
    "consent.withdrawn": "Consent withdrawn",
    "conversation.started": "Conversation started",
    "conversation.status_changed": "Conversation status",
    "conversation.assigned": "Conversation assigned",
    "message.received": "Message received",
    "message.sent": "Message sent",
    "note.added": "Note",
    "call.received": "Call",
    "call.missed": "Missed call",
    "task.created": "Task created",
    "task.completed": "Task completed",
    "task.cancelled": "Task cancelled",
    "task.rescheduled": "Task rescheduled",
    "task.reassigned": "Task reassigned",
    "deal.created": "Deal opened",
    "deal.stage_changed": "Deal moved to another stage",
    "deal.won": "Deal won",
    "deal.lost": "Deal lost",
}
TASK_TYPE_LABELS = {
    "call": "Call",
    "email": "E-mail",
    "sms": "SMS",
    "whatsapp": "WhatsApp",
    "telegram": "Telegram",
    "web": "Website",
    "meeting": "Meeting",
    "proposal": "Proposal",
    "other": "Other",
}
# Messages after a redirect are named by a code in the query string (never free text).
FLASHES = {
    "saved": "Saved.",
    "merged": "The duplicate was merged into this client.",
    "forgotten": (
        "The client was forgotten: who they are and what they said can no longer be read."
    ),
}
LABELS = {
    "lifecycles": LIFECYCLE_LABELS,
    "kinds": KIND_LABELS,
    "task_types": TASK_TYPE_LABELS,
}


# -- shared by the page modules ---------------------------------------------------------------


def not_found(user: WebUser, message: str | None = None) -> HTMLResponse:
    text = message or user._("This client does not exist.")
    return user.render("error.html", status_code=404, title="404", message=text)


def is_forgotten(contact: dict[str, Any]) -> bool:
    """Whether the client was forgotten (the views blank the name to `FORGOTTEN_NAME`)."""
    return contact.get("display_name") == FORGOTTEN_NAME


def people(user: WebUser) -> list[dict[str, Any]]:
    """Who can be responsible for a client or a task (active users who may work)."""
    return [u for u in user.runtime.queries.users() if u["active"] and u["role"] != "auditor"]


# -- the card's data --------------------------------------------------------------------------


@dataclass(frozen=True)
class AttributeField:
    """One typed attribute of the registry with this client's value (None when unset)."""

    key: str
    label: str
    type: str
    options: tuple[str, ...]
    personal: bool
    value: Any
    defined: bool = True

    @property
    def chosen(self) -> list[str]:
        if self.value is None:
            return []
        return [str(v) for v in self.value] if isinstance(self.value, list) else [str(self.value)]


def attribute_fields(user: WebUser, values: dict[str, Any]) -> list[AttributeField]:
    """Every contact attribute of the registry (set or not), then stray values read-only."""
    registry = user.runtime.app.attribute_registry()
    definitions = [
        d for d in (registry.all() if registry else []) if d.scope is AttributeScope.CONTACT
    ]
    fields = [
        AttributeField(d.key, d.label, str(d.type), d.options, d.personal, values.get(d.key))
        for d in sorted(definitions, key=lambda d: d.label.lower())
    ]
    known = {f.key for f in fields}
    for key in sorted(set(values) - known):
        fields.append(AttributeField(key, key, "text", (), False, values[key], defined=False))
    return fields


def attribute_field(user: WebUser, contact: dict[str, Any], key: str) -> AttributeField | None:
    return next((f for f in attribute_fields(user, contact["attributes"]) if f.key == key), None)


def live_contact(user: WebUser, contact_id: str) -> dict[str, Any] | None:
    """The card of `contact_id`, following merges to the client it was folded into."""
    card = user.runtime.queries.contact(contact_id)
    for _ in range(10):
        if card is None or not card.get("merged_into"):
            return card
        card = user.runtime.queries.contact(str(card["merged_into"]))
    return card


def card_data(
    user: WebUser,
    contact: dict[str, Any],
    *,
    editing: str | None = None,
    errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    """What the card template needs: the client, the attributes, tasks, the recent timeline."""
    runtime = user.runtime
    contact_id = str(contact["id"])
    users = people(user)
    names = {str(u["id"]): u["name"] or u["email"] for u in runtime.queries.users()}
    return {
        "contact": contact,
        "fields": attribute_fields(user, contact["attributes"]),
        "users": users,
        "responsible_name": names.get(str(contact.get("responsible_id") or ""), ""),
        "tasks": runtime.queries.tasks(status="open", contact_id=contact_id, limit=CARD_TASKS),
        "recent": list(reversed(runtime.queries.timeline(contact_id, CARD_TIMELINE))),
        "client_deals": client_deals(runtime.views, contact_id=contact_id),
        "consents": consents_of(runtime.views, contact_id),
        "lifecycles": [value.value for value in Lifecycle],
        "labels": LABELS,
        "editing": editing,
        "errors": errors or {},
        "can_write": user.can_write,
        "forgotten": is_forgotten(contact),
        # On the client's page the timeline has its own column; the page's card slot
        # sends this header with every request from inside the card (hx-headers).
        "in_page": user.request.headers.get("X-Card-In-Page") == "1",
    }


def render_card(
    user: WebUser,
    contact: dict[str, Any],
    status_code: int = 200,
    *,
    editing: str | None = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    data = card_data(user, contact, editing=editing, errors=errors)
    return user.render("contacts/_card.html", status_code=status_code, **data)


def render_page(
    user: WebUser,
    contact: dict[str, Any],
    status_code: int = 200,
    *,
    editing: str | None = None,
    errors: dict[str, str] | None = None,
    flash: str | None = None,
) -> HTMLResponse:
    runtime = user.runtime
    contact_id = str(contact["id"])
    data = card_data(user, contact, editing=editing, errors=errors)
    data["recent"] = list(reversed(runtime.queries.timeline(contact_id, PAGE_TIMELINE)))
    data["in_page"] = True
    return user.render(
        "contacts/page.html",
        status_code=status_code,
        duplicates=runtime.queries.duplicates(contact_id),
        flashes=[user._(FLASHES[flash])] if flash in FLASHES else [],
        **data,
    )


def answer_card(
    user: WebUser,
    contact_id: str,
    *,
    error_key: str | None = None,
    error: Exception | None = None,
    editing: str | None = None,
) -> Response:
    """After a change of the card: the card fragment (HTMX) or back to the page."""
    contact = live_contact(user, contact_id)
    if contact is None:
        return not_found(user)
    if error is None:
        if is_htmx(user):
            return render_card(user, contact)
        return redirect(f"/contacts/{contact['id']}", "saved")
    errors = {error_key or "card": message_of(user, error)}
    render = render_card if is_htmx(user) else render_page
    return render(user, contact, status_of(error), editing=editing, errors=errors)


# -- the list ---------------------------------------------------------------------------------


def list_pairs(request: Request) -> list[tuple[str, str]]:
    """The segment words of the query (empty ones dropped) plus the filter row, if filled."""
    pairs = [
        (k, v.strip())
        for k, v in request.query_params.multi_items()
        if k not in LIST_ONLY and v.strip()
    ]
    key = request.query_params.get("fk", "").strip()
    value = request.query_params.get("fv", "").strip()
    op = request.query_params.get("fop", "eq")
    if key and value:
        name = f"attr.{key}" if op == "eq" else f"attr.{key}.{op}"
        pairs.append((name, value))
    return pairs


MAX_PAGE = 1_000_000
"""Page numbers are clamped here, as the inbox does: a huge one would overflow the OFFSET."""


def whole_number(text: str, largest: int) -> int | None:
    """A bookmark's number, or None: ASCII digits only (`int("²")` fails) and never past `largest`."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(largest)):
        return None
    value = int(text)
    return value if value <= largest else None


def page_number(request: Request) -> int:
    given = request.query_params.get("page", "1").strip()
    if not (given.isascii() and given.isdigit()):
        return 1
    return max(1, min(int(given[:8]), MAX_PAGE))  # eight digits are past MAX_PAGE already


def identities_of(user: WebUser, contact_ids: list[str]) -> dict[str, list[Identity]]:
    """The identities of one page of clients in one query."""
    return identities_of_contacts(user.runtime.views, contact_ids)


@router.get("/contacts")
def contacts_page(request: Request, user: WebUserDep) -> HTMLResponse:
    runtime = user.runtime
    pairs = list_pairs(request)
    number = page_number(request)
    registry = runtime.app.attribute_registry()
    error = ""
    items: list[dict[str, Any]] = []
    total = 0
    try:
        flt = build_contact_filter(pairs, registry, views=runtime.views)
        items, total = runtime.queries.contacts(flt, PAGE_SIZE, (number - 1) * PAGE_SIZE)
    except InvalidInput as problem:
        error = f"{problem.field.removeprefix('query.')}: {problem.message}"
    pages = max(1, -(-total // PAGE_SIZE))
    chips = [
        (name, value, urlencode([p for p in pairs if p != (name, value)]))
        for name, value in pairs
        if name not in ("q", "lifecycle")
    ]
    definitions = [
        d for d in (registry.all() if registry else []) if d.scope is AttributeScope.CONTACT
    ]
    query = dict(pairs)
    return user.render(
        "contacts/list.html",
        status_code=422 if error else 200,
        items=items,
        identities=identities_of(user, [str(c["id"]) for c in items]),
        total=total,
        number=number,
        pages=pages,
        base=urlencode(pairs),
        chips=chips,
        query=query,
        definitions=definitions,
        operators=OPERATORS,
        error=error,
        lifecycles=[value.value for value in Lifecycle],
        labels=LABELS,
    )


# -- the card and the page --------------------------------------------------------------------


@router.get("/contacts/{contact_id}/card")
def contact_card(contact_id: str, user: WebUserDep) -> HTMLResponse:
    """The compact card the inbox shows beside a conversation."""
    known = parse_id(contact_id)
    contact = live_contact(user, known) if known else None
    if contact is None:
        return HTMLResponse(
            f'<section class="card contact-card muted">{user._("This client does not exist.")}'
            "</section>",
            status_code=404,
        )
    user.runtime.access_log.record(
        user, "contact", str(contact["id"]), via="web", path=user.request.url.path
    )
    return render_card(user, contact)


@router.get("/contacts/{contact_id}", response_model=None)
def contact_page(
    contact_id: str, user: WebUserDep, edit: str | None = None, done: str | None = None
) -> Response:
    contact = shown_contact(user, contact_id)
    if isinstance(contact, Response):
        return contact
    return render_page(user, contact, editing=edit if user.can_write else None, flash=done)


def shown_contact(user: WebUser, contact_id: str, page: str = "") -> dict[str, Any] | Response:
    """The live client a page shows, its read recorded; a 404 page, or a redirect to the
    client a merged one lives on as (`/contacts/{id}{page}`)."""
    known = parse_id(contact_id)
    contact = live_contact(user, known) if known else None
    if contact is None:
        return not_found(user)
    if str(contact["id"]) != known:
        return redirect(f"/contacts/{contact['id']}{page}")
    user.runtime.access_log.record(
        user, "contact", str(contact["id"]), via="web", path=user.request.url.path
    )
    return contact


@router.get("/contacts/{contact_id}/recent")
def recent_fragment(contact_id: str, user: WebUserDep) -> HTMLResponse:
    """The page's latest timeline entries (the page reloads them when the views move)."""
    known = parse_id(contact_id)
    contact = live_contact(user, known) if known else None
    if contact is None:
        return not_found(user)
    user.runtime.access_log.record(
        user, "contact", str(contact["id"]), via="web", path=user.request.url.path
    )
    rows = user.runtime.queries.timeline(str(contact["id"]), PAGE_TIMELINE)
    return user.render(
        "contacts/_recent.html", contact=contact, recent=list(reversed(rows)), labels=LABELS
    )


@router.get("/contacts/{contact_id}/timeline", response_model=None)
def timeline_page(contact_id: str, user: WebUserDep, before: str = "") -> Response:
    """The whole timeline, newest first, a page at a time (`before` = oldest `seq` shown)."""
    known = parse_id(contact_id)
    contact = live_contact(user, known) if known else None
    if contact is None:
        return not_found(user)
    user.runtime.access_log.record(
        user, "contact", str(contact["id"]), via="web", path=user.request.url.path
    )
    seq = whole_number(before, 2**63 - 1)
    rows = user.runtime.queries.timeline(str(contact["id"]), TIMELINE_PAGE + 1, seq)
    more = len(rows) > TIMELINE_PAGE
    rows = rows[-TIMELINE_PAGE:]
    return user.render(
        "contacts/timeline.html",
        contact=contact,
        rows=list(reversed(rows)),
        older=rows[0]["seq"] if more and rows else None,
        newer=seq is not None,
        labels=LABELS,
    )


# -- typed attributes, in place ---------------------------------------------------------------


def _attribute_fragment(
    user: WebUser,
    contact: dict[str, Any],
    item: AttributeField,
    *,
    editing: bool,
    error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    return user.render(
        "contacts/_attribute.html",
        status_code=status_code,
        contact=contact,
        item=item,
        editing=editing and user.can_write,
        error=error,
        can_write=user.can_write,
    )


def _contact_and_field(
    user: WebUser, contact_id: str, key: str
) -> tuple[dict[str, Any], AttributeField] | HTMLResponse:
    known = parse_id(contact_id)
    contact = live_contact(user, known) if known else None
    if contact is None:
        return not_found(user)
    item = attribute_field(user, contact, key)
    if item is None or not item.defined:
        return not_found(user, user._("No such attribute is defined."))
    return contact, item


@router.get("/contacts/{contact_id}/attributes/{key}")
def attribute_view(contact_id: str, key: str, user: WebUserDep) -> HTMLResponse:
    """One attribute as the card shows it (the editor's Cancel comes back here)."""
    found = _contact_and_field(user, contact_id, key)
    if isinstance(found, HTMLResponse):
        return found
    return _attribute_fragment(user, *found, editing=False)


@router.get("/contacts/{contact_id}/attributes/{key}/edit")
def attribute_editor(contact_id: str, key: str, user: WebWriterDep) -> HTMLResponse:
    """The input of the attribute's type, in place of its value."""
    found = _contact_and_field(user, contact_id, key)
    if isinstance(found, HTMLResponse):
        return found
    return _attribute_fragment(user, *found, editing=True)


def posted_value(item: AttributeField, form: FormData) -> Any:
    """The raw value as the registry's `coerce_value` takes it; empty means "clear"."""
    values = [v.strip() for v in form.getlist("value") if isinstance(v, str)]
    if item.type == AttributeType.MULTI_CHOICE:
        chosen = [v for v in values if v]
        return chosen or None
    if item.type == AttributeType.BOOLEAN:
        # A hidden "false" comes first; a ticked checkbox adds "true" after it.
        return values[-1] if values else "false"
    raw = values[-1] if values else ""
    return raw or None


@router.post("/contacts/{contact_id}/attributes", response_model=None)
def save_attribute(contact_id: str, user: WebWriterDep, form: FormDep) -> Response:
    key = field(form, "key")
    found = _contact_and_field(user, contact_id, key)
    if isinstance(found, HTMLResponse):
        return found
    contact, item = found
    raw = posted_value(item, form)
    try:
        committed = user.runtime.app.update_contact(
            UUID(str(contact["id"])), actor=user.actor, attributes={key: raw}
        )
    except COMMAND_ERRORS as error:
        if not is_htmx(user):
            errors = {f"attributes.{key}": message_of(user, error)}
            return render_page(user, contact, status_of(error), editing=key, errors=errors)
        shown = AttributeField(item.key, item.label, item.type, item.options, item.personal, raw)
        return _attribute_fragment(
            user,
            contact,
            shown,
            editing=True,
            error=message_of(user, error),
            status_code=status_of(error),
        )
    user.runtime.wait_for_views(committed.notification_id)
    if not is_htmx(user):
        return redirect(f"/contacts/{contact['id']}", "saved")
    fresh = live_contact(user, str(contact["id"])) or contact
    saved = attribute_field(user, fresh, key) or item
    return _attribute_fragment(user, fresh, saved, editing=False)


# -- tags, stage, responsible -----------------------------------------------------------------


@router.post("/contacts/{contact_id}/tags", response_model=None)
def change_tags(contact_id: str, user: WebWriterDep, form: FormDep) -> Response:
    """Add the tags typed in `add` (comma separated) and/or remove the one in `remove`."""
    known = parse_id(contact_id)
    if known is None:
        return not_found(user)
    add = [t for t in field(form, "add").split(",") if t.strip()]
    remove = [t for t in [field(form, "remove")] if t]
    try:
        if not add and not remove:
            raise InvalidInput("tags", user._("Type a tag first."))
        committed = user.runtime.app.update_contact(
            UUID(known), actor=user.actor, add_tags=add, remove_tags=remove
        )
    except COMMAND_ERRORS as error:
        return answer_card(user, known, error_key="tags", error=error)
    user.runtime.wait_for_views(committed.notification_id)
    return answer_card(user, known)


@router.post("/contacts/{contact_id}/lifecycle", response_model=None)
def change_lifecycle(contact_id: str, user: WebWriterDep, form: FormDep) -> Response:
    known = parse_id(contact_id)
    if known is None:
        return not_found(user)
    try:
        committed = user.runtime.app.update_contact(
            UUID(known), actor=user.actor, lifecycle=field(form, "lifecycle")
        )
    except COMMAND_ERRORS as error:
        return answer_card(user, known, error_key="lifecycle", error=error)
    user.runtime.wait_for_views(committed.notification_id)
    return answer_card(user, known)


@router.post("/contacts/{contact_id}/responsible", response_model=None)
def change_responsible(contact_id: str, user: WebWriterDep, form: FormDep) -> Response:
    """Who looks after the client; empty means nobody."""
    known = parse_id(contact_id)
    if known is None:
        return not_found(user)
    given = field(form, "responsible_id")
    try:
        responsible: UUID | None = None
        if given:
            try:
                responsible = UUID(given)
            except ValueError:
                raise InvalidInput("responsible_id", user._("Pick a user.")) from None
        committed = user.runtime.app.update_contact(
            UUID(known), actor=user.actor, responsible_id=responsible
        )
    except COMMAND_ERRORS as error:
        return answer_card(user, known, error_key="responsible", error=error)
    user.runtime.wait_for_views(committed.notification_id)
    return answer_card(user, known)


@router.post("/contacts/{contact_id}/opt-in", response_model=None)
def opt_in(contact_id: str, user: WebWriterDep, form: FormDep) -> Response:
    """Opt the client back in on one channel; the reason typed is required and recorded."""
    known = parse_id(contact_id)
    if known is None:
        return not_found(user)
    try:
        committed = user.runtime.app.opt_in_contact(
            UUID(known), field(form, "channel"), field(form, "reason"), user.actor
        )
    except COMMAND_ERRORS as error:
        return answer_card(user, known, error_key="opt_in", error=error)
    user.runtime.wait_for_views(committed.notification_id)
    return answer_card(user, known)


# -- consents to purposes of processing --------------------------------------------------------
# How an operator records what the client gave or withdrew outside a form (in writing, on
# paper); `via` says so on the record. Errors show in the card's consents section.

CONSENT_VIA = "operator"


@router.post("/contacts/{contact_id}/consents/{purpose}/give", response_model=None)
def give_consent(contact_id: str, purpose: str, user: WebWriterDep, form: FormDep) -> Response:
    """Record that the client agreed, in writing, to the purpose's text in force."""
    known = parse_id(contact_id)
    if known is None:
        return not_found(user)
    try:
        committed = user.runtime.app.give_consent(UUID(known), purpose, CONSENT_VIA, user.actor)
    except COMMAND_ERRORS as error:
        return answer_card(user, known, error_key="consents", error=error)
    user.runtime.wait_for_views(committed.notification_id)
    return answer_card(user, known)


@router.post("/contacts/{contact_id}/consents/{purpose}/withdraw", response_model=None)
def withdraw_consent(contact_id: str, purpose: str, user: WebWriterDep, form: FormDep) -> Response:
    """Record the client's withdrawal, with their reason if they gave one."""
    known = parse_id(contact_id)
    if known is None:
        return not_found(user)
    try:
        committed = user.runtime.app.withdraw_consent(
            UUID(known), purpose, CONSENT_VIA, field(form, "reason"), user.actor
        )
        if not committed.value:
            raise InvalidInput(
                "consents", "The client has not agreed to this; there is nothing to withdraw."
            )
    except COMMAND_ERRORS as error:
        return answer_card(user, known, error_key="consents", error=error)
    user.runtime.wait_for_views(committed.notification_id)
    return answer_card(user, known)


# -- merging duplicates -----------------------------------------------------------------------


def _merge_pair(
    user: WebUser, contact_id: str, other_id: str
) -> tuple[dict[str, Any], dict[str, Any]] | HTMLResponse:
    known, other_known = parse_id(contact_id), parse_id(other_id)
    contact = user.runtime.queries.contact(known) if known else None
    other = user.runtime.queries.contact(other_known) if other_known else None
    if contact is None or other is None:
        return not_found(user)
    return contact, other


@router.get("/contacts/{contact_id}/merge")
def merge_confirm(contact_id: str, user: WebUserDep, other_id: str = "") -> HTMLResponse:
    """Ask before folding a duplicate in: the merge cannot be undone from the app."""
    found = _merge_pair(user, contact_id, other_id)
    if isinstance(found, HTMLResponse):
        return found
    return user.render("contacts/merge.html", contact=found[0], other=found[1], error="")


@router.post("/contacts/{contact_id}/merge", response_model=None)
def merge(contact_id: str, user: WebWriterDep, form: FormDep) -> Response:
    found = _merge_pair(user, contact_id, field(form, "other_id"))
    if isinstance(found, HTMLResponse):
        return found
    contact, other = found
    try:
        committed = user.runtime.app.merge_contacts(
            UUID(str(contact["id"])), UUID(str(other["id"])), user.actor
        )
    except COMMAND_ERRORS as error:
        return user.render(
            "contacts/merge.html",
            status_code=status_of(error),
            contact=contact,
            other=other,
            error=message_of(user, error),
        )
    user.runtime.wait_for_views(committed.notification_id)
    return redirect(f"/contacts/{contact['id']}", "merged")


# -- forgetting a client ----------------------------------------------------------------------
# An admin forgets a client on their request (GDPR art. 17, 152-FZ): the same
# `services.forgetting.forget` as `POST /api/contacts/{id}/forget`. It cannot be undone, so
# the page asks first and the form must carry the ticked confirmation box (the browser
# requires it, the server checks it again).

FORGET_CONFIRMATION = "confirm"


def _forget_admin(user: WebUser) -> WebUser:
    if user.role != "admin":
        raise Forbidden(user._("Only admins can forget a client."))
    return user


def _forget_reader(user: WebUserDep) -> WebUser:
    return _forget_admin(user)


def _forget_writer(user: WebWriterDep) -> WebUser:
    """Auditors are refused by `WebWriterDep` first (with its own message)."""
    return _forget_admin(user)


ForgetReaderDep = Annotated[WebUser, Depends(_forget_reader)]
ForgetWriterDep = Annotated[WebUser, Depends(_forget_writer)]


def render_forget(
    user: WebUser, contact: dict[str, Any], status_code: int = 200, error: str = ""
) -> HTMLResponse:
    return user.render(
        "contacts/forget.html",
        status_code=status_code,
        contact=contact,
        forgotten=is_forgotten(contact),
        error=error,
    )


@router.get("/contacts/{contact_id}/forget", response_model=None)
def forget_confirm(contact_id: str, user: ForgetReaderDep) -> Response:
    """Ask before forgetting: what is lost, the client's name and identities, a box to tick."""
    contact = shown_contact(user, contact_id, "/forget")
    if isinstance(contact, Response):
        return contact
    return render_forget(user, contact)


@router.post("/contacts/{contact_id}/forget", response_model=None)
def forget_client(contact_id: str, user: ForgetWriterDep, form: FormDep) -> Response:
    """Forget the client (and the contacts merged with it), then back to its page."""
    known = parse_id(contact_id)
    contact = live_contact(user, known) if known else None
    if contact is None:
        return not_found(user)
    if field(form, FORGET_CONFIRMATION) != "yes":
        message = user._("Tick the box to confirm that this client is to be forgotten.")
        return render_forget(user, contact, 422, message)
    try:
        forget(user.runtime, UUID(str(contact["id"])), user.actor)
    except NotFound:
        return not_found(user)
    except COMMAND_ERRORS as error:
        return render_forget(user, contact, status_of(error), message_of(user, error))
    return redirect(f"/contacts/{contact['id']}", "forgotten")
