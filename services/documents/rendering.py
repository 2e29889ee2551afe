"""One call that makes a document: the template in force, rendered to HTML and to PDF.

Issuing a document (numbering, storing, the deal's context) is the documents service's
business; it calls `render_document` with the context of the documents contract and
records `template.id` / `template.version` beside the document, so the log says which
template text made it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from threadline.services.documents.pdf import html_to_pdf
from threadline.services.documents.template_source import TemplateChoice, template_for
from threadline.services.documents.templating import render_html


@dataclass(frozen=True)
class RenderedDocument:
    template: TemplateChoice
    html: str
    pdf: bytes | None


def render_document(
    app_or_unit: Any,
    kind: str,
    language: str,
    context: Mapping[str, Any],
    *,
    pdf: bool = True,
) -> RenderedDocument:
    """Render (kind, language) with `context`; `TemplateError` when the template fails on it
    (a saved template was checked, so that means a value it cannot handle)."""
    template = template_for(app_or_unit, kind, language)
    html = render_html(template.source, {**context, "kind": kind, "language": language})
    return RenderedDocument(template=template, html=html, pdf=html_to_pdf(html) if pdf else None)
