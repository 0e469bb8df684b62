"""The watch benchmark: ``omnisync watch`` against three WooCommerce emulators, with the time an
``omnisync sync`` (cron-style) takes for the same change measured in the same run.

    python -m bench.watch                      # 60 s at 50 events/s, a burst of 10,000: ~4 min
    python -m bench.watch --quick              # 15 s of events, the same burst: a smoke test
    python -m bench.watch --profile            # and a profiled repeat of the event stream
    python -m bench.watch --skus 1000 --rate 50 --seconds 60 --burst 10000 --burst-skus 100

The set-up (issue 14's speed targets): canonical is a CSV file of ``--skus`` products; three
WooCommerce emulators (``tests/emulators/woocommerce.py``, in a child process, 50 ms latency
per request, :mod:`bench.watch_shops`) hold the same catalogue, one with a stock buffer of 2.
Each channel has ``rate_limit: --rate-limit`` requests/s (WooCommerce core has no limit of
its own; this is the host's budget). The watcher is the real ``omnisync watch`` process: its
own interpreter, its uvicorn intake and its loop, as deployed, so the intake's answers and the
loop's work share one GIL just as they will in production. Its change feeds are off
(``feeds: []``): the signed generic events are the only trigger measured.

1. **baseline**: ``--sync-changes`` SKUs' stock changed in the CSV, then ``omnisync sync`` as
   cron would run it (a fresh process, incremental channel pulls after a first full one); its
   wall time, median of ``--sync-rounds``. The ratios below are against it.
2. **stream**: ``--rate`` events/s for ``--seconds``, each a stock change of a random SKU:
   the CSV is written (a temporary file, renamed) and then one signed generic event posted.
   The sender is open-loop (events go out on schedule, from a thread pool, however slow the
   answers), so a slow watcher cannot slow the load down and hide its own latency.
   **Latency** per event and channel: from the moment the event's POST was answered to the
   moment the shop had applied a write of that SKU carrying this event's stock or a later one
   (the emulator's own log of each batch item, see :mod:`bench.watch_shops`: confirmed by
   the channel, independent of anything omnisync reports). Every change makes the SKU's stock
   higher than all before it, so "this event's value or a later one" is a comparison. The
   watcher's ``omnisync_event_write_seconds`` histogram is printed beside it as a cross-check;
   it is coarser (buckets) and measured by the watcher itself from receipt to the batch
   settled. The state store's ``received_at → claimed_at → settled_at`` say where an event
   waited.
3. **burst**: ``--burst`` stock events over ``--burst-skus`` SKUs, posted as fast as one
   sender can (``--burst-per-request`` events per request, the CSV written before each).
   Counted from the emulator's log: writes per SKU and channel, and the most of them inside
   any ``coalesce_seconds`` window (target: one).

Both scenarios end with every channel compared with canonical (stock minus the buffer); a
channel left wrong fails the run (exit 1), whatever the speed. Results go to
``bench/results/watch-<UTC time>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import multiprocessing
import os
import platform
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the emulators live in tests/
    sys.path.insert(0, str(ROOT))

from bench.watch_figures import (  # noqa: E402
    Sent,
    first_write,
    latencies,
    most_within,
    percentile,
    profile_summary,
    rates,
    report,
    request_mix,
)
from bench.watch_shops import KEY, SECRET, Request, Write, serve_shops  # noqa: E402
from omnisync.watch.sources import sign  # noqa: E402

RESULTS = ROOT / "bench" / "results"
HOOK_SECRET = "bench-erp-secret"
#: name -> stock buffer
CHANNELS = {"shop": 0, "outlet": 2, "b2b": 0}
#: Every change sets a SKU's stock to BASE + the change's number, so values only rise.
BASE = 1000

CONFIG = """\
settings: {{state: state.db, timezone: UTC}}
canonical:
  connector: csv
  prices: gross
  options:
    path: canonical.csv
    currency: EUR
    mapping: {{sku: sku, title: title, price: price, stock: stock}}
