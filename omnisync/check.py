"""``omnisync check``: pull every source, compute expectations, diff, and collect findings.

The canonical side is read, validated (unique SKUs, not empty) and loaded once; each channel is
then loaded, compared and dropped, so memory does not grow with the number of channels. A
channel that cannot be read becomes an error on its own report; the other channels are still
checked. A canonical source that cannot be read stops the check.

``settings.memory_limit`` (default 1GB; ``OMNISYNC_MEMORY_LIMIT`` overrides it for one run)
caps the engine's memory; past it, tables and joins spill to a temporary folder instead of
growing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

from omnisync.config import Config, memory_problem
from omnisync.diff import ChannelComparison, DiffEngine, uncompared_notes
from omnisync.errors import ConnectorError, InputError, OmnisyncError, Problem, UsageError
from omnisync.load import CANONICAL, Side
from omnisync.models import ChannelReport, CheckResult, Record
from omnisync.sdk.connector import Connector, PullState

if TYPE_CHECKING:
    from omnisync.snapshot import SnapshotReader, SnapshotWriter
    from omnisync.store import Store

log = logging.getLogger(__name__)


class Progress(Protocol):
    """Receives read progress; the CLI draws bars on a terminal and stays quiet otherwise."""

    def start(self, source: str, description: str) -> None: ...

    def advance(self, source: str, count: int) -> None: ...

    def finish(self, source: str, count: int) -> None: ...


class _NoProgress:
    def start(self, source: str, description: str) -> None:
        pass

    def advance(self, source: str, count: int) -> None:
        pass

    def finish(self, source: str, count: int) -> None:
        pass


class Opener(Protocol):
    """Opens a source's connector: :meth:`Config.connector`, or a pool that lends open ones."""

    def __call__(
        self,
        name: str,
        *,
        store: PullState | None = None,
        full: bool = False,
        run_id: str | None = None,
    ) -> Connector: ...


#: A targeted read running in the background: its records, or None when the connector does
#: not read by SKU (the engine then reads it whole and narrows).
Fetch = Future[list[Record] | None]


@dataclass(frozen=True)
class CheckRequest:
    """What to check: the moment to evaluate sale windows at, optionally a subset of channels,
    the state store (for incremental pulls) and whether to force full pulls.

    ``skus`` narrows the check to those SKUs on every side (``watch`` re-checks what an event
    touched): connectors that read by SKU are asked for just them, the others are read whole
    and narrowed. Such a check does not measure canonical's size (it is not the export the
    truncation guard watches); its plan takes sizes from a whole check."""

    at: datetime | None = None
    channels: Sequence[str] | None = None
    store: Store | None = None
    full: bool = False
    skus: frozenset[str] | None = None
    #: Opens connectors (default: a new one per source from the config).
    connectors: Opener | None = None
    #: An engine kept open between checks (``watch``: a few SKUs a second); the check
    #: drops what it loaded and leaves it open. Default: one for this check, closed after.
    engine: DiffEngine | None = None
    #: Threads for a targeted check's reads and channel diffs, kept between checks like
    #: the engine (``watch``). It needs a thread per source and channel: reads are
    #: submitted first and never wait on a diff. Default: threads made for this check.
    workers: Executor | None = None
    #: Keeps every source read as a Parquet snapshot (``settings.snapshots``).
    snapshot: SnapshotWriter | None = None
    #: Compares the sources of a snapshot instead of reading them (``--from-snapshot``).
    replay: SnapshotReader | None = None


