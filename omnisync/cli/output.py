"""What several commands render alike: a check result (to stdout or a file) and the progress
of reading sources."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from omnisync.cli.options import GLOBAL
from omnisync.console import ReadProgress, stderr_console, stdout_console, write_atomic
from omnisync.errors import UsageError
from omnisync.models import CheckResult
from omnisync.report import FORMATS, print_report, render

if TYPE_CHECKING:
    from omnisync.store import Store, Trends


def emit(
    result: CheckResult,
    fmt: str,
    output: Path | None,
    limit: int,
    trends: Trends | None = None,
) -> None:
    """Render ``result`` to stdout or a file; with a file, people still see the summary table.
    ``trends`` are the HTML report's charts (see :func:`trends_for`)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")
    shown_limit = limit or None
    if output is not None:
        write_atomic(output, render(result, fmt, limit=shown_limit, trends=trends))
        if GLOBAL.verbosity >= 0:
            print_report(stderr_console(), result, limit=min(shown_limit or 10, 10))
            stderr_console().print(f"report written to {output}")
        return
    if fmt == "table":
        print_report(stdout_console(), result, limit=shown_limit)
    else:
        typer.echo(render(result, fmt, limit=shown_limit, trends=trends), nl=False)


def trends_for(store: Store, result: CheckResult, fmt: str) -> Trends | None:
    """The run history the HTML report charts: earlier runs of ``result``'s config up to it.
    Other formats have no charts, so nothing is read for them."""
    if fmt != "html":
        return None
    return store.trends(result.config_path, until=result.started_at)


def progress() -> ReadProgress:
    """Progress bars on stderr while sources are read (quiet under --quiet or off a tty)."""
    return ReadProgress(stderr_console(), enabled=GLOBAL.verbosity >= 0)
