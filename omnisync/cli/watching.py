"""``omnisync watch``: the long-lived service (intake, watcher, passes) of :mod:`omnisync.watch`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from omnisync import pipeline
from omnisync.cli.boundary import errors_to_exit
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
    cfg = read_config(config)
    with pipeline.open_store(state, cfg) as store:
        serve(cfg, store, dry_run=dry_run, listen=listen)


COMMANDS = (watch,)
