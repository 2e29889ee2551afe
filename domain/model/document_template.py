"""The DocumentTemplate aggregate: a business's own text for one kind of document in one language.

Every kind of document (an invoice, an act, a УПД ...) ships with a template per
language; a business that wants its own layout saves one, and from then on its
text is used. There is at most one editable template per (kind, language), so the
id is ``uuid5`` of the pair: saving twice changes the same aggregate, and "reset"
records that the shipped text is back in force (the history stays in the log, and
an issued document names the aggregate version whose text made it).

The text is checked (sandbox, schema of the document context) by the service layer
before any command runs, as message templates are; the aggregate only keeps it.
"""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from threadline.domain.model.document import DocumentKind

DOCUMENT_TEMPLATE_NAMESPACE = uuid5(NAMESPACE_URL, "https://threadline.dev/document-template")

DOCUMENT_KINDS = tuple(kind.value for kind in DocumentKind)
DOCUMENT_LANGUAGES = ("ru", "en")


def document_template_id(kind: str, language: str) -> UUID:
    return uuid5(DOCUMENT_TEMPLATE_NAMESPACE, f"{kind}:{language}")


class DocumentTemplate(Aggregate):
    """The edited text of (kind, language); `source` is None after a reset (shipped in force)."""

    class DocumentTemplateSaved(Aggregate.Created):
        kind: str
        language: str
        name: str
        source: str
        actor: str
        correlation_id: str

    @event(DocumentTemplateSaved)
    def __init__(
        self,
        id: UUID,
        kind: str,
        language: str,
        name: str,
        source: str,
        actor: str,
        correlation_id: str,
    ) -> None:
        self.kind = kind
        self.language = language
        self.name = name
        self.source: str | None = source

    class DocumentTemplateChanged(Aggregate.Event):
        name: str
        source: str
        actor: str
        correlation_id: str

    @event(DocumentTemplateChanged)
    def change(self, name: str, source: str, actor: str, correlation_id: str) -> None:
        self.name = name
        self.source = source

    class DocumentTemplateReset(Aggregate.Event):
        actor: str
        correlation_id: str

    @event(DocumentTemplateReset)
    def reset(self, actor: str, correlation_id: str) -> None:
        self.source = None

    @property
    def edited(self) -> bool:
        """Whether the business's own text is in force (not reset to the shipped one)."""
        return self.source is not None
