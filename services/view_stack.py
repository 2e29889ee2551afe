"""The stores of one process: the log (the application) and the views kept over it.

Two kinds of process open them: every process that serves or works (`Runtime`,
which adds the state database and the components on top), and the views child
(`views_child_main`), which only keeps the views current and so opens nothing
else — no state database, no credentials, no channel hub, no trigger runner.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment

from threadline.domain.commands.application import Threadline
from threadline.domain.model import contact_ids
from threadline.projections.audit_index import AuditIndexProjection
from threadline.projections.automation import AutomationProjection
from threadline.projections.base import ViewProjection
from threadline.projections.campaigns import CampaignProjection
from threadline.projections.catalogue import CatalogueProjection
from threadline.projections.companies import CompanyProjection
from threadline.projections.consents import ConsentProjection
from threadline.projections.contact_card import ContactCardProjection
from threadline.projections.contact_inbound import ContactInboundProjection
from threadline.projections.deals import DealProjection
from threadline.projections.forms import FormsProjection
from threadline.projections.inbox import InboxProjection
from threadline.projections.inboxes import InboxesProjection
from threadline.projections.marketing_spend import MarketingSpendProjection
from threadline.projections.money_flow import MoneyFlowProjection
from threadline.projections.outbox import OutboxProjection
from threadline.projections.pipelines import PipelineProjection
from threadline.projections.process_runner import leave_stopping_to_parent
from threadline.projections.runner import ViewRunner
from threadline.projections.sales_plans import SalesPlanProjection
from threadline.projections.saved_segments import SavedSegmentProjection
from threadline.projections.service_requests import ServiceRequestsProjection
from threadline.projections.sources_touches import SourcesTouchesProjection
from threadline.projections.sql import ViewDatabase
from threadline.projections.tasks import TaskProjection
from threadline.projections.timeline import TimelineProjection
from threadline.projections.users import UserProjection
from threadline.services.config import Settings
from threadline.services.contact_keys import DatabaseKeyring
from threadline.services.secret_box import SecretBox, settings_secret_box
from threadline.services.sqlite_pragmas import ViewCache, checkpoint, relax_view_durability
from threadline.services.store import (
    PoolBudget,
    default_views_url,
    library_env,
    name_connections,
    pool_budget,
    pooled,
    schema_locks,
    state_url_for,
    tune_pool,
)

log = logging.getLogger(__name__)

PROJECTION_CLASSES: tuple[type[ViewProjection], ...] = (
    UserProjection,
    ContactCardProjection,
    ConsentProjection,
    CompanyProjection,
    InboxProjection,
    TimelineProjection,
    TaskProjection,
    InboxesProjection,
    FormsProjection,
    OutboxProjection,
    AutomationProjection,
    CampaignProjection,
    PipelineProjection,
    DealProjection,
    CatalogueProjection,
    MoneyFlowProjection,
    SalesPlanProjection,
    ContactInboundProjection,
    SavedSegmentProjection,
    MarketingSpendProjection,
    SourcesTouchesProjection,
    ServiceRequestsProjection,
    AuditIndexProjection,
)


def views_url_of(settings: Settings) -> str:
    return settings.views_url or default_views_url(settings.database_url)


def budget_of(settings: Settings) -> PoolBudget:
    """Small pools per role, idle overflow returned (deploy/README.md has the budget)."""
    return pool_budget(settings.role, settings.db_pool_size, settings.db_max_overflow)


def open_log(settings: Settings, budget: PoolBudget, box: SecretBox | None = None) -> Threadline:
    """The application over the log, its table created if need be, its personal parts sealed
    and opened with the contacts' keys (`box` wraps them: the settings' key when not given)."""
    app = Threadline(
        env={**pooled(library_env(settings.database_url), budget), "CREATE_TABLE": "no"},
        default_region=settings.default_region,
    )
    tune_pool(settings.db_idle_seconds, app.recorder)
    recorder: Any = app.recorder  # SQLite's and PostgreSQL's recorders both create their table
    recorder.create_table()
    if box is None:
        box = settings_secret_box(settings, state_url_for(views_url_of(settings)))
    keyring = DatabaseKeyring(app.recorder, box)
    app.personal_mapper.keyring = keyring
    contact_ids.install(keyring.next_contact_id)
    return app


@dataclass
class ViewStack:
    """The view database, the projections writing it and the runner feeding them the log."""

    factory: Any  # the library's InfrastructureFactory of the views (untyped there)
    cache: ViewCache | None
    views: ViewDatabase
    projections: list[ViewProjection]
    runner: ViewRunner

    def stop_writing(self) -> None:
        """Another process writes the views from now on: give up the writer's page cache."""
        if self.cache is not None:
            self.cache.stop_writing()