channels:
{channels}
watch:
  listen: 127.0.0.1:{port}
  coalesce_seconds: {coalesce}
  interval_seconds: 3600
  reconcile_seconds: 7200
  feeds: []
  webhooks:
    erp: {{type: generic, secret: {secret}, source: canonical}}
"""

CHANNEL = """\
  {name}:
    connector: woocommerce
    options:
      url: "{url}"
      consumer_key: {key}
      consumer_secret: {secret}
      currency: EUR
      rate_limit: {rate_limit}
    expect: {{check: [price, stock], stock: {{buffer: {buffer}}}}}
    push:
      fields: [price, stock]
      guard: {{max_records: 1000000, max_records_pct: 100, max_zero_stock_pct: 100}}
"""


# ------------------------------------------------------------------ the project


@dataclass
class Project:
    """A temporary omnisync project: canonical CSV, config, state store."""

    root: Path
    skus: list[str]
    prices: dict[str, str]
    stock: dict[str, int]
    changes: int = 0

    @classmethod
    def create(cls, n: int) -> Project:
        root = Path(tempfile.mkdtemp(prefix="omnisync-bench-watch-"))
        skus = [f"S{i:05d}" for i in range(n)]
        prices = {sku: f"{10 + i % 90}.99" for i, sku in enumerate(skus)}
        project = cls(root, skus, prices, {sku: 20 + i % 50 for i, sku in enumerate(skus)})
        project.write_canonical()
        return project

    def catalogue(self) -> list[tuple[str, str, int]]:
        return [(sku, self.prices[sku], self.stock[sku]) for sku in self.skus]

    def change(self, sku: str) -> int:
        """A stock change of ``sku`` (not yet written): higher than any value before it."""
        self.changes += 1
        self.stock[sku] = BASE + self.changes
        return self.stock[sku]

    def write_canonical(self) -> None:
        """The ERP's export: written to a temporary file and renamed (never read half-way)."""
        lines = ["sku,title,price,stock"]
        lines += [
            f"{sku},Product {n},{self.prices[sku]},{self.stock[sku]}"
            for n, sku in enumerate(self.skus)
        ]
        tmp = self.root / "canonical.csv.tmp"
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        tmp.replace(self.root / "canonical.csv")

    def write_config(self, urls: dict[str, str], port: int, args: argparse.Namespace) -> None:
        channels = "".join(
            CHANNEL.format(
                name=name,
                url=urls[name],
                key=KEY,
                secret=SECRET,
                rate_limit=args.rate_limit,
                buffer=buffer,
            )
            for name, buffer in CHANNELS.items()
        )
        text = CONFIG.format(
            channels=channels.rstrip("\n"), port=port, coalesce=args.coalesce, secret=HOOK_SECRET
        )
        (self.root / "omnisync.yaml").write_text(text, encoding="utf-8")

    def expected(self, channel: str, sku: str) -> int:
        return max(0, self.stock[sku] - CHANNELS[channel])


class Shops:
    """The emulators' child process."""

    def __init__(self, project: Project, latency: float) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipe, theirs = context.Pipe()
        self.process = context.Process(
            target=serve_shops,
            args=(CHANNELS, project.catalogue(), latency, theirs),
            daemon=True,
        )
        self.process.start()
        self.urls: dict[str, str] = self.pipe.recv()

    def ask(self, *command: Any) -> Any:
        self.pipe.send(command)
        return self.pipe.recv()

    def writes(self, since: float = 0.0) -> list[Write]:
        result: list[Write] = self.ask("writes", since)
        return result

    def requests(self, since: float = 0.0) -> list[Request]:
        result: list[Request] = self.ask("requests", since)
        return result

    def wrong(self, project: Project) -> list[str]:
        """Channel/SKU pairs whose stock differs from canonical's (less the buffer)."""
        state: dict[str, dict[str, int]] = self.ask("stock")
        return [
            f"{name} {sku}: {state[name].get(sku)} != {project.expected(name, sku)}"
            for name in CHANNELS
            for sku in project.skus
            if state[name].get(sku) != project.expected(name, sku)
        ]

    def close(self) -> None:
        self.pipe.send(("stop",))
        self.process.join(timeout=30)


