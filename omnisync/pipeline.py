"""The pipeline as functions: what ``check``, ``plan`` and ``sync`` do, without a command line.

The CLI parses options, calls one of these, renders what it returns and exits with its code;
``watch`` and the workers (long-lived drivers) call the same functions, so every way of
running omnisync checks, records, plans, guards and journals alike. A saved plan goes the
same way through :func:`read_plan`, :func:`guard`, :func:`preview` and :func:`apply`;
:func:`resume` and :func:`undo_plan` finish and revert pushes.

::

    pull → normalize → expect → diff        check()    omnisync.check / .diff / .expect
                                     → plan plan()     omnisync.plan
                           → guard → push   sync()     omnisync.guard / .push
                                   → record            omnisync.store

Every function takes an open :class:`~omnisync.store.Store` (or None where history is off)
and a progress sink; none prints. The exit-code decision on a check result is
:func:`exit_code`, so every driver ends a run the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omnisync.check import CheckRequest, Progress, run_check
from omnisync.config import Config
from omnisync.errors import ExitCode, UsageError
from omnisync.models import CheckResult
from omnisync.snapshot import SnapshotReader, SnapshotWriter, remove_snapshots, snapshot_root

if TYPE_CHECKING:
    from omnisync.plan import Plan
    from omnisync.publish.feed import PublishOutcome
    from omnisync.push import PushOutcome
    from omnisync.store import Store

log = logging.getLogger("omnisync")


def exit_code(
    result: CheckResult,
    fail_on: Collection[str] | None = None,
    threshold: int = 0,
    *,
    fail_on_warn: bool = False,
) -> ExitCode:
    """How a check ends: a channel's read error wins (3 over the others), then findings of
    severity ``fail`` (and ``warn`` with ``fail_on_warn``) beyond ``threshold`` (counting
    only ``fail_on`` fields and kinds when given) are 1; ``info`` findings never fail."""
    codes = {c.error_code for c in result.channels if c.error_code}
    if codes:
        return ExitCode.CHANNEL if ExitCode.CHANNEL in codes else ExitCode(min(codes))
    wanted = frozenset(fail_on) if fail_on is not None else None
    counted = result.counted(wanted, warnings=fail_on_warn)
    return ExitCode.MISMATCH if len(counted) > threshold else ExitCode.OK


def open_store(state: str | None, config: Config | None) -> Store:
    """The state store: ``state`` (path or URL, relative to the working directory) when
    given, else the config's ``settings.state`` (relative to the config file)."""
    from omnisync.store import Store

    if state:
        return Store.open(state, base_dir=Path.cwd())
    if config is not None:
        return Store.open(config.model.settings.state, base_dir=config.base_dir)
    return Store.open(".omnisync/state.db", base_dir=Path.cwd())


def check(
    config: Config,
    request: CheckRequest,
    *,
    record: bool = True,
    fail_on: Collection[str] | None = None,
    threshold: int = 0,
    fail_on_warn: bool = False,
    progress: Progress | None = None,
) -> tuple[CheckResult, ExitCode]:
    """Check every requested channel; with ``record`` (and ``request.store``) the run is
    kept in the history under its exit code."""
    writer = None
    if record and request.store is not None and request.skus is None and request.replay is None:
        root = snapshot_root(config.model.settings.snapshots, config.base_dir)
        if root is not None:
            writer = SnapshotWriter(root)
            request = replace(request, snapshot=writer)
    try:
        result = run_check(config, request, progress)
        if request.replay is not None:
            result.from_snapshot = request.replay.run
        result.snapshot = writer is not None
        code = exit_code(result, fail_on, threshold, fail_on_warn=fail_on_warn)
        if record and request.store is not None:
            run_id = request.store.record_check(result, int(code))
            if writer is not None:
                writer.commit(run_id, result.evaluated_at, config.fingerprint)
                writer = None
            prune_history(config, request.store)
    finally:
        if writer is not None:
            writer.discard()
    return result, code


def open_snapshot(config: Config, store: Store, run: str) -> SnapshotReader:
    """The snapshot of check run ``run`` (an id, a unique prefix or ``last``)."""
    root = snapshot_root(config.model.settings.snapshots or True, config.base_dir)
    assert root is not None
    if run == "last":  # the newest check that kept one (a re-diff keeps none)
        for summary in store.runs(None):
            if summary.kind == "check" and summary.totals.get("snapshot"):
                run = summary.id
                break
    run_id, kind = store.run_kind(run)
    if kind != "check":
        raise UsageError(f"run {run_id} is a {kind} run; snapshots are taken by checks")
    return SnapshotReader.open(root, run_id)


