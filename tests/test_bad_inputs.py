"""Inputs that used to crash (exit 70), hang or be accepted silently (issue 12).

Each class of bad input gets a message that says what and where (file:line, SKU, column or
config key) and exit 2, never a traceback. The CLI runs in-process through Typer's runner,
except where a real process is the point (signals, stdout that cannot be written).
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from omnisync.cli import app

ROOT = Path(__file__).resolve().parents[1]

CONFIG = """\
version: 1
settings:
  state: state.db
canonical:
  connector: csv
  options:
    path: canon.csv
    currency: EUR
    mapping: {sku: sku, title: title, price: price, stock: stock}
channels:
  shop:
    connector: csv
    options:
      path: shop.csv
      currency: EUR
      mapping: {sku: sku, title: title, price: price, stock: stock}
"""
HEADER = "sku,title,price,stock\n"
GOOD = HEADER + "A1,Tee,10.00,5\nA2,Cap,5.50,3\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "omnisync.yaml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "canon.csv").write_text(GOOD, encoding="utf-8")
    (tmp_path / "shop.csv").write_text(GOOD, encoding="utf-8")
    return tmp_path


def run(project: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def check(project: Path, *args: str) -> tuple[int, str, str]:
    return run(project, "check", "-c", str(project / "omnisync.yaml"), "--no-history", *args)


def canonical(project: Path, rows: str) -> None:
    (project / "canon.csv").write_text(HEADER + rows, encoding="utf-8")


def shop(project: Path, rows: str) -> None:
    (project / "shop.csv").write_text(HEADER + rows, encoding="utf-8")


def test_the_project_is_consistent(project: Path) -> None:
    code, out, err = check(project)
    assert code == 0, out + err


# ------------------------------------------------------------------ numbers


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ("A1,Tee,1234567890123456789012345678901234567890,5", "price"),
        ("A1,Tee,1234567890123.5,5", "price"),
        ("A1,Tee,10.00,1234567890123456789012345678901234567890", "stock"),
        ("A1,Tee,10.00,-99999999999999999999", "stock"),
    ],
)
def test_numbers_beyond_the_engine_name_file_line_sku_and_column(
    project: Path, row: str, column: str
) -> None:
    canonical(project, f"A2,Cap,5.50,3\n{row}\n")
    code, _, err = check(project)
    assert code == 2, err
    assert "canon.csv:3" in err
    assert "A1" in err
    assert repr(column) in err
    assert "internal error" not in err


def test_a_huge_number_in_a_channel_fails_that_channel_with_its_line(project: Path) -> None:
    shop(project, "A1,Tee,10.00,5\nA2,Cap,5.50,99999999999999999999999\n")
    code, out, err = check(project, "--format", "json")
    assert code == 2, err
    assert "shop.csv:3" in out
    assert "internal error" not in err


def test_the_largest_numbers_the_engine_holds_still_compare(project: Path) -> None:
    rows = "A1,Tee,999999999999.99,999999999999999999\nA2,Cap,5.50,3\n"
    canonical(project, rows)
    shop(project, rows)
    code, out, err = check(project)
    assert code == 0, out + err


@pytest.mark.parametrize("value", ["\u0663", "1\u0660", "\uff15", "\u0967\u0968.50"])
def test_digits_of_other_scripts_are_not_numbers(project: Path, value: str) -> None:
    canonical(project, f"A1,Tee,{value},5\nA2,Cap,5.50,{value}\n")
    code, _, err = check(project)
    assert code == 2, err
    assert "canon.csv:2" in err
    assert "canon.csv:3" in err
    assert "not a number" in err


def test_a_negative_canonical_price_is_an_input_error(project: Path) -> None:
    canonical(project, "A1,Tee,-10.00,5\nA2,Cap,5.50,3\n")
    code, _, err = check(project)
    assert code == 2, err
    assert "canon.csv:2" in err
    assert "A1" in err
    assert "negative price" in err


def test_a_negative_canonical_price_found_by_the_record_path_too(project: Path) -> None:
    # A currency symbol sends the value through the Python parser: same answer.
    canonical(project, "A1,Tee,10.00,5\nA2,Cap,-5.50 EUR,3\n")
    code, _, err = check(project)
    assert code == 2, err
    assert "canon.csv:3" in err
    assert "negative price" in err


def test_negative_canonical_stock_is_accepted_but_not_silently(project: Path) -> None:
    # ERPs allow negative on-hand stock (oversold, backorders): the channel can only list 0.
    canonical(project, "A1,Tee,10.00,5\nA2,Cap,5.50,-3\n")
    shop(project, "A1,Tee,10.00,5\nA2,Cap,5.50,0\n")
    code, out, err = check(project)
    assert code == 0, out + err
    assert "negative stock" in err
    assert "A2" in err
    assert "-3" in err


def test_negative_channel_stock_is_compared_as_it_is(project: Path) -> None:
    # Shopify reports oversold variants with negative inventory: a real value, not an error.
    shop(project, "A1,Tee,10.00,5\nA2,Cap,5.50,-2\n")
    code, out, err = check(project, "--format", "json")
    assert code == 1, err
    assert '"actual": "-2"' in out


# ------------------------------------------------------------------ SKUs


@pytest.mark.parametrize(
    ("sku", "shown"),
    [('"A\x002"', "U+0000"), ('"A\n2"', "U+000A"), ('"A\x012"', "U+0001"), ('"A\x7f2"', "U+007F")],
)
def test_control_characters_in_a_sku_are_an_error_with_the_line(
    project: Path, sku: str, shown: str
) -> None:
    canonical(project, f"A1,Tee,10.00,5\n{sku},Cap,5.50,3\n")
    code, _, err = check(project)
    assert code == 2, err
    assert "canon.csv:3" in err
    assert "control character" in err
    assert shown in err


def test_control_characters_in_a_channel_sku_fail_that_channel(project: Path) -> None:
    shop(project, 'A1,Tee,10.00,5\n"A\x002",Cap,5.50,3\n')
    code, out, _ = check(project, "--format", "json")
    assert code == 2
    assert "shop.csv:3" in out
    assert "control character" in out


def test_records_from_any_connector_beyond_the_engine_are_located() -> None:
    # Shop connectors build records themselves; the engine names the record, not a crash.
    from decimal import Decimal

    from omnisync.diff import DiffEngine
    from omnisync.errors import InputError
    from omnisync.models import Money, Record

    records = [
        Record(sku="A1", price=Money(Decimal("10"), "EUR"), origin="api:1"),
        Record(sku="A2", price=Money(Decimal("1e30"), "EUR"), origin="api:2"),
        Record(sku="A3", stock={"default": 10**30}, origin="api:3"),
    ]
    engine = DiffEngine()
    try:
        with pytest.raises(InputError) as caught:
            engine.load("ch", iter(records), frozenset())
    finally:
        engine.close()
    text = str(caught.value)
    assert "api:2: SKU A2: price" in text
    assert "api:3: SKU A3: stock" in text


# ------------------------------------------------------------------ configs


def validate(project: Path, text: str) -> tuple[int, str]:
    (project / "omnisync.yaml").write_text(text, encoding="utf-8")
    code, out, err = run(project, "validate", "-c", str(project / "omnisync.yaml"))
    return code, out + err


ALIAS_BOMB = "".join(
    [
        'a: &a ["x","x","x","x","x","x","x","x","x"]\n',
        *(
            f"{chr(ord('a') + i)}: &{chr(ord('a') + i)} [{', '.join(['*' + chr(ord('a') + i - 1)] * 9)}]\n"
            for i in range(1, 9)
        ),
    ]
)


def test_a_yaml_alias_bomb_is_refused_quickly(project: Path) -> None:
    code, text = validate(project, CONFIG + ALIAS_BOMB)
    assert code == 2, text
    assert "omnisync.yaml:" in text
    assert "alias" in text


def test_many_aliases_of_a_big_block_are_refused(project: Path) -> None:
    block = "big: &big {" + ", ".join(f"k{i}: {i}" for i in range(2000)) + "}\n"
    uses = "".join(f"u{i}: *big\n" for i in range(200))
    code, text = validate(project, CONFIG + block + uses)
    assert code == 2, text
    assert "alias" in text


def test_ordinary_anchors_and_aliases_still_work(project: Path) -> None:
    text = CONFIG.replace(
        "    mapping: {sku: sku, title: title, price: price, stock: stock}\n",
        "    mapping: &columns {sku: sku, title: title, price: price, stock: stock}\n",
        1,
    ).replace(
        "      mapping: {sku: sku, title: title, price: price, stock: stock}\n",
        "      mapping: *columns\n",
    )
    assert "*columns" in text
    code, out = validate(project, text)
    assert code == 0, out


@pytest.mark.parametrize("nesting", ["flow", "block"])
def test_deep_nesting_is_a_config_error(project: Path, nesting: str) -> None:
    depth = 20_000
    if nesting == "flow":
        deep = "x: " + "[" * depth + "]" * depth + "\n"
    else:
        deep = "x:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 3000))
    code, text = validate(project, CONFIG + deep)
    assert code == 2, text[-2000:]
    assert "nest" in text
    assert "omnisync.yaml:" in text
    assert "Traceback" not in text


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("!include other.yaml", "!include"),
        ("!!python/object:os.system x", "python/object"),
        ("!!binary not-base64!", "binary"),
        ("!!int twelve", "twelve"),
        ("!!float abc", "abc"),
        ("!!timestamp 2026-13-45", "2026-13-45"),
        ("!!set {a, b}", None),
        ("!!omap [a]", "omap"),
    ],
)
def test_tags_that_cannot_be_constructed_are_config_errors(
    project: Path, value: str, message: str | None
) -> None:
    code, text = validate(project, CONFIG + f"extra: {value}\n")
    assert code == 2, text
    assert "omnisync.yaml:" in text
    assert "internal error" not in text
    if message:
        assert message in text


@pytest.mark.parametrize(
    "limit", ["99999999999TB", "18447000TB", "1KB", "0B", "5MB", "\u0663GB", "1 PB"]
)
def test_a_memory_limit_duckdb_cannot_use_fails_validate(project: Path, limit: str) -> None:
    text = CONFIG.replace("  state: state.db\n", f"  state: state.db\n  memory_limit: {limit}\n")
    code, out = validate(project, text)
    assert code == 2, out
    assert "settings.memory_limit" in out


@pytest.mark.parametrize("limit", ["64MB", "1GB", "1.5 GiB", "1000TB"])
def test_a_memory_limit_duckdb_can_use_validates_and_checks(project: Path, limit: str) -> None:
    text = CONFIG.replace("  state: state.db\n", f"  state: state.db\n  memory_limit: {limit}\n")
    code, out = validate(project, text)
    assert code == 0, out
    code, out, err = check(project)
    assert code == 0, out + err


def test_an_environment_memory_limit_out_of_range_is_a_usage_error(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMNISYNC_MEMORY_LIMIT", "99999999999TB")
    code, _, err = check(project)
    assert code == 2, err
    assert "OMNISYNC_MEMORY_LIMIT" in err


# ------------------------------------------------------------------ output


def test_output_into_a_folder_that_cannot_be_made_is_a_usage_error(project: Path) -> None:
    (project / "taken").write_text("a file, not a folder", encoding="utf-8")
    code, _, err = check(project, "--format", "json", "--output", str(project / "taken" / "r.json"))
    assert code == 2, err
    assert "taken" in err
    assert "internal error" not in err


def test_output_into_a_missing_folder_creates_it(project: Path) -> None:
    target = project / "reports" / "daily" / "r.json"
    code, _, err = check(project, "--format", "json", "--output", str(target))
    assert code == 0, err
    assert target.read_text(encoding="utf-8").startswith("{")


@pytest.mark.parametrize("kind", ["symlink", "folder", "fifo", "device"])
def test_output_never_replaces_what_is_not_a_regular_file(project: Path, kind: str) -> None:
    target = project / "target"
    if kind == "symlink":
        (project / "real.json").write_text("keep", encoding="utf-8")
        target.symlink_to(project / "real.json")
    elif kind == "folder":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    else:
        make_device(target)
    before = os.lstat(target)
    code, _, err = check(project, "--format", "json", "--output", str(target))
    assert code == 2, err
    assert "not a regular file" in err
    after = os.lstat(target)
    assert (after.st_ino, after.st_mode, after.st_rdev) == (
        before.st_ino,
        before.st_mode,
        before.st_rdev,
    )
    if kind == "symlink":
        assert (project / "real.json").read_text(encoding="utf-8") == "keep"


def make_device(path: Path) -> None:
    """A character device like /dev/null at ``path`` (never the real one: a failing test
    would replace it)."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, AttributeError):
        pytest.skip("creating a device node needs root")


