"""The run history: every check (and, later, every push journal) recorded in a database.

The store is a SQLite file by default (``settings.state``, relative to the config file) or any
SQLAlchemy URL, so that several cron hosts can share one PostgreSQL database. Tables are
prefixed ``omnisync_`` so the store can live inside a database that holds other things.

SQLite runs in WAL mode with a busy timeout, and every write transaction starts with
``BEGIN IMMEDIATE``: a cron run writing a large result and a person typing ``omnisync runs``
then wait for each other instead of failing with "database is locked".

The schema carries a version in ``omnisync_meta``. A fresh store is created at
:data:`SCHEMA_VERSION`; an older one is brought forward by :data:`MIGRATIONS`, all inside one
transaction; a newer one is refused, because an old omnisync must not write to a schema it
does not understand.

Messages that go in (errors, details, rules, guardrail overrides) pass through
:func:`omnisync.secrets.mask`; data never does: plans, journalled before/after values, SKUs,
channel names and finding values are stored as they are, because ``apply --resume`` and
``undo`` write them back to channels and later runs compare with them. Renderers mask on the
way out. Every timestamp is stored and returned as timezone-aware UTC.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets as _random
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from sqlalchemy import (
    URL,
    Connection,
    DateTime,
    Dialect,
    Engine,
    Index,
    Table,
    Text,
    TypeDecorator,
    create_engine,
    event,
    insert,
    inspect,
    make_url,
    text,
    update,
)
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool
from sqlmodel import Field, Session, SQLModel, col, select

from omnisync import secrets
from omnisync.errors import LockedError, StateError
from omnisync.models import Change, ChannelReport, CheckResult, Finding, Kind, Op

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "ChannelRun",
    "ChannelSummary",
    "FindingRow",
    "Meta",
    "Migration",
    "Run",
    "RunSummary",
    "Store",
    "new_run_id",
]

#: The schema this omnisync writes. Bump it together with a new entry in :data:`MIGRATIONS`.
SCHEMA_VERSION = 4

#: How long a SQLite connection waits for another process's write lock before giving up.
BUSY_TIMEOUT_MS = 30_000

#: Findings per ``executemany`` batch: large enough to be fast, small enough to bound memory.
FINDING_CHUNK = 5_000

HINT = "set settings.state in the config or --state to a writable SQLite path or database URL"

# Run.kind values.
KIND_CHECK = "check"
KIND_PUSH = "push"  # apply, sync and undo: a journal of changes

# Run.status values for checks: what the run found, independent of `--fail-on`
# (exit_code records how the command ended).
STATUS_OK = "ok"
STATUS_MISMATCH = "mismatch"
STATUS_ERROR = "error"  # at least one channel could not be read

_SCHEMA_KEY = "schema_version"
# Marks a connection whose transaction will write; SQLite then takes the write lock up front.
_WRITE = "omnisync_write"
# Serialises schema creation/migration between hosts sharing one PostgreSQL database.
_PG_SETUP_LOCK = 0x6F6D6E69  # "omni"


# ---------------------------------------------------------------- schema


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always returned timezone-aware.

    SQLite (and MySQL) keep no offset, so values are converted to naive UTC on the way in and
    get ``tzinfo=UTC`` back on the way out. PostgreSQL keeps ``timestamptz`` natively.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            # A naive time is ambiguous (local? UTC?); refuse it rather than guess.
            raise ValueError(f"naive datetime {value.isoformat()} cannot be stored")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Meta(SQLModel, table=True):
    """Key/value facts about the store itself, starting with ``schema_version``."""

    __tablename__ = "omnisync_meta"

    key: str = Field(primary_key=True)
    value: str = Field(sa_type=Text)


class Run(SQLModel, table=True):
    """One recorded command run."""

    __tablename__ = "omnisync_run"

    id: str = Field(primary_key=True)
    kind: str = Field(default=KIND_CHECK, index=True)
    started_at: datetime = Field(sa_type=UTCDateTime, index=True)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    evaluated_at: datetime = Field(sa_type=UTCDateTime)
    config_path: str = Field(sa_type=Text)
    config_fingerprint: str
    exit_code: int | None = None
    status: str
    #: Run-wide counts (``findings``, ``missing``, ``channels``, ...) as a JSON object.
    totals_json: str = Field(sa_type=Text)


class ChannelRun(SQLModel, table=True):
    """One channel's outcome within a run; the counts let ``runs`` list history cheaply."""

    __tablename__ = "omnisync_channel_run"

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="omnisync_run.id", ondelete="CASCADE", index=True)
    #: The channel's place in the run, so reports render channels in their original order.
    position: int
    name: str
    connector: str
    canonical_count: int = 0
    channel_count: int = 0
    #: Compared fields as a JSON list, in order.
    fields_json: str = Field(sa_type=Text)
    #: What was not checked and why, as a JSON list (ChannelReport.notes); schema 4.
    notes_json: str | None = Field(default=None, sa_type=Text)
    error: str | None = Field(default=None, sa_type=Text)
    error_code: int | None = None
    finding_count: int = 0
    missing_count: int = 0
    extra_count: int = 0
    #: SKUs with at least one changed field (as :meth:`ChannelReport.count` counts them).
    changed_count: int = 0
    duplicate_count: int = 0


