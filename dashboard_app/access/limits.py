"""How often a caller may ask: requests per minute, and a growing wait after failed logins."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable

MAX_TRACKED = 100_000  # callers remembered at once; the oldest are forgotten past it


class RateLimiter:
    """A fixed one-minute window per caller; answers how many seconds to wait when over."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.time):
        self.per_minute = per_minute
        self.clock = clock
        self._windows: dict[str, tuple[int, int]] = defaultdict(lambda: (0, 0))
        self._lock = threading.Lock()

    def wait(self, who: str) -> int:
        """Return the seconds ``who`` must wait (0: none), without counting a request."""
        now = self.clock()
        minute = int(now // 60)
        with self._lock:
            window, count = self._windows.get(who, (0, 0))
        return int((minute + 1) * 60 - now) + 1 if window == minute and count >= self.per_minute else 0

    def hit(self, who: str) -> int:
        """Count one request; return 0, or the seconds to wait when over the limit."""
        now = self.clock()
        minute = int(now // 60)
        with self._lock:
            window, count = self._windows[who]
            if window != minute:
                window, count = minute, 0
            count += 1
            self._windows[who] = (window, count)
            if len(self._windows) > MAX_TRACKED:
                self._windows = defaultdict(
                    lambda: (0, 0), {k: v for k, v in self._windows.items() if v[0] == minute}
                )
        return 0 if count <= self.per_minute else int((minute + 1) * 60 - now) + 1


class LoginBackoff:
    """After ``free`` failed logins of one name from one address, each next try waits twice as long.

    Counted per (name, address): someone guessing from elsewhere slows down only themselves, so no
    one can lock a user (the admin included) out of their own account from the network.
    """

    def __init__(self, free: int, longest: float, clock: Callable[[], float] = time.time):
        self.free = free
        self.longest = longest
        self.clock = clock
        self._failures: dict[tuple[str, str], tuple[int, float]] = {}
        self._lock = threading.Lock()

    def wait(self, name: str, address: str) -> int:
        """Return the seconds before this name may try again from this address (0: now)."""
        with self._lock:
            failures, last = self._failures.get((name, address), (0, 0.0))
        if failures < self.free:
            return 0
        delay = min(2.0 ** (failures - self.free), self.longest)
        left = last + delay - self.clock()
        return int(left) + 1 if left > 0 else 0

    def failed(self, name: str, address: str) -> None:
        with self._lock:
            failures, _ = self._failures.get((name, address), (0, 0.0))
            self._failures[(name, address)] = (failures + 1, self.clock())
            if len(self._failures) > MAX_TRACKED:
                oldest = sorted(self._failures.items(), key=lambda kv: kv[1][1])[: MAX_TRACKED // 10]
                for key, _ in oldest:
                    del self._failures[key]

    def succeeded(self, name: str, address: str) -> None:
        with self._lock:
            self._failures.pop((name, address), None)