def test_plan_out_never_replaces_a_device(project: Path) -> None:
    device = project / "null"
    make_device(device)
    code, _, err = run(project, "plan", "-c", str(project / "omnisync.yaml"), "--out", str(device))
    assert code == 2, err
    assert "not a regular file" in err
    assert stat.S_ISCHR(os.lstat(device).st_mode)


def omnisync(project: Path, *args: str, **kwargs: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "omnisync", *args],
        cwd=project,
        stderr=subprocess.PIPE,
        **kwargs,  # type: ignore[call-overload]
    )


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_on_stdout_is_an_error_without_traceback(project: Path) -> None:
    with open("/dev/full", "wb") as full:
        process = omnisync(project, "check", "--no-history", "--format", "json", stdout=full)
        _, err = process.communicate(timeout=120)
    text = err.decode()
    assert process.returncode not in (0, 1, 70), text
    assert "Traceback" not in text
    assert "Exception ignored" not in text
    assert "stdout" in text


def test_a_closed_pipe_on_stdout_is_an_error_without_traceback(project: Path) -> None:
    # `omnisync check | head -0`: the reader is gone before the report is written.
    read, write = os.pipe()
    os.close(read)
    try:
        process = omnisync(project, "check", "--no-history", "--format", "json", stdout=write)
        _, err = process.communicate(timeout=120)
    finally:
        os.close(write)
    text = err.decode()
    assert process.returncode not in (0, 1, 70), text
    assert "Traceback" not in text
    assert "Exception ignored" not in text


