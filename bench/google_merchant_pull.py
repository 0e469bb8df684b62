"""Pull and push throughput of the google_merchant connector against the emulator with latency.

Pull: seeds PRODUCTS products (each with STORES local inventories) in the emulator, served
from a process of its own with LATENCY seconds added to every HTTP request, and pulls them
twice: online only, and with every store. The wall time is compared with the minimum the
page size, the batch size and the concurrency allow:

    pages   P = ceil(products / page_size)     one after another: each needs the previous
                                               page's nextPageToken
    batches B = ceil(products / batch_size)    local inventory lists, batch_size per HTTP batch
    online   min = (1 token + P) round trips
    stores   min = 1 token + max(P + 1,              the page chain, then the last page's
                                                     inventories
                                 ceil((P + B) / C))  every request through C in flight
    (one round trip measured in the same run: a products.get)

Push: CHANGES price changes as the push pipeline sends them, batch by batch (re-read the
targets, write, wait until Google shows the writes); prints the HTTP batches that wrote
against ceil(CHANGES / batch_size) and the reads beside them. The emulator processes inputs
at once here (``processing_delay`` 0): the wait is one read per batch.

    .venv/bin/python bench/google_merchant_pull.py
    .venv/bin/python bench/google_merchant_pull.py --products 20000 --concurrency 8

On a loaded machine wall times stretch: compare the best of the repeated pulls.
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
from omnisync_connectors.google_merchant.connector import GoogleMerchantConnector  # noqa: E402
from tests.emulators.google_merchant import GoogleMerchantEmulator, seed  # noqa: E402
from tests.emulators.server import serve  # noqa: E402


def merchant(pipe: Connection, products: int, stores: int, latency: float) -> None:
    """The emulated Merchant API, in its own process: answers `requests` (the counts so far,
    then zeroed) and `stop` on the pipe."""
    emulator = GoogleMerchantEmulator(processing_delay=0.0)
    seed(emulator, products, stores=[f"store-{n}" for n in range(stores)])
    with serve(emulator.app, latency=latency) as server:
        pipe.send(
            (server.url, emulator.account, emulator.data_source_id, emulator.key_json(server.url))
        )
        while (command := pipe.recv()) != "stop":
            assert command == "requests"
            pipe.send(dict(server.requests))
            server.requests.clear()


def round_trip(
    connector: GoogleMerchantConnector, page_size: int | None = None, tries: int = 7
) -> float:
    """Median wall time of one products.get (what one round trip costs here), or with
    ``page_size`` of one products.list page of that size, unparsed (a page of 1000 products
    is some 400 kB: its transfer is part of every page's round trip)."""
    token = connector.api.token()
    url = str(connector.api.http.client.base_url)
    base = f"/products/v1/accounts/{connector.options.account}/products"
    path = f"{base}/de~DE~GM-00000" if page_size is None else f"{base}?pageSize={page_size}"
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as http:
        times = []
        for _ in range(tries):
            started = time.perf_counter()
            http.get(path).raise_for_status()
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--stores", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--changes", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3, help="pulls; the best and median count")
    args = parser.parse_args()

    pipe, child_end = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=merchant, args=(child_end, args.products, args.stores, args.latency), daemon=True
    )
    process.start()
    url, account, source, key = pipe.recv()

    def requests() -> dict[str, Any]:
        pipe.send("requests")
        counts: dict[str, Any] = pipe.recv()
        return counts

    def connector(stores: bool) -> GoogleMerchantConnector:
        options = GoogleMerchantConnector.Options.model_validate(
            {
                "url": url,
                "account": account,
                "key": key,
                "content_language": "de",
                "feed_label": "DE",
                "data_source": source,
                "stores": "all" if stores else None,
                "page_size": args.page_size,
                "batch_size": args.batch_size,
                "concurrency": args.concurrency,
            }
        )
        return GoogleMerchantConnector(options, ConnectorContext("bench"))

    try:
        rtt = round_trip(connector(False))
        page_rtt = round_trip(connector(False), args.page_size)
        requests()
        pages = math.ceil(args.products / args.page_size)
        batches = math.ceil(args.products / args.batch_size)
        print(
            f"pull: {args.products:,} products, {args.stores} stores each; page_size "
            f"{args.page_size}, batch_size {args.batch_size}, concurrency {args.concurrency}, "
            f"latency {args.latency * 1000:.0f} ms, one round trip measured {rtt * 1000:.1f} ms "
            f"(one page of {args.page_size}: {page_rtt * 1000:.1f} ms)"
        )
        pulled: list[Any] = []
        for stores in (False, True):
            walls = []
            for _ in range(args.repeat):  # a fresh connector each time: the token included
                fresh = connector(stores)
                fresh.api  # builds the httpx client before any request  # noqa: B018
                started = time.perf_counter()
                pulled = list(fresh.read())
                walls.append(time.perf_counter() - started)
            sent = requests()
            wall, typical = min(walls), statistics.median(walls)
            if stores:
                rounds = 1 + max(pages + 1, math.ceil((pages + batches) / args.concurrency))
                how = f"1 + max({pages} + 1, ceil(({pages} + {batches}) / {args.concurrency}))"
                fewest = 1 + pages + batches
            else:
                rounds, how, fewest = 1 + pages, f"1 + {pages}", 1 + pages
            label = "with stores" if stores else "online only"
            print(f"  {label}: {len(pulled):,} records")
            print(f"    wall time    {wall:.3f} s best of {args.repeat}, median {typical:.3f} s")
            print(
                f"    requests     {sum(sent.values()) // args.repeat} per pull (fewest possible: "
                f"{fewest} = 1 token + {pages} pages"
                + (f" + {batches} batches)" if stores else ")")
            )
            print(
                f"    minimum      {rounds * rtt:.3f} s = {how} = {rounds} round trips × "
                f"{rtt * 1000:.1f} ms"
            )
            print(
                f"    ratio        {wall / (rounds * rtt):.2f}× the minimum, median "
                f"{typical / (rounds * rtt):.2f}× (target ≤ 1.3×)"
            )
            # The page chain's round trips carry a page each: measured as such.
            paged = rtt + pages * page_rtt if not stores else None
            if paged is not None:
                print(
                    f"    with pages   {paged:.3f} s = 1 × {rtt * 1000:.1f} ms + {pages} pages × "
                    f"{page_rtt * 1000:.1f} ms: {wall / paged:.2f}×, median {typical / paged:.2f}×"
                )

        # ---- push: price changes, batch by batch as the push pipeline sends them
        writer = connector(False)
        changes = []
        for record in pulled[: args.changes]:
            assert record.price is not None
            before = {"amount": str(record.price.amount), "currency": "EUR"}
            after = {"amount": str(record.price.amount + Decimal("1.00")), "currency": "EUR"}
            changes.append(
                Change("bench", record.sku, Op.UPDATE, "price", None, before, after, ids=record.ids)
            )
        requests()
        started = time.perf_counter()
        failed = 0
        size = writer.capabilities.max_batch
        for start in range(0, len(changes), size):
            batch = changes[start : start + size]
            writer.current(batch)
            failed += sum(not r.ok for r in writer.write(batch))
        wall = time.perf_counter() - started
        counts = requests()
        written = writer.api.batches.get("products", 0)
        expected = math.ceil(len(changes) / args.batch_size)
        reads = counts.get("POST /batch/products/v1", 0) - expected
        print(
            f"push: {len(changes):,} price changes, batch_size {args.batch_size}, {failed} failed"
        )
        print(f"  wall time      {wall:.3f} s")
        print(
            f"  write batches  {expected} of {written} product batches wrote "
            f"(ceil({len(changes)} / {args.batch_size}) = {expected})"
        )
        print(
            f"  reads          {reads} batches of products.get (the pipeline's re-read before each "
            f"batch, and the read that sees Google has processed the writes)"
        )
    finally:
        pipe.send("stop")
        process.join(timeout=30)


if __name__ == "__main__":
    main()
