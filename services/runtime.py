"""Process wiring: the application, the views and the runner that keeps them current.

`Runtime` is what `threadline serve`, the CLI commands, the tests and the
benchmarks all construct, so every entry point runs the same code path.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from contextlib import ExitStack
from typing import Any

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment

from threadline.domain.commands.application import Threadline
from threadline.domain.infrastructure.store_access import recover_connections
from threadline.projections.automation import AutomationProjection
from threadline.projections.base import ViewProjection
from threadline.projections.campaigns import CampaignProjection
from threadline.projections.contact_card import ContactCardProjection
from threadline.projections.forms import FormsProjection
from threadline.projections.inbox import InboxProjection
from threadline.projections.inboxes import InboxesProjection
from threadline.projections.outbox import OutboxProjection
from threadline.projections.process_runner import ProcessViewRunner, leave_stopping_to_parent
from threadline.projections.queries import Queries
from threadline.projections.runner import Progress, ViewRunner
from threadline.projections.sql import ViewDatabase
from threadline.projections.tasks import TaskProjection
from threadline.projections.timeline import TimelineProjection
from threadline.projections.users import UserProjection
from threadline.services.config import Settings
from threadline.services.credentials import CredentialStore
from threadline.services.secret_box import open_secret_box
from threadline.services.sqlite_pragmas import checkpoint, relax_view_durability
from threadline.services.store import (
    default_views_url,
    library_env,
    name_connections,
    pool_budget,
    pooled,
    schema_lock,
    state_url_for,
    tune_pool,
)
from threadline.services.visibility import ReadYourWrites, SharedPosition

log = logging.getLogger(__name__)

PROJECTION_CLASSES: tuple[type[ViewProjection], ...] = (
    UserProjection,
    ContactCardProjection,
    InboxProjection,
    TimelineProjection,
    TaskProjection,
    InboxesProjection,
    FormsProjection,
    OutboxProjection,
    AutomationProjection,
    CampaignProjection,
)


def _views_child_main(
    settings: Settings, position: Any, wake: Any, stop: Any, failing: Any
) -> None:
    """The views process: follow the log, publish the position, until told to stop."""
    logging.basicConfig(level=getattr(logging, settings.log_level, logging.INFO))
    parent = multiprocessing.parent_process()
    parent_pid = parent.pid if parent is not None else os.getppid()
    leave_stopping_to_parent()
    _die_with_parent()
    # Its own pool budget and connection name (`threadline-views`), apart from the parent's.
    runtime = Runtime(settings.with_overrides(role="views"), run_views=True)
    runner = runtime.runner

    def report() -> None:
        position.value = runner.position()
        failing.value = int(runner.last_error is not None)

    try:
        runner.follow(wake, stop, report, alive=lambda: os.getppid() == parent_pid)
    finally:
        runtime.close()


def _die_with_parent() -> None:
    """Ask Linux to end this process when its parent dies (`kill -9` of the server included)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the getppid() check in the loop still works
        pass


