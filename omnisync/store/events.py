"""The event queue: change events written durably before a webhook is answered, claimed by
``watch``, settled once their corrections are pushed.

An event is ``queued`` → ``claimed`` (by one worker, with a lease) → ``done``, ``refused``
(a guardrail stopped its corrections; the reason is kept) or ``failed`` (it kept failing and
was given up after ``max_attempts`` claims). A claim whose lease ran out (the worker died
between claiming and settling) is claimed again: delivery is at least once, and the push
journal makes a repeated correction a no-op. ``(source, key)`` is unique, so a sender's
replay of a delivery it already made is recognised by the database, not by a lookup that
could race.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from omnisync.models import Event
from omnisync.store.db import StoreBase
from omnisync.store.rows import mask_message
from omnisync.store.schema import EVENT_TABLE, EventRow, JournalRow

EVENT_QUEUED = "queued"
EVENT_CLAIMED = "claimed"
EVENT_DONE = "done"
EVENT_REFUSED = "refused"
EVENT_FAILED = "failed"


def _event(row: EventRow) -> Event:
    data = json.loads(row.targets_json)
    return Event(
        source=row.source,
        kind=row.kind,
        skus=tuple(data.get("skus", ())),
        refs={k: tuple(v) for k, v in data.get("refs", {}).items()},
        received_at=row.received_at,
        key=row.key,
        id=row.id,
        attempts=row.attempts,
    )


class EventMixin(StoreBase):
    """The durable event queue (the :class:`~omnisync.watch.queue.EventQueue` of one machine)."""

    def put_event(self, event: Event) -> int | None:
        """Queue ``event``; its id, or None when ``(source, key)`` was queued before (a replay).
        Returns only once the event is committed."""
        values = {
            "source": event.source,
            "kind": event.kind,
            "key": event.key,
            "targets_json": json.dumps(event.to_json(), ensure_ascii=False, sort_keys=True),
            "received_at": event.received_at or datetime.now(UTC),
            "status": EVENT_QUEUED,
            "attempts": 0,
        }
        try:
            with self._errors("queue the event"), self._connection(write=True) as conn:
                result = conn.execute(insert(EVENT_TABLE).values(**values))
                key = result.inserted_primary_key
                return int(key[0]) if key else None
        except Exception as exc:  # IntegrityError, possibly wrapped as StateError by _errors
            if event.key is not None and isinstance(exc.__cause__ or exc, IntegrityError):
                return None
            raise

    def claim_events(
        self, owner: str, *, limit: int = 1000, lease: timedelta = timedelta(minutes=5)
    ) -> list[Event]:
        """Claim up to ``limit`` queued events (oldest first), and events whose claim's lease
        ran out; each claim counts as an attempt."""
        now = datetime.now(UTC)
        with self._errors("claim events"), self._session(write=True) as session:
            query = (
                select(EventRow)
                .where(
                    (col(EventRow.status) == EVENT_QUEUED)
                    | (
                        (col(EventRow.status) == EVENT_CLAIMED)
                        & (col(EventRow.claimed_at) < now - lease)
                    )
                )
                .order_by(col(EventRow.id))
                .limit(limit)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = list(session.exec(query))
            for row in rows:
                row.status, row.claimed_by, row.claimed_at = EVENT_CLAIMED, owner, now
                row.attempts += 1
                session.add(row)
            session.flush()
            return [_event(row) for row in rows]

    def settle_events(
        self,
        ids: Iterable[int],
        status: str,
        *,
        run_id: str | None = None,
        error: str | None = None,
    ) -> None:
        """Mark claimed events ``done``, ``refused`` or ``failed`` (with the push run that
        handled them and, for the last two, why)."""
        self._set_status(list(ids), status, run_id=run_id, error=error)

    def release_events(self, ids: Iterable[int], error: str | None = None) -> None:
        """Put claimed events back in the queue (a retry will claim them again)."""
        self._set_status(list(ids), EVENT_QUEUED, error=error)

    def release_claims(self, owner: str | None = None) -> int:
        """Return every claimed event (of ``owner``, or of anyone) to the queue: a watcher that
        holds the watch lock knows no other is working on them. The number returned."""
        with self._errors("release claimed events"), self._connection(write=True) as conn:
            query = update(EVENT_TABLE).where(EVENT_TABLE.c.status == EVENT_CLAIMED)
            if owner is not None:
                query = query.where(EVENT_TABLE.c.claimed_by == owner)
            result = conn.execute(query.values(status=EVENT_QUEUED, claimed_by=None))
            return int(result.rowcount or 0)

    def _set_status(
        self,
        ids: Sequence[int],
        status: str,
        *,
        run_id: str | None = None,
        error: str | None = None,
    ) -> None:
        if not ids:
            return
        values: dict[str, object] = {"status": status, "settled_at": datetime.now(UTC)}
        if status == EVENT_QUEUED:
            values = {"status": status, "claimed_by": None, "claimed_at": None}
        if run_id is not None:
            values["run_id"] = run_id
        if error is not None:
            values["error"] = mask_message(error)
        with self._errors("settle events"), self._connection(write=True) as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                conn.execute(
                    update(EVENT_TABLE).where(EVENT_TABLE.c.id.in_(chunk)).values(**values)
                )

    def event_counts(self) -> dict[str, int]:
        """Events by status (the queue's depth is ``queued`` + ``claimed``)."""
        with self._errors("count events"), self._session() as session:
            rows = session.exec(
                select(EventRow.status, func.count()).group_by(col(EventRow.status))
            ).all()
            return {status: int(n) for status, n in rows}

    def events(self, *, limit: int = 100, status: str | None = None) -> list[tuple[Event, str]]:
        """The newest events (with their status), for ``runs``/``show`` and tests."""
        with self._errors("read events"), self._session() as session:
            query = select(EventRow).order_by(col(EventRow.id).desc()).limit(limit)
            if status is not None:
                query = query.where(col(EventRow.status) == status)
            return [(_event(row), row.status) for row in session.exec(query)]

    def events_by_run(self, run_ids: Iterable[str]) -> dict[str, int]:
        """How many events each of ``run_ids`` (push runs of ``watch``) carried."""
        wanted = list(run_ids)
        if not wanted:
            return {}
        with self._errors("read events"), self._session() as session:
            rows = session.exec(
                select(EventRow.run_id, func.count())
                .where(col(EventRow.run_id).in_(wanted))
                .group_by(col(EventRow.run_id))
            ).all()
            return {str(run_id): int(n) for run_id, n in rows}

    def prune_events(self, before: datetime) -> int:
        """Delete settled events received before ``before``; the number deleted."""
        with self._errors("prune events"), self._connection(write=True) as conn:
            result = conn.execute(
                EVENT_TABLE.delete().where(
                    EVENT_TABLE.c.status.in_([EVENT_DONE, EVENT_REFUSED, EVENT_FAILED])
                    & (EVENT_TABLE.c.received_at < before)
                )
            )
            return int(result.rowcount or 0)

    def changed_skus(self, channel: str, since: datetime) -> set[str]:
        """SKUs of ``channel`` that pushes changed (applied journal entries) since ``since``:
        what a guardrail's window counts."""
        with self._errors("read the journal"), self._session() as session:
            rows = session.exec(
                select(JournalRow.sku)
                .where(
                    (col(JournalRow.channel) == channel)
                    & (col(JournalRow.status) == "applied")
                    & (col(JournalRow.updated_at) >= since)
                )
                .distinct()
            ).all()
            return set(rows)
