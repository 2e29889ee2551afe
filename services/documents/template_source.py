"""Which template text makes a document: the business's saved one, else the shipped one.

Every (kind, language) has a shipped template (`shipped/<kind>.<language>.html`); a
business that saves its own (the `DocumentTemplate` aggregate) replaces it until it
resets. `template_for` answers with the text and with what to record beside an issued
document — the template's id and the aggregate's version — so the log says which
text made each document even after the template changes again.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventsourcing.application import AggregateNotFoundError

from threadline.domain.model.document_template import (
    DOCUMENT_KINDS,
    DOCUMENT_LANGUAGES,
    DocumentTemplate,
    document_template_id,
)
from threadline.domain.model.errors import InvalidInput

SHIPPED = Path(__file__).parent / "shipped"

SHIPPED_NAMES: dict[str, tuple[str, str]] = {  # kind -> (ru, en)
    "proposal": ("Коммерческое предложение", "Commercial proposal"),
    "invoice": ("Счёт на оплату", "Invoice"),
    "contract": ("Договор", "Contract"),
    "act": ("Акт выполненных работ (оказанных услуг)", "Certificate of completion"),
    "upd": ("Универсальный передаточный документ (УПД)", "Universal transfer document"),
    "specification": ("Спецификация к договору", "Specification"),
    "price_protocol": ("Протокол согласования цены", "Price agreement protocol"),
    "purchase_order": ("Заказ поставщику", "Purchase order"),
}


@dataclass(frozen=True)
class TemplateChoice:
    """The text in force for (kind, language): `id` is ``shipped:<kind>:<language>`` or the
    aggregate's id; `version` the aggregate's version (None for a template never saved)."""

    id: str
    kind: str
    language: str
    version: int | None
    name: str
    source: str
    shipped: bool


def check_pair(kind: str, language: str) -> None:
    """422 on an unknown kind or language (the routes take them from the path)."""
    if kind not in DOCUMENT_KINDS:
        raise InvalidInput("kind", f"one of {', '.join(DOCUMENT_KINDS)}")
    if language not in DOCUMENT_LANGUAGES:
        raise InvalidInput("language", f"one of {', '.join(DOCUMENT_LANGUAGES)}")


def shipped_name(kind: str, language: str) -> str:
    ru, en = SHIPPED_NAMES[kind]
    return en if language == "en" else ru


@functools.cache
def shipped_source(kind: str, language: str) -> str:
    check_pair(kind, language)
    return (SHIPPED / f"{kind}.{language}.html").read_text(encoding="utf-8")


def shipped_choice(kind: str, language: str, version: int | None = None) -> TemplateChoice:
    return TemplateChoice(
        id=f"shipped:{kind}:{language}",
        kind=kind,
        language=language,
        version=version,
        name=shipped_name(kind, language),
        source=shipped_source(kind, language),
        shipped=True,
    )


def _stored(app_or_unit: Any, kind: str, language: str) -> DocumentTemplate | None:
    """The aggregate through a unit of work (inside a command) or the app's repository."""
    template_id = document_template_id(kind, language)
    if hasattr(app_or_unit, "find"):
        found: DocumentTemplate | None = app_or_unit.find(template_id, DocumentTemplate)
        return found
    try:
        aggregate = app_or_unit.repository.get(template_id)
    except AggregateNotFoundError:
        return None
    return aggregate if isinstance(aggregate, DocumentTemplate) else None


def template_for(app_or_unit: Any, kind: str, language: str) -> TemplateChoice:
    """The text in force for (kind, language); a reset template answers with the shipped text
    and the aggregate's version (the reset is part of the history too)."""
    check_pair(kind, language)
    stored = _stored(app_or_unit, kind, language)
    if stored is None:
        return shipped_choice(kind, language)
    if stored.source is None:
        return shipped_choice(kind, language, stored.version)
    return TemplateChoice(
        id=str(stored.id),
        kind=kind,
        language=language,
        version=stored.version,
        name=stored.name,
        source=stored.source,
        shipped=False,
    )
