"""The inbox screen: the conversation list, one conversation's thread, and its actions.

Layout: list | conversation | client card (`grid-3`). Everything is rendered on
the server from the views; HTMX swaps fragments (`/inbox/list`,
`/inbox/{id}/thread`) when the SSE stream says the views moved, so a new
message or a status change shows without a reload. Each action posts a plain
form: with HTMX the answer is the fragment to swap (plus the thread out of
band), without it the classic POST / redirect / GET, so the screen also works
with scripts off. Writes go through the same application commands as the JSON
API (services/api/routes_conversations.py), so both answer alike.

The list is one paginated query on indexed columns (`Queries.inbox`): the page
must stay fast with tens of thousands of conversations.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, tzinfo
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode
from uuid import UUID, uuid4

from eventsourcing.persistence import RecordConflictError
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from threadline.domain.model.errors import DomainError, InvalidInput
from threadline.domain.model.html import block_remote_content, sanitise_html
from threadline.projections.automation import TemplateName, template_names
from threadline.projections.queries import InboxFilter
from threadline.services.attachment_access import describe as describe_attachments
from threadline.services.template_preview import reply_text
from threadline.services.web.deps import WebUser, WebUserDep, WebWriterDep
from threadline.services.web.errors import message_of, status_of
from threadline.services.web.local_time import parse_local
from threadline.triggers.outbound import reply_options

router = APIRouter(include_in_schema=False)

VIEWS = ("mine", "unassigned", "all")
STATUSES = ("open", "pending", "resolved", "snoozed")
CHANNELS = ("email", "telegram", "sms", "whatsapp", "voice", "web", "api")
CHANNEL_ICONS = {
    "email": "✉",
    "telegram": "✈",
    "sms": "💬",
    "whatsapp": "💬",
    "voice": "☎",
    "web": "🌐",
    "api": "{}",
}
CHANNEL_NAME = re.compile(r"[a-z0-9_-]{1,32}")
PAGE_SIZE = 50
MAX_QUERY = 200
THREAD_CONVERSATIONS = 20  # the client's most recent conversations merged into one thread
THREAD_MESSAGES = 200  # the newest messages of that thread; older ones are on the client card

Command = Callable[[], Any]


@dataclass(frozen=True)
class Filters:
    """The list's filters, as they travel in query strings (and in each form's `back` field)."""

    view: str = "all"
    channel: str = ""
    status: str = ""
    q: str = ""
    page: int = 1

    @classmethod
    def clean(
        cls,
        view: str | None = None,
        channel: str | None = None,
        status: str | None = None,
        q: str | None = None,
        page: str | int | None = None,
    ) -> Filters:
        """Unknown values fall back to "no filter": a stale bookmark still opens the inbox."""
        try:
            number = max(1, min(int(page or 1), 1_000_000))
        except ValueError:
            number = 1
        return cls(
            view=view if view in VIEWS else "all",
            channel=channel if channel and CHANNEL_NAME.fullmatch(channel) else "",
            status=status if status in STATUSES else "",
            q=(q or "").strip()[:MAX_QUERY],
            page=number,
        )

    @classmethod
    def from_query(cls, query: str) -> Filters:
        values = parse_qs(query or "")

        def first(name: str) -> str:
            return values.get(name, [""])[0]

        return cls.clean(
            first("view"), first("channel"), first("status"), first("q"), first("page")
        )

    def query(self, **changes: Any) -> str:
        """The query string of these filters (defaults left out), with `changes` applied."""
        data = {**asdict(self), **changes}
        defaults = {"view": "all", "page": 1}
        pairs = [
            (key, value)
            for key, value in data.items()
            if value not in ("", None) and defaults.get(key) != value
        ]
        return urlencode(pairs)

    def link(self, **changes: Any) -> str:
        """`?<query>` for a link, or "" when every filter is at its default."""
        query = self.query(**changes)
        return f"?{query}" if query else ""

    def inbox_filter(self, user: WebUser) -> InboxFilter:
        return InboxFilter(
            status=self.status or None,
            channel=self.channel or None,
            assignee_id=user.id if self.view == "mine" else None,
            unassigned=self.view == "unassigned",
            text=self.q or None,
        )


def _filters(request: Request) -> Filters:
    params = request.query_params
    return Filters.clean(
        params.get("view"),
        params.get("channel"),
        params.get("status"),
        params.get("q"),
        params.get("page"),
    )


def _is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


# -- reading -----------------------------------------------------------------------------------


def _user_names(user: WebUser) -> dict[str, str]:
    return {str(u["id"]): str(u["name"] or u["email"]) for u in user.runtime.queries.users()}


def _list_context(user: WebUser, filters: Filters, open_id: str | None) -> dict[str, Any]:
    """One page of the list: a COUNT and a LIMIT/OFFSET query on indexed columns."""
    queries = user.runtime.queries
    flt = filters.inbox_filter(user)
    rows, total = queries.inbox(flt, PAGE_SIZE, (filters.page - 1) * PAGE_SIZE)
    pages = max(1, -(-total // PAGE_SIZE))
    if filters.page > pages:
        filters = Filters(**{**asdict(filters), "page": pages})
        rows, total = queries.inbox(flt, PAGE_SIZE, (pages - 1) * PAGE_SIZE)
    ids = [str(row["id"]) for row in rows]
    previous = following = None
    if open_id in ids:
        at = ids.index(open_id)
        previous = ids[at - 1] if at > 0 else None
        following = ids[at + 1] if at + 1 < len(ids) else None
    elif ids:
        following = ids[0]
    return {
        "rows": rows,
        "total": total,
        "pages": pages,
        "filters": filters,
        "open_id": open_id,
        "previous_id": previous,
        "next_id": following,
        "base_path": f"/inbox/{open_id}" if open_id else "/inbox",
        "user_names": _user_names(user),
        "icons": CHANNEL_ICONS,
    }


def reply_channels(conversation: dict[str, Any], contact: dict[str, Any] | None) -> list[str]:
    """The conversation's own channel first, then every other channel the client can be reached on."""
    card = contact or {}
    return reply_options(
        str(conversation["channel"]),
        [str(row["channel"]) for row in card.get("channels", [])],
        [str(identity["kind"]) for identity in card.get("identities", [])],
    )