def prune_history(config: Config, store: Store) -> None:
    """Apply ``settings.history`` after a recorded run. Freed pages are reused by the next
    runs; ``omnisync runs --prune`` also compacts the file."""
    history = config.model.settings.history
    if history.keep is None and history.keep_runs is None:
        return
    outcome = store.prune(
        keep=history.keep, keep_runs=history.keep_runs, now=datetime.now(UTC), vacuum=False
    )
    root = snapshot_root(config.model.settings.snapshots, config.base_dir)
    remove_snapshots(root, outcome.runs)
    if outcome.runs or outcome.events:
        log.info(
            "settings.history: pruned %d run(s) (%d findings, %d journal entries, %d events)",
            len(outcome.runs),
            outcome.findings,
            outcome.journal,
            outcome.events,
        )


def plan(config: Config, request: CheckRequest, *, progress: Progress | None = None) -> Plan:
    """Check (recorded: the plan names its check run) and turn the findings into the plan.
    A channel that could not be read is left out of the plan, and logged."""
    from omnisync.plan import build_plan

    result, _ = check(config, request, progress=progress)
    for report in result.channels:
        if report.error:
            log.error(
                "channel %s could not be checked and is left out of the plan: %s",
                report.name,
                report.error,
            )
    return build_plan(result, config, request.store)


@dataclass
class SyncOutcome:
    """What :func:`sync` did: the plan, and the push outcome (None when there was nothing to
    push or ``dry_run`` only previewed it)."""

    plan: Plan
    push: PushOutcome | None = None
    #: ``dry_run``: per channel, the exact payloads of each batch a push would send.
    previews: dict[str, list[list[Any]]] = field(default_factory=dict)

    @property
    def exit_code(self) -> ExitCode:
        return self.push.exit_code if self.push is not None else ExitCode.OK


def sync(
    config: Config,
    request: CheckRequest,
    *,
    force: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> SyncOutcome:
    """check + plan + guard + push, all under the store's push lock (a second sync exits at
    once with :class:`~omnisync.errors.LockedError`). ``request.store`` is required."""
    from omnisync.push import Pusher

    store = request.store
    if store is None:
        raise ValueError("sync needs a state store (request.store)")
    with store.lock("push"):
        the_plan = plan(config, request, progress=progress)
        pusher = Pusher(config, store)
        if dry_run:
            return SyncOutcome(the_plan, previews=pusher.preview(the_plan).previews)
        if not the_plan.changes:
            return SyncOutcome(the_plan)
        return SyncOutcome(the_plan, pusher.apply(the_plan, force=force))


def read_plan(path: Path) -> Plan:
    """The plan ``omnisync plan --out`` wrote to ``path``."""
    from omnisync.plan import Plan

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read plan {path}: {exc.strerror}") from None
    return Plan.from_json(text, where=str(path))


def guard(config: Config, store: Store, plan: Plan) -> list[str]:
    """The guardrails ``plan`` trips, as messages; refuses nothing (``apply`` does)."""
    from omnisync.push import Pusher

    return Pusher(config, store).guard(plan, force=True)


def preview(config: Config, store: Store, plan: Plan) -> dict[str, list[list[Any]]]:
    """Per channel, the exact payloads of each batch pushing ``plan`` would send; sends and
    journals nothing."""
    from omnisync.push import Pusher

    return Pusher(config, store).preview(plan).previews


def apply(
    config: Config,
    store: Store,
    plan: Plan,
    *,
    force: bool = False,
    confirm: Callable[[], None] | None = None,
) -> PushOutcome:
    """Push ``plan``: the guardrails first (refusing unless ``force``), then ``confirm`` (which
    may end the run by raising), then the journalled push under the store's push lock."""
    from omnisync.push import Pusher

    pusher = Pusher(config, store)
    pusher.guard(plan, force)  # refuse before asking
    if confirm is not None:
        confirm()
    with store.lock("push"):
        return pusher.apply(plan, force=force)


def resume(config: Config, store: Store, run: str) -> PushOutcome:
    """Finish the interrupted push ``run`` (id, prefix or 'last') under the push lock, each
    change applied exactly once."""
    from omnisync.push import Pusher

    with store.lock("push"):
        return Pusher(config, store).resume(run)


def undo_plan(config: Config, store: Store, run: str) -> Plan:
    """The plan that reverts the push ``run``: its journal's before-values."""
    from omnisync.push import Pusher

    return Pusher(config, store).undo_plan(run)


def publish(
    config: Config,
    store: Store | None,
    channels: Collection[str] | None = None,
    *,
    at: datetime | None = None,
    force: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> PublishOutcome:
    """Write the feed of every published channel (``publish:``) from canonical, under the
    store's ``publish`` lock; the run is recorded (unless ``dry_run`` or no ``store``)."""
    from omnisync.publish.feed import publish as write_feeds

    def run() -> PublishOutcome:
        return write_feeds(
            config,
            store,
            list(channels) if channels else None,
            at=at,
            force=force,
            dry_run=dry_run,
            progress=progress,
        )

    if store is None or dry_run:
        return run()
    with store.lock("publish"):
        return run()
