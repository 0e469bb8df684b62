"""The command that writes feeds: ``publish`` (feed and export channels from canonical)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from omnisync import pipeline
from omnisync.cli.boundary import errors_to_exit
from omnisync.cli.completion import channel_names
from omnisync.cli.options import DEFAULT_CONFIG, ConfigOption, StateOption, parse_at, read_config
from omnisync.cli.output import progress
from omnisync.secrets import mask

if TYPE_CHECKING:
    from omnisync.publish.feed import FeedOutcome


@errors_to_exit
def publish(
    config: ConfigOption = Path(DEFAULT_CONFIG),
    channel: Annotated[
        list[str] | None,
        typer.Option(
            "--channel",
            "-C",
            help="Publish only this channel (repeatable).",
            autocompletion=channel_names,
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Compute and validate the feeds; write and record nothing."),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Publish a feed that lost more items than publish.min_ratio allows."
        ),
    ] = False,
    at: Annotated[
        str | None,
        typer.Option("--at", help="Evaluate sale windows at this ISO 8601 time instead of now."),
    ] = None,
    state: StateOption = None,
    no_history: Annotated[
        bool,
        typer.Option(
            "--no-history", help="Do not record this run (nor measure against the last one)."
        ),
    ] = False,
) -> None:
    """Write every published channel's feed (its `publish:` block) from canonical."""
    when = parse_at(at)
    cfg = read_config(config)
    with progress() as shown:
        if no_history:
            outcome = pipeline.publish(
                cfg, None, channel, at=when, force=force, dry_run=dry_run, progress=shown
            )
        else:
            with pipeline.open_store(state, cfg) as store:
                outcome = pipeline.publish(
                    cfg, store, channel, at=when, force=force, dry_run=dry_run, progress=shown
                )
    for feed in outcome.feeds:
        typer.echo(mask(_line(feed, outcome.dry_run)))
        for skipped in feed.skipped:
            typer.echo(mask(f"  left out: {skipped}"))
    if outcome.run_id:
        typer.echo(f"run {outcome.run_id}")
    raise typer.Exit(int(outcome.exit_code))


def _line(feed: FeedOutcome, dry_run: bool) -> str:
    items = f"{feed.items} item{'s' if feed.items != 1 else ''}"
    skipped = f", {len(feed.skipped)} left out" if feed.skipped else ""
    if dry_run:
        what = "would write"
    elif feed.changed:
        what = "wrote"
    else:
        what = "unchanged"
    return f"{feed.channel}: {what} {feed.path} ({feed.format}, {items}{skipped})"


#: The commands of this module, in the order `omnisync --help` lists them.
COMMANDS = (publish,)
