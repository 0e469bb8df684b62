"""The magento2 connector against the Magento 2 REST emulator, served on 127.0.0.1: paged
pulls of simple and configurable products with MSI and legacy stock, sale windows, store
views, tokens, asynchronous bulk writes and their failures, incremental and targeted reads,
the contract, and the check → plan → apply → check → undo loop through the CLI."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from typer.testing import CliRunner

from omnisync import secrets
from omnisync.cli import app
from omnisync.errors import AuthError, ConnectorError
from omnisync.markup import read_html
from omnisync.models import Change, Op
from omnisync.sdk.connector import ConnectorContext
from omnisync.sdk.testing import ConnectorContract
from omnisync.store import Store
from omnisync_connectors.magento2 import records
from omnisync_connectors.magento2.connector import Magento2Connector
from omnisync_connectors.magento2.records import Shop
from tests.emulators.magento2 import SALE_FROM, SALE_TO, MagentoEmulator, seed
from tests.emulators.server import Server, serve

ZONE = ZoneInfo("Europe/Berlin")


@pytest.fixture
def shop() -> MagentoEmulator:
    return MagentoEmulator()


@pytest.fixture
def server(shop: MagentoEmulator) -> Iterator[Server]:
    with serve(shop.app) as running:
        yield running


def make(
    server: Server,
    shop: MagentoEmulator,
    *,
    store: Any = None,
    full: bool = False,
    admin: bool = False,
    **options: Any,
) -> Magento2Connector:
    login: dict[str, Any] = (
        {"username": shop.admin[0], "password": shop.admin[1]}
        if admin
        else {"token": shop.integration_token}
    )
    values = {
        "url": server.url,
        **login,
        "gtin_attribute": "ean",
        "bulk_poll": 0.01,
        "max_wait": 0,
        **options,
    }
    parsed = Magento2Connector.Options.model_validate(values)
    return Magento2Connector(parsed, ConnectorContext("shop", store=store, full=full))


def local(day: str, end: bool = False) -> datetime:
    moment = datetime.combine(
        datetime.fromisoformat(day).date(), time(23, 59, 59) if end else time(0)
    )
    return moment.replace(tzinfo=ZONE)


def expected(shop: MagentoEmulator, store: str = "default") -> dict[str, dict[str, Any]]:
    """What the store view shows per sellable SKU, worked out from the emulator's raw state."""
    rows = {}
    parents = {c: p["id"] for p in shop.products.values() for c in p["links"]}
    for product in shop.sellable():
        sku = product["sku"]
        special = shop.value(sku, "special_price", store)
        start = shop.value(sku, "special_from_date", store)
        end = shop.value(sku, "special_to_date", store)
        rows[sku] = {
            "sku": sku,
            "title": shop.value(sku, "name", store),
            "description": str(shop.value(sku, "description", store) or "")
            .removeprefix("<p>")
            .removesuffix("</p>"),
            "gtin": shop.value(sku, "ean", store),
            "price": str(product["price"]),
            "sale_price": str(special) if special is not None else "",
            "sale_start": local(start[:10]).isoformat() if special is not None and start else "",
            "sale_end": local(end[:10], end=True).isoformat()
            if special is not None and end
            else "",
            "stock": shop.stock(sku),
            "ids": {"product_id": str(product["id"])}
            | ({"parent_id": str(parents[product["id"]])} if product["id"] in parents else {}),
        }
    return rows


def shown(record: Any) -> dict[str, Any]:
    return {
        "sku": record.sku,
        "title": record.title,
        "description": record.description or "",
        "gtin": record.gtin.lstrip("0") if record.gtin else None,
        "price": str(record.price.amount) if record.price else None,
        "sale_price": str(record.sale_price.amount) if record.sale_price else "",
        "sale_start": record.sale_start.astimezone(ZONE).isoformat() if record.sale_start else "",
        "sale_end": record.sale_end.astimezone(ZONE).isoformat() if record.sale_end else "",
        "stock": record.stock,
        "ids": record.ids,
    }


