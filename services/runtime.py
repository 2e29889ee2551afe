"""Process wiring: the application, the views and the runner that keeps them current.

`Runtime` is what `threadline serve`, the CLI commands, the tests and the
benchmarks all construct, so every entry point runs the same code path. It is
the process's container: it opens the stores (`view_stack`, `state_stack`),
has `components.build_components` build the parts from narrow dependencies,
and starts and closes them in order. No component receives the runtime.
"""

from __future__ import annotations

import logging
from uuid import uuid4

from threadline.domain.infrastructure.store_access import recover_connections
from threadline.domain.model import contact_ids
from threadline.projections.process_runner import ProcessViewRunner
from threadline.projections.queries import Queries
from threadline.projections.runner import Progress, ViewRunner
from threadline.services.access_log import AccessLog
from threadline.services.audit_chain import ChainSealer, EventChain
from threadline.services.components import Stores, build_components
from threadline.services.config import Settings
from threadline.services.state_stack import open_state
from threadline.services.store import name_connections, schema_locks
from threadline.services.view_following import ViewFollowing
from threadline.services.view_stack import (
    PROJECTION_CLASSES,
    budget_of,
    close_stores,
    open_log,
    open_views,
    views_url_of,
)
from threadline.services.visibility import ReadYourWrites

__all__ = ["PROJECTION_CLASSES", "Runtime"]

log = logging.getLogger(__name__)


class Runtime:
    """One process's view of Threadline: write through `app`, read through `queries`.

    `views_in_process=False` (what `threadline serve` uses) keeps the views in a
    child process so that they do not compete with the writer for one core; see
    `threadline.projections.process_runner`.
    """

    def __init__(
        self, settings: Settings, run_views: bool = True, views_in_process: bool = True
    ) -> None:
        views_url = views_url_of(settings)
        name_connections(settings.role)
        # Roles started together take turns creating and upgrading tables (`schema_lock`).
        with schema_locks(settings.database_url, views_url):
            self._build(settings, views_url, run_views, views_in_process)

    def _build(
        self, settings: Settings, views_url: str, run_views: bool, views_in_process: bool
    ) -> None:
        self.settings = settings
        budget = budget_of(settings)
        self.pool_budget = budget
        self.app = open_log(settings, budget)
        self.chain = EventChain(self.app.recorder)  # tamper evidence, sealed where views run
        self._sealer = ChainSealer(self.chain)
        self.access_log = AccessLog(self.app.recorder)  # who read what; survives a replay
        stack = open_views(settings, views_url, budget, self.app, writer=run_views)
        self._view_stack = stack
        self.views = stack.views
        self.projections = stack.projections
        self.runner = stack.runner
        self.queries = Queries(self.views)
        state = open_state(settings, views_url, self.views, self.app)
        self._state = state
        self.state_db = state.db
        self.secret_box = state.secret_box
        self.credentials = state.credentials
        self.run_views = run_views
        self.views_in_process = views_in_process
        self._following = ViewFollowing(settings, stack, run_views, views_in_process)
        parts = build_components(
            settings,
            Stores(self.app, self.views, self.queries, state.db, state.secret_box),
            self._following.wait_for_views,
        )
        self.channels = parts.channels
        self.unsubscribe = parts.unsubscribe
        self.consent_links = parts.consent_links
        self.document_links = parts.document_links
        self.composer = parts.composer
        self.triggers = parts.triggers
        self.attachment_access = parts.attachments
        self._triggers_started = False

    @property
    def follower(self) -> ViewRunner | ProcessViewRunner:
        """What keeps the views current: the runner in a thread, or the views process."""
        return self._following.follower

    @property
    def read_your_writes(self) -> ReadYourWrites:
        return self._following.read_your_writes

    def start(self, progress: Progress | None = None) -> None:
        """Catch the views up with the log, then keep following it in the background."""
        follower = self._following.start(progress)
        if follower is not None:
            self.app.commit_listeners.append(follower.notify)
        if self.run_views:  # one process per deployment follows the log: it seals it too
            self._sealer.start()
            self.app.commit_listeners.append(self._sealer.notify)

    def wait_for_views(self, notification_id: int | None, timeout: float | None = None) -> bool:
        """Read-your-writes: block until the views show `notification_id` (True if they do).

        Without `timeout` (a request) the wait is short while the views are known to be
        behind (`threadline.services.view_following`).
        """
        return self._following.wait_for_views(notification_id, timeout)

    def views_position(self) -> int:
        """How far the views have applied the log (read from the database in API-only mode)."""
        return self._following.position()

    def rebuild_views(self, progress: Progress | None = None) -> int:
        """Drop every view and apply the whole log again (views following in a thread pause)."""
        return self._following.rebuild(progress)

    def views_healthy(self) -> bool:
        return self._following.healthy()

    def recover_connections(self) -> None:
        """Replace the dead connections of every pool this process reads and writes through."""
        # every projection writes through `self.views.recorder`, so its pool covers them all
        recover_connections(self.app.recorder, self.views.recorder, self.state_db.recorder)

    def views_restarts(self) -> int:
        """How often the views process died and was started again since this process began."""
        return self._following.restarts()

    def start_triggers(self) -> None:
        """Run rules, timers and schedules in a background thread (the views must be running)."""
        self.triggers.start()
        self._triggers_started = True

    def close(self) -> None:
        """Stop every part in the order they depend on each other, then leave the files whole.

        Rules first (they hand messages to the channels), then the channel hub (deliveries
        already begun finish), then the views (the child ends its page), then the stores:
        each SQLite write-ahead log is checkpointed into its file before the pools close.
        """
        stopped: list[str] = []
        self.triggers.stop()
        if self._triggers_started:
            stopped.append("trigger runner")
        if self.channels.stop():
            stopped.append("channel hub")
        if self._following.stop():
            stopped.append("views process")
        if self._sealer.stop():
            stopped.append("chain sealer")
        if self.access_log.close():
            stopped.append("access log")
        factories = [(self._view_stack.factory, "views")]
        if self._state.factory is not None:
            factories.append((self._state.factory, "state"))
        checkpointed = close_stores(self.app, factories)
        contact_ids.install(uuid4)  # the pool's store is closed: random ids again
        log.info(
            "runtime closed in order: %s stopped; SQLite checkpointed: %s",
            ", ".join(stopped) or "nothing",
            ", ".join(checkpointed) or "none",
        )

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