class FindingRow(SQLModel, table=True):
    """One finding. Written in bulk; ``position`` keeps the original order within the run."""

    __tablename__ = "omnisync_finding"
    __table_args__ = (
        # Serves "all findings of run X in order" (and any lookup by run_id alone).
        Index("ix_omnisync_finding_run_position", "run_id", "position", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="omnisync_run.id", ondelete="CASCADE")
    #: Order of the finding across the whole run.
    position: int
    #: Position of the channel report the finding belongs to (see ChannelRun.position).
    channel_position: int
    channel: str
    kind: str
    sku: str = Field(index=True)
    field: str | None = None
    location: str | None = None
    canonical: str | None = Field(default=None, sa_type=Text)
    expected: str | None = Field(default=None, sa_type=Text)
    actual: str | None = Field(default=None, sa_type=Text)
    rule: str | None = None
    detail: str | None = Field(default=None, sa_type=Text)
    #: The channel's ids as a JSON object; NULL when there are none.
    ids_json: str | None = Field(default=None, sa_type=Text)
    #: The channel's current and the expected value as JSON (omnisync.sdk.values); schema 2.
    before_json: str | None = Field(default=None, sa_type=Text)
    after_json: str | None = Field(default=None, sa_type=Text)
    #: A data-quality finding's side (``canonical`` or the channel) and row; schema 3.
    source: str | None = None
    origin: str | None = Field(default=None, sa_type=Text)


class PushRow(SQLModel, table=True):
    """What a push run was asked to do: the plan, and any guardrail overrides."""

    __tablename__ = "omnisync_push"

    run_id: str = Field(primary_key=True, foreign_key="omnisync_run.id", ondelete="CASCADE")
    #: The run this one undoes, for `omnisync undo`.
    undo_of: str | None = None
    forced: bool = False
    #: Guardrail refusals overridden with --force, as a JSON list of messages.
    overrides_json: str = Field(default="[]", sa_type=Text)
    #: The plan as executed (omnisync.plan JSON), so a resume needs nothing else.
    plan_json: str = Field(sa_type=Text)


class JournalRow(SQLModel, table=True):
    """One change of a push, written before it is sent and updated with its outcome."""

    __tablename__ = "omnisync_journal"
    __table_args__ = (Index("ix_omnisync_journal_run_seq", "run_id", "seq", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="omnisync_run.id", ondelete="CASCADE")
    seq: int
    channel: str
    sku: str = Field(index=True)
    op: str
    field: str | None = None
    location: str | None = None
    before_json: str | None = Field(default=None, sa_type=Text)
    after_json: str | None = Field(default=None, sa_type=Text)
    rule: str | None = Field(default=None, sa_type=Text)
    ids_json: str | None = Field(default=None, sa_type=Text)
    #: planned → sending → applied | failed | stale
    status: str = "planned"
    error: str | None = Field(default=None, sa_type=Text)
    attempts: int = 0
    updated_at: datetime = Field(sa_type=UTCDateTime)


class MarkRow(SQLModel, table=True):
    """A source's high-water mark for incremental pulls (e.g. the newest `updated_at` seen)."""

    __tablename__ = "omnisync_mark"

    source: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    value: str = Field(sa_type=Text)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class CacheRow(SQLModel, table=True):
    """The last known state of a channel's record, so an incremental pull (only what changed
    since the mark) still yields the whole catalogue to the diff."""

    __tablename__ = "omnisync_cache"

    source: str = Field(primary_key=True)
    sku: str = Field(primary_key=True)
    #: A record as omnisync.sdk.values.record_to_json.
    record_json: str = Field(sa_type=Text)
    updated_at: datetime = Field(sa_type=UTCDateTime)


# Only our tables: SQLModel.metadata is shared with anything else that defines models.
_T = TypeVar("_T")

_TABLES = [
    SQLModel.metadata.tables[m.__tablename__]
    for m in (Meta, Run, ChannelRun, FindingRow, PushRow, JournalRow, MarkRow, CacheRow)
]
_FINDING_TABLE = SQLModel.metadata.tables[FindingRow.__tablename__]
_JOURNAL_TABLE = SQLModel.metadata.tables[JournalRow.__tablename__]


@dataclass(frozen=True)
class Migration:
    """Moves a store from schema ``version`` to ``version + 1``.

    ``apply`` runs inside the setup transaction, after earlier steps; it must not commit.
    """

    version: int
    apply: Callable[[Connection], None]


def _to_v2(conn: Connection) -> None:
    """Schema 2: findings keep their JSON values; push runs get a plan and a journal."""
    for column in ("before_json", "after_json"):
        conn.execute(text(f"ALTER TABLE omnisync_finding ADD COLUMN {column} TEXT"))
    tables = [
        SQLModel.metadata.tables[m.__tablename__] for m in (PushRow, JournalRow, MarkRow, CacheRow)
    ]
    SQLModel.metadata.create_all(conn, tables=tables)


def _to_v3(conn: Connection) -> None:
    """Schema 3: data-quality findings name their side and row."""
    for column in ("source", "origin"):
        conn.execute(text(f"ALTER TABLE omnisync_finding ADD COLUMN {column} TEXT"))


def _to_v4(conn: Connection) -> None:
    """Schema 4: channel runs keep their notes (what was not checked and why)."""
    conn.execute(text("ALTER TABLE omnisync_channel_run ADD COLUMN notes_json TEXT"))


#: Ordered schema upgrades.
MIGRATIONS: list[Migration] = [Migration(1, _to_v2), Migration(2, _to_v3), Migration(3, _to_v4)]


# ---------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class ChannelSummary:
    """One channel's counts in a recorded run."""

    name: str
    connector: str
    canonical_count: int
    channel_count: int
    findings: int
    missing: int
    extra: int
    changed: int
    duplicate: int
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RunSummary:
    """A line of ``omnisync runs``: what ran when, how it ended, and what it found."""

    id: str
    kind: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    exit_code: int | None
    config_path: str
    #: Run-wide counts: ``channels``, ``failed_channels``, ``findings``, ``missing``, ``extra``,
    #: ``changed``, ``duplicate``.
    totals: dict[str, int]
    channels: list[ChannelSummary]


def new_run_id(now: datetime | None = None) -> str:
    """A run id that sorts by time and reads like one: ``20241129-071500-3fa2``.

    Aware times are converted to UTC first so that ids from hosts in different time zones
    still sort correctly.
    """
    now = datetime.now(UTC) if now is None else now
    if now.tzinfo is not None:
        now = now.astimezone(UTC)
    return f"{now:%Y%m%d-%H%M%S}-{_random.token_hex(2)}"


# ---------------------------------------------------------------- the store


class Store:
    """The run history. Open with :meth:`open`; use as a context manager or call :meth:`close`."""

    def __init__(self, engine: Engine, where: str) -> None:
        self._engine = engine
        #: The target as shown to users: resolved path, or URL with the password masked.
        self.where = where

    # -- opening

    @classmethod
    def open(cls, target: str, *, base_dir: Path) -> Store:
        """Open (creating or migrating as needed) the store at ``target``.

        ``target`` is a filesystem path, resolved against ``base_dir`` when relative (missing
        folders are created), or a SQLAlchemy URL (anything containing ``://``). Raises
        :class:`StateError` when the target cannot be used or holds a newer schema.
        """
        url, where = _resolve_target(target, base_dir)
        engine = _create_engine(url, where)
        store = cls(engine, where)
        try:
            store._setup()
        except BaseException:
            engine.dispose()
            raise
        return store

    def close(self) -> None:
        """Release all connections (SQLite checkpoints its WAL when the last one closes)."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.where!r})"

    def _setup(self) -> None:
        with self._errors("open the state store"):
            # Read first: the usual case (schema current) then never waits for a writer, and
            # `omnisync runs` works for someone who may only read the store.
            with self._connection() as conn:
                found = self._check_version(conn)
            if found == SCHEMA_VERSION:
                return
            with self._connection(write=True) as conn:
                if conn.dialect.name == "postgresql":
                    # Several hosts may open a fresh or old store at the same moment.
                    conn.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_SETUP_LOCK}
                    )
                # Again under the lock: another process may have created or migrated it.
                found = self._check_version(conn)
                if found is None:
                    SQLModel.metadata.create_all(conn, tables=_TABLES)
                    conn.execute(insert(Meta), {"key": _SCHEMA_KEY, "value": str(SCHEMA_VERSION)})
                elif found < SCHEMA_VERSION:
                    _migrate(conn, found, self.where)

    def _check_version(self, conn: Connection) -> int | None:
        found = _read_version(conn, self.where)
        if found is not None and found > SCHEMA_VERSION:
            raise StateError(
                f"state store schema version {found} is newer than this omnisync supports "
                f"({SCHEMA_VERSION}); upgrade omnisync",
                where=self.where,
                hint="or point settings.state / --state at another store",
            )
        return found

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
            session.add(_run_row(run_id, result, exit_code))
            session.flush()
            session.add_all(_channel_rows(run_id, result.channels))
            session.flush()
            connection = session.connection()
            for chunk in _chunks(_finding_rows(run_id, result.channels), FINDING_CHUNK):
                _insert_many(connection, _FINDING_TABLE, _FINDING_INSERT, chunk)
        result.run_id = run_id
        return run_id

    def _unused_run_id(self, session: Session, started_at: datetime) -> str:
        # Two runs in the same second share the time part; retry the random part on collision.
        while True:
            candidate = new_run_id(started_at)
            if session.get(Run, candidate) is None:
                return candidate

    # -- reading

    def runs(self, limit: int | None = 20) -> list[RunSummary]:
        """Recorded runs, newest first; at most ``limit`` of them (``None``: all)."""
        with self._errors("read the run history"), self._session() as session:
            query = select(Run).order_by(col(Run.started_at).desc(), col(Run.id).desc())
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
                    channels[row.run_id].append(_channel_summary(row))
            return [
                RunSummary(
                    id=run.id,
                    kind=run.kind,
                    started_at=run.started_at,
                    finished_at=run.finished_at,
                    status=_live_status(run),
                    exit_code=run.exit_code,
                    config_path=run.config_path,
                    totals=json.loads(run.totals_json),
                    channels=channels[run.id],
                )
                for run in runs
            ]

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
            channels = [_channel_report(row) for row in channel_rows]
            table = _FINDING_TABLE
            columns = [table.c[name] for name in _FINDING_COLUMNS]
            rows = session.execute(
                select(table.c.channel_position, *columns)
                .where(table.c.run_id == run.id)
                .order_by(table.c.position)
            )
            for row in rows:
                channels[row[0]].findings.append(_finding(row[1:]))
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

    # -- incremental pulls

    def pull_mark(self, source: str, key: str) -> str | None:
        """A source's high-water mark (None before its first full pull)."""
        with self._errors("read the pull mark"), self._session() as session:
            row = session.get(MarkRow, (source, key))
            return row.value if row else None

    def set_pull_mark(self, source: str, key: str, value: str) -> None:
        with self._errors("record the pull mark"), self._session(write=True) as session:
            row = session.get(MarkRow, (source, key))
            now = datetime.now(UTC)
            if row is None:
                session.add(MarkRow(source=source, key=key, value=value, updated_at=now))
            else:
                row.value, row.updated_at = value, now
                session.add(row)

    def cache_replace(self, source: str, records: Iterable[dict[str, Any]]) -> int:
        """Replace a source's cached catalogue (after a full pull: deletions disappear)."""
        table = SQLModel.metadata.tables[CacheRow.__tablename__]
        now = datetime.now(UTC)
        count = 0
        with self._errors("cache the catalogue"), self._connection(write=True) as conn:
            conn.execute(table.delete().where(table.c.source == source))
            rows = (
                {
                    "source": source,
                    "sku": r["sku"],
                    "record_json": json.dumps(r, ensure_ascii=False),
                    "updated_at": now,
                }
                for r in records
            )
            for chunk in _chunks(rows, FINDING_CHUNK):
                conn.execute(insert(table), chunk)
                count += len(chunk)
        return count

    def cache_merge(
        self, source: str, records: Iterable[dict[str, Any]], deleted: Iterable[str] = ()
    ) -> None:
        """Upsert changed records (and drop deleted SKUs) in a source's cached catalogue."""
        table = SQLModel.metadata.tables[CacheRow.__tablename__]
        now = datetime.now(UTC)
        with self._errors("update the catalogue cache"), self._connection(write=True) as conn:
            for sku in deleted:
                conn.execute(table.delete().where(table.c.source == source, table.c.sku == sku))
            for chunk in _chunks(records, FINDING_CHUNK):
                # A SKU twice in one pull: the later record wins, as it would in the channel.
                chunk = list({r["sku"]: r for r in chunk}.values())
                skus = [r["sku"] for r in chunk]
                conn.execute(table.delete().where(table.c.source == source, table.c.sku.in_(skus)))
                conn.execute(
                    insert(table),
                    [
                        {
                            "source": source,
                            "sku": r["sku"],
                            "record_json": json.dumps(r, ensure_ascii=False),
                            "updated_at": now,
                        }
                        for r in chunk
                    ],
                )

    def cache(self, source: str) -> Iterator[dict[str, Any]]:
        """A source's cached catalogue, record by record (as record_to_json dicts)."""
        table = SQLModel.metadata.tables[CacheRow.__tablename__]
        with self._errors("read the catalogue cache"), self._connection() as conn:
            result = conn.execution_options(yield_per=FINDING_CHUNK).execute(
                select(table.c.record_json).where(table.c.source == source).order_by(table.c.sku)
            )
            for (text_,) in result:
                yield json.loads(text_)

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
                        {"changes": len(changes), "_pid": os.getpid(), "_host": _HOST}
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
                    "before_json": _json_value(c.before),
                    "after_json": _json_value(c.after),
                    "rule": _mask(c.rule),
                    "ids_json": json.dumps(c.ids) if c.ids else None,
                    "status": JOURNAL_PLANNED,
                    "updated_at": now,
                }
                for seq, c in enumerate(changes)
            ]
            for chunk in _chunks(rows, FINDING_CHUNK):
                session.execute(insert(_JOURNAL_TABLE), chunk)
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
        table = _JOURNAL_TABLE
        with self._errors("update the journal"), self._connection(write=True) as conn:
            for seq, status, error in outcomes:
                values: dict[str, Any] = {
                    "status": status,
                    "error": _mask(error),
                    "updated_at": now,
                }
                if attempt:
                    values["attempts"] = table.c.attempts + 1
                conn.execute(
                    update(table)
                    .where(table.c.run_id == run_id, table.c.seq == seq)
                    .values(**values)
                )

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
                status=_live_status(run),
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

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold the named run lock for the block, or raise :class:`LockedError` at once.

        SQLite stores: an OS file lock beside the database (released by the OS if the
        process dies). PostgreSQL: a session advisory lock, so hosts sharing a store exclude
        each other. Other servers: MySQL/MariaDB ``GET_LOCK``.
        """
        url = self._engine.url
        if url.get_backend_name() == "sqlite":
            database = url.database or ""
            if not database or database == ":memory:":
                yield
                return
            with _file_lock(Path(f"{database}.{name}.lock"), name):
                yield
            return
        key = int.from_bytes(hashlib.sha256(f"omnisync:{name}".encode()).digest()[:7], "big")
        with self._errors("take the run lock"), self._engine.connect() as conn:
            if url.get_backend_name() == "postgresql":
                got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
                release = text("SELECT pg_advisory_unlock(:k)")
                params: dict[str, Any] = {"k": key}
            else:
                got = conn.execute(
                    text("SELECT GET_LOCK(:n, 0)"), {"n": f"omnisync:{name}"}
                ).scalar()
                release = text("SELECT RELEASE_LOCK(:n)")
                params = {"n": f"omnisync:{name}"}
            conn.commit()
            if not got:
                raise LockedError(
                    f"another omnisync run holds the {name!r} lock on {self.where}",
                    hint="wait for it to finish; two pushes must never run at once",
                )
            try:
                yield
            finally:
                conn.execute(release, params)
                conn.commit()

    # -- plumbing

    @contextmanager
    def _connection(self, *, write: bool = False) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            if write:
                conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    @contextmanager
    def _session(self, *, write: bool = False) -> Iterator[Session]:
        with Session(self._engine, expire_on_commit=False) as session, session.begin():
            if write:
                # Must be the first use of the session: it opens the connection and BEGINs.
                session.connection(execution_options={_WRITE: True})
            yield session

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Turn database failures into a :class:`StateError` that says what to do."""
        try:
            yield
        except SQLAlchemyError as exc:
            raise _state_error(action, exc, self.where, self._engine.url) from exc