def same_as_shop(pulled: dict[str, Any], shop: MagentoEmulator, store: str = "default") -> None:
    rows = expected(shop, store)
    for row in rows.values():
        row["gtin"] = row["gtin"].lstrip("0") if row["gtin"] else None
        row["price"] = str(Decimal(row["price"]).normalize())
        row["sale_price"] = str(Decimal(row["sale_price"]).normalize()) if row["sale_price"] else ""
    got = {sku: shown(r) for sku, r in pulled.items()}
    for row in got.values():
        row["price"] = str(Decimal(row["price"]).normalize()) if row["price"] else None
        row["sale_price"] = str(Decimal(row["sale_price"]).normalize()) if row["sale_price"] else ""
    assert got == rows


# ------------------------------------------------------------------ reading


def test_a_pull_reads_simple_products_and_configurable_children_over_parallel_pages(
    shop: MagentoEmulator, server: Server
) -> None:
    skus = seed(shop, simple=300, configurable=40, children=3)
    connector = make(server, shop, page_size=50, concurrency=4)
    pulled = {r.sku: r for r in connector.read()}

    assert len(pulled) == len(skus) == 420  # the 40 configurables are containers, not records
    same_as_shop(pulled, shop)
    child = pulled["MG-C0007-2"]
    assert child.ids == {
        "product_id": str(shop.by_sku("MG-C0007-2")["id"]),
        "parent_id": str(shop.by_sku("MG-C0007")["id"]),
    }
    assert child.stock == shop.stock("MG-C0007-2")
    assert any(r.sale_price for r in pulled.values())
    # Every page exactly once, by total_count: a page past the end would answer the last
    # page again (Magento clamps currentPage), so an empty page never comes.
    products, items = len(shop.products), len(shop.source_items)
    assert server.requests["GET /rest/default/V1/products"] == math.ceil(products / 50)
    assert server.requests["GET /rest/default/V1/inventory/source-items"] == math.ceil(items / 50)
    for lookup in ("directory/currency", "store/storeConfigs", "inventory/sources"):
        assert server.requests[f"GET /rest/default/V1/{lookup}"] == 1, lookup
    assert shop.stats["product_rows"] == products


def test_a_listing_without_links_asks_each_configurable_for_its_children() -> None:
    shop = MagentoEmulator(links_in_listing=False)
    seed(shop, simple=5, configurable=4, children=2)
    with serve(shop.app) as other:
        pulled = {r.sku: r for r in make(other, shop).read()}
        assert other.total("/rest/default/V1/configurable-products/") == 4
    assert pulled["MG-C0003-1"].ids["parent_id"] == str(shop.by_sku("MG-C0003")["id"])
    same_as_shop(pulled, shop)


def test_names_and_descriptions_come_from_the_store_view(
    shop: MagentoEmulator, server: Server
) -> None:
    seed(shop, simple=3)
    shop.update("MG-00001", store="de", name="Produkt eins", description="<p>Auf Deutsch</p>")
    german = {r.sku: r for r in make(server, shop, store_code="de").read()}
    default = {r.sku: r for r in make(server, shop).read()}
    assert (german["MG-00001"].title, german["MG-00001"].description) == (
        "Produkt eins",
        "Auf Deutsch",
    )
    assert german["MG-00002"].title == default["MG-00002"].title == "Product 2"  # the global value
    assert default["MG-00001"].title == "Product 1"
    assert server.requests["GET /rest/de/V1/products"] == 1


def test_a_sale_window_is_read_as_whole_days_in_the_stores_time_zone(
    shop: MagentoEmulator, server: Server
) -> None:
    shop.add("SALE", name="On sale", price="20", special=("15.5", SALE_FROM, SALE_TO))
    shop.add("OPEN", name="No end", price="20", special=("15", "2026-12-01", None))
    shop.add("PLAIN", name="No sale", price="20")
    pulled = {r.sku: r for r in make(server, shop).read()}
    sale = pulled["SALE"]
    assert sale.sale_price is not None
    assert sale.sale_price.amount == Decimal("15.50")
    assert sale.sale_start == datetime(2026, 10, 31, 23, 0, tzinfo=UTC)  # midnight in Berlin
    assert sale.sale_end == datetime(2026, 12, 31, 22, 59, 59, tzinfo=UTC)  # end of that day
    assert pulled["OPEN"].sale_end is None
    assert pulled["PLAIN"].sale_price is None


