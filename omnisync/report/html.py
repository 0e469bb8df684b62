"""The HTML report: one self-contained page per check, for people who open it in a browser.

A heading with the verdict, a summary table with one row per channel, the trend charts over
earlier runs of the same config (server-rendered SVG: findings per channel and per field,
consistency, pushes applied and failed), then a findings table that filters by channel, kind
and field and searches by SKU. No network: the CSS and the few lines of JavaScript are inline,
so the file works from a CI artefact, an e-mail attachment or ``file://``.

Every value is escaped (:func:`html.escape`), after masking: a title ``<script>`` is text.
The findings table holds at most :data:`ROW_CAP` rows, so that a million-SKU check does not
make a gigabyte page; the page says how many were left out and where to find them all.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from omnisync.models import ChannelReport, CheckResult, Finding, Kind
from omnisync.report._common import (
    Status,
    cap,
    detail_text,
    duration_seconds,
    field_label,
    overall_status,
    plural,
    status,
)
from omnisync.secrets import mask

if TYPE_CHECKING:
    from omnisync.store.rows import Trends

#: Findings rows on one page at most (over all channels); the rest are counted, not shown.
ROW_CAP = 10_000
#: Where the findings beyond the cap are.
CAP_HINT = "use `--format json` or `--format csv` for all of them"
#: Line colours of the charts, in turn (chosen to stay apart for common colour blindness).
PALETTE = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#7f7f7f",
    "#bcbd22",
)

_CSS = """
:root { --fg: #1b1f24; --muted: #59636e; --line: #d1d9e0; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
  margin: 0 auto; padding: 1.5rem; max-width: 1400px; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
h2 { font-size: 1.15rem; margin: 2rem 0 .5rem; border-bottom: 1px solid var(--line); }
h3 { font-size: 1rem; margin: 1rem 0 .25rem; }
.facts, .note { color: var(--muted); }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid var(--line); padding: .3rem .5rem; text-align: left;
  vertical-align: top; }
