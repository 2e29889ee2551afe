"""Document template commands: a business saves its own text for a kind of document, or resets it.

The text is checked by the service layer (`threadline.services.documents.templating`)
before these run, like message templates; here only the shape is guarded (a known
kind and language, a name, a text within the limit). Saving the same text again
records nothing, so a form submitted twice leaves one event.
"""

from __future__ import annotations

from uuid import UUID, uuid4

from threadline.domain.commands.base import Commands, required_text
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.document_template import (
    DOCUMENT_KINDS,
    DOCUMENT_LANGUAGES,
    DocumentTemplate,
    document_template_id,
)
from threadline.domain.model.errors import InvalidInput

MAX_TEMPLATE_SOURCE = 200_000  # characters of one document template
MAX_TEMPLATE_NAME = 200


def _checked_pair(kind: str, language: str) -> None:
    if kind not in DOCUMENT_KINDS:
        raise InvalidInput("kind", f"one of {', '.join(DOCUMENT_KINDS)}")
    if language not in DOCUMENT_LANGUAGES:
        raise InvalidInput("language", f"one of {', '.join(DOCUMENT_LANGUAGES)}")


class DocumentTemplateCommands(Commands):
    def save_document_template(
        self, kind: str, language: str, name: str, source: str, actor: str
    ) -> Committed[UUID]:
        """Make `source` the text of (kind, language); the caller has validated it."""
        _checked_pair(kind, language)
        name = required_text("name", name, MAX_TEMPLATE_NAME).strip()
        required_text("source", source, MAX_TEMPLATE_SOURCE)
        template_id = document_template_id(kind, language)
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> UUID:
            stored = unit.find(template_id, DocumentTemplate)
            if stored is None:
                unit.add(
                    DocumentTemplate(
                        id=template_id,
                        kind=kind,
                        language=language,
                        name=name,
                        source=source,
                        actor=actor,
                        correlation_id=correlation_id,
                    )
                )
            elif stored.source != source or stored.name != name:
                stored.change(name, source, actor, correlation_id)
            return template_id

        return self.writer.submit(command)

    def reset_document_template(self, kind: str, language: str, actor: str) -> Committed[UUID]:
        """Put the shipped text back in force (nothing is recorded if it already is)."""
        _checked_pair(kind, language)
        template_id = document_template_id(kind, language)
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> UUID:
            stored = unit.find(template_id, DocumentTemplate)
            if stored is not None and stored.edited:
                stored.reset(actor, correlation_id)
            return template_id

        return self.writer.submit(command)
