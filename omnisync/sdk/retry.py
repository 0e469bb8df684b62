"""The one retry policy for transient failures, declared once.

Timeouts, HTTP 429 and 5xx, throttling signals and lost database connections surface as
:class:`~omnisync.errors.TransientError`; :class:`Retry` tries such a call again with
exponential backoff and jitter, waiting exactly what the server asked for when it sent
``Retry-After`` (capped at ``max_wait``), and gives up after ``attempts`` tries by re-raising
the last error. The HTTP layer wraps each request in it; the push pipeline wraps connector
calls that do not retry themselves.

An :class:`UnreachableError` (nothing accepts connections at the address: refused, no route,
unknown host) is not a server having a bad moment but usually a server that is not running or
a wrong URL: it gets a brief second look (``UNREACHABLE_ATTEMPTS`` tries, well under a
second in all) and then surfaces as a plain :class:`~omnisync.errors.ConnectorError`, so that
``omnisync check`` names the channel at once instead of after a minute of backoff, and no
outer retry starts over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    wait_exponential,
    wait_exponential_jitter,
)

from omnisync.errors import ConnectorError, TransientError, UnreachableError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How often a transient failure is tried before giving up.
RETRY_ATTEMPTS = 5
#: Longest single wait between tries, in seconds (a longer Retry-After is capped here).
RETRY_MAX_WAIT = 60.0
#: Tries for an address that accepts no connection (see :class:`UnreachableError`).
UNREACHABLE_ATTEMPTS = 3
#: Waits between those tries: 0.1 s, then 0.2 s.
_UNREACHABLE_WAIT = wait_exponential(multiplier=0.1, max=0.5)


class Retry:
    """The one retry policy for transient failures: exponential backoff with jitter,
    honouring the server's Retry-After, bounded in tries and wait."""

    def __init__(self, attempts: int = RETRY_ATTEMPTS, max_wait: float = RETRY_MAX_WAIT) -> None:
        self.attempts = attempts
        self.max_wait = max_wait
        self.retries = 0
        self._backoff = wait_exponential_jitter(max=max_wait, jitter=0.5)

    def _limit(self, exc: BaseException | None) -> int:
        if isinstance(exc, UnreachableError):
            return min(self.attempts, UNREACHABLE_ATTEMPTS)
        return self.attempts

    def _stop(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        return state.attempt_number >= self._limit(exc)

    def _wait(self, state: RetryCallState) -> float:
        backoff = float(self._backoff(state))
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, UnreachableError):
            return min(float(_UNREACHABLE_WAIT(state)), self.max_wait)
        if isinstance(exc, TransientError) and exc.retry_after is not None:
            return min(max(exc.retry_after, 0.0), self.max_wait)
        return backoff

    def _before_sleep(self, state: RetryCallState) -> None:
        self.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "transient failure (%s); try %d of %d in %.1f s",
            exc,
            state.attempt_number + 1,
            self._limit(exc),
            state.next_action.sleep if state.next_action else 0.0,
        )

    def __call__(self, func: Callable[[], T]) -> T:
        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=self._stop,
            wait=self._wait,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            return retrying(func)
        except UnreachableError as exc:
            # Not transient any more: an outer policy must not start over.
            raise ConnectorError(exc.message, where=exc.where, hint=exc.hint) from exc
