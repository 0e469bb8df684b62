"""What several commands parse alike: the global options (``--quiet``, ``--debug``, …), the
option types they share, and the config, state and ``--at`` they turn into."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from omnisync.config import Config, load_config
from omnisync.errors import UsageError
from omnisync.report import FORMATS


@dataclass
class GlobalOptions:
    """What the options before the command set for this run."""

    #: -1 --quiet, 0 normal, 1 --verbose, 2 --debug.
    verbosity: int = 0
    #: --log-json: log lines (and errors) as JSON objects.
    log_json: bool = False


#: This run's global options, set by the app's callback before any command runs.
GLOBAL = GlobalOptions()

DEFAULT_CONFIG = "omnisync.yaml"

ConfigOption = Annotated[
    Path,
    typer.Option(
        "--config",
        "-c",
        envvar="OMNISYNC_CONFIG",
        help="Config file (YAML). Default: omnisync.yaml, or $OMNISYNC_CONFIG.",
        show_default=False,
    ),
]
#: The config of a command that only reads the state store: optional.
StoreConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", envvar="OMNISYNC_CONFIG", help="Config whose state store to read."
    ),
]
FormatOption = Annotated[
    str,
    typer.Option("--format", "-f", help=f"Output format: {', '.join(FORMATS)}."),
]
OutputOption = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        help="Write the report to FILE (atomically) instead of stdout; a summary still goes to the terminal.",
    ),
]
LimitOption = Annotated[
    int,
    typer.Option(
        "--limit", "-n", min=0, help="Detail rows per channel in table/markdown output (0 = all)."
    ),
]
StateOption = Annotated[
    str | None,
    typer.Option(
        "--state", help="Run history: SQLite path or database URL (overrides settings.state)."
    ),
]


def read_config(path: Path | None) -> Config:
    """The config at ``path`` (default: omnisync.yaml), loaded and validated."""
    return load_config(path or Path(DEFAULT_CONFIG))


def store_config(path: Path | None, state: str | None) -> Config | None:
    """The config whose state store a reading command opens: ``path`` when given, else
    omnisync.yaml when there is one and no --state; None leaves the store to --state."""
    if path or (not state and Path(DEFAULT_CONFIG).exists()):
        return read_config(path)
    return None


def parse_at(value: str | None) -> datetime | None:
    """``--at``: an ISO 8601 date/time, or None for now."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"--at {value!r} is not an ISO 8601 date/time", hint="e.g. --at 2026-12-24T18:00"
        ) from None
