"""Login rate limit: a sliding window per client address and per e-mail address.

Ten attempts a minute from one address, five a minute for one account; both
windows are in memory (per process), which is what a password-guessing client
meets first. Successful logins do not count.
"""

from __future__ import annotations

import threading
import time
from collections import deque

PER_ADDRESS = 10
PER_ACCOUNT = 5
WINDOW_SECONDS = 60.0


class LoginLimiter:
    def __init__(
        self,
        per_address: int = PER_ADDRESS,
        per_account: int = PER_ACCOUNT,
        window: float = WINDOW_SECONDS,
    ) -> None:
        self.per_address = per_address
        self.per_account = per_account
        self.window = window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, address: str, email: str) -> float:
        """Seconds to wait before another attempt is allowed (0 when allowed now)."""
        now = time.monotonic()
        with self._lock:
            waits = [
                self._wait(f"ip:{address}", self.per_address, now),
                self._wait(f"user:{email.lower()}", self.per_account, now),
            ]
        return max(waits)

    def failed(self, address: str, email: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in (f"ip:{address}", f"user:{email.lower()}"):
                self._hits.setdefault(key, deque()).append(now)
            if len(self._hits) > 100_000:  # keep memory bounded under a flood
                self._hits.clear()

    def _wait(self, key: str, limit: int, now: float) -> float:
        hits = self._hits.get(key)
        if not hits:
            return 0.0
        while hits and now - hits[0] > self.window:
            hits.popleft()
        if len(hits) < limit:
            return 0.0
        return self.window - (now - hits[0])
