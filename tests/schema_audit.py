"""An opt-in pytest plugin: every config the test suite loads successfully is also checked
against `omnisync schema`, as written (``${...}`` not replaced, as an editor sees it).

    .venv/bin/python -m pytest -p tests.schema_audit -m "not real_shop" -q

The summary at the end counts the configs and lists those the schema refuses, with why: the
schema must accept every config omnisync loads. (Configs of connectors that a test registers
on the fly, which the shipped schema cannot know, show up there too.)
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from omnisync.config import loader
from omnisync.config.json_schema import config_schema
from omnisync.config.reading import load_with_lines

_loaded: list[tuple[str, list[str]]] = []


def pytest_configure(config: pytest.Config) -> None:
    validator = jsonschema.Draft7Validator(config_schema())
    original = loader._config

    def audited(path: Path, raw: bytes, *args: Any) -> Any:
        data, _ = load_with_lines(raw.decode("utf-8-sig"), str(path))
        problems = [
            f"{'.'.join(map(str, e.absolute_path))}: {e.message[:160]}"
            for e in validator.iter_errors(data)
        ]
        _loaded.append((str(path), problems))
        return original(path, raw, *args)

    loader._config = audited  # type: ignore[assignment]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    refused = [(path, problems) for path, problems in _loaded if problems]
    terminalreporter.section("omnisync schema audit")
    terminalreporter.write_line(
        f"{len(_loaded)} configs loaded by omnisync, {len(refused)} refused by the schema"
    )
    for problem, count in Counter(p for _, problems in refused for p in problems).most_common():
        terminalreporter.write_line(f"  {count} x {problem}")
