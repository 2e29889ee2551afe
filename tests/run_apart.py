"""`asyncio.run` for tests that may run after the browser tests.

The browser tests' session-wide Playwright keeps an event loop running on pytest's main
thread, where `asyncio.run` refuses to start; a thread of its own has no loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_apart(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` to its end on a fresh thread and event loop; return its result."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