def test_sale_windows_are_written_as_dates_and_times_within_a_day_refused() -> None:
    shop = Shop("EUR", ZONE)

    def sale(start: str | None, end: str | None) -> Change:
        value = {"amount": "9.99", "currency": "EUR", "start": start, "end": end}
        return Change("shop", "A", Op.UPDATE, "sale_price", None, None, value)

    body, refused = records.product_payload(
        "A", [sale("2026-11-30T23:00:00+00:00", "2026-12-24T22:59:59+00:00")], shop, msi=True
    )
    assert not refused
    assert body == {
        "product": {
            "sku": "A",
            "custom_attributes": [
                {"attribute_code": "special_price", "value": "9.99"},
                {"attribute_code": "special_from_date", "value": "2026-12-01 00:00:00"},
                {"attribute_code": "special_to_date", "value": "2026-12-24 00:00:00"},
            ],
        }
    }
    _, refused = records.product_payload(
        "A", [sale("2026-12-01T17:00:00+00:00", None)], shop, msi=True
    )
    assert "dates, not times" in refused[0]
    assert "starts 2026-12-01 18:00" in refused[0]  # said in the store's zone
    ended = Change("shop", "A", Op.UPDATE, "sale_price", None, None, None)
    body, _ = records.product_payload("A", [ended], shop, msi=True)
    assert body is not None
    assert {a["value"] for a in body["product"]["custom_attributes"]} == {""}  # "" clears


def test_msi_stock_is_per_source_and_locations_map_and_filter_sources() -> None:
    shop = MagentoEmulator(sources=("default", "berlin", "hamburg"))
    seed(shop, simple=4)
    with serve(shop.app) as other:
        every = {r.sku: r.stock for r in make(other, shop).read()}
        assert every["MG-00001"] == shop.stock("MG-00001")
        assert set(every["MG-00001"] or {}) == {"default", "berlin", "hamburg"}
        mapped = {
            r.sku: r.stock for r in make(other, shop, locations={"Berlin": "store-berlin"}).read()
        }
        assert mapped["MG-00001"] == {"store-berlin": shop.stock("MG-00001")["berlin"]}
        with pytest.raises(ConnectorError, match="Munich"):
            list(make(other, shop, locations={"Munich": "m"}).read())


def test_without_msi_the_legacy_stock_item_is_read_and_written() -> None:
    shop = MagentoEmulator(msi=False)
    seed(shop, simple=5)
    with serve(shop.app) as other:
        connector = make(other, shop, msi=False)
        pulled = {r.sku: r for r in connector.read()}
        assert pulled["MG-00003"].stock == {"default": 3}
        assert other.total("/rest/default/V1/inventory") == 0
        change = Change("shop", "MG-00003", Op.UPDATE, "stock", "default", 3, 11)
        berlin = Change("shop", "MG-00004", Op.UPDATE, "stock", "berlin", 4, 1)
        results = connector.write([change, berlin])
        assert results[0].ok, results[0].error
        assert "one stock per product" in (results[1].error or "")
        assert shop.by_sku("MG-00003")["stock_item"]["qty"] == 11
        assert other.requests["PUT /rest/all/async/bulk/V1/products/bySku"] == 1


class TestMagento2Contract(ConnectorContract):
    @pytest.fixture
    def connector(self, shop: MagentoEmulator, server: Server) -> Magento2Connector:
        seed(shop, simple=4, configurable=2, children=2)
        return make(server, shop)


class TestMagento2LegacyStockContract(ConnectorContract):
    @pytest.fixture
    def connector(self) -> Iterator[Magento2Connector]:
        shop = MagentoEmulator(msi=False)
        seed(shop, simple=4, configurable=1, children=2)
        with serve(shop.app) as server:
            yield make(server, shop, msi=False, admin=True)


# ------------------------------------------------------------------ targeted reads (watch)


