"""Pull and push throughput of the shopware6 connector against the emulator with latency.

Pull: seeds VARIANTS variants (PER_PARENT per parent, so the catalogue also holds the
containers) in the emulator, served from a process of its own (as a shop runs on its own
machine: its CPU does not compete with the client's for one interpreter lock) with LATENCY
seconds added to every request, pulls everything and compares the wall time with the
theoretical minimum for the page size and concurrency:

    rows   = variants + parents                 (containers are listed too)
    pages  = ceil(rows / page_size)
    rounds = 1 (token) + 1 (first page, which tells the total, alongside the currency lookup)
             + ceil((pages - 1) / concurrency)  (the other pages, `concurrency` in flight)
    min    = rounds × one round trip            (measured in the same run: a 1-row search)
    fewest requests = 1 token + 1 currency + pages

Push: CHANGES price changes (read-modify-write of the price array) in batches of
``sync_batch`` as the push pipeline sends them (re-read the targets, then write); prints the
``_action/sync`` requests against ceil(CHANGES / sync_batch) and the reads beside them.
Single run; the emulator's answers are cached until a write, so the push numbers include
its real work.

    .venv/bin/python bench/shopware6_pull.py
    .venv/bin/python bench/shopware6_pull.py --variants 20000 --concurrency 8

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
from omnisync_connectors.shopware6.connector import Shopware6Connector  # noqa: E402
from omnisync_connectors.shopware6.records import PRODUCT_FIELDS  # noqa: E402
from tests.emulators.server import serve  # noqa: E402
from tests.emulators.shopware6 import SYSTEM_LANGUAGE, Shopware6Emulator, seed  # noqa: E402


def shop(pipe: Connection, parents: int, per_parent: int, latency: float) -> None:
    """The emulated shop, in its own process: answers `requests` (the counts so far, then
    zeroed) and `stop` on the pipe."""
    emulator = Shopware6Emulator(oauth_limit=None)
    seed(emulator, parents=parents, variants=per_parent)
    warm_up(emulator)
    with serve(emulator.app, latency=latency) as server:
        pipe.send((server.url, emulator.client_id, emulator.client_secret, len(emulator.products)))
        while (command := pipe.recv()) != "stop":
            assert command == "requests"
            pipe.send(dict(server.requests))
            server.requests.clear()


def warm_up(emulator: Shopware6Emulator) -> None:
    """Render every product once as a pull asks for it: the emulator caches what it rendered,
    so the pull measures the client and the network, not the emulator's Python."""
    criteria = {"includes": {"product": list(PRODUCT_FIELDS)}}
    emulator._search_products(criteria, True, SYSTEM_LANGUAGE)


def round_trip(url: str, client_id: str, secret: str, tries: int = 7) -> float:
    """Median wall time of a 1-row search: what one round trip costs here."""
    with httpx.Client(base_url=url) as http:
        body = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        token = http.post("/api/oauth/token", json=body).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        times = []
        for _ in range(tries):
            started = time.perf_counter()
            http.post("/api/search/product", json={"limit": 1}, headers=headers).raise_for_status()
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", type=int, default=10_000)
    parser.add_argument("--per-parent", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--changes", type=int, default=2_000)
    parser.add_argument("--sync-batch", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5, help="pulls; the best and median count")
    args = parser.parse_args()

    parents = math.ceil(args.variants / args.per_parent)
    pipe, child_end = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=shop, args=(child_end, parents, args.per_parent, args.latency), daemon=True
    )
    process.start()
    url, client_id, secret, rows = pipe.recv()

    def requests() -> dict[str, Any]:
        pipe.send("requests")
        counts: dict[str, Any] = pipe.recv()
        return counts

    try:
        options = Shopware6Connector.Options.model_validate(
            {
                "url": url,
                "client_id": client_id,
                "client_secret": secret,
                "currency": "EUR",
                "page_size": args.page_size,
                "concurrency": args.concurrency,
                "sync_batch": args.sync_batch,
            }
        )
        rtt = round_trip(url, client_id, secret)
        requests()

        walls, setups = [], []
        for _ in range(args.repeat):  # a fresh connector each time: token and currency included
            connector = Shopware6Connector(options, ConnectorContext("bench"))
            started = time.perf_counter()
            connector.api  # builds the httpx client (SSL context), before any request  # noqa: B018
            setups.append(time.perf_counter() - started)
            started = time.perf_counter()
            pulled = list(connector.read())
            walls.append(time.perf_counter() - started)
        sent = sum(requests().values()) // args.repeat
        wall, typical = min(walls), statistics.median(walls)

        pages = math.ceil(rows / args.page_size)
        rounds = 2 + math.ceil((pages - 1) / args.concurrency)
        fewest = 2 + pages
        print(f"pull: {len(pulled):,} variants ({rows:,} products incl. {parents:,} parents)")
        print(
            f"  page_size {args.page_size}, concurrency {args.concurrency}, "
            f"latency {args.latency * 1000:.0f} ms, one round trip measured {rtt * 1000:.1f} ms"
        )
        print(
            f"  wall time      {wall:.3f} s best of {args.repeat}, median {typical:.3f} s "
            f"(from the first request; building the httpx client took another "
            f"{statistics.median(setups) * 1000:.0f} ms)"
        )
        print(
            f"  requests       {sent} (fewest possible: 1 token + 1 currency + {pages} pages = {fewest})"
        )
        print(
            f"  minimum        {rounds * rtt:.3f} s = (2 + ceil(({pages} - 1) / {args.concurrency})) "
            f"= {rounds} round trips × {rtt * 1000:.1f} ms"
        )
        print(
            f"  ratio          {wall / (rounds * rtt):.2f}× the minimum, median "
            f"{typical / (rounds * rtt):.2f}× (target ≤ 1.3×)"
        )

        # ---- push: price changes, batch by batch as the push pipeline sends them
        targets = pulled[: args.changes]
        changes = []
        for record in targets:
            assert record.price is not None
            before = {"amount": str(record.price.amount), "currency": "EUR"}
            after = {"amount": str(record.price.amount + Decimal("1.00")), "currency": "EUR"}
            changes.append(
                Change("bench", record.sku, Op.UPDATE, "price", None, before, after, ids=record.ids)
            )
        requests()
        syncs_before = connector.sync_requests
        started = time.perf_counter()
        failed = 0
        for start in range(0, len(changes), args.sync_batch):
            batch = changes[start : start + args.sync_batch]
            connector.current(batch)
            failed += sum(not r.ok for r in connector.write(batch))
        wall = time.perf_counter() - started
        syncs = connector.sync_requests - syncs_before
        expected = math.ceil(len(changes) / args.sync_batch)
        counts = requests()
        print(
            f"push: {len(changes):,} price changes, sync_batch {args.sync_batch}, {failed} failed"
        )
        print(f"  wall time      {wall:.3f} s")
        print(f"  sync requests  {syncs} (ceil({len(changes)} / {args.sync_batch}) = {expected})")
        print(
            f"  reads          {counts.get('POST /api/search/product', 0)} product searches "
            f"(1 per batch: the pipeline's re-read, which the price array's read-modify-write reuses), "
            f"{counts.get('POST /api/search/tax', 0)} tax lookup"
        )
    finally:
        pipe.send("stop")
        process.join(timeout=30)


if __name__ == "__main__":
    main()
