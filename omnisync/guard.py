"""Guardrails: refuse a push that looks like a mistake, before anything is sent.

On by default, per channel (``channels.X.push.guard``) and for the canonical source
(``canonical.guard``). Each refusal names the limit, the measured value and how to override
(``--force``, recorded in the journal, or a higher limit in the config).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from omnisync.config import Config
from omnisync.errors import GuardrailError, Problem
from omnisync.models import Change, Op
from omnisync.plan import ChannelPlan, Plan, UpdateHistory, over_limit, update_limit


@dataclass(frozen=True)
class Violation:
    """One limit a plan exceeds."""

    key: str  # the config key that sets the limit
    message: str

    def __str__(self) -> str:
        return f"{self.message} (limit: {self.key})"


def _pct(part: int, whole: int) -> Decimal:
    return (Decimal(part) * 100 / Decimal(max(whole, 1))).quantize(Decimal("0.1"))


def _amount(value: object) -> Decimal | None:
    if isinstance(value, dict) and value.get("amount") is not None:
        try:
            return Decimal(str(value["amount"]))
        except InvalidOperation:
            return None
    return None


def price_move(change: Change) -> Decimal | None:
    """How far a price change moves the price, in percent of the current price."""
    before, after = _amount(change.before), _amount(change.after)
    if before is None or after is None or before == 0:
        return None
    return (abs(after - before) * 100 / before).quantize(Decimal("0.1"))


MIN_RATIO = "canonical.guard.min_ratio"
MAX_UNPRICED = "canonical.guard.max_unpriced_pct"


def check_plan(plan: Plan, config: Config, baseline: int | None) -> list[Violation]:
    """Every guardrail ``plan`` exceeds (empty: it may proceed).

    ``baseline`` is the canonical size of the last trusted check before the plan's own check
    (see ``Store.canonical_baseline``); None on the first run, when there is nothing to
    compare with.
    """
    violations: list[Violation] = []
    canonical = config.model.canonical.guard
    if plan.undo_of is None:
        if baseline and plan.canonical_count < canonical.min_ratio * baseline:
            violations.append(
                Violation(
                    MIN_RATIO,
                    f"canonical has {plan.canonical_count} records, "
                    f"{_pct(plan.canonical_count, baseline)}% of the {baseline} in the last "
                    f"good check (below {canonical.min_ratio * 100:.0f}%): the export looks truncated",
                )
            )
        unpriced = plan.canonical_count - plan.canonical_priced
        share = _pct(unpriced, plan.canonical_count)
        if (
            plan.canonical_count
            and share > canonical.max_unpriced_pct
            and any(c.field in ("price", "sale_price") for c in plan.changes)
        ):
            violations.append(
                Violation(
                    MAX_UNPRICED,
                    f"{unpriced} of {plan.canonical_count} canonical prices ({share}%) are zero "
                    f"or missing, more than {canonical.max_unpriced_pct}%: the export looks broken",
                )
            )
    for channel in plan.channels:
        rules = config.channel_config(channel.name).push
        if rules is None or not channel.changes:
            continue
        violations.extend(_channel(channel, rules.guard, f"channels.{channel.name}.push.guard"))
    return violations


def _channel(channel: ChannelPlan, guard: object, prefix: str) -> list[Violation]:
    from omnisync.config import GuardRules

    assert isinstance(guard, GuardRules)
    out: list[Violation] = []
    name = channel.name
    records = channel.records_in_window()
    # watch: pushes of the guard window count too, so a mass change cannot slip through as
    # many small batches.
    window = (
        f" (with {records - channel.records()} changed earlier in the window)"
        if (channel.recent)
        else ""
    )
    if records > guard.max_records:
        out.append(
            Violation(
                f"{prefix}.max_records",
                f"{name}: {records} records would change{window}, "
                f"{records - guard.max_records} over the limit of {guard.max_records}",
            )
        )
    share = _pct(records, channel.catalogue_size)
    if channel.catalogue_size and share > guard.max_records_pct:
        out.append(
            Violation(
                f"{prefix}.max_records_pct",
                f"{name}: {records} of {channel.catalogue_size} records ({share}%) would "
                f"change{window}, more than {guard.max_records_pct}%",
            )
        )
    for field in ("price", "sale_price"):
        limit = guard.price_limit(field)
        moves = [
            (move, c)
            for c in channel.changes
            if c.op is Op.UPDATE and c.field == field
            for move in [price_move(c)]
            if move is not None and move > limit
        ]
        if moves:
            moves.sort(key=lambda m: m[0], reverse=True)
            worst = ", ".join(
                f"{c.sku} {_amount(c.before)}→{_amount(c.after)} ({m}%)" for m, c in moves[:3]
            )
            out.append(
                Violation(
                    f"{prefix}.max_price_change_pct",
                    f"{name}: {len(moves)} {field} change(s) move more than {limit}%: {worst}",
                )
            )
    zeroed = {
        c.sku
        for c in channel.changes
        if c.op is Op.UPDATE and c.field == "stock" and (c.before or 0) > 0 and c.after == 0
    }
    zero_share = _pct(len(zeroed), channel.compared)
    if zeroed and zero_share > guard.max_zero_stock_pct:
        out.append(
            Violation(
                f"{prefix}.max_zero_stock_pct",
                f"{name}: stock would drop to 0 for {len(zeroed)} of {channel.compared} SKUs "
                f"({zero_share}%), more than {guard.max_zero_stock_pct}%",
            )
        )
    return out


def update_limit_violations(
    plan: Plan, config: Config, history: UpdateHistory, now: datetime | None = None
) -> list[Violation]:
    """The channels whose changes would exceed their connector's update limit (a plan made
    without the history, or applied after later pushes): one violation per channel, naming
    each SKU and when it may be updated next."""
    out = []
    for channel in plan.channels:
        limit = update_limit(config, channel.name)
        if limit is None or not channel.changes:
            continue
        held = over_limit(channel, limit, history, now)
        if held:
            listed = "; ".join(list(held.values())[:3])
            more = f" (and {len(held) - 3} more SKUs)" if len(held) > 3 else ""
            out.append(
                Violation(
                    f"the {channel.connector} connector's update limit ({limit.describe()})",
                    f"{channel.name}: {len(held)} SKU(s) would be updated too often: "
                    f"{listed}{more}",
                )
            )
    return out


def refuse(violations: list[Violation]) -> GuardrailError:
    """The error that stops a push, listing every violation and how to override."""
    return GuardrailError(
        [Problem("", str(v)) for v in violations],
        hint="check the plan; if it is right, rerun with --force (recorded in the journal) "
        "or raise the named limit in the config",
    )
