"""The seam between event intake and the work: a durable queue of :class:`~omnisync.models.Event`.

On one machine the state store is the queue (:class:`~omnisync.store.Store` implements this
protocol: SQLite or PostgreSQL, no extra service). A broker-backed queue for several workers
implements the same five calls; intake and the watcher only ever use these.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Protocol

from omnisync.models import Event


class EventQueue(Protocol):
    def put_event(self, event: Event) -> int | None:
        """Store ``event`` durably; its id, or None when it is a replay of one already queued."""

    def claim_events(
        self, owner: str, *, limit: int = 1000, lease: timedelta = timedelta(minutes=5)
    ) -> list[Event]:
        """Hand out queued events (and those whose earlier claim's lease ran out)."""

    def settle_events(
        self,
        ids: Iterable[int],
        status: str,
        *,
        run_id: str | None = None,
        error: str | None = None,
    ) -> None:
        """Finish claimed events: ``done``, ``refused`` or ``failed``."""

    def release_events(self, ids: Iterable[int], error: str | None = None) -> None:
        """Return claimed events to the queue for a later attempt."""

    def event_counts(self) -> dict[str, int]:
        """Events by status."""