def test_reading_some_skus_filters_by_sku_in_one_round(
    shop: MagentoEmulator, server: Server
) -> None:
    seed(shop, simple=30, configurable=3, children=2)
    connector = make(server, shop)
    everything = {r.sku: r for r in connector.read()}
    server.requests.clear()
    # Magento's `in` ignores case; a configurable's SKU names no record.
    found = list(connector.read_skus(["MG-00003", "mg-00004", "MG-C0001", "MG-C0001-2", "NOPE"]))
    assert [r.sku for r in found] == ["MG-00003", "MG-C0001-2"]
    assert found[1].ids == everything["MG-C0001-2"].ids
    assert server.requests["GET /rest/default/V1/products"] == 1  # links kept from read()
    assert server.requests["GET /rest/default/V1/inventory/source-items"] == 1
    fresh = make(server, shop)  # a new connector lists the configurables' links alongside
    assert [r.sku for r in fresh.read_skus(["MG-C0002-1"])] == ["MG-C0002-1"]


def test_ids_of_a_webhook_are_resolved_to_skus(shop: MagentoEmulator, server: Server) -> None:
    seed(shop, simple=3, configurable=2, children=2)
    connector = make(server, shop)
    parent = str(shop.by_sku("MG-C0001")["id"])
    simple = str(shop.by_sku("MG-00002")["id"])
    assert connector.find_skus({"product_id": [simple, parent, "999", "x"]}) == {
        "MG-00002",
        "MG-C0001-1",
        "MG-C0001-2",
    }
    assert connector.find_skus({"parent_id": [parent]}) == {"MG-C0001-1", "MG-C0001-2"}


# ------------------------------------------------------------------ tokens


def test_an_admin_token_is_renewed_before_it_expires_and_after_a_401(
    shop: MagentoEmulator, server: Server
) -> None:
    seed(shop, simple=5)
    connector = make(server, shop, admin=True, token_lifetime=3600)
    now = [1000.0]
    connector.api.clock = lambda: now[0]
    assert len(list(connector.read())) == 5
    now[0] += 3560  # 40 s before the hour is up: inside the renewal margin
    assert len(list(connector.read())) == 5
    assert shop.stats["tokens"] == connector.api.tokens == 2
    assert shop.stats["token_rejected"] == 0
    shop.expire_tokens()  # purged early (the hourly cron): only a 401 tells
    assert connector.current([Change("shop", "MG-00001", Op.UPDATE, "title", None, None, "x")])
    # The products and their source items were asked for at once: both saw the 401, one
    # renewed the token, the other used the new one.
    assert shop.stats["token_rejected"] in (1, 2)
    assert connector.api.tokens == shop.stats["tokens"] == 3


def test_a_wrong_admin_password_is_an_auth_error_without_the_password(
    shop: MagentoEmulator, server: Server
) -> None:
    connector = make(
        server, shop, username=shop.admin[0], password="not-the-password-x9", token=None
    )
    with pytest.raises(AuthError) as caught:
        connector.check()
    text = str(caught.value) + caught.value.hint
    assert "options.password" in text
    assert "not-the-password-x9" not in text
    assert "sign-in was incorrect" in text


def test_errors_are_classified_with_magentos_messages_put_together(
    shop: MagentoEmulator, server: Server
) -> None:
    seed(shop, simple=12)
    templated = b'{"message": "Internal error: %1", "parameters": ["deadlock"]}'
    server.faults.fail_request(2, status=500, body=templated)  # retried under the policy
    assert len(list(make(server, shop, page_size=5).read())) == 12
    with pytest.raises(ConnectorError) as caught:
        make(server, shop, store_code="nl").check()
    assert "HTTP 400" in caught.value.message
    assert "store that was requested wasn't found" in caught.value.message
    assert "shop" in caught.value.where
    shop.msi = False  # an MSI connector against a store without the inventory routes
    with pytest.raises(ConnectorError) as caught:
        make(server, shop).check()
    assert "HTTP 404: Request does not match any route." in caught.value.message
    assert "msi: false" in caught.value.hint


# ------------------------------------------------------------------ writes


def price(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "EUR"}


