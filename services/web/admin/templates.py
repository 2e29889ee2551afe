"""The templates screen: list, edit the per-channel variants, SMS segment count, preview.

A template is checked by `validate_template` with the attribute registry's keys,
exactly as `POST /api/templates` checks it, and a `TemplateError` is shown next
to the field it names (variant, field and line), so an unknown variable is
found while writing, not at 3 a.m. when a rule sends it. The preview renders the
stored template for one client as `POST /api/templates/{slug}/preview` does, through
the same service (`threadline.services.template_preview`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from threadline.projections.automation import TemplateRow, template, templates_page
from threadline.services.template_preview import attribute_keys, preview_template
from threadline.services.web.admin.common import (
    EditorDep,
    can_edit,
    find_contact,
    flashes,
    not_found,
    pager,
    text,
    wait,
)
from threadline.services.web.deps import WebUser, WebUserDep
from threadline.services.web.errors import message_of, status_of
from threadline.services.web.posted_forms import (
    COMMAND_ERRORS,
    FormDep,
    redirect,
)
from threadline.triggers.sms import sms_segments
from threadline.triggers.templates import PARSE_MODES, TemplateError, validate_template

router = APIRouter()

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
# The form's fields: (variant, field) pairs, in the order the page shows them.
FIELDS = (
    ("email", "subject"),
    ("email", "html"),
    ("email", "text"),
    ("sms", "text"),
    ("telegram", "text"),
    ("default", "text"),
)
PREVIEW_CHANNELS = ("email", "sms", "telegram", "whatsapp", "web")


@dataclass
class TemplateDraft:
    """The template as the form shows it; `values` by ``variant_field``; errors by the same."""

    slug: str = ""
    name: str = ""
    values: dict[str, str] = field(default_factory=dict)
    parse_mode: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, row: TemplateRow) -> TemplateDraft:
        variants = row.variants
        values = {
            f"{variant}_{name}": str((variants.get(variant) or {}).get(name) or "")
            for variant, name in FIELDS
        }
        parse_mode = (variants.get("telegram") or {}).get("parse_mode") or ""
        return cls(slug=row.slug, name=row.name, values=values, parse_mode=parse_mode)

    @classmethod
    def posted(cls, form: Any, slug: str | None = None) -> TemplateDraft:
        return cls(
            slug=slug if slug is not None else text(form, "slug").strip(),
            name=text(form, "name"),
            values={f"{v}_{n}": text(form, f"{v}_{n}") for v, n in FIELDS},
            parse_mode=text(form, "telegram_parse_mode"),
        )

    def variants(self) -> dict[str, dict[str, Any]]:
        """Only the variants the author wrote something in; empty fields are left out."""
        variants: dict[str, dict[str, Any]] = {}
        for variant, name in FIELDS:
            value = self.values.get(f"{variant}_{name}", "")
            if value.strip():
                variants.setdefault(variant, {})[name] = value
        if "telegram" in variants and self.parse_mode in PARSE_MODES:
            variants["telegram"]["parse_mode"] = self.parse_mode
        return variants

    def fail(self, error: TemplateError) -> None:
        if error.variant and error.field:
            key = f"{error.variant}_{error.field}"
        elif error.variant:
            key = error.variant
        else:
            key = "variants"
        if key == "telegram_parse_mode":
            key = "telegram_text"
        self.errors[key] = str(error)


def sms_info(user: WebUser, source: str) -> str:
    info = sms_segments(source)
    return user._("{segments} SMS segment(s), {encoding}, {characters} characters").format(
        segments=info.segments, encoding=info.encoding, characters=info.characters
    )


def _row(user: WebUser, slug: str) -> TemplateRow | None:
    return template(user.runtime.views, slug)


def _editor(
    user: WebUser,
    draft: TemplateDraft,
    row: TemplateRow | None,
    status_code: int = 200,
    done: str | None = None,
    preview: dict[str, Any] | None = None,
) -> HTMLResponse:
    return user.render(
        "admin/template_edit.html",
        status_code=status_code,
        draft=draft,
        stored=row,
        parse_modes=PARSE_MODES,
        channels=PREVIEW_CHANNELS,
        sms=sms_info(user, draft.values.get("sms_text", "")),
        flashes=flashes(user, done),
        editable=can_edit(user),
        preview=preview,
    )


@router.get("/templates")
def templates_list(user: WebUserDep, page: int = 1, done: str | None = None) -> HTMLResponse:
    runtime = user.runtime
    paging = pager(runtime, "templates", page)
    rows = templates_page(runtime.views, paging.size, paging.offset)
    items = [
        {"slug": r.slug, "name": r.name, "updated_at": r.updated_at, "channels": sorted(r.variants)}
        for r in rows
    ]
    return user.render(
        "admin/templates_list.html",
        templates=items,
        pager=paging,
        flashes=flashes(user, done),
        editable=can_edit(user),
    )


@router.get("/templates/new")
def template_new(user: WebUserDep) -> HTMLResponse:
    return _editor(user, TemplateDraft(), None)


@router.post("/templates/new")
def template_create(user: EditorDep, form: FormDep) -> Response:
    return _save(user, TemplateDraft.posted(form), None)


@router.get("/templates/sms-segments")
def template_sms_segments(user: WebUserDep, sms_text: str = "") -> HTMLResponse:
    """The live SMS segment count under the SMS field (HTMX, as the author types)."""
    return HTMLResponse(sms_info(user, sms_text))


@router.get("/templates/{slug}")
def template_edit(slug: str, user: WebUserDep, done: str | None = None) -> HTMLResponse:
    row = _row(user, slug)
    if row is None:
        return not_found(user, user._("No such template."))
    return _editor(user, TemplateDraft.of(row), row, done=done)


@router.post("/templates/{slug}")
def template_update(slug: str, user: EditorDep, form: FormDep) -> Response:
    row = _row(user, slug)
    if row is None:
        return not_found(user, user._("No such template."))
    return _save(user, TemplateDraft.posted(form, slug=row.slug), row)


def _save(user: WebUser, draft: TemplateDraft, row: TemplateRow | None) -> Response:
    runtime = user.runtime
    if row is None and not SLUG.match(draft.slug):
        draft.errors["slug"] = "slug: 1 to 40 lower-case letters, digits or dashes"
    if not draft.name.strip() or len(draft.name) > 200:
        draft.errors["name"] = "name: 1 to 200 characters"
    if draft.errors:
        return _editor(user, draft, row, 422)
    variants = draft.variants()
    try:
        validate_template(variants, attribute_keys(runtime.app.attribute_registry()))
    except TemplateError as error:
        draft.fail(error)
        return _editor(user, draft, row, 422)
    try:
        committed = runtime.app.save_template(
            draft.slug, draft.name, variants, user.actor, create_only=row is None
        )
    except COMMAND_ERRORS as error:
        draft.errors["slug" if row is None else "form"] = message_of(user, error)
        return _editor(user, draft, row, status_of(error))
    wait(runtime, committed)
    return redirect(f"/admin/templates/{draft.slug}", "saved")


@router.get("/templates/{slug}/preview")
def template_preview(
    slug: str, user: WebUserDep, contact: str = "", channel: str = "email"
) -> HTMLResponse:
    """The stored template rendered for one client, as `POST /api/templates/{slug}/preview`."""
    row = _row(user, slug)
    if row is None:
        return not_found(user, user._("No such template."))
    result: dict[str, Any] = {"contact": contact, "channel": channel}
    status_code = 200
    contact_id = find_contact(user.runtime, contact)
    if contact_id is None:
        result["error"] = user._("No client with this id, e-mail, phone or Telegram id.")
        status_code = 404 if contact.strip() else 422
    else:
        runtime = user.runtime
        try:
            shown = preview_template(
                runtime.views, runtime.composer, row.slug, UUID(contact_id), channel
            )
            result.update(shown.as_dict())
        except COMMAND_ERRORS as error:
            result["error"], status_code = message_of(user, error), status_of(error)
    if user.request.headers.get("HX-Request"):  # HTMX swaps only 2xx: the error is in the body
        return user.render("admin/template_preview.html", preview=result)
    return _editor(user, TemplateDraft.of(row), row, status_code=status_code, preview=result)
