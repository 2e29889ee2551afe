"""Document templates: the text each kind of document is made from, per language.

Every (kind, language) has a shipped template; an admin may save the business's own
(`PUT`), which is checked first — an unknown name such as ``line.nmae`` is a 422 naming
`source` and the line — and may reset it to the shipped one (`DELETE`). A preview
(`POST .../preview`) renders the given text, or the one in force, with a sample
seller, buyer and lines, as HTML or (`?format=pdf`) PDF; nothing is recorded. The
preview's HTML carries its own Content-Security-Policy: no script, no fetch, a
sandboxed origin.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from threadline.domain.commands.document_templates import MAX_TEMPLATE_NAME, MAX_TEMPLATE_SOURCE
from threadline.domain.model.document import DocumentKind
from threadline.services.api.deps import AdminDep, PrincipalDep, RuntimeDep
from threadline.services.api.errors import validation_detail
from threadline.services.documents import editing
from threadline.services.documents.template_source import (
    TemplateChoice,
    shipped_name,
    template_for,
)
from threadline.triggers.templates import TemplateError

router = APIRouter(prefix="/api", tags=["document templates"])

Kind = DocumentKind  # an enum: OpenAPI lists the kinds
Language = Literal["ru", "en"]


class DocumentTemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(
        None, max_length=MAX_TEMPLATE_NAME, description="the shipped template's name if omitted"
    )
    source: str = Field(..., min_length=1, max_length=MAX_TEMPLATE_SOURCE)


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str | None = Field(
        None,
        max_length=MAX_TEMPLATE_SOURCE,
        description="the text to try; the one in force if null",
    )


class DocumentTemplateOut(BaseModel):
    id: str = Field(..., description='"shipped:<kind>:<language>" or the saved template\'s id')
    kind: str
    language: str
    name: str
    shipped: bool
    version: int | None = Field(..., description="the saved template's version (null: never saved)")


class DocumentTemplateSourceOut(DocumentTemplateOut):
    source: str


class DocumentTemplateListOut(BaseModel):
    items: list[DocumentTemplateOut]
    total: int


def _out(choice: TemplateChoice) -> dict[str, Any]:
    return {
        "id": choice.id,
        "kind": choice.kind,
        "language": choice.language,
        "name": choice.name,
        "shipped": choice.shipped,
        "version": choice.version,
    }


def template_refused(error: TemplateError, field: str = "source") -> JSONResponse:
    """422 naming the field and, beside the message, the line of the template."""
    detail = validation_detail(error.message, ("body", field), "template_error")
    if error.line is not None:
        detail[0]["line"] = error.line
        detail[0]["msg"] = f"line {error.line}: {error.message}"
    return JSONResponse({"detail": detail}, status_code=422)


@router.get("/document-templates", response_model=DocumentTemplateListOut)
def list_document_templates(runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    """Every kind and language with the template in force (shipped or saved)."""
    items = [_out(choice) for choice in editing.every_template(runtime.app)]
    return {"items": items, "total": len(items)}


@router.get("/document-templates/{kind}/{language}", response_model=DocumentTemplateSourceOut)
def get_document_template(
    kind: Kind, language: Language, runtime: RuntimeDep, principal: PrincipalDep
) -> dict[str, Any]:
    choice = template_for(runtime.app, kind, language)
    return {**_out(choice), "source": choice.source}


@router.put(
    "/document-templates/{kind}/{language}",
    response_model=DocumentTemplateSourceOut,
    responses={422: {"description": "the template refers to an unknown value, does not parse "
                     "or is over the budget: `loc` names `source`, `line` the line"}},
)  # fmt: skip
def save_document_template(
    kind: Kind,
    language: Language,
    body: DocumentTemplateIn,
    runtime: RuntimeDep,
    principal: AdminDep,
) -> Any:
    """Make `source` this kind's template in this language (admins only)."""
    name = body.name if body.name and body.name.strip() else shipped_name(kind, language)
    try:
        choice = editing.save(runtime.app, kind, language, name, body.source, principal.actor)
    except TemplateError as error:
        return template_refused(error)
    return {**_out(choice), "source": choice.source}


@router.delete("/document-templates/{kind}/{language}", response_model=DocumentTemplateSourceOut)
def reset_document_template(
    kind: Kind, language: Language, runtime: RuntimeDep, principal: AdminDep
) -> dict[str, Any]:
    """Back to the shipped template (admins only); the saved texts stay in the log."""
    choice = editing.reset(runtime.app, kind, language, principal.actor)
    return {**_out(choice), "source": choice.source}


@router.post(
    "/document-templates/{kind}/{language}/preview",
    response_class=Response,
    responses={
        200: {
            "description": "the document made from the sample context: HTML (with its own "
            "Content-Security-Policy) or, with `format=pdf`, PDF",
            "content": {
                "text/html": {"schema": {"type": "string"}},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        422: {"description": "the template cannot be rendered: `loc` names `source`, `line` "
              "the line"},
    },
)  # fmt: skip
def preview_document_template(
    kind: Kind,
    language: Language,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    body: PreviewIn | None = None,
    format: Annotated[Literal["html", "pdf"], Query()] = "html",
) -> Response:
    """Render the given text (or the one in force) with a sample seller, buyer and lines."""
    source = body.source if body is not None else None
    try:
        shown = editing.preview(runtime.app, kind, language, source, format)
    except TemplateError as error:
        return template_refused(error)
    headers = {"Content-Disposition": f'inline; filename="{shown.filename}"'}
    if format == "html":
        headers["Content-Security-Policy"] = editing.PREVIEW_POLICY
    return Response(shown.content, media_type=shown.media_type, headers=headers)
