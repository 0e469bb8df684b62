"""The figures of :mod:`bench.watch`: latencies matched from the shops' write logs, rates and
windows, the report's tables, the targets met or missed, and what a profile of the watcher
says its loop spent the time on."""

from __future__ import annotations

import argparse
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.watch_shops import Request, Write

#: Issue 14's targets.
P50_TARGET, P99_TARGET = 0.5, 2.0


# ------------------------------------------------------------------ measuring


@dataclass
class Sent:
    sku: str
    value: int
    sent: float
    answered: float
    status: int


def first_write(writes: list[Write], channel: str, sku: str, value: int) -> float | None:
    times = [w.at for w in writes if w.channel == channel and w.sku == sku and _covers(w, value)]
    return min(times) if times else None


def _covers(write: Write, value: int) -> bool:
    return write.stock is not None and write.stock >= value


@dataclass
class Latency:
    channel: str
    seconds: list[float] = field(default_factory=list)
    unconfirmed: int = 0
    before_answer: int = 0


def latencies(
    sent: list[Sent], writes: list[Write], channels: dict[str, int]
) -> dict[str, Latency]:
    """Per channel, each event's seconds from its answer to the first shop write of its SKU
    carrying its value or a later one."""
    by: dict[tuple[str, str], list[Write]] = defaultdict(list)
    for write in sorted(writes, key=lambda w: w.at):
        by[write.channel, write.sku].append(write)
    out = {name: Latency(name) for name in channels}
    for event in sent:
        for name, buffer in channels.items():
            value = max(0, event.value - buffer)
            hit = next((w for w in by[name, event.sku] if _covers(w, value)), None)
            result = out[name]
            if hit is None:
                result.unconfirmed += 1
                continue
            seconds = hit.at - event.answered
            if seconds < 0:  # an earlier batch read the new file before this answer came
                result.before_answer += 1
            result.seconds.append(max(0.0, seconds))
    return out


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (``q`` in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def rates(
    requests: list[Request],
    writes: list[Write],
    start: float,
    end: float,
    channels: dict[str, int],
) -> dict[str, dict[str, float]]:
    """Per channel: requests and write requests per second (mean, and the most in any
    one-second window), changes written per second."""
    span = max(end - start, 1e-9)
    out = {}
    for name in channels:
        times = sorted(r.at for r in requests if r.channel == name and start <= r.at <= end)
        batches = [r.at for r in requests if r.channel == name and r.write and start <= r.at]
        items = [w for w in writes if w.channel == name and start <= w.at <= end]
        out[name] = {
            "requests": len(times),
            "span_s": span,
            "requests_per_s": len(times) / span,
            "peak_requests_1s": most_within(times, 1.0),
            "write_requests_per_s": len([t for t in batches if t <= end]) / span,
            "changes_per_s": len(items) / span,
        }
    return out


def request_mix(requests: list[Request], channels: dict[str, int]) -> dict[str, dict[str, float]]:
    """Per channel, requests of each kind per write request (about: per watcher batch)."""
    out = {}
    for name in channels:
        kinds: dict[str, int] = defaultdict(int)
        for r in requests:
            if r.channel == name:
                kinds[r.kind] += 1
        writes = sum(n for kind, n in kinds.items() if kind.endswith("/batch")) or 1
        out[name] = {kind: n / writes for kind, n in sorted(kinds.items())}
    return out


def most_within(times: list[float], window: float) -> int:
    """The most of sorted ``times`` inside any half-open window of ``window`` seconds."""
    best = first = 0
    for last, at in enumerate(times):
        while at - times[first] >= window:
            first += 1
        best = max(best, last - first + 1)
    return best


# ------------------------------------------------------------------ profile


#: The watcher's steps, as (file suffix, function), roughly in the order they run, and the
#: parts inside them the issue-14 figures depend on.
STEPS = [
    ("omnisync/watch/watcher.py", "turn"),
    ("omnisync/store/events.py", "claim_events"),
    ("omnisync/watch/watcher.py", "_coalesce"),
    ("omnisync/watch/watcher.py", "handle"),
    ("omnisync/watch/watcher.py", "_plan"),
    ("omnisync/pipeline.py", "check"),
    ("connectors/woocommerce/connector.py", "check"),
    ("omnisync/load.py", "load"),
    ("connectors/woocommerce/connector.py", "read_skus"),
    ("connectors/woocommerce/connector.py", "_lookup_skus"),
    ("connectors/woocommerce/connector.py", "_read_targets"),
    ("omnisync/diff/__init__.py", "diff"),
    ("omnisync/plan.py", "build_plan"),
    ("omnisync/watch/watcher.py", "_fit"),
    ("omnisync/watch/watcher.py", "_push"),
    ("omnisync/push.py", "apply"),
    ("omnisync/plan.py", "to_json"),
    ("omnisync/store/journal.py", "start_push"),
    ("omnisync/store/journal.py", "journal"),
    ("omnisync/push.py", "_batch"),
    ("connectors/woocommerce/connector.py", "current"),
    ("connectors/woocommerce/connector.py", "send"),
    ("omnisync/store/journal.py", "mark"),
    ("omnisync/watch/watcher.py", "_settle"),
]


def profile_summary(path: Path, seconds: float) -> str:
    """What the watcher's loop (its main thread) spent its time on."""
    if not path.exists():
        return "(no profile was written)"
    if path.suffix == ".txt":  # pyinstrument's own rendering
        return "\n".join(path.read_text(encoding="utf-8").splitlines()[:80])
    import pstats

    stats: dict[Any, Any] = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    lines = [
        f"cProfile of the watcher's main thread over {seconds:.0f} s of events, wall time "
        "(waits on HTTP show as lock acquires); calls include the first pass at start-up",
        f"{'step':<58} {'calls':>7} {'total s':>8} {'per call ms':>11}",
    ]
    for suffix, name in STEPS:
        for (file, _, func), (_, calls, _, cumulative, _) in stats.items():
            if func == name and file.replace(os.sep, "/").endswith(suffix):
                where = "/".join(suffix.split("/")[-2:])
                lines.append(
                    f"{where + ' ' + name:<58} {calls:>7} {cumulative:>8.2f} "
                    f"{cumulative / max(calls, 1) * 1000:>11.1f}"
                )
    lines.append("\nmost time of its own (tottime):")
    own = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:15]
    for (file, line, func), (_, calls, total, _, _) in own:
        where = f"{Path(file).name}:{line} {func}"
        lines.append(f"  {where[:70]:<70} {calls:>8} {total:>7.2f} s")
    return "\n".join(lines)