# ------------------------------------------------------------------ Ctrl-C


@pytest.fixture(scope="module")
def big_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A check that runs for a few seconds: 300,000 SKUs on each side."""
    folder = tmp_path_factory.mktemp("big")
    (folder / "omnisync.yaml").write_text(CONFIG, encoding="utf-8")
    rows = "".join(f"S{i:07d},Title {i},{i % 997}.{i % 100:02d},{i % 50}\n" for i in range(300_000))
    (folder / "canon.csv").write_text(HEADER + rows, encoding="utf-8")
    (folder / "shop.csv").write_text(HEADER + rows.replace(",7\n", ",8\n"), encoding="utf-8")
    return folder


def _before_omnisync_ran(stderr: str) -> bool:
    """A KeyboardInterrupt traceback none of whose frames is in ``omnisync.launch.main``:
    the signal came while the script was still importing ``omnisync.launch`` itself."""
    lines = stderr.strip().splitlines()
    return (
        bool(lines)
        and lines[0].startswith("Traceback")
        and lines[-1].strip() == "KeyboardInterrupt"
        and not any(line.rstrip().endswith(", in main") for line in lines)
    )


@pytest.mark.slow
# From 50 ms on: the first ~20 ms are Python's own start-up (site, the import system), which
# no program can intercept; the quarter second of omnisync's imports after it is covered.
@pytest.mark.parametrize("delay", [0.05, 0.08, 0.12, 0.2, 0.35, 0.5, 0.7, 0.9])
def test_ctrl_c_at_any_moment_exits_130_interrupted(big_project: Path, delay: float) -> None:
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("omnisync")), "check", "--no-history"],
        cwd=big_project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    # Not a timed assertion: whenever the signal lands, the outcome must be the same.
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    text = err.decode()
    if process.returncode in (0, 1, 2):
        pytest.skip("the check ended before the signal")  # pragma: no cover
    if _before_omnisync_ran(text):
        # On a loaded machine Python's own start-up can outlast the delay: the interrupt then
        # lands in the console script's first imports, before any omnisync code has run.
        pytest.skip("the signal landed during Python's start-up")  # pragma: no cover
    assert "Traceback" not in text
    assert "internal error" not in text
    if process.returncode == -signal.SIGINT:
        # After Python tore its handlers down at exit the signal ends the process itself; a
        # shell reports that as 130 too. Nothing may have been printed then.
        assert text == ""
    else:
        assert process.returncode == 130, text
        assert "interrupted" in text
