"""`omnisync watch` end to end for Shopify and Shopware 6: their emulators deliver signed
webhooks as the platforms document them, canonical changes arrive as signed generic events,
and the watcher reads just the touched SKUs (``read_skus``), resolves ids to SKUs where a
webhook names no SKU (``find_skus``: Shopify's inventory items, Shopware's primary keys) and
pushes through the guarded, journalled path.

For each platform: a sale in the shop is not undone (the shop's lower stock is held, not
pushed back up) and canonical's change reaches the shop; a wrong stock an admin sets is
corrected from a webhook that carries only the platform's ids; a replayed delivery is
handled once. Both platforms also tell omnisync of its own writes: those webhooks must
change nothing (no write loop).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from omnisync.config import load_config
from omnisync.store import EVENT_DONE, Store
from omnisync.watch.intake import intake_app
from omnisync.watch.sources import sign
from omnisync.watch.watcher import Watcher
from tests.emulators.server import Server, serve
from tests.emulators.shopify import ShopifyEmulator
from tests.emulators.shopware6 import Shopware6Emulator, price_entry
from tests.emulators.webhooks import Delivery, Outbox
from tests.test_watch import ERP_SECRET, SKUS, eventually, settled, write_erp

SHOP_SECRET = "shop-webhook-secret-9f2c"

CONFIG = """\
settings: {{state: state.db, timezone: UTC}}
canonical:
  connector: csv
  prices: gross
  options:
    path: erp.csv
    currency: EUR
    mapping: {{sku: sku, title: title, price: price, stock: stock}}
channels:
  shop:
    connector: {connector}
    options: {options}
    expect: {{check: [price, stock]}}
    push:
      fields: [price, stock]
      guard: {{max_records: 500, max_records_pct: 100, max_zero_stock_pct: 100}}
watch:
  listen: 127.0.0.1:8787
  coalesce_seconds: 0.2
  interval_seconds: 3600
  webhooks:
    erp: {{type: generic, secret: {erp_secret}, source: canonical}}
    shop: {{type: {connector}, secret: {shop_secret}}}
