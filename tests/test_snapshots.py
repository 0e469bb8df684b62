"""Snapshots: a recorded check keeps what it read as Parquet; ``check --from-snapshot RUN``
compares that under the config as it is now, reading no source."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from omnisync.cli import app
from omnisync.store import Store

ROOT = Path(__file__).resolve().parents[1]
AT = "2026-11-23T12:00:00+01:00"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "160"})
    return result.exit_code, result.stdout, result.stderr


def settings(config: Path, **values: Any) -> None:
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["settings"].update(values)
    config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def edit_expect(config: Path, channel: str, expect: dict[str, Any]) -> None:
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["channels"][channel]["expect"].update(expect)
    config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    shutil.copy(ROOT / "config.example.yaml", tmp_path / "omnisync.yaml")
    config = tmp_path / "omnisync.yaml"
    settings(config, snapshots=True)
    return config


def check(config: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = invoke("check", "-c", str(config), "--at", AT, "-f", "json", *args)
    return code, json.loads(out) if out.strip() else {}, err


def findings(report: dict[str, Any]) -> list[tuple[str, str, str, str | None]]:
    return sorted(
        (c["name"], f["kind"], f["sku"], f.get("field"))
        for c in report["channels"]
        for f in c["findings"]
    )


def newest_run(config: Path) -> str:
    with Store.open(".omnisync/state.db", base_dir=config.parent) as store:
        return store.runs(1)[0].id


def test_a_snapshot_re_diffs_offline_to_the_same_findings(project: Path) -> None:
    code, first, err = check(project)
    assert code == 1, err
    run = newest_run(project)
    folder = project.parent / ".omnisync" / "snapshots" / run
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert list(manifest["sources"]) == ["canonical", "webshop", "pos", "google"]
    assert (folder / manifest["sources"]["canonical"]["folder"] / "items.parquet").is_file()
    # The sources are gone: the re-diff reads none of them.
    shutil.rmtree(project.parent / "examples")
    code, again, err = check(project, "--from-snapshot", run)
    assert code == 1, err
    assert findings(again) == findings(first)
    assert [c["counts"] for c in again["channels"]] == [c["counts"] for c in first["channels"]]
    # A re-diff is recorded as one, and keeps no snapshot of its own.
    code, out, _ = invoke("runs", "-c", str(project), "-n", "2")
    assert f"re-diff of {run}" in out
    assert "(snapshot kept)" in out
    assert len(list((project.parent / ".omnisync" / "snapshots").iterdir())) == 1


def test_new_rules_apply_to_the_data_the_snapshot_kept(project: Path) -> None:
    check(project)
    run = newest_run(project)
    shutil.rmtree(project.parent / "examples")
    _, before, _ = check(project, "--from-snapshot", run)
    webshop_prices = [f for f in findings(before) if f[0] == "webshop" and f[3] == "price"]
    assert webshop_prices
    edit_expect(project, "webshop", {"check": ["title", "gtin", "sale_price", "stock"]})
    _, after, _ = check(project, "--from-snapshot", run)
    assert [f for f in findings(after) if f[0] == "webshop" and f[3] == "price"] == []
    assert [f for f in findings(after) if f[0] != "webshop"] == [
        f for f in findings(before) if f[0] != "webshop"
    ]


def test_last_means_the_newest_check_that_kept_a_snapshot(project: Path) -> None:
    check(project)
    run = newest_run(project)
    check(project, "--from-snapshot", "last")
    code, report, err = check(project, "--from-snapshot", "last")
    assert code == 1, err
    assert report["channels"]
    with Store.open(".omnisync/state.db", base_dir=project.parent) as store:
        totals = [r.totals.get("from_snapshot") for r in store.runs(3)]
    assert totals == [run, run, None]


def test_no_history_keeps_no_snapshot_and_leaves_no_partial_folder(project: Path) -> None:
    code, _, _ = check(project, "--no-history")
    assert code == 1
    snapshots = project.parent / ".omnisync" / "snapshots"
    assert not snapshots.exists() or list(snapshots.iterdir()) == []


def test_a_check_that_fails_leaves_no_snapshot(project: Path) -> None:
    (project.parent / "examples" / "erp_export.csv").write_text("Artikelnummer\n", "cp1252")
    code, _, err = check(project)
    assert code not in (0, 1), err
    snapshots = project.parent / ".omnisync" / "snapshots"
    assert not snapshots.exists() or list(snapshots.iterdir()) == []


def test_a_partial_folder_a_killed_check_left_is_cleared_later(project: Path) -> None:
    snapshots = project.parent / ".omnisync" / "snapshots"
    stale = snapshots / ".partial-deadbeef"
    (stale / "000-canonical").mkdir(parents=True)
    old = stale.stat().st_mtime - 7200
    os.utime(stale, (old, old))
    fresh = snapshots / ".partial-running"
    fresh.mkdir()
    check(project)
    assert not stale.exists()
    assert fresh.exists()  # another check may be writing it


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("nope", "no run with id 'nope'"),
        ("plain", "has no snapshot in"),
    ],
)
def test_a_run_without_a_snapshot_is_a_clear_error(project: Path, ref: str, message: str) -> None:
    settings(project, snapshots=False)
    check(project)
    if ref == "plain":
        ref = newest_run(project)
    code, _, err = check(project, "--from-snapshot", ref)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_a_channel_the_snapshot_lacks_is_an_error_on_its_report(project: Path) -> None:
    check(project, "-C", "webshop")
    run = newest_run(project)
    code, report, _ = check(project, "--from-snapshot", run)
    errors = {c["name"]: c.get("error") for c in report["channels"]}
    assert errors["webshop"] is None
    assert "holds no source 'pos'" in errors["pos"]
    assert code == 2  # the data is not there, as for a channel file that is not


def test_a_damaged_manifest_is_an_input_error(project: Path) -> None:
    check(project)
    run = newest_run(project)
    manifest = project.parent / ".omnisync" / "snapshots" / run / "manifest.json"
    manifest.write_text("{not json", encoding="utf-8")
    code, _, err = check(project, "--from-snapshot", run)
    assert code not in (0, 1)
    assert "not a snapshot manifest omnisync can read" in err


def test_pruning_a_run_removes_its_snapshot(project: Path) -> None:
    for _ in range(3):
        check(project)
    snapshots = project.parent / ".omnisync" / "snapshots"
    assert len(list(snapshots.iterdir())) == 3
    code, out, err = invoke("runs", "-c", str(project), "--prune", "--keep-runs", "1")
    assert code == 0, err
    assert "2 snapshot(s)" in out
    assert [p.name for p in snapshots.iterdir()] == [newest_run(project)]


def test_a_folder_for_snapshots_is_relative_to_the_config(project: Path) -> None:
    settings(project, snapshots="kept/pulls")
    check(project)
    assert (project.parent / "kept" / "pulls" / newest_run(project) / "manifest.json").is_file()
