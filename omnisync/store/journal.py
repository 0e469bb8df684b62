"""The push journal: every change recorded as planned before it is sent, then marked as it goes."""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, update
from sqlalchemy import select as sql_select
from sqlmodel import col, select

from omnisync import secrets
from omnisync.errors import StateError
from omnisync.models import Change, Op
from omnisync.store.history import (
    HistoryMixin,
)
from omnisync.store.rows import (
    HOST,
    chunks,
    json_value,
    live_status,
    mask_message,
)
from omnisync.store.schema import (
    FINDING_CHUNK,
    JOURNAL_TABLE,
    KIND_PUSH,
    JournalRow,
    PushRow,
    Run,
)

JOURNAL_PLANNED = "planned"
JOURNAL_SENDING = "sending"
JOURNAL_APPLIED = "applied"
JOURNAL_FAILED = "failed"
JOURNAL_STALE = "stale"
#: Statuses a resume still has to settle.
JOURNAL_OPEN = (JOURNAL_PLANNED, JOURNAL_SENDING)


@dataclass(slots=True)
class JournalEntry:
    """One journalled change and where it stands."""

    seq: int
    change: Change
    status: str
    error: str | None
    attempts: int
    updated_at: datetime


@dataclass(slots=True)
class PushRecord:
    """A recorded push run."""

    id: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    exit_code: int | None
    config_path: str
    undo_of: str | None
    forced: bool
    overrides: list[str]
    plan_json: str
    entries: list[JournalEntry]


def _journal_entry(row: JournalRow) -> JournalEntry:
    change = Change(
        channel=row.channel,
        sku=row.sku,
        op=Op(row.op),
        field=row.field,
        location=row.location,
        before=json.loads(row.before_json) if row.before_json is not None else None,
        after=json.loads(row.after_json) if row.after_json is not None else None,
        rule=row.rule,
        ids=json.loads(row.ids_json) if row.ids_json else {},
    )
    return JournalEntry(row.seq, change, row.status, row.error, row.attempts, row.updated_at)