# ------------------------------------------------------------------ report


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.3f}x" if base > 0 else "-"


def report(args: argparse.Namespace, result: dict[str, Any]) -> list[tuple[str, bool, str]]:
    sync = result["sync"]["median_wall"]
    s1, s2 = result["stream"], result["burst"]
    print(f"\nbaseline: omnisync sync (cron-style, {args.sync_changes} SKUs changed): ", end="")
    print(f"{sync:.2f} s median wall ({result['sync']['median_confirmed']:.2f} s to last write)")
    print(
        f"\nstream: {s1['events']} events in {s1['sent_for_s']:.1f} s "
        f"({s1['achieved_rate']:.1f}/s), answered in p50 {s1['answer_p50'] * 1000:.0f} ms / "
        f"p99 {s1['answer_p99'] * 1000:.0f} ms; drained {s1['drain_s']:.1f} s after the last"
    )
    print(
        f"{'channel':<8} {'p50 s':>7} {'p99 s':>7} {'max s':>7} {'p50/sync':>9} {'p99/sync':>9} "
        f"{'req/s':>6} {'peak 1s':>7} {'writes/s':>8} {'changes/s':>9} {'hist p50<=':>10} "
        f"{'p99<=':>6} unconfirmed"
    )
    for name, c in s1["channels"].items():
        r, h = s1["rates"][name], s1["histogram"].get(name, {})
        print(
            f"{name:<8} {c['p50']:>7.3f} {c['p99']:>7.3f} {c['max']:>7.3f} "
            f"{_ratio(c['p50'], sync):>9} {_ratio(c['p99'], sync):>9} "
            f"{r['requests_per_s']:>6.1f} {r['peak_requests_1s']:>7} "
            f"{r['write_requests_per_s']:>8.2f} {r['changes_per_s']:>9.1f} "
            f"{h.get('p50_le', float('nan')):>10} {h.get('p99_le', float('nan')):>6} "
            f"{c['unconfirmed']}"
        )
    store = s1["store"]
    print(
        f"where events waited (state store): queued→claimed p50 {store['queued_p50']:.3f} s "
        f"p99 {store['queued_p99']:.3f} s; claimed→settled p50 {store['handled_p50']:.3f} s "
        f"p99 {store['handled_p99']:.3f} s"
    )
    if s1.get("stages"):
        shown = ", ".join(
            f"{stage} {v['mean_s'] * 1000:.0f} ms ({v['batches']:.0f})"
            for stage, v in s1["stages"].items()
        )
        print(f"batch steps, mean (batches): {shown}")
    for name, mix in s1["request_mix"].items():
        shown = ", ".join(f"{n:.1f} {kind}" for kind, n in mix.items())
        print(f"requests per write request, {name}: {shown}")
    print(
        f"\nburst: {s2['events']} events for {s2['skus']} SKUs posted in "
        f"{s2['posted_in_s']:.1f} s, settled {s2['drain_s']:.1f} s later"
    )
    print(
        f"{'channel':<8} {'writes':>7} {'requests':>8} {'per SKU max':>11} {'mean':>6} "
        f"{'max per ' + str(s2['window_s']) + ' s window':>22}"
    )
    for name, c in s2["channels"].items():
        print(
            f"{name:<8} {c['writes']:>7} {c['write_requests']:>8} {c['writes_per_sku_max']:>11} "
            f"{c['writes_per_sku_mean']:>6.1f} {c['max_per_window']:>22}"
        )
    return targets(args, result)


