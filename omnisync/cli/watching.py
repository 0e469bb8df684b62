"""``omnisync watch``: the long-lived service (intake, watcher, passes) of :mod:`omnisync.watch`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from omnisync import pipeline
from omnisync.cli.boundary import errors_to_exit
from omnisync.cli.completion import source_names
from omnisync.cli.options import DEFAULT_CONFIG, ConfigOption, StateOption, read_config
from omnisync.errors import UsageError


@errors_to_exit
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

    Stops gracefully on SIGTERM or Ctrl-C (the batch in progress finishes).
    A second watcher on the same state store exits at once with code 7.
    """
    try:
        from omnisync.watch.service import serve
    except ImportError as exc:
        raise UsageError(
            f"omnisync watch needs its extra packages ({exc.name} is missing)",
            hint="pip install 'omnisync[watch]'",
        ) from None
    cfg = read_config(config)
    with pipeline.open_store(state, cfg) as store:
        serve(cfg, store, dry_run=dry_run, listen=listen)


@errors_to_exit
def outbox(
    config: ConfigOption = Path(DEFAULT_CONFIG),
    source: Annotated[
        str,
        typer.Option(
            "--source", "-s", help="canonical (default) or a channel.", autocompletion=source_names
        ),
    ] = "canonical",
    install: Annotated[
        bool, typer.Option("--install", help="Create it in the database now.")
    ] = False,
) -> None:
    """Print the DDL of a SQL source's outbox: a table and triggers that record every changed
    SKU, which `omnisync watch` follows (PostgreSQL also wakes it with NOTIFY).

    Review it and run it in the database, or pass --install to run it now.
    """
    cfg = read_config(config)
    if source != "canonical" and source not in cfg.channels:
        raise UsageError(
            f"unknown source {source!r}",
            hint=f"use canonical or one of: {', '.join(cfg.channels)}",
        )
    with cfg.connector(source) as connector:
        ddl: Callable[[], list[str]] | None = getattr(
            connector, "install_outbox" if install else "outbox_ddl", None
        )
        if ddl is None:
            kind = (cfg.canonical if source == "canonical" else cfg.channels[source]).config
            raise UsageError(
                f"{source} (connector: {kind.connector}) has no outbox",
                hint="outboxes are for SQL sources; watch follows files by their snapshot "
                "and shops by their webhooks",
            )
        statements = ddl()
    for statement in statements:
        typer.echo(f"{statement};\n")
    if install:
        typer.echo(f"-- created in {connector.describe()}; add `outbox: {{}}` to its options")


COMMANDS = (watch, outbox)
