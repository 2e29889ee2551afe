"""The users screen with the bulk hand-over: a departing user's clients, deals and tasks to others.

The page lists the users and what each one holds now (clients as responsible, open deals as
manager, open tasks as assignee). The hand-over is two steps: the preview counts what would
move (`services.hand_over.items_of`, a read), and the confirmation runs
`services.hand_over.hand_over` — the same function as ``POST /api/users/{id}/hand-over`` —
which records one event per item under one correlation id, so every client's, deal's and
task's history shows who had it when. Items shared among several receivers go round-robin.
Managers and admins hand over; everyone else reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from threadline.domain.model.errors import InvalidInput
from threadline.services.hand_over import ALL_KINDS, HandOverKind, hand_over, items_of
from threadline.services.web.admin.common import EditorDep, can_edit
from threadline.services.web.deps import WebUser, WebUserDep
from threadline.services.web.errors import message_of, status_of
from threadline.services.web.posted_forms import COMMAND_ERRORS, FormDep, redirect

router = APIRouter()

KIND_LABELS = {"contacts": "Clients", "deals": "Open deals", "tasks": "Open tasks"}


@dataclass
class HandOverDraft:
    """The hand-over form as chosen: who leaves, who takes over, which kinds."""

    from_user: str = ""
    to_users: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=lambda: list(ALL_KINDS))
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, values: FormData | Any) -> HandOverDraft:
        """From a posted form or a query string (both have `getlist`)."""
        return cls(
            from_user=str(values.get("from_user") or "").strip(),
            to_users=[str(v) for v in values.getlist("to_users") if str(v).strip()],
            kinds=[str(v) for v in values.getlist("kinds") if v in ALL_KINDS],
        )

    def query(self) -> str:
        pairs = [("from_user", self.from_user)]
        pairs += [("to_users", to) for to in self.to_users]
        pairs += [("kinds", kind) for kind in self.kinds]
        return urlencode(pairs)


@dataclass(frozen=True)
class Checked:
    """A draft that names existing users: the departing one and the receivers."""

    from_user: UUID
    to_users: list[UUID]
    kinds: list[HandOverKind]


def check(user: WebUser, draft: HandOverDraft) -> Checked:
    """The draft's users and kinds, or `InvalidInput` naming the field that is wrong."""
    known = {str(u["id"]): u for u in user.runtime.queries.users()}
    if draft.from_user not in known:
        raise InvalidInput("from_user", "Choose the user who hands over.")
    receivers = [to for to in dict.fromkeys(draft.to_users) if to in known]
    if not receivers or len(receivers) != len(set(draft.to_users)):
        raise InvalidInput("to_users", "Choose at least one user who takes over.")
    if draft.from_user in receivers:
        raise InvalidInput("to_users", "A user cannot hand over to themselves.")
    inactive = [to for to in receivers if not known[to]["active"] or known[to]["role"] == "auditor"]
    if inactive:
        raise InvalidInput("to_users", "Only active users who may work can take over.")
    kinds: list[HandOverKind] = [k for k in ALL_KINDS if k in draft.kinds]
    if not kinds:
        raise InvalidInput("kinds", "Choose what to hand over.")
    return Checked(UUID(draft.from_user), [UUID(to) for to in receivers], kinds)


def holdings(user: WebUser, users: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """What each user holds now, by kind (a few indexed queries per user)."""
    return {str(u["id"]): items_of(user.runtime.views, str(u["id"])).counts() for u in users}


def render(
    user: WebUser,
    draft: HandOverDraft,
    status_code: int = 200,
    preview: dict[str, int] | None = None,
    done: dict[str, int] | None = None,
) -> HTMLResponse:
    users = sorted(user.runtime.queries.users(), key=lambda u: str(u["name"] or u["email"]).lower())
    return user.render(
        "admin/hand_over.html",
        status_code=status_code,
        users=users,
        holdings=holdings(user, users),
        receivers=[u for u in users if u["active"] and u["role"] != "auditor"],
        draft=draft,
        preview=preview,
        done=done,
        kind_labels=KIND_LABELS,
        kinds=ALL_KINDS,
        editable=can_edit(user),
    )


def counts_of(request: Request) -> dict[str, int] | None:
    """The counts of a finished hand-over, carried in the redirect's query string."""
    params = request.query_params
    if params.get("done") != "handed-over":
        return None
    out: dict[str, int] = {}
    for kind in ALL_KINDS:
        given = params.get(kind, "0")
        out[kind] = int(given) if given.isascii() and given.isdigit() and len(given) < 10 else 0
    return out


@router.get("/users")
def users_page(request: Request, user: WebUserDep) -> HTMLResponse:
    """The users and what they hold; with `from_user` etc. in the query, the preview too."""
    draft = HandOverDraft.of(request.query_params)
    if not request.query_params.get("kinds") and not draft.from_user:
        draft.kinds = list(ALL_KINDS)
    if not draft.from_user:
        return render(user, draft, done=counts_of(request))
    try:
        checked = check(user, draft)
    except InvalidInput as error:
        draft.errors = {error.field: message_of(user, error)}
        return render(user, draft, status_of(error))
    preview = items_of(user.runtime.views, checked.from_user, checked.kinds).counts()
    return render(user, draft, preview=preview)


@router.post("/users/hand-over", response_model=None)
def confirm(user: EditorDep, form: FormDep) -> Response:
    """Hand over now (the confirmation of a preview); one event per item, one correlation id."""
    draft = HandOverDraft.of(form)
    try:
        checked = check(user, draft)
        outcome = hand_over(
            user.runtime.app,
            user.runtime.views,
            checked.from_user,
            checked.to_users,
            user.actor,
            checked.kinds,
        )
    except COMMAND_ERRORS as error:
        key = error.field if isinstance(error, InvalidInput) else "form"
        draft.errors = {key: message_of(user, error)}
        return render(user, draft, status_of(error))
    if outcome.notification_id is not None:
        user.runtime.wait_for_views(outcome.notification_id)
    counts = f"contacts={outcome.contacts}&deals={outcome.deals}&tasks={outcome.tasks}"
    return redirect(f"/admin/users?{counts}", "handed-over")
