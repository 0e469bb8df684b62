"""The commands that write: ``plan`` (the corrections, for review), ``apply`` (a saved plan,
or the rest of an interrupted push), ``undo`` (revert a push) and ``sync`` (all in one, for
cron)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from omnisync import pipeline
from omnisync.check import CheckRequest
from omnisync.cli.boundary import errors_to_exit
from omnisync.cli.completion import channel_names, push_run_ids
from omnisync.cli.options import (
    DEFAULT_CONFIG,
    GLOBAL,
    ConfigOption,
    LimitOption,
    StateOption,
    parse_at,
    read_config,
)
from omnisync.cli.output import progress
from omnisync.config import Config
from omnisync.console import is_terminal, stderr_console, stdout_console, write_atomic
from omnisync.errors import ExitCode, UsageError
from omnisync.secrets import mask

if TYPE_CHECKING:
    from omnisync.plan import Plan
    from omnisync.push import PushOutcome
    from omnisync.store import Store

# The push pipeline and the state store (SQLAlchemy) are imported by the commands that use
# them: a cron `check --no-history` or `validate` should not pay a quarter of a second for them.

log = logging.getLogger("omnisync")

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


@errors_to_exit
def plan(
    config: ConfigOption = Path(DEFAULT_CONFIG),
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the plan (JSON) to this file for `omnisync apply`."),
    ] = None,
    channel: Annotated[
        list[str] | None,
        typer.Option(
            "--channel",
            "-C",
            help="Plan only this channel (repeatable).",
            autocompletion=channel_names,
        ),
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
    from omnisync.report.push import print_plan

    if fmt not in ("table", "json"):
        raise UsageError(f"unknown format {fmt!r}", hint="use table or json")
    cfg = read_config(config)
    with pipeline.open_store(state, cfg) as store:
        when = parse_at(at)
        with progress() as shown:
            request = CheckRequest(at=when, channels=channel, store=store)
            the_plan = pipeline.plan(cfg, request, progress=shown)
        violations = pipeline.guard(cfg, store, the_plan)
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


@errors_to_exit
def apply(
    plan_file: Annotated[
        Path | None, typer.Argument(help="Plan written by `omnisync plan --out`.")
    ] = None,
    config: ConfigOption = Path(DEFAULT_CONFIG),
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            help="Finish an interrupted push run (its id, or 'last').",
            autocompletion=push_run_ids,
        ),
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
    cfg = read_config(config)
    with pipeline.open_store(state, cfg) as store:
        outcome: PushOutcome | None
        if resume:
            if plan_file is not None:
                raise UsageError("give either a plan file or --resume RUN, not both")
            outcome = pipeline.resume(cfg, store, resume)
        else:
            if plan_file is None:
                raise UsageError(
                    "apply needs a plan file",
                    hint="run `omnisync plan --out plan.json` first, or --resume RUN",
                )
            the_plan = pipeline.read_plan(plan_file)
            if the_plan.config_fingerprint != cfg.fingerprint:
                log.warning(
                    "the config changed since this plan was made (%s); applying it as planned",
                    plan_file,
                )
            outcome = _push(
                cfg,
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


@errors_to_exit
def undo(
    run: Annotated[
        str,
        typer.Argument(
            help="The push run to revert (id, prefix or 'last').", autocompletion=push_run_ids
        ),
    ],
    config: ConfigOption = Path(DEFAULT_CONFIG),
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    force: ForceOption = False,
    limit: LimitOption = 20,
    state: StateOption = None,
) -> None:
    """Revert a push: apply the journal's before-values, through the same guardrails and journal."""
    cfg = read_config(config)
    with pipeline.open_store(state, cfg) as store:
        the_plan = pipeline.undo_plan(cfg, store, run)
        outcome = _push(
            cfg,
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


def _push(
    cfg: Config,
    store: Store,
    the_plan: Plan,
    *,
    yes: bool,
    dry_run: bool,
    force: bool,
    limit: int,
    what: str,
) -> PushOutcome | None:
    """Shared by apply and undo: show, guard, confirm, lock, push."""
    from omnisync.report.push import print_plan, print_previews

    if not the_plan.changes:
        stdout_console().print("nothing to push: the plan has no changes")
        return None
    if GLOBAL.verbosity >= 0 and not yes:
        print_plan(stdout_console(), the_plan, limit=limit or None)
    if dry_run:
        print_previews(stdout_console(), pipeline.preview(cfg, store, the_plan))
        return None
    return pipeline.apply(cfg, store, the_plan, force=force, confirm=lambda: _confirm(what, yes))


def _confirm(what: str, yes: bool) -> None:
    if yes:
        return
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


@errors_to_exit
def sync(
    config: ConfigOption = Path(DEFAULT_CONFIG),
    channel: Annotated[
        list[str] | None,
        typer.Option(
            "--channel",
            "-C",
            help="Sync only this channel (repeatable).",
            autocompletion=channel_names,
        ),
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

    cfg = read_config(config)
    when = parse_at(at)
    with pipeline.open_store(state, cfg) as store, progress() as shown:
        request = CheckRequest(at=when, channels=channel, store=store)
        done = pipeline.sync(cfg, request, force=force, dry_run=dry_run, progress=shown)
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


#: The commands of this module, in the order `omnisync --help` lists them.
COMMANDS = (plan, apply, undo, sync)
