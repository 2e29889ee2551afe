"""Editing document templates: what the API and the admin screen both do, in one place.

Saving checks the text first (`validate_document_template`: sandbox, the document
context's schema with its typed lists, the static budget) and records it only if
it passes, so a page refuses exactly what the API refuses, with the same line.
A preview renders a text — the one being edited, or the one in force — with the
sample context, as HTML or PDF; nothing is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from threadline.domain.model.document_template import DOCUMENT_KINDS, DOCUMENT_LANGUAGES
from threadline.services.documents.pdf import html_to_pdf
from threadline.services.documents.sample import sample_context
from threadline.services.documents.template_source import (
    TemplateChoice,
    check_pair,
    template_for,
)
from threadline.services.documents.templating import (
    document_budget,
    render_html,
    validate_document_template,
)
from threadline.triggers.templates import TemplateError

PreviewFormat = Literal["html", "pdf"]

# A preview is HTML a template author wrote, served from the app's own origin: it may
# style itself and show embedded (data:) images, and nothing else — no script, no
# fetch, no form, and `sandbox` gives it an origin of its own (no session cookie).
PREVIEW_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'; sandbox"
)


# A preview renders the sample (three lines), so a real template stays far below these; the
# limits keep one preview request from holding the server with a template that loops to
# build megabytes (WeasyPrint takes about a second per 100 table rows).
MAX_PREVIEW_HTML = 1_000_000
MAX_PREVIEW_PDF_HTML = 300_000


@dataclass(frozen=True)
class Preview:
    content: bytes
    media_type: str
    filename: str


def every_template(app: Any) -> list[TemplateChoice]:
    """The template in force for every kind and language, in the contract's order."""
    return [template_for(app, k, lang) for k in DOCUMENT_KINDS for lang in DOCUMENT_LANGUAGES]


def save(app: Any, kind: str, language: str, name: str, source: str, actor: str) -> TemplateChoice:
    """Check `source` (`TemplateError` with the line), then make it the text in force."""
    check_pair(kind, language)
    validate_document_template(source)
    app.save_document_template(kind, language, name, source, actor)
    return template_for(app, kind, language)


def reset(app: Any, kind: str, language: str, actor: str) -> TemplateChoice:
    check_pair(kind, language)
    app.reset_document_template(kind, language, actor)
    return template_for(app, kind, language)


def preview(
    app: Any, kind: str, language: str, source: str | None, fmt: PreviewFormat = "html"
) -> Preview:
    """`source` (checked first) or the text in force, rendered with the sample context."""
    check_pair(kind, language)
    if source is None:
        source = template_for(app, kind, language).source
    else:
        validate_document_template(source)
    budget = document_budget()
    budget.max_output = MAX_PREVIEW_HTML
    html = render_html(source, sample_context(kind, language), budget)
    name = f"{kind}-{language}-preview"
    if fmt == "pdf":
        if len(html) > MAX_PREVIEW_PDF_HTML:
            raise TemplateError(
                "", "", f"a preview PDF is made from at most {MAX_PREVIEW_PDF_HTML} characters"
            )
        try:
            pdf = html_to_pdf(html)
        except Exception as error:  # WeasyPrint on odd HTML/CSS: the template's problem
            raise TemplateError("", "", f"the PDF could not be made: {error}") from None
        return Preview(pdf, "application/pdf", f"{name}.pdf")
    return Preview(html.encode("utf-8"), "text/html; charset=utf-8", f"{name}.html")
