"""The run history: what `omnisync runs` lists and what `omnisync report <run>` renders again."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from omnisync import secrets, store
from omnisync.errors import StateError
from omnisync.models import ChannelReport, CheckResult, Finding, Kind, Severity
from omnisync.store import SCHEMA_VERSION, Migration, Store, new_run_id

BERLIN = timezone(timedelta(hours=1))
T0 = datetime(2024, 11, 29, 7, 15, 0, tzinfo=BERLIN)


def make_result(started_at: datetime = T0, *, findings: int = 0) -> CheckResult:
    shop = ChannelReport(
        name="shop",
        connector="shopify",
        canonical_count=4,
        channel_count=4,
        fields=["title", "price", "stock"],
        findings=[
            Finding(
                "shop",
                Kind.CHANGED,
                "SKU-2",
                field="price",
                canonical="19.99 EUR",
                expected="23.79 EUR",
                actual="24.00 EUR",
                rule="vat 19%",
                ids={"product_id": "111", "variant_id": "222"},
            ),
            Finding("shop", Kind.MISSING, "SKU-3"),
            Finding(
                "shop",
                Kind.CHANGED,
                "SKU-1",
                field="stock",
                location="berlin",
                expected="5",
                actual="0",
                detail="sold out in the shop",
            ),
            Finding("shop", Kind.EXTRA, "OLD-9", ids={"product_id": "999"}),
        ],
    )
    feed = ChannelReport(
        name="google",
        connector="gmc",
        canonical_count=4,
        channel_count=0,
        fields=["price"],
        error="GET /products: 401 Unauthorized",
        error_code=3,
    )
    bulk = ChannelReport(
        name="marketplace",
        connector="csv",
        canonical_count=findings,
        channel_count=findings,
        fields=["stock"],
        findings=[
            Finding(
                "marketplace",
                Kind.CHANGED,
                f"SKU-{i:06d}",
                field="stock",
                expected=str(i),
                actual=str(i + 1),
                ids={"row": str(i)},
            )
            for i in range(findings)
        ],
    )
    return CheckResult(
        started_at=started_at,
        evaluated_at=started_at + timedelta(seconds=1),
        config_path="/etc/omnisync/config.yaml",
        config_fingerprint="sha256:abc123",
        channels=[shop, feed, bulk],
        finished_at=started_at + timedelta(seconds=42),
    )


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Store]:
    with Store.open("state.db", base_dir=tmp_path) as opened:
        yield opened


def set_schema_version(path: Path, version: int) -> None:
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE omnisync_meta SET value = ? WHERE key = 'schema_version'", (str(version),)
        )
    db.close()


def schema_version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("SELECT value FROM omnisync_meta").fetchone()[0])
    finally:
        db.close()


# ---------------------------------------------------------------- round trip


def test_a_recorded_check_loads_back_exactly(state: Store) -> None:
    result = make_result()
    run_id = state.record_check(result, exit_code=3)

    assert result.run_id == run_id
    loaded = state.load(run_id)
    assert loaded == result
    assert [c.name for c in loaded.channels] == ["shop", "google", "marketplace"]
    assert [f.sku for f in loaded.channels[0].findings] == ["SKU-2", "SKU-3", "SKU-1", "OLD-9"]
    assert loaded.channels[0].findings[1].field is None
    assert loaded.channels[0].findings[1].ids == {}
    assert loaded.channels[0].findings[0].ids == {"product_id": "111", "variant_id": "222"}
    assert loaded.channels[1].error == "GET /products: 401 Unauthorized"
    assert loaded.channels[1].error_code == 3
    assert loaded.channels[0].count(Kind.CHANGED) == 2
    assert loaded.channels[0].matched == 1


def test_every_model_field_is_kept() -> None:
    # A field added to the models but not to the store would vanish from re-rendered reports.
    assert {f.name for f in fields(CheckResult)} == {
        "started_at",
        "evaluated_at",
        "config_path",
        "config_fingerprint",
        "channels",
        "finished_at",
        "run_id",
        "canonical_count",
        "canonical_priced",
        "canonical_baseline",
        "canonical_trusted",
        "from_snapshot",
        "snapshot",
    }, "persist the new CheckResult field in omnisync/store/rows.py"
    # Private fields are caches derived from the others (ChannelReport._tallied).
    assert {f.name for f in fields(ChannelReport) if not f.name.startswith("_")} == {
        "name",
        "connector",
        "canonical_count",
        "channel_count",
        "findings",
        "notes",
        "fields",
        "error",
        "error_code",
    }, "persist the new ChannelReport field in omnisync/store/rows.py"
    assert {f.name for f in fields(Finding)} == {
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
        "ids",
        "before",
        "after",
        "source",
        "origin",
        "severity",
    }, "persist the new Finding field in omnisync/store/rows.py"


def test_timestamps_come_back_aware_in_utc(state: Store) -> None:
    run_id = state.record_check(make_result(T0), exit_code=1)

    loaded = state.load(run_id)
    assert loaded.started_at == T0
    assert loaded.started_at.tzinfo is UTC
    assert loaded.started_at.hour == 6  # 07:15 in Berlin (UTC+1)
    assert loaded.evaluated_at == T0 + timedelta(seconds=1)
    assert loaded.finished_at == T0 + timedelta(seconds=42)
    assert state.runs()[0].started_at.tzinfo is UTC


def test_run_ids_read_as_utc_time_and_sort(state: Store) -> None:
    run_id = state.record_check(make_result(T0), exit_code=0)

    assert run_id.startswith("20241129-061500-")
    assert new_run_id(T0) < new_run_id(T0 + timedelta(seconds=1))


def test_a_run_id_cannot_be_recorded_twice(state: Store) -> None:
    result = make_result()
    state.record_check(result, exit_code=1)

    with pytest.raises(StateError, match="already recorded"):
        state.record_check(result, exit_code=1)
    assert len(state.runs()) == 1


def test_registered_secrets_never_reach_the_store(tmp_path: Path) -> None:
    secrets.forget_all()
    secrets.register("s3cr3t-token")
    try:
        result = make_result()
        result.channels[1].error = "401 for token s3cr3t-token"
        result.channels[0].findings[3].detail = "seen at https://bob:hunter22@shop.example/x"
        with Store.open("state.db", base_dir=tmp_path) as opened:
            loaded = opened.load(opened.record_check(result, exit_code=3))
    finally:
        secrets.forget_all()

    assert loaded.channels[1].error == "401 for token ***"
    assert loaded.channels[0].findings[3].detail == "seen at https://bob:***@shop.example/x"
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"s3cr3t-token" not in raw
    assert b"hunter22" not in raw


TRICKY = 'it\'s "quoted", back\\slash, 100 %s %% %(x)s ?, Grüße 😀,\nsecond line'


def tricky_result() -> CheckResult:
    """A result with a finding whose every text looks like SQL quoting or a parameter marker."""
    result = make_result()
    result.channels[0].findings.append(
        Finding(
            "shop",
            Kind.CHANGED,
            "SKU-%s?",
            field="title",
            canonical=TRICKY,
            expected=TRICKY,
            actual="",
            rule=TRICKY,
            ids={"handle": TRICKY},
            before=TRICKY,
            after={"amount": "1.00", "note": TRICKY},
        )
    )
    return result


def test_findings_with_any_text_round_trip(state: Store) -> None:
    result = tricky_result()
    loaded = state.load(state.record_check(result, exit_code=1))
    assert [f.to_dict() for f in loaded.findings] == [f.to_dict() for f in result.findings]


def test_fifty_thousand_findings_round_trip(state: Store) -> None:
    run_id = state.record_check(make_result(findings=50_000), exit_code=1)

    loaded = state.load(run_id).channels[2]
    assert len(loaded.findings) == 50_000
    assert loaded.findings[0].sku == "SKU-000000"
    assert loaded.findings[-1] == Finding(
        "marketplace",
        Kind.CHANGED,
        "SKU-049999",
        field="stock",
        expected="49999",
        actual="50000",
        ids={"row": "49999"},
    )
    assert [f.sku for f in loaded.findings] == sorted(f.sku for f in loaded.findings)
    assert state.runs()[0].totals["findings"] == 50_004


# ---------------------------------------------------------------- listing and lookup


def test_runs_lists_newest_first_with_counts(state: Store) -> None:
    ids = [
        state.record_check(make_result(T0 + timedelta(hours=hours)), exit_code=code)
        for hours, code in [(1, 1), (0, 0), (2, 3)]
    ]

    runs = state.runs()
    assert [r.id for r in runs] == [ids[2], ids[0], ids[1]]
    assert [r.exit_code for r in runs] == [3, 1, 0]
    newest = runs[0]
    assert newest.status == "error"  # google could not be read
    assert newest.config_path == "/etc/omnisync/config.yaml"
    assert newest.totals == {
        "channels": 3,
        "failed_channels": 1,
        "findings": 4,
        "missing": 1,
        "extra": 1,
        "changed": 2,
        "duplicate": 0,
        "data_quality": 0,
        "identity": 0,
        "canonical_records": 0,
        "canonical_priced": 0,
        "canonical_baseline": None,
        "canonical_trusted": True,
    }
    shop = newest.channels[0]
    assert (shop.name, shop.findings, shop.missing, shop.extra, shop.changed) == (
        "shop",
        4,
        1,
        1,
        2,
    )
    assert newest.channels[1].error == "GET /products: 401 Unauthorized"
    assert [r.id for r in state.runs(limit=2)] == [ids[2], ids[0]]


def test_runs_of_an_empty_store_is_empty(state: Store) -> None:
    assert state.runs() == []


def test_status_says_what_a_run_found(state: Store) -> None:
    clean = make_result(T0)
    clean.channels = [ChannelReport("shop", "csv", canonical_count=3, channel_count=3)]
    mismatch = make_result(T0 + timedelta(minutes=1))
    mismatch.channels = mismatch.channels[:1]
    state.record_check(clean, exit_code=0)
    state.record_check(mismatch, exit_code=1)

    assert [r.status for r in state.runs()] == ["mismatch", "ok"]


def test_last_and_a_unique_prefix_find_a_run(state: Store) -> None:
    older = state.record_check(make_result(T0), exit_code=0)
    newer = state.record_check(make_result(T0 + timedelta(days=1)), exit_code=1)

    assert state.load("last").run_id == newer
    assert state.load("latest").run_id == newer
    assert state.load("20241129").run_id == older
    assert state.load(older[:-2]).run_id == older


def test_an_ambiguous_prefix_names_the_matches(state: Store) -> None:
    first = state.record_check(make_result(T0), exit_code=0)
    second = state.record_check(make_result(T0 + timedelta(minutes=5)), exit_code=0)

    with pytest.raises(StateError) as caught:
        state.load("20241129-06")
    assert first in str(caught.value)
    assert second in str(caught.value)
    assert "more characters" in caught.value.hint


def test_an_unknown_run_points_to_omnisync_runs(state: Store) -> None:
    state.record_check(make_result(), exit_code=0)

    with pytest.raises(StateError, match="no run with id '1999'") as caught:
        state.load("1999")
    assert "omnisync runs" in caught.value.hint
    # `%` and `_` are not wildcards in a prefix.
    with pytest.raises(StateError, match="no run"):
        state.load("%")


def test_last_in_an_empty_store_says_there_are_no_runs(state: Store) -> None:
    with pytest.raises(StateError, match="no runs recorded yet"):
        state.load("last")


# ---------------------------------------------------------------- schema versions


def test_a_fresh_store_is_at_the_current_schema_version(tmp_path: Path) -> None:
    Store.open(".omnisync/state.db", base_dir=tmp_path).close()

    assert schema_version(tmp_path / ".omnisync" / "state.db") == SCHEMA_VERSION


def test_a_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    Store.open(str(path), base_dir=tmp_path).close()
    set_schema_version(path, SCHEMA_VERSION + 1)

    with pytest.raises(StateError) as caught:
        Store.open(str(path), base_dir=tmp_path)
    assert caught.value.message == (
        f"state store schema version {SCHEMA_VERSION + 1} is newer than this omnisync "
        f"supports ({SCHEMA_VERSION}); upgrade omnisync"
    )
    assert caught.value.where == str(path)
    assert schema_version(path) == SCHEMA_VERSION + 1


def test_an_older_schema_is_migrated_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.db"
    with Store.open(str(path), base_dir=tmp_path) as opened:
        run_id = opened.record_check(make_result(), exit_code=1)
    set_schema_version(path, 0)
    calls: list[int] = []

    def rename_config(conn: Connection) -> None:
        calls.append(1)
        conn.execute(text("UPDATE omnisync_run SET config_path = 'migrated.yaml'"))

    # Step 0→1 is the fake one; the others are no-ops here: the tables are already current.
    monkeypatch.setattr(
        store.schema,
        "MIGRATIONS",
        [
            Migration(0, rename_config),
            *(Migration(v, lambda conn: None) for v in range(1, SCHEMA_VERSION)),
        ],
    )

    with Store.open(str(path), base_dir=tmp_path) as opened:
        assert opened.load(run_id).config_path == "migrated.yaml"
    Store.open(str(path), base_dir=tmp_path).close()

    assert calls == [1]
    assert schema_version(path) == SCHEMA_VERSION


def test_an_older_schema_without_a_migration_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    Store.open(str(path), base_dir=tmp_path).close()
    set_schema_version(path, 0)

    with pytest.raises(StateError, match="no migration from state store schema version 0"):
        Store.open(str(path), base_dir=tmp_path)
    assert schema_version(path) == 0


# ---------------------------------------------------------------- unusable targets


def test_a_relative_path_is_resolved_against_the_config_folder(tmp_path: Path) -> None:
    with Store.open(".omnisync/state.db", base_dir=tmp_path) as opened:
        assert opened.where == str(tmp_path / ".omnisync" / "state.db")
    assert (tmp_path / ".omnisync" / "state.db").is_file()


def test_a_relative_sqlite_url_is_resolved_against_the_config_folder(tmp_path: Path) -> None:
    with Store.open("sqlite:///history/state.db", base_dir=tmp_path) as opened:
        opened.record_check(make_result(), exit_code=0)
    assert (tmp_path / "history" / "state.db").is_file()


def test_the_store_uses_wal_so_readers_do_not_block_the_cron_run(tmp_path: Path) -> None:
    Store.open("state.db", base_dir=tmp_path).close()

    db = sqlite3.connect(tmp_path / "state.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_listing_runs_while_another_process_writes(tmp_path: Path) -> None:
    with Store.open("state.db", base_dir=tmp_path) as opened:
        run_id = opened.record_check(make_result(), exit_code=0)
    writer = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE omnisync_run SET status = 'half-written'")
    try:
        with Store.open("state.db", base_dir=tmp_path) as reader:
            runs = reader.runs()
    finally:
        writer.execute("ROLLBACK")
        writer.close()

    assert [(r.id, r.status) for r in runs] == [(run_id, "error")]


def test_a_second_writer_waits_for_the_first(tmp_path: Path) -> None:
    Store.open("state.db", base_dir=tmp_path).close()
    writer = sqlite3.connect(tmp_path / "state.db", isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, lambda: writer.execute("COMMIT"))
    release.start()
    try:
        with Store.open("state.db", base_dir=tmp_path) as opened:
            run_id = opened.record_check(make_result(), exit_code=0)
            assert opened.load("last").run_id == run_id
    finally:
        release.join()
        writer.close()


def test_a_lock_held_too_long_is_a_state_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store.schema, "BUSY_TIMEOUT_MS", 50)
    Store.open("state.db", base_dir=tmp_path).close()
    writer = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        with Store.open("state.db", base_dir=tmp_path) as opened:
            started = time.monotonic()
            with pytest.raises(StateError, match="locked") as caught:
                opened.record_check(make_result(), exit_code=0)
            assert time.monotonic() - started < 5
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert "another omnisync run" in caught.value.hint


def test_a_directory_is_not_a_store(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()

    with pytest.raises(StateError, match="directory") as caught:
        Store.open("state", base_dir=tmp_path)
    assert caught.value.where == str(tmp_path / "state")
    assert "--state" in caught.value.hint


def test_a_file_that_is_not_a_database_is_not_a_store(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list\n" * 200)

    with pytest.raises(StateError, match="not a database") as caught:
        Store.open("notes.txt", base_dir=tmp_path)
    assert caught.value.where == str(notes)
    assert notes.read_text() == "shopping list\n" * 200


def test_a_folder_that_cannot_be_created_is_a_state_error(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("channels: {}\n")

    with pytest.raises(StateError, match="is a file, not a folder"):
        Store.open("config.yaml/state.db", base_dir=tmp_path)


def test_a_bad_url_is_a_state_error_without_its_password(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="unknown database type") as caught:
        Store.open("nosuchdb://bob:hunter22@db.example/omnisync", base_dir=tmp_path)

    assert "hunter22" not in str(caught.value)
    assert caught.value.where == "nosuchdb://bob:***@db.example/omnisync"


def test_a_missing_driver_is_a_state_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="pg8000") as caught:
        Store.open("postgresql+pg8000://bob:hunter22@db.example/omnisync", base_dir=tmp_path)

    assert "not installed" in caught.value.message
    assert "hunter22" not in str(caught.value)


def test_a_version_1_store_is_upgraded_to_keep_values_and_journals(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with Store.open(str(path), base_dir=tmp_path) as opened:
        old_run = opened.record_check(make_result(), exit_code=1)
    # Turn it into what omnisync 0.1 (schema 1) wrote.
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE omnisync_finding DROP COLUMN before_json")
        conn.execute("ALTER TABLE omnisync_finding DROP COLUMN after_json")
        conn.execute("ALTER TABLE omnisync_finding DROP COLUMN source")
        conn.execute("ALTER TABLE omnisync_finding DROP COLUMN origin")
        conn.execute("DROP TABLE omnisync_journal")
        conn.execute("DROP TABLE omnisync_push")
        conn.execute("ALTER TABLE omnisync_channel_run DROP COLUMN notes_json")
        conn.execute("ALTER TABLE omnisync_finding DROP COLUMN severity")
    set_schema_version(path, 1)

    with Store.open(str(path), base_dir=tmp_path) as opened:
        assert opened.load(old_run).run_id == old_run
        result = make_result()
        result.channels[0].findings[0].before = {"amount": "1.5", "currency": "EUR"}
        new_run = opened.record_check(result, exit_code=1)
        assert opened.load(new_run).channels[0].findings[0].before == {
            "amount": "1.5",
            "currency": "EUR",
        }
    assert schema_version(path) == SCHEMA_VERSION


def test_a_version_2_store_gains_the_data_quality_columns(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with Store.open(str(path), base_dir=tmp_path) as opened:
        old_run = opened.record_check(make_result(), exit_code=1)
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE omnisync_finding DROP COLUMN source")
        conn.execute("ALTER TABLE omnisync_finding DROP COLUMN origin")
        conn.execute("ALTER TABLE omnisync_channel_run DROP COLUMN notes_json")
        conn.execute("ALTER TABLE omnisync_finding DROP COLUMN severity")
    set_schema_version(path, 2)

    with Store.open(str(path), base_dir=tmp_path) as opened:
        assert opened.load(old_run).run_id == old_run
        result = make_result()
        finding = result.channels[0].findings[0]
        finding.kind, finding.source, finding.origin = Kind.DATA_QUALITY, "canonical", "erp.csv:7"
        new_run = opened.record_check(result, exit_code=1)
        loaded = opened.load(new_run).channels[0].findings[0]
    assert (loaded.kind, loaded.source, loaded.origin) == (
        Kind.DATA_QUALITY,
        "canonical",
        "erp.csv:7",
    )
    assert schema_version(path) == SCHEMA_VERSION


def test_a_version_6_store_gains_severities_and_its_old_findings_fail(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with Store.open(str(path), base_dir=tmp_path) as opened:
        old_run = opened.record_check(make_result(), exit_code=1)
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE omnisync_finding DROP COLUMN severity")
    set_schema_version(path, 6)

    with Store.open(str(path), base_dir=tmp_path) as opened:
        old = opened.load(old_run).channels[0].findings
        assert old
        assert {f.severity for f in old} == {Severity.FAIL}
        result = make_result()
        result.channels[0].findings[0].severity = Severity.WARN
        new_run = opened.record_check(result, exit_code=0)
        loaded = opened.load(new_run).channels[0].findings
    assert [f.severity for f in loaded[:2]] == [Severity.WARN, Severity.FAIL]
    assert schema_version(path) == SCHEMA_VERSION


def test_a_store_marked_older_whose_findings_have_severity_opens(tmp_path: Path) -> None:
    """A half-applied upgrade (the column added, the version not yet written) is finished,
    not refused with "duplicate column"."""
    path = tmp_path / "state.db"
    with Store.open(str(path), base_dir=tmp_path) as opened:
        run = opened.record_check(make_result(), exit_code=1)
    set_schema_version(path, 6)
    with Store.open(str(path), base_dir=tmp_path) as opened:
        assert opened.load(run).run_id == run
    assert schema_version(path) == SCHEMA_VERSION


def test_a_version_3_store_gains_channel_notes(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with Store.open(str(path), base_dir=tmp_path) as opened:
        old_run = opened.record_check(make_result(), exit_code=1)
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE omnisync_channel_run DROP COLUMN notes_json")
        conn.execute("ALTER TABLE omnisync_finding DROP COLUMN severity")
    set_schema_version(path, 3)

    with Store.open(str(path), base_dir=tmp_path) as opened:
        assert opened.load(old_run).channels[0].notes == []
        result = make_result()
        result.channels[0].notes = ["not checked: gtin (canonical does not carry it)"]
        new_run = opened.record_check(result, exit_code=1)
        loaded = opened.load(new_run).channels[0]
    assert loaded.notes == ["not checked: gtin (canonical does not carry it)"]
    assert schema_version(path) == SCHEMA_VERSION
