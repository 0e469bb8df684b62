"""The whole loop on files, as a user runs it: check → plan → apply → check → undo; a push
killed by a signal and resumed; two syncs at once."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from omnisync.cli import app
from omnisync.store import Store

ROOT = Path(__file__).resolve().parents[1]
AT = "2026-11-23T12:00:00+01:00"
EXAMPLE_FILES = ("erp_export.csv", "webshop_woocommerce.csv", "pos_export.csv", "google_feed.tsv")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    shutil.copy(ROOT / "config.example.yaml", tmp_path / "omnisync.yaml")
    return tmp_path


def cli(project: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [*args], catch_exceptions=False, env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def findings(project: Path) -> set[tuple[str, str, str, str | None]]:
    code, out, _ = cli(
        project,
        "check",
        "-c",
        str(project / "omnisync.yaml"),
        "--at",
        AT,
        "-f",
        "json",
        "--no-history",
    )
    assert code in (0, 1)
    return {
        (f["channel"], f["kind"], f["sku"], f["field"])
        for c in json.loads(out)["channels"]
        for f in c["findings"]
    }


def test_example_loop_plan_apply_check_undo(project: Path) -> None:
    config = str(project / "omnisync.yaml")
    originals = {name: (project / "examples" / name).read_bytes() for name in EXAMPLE_FILES}
    before = findings(project)

    code, _, err = cli(
        project, "plan", "-c", config, "--at", AT, "--out", str(project / "plan.json")
    )
    assert code == 0, err
    plan = json.loads((project / "plan.json").read_text())
    planned = {
        (ch["name"], c["sku"], c["field"] or c["op"])
        for ch in plan["channels"]
        for c in ch["changes"]
    }
    assert planned == {
        ("webshop", "KA-1002", "sale_price"),
        ("webshop", "KA-1003", "price"),
        ("webshop", "KA-1004", "stock"),
        ("webshop", "KA-1005", "title"),
        ("webshop", "KA-1014", "create"),
        ("pos", "KA-1002", "price"),
        ("pos", "KA-1008", "price"),
        ("pos", "KA-1011", "stock"),
    }

    code, out, err = cli(project, "apply", str(project / "plan.json"), "-c", config, "--yes")
    assert code == 0, out + err
    after = findings(project)
    # Everything pushable is fixed; what remains is check-only or deliberately not pushed.
    assert after == {
        ("webshop", "extra", "KA-0999", None),  # never deleted without push.delete
        ("pos", "duplicate", "KA-1006", None),  # fixed by hand in the POS
        *{f for f in before if f[0] == "google"},  # the feed is check-only
    }
    backups = list((project / "examples").glob("*.bak"))
    assert {b.name.split(".")[0] for b in backups} == {"webshop_woocommerce", "pos_export"}

    code, out, err = cli(project, "undo", "last", "-c", config, "--yes")
    assert code == 0, out + err
    for name, data in originals.items():
        assert (project / "examples" / name).read_bytes() == data, f"{name} not restored"
    assert findings(project) == before

    code, out, _ = cli(project, "show", "last", "-c", config)
    assert code == 0
    assert "applied" in out


def test_dry_run_shows_payloads_and_changes_nothing(project: Path) -> None:
    config = str(project / "omnisync.yaml")
    cli(project, "plan", "-c", config, "--at", AT, "--out", str(project / "plan.json"))
    originals = {name: (project / "examples" / name).read_bytes() for name in EXAMPLE_FILES}
    code, out, _ = cli(project, "apply", str(project / "plan.json"), "-c", config, "--dry-run")
    assert code == 0
    assert "batch 1 of 1" in out
    assert "KA-1003" in out
    for name, data in originals.items():
        assert (project / "examples" / name).read_bytes() == data


def test_apply_refuses_without_yes_when_not_a_terminal(project: Path) -> None:
    config = str(project / "omnisync.yaml")
    cli(project, "plan", "-c", config, "--at", AT, "--out", str(project / "plan.json"))
    code, _, err = cli(project, "apply", str(project / "plan.json"), "-c", config)
    assert code == 2
    assert "--yes" in err


# ------------------------------------------------------------------ real processes

BIG_CONFIG = """\
settings: {{state: state.db}}
canonical:
  connector: csv
  prices: gross
  options: {{path: erp.csv, mapping: {{sku: sku, price: price, stock: stock}}, currency: EUR}}