def run_check(
    config: Config, request: CheckRequest | None = None, progress: Progress | None = None
) -> CheckResult:
    """Check every enabled channel (or ``request.channels``) of ``config`` against canonical."""
    request = request or CheckRequest()
    progress = progress or _NoProgress()
    started = datetime.now(UTC)
    evaluated = evaluation_time(request.at, config.model.settings.timezone) or started
    names = _selected(config, request.channels)
    result = CheckResult(
        started_at=started,
        evaluated_at=evaluated,
        config_path=str(config.path),
        config_fingerprint=config.fingerprint,
    )
    engine = request.engine or open_engine(config)
    opener = request.connectors or config.connector
    stack = ExitStack()
    try:
        fetched: dict[str, Fetch] = {}
        if request.skus is not None:
            # A few SKUs from each source: the requests go out together, while the engine
            # loads what is already here.
            pool = request.workers or stack.enter_context(
                ThreadPoolExecutor(max_workers=len(names) + 1, thread_name_prefix="read")
            )
            fetched = {
                name: pool.submit(_fetch, opener, name, request) for name in (CANONICAL, *names)
            }
        canonical = load_canonical(engine, config, request, progress, fetched.get(CANONICAL))
        result.canonical_count = canonical.count
        result.canonical_priced = engine.priced(canonical)
        if request.skus is None:
            _judge_canonical(result, config, request.store)
        if request.skus is not None and len(names) > 1:
            # A few SKUs per channel: the channels are compared side by side, each on its
            # own connection to the engine (a whole check keeps one channel in memory at a
            # time instead).
            def one(name: str) -> ChannelReport:
                twin = engine.twin()
                try:
                    return _check_channel(
                        twin, config, name, canonical, evaluated, progress, request, fetched
                    )
                finally:
                    twin.close()

            workers = request.workers or stack.enter_context(
                ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="diff")
            )
            result.channels.extend(workers.map(one, names))
        else:
            for name in names:
                result.channels.append(
                    _check_channel(
                        engine, config, name, canonical, evaluated, progress, request, fetched
                    )
                )
    finally:
        stack.close()
        if request.engine is None:
            engine.close()
        else:
            engine.drop(CANONICAL)
    result.finished_at = datetime.now(UTC)
    return result


def load_canonical(
    engine: DiffEngine,
    config: Config,
    request: CheckRequest,
    progress: Progress | None = None,
    fetch: Fetch | None = None,
) -> Side:
    """Read canonical into ``engine`` and validate it: every row has a SKU (unless
    ``on_missing_sku: skip``), each SKU once, and not empty (unless ``request.skus``)."""
    if request.replay is not None:
        canonical = request.replay.restore(engine, CANONICAL, CANONICAL)
    else:
        opener = request.connectors or config.connector
        with opener(CANONICAL, store=request.store, full=request.full) as source:
            canonical = _load(
                engine, CANONICAL, source, progress or _NoProgress(), request.skus, fetch
            )
    _require_skus(canonical, config)
    engine.require_unique(canonical, f"canonical ({canonical.where})")
    if request.snapshot is not None:
        request.snapshot.keep(engine, CANONICAL, canonical, config.canonical.config.connector)
    if canonical.count == 0 and request.skus is None:
        raise InputError(
            [Problem(canonical.where, "has no records")],
            where="canonical",
            hint="an empty canonical export would make every channel record look extra; check the export",
        )
    return canonical


def open_engine(config: Config) -> DiffEngine:
    """The diff engine for checks of ``config`` (its zone and memory limit)."""
    return DiffEngine(timezone=config.model.settings.timezone, memory_limit=_memory_limit(config))


def _require_skus(canonical: Side, config: Config) -> None:
    """Canonical rows without a SKU stop the check, each line listed, unless
    ``canonical.on_missing_sku: skip`` (then the diff reports them as data-quality findings)."""
    if config.model.canonical.on_missing_sku == "skip":
        return
    lines = [note for note in canonical.notes if note.field == "sku"]
    if lines:
        raise InputError(
            [Problem(note.origin, note.message) for note in lines],
            where=f"canonical ({canonical.where})",
            hint="give every canonical row a SKU, or set canonical.on_missing_sku: skip "
            "to report such rows and leave them out",
        )


def _memory_limit(config: Config) -> str | None:
    value = os.environ.get("OMNISYNC_MEMORY_LIMIT", "").strip()
    if not value:
        return config.model.settings.memory_limit
    if problem := memory_problem(value):
        raise UsageError(
            f"OMNISYNC_MEMORY_LIMIT={problem}",
            hint="use e.g. 800MB or 2GB, or unset it to use settings.memory_limit",
        )
    return value


