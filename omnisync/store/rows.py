"""Rows and models: how check results become rows and rows become results and summaries."""

from __future__ import annotations

import json
import os
import secrets as _random
import socket
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    insert,
)

from omnisync import secrets
from omnisync.models import (
    FINDING_ORIGIN,
    FINDING_TEXT,
    ChannelReport,
    CheckResult,
    Finding,
    Kind,
    Severity,
)
from omnisync.store.schema import (
    KIND_CHECK,
    KIND_PUSH,
    STATUS_ERROR,
    STATUS_MISMATCH,
    STATUS_OK,
    STATUS_WARNING,
    ChannelRun,
    Run,
    T,
)

# ---------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class ChannelSummary:
    """One channel's counts in a recorded run."""

    name: str
    connector: str
    canonical_count: int
    channel_count: int
    findings: int
    missing: int
    extra: int
    changed: int
    duplicate: int
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RunSummary:
    """A line of ``omnisync runs``: what ran when, how it ended, and what it found."""

    id: str
    kind: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    exit_code: int | None
    config_path: str
    #: Run-wide counts: ``channels``, ``failed_channels``, ``findings``, ``missing``, ``extra``,
    #: ``changed``, ``duplicate``.
    totals: dict[str, int]
    channels: list[ChannelSummary]


@dataclass(frozen=True, slots=True)
class ChannelPoint:
    """One channel in one recorded check, as a trend chart plots it."""

    canonical_count: int
    channel_count: int
    #: SKUs in both without a difference (as :attr:`ChannelReport.matched` counts them).
    matched: int
    #: Findings per field (``changed``) or kind (every other kind): ``{"price": 2, "missing": 1}``.
    findings: dict[str, int]
    error: bool = False

    @property
    def consistency(self) -> float | None:
        """Matched over canonical SKUs, in percent; None for an unread channel or an empty
        canonical."""
        if self.error or not self.canonical_count:
            return None
        return 100.0 * self.matched / self.canonical_count


@dataclass(frozen=True, slots=True)
class CheckPoint:
    """A recorded check in a trend: when, and each channel's counts."""

    run_id: str
    started_at: datetime
    channels: dict[str, ChannelPoint]


@dataclass(frozen=True, slots=True)
class PushPoint:
    """A recorded push in a trend: changes applied and failed."""

    run_id: str
    started_at: datetime
    applied: int
    failed: int


@dataclass(frozen=True, slots=True)
class Trends:
    """Earlier runs of one config, oldest first: what the HTML report's charts plot."""

    checks: list[CheckPoint]
    pushes: list[PushPoint]


def channel_point(row: ChannelRun, findings: dict[str, int]) -> ChannelPoint:
    # The same arithmetic as ChannelReport.in_both and .matched, from the stored counts.
    in_both = max(
        0,
        min(row.canonical_count - row.missing_count, row.channel_count - row.extra_count),
    )
    return ChannelPoint(
        canonical_count=row.canonical_count,
        channel_count=row.channel_count,
        matched=max(0, in_both - row.changed_count),
        findings=findings,
        error=row.error is not None,
    )


def new_run_id(now: datetime | None = None) -> str:
    """A run id that sorts by time and reads like one: ``20241129-071500-3fa2``.

    Aware times are converted to UTC first so that ids from hosts in different time zones
    still sort correctly.
    """
    now = datetime.now(UTC) if now is None else now
    if now.tzinfo is not None:
        now = now.astimezone(UTC)
    return f"{now:%Y%m%d-%H%M%S}-{_random.token_hex(2)}"


# ---------------------------------------------------------------- rows <-> models


def mask_message(value: str | None) -> str | None:
    return secrets.mask(value) if value else value


def _totals(channels: Sequence[ChannelReport]) -> dict[str, int]:
    totals = {
        "channels": len(channels),
        "failed_channels": sum(1 for c in channels if c.error is not None),
        "findings": sum(len(c.findings) for c in channels),
    }
    for kind in Kind:
        totals[kind.value] = sum(c.count(kind) for c in channels)
    return totals


def _status(channels: Sequence[ChannelReport]) -> str:
    if any(c.error is not None for c in channels):
        return STATUS_ERROR
    severities = {f.severity for c in channels for f in c.findings}
    if Severity.FAIL in severities:
        return STATUS_MISMATCH
    return STATUS_WARNING if Severity.WARN in severities else STATUS_OK


HOST = socket.gethostname()


def live_status(run: Run) -> str:
    """A push still marked ``running`` whose process on this host is gone was killed
    (SIGKILL, power loss) before it could record its end: it is ``interrupted``, to be
    finished with ``apply --resume``. A push from another host is taken at its word."""
    if run.kind != KIND_PUSH or run.status != "running":
        return run.status
    totals = json.loads(run.totals_json)
    pid = totals.get("_pid")
    if totals.get("_host") != HOST or not isinstance(pid, int):
        return run.status
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "interrupted"
    except PermissionError:  # alive, another user's
        return run.status
    return run.status