"""


def initial_stock() -> dict[str, int]:
    stock = dict.fromkeys(SKUS, 5)
    stock["S00001"] = 2
    return stock


class ShopifyShop:
    """The Shopify emulator as these tests drive it. The shop has an unmapped location
    (Berlin) listed before the one omnisync reads and writes (Lager)."""

    connector = "shopify"
    #: What a sale delivers.
    sale_topics = frozenset({"orders/create", "inventory_levels/update"})

    def __init__(self, stock: dict[str, int]) -> None:
        self.emulator = ShopifyEmulator(
            "shpat_watch", maximum=20_000, restore_rate=20_000, client_secret=SHOP_SECRET
        )
        for n, sku in enumerate(SKUS):
            self.emulator.add_product(
                f"Product {n}",
                [
                    {
                        "sku": sku,
                        "price": f"{10 + n}.00",
                        "stock": {"Berlin": 7, "Lager": stock[sku]},
                    }
                ],
            )
        self.app: Any = self.emulator

    @property
    def outbox(self) -> Outbox:
        return self.emulator.outbox

    def options(self, url: str) -> str:
        return (
            f'{{url: "{url}", token: shpat_watch, api_version: "2026-01", '
            "locations: {Lager: default}, max_wait: 5}"
        )

    def subscribe(self, url: str) -> None:
        for topic in ("orders/create", "inventory_levels/update", "products/update"):
            self.emulator.subscribe(topic, url)

    def stock(self, sku: str) -> int:
        return self.emulator.available(sku, "Lager")

    def sell(self, sku: str) -> None:
        self.emulator.sell(sku, location="Lager")

    def set_stock(self, sku: str, quantity: int) -> None:
        self.emulator.set_available(sku, "Lager", quantity)

    def writes(self) -> int:
        return sum(1 for call in self.emulator.calls if call.kind == "mutation")

    def untouched(self) -> bool:
        """The unmapped location was never written."""
        return all(self.emulator.available(sku, "Berlin") == 7 for sku in SKUS)


class ShopwareShop:
    """The Shopware 6 emulator as these tests drive it."""

    connector = "shopware6"
    #: What a sale delivers (the stock storage's update is no entity write).
    sale_topics = frozenset({"checkout.order.placed"})

    def __init__(self, stock: dict[str, int]) -> None:
        self.emulator = Shopware6Emulator(shop_secret=SHOP_SECRET)
        for n, sku in enumerate(SKUS):
            price = [price_entry(Decimal(10 + n))]
            self.emulator.add(sku, name=f"Product {n}", price=price, stock=stock[sku])
        self.app: Any = self.emulator.app

    @property
    def outbox(self) -> Outbox:
        return self.emulator.outbox

    def options(self, url: str) -> str:
        emulator = self.emulator
        return (
            f'{{url: "{url}", client_id: {emulator.client_id}, '
            f"client_secret: {emulator.client_secret}, currency: EUR, max_wait: 1}}"
        )

    def subscribe(self, url: str) -> None:
        for event in ("product.written", "checkout.order.placed"):
            self.emulator.subscribe(event, url)

    def stock(self, sku: str) -> int:
        return int(self.emulator.by_number(sku)["stock"])

    def sell(self, sku: str) -> None:
        self.emulator.sell(sku)

    def set_stock(self, sku: str, quantity: int) -> None:
        self.emulator.update(sku, stock=quantity)

    def writes(self) -> int:
        return int(self.emulator.stats["sync_applied"])

    def untouched(self) -> bool:
        return True


Shop = ShopifyShop | ShopwareShop


@dataclass
class Running:
    root: Path
    url: str
    shop: Shop
    watcher: Watcher
    store: Store
    stock: dict[str, int]

    def canonical_change(self, skus: list[str], event_id: str) -> httpx.Response:
        """The ERP's hook says canonical changed (after writing its export)."""
        write_erp(self.root / "erp.csv", self.stock)
        body = json.dumps({"id": event_id, "kind": "stock", "skus": skus}).encode()
        return httpx.post(
            f"{self.url}/webhooks/erp", content=body, headers=sign("generic", ERP_SECRET, body)
        )

    def quiet(self) -> None:
        """Wait until every delivery is answered and every event is settled (deliveries about
        the watcher's own writes included)."""
        for _ in range(3):
            self.shop.outbox.flush()
            eventually(lambda: settled(self.store), what="the queue worked off")

    def applied(self) -> list[tuple[str, Any]]:
        """(SKU, value written) of every applied journal entry."""
        return [
            (entry.change.sku, entry.change.after)
            for summary in self.store.runs(limit=50)
            if summary.kind == "push"
            for entry in self.store.push_run(summary.id).entries
            if entry.status == "applied"
        ]


@pytest.fixture(params=["shopify", "shopware6"])
def running(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Running]:
    stock = initial_stock()
    shop: Shop = ShopifyShop(stock) if request.param == "shopify" else ShopwareShop(stock)
    write_erp(tmp_path / "erp.csv", stock)
    with serve(shop.app) as server, watching(tmp_path, shop, server) as (url, watcher, store):
        yield Running(tmp_path, url, shop, watcher, store, stock)
    assert shop.untouched()


