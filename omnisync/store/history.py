"""The run history: recording checks, listing and loading runs, the canonical baseline."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sql_select
from sqlmodel import Session, col, select

from omnisync import secrets
from omnisync.errors import StateError
from omnisync.models import CheckResult
from omnisync.store.db import (
    StoreBase,
)
from omnisync.store.rows import (
    FINDING_COLUMNS,
    FINDING_INSERT,
    ChannelPoint,
    ChannelSummary,
    CheckPoint,
    PushPoint,
    RunSummary,
    Trends,
    channel_point,
    channel_run_rows,
    chunks,
    finding_of,
    finding_rows,
    insert_many,
    live_status,
    new_run_id,
    report_of,
    run_row,
    summary_of,
)
from omnisync.store.schema import (
    FINDING_CHUNK,
    FINDING_TABLE,
    KIND_CHECK,
    KIND_PUBLISH,
    KIND_PUSH,
    ChannelRun,
    Run,
)


class HistoryMixin(StoreBase):
    """Recording checks and reading the run history."""

    # -- writing

    def record_check(self, result: CheckResult, exit_code: int) -> str:
        """Store ``result`` in one transaction and return its run id.

        A missing ``result.run_id`` is assigned (from ``started_at``) once the run is stored.
        """
        for moment in (result.started_at, result.evaluated_at, result.finished_at):
            if moment is not None and moment.utcoffset() is None:
                raise ValueError("CheckResult timestamps must be timezone-aware")
        with self._errors("record the run"), self._session(write=True) as session:
            run_id = result.run_id or self._unused_run_id(session, result.started_at)
            if result.run_id and session.get(Run, run_id) is not None:
                raise StateError(
                    f"run {run_id} is already recorded",
                    where=self.where,
                    hint="leave CheckResult.run_id unset to get a new id",
                )
            # Flushed one after the other: without relationship() the ORM does not order the
            # inserts by foreign key, and SQLite checks foreign keys at once.
            session.add(run_row(run_id, result, exit_code))
            session.flush()
            session.add_all(channel_run_rows(run_id, result.channels))
            session.flush()
            connection = session.connection()
            for chunk in chunks(finding_rows(run_id, result.channels), FINDING_CHUNK):
                insert_many(connection, FINDING_TABLE, FINDING_INSERT, chunk)
        result.run_id = run_id
        return run_id

    def record_publish(
        self,
        *,
        started_at: datetime,
        finished_at: datetime,
        config_path: str,
        config_fingerprint: str,
        exit_code: int,
        feeds: list[dict[str, Any]],
    ) -> str:
        """Record a ``publish`` run: per feed its channel, connector, items written, items
        skipped and whether the file changed (``feeds``: ``name``, ``connector``,
        ``canonical``, ``items``, ``skipped``, ``changed``, ``path``, ``format``)."""
        with self._errors("record the run"), self._session(write=True) as session:
            run_id = self._unused_run_id(session, started_at)
            totals = {
                "items": sum(f["items"] for f in feeds),
                "changed": sum(1 for f in feeds if f["changed"]),
                "feeds": {f["name"]: {k: v for k, v in f.items() if k != "name"} for f in feeds},
            }
            session.add(
                Run(
                    id=run_id,
                    kind=KIND_PUBLISH,
                    started_at=started_at,
                    finished_at=finished_at,
                    evaluated_at=started_at,
                    config_path=secrets.mask(config_path),
                    config_fingerprint=config_fingerprint,
                    exit_code=exit_code,
                    status="ok" if exit_code == 0 else "refused",
                    totals_json=json.dumps(totals),
                )
            )
            session.flush()
            session.add_all(
                ChannelRun(
                    run_id=run_id,
                    position=position,
                    name=feed["name"],
                    connector=feed["connector"],
                    canonical_count=feed["canonical"],
                    channel_count=feed["items"],
                    fields_json="[]",
                )
                for position, feed in enumerate(feeds)
            )
        return run_id

    def last_published(self, channel: str) -> int | None:
        """Items of the newest publish run that wrote ``channel``'s feed (None: never
        published): what the next publish's item guard measures against."""
        with self._errors("read the run history"), self._session() as session:
            row = session.exec(
                select(ChannelRun.channel_count)
                .join(Run, col(Run.id) == col(ChannelRun.run_id))
                .where(col(Run.kind) == KIND_PUBLISH, col(Run.exit_code) == 0)
                .where(col(ChannelRun.name) == channel)
                .order_by(col(Run.started_at).desc(), col(Run.id).desc())
                .limit(1)
            ).first()
        return None if row is None else int(row)

    def _unused_run_id(self, session: Session, started_at: datetime) -> str:
        # Two runs in the same second share the time part; retry the random part on collision.
        while True:
            candidate = new_run_id(started_at)
            if session.get(Run, candidate) is None:
                return candidate

    # -- reading

    def runs(self, limit: int | None = 20, *, since: datetime | None = None) -> list[RunSummary]:
        """Recorded runs, newest first; at most ``limit`` of them (``None``: all), and only
        those started at or after ``since`` when given."""
        with self._errors("read the run history"), self._session() as session:
            query = select(Run).order_by(col(Run.started_at).desc(), col(Run.id).desc())
            if since is not None:
                query = query.where(col(Run.started_at) >= since)
            if limit is not None:
                query = query.limit(max(limit, 0))
            runs = list(session.exec(query))
            channels: dict[str, list[ChannelSummary]] = {run.id: [] for run in runs}
            if runs:
                rows = session.exec(
                    select(ChannelRun)
                    .where(col(ChannelRun.run_id).in_(list(channels)))
                    .order_by(col(ChannelRun.run_id), col(ChannelRun.position))
                )
                for row in rows:
                    channels[row.run_id].append(summary_of(row))
            return [
                RunSummary(
                    id=run.id,
                    kind=run.kind,
                    started_at=run.started_at,
                    finished_at=run.finished_at,
                    status=live_status(run),
                    exit_code=run.exit_code,
                    config_path=run.config_path,
                    totals=json.loads(run.totals_json),
                    channels=channels[run.id],
                )
                for run in runs
            ]

    def trends(
        self,
        config_path: str,
        *,
        until: datetime | None = None,
        since: datetime | None = None,
        limit: int = 30,
    ) -> Trends:
        """The last ``limit`` checks and pushes of the config at ``config_path`` (as the store
        keeps it: masked) started by ``until`` (and at or after ``since``), oldest first: per
        check each channel's counts and findings per field or kind; per push the changes
        applied and failed. Bounded by ``limit``, whatever the history holds."""
        path = secrets.mask(config_path)

        def window(kind: str) -> list[Run]:
            query = select(Run).where(col(Run.kind) == kind, col(Run.config_path) == path)
            if until is not None:
                query = query.where(col(Run.started_at) <= until)
            if since is not None:
                query = query.where(col(Run.started_at) >= since)
            query = query.order_by(col(Run.started_at).desc(), col(Run.id).desc())
            return list(reversed(list(session.exec(query.limit(max(limit, 0))))))

        with self._errors("read the run history"), self._session() as session:
            checks, pushes = window(KIND_CHECK), window(KIND_PUSH)
            ids = [run.id for run in checks]
            counts: dict[tuple[str, int], dict[str, int]] = {}
            if ids:
                table = FINDING_TABLE
                grouped = session.execute(
                    sql_select(
                        table.c.run_id,
                        table.c.channel_position,
                        table.c.kind,
                        table.c.field,
                        func.count(),
                    )
                    .where(table.c.run_id.in_(ids))
                    .group_by(table.c.run_id, table.c.channel_position, table.c.kind, table.c.field)
                )
                for run_id, position, kind, field, count in grouped:
                    # A changed finding counts under its field, any other under its kind.
                    name = field if kind == "changed" and field else kind
                    slot = counts.setdefault((run_id, position), {})
                    slot[name] = slot.get(name, 0) + int(count)
            channels: dict[str, dict[str, ChannelPoint]] = {run_id: {} for run_id in ids}
            if ids:
                rows = session.exec(
                    select(ChannelRun)
                    .where(col(ChannelRun.run_id).in_(ids))
                    .order_by(col(ChannelRun.run_id), col(ChannelRun.position))
                )
                for row in rows:
                    findings = counts.get((row.run_id, row.position), {})
                    channels[row.run_id][row.name] = channel_point(row, findings)
            return Trends(
                checks=[CheckPoint(run.id, run.started_at, channels[run.id]) for run in checks],
                pushes=[
                    PushPoint(
                        run.id,
                        run.started_at,
                        int(totals.get("applied", 0)),
                        int(totals.get("failed", 0)),
                    )
                    for run in pushes
                    for totals in [json.loads(run.totals_json)]
                ],
            )

    def load(self, run_ref: str) -> CheckResult:
        """Rebuild the :class:`CheckResult` of a recorded check, for rendering it again.

        ``run_ref`` is a run id, a unique prefix of one, or ``last``/``latest``.
        """
        with self._errors("read the run"), self._session() as session:
            run = self._resolve(session, run_ref)
            if run.kind != KIND_CHECK:
                raise StateError(
                    f"run {run.id} is a {run.kind} run, not a check",
                    where=self.where,
                    hint="run `omnisync runs` to see run ids",
                )
            channel_rows = session.scalars(
                select(ChannelRun)
                .where(col(ChannelRun.run_id) == run.id)
                .order_by(col(ChannelRun.position))
            )
            channels = [report_of(row) for row in channel_rows]
            table = FINDING_TABLE
            columns = [table.c[name] for name in FINDING_COLUMNS]
            rows = session.execute(
                select(table.c.channel_position, *columns)
                .where(table.c.run_id == run.id)
                .order_by(table.c.position)
            )
            for row in rows:
                channels[row[0]].findings.append(finding_of(row[1:]))
            totals = json.loads(run.totals_json)
            return CheckResult(
                started_at=run.started_at,
                evaluated_at=run.evaluated_at,
                config_path=run.config_path,
                config_fingerprint=run.config_fingerprint,
                channels=channels,
                finished_at=run.finished_at,
                run_id=run.id,
                canonical_count=totals.get("canonical_records", 0),
                canonical_priced=totals.get("canonical_priced", 0),
                canonical_baseline=totals.get("canonical_baseline"),
                canonical_trusted=totals.get("canonical_trusted", True),
                from_snapshot=totals.get("from_snapshot"),
                snapshot=bool(totals.get("snapshot", False)),
            )

    def _resolve(self, session: Session, run_ref: str, kind: str | None = KIND_CHECK) -> Run:
        ref = run_ref.strip()
        if ref.lower() in ("last", "latest"):
            query = select(Run)
            if kind is not None:
                query = query.where(col(Run.kind) == kind)
            latest = session.scalars(
                query.order_by(col(Run.started_at).desc(), col(Run.id).desc()).limit(1)
            ).first()
            if latest is None:
                raise StateError(
                    "no runs recorded yet",
                    where=self.where,
                    hint="run `omnisync check` first",
                )
            return latest
        exact = session.get(Run, ref) if ref else None
        if exact is not None:
            return exact
        matches: list[str] = []
        if ref:
            matches = list(
                session.scalars(
                    select(Run.id)
                    .where(col(Run.id).startswith(ref, autoescape=True))
                    .order_by(col(Run.id))
                    .limit(11)
                )
            )
        if not matches:
            raise StateError(
                f"no run with id {ref!r}",
                where=self.where,
                hint="run `omnisync runs` to see run ids",
            )
        if len(matches) > 1:
            shown = ", ".join(matches[:10]) + (", ..." if len(matches) > 10 else "")
            raise StateError(
                f"run id prefix {ref!r} matches several runs: {shown}",
                where=self.where,
                hint="give more characters of the run id",
            )
        found = session.get(Run, matches[0])
        assert found is not None
        return found

    def run_kind(self, run_ref: str) -> tuple[str, str]:
        """``(run id, kind)`` of any recorded run; ``last`` is the newest of any kind."""
        with self._errors("read the run"), self._session() as session:
            run = self._resolve(session, run_ref, kind=None)
            return run.id, run.kind

    def canonical_baseline(self, exclude: str | None = None) -> int | None:
        """Canonical records of the newest trusted check (other than ``exclude``), if any.

        A check is trusted unless its canonical was cut below ``canonical.guard.min_ratio``
        of its own baseline; a push forced past that refusal trusts it (``trust_canonical``).
        """
        with self._errors("read the run history"), self._session() as session:
            rows = session.exec(
                select(Run.id, Run.totals_json)
                .where(col(Run.kind) == KIND_CHECK)
                .order_by(col(Run.started_at).desc(), col(Run.id).desc())
                .limit(200)
            )
            for run_id, totals_json in rows:
                totals = json.loads(totals_json)
                if run_id == exclude or totals.get("canonical_trusted") is False:
                    continue
                if count := totals.get("canonical_records"):
                    return int(count)
        return None

    def trust_canonical(self, run_id: str) -> None:
        """Make a check the canonical baseline: its small catalogue was pushed on purpose."""
        with self._errors("record the run"), self._session(write=True) as session:
            run = session.get(Run, run_id)
            if run is not None:
                totals = json.loads(run.totals_json)
                totals["canonical_trusted"] = True
                run.totals_json = json.dumps(totals)
                session.add(run)
