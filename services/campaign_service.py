"""Campaigns as the API, the web admin and the sender share them.

`POST /api/campaigns` and the admin's "new campaign" form check a campaign the
same way before it is recorded (the template exists and has a variant for the
channel, the segment is valid in the language of `GET /api/contacts`), both show
a campaign as `describe` says, and a test send composes exactly what the sender
will send: the survivor of a merged contact, its opt-out and address, the
template version fixed at the start — through the process's outbound composer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.model.attributes import AttributeRegistry
from threadline.domain.model.campaign import Campaign, template_id_of
from threadline.domain.model.contact import Contact
from threadline.domain.model.errors import Conflict, InvalidInput
from threadline.domain.model.template import Template
from threadline.projections.campaigns import CampaignRow, recipient_counts
from threadline.projections.queries import ContactFilter
from threadline.projections.segments import build_contact_filter, pairs_of
from threadline.projections.sql import ViewReader
from threadline.triggers.outbound import (
    AggregateReader,
    OutboundComposer,
    opted_out,
    personal_of,
    unreachable,
)
from threadline.triggers.templates import TemplateError


class TestSender(Protocol):
    """Records a campaign's test message (the application)."""

    def send_campaign_test(
        self,
        campaign_id: UUID,
        contact_id: UUID,
        channel: str,
        personal: dict[str, Any],
        actor: str,
    ) -> Committed[UUID]: ...


# -- checking a new campaign ------------------------------------------------------------------


def segment_filter(
    segment: Any, registry: AttributeRegistry | None, views: ViewReader | None = None
) -> ContactFilter:
    """The campaign's audience in the segment language; errors name ``segment.<key>``.
    With `views`, ``segment_id`` (a saved segment: the audience is its filter when the
    campaign starts), ``abc_class`` and ``balance_*`` are read too."""
    if not isinstance(segment, Mapping):
        raise InvalidInput("segment", "a mapping of filters, as in GET /api/contacts")
    for key, value in segment.items():
        if key in ("limit", "offset"):
            raise InvalidInput(f"segment.{key}", "unknown filter")
        values = value if isinstance(value, list | tuple) else [value]
        if not values or not all(isinstance(v, str | int | float | bool) for v in values):
            raise InvalidInput(f"segment.{key}", "expected a value or a list of values")
    return build_contact_filter(pairs_of(segment), registry, field_prefix="segment", views=views)


def template_named(aggregates: AggregateReader, slug: str) -> Template:
    """The template a campaign names by its slug (422 on the ``template`` field if none)."""
    _, template_id = template_id_of(slug)
    try:
        template: Template = aggregates.get(template_id)
    except Exception:
        raise InvalidInput("template", f"no template with the slug {slug!r}") from None
    return template


def check_template(aggregates: AggregateReader, slug: str, channel: str) -> Template:
    """The campaign's template, which must have a variant for its channel (or a default)."""
    template = template_named(aggregates, slug)
    if channel != "same" and not {channel, "default"} & set(template.variants):
        raise InvalidInput("template", f"the template has no {channel} variant and no default one")
    return template


# -- showing a campaign ---------------------------------------------------------------------


def describe(views: ViewReader, row: CampaignRow) -> dict[str, Any]:
    """A campaign as the API returns it: its state, progress per recipient state, times."""
    counts = recipient_counts(views, row.id)
    state = "paused" if row.paused and row.state != "finished" else row.state
    return {
        "id": row.id,
        "name": row.name,
        "template": row.template,
        "template_version": row.template_version,
        "segment": row.segment,
        "channel": row.channel,
        "per_minute": row.per_minute,
        "state": state,
        "paused": row.paused,
        "total": row.total if row.total is not None else row.queued,
        "audience_complete": row.total is not None,
        "counts": counts,
        "processed": sum(n for s, n in counts.items() if s != "queued"),
        "test_sends": row.test_sends,
        "finish_reason": row.finish_reason,
        "created_by": row.created_by,
        "created_at": row.created_at,
        "started_at": row.started_at,
        "paused_at": row.paused_at,
        "finished_at": row.finished_at,
    }


# -- one campaign message ---------------------------------------------------------------------


def campaign_problem(contact: Contact, channel: str) -> str | None:
    """Why a campaign message must not go to `contact` on `channel` (opted out, no address)."""
    return opted_out(contact, channel) or unreachable(contact, channel)


def render_campaign(
    composer: OutboundComposer, campaign: Campaign, contact_id: UUID, channel: str
) -> dict[str, str]:
    """Subject, text and HTML of the campaign's template (the version fixed at its start)
    for this contact (raises `TemplateError`)."""
    facts = composer.facts(
        contact_id,
        "campaign",
        {"type": "campaign", "campaign_id": str(campaign.id)},
        cause_key=f"campaign:{campaign.id}:{contact_id}",
    )
    template = composer.template(campaign.template_id, campaign.template_version)
    return personal_of(composer.render(template.variants, channel, contact_id, facts))


@dataclass(frozen=True)
class TestSend:
    message_id: UUID
    contact_id: UUID
    channel: str
    notification_id: int | None


def send_test(
    app: TestSender, composer: OutboundComposer, campaign_id: UUID, contact_id: UUID, actor: str
) -> TestSend:
    """Render the campaign's template for one contact and send it to them, as a test."""
    campaign: Campaign = composer.aggregates.get(campaign_id)
    contact = composer.contact(contact_id)
    channel = composer.channels_for([str(contact.id)], campaign.channel)[str(contact.id)]
    refused = opted_out(contact, channel)
    if refused is not None:
        raise Conflict(f"the contact {refused}")
    missing = unreachable(contact, channel)
    if missing is not None:
        raise InvalidInput("contact_id", missing)
    try:
        personal = render_campaign(composer, campaign, contact.id, channel)
    except TemplateError as error:
        raise InvalidInput("template", str(error)) from None
    committed = app.send_campaign_test(campaign_id, contact.id, channel, personal, actor)
    return TestSend(committed.value, contact.id, channel, committed.notification_id)