def test_a_failed_bulk_operation_fails_its_changes_and_the_rest_apply(
    shop: MagentoEmulator, server: Server
) -> None:
    skus = seed(shop, simple=12)
    connector = make(server, shop, batch_size=5)
    assert connector.capabilities.max_batch == 5
    shop.reject("MG-00004", 'The value of attribute "%1" must be unique.'.replace("%1", "url_key"))
    shop.reject("MG-00007", "Deadlock found when trying to get lock", status=2)  # then it works
    changes = [
        Change("shop", sku, Op.UPDATE, "price", None, None, price(f"{n + 50}.25"))
        for n, sku in enumerate(skus)
    ]
    changes.append(Change("shop", "MG-00001", Op.UPDATE, "title", None, None, "Renamed"))
    results = connector.write(changes)

    assert [r.key for r in results] == [c.key for c in changes]
    failed = {r.key: r.error for r in results if not r.ok}
    assert failed == {
        "MG-00004:price": 'Magento failed: The value of attribute "url_key" must be unique.'
    }
    for n, sku in enumerate(skus):
        if sku != "MG-00004":
            assert shop.by_sku(sku)["price"] == Decimal(f"{n + 50}.25")
    assert shop.value("MG-00001", "name") == "Renamed"
    # ceil(12 products / 5) bulks, and one more for the retriable failure.
    assert connector.bulk.bulks == shop.stats["bulks"] == 3 + 1
    assert connector.bulk.polls == shop.stats["status_polls"] == 2 * 4  # open, then done


def test_operations_still_open_at_the_timeout_fail_naming_the_consumer() -> None:
    shop = MagentoEmulator(bulk_polls=None)  # no consumer runs
    seed(shop, simple=2)
    with serve(shop.app) as server:
        connector = make(server, shop, bulk_timeout=0.05)
        [result] = connector.write(
            [Change("shop", "MG-00001", Op.UPDATE, "title", None, None, "x")]
        )
    assert not result.ok
    assert "still open" in (result.error or "")
    assert "async.operations.all" in (result.error or "")


def test_a_rejected_source_item_is_isolated_by_halving_and_the_rest_saved(
    shop: MagentoEmulator, server: Server
) -> None:
    skus = seed(shop, simple=9)
    connector = make(server, shop)
    changes = [
        Change("shop", sku, Op.UPDATE, "stock", "berlin", None, 100 + n)
        for n, sku in enumerate(skus)
    ]
    changes[5] = Change("shop", skus[5], Op.UPDATE, "stock", "berlin", None, 10**9)
    results = connector.write(changes)
    assert [r.ok for r in results] == [n != 5 for n in range(9)]
    assert (
        results[5].error
        == 'Magento rejected the source item: "quantity" must be a number from 0 to 99999999.'
    )
    assert all(shop.stock(sku)["berlin"] == 100 + n for n, sku in enumerate(skus) if n != 5)
    # 1 rejected save of 9, then halves: [4 ok] [5 → 2 ok, 3 → 1 ok, 2 → 1 ok, 1 rejected]
    assert connector.source_saves <= 1 + 2 * math.ceil(math.log2(9))


def test_a_store_view_value_that_shadows_a_global_write_fails_the_change(
    shop: MagentoEmulator, server: Server
) -> None:
    seed(shop, simple=3)
    shop.update("MG-00001", store="default", name="Store view name")
    title = Change("shop", "MG-00001", Op.UPDATE, "title", None, None, "Pushed name")
    other = Change("shop", "MG-00002", Op.UPDATE, "title", None, None, "Pushed too")
    results = make(server, shop).write([title, other])
    assert not results[0].ok
    assert "shadows the global one" in (results[0].error or "")
    assert "write_scope: store_view" in (results[0].error or "")
    assert results[1].ok
    assert shop.value("MG-00001", "name", "all") == "Pushed name"  # written, but not shown
    [again] = make(server, shop, write_scope="store_view").write([title])
    assert again.ok, again.error
    assert shop.value("MG-00001", "name", "default") == "Pushed name"
    assert server.requests["PUT /rest/default/async/bulk/V1/products/bySku"] == 1


