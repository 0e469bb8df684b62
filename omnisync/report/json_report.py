"""The JSON report: a stable, versioned document of one check run, and its reader.

Schema ``omnisync.check/1`` (keys in this order; timestamps ISO 8601, with offset when known)::

    {
      "schema": "omnisync.check/1",
      "run_id": "42" | null,
      "status": "ok" | "warning" | "mismatch" | "error",  # worst channel status
      "started_at": "2024-05-01T10:00:00+00:00",
      "finished_at": "2024-05-01T10:00:03+00:00" | null,
      "evaluated_at": "2024-05-01T10:00:00+00:00",  # moment sale windows were evaluated at
      "config": "omnisync.yaml",
      "config_fingerprint": "sha256:...",
      "totals": {"channels", "ok", "warning", "mismatch", "error",  # channels per status
                 "findings", "fail", "warn", "info",  # findings per severity
                 "missing", "extra", "changed", "duplicate", "data_quality", "identity"},
      "channels": [                                 # in config order
        {
          "name": "webshop", "connector": "shopify",
          "status": "ok" | "warning" | "mismatch" | "error",  # warning: warn findings only
          "counts": {"canonical", "channel", "matched", "missing", "extra", "changed",
                     "duplicate", "data_quality", "identity"},  # changed = SKUs with any changed field
          "fields": ["title", "price", ...],        # fields compared, in order
          "changed_fields": {"price": 3, ...},      # SKUs changed per field
          "error": "message" | null, "error_code": 3 | null,
          "findings": [                             # all of them, in check order
            {"channel", "kind": "missing"|"extra"|"changed"|"duplicate"|"data_quality"|"identity",
             "sku", "field", "location", "canonical", "expected", "actual", "rule", "detail",
             "ids": {}, "before", "after",
             "source", "origin",                    # data_quality: "canonical"|channel, "erp.csv:12"
             "severity": "fail"|"warn"|"info"}      # expect.severity
          ]
        }
      ]
    }

Values in findings are display strings (``"11.99 EUR"``). ``counts``, ``changed_fields``,
``status`` and ``totals`` are derived: :func:`load_json` ignores them and recomputes.
New keys may be added within version 1; a change of meaning bumps the version.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from omnisync.errors import InputError, Problem
from omnisync.models import ChannelReport, CheckResult, Finding, Kind
from omnisync.report._common import changed_fields, overall_status, severity_counts, status

SCHEMA = "omnisync.check/1"


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _channel(channel: ChannelReport, copy: bool = True) -> dict[str, Any]:
    return {
        "name": channel.name,
        "connector": channel.connector,
        "status": status(channel),
        "counts": {
            "canonical": channel.canonical_count,
            "channel": channel.channel_count,
            "matched": channel.matched,
            "missing": channel.count(Kind.MISSING),
            "extra": channel.count(Kind.EXTRA),
            "changed": channel.count(Kind.CHANGED),
            "duplicate": channel.count(Kind.DUPLICATE),
            "data_quality": channel.count(Kind.DATA_QUALITY),
            "identity": channel.count(Kind.IDENTITY),
        },
        "fields": list(channel.fields),
        "notes": list(channel.notes),
        "changed_fields": changed_fields(channel),
        "error": channel.error,
        "error_code": channel.error_code,
        "findings": [f.to_dict() for f in channel.findings] if copy else channel.findings,
    }


def to_dict(result: CheckResult, *, copy: bool = True) -> dict[str, Any]:
    """``result`` as a ``omnisync.check/1`` document (unmasked: mask before writing it out).

    ``copy=False`` leaves each channel's ``findings`` the list of :class:`Finding` objects
    (for :func:`render_json`, which writes them without copying)."""
    statuses = [status(c) for c in result.channels]
    totals: dict[str, int] = {
        "channels": len(result.channels),
        "ok": statuses.count("ok"),
        "warning": statuses.count("warning"),
        "mismatch": statuses.count("mismatch"),
        "error": statuses.count("error"),
        "findings": len(result.findings),
    }
    totals.update(severity_counts(result.findings))
    for kind in Kind:
        totals[kind.value] = sum(c.count(kind) for c in result.channels)
    return {
        "schema": SCHEMA,
        "run_id": result.run_id,
        "status": overall_status(result),
        "started_at": _time(result.started_at),
        "finished_at": _time(result.finished_at),
        "evaluated_at": _time(result.evaluated_at),
        "config": result.config_path,
        "config_fingerprint": result.config_fingerprint,
        "totals": totals,
        "channels": [_channel(c, copy) for c in result.channels],
    }


#: One finding per line: the C encoder (which ``indent`` turns off) writes each of them, so a
#: report of 40,000 findings takes a tenth of the time, and ``grep`` finds a SKU with its values.
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode


def _finding_json(f: Finding) -> str:
    return _ENCODE(f.to_dict(copy=False))


def render_json(result: CheckResult) -> str:
    """The JSON report, UTF-8 text (not ASCII-escaped), ending in a newline: indented, with
    each finding on a line of its own."""
    document = to_dict(result, copy=False)
    # Each channel's findings stand in as a token no value can contain, then go in its place.
    token = uuid.uuid4().hex
    findings: list[list[Finding]] = []
    for index, channel in enumerate(document["channels"]):
        findings.append(channel["findings"])
        channel["findings"] = f"{token}-{index}"
    text = json.dumps(document, indent=2, ensure_ascii=False)
    for index, listed in enumerate(findings):
        body = ",\n        ".join(map(_finding_json, listed))
        text = text.replace(f'"{token}-{index}"', f"[\n        {body}\n      ]" if listed else "[]")
    return text + "\n"


def load_json(text: str) -> CheckResult:
    """Read a JSON report back into a :class:`CheckResult`, so that it can be re-rendered.

    Raises :class:`~omnisync.errors.InputError` when the text is not an ``omnisync.check/1``
    document.
    """
    hint = "pass a file written by `omnisync check --format json`"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            [Problem(f"line {exc.lineno} column {exc.colno}", exc.msg)],
            where="JSON report",
            hint=hint,
        ) from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise InputError(
            [Problem("schema", f"expected {SCHEMA!r}, found {found!r}")],
            where="JSON report",
            hint=hint,
        )
    try:
        channels = [
            ChannelReport(
                name=c["name"],
                connector=c["connector"],
                canonical_count=int(c["counts"]["canonical"]),
                channel_count=int(c["counts"]["channel"]),
                findings=[Finding.from_dict(f) for f in c.get("findings") or []],
                fields=list(c.get("fields") or []),
                notes=list(c.get("notes") or []),
                error=c.get("error"),
                error_code=c.get("error_code"),
            )
            for c in data["channels"]
        ]
        finished = data.get("finished_at")
        return CheckResult(
            started_at=datetime.fromisoformat(data["started_at"]),
            evaluated_at=datetime.fromisoformat(data["evaluated_at"]),
            config_path=data["config"],
            config_fingerprint=data["config_fingerprint"],
            channels=channels,
            finished_at=datetime.fromisoformat(finished) if finished else None,
            run_id=data.get("run_id"),
        )
    except KeyError as exc:
        problem = Problem(str(exc.args[0]), "required key is missing")
    except (TypeError, ValueError) as exc:
        problem = Problem("", str(exc))
    raise InputError([problem], where="JSON report", hint=hint)
