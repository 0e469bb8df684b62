"""Pacing requests to a channel's budget: a token bucket per channel, shared by every client
of that channel in the process (the watcher opens a connector per batch; the budget is the
shop's, not the client's).

A request takes a token or waits for one: work slows down to the channel's rate instead of
being refused by it (back-pressure, not dropped changes). The workers' cluster-wide limiter
implements the same :class:`Pacer` protocol.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


class Pacer(Protocol):
    def acquire(self) -> float:
        """Wait for permission to send one request; the seconds waited."""


class Unpaced:
    """No budget: every request goes at once."""

    def acquire(self) -> float:
        return 0.0


class TokenBucket:
    """``rate`` requests per second on average, bursts of up to ``burst``."""

    def __init__(
        self,
        rate: float,
        burst: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be above 0")
        self.rate = rate
        self.burst = max(1, burst if burst is not None else int(rate) or 1)
        self.clock = clock
        self.sleep = sleep
        self._tokens = float(self.burst)
        self._stamp = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        with self._lock:  # callers queue up in order; each waits for its own token
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
            if wait:
                self.sleep(wait)
            return wait


_BUCKETS: dict[tuple[str, float, int | None], TokenBucket] = {}
_LOCK = threading.Lock()


def pacer_for(channel: str, rate: float | None, burst: int | None = None) -> Pacer:
    """The process-wide pacer of ``channel`` at ``rate`` requests per second (None: none)."""
    if rate is None:
        return Unpaced()
    with _LOCK:
        key = (channel, rate, burst)
        if key not in _BUCKETS:
            _BUCKETS[key] = TokenBucket(rate, burst)
        return _BUCKETS[key]
