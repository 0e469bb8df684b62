"""``omnisync init``: a commented first config from a canonical file and channel files."""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from omnisync import init as proposing
from omnisync.cli.boundary import errors_to_exit
from omnisync.errors import ConfigError, UsageError


@errors_to_exit
def init(
    canonical: Annotated[
        Path | None,
        typer.Argument(
            help="The canonical export (CSV, TSV, XLSX or JSON); asked for on a terminal."
        ),
    ] = None,
    channels: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[[NAME=]CHANNEL_FILE]...",
            help="Channel files, each optionally named (shop=webshop.csv).",
        ),
    ] = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the config.")
    ] = Path("omnisync.yaml"),
    sku: Annotated[
        str | None,
        typer.Option(
            "--sku", metavar="COLUMN", help="Canonical's SKU column, when not recognised."
        ),
    ] = None,
    currency: Annotated[
        str, typer.Option("--currency", help="Currency of amounts that carry none.")
    ] = "EUR",
    timezone: Annotated[
        str, typer.Option("--timezone", help="IANA zone sale windows are read in.")
    ] = "UTC",
    non_interactive: Annotated[
        bool, typer.Option("--non-interactive", help="Never ask; fail on what cannot be told.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing config file.")
    ] = False,
) -> None:
    """Write a commented config for these files: format, encoding, delimiter, decimal style,
    preset and mapping detected; validated before it is written."""
    asking = not non_interactive and _interactive()
    if output.exists() and not force:
        raise UsageError(f"{output} exists", hint="give another --output, or --force to replace it")
    if canonical is None:
        if not asking:
            raise UsageError(
                "name the canonical export", hint="omnisync init erp.csv shop.csv --non-interactive"
            )
        canonical = Path(typer.prompt("Canonical export (ERP/PIM file)"))
    if not channels and asking:
        channels = []
        while answer := typer.prompt(
            "Channel file (empty to finish)", default="", show_default=False
        ):
            channels.append(answer)
    if not channels:
        raise UsageError("name at least one channel file", hint="omnisync init erp.csv webshop.csv")
    try:
        source = proposing.detect(canonical, currency=currency, sku=sku)
    except proposing.NoSkuColumn as exc:
        if not asking:
            raise
        typer.echo(f"{canonical}: which column is the SKU? {', '.join(exc.header)}")
        column = typer.prompt("SKU column")
        while column not in exc.header:
            column = typer.prompt(f"{column!r} is not a column; SKU column")
        source = proposing.detect(canonical, currency=currency, sku=column)
    named: dict[str, proposing.Source] = {}
    for spec in channels:
        name, file = spec.split("=", 1) if "=" in spec else ("", spec)
        path = Path(file)
        name = name or proposing.channel_name(path, named)
        if name in named:
            raise UsageError(f"channel {name!r} is named twice")
        named[name] = proposing.detect(path, currency=currency)
    base = output.parent if str(output.parent) else Path(".")
    text = proposing.render(source, named, base, timezone=timezone, today=date.today())
    _write_validated(output, text)
    typer.echo(f"wrote {output}: canonical via {source.connector}, channels: {', '.join(named)}")
    for label, found in (("canonical", source), *named.items()):
        guesses = ", ".join(f"{k} {v!r}" for k, v in found.options.items() if k != "mapping")
        typer.echo(f"  {label}: {found.connector}{' (' + guesses + ')' if guesses else ''}")
    typer.echo(f"next: read the comments in {output}, then `omnisync check -c {output}`")


def _interactive() -> bool:
    """Whether a person can answer questions (a terminal on standard input)."""
    return sys.stdin.isatty()


def _write_validated(output: Path, text: str) -> None:
    """Write ``text`` to ``output`` only if the loader accepts it (nothing is left otherwise)."""
    from omnisync.config import load_config

    folder = output.parent if str(output.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{output.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        try:
            load_config(temporary)
        except ConfigError as exc:
            exc.hint = (
                "omnisync init proposed a config the loader refuses; this is a bug: "
                "please report it with the files' headers"
            )
            raise
        os.replace(temporary, output)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


#: The commands of this module, in the order `omnisync --help` lists them.
COMMANDS = (init,)
