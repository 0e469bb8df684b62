"""Turning a check's findings into a plan of changes, per channel, that a push can execute.

A plan is the reviewable contract between `omnisync plan` and `omnisync apply`: per channel,
per SKU, per field, ``from → to`` with the rule that produced ``to``. Only fields the
channel's ``push.fields`` lists are written (every other field is owned by the channel);
missing records become creates only with ``push.create``; extra records become deletes only
with ``push.delete``. Everything not turned into a change is listed with the reason.

The JSON form (``omnisync.plan/1``) is stable and re-loadable; ``apply`` executes it exactly.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from omnisync.config import Config
from omnisync.errors import InputError, Problem
from omnisync.models import Change, CheckResult, Finding, Kind, Op
from omnisync.sdk.connector import UpdateLimit

PLAN_SCHEMA = "omnisync.plan/1"


@dataclass(slots=True)
class Skipped:
    """A finding that is not turned into a change, and why."""

    sku: str
    what: str
    reason: str


@dataclass(slots=True)
class ChannelPlan:
    """The changes for one channel."""

    name: str
    connector: str
    #: Records the channel listed when the plan was made (for the percentage guardrail).
    catalogue_size: int
    #: SKUs on both sides (for the zero-stock guardrail).
    compared: int
    changes: list[Change] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    #: SKUs earlier pushes changed within the guard window (``watch``): the record limits
    #: count them with this plan's, so a mass change arriving as many small event batches
    #: is refused like one arriving at once. Not part of the plan file.
    recent: frozenset[str] = frozenset()

    def records(self) -> int:
        """Distinct records this plan touches."""
        return len({c.sku for c in self.changes})

    def records_in_window(self) -> int:
        """Distinct records this plan and the guard window's earlier pushes touch."""
        return len({c.sku for c in self.changes} | self.recent)

    def summary(self) -> Counter[str]:
        """Changes by what they do: ``price``, ``stock``, ``create``, ``delete``, ..."""
        return Counter(
            c.field if c.op is Op.UPDATE and c.field else c.op.value for c in self.changes
        )


