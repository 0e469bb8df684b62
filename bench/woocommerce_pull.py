"""Pull and push speed of the woocommerce connector against the emulator with real latency.

The WooCommerce emulator runs in a child process (its CPU does not share the client's GIL, as
a real shop's would not) and answers every request after LATENCY seconds. PRODUCTS simple
products (one record each) are pulled through the connector at several concurrency levels;
for each the bench prints wall time, requests and the ratio to the theoretical minimum,
measured against the same latency (each setting is pulled ``--repeat`` times and the fastest
pull is shown, as other processes on the machine add noise):

    minimum = (1 + ceil((pages - 1) / concurrency)) x latency

page 1 alone (it tells the number of pages), then pages 2..N, ``concurrency`` at a time. With
``--variable N --variations K`` the catalogue also has N variable products of K variations;
their variations are listed per parent, one request each, which adds ceil(N / concurrency)
round trips to the minimum. The store currency is given in the options, so no settings request is counted. Then CHANGES price
changes are pushed the way ``omnisync apply`` does (re-read the targets, write, in batches of
the connector's ``max_batch``) and the write requests are compared with ceil(CHANGES / 100).

    .venv/bin/python bench/woocommerce_pull.py
    .venv/bin/python bench/woocommerce_pull.py --products 10000 --latency 0.05 --concurrency 4 8 16
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the emulator lives in tests/
    sys.path.insert(0, str(ROOT))

from omnisync.models import Change, Op  # noqa: E402
from omnisync.sdk.connector import ConnectorContext  # noqa: E402
from omnisync_connectors.woocommerce.connector import WooCommerceConnector  # noqa: E402

KEY, SECRET = "ck_bench", "cs_bench"


def serve_shop(
    products: int, variable: int, variations: int, latency: float, pipe: Connection
) -> None:
    """Child process: seed the emulator, serve it, answer ``stats`` until ``stop``."""
    from tests.emulators.server import serve
    from tests.emulators.woocommerce import Key, WooShop, seed

    shop = WooShop(keys={KEY: Key(SECRET)})
    seed(shop, simple=products, variable=variable, variations=variations)
    with serve(shop.app, latency=latency) as server:
        pipe.send(server.url)
        while (command := pipe.recv()) != "stop":
            if command == "stats":
                pipe.send((dict(server.requests), time.process_time()))
            elif command == "ids":
                pipe.send({p["sku"]: p["id"] for p in shop.sellable() if p["type"] == "simple"})
            elif isinstance(command, float):
                server.faults.latency = command
                pipe.send(command)


def connector(url: str, concurrency: int) -> WooCommerceConnector:
    options = WooCommerceConnector.Options.model_validate(
        {
            "url": url,
            "consumer_key": KEY,
            "consumer_secret": SECRET,
            "currency": "EUR",
            "concurrency": concurrency,
        }
    )
    return WooCommerceConnector(options, ConnectorContext("bench"))


def stats(pipe: Connection) -> tuple[dict[str, int], float]:
    """Requests served so far (by method and path) and the emulator's CPU seconds."""
    pipe.send("stats")
    result: tuple[dict[str, int], float] = pipe.recv()
    return result


def pull(url: str, pipe: Connection, concurrency: int) -> tuple[int, float, int, float, float]:
    """Records, wall seconds, requests, client and emulator CPU seconds of one full pull."""
    shop = connector(url, concurrency)
    served, server_cpu = stats(pipe)
    started, cpu = time.perf_counter(), time.process_time()
    count = sum(1 for _ in shop.read())
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    served_after, server_after = stats(pipe)
    requests = sum(served_after.values()) - sum(served.values())
    return count, wall, requests, cpu, server_after - server_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=10_000, help="simple products")
    parser.add_argument("--variable", type=int, default=0, help="variable products")
    parser.add_argument("--variations", type=int, default=5, help="variations of each")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--changes", type=int, default=1_000)
    parser.add_argument("--push-concurrency", type=int, default=8)
    parser.add_argument(
        "--repeat", type=int, default=5, help="pulls per setting; the fastest one is shown"
    )
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    child = context.Process(
        target=serve_shop,
        args=(args.products, args.variable, args.variations, args.latency, theirs),
        daemon=True,
    )
    child.start()
    url = ours.recv()
    pages = math.ceil((args.products + args.variable) / 100)
    records = args.products + args.variable * args.variations
    shape = f"{args.products:,} simple products"
    if args.variable:
        shape += f" and {args.variable:,} variable products of {args.variations} variations"
    print(
        f"woocommerce pull: {records:,} records ({shape}), {pages} pages of 100, "
        f"{args.latency * 1000:.0f} ms latency per request (emulator in a child process)"
    )
    print(
        f"{'concurrency':>11} {'wall s':>7} {'requests':>8} {'minimum s':>9} {'ratio':>6} "
        f"{'no-latency s':>12} {'client cpu s':>12} {'emulator cpu s':>14}"
    )
    try:
        for concurrency in args.concurrency:
            # Baseline in the same run: the same pull without latency is pure CPU (client,
            # emulator, this machine's load); the latency pull cannot beat it either.
            ours.send(0.0)
            ours.recv()
            baseline = min(pull(url, ours, concurrency)[1] for _ in range(args.repeat))
            ours.send(args.latency)
            ours.recv()
            runs = [pull(url, ours, concurrency) for _ in range(args.repeat)]
            count, wall, requests, cpu, server_cpu = min(runs, key=lambda run: run[1])
            assert count == records, f"pulled {count} records, expected {records}"
            rounds = 1 + math.ceil((pages - 1) / concurrency)
            rounds += math.ceil(args.variable / concurrency)
            minimum = rounds * args.latency
            print(
                f"{concurrency:>11} {wall:>7.2f} {requests:>8} {minimum:>9.2f} "
                f"{wall / minimum:>5.2f}x {baseline:>12.2f} {cpu:>12.2f} {server_cpu:>14.2f}"
            )
        if args.changes:
            push(url, ours, args.changes, args.push_concurrency)
    finally:
        ours.send("stop")
        child.join(timeout=30)


def push(url: str, pipe: Connection, n: int, concurrency: int) -> None:
    """``n`` price changes in the pusher's batches: re-read the targets, then write."""
    pipe.send("ids")
    ids: dict[str, int] = pipe.recv()
    skus = sorted(ids)[:n]
    shop = connector(url, concurrency)
    changes = [
        Change(
            "bench",
            sku,
            Op.UPDATE,
            "price",
            None,
            None,
            {"amount": "9.99", "currency": "EUR"},
            ids={"product_id": str(ids[sku])},
        )
        for sku in skus
    ]
    size = shop.capabilities.max_batch
    before, _ = stats(pipe)
    started = time.perf_counter()
    failed = 0
    for start in range(0, len(changes), size):
        batch = changes[start : start + size]
        shop.current(batch)
        failed += sum(not r.ok for r in shop.write(batch))
    wall = time.perf_counter() - started
    after, _ = stats(pipe)
    writes = after.get("POST /wp-json/wc/v3/products/batch", 0) - before.get(
        "POST /wp-json/wc/v3/products/batch", 0
    )
    reads = sum(after.values()) - sum(before.values()) - writes
    print(
        f"woocommerce push: {len(changes):,} price changes in {wall:.2f} s: {writes} write "
        f"requests (ceil(N/100) = {math.ceil(len(changes) / 100)}), {reads} re-read requests, "
        f"{failed} failed"
    )


if __name__ == "__main__":
    main()
