"""Keeping the views current and waiting for them: read-your-writes for one process.

Three ways a process relates to the views: it runs them in a thread of its own
(tests, the CLI), in a child process (`threadline serve`, see
`threadline.projections.process_runner`), or another process keeps them (an
API-only process) and their position is read from the database. Components
that must see their own writes get `wait_for_views` of this class, nothing more.
"""

from __future__ import annotations

import time

from threadline.projections.process_runner import ProcessViewRunner
from threadline.projections.runner import Progress, ViewRunner
from threadline.projections.sql import ViewDatabase
from threadline.services.config import Settings
from threadline.services.view_stack import ViewStack, views_child_main
from threadline.services.visibility import ReadYourWrites, SharedPosition


class ViewFollowing:
    """The views of one process: started, followed, waited for, and how far they are."""

    def __init__(self, settings: Settings, stack: ViewStack, run_views: bool, in_process: bool):
        self.settings = settings
        self.stack = stack
        self.runner: ViewRunner = stack.runner
        self.views: ViewDatabase = stack.views
        self.run_views = run_views
        self.in_process = in_process
        self.follower: ViewRunner | ProcessViewRunner = self.runner
        self.started = False
        self.read_your_writes = ReadYourWrites(
            settings.read_your_writes_timeout,
            settings.read_your_writes_behind_timeout,
            self.position,
        )
        # Requests waiting for another process's views share one reader of their position.
        self._stored_position = SharedPosition(self._read_stored_position)

    def start(self, progress: Progress | None = None) -> ViewRunner | ProcessViewRunner | None:
        """Catch up with the log, then follow it in the background; the follower to notify
        of new commits (None when this process does not run the views or runs them already)."""
        if not self.run_views or self.started:
            return None
        self.runner.catch_up(progress)
        if self.in_process:
            self.runner.start()
        else:
            self.follower = ProcessViewRunner(
                views_child_main, self.settings, self.runner.position()
            )
            self.follower.start()
            self.stack.stop_writing()  # the child writes them from now on
        self.started = True
        return self.follower

    def wait_for_views(self, notification_id: int | None, timeout: float | None = None) -> bool:
        """Read-your-writes: block until the views show `notification_id` (True if they do).

        Without `timeout` (a request) the wait is short while the views are known to be
        behind, and a request whose change is not visible in time is marked so
        (`threadline.services.visibility`).
        """
        if notification_id is None:
            return True
        wanted = notification_id
        return self.read_your_writes.wait(lambda seconds: self._wait(wanted, seconds), timeout)

    def _wait(self, notification_id: int, timeout: float) -> bool:
        if self.run_views and not self.started:
            return self.position() >= notification_id
        if not self.run_views:
            # Another process keeps the views: poll their position.
            deadline = time.monotonic() + timeout
            while self.position() < notification_id:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.01)
            return True
        return self.follower.wait(notification_id, timeout)

    def position(self) -> int:
        """How far the views have applied the log (read from the database in API-only mode)."""
        if self.run_views and self.started:
            return self.follower.position()
        if self.run_views:
            return self.runner.position()
        return self._stored_position.get()

    def _read_stored_position(self) -> int:
        """The lowest tracked position of the views, in one query (not one per view)."""
        return self.views.lowest_position([p.tracking_name for p in self.stack.projections])

    def healthy(self) -> bool:
        if isinstance(self.follower, ProcessViewRunner):
            return self.follower.healthy
        return self.runner.last_error is None

    def restarts(self) -> int:
        """How often the views process died and was started again since this process began."""
        return self.follower.restarts if isinstance(self.follower, ProcessViewRunner) else 0

    def rebuild(self, progress: Progress | None = None) -> int:
        """Drop every view and apply the whole log again, the follower paused meanwhile.

        The follower and the rebuild would otherwise write the same views at once: the
        follower, mid-page when the tables are dropped, goes on from where it was and the
        rebuilt views miss what it wrote before the drop.
        """
        if not self.started:
            return self.runner.rebuild(progress)
        if self.follower is not self.runner:
            raise RuntimeError(
                "the views process is running: stop the server, then run `threadline replay`"
            )
        self.runner.stop()
        try:
            return self.runner.rebuild(progress)
        finally:
            self.runner.start()

    def stop(self) -> bool:
        """Stop following; True if a views process was running."""
        child = self.follower is not self.runner
        if child:
            self.follower.stop()
        self.runner.stop()
        return child