def test_prices_cross_the_boundary_exactly() -> None:
    assert records.amount(0.1 + 0.2) == Decimal("0.30000000000000004")
    assert records.amount(19.99) == Decimal("19.99")
    assert records.amount("19.990000") == Decimal("19.99")
    assert str(records.amount("20.000000")) == "20.00"
    assert str(records.amount("0.125000")) == "0.125"
    assert records.ean("04006381333931") == "4006381333931"
    body, refused = records.product_payload(
        "A",
        [
            Change("shop", "A", Op.UPDATE, "price", None, None, price("19.99")),
            Change("shop", "A", Op.UPDATE, "gtin", None, None, "00012345678905"),
        ],
        Shop("EUR", ZONE, "ean"),
        msi=True,
    )
    assert not refused
    assert body == {
        "product": {
            "sku": "A",
            "price": 19.99,
            "custom_attributes": [{"attribute_code": "ean", "value": "012345678905"}],
        }
    }
    _, refused = records.product_payload(
        "A",
        [Change("shop", "A", Op.UPDATE, "price", None, None, price("1.005"))],
        Shop("USD", ZONE),
        msi=True,
    )
    assert "USD" in refused[0]


# ------------------------------------------------------------------ incremental pulls


def test_an_incremental_pull_fetches_changed_products_and_all_stock(
    tmp_path: Path, shop: MagentoEmulator, server: Server
) -> None:
    seed(shop, simple=60, configurable=5, children=3)
    with Store.open("state.db", base_dir=tmp_path) as store:
        first = {r.sku: r for r in make(server, shop, store=store).read()}
        assert len(first) == 75
        rows = shop.stats["product_rows"]
        assert rows == len(shop.products)

        shop.update("MG-00005", price="99.99")
        shop.update("MG-00006", name="Neu")
        shop.set_stock("MG-00007", "berlin", 77)  # a source item: updated_at stays
        child = shop.add("MG-C0000-9", name="New child", price="5", stock={"default": 1})
        shop.link("MG-C0000", [*shop.by_sku("MG-C0000")["links"], child])

        second = {r.sku: r for r in make(server, shop, store=store).read()}
        fetched = shop.stats["product_rows"] - rows
    assert len(second) == 76
    assert second["MG-00005"].price is not None
    assert second["MG-00005"].price.amount == Decimal("99.99")
    assert second["MG-00006"].title == "Neu"
    assert second["MG-00007"].stock == shop.stock("MG-00007")
    assert second["MG-C0000-9"].ids["parent_id"] == str(shop.by_sku("MG-C0000")["id"])
    same_as_shop(second, shop)
    # The changed products (MG-00005, MG-00006, the new child, its configurable and the one at
    # the mark itself: `gteq`) and the 5 configurables' links, not the 80 products.
    assert fetched == 5 + 5


def test_a_full_pull_drops_deleted_products(
    tmp_path: Path, shop: MagentoEmulator, server: Server
) -> None:
    seed(shop, simple=6)
    with Store.open("state.db", base_dir=tmp_path) as store:
        assert len(list(make(server, shop, store=store).read())) == 6
        shop.delete("MG-00002")
        assert len(list(make(server, shop, store=store).read())) == 6  # invisible to updated_at
        pulled = {r.sku for r in make(server, shop, store=store, full=True).read()}
        assert "MG-00002" not in pulled
        assert len(pulled) == 5


# ------------------------------------------------------------------ the loop through the CLI

CONFIG = """\
settings: {{state: state.db, timezone: UTC}}
canonical:
  connector: csv
  prices: gross
  options:
    path: erp.csv
    currency: EUR
    mapping:
      sku: sku
      title: title
      description: description
      gtin: gtin
      price: price
      sale_price: sale_price
      sale_start: sale_start
      sale_end: sale_end
      stock: {{default: stock_default, berlin: stock_berlin}}
channels:
  shop:
    connector: magento2
    options:
      url: {url}
      token: ${{MG_TOKEN}}
      gtin_attribute: ean
      page_size: 20
      batch_size: 25
      bulk_poll: 0.01
      max_wait: 1
    expect:
      check: [title, description, gtin, price, sale_price, stock]
      price: {{sale: scheduled}}
      stock: {{locations: {{default: [default], berlin: [berlin]}}}}
    push:
      fields: [title, description, gtin, price, sale_price, stock]
      guard: {{max_records: 100000, max_records_pct: 100, max_price_change_pct: 1000, max_zero_stock_pct: 100}}
"""
COLUMNS = (
    "sku",
    "title",
    "description",
    "gtin",
    "price",
    "sale_price",
    "sale_start",
    "sale_end",
    "stock_default",
    "stock_berlin",
)


