"""Running the views in a child process, beside the writer rather than behind it.

Python runs one thread's bytecode at a time. On a two-core machine the writer
(ingest) and the view runner in one process take turns on one core; in two
processes they use both. Measured here on SQLite, each alone manages about
1,700 to 1,900 messages/s, and together in one process about 800. The child owns
only the views: it reads the log and writes the view tables, exactly as the
in-process runner does, and publishes its position through shared memory so
that a request can still wait until the views show its own write.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

ChildMain = Callable[[Any, Any, Any, Any, Any], None]
"""(settings, position, doorbell, stop flag, failing): what runs in the child."""


def leave_stopping_to_parent() -> None:
    """In the child: SIGTERM and SIGINT do not end it; its parent stops it through `StopFlag`.

    A Ctrl-C reaches the whole foreground process group, and systemd (and `timeout`, and
    `kill -- -pgid`) signal every process of the service at once. Killed by the signal,
    the child died mid-page while the server was still shutting down, and its supervisor
    took that for a crash and started it again. Left to the parent, the child ends its
    page and exits when the parent's `close()` asks. If the parent dies instead, the
    death signal (SIGTERM, see `_die_with_parent`) wakes the child and its loop's
    parent check ends it.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, frame: None)


class Doorbell:
    """The parent's "new events" signal to the child, which no death on either side can jam.

    `multiprocessing.Event` is a condition variable over shared semaphores: a child
    killed while waiting in it stays counted as a sleeper that never wakes, and the
    parent's next `set()` waits for it for ever. Seen here: after a `kill -9` of the
    views process the writer thread hung on its next commit, and with it every
    ingest. A byte written to a non-blocking pipe never blocks; a full pipe already
    holds a pending ring.
    """

    def __init__(self, context: Any) -> None:
        self._reader, self._writer = context.Pipe(duplex=False)
        os.set_blocking(self._writer.fileno(), False)

    def set(self) -> None:
        with contextlib.suppress(BlockingIOError, BrokenPipeError):
            os.write(self._writer.fileno(), b"\0")

    def wait(self, timeout: float | None = None) -> bool:
        """Child side: block until rung or `timeout` passes (True if rung)."""
        ready, _, _ = select.select([self._reader.fileno()], [], [], timeout)
        return bool(ready)

    def clear(self) -> None:
        """Child side: forget the rings so far."""
        fd = self._reader.fileno()
        os.set_blocking(fd, False)
        try:
            while os.read(fd, 4096):
                pass
        except BlockingIOError:
            pass


class StopFlag:
    """ "Please exit", as one byte of shared memory (no lock a dead process could hold)."""

    def __init__(self, context: Any, doorbell: Doorbell) -> None:
        self._value = context.Value("b", 0, lock=False)
        self._doorbell = doorbell

    def set(self) -> None:
        self._value.value = 1
        self._doorbell.set()  # a child waiting for events looks up at once

    def is_set(self) -> bool:
        return bool(self._value.value)

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.is_set() and time.monotonic() < deadline:
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        return self.is_set()


RESTART_PAUSE = 0.5
"""Seconds before the first restart of a child that died; doubled for each quick death."""
MAX_RESTART_PAUSE = 30.0
STABLE_AFTER = 60.0
"""A child that lived this long died of something new: the next pause starts small again."""


class ProcessViewRunner:
    """The parent's handle on the child: same surface as `ViewRunner` for waiting and health."""

    def __init__(self, child_main: ChildMain, settings: Any, start_position: int) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._child_main = child_main
        self._settings = settings
        self._position = self._context.Value("q", start_position, lock=False)
        self._failing = self._context.Value("b", 0, lock=False)
        self._wake = Doorbell(self._context)
        self._stop = StopFlag(self._context, self._wake)
        self._process = self._new_process()
        self._stopping = threading.Event()
        self._watcher = threading.Thread(
            target=self._supervise, name="threadline-views-supervisor", daemon=True
        )
        self.restarts = 0

    def _new_process(self) -> Any:
        return self._context.Process(
            target=self._child_main,
            args=(self._settings, self._position, self._wake, self._stop, self._failing),
            name="threadline-views",
            daemon=True,
        )

    @property
    def pid(self) -> int | None:
        pid: int | None = self._process.pid
        return pid

    def start(self) -> None:
        self._process.start()
        self._watcher.start()
        # A process that exits without close(): multiprocessing's own exit hook ends the
        # child, which the supervisor must not mistake for a death to recover from.
        atexit.register(self._stopping.set)

    def stop(self) -> None:
        """Ask the child to finish its page and exit; kill it if it does not within 10 s."""
        atexit.unregister(self._stopping.set)
        self._stopping.set()
        self._stop.set()
        if not self._watcher.is_alive():  # never started, or already gone
            self._process.join(timeout=10)
            return
        self._watcher.join(timeout=10)  # the supervisor reaps the child and returns
        if self._watcher.is_alive():
            self._process.kill()
            self._watcher.join(timeout=5)

    def _supervise(self) -> None:
        """Start the child again whenever it dies while the server still runs.

        Only this thread waits for the child to end (waiting twice for one process
        from two threads can lose its exit status).
        """
        pause = RESTART_PAUSE
        while True:
            started = time.monotonic()
            multiprocessing.connection.wait([self._process.sentinel])
            self._process.join()
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= STABLE_AFTER:
                pause = RESTART_PAUSE
            log.error(
                "the views process exited (code %s); starting it again in %.1f s",
                self._process.exitcode,
                pause,
            )
            if self._stopping.wait(pause):
                return
            self._failing.value = 0
            self._process = self._new_process()
            self._process.start()
            self.restarts += 1
            pause = min(pause * 2, MAX_RESTART_PAUSE)

    def notify(self, notification_id: int | None = None) -> None:
        self._wake.set()

    def position(self) -> int:
        return int(self._position.value)

    @property
    def healthy(self) -> bool:
        return self._process.is_alive() and not self._failing.value

    def wait(self, notification_id: int | None, timeout: float = 5.0) -> bool:
        """Block until the views show `notification_id`; False after `timeout` (or when stopped).

        A dead child is being restarted by the supervisor, so waiting goes on until
        the deadline rather than giving up at once.
        """
        if notification_id is None:
            return True
        self._wake.set()
        deadline = time.monotonic() + timeout
        pause = 0.0005
        while self.position() < notification_id:
            if time.monotonic() >= deadline or self._stopping.is_set():
                return self.position() >= notification_id
            time.sleep(pause)
            pause = min(pause * 1.5, 0.01)
        return True