def _sender(user: WebUser, message: dict[str, Any], contact: str, names: dict[str, str]) -> str:
    """Who wrote it: the client, a colleague by name, or an automation rule."""
    if message["direction"] == "inbound":
        if (message.get("metadata") or {}).get("bounce"):
            return user._("Mail delivery system")
        return str(message.get("sender_name") or contact)
    kind, _, ident = str(message.get("actor", "")).partition(":")
    if kind == "user":
        return names.get(ident, ident)
    if kind == "rule":
        return user._("Automation rule")
    return str(message.get("actor", ""))


def _call(message: dict[str, Any]) -> dict[str, Any] | None:
    call = (message.get("metadata") or {}).get("call")
    if not isinstance(call, dict):
        return None
    duration = call.get("duration")
    seconds = int(duration) if isinstance(duration, int | float) else None
    recording = str(call.get("recording_url") or "")
    return {
        "direction": str(call.get("direction") or message["direction"]),
        "status": str(call.get("status") or ""),
        "outcome": str(call.get("outcome") or ""),
        "duration": None if seconds is None else f"{seconds // 60}:{seconds % 60:02d}",
        "recording_url": recording if recording.startswith(("https://", "http://")) else "",
    }


UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


def _source_note(user: WebUser, message: dict[str, Any]) -> str:
    """Where one inquiry came from ("via form 'contact-us', utm_campaign=spring"), or "".

    Each inbound message keeps its own source; the line shows what the channel alone does
    not say (the form, the campaign's utm tags, the referring page), so an operator sees
    which campaign brought the client back this time. utm tags are shown as they are.
    """
    source = message.get("source") or {}
    if message.get("direction") != "inbound" or not isinstance(source, dict):
        return ""
    parts: list[str] = []
    if source.get("form"):
        parts.append(user._("via form '%(form)s'") % {"form": source["form"]})
    tags = [f"{key}={source[key]}" for key in UTM_KEYS if source.get(key)]
    if tags:
        parts.append(", ".join(tags) if parts else f"{user._('via')} {', '.join(tags)}")
    if source.get("referrer"):
        parts.append(user._("from %(referrer)s") % {"referrer": source["referrer"]})
    return ", ".join(parts)