def cli(*args: str, token: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, list(args), catch_exceptions=False, env={"COLUMNS": "200", "MG_TOKEN": token}
    )
    return result.exit_code, result.stdout, result.stderr


def project(tmp_path: Path, server: Server, shop: MagentoEmulator) -> Path:
    config = tmp_path / "omnisync.yaml"
    config.write_text(CONFIG.format(url=server.url))
    with (tmp_path / "erp.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        for row in expected(shop).values():
            stock = row.pop("stock")
            row.pop("ids")
            writer.writerow(
                {**row, "stock_default": stock["default"], "stock_berlin": stock["berlin"]}
            )
    return config


def findings(config: Path, token: str) -> set[tuple[str, str, str | None, str | None]]:
    code, out, err = cli("check", "-c", str(config), "-f", "json", token=token)
    assert code in (0, 1), out + err
    return {
        (f["kind"], f["sku"], f["field"], f["location"])
        for c in json.loads(out)["channels"]
        for f in c["findings"]
    }


def raw(shop: MagentoEmulator, sku: str) -> dict[str, Any]:
    """The store's own state of a product, as it shows: a description as its text (an undo
    writes back the text compared), sale dates only while there is a special price (ending a
    sale clears them; the planted drift only dropped the price)."""
    product = shop.by_sku(sku)
    values = {scope: dict(v) for scope, v in product["values"].items()}
    for scoped in values.values():
        if "description" in scoped:
            scoped["description"] = read_html(scoped["description"])
        if scoped.get("special_price") is None:
            scoped.pop("special_from_date", None)
            scoped.pop("special_to_date", None)
    return {"price": product["price"], "values": values, "stock": shop.stock(sku)}


def plant(shop: MagentoEmulator) -> set[tuple[str, str, str | None, str | None]]:
    """Drift the store away from the ERP in every pushable field; the findings to expect."""
    shop.update("MG-00001", price="77.70")
    shop.update("MG-C0001-2", price="50.00")  # a configurable's child
    shop.update("MG-00002", name="Artikel 2 (alt)")
    shop.update("MG-00003", description="<p>Old words</p>")
    shop.update("MG-00004", ean="4000000000017")
    shop.update("MG-00010", special_price=None)  # the sale ended early in the store
    shop.set_stock("MG-00005", "berlin", 99)
    return {
        ("changed", "MG-00001", "price", None),
        ("changed", "MG-C0001-2", "price", None),
        ("changed", "MG-00002", "title", None),
        ("changed", "MG-00003", "description", None),
        ("changed", "MG-00004", "gtin", None),
        ("changed", "MG-00010", "sale_price", None),
        ("changed", "MG-00005", "stock", "berlin"),
    }


def test_check_plan_apply_check_undo_through_the_cli(
    tmp_path: Path, shop: MagentoEmulator, server: Server
) -> None:
    seed(shop, simple=30, configurable=4, children=3)
    config = project(tmp_path, server, shop)
    token = shop.integration_token
    assert findings(config, token) == set()

    planted = plant(shop)
    skus = {sku for _, sku, _, _ in planted}
    drifted = {sku: raw(shop, sku) for sku in skus}
    assert findings(config, token) == planted

    plan = tmp_path / "plan.json"
    code, _, err = cli("plan", "-c", str(config), "--out", str(plan), token=token)
    assert code == 0, err
    code, out, _ = cli("apply", str(plan), "-c", str(config), "--dry-run", token=token)
    assert code == 0
    assert "/rest/all/async/bulk/V1/products/bySku" in out
    assert "sourceItems" in out
    assert {sku: raw(shop, sku) for sku in skus} == drifted  # a dry run sends nothing

    code, out, err = cli("apply", str(plan), "-c", str(config), "--yes", token=token)
    assert code == 0, out + err
    assert findings(config, token) == set()
    assert shop.stats["bulks"] == 1

    code, out, err = cli("undo", "last", "-c", str(config), "--yes", token=token)
    assert code == 0, out + err
    for sku in skus:  # read back straight from the store's state
        assert raw(shop, sku) == drifted[sku], sku
    assert findings(config, token) == planted


def test_a_rejected_token_exits_3_naming_the_channel_never_the_token(
    tmp_path: Path, shop: MagentoEmulator, server: Server
) -> None:
    secrets.forget_all()  # a secret another test registered would mask our words
    seed(shop, simple=3)
    config = project(tmp_path, server, shop)
    wrong = "definitely-not-the-token-4e1a"
    code, out, err = cli("check", "-c", str(config), "--no-history", token=wrong)
    assert code == 3
    text = out + err
    assert "shop" in text
    assert "options.token" in text
    assert "isn't authorized" in text  # Magento's message, its %resources put in
    assert "%resources" not in text
    assert wrong not in text
    assert shop.integration_token not in text


# ------------------------------------------------------------------ the emulator itself


def test_the_emulator_searches_as_magento_documents(shop: MagentoEmulator, server: Server) -> None:
    seed(shop, simple=25)
    headers = {"Authorization": f"Bearer {shop.integration_token}"}
    http = httpx.Client(base_url=f"{server.url}/rest/default/V1", headers=headers)

    def search(**params: str) -> dict[str, Any]:
        answer = http.get("/products", params=params)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    missing = http.get("/products")
    assert missing.status_code == 400
    assert missing.json() == {
        "message": "%fieldName is a required field.",
        "parameters": {"fieldName": "searchCriteria"},
    }
    assert (
        http.get(
            "/products", params={"searchCriteria": ""}, headers={"Authorization": "Bearer x"}
        ).status_code
        == 401
    )
    assert search(searchCriteria="")["total_count"] == 25
    f = "searchCriteria[filter_groups][{}][filters][{}][{}]"
    either = {
        f.format(0, 0, "field"): "sku",
        f.format(0, 0, "value"): "MG-0000%",
        f.format(0, 0, "condition_type"): "like",
        f.format(0, 1, "field"): "sku",
        f.format(0, 1, "value"): "mg-00012,MG-00013",
        f.format(0, 1, "condition_type"): "in",
    }
    assert search(**either)["total_count"] == 12  # OR within a group (and without case)
    cheap = {
        f.format(1, 0, "field"): "price",
        f.format(1, 0, "value"): "11",
        f.format(1, 0, "condition_type"): "lt",
    }
    both = search(**either, **cheap, fields="items[sku,price],total_count")
    assert both["total_count"] == 3  # AND across groups: 10.00, 10.37, 10.74
    assert set(both) == {"items", "total_count"}
    assert set(both["items"][0]) == {"sku", "price"}
    paged = {"searchCriteria[pageSize]": "10", "searchCriteria[sortOrders][0][field]": "entity_id"}
    newest = search(**paged, **{"searchCriteria[currentPage]": "1"})["items"]
    assert newest[0]["sku"] == "MG-00024"  # sorted DESC unless a direction is given
    asc = {
        **paged,
        "searchCriteria[sortOrders][0][direction]": "ASC",
        "searchCriteria[currentPage]": "9",
    }
    past = search(**asc)  # past the end: the last page again
    assert [i["sku"] for i in past["items"]] == [f"MG-{n:05d}" for n in range(20, 25)]
    assert past["search_criteria"]["current_page"] == 3
    window = {
        f.format(0, 0, "field"): "price",
        f.format(0, 0, "value"): "10.37",
        f.format(0, 0, "condition_type"): "from",
        f.format(1, 0, "field"): "price",
        f.format(1, 0, "value"): "11.11",
        f.format(1, 0, "condition_type"): "to",
    }
    assert search(**window)["total_count"] == 3
