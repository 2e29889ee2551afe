"""Where operators work: "new task", "log a call" and "new client" forms on the card and inbox.

These existed only in the JSON API; the forms call the same application commands
(`create_task`, `log_call`, `create_contact`), so they refuse what the API refuses, and the
refusal is shown next to the field it names (`InvalidInput.field`) with the API's status.
A form posted with HTMX gets itself back (fresh after success, with the typed values and
the message after a refusal) and, after a success, the client card out of band, so the new
task shows at once; without scripts it is POST, redirect, GET, and a refusal is a small
page with the form. The task and call forms are outside the card, so the card's live
reload never wipes what an operator is typing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import Response
from markupsafe import Markup
from starlette.datastructures import FormData

from threadline.domain.commands.calls import CALL_DIRECTIONS, LOGGED_CALL_OUTCOMES
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.task import TaskType, task_type_for_channel
from threadline.projections.companies import companies_page, company_by_inn
from threadline.services.web.deps import WebUser, WebWriterDep
from threadline.services.web.errors import message_of, status_of
from threadline.services.web.posted_forms import (
    COMMAND_ERRORS,
    FormDep,
    is_htmx,
    parse_id,
    redirect,
)
from threadline.services.web.posted_forms import field as posted
from threadline.services.web.routes_contacts import (
    LABELS,
    card_data,
    live_contact,
    not_found,
    people,
)
from threadline.services.web.routes_tasks import parse_due

router = APIRouter(include_in_schema=False)

TASK_FIELDS = ("title", "type", "due_at", "assignee_id", "notes")
CALL_FIELDS = ("direction", "outcome", "duration", "note")
CONTACT_FIELDS = ("name", "email", "phone", "company", "responsible_id")
# The words of a logged call's title, in the operator's language (the title is what people read).
DIRECTION_LABELS = {"outbound": "Outgoing call", "inbound": "Incoming call"}
OUTCOME_LABELS = {"answered": "answered", "missed": "missed", "voicemail": "voicemail"}
# An error about a field the form does not have is shown above the form.
FIELD_ALIASES = {"assignee": "assignee_id", "responsible": "responsible_id", "contact": "form"}
COMPANY_MATCHES = 5


@dataclass
class Draft:
    """One form as it is drawn: the values typed, the messages by field, a note after success."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    done: str = ""

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name) or default


@dataclass(frozen=True)
class Place:
    """Where a form stands: the client's page, or a conversation in the inbox."""

    contact: dict[str, Any]
    base: str  # the path the forms post under: /contacts/<id> or /inbox/<conversation id>
    card_target: str  # the element holding the client card there (refreshed out of band)
    conversation_id: str | None = None


def posted_values(form: FormData, names: tuple[str, ...]) -> dict[str, str]:
    return {name: posted(form, name) for name in names}


def placed_errors(user: WebUser, error: Exception, names: tuple[str, ...]) -> dict[str, str]:
    """The message under the field the command named, else above the form."""
    key = "form"
    if isinstance(error, InvalidInput):
        named = error.field.split(".")[0]
        named = FIELD_ALIASES.get(named, named)
        key = named if named in names else "form"
    return {key: message_of(user, error)}


def optional_user(given: str, name: str) -> UUID | None:
    if not given:
        return None
    try:
        return UUID(given)
    except ValueError:
        raise InvalidInput(name, "Pick a user.") from None


def call_seconds(raw: str) -> int | None:
    """A duration typed as minutes ("5") or minutes and seconds ("4:05"); empty is unknown."""
    text = raw.strip()
    if not text:
        return None
    minutes, _, seconds = text.partition(":")
    if not (minutes.isascii() and minutes.isdigit() and len(minutes) <= 5):
        raise InvalidInput("duration", "minutes, or minutes:seconds (e.g. 4:05)")
    if seconds and not (seconds.isascii() and seconds.isdigit() and int(seconds) < 60):
        raise InvalidInput("duration", "minutes, or minutes:seconds (e.g. 4:05)")
    return int(minutes) * 60 + int(seconds or 0)


def call_title(user: WebUser, direction: str, outcome: str, seconds: int | None) -> str:
    """The logged call's title in the operator's language ("Outgoing call, answered, 4:05")."""
    if direction not in DIRECTION_LABELS or outcome not in OUTCOME_LABELS:
        return ""  # the command refuses the value and names the field
    words = [user._(DIRECTION_LABELS[direction]), user._(OUTCOME_LABELS[outcome])]
    if seconds:
        words.append(f"{seconds // 60}:{seconds % 60:02d}")
    return ", ".join(words)


# -- where the forms stand ---------------------------------------------------------------------


def contact_place(user: WebUser, contact_id: str) -> Place | None:
    known = parse_id(contact_id)
    contact = live_contact(user, known) if known else None
    if contact is None:
        return None
    return Place(contact, f"/contacts/{contact['id']}", "card-slot")


