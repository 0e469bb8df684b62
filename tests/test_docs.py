"""The docs are part of the product: every command documented, every config key shown."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel
from typer.main import get_command

from omnisync.cli import app
from omnisync.config.schema import ConfigModel, model_of
from omnisync.sdk.mapping import FieldMapping

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
EXAMPLE = (ROOT / "config.example.yaml").read_text(encoding="utf-8")


def test_every_command_has_help_and_is_in_the_readme() -> None:
    group = get_command(app)
    commands = group.commands  # type: ignore[attr-defined]
    assert set(commands) >= {"check", "validate", "connectors", "runs", "show"}
    for name, command in commands.items():
        assert command.help, f"`omnisync {name}` has no help text"
        assert f"omnisync {name}" in README, f"`omnisync {name}` is not in the README"


def _keys(model: type[BaseModel]) -> set[str]:
    keys = set()
    for name, info in model.model_fields.items():
        keys.add(name)
        inner = model_of(info.annotation)
        if inner is not None:
            keys |= _keys(inner)
    return keys


def test_example_config_shows_every_key() -> None:
    missing = sorted(k for k in _keys(ConfigModel) if not re.search(rf"\b{k}:", EXAMPLE))
    assert not missing, f"config.example.yaml does not show: {missing}"


def test_readme_documents_every_mapping_field() -> None:
    missing = sorted(k for k in FieldMapping.model_fields if f"`{k}`" not in README)
    assert not missing, f"README does not document mapping fields: {missing}"


def test_readme_documents_every_exit_code() -> None:
    from omnisync.errors import ExitCode

    for code in ExitCode:
        assert re.search(rf"^\| {int(code)} \|", README, re.M), (
            f"exit code {int(code)} undocumented"
        )


def test_core_never_imports_a_connector_module() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "omnisync").rglob("*.py")
        if re.search(
            r"^\s*(from|import)\s+omnisync_connectors", path.read_text(encoding="utf-8"), re.M
        )
    ]
    assert offenders == []


def test_readme_marker_expression_works_on_any_subset_of_files() -> None:
    """The README's `pytest -m "not real_shop"` must not say "Unknown marker" on a subset."""
    import subprocess
    import sys

    run = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-m", "not real_shop", "--collect-only", "-q"),
            *("-p", "no:cacheprovider", "tests/test_normalize.py"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
