"""The human report: rich tables for a terminal, readable as plain text in cron mail and CI logs.

A summary table (one row per channel), read errors in red, then per channel with findings a
detail table capped at ``limit`` rows. Long values are shortened around their first difference
so that two long descriptions do not look identical; the machine formats never shorten.
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from omnisync.models import ChannelReport, CheckResult, Finding, Kind, Severity
from omnisync.report._common import (
    MORE_HINT,
    Status,
    cap,
    channel_summary,
    detail_text,
    duration_seconds,
    field_label,
    one_line,
    plural,
    status,
)

#: Longest value shown in a detail cell; longer ones are cut with an ellipsis.
CELL_WIDTH = 60
_STYLE: dict[Status, str] = {
    "ok": "green",
    "warning": "yellow",
    "mismatch": "bold yellow",
    "error": "bold red",
}
_NONE = Text("—", style="dim")


def _clip(text: str, width: int = CELL_WIDTH, start: int = 0) -> str:
    text = one_line(text)
    if start > 0:
        text = "…" + text[start + 1 :]
    return text if len(text) <= width else text[: width - 1] + "…"


def _start(expected: str | None, actual: str | None, width: int = CELL_WIDTH) -> int:
    """Where to start showing two long values so that their first difference is visible."""
    if expected is None or actual is None:
        return 0
    a, b = one_line(expected), one_line(actual)
    if max(len(a), len(b)) <= width:
        return 0
    common = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
    if common is None:
        common = min(len(a), len(b))
    # Keep about a third of the cell as context before the difference.
    return max(0, common - width // 3) if common > width - 10 else 0


def _value(text: str | None, start: int = 0) -> Text:
    return _NONE if text is None else Text(_clip(text, start=start))


def _padding(width: int) -> tuple[int, int]:
    # Below 100 columns (rich's default when output is not a terminal is 80) the padding
    # gives way, so that channel names and counts need not: the box's space divider remains.
    return (0, 1) if width >= 100 else (0, 0)


def _summary(result: CheckResult, width: int) -> Table:
    title = "omnisync check"
    if result.run_id:
        title += f" run {result.run_id}"
    caption = f"config {result.config_path} · evaluated at {result.evaluated_at.isoformat()}"
    seconds = duration_seconds(result)
    if seconds is not None:
        caption += f" · took {seconds:.1f} s"
    table = Table(
        title=Text(title, style="bold"),
        title_justify="left",
        caption=Text(caption, style="dim"),
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        padding=_padding(width),
    )
    longest = max((len(c.name) for c in result.channels), default=0)
    table.add_column("Channel", no_wrap=True, min_width=min(longest, 24))
    table.add_column("Status", no_wrap=True, min_width=len("mismatch"))
    for name in (
        "Canonical",
        "In channel",
        "Matched",
        "Missing",
        "Extra",
        "Changed",
        "Duplicates",
        "Quality",
        "Identity",
    ):
        table.add_column(name, justify="right", min_width=len(name.split()[-1]))
    for channel in result.channels:
        state = status(channel)
        if channel.error is not None:
            counts = [_NONE] * 9
        else:
            counts = [
                Text(str(n), style="yellow" if n and kind is not None else "")
                for n, kind in (
                    (channel.canonical_count, None),
                    (channel.channel_count, None),
                    (channel.matched, None),
                    (channel.count(Kind.MISSING), Kind.MISSING),
                    (channel.count(Kind.EXTRA), Kind.EXTRA),
                    (channel.count(Kind.CHANGED), Kind.CHANGED),
                    (channel.count(Kind.DUPLICATE), Kind.DUPLICATE),
                    (channel.count(Kind.DATA_QUALITY), Kind.DATA_QUALITY),
                    (channel.count(Kind.IDENTITY), Kind.IDENTITY),
                )
            ]
        table.add_row(Text(channel.name), Text(state, style=_STYLE[state]), *counts)
    return table


def _detail_row(f: Finding) -> list[Text]:
    start = _start(f.expected, f.actual)
    canonical_start = (
        start if f.canonical and f.expected and f.canonical[:start] == f.expected[:start] else 0
    )
    notes = "; ".join(part for part in (f.rule, detail_text(f)) if part)
    return [
        Text(one_line(f.sku)),
        Text(f.kind.value)
        if f.severity is Severity.FAIL
        else Text.assemble(f.kind.value, (f" ({f.severity.value})", "dim")),
        Text(one_line(field_label(f))),
        _value(f.expected, start),
        _value(f.actual, start),
        _value(f.canonical, canonical_start),
        Text(_clip(notes)) if notes else _NONE,
    ]


def _details(
    channel: ChannelReport, findings: list[Finding], limit: int | None, width: int, title: Text
) -> Table:
    shown, hidden = cap(findings, limit)
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        padding=_padding(width),
        caption=Text(f"…and {hidden} more ({MORE_HINT.replace('`', '')})", style="dim")
        if hidden
        else None,
        caption_justify="left",
    )
    table.add_column("SKU", no_wrap=True)
    table.add_column("Kind", no_wrap=True)
    table.add_column("Field", no_wrap=True)
    for name in ("Expected", "Actual", "Canonical", "Rule / detail"):
        table.add_column(name, overflow="fold", min_width=9)
    for f in shown:
        table.add_row(*_detail_row(f))
    return table


def print_report(console: Console, result: CheckResult, *, limit: int | None = 20) -> None:
    """Print ``result`` for a person: summary, read errors, capped findings per channel.

    ``result`` must already be masked (:func:`omnisync.report.print_report` does that).
    """
    console.print(_summary(result, console.width))
    for channel in result.channels:
        if channel.error is not None:
            # Continuation lines indented, so that a multi-line message stays one block.
            message = channel.error.replace("\n", "\n  ")
            console.print(
                Text.assemble(
                    (f"{channel.name}: could not be read: ", "bold red"), (message, "red")
                )
            )
    for channel in result.channels:
        for note in channel.notes:
            console.print(Text(f"{channel.name}: {note}", style="dim"))
    for channel in result.channels:
        # Identity findings (SKUs that do not line up with their products) have a section of
        # their own: they say the comparison above them may be about the wrong products.
        identity = [f for f in channel.findings if f.kind is Kind.IDENTITY]
        others = [f for f in channel.findings if f.kind is not Kind.IDENTITY]
        if others:
            title = Text.assemble(
                (channel.name, "bold"), f" ({channel.connector}): ", channel_summary(channel)
            )
            console.print()
            console.print(_details(channel, others, limit, console.width, title))
        if identity:
            title = Text.assemble(
                (channel.name, "bold"),
                " identity: ",
                f"{plural(len(identity), 'finding')}: SKUs not lining up with their products",
            )
            console.print()
            console.print(_details(channel, identity, limit, console.width, title))
    console.print()
    bad = sum(1 for c in result.channels if not c.ok)
    total = len(result.channels)
    if bad:
        verdict = Text(f"{bad} of {plural(total, 'channel')} not consistent", style="bold red")
    else:
        verdict = Text(f"{plural(total, 'channel')} consistent", style="bold green")
    console.print(verdict)
