"""Renderers of a :class:`~omnisync.models.CheckResult`: the last stage of a check.

``table`` is for people (rich, see :func:`print_report`), ``html`` for people with a browser
(one self-contained page with trend charts); ``json``, ``csv``, ``junit`` and ``markdown`` are
for machines, CI and pull requests (see :func:`render`). Every renderer masks
registered secrets: values are masked before they are escaped, and the finished text once more.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from rich.console import Console

from omnisync.errors import UsageError
from omnisync.models import CheckResult
from omnisync.report import table
from omnisync.report._common import mask_result
from omnisync.report.csv_report import render_csv
from omnisync.report.html import render_html
from omnisync.report.json_report import SCHEMA, load_json, render_json
from omnisync.report.junit import render_junit
from omnisync.report.markdown import render_markdown
from omnisync.secrets import mask

if TYPE_CHECKING:
    from omnisync.store.rows import Trends

__all__ = ["FORMATS", "SCHEMA", "load_json", "print_report", "render"]

FORMATS = ("table", "json", "csv", "junit", "markdown", "html")
#: Width of the plain-text table written by ``render(result, "table")`` (files, not terminals).
TEXT_WIDTH = 120


def render(
    result: CheckResult, fmt: str, *, limit: int | None = 20, trends: Trends | None = None
) -> str:
    """``result`` in format ``fmt`` (one of :data:`FORMATS`), masked, ending in a newline.

    ``limit`` caps the findings shown per channel in ``markdown`` and ``table`` (``None`` or 0:
    no cap); ``json``, ``csv`` and ``junit`` always carry every finding, ``html`` up to
    :data:`omnisync.report.html.ROW_CAP` of them. ``trends`` (earlier runs of the same config,
    from the state store) are the charts of ``html``; the other formats ignore them.
    """
    masked = mask_result(result)
    if fmt == "json":
        text = render_json(masked)
    elif fmt == "csv":
        text = render_csv(masked)
    elif fmt == "junit":
        text = render_junit(masked)
    elif fmt == "markdown":
        text = render_markdown(masked, limit=limit)
    elif fmt == "html":
        text = render_html(masked, trends=trends)
    elif fmt == "table":
        out = io.StringIO()
        console = Console(file=out, width=TEXT_WIDTH, color_system=None, force_terminal=False)
        table.print_report(console, masked, limit=limit)
        # Rich pads lines to the full width; a file has no use for the trailing blanks.
        text = "".join(line.rstrip() + "\n" for line in out.getvalue().splitlines())
    else:
        raise UsageError(f"unknown report format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")
    return mask(text)


def print_report(console: Console, result: CheckResult, *, limit: int | None = 20) -> None:
    """Print ``result`` as rich tables: a summary, read errors, then at most ``limit`` findings
    per channel (``None`` or 0: all). Plain, uncoloured text when ``console`` is no terminal."""
    table.print_report(console, mask_result(result), limit=limit)
