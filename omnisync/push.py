"""Executing a plan: guarded, journalled, batched, retried, resumable, undoable.

The journal is written ahead: every change is recorded ``planned`` before anything is sent,
marked ``sending`` (and committed) before its batch goes out, and ``applied`` / ``failed`` /
``stale`` after. Before each batch the target values are read again:

* the channel still shows the plan's ``from`` value → send;
* it already shows the ``to`` value → ``applied`` without sending (a resumed push whose batch
  went out just before a crash, or someone fixed it meanwhile) — so nothing is sent twice;
* anything else → ``stale``: fresher data is never overwritten by an old plan.

A push interrupted anywhere (Ctrl-C, crash, ``kill -9``, network loss) is finished by
``omnisync apply --resume RUN``, which settles every change still ``planned`` or ``sending``
the same way. Writes are absolute ("set price to 12.99"), so each lands exactly once.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from omnisync.config import Config
from omnisync.errors import ConnectorError, ExitCode, InterruptedPush, OmnisyncError, UsageError
from omnisync.guard import MIN_RATIO, Violation, check_plan, refuse, update_limit_violations
from omnisync.models import FIELD_ENTITY, Change, Entity, Field, Op, WriteResult
from omnisync.plan import ChannelPlan, Plan
from omnisync.sdk import values
from omnisync.sdk.connector import Connector
from omnisync.sdk.retry import Retry
from omnisync.store import (
    JOURNAL_APPLIED,
    JOURNAL_FAILED,
    JOURNAL_OPEN,
    JOURNAL_SENDING,
    JOURNAL_STALE,
    JournalEntry,
    Store,
)

log = logging.getLogger(__name__)


@dataclass
class PushOutcome:
    """What a push did, per channel."""

    run_id: str | None
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    failures: list[tuple[Change, str]] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    retries: int = 0
    #: --dry-run only: per channel, per batch, the payloads that would be sent.
    previews: dict[str, list[list[Any]]] = field(default_factory=dict)
    #: Journal entries settled in this process (a later channel failure leaves them be).
    settled: set[int] = field(default_factory=set)

    def total(self, status: str) -> int:
        return sum(c[status] for c in self.counts.values())

    @property
    def exit_code(self) -> ExitCode:
        done = self.total("applied") + self.total("already")
        bad = self.total("failed") + self.total("stale")
        if not bad:
            return ExitCode.OK
        return ExitCode.PARTIAL if done else ExitCode.FAILED

    @property
    def status(self) -> str:
        return {ExitCode.OK: "done", ExitCode.PARTIAL: "partial", ExitCode.FAILED: "failed"}[
            self.exit_code
        ]

    def summary(self) -> str:
        """One line for cron mail: ``webshop: 5 applied, 1 stale; pos: 2 applied``."""
        parts = []
        for channel, counts in self.counts.items():
            shown = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
            parts.append(f"{channel}: {shown or 'nothing to do'}")
        return "; ".join(parts) or "nothing to do"


def _entity(change: Change) -> Entity:
    if change.op is not Op.UPDATE or change.field is None:
        return Entity.CONTENT
    return FIELD_ENTITY[Field(change.field)]


def _settle(change: Change, current: Any, sent_before: bool) -> str:
    """``send``, ``already`` or ``stale`` for a change, given the channel's current value."""
    if change.op is Op.CREATE:
        if current is None:
            return "send"
        return "already" if sent_before else "stale"
    if change.op is Op.DELETE:
        return "send" if current is not None else "already"
    assert change.field is not None
    if values.same(change.field, current, change.after):
        return "already"
    if values.same(change.field, current, change.before):
        return "send"
    return "stale"


def _batches(entries: Sequence[JournalEntry], size: int) -> Iterator[list[JournalEntry]]:
    """Entries in plan order, ``size`` records (SKUs) per batch; a record's changes stay together.

    The changes an interrupted push had on their way (``sending``) form a batch of their own,
    as when they were sent: a channel that keys requests by their content (Shopify's
    idempotency keys) then sees the same request again and can recognise it."""
    batch: list[JournalEntry] = []
    skus: set[str] = set()
    sending = False
    for entry in entries:
        full = entry.change.sku not in skus and len(skus) >= size
        if batch and (full or (entry.status == JOURNAL_SENDING) != sending):
            yield batch
            batch, skus = [], set()
        batch.append(entry)
        skus.add(entry.change.sku)
        sending = entry.status == JOURNAL_SENDING
    if batch:
        yield batch


