"""What every renderer shares: masking, channel status, capping and one-line finding text."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from itertools import chain
from operator import attrgetter
from typing import Any, Literal

from omnisync.models import (
    FINDING_ORIGIN,
    FINDING_TEXT,
    ChannelReport,
    CheckResult,
    Finding,
    Kind,
    Severity,
)
from omnisync.secrets import any_short_secret, mask

Status = Literal["ok", "warning", "mismatch", "error"]

#: Appended to a capped list of findings; the flags are the CLI's.
MORE_HINT = "use `--limit 0` or `--format csv` for all"
#: Stands for a line break in places that must stay on one line (table cells, JUnit lines).
NEWLINE_MARK = "↵"


def _m(text: str | None) -> str | None:
    return None if text is None else mask(text)


#: Every text of a finding but its kind (an enum of ours).
_MASKED = tuple(name for name in (*FINDING_ORIGIN, *FINDING_TEXT) if name != "kind")


def _mask_finding(finding: Finding) -> Finding:
    values: dict[str, Any] = {name: _m(getattr(finding, name)) for name in _MASKED}
    ids = {mask(k): mask(v) for k, v in finding.ids.items()}
    if ids == finding.ids and all(values[n] is getattr(finding, n) for n in _MASKED):
        # Nothing to hide (the usual case): renderers only read findings, so share it.
        return finding
    return replace(finding, ids=ids, **values)


_MASKED_VALUES = attrgetter(*_MASKED)


def _clean(findings: list[Finding]) -> bool:
    """No value of ``findings`` holds anything to mask: one pass of the masking regexes over
    all their text (a NUL, which no secret contains, keeps the values apart), and no value is
    a (short) secret itself."""
    values = chain.from_iterable(map(_MASKED_VALUES, findings))
    ids = chain.from_iterable(chain(f.ids, f.ids.values()) for f in findings if f.ids)
    texts = list(filter(None, chain(values, ids)))
    text = "\0".join(texts)
    return mask(text) == text and not any_short_secret(texts)


def _mask_channel(channel: ChannelReport) -> ChannelReport:
    name, connector = mask(channel.name), mask(channel.connector)
    fields, error = [mask(f) for f in channel.fields], _m(channel.error)
    clean = _clean(channel.findings)
    same = (name, connector, fields, error) == (
        channel.name,
        channel.connector,
        channel.fields,
        channel.error,
    )
    if clean and same:
        return channel  # nothing to hide: share it (and its tally of the findings)
    findings = channel.findings if clean else [_mask_finding(f) for f in channel.findings]
    return replace(
        channel, name=name, connector=connector, fields=fields, error=error, findings=findings
    )


def mask_result(result: CheckResult) -> CheckResult:
    """A copy of ``result`` with every string masked.

    Masking happens on the values, before any format escapes them: a secret containing
    ``"`` or ``&`` would no longer match once written as ``\\"`` or ``&amp;``.
    """
    channels = [_mask_channel(channel) for channel in result.channels]
    return replace(
        result,
        config_path=mask(result.config_path),
        config_fingerprint=mask(result.config_fingerprint),
        run_id=_m(result.run_id),
        channels=channels,
    )


def status(channel: ChannelReport) -> Status:
    """``error`` if the channel could not be read, ``mismatch`` if it has findings of
    severity ``fail``, ``warning`` if it has ``warn`` ones, else ``ok`` (``info`` findings
    alone leave a channel ok)."""
    if channel.error is not None:
        return "error"
    severities = {f.severity for f in channel.findings}
    if Severity.FAIL in severities:
        return "mismatch"
    return "warning" if Severity.WARN in severities else "ok"


_ORDER: tuple[Status, ...] = ("error", "mismatch", "warning", "ok")


def overall_status(result: CheckResult) -> Status:
    """The worst status over all channels (``error`` > ``mismatch`` > ``warning`` > ``ok``)."""
    statuses = {status(c) for c in result.channels}
    return next((s for s in _ORDER if s in statuses), "ok")


def severity_counts(findings: list[Finding]) -> dict[str, int]:
    """Findings per severity, worst first: ``{"fail": 3, "warn": 1, "info": 0}``."""
    counts = Counter(f.severity for f in findings)
    return {s.value: counts[s] for s in (Severity.FAIL, Severity.WARN, Severity.INFO)}


def changed_fields(channel: ChannelReport) -> dict[str, int]:
    """Changed SKUs per field, in the channel's field order (then any others, sorted)."""
    counts = channel.field_counts()
    order = [name for name in channel.fields if name in counts]
    order += sorted(name for name in counts if name not in channel.fields)
    return {name: counts[name] for name in order}