channels:
  shop:
    connector: csv
    options: {{path: shop.csv, mapping: {{sku: sku, price: price, stock: stock}}, currency: EUR}}
    push:
      fields: [price, stock]
      guard: {{max_records: 1000, max_records_pct: 100, max_price_change_pct: 1000, max_zero_stock_pct: 100}}
"""


def big_project(tmp_path: Path, n: int = 40) -> Path:
    (tmp_path / "omnisync.yaml").write_text(BIG_CONFIG.format())
    rows = [f"S{i:04d},{10 + i}.00,{i % 9}" for i in range(n)]
    (tmp_path / "erp.csv").write_text("sku,price,stock\n" + "\n".join(rows) + "\n")
    drifted = [f"S{i:04d},{9 + i}.50,{i % 9 + 1}" for i in range(n)]
    (tmp_path / "shop.csv").write_text("sku,price,stock\n" + "\n".join(drifted) + "\n")
    return tmp_path


def harness(tmp_path: Path, *args: str, delay: float = 0.15) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "OMNISYNC_TEST_WRITE_DELAY": str(delay),
        "OMNISYNC_TEST_BATCH": "2",
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "harness.py"), *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_push(project: Path, timeout: float = 60) -> None:
    """Until a push holds the run lock (the process is past start-up, sending batches)."""
    lock = project / "state.db.push.lock"
    deadline = time.monotonic() + timeout
    while not (lock.exists() and lock.read_text().startswith("pid")):
        assert time.monotonic() < deadline, "the push never started"
        time.sleep(0.02)


def omnisync(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "omnisync", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_push_killed_by_a_signal_resumes_exactly_once(tmp_path: Path, seed: int) -> None:
    project = big_project(tmp_path)
    planned = omnisync(project, "plan", "-c", "omnisync.yaml", "--out", "plan.json")
    assert planned.returncode == 0, planned.stderr
    changes = len(json.loads((project / "plan.json").read_text())["channels"][0]["changes"])
    assert changes == 80  # price and stock for 40 SKUs, 20 batches of 2 records

    push = harness(project, "apply", "plan.json", "-c", "omnisync.yaml", "--yes")
    wait_for_push(project)
    time.sleep(random.Random(seed).uniform(0.1, 2.0))  # somewhere in the middle of the push
    push.send_signal(signal.SIGKILL)
    push.wait(timeout=30)

    with Store.open(str(project / "state.db"), base_dir=project) as store:
        (run,) = [r for r in store.runs(10) if r.kind == "push"]
        # Killed, nothing could record an ending; its process is gone, so it shows as
        # interrupted (not "running" forever), with the command that finishes it.
        assert run.status == "interrupted"
        interrupted = store.journal(run.id)
    listed = subprocess.run(
        [sys.executable, "-m", "omnisync", "runs", "-c", "omnisync.yaml"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "300"},
    )
    assert "interrupted" in listed.stdout
    assert f"omnisync apply --resume {run.id}" in listed.stdout
    open_ = [e for e in interrupted if e.status in ("planned", "sending")]
    assert open_, "the push finished before the kill; lengthen the delay"

    resumed = omnisync(project, "apply", "--resume", run.id, "-c", "omnisync.yaml")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr

    with Store.open(str(project / "state.db"), base_dir=project) as store:
        journal = store.journal(run.id)
        assert {e.status for e in journal} == {"applied"}
        assert len(journal) == changes
        assert store.push_run(run.id).status == "done"
    check = omnisync(project, "check", "-c", "omnisync.yaml", "--no-history")
    assert check.returncode == 0, check.stdout  # the target holds exactly the planned values
    assert (project / "shop.csv").read_text() == (project / "erp.csv").read_text()


def test_two_syncs_at_once_one_pushes_the_other_exits_with_the_lock_code(tmp_path: Path) -> None:
    project = big_project(tmp_path, n=20)
    first = harness(project, "sync", "-c", "omnisync.yaml", delay=0.3)
    wait_for_push(project)
    second = omnisync(project, "sync", "-c", "omnisync.yaml")
    assert second.returncode == 7
    assert "another omnisync run holds the 'push' lock" in second.stderr
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, out + err
    assert out.startswith("omnisync sync ")
    assert "40 applied" in out


# ------------------------------------------------------------------ the same loop on SQL


def test_example_loop_on_a_pos_database(
    project: Path, database: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """check → plan → apply → check → undo against the example POS schema on SQLite,
    PostgreSQL and MariaDB, each step verified by reading the database directly."""
    database.run((ROOT / "examples" / "pos_schema.sql").read_text(encoding="utf-8"))
    config = project / "omnisync.yaml"
    if database.backend == "mariadb":  # MariaDB spells the upsert its own way
        edit = config.read_text(encoding="utf-8").replace(
            "ON CONFLICT (article_id, store_id) DO UPDATE SET qty = excluded.qty",
            "ON DUPLICATE KEY UPDATE qty = VALUES(qty)",
        )
        config.write_text(edit, encoding="utf-8")
    monkeypatch.setenv("POS_DB_URL", database.url)

    def cents(sku: str) -> int:
        ((value,),) = database.query(
            "SELECT p.amount_cents FROM prices p JOIN articles a ON a.id = p.article_id WHERE a.sku = :sku",
            {"sku": sku},
        )
        return int(value)

    def db_findings() -> set[tuple[str, str, str | None, str | None]]:
        code, out, err = cli(
            project,
            "check",
            "-c",
            str(config),
            "-C",
            "pos-db",
            "--at",
            AT,
            "-f",
            "json",
            "--no-history",
        )
        assert code in (0, 1), err
        return {
            (f["kind"], f["sku"], f["field"], f["location"])
            for c in json.loads(out)["channels"]
            for f in c["findings"]
        }

    planted = {
        ("changed", "KA-1002", "price", None),
        ("changed", "KA-1008", "price", None),
        ("changed", "KA-1011", "stock", "hamburg"),
    }
    assert db_findings() == planted
    assert cents("KA-1008") == 3699
    code, _, err = cli(
        project,
        "plan",
        "-c",
        str(config),
        "-C",
        "pos-db",
        "--at",
        AT,
        "--out",
        str(project / "plan.json"),
    )
    assert code == 0, err
    code, out, err = cli(
        project, "apply", str(project / "plan.json"), "-c", str(config), "--yes", "--force"
    )
    assert code == 0, out + err
    assert db_findings() == set()
    assert cents("KA-1008") == 3499
    assert cents("KA-1002") == 2499
    code, out, err = cli(project, "undo", "last", "-c", str(config), "--yes", "--force")
    assert code == 0, out + err
    assert db_findings() == planted
    assert cents("KA-1008") == 3699


def test_sigterm_ends_a_push_as_interrupted_with_the_resume_hint(tmp_path: Path) -> None:
    project = big_project(tmp_path, n=20)
    assert omnisync(project, "plan", "-c", "omnisync.yaml", "--out", "plan.json").returncode == 0
    push = harness(project, "apply", "plan.json", "-c", "omnisync.yaml", "--yes", delay=0.2)
    wait_for_push(project)
    time.sleep(0.3)
    push.send_signal(signal.SIGTERM)
    _, err = push.communicate(timeout=30)
    assert push.returncode == 130, err
    assert "--resume" in err
    with Store.open(str(project / "state.db"), base_dir=project) as store:
        (run,) = [r for r in store.runs(10) if r.kind == "push"]
        assert run.status == "interrupted"
    resumed = omnisync(project, "apply", "--resume", "last", "-c", "omnisync.yaml")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr


def test_plan_out_with_format_json_prints_the_json_not_a_table(project: Path) -> None:
    config = str(project / "omnisync.yaml")
    out = project / "plan.json"
    code, stdout, err = cli(
        project, "plan", "-c", config, "--at", AT, "--out", str(out), "-f", "json"
    )
    assert code == 0, err
    assert json.loads(stdout) == json.loads(out.read_text())
    assert "plan written to" in err


def test_plan_unknown_format_is_refused_before_any_work(project: Path) -> None:
    code, _, err = cli(project, "plan", "-c", str(project / "omnisync.yaml"), "-f", "yaml")
    assert code == 2
    assert "unknown format 'yaml'" in err
    assert not (project / ".omnisync").exists()


def _truncate_canonical(project: Path, keep: int) -> None:
    """Cut the ERP export to its first ``keep`` records, as a failed export job would."""
    import csv
    import io

    erp = project / "examples" / "erp_export.csv"
    rows = list(csv.reader(io.StringIO(erp.read_text(encoding="cp1252")), delimiter=";"))
    out = io.StringIO()
    csv.writer(out, delimiter=";", lineterminator="\n").writerows(rows[: keep + 1])
    erp.write_text(out.getvalue(), encoding="cp1252")


def test_truncated_canonical_is_refused_by_sync_again_and_again(project: Path) -> None:
    config = str(project / "omnisync.yaml")
    code, _, _ = cli(project, "check", "-c", config, "--at", AT)
    assert code == 1  # the baseline: the whole export
    _truncate_canonical(project, keep=3)
    originals = {name: (project / "examples" / name).read_bytes() for name in EXAMPLE_FILES[1:]}
    for attempt in range(2):  # a cron job runs the same cut export again
        code, out, err = cli(project, "sync", "-c", config, "--at", AT)
        assert code == 6, (attempt, out, err)
        assert "canonical.guard.min_ratio" in err
        assert "of the 14 in the last good check" in err
    for name, data in originals.items():
        assert (project / "examples" / name).read_bytes() == data, name


def test_truncated_canonical_is_refused_by_plan_and_apply_until_forced(project: Path) -> None:
    config = str(project / "omnisync.yaml")
    plan = str(project / "plan.json")
    assert cli(project, "check", "-c", config, "--at", AT)[0] == 1
    _truncate_canonical(project, keep=3)
    code, _, err = cli(project, "plan", "-c", config, "--at", AT, "--out", plan)
    assert code == 0
    assert "canonical.guard.min_ratio" in err  # plan warns
    assert json.loads((project / "plan.json").read_text())["canonical"]["baseline"] == 14
    code, _, err = cli(project, "apply", plan, "-c", config, "--yes")
    assert code == 6
    assert "looks truncated" in err
    code, _, err = cli(project, "apply", plan, "-c", config, "--yes", "--force")
    assert code == 0, err
    # Pushed on purpose: the three-record catalogue is the baseline now.
    code, _, err = cli(project, "plan", "-c", config, "--at", AT, "--out", plan)
    assert "canonical.guard.min_ratio" not in err


def test_lock_held_under_log_json_is_a_json_log_line(tmp_path: Path) -> None:
    project = big_project(tmp_path, n=3)
    with Store.open("state.db", base_dir=project) as store, store.lock("push"):
        held = omnisync(project, "--log-json", "sync", "-c", "omnisync.yaml")
    assert held.returncode == 7
    lines = [json.loads(line) for line in held.stderr.splitlines()]
    (error,) = [line for line in lines if line["level"] == "error"]
    assert "holds the 'push' lock" in error["message"]
    assert error["exit_code"] == 7
