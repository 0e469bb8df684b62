"""The push lock, shared by the stages of one watcher.

The watcher checks the next batch of events while it pushes the one before (two threads), and
both must hold the store's push lock: no ``sync`` from cron may push in between, and a batch's
plan may go out without reading the channels again only because nobody else pushed since it
read them. The store's lock is one per process, not per thread, so the watcher takes it once
and counts its users: taken when the first stage needs it, given back when the last is done.
A batch takes it before its check and gives it back after its push, so from one batch's read
to its write the lock is never let go.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager

from omnisync.store import Store


class Lease:
    """Counted holds on ``store``'s ``push`` lock."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._holders = 0
        self._held: AbstractContextManager[None] | None = None
        self._mutex = threading.Lock()

    def acquire(self) -> None:
        """Hold the lock (taking it from the store if no stage holds it); raises
        :class:`~omnisync.errors.LockedError` when another run has it."""
        with self._mutex:
            if self._holders == 0:
                held = self.store.lock("push")
                held.__enter__()
                self._held = held
            self._holders += 1

    def release(self) -> None:
        with self._mutex:
            self._holders -= 1
            if self._holders == 0 and self._held is not None:
                held, self._held = self._held, None
                held.__exit__(None, None, None)

    @property
    def held(self) -> bool:
        return self._holders > 0