def _env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------ the baseline: sync


@dataclass
class SyncRound:
    wall: float
    confirmed: float
    changes: int


def run_sync(project: Project) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "omnisync", "sync", "-c", "omnisync.yaml"],
        cwd=project.root,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"omnisync sync exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return wall


def baseline(project: Project, shops: Shops, args: argparse.Namespace) -> list[SyncRound]:
    """``omnisync sync`` applying ``--sync-changes`` stock changes, ``--sync-rounds`` times
    (after a first sync, whose full pulls cron pays once)."""
    rng = random.Random(7)
    first = run_sync(project)
    print(f"  first sync (full pulls, nothing to push): {first:.2f} s", flush=True)
    rounds = []
    for n in range(args.sync_rounds):
        skus = rng.sample(project.skus, args.sync_changes)
        for sku in skus:
            project.change(sku)
        project.write_canonical()
        started = time.monotonic()
        wall = run_sync(project)
        writes = shops.writes(started)
        last = max(
            first_write(writes, name, sku, project.expected(name, sku)) or float("inf")
            for name in CHANNELS
            for sku in skus
        )
        rounds.append(SyncRound(wall, last - started, len(skus) * len(CHANNELS)))
        print(
            f"  sync round {n + 1}: {wall:.2f} s wall, last write confirmed after "
            f"{last - started:.2f} s ({len(skus)} SKUs x {len(CHANNELS)} channels)",
            flush=True,
        )
    return rounds


# ------------------------------------------------------------------ the watcher


@dataclass
class Watch:
    process: subprocess.Popen[bytes]
    url: str
    log: Path


@contextlib.contextmanager
def watching(project: Project, port: int, profile: Path | None = None) -> Iterator[Watch]:
    """``omnisync watch`` in its own process until the block ends (SIGTERM, exit 0)."""
    command = [sys.executable, "-m", "omnisync", "--log-json", "watch", "-c", "omnisync.yaml"]
    if profile is not None:
        if importlib.util.find_spec("pyinstrument") is not None:
            runner = ["-m", "pyinstrument", "-o", str(profile), "-m", "omnisync"]
        else:
            runner = ["-m", "cProfile", "-o", str(profile), "-m", "omnisync"]
        command = [sys.executable, *runner, *command[3:]]
    log = project.root / ("watch-profiled.log" if profile else "watch.log")
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            command, cwd=project.root, env=_env(), stdout=stderr, stderr=stderr
        )
    watch = Watch(process, f"http://127.0.0.1:{port}", log)
    try:
        _up(watch)
        yield watch
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        if code != 0:
            print(f"  watch exited {code}; its log: {log}", flush=True)