# ---------------------------------------------------------------- opening


def _resolve_target(target: str, base_dir: Path) -> tuple[URL, str]:
    """The URL to connect to, and how to name the target in messages."""
    if not target.strip():
        raise StateError("the state store location is empty", hint=HINT)
    if "://" in target:
        try:
            url = make_url(target)
        except (ArgumentError, ValueError) as exc:
            raise StateError(
                f"not a valid database URL ({exc})", where=secrets.mask(target), hint=HINT
            ) from None
        database = url.database or ""
        if url.get_backend_name() != "sqlite":
            return url, secrets.mask(url.render_as_string(hide_password=True))
        if _is_memory(url) or database.startswith("file:"):
            return url, secrets.mask(target)
        path = Path(database).expanduser()
        if not path.is_absolute():
            # Like a plain path: relative to the config file, not to the current directory.
            path = base_dir / path
        where = secrets.mask(str(path))
        _prepare_file(path, where)
        return url.set(database=str(path)), where
    path = Path(target).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    where = secrets.mask(str(path))
    _prepare_file(path, where)
    return URL.create("sqlite+pysqlite", database=str(path)), where


def _is_memory(url: URL) -> bool:
    return (url.database or "") in ("", ":memory:")


def _prepare_file(path: Path, where: str) -> None:
    if path.is_dir():
        raise StateError(
            "the state store location is a directory, not a file", where=where, hint=HINT
        )
    existing = next(p for p in path.parents if p.exists())
    if not existing.is_dir():
        raise StateError(
            f"cannot create the state store: {existing} is a file, not a folder",
            where=where,
            hint=HINT,
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateError(
            f"cannot create the folder {path.parent}: {exc.strerror or exc}",
            where=where,
            hint=HINT,
        ) from None


def _create_engine(url: URL, where: str) -> Engine:
    try:
        if url.get_backend_name() == "sqlite":
            # An in-memory database lives and dies with its connection: keep exactly one.
            pool: dict[str, Any] = {"poolclass": StaticPool} if _is_memory(url) else {}
            engine = create_engine(url, **pool)
            _tune_sqlite(engine)
            return engine
        return create_engine(url, pool_pre_ping=True)
    except NoSuchModuleError:
        raise StateError(
            f"unknown database type {url.drivername!r}",
            where=where,
            hint="use a file path, sqlite:///path or postgresql://user@host/db",
        ) from None
    except ImportError as exc:
        module = exc.name or str(exc)
        raise StateError(
            f"the database driver {module!r} is not installed",
            where=where,
            hint=f"install it (pip install {module}) or use a SQLite path",
        ) from None
    except ArgumentError as exc:
        raise StateError(f"not a usable database URL ({exc})", where=where, hint=HINT) from None


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take over BEGIN from the sqlite3 module (which never begins for SELECT or DDL), so
        # that setup and every record are real transactions; see _on_begin.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            # The timeout first: switching to WAL itself may have to wait for a lock.
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # Readers never block the writer and vice versa.
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A deferred transaction that reads and then writes fails at once with SQLITE_BUSY if
        # another process wrote in between; IMMEDIATE waits for the lock (busy_timeout).
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _read_version(conn: Connection, where: str) -> int | None:
    if not inspect(conn).has_table(Meta.__tablename__):
        return None
    query = select(Meta.value).where(col(Meta.key) == _SCHEMA_KEY)
    value = conn.execute(query).scalar_one_or_none()
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise StateError(
            f"the state store has an unreadable schema version {value!r}",
            where=where,
            hint=HINT,
        ) from None


def _migrate(conn: Connection, found: int, where: str) -> None:
    steps = {m.version: m for m in MIGRATIONS}
    for version in range(found, SCHEMA_VERSION):
        step = steps.get(version)
        if step is None:
            raise StateError(
                f"no migration from state store schema version {version}",
                where=where,
                hint="upgrade omnisync, or point settings.state / --state at a new store",
            )
        step.apply(conn)
    conn.execute(update(Meta).where(col(Meta.key) == _SCHEMA_KEY).values(value=str(SCHEMA_VERSION)))


def _state_error(action: str, exc: SQLAlchemyError, where: str, url: URL) -> StateError:
    reason = str(exc.orig) if isinstance(exc, DBAPIError) else str(exc).splitlines()[0]
    if url.password:
        reason = reason.replace(str(url.password), secrets.MASK)
    # One line: driver messages (psycopg's) may span several.
    reason = " ".join(secrets.mask(reason).split())
    lowered = reason.lower()
    if "locked" in lowered or "busy" in lowered:
        hint = "another omnisync run is writing to it; try again when it has finished"
    elif "unable to open" in lowered:
        hint = "check that the folder exists and is writable; " + HINT
    elif "not a database" in lowered:
        hint = "the file is not an omnisync state store; " + HINT
    else:
        hint = HINT
    return StateError(f"cannot {action}: {reason}", where=where, hint=hint)


# ---------------------------------------------------------------- rows <-> models


def _mask(value: str | None) -> str | None:
    return secrets.mask(value) if value else value


def _totals(channels: Sequence[ChannelReport]) -> dict[str, int]:
    totals = {
        "channels": len(channels),
        "failed_channels": sum(1 for c in channels if c.error is not None),
        "findings": sum(len(c.findings) for c in channels),
    }
    for kind in Kind:
        totals[kind.value] = sum(c.count(kind) for c in channels)
    return totals


def _status(channels: Sequence[ChannelReport]) -> str:
    if any(c.error is not None for c in channels):
        return STATUS_ERROR
    if any(c.findings for c in channels):
        return STATUS_MISMATCH
    return STATUS_OK


_HOST = socket.gethostname()


def _live_status(run: Run) -> str:
    """A push still marked ``running`` whose process on this host is gone was killed
    (SIGKILL, power loss) before it could record its end: it is ``interrupted``, to be
    finished with ``apply --resume``. A push from another host is taken at its word."""
    if run.kind != KIND_PUSH or run.status != "running":
        return run.status
    totals = json.loads(run.totals_json)
    pid = totals.get("_pid")
    if totals.get("_host") != _HOST or not isinstance(pid, int):
        return run.status
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "interrupted"
    except PermissionError:  # alive, another user's
        return run.status
    return run.status


def _run_row(run_id: str, result: CheckResult, exit_code: int) -> Run:
    return Run(
        id=run_id,
        kind=KIND_CHECK,
        started_at=result.started_at,
        finished_at=result.finished_at,
        evaluated_at=result.evaluated_at,
        config_path=secrets.mask(result.config_path),
        config_fingerprint=result.config_fingerprint,
        exit_code=exit_code,
        status=_status(result.channels),
        totals_json=json.dumps(
            {
                **_totals(result.channels),
                "canonical_records": result.canonical_count,
                "canonical_priced": result.canonical_priced,
                "canonical_baseline": result.canonical_baseline,
                "canonical_trusted": result.canonical_trusted,
            }
        ),
    )


def _channel_rows(run_id: str, channels: Sequence[ChannelReport]) -> list[ChannelRun]:
    return [
        ChannelRun(
            run_id=run_id,
            position=position,
            name=report.name,
            connector=report.connector,
            canonical_count=report.canonical_count,
            channel_count=report.channel_count,
            fields_json=json.dumps(list(report.fields)),
            notes_json=json.dumps(list(report.notes)) if report.notes else None,
            error=_mask(report.error),
            error_code=report.error_code,
            finding_count=len(report.findings),
            missing_count=report.count(Kind.MISSING),
            extra_count=report.count(Kind.EXTRA),
            changed_count=report.count(Kind.CHANGED),
            duplicate_count=report.count(Kind.DUPLICATE),
        )
        for position, report in enumerate(channels)
    ]


#: The finding columns of FindingRow, in its order: read back by load(), written by record_check().
_FINDING_COLUMNS = (
    "channel",
    "kind",
    "sku",
    "field",
    "location",
    "canonical",
    "expected",
    "actual",
    "rule",
    "detail",
    "ids_json",
    "before_json",
    "after_json",
    "source",
    "origin",
)
#: The columns :func:`_finding_rows` fills, in its order.
_FINDING_INSERT = ("run_id", "position", "channel_position", *_FINDING_COLUMNS)


def _finding_rows(run_id: str, channels: Sequence[ChannelReport]) -> Iterator[tuple[Any, ...]]:
    position = 0
    for channel_position, report in enumerate(channels):
        for f in report.findings:
            ids = f.ids or None
            yield (
                run_id,
                position,
                channel_position,
                f.channel,
                Kind(f.kind).value,
                f.sku,
                f.field,
                f.location,
                f.canonical,
                f.expected,
                f.actual,
                _mask(f.rule),
                _mask(f.detail),
                json.dumps(ids) if ids else None,
                _json_value(f.before),
                _json_value(f.after),
                _mask(f.source),
                _mask(f.origin),
            )
            position += 1


#: Parameter markers of the driver parameter styles :func:`_insert_many` writes positionally.
_MARKERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def _insert_many(
    connection: Connection, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """INSERT ``rows`` (tuples of the values of ``columns``) into ``table``.

    Columns whose type converts no value for this driver (text and integers do not) go
    straight to the driver's executemany: SQLAlchemy's per-row parameter processing cost
    ~12 µs a row (40,000 findings: 0.5 s of a 1M-SKU check's history). Other columns, or a
    driver with named parameters, take ``insert()``."""
    if not rows:
        return
    dialect = connection.dialect
    marker = _MARKERS.get(dialect.paramstyle)
    plain = all(
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) is None for name in columns
    )
    if marker is None or not plain:
        connection.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    quote = dialect.identifier_preparer
    sql = (
        f"INSERT INTO {quote.format_table(table)} "
        f"({', '.join(quote.quote(name) for name in columns)}) "
        f"VALUES ({', '.join([marker] * len(columns))})"
    )
    connection.exec_driver_sql(sql, rows)


def _chunks(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


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


@contextmanager
def _file_lock(path: Path, name: str) -> Iterator[None]:
    import fcntl
    import os
    import socket

    handle = path.open("a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise LockedError(
                f"another omnisync run holds the {name!r} lock ({holder})",
                where=str(path),
                hint="wait for it to finish; two pushes must never run at once",
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(
            f"pid {os.getpid()} on {socket.gethostname()} since {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"
        )
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the lock


#: json.dumps with these options builds an encoder per call; one serves every value.
_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode


def _json_value(value: Any) -> str | None:
    """A JSON value for a text column, as it is (data is never masked); None stays NULL."""
    if value is None:
        return None
    return str(value) if type(value) is int else _JSON(value)


def _finding(row: Sequence[Any]) -> Finding:
    (
        channel,
        kind,
        sku,
        field,
        location,
        canonical,
        expected,
        actual,
        rule,
        detail,
        ids,
        bj,
        aj,
        source,
        origin,
    ) = row
    return Finding(
        channel=channel,
        kind=Kind(kind),
        sku=sku,
        field=field,
        location=location,
        canonical=canonical,
        expected=expected,
        actual=actual,
        rule=rule,
        detail=detail,
        ids=json.loads(ids) if ids else {},
        before=json.loads(bj) if bj is not None else None,
        after=json.loads(aj) if aj is not None else None,
        source=source,
        origin=origin,
    )


def _channel_report(row: ChannelRun) -> ChannelReport:
    return ChannelReport(
        name=row.name,
        connector=row.connector,
        canonical_count=row.canonical_count,
        channel_count=row.channel_count,
        fields=json.loads(row.fields_json),
        notes=json.loads(row.notes_json) if row.notes_json else [],
        error=row.error,
        error_code=row.error_code,
    )


def _channel_summary(row: ChannelRun) -> ChannelSummary:
    return ChannelSummary(
        name=row.name,
        connector=row.connector,
        canonical_count=row.canonical_count,
        channel_count=row.channel_count,
        findings=row.finding_count,
        missing=row.missing_count,
        extra=row.extra_count,
        changed=row.changed_count,
        duplicate=row.duplicate_count,
        error=row.error,
    )
