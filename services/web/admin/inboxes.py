"""The inboxes screen: list, and a settings form generated from the channel's settings schema.

The form is the channel adapter's `settings_schema` (what `GET /api/channels`
describes), so a channel added later gets its form without a change here.
Secret settings (passwords, tokens) are password inputs that are always empty:
the page says only "set" or "not set", and an empty secret keeps the stored
value, so a secret never travels back to a browser. Saving goes through
`runtime.channels.configure`, as the inbox API does, and its `InvalidInput`
(``settings.smtp_port``) is shown next to that setting. Only admins see these
screens at all, as only admins read `GET /api/inboxes`: an inbox's configuration
shows its servers, user names and which secrets are set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, Response

from threadline.channels.base import ChannelAdapter, FieldKind, SettingField
from threadline.channels.registry import adapter_class, load_adapters
from threadline.domain.model.errors import Conflict, InvalidInput, NotFound
from threadline.projections.inboxes import inboxes_page
from threadline.services.web.admin.common import (
    ADMINS,
    PAGE_SIZE,
    AdminOnlyDep,
    Pager,
    can_edit,
    checked,
    flashes,
    not_found,
    pager,
    text,
)
from threadline.services.web.deps import Forbidden, WebUser, WebUserDep
from threadline.services.web.errors import message_of, status_of
from threadline.services.web.posted_forms import (
    COMMAND_ERRORS,
    FormDep,
    redirect,
)

router = APIRouter()


def _admin_reader(user: WebUserDep) -> WebUser:
    """Reading inbox configuration is for admins, as in the API (403 for everyone else)."""
    if user.role not in ADMINS:
        raise Forbidden(user._("Only admins can see inboxes."))
    return user


AdminReaderDep = Annotated[WebUser, Depends(_admin_reader)]

INPUT_TYPES = {
    FieldKind.TEXT: "text",
    FieldKind.SECRET: "password",
    FieldKind.INTEGER: "number",
    FieldKind.URL: "url",
    FieldKind.EMAIL: "email",
    FieldKind.PHONE: "tel",
    FieldKind.LIST: "text",
}


@dataclass
class InboxDraft:
    """The inbox as the form shows it: plain values as text, secrets only as set or not."""

    slug: str = ""
    channel: str = ""
    name: str = ""
    enabled: bool = True
    values: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, bool] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, described: dict[str, Any], schema: tuple[SettingField, ...]) -> InboxDraft:
        settings = described["settings"]
        return cls(
            slug=described["slug"],
            channel=described["channel"],
            name=described["name"],
            enabled=bool(described["enabled"]),
            values={
                spec.name: _shown(spec, settings.get(spec.name))
                for spec in schema
                if not spec.secret
            },
            secrets=dict(described["secrets"]),
        )

    @classmethod
    def blank(cls, channel: str, schema: tuple[SettingField, ...]) -> InboxDraft:
        values = {spec.name: _shown(spec, spec.default) for spec in schema if not spec.secret}
        secrets = {spec.name: False for spec in schema if spec.secret}
        return cls(channel=channel, values=values, secrets=secrets)

    def settings(self, form: Any, schema: tuple[SettingField, ...]) -> dict[str, Any]:
        """What `configure` takes: every plain value as typed, secrets only when typed."""
        given: dict[str, Any] = {}
        for spec in schema:
            raw = text(form, f"s_{spec.name}")
            if spec.secret:
                if raw:
                    given[spec.name] = raw
            else:
                self.values[spec.name] = raw
                given[spec.name] = raw.strip()
        return given

    def fail(self, error: InvalidInput) -> None:
        key = error.field
        if key.startswith("settings."):
            key = "s_" + key[len("settings.") :]
        elif key not in ("slug", "channel", "name"):
            key = "form"
        self.errors[key] = f"{error.field}: {error.message}"


def _shown(spec: SettingField, value: Any) -> str:
    if value is None:
        return ""
    if spec.kind is FieldKind.LIST and isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if spec.kind is FieldKind.BOOLEAN:
        return "true" if value is True or str(value).lower() == "true" else "false"
    return str(value)


def _channels() -> list[tuple[str, str]]:
    return [(name, adapter.title or name) for name, adapter in sorted(load_adapters().items())]


def _editor(
    user: WebUser,
    draft: InboxDraft,
    adapter: type[ChannelAdapter] | None,
    existing: bool,
    status_code: int = 200,
    done: str | None = None,
    rejected: dict[str, Any] | None = None,
) -> HTMLResponse:
    return user.render(
        "admin/inbox_edit.html",
        rejected=rejected,
        status_code=status_code,
        draft=draft,
        schema=[
            {
                "name": spec.name,
                "label": user._(spec.label),
                "help": user._(spec.help) if spec.help else "",
                "kind": spec.kind,
                "secret": spec.secret,
                "required": spec.required,
            }
            for spec in (adapter.settings_schema if adapter else ())
        ],
        title=(adapter.title or draft.channel) if adapter else "",
        input_types=INPUT_TYPES,
        boolean=FieldKind.BOOLEAN,
        channels=_channels(),
        existing=existing,
        flashes=flashes(user, done),
        editable=can_edit(user, ADMINS),
    )


@router.get("/inboxes")
def inboxes_list(user: AdminReaderDep, page: int = 1, done: str | None = None) -> HTMLResponse:
    runtime = user.runtime
    paging = pager(runtime, "inboxes", page)
    rows = inboxes_page(runtime.views, paging.size, paging.offset)
    titles = dict(_channels())
    items = [{**asdict(r), "title": titles.get(r.channel, r.channel)} for r in rows]
    return user.render(
        "admin/inboxes_list.html",
        inboxes=items,
        pager=paging,
        flashes=flashes(user, done),
        editable=can_edit(user, ADMINS),
    )


@router.get("/inboxes/new")
def inbox_new(user: AdminReaderDep, channel: str = "") -> HTMLResponse:
    """Pick a channel first; its settings form follows."""
    adapter = adapter_class(channel) if channel else None
    draft = InboxDraft.blank(channel, adapter.settings_schema if adapter else ())
    if channel and adapter is None:
        draft.errors["channel"] = f"channel: {user._('unknown channel')}"
    return _editor(user, draft, adapter, existing=False)


@router.post("/inboxes/new")
def inbox_create(user: AdminOnlyDep, form: FormDep) -> Response:
    channel = text(form, "channel")
    adapter = adapter_class(channel)
    draft = InboxDraft(
        slug=text(form, "slug").strip(),
        channel=channel,
        name=text(form, "name").strip(),
        enabled=checked(form, "enabled"),
    )
    if adapter is None:
        draft.errors["channel"] = f"channel: {user._('unknown channel')}"
        return _editor(user, draft, None, existing=False, status_code=422)
    draft.secrets = {spec.name: False for spec in adapter.settings_schema if spec.secret}
    return _save(user, draft, adapter, form, existing=False)


@router.get("/inboxes/{slug}")
def inbox_edit(slug: str, user: AdminReaderDep, done: str | None = None) -> HTMLResponse:
    inbox = user.runtime.channels.inbox(slug)
    adapter = adapter_class(inbox.channel) if inbox else None
    if inbox is None:
        return not_found(user, user._("No such inbox."))
    described = user.runtime.channels.describe(inbox)
    schema = adapter.settings_schema if adapter else ()
    return _editor(
        user,
        InboxDraft.of(described, schema),
        adapter,
        existing=True,
        done=done,
        rejected=_rejected(user, slug, 1, REJECTED_ON_INBOX_PAGE),
    )


@router.post("/inboxes/{slug}")
def inbox_update(slug: str, user: AdminOnlyDep, form: FormDep) -> Response:
    inbox = user.runtime.channels.inbox(slug)
    adapter = adapter_class(inbox.channel) if inbox else None
    if inbox is None or adapter is None:
        return not_found(user, user._("No such inbox."))
    draft = InboxDraft.of(user.runtime.channels.describe(inbox), adapter.settings_schema)
    draft.name = text(form, "name").strip()
    draft.enabled = checked(form, "enabled")
    return _save(user, draft, adapter, form, existing=True)


def _save(
    user: WebUser,
    draft: InboxDraft,
    adapter: type[ChannelAdapter],
    form: Any,
    existing: bool,
) -> Response:
    settings = draft.settings(form, adapter.settings_schema)
    if not draft.name or len(draft.name) > 200:
        draft.errors["name"] = "name: 1 to 200 characters"
        return _editor(user, draft, adapter, existing, status_code=422)
    if not existing and draft.slug and user.runtime.channels.inbox(draft.slug) is not None:
        # Checked before `configure`, which stores secrets before it records the inbox.
        draft.errors["slug"] = f"slug: {user._('an inbox with this slug exists')}"
        return _editor(user, draft, adapter, existing, status_code=409)
    try:
        user.runtime.channels.configure(
            draft.slug,
            draft.channel,
            draft.name,
            settings,
            user.actor,
            enabled=draft.enabled,
            create_only=not existing,
        )
    except InvalidInput as error:
        draft.fail(error)
        return _editor(user, draft, adapter, existing, status_code=422)
    except COMMAND_ERRORS as error:
        draft.errors["slug" if not existing else "form"] = message_of(user, error)
        return _editor(user, draft, adapter, existing, status_code=status_of(error))
    return redirect(f"/admin/inboxes/{draft.slug.strip().lower()}", "saved")


# -- rejected messages -------------------------------------------------------------------------

REJECTED_ON_INBOX_PAGE = 20
RETRY_FLASHES = {"ingested": "retried", "rejected": "retry-rejected", "gone": "retry-gone"}


def _rejected(user: WebUser, slug: str, page: int, size: int) -> dict[str, Any]:
    """One page of the inbox's rejected messages (newest first) and how many there are."""
    store = user.runtime.channels.rejections
    total = store.count(slug)
    paging = Pager(min(max(page, 1), Pager(1, total, size).pages), total, size)
    items = [r.describe() for r in store.page(slug, paging.size, paging.offset)]
    return {"rows": items, "total": total, "pager": paging, "more": total > len(items)}


@router.get("/inboxes/{slug}/rejected")
def inbox_rejected(slug: str, user: AdminReaderDep, page: int = 1) -> HTMLResponse:
    """Every rejected message of the inbox, a page at a time, each with a Retry button."""
    inbox = user.runtime.channels.inbox(slug)
    if inbox is None:
        return not_found(user, user._("No such inbox."))
    return user.render(
        "admin/inbox_rejected.html",
        name=inbox.name,
        slug=inbox.slug,
        rejected=_rejected(user, inbox.slug, page, PAGE_SIZE),
        editable=can_edit(user, ADMINS),
    )


@router.post("/inboxes/{slug}/rejected/{rejection_id}/retry")
def inbox_rejected_retry(
    slug: str, rejection_id: str, user: AdminOnlyDep, form: FormDep
) -> Response:
    """Fetch the message from the mail server again and ingest it; the flash says how it went."""
    try:
        answer = user.runtime.channels.retry_rejection(slug, rejection_id)
    except NotFound:
        return not_found(user, user._("No such rejected message."))
    except (ConnectionError, Conflict):
        return redirect(f"/admin/inboxes/{slug}", "retry-failed")
    return redirect(f"/admin/inboxes/{slug}", RETRY_FLASHES[answer["outcome"]])
