"""History retention: ``settings.history`` and ``omnisync runs --prune`` bound the state store
without taking what later runs depend on (the guards' baselines, a push to resume)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from omnisync.cli import app
from omnisync.errors import StateError
from omnisync.models import Change, Event, Op
from omnisync.store import EVENT_DONE, Store
from tests.databases import TestDatabase
from tests.test_store import make_result

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def check_at(store: Store, days_ago: float, *, canonical: int = 100, trusted: bool = True) -> str:
    result = make_result(NOW - timedelta(days=days_ago), findings=20)
    result.canonical_count = canonical
    result.canonical_trusted = trusted
    return store.record_check(result, exit_code=1)


def push_at(store: Store, days_ago: float, *, finished: bool = True) -> str:
    change = Change("shop", "A", Op.UPDATE, "stock", None, 1, 2, "r", {})
    run_id = store.start_push(
        started_at=NOW - timedelta(days=days_ago),
        config_path="c.yaml",
        config_fingerprint="f",
        changes=[change, change],
        plan_json="{}",
    )
    if finished:
        store.mark(run_id, [(0, "applied", None), (1, "applied", None)])
        store.finish_push(run_id, status="done", exit_code=0, totals={"applied": 2})
    else:  # killed while sending the second change
        store.mark(run_id, [(0, "applied", None), (1, "sending", None)])
    return run_id


def ids(store: Store) -> set[str]:
    return {run.id for run in store.runs(None)}


@pytest.fixture
def state(tmp_path: Path) -> Store:
    return Store.open("state.db", base_dir=tmp_path)


def test_runs_older_than_keep_go_with_their_findings_and_journal(state: Store) -> None:
    old = [check_at(state, 100), check_at(state, 95)]
    old_push = push_at(state, 99)
    young = {check_at(state, 10), check_at(state, 1), push_at(state, 2)}
    outcome = state.prune(keep=timedelta(days=90), now=NOW)
    assert outcome.runs == [old[0], old_push, old[1]]  # oldest first
    assert (outcome.findings, outcome.journal, outcome.kept) == (48, 2, {})
    assert ids(state) == young
    with pytest.raises(StateError):
        state.load(old[0])
    state.close()


def test_keep_runs_keeps_the_newest_n(state: Store) -> None:
    made = [check_at(state, d) for d in (5, 4, 3, 2, 1)]
    outcome = state.prune(keep_runs=2, now=NOW)
    assert outcome.runs == made[:3]
    assert ids(state) == set(made[3:])
    state.close()


def test_what_later_runs_depend_on_is_kept_whatever_its_age(state: Store) -> None:
    baseline = check_at(state, 300, canonical=10_000)
    # A newer check whose canonical was cut (untrusted) is no baseline.
    check_at(state, 250, canonical=40, trusted=False)
    resumable = push_at(state, 280, finished=False)
    newest_push = push_at(state, 200)
    done_push = push_at(state, 260)
    newest_check = check_at(state, 100, canonical=40, trusted=False)
    outcome = state.prune(keep=timedelta(days=30), now=NOW)
    assert outcome.kept == {
        newest_check: "the newest check run",
        baseline: "the canonical baseline of the truncation guard",
        resumable: "a push with changes still to send (apply --resume)",
        newest_push: "the newest push run",
    }
    assert ids(state) == {baseline, resumable, newest_push, newest_check}
    assert done_push in outcome.runs
    # The truncation guard still measures against the baseline.
    assert state.canonical_baseline() == 10_000
    assert [e.status for e in state.push_run(resumable).entries] == ["applied", "sending"]
    state.close()


def test_settled_events_go_queued_ones_stay(state: Store) -> None:
    old = NOW - timedelta(days=40)
    done = state.put_event(Event("shop", "stock", ("A",), received_at=old, key="1"))
    waiting = state.put_event(Event("shop", "stock", ("B",), received_at=old, key="2"))
    assert done is not None
    assert waiting is not None
    claimed = state.claim_events("me", limit=1)
    state.settle_events([e.id for e in claimed if e.id is not None], EVENT_DONE)
    check_at(state, 1)
    outcome = state.prune(keep=timedelta(days=30), now=NOW)
    assert outcome.events == 1
    assert state.event_counts() == {"queued": 1}
    state.close()


def test_a_dry_run_deletes_nothing(state: Store) -> None:
    made = [check_at(state, d) for d in (50, 40, 1)]
    outcome = state.prune(keep=timedelta(days=30), now=NOW, dry_run=True)
    assert outcome.runs == made[:2]
    assert outcome.findings == 48
    assert ids(state) == set(made)
    assert outcome.bytes_before is None
    state.close()


def test_pruning_compacts_a_sqlite_store(tmp_path: Path) -> None:
    with Store.open("state.db", base_dir=tmp_path) as store:
        for day in range(30, 0, -1):
            result = make_result(NOW - timedelta(days=day), findings=2_000)
            store.record_check(result, exit_code=1)
        outcome = store.prune(keep_runs=1, now=NOW)
    assert len(outcome.runs) == 29
    assert outcome.bytes_before is not None
    assert outcome.bytes_after is not None
    assert outcome.bytes_after < outcome.bytes_before / 5


@pytest.fixture(params=["postgres_database", "mariadb_database"])
def server(request: pytest.FixtureRequest) -> TestDatabase:
    return request.getfixturevalue(request.param)


def test_pruning_on_a_server(server: TestDatabase, tmp_path: Path) -> None:
    with Store.open(server.url, base_dir=tmp_path) as store:
        old = [check_at(store, 100), push_at(store, 99)]
        young = {check_at(store, 1), push_at(store, 1)}
        outcome = store.prune(keep=timedelta(days=90), now=NOW)
        assert outcome.runs == old
        assert outcome.journal == 2
        assert outcome.bytes_before is None  # the server reuses the space itself
        assert ids(store) == young
    (count,) = server.query("SELECT count(*) FROM omnisync_finding")[0]
    assert count == 24
    (count,) = server.query("SELECT count(*) FROM omnisync_journal")[0]
    assert count == 2


# ---------------------------------------------------------------- from the command line


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "160"})
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    shutil.copy(ROOT / "config.example.yaml", tmp_path / "omnisync.yaml")
    return tmp_path / "omnisync.yaml"


def test_runs_prune_from_the_command_line(project: Path) -> None:
    for _ in range(4):
        assert invoke("check", "-c", str(project))[0] == 1
    code, out, err = invoke("runs", "-c", str(project), "--prune", "--keep-runs", "1", "--dry-run")
    assert code == 0, err
    assert out.startswith("would prune 3 run(s):")
    code, out, err = invoke("runs", "-c", str(project), "--prune", "--keep-runs", "1")
    assert code == 0, err
    assert out.startswith("pruned 3 run(s):")
    assert "state store compacted:" in out
    code, out, _ = invoke("runs", "-c", str(project), "-n", "10")
    assert out.count("mismatch") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prune"], "nothing says which runs to prune"),
        (["--keep", "5d"], "--keep, --keep-runs and --dry-run go with --prune"),
        (["--prune", "--keep", "5x"], "--keep '5x': '5x' is not a duration"),
    ],
)
def test_runs_prune_usage_errors(project: Path, args: list[str], message: str) -> None:
    code, _, err = invoke("runs", "-c", str(project), *args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_settings_history_prunes_after_every_check(project: Path) -> None:
    config = yaml.safe_load(project.read_text(encoding="utf-8"))
    config.setdefault("settings", {})["history"] = {"keep_runs": 2}
    project.write_text(yaml.safe_dump(config), encoding="utf-8")
    for _ in range(4):
        assert invoke("check", "-c", str(project))[0] == 1
    with Store.open(config["settings"]["state"], base_dir=project.parent) as store:
        assert len(store.runs(None)) == 2


def test_a_bad_history_setting_is_a_config_error_with_its_line(project: Path) -> None:
    text = project.read_text(encoding="utf-8")
    project.write_text(
        text.replace("settings:\n", "settings:\n  history: {keep: 90 days}\n", 1), encoding="utf-8"
    )
    code, _, err = invoke("validate", "-c", str(project))
    assert code == 2
    assert "settings.history.keep" in err
    assert "omnisync.yaml:" in err
