"""The watcher: queued events become targeted checks and guarded pushes; passes repair the rest.

Two stages, so that one batch is checked while the one before it is pushed::

    loop thread:  claim events ─→ hold them while a SKU they name was written less than
                  coalesce_seconds ago, then claim what else arrived
                  └─→ SKUs they touch (ids resolved through the connector)
                      └─→ take the push lock (see :mod:`.lease`) and check just those SKUs
                          (canonical and the affected channels, the same rules as `check`)
                          → plan → fit it (sizes of the last whole check, held increases)
                          └─→ hand it to the push stage (after the batch before it is pushed)
    push thread:  count the guard window → guard → journal → push → give the lock back
                  └─→ settle the events (done | refused | failed), or release them for a retry

    every interval_seconds: an incremental pass (`sync` of every channel)
    every reconcile_seconds: a full pass (every source read in full)

Pushes never overlap and go in the order their batches were checked. A batch that touches a
SKU of the batch being pushed waits for that push before it reads anything, so no check reads
a value that is about to be overwritten. Passes wait for the push stage too.

Events are claimed with a lease and settled only after their push is recorded, so a crash at
any point leaves them queued (or claimed, and released when the next watcher starts); the
push journal and a re-check before sending make a repeated correction a no-op.

**Held increases.** A channel's own event (an order in the shop) lowers its stock before
canonical knows of the sale. Re-checking at once would push canonical's older, higher stock
back into the shop and re-open the oversell the shop just closed. So from a channel's own
events the watcher pushes stock *decreases* at once and holds *increases* (each is logged):
an increase goes out when canonical changes for that SKU or at the next pass.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from omnisync import pipeline
from omnisync.check import CheckRequest, open_engine
from omnisync.config import Config
from omnisync.diff import DiffEngine
from omnisync.errors import GuardrailError, LockedError, OmnisyncError
from omnisync.load import CANONICAL
from omnisync.models import Event, Op
from omnisync.plan import Plan, Skipped, build_plan
from omnisync.push import Pusher
from omnisync.store import EVENT_DONE, EVENT_FAILED, EVENT_REFUSED, Store
from omnisync.watch.feeds import FeedRunner
from omnisync.watch.lease import Lease
from omnisync.watch.metrics import Metrics
from omnisync.watch.pool import ConnectorPool
from omnisync.watch.settings import WatchSettings

log = logging.getLogger("omnisync.watch")

HELD = "stock increase held: the channel's own change is not in canonical yet (sent when canonical changes for this SKU, or at the next pass)"


@dataclass
class Sizes:
    """Sizes from the last whole check, which a targeted plan's guardrails measure against."""

    canonical_count: int
    canonical_priced: int
    canonical_baseline: int | None
    #: channel -> (records it listed, SKUs on both sides)
    channels: dict[str, tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def of(cls, plan: Plan, before: Sizes | None) -> Sizes:
        sizes = cls(plan.canonical_count, plan.canonical_priced, plan.canonical_baseline)
        sizes.channels = dict(before.channels) if before else {}
        for channel in plan.channels:
            sizes.channels[channel.name] = (channel.catalogue_size, channel.compared)
        return sizes


@dataclass
class Batch:
    """The events handled together and what they touch."""

    events: list[Event]
    #: SKUs canonical's events name (every pushing channel is re-checked for them).
    canonical: set[str] = field(default_factory=set)
    #: channel -> SKUs its own events name.
    channels: dict[str, set[str]] = field(default_factory=dict)

    @property
    def skus(self) -> set[str]:
        return self.canonical.union(*self.channels.values())

    @property
    def ids(self) -> list[int]:
        return [e.id for e in self.events if e.id is not None]


class Watcher:
    """Works through the event queue of ``store`` and runs the passes."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        dry_run: bool = False,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.store = store
        self.settings: WatchSettings = config.model.watch
        self.dry_run = dry_run
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.owner = f"pid {os.getpid()} on {socket.gethostname()}"
        self.pusher = Pusher(config, store)
        #: Event batches borrow open connectors (one pool for the checks, one for the pushes,
        #: which run side by side); passes and recovery open their own.
        self.pool = ConnectorPool(config, store)
        self.push_pool = ConnectorPool(config, store)
        self.event_pusher = Pusher(config, store, connectors=self.push_pool)
        self.lease = Lease(store)
        #: The push stage: one batch's push runs here while the loop checks the next.
        self._stage = ThreadPoolExecutor(max_workers=1, thread_name_prefix="watch-push")
        self._pending: Future[None] | None = None
        #: SKUs of the batch being pushed (a batch touching one of them waits for it).
        self._in_flight: frozenset[str] = frozenset()
        #: Set by a failed push: the loop renews its connectors before the next batch.
        self._renew_due = False
        #: The engine of the targeted checks, kept between batches like the connectors.
        self._engine: DiffEngine | None = None
        #: And their threads (reads of every source, then a diff per channel).
        self._workers = ThreadPoolExecutor(
            max_workers=2 * len(config.model.channels) + 1, thread_name_prefix="watch-check"
        )
        self.sizes: Sizes | None = None
        self.wake = threading.Event()
        self.stopping = threading.Event()
        #: Monotonic time of the last loop turn (``/healthz`` calls a stuck loop unhealthy).
        self.heartbeat = clock()
        self._next_pass = 0.0
        self._next_full = 0.0
        self._backoff = 0.0
        self._backoff_until = 0.0
        #: SKU -> monotonic time an event batch last pushed it (see _coalesce).
        self._written: dict[str, float] = {}

    # ------------------------------------------------------------ lifecycle

    @property
    def pushing(self) -> list[str]:
        """Channels with a ``push:`` block (the ones events can correct)."""
        return [
            name
            for name, channel in self.config.model.channels.items()
            if channel.enabled and channel.push is not None
        ]

    def recover(self) -> None:
        """After a crash: claims of the dead watcher go back to the queue, and push runs it
        left unfinished are finished from their journal (what was sent is not sent again)."""
        released = self.store.release_claims()
        if released:
            log.warning("%d event(s) claimed by an earlier watcher are queued again", released)
        with self.store.lock("push"):
            for run in self.store.runs(limit=200):
                if run.kind == "push" and run.status == "interrupted":
                    outcome = self.pusher.resume(run.id)
                    log.warning("finished interrupted push %s: %s", run.id, outcome.summary())

    def run(self) -> None:
        """Loop until :attr:`stopping` is set: events first, passes when they are due. The
        first pass runs at once (it measures the catalogue sizes the guards need)."""
        while not self.stopping.is_set():
            try:
                self.recover()
                break
            except LockedError as exc:  # a sync from cron is pushing: finish after it
                log.warning("waiting to recover: %s", exc)
                self.stopping.wait(5)
        feeds = FeedRunner(
            self.config,
            self.store,
            wake=self.wake.set,
            stopping=self.stopping,
            metrics=self.metrics,
        )
        feeds.start()
        try:
            self._loop()
        finally:
            self.stopping.set()
            feeds.join()
            self._renew()
            self._stage.shutdown(wait=True)
            self._workers.shutdown(wait=True)

    def _loop(self) -> None:
        now = self.clock()
        self._next_pass = now
        self._next_full = now + self.settings.reconcile_seconds
        while not self.stopping.is_set():
            self.heartbeat = self.clock()
            if self.turn() == 0:
                self.wake.wait(self._idle())
                self.wake.clear()

    def _idle(self) -> float:
        return max(0.0, min(1.0, self._next_pass - self.clock()))

    def turn(self) -> int:
        """One step: a due pass, else one batch of events. The number of events handled."""
        now = self.clock()
        if now >= self._next_full:
            self.run_pass(full=True)
            return 0
        if now >= self._next_pass:
            self.run_pass(full=False)
            return 0
        if self.sizes is None or now < self._backoff_until:
            # Nothing is pushed for events before a whole check has measured the catalogue.
            return 0
        events = self.store.claim_events(self.owner, limit=self.settings.batch)
        if not events:
            return 0
        events += self._coalesce(events)
        self.handle(events)
        return len(events)

    def drain(self) -> None:
        """Wait until the batch being pushed is pushed and settled."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()  # its failures are settled in the stage; only a bug raises here

    def _coalesce(self, events: list[Event]) -> list[Event]:
        """Hold a batch back while any SKU it names was written less than coalesce_seconds
        ago, then claim what else arrived: a burst on one SKU becomes one write per window,
        and an event on a SKU not written lately goes out at once. Events that name only a
        channel's ids (their SKUs are looked up later) wait out the window from the oldest."""
        window = float(self.settings.coalesce_seconds)
        if any(e.refs and not e.skus for e in events):
            oldest = min(e.received_at or datetime.now(UTC) for e in events)
            delay = window - (datetime.now(UTC) - oldest).total_seconds()
        else:
            if any(s in self._in_flight for e in events for s in e.skus):
                with self._timed("in_flight"):
                    self.drain()  # being written: the window starts when that write is done
            last = max((self._written.get(s, 0.0) for e in events for s in e.skus), default=0.0)
            delay = last + window - self.clock() if last else 0.0
        if delay <= 0:
            return []  # nothing held it back: what arrives meanwhile is the next batch
        with self._timed("held"):
            self.stopping.wait(delay)
        room = self.settings.batch - len(events)
        return self.store.claim_events(self.owner, limit=room) if room > 0 else []

    @contextmanager
    def _timed(self, stage: str) -> Iterator[None]:
        """Observe how long the block took as step ``stage`` of an event batch."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.metrics.stages.labels(stage).observe(time.perf_counter() - started)

    def _wrote(self, skus: Iterable[str]) -> None:
        """Note when ``skus`` were last written (what :meth:`_coalesce` holds back)."""
        now = self.clock()
        horizon = now - float(self.settings.coalesce_seconds)
        self._written = {s: t for s, t in self._written.items() if t > horizon}
        self._written.update(dict.fromkeys(skus, now))

    def _renew(self) -> None:
        """Close the lent connectors and the kept engine; the next batch opens new ones."""
        self.drain()
        self._renew_due = False
        self.pool.renew()
        self.push_pool.renew()
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    # ------------------------------------------------------------ passes

    def run_pass(self, *, full: bool) -> None:
        """A check of everything (incremental pulls unless ``full``), planned, guarded and
        pushed like ``sync``; its plan's sizes become the guards' measure for events."""
        kind = "full" if full else "incremental"
        now = self.clock()
        self._next_pass = now + self.settings.interval_seconds
        if full:
            self._next_full = now + self.settings.reconcile_seconds
        request = CheckRequest(store=self.store, full=full)
        # Waits for a push in flight; what the lent connectors cached is re-learnt at least
        # every pass.
        self._renew()
        try:
            with self.store.lock("push"):
                plan = pipeline.plan(self.config, request)
                self.sizes = Sizes.of(plan, self.sizes)
                self._push(plan, f"{kind} pass")
        except LockedError as exc:
            log.warning("%s pass skipped: %s", kind, exc)
            self._next_pass = now + min(60, self.settings.interval_seconds)
            self.metrics.passes.labels(kind, "locked").inc()
            return
        except GuardrailError as exc:
            log.error("%s pass refused by a guardrail: %s", kind, exc)
            self.metrics.passes.labels(kind, "refused").inc()
            return
        except OmnisyncError as exc:
            log.error("%s pass failed: %s", kind, exc)
            self.metrics.passes.labels(kind, "failed").inc()
            if self.sizes is None:  # events wait for a whole check: try again soon
                self._next_pass = now + min(30, self.settings.interval_seconds)
            return
        self.metrics.passes.labels(kind, "ok").inc()
        self.store.prune_events(datetime.now(UTC) - timedelta(days=self.settings.keep_days))

    # ------------------------------------------------------------ events

    def handle(self, events: list[Event]) -> None:
        """Re-check what ``events`` touch and hand the corrections to the push stage, which
        pushes them (while this thread checks the next batch) and settles or releases the
        events. :meth:`drain` waits for it."""
        if self._renew_due:
            self._renew()
        try:
            batch = self._resolve(events)
            if not batch.skus or not self._targets(batch):
                log.info("%d event(s): nothing this config pushes to is touched", len(events))
                self._settle(batch, EVENT_DONE)
                return
            if batch.skus & self._in_flight:
                # Its channels' values are about to change: read them after the write.
                with self._timed("in_flight"):
                    self.drain()
            self.lease.acquire()
            try:
                with self._timed("check"):
                    plan = self._plan(batch)
            except BaseException:
                self.lease.release()
                raise
        except LockedError as exc:
            log.info("events wait: %s", exc)
            self.store.release_events([e.id for e in events if e.id is not None])
            self._back_off()
            return
        except OmnisyncError as exc:
            self._renew()  # a broken connection or a changed token is not kept
            self._retry_or_fail(events, str(exc))
            return
        with self._timed("queued_push"):
            self.drain()  # one push at a time, in the order the batches were checked
        self._in_flight = frozenset(batch.skus)
        self._pending = self._stage.submit(self._push_batch, batch, plan)

    def _push_batch(self, batch: Batch, plan: Plan) -> None:
        """The push stage: guard, journal and push ``plan``, then settle its events. The
        lease taken for the batch's check is given back here, so from its read to its write
        no other run can push."""
        events = batch.events
        try:
            try:
                self._count_window(plan)
                # Read a moment ago under the lease: the push need not read it again.
                with self._timed("push"):
                    run_id = self._push(plan, f"{len(events)} event(s)", fresh=True)
            finally:
                self.lease.release()
        except GuardrailError as exc:
            log.error("corrections for %d event(s) refused by a guardrail: %s", len(events), exc)
            self.store.settle_events(batch.ids, EVENT_REFUSED, error=str(exc))
            self.metrics.settled.labels(EVENT_REFUSED).inc(len(events))
            return
        except OmnisyncError as exc:
            self._renew_due = True  # renewed by the loop: this thread must not close its tools
            self._retry_or_fail(events, str(exc))
            return
        finally:
            self._in_flight = frozenset()
        self._backoff = 0.0
        if run_id is not None:
            self._wrote(batch.skus)
        with self._timed("settle"):
            self._settle(batch, EVENT_DONE, run_id)

    def _resolve(self, events: list[Event]) -> Batch:
        """The SKUs of each event: named, or looked up by the channel's ids."""
        batch = Batch(events)
        refs: dict[str, dict[str, set[str]]] = {}
        for event in events:
            target = batch.canonical if event.source == CANONICAL else None
            if target is None:
                target = batch.channels.setdefault(event.source, set())
            target.update(event.skus)
            for name, values in event.refs.items():
                refs.setdefault(event.source, {}).setdefault(name, set()).update(values)
        for source, wanted in refs.items():
            with self.pool(source, store=self.store) as connector:
                found = connector.find_skus(wanted)
            (batch.canonical if source == CANONICAL else batch.channels[source]).update(found)
        return batch

    def _targets(self, batch: Batch) -> list[str]:
        """The channels to correct: every pushing channel for canonical's changes, else the
        pushing channels whose own events these are."""
        if batch.canonical:
            return self.pushing
        return [name for name in self.pushing if name in batch.channels]

    def _plan(self, batch: Batch) -> Plan:
        """The plan for just the batch's SKUs, fitted to be guarded like a whole one."""
        skus = frozenset(batch.skus)
        if self._engine is None:
            self._engine = open_engine(self.config)
        request = CheckRequest(
            channels=self._targets(batch),
            store=self.store,
            skus=skus,
            connectors=self.pool,
            engine=self._engine,
            workers=self._workers,
        )
        result, _ = pipeline.check(self.config, request, record=False)
        for report in result.channels:
            if report.error:
                raise _ChannelDown(report.name, report.error)
        plan = build_plan(result, self.config)
        self._fit(plan, batch)
        return plan

    def _fit(self, plan: Plan, batch: Batch) -> None:
        """A targeted plan measured like a whole one: canonical and catalogue sizes from the
        last whole check, and stock increases that only a channel's own event asked for held
        back (the guard window is counted in the push stage, :meth:`_count_window`)."""
        sizes = self.sizes
        assert sizes is not None
        plan.canonical_count = sizes.canonical_count
        plan.canonical_priced = sizes.canonical_priced
        plan.canonical_baseline = sizes.canonical_baseline
        for channel in plan.channels:
            catalogue, compared = sizes.channels.get(
                channel.name, (channel.catalogue_size, channel.compared)
            )
            channel.catalogue_size = max(catalogue, channel.catalogue_size)
            channel.compared = max(compared, channel.compared)
            kept = []
            for change in channel.changes:
                if (
                    change.op is Op.UPDATE
                    and change.field == "stock"
                    and change.sku not in batch.canonical
                    and isinstance(change.after, int)
                    and isinstance(change.before, int)
                    and change.after > change.before
                ):
                    channel.skipped.append(Skipped(change.sku, change.key, HELD))
                    log.info(
                        "%s: %s %s→%s held", channel.name, change.key, change.before, change.after
                    )
                else:
                    kept.append(change)
            channel.changes = kept

    def _count_window(self, plan: Plan) -> None:
        """What each channel's pushes changed in the guard window, counted when the push is
        about to go (the batch pushed before it is journalled by then)."""
        since = datetime.now(UTC) - timedelta(seconds=self.settings.guard_window_seconds)
        for channel in plan.channels:
            if channel.changes:
                channel.recent = frozenset(self.store.changed_skus(channel.name, since))

    def _push(self, plan: Plan, what: str, *, fresh: bool = False) -> str | None:
        """Guard and push ``plan`` (preview it under ``--dry-run``); the push run's id."""
        if not plan.changes:
            log.info("%s: every channel is consistent", what)
            return None
        if self.dry_run:
            self.pusher.guard(plan, force=False)
            previews = self.pusher.preview(plan).previews
            for channel in plan.channels:
                if channel.changes:
                    shown = ", ".join(
                        f"{c.sku} {c.field or c.op.value} {_short(c.before)}→{_short(c.after)}"
                        for c in channel.changes[:20]
                    )
                    more = (
                        f" and {len(channel.changes) - 20} more"
                        if len(channel.changes) > 20
                        else ""
                    )
                    log.info("dry run, %s: would change %s: %s%s", what, channel.name, shown, more)
                    log.debug("dry run: %s requests: %s", channel.name, previews.get(channel.name))
            return None
        pusher = self.event_pusher if fresh else self.pusher
        outcome = pusher.apply(plan, fresh=fresh)
        for name, counts in outcome.counts.items():
            for status, n in counts.items():
                self.metrics.pushes.labels(name, status).inc(n)
        log.info("%s: push %s: %s", what, outcome.run_id, outcome.summary())
        return outcome.run_id

    def _settle(self, batch: Batch, status: str, run_id: str | None = None) -> None:
        self.store.settle_events(batch.ids, status, run_id=run_id)
        self.metrics.settled.labels(status).inc(len(batch.events))
        done = datetime.now(UTC)
        touched = set(batch.channels) | (set(self.pushing) if batch.canonical else set())
        for event in batch.events:
            if event.received_at is None:
                continue
            seconds = (done - event.received_at).total_seconds()
            for channel in touched & set(self.pushing):
                self.metrics.latency.labels(channel).observe(seconds)

    def _retry_or_fail(self, events: Iterable[Event], message: str) -> None:
        events = list(events)
        spent = [
            e.id for e in events if e.id is not None and e.attempts >= self.settings.max_attempts
        ]
        again = [e.id for e in events if e.id is not None and e.id not in spent]
        if again:
            log.warning("%d event(s) will be retried: %s", len(again), message)
            self.store.release_events(again, error=message)
        if spent:
            log.error(
                "%d event(s) failed %d times and are given up (the next pass repairs what "
                "they would have): %s",
                len(spent),
                self.settings.max_attempts,
                message,
            )
            self.store.settle_events(spent, EVENT_FAILED, error=message)
            self.metrics.settled.labels(EVENT_FAILED).inc(len(spent))
        self._back_off()

    def _back_off(self) -> None:
        self._backoff = min(30.0, max(0.5, self._backoff * 2))
        self._backoff_until = self.clock() + self._backoff


def _short(value: object) -> str:
    if isinstance(value, dict) and "amount" in value:
        return f"{value['amount']} {value.get('currency') or ''}".strip()
    text = str(value)
    return text if len(text) <= 40 else text[:39] + "…"


class _ChannelDown(OmnisyncError):
    """A channel could not be read for a targeted check: the events are retried."""

    def __init__(self, channel: str, error: str) -> None:
        super().__init__(f"channel {channel} could not be read: {error}")