def cap(findings: list[Finding], limit: int | None) -> tuple[list[Finding], int]:
    """The first ``limit`` findings and how many were left out; ``None`` or 0 means all."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be 0 (no limit) or more, not {limit}")
    if not limit or len(findings) <= limit:
        return findings, 0
    return findings[:limit], len(findings) - limit


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``1 SKU``, ``3 SKUs``."""
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{count} {word}"


def one_line(text: str) -> str:
    """``text`` with line breaks shown as ``↵`` so that it fits one line or table cell."""
    return (
        text.replace("\r\n", NEWLINE_MARK).replace("\r", NEWLINE_MARK).replace("\n", NEWLINE_MARK)
    )


def field_label(finding: Finding) -> str:
    """``price``, ``stock@berlin``; empty for record findings (missing, extra, duplicate)."""
    return finding.label if finding.field else ""


def channel_summary(channel: ChannelReport) -> str:
    """``3 changed (price 2, stock 1), 1 missing, 1 extra, 1 duplicate``."""
    parts = []
    changed = channel.count(Kind.CHANGED)
    if changed:
        fields = ", ".join(f"{name} {n}" for name, n in changed_fields(channel).items())
        parts.append(f"{changed} changed ({fields})" if fields else f"{changed} changed")
    for kind in (Kind.MISSING, Kind.EXTRA, Kind.DUPLICATE, Kind.DATA_QUALITY, Kind.IDENTITY):
        count = channel.count(kind)
        if count:
            parts.append(f"{count} {kind.value.replace('_', ' ')}")
    return ", ".join(parts)


def where(finding: Finding) -> str | None:
    """The row a data-quality finding is about: ``canonical erp.csv:12``, ``shop shop.csv:3``."""
    if not finding.origin:
        return finding.source
    return f"{finding.source} {finding.origin}" if finding.source else finding.origin


def detail_text(finding: Finding) -> str | None:
    """The finding's detail, led by the row it is about when it names one."""
    row = where(finding)
    if row is None:
        return finding.detail
    return f"{row}: {finding.detail}" if finding.detail else row


def finding_line(finding: Finding) -> str:
    """One finding on one line, for logs and JUnit failure text::

    SKU-1 price: expected 11.99 EUR, actual 12.49 EUR (canonical 10.00 EUR; rule: net→gross 19% VAT)
    """

    def value(text: str | None) -> str:
        return "(none)" if text is None else one_line(text)

    line = f"{one_line(finding.sku)} {one_line(finding.label)}"
    notes = []
    if finding.kind is Kind.CHANGED:
        line += f": expected {value(finding.expected)}, actual {value(finding.actual)}"
    else:
        # A record finding may still carry what one side shows (e.g. the extra SKU's title).
        notes += [
            f"{name} {value(text)}"
            for name, text in (("expected", finding.expected), ("actual", finding.actual))
            if text is not None
        ]
    if finding.canonical is not None:
        notes.append(f"canonical {value(finding.canonical)}")
    if finding.rule:
        notes.append(f"rule: {one_line(finding.rule)}")
    detail = detail_text(finding)
    if detail:
        notes.append(one_line(detail))
    if notes:
        line += f" ({'; '.join(notes)})"
    return line


def duration_seconds(result: CheckResult) -> float | None:
    """Wall time of the run, if it finished."""
    if result.finished_at is None:
        return None
    return max(0.0, (result.finished_at - result.started_at).total_seconds())
