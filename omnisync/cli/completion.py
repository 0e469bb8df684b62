"""Shell completion (bash, zsh, fish) of what only the config knows: channel names for
``-C/--channel`` and run ids for ``show RUN``, ``undo RUN`` and ``apply --resume RUN``.

Typer completes commands and options itself; these callbacks add the values. They run on
every Tab, so they are quick and harmless: the config is only parsed (not validated, so a
file with mistakes still completes), the state store is only read when it exists, and
nothing they meet, a missing or broken file included, ever raises or prints: they return
nothing instead.
"""

from __future__ import annotations

import logging
import os
from contextlib import suppress
from pathlib import Path
from typing import Any

import typer

from omnisync.cli.options import DEFAULT_CONFIG

log = logging.getLogger("omnisync")

#: Run ids offered at most (newest first): a Tab should not page through years of history.
MAX_RUNS = 50


def channel_names(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """The channels of the config (``-c``, else $OMNISYNC_CONFIG, else omnisync.yaml) that
    start with ``incomplete``, each with its connector as help."""
    try:
        channels = _read(ctx).get("channels")
        if not isinstance(channels, dict):
            return []
        return [
            (str(name), _connector(block))
            for name, block in channels.items()
            if str(name).startswith(incomplete)
        ]
    except Exception:  # a Tab must never print a traceback
        log.debug("channel completion failed", exc_info=True)
        return []


def source_names(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """As :func:`channel_names`, with ``canonical`` first (what ``--source`` takes)."""
    channels = channel_names(ctx, "")
    names = [("canonical", "the source of truth"), *channels] if channels else []
    return [(name, help_) for name, help_ in names if name.startswith(incomplete)]


def run_ids(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """Recorded run ids (most recent first) starting with ``incomplete``, and ``last``."""
    return _runs(ctx, incomplete, kinds=None)


def push_run_ids(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """As :func:`run_ids`, push runs only (what ``undo`` and ``apply --resume`` take)."""
    return _runs(ctx, incomplete, kinds={"push"})


def _runs(ctx: typer.Context, incomplete: str, kinds: set[str] | None) -> list[tuple[str, str]]:
    try:
        found = _recorded_runs(ctx, kinds)
    except Exception:  # a Tab must never print a traceback
        log.debug("run completion failed", exc_info=True)
        return []
    choices = [("last", "the most recent run"), *found] if found else []
    return [(value, help_) for value, help_ in choices if value.startswith(incomplete)]


def _recorded_runs(ctx: typer.Context, kinds: set[str] | None) -> list[tuple[str, str]]:
    from omnisync.store import Store

    target = _store_target(ctx)
    if target is None:
        return []
    with Store.open(str(target), base_dir=Path.cwd()) as store:
        summaries = store.runs(None if kinds else MAX_RUNS)
    chosen = [run for run in summaries if kinds is None or run.kind in kinds][:MAX_RUNS]
    return [(run.id, f"{run.kind} {run.started_at:%Y-%m-%d %H:%M} {run.status}") for run in chosen]


def _store_target(ctx: typer.Context) -> Path | None:
    """The SQLite file of the state store (``--state``, else the config's
    ``settings.state``), when it exists. A database URL is not opened on a Tab (it may be
    far away, or empty and then set up), so its runs are not completed."""
    state = _param(ctx, "state")
    if state:
        path = Path(str(state))
    else:
        config = _config_path(ctx)
        settings = _read(ctx).get("settings")
        written = settings.get("state") if isinstance(settings, dict) else None
        path = Path(str(written or ".omnisync/state.db"))
        if not path.is_absolute():
            path = config.resolve().parent / path
    text = str(path)
    if "://" in text:
        if not text.startswith("sqlite:///"):
            return None
        path = Path(text.removeprefix("sqlite:///"))
    path = path.expanduser()
    return path if path.is_file() else None


def _read(ctx: typer.Context) -> dict[Any, Any]:
    """The config's mapping, ``${...}`` replaced, or ``{}`` when it cannot be read."""
    from omnisync.config.reading import read_config_file

    path = _config_path(ctx)
    if not path.is_file():
        return {}
    with suppress(Exception):
        return read_config_file(path, str(path)).data
    return {}


def _config_path(ctx: typer.Context) -> Path:
    config = _param(ctx, "config") or os.environ.get("OMNISYNC_CONFIG") or DEFAULT_CONFIG
    return Path(str(config)).expanduser()


def _param(ctx: typer.Context, name: str) -> Any:
    """A parameter of the command being completed, as parsed so far."""
    context: Any = ctx
    while context is not None:
        if context.params.get(name) is not None:
            return context.params[name]
        context = context.parent
    return None


def _connector(block: Any) -> str:
    connector = block.get("connector") if isinstance(block, dict) else None
    return f"connector {connector}" if isinstance(connector, str) else ""
