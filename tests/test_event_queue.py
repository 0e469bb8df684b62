"""The event queue in the state store, on SQLite and on the shared servers: replays refused
by the database, claims with leases, release and settle, counts, pruning, the guard window's
journal lookup, and the schema 4 → 5 migration."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from omnisync.models import Change, Event
from omnisync.store import (
    EVENT_DONE,
    EVENT_FAILED,
    EVENT_QUEUED,
    EVENT_REFUSED,
    SCHEMA_VERSION,
    Store,
)
from tests.databases import TestDatabase


@pytest.fixture(params=["sqlite", "postgres_database", "mariadb_database"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        target = str(tmp_path / "state.db")
    else:
        database: TestDatabase = request.getfixturevalue(request.param)
        target = database.url
    with Store.open(target, base_dir=tmp_path) as opened:
        yield opened


def test_a_replay_of_a_delivery_id_is_refused_by_the_database(store: Store) -> None:
    first = store.put_event(Event("shop", "stock", ("A", "B"), key="d-1"))
    assert isinstance(first, int)
    assert store.put_event(Event("shop", "stock", ("A",), key="d-1")) is None
    # The same id from another source is another delivery; no id is never a replay.
    assert store.put_event(Event("pos", "stock", ("A",), key="d-1")) is not None
    assert store.put_event(Event("shop", "stock", ("C",))) is not None
    assert store.put_event(Event("shop", "stock", ("C",))) is not None
    assert store.event_counts() == {EVENT_QUEUED: 4}


def test_claims_hand_out_each_event_once_until_the_lease_runs_out(store: Store) -> None:
    refs = {"inventory_item_id": ("gid://shopify/InventoryItem/7",)}
    store.put_event(Event("shop", "stock", refs=refs, key="1"))
    store.put_event(Event("canonical", "price", ("Ä-1", "B 2"), key="2"))
    claimed = store.claim_events("w1")
    assert [(e.source, e.skus, e.refs, e.attempts) for e in claimed] == [
        ("shop", (), refs, 1),
        ("canonical", ("Ä-1", "B 2"), {}, 1),
    ]
    assert all(e.received_at is not None and e.received_at.tzinfo is not None for e in claimed)
    assert store.claim_events("w2") == []
    # A dead worker's claim is handed out again once its lease is over.
    again = store.claim_events("w2", lease=timedelta(seconds=-1))
    assert [e.id for e in again] == [e.id for e in claimed]
    assert [e.attempts for e in again] == [2, 2]


def test_settle_release_and_counts(store: Store) -> None:
    ids = [store.put_event(Event("shop", "stock", (f"S{i}",), key=str(i))) for i in range(5)]
    claimed = store.claim_events("w", limit=4)
    assert [e.id for e in claimed] == ids[:4]
    store.settle_events([ids[0]], EVENT_DONE, run_id="20261203-120000-abcd")
    store.settle_events([ids[1]], EVENT_REFUSED, error="max_records: token=hunter2")
    store.settle_events([ids[2]], EVENT_FAILED, error="gave up")
    store.release_events([ids[3]], error="shop down")
    assert store.event_counts() == {
        EVENT_DONE: 1,
        EVENT_REFUSED: 1,
        EVENT_FAILED: 1,
        EVENT_QUEUED: 2,
    }
    assert [e.id for e in store.claim_events("w")] == [ids[3], ids[4]]
    assert store.release_claims("someone else") == 0
    assert store.release_claims() == 2
    assert store.event_counts()[EVENT_QUEUED] == 2
    newest = store.events(limit=2)
    assert [status for _, status in newest] == [EVENT_QUEUED, EVENT_QUEUED]
    # Settled events older than the cut are pruned; queued ones never are.
    assert store.prune_events(datetime.now(UTC) + timedelta(seconds=1)) == 3
    assert store.event_counts() == {EVENT_QUEUED: 2}


def test_the_guard_window_counts_applied_changes_since_a_moment(store: Store) -> None:
    changes = [Change("shop", sku, field="stock", before=1, after=0) for sku in ("A", "B", "C")]
    changes.append(Change("outlet", "A", field="stock", before=1, after=0))
    before = datetime.now(UTC) - timedelta(seconds=1)
    run_id = store.start_push(
        started_at=datetime.now(UTC),
        config_path="c.yaml",
        config_fingerprint="f",
        changes=changes,
        plan_json="{}",
    )
    store.mark(run_id, [(0, "applied", None), (1, "applied", None), (3, "applied", None)])
    store.mark(run_id, [(2, "failed", "no")])
    assert store.changed_skus("shop", before) == {"A", "B"}
    assert store.changed_skus("outlet", before) == {"A"}
    assert store.changed_skus("shop", datetime.now(UTC) + timedelta(seconds=5)) == set()


def test_a_version_4_store_gains_the_event_queue_and_the_journal_index(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with Store.open(str(path), base_dir=tmp_path):
        pass
    with sqlite3.connect(path) as db:  # back to how version 4 left it
        db.execute("DROP TABLE omnisync_event")
        db.execute("DROP INDEX ix_omnisync_journal_channel_updated")
        db.execute("ALTER TABLE omnisync_finding DROP COLUMN severity")
        db.execute("UPDATE omnisync_meta SET value = '4' WHERE key = 'schema_version'")
    with Store.open(str(path), base_dir=tmp_path) as store:
        assert store.put_event(Event("shop", "stock", ("A",), key="1")) is not None
        assert store.event_counts() == {EVENT_QUEUED: 1}
    with sqlite3.connect(path) as db:
        ((version,),) = db.execute("SELECT value FROM omnisync_meta WHERE key = 'schema_version'")
        plan = " ".join(
            str(row)
            for row in db.execute(
                "EXPLAIN QUERY PLAN SELECT DISTINCT sku FROM omnisync_journal "
                "WHERE channel = 'shop' AND status = 'applied' AND updated_at >= '2026'"
            )
        )
    assert int(version) == SCHEMA_VERSION
    # Schema 6: a guard window reads its channel's recent entries, not the whole journal.
    assert "ix_omnisync_journal_channel_updated" in plan
