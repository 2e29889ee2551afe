"""Process wiring: the application, the views and the runner that keeps them current.

`Runtime` is what `threadline serve`, the CLI commands, the tests and the
benchmarks all construct, so every entry point runs the same code path.
"""

from __future__ import annotations

import logging
from typing import Any

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment

from threadline.domain.application import Threadline
from threadline.projections.base import ViewProjection
from threadline.projections.contact_card import ContactCardProjection
from threadline.projections.inbox import InboxProjection
from threadline.projections.queries import Queries
from threadline.projections.runner import Progress, ViewRunner
from threadline.projections.sql import ViewDatabase
from threadline.projections.tasks import TaskProjection
from threadline.projections.timeline import TimelineProjection
from threadline.projections.users import UserProjection
from threadline.services.config import Settings
from threadline.services.store import default_views_url, ensure_schema, library_env

log = logging.getLogger(__name__)

PROJECTION_CLASSES: tuple[type[ViewProjection], ...] = (
    UserProjection,
    ContactCardProjection,
    InboxProjection,
    TimelineProjection,
    TaskProjection,
)


class Runtime:
    """One process's view of Threadline: write through `app`, read through `queries`."""

    def __init__(self, settings: Settings, run_views: bool = True) -> None:
        self.settings = settings
        views_url = settings.views_url or default_views_url(settings.database_url)
        ensure_schema(settings.database_url)
        if views_url != settings.database_url:
            ensure_schema(views_url)
        self.app = Threadline(
            env=library_env(settings.database_url), default_region=settings.default_region
        )
        factory: Any = InfrastructureFactory.construct(Environment("views", library_env(views_url)))
        self._factory = factory
        recorder = factory.tracking_recorder()
        self.views = ViewDatabase(recorder)
        self.projections = [cls(recorder, upstream=self.app.name) for cls in PROJECTION_CLASSES]
        self.runner = ViewRunner(self.app, self.projections)
        self.queries = Queries(self.views)
        self.run_views = run_views
        self.app.commit_listeners.append(self.runner.notify)
        self._started = False

    def start(self, progress: Progress | None = None) -> None:
        """Catch the views up with the log, then keep following it in the background."""
        if self.run_views and not self._started:
            self.runner.catch_up(progress)
            self.runner.start()
            self._started = True

    def wait_for_views(self, notification_id: int | None, timeout: float | None = None) -> bool:
        """Read-your-writes: block until the views show `notification_id` (True if they do)."""
        if notification_id is None:
            return True
        if not self.run_views:
            return self.views_position() >= notification_id
        return self.runner.wait(
            notification_id, self.settings.read_your_writes_timeout if timeout is None else timeout
        )

    def views_position(self) -> int:
        """How far the views have applied the log (read from the database in API-only mode)."""
        if self.run_views:
            return self.runner.position()
        return min((p.position() for p in self.projections), default=0)

    def rebuild_views(self, progress: Progress | None = None) -> int:
        return self.runner.rebuild(progress)

    def close(self) -> None:
        self.runner.stop()
        self.app.close()
        try:
            self._factory.close()
        except Exception:
            log.debug("closing the views factory failed", exc_info=True)

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
