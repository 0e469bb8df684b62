"""A fault-injecting channel for push tests: state in memory, failures on demand.

It behaves like a real channel's write side: a batch limit, transient failures (raised as
TransientError with a Retry-After), per-record rejections with the channel's own message, and
state, so a write is visible to the next read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from omnisync.errors import ConnectorError, TransientError
from omnisync.models import Change, Entity, Field, Op, Record, WriteResult
from omnisync.sdk import values
from omnisync.sdk.connector import Capabilities, Connector, ConnectorContext, ConnectorOptions


@dataclass
class Faults:
    #: Fail this many write requests with a transient error before succeeding.
    transient_writes: int = 0
    retry_after: float | None = 0.0
    #: SKU -> the channel's message for a record it rejects.
    reject: dict[str, str] = field(default_factory=dict)
    #: Raise this (e.g. KeyboardInterrupt) on the write request with this number (1-based),
    #: after the request has been applied: a crash between sending and journalling.
    crash_after_write: int | None = None
    crash_with: type[BaseException] = KeyboardInterrupt
    #: Every write fails with a permanent channel error (e.g. bad credentials).
    broken: str | None = None


class FakeChannel(Connector):
    """An in-memory channel. ``records`` is its state; ``writes`` counts requests and keys."""

    description = "in-memory test channel"
    capabilities: ClassVar[Capabilities] = Capabilities(
        reads=frozenset(Entity), writes=frozenset(Entity), max_batch=3
    )

    def __init__(self, records: Sequence[Record], faults: Faults | None = None) -> None:
        super().__init__(ConnectorOptions(), ConnectorContext(name="fake"))
        self.records: dict[str, Record] = {r.sku: r for r in records}
        self.faults = faults or Faults()
        self.requests = 0
        self.sent: Counter[str] = Counter()
        self.batch_sizes: list[int] = []

    def fields(self) -> frozenset[Field]:
        return frozenset(Field)

    def read(self) -> Iterator[Record]:
        yield from list(self.records.values())

    def write(self, changes: Sequence[Change]) -> list[WriteResult]:
        self.requests += 1
        if self.faults.broken:
            raise ConnectorError(self.faults.broken)
        if self.faults.transient_writes > 0:
            self.faults.transient_writes -= 1
            raise TransientError("503 Service Unavailable", retry_after=self.faults.retry_after)
        assert len({c.sku for c in changes}) <= self.capabilities.max_batch, "batch over the limit"
        self.batch_sizes.append(len({c.sku for c in changes}))
        results = []
        for change in changes:
            message = self.faults.reject.get(change.sku)
            if message:
                results.append(WriteResult(change.key, False, message))
                continue
            self.sent[change.key] += 1
            if change.op is Op.CREATE:
                self.records[change.sku] = values.json_to_record(change.after)
            elif change.op is Op.DELETE:
                self.records.pop(change.sku, None)
            else:
                assert change.field is not None
                values.apply_value(
                    self.records[change.sku], change.field, change.location, change.after
                )
            results.append(WriteResult(change.key, True))
        if self.faults.crash_after_write == self.requests:
            raise self.faults.crash_with()
        return results

    def value(self, sku: str, field: str, location: str | None = None) -> Any:
        return values.field_value(self.records.get(sku), field, location)
