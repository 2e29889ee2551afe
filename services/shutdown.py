"""SIGTERM and SIGINT as a request to stop, so a process closes its runtime before it exits.

A signal's default action ends the process on the spot: no `finally` runs, so the
trigger runner, the channel hub and the views child are not stopped in order and
SQLite is not checkpointed. uvicorn (0.29 and later) captures both signals while it
serves, and on its way out restores the handlers it found and raises the captured
signal again (`Server.capture_signals`). With Python's defaults in place that
re-raised SIGTERM killed `threadline serve` before its `runtime.close()` (exit
status -15 on every stop).

`StopSignals` installs handlers that turn a signal into a recorded request; they are
what uvicorn finds and restores, so its re-raise lands here and returns. While
nothing else watches for the request (starting up, catching up the views), the
handler raises `StopRequested` instead, so a start that takes long still stops at
once and through the caller's `finally`. A second signal while the runtime closes
does not interrupt the close, which has bounds of its own.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Protocol

log = logging.getLogger("threadline.shutdown")

STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)


class StopRequested(BaseException):
    """A stop signal arrived while the process was busy starting up.

    A `BaseException`, like `KeyboardInterrupt`: an `except Exception` on the way (one that
    reports a store that cannot be opened, say) must not take it for an error.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopSignals:
    """The process's handlers for SIGTERM and SIGINT (install once, from the main thread)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.stopped = threading.Event()
        self._raise = True

    def install(self) -> StopSignals:
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.received is None
        if first:
            self.received = signum
            log.info("%s received: stopping", signal.Signals(signum).name)
        self.stopped.set()
        if first and self._raise:
            raise StopRequested(signum)

    @contextmanager
    def watched(self) -> Iterator[StopSignals]:
        """While inside, something else acts on the request (uvicorn, or a wait on `stopped`).

        A signal is only recorded then; the code inside sees `stopped` set and winds down.
        """
        self._raise = False
        try:
            yield self
        finally:
            self._raise = True

    def closing(self) -> None:
        """From now on signals are only recorded: the runtime is closing in order already."""
        self._raise = False

    def wait(self, interval: float = 1.0) -> None:
        """Block the main thread until a stop signal arrives."""
        with self.watched():
            while not self.stopped.wait(interval):
                pass


class Closable(Protocol):
    def close(self) -> None: ...


class ClosedOnStop:
    """A process's life from its first step to its runtime's close, whatever ends it.

    ``with ClosedOnStop() as life:`` installs the stop handlers; the body sets
    ``life.runtime`` as soon as it has one. On the way out (the body ran to its end, a
    signal arrived while starting, an error or `sys.exit`) signals are only recorded and
    the runtime is closed in order; a stop requested while starting is not an error.
    """

    def __init__(self) -> None:
        self.stop = StopSignals()
        self.runtime: Closable | None = None

    def __enter__(self) -> ClosedOnStop:
        self.stop.install()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        self.stop.closing()
        if self.runtime is not None:
            self.runtime.close()
        return kind is not None and issubclass(kind, StopRequested)
