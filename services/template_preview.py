"""Template previews: a stored template rendered for one client, as a rule would send it.

`POST /api/templates/{slug}/preview`, the admin's template editor and the inbox's
"insert a template" box all show what a client would get. They render through
the process's outbound composer — the same facts, the same unsubscribe link as a
rule's message — and nothing is sent. The editor checks a template with the
attribute registry's keys, as the API does (`attribute_keys`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any
from uuid import UUID

from threadline.domain.model.attributes import AttributeRegistry
from threadline.domain.model.errors import InvalidInput, NotFound
from threadline.projections.automation import template
from threadline.projections.contact_card import contact_exists
from threadline.projections.sql import ViewReader
from threadline.triggers.outbound import OutboundComposer
from threadline.triggers.templates import RenderedMessage, TemplateError


@dataclass(frozen=True)
class TemplatePreview:
    """What the client would get on `channel` (`sms_segments` for SMS only)."""

    channel: str
    subject: str
    text: str
    html: str
    sms_segments: int | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def attribute_keys(registry: AttributeRegistry | None) -> set[str]:
    """The attribute keys a template may name (every key of the registry)."""
    return {d.key for d in registry.all()} if registry is not None else set()


def preview_template(
    views: ViewReader, composer: OutboundComposer, slug: str, contact_id: UUID, channel: str
) -> TemplatePreview:
    """The template `slug` rendered for a contact (NotFound for either; InvalidInput on the
    ``variants`` field when it cannot be rendered)."""
    stored = template(views, slug)
    if stored is None:
        raise NotFound("template", slug)
    if not contact_exists(views, contact_id):
        raise NotFound("contact", contact_id)
    rendered = _rendered(composer, stored.variants, channel, contact_id, None)
    return TemplatePreview(
        channel=channel,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        sms_segments=rendered.sms_segments,
    )


def reply_text(
    views: ViewReader,
    composer: OutboundComposer,
    slug: str,
    contact_id: UUID,
    conversation_id: UUID,
    channel: str,
) -> str:
    """The text of template `slug` for the client of a conversation (the inbox's reply box)."""
    stored = template(views, slug)
    if stored is None:
        raise NotFound("template", slug)
    return _rendered(composer, stored.variants, channel, contact_id, conversation_id).text


def _rendered(
    composer: OutboundComposer,
    variants: dict[str, Any],
    channel: str,
    contact_id: UUID,
    conversation_id: UUID | None,
) -> RenderedMessage:
    try:
        return composer.preview(variants, channel, contact_id, conversation_id)
    except TemplateError as error:
        raise InvalidInput("variants", str(error)) from None
