"""`omnisync watch` for Shopify and Shopware 6: seconds from a wrong stock set in the shop to
omnisync's correction confirmed there, with targeted reads against the same watcher without
them (the connector then reads the channel as a whole read does: an incremental pull per
batch of events, and ``find_skus`` from that read), measured in the same run.

Per platform and mode: VARIANTS variants in the emulator (LATENCY seconds added to every
request), canonical a CSV of the same values; the watcher runs in this process with its
intake, the platform's webhooks pointed at it. EVENTS times, one after the other, an admin
sets a random SKU's stock 30 too high — the platform delivers its webhook, which names no SKU
(Shopify ``inventory_levels/update`` by inventory item, Shopware ``product.written`` by
primary key) — and the time until the shop shows canonical's value again is taken (the
webhook's delivery, the coalescing window, the lookup, the targeted check, the push). Then
the queue is let run dry (the platform also tells of omnisync's own write) before the next.

Prints p50 / p90 / max seconds and the requests per event (the webhook about the correction
included) for each mode, and the ratio of the untargeted p50 to the targeted one.

    .venv/bin/python bench/watch_platforms.py
    .venv/bin/python bench/watch_platforms.py --variants 10000 --events 40 --platforms shopify

The emulators share this process (and its interpreter lock) with the watcher: on a loaded
machine the absolute seconds stretch, the ratio less so.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the emulators live in tests/

from omnisync.config import load_config  # noqa: E402
from omnisync.sdk.connector import Connector  # noqa: E402
from omnisync.store import Store  # noqa: E402
from omnisync.watch.intake import intake_app  # noqa: E402
from omnisync.watch.watcher import Watcher  # noqa: E402
from omnisync_connectors.shopify.connector import ShopifyConnector  # noqa: E402
from omnisync_connectors.shopware6.connector import Shopware6Connector  # noqa: E402
from tests.emulators.server import Server, serve  # noqa: E402
from tests.emulators.shopify import ShopifyEmulator  # noqa: E402
from tests.emulators.shopware6 import Shopware6Emulator, price_entry  # noqa: E402
from tests.emulators.webhooks import Outbox  # noqa: E402

SECRET = "bench-webhook-secret"
STOCK = 20
#: When the catalogue was last changed: long before the bench, so that an incremental pull
#: (the untargeted baseline) fetches only what the bench changes.
SEEDED = datetime(2025, 1, 1, tzinfo=UTC)

CONFIG = """\
settings: {{state: state.db, timezone: UTC}}
canonical:
  connector: csv
  prices: gross
  options: {{path: erp.csv, currency: EUR, mapping: {{sku: sku, price: price, stock: stock}}}}
channels:
  shop:
    connector: {connector}
    options: {options}
    expect: {{check: [price, stock]}}
    push:
      fields: [price, stock]
      guard: {{max_records: 500, max_records_pct: 100, max_zero_stock_pct: 100}}
watch:
  coalesce_seconds: {coalesce}
  interval_seconds: 86400
  reconcile_seconds: 86400
  webhooks:
    shop: {{type: {connector}, secret: {secret}}}
