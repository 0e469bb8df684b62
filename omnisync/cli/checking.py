"""The commands that read: ``check`` (every channel against canonical), ``validate`` (the
config alone) and ``connectors`` (what is installed)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from omnisync import pipeline
from omnisync.check import CheckRequest
from omnisync.cli.boundary import errors_to_exit
from omnisync.cli.completion import channel_names
from omnisync.cli.options import (
    DEFAULT_CONFIG,
    ConfigOption,
    FormatOption,
    LimitOption,
    OutputOption,
    StateOption,
    parse_at,
    read_config,
)
from omnisync.cli.output import emit, progress, trends_for
from omnisync.console import stdout_console
from omnisync.errors import ExitCode, UsageError
from omnisync.models import CheckResult, Field, Kind
from omnisync.sdk.connector import available_connectors


@errors_to_exit
def check(
    config: ConfigOption = Path(DEFAULT_CONFIG),
    channel: Annotated[
        list[str] | None,
        typer.Option(
            "--channel",
            "-C",
            help="Check only this channel (repeatable).",
            autocompletion=channel_names,
        ),
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
    fail_on_warn: Annotated[
        bool,
        typer.Option(
            "--fail-on-warn",
            help="Exit 1 for findings of severity warn too (expect.severity), not only fail.",
        ),
    ] = False,
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
    from_snapshot: Annotated[
        str | None,
        typer.Option(
            "--from-snapshot",
            metavar="RUN",
            help="Compare what run RUN read (settings.snapshots) under the config as it is "
            "now, instead of reading the sources; sale windows at RUN's time unless --at.",
        ),
    ] = None,
) -> None:
    """Compare every channel with the canonical catalogue and report each mismatch."""
    fail_fields = _parse_fail_on(fail_on)
    when = parse_at(at)
    cfg = read_config(config)
    trends = None
    if from_snapshot and full:
        raise UsageError("--full reads the sources; --from-snapshot reads none")

    def run(request: CheckRequest) -> tuple[CheckResult, ExitCode]:
        return pipeline.check(
            cfg,
            request,
            record=not no_history,
            fail_on=fail_fields,
            threshold=threshold,
            fail_on_warn=fail_on_warn,
            progress=shown,
        )

    with progress() as shown:
        if no_history and not from_snapshot:
            result, code = run(CheckRequest(at=when, channels=channel, full=True))
        else:
            with pipeline.open_store(state, cfg) as store:
                replay = (
                    pipeline.open_snapshot(cfg, store, from_snapshot) if from_snapshot else None
                )
                if replay is not None and when is None:
                    when = replay.evaluated_at
                request = CheckRequest(
                    at=when, channels=channel, store=store, full=full, replay=replay
                )
                result, code = run(request)
                trends = trends_for(store, result, fmt)
    emit(result, fmt, output, limit, trends)
    raise typer.Exit(int(code))


def _parse_fail_on(value: str | None) -> frozenset[str] | None:
    if not value:
        return None
    allowed = {f.value for f in Field} | {k.value for k in Kind}
    names = {v.strip() for v in value.split(",") if v.strip()}
    unknown = sorted(names - allowed)
    if unknown:
        raise UsageError(
            f"--fail-on: unknown field or kind {', '.join(unknown)}",
            hint=f"choose from: {', '.join(sorted(allowed))}",
        )
    return frozenset(names)


@errors_to_exit
def validate(config: ConfigOption = Path(DEFAULT_CONFIG)) -> None:
    """Validate a config file (keys, types, connectors, options) without reading any channel."""
    cfg = read_config(config)
    names = ", ".join(cfg.channels)
    typer.echo(
        f"{config}: valid — canonical via {cfg.canonical.config.connector}, channels: {names}"
    )


@errors_to_exit
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
        "update limit",
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
                caps["update limit"],
                entry.value.split(":")[0],
            )
        except Exception as exc:  # a broken third-party plugin must not hide the others
            table.add_row(name, f"[red]cannot load: {exc}[/]", "", "", "", "", "", entry.value)
    stdout_console().print(table)


@errors_to_exit
def schema() -> None:
    """Print the config file's JSON Schema, for editors: completion and checks as you type.

    It covers the options of every installed connector. Save it (`omnisync schema >
    omnisync.schema.json`) and point the first line of the config at it:
    `# yaml-language-server: $schema=omnisync.schema.json`.
    """
    from omnisync.config.json_schema import schema_text

    typer.echo(schema_text(), nl=False)


#: The commands of this module, in the order `omnisync --help` lists them.
COMMANDS = (check, validate, schema, connectors)
