"""Keeping every view up to date: catch up on start, then follow the log.

The runner reads the log in pages (`select_notifications`), decodes each
event once, and hands each view the page's events in one transaction together
with the view's new tracking position. A batch per transaction is what lets
views keep pace with group-committed ingest on PostgreSQL (one transaction per
event caps a view near 1,000 events/s there). SQLite's recorder cannot be
subscribed to, so the runner polls; in-process writers wake it at once through
`notify`, and a short poll interval picks up other processes' writes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, Tracking

from threadline.domain.infrastructure.store_access import CONNECTION_ERRORS, recover_connections
from threadline.projections.base import StalePosition, ViewProjection

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]


FROZEN_SCHEMA = ("CREATE TABLE IF NOT EXISTS views_frozen (position BIGINT NOT NULL)",)
"""A views database built as of a past position (`threadline replay --until`) says so here."""


class FrozenViews(Exception):
    """These views are the log as of a past position: nothing may move them on."""

    def __init__(self, position: int) -> None:
        super().__init__(
            f"these views are the log as of position {position} (threadline replay --until)"
            " and stay there: read them with `threadline serve --no-projections` and"
            " THREADLINE_TRIGGERS=0 THREADLINE_CHANNELS=0, or point THREADLINE_VIEWS_URL at"
            " the live views"
        )
        self.position = position


class ViewRunner:
    """Runs a set of views over one application's log, exactly once per event and view.

    With `until`, it applies the log up to that position and no further (a replay as of a
    past moment, into views of their own, which are then marked frozen).
    """

    def __init__(
        self,
        app: Application[Any],
        projections: Sequence[ViewProjection],
        page_size: int = 1000,
        poll_interval: float = 0.2,
        until: int | None = None,
    ) -> None:
        self.app = app
        self.projections = list(projections)
        self.page_size = page_size
        self.poll_interval = poll_interval
        self.until = until
        self.frozen = self._frozen_position()
        self.positions = {p.name: p.position() for p in self.projections}
        self._topics = frozenset().union(*(p.handled_topics() for p in self.projections))
        self._every = any(p.every_event for p in self.projections)  # decode them all
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._advanced = threading.Condition()
        self._thread: threading.Thread | None = None
        self.last_error: BaseException | None = None

    # -- control --------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._stopping.clear()  # a runner stopped for a rebuild follows again
            self._thread = threading.Thread(target=self._run, name="threadline-views", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def notify(self, notification_id: int | None = None) -> None:
        """A writer in this process appended events: look now rather than at the next poll."""
        self._wake.set()

    def position(self) -> int:
        return min(self.positions.values(), default=0)

    def wait(self, notification_id: int | None, timeout: float = 5.0) -> bool:
        """Block until every view has applied `notification_id`; False on timeout."""
        if notification_id is None:
            return True
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._advanced:
            while self.position() < notification_id:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._advanced.wait(remaining)
        return True

    # -- work -----------------------------------------------------------------------------

    def _frozen_position(self) -> int | None:
        if not self.projections:
            return None
        db = self.projections[0].db
        db.create_schema(FROZEN_SCHEMA)
        row = db.query_one("SELECT MAX(position) AS position FROM views_frozen")
        return None if row is None or row["position"] is None else int(row["position"])

    def thaw(self) -> None:
        """Forget the frozen mark: these views are about to be built again as of a position
        (`replay_as_of` into the same place)."""
        with self.projections[0].db.transaction() as cur:
            cur.execute("DELETE FROM views_frozen")
        self.frozen = None

    def freeze(self) -> None:
        """Mark these views as the log as of their position, for good (after `until`)."""
        with self.projections[0].db.transaction() as cur:
            cur.execute("INSERT INTO views_frozen (position) VALUES (?)", [self.position()])
        self.frozen = self.position()

    def catch_up(self, progress: Progress | None = None) -> int:
        """Apply everything recorded so far (up to `until`); how many notifications were read."""
        total = 0
        target = self.app.recorder.max_notification_id() or 0
        if self.until is not None:
            target = min(target, self.until)
        while True:
            read = self.step()
            total += read
            if progress is not None:
                progress(self.position(), target)
            if read == 0 or self.position() >= target:
                return total

    def step(self) -> int:
        """Process one page of the log; returns the number of notifications read."""
        if self.frozen is not None:
            raise FrozenViews(self.frozen)
        start = self.position() + 1
        if self.until is not None and start > self.until:
            return 0
        notifications = self.app.recorder.select_notifications(
            start=start, limit=self.page_size, stop=self.until
        )
        if not notifications:
            return 0
        decoded: list[tuple[int, Any]] = []
        for notification in notifications:
            if self._every or notification.topic in self._topics:
                decoded.append((notification.id, self.app.mapper.to_domain_event(notification)))
        last_id = notifications[-1].id
        if not self._step_together(decoded, last_id):
            self._step_apart(decoded, last_id)
        with self._advanced:
            self._advanced.notify_all()
        return len(notifications)

    def _step_together(self, decoded: list[tuple[int, Any]], last_id: int) -> bool:
        """The usual case: every view at the same place, one transaction (one commit) for all.

        Views share one database, so a page moves all of them at once. Should any of
        them have been moved by another runner, the transaction rolls back and
        `_step_apart` sorts it out view by view.
        """
        behind = [p for p in self.projections if self.positions[p.name] < last_id]
        positions = {self.positions[p.name] for p in behind}
        if len(behind) < 2 or len(positions) != 1:
            return False
        (position,) = positions
        events = [(n_id, event) for n_id, event in decoded if n_id > position]
        try:
            with self.projections[0].db.transaction() as cur:
                for projection in behind:
                    projection.apply_batch(
                        cur, events, Tracking(projection.tracking_name, last_id), position
                    )
        except (IntegrityError, StalePosition):
            for projection in behind:
                self.positions[projection.name] = projection.position()
            return False
        for projection in behind:
            self.positions[projection.name] = last_id
        return True

    def _step_apart(self, decoded: list[tuple[int, Any]], last_id: int) -> None:
        for projection in self.projections:
            position = self.positions[projection.name]
            if position >= last_id:
                continue
            events = [(n_id, event) for n_id, event in decoded if n_id > position]
            try:
                projection.process_batch(
                    events, Tracking(projection.tracking_name, last_id), expected_position=position
                )
            except (IntegrityError, StalePosition):
                # Another runner of this view got there first: take its position, go on.
                self.positions[projection.name] = projection.position()
                continue
            self.positions[projection.name] = last_id

    def rebuild(self, progress: Progress | None = None) -> int:
        """Drop every view and apply the whole log again from position zero (to `until`)."""
        if self.frozen is not None:
            raise FrozenViews(self.frozen)
        for projection in self.projections:
            projection.drop_tables()
            self.positions[projection.name] = 0
        return self.catch_up(progress)

    def _run(self) -> None:
        self.follow(self._wake, self._stopping)

    def follow(
        self,
        wake: Any,
        stop: Any,
        report: Callable[[], None] = lambda: None,
        alive: Callable[[], bool] = lambda: True,
    ) -> None:
        """Apply pages until `stop` is set or `alive()` says no; `report()` after each attempt.

        `wake` and `stop` are threading events, or the views process's `Doorbell` and `StopFlag`
        (`threadline.projections.process_runner`): the in-process thread
        and the views child process share this loop.
        """
        backoff = 0.0
        while not stop.is_set() and alive():
            try:
                read = self.step()
                backoff = 0.0
                self.last_error = None
            except Exception as error:  # a view error must not stop the server
                self.last_error = error
                if isinstance(error, CONNECTION_ERRORS):  # replace the pools' dead connections
                    recover_connections(
                        self.app.recorder, *(p.db.recorder for p in self.projections)
                    )
                backoff = min(5.0, backoff * 2 or 0.1)
                log.exception("view update failed; retrying in %.1fs", backoff)
                report()
                stop.wait(backoff)
                continue
            report()
            if read < self.page_size:
                wake.wait(self.poll_interval)
                wake.clear()
