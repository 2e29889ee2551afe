"""The document templates screen: every kind and language, an editor, reset, previews.

Saving goes through the same service as `PUT /api/document-templates/...`
(`threadline.services.documents.editing`), so a page refuses what the API refuses:
an unknown name (``line.nmae``), a syntax error, a template over the budget, shown
above the text with its line, and the text stays as typed. Only admins change
templates (an invoice's layout is the business's face to every client); everyone
else reads them with the form disabled. A preview renders the text in the editor —
saved or not — with the sample context in a new tab, as HTML (under the API's
preview policy: no script, no fetch) or as a PDF download.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, Response

from threadline.domain.model.document_template import DOCUMENT_KINDS, DOCUMENT_LANGUAGES
from threadline.domain.model.errors import InvalidInput
from threadline.services.documents import editing
from threadline.services.documents.template_source import (
    TemplateChoice,
    shipped_name,
    template_for,
)
from threadline.services.web.admin.common import can_edit, flashes, not_found, text
from threadline.services.web.deps import Forbidden, WebUser, WebUserDep, WebWriterDep
from threadline.services.web.errors import message_of, status_of
from threadline.services.web.posted_forms import COMMAND_ERRORS, FormDep, redirect
from threadline.triggers.templates import TemplateError

router = APIRouter()

ADMINS = ("admin",)
# The kinds' names as the list shows them (translated in document_templates.po).
KIND_LABELS = {
    "proposal": "Commercial proposal",
    "invoice": "Invoice",
    "contract": "Contract",
    "act": "Certificate of completion (act)",
    "upd": "Universal transfer document (УПД)",
    "specification": "Specification",
    "price_protocol": "Price agreement protocol",
    "purchase_order": "Purchase order",
}
LANGUAGE_LABELS = {"ru": "Russian", "en": "English"}


def _admin(user: WebWriterDep) -> WebUser:
    if user.role not in ADMINS:
        raise Forbidden(user._("Only admins can change document templates."))
    return user


AdminDep = Annotated[WebUser, Depends(_admin)]


@dataclass
class Draft:
    """The editor as typed, with the message of a refused save."""

    name: str
    source: str
    errors: dict[str, str] = field(default_factory=dict)


def _known(kind: str, language: str) -> bool:
    return kind in DOCUMENT_KINDS and language in DOCUMENT_LANGUAGES


def _refusal(user: WebUser, error: TemplateError) -> str:
    where = user._("line {line}: ").format(line=error.line) if error.line is not None else ""
    return f"{where}{error.message}"


def _editor(
    user: WebUser,
    choice: TemplateChoice,
    draft: Draft,
    status_code: int = 200,
    done: str | None = None,
) -> HTMLResponse:
    return user.render(
        "admin/document_template_edit.html",
        status_code=status_code,
        choice=choice,
        draft=draft,
        kind_label=user._(KIND_LABELS[choice.kind]),
        language_label=user._(LANGUAGE_LABELS[choice.language]),
        editable=can_edit(user, ADMINS),
        flashes=flashes(user, done),
    )


@router.get("/document-templates")
def document_templates_list(user: WebUserDep, done: str | None = None) -> HTMLResponse:
    rows = [
        {
            "choice": choice,
            "kind_label": user._(KIND_LABELS[choice.kind]),
            "language_label": user._(LANGUAGE_LABELS[choice.language]),
        }
        for choice in editing.every_template(user.runtime.app)
    ]
    return user.render(
        "admin/document_templates.html",
        rows=rows,
        editable=can_edit(user, ADMINS),
        flashes=flashes(user, done),
    )


@router.get("/document-templates/{kind}/{language}")
def document_template_edit(
    kind: str, language: str, user: WebUserDep, done: str | None = None
) -> HTMLResponse:
    if not _known(kind, language):
        return not_found(user, user._("No such document template."))
    choice = template_for(user.runtime.app, kind, language)
    return _editor(user, choice, Draft(choice.name, choice.source), done=done)


@router.post("/document-templates/{kind}/{language}", response_model=None)
def document_template_save(kind: str, language: str, user: AdminDep, form: FormDep) -> Response:
    if not _known(kind, language):
        return not_found(user, user._("No such document template."))
    app = user.runtime.app
    draft = Draft(text(form, "name").strip(), text(form, "source").replace("\r\n", "\n"))
    name = draft.name or shipped_name(kind, language)
    try:
        editing.save(app, kind, language, name, draft.source, user.actor)
    except TemplateError as error:
        draft.errors["source"] = _refusal(user, error)
        return _editor(user, template_for(app, kind, language), draft, 422)
    except COMMAND_ERRORS as error:
        draft.errors[error.field if isinstance(error, InvalidInput) else "form"] = message_of(
            user, error
        )
        return _editor(user, template_for(app, kind, language), draft, status_of(error))
    return redirect(f"/admin/document-templates/{kind}/{language}", "saved")


@router.post("/document-templates/{kind}/{language}/reset", response_model=None)
def document_template_reset(kind: str, language: str, user: AdminDep) -> Response:
    if not _known(kind, language):
        return not_found(user, user._("No such document template."))
    editing.reset(user.runtime.app, kind, language, user.actor)
    return redirect(f"/admin/document-templates/{kind}/{language}", "saved")


@router.post("/document-templates/{kind}/{language}/preview", response_model=None)
def document_template_preview(
    kind: str,
    language: str,
    user: WebUserDep,
    form: FormDep,
    format: str = "html",
) -> Response:
    """The text in the editor (saved or not) made into a document from the sample context."""
    if not _known(kind, language):
        return not_found(user, user._("No such document template."))
    app = user.runtime.app
    source = text(form, "source").replace("\r\n", "\n")
    fmt: editing.PreviewFormat = "pdf" if format == "pdf" else "html"
    try:
        shown = editing.preview(app, kind, language, source or None, fmt)
    except TemplateError as error:
        choice = template_for(app, kind, language)
        draft = Draft(text(form, "name").strip() or choice.name, source)
        draft.errors["source"] = _refusal(user, error)
        return _editor(user, choice, draft, 422)
    if fmt == "pdf":
        disposition = f'attachment; filename="{shown.filename}"'
        return Response(
            shown.content, media_type=shown.media_type, headers={"Content-Disposition": disposition}
        )
    return Response(
        shown.content,
        media_type=shown.media_type,
        headers={"Content-Security-Policy": editing.PREVIEW_POLICY},
    )
