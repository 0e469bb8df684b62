"""The ``omnisync`` command line. Glue only: parse options, call one core function, render,
return a documented exit code (see :class:`omnisync.errors.ExitCode` and the README)."""

from __future__ import annotations

import gc
import io
import logging
import os
import sys
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from omnisync import __version__, launch, pipeline
from omnisync.check import CheckRequest
from omnisync.config import Config, load_config
from omnisync.console import (
    ReadProgress,
    log_error,
    print_error,
    setup_logging,
    stderr_console,
    stdout_console,
    write_atomic,
)
from omnisync.errors import ExitCode, OmnisyncError, UsageError
from omnisync.models import CheckResult
from omnisync.report import FORMATS, print_report, render
from omnisync.sdk.connector import available_connectors
from omnisync.secrets import mask

if TYPE_CHECKING:
    from omnisync.plan import Plan
    from omnisync.push import Pusher, PushOutcome
    from omnisync.store import RunSummary, Store

# The push pipeline and the state store (SQLAlchemy) are imported by the commands that use
# them: a cron `check --no-history` or `validate` should not pay a quarter of a second for them.

log = logging.getLogger("omnisync")

app = typer.Typer(
    name="omnisync",
    help="Keep every sales channel consistent with the canonical catalogue.\n\n"
    "Exit codes: 0 consistent / all applied, 1 mismatches, 2 usage/config/input error, "
    "3 a channel could not be read, 4 push partly applied, 5 push failed, 6 refused by a "
    "guardrail, 7 another push holds the lock, 130 interrupted, 70 internal error.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

_state: dict[str, Any] = {"verbosity": 0}

F = TypeVar("F", bound=Callable[..., Any])

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


def _errors_to_exit(func: F) -> F:
    """Translate omnisync errors into a message and their exit code; tracebacks only with --debug."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            try:
                return func(*args, **kwargs)
            finally:
                _flush_stdout()
        except OmnisyncError as exc:
            if _state["verbosity"] >= 2:
                log.debug("traceback", exc_info=True)
            if _state.get("log_json"):
                log_error(log, exc)
            else:
                print_error(stderr_console(), exc)
            _state["said_interrupted"] = exc.exit_code == ExitCode.INTERRUPTED
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            raise _interrupted() from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except OSError as exc:
            if not _stdout_lost(exc):
                raise (_interrupted() if launch.interrupted else _internal(exc)) from None
            print_error(stderr_console(), _stdout_error(exc))
            raise typer.Exit(int(ExitCode.USAGE)) from None
        except Exception as exc:
            if launch.interrupted:  # a library turned Ctrl-C into its own error
                raise _interrupted() from None
            raise _internal(exc) from None

    return wrapper  # type: ignore[return-value]


def _interrupted() -> typer.Exit:
    """Ctrl-C (or SIGTERM): "interrupted", exit 130, wherever it struck."""
    _state["said_interrupted"] = True
    with suppress(Exception):
        stderr_console().print("interrupted")
    return typer.Exit(int(ExitCode.INTERRUPTED))


def _flush_stdout() -> None:
    """What is still buffered fails here, where it is reported, not at exit."""
    stream = sys.stdout
    stream.flush()


def _stdout_lost(exc: OSError) -> bool:
    """Whether ``exc`` is a failed write to stdout (a full disk, a reader that closed the
    pipe): raised by a frame that was writing to it. If so, stdout is pointed at /dev/null,
    so that the flush at exit cannot fail once more ("Exception ignored ...")."""
    streams = [s for s in (sys.stdout, getattr(sys.stdout, "buffer", None)) if s is not None]
    tb = exc.__traceback__
    writing = False
    while tb is not None and not writing:
        writing = any(_writes_to(v, streams) for v in tb.tb_frame.f_locals.values())
        tb = tb.tb_next
    if not writing:
        return False
    with suppress(OSError, ValueError, AttributeError, io.UnsupportedOperation):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return True


def _writes_to(value: object, streams: list[object]) -> bool:
    """``value`` is one of ``streams``, or a rich Console printing to one."""
    if isinstance(value, Console):
        value = value.file
    return any(value is stream for stream in streams)


def _stdout_error(exc: OSError) -> UsageError:
    return UsageError(
        f"cannot write to stdout: {exc.strerror or exc}",
        hint="the disk is full or the reader closed the pipe; --output FILE writes a file",
    )


def _internal(exc: Exception) -> typer.Exit:
    """An unexpected error: one line and exit 70; with --debug the traceback instead."""
    if _state["verbosity"] >= 2:
        raise exc
    stderr_console().print(
        f"[bold red]internal error:[/] {mask(f'{type(exc).__name__}: {exc}')}\n"
        "[yellow]→[/] this is a bug; rerun with --debug for the traceback and report it",
        highlight=False,
    )
    return typer.Exit(int(ExitCode.INTERNAL))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"omnisync {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only errors and the result.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log what is being read and compared.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Debug logs and tracebacks.")] = False,
    log_json: Annotated[
        bool, typer.Option("--log-json", help="Log lines as JSON objects (for log shippers).")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Keep every sales channel consistent with the canonical catalogue."""
    verbosity = 2 if debug else 1 if verbose else -1 if quiet else 0
    _state["verbosity"] = verbosity
    _state["log_json"] = log_json
    setup_logging(verbosity, stderr_console(), json_lines=log_json)


def _config(path: Path | None) -> Config:
    return load_config(path or Path(DEFAULT_CONFIG))


def _emit(result: CheckResult, fmt: str, output: Path | None, limit: int) -> None:
    """Render ``result`` to stdout or a file; with a file, people still see the summary table."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")
    shown_limit = limit or None
    if output is not None:
        write_atomic(output, render(result, fmt, limit=shown_limit))
        if _state["verbosity"] >= 0:
            print_report(stderr_console(), result, limit=min(shown_limit or 10, 10))
            stderr_console().print(f"report written to {output}")
        return
    if fmt == "table":
        print_report(stdout_console(), result, limit=shown_limit)
    else:
        typer.echo(render(result, fmt, limit=shown_limit), nl=False)


def _parse_at(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"--at {value!r} is not an ISO 8601 date/time", hint="e.g. --at 2026-12-24T18:00"
        ) from None


def _parse_fail_on(value: str | None) -> frozenset[str] | None:
    if not value:
        return None
    from omnisync.models import Field, Kind

    allowed = {f.value for f in Field} | {k.value for k in Kind}
    names = {v.strip() for v in value.split(",") if v.strip()}
    unknown = sorted(names - allowed)
    if unknown:
        raise UsageError(
            f"--fail-on: unknown field or kind {', '.join(unknown)}",
            hint=f"choose from: {', '.join(sorted(allowed))}",
        )
    return frozenset(names)


@app.command()
@_errors_to_exit
def check(
    config: ConfigOption = Path(DEFAULT_CONFIG),
    channel: Annotated[
        list[str] | None,
        typer.Option("--channel", "-C", help="Check only this channel (repeatable)."),
    ] = None,
    fmt: FormatOption = "table",
    output: OutputOption = None,
    limit: LimitOption = 20,
    fail_on: Annotated[
        str | None,
        typer.Option(
            "--fail-on",
            help="Exit 1 only for mismatches in these fields or kinds, e.g. price,stock,missing.",
        ),
    ] = None,
    threshold: Annotated[
        int, typer.Option("--threshold", min=0, help="Mismatches tolerated before exiting 1.")
    ] = 0,
    at: Annotated[
        str | None,
        typer.Option("--at", help="Evaluate sale windows at this ISO 8601 time instead of now."),
    ] = None,
    state: StateOption = None,
    no_history: Annotated[
        bool, typer.Option("--no-history", help="Do not record this run.")
    ] = False,
    full: Annotated[
        bool,
        typer.Option(
            "--full", help="Pull every channel in full, even where it could pull incrementally."
        ),
    ] = False,
) -> None:
    """Compare every channel with the canonical catalogue and report each mismatch."""
    fail_fields = _parse_fail_on(fail_on)
    when = _parse_at(at)
    cfg = _config(config)
    with _progress() as progress:
        if no_history:
            request = CheckRequest(at=when, channels=channel, full=True)
            result, code = pipeline.check(
                cfg, request, fail_on=fail_fields, threshold=threshold, progress=progress
            )
        else:
            with pipeline.open_store(state, cfg) as store:
                request = CheckRequest(at=when, channels=channel, store=store, full=full)
                result, code = pipeline.check(
                    cfg, request, fail_on=fail_fields, threshold=threshold, progress=progress
                )
    _emit(result, fmt, output, limit)
    raise typer.Exit(int(code))


@app.command()
@_errors_to_exit
def validate(config: ConfigOption = Path(DEFAULT_CONFIG)) -> None:
    """Validate a config file (keys, types, connectors, options) without reading any channel."""
    cfg = _config(config)
    names = ", ".join(cfg.channels)
    typer.echo(
        f"{config}: valid — canonical via {cfg.canonical.config.connector}, channels: {names}"
    )


@app.command()
@_errors_to_exit
def connectors() -> None:
    """List installed connectors and their capabilities."""
    table = Table(title="Installed connectors", title_justify="left")
    for column in (
        "name",
        "description",
        "reads",
        "writes",
        "incremental",
        "max batch",
        "provided by",
    ):
        table.add_column(column)
    for name, entry in sorted(available_connectors().items()):
        try:
            cls = entry.load()
            caps = cls.capabilities.describe()
            table.add_row(
                name,
                cls.description,
                caps["reads"],
                caps["writes"],
                caps["incremental"],
                caps["max batch"],
                entry.value.split(":")[0],
            )
        except Exception as exc:  # a broken third-party plugin must not hide the others
            table.add_row(name, f"[red]cannot load: {exc}[/]", "", "", "", "", entry.value)
    stdout_console().print(table)


@app.command()
@_errors_to_exit
def runs(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", envvar="OMNISYNC_CONFIG", help="Config whose state store to read."
        ),
    ] = None,
    state: StateOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many runs.")] = 20,
) -> None:
    """List recent runs, newest first."""
    cfg = _config(config) if config or (not state and Path(DEFAULT_CONFIG).exists()) else None
    with pipeline.open_store(state, cfg) as store:
        summaries = store.runs(limit)
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
            mask(_run_summary(run)),
            mask(run.config_path),
        )
    stdout_console().print(table)


def _run_summary(run: RunSummary) -> str:
    if run.kind == "push":
        counts = [
            f"{n} {k}"
            for k, n in run.totals.items()
            if n and k not in ("retries", "changes") and not k.startswith("_")
        ]
        summary = "push: " + (", ".join(counts) or f"{run.totals.get('changes', 0)} change(s)")
        if run.status == "interrupted":
            summary += f" — finish it: omnisync apply --resume {run.id}"
        return summary
    parts = []
    for ch in run.channels:
        if ch.error:
            parts.append(f"{ch.name}: error")
        elif ch.findings:
            parts.append(f"{ch.name}: {ch.findings} finding{'s' if ch.findings != 1 else ''}")
        else:
            parts.append(f"{ch.name}: ok")
    return ", ".join(parts)


@app.command()
@_errors_to_exit
def show(
    run: Annotated[str, typer.Argument(help="Run id, a unique prefix of it, or 'last'.")] = "last",
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", envvar="OMNISYNC_CONFIG", help="Config whose state store to read."
        ),
    ] = None,
    state: StateOption = None,
    fmt: FormatOption = "table",
    output: OutputOption = None,
    limit: LimitOption = 20,
) -> None:
    """Render a recorded run again, in any format."""
    from omnisync.report.push import PUSH_FORMATS, print_push, render_push

    cfg = _config(config) if config or (not state and Path(DEFAULT_CONFIG).exists()) else None
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
    _emit(result, fmt, output, limit)


# ---------------------------------------------------------------- push side


YesOption = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (cron, CI).")
]
DryRunOption = Annotated[
    bool,
    typer.Option(
        "--dry-run", help="Show the exact payloads per batch (secrets masked); send nothing."
    ),
]
ForceOption = Annotated[
    bool,
    typer.Option(
        "--force", help="Override the guardrails; each override is recorded in the journal."
    ),
]


def _confirm(what: str, yes: bool) -> None:
    if yes:
        return
    import sys

    from omnisync.console import is_terminal

    if not is_terminal(sys.stdin):
        raise UsageError(
            f"{what} asks for confirmation, but this is not a terminal",
            hint="review the plan, then pass --yes (cron and CI always do)",
        )
    if not typer.confirm(f"{what}?", default=False):
        stderr_console().print("nothing sent")
        raise typer.Exit(int(ExitCode.OK))


def _print_outcome(outcome: PushOutcome, limit: int) -> None:
    from omnisync.report.push import print_outcome

    print_outcome(stdout_console(), outcome, limit)


def _progress() -> ReadProgress:
    """Progress bars on stderr while sources are read (quiet under --quiet or off a tty)."""
    return ReadProgress(stderr_console(), enabled=_state["verbosity"] >= 0)


def _plan_from_check(
    cfg: Config, channel: list[str] | None, when: datetime | None, store: Store
) -> Plan:
    with _progress() as progress:
        request = CheckRequest(at=when, channels=channel, store=store)
        return pipeline.plan(cfg, request, progress=progress)


@app.command()
@_errors_to_exit
def plan(
    config: ConfigOption = Path(DEFAULT_CONFIG),
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the plan (JSON) to this file for `omnisync apply`."),
    ] = None,
    channel: Annotated[
        list[str] | None,
        typer.Option("--channel", "-C", help="Plan only this channel (repeatable)."),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="table or json (the plan on stdout).")
    ] = "table",
    at: Annotated[
        str | None, typer.Option("--at", help="Evaluate sale windows at this ISO 8601 time.")
    ] = None,
    limit: LimitOption = 20,
    state: StateOption = None,
) -> None:
    """Check, then turn the mismatches into corrections: per channel, SKU and field, from → to."""
    from omnisync.push import Pusher
    from omnisync.report.push import print_plan

    if fmt not in ("table", "json"):
        raise UsageError(f"unknown format {fmt!r}", hint="use table or json")
    cfg = _config(config)
    with pipeline.open_store(state, cfg) as store:
        the_plan = _plan_from_check(cfg, channel, _parse_at(at), store)
        violations = Pusher(cfg, store).guard(the_plan, force=True)
    if out is not None:
        write_atomic(out, the_plan.to_json())
    if fmt == "json":
        # The same JSON as the file, so a pipeline can read the plan it just saved.
        typer.echo(the_plan.to_json(), nl=False)
    else:
        print_plan(
            stdout_console() if out is None else stderr_console(), the_plan, limit=limit or None
        )
    for message in violations:
        stderr_console().print(
            f"[yellow]guardrail:[/] {mask(message)} — `apply` will refuse without --force",
            highlight=False,
        )
    if out is not None:
        stderr_console().print(
            f"plan written to {out}: review it, then `omnisync apply {out} -c {config}`"
        )


@app.command()
@_errors_to_exit
def apply(
    plan_file: Annotated[
        Path | None, typer.Argument(help="Plan written by `omnisync plan --out`.")
    ] = None,
    config: ConfigOption = Path(DEFAULT_CONFIG),
    resume: Annotated[
        str | None,
        typer.Option("--resume", help="Finish an interrupted push run (its id, or 'last')."),
    ] = None,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    force: ForceOption = False,
    limit: LimitOption = 20,
    state: StateOption = None,
) -> None:
    """Execute a saved plan exactly, safely.

    Guardrails (on by default) refuse a plan that changes too many records, moves prices too
    far, zeroes too much stock, or comes from a canonical export that looks broken; --force
    overrides them and the journal records it. Each change is journalled before it is sent;
    before each batch the channel is re-read and changes whose target moved on are skipped
    as stale. An interrupted push is finished with --resume RUN, each change applied exactly
    once. `omnisync undo RUN` reverts a push.
    """
    from omnisync.plan import Plan
    from omnisync.push import Pusher

    cfg = _config(config)
    with pipeline.open_store(state, cfg) as store:
        pusher = Pusher(cfg, store)
        outcome: PushOutcome | None
        if resume:
            if plan_file is not None:
                raise UsageError("give either a plan file or --resume RUN, not both")
            with store.lock("push"):
                outcome = pusher.resume(resume)
        else:
            if plan_file is None:
                raise UsageError(
                    "apply needs a plan file",
                    hint="run `omnisync plan --out plan.json` first, or --resume RUN",
                )
            try:
                text = plan_file.read_text(encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"cannot read plan {plan_file}: {exc.strerror}") from None
            the_plan = Plan.from_json(text, where=str(plan_file))
            if the_plan.config_fingerprint != cfg.fingerprint:
                log.warning(
                    "the config changed since this plan was made (%s); applying it as planned",
                    plan_file,
                )
            outcome = _run_push(
                pusher,
                store,
                the_plan,
                yes=yes,
                dry_run=dry_run,
                force=force,
                limit=limit,
                what=f"apply {len(the_plan.changes)} change(s)",
            )
            if outcome is None:
                return
    _print_outcome(outcome, limit)
    raise typer.Exit(int(outcome.exit_code))


def _run_push(
    pusher: Pusher,
    store: Store,
    the_plan: Plan,
    *,
    yes: bool,
    dry_run: bool,
    force: bool,
    limit: int,
    what: str,
) -> PushOutcome | None:
    """Shared by apply, undo and sync: show, guard, confirm, lock, push."""
    from omnisync.report.push import print_plan, print_previews

    if not the_plan.changes:
        stdout_console().print("nothing to push: the plan has no changes")
        return None
    if _state["verbosity"] >= 0 and not yes:
        print_plan(stdout_console(), the_plan, limit=limit or None)
    if dry_run:
        print_previews(stdout_console(), pusher.preview(the_plan).previews)
        return None
    pusher.guard(the_plan, force)  # refuse before asking
    _confirm(what, yes)
    with store.lock("push"):
        return pusher.apply(the_plan, force=force)


@app.command()
@_errors_to_exit
def undo(
    run: Annotated[str, typer.Argument(help="The push run to revert (id, prefix or 'last').")],
    config: ConfigOption = Path(DEFAULT_CONFIG),
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    force: ForceOption = False,
    limit: LimitOption = 20,
    state: StateOption = None,
) -> None:
    """Revert a push: apply the journal's before-values, through the same guardrails and journal."""
    from omnisync.push import Pusher

    cfg = _config(config)
    with pipeline.open_store(state, cfg) as store:
        pusher = Pusher(cfg, store)
        the_plan = pusher.undo_plan(run)
        outcome = _run_push(
            pusher,
            store,
            the_plan,
            yes=yes,
            dry_run=dry_run,
            force=force,
            limit=limit,
            what=f"revert {len(the_plan.changes)} change(s) of {the_plan.undo_of}",
        )
    if outcome is None:
        return
    _print_outcome(outcome, limit)
    raise typer.Exit(int(outcome.exit_code))


@app.command()
@_errors_to_exit
def sync(
    config: ConfigOption = Path(DEFAULT_CONFIG),
    channel: Annotated[
        list[str] | None,
        typer.Option("--channel", "-C", help="Sync only this channel (repeatable)."),
    ] = None,
    dry_run: DryRunOption = False,
    force: ForceOption = False,
    at: Annotated[
        str | None, typer.Option("--at", help="Evaluate sale windows at this ISO 8601 time.")
    ] = None,
    state: StateOption = None,
) -> None:
    """check + plan + apply in one non-interactive, guarded, locked run (for cron).

    Prints one summary line; add --log-json for machine-readable log lines. A second sync
    while one runs exits at once with code 7.
    """
    from omnisync.report.push import print_previews

    cfg = _config(config)
    when = _parse_at(at)
    with pipeline.open_store(state, cfg) as store, _progress() as progress:
        request = CheckRequest(at=when, channels=channel, store=store)
        done = pipeline.sync(cfg, request, force=force, dry_run=dry_run, progress=progress)
    if dry_run:
        print_previews(stdout_console(), done.previews)
        raise typer.Exit(int(ExitCode.OK))
    outcome = done.push
    if outcome is None:
        typer.echo("omnisync sync: nothing to push — every pushable field is consistent")
        raise typer.Exit(int(ExitCode.OK))
    log.info(
        "sync finished",
        extra={
            "run_id": outcome.run_id,
            "status": outcome.status,
            "counts": {k: dict(v) for k, v in outcome.counts.items()},
        },
    )
    typer.echo(f"omnisync sync {outcome.run_id}: {outcome.status} — {outcome.summary()}")
    for change, message in outcome.failures[:20]:
        typer.echo(
            f"  {change.channel} {change.sku} {change.field or change.op.value}: {mask(message)}"
        )
    raise typer.Exit(int(outcome.exit_code))


@app.command()
@_errors_to_exit
def watch(
    config: ConfigOption = Path(DEFAULT_CONFIG),
    listen: Annotated[
        str | None,
        typer.Option("--listen", help="host:port for the event intake (default: watch.listen)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Log what would be pushed; push nothing.")
    ] = False,
    state: StateOption = None,
) -> None:
    """Run as a service: webhooks and change events become guarded corrections within
    seconds; incremental and full passes behind them repair what an event missed.

    Stops gracefully on SIGTERM or Ctrl-C (the batch in progress finishes). A second
    watcher on the same state store exits at once with code 7.
    """
    try:
        from omnisync.watch.service import serve
    except ImportError as exc:
        raise UsageError(
            f"omnisync watch needs its extra packages ({exc.name} is missing)",
            hint="pip install 'omnisync[watch]'",
        ) from None
    cfg = _config(config)
    with pipeline.open_store(state, cfg) as store:
        serve(cfg, store, dry_run=dry_run, listen=listen)


def main() -> None:
    """Run the command line (the console script starts in :mod:`omnisync.launch`)."""
    import signal

    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    # cron and systemd stop jobs with SIGTERM: end like Ctrl-C, so a push records where it
    # stopped and prints how to resume, instead of vanishing mid-batch.
    signal.signal(signal.SIGTERM, launch.on_signal)
    signal.signal(signal.SIGINT, launch.on_signal)
    # A run builds tens of thousands of findings that all live to the report; the collector's
    # passes over them find nothing to free. Collecting young objects less often takes a
    # 1M-SKU check's collection time from 0.16 s to 0.04 s. (gc.freeze() would save a little
    # more but makes DuckDB's bindings report leaks at exit.)
    gc.set_threshold(100_000, 50, 100)
    try:
        app()
    except SystemExit as exc:
        # Typer ends an interrupt outside a command (parsing options) as a silent exit 130.
        if exc.code == ExitCode.INTERRUPTED and not _state.get("said_interrupted"):
            launch.stop_interrupted()
        raise
    except OSError as exc:  # --help or a usage message to a full disk or closed pipe
        if not _stdout_lost(exc):
            raise
        print_error(stderr_console(), _stdout_error(exc))
        raise SystemExit(int(ExitCode.USAGE)) from None
