"""A token-bucket rate limiter shared by every thread of a client."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """At most ``requests_per_minute`` acquisitions per minute, in bursts of at most ``burst``.

    Each ``acquire`` reserves the next free slot under a lock and then sleeps outside it, so
    waiting threads are served first come, first served and none holds the lock while asleep.
    With ``burst=1`` (the default) requests are evenly spaced ``60 / requests_per_minute``
    seconds apart, which is what keeps a provider's per-minute limit from answering 429.

    Args:
        requests_per_minute: the sustained rate, > 0.
        burst: how many acquisitions may go at once after an idle spell, >= 1.
        clock, sleep: injectable for tests.

    Raises:
        ValueError: a rate <= 0 or a burst < 1.
    """

    def __init__(self, requests_per_minute: float, burst: int = 1, *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        if not requests_per_minute > 0:
            raise ValueError(f"requests_per_minute must be > 0, got {requests_per_minute!r}")
        if not (isinstance(burst, int) and burst >= 1):
            raise ValueError(f"burst must be an integer >= 1, got {burst!r}")
        self.rate = requests_per_minute / 60.0  # tokens per second
        self.burst = burst
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._last = clock()

    def reserve(self) -> float:
        """Take a slot now and return how many seconds to wait before using it."""
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
            self._last = now
            # The balance may go negative: each waiting caller owes one token, and its wait is
            # the time until the bucket has refilled its debt.
            self._tokens -= 1.0
            return max(0.0, -self._tokens / self.rate)

    def acquire(self) -> float:
        """Block until a request may go; returns the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait

    def __repr__(self) -> str:
        return f"RateLimiter(requests_per_minute={self.rate * 60:g}, burst={self.burst})"
