"""The run history as a folder of HTML pages: ``omnisync report --since 30d --output site/``.

One page per recorded check (``<run id>.html``, the same page as ``show RUN --format html``,
with a link back) and ``index.html``: every run of the period, newest first, each check linked
to its page, and the trend charts of the newest check's config. The pages are self-contained,
so the folder can be served by anything or opened from disk. Pages of runs outside the period
that an earlier report left in the folder stay; the index links only the period's runs.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from omnisync.console import write_atomic
from omnisync.report._common import mask_result
from omnisync.report.html import page, render_html, trend_charts
from omnisync.secrets import mask

if TYPE_CHECKING:
    from omnisync.store import RunSummary, Store

#: Runs in one report at most (newest first), whatever the period holds.
SITE_RUNS = 200
INDEX = "index.html"


@dataclass
class Site:
    """What :func:`write_site` wrote."""

    index: Path
    #: One page per check, newest first.
    pages: list[Path] = field(default_factory=list)
    #: Every run of the period (checks, pushes, publishes), newest first.
    runs: list[RunSummary] = field(default_factory=list)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def page_name(run_id: str) -> str:
    """The file a check's page is written to: ``20241129-071500-3fa2.html``."""
    return f"{run_id}.html"


def _summary(run: RunSummary) -> str:
    totals = run.totals
    if run.kind == "push":
        return f"{totals.get('applied', 0)} applied, {totals.get('failed', 0)} failed"
    if run.kind == "publish":
        return f"{totals.get('items', 0)} items, {totals.get('changed', 0)} feeds written"
    parts = []
    for channel in run.channels:
        if channel.error:
            parts.append(f"{channel.name}: error")
        else:
            count = channel.findings
            parts.append(f"{channel.name}: {count} finding{'s' if count != 1 else ''}")
    return ", ".join(parts) or "no channels"


def _index(runs: list[RunSummary], since: datetime, charts: list[str]) -> str:
    title = f"omnisync runs since {since:%Y-%m-%d %H:%M} UTC"
    rows = []
    for run in runs:
        name = (
            f'<a href="{_e(quote(page_name(run.id)))}">{_e(run.id)}</a>'
            if run.kind == "check"
            else _e(run.id)
        )
        rows.append(
            f'<tr data-kind="{_e(run.kind)}"><td>{run.started_at:%Y-%m-%d %H:%M:%S}</td>'
            f"<td>{name}</td><td>{_e(run.kind)}</td>"
            f'<td class="status status-{_e(run.status)}">{_e(run.status)}</td>'
            f"<td>{_e(_summary(run))}</td><td>{_e(run.config_path)}</td></tr>"
        )
    table = (
        [
            '<table id="runs-table">',
            "<thead><tr><th>Started (UTC)</th><th>Run</th><th>Kind</th><th>Status</th>"
            "<th>Summary</th><th>Config</th></tr></thead>",
            "<tbody>",
            *rows,
            "</tbody>",
            "</table>",
        ]
        if runs
        else ['<p class="note">No runs recorded in this period.</p>']
    )
    body = [
        f"<header><h1>{_e(title)}</h1>",
        f'<p class="facts">{len(runs)} run{"s" if len(runs) != 1 else ""}; '
        "each check links to its report.</p></header>",
        '<section id="runs">',
        "<h2>Runs</h2>",
        *table,
        "</section>",
    ]
    if charts:
        body += ['<section id="trends">', "<h2>Trends</h2>", *charts, "</section>"]
    return page(title, body)


def write_site(store: Store, directory: Path, *, since: datetime, limit: int = SITE_RUNS) -> Site:
    """Write ``index.html`` and one page per check started at or after ``since`` (at most
    ``limit`` runs, newest first) into ``directory``; every page is masked and escaped."""
    runs = store.runs(limit, since=since)
    site = Site(index=directory / INDEX, runs=runs)
    newest: str | None = None
    for run in runs:
        if run.kind != "check":
            continue
        result = store.load(run.id)
        newest = newest or result.config_path
        trends = store.trends(result.config_path, until=result.started_at, since=since)
        text = render_html(mask_result(result), trends=trends, index_href=INDEX)
        target = directory / page_name(run.id)
        write_atomic(target, mask(text))
        site.pages.append(target)
    # The index charts the newest check's config up to now, pushes after that check included.
    charts = [] if newest is None else trend_charts(store.trends(newest, since=since))
    write_atomic(site.index, mask(_index(runs, since, charts)))
    return site
