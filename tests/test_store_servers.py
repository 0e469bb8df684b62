"""The run history and push journal on shared database servers (PostgreSQL, MariaDB), as
several cron hosts use them: same schema, same results, one push at a time across hosts."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from omnisync.errors import LockedError, StateError
from omnisync.models import Change, Op
from omnisync.store import SCHEMA_VERSION, Store
from tests.databases import TestDatabase
from tests.test_store import make_result, tricky_result


@pytest.fixture(params=["postgres_database", "mariadb_database"])
def server(request: pytest.FixtureRequest) -> TestDatabase:
    return request.getfixturevalue(request.param)


def test_history_round_trip_on_a_server(server: TestDatabase, tmp_path: Path) -> None:
    with Store.open(server.url, base_dir=tmp_path) as store:
        result = make_result(findings=50)
        run_id = store.record_check(result, exit_code=1)
        loaded = store.load(run_id)
    assert loaded.started_at == result.started_at
    assert [c.name for c in loaded.channels] == [c.name for c in result.channels]
    assert [f.to_dict() for f in loaded.findings] == [f.to_dict() for f in result.findings]
    ((version,),) = server.query(
        "SELECT value FROM omnisync_meta WHERE `key` = 'schema_version'"
        if server.backend == "mariadb"
        else "SELECT value FROM omnisync_meta WHERE key = 'schema_version'"
    )
    assert int(version) == SCHEMA_VERSION


def test_findings_with_any_text_round_trip_on_a_server(
    server: TestDatabase, tmp_path: Path
) -> None:
    """Findings go to the driver's executemany with parameter markers: text that looks like
    SQL quoting or a marker must come back as it went in."""
    result = tricky_result()
    with Store.open(server.url, base_dir=tmp_path) as store:
        loaded = store.load(store.record_check(result, exit_code=1))
    assert [f.to_dict() for f in loaded.findings] == [f.to_dict() for f in result.findings]


def test_journal_on_a_server(server: TestDatabase, tmp_path: Path) -> None:
    change = Change(
        "shop",
        "A",
        Op.UPDATE,
        "price",
        None,
        {"amount": "1", "currency": "EUR"},
        {"amount": "2", "currency": "EUR"},
        "r",
        {"id": "7"},
    )
    with Store.open(server.url, base_dir=tmp_path) as store:
        run_id = store.start_push(
            started_at=make_result().started_at,
            config_path="c.yaml",
            config_fingerprint="f",
            changes=[change],
            plan_json="{}",
        )
        store.mark(run_id, [(0, "sending", None)], attempt=True)
        store.mark(run_id, [(0, "applied", None)])
        store.finish_push(run_id, status="done", exit_code=0, totals={"applied": 1})
        record = store.push_run(run_id)
    (entry,) = record.entries
    assert (entry.status, entry.attempts, entry.change.after) == (
        "applied",
        1,
        {"amount": "2", "currency": "EUR"},
    )
    assert record.status == "done"


def test_the_push_lock_excludes_other_hosts(server: TestDatabase, tmp_path: Path) -> None:
    # Two Store objects stand for two hosts: separate engines, separate connections.
    with (
        Store.open(server.url, base_dir=tmp_path) as first,
        Store.open(server.url, base_dir=tmp_path) as second,
    ):
        with (
            first.lock("push"),
            pytest.raises(LockedError, match="another omnisync run holds the 'push' lock"),
            second.lock("push"),
        ):
            pass
        with second.lock("push"):  # released by the first
            pass


def test_a_newer_schema_on_a_server_is_refused(server: TestDatabase, tmp_path: Path) -> None:
    Store.open(server.url, base_dir=tmp_path).close()
    key = "`key`" if server.backend == "mariadb" else "key"
    with server.engine.begin() as conn:
        conn.execute(
            sa.text(f"UPDATE omnisync_meta SET value = '99' WHERE {key} = 'schema_version'")
        )
    with pytest.raises(StateError, match="schema version 99 is newer"):
        Store.open(server.url, base_dir=tmp_path)
