"""Wiring by constructor: the one place that builds a process's components.

Each component gets the narrow parts it uses — the log's writer (the app), view
readers, read-your-writes waiting, its stores, the settings — through its
constructor, and none of them holds the runtime: so nothing the runtime builds
imports the runtime back (`tests/test_import_graph.py` guards that), and a
component can be built in a test from exactly what it needs.

`Runtime` (services/runtime.py) opens the stores, calls `build_components` and
owns the result: it starts and closes the parts in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from threadline.domain.commands.application import Threadline
from threadline.projections.consents import consent_policies
from threadline.projections.queries import Queries
from threadline.projections.sql import ViewDatabase
from threadline.services.attachment_access import AttachmentAccess
from threadline.services.campaigns import CampaignSender
from threadline.services.channel_hub import ChannelHub, ChannelStores, Worker
from threadline.services.config import Settings
from threadline.services.consent_links import ConsentLinks, consent_urls
from threadline.services.delivery import DeliveryWorker
from threadline.services.documents.links import DocumentLinks
from threadline.services.notifier import NotificationMailer
from threadline.services.secret_box import SecretBox
from threadline.services.surveys import wire_survey_links
from threadline.services.unsubscribe import UnsubscribeLinks
from threadline.services.webhooks import WebhookWorker, destination_policy
from threadline.triggers.facts import FactReader
from threadline.triggers.outbound import OutboundComposer
from threadline.triggers.runner import TriggerRunner, TriggerSettings


class WaitForViews(Protocol):
    """Read-your-writes (`ViewFollowing.wait_for_views`): True once the views show the position."""

    def __call__(self, notification_id: int | None, timeout: float | None = None) -> bool: ...


@dataclass(frozen=True)
class Stores:
    """What the components read and write: the log, the views, the state database."""

    app: Threadline
    views: ViewDatabase
    queries: Queries
    state_db: ViewDatabase
    secret_box: SecretBox


@dataclass(frozen=True)
class Components:
    """The parts of one process that do the work, each built from narrow dependencies."""

    channels: ChannelHub
    unsubscribe: UnsubscribeLinks
    consent_links: ConsentLinks
    document_links: DocumentLinks
    composer: OutboundComposer
    triggers: TriggerRunner
    attachments: AttachmentAccess


def build_components(
    settings: Settings, stores: Stores, wait_for_views: WaitForViews
) -> Components:
    """Build every component once; the hub's workers are made afresh by each `start`."""
    app, views = stores.app, stores.views
    channel_stores = ChannelStores.open(stores.state_db, stores.secret_box)
    unsubscribe = UnsubscribeLinks(channel_stores.state, settings.public_url)
    consent_links = ConsentLinks(channel_stores.state, settings.public_url)
    wire_survey_links(app, channel_stores.state, settings.public_url)  # e-mail survey links
    # One composer per process: rule and campaign messages take slots of one daily limit.
    composer = OutboundComposer(
        aggregates=app.repository,
        facts=FactReader(stores.queries),
        views=views,
        per_day=settings.automatic_messages_per_day,
        unsubscribe_url=unsubscribe.url,
        consent_urls=lambda contact_id: consent_urls(
            consent_links, [p.purpose for p in consent_policies(views)], contact_id
        ),
    )

    def workers() -> list[Worker]:
        return [
            DeliveryWorker(hub, app, views, settings),
            WebhookWorker(
                app.repository,
                app.writer,
                views,
                channel_stores.secrets,
                destination_policy(settings),
            ),
            NotificationMailer(hub, views, app.writer, settings.public_url, settings.timezone),
            CampaignSender(app, views, composer, wait_for_views),
        ]

    hub = ChannelHub(
        settings,
        writer=app,
        aggregates=app.repository,
        views=views,
        stores=channel_stores,
        wait_for_views=wait_for_views,
        workers=workers,
    )
    triggers = TriggerRunner(
        app,
        views,
        stores.queries,
        channel_stores.state,
        wait_for_views=lambda position: wait_for_views(position, timeout=5.0),
        composer=composer,
        settings=TriggerSettings(
            max_depth=settings.rule_chain_depth, public_url=settings.public_url
        ),
    )
    attachments = AttachmentAccess(
        messages=stores.queries,
        store=hub.attachments,
        channels=hub,
        aggregates=app.repository,
        default_region=settings.default_region,
    )
    return Components(
        channels=hub,
        unsubscribe=unsubscribe,
        consent_links=consent_links,
        document_links=DocumentLinks(channel_stores.state, settings.public_url),
        composer=composer,
        triggers=triggers,
        attachments=attachments,
    )