class Runtime:
    """One process's view of Threadline: write through `app`, read through `queries`.

    `views_in_process=False` (what `threadline serve` uses) keeps the views in a
    child process so that they do not compete with the writer for one core; see
    `threadline.projections.process_runner`.
    """

    def __init__(
        self, settings: Settings, run_views: bool = True, views_in_process: bool = True
    ) -> None:
        views_url = settings.views_url or default_views_url(settings.database_url)
        name_connections(settings.role)
        # Roles started together take turns creating and upgrading tables (`schema_lock`).
        with ExitStack() as locks:
            locks.enter_context(schema_lock(settings.database_url))
            if views_url != settings.database_url:
                locks.enter_context(schema_lock(views_url))
            self._build(settings, views_url, run_views, views_in_process)

    def _build(
        self, settings: Settings, views_url: str, run_views: bool, views_in_process: bool
    ) -> None:
        self.settings = settings
        self.read_your_writes = ReadYourWrites(
            settings.read_your_writes_timeout,
            settings.read_your_writes_behind_timeout,
            self.views_position,
        )
        # Requests waiting for another process's views share one reader of their position.
        self._stored_position = SharedPosition(self._read_views_position)
        # Small pools per role, idle overflow returned (deploy/README.md has the budget).
        budget = pool_budget(settings.role, settings.db_pool_size, settings.db_max_overflow)
        self.pool_budget = budget
        self.app = Threadline(
            env={**pooled(library_env(settings.database_url), budget), "CREATE_TABLE": "no"},
            default_region=settings.default_region,
        )
        tune_pool(settings.db_idle_seconds, self.app.recorder)
        self.app.recorder.create_table()
        factory: Any = InfrastructureFactory.construct(
            Environment("views", {**pooled(library_env(views_url), budget), "CREATE_TABLE": "no"})
        )
        tune_pool(settings.db_idle_seconds, factory)
        # The big page cache only where the views are written (see `ViewCache`).
        self._view_cache = relax_view_durability(factory, writer=run_views)
        self._factory = factory
        recorder = factory.tracking_recorder()
        recorder.create_table()
        self.views = ViewDatabase(recorder)
        state_url = state_url_for(views_url)
        if state_url == views_url:
            self.state_db = self.views
            self._state_factory: Any = None
        else:
            self._state_factory = InfrastructureFactory.construct(
                Environment("state", library_env(state_url))
            )
            self.state_db = ViewDatabase(self._state_factory.tracking_recorder())
        # Inbox secrets and password hashes: encrypted in the state database, never in the log.
        self.secret_box = open_secret_box(settings, state_url, self.state_db)
        self.credentials = CredentialStore(self.state_db, self.secret_box)
        self.credentials.encrypt_plaintext()
        self.app.passwords = self.credentials
        self.credentials.import_from_log(self.app)
        self.projections = [cls(recorder, upstream=self.app.name) for cls in PROJECTION_CLASSES]
        self.runner = ViewRunner(self.app, self.projections)
        self.queries = Queries(self.views)
        self.run_views = run_views
        self.views_in_process = views_in_process
        self.follower: ViewRunner | ProcessViewRunner = self.runner
        self._started = False
        from threadline.services.channel_hub import ChannelHub

        self.channels = ChannelHub(self)
        self._triggers: Any = None

    def start(self, progress: Progress | None = None) -> None:
        """Catch the views up with the log, then keep following it in the background."""
        if not self.run_views or self._started:
            return
        self.runner.catch_up(progress)
        if self.views_in_process:
            self.runner.start()
        else:
            self.follower = ProcessViewRunner(
                _views_child_main, self.settings, self.runner.position()
            )
            self.follower.start()
            if self._view_cache is not None:
                self._view_cache.stop_writing()  # the child writes them from now on
        self.app.commit_listeners.append(self.follower.notify)
        self._started = True

    def wait_for_views(self, notification_id: int | None, timeout: float | None = None) -> bool:
        """Read-your-writes: block until the views show `notification_id` (True if they do).

        Without `timeout` (a request) the wait is short while the views are known to be
        behind, and a request whose change is not visible in time is marked so
        (`threadline.services.visibility`).
        """
        if notification_id is None:
            return True
        return self.read_your_writes.wait(
            lambda seconds: self._wait_for_views(notification_id, seconds), timeout
        )

    def _wait_for_views(self, notification_id: int, timeout: float) -> bool:
        if self.run_views and not self._started:
            return self.views_position() >= notification_id
        if not self.run_views:
            # Another process keeps the views: poll their position.
            deadline = time.monotonic() + timeout
            while self.views_position() < notification_id:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.01)
            return True
        return self.follower.wait(notification_id, timeout)

    def views_position(self) -> int:
        """How far the views have applied the log (read from the database in API-only mode)."""
        if self.run_views and self._started:
            return self.follower.position()
        if self.run_views:
            return self.runner.position()
        return self._stored_position.get()

    def _read_views_position(self) -> int:
        """The lowest tracked position of the views, in one query (not one per view)."""
        names = [p.tracking_name for p in self.projections]
        if not names:
            return 0
        rows = self.views.query(
            f"SELECT application_name, MAX(notification_id) AS position"
            f" FROM {self.views.tracking_table}"
            f" WHERE application_name IN ({', '.join('?' for _ in names)})"
            " GROUP BY application_name",
            names,
        )
        found = {row["application_name"]: int(row["position"] or 0) for row in rows}
        return min(found.get(name, 0) for name in names)

    def rebuild_views(self, progress: Progress | None = None) -> int:
        return self.runner.rebuild(progress)

    def views_healthy(self) -> bool:
        if isinstance(self.follower, ProcessViewRunner):
            return self.follower.healthy
        return self.runner.last_error is None

    def recover_connections(self) -> None:
        """Replace the dead connections of every pool this process reads and writes through."""
        # every projection writes through `self.views.recorder`, so its pool covers them all
        recover_connections(self.app.recorder, self.views.recorder, self.state_db.recorder)

    def views_restarts(self) -> int:
        """How often the views process died and was started again since this process began."""
        return self.follower.restarts if isinstance(self.follower, ProcessViewRunner) else 0

    @property
    def triggers(self) -> Any:
        """The trigger engine of this process (built on first use; `start_triggers` runs it)."""
        if self._triggers is None:
            from threadline.services.unsubscribe import UnsubscribeLinks
            from threadline.triggers.runner import TriggerRunner, TriggerSettings

            self.unsubscribe = UnsubscribeLinks(self.channels.state, self.settings.public_url)
            self._triggers = TriggerRunner(
                self.app,
                self.views,
                self.queries,
                self.channels.state,
                wait_for_views=lambda n: self.wait_for_views(n, timeout=5.0),
                settings=TriggerSettings(
                    max_depth=self.settings.rule_chain_depth,
                    automatic_per_day=self.settings.automatic_messages_per_day,
                    public_url=self.settings.public_url,
                    unsubscribe_url=self.unsubscribe.url,
                ),
            )
        return self._triggers

    def start_triggers(self) -> None:
        """Run rules, timers and schedules in a background thread (the views must be running)."""
        self.triggers.start()

    def close(self) -> None:
        """Stop every part in the order they depend on each other, then leave the files whole.

        Rules first (they hand messages to the channels), then the channel hub (deliveries
        already begun finish), then the views (the child ends its page), then the stores:
        each SQLite write-ahead log is checkpointed into its file before the pools close.
        """
        stopped: list[str] = []
        if self._triggers is not None:
            self._triggers.stop()
            stopped.append("trigger runner")
        if self.channels.stop():
            stopped.append("channel hub")
        if self.follower is not self.runner:
            self.follower.stop()
            stopped.append("views process")
        self.runner.stop()
        stores = [(self.app.recorder, "log"), (self._factory, "views")]
        if self._state_factory is not None:
            stores.append((self._state_factory, "state"))
        checkpointed = []
        for owner, name in stores:
            datastore = getattr(owner, "datastore", None)
            pool = getattr(datastore, "pool", None)
            open_pool = pool is not None and not getattr(pool, "closed", True)
            if open_pool and checkpoint(datastore, name):
                checkpointed.append(name)
        self.app.close()
        try:
            if self._state_factory is not None:
                self._state_factory.close()
            self._factory.close()
        except Exception:
            log.debug("closing the views factory failed", exc_info=True)
        log.info(
            "runtime closed in order: %s stopped; SQLite checkpointed: %s",
            ", ".join(stopped) or "nothing",
            ", ".join(checkpointed) or "none",
        )

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