thead th { background: var(--bg); }
#findings-table thead th { position: sticky; top: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.sku { white-space: nowrap; }
td.value { white-space: pre-wrap; word-break: break-word; max-width: 28rem; }
.status { font-weight: 600; white-space: nowrap; }
.status-ok { color: #1a7f37; } .status-warning { color: #9a6700; }
.status-mismatch { color: #cf222e; } .status-error { color: #8250df; }
.sev-warn { color: #9a6700; } .sev-info { color: var(--muted); }
#filters { display: flex; flex-wrap: wrap; gap: .75rem; align-items: center; margin: .5rem 0; }
#filters label { display: flex; gap: .3rem; align-items: center; }
button.show { font: inherit; cursor: pointer; }
.charts { display: flex; flex-wrap: wrap; gap: 1.5rem; }
figure { margin: 0; }
figcaption { font-weight: 600; margin-bottom: .25rem; }
svg text { font: 11px system-ui, sans-serif; fill: var(--muted); }
.legend { list-style: none; padding: 0; margin: .25rem 0 0; display: flex; flex-wrap: wrap;
  gap: .25rem 1rem; max-width: 560px; }
.legend span { display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem;
  vertical-align: middle; border-radius: 2px; }
"""

# Rows carry their channel, kind, field and SKU as data attributes; the filters hide the rest.
_JS = """
(function () {
  var table = document.getElementById("findings-table");
  if (!table) return;
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  var channel = document.getElementById("filter-channel");
  var kind = document.getElementById("filter-kind");
  var field = document.getElementById("filter-field");
  var sku = document.getElementById("filter-sku");
  var shown = document.getElementById("shown-count");
  function apply() {
    var c = channel.value, k = kind.value, f = field.value;
    var q = sku.value.trim().toLowerCase(), n = 0;
    rows.forEach(function (row) {
      var d = row.dataset;
      var keep = (!c || d.channel === c) && (!k || d.kind === k) && (!f || d.field === f) &&
        (!q || d.sku.indexOf(q) !== -1);
      row.hidden = !keep;
      if (keep) n++;
    });
    shown.textContent = n + " of " + rows.length + " findings shown";
  }
  [channel, kind, field].forEach(function (el) { el.addEventListener("change", apply); });
  sku.addEventListener("input", apply);
  document.querySelectorAll("button.show").forEach(function (button) {
    button.addEventListener("click", function () {
      channel.value = button.dataset.channel;
      apply();
      document.getElementById("findings").scrollIntoView();
    });
  });
  apply();
})();
"""


def _e(text: object) -> str:
    """``text`` escaped for an element or a quoted attribute."""
    return html.escape("" if text is None else str(text), quote=True)


def _verdict(result: CheckResult) -> str:
    total = len(result.channels)
    bad = sum(1 for c in result.channels if not c.ok)
    if not total:
        return "no channels checked"
    if not bad:
        return "all channels consistent" if total > 1 else "channel consistent"
    return f"{bad} of {plural(total, 'channel')} not consistent"


def _facts(result: CheckResult) -> str:
    facts = [
        f"config {_e(result.config_path)}",
        f"evaluated at {_e(result.evaluated_at.isoformat())}",
    ]
    seconds = duration_seconds(result)
    if seconds is not None:
        facts.append(f"took {seconds:.1f} s")
    return " · ".join(facts)


def consistency(channel: ChannelReport) -> str:
    """Matched over canonical SKUs (``92.9%``); a dash for an unread or empty channel."""
    if channel.error is not None or not channel.canonical_count:
        return "—"
    return f"{100 * channel.matched / channel.canonical_count:.1f}%"


_COUNTED = (
    Kind.MISSING,
    Kind.EXTRA,
    Kind.CHANGED,
    Kind.DUPLICATE,
    Kind.DATA_QUALITY,
    Kind.IDENTITY,
)


def _summary(result: CheckResult) -> list[str]:
    head = [
        "Channel",
        "Connector",
        "Status",
        "Canonical",
        "In channel",
        "Matched",
        "Consistency",
        "Missing",
        "Extra",
        "Changed",
        "Duplicates",
        "Quality",
        "Identity",
        "",
    ]
    lines = [
        '<table id="summary-table">',
        "<thead><tr>"
        + "".join(f"<th{' class=num' if 3 <= i <= 12 else ''}>{h}</th>" for i, h in enumerate(head))
        + "</tr></thead>",
        "<tbody>",
    ]
    for channel in result.channels:
        state: Status = status(channel)
        if channel.error is not None:
            numbers = ["—"] * 10
        else:
            numbers = [
                str(channel.canonical_count),
                str(channel.channel_count),
                str(channel.matched),
                consistency(channel),
                *(str(channel.count(kind)) for kind in _COUNTED),
            ]
        button = (
            f'<button class="show" type="button" data-channel="{_e(channel.name)}">'
            "show findings</button>"
            if channel.findings
            else ""
        )
        lines.append(
            f'<tr data-channel="{_e(channel.name)}"><th scope="row">{_e(channel.name)}</th>'
            f"<td>{_e(channel.connector)}</td>"
            f'<td class="status status-{state}">{state}</td>'
            + "".join(f'<td class="num">{n}</td>' for n in numbers)
            + f"<td>{button}</td></tr>"
        )
    lines += ["</tbody>", "</table>"]
    errors = [c for c in result.channels if c.error is not None]
    notes = [(c, note) for c in result.channels for note in c.notes]
    if errors or notes:
        lines.append('<ul class="notes">')
        lines += [f"<li><b>{_e(c.name)}</b> could not be read: {_e(c.error)}</li>" for c in errors]
        lines += [f"<li><b>{_e(c.name)}</b>: {_e(note)}</li>" for c, note in notes]
        lines.append("</ul>")
    return lines


def _options(element_id: str, label: str, everything: str, values: Iterable[str]) -> str:
    options = "".join(f'<option value="{_e(v)}">{_e(v)}</option>' for v in values)
    return (
        f'<label>{label} <select id="{element_id}">'
        f'<option value="">{everything}</option>{options}</select></label>'
    )


def _finding_row(f: Finding) -> str:
    severity = f.severity.value
    cells = [
        _e(f.channel),
        _e(f.sku),
        _e(f.kind.value),
        f'<span class="sev-{severity}">{severity}</span>',
        _e(field_label(f)),
    ]
    values = [f.expected, f.actual, f.canonical, f.rule, detail_text(f)]
    return (
        f'<tr data-channel="{_e(f.channel)}" data-kind="{_e(f.kind.value)}" '
        f'data-field="{_e(f.field or "")}" data-sku="{_e(f.sku.lower())}">'
        + "".join(
            f'<td class="sku">{c}</td>' if i == 1 else f"<td>{c}</td>" for i, c in enumerate(cells)
        )
        + "".join(f'<td class="value">{_e(v) if v is not None else ""}</td>' for v in values)
        + "</tr>"
    )


def _findings(result: CheckResult, row_cap: int) -> list[str]:
    findings = result.findings
    if not findings:
        return ['<p class="note">No findings: every channel shows what canonical says.</p>']
    shown, hidden = cap(findings, row_cap)
    channels = [c.name for c in result.channels if c.findings]
    kinds = [k.value for k in Kind if any(f.kind is k for f in shown)]
    fields = sorted({f.field for f in shown if f.field})
    lines = [
        '<form id="filters" onsubmit="return false">',
        _options("filter-channel", "Channel", "all channels", channels),
        _options("filter-kind", "Kind", "all kinds", kinds),
        _options("filter-field", "Field", "all fields", fields),
        '<label>SKU <input id="filter-sku" type="search" placeholder="search SKU"></label>',
        f'<span id="shown-count" class="note">{len(shown)} findings</span>',
        "</form>",
        '<table id="findings-table">',
        "<thead><tr><th>Channel</th><th>SKU</th><th>Kind</th><th>Severity</th><th>Field</th>"
        "<th>Expected</th><th>Actual</th><th>Canonical</th><th>Rule</th><th>Detail</th>"
        "</tr></thead>",
        "<tbody>",
        *(_finding_row(f) for f in shown),
        "</tbody>",
        "</table>",
    ]
    if hidden:
        lines.append(
            f'<p class="note" id="capped">…and {hidden} more {"finding" if hidden == 1 else "findings"} '
            f"not on this page (it holds at most {row_cap:,}): {_e(CAP_HINT)}.</p>"
        )
    return lines


# ---------------------------------------------------------------- charts

_W, _H = 560, 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 12, 12, 36


def _nice_max(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that holds ``value`` (at least 1)."""
    if value <= 1:
        return 1.0
    scale = 1.0
    while scale * 10 < value:
        scale *= 10
    return next(scale * m for m in (1, 2, 2.5, 5, 10) if scale * m >= value)


def _moment(when: datetime) -> str:
    return f"{when:%Y-%m-%d %H:%M}"


def line_chart(
    caption: str,
    moments: Sequence[datetime],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    percent: bool = False,
) -> str:
    """A line chart as inline SVG: one line per series over ``moments`` (evenly spaced, oldest
    first), a dot per value with its exact number as a tooltip, and an HTML legend."""
    values = [v for _, points in series for v in points if v is not None]
    top = 100.0 if percent else _nice_max(max(values, default=0.0))
    width, height = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    count = len(moments)

    def x(i: int) -> float:
        return _LEFT + (width / 2 if count == 1 else width * i / (count - 1))

    def y(v: float) -> float:
        return _TOP + height * (1 - v / top)

    def shown(v: float) -> str:
        return f"{v:.1f}%" if percent else f"{v:g}"

    parts = [
        f'<svg class="chart" width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" role="img" '
        f'aria-label="{_e(caption)}">'
    ]
    for fraction in (0.0, 0.5, 1.0):
        level = y(top * fraction)
        parts.append(
            f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{level:.1f}" y2="{level:.1f}" '
            'stroke="#d1d9e0" stroke-width="1"/>'
            f'<text x="{_LEFT - 6}" y="{level + 4:.1f}" text-anchor="end">'
            f"{_e(shown(top * fraction))}</text>"
        )
    # Label the first and last run always, those between when there is room.
    step = max(1, (count + 5) // 6)
    for i, when in enumerate(moments):
        if i % step and i != count - 1:
            continue
        # The outermost labels keep inside the frame.
        anchor = (
            "middle" if count == 1 else "start" if i == 0 else "end" if i == count - 1 else "middle"
        )
        parts.append(
            f'<text x="{x(i):.1f}" y="{_H - _BOTTOM + 16}" text-anchor="{anchor}">'
            f"{_e(f'{when:%m-%d %H:%M}')}</text>"
        )
    legend = []
    for index, (name, points) in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        dots = [(i, v) for i, v in enumerate(points) if v is not None]
        path = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in dots)
        parts.append(f'<g class="series" data-series="{_e(name)}">')
        if len(dots) > 1:
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>'
            )
        parts += [
            f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}">'
            f"<title>{_e(name)}, {_e(_moment(moments[i]))}: {_e(shown(v))}</title></circle>"
            for i, v in dots
        ]
        parts.append("</g>")
        # The newest value in the legend: lines that lie on top of each other stay readable.
        last = f" {shown(dots[-1][1])}" if dots else ""
        legend.append(f'<li><span style="background:{colour}"></span>{_e(name)}{_e(last)}</li>')
    parts.append("</svg>")
    return (
        f"<figure><figcaption>{_e(caption)}</figcaption>{''.join(parts)}"
        f'<ul class="legend">{"".join(legend)}</ul></figure>'
    )


def trend_charts(trends: Trends | None) -> list[str]:
    """The trend section's charts: findings per channel, consistency per channel, findings
    per field and kind of each channel, and pushes applied and failed."""
    if trends is None:
        return ['<p class="note">No trends: this run was not read from the run history.</p>']
    checks = trends.checks
    if not checks:
        return ['<p class="note">No recorded checks of this config yet.</p>']
    moments = [point.started_at for point in checks]
    names: list[str] = []
    for point in checks:
        names += [name for name in point.channels if name not in names]

    def per_channel(name: str, value: str) -> list[float | None]:
        out: list[float | None] = []
        for point in checks:
            channel = point.channels.get(name)
            if channel is None or channel.error:
                out.append(None)
            elif value == "findings":
                out.append(float(sum(channel.findings.values())))
            else:
                out.append(channel.consistency)
        return out

    charts = [
        line_chart(
            "Findings per channel",
            moments,
            [(mask(name), per_channel(name, "findings")) for name in names],
        ),
        line_chart(
            "Consistency (matched / canonical SKUs)",
            moments,
            [(mask(name), per_channel(name, "consistency")) for name in names],
            percent=True,
        ),
    ]
    for name in names:
        labels: list[str] = []
        for point in checks:
            channel = point.channels.get(name)
            if channel is not None:
                labels += [label for label in channel.findings if label not in labels]
        if not labels:
            continue
        series: list[tuple[str, Sequence[float | None]]] = []
        for label in labels:
            counts: list[float | None] = []
            for point in checks:
                channel = point.channels.get(name)
                counts.append(
                    None
                    if channel is None or channel.error
                    else float(channel.findings.get(label, 0))
                )
            series.append((mask(label), counts))
        charts.append(line_chart(f"{mask(name)}: findings per field and kind", moments, series))
    pushes = trends.pushes
    if pushes:
        charts.append(
            line_chart(
                "Pushes: changes applied and failed",
                [p.started_at for p in pushes],
                [
                    ("applied", [float(p.applied) for p in pushes]),
                    ("failed", [float(p.failed) for p in pushes]),
                ],
            )
        )
    else:
        charts.append('<p class="note">No pushes of this config in this period.</p>')
    runs = plural(len(checks), "recorded check")
    since = _moment(checks[0].started_at)
    return [
        f'<p class="note">{runs} since {_e(since)} (UTC).</p>',
        '<div class="charts">',
        *charts,
        "</div>",
    ]


def page(title: str, body: Iterable[str]) -> str:
    """A whole HTML document around ``body``: inline CSS and script, nothing fetched."""
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(title)}</title>",
            f"<style>{_CSS}</style>",
            "</head>",
            "<body>",
            *body,
            f"<script>{_JS}</script>",
            "</body>",
            "</html>",
            "",
        ]
    )


