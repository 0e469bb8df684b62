"""Following change feeds: each source in ``watch.feeds`` whose connector offers one
(:meth:`~omnisync.sdk.connector.Connector.change_feed`) is watched on its own thread, and
every batch it reports becomes a queued event before the feed is told to forget it.

A source without a feed (most shop APIs; their webhooks are the feed) is followed by the
passes only, which the log says once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from omnisync.config import Config
from omnisync.errors import OmnisyncError
from omnisync.models import Event
from omnisync.sdk.feed import ChangeFeed
from omnisync.watch.metrics import Metrics
from omnisync.watch.queue import EventQueue
from omnisync.watch.sources import now

log = logging.getLogger("omnisync.watch")


class FeedRunner:
    """The threads that follow ``config.model.watch.feeds``."""

    def __init__(
        self,
        config: Config,
        queue: EventQueue,
        *,
        wake: Callable[[], None],
        stopping: threading.Event,
        metrics: Metrics,
    ) -> None:
        self.config = config
        self.queue = queue
        self.wake = wake
        self.stopping = stopping
        self.metrics = metrics
        self.poll = float(config.model.watch.poll_seconds)
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for source in self.config.model.watch.feeds:
            thread = threading.Thread(
                target=self.follow, args=(source,), name=f"omnisync-feed-{source}", daemon=True
            )
            thread.start()
            self.threads.append(thread)

    def join(self, timeout: float = 10) -> None:
        for thread in self.threads:
            thread.join(timeout)

    def follow(self, source: str) -> None:
        """Poll ``source``'s feed until stopping; errors are logged and retried."""
        try:
            with self.config.connector(source) as connector:
                feed = connector.change_feed()
                if feed is None:
                    log.info("%s has no change feed: the passes follow it", source)
                    return
                log.info("following the change feed of %s (%s)", source, connector.describe())
                try:
                    self._loop(source, feed)
                finally:
                    feed.close()
        except OmnisyncError as exc:
            log.error("cannot follow the change feed of %s: %s", source, exc)

    def _loop(self, source: str, feed: ChangeFeed) -> None:
        failures = 0
        while not self.stopping.is_set():
            try:
                batch = feed.poll()
                if batch is not None:
                    if batch.skus:
                        event = Event(
                            source, "change", batch.skus, received_at=now(), key=batch.key
                        )
                        if self.queue.put_event(event) is not None:
                            self.metrics.received.labels(source).inc()
                            log.info("%s changed: %d SKU(s) queued", source, len(batch.skus))
                    feed.commit(batch)
                    self.wake()
                    failures = 0
                    continue  # more may be waiting
                failures = 0
            except OmnisyncError as exc:
                failures += 1
                if failures in (1, 10) or failures % 100 == 0:
                    log.warning("change feed of %s: %s (retrying)", source, exc)
            feed.wait(min(60.0, self.poll * (2 ** min(failures, 6))) if failures else self.poll)