def run_row(run_id: str, result: CheckResult, exit_code: int) -> Run:
    return Run(
        id=run_id,
        kind=KIND_CHECK,
        started_at=result.started_at,
        finished_at=result.finished_at,
        evaluated_at=result.evaluated_at,
        config_path=secrets.mask(result.config_path),
        config_fingerprint=result.config_fingerprint,
        exit_code=exit_code,
        status=_status(result.channels),
        totals_json=json.dumps(
            {
                **_totals(result.channels),
                "canonical_records": result.canonical_count,
                "canonical_priced": result.canonical_priced,
                "canonical_baseline": result.canonical_baseline,
                "canonical_trusted": result.canonical_trusted,
                **({"from_snapshot": result.from_snapshot} if result.from_snapshot else {}),
                **({"snapshot": True} if result.snapshot else {}),
            }
        ),
    )


def channel_run_rows(run_id: str, channels: Sequence[ChannelReport]) -> list[ChannelRun]:
    return [
        ChannelRun(
            run_id=run_id,
            position=position,
            name=report.name,
            connector=report.connector,
            canonical_count=report.canonical_count,
            channel_count=report.channel_count,
            fields_json=json.dumps(list(report.fields)),
            notes_json=json.dumps(list(report.notes)) if report.notes else None,
            error=mask_message(report.error),
            error_code=report.error_code,
            finding_count=len(report.findings),
            missing_count=report.count(Kind.MISSING),
            extra_count=report.count(Kind.EXTRA),
            changed_count=report.count(Kind.CHANGED),
            duplicate_count=report.count(Kind.DUPLICATE),
        )
        for position, report in enumerate(channels)
    ]


#: The finding columns of FindingRow, in its order: read back by load(), written by record_check().
FINDING_COLUMNS = (
    *FINDING_TEXT,
    "ids_json",
    "before_json",
    "after_json",
    *FINDING_ORIGIN,
    "severity",
)
#: The columns :func:`finding_rows` fills, in its order.
FINDING_INSERT = ("run_id", "position", "channel_position", *FINDING_COLUMNS)


def finding_rows(run_id: str, channels: Sequence[ChannelReport]) -> Iterator[tuple[Any, ...]]:
    position = 0
    for channel_position, report in enumerate(channels):
        for f in report.findings:
            ids = f.ids or None
            yield (
                run_id,
                position,
                channel_position,
                f.channel,
                Kind(f.kind).value,
                f.sku,
                f.field,
                f.location,
                f.canonical,
                f.expected,
                f.actual,
                mask_message(f.rule),
                mask_message(f.detail),
                json.dumps(ids) if ids else None,
                json_value(f.before),
                json_value(f.after),
                mask_message(f.source),
                mask_message(f.origin),
                Severity(f.severity).value,
            )
            position += 1


#: Parameter markers of the driver parameter styles :func:`insert_many` writes positionally.
_MARKERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def insert_many(
    connection: Connection, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """INSERT ``rows`` (tuples of the values of ``columns``) into ``table``.

    Columns whose type converts no value for this driver (text and integers do not) go
    straight to the driver's executemany: SQLAlchemy's per-row parameter processing cost
    ~12 µs a row (40,000 findings: 0.5 s of a 1M-SKU check's history). Other columns, or a
    driver with named parameters, take ``insert()``."""
    if not rows:
        return
    dialect = connection.dialect
    marker = _MARKERS.get(dialect.paramstyle)
    plain = all(
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) is None for name in columns
    )
    if marker is None or not plain:
        connection.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    quote = dialect.identifier_preparer
    sql = (
        f"INSERT INTO {quote.format_table(table)} "
        f"({', '.join(quote.quote(name) for name in columns)}) "
        f"VALUES ({', '.join([marker] * len(columns))})"
    )
    connection.exec_driver_sql(sql, rows)


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode


def json_value(value: Any) -> str | None:
    """A JSON value for a text column, as it is (data is never masked); None stays NULL."""
    if value is None:
        return None
    return str(value) if type(value) is int else _JSON(value)


def finding_of(row: Sequence[Any]) -> Finding:
    (
        channel,
        kind,
        sku,
        field,
        location,
        canonical,
        expected,
        actual,
        rule,
        detail,
        ids,
        bj,
        aj,
        source,
        origin,
        severity,
    ) = row
    return Finding(
        channel=channel,
        kind=Kind(kind),
        sku=sku,
        field=field,
        location=location,
        canonical=canonical,
        expected=expected,
        actual=actual,
        rule=rule,
        detail=detail,
        ids=json.loads(ids) if ids else {},
        before=json.loads(bj) if bj is not None else None,
        after=json.loads(aj) if aj is not None else None,
        source=source,
        origin=origin,
        severity=Severity(severity or Severity.FAIL),
    )


def report_of(row: ChannelRun) -> ChannelReport:
    return ChannelReport(
        name=row.name,
        connector=row.connector,
        canonical_count=row.canonical_count,
        channel_count=row.channel_count,
        fields=json.loads(row.fields_json),
        notes=json.loads(row.notes_json) if row.notes_json else [],
        error=row.error,
        error_code=row.error_code,
    )


def summary_of(row: ChannelRun) -> ChannelSummary:
    return ChannelSummary(
        name=row.name,
        connector=row.connector,
        canonical_count=row.canonical_count,
        channel_count=row.channel_count,
        findings=row.finding_count,
        missing=row.missing_count,
        extra=row.extra_count,
        changed=row.changed_count,
        duplicate=row.duplicate_count,
        error=row.error,
    )