@dataclass(slots=True)
class Plan:
    """Corrections for every channel, from one check."""

    created_at: datetime
    config_path: str
    config_fingerprint: str
    check_run: str | None
    #: Canonical records and how many of them carry a price above zero (guardrails).
    canonical_count: int
    canonical_priced: int
    channels: list[ChannelPlan] = field(default_factory=list)
    #: Canonical records of the last trusted check before this plan's own (truncation guard).
    canonical_baseline: int | None = None
    #: Set for a plan that undoes a push run.
    undo_of: str | None = None

    @property
    def changes(self) -> list[Change]:
        return [c for ch in self.channels for c in ch.changes]

    def channel(self, name: str) -> ChannelPlan:
        return next(c for c in self.channels if c.name == name)

    def fingerprint(self) -> str:
        """sha256 of the changes: two plans with the same changes share it."""
        body = json.dumps([c.to_dict() for c in self.changes], sort_keys=True, default=str)
        return hashlib.sha256(body.encode()).hexdigest()

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "schema": PLAN_SCHEMA,
            "created_at": self.created_at.isoformat(),
            "config": self.config_path,
            "config_fingerprint": self.config_fingerprint,
            "check_run": self.check_run,
            "undo_of": self.undo_of,
            "canonical": {
                "records": self.canonical_count,
                "priced": self.canonical_priced,
                "baseline": self.canonical_baseline,
            },
            "fingerprint": self.fingerprint(),
            "channels": [
                {
                    "name": ch.name,
                    "connector": ch.connector,
                    "catalogue_size": ch.catalogue_size,
                    "compared": ch.compared,
                    "summary": dict(sorted(ch.summary().items())),
                    "changes": [c.to_dict() for c in ch.changes],
                    "skipped": [
                        {"sku": s.sku, "what": s.what, "reason": s.reason} for s in ch.skipped
                    ],
                }
                for ch in self.channels
            ],
        }
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = "plan") -> Plan:
        """Load a plan file; :class:`InputError` when it is not an omnisync plan or was edited badly."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(
                [Problem(f"{where}:{exc.lineno}", f"not valid JSON: {exc.msg}")],
                hint="pass a file written by `omnisync plan --out`",
            ) from None
        if not isinstance(data, dict) or data.get("schema") != PLAN_SCHEMA:
            raise InputError(
                [Problem(where, f"not an omnisync plan (expected schema {PLAN_SCHEMA!r})")],
                hint="pass a file written by `omnisync plan --out`",
            )
        try:
            plan = cls(
                created_at=datetime.fromisoformat(data["created_at"]),
                config_path=data["config"],
                config_fingerprint=data["config_fingerprint"],
                check_run=data.get("check_run"),
                canonical_count=int(data["canonical"]["records"]),
                canonical_priced=int(data["canonical"]["priced"]),
                canonical_baseline=_optional_int(data["canonical"].get("baseline")),
                undo_of=data.get("undo_of"),
                channels=[
                    ChannelPlan(
                        name=ch["name"],
                        connector=ch["connector"],
                        catalogue_size=int(ch["catalogue_size"]),
                        compared=int(ch["compared"]),
                        changes=[Change.from_dict(c) for c in ch["changes"]],
                        skipped=[Skipped(**s) for s in ch.get("skipped", [])],
                    )
                    for ch in data["channels"]
                ],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                [
                    Problem(
                        where, f"plan file is incomplete or malformed ({type(exc).__name__}: {exc})"
                    )
                ],
                hint="re-create it with `omnisync plan --out`",
            ) from None
        keys = Counter((c.channel, c.key) for c in plan.changes)
        twice = [f"{ch}:{key}" for (ch, key), n in keys.items() if n > 1]
        if twice:
            raise InputError(
                [Problem(where, f"the plan changes {k} more than once") for k in twice[:20]],
                hint="re-create it with `omnisync plan --out`",
            )
        return plan


class UpdateHistory(Protocol):
    """When earlier pushes updated SKUs (the state store's journal implements it)."""

    def update_times(
        self, channel: str, skus: Collection[str], since: datetime, *, located: bool = False
    ) -> dict[str, list[datetime]]: ...


def update_limit(config: Config, channel: str) -> UpdateLimit | None:
    """The update limit the channel's connector declares (``Capabilities.update_limit``)."""
    source = config.channels.get(channel)
    return source.connector_class.capabilities.update_limit if source is not None else None


def over_limit(
    channel: ChannelPlan, limit: UpdateLimit, history: UpdateHistory, now: datetime | None = None
) -> dict[str, str]:
    """The SKUs whose changes in ``channel`` would exceed ``limit``, each with why and when
    it may be updated next, counting the pushes ``history`` recorded within the window."""
    now = now or datetime.now(UTC)
    since = now - timedelta(seconds=limit.window)
    skus = {c.sku for c in channel.changes if limit.counts(c)}
    times = history.update_times(channel.name, skus, since, located=limit.located)
    held: dict[str, str] = {}
    for sku in sorted(skus):
        earlier = times.get(sku, [])
        if len(earlier) < limit.updates:
            continue
        # The window admits another update once the oldest of the last `updates` leaves it.
        allowed = earlier[-limit.updates] + timedelta(seconds=limit.window)
        shown = ", ".join(f"{t:%Y-%m-%d %H:%M}" for t in earlier)
        held[sku] = (
            f"{sku}: {channel.name} takes {limit.describe()}, and pushes updated it "
            f"{len(earlier)} time(s) within the window ({shown} UTC); "
            f"the next update is allowed after {allowed:%Y-%m-%d %H:%M} UTC"
        )
    return held


def build_plan(result: CheckResult, config: Config, history: UpdateHistory | None = None) -> Plan:
    """The plan that corrects ``result``'s findings, within each channel's ``push`` rules.
    With ``history`` (the state store), changes that would exceed a channel's update limit
    are held back: skipped, with the reason and when the SKU may be updated next."""
    plan = Plan(
        created_at=result.finished_at or result.started_at,
        config_path=result.config_path,
        config_fingerprint=result.config_fingerprint,
        check_run=result.run_id,
        canonical_count=result.canonical_count,
        canonical_priced=result.canonical_priced,
        canonical_baseline=result.canonical_baseline,
    )
    for report in result.channels:
        if report.error is not None:
            continue
        channel = ChannelPlan(
            name=report.name,
            connector=report.connector,
            catalogue_size=report.channel_count,
            # SKUs on both sides: a listed channel's few SKUs, not all of canonical, are what
            # a share of zeroed stock is measured against.
            compared=report.in_both,
        )
        rules = config.channel_config(report.name).push
        # A missing SKU and an extra one that share a GTIN are one product: neither is
        # created nor deleted (that would relist it) until the SKUs agree.
        paired = {
            sku: f"identity: one product with {other} (same GTIN); make the SKUs agree first"
            for f in report.findings
            if f.kind is Kind.IDENTITY and f.field == "sku" and f.expected and f.actual
            for sku, other in ((f.expected, f.actual), (f.actual, f.expected))
        }
        for finding in report.findings:
            if finding.kind in (Kind.MISSING, Kind.EXTRA) and finding.sku in paired:
                channel.skipped.append(Skipped(finding.sku, finding.label, paired[finding.sku]))
                continue
            change, reason = _change_for(finding, rules)
            if change is not None:
                channel.changes.append(change)
            else:
                channel.skipped.append(Skipped(finding.sku, finding.label, reason))
        limit = update_limit(config, report.name) if history is not None else None
        if limit is not None and history is not None and channel.changes:
            held = over_limit(channel, limit, history)
            kept = []
            for change in channel.changes:
                if change.sku in held and limit.counts(change):
                    channel.skipped.append(Skipped(change.sku, change.key, held[change.sku]))
                else:
                    kept.append(change)
            channel.changes = kept
        plan.channels.append(channel)
    return plan


def _change_for(finding: Finding, rules: Any) -> tuple[Change | None, str]:
    if rules is None:
        return None, "channel is check-only (no `push:` block)"
    match finding.kind:
        case Kind.DUPLICATE:
            return None, "SKU listed more than once in the channel; fix it there first"
        case Kind.DATA_QUALITY:
            return None, f"data quality: {finding.detail or 'the value cannot be used'}"
        case Kind.IDENTITY:
            return None, f"identity: {finding.detail or 'the SKUs do not line up'}"
        case Kind.MISSING:
            if not rules.create:
                return None, "missing in channel; set push.create: true to create it"
            return Change(
                finding.channel, finding.sku, Op.CREATE, after=finding.after, rule="create"
            ), ""
        case Kind.EXTRA:
            if not rules.delete:
                return (
                    None,
                    "not in canonical; extra records are never deleted unless push.delete: true",
                )
            return (
                Change(
                    finding.channel,
                    finding.sku,
                    Op.DELETE,
                    before=finding.before,
                    ids=finding.ids,
                    rule="delete",
                ),
                "",
            )
    assert finding.field is not None
    if finding.field not in {f.value for f in rules.fields}:
        return None, f"{finding.field} is owned by the channel (not in push.fields)"
    return (
        Change(
            finding.channel,
            finding.sku,
            Op.UPDATE,
            finding.field,
            finding.location,
            finding.before,
            finding.after,
            finding.rule,
            dict(finding.ids),
        ),
        "",
    )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)
