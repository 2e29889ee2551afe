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
from typing import Any

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment

from threadline.domain.application import Threadline
from threadline.domain.store_access import recover_connections
from threadline.projections.automation import AutomationProjection
from threadline.projections.base import ViewProjection
from threadline.projections.campaigns import CampaignProjection
from threadline.projections.contact_card import ContactCardProjection
from threadline.projections.forms import FormsProjection
from threadline.projections.inbox import InboxProjection
from threadline.projections.inboxes import InboxesProjection
from threadline.projections.outbox import OutboxProjection
from threadline.projections.process_runner import ProcessViewRunner
from threadline.projections.queries import Queries
from threadline.projections.runner import Progress, ViewRunner
from threadline.projections.sql import ViewDatabase
from threadline.projections.tasks import TaskProjection
from threadline.projections.timeline import TimelineProjection
from threadline.projections.users import UserProjection
from threadline.services.config import Settings
from threadline.services.credentials import CredentialStore
from threadline.services.secret_box import open_secret_box
from threadline.services.store import (
    default_views_url,
    ensure_schema,
    library_env,
    state_url_for,
)

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
    _die_with_parent()
    runtime = Runtime(settings, run_views=True)
    runner = runtime.runner

    def report() -> None:
        position.value = runner.position()
        failing.value = int(runner.last_error is not None)

    try:
        runner.follow(wake, stop, report, alive=lambda: os.getppid() == parent_pid)
    finally:
        runtime.close()


VIEW_CACHE_KIB = 65536
VIEW_CHECKPOINT_PAGES = 16384  # 64 MiB of 4 KiB pages


def relax_view_durability(factory: Any) -> None:
    """SQLite views commit without an fsync (``synchronous=NORMAL`` in WAL mode).

    The views are derived data: a power cut can at worst roll back their last
    transactions, and because each transaction holds the view rows together with
    their tracking position, the runner then re-applies exactly those events. The
    file is never left inconsistent (that is what WAL guarantees with NORMAL). The
    log itself keeps the default FULL synchronisation.

    Each view connection also gets a 64 MiB page cache instead of SQLite's 2 MiB,
    and checkpoints the WAL every 64 MiB instead of every 4 MiB. Every event updates
    rows by random UUID keys across a dozen indexes, so a page of a thousand events
    dirties thousands of database pages: with the defaults each such commit re-read
    evicted pages and set off a checkpoint (copy and fsync) of its own. Measured
    with a catch-up of 20,000 messages: 543 µs of CPU per message with the defaults,
    450 with the larger checkpoint interval alone.
    """
    pool = getattr(getattr(factory, "datastore", None), "pool", None)
    create = getattr(pool, "_create_connection", None)
    if create is None or type(pool).__module__ != "eventsourcing.sqlite":
        return

    def create_relaxed() -> Any:
        connection = create()
        connection._sqlite_conn.execute("PRAGMA synchronous=NORMAL")
        connection._sqlite_conn.execute(f"PRAGMA cache_size=-{VIEW_CACHE_KIB}")
        connection._sqlite_conn.execute(f"PRAGMA wal_autocheckpoint={VIEW_CHECKPOINT_PAGES}")
        connection._sqlite_conn.execute(f"PRAGMA journal_size_limit={VIEW_CACHE_KIB * 1024}")
        return connection

    pool._create_connection = create_relaxed  # type: ignore[union-attr]


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
        self.settings = settings
        views_url = settings.views_url or default_views_url(settings.database_url)
        ensure_schema(settings.database_url)
        if views_url != settings.database_url:
            ensure_schema(views_url)
        self.app = Threadline(
            env=library_env(settings.database_url), default_region=settings.default_region
        )
        factory: Any = InfrastructureFactory.construct(Environment("views", library_env(views_url)))
        relax_view_durability(factory)
        self._factory = factory
        recorder = factory.tracking_recorder()
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
        self.app.commit_listeners.append(self.follower.notify)
        self._started = True

    def wait_for_views(self, notification_id: int | None, timeout: float | None = None) -> bool:
        """Read-your-writes: block until the views show `notification_id` (True if they do)."""
        if notification_id is None:
            return True
        if self.run_views and not self._started:
            return self.views_position() >= notification_id
        if not self.run_views:
            # Another process keeps the views: poll their position.
            deadline = time.monotonic() + (
                self.settings.read_your_writes_timeout if timeout is None else timeout
            )
            while self.views_position() < notification_id:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.01)
            return True
        return self.follower.wait(
            notification_id, self.settings.read_your_writes_timeout if timeout is None else timeout
        )

    def views_position(self) -> int:
        """How far the views have applied the log (read from the database in API-only mode)."""
        if self.run_views and self._started:
            return self.follower.position()
        if self.run_views:
            return self.runner.position()
        return min((p.position() for p in self.projections), default=0)

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

    def start_triggers(self, from_now: bool = False) -> None:
        """Run rules, timers and schedules in a background thread (the views must be running)."""
        self.triggers.start(from_now=from_now)

    def close(self) -> None:
        if self._triggers is not None:
            self._triggers.stop()
        self.channels.stop()
        if self.follower is not self.runner:
            self.follower.stop()
        self.runner.stop()
        self.app.close()
        try:
            if self._state_factory is not None:
                self._state_factory.close()
            self._factory.close()
        except Exception:
            log.debug("closing the views factory failed", exc_info=True)

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
