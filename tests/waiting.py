"""Waiting for something asynchronous in a test: bounded, with a message that says what."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(
    predicate: Callable[[], Any], what: str = "the condition", timeout: float = 60.0
) -> Any:
    """Poll `predicate` until it returns something truthy (returned), or fail after `timeout`.

    The bound is generous on purpose: a condition that holds returns at once, and a shared
    two-core CI machine may be slow for a while; a test must never depend on it being idle.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
