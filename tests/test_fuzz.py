"""Property-based fuzzing of the inputs people get wrong: mutated CSVs and configs.

Hypothesis draws the random source; tests/fuzzing.py turns it into a damaged project. Every
run must end with a documented exit code and a message, never exit 70 or a traceback, and a
certainly broken input must never pass as consistent (0) or as mere mismatches (1).
Bounded for CI (a few dozen examples); `python -m bench.fuzz` runs thousands in subprocesses
with a timeout, counting hangs too.
"""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from omnisync.cli import app
from tests import fuzzing

FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def run(case: fuzzing.Case, folder: Path) -> tuple[int, str]:
    config = case.write(folder)
    result = CliRunner().invoke(
        app, ["check", "-c", str(config), "--no-history", "-f", "json"], env={"COLUMNS": "120"}
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout + result.stderr


def test_the_unmutated_project_is_consistent(tmp_path: Path) -> None:
    erp, shop = fuzzing._valid()
    case = fuzzing.Case(
        "".join(erp).encode(), "".join(shop).encode(), fuzzing.CONFIG, False, "valid"
    )
    code, output = run(case, tmp_path)
    assert code == 0, output  # so every failure below comes from the mutation


@FUZZ
@given(st.randoms(use_true_random=False))
def test_mutated_csvs_never_crash_or_pass_broken_input(
    tmp_path_factory: object, rng: random.Random
) -> None:
    case = fuzzing.csv_case(rng)
    folder = tmp_path_factory.mktemp("csv")  # type: ignore[attr-defined]
    code, output = run(case, folder)
    assert fuzzing.verdict(case, code, output) is None, (case.what, code, output[-2000:])


@FUZZ
@given(st.randoms(use_true_random=False))
def test_mutated_configs_never_crash_or_pass_broken_input(
    tmp_path_factory: object, rng: random.Random
) -> None:
    case = fuzzing.config_case(rng)
    folder = tmp_path_factory.mktemp("config")  # type: ignore[attr-defined]
    code, output = run(case, folder)
    assert fuzzing.verdict(case, code, output) is None, (case.what, code, output[-2000:])