def render_html(
    result: CheckResult,
    *,
    trends: Trends | None = None,
    row_cap: int | None = None,
    index_href: str | None = None,
) -> str:
    """The HTML report of ``result`` (already masked), with charts of ``trends`` (None: a
    note that there is no history); at most ``row_cap`` (default :data:`ROW_CAP`) rows of
    findings. ``index_href`` links back to a site's index (``omnisync report``)."""
    limit = ROW_CAP if row_cap is None else row_cap
    run = f" run {result.run_id}" if result.run_id else ""
    verdict = _verdict(result)
    state = overall_status(result)
    title = f"omnisync check{run}: {verdict}"
    back = [f'<nav><a href="{_e(index_href)}">← all runs</a></nav>'] if index_href else []
    body = [
        "<header>",
        *back,
        f'<h1>omnisync check{_e(run)}: <span class="status-{state}">{_e(verdict)}</span></h1>',
        f'<p class="facts">{_facts(result)}</p>',
        "</header>",
        '<section id="summary">',
        "<h2>Channels</h2>",
        *_summary(result),
        "</section>",
        '<section id="trends">',
        "<h2>Trends</h2>",
        *trend_charts(trends),
        "</section>",
        '<section id="findings">',
        "<h2>Findings</h2>",
        *_findings(result, limit),
        "</section>",
    ]
    return page(title, body)