def open_views(
    settings: Settings, views_url: str, budget: PoolBudget, app: Threadline, writer: bool
) -> ViewStack:
    """The views of `app`'s log; `writer` when this process applies the events to them."""
    factory: Any = InfrastructureFactory.construct(
        Environment("views", {**pooled(library_env(views_url), budget), "CREATE_TABLE": "no"})
    )
    tune_pool(settings.db_idle_seconds, factory)
    # The big page cache only where the views are written (see `ViewCache`).
    cache = relax_view_durability(factory, writer=writer)
    recorder = factory.tracking_recorder()
    recorder.create_table()
    projections = [cls(recorder, upstream=app.name) for cls in PROJECTION_CLASSES]
    return ViewStack(
        factory=factory,
        cache=cache,
        views=ViewDatabase(recorder),
        projections=projections,
        runner=ViewRunner(app, projections),
    )


def replay_as_of(
    settings: Settings,
    app: Threadline,
    position: int,
    into_url: str,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Build every view as of `position` into `into_url` (a database or schema of its own;
    the live views are untouched) and mark it frozen; how many events were read.

    Rebuilding into the same place again starts over (a frozen set is never moved on)."""
    budget = budget_of(settings)
    with schema_locks(settings.database_url, into_url):
        stack = open_views(settings, into_url, budget, app, writer=True)
    try:
        stack.runner.thaw()
        runner = ViewRunner(app, stack.projections, until=position)
        read = runner.rebuild(progress)
        runner.freeze()
        return read
    finally:
        close_stores_of(stack)


def close_stores_of(stack: ViewStack) -> None:
    """Close a views stack opened beside the runtime's own (`replay_as_of`), its SQLite
    write-ahead log checkpointed into the file first."""
    datastore = getattr(stack.views.recorder, "datastore", None)
    if datastore is not None and getattr(datastore, "pool", None) is not None:
        checkpoint(datastore, "views as of a position")
    try:
        stack.factory.close()
    except Exception:
        log.debug("closing the views factory failed", exc_info=True)


def close_stores(app: Threadline, factories: list[tuple[Any, str]]) -> list[str]:
    """Checkpoint each SQLite store into its file, then close the pools; the names checkpointed.

    `factories` are the library's factories besides the log's, with a name for the log line.
    """
    checkpointed = []
    for owner, name in [(app.recorder, "log"), *factories]:
        datastore = getattr(owner, "datastore", None)
        pool = getattr(datastore, "pool", None)
        open_pool = pool is not None and not getattr(pool, "closed", True)
        if open_pool and checkpoint(datastore, name):
            checkpointed.append(name)
    app.close()
    try:
        for owner, _ in reversed(factories):
            owner.close()
    except Exception:
        log.debug("closing the views factory failed", exc_info=True)
    return checkpointed


def views_child_main(settings: Settings, position: Any, wake: Any, stop: Any, failing: Any) -> None:
    """The views process: follow the log, publish the position, until told to stop.

    It opens the log and the views, nothing else: the parent imports credentials,
    runs the channels and the rules.
    """
    logging.basicConfig(level=getattr(logging, settings.log_level, logging.INFO))
    parent = multiprocessing.parent_process()
    parent_pid = parent.pid if parent is not None else os.getppid()
    leave_stopping_to_parent()
    _die_with_parent()
    # Its own pool budget and connection name (`threadline-views`), apart from the parent's.
    settings = settings.with_overrides(role="views")
    views_url = views_url_of(settings)
    name_connections(settings.role)
    with schema_locks(settings.database_url, views_url):
        budget = budget_of(settings)
        app = open_log(settings, budget)
        stack = open_views(settings, views_url, budget, app, writer=True)
    runner = stack.runner

    def report() -> None:
        position.value = runner.position()
        failing.value = int(runner.last_error is not None)

    try:
        runner.follow(wake, stop, report, alive=lambda: os.getppid() == parent_pid)
    finally:
        runner.stop()
        close_stores(app, [(stack.factory, "views")])


def _die_with_parent() -> None:
    """Ask Linux to end this process when its parent dies (`kill -9` of the server included)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the getppid() check in the loop still works
        pass