def conversation_place(user: WebUser, conversation_id: str) -> Place | None:
    known = parse_id(conversation_id)
    conversation = user.runtime.queries.conversation(known) if known else None
    if conversation is None:
        return None
    contact = live_contact(user, str(conversation["contact_id"]))
    if contact is None:
        return None
    return Place(contact, f"/inbox/{known}", "client-card", conversation_id=known)


def form_context(user: WebUser, place: Place) -> dict[str, Any]:
    """What the task and call partials need besides their drafts."""
    return {
        "base": place.base,
        "assignees": people(user),
        "task_types": [t.value for t in TaskType],
        "directions": CALL_DIRECTIONS,
        "outcomes": LOGGED_CALL_OUTCOMES,
        "labels": LABELS,
        "in_conversation": place.conversation_id is not None,
    }


def blank_task(user: WebUser, place: Place) -> Draft:
    """A new task defaults to the operator, and from a conversation to its channel's type."""
    kind = TaskType.CALL.value
    if place.conversation_id:
        conversation = user.runtime.queries.conversation(place.conversation_id) or {}
        kind = task_type_for_channel(str(conversation.get("channel") or ""))
    return Draft({"assignee_id": user.id, "type": kind})


def blank_call() -> Draft:
    return Draft({"direction": "outbound", "outcome": "answered"})


def answer(
    user: WebUser,
    place: Place,
    which: str,
    draft: Draft,
    error: Exception | None,
) -> Response:
    """The form again (HTMX; after success with the card out of band), or redirect / page."""
    if error is None and not is_htmx(user):
        return redirect(place.base, None if place.conversation_id else "saved")
    status_code = 200 if error is None else status_of(error)
    data = form_context(user, place)
    data["task"] = draft if which == "task" else blank_task(user, place)
    data["call"] = draft if which == "call" else blank_call()
    if not is_htmx(user):
        return user.render(
            "contacts/work_forms_page.html",
            status_code=status_code,
            contact=place.contact,
            which=which,
            **data,
        )
    card_html = Markup("")
    if error is None:
        fresh = live_contact(user, str(place.contact["id"])) or place.contact
        card = card_data(user, fresh)
        card["in_page"] = place.card_target == "card-slot"
        body = user.render("contacts/_card.html", **card).body
        card_html = Markup(bytes(body).decode())
    template = "contacts/_new_task.html" if which == "task" else "contacts/_log_call.html"
    return user.render(
        template,
        status_code=status_code,
        card_target=place.card_target,
        card_html=card_html,
        **data,
    )


def work_forms(user: WebUser, place: Place | None) -> Response:
    """Both forms, blank: the fragment the page loads (HTMX), or a page of its own."""
    if place is None:
        return not_found(user)
    data = {**form_context(user, place), "task": blank_task(user, place), "call": blank_call()}
    if is_htmx(user):
        return user.render("contacts/_work_forms.html", **data)
    return user.render("contacts/work_forms_page.html", contact=place.contact, which="both", **data)


@router.get("/contacts/{contact_id}/work-forms", response_model=None)
def contact_work_forms(contact_id: str, user: WebWriterDep) -> Response:
    return work_forms(user, contact_place(user, contact_id))


@router.get("/inbox/{conversation_id}/work-forms", response_model=None)
def conversation_work_forms(conversation_id: str, user: WebWriterDep) -> Response:
    return work_forms(user, conversation_place(user, conversation_id))


# -- new task ----------------------------------------------------------------------------------


def create_task(user: WebUser, place: Place, form: FormData) -> Response:
    values = posted_values(form, TASK_FIELDS)
    try:
        due_at = parse_due(values["due_at"], user.zone) if values["due_at"] else None
        committed = user.runtime.app.create_task(
            actor=user.actor,
            title=values["title"],
            type=values["type"] or TaskType.OTHER.value,
            due_at=due_at,
            assignee_id=optional_user(values["assignee_id"], "assignee_id"),
            contact_id=None if place.conversation_id else UUID(str(place.contact["id"])),
            conversation_id=UUID(place.conversation_id) if place.conversation_id else None,
            notes=values["notes"],
        )
    except COMMAND_ERRORS as error:
        draft = Draft(values, placed_errors(user, error, TASK_FIELDS))
        return answer(user, place, "task", draft, error)
    user.runtime.wait_for_views(committed.notification_id)
    fresh = blank_task(user, place)
    fresh.done = user._("Task created.")
    return answer(user, place, "task", fresh, None)


@router.post("/contacts/{contact_id}/tasks", response_model=None)
def contact_task(contact_id: str, user: WebWriterDep, form: FormDep) -> Response:
    """A task for the client (the API's POST /api/tasks with `contact_id`)."""
    place = contact_place(user, contact_id)
    return not_found(user) if place is None else create_task(user, place, form)