def _judge_canonical(result: CheckResult, config: Config, store: Store | None) -> None:
    """Compare canonical's size with the last trusted check before this run: the truncated-
    export guard must not measure a run against itself, or against an export it refused."""
    if store is None:
        return
    baseline = store.canonical_baseline()
    result.canonical_baseline = baseline
    ratio = config.model.canonical.guard.min_ratio
    result.canonical_trusted = baseline is None or result.canonical_count >= ratio * baseline


def evaluation_time(at: datetime | None, timezone: str) -> datetime | None:
    """``--at`` as a UTC moment: a time without an offset is a wall-clock time in
    ``settings.timezone`` (like the sale windows it is compared with), not the machine's zone."""
    if at is None:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=ZoneInfo(timezone))
    return at.astimezone(UTC)


def _selected(config: Config, wanted: Sequence[str] | None) -> list[str]:
    if not wanted:
        return [n for n, c in config.model.channels.items() if c.enabled]
    unknown = [n for n in wanted if n not in config.channels]
    if unknown:
        raise UsageError(
            f"unknown channel {', '.join(map(repr, unknown))}",
            hint=f"channels in {config.path}: {', '.join(config.channels)}",
        )
    return list(dict.fromkeys(wanted))


def _fetch(opener: Opener, name: str, request: CheckRequest) -> list[Record] | None:
    """``request.skus`` of source ``name``, when its connector reads by SKU."""
    assert request.skus is not None
    with opener(name, store=request.store, full=request.full) as connector:
        if not connector.capabilities.targeted or connector.version() is not None:
            return None  # the engine reads it whole, or from what it kept
        return list(connector.read_skus(request.skus))


def _load(
    engine: DiffEngine,
    table: str,
    connector: Connector,
    progress: Progress,
    skus: frozenset[str] | None = None,
    fetch: Fetch | None = None,
) -> Side:
    label = "canonical" if table == CANONICAL else connector.name
    progress.start(label, connector.describe())
    if skus is None:
        # A targeted read (watch) is a request or two: it meets an unreachable source or a
        # rejected key as soon as a connectivity probe would, without the probe's round trip.
        connector.check()
    records = fetch.result() if fetch is not None else None
    side = engine.read(table, connector, lambda n: progress.advance(label, n), skus, records)
    progress.finish(label, side.count)
    log.info("read %s records from %s (%s)", side.count, label, connector.describe())
    return side


def _check_channel(
    engine: DiffEngine,
    config: Config,
    name: str,
    canonical: Side,
    evaluated: datetime,
    progress: Progress,
    request: CheckRequest,
    fetched: dict[str, Fetch],
) -> ChannelReport:
    source = config.channels[name]
    report = ChannelReport(
        name=name, connector=source.config.connector, canonical_count=canonical.count
    )
    table = f"ch_{len(name)}_{''.join(ch if ch.isalnum() else '_' for ch in name)}"
    try:
        if request.replay is not None:
            side = request.replay.restore(engine, name, table)
            report.connector = request.replay.connector(name)
        else:
            opener = request.connectors or config.connector
            with opener(name, store=request.store, full=request.full) as connector:
                side = _load(engine, table, connector, progress, request.skus, fetched.get(name))
        if request.snapshot is not None:
            request.snapshot.keep(engine, name, side, source.config.connector)
        report.channel_count = side.count
        rules = config.channel_config(name)
        prices = config.model.canonical.prices
        comparison = ChannelComparison(name, canonical, side, rules, prices, evaluated)
        findings, fields = engine.diff(comparison)
        report.findings = findings
        report.fields = fields
        report.notes = uncompared_notes(canonical.fields, side.fields, config.channel_config(name))
        report.notes += comparison.notes
        for note in report.notes:
            log.info("channel %s: %s", name, note)
    except (InputError, ConnectorError) as exc:
        # The report already names the channel: "shop: could not be read: POST /api: ...".
        if exc.where == name:
            exc.where = ""
        elif exc.where.startswith(f"{name}: "):
            exc.where = exc.where[len(name) + 2 :]
        report.error = str(exc)
        report.error_code = int(exc.exit_code)
        progress.finish(name, 0)
        log.error("channel %s: %s", name, exc)
    except OmnisyncError:
        raise
    finally:
        engine.drop(table)
    return report
