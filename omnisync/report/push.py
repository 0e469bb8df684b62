"""Renderers for plans and push runs: what will change, and what was sent and what failed."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from omnisync.models import Change, Op
from omnisync.plan import Plan
from omnisync.push import PushOutcome
from omnisync.sdk.values import money
from omnisync.secrets import mask
from omnisync.store import PushRecord

PUSH_FORMATS = ("table", "json", "csv")
CELL = 48


def show_value(value: Any) -> str:
    """A JSON field value as people read it: ``12.99 EUR``, ``5``, a title."""
    if value is None:
        return "—"
    if isinstance(value, dict) and "amount" in value:
        text = money(Decimal(str(value["amount"])), value.get("currency")) or ""
        if value.get("start") or value.get("end"):
            text += f" ({value.get('start') or '…'} → {value.get('end') or '…'})"
        return text
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _cut(text: str) -> str:
    text = text.replace("\n", "↵")
    return text if len(text) <= CELL else text[: CELL - 1] + "…"


def _what(change: Change) -> str:
    if change.op is Op.UPDATE:
        return f"{change.field}@{change.location}" if change.location else str(change.field)
    return change.op.value


def print_plan(console: Console, plan: Plan, *, limit: int | None = 20) -> None:
    """Summary per channel, then the first ``limit`` changes and the skipped findings."""
    summary = Table(title="Plan", title_justify="left")
    for column in ("Channel", "Records", "Changes", "By kind", "Not pushed"):
        summary.add_column(
            column, justify="right" if column in ("Records", "Changes", "Not pushed") else "left"
        )
    for channel in plan.channels:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(channel.summary().items())) or "—"
        summary.add_row(
            channel.name,
            str(channel.records()),
            str(len(channel.changes)),
            kinds,
            str(len(channel.skipped)),
        )
    console.print(summary)
    for channel in plan.channels:
        if channel.changes:
            detail = Table(title=f"{channel.name}: changes", title_justify="left")
            for column in ("SKU", "Change", "From", "To", "Rule"):
                detail.add_column(column)
            shown = channel.changes if not limit else channel.changes[:limit]
            for change in shown:
                before = show_value(change.before) if change.op is not Op.CREATE else "—"
                after = (
                    show_value(change.after)
                    if change.op is Op.UPDATE
                    else ("new record" if change.op is Op.CREATE else "—")
                )
                detail.add_row(
                    change.sku,
                    _what(change),
                    mask(_cut(before)),
                    mask(_cut(after)),
                    mask(_cut(change.rule or "")),
                )
            console.print(detail)
            if limit and len(channel.changes) > limit:
                console.print(
                    f"[dim]… and {len(channel.changes) - limit} more changes (see the plan file)[/]"
                )
        if channel.skipped:
            reasons = Counter(s.reason for s in channel.skipped)
            lines = "; ".join(f"{n} × {reason}" for reason, n in reasons.most_common())
            console.print(f"[dim]{channel.name}: not pushed: {mask(lines)}[/]")


def print_previews(console: Console, previews: dict[str, list[list[Any]]]) -> None:
    """--dry-run: the exact payloads per batch."""
    if not previews:
        console.print("nothing would be sent")
    for channel, batches in previews.items():
        for index, payloads in enumerate(batches, 1):
            console.print(
                f"[bold]{channel}[/] batch {index} of {len(batches)}: {len(payloads)} payload(s)"
            )
            console.print(
                mask(json.dumps(payloads, indent=2, ensure_ascii=False, default=str)),
                markup=False,
                highlight=False,
            )


def render_push(record: PushRecord, fmt: str) -> str:
    """A recorded push run as JSON or CSV (one row per journalled change)."""
    rows = [
        {
            "seq": e.seq,
            "channel": e.change.channel,
            "sku": e.change.sku,
            "op": e.change.op.value,
            "field": e.change.field,
            "location": e.change.location,
            "before": e.change.before,
            "after": e.change.after,
            "status": e.status,
            "error": e.error,
            "attempts": e.attempts,
            "updated_at": e.updated_at.isoformat(),
        }
        for e in record.entries
    ]
    if fmt == "json":
        data = {
            "schema": "omnisync.push/1",
            "run_id": record.id,
            "status": record.status,
            "exit_code": record.exit_code,
            "started_at": record.started_at.isoformat(),
            "finished_at": record.finished_at.isoformat() if record.finished_at else None,
            "undo_of": record.undo_of,
            "forced": record.forced,
            "overrides": record.overrides,
            "changes": rows,
        }
        return mask(json.dumps(data, indent=2, ensure_ascii=False)) + "\n"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["seq"], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {k: show_value(v) if k in ("before", "after") else v for k, v in row.items()}
        )
    return mask(out.getvalue())


def print_push(console: Console, record: PushRecord, *, limit: int | None = 20) -> None:
    """A push run for people: outcome per channel and status, then failures first."""
    counts: dict[str, Counter[str]] = {}
    for entry in record.entries:
        counts.setdefault(entry.change.channel, Counter())[entry.status] += 1
    title = f"push {record.id}: {record.status}" + (
        f" (undo of {record.undo_of})" if record.undo_of else ""
    )
    summary = Table(title=title, title_justify="left")
    summary.add_column("Channel")
    statuses = ["applied", "failed", "stale", "sending", "planned"]
    for status in statuses:
        summary.add_column(status.capitalize(), justify="right")
    for channel, c in counts.items():
        summary.add_row(channel, *(str(c[s]) for s in statuses))
    console.print(summary)
    if record.status == "interrupted":
        console.print(
            f"[yellow]interrupted:[/] finish it with `omnisync apply --resume {record.id}`",
            highlight=False,
        )
    if record.overrides:
        console.print("[yellow]guardrails overridden with --force:[/]")
        for message in record.overrides:
            console.print(f"  {mask(message)}", markup=False)
    order = {"failed": 0, "stale": 1, "sending": 2, "planned": 3, "applied": 4}
    entries = sorted(record.entries, key=lambda e: (order.get(e.status, 9), e.seq))
    shown = entries if not limit else entries[:limit]
    if shown:
        detail = Table(title_justify="left")
        for column in ("Channel", "SKU", "Change", "From", "To", "Status", "Error"):
            detail.add_column(column)
        for e in shown:
            detail.add_row(
                e.change.channel,
                e.change.sku,
                _what(e.change),
                mask(_cut(show_value(e.change.before))),
                mask(_cut(show_value(e.change.after))),
                e.status,
                mask(_cut(e.error or "")),
            )
        console.print(detail)
        if limit and len(entries) > limit:
            console.print(
                f"[dim]… and {len(entries) - limit} more (use --limit 0 or --format csv)[/]"
            )


def print_outcome(console: Console, outcome: PushOutcome, limit: int | None) -> None:
    """What a push did: per channel applied/already/failed/stale, retries, the failures
    (at most ``limit``), and how to see the journal and revert it."""
    table = Table(title=f"push {outcome.run_id}: {outcome.status}", title_justify="left")
    statuses = ["applied", "already", "failed", "stale"]
    table.add_column("Channel")
    for status in statuses:
        table.add_column(status.capitalize(), justify="right")
    for channel, counts in outcome.counts.items():
        table.add_row(channel, *(str(counts[s]) for s in statuses))
    console.print(table)
    if outcome.retries:
        console.print(f"{outcome.retries} transient failure(s) retried")
    shown = outcome.failures if not limit else outcome.failures[:limit]
    for change, message in shown:
        console.print(
            f"[red]✗[/] {change.channel} {change.sku} {change.field or change.op.value}: {mask(message)}",
            highlight=False,
        )
    if limit and len(outcome.failures) > limit:
        console.print(
            f"… and {len(outcome.failures) - limit} more: `omnisync show {outcome.run_id}`"
        )
    if outcome.run_id:
        console.print(
            f"[dim]journal: `omnisync show {outcome.run_id}` · revert: `omnisync undo {outcome.run_id}`[/]"
        )