@router.post("/inbox/{conversation_id}/tasks", response_model=None)
def conversation_task(conversation_id: str, user: WebWriterDep, form: FormDep) -> Response:
    """A task linked to the conversation (and so to its client)."""
    place = conversation_place(user, conversation_id)
    if place is None:
        return not_found(user, user._("No such conversation."))
    return create_task(user, place, form)


# -- log a call --------------------------------------------------------------------------------


def log_call(user: WebUser, place: Place, form: FormData) -> Response:
    values = posted_values(form, CALL_FIELDS)
    try:
        seconds = call_seconds(values["duration"])
        committed = user.runtime.app.log_call(
            actor=user.actor,
            direction=values["direction"],
            outcome=values["outcome"],
            duration=seconds,
            note=values["note"],
            contact_id=None if place.conversation_id else UUID(str(place.contact["id"])),
            conversation_id=UUID(place.conversation_id) if place.conversation_id else None,
            title=call_title(user, values["direction"], values["outcome"], seconds),
        )
    except COMMAND_ERRORS as error:
        draft = Draft(values, placed_errors(user, error, CALL_FIELDS))
        return answer(user, place, "call", draft, error)
    user.runtime.wait_for_views(committed.notification_id)
    fresh = blank_call()
    fresh.done = user._("The call is logged.")
    return answer(user, place, "call", fresh, None)


@router.post("/contacts/{contact_id}/calls", response_model=None)
def contact_call(contact_id: str, user: WebWriterDep, form: FormDep) -> Response:
    place = contact_place(user, contact_id)
    return not_found(user) if place is None else log_call(user, place, form)


@router.post("/inbox/{conversation_id}/calls", response_model=None)
def conversation_call(conversation_id: str, user: WebWriterDep, form: FormDep) -> Response:
    place = conversation_place(user, conversation_id)
    if place is None:
        return not_found(user, user._("No such conversation."))
    return log_call(user, place, form)


# -- new client --------------------------------------------------------------------------------


def find_company(user: WebUser, given: str) -> UUID | None:
    """The company typed by its exact name or its ИНН; an unknown or ambiguous one is refused."""
    if not given:
        return None
    db = user.runtime.views
    digits = "".join(given.split())
    if digits.isascii() and digits.isdigit():
        found = company_by_inn(db, digits)
        if found is not None:
            return UUID(found.id)
    rows, _ = companies_page(db, COMPANY_MATCHES, 0, q=given)
    exact = [row for row in rows if row.name.casefold() == given.casefold()]
    if len(exact) == 1:
        return UUID(exact[0].id)
    if len(exact) > 1:
        raise InvalidInput("company", "Several companies have this name; type its ИНН.")
    raise InvalidInput("company", "No company has this name or ИНН.")


def new_contact_context(user: WebUser, draft: Draft) -> dict[str, Any]:
    return {"draft": draft, "responsibles": people(user)}


@router.get("/ui/contacts/new", response_model=None)
def new_contact_form(user: WebWriterDep) -> Response:
    """The blank form: the fragment the clients list and the inbox load, or a page of its own."""
    template = "contacts/_new_contact.html" if is_htmx(user) else "contacts/new_contact.html"
    return user.render(template, **new_contact_context(user, Draft()))


@router.post("/contacts", response_model=None)
def create_contact(user: WebWriterDep, form: FormDep) -> Response:
    """A new client with an e-mail, a phone, a company and who is responsible; then its page."""
    values = posted_values(form, CONTACT_FIELDS)
    identities = [(kind, values[kind]) for kind in ("email", "phone") if values[kind]]
    try:
        company_id = find_company(user, values["company"])
        responsible = optional_user(values["responsible_id"], "responsible_id")
        committed = user.runtime.app.create_contact(
            actor=user.actor,
            name=values["name"],
            identities=identities,
            responsible_id=responsible,
        )
        contact_id, last = committed.value, committed.notification_id
        if company_id is not None:
            # The company was found in the views above, so this second command is not
            # expected to fail; `create_contact` takes no company (the API links it by PATCH).
            linked = user.runtime.app.update_contact(
                contact_id, actor=user.actor, company_id=company_id
            )
            last = linked.notification_id
    except COMMAND_ERRORS as error:
        draft = Draft(values, placed_errors(user, error, CONTACT_FIELDS))
        template = "contacts/_new_contact.html" if is_htmx(user) else "contacts/new_contact.html"
        return user.render(
            template, status_code=status_of(error), **new_contact_context(user, draft)
        )
    user.runtime.wait_for_views(last)
    target = f"/contacts/{contact_id}"
    if is_htmx(user):
        return Response(status_code=200, headers={"HX-Redirect": target})
    return redirect(target, "saved")
