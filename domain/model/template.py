"""The Template aggregate: a message text with per-channel variants, used by rules and campaigns.

Templates are validated by the trigger engine (`threadline.triggers.templates`)
before they reach the log, so a variable that does not exist is rejected when
the template is saved, never when a rule sends it. The id is ``uuid5`` of the
slug, so rules refer to templates by a readable name.
"""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from threadline.domain.model.inbox import clean_slug

TEMPLATE_NAMESPACE = uuid5(NAMESPACE_URL, "https://threadline.dev/template")


def template_id_for(slug: str) -> UUID:
    return uuid5(TEMPLATE_NAMESPACE, clean_slug(slug))


class Template(Aggregate):
    """Name and variants (``{"email": {"subject", "html", "text"}, "sms": {"text"}, ...}``)."""

    class TemplateSaved(Aggregate.Created):
        slug: str
        name: str
        variants: dict[str, Any]
        actor: str
        correlation_id: str

    @event(TemplateSaved)
    def __init__(
        self,
        id: UUID,
        slug: str,
        name: str,
        variants: dict[str, Any],
        actor: str,
        correlation_id: str,
    ) -> None:
        self.slug = slug
        self.name = name
        self.variants = variants

    class TemplateChanged(Aggregate.Event):
        name: str
        variants: dict[str, Any]
        actor: str
        correlation_id: str

    @event(TemplateChanged)
    def change(self, name: str, variants: dict[str, Any], actor: str, correlation_id: str) -> None:
        self.name = name
        self.variants = variants