"""


class Platform:
    """One emulated shop as the bench drives it."""

    connector: str
    connector_class: type[Connector[Any]]
    app: Any
    outbox: Outbox

    def options(self, url: str) -> str:
        raise NotImplementedError

    def subscribe(self, url: str) -> None:
        raise NotImplementedError

    def stock(self, sku: str) -> int:
        raise NotImplementedError

    def set_stock(self, sku: str, quantity: int) -> None:
        raise NotImplementedError


class Shopify(Platform):
    connector = "shopify"
    connector_class = ShopifyConnector

    def __init__(self, skus: list[str]) -> None:
        self.emulator = ShopifyEmulator(
            "shpat_bench", maximum=20_000, restore_rate=1_000, client_secret=SECRET
        )
        self.emulator.add_location("Lager")
        for n, sku in enumerate(skus):
            spec = {"sku": sku, "price": price(n), "stock": {"Lager": STOCK}}
            # A minute apart, as a catalogue's edits are: an incremental pull's overlap
            # (a minute) reaches back over one product, not all.
            moment = SEEDED + timedelta(minutes=n)
            self.emulator.add_product(f"Product {n}", [spec], updated_at=moment)
        self.app, self.outbox = self.emulator, self.emulator.outbox

    def options(self, url: str) -> str:
        return f'{{url: "{url}", token: shpat_bench, locations: {{Lager: default}}, max_wait: 5}}'

    def subscribe(self, url: str) -> None:
        self.emulator.subscribe("inventory_levels/update", url)

    def stock(self, sku: str) -> int:
        return self.emulator.available(sku, "Lager")

    def set_stock(self, sku: str, quantity: int) -> None:
        self.emulator.set_available(sku, "Lager", quantity)


class Shopware(Platform):
    connector = "shopware6"
    connector_class = Shopware6Connector

    def __init__(self, skus: list[str]) -> None:
        self.emulator = Shopware6Emulator(shop_secret=SECRET, oauth_limit=None)
        for n, sku in enumerate(skus):
            entry = price_entry(Decimal(price(n)))
            created = (SEEDED + timedelta(minutes=n)).isoformat(timespec="milliseconds")
            self.emulator.add(
                sku, name=f"Product {n}", price=[entry], stock=STOCK, created_at=created
            )
        self.app, self.outbox = self.emulator.app, self.emulator.outbox

    def options(self, url: str) -> str:
        e = self.emulator
        return (
            f'{{url: "{url}", client_id: {e.client_id}, client_secret: {e.client_secret}, '
            "currency: EUR, max_wait: 1}"
        )

    def subscribe(self, url: str) -> None:
        self.emulator.subscribe("product.written", url)

    def stock(self, sku: str) -> int:
        return int(self.emulator.by_number(sku)["stock"])

    def set_stock(self, sku: str, quantity: int) -> None:
        self.emulator.update(sku, stock=quantity)


def price(n: int) -> str:
    return f"{10 + n % 50}.00"


@contextmanager
def untargeted(cls: type[Connector[Any]]) -> Iterator[None]:
    """``cls`` as a connector without targeted reads: no ``read_skus``/``find_skus`` of its
    own, ``capabilities.targeted`` off."""
    saved = {name: cls.__dict__[name] for name in ("capabilities", "read_skus", "find_skus")}
    original = saved["capabilities"]

    class Off:
        def __get__(self, instance: Any, owner: Any = None) -> Any:
            return dataclasses.replace(original.__get__(instance, owner), targeted=False)

    cls.capabilities = Off()  # type: ignore[assignment]
    del cls.read_skus, cls.find_skus  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(cls, name, value)


def wait(predicate: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("bench: timed out waiting for the watcher")
        time.sleep(0.002)


def settled(store: Store) -> bool:
    counts = store.event_counts()
    return counts.get("queued", 0) + counts.get("claimed", 0) == 0


def run(
    make: Callable[[list[str]], Platform], args: argparse.Namespace, targeted: bool
) -> tuple[list[float], float]:
    """(seconds per event, requests per event) for one platform and mode."""
    skus = [f"B{n:06d}" for n in range(args.variants)]
    platform = make(skus)
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        lines = ["sku,price,stock"] + [f"{s},{price(n)},{STOCK}" for n, s in enumerate(skus)]
        (root / "erp.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        with serve(platform.app, latency=args.latency) as server:
            text = CONFIG.format(
                connector=platform.connector,
                options=platform.options(server.url),
                coalesce=args.coalesce,
                secret=SECRET,
            )
            (root / "omnisync.yaml").write_text(text, encoding="utf-8")
            switch = untargeted(platform.connector_class) if not targeted else _nothing()
            with switch, watching(root, platform) as store:
                return events(platform, server, store, rng.sample(skus, args.events))


@contextmanager
def _nothing() -> Iterator[None]:
    yield


@contextmanager
def watching(root: Path, platform: Platform) -> Iterator[Store]:
    config = load_config(root / "omnisync.yaml")
    store = Store.open(str(root / "state.db"), base_dir=root)
    watcher = Watcher(config, store)
    app = intake_app(config.model.watch, store, watcher.metrics, wake=watcher.wake.set)
    with serve(app) as intake:
        platform.subscribe(f"{intake.url}/webhooks/shop")
        thread = threading.Thread(target=watcher.run, daemon=True)
        thread.start()
        try:
            wait(lambda: watcher.sizes is not None, timeout=300)
            yield store
        finally:
            watcher.stopping.set()
            watcher.wake.set()
            thread.join(timeout=60)
            store.close()


def events(
    platform: Platform, server: Server, store: Store, chosen: list[str]
) -> tuple[list[float], float]:
    seconds: list[float] = []
    before = server.total()
    for sku in chosen:
        started = time.perf_counter()
        platform.set_stock(sku, STOCK + 30)
        wait(lambda sku=sku: platform.stock(sku) == STOCK)  # type: ignore[misc]
        seconds.append(time.perf_counter() - started)
        for _ in range(2):  # the webhook about the correction, and its re-check
            platform.outbox.flush()
            wait(lambda: settled(store))
    return seconds, (server.total() - before) / len(chosen)


def summary(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return f"p50 {statistics.median(ordered):.3f} s, p90 {p90:.3f} s, max {ordered[-1]:.3f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", type=int, default=2_000)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--coalesce", type=float, default=0.2)
    parser.add_argument("--platforms", nargs="+", default=["shopify", "shopware6"])
    args = parser.parse_args()
    makers: dict[str, Callable[[list[str]], Platform]] = {
        "shopify": Shopify,
        "shopware6": Shopware,
    }
    print(
        f"{args.variants:,} variants, {args.events} events one after the other, "
        f"latency {args.latency * 1000:.0f} ms per request, coalesce_seconds {args.coalesce}"
    )
    for name in args.platforms:
        fast, fast_requests = run(makers[name], args, targeted=True)
        slow, slow_requests = run(makers[name], args, targeted=False)
        print(f"{name}:")
        print(f"  targeted     {summary(fast)}; {fast_requests:.1f} requests per event")
        print(f"  untargeted   {summary(slow)}; {slow_requests:.1f} requests per event")
        ratio = statistics.median(slow) / statistics.median(fast)
        print(f"  ratio        untargeted p50 / targeted p50 = {ratio:.2f}×")


if __name__ == "__main__":
    main()