def targets(args: argparse.Namespace, result: dict[str, Any]) -> list[tuple[str, bool, str]]:
    s1, s2 = result["stream"], result["burst"]
    limit = float(args.rate_limit)
    worst_p50 = max(c["p50"] for c in s1["channels"].values())
    worst_p99 = max(c["p99"] for c in s1["channels"].values())
    unconfirmed = s1["unconfirmed"]
    mean = max(r["requests_per_s"] for r in s1["rates"].values())
    peak = max(r["peak_requests_1s"] for r in s1["rates"].values())
    # A token bucket of `rate` per second holding `burst` tokens (the channel's default burst
    # is its rate) allows at most rate × span + burst requests in any span: a mean a little
    # above the rate over a short span is the burst spent, not the limit broken.
    burst = int(limit) or 1
    paced = all(r["requests"] <= limit * r["span_s"] + burst for r in s1["rates"].values())
    window = max(c["max_per_window"] for c in s2["channels"].values())
    wrong = len(s1["wrong"]) + len(s2["wrong"])
    return [
        (f"event → write p50 <= {P50_TARGET} s (worst channel)", worst_p50 <= P50_TARGET,
         f"{worst_p50:.3f} s"),
        (f"event → write p99 <= {P99_TARGET} s (worst channel)",
         worst_p99 <= P99_TARGET and unconfirmed == 0,
         f"{worst_p99:.3f} s" + (f", {unconfirmed} never confirmed" if unconfirmed else "")),
        (f"requests within rate_limit {limit:g} (<= rate × span + burst; peak 1 s <= rate + burst)",
         paced and peak <= limit + burst, f"mean {mean:.1f}/s, peak {peak} in 1 s"),
        ("burst: at most one write per SKU and channel per coalescing window", window <= 1,
         f"max {window}"),
        ("every channel ends equal to canonical (less its buffer)", wrong == 0,
         f"{wrong} wrong"),
    ]  # fmt: skip
