"""History retention: ``settings.history.keep`` / ``keep_runs`` and ``omnisync runs --prune``.

A run older than ``keep``, or beyond the ``keep_runs`` newest, goes with everything recorded
under it: its channel summaries and findings, a push's plan and journal, and the settled
watch events it carried. Some runs are kept whatever their age, because later runs depend on
them:

* the newest run of each kind (``show last``, and what a cron log points at);
* the newest trusted check with a canonical count: the truncation guard's baseline;
* the newest successful publish of each channel: the next publish's item guard;
* a push whose journal still has changes planned or being sent: ``apply --resume`` needs it.

Queued and claimed events are never pruned (``watch`` has not handled them); settled events
older than ``keep`` go with or without a run. A SQLite store is then compacted (``VACUUM``);
PostgreSQL and MariaDB reuse the space of deleted rows themselves.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import ColumnElement, delete, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from omnisync.store.db import StoreBase
from omnisync.store.events import EVENT_CLAIMED, EVENT_QUEUED
from omnisync.store.journal import JOURNAL_PLANNED, JOURNAL_SENDING
from omnisync.store.rows import chunks
from omnisync.store.schema import (
    KIND_CHECK,
    KIND_PUBLISH,
    ChannelRun,
    EventRow,
    FindingRow,
    JournalRow,
    PushRow,
    Run,
)

#: Run ids deleted per statement (well under every database's parameter limit).
PRUNE_CHUNK = 500


@dataclass
class PruneOutcome:
    """What a prune removed (or, with ``dry_run``, would remove)."""

    #: Pruned run ids, oldest first.
    runs: list[str] = field(default_factory=list)
    #: Runs past the limits kept because later runs depend on them: id → why.
    kept: dict[str, str] = field(default_factory=dict)
    findings: int = 0
    journal: int = 0
    events: int = 0
    #: SQLite file size before and after compaction (None elsewhere, or with ``dry_run``).
    bytes_before: int | None = None
    bytes_after: int | None = None
    dry_run: bool = False


class RetentionMixin(StoreBase):
    """Pruning the run history."""

    def prune(
        self,
        *,
        keep: timedelta | None = None,
        keep_runs: int | None = None,
        now: datetime,
        dry_run: bool = False,
        vacuum: bool = True,
    ) -> PruneOutcome:
        """Delete runs older than ``keep`` (before ``now``) or beyond the ``keep_runs`` newest,
        except those later runs depend on (see the module); compact a SQLite store."""
        outcome = PruneOutcome(dry_run=dry_run)
        if keep is None and keep_runs is None:
            return outcome
        cutoff = now - keep if keep is not None else None
        with self._errors("prune the run history"), self._session(write=not dry_run) as session:
            query = sa_select(
                col(Run.id),
                col(Run.kind),
                col(Run.started_at),
                col(Run.exit_code),
                col(Run.totals_json),
            ).order_by(col(Run.started_at).desc(), col(Run.id).desc())
            rows = [tuple(row) for row in session.execute(query).all()]
            protected = self._protected(session, rows)
            doomed = []
            for position, (run_id, _, started_at, _, _) in enumerate(rows):
                too_old = cutoff is not None and started_at < cutoff
                too_many = keep_runs is not None and position >= keep_runs
                if not (too_old or too_many):
                    continue
                if run_id in protected:
                    outcome.kept[run_id] = protected[run_id]
                else:
                    doomed.append(run_id)
            outcome.runs = doomed[::-1]
            outcome.findings = self._count(session, FindingRow, doomed)
            outcome.journal = self._count(session, JournalRow, doomed)
            settled = self._settled_events(cutoff, doomed)
            outcome.events = sum(
                int(session.exec(select(func.count()).select_from(EventRow).where(part)).one())
                for part in settled
            )
            if not dry_run:
                for part in settled:
                    session.exec(delete(EventRow).where(part))
                for model in (FindingRow, JournalRow, ChannelRun, PushRow):
                    for ids in chunks(doomed, PRUNE_CHUNK):
                        session.exec(delete(model).where(col(model.run_id).in_(ids)))
                for ids in chunks(doomed, PRUNE_CHUNK):
                    session.exec(delete(Run).where(col(Run.id).in_(ids)))
        if not dry_run and vacuum and (outcome.runs or outcome.events):
            self._compact(outcome)
        return outcome

    def _protected(
        self, session: Session, rows: Iterable[tuple[str, str, datetime, int | None, str]]
    ) -> dict[str, str]:
        """The runs kept whatever their age, with the reason."""
        kept: dict[str, str] = {}
        newest_kind: set[str] = set()
        baseline = False
        published: set[str] = set()
        publishes: list[str] = []
        for run_id, kind, _, exit_code, totals_json in rows:
            if kind not in newest_kind:
                newest_kind.add(kind)
                kept.setdefault(run_id, f"the newest {kind} run")
            if kind == KIND_CHECK and not baseline:
                totals = json.loads(totals_json)
                if totals.get("canonical_trusted") is not False and totals.get("canonical_records"):
                    baseline = True
                    kept.setdefault(run_id, "the canonical baseline of the truncation guard")
            if kind == KIND_PUBLISH and exit_code == 0:
                publishes.append(run_id)
        if publishes:
            for run_id, name in self._channels_of(session, publishes):
                if name not in published:
                    published.add(name)
                    kept.setdefault(run_id, f"the newest publish of {name}")
        for run_id in self._resumable(session):
            kept.setdefault(run_id, "a push with changes still to send (apply --resume)")
        return kept

    @staticmethod
    def _channels_of(session: Session, run_ids: list[str]) -> list[tuple[str, str]]:
        """(run id, channel) of ``run_ids`` (newest first, as given)."""
        order = {run_id: n for n, run_id in enumerate(run_ids)}
        found: list[tuple[str, str]] = []
        for ids in chunks(run_ids, PRUNE_CHUNK):
            found += session.exec(
                select(ChannelRun.run_id, ChannelRun.name).where(col(ChannelRun.run_id).in_(ids))
            ).all()
        return sorted(found, key=lambda pair: order[pair[0]])

    @staticmethod
    def _resumable(session: Session) -> list[str]:
        return list(
            session.exec(
                select(JournalRow.run_id)
                .where(col(JournalRow.status).in_([JOURNAL_PLANNED, JOURNAL_SENDING]))
                .distinct()
            ).all()
        )

    @staticmethod
    def _count(session: Session, model: type[FindingRow] | type[JournalRow], ids: list[str]) -> int:
        total = 0
        for part in chunks(ids, PRUNE_CHUNK):
            total += int(
                session.exec(
                    select(func.count()).select_from(model).where(col(model.run_id).in_(part))
                ).one()
            )
        return total

    @staticmethod
    def _settled_events(cutoff: datetime | None, doomed: list[str]) -> list[ColumnElement[bool]]:
        """Conditions, disjoint, on the events ``watch`` is done with that are older than
        ``cutoff`` or carried by a pruned run (never queued or claimed ones); the run ids go
        :data:`PRUNE_CHUNK` per condition, under every database's parameter limit."""
        handled = col(EventRow.status).not_in([EVENT_QUEUED, EVENT_CLAIMED])
        parts: list[ColumnElement[bool]] = []
        if cutoff is not None:
            parts.append(handled & (col(EventRow.received_at) < cutoff))
        for ids in chunks(doomed, PRUNE_CHUNK):
            carried = handled & col(EventRow.run_id).in_(ids)
            if cutoff is not None:  # the older ones are in the first condition
                carried = carried & (col(EventRow.received_at) >= cutoff)
            parts.append(carried)
        return parts

    def _compact(self, outcome: PruneOutcome) -> None:
        """``VACUUM`` a SQLite store and measure its file (with its WAL)."""
        url = self._engine.url
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            return
        path = Path(url.database)
        outcome.bytes_before = _size(path)
        with self._errors("compact the state store"):
            # On the driver's connection: VACUUM cannot run inside a transaction, and the
            # engine begins one for every use (see db._tune_sqlite).
            raw = self._engine.raw_connection()
            try:
                cursor = raw.cursor()
                try:
                    cursor.execute("VACUUM")
                    cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                finally:
                    cursor.close()
            finally:
                raw.close()
        outcome.bytes_after = _size(path)


def _size(path: Path) -> int:
    return sum(
        candidate.stat().st_size
        for candidate in (path, path.with_name(path.name + "-wal"))
        if candidate.exists()
    )
