"""Pull and push throughput of the magento2 connector against the emulator with latency.

Pull: seeds PRODUCTS sellable products (half simple, half the children of configurables with
PER_PARENT children each, so the catalogue also holds the configurables) with stock at two
MSI sources in the emulator, served from a process of its own (as a store runs on its own
machine: its CPU does not compete with the client's for one interpreter lock) with LATENCY
seconds added to every request, pulls everything and compares the wall time with the
theoretical minimum for the page size and concurrency (Magento sets no rate limit on the
catalogue's REST API; with Web API input limits on, a page holds at most 300 rows, the
default page size here):

    rows     = products + configurables          (containers are listed too)
    requests = ceil(rows / page_size)             product pages
             + ceil(source items / page_size)     source item pages
             + 3                                  base currency, store view's time zone, sources
    rounds   = ceil(requests / concurrency)      (an integration token needs no round of its
                                                  own; the first round holds the two first
                                                  pages, which tell the totals, and the lookups)
    min      = rounds × one round trip            (measured in the same run: a 1-row search)

Push: CHANGES price changes, then CHANGES stock changes (one source each), in batches of
``batch_size`` as the push pipeline sends them (re-read the targets, then write); prints the
bulk requests and source item saves against ceil(CHANGES / batch_size), with the status
polls and reads beside them. The emulator's bulks complete at their second status poll.

    .venv/bin/python bench/magento2_pull.py
    .venv/bin/python bench/magento2_pull.py --products 20000 --concurrency 8

On a loaded machine (other processes on the same cores) wall times stretch: compare the best
of the repeated pulls.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import statistics
import sys
import time
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the emulator lives in tests/

import httpx  # noqa: E402

from omnisync.models import Change, Op  # noqa: E402
from omnisync.sdk.connector import ConnectorContext  # noqa: E402
from omnisync_connectors.magento2.connector import Magento2Connector  # noqa: E402
from tests.emulators.magento2 import MagentoEmulator, seed  # noqa: E402
from tests.emulators.server import serve  # noqa: E402


def store(pipe: Connection, simple: int, parents: int, per_parent: int, latency: float) -> None:
    """The emulated store, in its own process: answers `requests` (the counts so far, then
    zeroed), `stats` and `stop` on the pipe."""
    shop = MagentoEmulator()
    seed(shop, simple=simple, configurable=parents, children=per_parent)
    with serve(shop.app, latency=latency) as server:
        info = (server.url, shop.integration_token, len(shop.products), len(shop.source_items))
        pipe.send(info)
        while (command := pipe.recv()) != "stop":
            if command == "stats":
                pipe.send(dict(shop.stats))
                continue
            assert command == "requests"
            pipe.send(dict(server.requests))
            server.requests.clear()


def round_trip(url: str, token: str, tries: int = 7) -> float:
    """Median wall time of a 1-row product search: what one round trip costs here."""
    headers = {"Authorization": f"Bearer {token}"}
    params = {"searchCriteria[pageSize]": "1", "searchCriteria[currentPage]": "1"}
    with httpx.Client(base_url=url, headers=headers) as http:
        times = []
        for _ in range(tries):
            started = time.perf_counter()
            http.get("/rest/default/V1/products", params=params).raise_for_status()
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--per-parent", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--page-size", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--changes", type=int, default=2_000)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5, help="pulls; the best and median count")
    args = parser.parse_args()

    parents = args.products // 2 // args.per_parent
    simple = args.products - parents * args.per_parent
    pipe, child_end = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=store,
        args=(child_end, simple, parents, args.per_parent, args.latency),
        daemon=True,
    )
    process.start()
    url, token, rows, items = pipe.recv()

    def ask(command: str) -> dict[str, Any]:
        pipe.send(command)
        answer: dict[str, Any] = pipe.recv()
        return answer

    try:
        options = Magento2Connector.Options.model_validate(
            {
                "url": url,
                "token": token,
                "gtin_attribute": "ean",
                "page_size": args.page_size,
                "concurrency": args.concurrency,
                "batch_size": args.batch_size,
                "bulk_poll": args.latency,
            }
        )
        rtt = round_trip(url, token)
        ask("requests")

        # One pull first, untimed: the emulator keeps its answers until a write, so the timed
        # pulls measure the client and the network, not the emulator's Python.
        list(Magento2Connector(options, ConnectorContext("bench")).read())
        ask("requests")
        walls = []
        for _ in range(args.repeat):  # a fresh connector each time: the lookups included
            connector = Magento2Connector(options, ConnectorContext("bench"))
            connector.api  # builds the httpx client (SSL context), before any request  # noqa: B018
            started = time.perf_counter()
            pulled = list(connector.read())
            walls.append(time.perf_counter() - started)
        sent = sum(ask("requests").values()) // args.repeat
        wall, typical = min(walls), statistics.median(walls)

        product_pages = math.ceil(rows / args.page_size)
        source_pages = math.ceil(items / args.page_size)
        fewest = product_pages + source_pages + 3
        rounds = math.ceil(fewest / args.concurrency)
        print(
            f"pull: {len(pulled):,} products ({rows:,} incl. {parents:,} configurables), "
            f"{items:,} source items"
        )
        print(
            f"  page_size {args.page_size}, concurrency {args.concurrency}, "
            f"latency {args.latency * 1000:.0f} ms, one round trip measured {rtt * 1000:.1f} ms"
        )
        print(f"  wall time      {wall:.3f} s best of {args.repeat}, median {typical:.3f} s")
        print(
            f"  requests       {sent} (fewest possible: {product_pages} product pages + "
            f"{source_pages} source item pages + 3 lookups = {fewest})"
        )
        print(
            f"  minimum        {rounds * rtt:.3f} s = ceil({fewest} / {args.concurrency}) "
            f"= {rounds} round trips × {rtt * 1000:.1f} ms"
        )
        print(
            f"  ratio          {wall / (rounds * rtt):.2f}× the minimum, median "
            f"{typical / (rounds * rtt):.2f}× (target ≤ 1.3×)"
        )
        push(connector, pulled, args, ask)
    finally:
        pipe.send("stop")
        process.join(timeout=30)


def push(connector: Magento2Connector, pulled: list[Any], args: Any, ask: Any) -> None:
    """Price changes through bulks, then stock changes through source item saves, batch by
    batch as the push pipeline sends them."""
    targets = pulled[: args.changes]
    prices = []
    stocks = []
    for record in targets:
        assert record.price is not None
        before = {"amount": str(record.price.amount), "currency": "EUR"}
        after = {"amount": str(record.price.amount + Decimal("1.00")), "currency": "EUR"}
        prices.append(Change("bench", record.sku, Op.UPDATE, "price", None, before, after))
        now = (record.stock or {}).get("berlin", 0)
        stocks.append(Change("bench", record.sku, Op.UPDATE, "stock", "berlin", now, now + 5))
    expected = math.ceil(len(targets) / args.batch_size)
    for name, changes in (("price", prices), ("stock", stocks)):
        ask("requests")
        before = ask("stats")
        bulks, polls, saves = connector.bulk.bulks, connector.bulk.polls, connector.source_saves
        started = time.perf_counter()
        failed = 0
        for start in range(0, len(changes), args.batch_size):
            batch = changes[start : start + args.batch_size]
            connector.current(batch)
            failed += sum(not r.ok for r in connector.write(batch))
        wall = time.perf_counter() - started
        counts = ask("requests")
        after = ask("stats")
        reads = counts.get("GET /rest/default/V1/products", 0)
        print(
            f"push: {len(changes):,} {name} changes, batch_size {args.batch_size}, {failed} failed"
        )
        print(f"  wall time      {wall:.3f} s")
        if name == "price":
            print(
                f"  bulk requests  {connector.bulk.bulks - bulks} (ceil({len(changes)} / "
                f"{args.batch_size}) = {expected}), "
                f"{after['operations'] - before.get('operations', 0)} operations, "
                f"{connector.bulk.polls - polls} status polls"
            )
        else:
            print(
                f"  source saves   {connector.source_saves - saves} (ceil({len(changes)} / "
                f"{args.batch_size}) = {expected})"
            )
        print(
            f"  reads          {reads} product searches, "
            f"{counts.get('GET /rest/default/V1/inventory/source-items', 0)} source item searches "
            "(per batch: the pipeline's re-read, and after a bulk the confirming read)"
        )


if __name__ == "__main__":
    main()
