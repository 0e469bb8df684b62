"""The commands that read the run history: ``runs`` (the list), ``show`` (one run again) and
``report`` (a folder of HTML pages of recent runs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from omnisync import pipeline
from omnisync.cli.boundary import errors_to_exit
from omnisync.cli.completion import run_ids
from omnisync.cli.options import (
    FormatOption,
    LimitOption,
    OutputOption,
    StateOption,
    StoreConfigOption,
    store_config,
)
from omnisync.cli.output import emit, trends_for
from omnisync.console import stdout_console, write_atomic
from omnisync.durations import EXAMPLES, parse_duration
from omnisync.errors import UsageError
from omnisync.secrets import mask
from omnisync.snapshot import remove_snapshots, snapshot_root

if TYPE_CHECKING:
    from omnisync.config import Config
    from omnisync.store import RunSummary


@errors_to_exit
def runs(
    config: StoreConfigOption = None,
    state: StateOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many runs.")] = 20,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Delete runs past the limits (--keep, --keep-runs, else settings.history) "
            "and compact the store.",
        ),
    ] = False,
    keep: Annotated[
        str | None,
        typer.Option("--keep", metavar="AGE", help="With --prune: keep runs this young (90d)."),
    ] = None,
    keep_runs: Annotated[
        int | None,
        typer.Option(
            "--keep-runs", min=1, metavar="N", help="With --prune: keep the N newest runs."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="With --prune: say what would go, delete nothing.")
    ] = False,
) -> None:
    """List recent runs, newest first; or prune the history (--prune)."""
    cfg = store_config(config, state)
    if prune or keep or keep_runs or dry_run:
        _prune(cfg, state, prune, keep, keep_runs, dry_run)
        return
    with pipeline.open_store(state, cfg) as store:
        summaries = store.runs(limit)
        carried = store.events_by_run(r.id for r in summaries if r.kind == "push")
        queue = store.event_counts()
    if not summaries:
        typer.echo("no runs recorded yet — run `omnisync check` first")
        return
    table = Table(title="Runs", title_justify="left")
    for column in ("run", "started (UTC)", "status", "exit", "summary", "config"):
        table.add_column(column)
    for run in summaries:
        table.add_row(
            run.id,
            f"{run.started_at:%Y-%m-%d %H:%M:%S}",
            run.status,
            "" if run.exit_code is None else str(run.exit_code),
            mask(_run_summary(run, carried.get(run.id, 0))),
            mask(run.config_path),
        )
    stdout_console().print(table)
    if queue:
        shown = ", ".join(f"{n} {status}" for status, n in sorted(queue.items()))
        typer.echo(f"watch events: {shown}")


def _prune(
    cfg: Config | None,
    state: str | None,
    prune: bool,
    keep: str | None,
    keep_runs: int | None,
    dry_run: bool,
) -> None:
    if not prune:
        raise UsageError("--keep, --keep-runs and --dry-run go with --prune")
    age = _age(keep) if keep else None
    if age is None and keep_runs is None and cfg is not None:
        age, keep_runs = cfg.model.settings.history.keep, cfg.model.settings.history.keep_runs
    if age is None and keep_runs is None:
        raise UsageError(
            "nothing says which runs to prune",
            hint="give --keep 90d and/or --keep-runs N, or set settings.history in the config",
        )
    with pipeline.open_store(state, cfg) as store:
        outcome = store.prune(keep=age, keep_runs=keep_runs, now=datetime.now(UTC), dry_run=dry_run)
    snapshots = 0
    if cfg is not None and not dry_run:
        root = snapshot_root(cfg.model.settings.snapshots or True, cfg.base_dir)
        snapshots = remove_snapshots(root, outcome.runs)
    verb = "would prune" if dry_run else "pruned"
    typer.echo(
        f"{verb} {len(outcome.runs)} run(s): {outcome.findings} findings, "
        f"{outcome.journal} journal entries, {outcome.events} watch events"
        + (f", {snapshots} snapshot(s)" if snapshots else "")
    )
    if outcome.runs:
        shown = ", ".join(outcome.runs[:5]) + (" ..." if len(outcome.runs) > 5 else "")
        typer.echo(f"  oldest first: {shown}")
    for run_id, why in outcome.kept.items():
        typer.echo(f"  kept {run_id}: {why}")
    if outcome.bytes_before is not None and outcome.bytes_after is not None:
        typer.echo(
            f"state store compacted: {_mb(outcome.bytes_before)} → {_mb(outcome.bytes_after)}"
        )


def _age(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"--keep {text!r}: {exc}", hint="e.g. --keep 90d or --keep 12h") from None


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _run_summary(run: RunSummary, events: int = 0) -> str:
    if run.kind == "push":
        counts = [
            f"{n} {k}"
            for k, n in run.totals.items()
            if n and k not in ("retries", "changes") and not k.startswith("_")
        ]
        what = f"watch push ({events} event{'s' if events != 1 else ''})" if events else "push"
        summary = f"{what}: " + (", ".join(counts) or f"{run.totals.get('changes', 0)} change(s)")
        if run.status == "interrupted":
            summary += f" — finish it: omnisync apply --resume {run.id}"
        return summary
    if run.kind == "publish":
        feeds: dict[str, Any] = dict(run.totals.get("feeds") or {})  # type: ignore[arg-type]
        shown = [
            f"{name} {feed['items']} items ({'written' if feed['changed'] else 'unchanged'})"
            for name, feed in feeds.items()
        ]
        return "publish: " + (", ".join(shown) or "no feeds")
    parts = []
    for ch in run.channels:
        if ch.error:
            parts.append(f"{ch.name}: error")
        elif ch.findings:
            parts.append(f"{ch.name}: {ch.findings} finding{'s' if ch.findings != 1 else ''}")
        else:
            parts.append(f"{ch.name}: ok")
    summary = ", ".join(parts)
    if run.totals.get("from_snapshot"):
        return f"re-diff of {run.totals['from_snapshot']}: {summary}"
    return f"{summary} (snapshot kept)" if run.totals.get("snapshot") else summary


@errors_to_exit
def show(
    run: Annotated[
        str,
        typer.Argument(help="Run id, a unique prefix of it, or 'last'.", autocompletion=run_ids),
    ] = "last",
    config: StoreConfigOption = None,
    state: StateOption = None,
    fmt: FormatOption = "table",
    output: OutputOption = None,
    limit: LimitOption = 20,
) -> None:
    """Render a recorded run again, in any format."""
    from omnisync.report.push import PUSH_FORMATS, print_push, render_push

    cfg = store_config(config, state)
    with pipeline.open_store(state, cfg) as store:
        run_id, kind = store.run_kind(run)
        if kind == "push":
            record = store.push_run(run_id)
            if fmt == "table":
                print_push(stdout_console(), record, limit=limit or None)
            elif fmt in PUSH_FORMATS:
                text = render_push(record, fmt)
                if output:
                    write_atomic(output, text)
                else:
                    typer.echo(text, nl=False)
            else:
                raise UsageError(f"a push run renders as {', '.join(PUSH_FORMATS)}, not {fmt!r}")
            return
        result = store.load(run_id)
        trends = trends_for(store, result, fmt)
    emit(result, fmt, output, limit, trends)


@errors_to_exit
def report(
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Folder for index.html and one page per check."),
    ] = Path("site"),
    since: Annotated[
        str, typer.Option("--since", help=f"Runs started within this span ({EXAMPLES}).")
    ] = "30d",
    config: StoreConfigOption = None,
    state: StateOption = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="At most this many runs, newest first.")
    ] = 200,
) -> None:
    """Write an HTML report of recent runs: index.html and one page per check."""
    from omnisync.report.site import write_site

    try:
        span = parse_duration(since)
    except ValueError as exc:
        raise UsageError(f"--since: {exc}") from None
    cfg = store_config(config, state)
    with pipeline.open_store(state, cfg) as store:
        site = write_site(store, output, since=datetime.now(UTC) - span, limit=limit)
    pages = f"{len(site.pages)} check page{'s' if len(site.pages) != 1 else ''}"
    typer.echo(f"wrote {site.index} and {pages} ({len(site.runs)} runs in the last {since})")


#: The commands of this module, in the order `omnisync --help` lists them.
COMMANDS = (runs, show, report)