class JournalMixin(HistoryMixin):
    """The write-ahead journal of push runs."""

    # -- push journal

    def start_push(
        self,
        *,
        started_at: datetime,
        config_path: str,
        config_fingerprint: str,
        changes: Sequence[Change],
        plan_json: str,
        forced: bool = False,
        overrides: Sequence[str] = (),
        undo_of: str | None = None,
    ) -> str:
        """Record a push run and every change it will send, all ``planned``, in one
        transaction — before anything is sent (the write-ahead half of the journal)."""
        now = datetime.now(UTC)
        with self._errors("record the push"), self._session(write=True) as session:
            run_id = self._unused_run_id(session, started_at)
            session.add(
                Run(
                    id=run_id,
                    kind=KIND_PUSH,
                    started_at=started_at,
                    evaluated_at=started_at,
                    config_path=secrets.mask(config_path),
                    config_fingerprint=config_fingerprint,
                    status="running",
                    totals_json=json.dumps(
                        {"changes": len(changes), "_pid": os.getpid(), "_host": HOST}
                    ),
                )
            )
            session.flush()
            session.add(
                PushRow(
                    run_id=run_id,
                    undo_of=undo_of,
                    forced=forced,
                    overrides_json=json.dumps([secrets.mask(o) for o in overrides]),
                    plan_json=plan_json,  # data: resume and undo replay it
                )
            )
            session.flush()
            rows = [
                {
                    "run_id": run_id,
                    "seq": seq,
                    "channel": c.channel,
                    "sku": c.sku,
                    "op": c.op.value,
                    "field": c.field,
                    "location": c.location,
                    "before_json": json_value(c.before),
                    "after_json": json_value(c.after),
                    "rule": mask_message(c.rule),
                    "ids_json": json.dumps(c.ids) if c.ids else None,
                    "status": JOURNAL_PLANNED,
                    "updated_at": now,
                }
                for seq, c in enumerate(changes)
            ]
            for chunk in chunks(rows, FINDING_CHUNK):
                session.execute(insert(JOURNAL_TABLE), chunk)
        return run_id

    def journal(self, run_id: str) -> list[JournalEntry]:
        """Every change of a push run, in plan order, with its current status."""
        with self._errors("read the journal"), self._session() as session:
            rows = session.exec(
                select(JournalRow)
                .where(col(JournalRow.run_id) == run_id)
                .order_by(col(JournalRow.seq))
            )
            return [_journal_entry(row) for row in rows]

    def mark(
        self, run_id: str, outcomes: Sequence[tuple[int, str, str | None]], *, attempt: bool = False
    ) -> None:
        """Set the status (and error) of journal entries ``(seq, status, error)`` in one
        transaction; ``attempt`` counts a send."""
        if not outcomes:
            return
        now = datetime.now(UTC)
        table = JOURNAL_TABLE
        values: dict[str, Any] = {
            "status": bindparam("new_status"),
            "error": bindparam("new_error"),
            "updated_at": now,
        }
        if attempt:
            values["attempts"] = table.c.attempts + 1
        # One statement, executed for many parameter sets: a batch of a thousand changes is
        # one round of the driver's executemany, not a thousand compiled UPDATEs.
        statement = (
            update(table)
            .where(table.c.run_id == run_id, table.c.seq == bindparam("entry_seq"))
            .values(**values)
        )
        rows = [
            {"entry_seq": seq, "new_status": status, "new_error": mask_message(error)}
            for seq, status, error in outcomes
        ]
        with self._errors("update the journal"), self._connection(write=True) as conn:
            conn.execute(statement, rows)

    def update_times(
        self, channel: str, skus: Collection[str], since: datetime, *, located: bool = False
    ) -> dict[str, list[datetime]]:
        """When pushes since ``since`` updated each of ``skus`` in ``channel``: per SKU the
        moment of each push run that sent it a change the channel applied (a change found
        already applied sent nothing and does not count), oldest first. Without ``located``
        only changes without a location count (what a channel's update limit counts)."""
        if not skus:
            return {}
        table = JOURNAL_TABLE
        found: dict[str, list[datetime]] = {}
        with self._errors("read the journal"), self._connection() as conn:
            for chunk in chunks(sorted(set(skus)), FINDING_CHUNK):
                query = (
                    sql_select(table.c.sku, table.c.run_id, func.max(table.c.updated_at))
                    .where(
                        table.c.channel == channel,
                        table.c.status == JOURNAL_APPLIED,
                        table.c.attempts > 0,
                        table.c.updated_at >= since,
                        table.c.sku.in_(chunk),
                    )
                    .group_by(table.c.sku, table.c.run_id)
                )
                if not located:
                    query = query.where(table.c.location.is_(None))
                for sku, _, moment in conn.execute(query):
                    if moment.tzinfo is None:  # SQLite keeps no offset: the store writes UTC
                        moment = moment.replace(tzinfo=UTC)
                    found.setdefault(sku, []).append(moment)
        return {sku: sorted(times) for sku, times in found.items()}

    def finish_push(
        self, run_id: str, *, status: str, exit_code: int, totals: dict[str, int]
    ) -> None:
        with self._errors("record the push outcome"), self._session(write=True) as session:
            run = session.get(Run, run_id)
            assert run is not None
            run.status = status
            run.exit_code = exit_code
            run.finished_at = datetime.now(UTC)
            run.totals_json = json.dumps(totals)
            session.add(run)

    def push_run(self, run_ref: str) -> PushRecord:
        """A recorded push run: its plan, overrides and journal."""
        with self._errors("read the push run"), self._session() as session:
            run = self._resolve(session, run_ref, kind=KIND_PUSH)
            if run.kind != KIND_PUSH:
                raise StateError(
                    f"run {run.id} is a {run.kind} run, not a push",
                    where=self.where,
                    hint="run `omnisync runs` to see push runs",
                )
            meta = session.get(PushRow, run.id)
            assert meta is not None
            record = PushRecord(
                id=run.id,
                started_at=run.started_at,
                finished_at=run.finished_at,
                status=live_status(run),
                exit_code=run.exit_code,
                config_path=run.config_path,
                undo_of=meta.undo_of,
                forced=meta.forced,
                overrides=json.loads(meta.overrides_json),
                plan_json=meta.plan_json,
                entries=[],
            )
        record.entries = self.journal(record.id)
        return record