def _up(watch: Watch, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if watch.process.poll() is not None:
            raise SystemExit(f"watch exited {watch.process.returncode}: see {watch.log}")
        with contextlib.suppress(httpx.HTTPError, ValueError):
            if httpx.get(f"{watch.url}/healthz", timeout=1).json().get("catalogue_measured"):
                return
        time.sleep(0.1)
    raise SystemExit(f"watch did not measure the catalogue within {timeout} s: see {watch.log}")


def metrics(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """``/metrics`` as sample name -> [(labels, value)]."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text):
        for sample in family.samples:
            out[sample.name].append((dict(sample.labels), float(sample.value)))
    return out


def settled(url: str) -> float:
    return sum(v for _, v in metrics(url).get("omnisync_events_settled_total", []))


def wait_settled(url: str, total: float, timeout: float) -> float:
    """Seconds until the watcher has settled ``total`` events in all (SystemExit after
    ``timeout``)."""
    started = time.monotonic()
    while (done := settled(url)) < total:
        if time.monotonic() - started > timeout:
            raise SystemExit(f"only {done:.0f} of {total:.0f} events settled in {timeout} s")
        time.sleep(0.2)
    return time.monotonic() - started


# ------------------------------------------------------------------ scenario 1: the stream


def _post(client: httpx.Client, url: str, body: bytes) -> int:
    headers = {"Content-Type": "application/json", **sign("generic", HOOK_SECRET, body)}
    return client.post(f"{url}/webhooks/erp", content=body, headers=headers).status_code


def stream(project: Project, url: str, rate: float, seconds: float, tag: str) -> list[Sent]:
    """``rate`` events/s for ``seconds``, open-loop: each due event changes the CSV, then its
    POST goes out from a pool of senders."""
    rng = random.Random(11)
    total = int(rate * seconds)

    def send(sku: str, value: int, n: int, client: httpx.Client) -> Sent:
        body = json.dumps({"id": f"{tag}-{n}", "kind": "stock", "skus": [sku]}).encode()
        sent = time.monotonic()
        status = _post(client, url, body)
        return Sent(sku, value, sent, time.monotonic(), status)

    with httpx.Client(timeout=60) as client, ThreadPoolExecutor(32) as pool:
        futures = []
        start = time.monotonic()
        for n in range(total):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sku = rng.choice(project.skus)
            value = project.change(sku)
            project.write_canonical()
            futures.append(pool.submit(send, sku, value, n, client))
        return [f.result() for f in futures]


def histogram(url: str) -> dict[str, dict[str, float]]:
    """The watcher's event→write histogram per channel: count and the p50/p99 buckets."""
    samples = metrics(url).get("omnisync_event_write_seconds_bucket", [])
    buckets: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for labels, value in samples:
        buckets[labels["channel"]].append((float(labels["le"]), value))
    out = {}
    for name, rows in buckets.items():
        rows.sort()
        count = rows[-1][1] if rows else 0.0

        def bound(q: float, rows: list[tuple[float, float]] = rows, count: float = count) -> float:
            return next((le for le, n in rows if n >= count * q), float("inf"))

        out[name] = {"count": count, "p50_le": bound(0.5), "p99_le": bound(0.99)}
    return out


def stages(url: str) -> dict[str, tuple[float, float]]:
    """The watcher's batch steps so far: stage -> (batches, seconds in all)."""
    found = metrics(url)
    counts = {
        labels["stage"]: v for labels, v in found.get("omnisync_batch_stage_seconds_count", [])
    }
    sums = {labels["stage"]: v for labels, v in found.get("omnisync_batch_stage_seconds_sum", [])}
    return {stage: (counts[stage], sums.get(stage, 0.0)) for stage in counts}


def _since(
    after: dict[str, tuple[float, float]], before: dict[str, tuple[float, float]]
) -> dict[str, dict[str, float]]:
    out = {}
    for stage, (n, total) in after.items():
        n0, total0 = before.get(stage, (0.0, 0.0))
        if n - n0:
            out[stage] = {"batches": n - n0, "mean_s": (total - total0) / (n - n0)}
    return out


def waits(state: Path, tag: str) -> dict[str, float]:
    """From the state store: p50/p99 of receipt → claim and claim → settled, in seconds."""

    def parse(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    with contextlib.closing(sqlite3.connect(f"file:{state}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT received_at, claimed_at, settled_at FROM omnisync_event "
            "WHERE key LIKE ? AND settled_at IS NOT NULL",
            (f"{tag}-%",),
        ).fetchall()
    queued = [(parse(c) - parse(r)).total_seconds() for r, c, _ in rows]
    handled = [(parse(s) - parse(c)).total_seconds() for _, c, s in rows]
    return {
        "events": len(rows),
        "queued_p50": percentile(queued, 50),
        "queued_p99": percentile(queued, 99),
        "handled_p50": percentile(handled, 50),
        "handled_p99": percentile(handled, 99),
    }


def scenario_stream(
    project: Project, shops: Shops, watch: Watch, args: argparse.Namespace, tag: str
) -> dict[str, Any]:
    before = settled(watch.url)
    steps = stages(watch.url)
    started = time.monotonic()
    sent = stream(project, watch.url, args.rate, args.seconds, tag)
    ended = time.monotonic()
    refused = [s for s in sent if s.status != 200]
    if refused:
        raise SystemExit(f"{len(refused)} events were not answered 200: {refused[:3]}")
    drain = wait_settled(watch.url, before + len(sent), timeout=120 + args.seconds)
    writes = shops.writes(started)
    requests = shops.requests(started)
    result = latencies(sent, writes, CHANNELS)
    answers = [s.answered - s.sent for s in sent]
    return {
        "events": len(sent),
        "sent_for_s": ended - started,
        "achieved_rate": len(sent) / (ended - started),
        "drain_s": drain,
        "answer_p50": percentile(answers, 50),
        "answer_p99": percentile(answers, 99),
        "channels": {
            name: {
                "p50": percentile(r.seconds, 50),
                "p99": percentile(r.seconds, 99),
                "max": max(r.seconds, default=float("nan")),
                "confirmed": len(r.seconds),
                "unconfirmed": r.unconfirmed,
                "before_answer": r.before_answer,
            }
            for name, r in result.items()
        },
        "all_p50": percentile([s for r in result.values() for s in r.seconds], 50),
        "all_p99": percentile([s for r in result.values() for s in r.seconds], 99),
        "unconfirmed": sum(r.unconfirmed for r in result.values()),
        "rates": rates(requests, writes, started, ended, CHANNELS),
        "request_mix": request_mix(requests, CHANNELS),
        "histogram": histogram(watch.url),
        "stages": _since(stages(watch.url), steps),
        "store": waits(project.root / "state.db", tag),
        "wrong": shops.wrong(project),
    }


# ------------------------------------------------------------------ scenario 2: the burst


def scenario_burst(
    project: Project, shops: Shops, watch: Watch, args: argparse.Namespace
) -> dict[str, Any]:
    rng = random.Random(13)
    skus = rng.sample(project.skus, args.burst_skus)
    before = settled(watch.url)
    started = time.monotonic()
    with httpx.Client(timeout=60) as client:
        for first in range(0, args.burst, args.burst_per_request):
            count = min(args.burst_per_request, args.burst - first)
            events = []
            for n in range(first, first + count):
                sku = rng.choice(skus)
                project.change(sku)
                events.append({"id": f"burst-{n}", "kind": "stock", "skus": [sku]})
            project.write_canonical()
            status = _post(client, watch.url, json.dumps({"events": events}).encode())
            if status != 200:
                raise SystemExit(f"a burst request was answered {status}")
    posted = time.monotonic()
    drain = wait_settled(watch.url, before + args.burst, timeout=600)
    writes = [w for w in shops.writes(started) if w.sku in set(skus)]
    window = float(args.coalesce)
    per: dict[tuple[str, str], list[float]] = defaultdict(list)
    for write in writes:
        per[write.channel, write.sku].append(write.at)
    channels = {}
    for name in CHANNELS:
        counts = [len(per[name, sku]) for sku in skus]
        windows = [most_within(sorted(per[name, sku]), window) for sku in skus]
        batches = {w.at for w in writes if w.channel == name}
        channels[name] = {
            "writes": sum(counts),
            "write_requests": len(batches),
            "writes_per_sku_max": max(counts),
            "writes_per_sku_mean": statistics.fmean(counts),
            "max_per_window": max(windows),
        }
    last = max((w.at for w in writes), default=posted)
    return {
        "events": args.burst,
        "skus": args.burst_skus,
        "posted_in_s": posted - started,
        "drain_s": drain,
        "last_write_after_posted_s": last - posted,
        "window_s": window,
        "channels": channels,
        "wrong": shops.wrong(project),
    }


# ------------------------------------------------------------------ main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.watch", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--skus", type=int, default=1000, help="catalogue size")
    parser.add_argument("--rate", type=float, default=50, help="events per second (stream)")
    parser.add_argument("--seconds", type=float, default=60, help="length of the stream")
    parser.add_argument("--burst", type=int, default=10_000, help="events in the burst")
    parser.add_argument("--burst-skus", type=int, default=100, help="SKUs the burst touches")
    parser.add_argument("--burst-per-request", type=int, default=100, help="events per POST")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    parser.add_argument("--coalesce", default="0.2", help="watch.coalesce_seconds")
    parser.add_argument("--rate-limit", type=float, default=10, help="requests/s per channel")
    parser.add_argument("--sync-rounds", type=int, default=3, help="baseline syncs (median)")
    parser.add_argument("--sync-changes", type=int, default=50, help="SKUs each sync applies")
    parser.add_argument("--quick", action="store_true", help="15 s of events, one sync round")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="then profile a repeat of the stream (pyinstrument if installed, else cProfile)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the project folder")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.sync_rounds = 15, 1
    if args.burst_skus > args.skus or args.sync_changes > args.skus:
        parser.error("--burst-skus and --sync-changes cannot exceed --skus")
    return args


def run(args: argparse.Namespace, project: Project) -> dict[str, Any]:
    shops = Shops(project, args.latency)
    try:
        port = _free_port()
        project.write_config(shops.urls, port, args)
        print("baseline: omnisync sync", flush=True)
        rounds = baseline(project, shops, args)
        result: dict[str, Any] = {
            "sync": {
                "rounds": [asdict(r) for r in rounds],
                "median_wall": statistics.median(r.wall for r in rounds),
                "median_confirmed": statistics.median(r.confirmed for r in rounds),
            }
        }
        with watching(project, port) as watch:
            print(f"stream: {args.rate:g} events/s for {args.seconds:g} s", flush=True)
            result["stream"] = scenario_stream(project, shops, watch, args, "stream")
            print(f"burst: {args.burst} events for {args.burst_skus} SKUs", flush=True)
            result["burst"] = scenario_burst(project, shops, watch, args)
        if args.profile:
            suffix = ".txt" if importlib.util.find_spec("pyinstrument") else ".prof"
            out = RESULTS / f"watch-profile{suffix}"
            RESULTS.mkdir(parents=True, exist_ok=True)
            print(f"profile: the stream again, the watcher under a profiler → {out}", flush=True)
            with watching(project, port, profile=out) as watch:
                again = scenario_stream(project, shops, watch, args, "profiled")
            result["profiled_stream"] = {k: again[k] for k in ("all_p50", "all_p99", "events")}
            result["profile"] = profile_summary(out, args.seconds)
        return result
    finally:
        shops.close()


def main() -> None:
    args = parse_args()
    print(
        f"omnisync watch benchmark: {args.skus} SKUs, {len(CHANNELS)} WooCommerce emulators "
        f"({args.latency * 1000:.0f} ms per request, rate_limit {args.rate_limit:g}/s), "
        f"coalesce {args.coalesce} s"
    )
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    project = Project.create(args.skus)
    try:
        result = run(args, project)
    finally:
        if args.keep:
            print(f"project kept: {project.root}")
        else:
            import shutil

            shutil.rmtree(project.root, ignore_errors=True)
    verdicts = report(args, result)
    print()
    for name, met, detail in verdicts:
        print(f"  {'met   ' if met else 'MISSED'} {name}: {detail}")
    load_after = os.getloadavg()
    print(f"\nload average before/after: {load_before[0]:.1f} / {load_after[0]:.1f}")
    if "profile" in result:
        profiled = result["profiled_stream"]
        print(
            f"\nunder the profiler: p50 {profiled['all_p50']:.3f} s, p99 {profiled['all_p99']:.3f} s"
        )
        print(result["profile"])
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"watch-{started:%Y%m%dT%H%M%SZ}.json"
    document = {
        "started_at": started.isoformat(),
        "argv": sys.argv[1:],
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average": [load_before[0], load_after[0]],
        },
        "settings": {k: str(v) for k, v in vars(args).items()},
        **result,
        "targets": [{"target": t, "met": m, "measured": d} for t, m, d in verdicts],
    }
    out.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nresults: {out}")
    wrong = len(result["stream"]["wrong"]) + len(result["burst"]["wrong"])
    sys.exit(1 if wrong else 0)


if __name__ == "__main__":
    main()
