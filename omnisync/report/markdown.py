"""The Markdown report (GitHub-flavoured), for a CI job summary or a pull-request comment.

A heading with the overall verdict, a summary table with one row per channel, the read errors,
then per channel with findings a collapsed ``<details>`` block with a table of findings capped
at ``limit`` rows. Cell values are escaped, never shortened.
"""

from __future__ import annotations

import html

from omnisync.models import ChannelReport, CheckResult, Finding, Kind, Severity
from omnisync.report._common import (
    MORE_HINT,
    Status,
    cap,
    channel_summary,
    detail_text,
    duration_seconds,
    field_label,
    overall_status,
    plural,
    status,
)

_BADGE: dict[Status, str] = {
    "ok": "✅ ok",
    "warning": "🟡 warning",
    "mismatch": "❌ mismatch",
    "error": "⚠️ error",
}
# Backslash-escaping these keeps values literal: no emphasis, links, strike-through or code.
_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]~|"})


def _cell(text: str | None) -> str:
    """``text`` safe inside a GFM table cell (and inline anywhere): one line, no markup."""
    if text is None:
        return ""
    # HTML first (GitHub renders inline HTML), then Markdown punctuation, then line breaks.
    text = html.escape(text, quote=False).translate(_MD_SPECIAL)
    return text.replace("\r\n", "<br>").replace("\r", "<br>").replace("\n", "<br>")


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _heading(result: CheckResult) -> str:
    run = f" run {_cell(result.run_id)}" if result.run_id else ""
    total = len(result.channels)
    bad = sum(1 for c in result.channels if not c.ok)
    if not total:
        verdict = "no channels checked"
    elif not bad:
        verdict = "all channels consistent" if total > 1 else "channel consistent"
    else:
        verdict = f"{bad} of {plural(total, 'channel')} not consistent"
    mark = {"ok": "✅", "warning": "🟡"}.get(overall_status(result), "❌")
    return f"## {mark} omnisync check{run}: {verdict}"


def _facts(result: CheckResult) -> str:
    facts = [
        f"config {_cell(result.config_path)}",
        f"evaluated at {result.evaluated_at.isoformat()}",
    ]
    seconds = duration_seconds(result)
    if seconds is not None:
        facts.append(f"took {seconds:.1f} s")
    return " · ".join(facts)


def _summary_row(channel: ChannelReport) -> str:
    if channel.error is not None:
        counts = ["—"] * 9
    else:
        counts = [
            str(n)
            for n in (
                channel.canonical_count,
                channel.channel_count,
                channel.matched,
                channel.count(Kind.MISSING),
                channel.count(Kind.EXTRA),
                channel.count(Kind.CHANGED),
                channel.count(Kind.DUPLICATE),
                channel.count(Kind.DATA_QUALITY),
                channel.count(Kind.IDENTITY),
            )
        ]
    return _row([_cell(channel.name), _BADGE[status(channel)], *counts])


def _finding_row(f: Finding) -> str:
    return _row(
        [
            _cell(f.sku),
            f.kind.value if f.severity is Severity.FAIL else f"{f.kind.value} ({f.severity.value})",
            _cell(field_label(f)),
            _cell(f.expected),
            _cell(f.actual),
            _cell(f.canonical),
            _cell(f.rule),
            _cell(detail_text(f)),
        ]
    )


def _table(findings: list[Finding], limit: int | None) -> list[str]:
    shown, hidden = cap(findings, limit)
    lines = [
        "| SKU | Kind | Field | Expected | Actual | Canonical | Rule | Detail |",
        "|---|---|---|---|---|---|---|---|",
        *(_finding_row(f) for f in shown),
    ]
    if hidden:
        lines += ["", f"…and {hidden} more ({MORE_HINT})"]
    return lines


def _details(channel: ChannelReport, limit: int | None) -> list[str]:
    summary = html.escape(f"{channel.name} ({channel.connector})")
    identity = [f for f in channel.findings if f.kind is Kind.IDENTITY]
    others = [f for f in channel.findings if f.kind is not Kind.IDENTITY]
    lines = [
        f"<details><summary><b>{summary}</b>: {html.escape(channel_summary(channel))}</summary>",
        "",
    ]
    if others:
        lines += _table(others, limit)
    if identity:
        if others:
            lines.append("")
        lines += ["**Identity**: SKUs not lining up with their products", ""]
        lines += _table(identity, limit)
    lines += ["", "</details>"]
    return lines


def render_markdown(result: CheckResult, *, limit: int | None = 20) -> str:
    """The Markdown report; each channel's findings table shows at most ``limit`` rows."""
    lines = [
        _heading(result),
        "",
        _facts(result),
        "",
        "| Channel | Status | Canonical | In channel | Matched | Missing | Extra | Changed "
        "| Duplicates | Quality | Identity |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        *(_summary_row(c) for c in result.channels),
    ]
    errors = [c for c in result.channels if c.error is not None]
    if errors:
        lines.append("")
        lines += [f"- **{_cell(c.name)}** could not be read: {_cell(c.error)}" for c in errors]
    noted = [(c, note) for c in result.channels for note in c.notes]
    if noted:
        lines.append("")
        lines += [f"- **{_cell(c.name)}**: {_cell(note)}" for c, note in noted]
    for channel in result.channels:
        if channel.findings:
            lines += ["", *_details(channel, limit)]
    return "\n".join(lines) + "\n"
