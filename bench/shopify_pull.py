"""Pull and push speed of the shopify connector against the emulator with real latency and
Shopify's cost bucket.

The Admin GraphQL emulator runs in a child process (its CPU does not share the client's GIL,
as a real shop's would not) and answers every request after LATENCY seconds. VARIANTS
variants (4 per product) stocked at LOCATIONS locations are pulled through the connector, once
per bucket plan, and the bench prints the wall time, the requests, the points charged and the
ratio to the theoretical minimum for the same latency, page size, bucket and concurrency:

    pages     P_v = ceil(V / 250) variant pages; P_l = ceil(V / 250) level pages per location
    latency   T_lat  = L x (1 + max(P_v, P_l, ceil((P_v + k x P_l) / c)))
              (the shop query first; then the variant stream and the k location streams run
              side by side, each a chain of cursors, at most c requests in flight)
    cost      T_cost = L + max(0, C - B) / r
              (C points charged in all, of which a full bucket B pays at once; the rest comes
              in at the restore rate r; the last page still takes a round trip)
    minimum   T_min  = max(T_lat, T_cost)

The baseline, measured in the same run, sends the same requests from bare httpx threads (one
per stream, no pacing, no records): what the emulator and the machine add to the latency.
"vs base" divides the wall time by the larger of the minimum and the baseline.

Then CHANGES changes (half prices, half stock, each on its own variant) are pushed the way
``omnisync apply`` does (re-read the targets, write, in batches of ``max_batch`` variants)
and the write requests are compared with ceil(CHANGES / max_batch).

    .venv/bin/python bench/shopify_pull.py
    .venv/bin/python bench/shopify_pull.py --plans roomy plus --latency 0.05 --concurrency 4
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the emulator lives in tests/
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from omnisync.models import Change, Op  # noqa: E402
from omnisync.sdk.connector import ConnectorContext  # noqa: E402
from omnisync_connectors.shopify import client as api  # noqa: E402
from omnisync_connectors.shopify.connector import ShopifyConnector  # noqa: E402

TOKEN = "shpat_bench_token"
PER_PRODUCT = 4
PAGE = 250
#: Bucket size and restore rate per plan (Shopify's published restore rates; the bucket is
#: 20 seconds' worth, as recent standard-plan responses show 2000/100). "roomy" takes cost
#: out of the picture, leaving latency and concurrency.
PLANS = {
    "standard": (2_000.0, 100.0),
    "advanced": (4_000.0, 200.0),
    "plus": (20_000.0, 1_000.0),
    "enterprise": (40_000.0, 2_000.0),
    "roomy": (10_000_000.0, 10_000_000.0),
}


def serve_shop(variants: int, locations: int, latency: float, pipe: Connection) -> None:
    """Child process: seed the emulator, serve it, answer commands until ``stop``."""
    from tests.emulators.server import serve
    from tests.emulators.shopify import ShopifyEmulator

    shop = ShopifyEmulator(TOKEN)
    shop.seed(
        math.ceil(variants / PER_PRODUCT),
        PER_PRODUCT,
        locations=[f"Location {n}" for n in range(1, locations + 1)],
    )
    with serve(shop, latency=latency) as server:
        pipe.send(server.url)
        while True:
            command, argument = pipe.recv()
            if command == "stop":
                return
            if command == "plan":
                shop.maximum, shop.restore_rate = argument
                shop.reset_bucket()
                shop.calls.clear()
                pipe.send(None)
            elif command == "stats":
                pipe.send(
                    {
                        "requests": Counter(c.operation for c in shop.calls),
                        "charged": sum(c.actual or 0 for c in shop.calls),
                        "throttled": shop.count("throttled"),
                    }
                )


def raw_pull(url: str, locations: list[str]) -> float:
    """The baseline: the same page requests from a bare httpx client, one thread per stream
    (variants, each location's levels), no pacing, no records. Seconds."""
    client = httpx.Client(
        base_url=url,
        headers={"X-Shopify-Access-Token": TOKEN},
        limits=httpx.Limits(max_connections=8, max_keepalive_connections=8),
    )
    path = "/admin/api/2026-01/graphql.json"

    def stream(query: str, operation: str, variables: dict[str, Any], keys: list[str]) -> None:
        after = None
        while True:
            body = {
                "query": query,
                "operationName": operation,
                "variables": {**variables, "after": after},
            }
            data = client.post(path, json=body).json()["data"]
            for key in keys:
                data = data[key]
            if not data["pageInfo"]["hasNextPage"]:
                return
            after = data["pageInfo"]["endCursor"]

    started = time.perf_counter()
    client.post(
        path,
        json={"query": api.SHOP, "operationName": "OmnisyncShop", "variables": {"first": 250}},
    )
    with ThreadPoolExecutor(max_workers=1 + len(locations)) as pool:
        futures = [
            pool.submit(
                stream, api.VARIANTS, "OmnisyncVariants", {"first": PAGE}, ["productVariants"]
            )
        ]
        futures += [
            pool.submit(
                stream,
                api.LEVELS,
                "OmnisyncLevels",
                {"first": PAGE, "location": gid},
                ["location", "inventoryLevels"],
            )
            for gid in locations
        ]
        for future in futures:
            future.result()
    client.close()
    return time.perf_counter() - started


def connector(url: str, concurrency: int) -> ShopifyConnector:
    options = ShopifyConnector.Options.model_validate(
        {"url": url, "token": TOKEN, "concurrency": concurrency}
    )
    made = ShopifyConnector(options, ConnectorContext("shopify"))
    assert isinstance(made, ShopifyConnector)
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", type=int, default=10_000)
    parser.add_argument("--locations", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--plans", nargs="+", choices=sorted(PLANS), default=["roomy", "enterprise"]
    )
    parser.add_argument("--changes", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3, help="pulls per plan; the fastest counts")
    args = parser.parse_args()

    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(
        target=serve_shop, args=(args.variants, args.locations, args.latency, child), daemon=True
    )
    process.start()
    url = parent.recv()

    def ask(command: str, argument: Any = None) -> Any:
        parent.send((command, argument))
        return parent.recv()

    v, k, c, latency = args.variants, args.locations, args.concurrency, args.latency
    pages_v = math.ceil(v / PAGE)
    pages_l = math.ceil(v / PAGE)
    t_lat = latency * (1 + max(pages_v, pages_l, math.ceil((pages_v + k * pages_l) / c)))
    print(
        f"shopify pull: {v:,} variants, {k} locations, latency {latency * 1000:.0f} ms, "
        f"concurrency {c}, page size {PAGE}"
    )
    ask("plan", PLANS["roomy"])
    gids = [loc.gid for loc in connector(url, c).shop().locations]
    baseline = min(raw_pull(url, gids) for _ in range(args.repeat))
    print(
        f"  baseline: the same {1 + pages_v + k * pages_l} requests from bare httpx threads, "
        f"no bucket: {baseline:.2f} s ({baseline / t_lat:.2f}x the latency minimum: what this "
        "emulator and machine add)"
    )
    print(
        f"  {'plan':<11} {'bucket':>11} {'restore/s':>10} {'records':>8} {'requests':>8} "
        f"{'points':>8} {'throttled':>9} {'wall s':>7} {'min s':>7} {'ratio':>6} {'vs base':>7}"
    )
    try:
        for plan in args.plans:
            bucket, rate = PLANS[plan]
            best: tuple[float, int, dict[str, Any]] | None = None
            for _ in range(args.repeat if plan == "roomy" else 1):
                ask("plan", (bucket, rate))  # a full bucket for each pull
                pulling = connector(url, c)
                started = time.perf_counter()
                count = sum(1 for _ in pulling.read())
                wall = time.perf_counter() - started
                if best is None or wall < best[0]:
                    best = (wall, count, ask("stats"))
            assert best is not None
            wall, count, stats = best
            charged = stats["charged"]
            t_cost = latency + max(0.0, charged - bucket) / rate
            minimum = max(t_lat, t_cost)
            requests = sum(stats["requests"].values())
            print(
                f"  {plan:<11} {bucket:>11,.0f} {rate:>10,.0f} {count:>8,} {requests:>8} "
                f"{charged:>8,} {stats['throttled']:>9} {wall:>7.2f} {minimum:>7.2f} "
                f"{wall / minimum:>5.2f}x {wall / max(minimum, baseline):>6.2f}x"
            )
        print(
            f"  minimum = max(L x (1 + max({pages_v}, {pages_l}, ceil(({pages_v} + {k} x "
            f"{pages_l}) / {c}))), L + max(0, points - bucket) / restore)"
        )

        ask("plan", PLANS["roomy"])
        pushing = connector(url, c)
        records = [r for r in pushing.read() if r.stock and r.price]
        ask("plan", PLANS["roomy"])
        changes = []
        for n, record in enumerate(records[: args.changes]):
            if n % 2:
                location, quantity = next(iter((record.stock or {}).items()))
                changes.append(
                    Change(
                        "shopify",
                        record.sku,
                        Op.UPDATE,
                        "stock",
                        location,
                        quantity,
                        quantity + 1,
                        ids=record.ids,
                    )
                )
            else:
                assert record.price is not None
                before = {"amount": str(record.price.amount), "currency": record.price.currency}
                after = {**before, "amount": str(record.price.amount + 1)}
                changes.append(
                    Change(
                        "shopify",
                        record.sku,
                        Op.UPDATE,
                        "price",
                        None,
                        before,
                        after,
                        ids=record.ids,
                    )
                )
        size = pushing.capabilities.max_batch
        started = time.perf_counter()
        failed = 0
        for start in range(0, len(changes), size):
            batch = changes[start : start + size]
            pushing.current(batch)
            failed += sum(not r.ok for r in pushing.write(batch))
        wall = time.perf_counter() - started
        stats = ask("stats")
        writes = stats["requests"]["OmnisyncWrite"]
        reads = stats["requests"]["OmnisyncTargets"]
        print(
            f"shopify push: {len(changes):,} changes ({failed} failed) in {wall:.2f} s: "
            f"{writes} write requests (ceil({len(changes)} / {size}) = "
            f"{math.ceil(len(changes) / size)}), {reads} re-reads of the targets"
        )
    finally:
        parent.send(("stop", None))
        process.join(timeout=30)


if __name__ == "__main__":
    main()