@contextmanager
def watching(root: Path, shop: Shop, server: Server) -> Iterator[tuple[str, Watcher, Store]]:
    """The watcher in this process: its loop on a thread, its intake on a free port, the
    shop's webhooks pointed at it."""
    (root / "omnisync.yaml").write_text(
        CONFIG.format(
            connector=shop.connector,
            options=shop.options(server.url),
            erp_secret=ERP_SECRET,
            shop_secret=SHOP_SECRET,
        ),
        encoding="utf-8",
    )
    config = load_config(root / "omnisync.yaml")
    store = Store.open(str(root / "state.db"), base_dir=root)
    watcher = Watcher(config, store)
    app = intake_app(config.model.watch, store, watcher.metrics, wake=watcher.wake.set)
    with serve(app) as intake:
        shop.subscribe(f"{intake.url}/webhooks/shop")
        thread = threading.Thread(target=watcher.run, daemon=True)
        thread.start()
        try:
            eventually(lambda: watcher.sizes is not None, what="the first pass")
            yield intake.url, watcher, store
        finally:
            watcher.stopping.set()
            watcher.wake.set()
            thread.join(timeout=30)
            store.close()
    assert not thread.is_alive()


def answered(deliveries: list[Delivery]) -> list[tuple[str, int | str | None]]:
    return [(d.topic, d.status) for d in deliveries]


def test_a_sale_in_the_shop_is_not_undone_and_canonical_reaches_the_shop(
    running: Running,
) -> None:
    shop = running.shop
    # The second-to-last unit sells in the shop: the shop lowers its own stock and tells the
    # watcher. Canonical (2) does not know yet; pushing it back would re-open the oversell.
    shop.sell("S00001")
    assert {topic for topic, _ in answered(shop.outbox.deliveries)} == shop.sale_topics
    assert all(status == 200 for _, status in answered(shop.outbox.deliveries))
    running.quiet()
    assert shop.stock("S00001") == 1
    assert shop.writes() == 0  # nothing was written back to the shop
    # ... although the watcher did re-check: the shop's events were handled (the increase
    # to canonical's 2 held).
    assert any(e.source == "shop" for e, _ in running.store.events())
    assert all(status == EVENT_DONE for _, status in running.store.events())

    # The POS sells the other unit; the ERP's hook says so (a generic signed event).
    running.stock["S00001"] = 0
    answer = running.canonical_change(["S00001"], "pos-1")
    assert answer.json() == {"queued": 1, "replays": 0}
    sent = len(shop.outbox.deliveries)
    eventually(lambda: shop.stock("S00001") == 0, what="canonical's stock in the shop")
    # The shop tells of omnisync's own write too; that webhook changes nothing.
    running.quiet()
    assert len(shop.outbox.deliveries) > sent
    assert all(status == 200 for _, status in answered(shop.outbox.deliveries))
    assert shop.writes() == 1
    assert running.applied() == [("S00001", 0)]


def test_a_wrong_stock_set_by_an_admin_is_corrected_from_the_webhook(running: Running) -> None:
    shop = running.shop
    shop.set_stock("S00004", 40)  # canonical has 5: a decrease, pushed at once
    eventually(lambda: shop.stock("S00004") == 5, what="the admin's mistake corrected")
    running.quiet()
    # The webhook named only the platform's ids (an inventory item, a primary key): the
    # watcher looked the SKU up and read just it again.
    first = min(
        (e for e, _ in running.store.events() if e.source == "shop"), key=lambda e: e.id or 0
    )
    assert first.skus == ()
    assert first.refs
    assert running.applied() == [("S00004", 5)]
    assert shop.writes() == 1


def test_a_replayed_delivery_is_handled_once(running: Running) -> None:
    shop = running.shop
    shop.set_stock("S00006", 40)
    eventually(lambda: shop.stock("S00006") == 5)
    running.quiet()
    [admin] = shop.outbox.deliveries[:1]
    events = len(running.store.events())
    # The platform sends the same delivery again (a retry after a lost answer): the same
    # event id, for Shopware a new timestamp and signature.
    again = shop.outbox.redeliver(admin)
    assert again.status == 200
    assert json.loads(again.reply) == {"queued": 0, "replays": 1}
    running.quiet()
    assert len(running.store.events()) == events
    assert shop.writes() == 1
    assert running.applied() == [("S00006", 5)]
    replays = running.watcher.metrics.registry.get_sample_value(
        "omnisync_events_deduped_total", {"source": "shop"}
    )
    assert replays == 1
