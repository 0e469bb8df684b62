"""Change feeds: what changed at a source since the last look, for ``omnisync watch``.

A connector offers one through :meth:`~omnisync.sdk.connector.Connector.change_feed`. The
watcher polls it (or waits on it, for sources that can wake a listener) and turns each
:class:`FeedBatch` into a queued event; the feed forgets what it handed out only after
:meth:`ChangeFeed.commit`, which the watcher calls once the event is durably queued. A crash
in between hands the same changes out again (with the same ``key``, or a superset): delivery
is at least once, and a repeated event only re-checks.

Two kinds ship: :class:`SnapshotFeed` (a source that can only be read whole, like a file:
a cheap version stamp says *whether* it changed, a diff of per-SKU digests says *what*) and
the SQL connector's outbox (rows that triggers write, consumed and deleted).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

from omnisync.models import Record


@dataclass(frozen=True)
class FeedBatch:
    """SKUs that changed, under a key that is the same if the batch is handed out again."""

    key: str
    skus: tuple[str, ...]
    #: What the feed needs to commit the batch (the outbox's row ids); opaque to the watcher.
    token: object = None


class ChangeFeed(ABC):
    """What a source reports as changed."""

    @abstractmethod
    def poll(self) -> FeedBatch | None:
        """The changes not yet committed (None: nothing new). Raise
        :class:`~omnisync.errors.ConnectorError` when the source cannot be read."""

    def commit(self, batch: FeedBatch) -> None:  # noqa: B027 - most feeds keep nothing
        """``batch`` is queued: do not hand it out again."""

    def wait(self, timeout: float) -> None:
        """Block until the source may have changed, at most ``timeout`` seconds (a source
        that can notify listeners returns early; the default sleeps)."""
        time.sleep(timeout)

    def close(self) -> None:  # noqa: B027 - most feeds hold nothing
        """Release what the feed holds."""


def record_digest(record: Record) -> str:
    """A digest of everything a record says except where it was read (line numbers move
    when rows are inserted above)."""
    data = dataclasses.asdict(dataclasses.replace(record, origin=""))
    body = json.dumps(data, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.blake2b(body.encode(), digest_size=16).hexdigest()


class SnapshotFeed(ChangeFeed):
    """Changes of a source read whole: ``version()`` is cheap (a file's size and mtime) and
    says whether to look; ``read()`` gives the records, and SKUs whose digest differs from
    the last snapshot (added, changed or gone) are the batch.

    A version is trusted only once it is the same on two polls in a row, so a file that is
    still being written is not read half-way. The first snapshot is taken without a batch
    (the watcher's first pass checks everything anyway).
    """

    def __init__(
        self, version: Callable[[], Hashable], read: Callable[[], Iterable[Record]]
    ) -> None:
        self._version = version
        self._read = read
        self._seen: Hashable | None = None
        self._pending: Hashable | None = None
        self._snapshot: dict[str, set[str]] | None = None
        self._next: dict[str, set[str]] | None = None
        self._seen_next: Hashable | None = None

    def _digests(self) -> dict[str, set[str]]:
        digests: dict[str, set[str]] = {}
        for record in self._read():
            digests.setdefault(record.sku, set()).add(record_digest(record))
        return digests

    def poll(self) -> FeedBatch | None:
        version = self._version()
        if self._snapshot is None:
            self._snapshot, self._seen = self._digests(), version
            return None
        if version == self._seen:
            return None
        if version != self._pending:  # changed since the last look: let it settle
            self._pending = version
            return None
        current = self._digests()
        before = self._snapshot
        changed = sorted(
            sku for sku in before.keys() | current.keys() if before.get(sku) != current.get(sku)
        )
        self._next = current
        self._seen_next = version
        if not changed:
            self.commit(FeedBatch("", ()))
            return None
        stamp = hashlib.blake2b(repr((version, changed)).encode(), digest_size=8).hexdigest()
        return FeedBatch(f"snapshot:{stamp}", tuple(changed))

    def commit(self, batch: FeedBatch) -> None:
        if self._next is not None:
            self._snapshot, self._seen = self._next, self._seen_next
            self._next = None
        self._pending = None
