"""The command line end to end: the shipped example, every bad input, exit codes, formats, history.

Most tests go through Typer's runner; the exit-code contract is also checked through a real
subprocess, as cron and CI see it.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from omnisync.cli import app

ROOT = Path(__file__).resolve().parents[1]
AT = "2026-11-23T12:00:00+01:00"

#: Every mismatch planted in examples/ — the check must find exactly these.
PLANTED = {
    ("webshop", "changed", "KA-1002", "sale_price"),  # running sale not shown
    ("webshop", "changed", "KA-1003", "price"),  # 79.00 instead of 79.99
    ("webshop", "changed", "KA-1004", "stock"),  # buffer not applied
    ("webshop", "changed", "KA-1005", "title"),  # typo
    ("webshop", "missing", "KA-1014", None),  # new product not listed yet
    ("webshop", "extra", "KA-0999", None),  # discontinued product still listed
    ("pos", "duplicate", "KA-1006", None),
    ("pos", "changed", "KA-1002", "price"),  # shelf price ignores the running sale
    ("pos", "changed", "KA-1008", "price"),  # old shelf price
    ("pos", "changed", "KA-1011", "stock"),  # Hamburg count off
    ("google", "changed", "KA-1001", "title"),  # brand missing from the title
    ("google", "changed", "KA-1009", "availability"),  # sold out, feed says in stock
    ("google", "changed", "KA-1010", "gtin"),
    ("google", "changed", "KA-1012", "price"),
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the example config and data, with its state file inside tmp_path."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    shutil.copy(ROOT / "config.example.yaml", tmp_path / "omnisync.yaml")
    return tmp_path


def invoke(project: Path, *args: str) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "160"})
    return result.exit_code, result.stdout, result.stderr


def check(project: Path, *args: str) -> tuple[int, str, str]:
    return invoke(project, "check", "-c", str(project / "omnisync.yaml"), "--at", AT, *args)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_example_finds_exactly_the_planted_mismatches(project: Path) -> None:
    code, out, _ = check(project, "--format", "json")
    assert code == 1
    report = json.loads(out)
    found = {
        (f["channel"], f["kind"], f["sku"], f["field"])
        for c in report["channels"]
        for f in c["findings"]
    }
    assert found == PLANTED
    webshop = next(c for c in report["channels"] if c["name"] == "webshop")
    price = next(f for f in webshop["findings"] if f["sku"] == "KA-1003")
    assert (price["canonical"], price["expected"], price["actual"]) == (
        "67.22 EUR",
        "79.99 EUR",
        "79.00 EUR",
    )
    assert price["rule"] == "net→gross 19% VAT, round to .99"
    stock = next(f for f in webshop["findings"] if f["sku"] == "KA-1004")
    assert (stock["expected"], stock["actual"]) == ("4", "6")


def test_example_table_output_for_people(project: Path) -> None:
    code, out, _ = check(project)
    assert code == 1
    for text in ("webshop", "pos", "google", "KA-1003", "79.99 EUR", "KA-0999"):
        assert text in out


def test_severities_decide_the_exit_code_and_every_format_shows_them(project: Path) -> None:
    config = project / "omnisync.yaml"
    edit(
        config,
        "      check: [title, gtin, brand, price, sale_price, availability]\n",
        "      check: [title, gtin, brand, price, sale_price, availability]\n"
        "      severity: {title: warn, gtin: warn, availability: warn, changed: info}\n",
    )
    # google's four findings: title, gtin, availability (warn) and price (info, via `changed`).
    code, out, _ = check(project, "-C", "google", "--format", "json")
    assert code == 0  # warnings alone pass
    report = json.loads(out)
    assert report["status"] == "warning"
    (google,) = report["channels"]
    assert google["status"] == "warning"
    assert {(f["field"], f["severity"]) for f in google["findings"]} == {
        ("title", "warn"),
        ("gtin", "warn"),
        ("availability", "warn"),
        ("price", "info"),
    }
    assert (report["totals"]["fail"], report["totals"]["warn"], report["totals"]["info"]) == (
        0,
        3,
        1,
    )
    code, _, _ = check(project, "-C", "google", "--fail-on-warn")
    assert code == 1
    # --fail-on narrows what counts; info findings never count.
    code, _, _ = check(project, "-C", "google", "--fail-on-warn", "--fail-on", "price")
    assert code == 0

    code, out, _ = check(project, "-C", "google", "--format", "junit")
    suite = ET.fromstring(out).find("testsuite")
    assert suite is not None
    assert suite.get("failures") == "0"
    title = next(c for c in suite.iter("testcase") if c.get("name") == "title")
    assert title.find("failure") is None
    assert (title.findtext("system-out") or "").startswith("warn: KA-1001 title")

    code, out, _ = check(project, "-C", "google", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["severity"] for r in rows} == {"warn", "info"}
    code, out, _ = check(project, "-C", "google", "--format", "markdown")
    assert "🟡 warning" in out
    assert "changed (warn)" in out
    code, out, _ = check(project, "-C", "google")
    assert "warning" in out
    assert "changed (info)" in out

    # The history keeps them: `show` renders the same severities.
    code, out, _ = invoke(project, "show", "last", "-c", str(config), "--format", "json")
    assert {f["severity"] for f in json.loads(out)["channels"][0]["findings"]} == {"warn", "info"}


def test_an_unknown_severity_key_or_value_is_a_config_error(project: Path) -> None:
    config = project / "omnisync.yaml"
    edit(config, "        data_quality: warn", "        titel: warn")
    code, _, err = invoke(project, "validate", "-c", str(config))
    assert code == 2
    assert "channels.webshop.expect.severity" in err
    assert "'titel'" in err
    edit(config, "        titel: warn", "        title: loud")
    code, _, err = invoke(project, "validate", "-c", str(config))
    assert code == 2
    assert "'info', 'warn' or 'fail'" in err


def test_junit_report_parses_and_names_failing_skus(project: Path) -> None:
    target = project / "reports" / "junit.xml"
    code, _, err = check(project, "--format", "junit", "--output", str(target))
    assert code == 1
    root = ET.parse(target).getroot()
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"omnisync.webshop", "omnisync.pos", "omnisync.google"}
    price = next(
        tc for tc in suites["omnisync.webshop"].findall("testcase") if tc.get("name") == "price"
    )
    failure = price.find("failure")
    assert failure is not None
    assert "KA-1003" in (failure.text or "")
    assert "written to" in err


def test_markdown_and_csv_formats(project: Path) -> None:
    code, out, _ = check(project, "--format", "markdown", "--limit", "2")
    assert code == 1
    assert "| Channel |" in out
    assert "more" in out
    code, out, _ = check(project, "--format", "csv")
    assert (
        out.splitlines()[0]
        == "channel,kind,sku,field,location,canonical,expected,actual,rule,detail,source,origin,severity"
    )
    assert len(out.splitlines()) == len(PLANTED) + 1


def test_fail_on_and_threshold(project: Path) -> None:
    assert check(project, "-C", "google", "--fail-on", "stock", "-f", "json")[0] == 0
    assert check(project, "-C", "google", "--fail-on", "gtin", "-f", "json")[0] == 1
    assert check(project, "-C", "google", "--threshold", "4", "-f", "json")[0] == 0
    assert check(project, "-C", "google", "--threshold", "3", "-f", "json")[0] == 1
    code, _, err = check(project, "--fail-on", "prize")
    assert code == 2
    assert "unknown field or kind prize" in err


def test_consistent_channel_exits_zero(project: Path) -> None:
    # The print catalogue is consistent (and disabled by default; -C runs it anyway).
    code, out, _ = check(project, "-C", "catalogue-print", "-f", "json")
    assert code == 0
    assert json.loads(out)["channels"][0]["findings"] == []


def test_runs_and_show_render_a_recorded_run_again(project: Path) -> None:
    code, first, _ = check(project, "--format", "json")
    config = str(project / "omnisync.yaml")
    code, out, _ = invoke(project, "runs", "-c", config)
    assert code == 0
    run_id = json.loads(first)["run_id"]
    assert run_id in out
    code, again, _ = invoke(project, "show", run_id[:12], "-c", config, "--format", "json")
    assert code == 0
    assert json.loads(again)["channels"] == json.loads(first)["channels"]
    code, _, err = invoke(project, "show", "nosuchrun", "-c", config)
    assert code == 2
    assert "omnisync runs" in err


def test_validate_and_connectors(project: Path) -> None:
    code, out, _ = invoke(project, "validate", "-c", str(project / "omnisync.yaml"))
    assert code == 0
    assert "valid" in out
    code, out, _ = invoke(project, "connectors")
    assert code == 0
    for name in ("csv", "tsv", "json", "jsonl"):
        assert name in out
    assert "content, price, stock" in out


# ------------------------------------------------------------------ bad input


def test_config_typo_is_exit_2_with_location(project: Path) -> None:
    edit(
        project / "omnisync.yaml",
        "        buffer: 2               # units",
        "        bufer: 2               # units",
    )
    code, _, err = check(project)
    assert code == 2
    assert "channels.webshop.expect.stock.bufer: unknown key 'bufer'" in err
    assert "omnisync.yaml:" in err


def test_unknown_connector_lists_installed(project: Path) -> None:
    edit(project / "omnisync.yaml", "connector: tsv", "connector: tvs")
    code, _, err = check(project)
    assert code == 2
    assert "unknown connector 'tvs'" in err
    assert "csv" in err


def test_missing_env_var(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POS_EXPORT", raising=False)
    edit(project / "omnisync.yaml", "path: examples/pos_export.csv", "path: ${POS_EXPORT}")
    code, _, err = check(project)
    assert code == 2
    assert "environment variable POS_EXPORT is not set" in err


def test_missing_channel_file_is_exit_3_and_others_still_checked(project: Path) -> None:
    (project / "examples" / "pos_export.csv").unlink()
    code, out, _ = check(project, "--format", "json")
    assert code == 3
    channels = {c["name"]: c for c in json.loads(out)["channels"]}
    assert "pos_export.csv" in channels["pos"]["error"]
    assert channels["webshop"]["findings"]  # still checked


def test_unparsable_canonical_price_names_file_line_column_sku(project: Path) -> None:
    erp = project / "examples" / "erp_export.csv"
    erp.write_bytes(erp.read_bytes().replace(b";67,22;", b";67,2x;"))
    code, _, err = check(project)
    assert code == 2
    assert "erp_export.csv:5" in err
    assert "VK netto" in err
    assert "KA-1003" in err


def test_duplicate_canonical_sku(project: Path) -> None:
    erp = project / "examples" / "erp_export.csv"
    erp.write_bytes(erp.read_bytes().replace(b"KA-1007;", b"KA-1006;"))
    code, _, err = check(project)
    assert code == 2
    assert "'KA-1006' appears 2 times" in err


def test_empty_canonical_file(project: Path) -> None:
    (project / "examples" / "erp_export.csv").write_bytes(b"")
    code, _, err = check(project)
    assert code == 2
    assert "empty" in err


def test_header_only_canonical_has_no_records(project: Path) -> None:
    erp = project / "examples" / "erp_export.csv"
    erp.write_bytes(erp.read_bytes().split(b"\r\n")[0] + b"\r\n")
    code, _, err = check(project)
    assert code == 2
    assert "has no records" in err


def test_missing_required_column(project: Path) -> None:
    erp = project / "examples" / "erp_export.csv"
    erp.write_bytes(erp.read_bytes().replace(b"VK netto", b"VK_netto", 1))
    code, _, err = check(project)
    assert code == 2
    assert "VK netto" in err


def test_wrong_encoding_suggests_the_right_one(project: Path) -> None:
    edit(project / "omnisync.yaml", "    encoding: cp1252", "    encoding: utf-8")
    code, _, err = check(project)
    assert code == 2
    assert "encoding" in err


# ------------------------------------------------------------------ real processes


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "omnisync", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_exit_codes_in_a_real_process(project: Path) -> None:
    ok = run_cli("check", "-c", "omnisync.yaml", "--at", AT, "-C", "catalogue-print", cwd=project)
    assert ok.returncode == 0, ok.stderr
    mismatch = run_cli("check", "-c", "omnisync.yaml", "--at", AT, cwd=project)
    assert mismatch.returncode == 1, mismatch.stderr
    assert "KA-1003" in mismatch.stdout
    assert "\x1b[" not in mismatch.stdout
    (project / "examples" / "google_feed.tsv").unlink()
    unreadable = run_cli("check", "-c", "omnisync.yaml", "-C", "google", cwd=project)
    assert unreadable.returncode == 3
    bad = run_cli("check", "-c", "missing.yaml", cwd=project)
    assert bad.returncode == 2
    assert "config file not found" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_debug_shows_traceback_only_when_asked(project: Path) -> None:
    plain = run_cli("validate", "-c", "nope.yaml", cwd=project)
    assert "Traceback" not in plain.stderr
    debug = run_cli("--debug", "validate", "-c", "nope.yaml", cwd=project)
    assert debug.returncode == 2
    assert "Traceback" in debug.stderr


def test_at_without_offset_is_read_in_the_configured_time_zone(project: Path) -> None:
    # config.example.yaml has settings.timezone: Europe/Berlin (UTC+1 in November).
    code, out, _ = invoke(
        project,
        "check",
        "-c",
        str(project / "omnisync.yaml"),
        "--at",
        "2026-11-30T23:30",
        "-f",
        "json",
    )
    assert code == 1
    assert json.loads(out)["evaluated_at"].startswith("2026-11-30T22:30:00")


def test_a_placeholder_price_says_it_is_not_an_amount(project: Path) -> None:
    erp = project / "examples" / "erp_export.csv"
    erp.write_bytes(erp.read_bytes().replace(b";67,22;", b";N/A;"))
    code, _, err = check(project)
    assert code == 2
    assert "erp_export.csv:5" in err
    assert "has no amount" in err
    assert "3 letters" not in err


def test_listed_assortment_matched_never_exceeds_in_channel(project: Path) -> None:
    code, out, _ = check(project, "-C", "catalogue-print", "-f", "json")
    assert code == 0
    (channel,) = json.loads(out)["channels"]
    counts = channel["counts"]
    assert counts["channel"] < counts["canonical"]  # the catalogue prints a selection
    assert counts["matched"] == counts["channel"]


def test_a_renamed_sku_is_an_identity_finding_in_its_own_section_and_not_relisted(
    project: Path,
) -> None:
    # The shop holds KA-1007 under a mistyped SKU (letter O for zero), same GTIN.
    shop = project / "examples" / "webshop_woocommerce.csv"
    edit(shop, ",KA-1007,", ",KA-1OO7,")
    code, out, _ = check(project, "-C", "webshop", "--format", "json")
    assert code == 1
    (webshop,) = json.loads(out)["channels"]
    identity = [f for f in webshop["findings"] if f["kind"] == "identity"]
    assert [(f["sku"], f["field"], f["expected"], f["actual"]) for f in identity] == [
        ("KA-1007", "sku", "KA-1007", "KA-1OO7")
    ]
    assert webshop["counts"]["identity"] == 1
    code, out, _ = check(project, "-C", "webshop")
    assert "webshop identity: 1 finding: SKUs not lining up with their products" in out
    code, out, _ = check(project, "-C", "webshop", "--format", "markdown")
    assert "**Identity**: SKUs not lining up with their products" in out

    plan = project / "plan.json"
    code, _, err = invoke(
        project, "plan", "-c", str(project / "omnisync.yaml"), "--at", AT, "--out", str(plan)
    )
    assert code == 0, err
    channels = {c["name"]: c for c in json.loads(plan.read_text(encoding="utf-8"))["channels"]}
    changes = channels["webshop"]["changes"]
    assert not [c for c in changes if c["sku"] in ("KA-1007", "KA-1OO7")]
    skipped = {(s["sku"], s["what"]): s["reason"] for s in channels["webshop"]["skipped"]}
    assert "one product with KA-1OO7" in skipped[("KA-1007", "missing")]


def test_a_variant_under_another_parent_is_reported_from_files(tmp_path: Path) -> None:
    (tmp_path / "erp.csv").write_text(
        "sku,title,model,price\nS-1,Shirt S,SHIRT-RED,10.00\nS-2,Shirt M,SHIRT-RED,10.00\n"
        "S-4,Mug,,5.00\n",
        encoding="utf-8",
    )
    (tmp_path / "shop.csv").write_text(
        "sku,title,parent,price\nS-1,Shirt S,SHIRT-RED,10.00\nS-2,Shirt M,SHIRT-BLUE,10.00\n"
        "S-4,Mug,MUG,5.00\n",
        encoding="utf-8",
    )
    mapping = "{sku: sku, title: title, price: price, parent: %s}"
    (tmp_path / "omnisync.yaml").write_text(
        "canonical:\n  connector: csv\n"
        f"  options: {{path: erp.csv, currency: EUR, mapping: {mapping % 'model'}}}\n"
        "channels:\n  shop:\n    connector: csv\n"
        f"    options: {{path: shop.csv, currency: EUR, mapping: {mapping % 'parent'}}}\n",
        encoding="utf-8",
    )
    code, out, err = invoke(
        tmp_path, "check", "-c", str(tmp_path / "omnisync.yaml"), "-f", "json", "--no-history"
    )
    assert code == 1, err
    (shop,) = json.loads(out)["channels"]
    assert [
        (f["kind"], f["sku"], f["field"], f["expected"], f["actual"]) for f in shop["findings"]
    ] == [("identity", "S-2", "parent", "SHIRT-RED", "SHIRT-BLUE")]