def thread_of(
    user: WebUser, conversation: dict[str, Any], names: dict[str, str]
) -> list[dict[str, Any]]:
    """The whole thread with the client: every recent conversation of theirs, in log order.

    Messages carry their log position, which orders them across conversations
    exactly as they happened. The HTML of e-mails was sanitised at ingest; it
    is cleaned once more here, so an older or hand-made event cannot slip a
    script in, and is then shown only inside a sandboxed iframe. Remote images
    are dropped (`remote_images` counts them) until the operator loads them for
    one message (`message_remote_content`).
    """
    queries = user.runtime.queries
    current = str(conversation["id"])
    rows, _ = queries.inbox(
        InboxFilter(contact_id=str(conversation["contact_id"])), THREAD_CONVERSATIONS, 0
    )
    ids = [str(row["id"]) for row in rows]
    if current not in ids:
        ids.append(current)
    messages: list[dict[str, Any]] = []
    for conversation_id in ids:
        found = (
            conversation if conversation_id == current else queries.conversation(conversation_id)
        )
        if found is None:
            continue
        for message in found["messages"]:
            html, remote_images = block_remote_content(message.get("html") or "")
            messages.append(
                {
                    **message,
                    "html": html,
                    "remote_images": remote_images,
                    "sender": _sender(user, message, str(found["contact_name"]), names),
                    "call": _call(message),
                    "source_note": _source_note(user, message),
                    "files": describe_attachments(user.runtime.channels.attachments, message),
                    "own": conversation_id == current,
                    "conversation_subject": found["subject"],
                }
            )
    messages.sort(key=lambda m: (int(m["position"]), str(m["id"])))
    return messages[-THREAD_MESSAGES:]


def _conversation(user: WebUser, conversation_id: str) -> dict[str, Any] | None:
    parsed = _uuid(conversation_id)
    return None if parsed is None else user.runtime.queries.conversation(str(parsed))


def _assignees(user: WebUser) -> list[dict[str, Any]]:
    return [u for u in user.runtime.queries.users() if u["active"] and u["role"] != "auditor"]


def _templates(user: WebUser) -> list[TemplateName]:
    return template_names(user.runtime.views, by_name=True)


@dataclass
class Draft:
    """What one form holds when the page is drawn: kept after an error, fresh after success."""

    text: str = ""
    channel: str = ""
    error: str = ""
    message_id: str = ""


def _conversation_context(
    user: WebUser,
    conversation: dict[str, Any],
    filters: Filters,
    reply: Draft | None = None,
    note: Draft | None = None,
    action_error: str = "",
) -> dict[str, Any]:
    contact = user.runtime.queries.contact(str(conversation["contact_id"]))
    reply = reply or Draft()
    reply.message_id = reply.message_id or str(uuid4())
    reply.channel = reply.channel or str(conversation["channel"])
    names = _user_names(user)
    return {
        "conversation": conversation,
        "contact": contact,
        "filters": filters,
        "messages": thread_of(user, conversation, names),
        "channels": reply_channels(conversation, contact),
        "templates": _templates(user),
        "assignees": _assignees(user),
        "assignee_name": names.get(str(conversation.get("assignee_id") or ""), ""),
        "reply": reply,
        "note": note or Draft(),
        "action_error": action_error,
        "icons": CHANNEL_ICONS,
        "statuses": STATUSES,
    }


def _page(
    user: WebUser,
    filters: Filters,
    conversation: dict[str, Any] | None = None,
    status_code: int = 200,
    **state: Any,
) -> HTMLResponse:
    open_id = str(conversation["id"]) if conversation else None
    data = {
        **_list_context(user, filters, open_id),
        "channel_names": CHANNELS,
        "statuses": STATUSES,
        "views": VIEWS,
    }
    if conversation is not None:
        data.update(_conversation_context(user, conversation, filters, **state))
    return user.render("inbox/page.html", status_code=status_code, **data)


def _not_found(user: WebUser) -> HTMLResponse:
    return user.render(
        "error.html", status_code=404, title="404", message=user._("No such conversation.")
    )


# -- pages and fragments ----------------------------------------------------------------------


@router.get("/inbox")
def inbox_page(request: Request, user: WebUserDep) -> HTMLResponse:
    return _page(user, _filters(request))


@router.get("/inbox/list")
def inbox_list(request: Request, user: WebUserDep) -> HTMLResponse:
    """The list fragment (reloaded on `sse:changed`, keeping the filters and the open row)."""
    opened = _uuid(request.query_params.get("open", ""))
    context = _list_context(user, _filters(request), str(opened) if opened else None)
    return user.render("inbox/_list.html", **context)


@router.get("/inbox/{conversation_id}")
def conversation_page(conversation_id: str, request: Request, user: WebUserDep) -> HTMLResponse:
    """The inbox with one conversation open; opening it marks it read (for those who may write)."""
    conversation = _conversation(user, conversation_id)
    if conversation is None:
        return _not_found(user)
    user.runtime.access_log.record(
        user, "conversation", str(conversation["id"]), via="web", path=request.url.path
    )
    conversation = _mark_read(user, conversation)
    return _page(user, _filters(request), conversation)