class ConnectorFactory(Protocol):
    """Opens the connector of a channel; ``run_id`` is the push run it will write for."""

    def __call__(self, name: str, *, run_id: str | None = None) -> Connector: ...


class Pusher:
    """Runs plans against the configured channels, journalling in ``store``."""

    def __init__(
        self,
        config: Config,
        store: Store | None,
        *,
        retry: Retry | None = None,
        connectors: ConnectorFactory | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.retry = retry or Retry()
        #: Opens connectors; the pusher closes each one it opened when done with it.
        self._connector: ConnectorFactory = connectors or config.connector
        self._journal_lock = threading.Lock()

    # ------------------------------------------------------------ entry points

    def guard(self, plan: Plan, force: bool) -> list[str]:
        """Check the guardrails; raise unless ``force``. Returns the overridden refusals."""
        violations = self._violations(plan)
        if violations and not force:
            raise refuse(violations)
        return [str(v) for v in violations]

    def _violations(self, plan: Plan) -> list[Violation]:
        baseline = plan.canonical_baseline
        if baseline is None and self.store is not None:
            # A plan made in code or by an older version: the history gives the baseline,
            # never counting the plan's own check.
            baseline = self.store.canonical_baseline(exclude=plan.check_run)
        violations = check_plan(plan, self.config, baseline)
        if self.store is not None:
            violations += update_limit_violations(plan, self.config, self.store)
        return violations

    def preview(self, plan: Plan) -> PushOutcome:
        """What would be sent, batch by batch, without sending or journalling anything."""
        outcome = PushOutcome(run_id=None)
        for channel in plan.channels:
            if not channel.changes:
                continue
            with self._connector(channel.name) as connector:
                size = max(1, connector.capabilities.max_batch)
                entries = [
                    JournalEntry(i, c, "planned", None, 0, datetime.now(UTC))
                    for i, c in enumerate(channel.changes)
                ]
                outcome.previews[channel.name] = [
                    connector.preview([e.change for e in batch])
                    for batch in _batches(entries, size)
                ]
        return outcome

    def apply(
        self,
        plan: Plan,
        *,
        force: bool = False,
        plan_json: str | None = None,
        fresh: bool = False,
    ) -> PushOutcome:
        """Guard, journal and execute ``plan``. ``fresh``: the plan was made moments ago in
        this process under the push lock it still holds, so its from-values are the channels'
        current values and are not read again (``watch``)."""
        if self.store is None:
            raise UsageError("a push needs the state store for its journal")
        self._check_channels(plan)
        overrides = self.guard(plan, force)
        run_id = self.store.start_push(
            started_at=datetime.now(UTC),
            config_path=str(self.config.path),
            config_fingerprint=self.config.fingerprint,
            changes=plan.changes,
            plan_json=plan_json or plan.to_json(),
            forced=bool(overrides),
            overrides=overrides,
            undo_of=plan.undo_of,
        )
        for message in overrides:
            log.warning("guardrail overridden with --force: %s", message)
        if plan.check_run and any(v.key == MIN_RATIO for v in self._violations(plan)) and force:
            # The user pushed the smaller catalogue on purpose: it is the baseline from now on.
            self.store.trust_canonical(plan.check_run)
        outcome = PushOutcome(run_id=run_id, overrides=overrides)
        self._execute(run_id, self.store.journal(run_id), outcome, fresh=fresh)
        return outcome

    def resume(self, run_ref: str) -> PushOutcome:
        """Finish an interrupted push: settle every change still planned or sending."""
        if self.store is None:
            raise UsageError("resuming needs the state store")
        record = self.store.push_run(run_ref)
        if record.status not in ("running", "interrupted"):
            raise UsageError(
                f"push run {record.id} has already finished ({record.status})",
                hint="nothing to resume; `omnisync show` lists its outcome",
            )
        outcome = PushOutcome(run_id=record.id, overrides=record.overrides)
        # Changes settled before the interruption count towards this outcome too.
        for entry in record.entries:
            if entry.status not in JOURNAL_OPEN:
                outcome.counts.setdefault(entry.change.channel, Counter())[entry.status] += 1
        self._execute(record.id, record.entries, outcome)
        return outcome

    def undo_plan(self, run_ref: str) -> Plan:
        """The plan that reverts every applied change of a push run, newest first."""
        if self.store is None:
            raise UsageError("undo needs the state store")
        record = self.store.push_run(run_ref)
        original = Plan.from_json(record.plan_json, where=f"run {record.id}")
        applied = [e.change for e in record.entries if e.status == JOURNAL_APPLIED]
        plan = Plan(
            created_at=datetime.now(UTC),
            config_path=str(self.config.path),
            config_fingerprint=self.config.fingerprint,
            check_run=None,
            canonical_count=original.canonical_count,
            canonical_priced=original.canonical_priced,
            undo_of=record.id,
        )
        for channel in original.channels:
            inverse = [c.inverse() for c in reversed(applied) if c.channel == channel.name]
            plan.channels.append(
                ChannelPlan(
                    channel.name,
                    channel.connector,
                    channel.catalogue_size,
                    channel.compared,
                    inverse,
                )
            )
        return plan

    # ------------------------------------------------------------ execution

    def _check_channels(self, plan: Plan) -> None:
        unknown = sorted({c.name for c in plan.channels if c.changes} - set(self.config.channels))
        if unknown:
            raise UsageError(
                f"the plan writes to channel(s) not in {self.config.path}: {', '.join(unknown)}",
                hint="apply it with the config it was made from",
            )

    def _execute(
        self,
        run_id: str,
        entries: Sequence[JournalEntry],
        outcome: PushOutcome,
        *,
        fresh: bool = False,
    ) -> None:
        assert self.store is not None
        store = self.store
        by_channel: dict[str, list[JournalEntry]] = {}
        for entry in entries:
            if entry.status in JOURNAL_OPEN:
                by_channel.setdefault(entry.change.channel, []).append(entry)
        stop = threading.Event()
        try:
            if len(by_channel) <= 1:
                for channel, pending in by_channel.items():
                    self._channel(run_id, channel, pending, outcome, fresh=fresh, stop=stop)
            else:
                self._in_parallel(run_id, by_channel, outcome, fresh=fresh, stop=stop)
        except KeyboardInterrupt:
            store.finish_push(
                run_id,
                status="interrupted",
                exit_code=int(ExitCode.INTERRUPTED),
                totals=_totals(outcome),
            )
            raise InterruptedPush(
                f"push {run_id} interrupted",
                hint=f"finish it with `omnisync apply --resume {run_id}`; the journal knows what was sent",
            ) from None
        outcome.retries = self.retry.retries
        store.finish_push(
            run_id, status=outcome.status, exit_code=int(outcome.exit_code), totals=_totals(outcome)
        )

    def _in_parallel(
        self,
        run_id: str,
        by_channel: dict[str, list[JournalEntry]],
        outcome: PushOutcome,
        *,
        fresh: bool,
        stop: threading.Event,
    ) -> None:
        """Every channel at once, each its own batches in order: channels share nothing but
        the journal, and each is paced by its own limits, so a push to five shops takes about
        as long as the slowest. An interrupt lets each channel finish (and journal) the batch
        it is sending, then stops them all."""
        pool = ThreadPoolExecutor(max_workers=len(by_channel), thread_name_prefix="push")
        futures = [
            pool.submit(self._channel, run_id, name, pending, outcome, fresh=fresh, stop=stop)
            for name, pending in by_channel.items()
        ]
        try:
            for future in futures:
                future.result()
        except BaseException:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)

    def _channel(
        self,
        run_id: str,
        name: str,
        pending: list[JournalEntry],
        outcome: PushOutcome,
        *,
        fresh: bool = False,
        stop: threading.Event | None = None,
    ) -> None:
        counts = outcome.counts.setdefault(name, Counter())

        def fail(entries: Sequence[JournalEntry], message: str) -> None:
            self._mark(run_id, [(e.seq, JOURNAL_FAILED, message) for e in entries])
            counts["failed"] += len(entries)
            outcome.failures.extend((e.change, message) for e in entries)

        try:
            connector = self._connector(name, run_id=run_id)
        except OmnisyncError as exc:
            fail(pending, f"channel could not be opened: {exc}")
            return
        with connector:
            writes = connector.capabilities.writes
            unwritable = [e for e in pending if _entity(e.change) not in writes]
            if unwritable:
                fail(unwritable, f"connector {type(connector).__name__} cannot write this")
                pending = [e for e in pending if e not in unwritable]
            size = max(1, connector.capabilities.max_batch)
            batches = list(_batches(pending, size))
            for index, batch in enumerate(batches):
                if stop is not None and stop.is_set():
                    return  # interrupted: the rest stays planned for --resume
                try:
                    self._batch(run_id, connector, batch, counts, outcome, fresh=fresh)
                except ConnectorError as exc:
                    # The channel itself failed (auth, unreachable after retries): nothing
                    # more can be sent to it in this run.
                    rest = [e for b in batches[index:] for e in b if e.seq not in outcome.settled]
                    fail(rest, str(exc))
                    log.error("channel %s: %s", name, exc)
                    return

    def _batch(
        self,
        run_id: str,
        connector: Connector,
        batch: list[JournalEntry],
        counts: Counter[str],
        outcome: PushOutcome,
        *,
        fresh: bool = False,
    ) -> None:
        changes = [e.change for e in batch]
        retry = self.retry if not connector.retries_itself else _once
        if fresh and all(e.status != JOURNAL_SENDING for e in batch):
            # The plan's from-values were read moments ago, under the push lock this process
            # still holds: reading them again would only widen the same race.
            current = {c.key: c.before for c in changes}
        else:
            current = retry(lambda: connector.current(changes))
        send: list[JournalEntry] = []
        settled: list[tuple[int, str, str | None]] = []
        for entry in batch:
            verdict = _settle(
                entry.change, current.get(entry.change.key), entry.status == JOURNAL_SENDING
            )
            if verdict == "send":
                send.append(entry)
            elif verdict == "already":
                settled.append((entry.seq, JOURNAL_APPLIED, None))
                counts["already"] += 1
            else:
                now = _show(current.get(entry.change.key))
                message = f"channel now shows {now}, the plan expected {_show(entry.change.before)}"
                settled.append((entry.seq, JOURNAL_STALE, message))
                counts["stale"] += 1
                outcome.failures.append((entry.change, message))
        self._mark(run_id, settled)
        outcome.settled.update(seq for seq, _, _ in settled)
        if not send:
            return
        # Write-ahead: these are on their way; a crash from here on is settled by --resume.
        self._mark(run_id, [(e.seq, JOURNAL_SENDING, None) for e in send], attempt=True)
        results = retry(lambda: connector.write([e.change for e in send]))
        by_key = {r.key: r for r in results}
        outcomes: list[tuple[int, str, str | None]] = []
        for entry in send:
            result = by_key.get(entry.change.key) or WriteResult(
                entry.change.key, False, "the channel returned no result for it"
            )
            if result.ok:
                outcomes.append((entry.seq, JOURNAL_APPLIED, None))
                counts["applied"] += 1
            else:
                message = result.error or "rejected by the channel"
                outcomes.append((entry.seq, JOURNAL_FAILED, message))
                counts["failed"] += 1
                outcome.failures.append((entry.change, message))
        self._mark(run_id, outcomes)
        outcome.settled.update(e.seq for e in send)

    def _mark(
        self, run_id: str, outcomes: Sequence[tuple[int, str, str | None]], *, attempt: bool = False
    ) -> None:
        """Journal outcomes; channels pushed in parallel take turns (the store has one writer)."""
        assert self.store is not None
        with self._journal_lock:
            self.store.mark(run_id, outcomes, attempt=attempt)


def _once(func: Callable[[], Any]) -> Any:
    return func()


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict) and "amount" in value:
        return f"{value['amount']} {value.get('currency', '')}".strip()
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)


def _totals(outcome: PushOutcome) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for counts in outcome.counts.values():
        totals.update(counts)
    totals["retries"] = outcome.retries
    return dict(totals)
