"""The tables of the state store, its schema version and the migrations between versions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import (
    Connection,
    DateTime,
    Dialect,
    Index,
    Text,
    TypeDecorator,
    inspect,
    text,
)
from sqlmodel import Field, SQLModel

SCHEMA_VERSION = 7

#: How long a SQLite connection waits for another process's write lock before giving up.
BUSY_TIMEOUT_MS = 30_000

#: Findings per ``executemany`` batch: large enough to be fast, small enough to bound memory.
FINDING_CHUNK = 5_000

HINT = "set settings.state in the config or --state to a writable SQLite path or database URL"

# Run.kind values.
KIND_CHECK = "check"
KIND_PUSH = "push"  # apply, sync and undo: a journal of changes
KIND_PUBLISH = "publish"  # feeds written from canonical

# Run.status values for checks: what the run found, independent of `--fail-on`
# (exit_code records how the command ended).
STATUS_OK = "ok"
STATUS_MISMATCH = "mismatch"
#: A check whose findings are of severity ``warn`` (and ``info``) only.
STATUS_WARNING = "warning"
STATUS_ERROR = "error"  # at least one channel could not be read

SCHEMA_KEY = "schema_version"
# Marks a connection whose transaction will write; SQLite then takes the write lock up front.
WRITE_OPTION = "omnisync_write"
# Serialises schema creation/migration between hosts sharing one PostgreSQL database.
PG_SETUP_LOCK = 0x6F6D6E69  # "omni"


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
    #: ``info``, ``warn`` or ``fail`` (expect.severity); NULL (runs before schema 7) is fail.
    severity: str | None = None


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
    __table_args__ = (
        Index("ix_omnisync_journal_run_seq", "run_id", "seq", unique=True),
        # What a guard window counts, every event batch of `watch`, in a journal that grows
        # by every change pushed.
        Index("ix_omnisync_journal_channel_updated", "channel", "updated_at"),
    )

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


class EventRow(SQLModel, table=True):
    """A change event waiting for ``watch`` (or handled by it): see :mod:`omnisync.store.events`."""

    __tablename__ = "omnisync_event"
    __table_args__ = (
        # A sender's delivery id is unique per source: a replay is refused by the database.
        Index("ix_omnisync_event_source_key", "source", "key", unique=True),
        Index("ix_omnisync_event_status_id", "status", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str
    kind: str
    key: str | None = None
    #: ``{"skus": [...], "refs": {id name: [...]}}``.
    targets_json: str = Field(sa_type=Text)
    received_at: datetime = Field(sa_type=UTCDateTime)
    #: queued → claimed → done | refused | failed
    status: str
    attempts: int = 0
    claimed_by: str | None = None
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    settled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: The push run that carried the event's corrections.
    run_id: str | None = None
    error: str | None = Field(default=None, sa_type=Text)


# Only our tables: SQLModel.metadata is shared with anything else that defines models.
T = TypeVar("T")

TABLES = [
    SQLModel.metadata.tables[m.__tablename__]
    for m in (Meta, Run, ChannelRun, FindingRow, PushRow, JournalRow, MarkRow, CacheRow, EventRow)
]
FINDING_TABLE = SQLModel.metadata.tables[FindingRow.__tablename__]
JOURNAL_TABLE = SQLModel.metadata.tables[JournalRow.__tablename__]
EVENT_TABLE = SQLModel.metadata.tables[EventRow.__tablename__]


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


def _to_v5(conn: Connection) -> None:
    """Schema 5: the event queue of ``watch``."""
    SQLModel.metadata.create_all(conn, tables=[EVENT_TABLE])


def _to_v6(conn: Connection) -> None:
    """Schema 6: the journal is indexed by channel and time (guard windows)."""
    table = SQLModel.metadata.tables[JournalRow.__tablename__]
    for index in table.indexes:
        if index.name == "ix_omnisync_journal_channel_updated":
            index.create(conn, checkfirst=True)  # schema 2 made the journal as it is now


def _to_v7(conn: Connection) -> None:
    """Schema 7: findings keep their severity (unless the table has it already: a store
    whose tables a newer omnisync created, marked with an older version)."""
    columns = {c["name"] for c in inspect(conn).get_columns("omnisync_finding")}
    if "severity" not in columns:
        conn.execute(text("ALTER TABLE omnisync_finding ADD COLUMN severity VARCHAR(8)"))


#: Ordered schema upgrades.
MIGRATIONS: list[Migration] = [
    Migration(1, _to_v2),
    Migration(2, _to_v3),
    Migration(3, _to_v4),
    Migration(4, _to_v5),
    Migration(5, _to_v6),
    Migration(6, _to_v7),
]