def _mark_read(user: WebUser, conversation: dict[str, Any]) -> dict[str, Any]:
    if not user.can_write or not conversation.get("unread_count"):
        return conversation
    committed = user.runtime.app.mark_conversation_read(UUID(conversation["id"]), user.actor)
    user.runtime.wait_for_views(committed.notification_id)
    return user.runtime.queries.conversation(str(conversation["id"])) or conversation


@router.get("/inbox/{conversation_id}/thread")
def thread_fragment(conversation_id: str, request: Request, user: WebUserDep) -> HTMLResponse:
    """The thread fragment; while it is open on screen, new messages count as read."""
    conversation = _conversation(user, conversation_id)
    if conversation is None:
        return _not_found(user)
    user.runtime.access_log.record(
        user, "conversation", str(conversation["id"]), via="web", path=request.url.path
    )
    conversation = _mark_read(user, conversation)
    context = _conversation_context(user, conversation, _filters(request))
    return user.render("inbox/_thread.html", **context)


# The one message document that may load remote images: sandboxed (no scripts, no
# origin), framed only by this app, and sending no Referer to the image hosts.
REMOTE_CONTENT_POLICY = (
    "default-src 'none'; img-src 'self' data: http: https:; style-src 'unsafe-inline'; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)


def _message(user: WebUser, conversation_id: str, message_id: str) -> dict[str, Any] | None:
    conversation = _conversation(user, conversation_id)
    if conversation is None:
        return None
    return next((m for m in conversation["messages"] if str(m["id"]) == message_id), None)


@router.get("/inbox/{conversation_id}/messages/{message_id}/images")
def message_with_images(conversation_id: str, message_id: str, user: WebUserDep) -> HTMLResponse:
    """ "Load images" (HTMX): the message body again, as a frame that may load remote images."""
    message = _message(user, conversation_id, message_id)
    if message is None or not message.get("html"):
        return _not_found(user)
    return user.render(
        "inbox/_remote_body.html", message=message, conversation_id=str(conversation_id)
    )


@router.get("/inbox/{conversation_id}/messages/{message_id}/remote-content")
def message_remote_content(conversation_id: str, message_id: str, user: WebUserDep) -> Response:
    """The sanitised HTML of one message with its remote images, for the frame above."""
    message = _message(user, conversation_id, message_id)
    if message is None:
        return _not_found(user)
    body = sanitise_html(message.get("html") or "")
    document = f'<!doctype html><html><head><meta charset="utf-8"></head><body>{body}</body></html>'
    return HTMLResponse(
        document,
        headers={
            "Content-Security-Policy": REMOTE_CONTENT_POLICY,
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


@router.get("/inbox/{conversation_id}/template")
def template_text(conversation_id: str, request: Request, user: WebUserDep) -> HTMLResponse:
    """The reply box filled with a template rendered for this client (nothing is sent)."""
    conversation = _conversation(user, conversation_id)
    if conversation is None:
        return _not_found(user)
    params = request.query_params
    slug = params.get("slug", "")
    contact = user.runtime.queries.contact(str(conversation["contact_id"]))
    channels = reply_channels(conversation, contact)
    channel = params.get("channel", "")
    channel = channel if channel in channels else str(conversation["channel"])
    draft = Draft(text=params.get("text", ""), channel=channel)
    status_code = 200
    if slug:
        try:
            draft.text = render_template(user, conversation, slug, channel)
        except DomainError as error:
            draft.error = message_of(user, error)
            status_code = status_of(error)
    return user.render(
        "inbox/_reply_text.html", status_code=status_code, reply=draft, conversation=conversation
    )


def render_template(user: WebUser, conversation: dict[str, Any], slug: str, channel: str) -> str:
    """The template's text for this contact, rendered as POST /api/templates/{slug}/preview does."""
    runtime = user.runtime
    return reply_text(
        runtime.views,
        runtime.composer,
        slug,
        UUID(str(conversation["contact_id"])),
        UUID(str(conversation["id"])),
        channel,
    )


# -- actions ----------------------------------------------------------------------------------


def _run(user: WebUser, command: Command) -> Exception | None:
    """Run one command and wait for the views; a domain error is returned, not raised."""
    try:
        committed = command()
    except (DomainError, RecordConflictError) as error:
        return error
    user.runtime.wait_for_views(committed.notification_id)
    return None


def _answer(
    request: Request,
    user: WebUser,
    conversation_id: str,
    filters: Filters,
    fragment: str,
    error: Exception | None,
    **state: Any,
) -> Response:
    """After a form: the fragment to swap (HTMX) or POST/redirect/GET; errors shown inline."""
    conversation = _conversation(user, conversation_id)
    if conversation is None:
        return _not_found(user)
    status_code = 200 if error is None else status_of(error)
    if not _is_htmx(request):
        if error is None:
            return RedirectResponse(f"/inbox/{conversation['id']}{filters.link()}", status_code=303)
        return _page(user, filters, conversation, status_code=status_code, **state)
    context = _conversation_context(user, conversation, filters, **state)
    return user.render(
        "inbox/_after_action.html",
        status_code=status_code,
        fragment=fragment,
        with_thread=error is None,
        **context,
    )


def _act(
    request: Request, user: WebUser, conversation_id: str, back: str, command: Command
) -> Response:
    """Run an action of the conversation's action panel and answer with that panel."""
    error = _run(user, command)
    message = "" if error is None else message_of(user, error)
    return _answer(
        request,
        user,
        conversation_id,
        Filters.from_query(back),
        "actions",
        error,
        action_error=message,
    )


@router.post("/inbox/{conversation_id}/reply")
def reply(
    conversation_id: str,
    request: Request,
    user: WebWriterDep,
    text: Annotated[str, Form()] = "",
    channel: Annotated[str, Form()] = "",
    message_id: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "",
) -> Response:
    """Send a reply through the chosen channel: the conversation's own or another of the client's."""
    filters = Filters.from_query(back)
    conversation = _conversation(user, conversation_id)
    if conversation is None:
        return _not_found(user)
    contact = user.runtime.queries.contact(str(conversation["contact_id"]))
    chosen = channel or str(conversation["channel"])
    key = _uuid(message_id)

    def command() -> Any:
        if chosen not in reply_channels(conversation, contact):
            raise InvalidInput("channel", "the client cannot be reached on this channel")
        return user.runtime.app.reply(
            UUID(conversation["id"]), text, user.actor, channel=chosen, message_id=key
        )

    error = _run(user, command)
    draft = Draft() if error is None else Draft(text, chosen, message_of(user, error), message_id)
    return _answer(request, user, conversation_id, filters, "composer", error, reply=draft)


@router.post("/inbox/{conversation_id}/note")
def note(
    conversation_id: str,
    request: Request,
    user: WebWriterDep,
    text: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "",
) -> Response:
    """An internal note: seen by colleagues in the thread, never sent to the client."""
    parsed = _uuid(conversation_id)
    if parsed is None:
        return _not_found(user)
    error = _run(user, lambda: user.runtime.app.add_note(parsed, text, user.actor))
    draft = Draft() if error is None else Draft(text=text, error=message_of(user, error))
    return _answer(
        request, user, conversation_id, Filters.from_query(back), "note", error, note=draft
    )


@router.post("/inbox/{conversation_id}/assign")
def assign(
    conversation_id: str,
    request: Request,
    user: WebWriterDep,
    assignee: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "",
) -> Response:
    """Assign to me, to a colleague, or to nobody (back to the unassigned queue)."""
    parsed = _uuid(conversation_id)
    if parsed is None:
        return _not_found(user)

    def command() -> Any:
        if assignee == "me":
            target: UUID | None = UUID(user.id)
        elif assignee in ("", "none"):
            target = None
        else:
            target = _uuid(assignee)
            if target is None:
                raise InvalidInput("assignee_id", "a user id, me or nobody")
        return user.runtime.app.assign_conversation(parsed, target, user.actor)

    return _act(request, user, conversation_id, back, command)


def snooze_time(value: str, where: tzinfo = UTC) -> datetime | None:
    """A `datetime-local` value, read in the operator's time zone (the label names it)."""
    if not value.strip():
        return None
    return parse_local(value, where, "snoozed_until")


@router.post("/inbox/{conversation_id}/status")
def change_status(
    conversation_id: str,
    request: Request,
    user: WebWriterDep,
    status: Annotated[str, Form()] = "",
    snoozed_until: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "",
) -> Response:
    """Open, pending, resolved, or snoozed until a time (in the operator's time zone)."""
    parsed = _uuid(conversation_id)
    if parsed is None:
        return _not_found(user)

    def command() -> Any:
        until = snooze_time(snoozed_until, user.zone) if status == "snoozed" else None
        return user.runtime.app.change_conversation_status(
            parsed, status, user.actor, snoozed_until=until
        )

    return _act(request, user, conversation_id, back, command)
