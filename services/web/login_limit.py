"""Login rate limit: backoff per (client address, account) pair, a looser window per address.

A lock per account alone lets a stranger lock the owner out by typing wrong
passwords; a lock per address alone lets a botnet guess one account forever. So
the strict limit is on the pair: after `FREE_FAILURES` failed attempts from one
address at one account, each further failure makes that pair wait twice as long
(1 s, 2 s, 4 s … at most 15 minutes), while the owner at another address still
logs in. A sliding window per address across all accounts (`PER_ADDRESS` failures
a minute) slows password spraying. A success clears its pair. Both live in memory
(per process), which is what a password-guessing client meets first; memory is
bounded by `MAX_KEYS`.

The account key is the typed e-mail, known or not, so the limiter's answers do not
reveal which accounts exist.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

FREE_FAILURES = 5
FIRST_DELAY = 1.0
MAX_DELAY = 15 * 60.0
PER_ADDRESS = 30
WINDOW_SECONDS = 60.0
FORGET_AFTER = 24 * 3600.0  # a pair with no failure for this long starts afresh
MAX_KEYS = 100_000


@dataclass
class _Pair:
    failures: int = 0
    locked_until: float = 0.0
    last_failure: float = 0.0


class LoginLimiter:
    def __init__(
        self,
        free_failures: int = FREE_FAILURES,
        first_delay: float = FIRST_DELAY,
        max_delay: float = MAX_DELAY,
        per_address: int = PER_ADDRESS,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free_failures = free_failures
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.per_address = per_address
        self.window = window
        self.clock = clock
        self._pairs: OrderedDict[tuple[str, str], _Pair] = OrderedDict()
        self._addresses: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, address: str, email: str) -> float:
        """Seconds to wait before another attempt is allowed (0 when allowed now)."""
        now = self.clock()
        with self._lock:
            pair = self._pairs.get(_key(address, email))
            pair_wait = 0.0 if pair is None else max(0.0, pair.locked_until - now)
            return max(pair_wait, self._address_wait(address, now))

    def failed(self, address: str, email: str) -> float:
        """Count a failed attempt; returns the wait it imposes on this pair."""
        now = self.clock()
        with self._lock:
            key = _key(address, email)
            pair = self._pairs.pop(key, None)
            if pair is None or now - pair.last_failure > FORGET_AFTER:
                pair = _Pair()
            pair.failures += 1
            pair.last_failure = now
            delay = self.delay_for(pair.failures)
            pair.locked_until = now + delay
            self._pairs[key] = pair  # most recent last, so the oldest go first
            hits = self._addresses.pop(address, None) or deque()
            hits.append(now)
            self._addresses[address] = hits
            for table in (self._pairs, self._addresses):
                while len(table) > MAX_KEYS:
                    table.popitem(last=False)
            return delay

    def succeeded(self, address: str, email: str) -> None:
        """The right password: this pair starts afresh (the address window stays)."""
        with self._lock:
            self._pairs.pop(_key(address, email), None)

    def delay_for(self, failures: int) -> float:
        """The lock after the `failures`-th failure: none at first, then doubling to the cap."""
        if failures < self.free_failures:
            return 0.0
        exponent = min(failures - self.free_failures, 40)
        return float(min(self.max_delay, self.first_delay * 2**exponent))

    def _address_wait(self, address: str, now: float) -> float:
        hits = self._addresses.get(address)
        if not hits:
            return 0.0
        while hits and now - hits[0] > self.window:
            hits.popleft()
        if len(hits) < self.per_address:
            return 0.0
        return self.window - (now - hits[-self.per_address])


def _key(address: str, email: str) -> tuple[str, str]:
    return address, email.strip().lower()
