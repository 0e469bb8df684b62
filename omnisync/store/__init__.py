"""The state store: run history, push journals, incremental pull state and the run lock.

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

One :class:`Store` object serves every job; its parts live by job:

==============  =============================================================================
``schema``      tables, schema version, migrations
``db``          opening a target, engines, SQLite tuning, setup; transactions and errors
``rows``        check results <-> rows, run summaries
``history``     recording checks, ``runs``/``show``, the canonical baseline of the guards
``pulls``       high-water marks and cached catalogues (:class:`~omnisync.sdk.PullState`)
``journal``     push runs: the write-ahead journal, marks, resume and undo records
``lock``        the run lock (file lock, PostgreSQL advisory lock, MariaDB ``GET_LOCK``)
``events``      the durable queue of change events ``watch`` works through
``retention``   pruning the history (``settings.history``, ``runs --prune``)
==============  =============================================================================
"""

from __future__ import annotations

from omnisync.store.events import (
    EVENT_CLAIMED,
    EVENT_DONE,
    EVENT_FAILED,
    EVENT_QUEUED,
    EVENT_REFUSED,
    EventMixin,
)
from omnisync.store.history import HistoryMixin
from omnisync.store.journal import (
    JOURNAL_APPLIED,
    JOURNAL_FAILED,
    JOURNAL_OPEN,
    JOURNAL_PLANNED,
    JOURNAL_SENDING,
    JOURNAL_STALE,
    JournalEntry,
    JournalMixin,
    PushRecord,
)
from omnisync.store.lock import LockMixin
from omnisync.store.pulls import PullMixin
from omnisync.store.retention import PruneOutcome, RetentionMixin
from omnisync.store.rows import (
    ChannelPoint,
    ChannelSummary,
    CheckPoint,
    PushPoint,
    RunSummary,
    Trends,
    new_run_id,
)
from omnisync.store.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    ChannelRun,
    FindingRow,
    Meta,
    Migration,
    Run,
)

__all__ = [
    "EVENT_CLAIMED",
    "EVENT_DONE",
    "EVENT_FAILED",
    "EVENT_QUEUED",
    "EVENT_REFUSED",
    "JOURNAL_APPLIED",
    "JOURNAL_FAILED",
    "JOURNAL_OPEN",
    "JOURNAL_PLANNED",
    "JOURNAL_SENDING",
    "JOURNAL_STALE",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "ChannelPoint",
    "ChannelRun",
    "ChannelSummary",
    "CheckPoint",
    "FindingRow",
    "JournalEntry",
    "Meta",
    "Migration",
    "PruneOutcome",
    "PushPoint",
    "PushRecord",
    "Run",
    "RunSummary",
    "Store",
    "Trends",
    "new_run_id",
]


class Store(JournalMixin, HistoryMixin, PullMixin, LockMixin, EventMixin, RetentionMixin):
    """The state store. Open with :meth:`open`; use as a context manager or call :meth:`close`."""
