"""The shopify connector against the local Admin GraphQL emulator: a pull over many pages, the
connector contract, check → plan → apply → check → undo through the CLI, cost-based
throttling, auth failures, partial batch failures, idempotent resends and incremental pulls."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from omnisync.cli import app
from omnisync.errors import AuthError, ConnectorError
from omnisync.models import Change, Money, Op
from omnisync.sdk.connector import ConnectorContext
from omnisync.sdk.testing import ConnectorContract
from omnisync_connectors.shopify.client import CostBucket
from omnisync_connectors.shopify.connector import ShopifyConnector
from tests.emulators.server import Server, serve
from tests.emulators.shopify import ShopifyEmulator

TOKEN = "shpat_0123456789abcdef0123456789abcdef"
VERSION = "2026-01"
AT = "2026-11-23T12:00:00+00:00"


def make_connector(server: Server, **options: Any) -> ShopifyConnector:
    values = {"url": server.url, "token": TOKEN, "api_version": VERSION, "max_wait": 5}
    parsed = ShopifyConnector.Options.model_validate({**values, **options})
    connector = ShopifyConnector(parsed, ConnectorContext("shop"))
    assert isinstance(connector, ShopifyConnector)
    return connector


@pytest.fixture
def shop() -> ShopifyEmulator:
    # A roomy bucket by default: the throttling tests make it tight on purpose.
    shop = ShopifyEmulator(TOKEN, maximum=20_000, restore_rate=20_000)
    shop.seed(30, 2, locations=("Lager", "Berlin"))
    return shop


@pytest.fixture
def server(shop: ShopifyEmulator) -> Iterator[Server]:
    with serve(shop) as running:
        yield running


def eur(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "EUR"}


# ------------------------------------------------------------------ reading


def test_a_pull_reads_every_variant_over_many_pages() -> None:
    shop = ShopifyEmulator(TOKEN, maximum=20_000, restore_rate=50_000)
    skus = shop.seed(1000, 3, locations=("Lager", "Berlin"))
    with serve(shop) as server:
        records = {r.sku: r for r in make_connector(server).read()}

    assert sorted(records) == sorted(skus)
    assert len(records) == 3000
    pages = math.ceil(3000 / 250)
    assert shop.count(operation="OmnisyncVariants") == pages
    assert shop.count(operation="OmnisyncLevels") == 2 * pages  # each location's levels
    assert shop.count(operation="OmnisyncShop") == 1
    assert {c.variables["first"] for c in shop.calls if c.operation != "OmnisyncShop"} == {250}
    assert shop.count("throttled") == 0

    regular = records["P00001-2"]
    variant = shop.variant("P00001-2")
    assert regular.price == Money(Decimal("11.00"), "EUR")
    assert regular.sale_price is None
    assert regular.title == "Product 1"
    assert regular.description == "Product 1"  # descriptionHtml, read as the text it shows
    assert regular.brand == "Brand 1"
    assert regular.gtin == variant.barcode
    assert regular.stock == {
        "Lager": shop.available("P00001-2", "Lager"),
        "Berlin": shop.available("P00001-2", "Berlin"),
    }
    assert regular.ids == {
        "product_id": f"gid://shopify/Product/{variant.product_id}",
        "variant_id": f"gid://shopify/ProductVariant/{variant.id}",
        "inventory_item_id": f"gid://shopify/InventoryItem/{variant.item_id}",
    }
    # Product 7 is on sale: Shopify's price is the sale price, compare-at the regular one.
    on_sale = records["P00007-1"]
    assert (shop.variant("P00007-1").price, shop.variant("P00007-1").compare_at) == (
        Decimal("13.60"),
        Decimal("17.00"),
    )
    assert on_sale.price == Money(Decimal("17.00"), "EUR")
    assert on_sale.sale_price == Money(Decimal("13.60"), "EUR")


def test_locations_are_mapped_and_unknown_ones_named(shop: ShopifyEmulator, server: Server) -> None:
    connector = make_connector(server, locations={"Berlin": "store-berlin"})
    record = next(r for r in connector.read() if r.sku == "P00002-1")
    assert record.stock == {"store-berlin": shop.available("P00002-1", "Berlin")}

    wrong = make_connector(server, locations={"Hamburg": "hamburg"})
    with pytest.raises(Exception, match=r"'Hamburg'.*not a location of the shop") as caught:
        wrong.check()
    hint = caught.value.hint  # type: ignore[attr-defined]
    assert "Lager" in hint
    assert "Berlin" in hint


class TestShopifyContract(ConnectorContract):
    @pytest.fixture
    def connector(self, server: Server) -> ShopifyConnector:
        return make_connector(server)


# ------------------------------------------------------------------ targeted reads (watch)


def test_reading_some_skus_asks_for_just_them(shop: ShopifyEmulator, server: Server) -> None:
    connector = make_connector(server)
    wanted = ["P00003-2", "P00011-1", "NOPE"]
    found = list(connector.read_skus(wanted))
    assert [r.sku for r in found] == ["P00003-2", "P00011-1"]
    assert found[0].stock == {
        "Lager": shop.available("P00003-2", "Lager"),
        "Berlin": shop.available("P00003-2", "Berlin"),
    }
    assert shop.count(operation="OmnisyncVariants") == 0  # no page of the catalogue
    assert shop.count(operation="OmnisyncTargets") == 1


def test_reading_some_skus_sees_a_mapped_location_listed_after_unmapped_ones() -> None:
    # An item's levels are listed across all the shop's locations; the mapped one comes last.
    shop = ShopifyEmulator(TOKEN, maximum=20_000, restore_rate=20_000)
    shop.seed(3, 1, locations=("Berlin", "Hamburg", "Lager"))
    with serve(shop) as server:
        connector = make_connector(server, locations={"Lager": "lager"})
        [record] = connector.read_skus(["P00002-1"])
        assert record.stock == {"lager": shop.available("P00002-1", "Lager")}
        [read] = [r for r in connector.read() if r.sku == "P00002-1"]
        assert read.stock == record.stock


def test_webhook_ids_are_resolved_to_skus_by_gid(shop: ShopifyEmulator, server: Server) -> None:
    connector = make_connector(server)
    item = shop.variant("P00004-1").item_id
    variant = shop.variant("P00005-2").id
    product = shop.product_of("P00006-1").id
    refs = {
        "inventory_item_id": [
            f"gid://shopify/InventoryItem/{item}",
            "gid://shopify/InventoryItem/9",
        ],
        "variant_id": [str(variant)],  # a REST payload's number
        "product_id": [f"gid://shopify/Product/{product}", "not-an-id"],
    }
    assert connector.find_skus(refs) == {"P00004-1", "P00005-2", "P00006-1", "P00006-2"}
    assert shop.count(operation="OmnisyncNodes") == 1  # variants and items in one query
    assert shop.count(operation="OmnisyncSkus") == 1  # the product's variants
    assert shop.count(outcome="error") == 0


# ------------------------------------------------------------------ the loop through the CLI

CONFIG = """\
settings: {{state: state.db, timezone: UTC}}
canonical:
  connector: csv
  prices: gross
  options:
    path: erp.csv
    currency: EUR
    decimal: "."
    mapping: {{sku: sku, title: title, price: price, sale_price: sale_price, stock: {{lager: lager, berlin: berlin}}}}
channels:
  shop:
    connector: shopify
    options:
      url: {url}
      api_version: "{version}"
      token: ${{SHOPIFY_TOKEN}}
      locations: {{Lager: lager, Berlin: berlin}}
      max_wait: 5
    expect:
      check: [title, price, sale_price, stock]
      price: {{shows: gross, sale: separate}}
      stock: {{locations: {{lager: [lager], berlin: [berlin]}}}}
    push:
      fields: [title, price, sale_price, stock]
      guard: {{max_records_pct: 100, max_price_change_pct: 1000, max_zero_stock_pct: 100}}
"""


def write_project(
    tmp_path: Path, server: Server, shop: ShopifyEmulator, version: str = VERSION
) -> Path:
    """A config pointing at the emulator and an ERP export that matches the shop as seeded."""
    (tmp_path / "omnisync.yaml").write_text(
        CONFIG.format(url=server.url, version=version), encoding="utf-8"
    )
    write_erp(tmp_path, shop, {})
    return tmp_path


def write_erp(tmp_path: Path, shop: ShopifyEmulator, edits: dict[str, dict[str, str]]) -> None:
    rows = []
    for variant in shop.variants.values():
        product = shop.products[variant.product_id]
        on_sale = variant.compare_at is not None and variant.compare_at > variant.price
        row = {
            "sku": variant.sku,
            "title": product.title,
            "price": f"{variant.compare_at if on_sale else variant.price:.2f}",
            "sale_price": f"{variant.price:.2f}" if on_sale else "",
            "lager": str(shop.available(variant.sku, "Lager")),
            "berlin": str(shop.available(variant.sku, "Berlin")),
        }
        row.update(edits.get(variant.sku, {}))
        if row.get("sku") != "-":
            rows.append(row)
    rows += [r for sku, r in edits.items() if sku not in {v.sku for v in shop.variants.values()}]
    with (tmp_path / "erp.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["sku", "title", "price", "sale_price", "lager", "berlin"])
        writer.writeheader()
        writer.writerows(rows)


def cli(*args: str, token: str = TOKEN) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, list(args), catch_exceptions=False, env={"COLUMNS": "200", "SHOPIFY_TOKEN": token}
    )
    return result.exit_code, result.stdout, result.stderr


def findings(project: Path, *extra: str) -> set[tuple[str, str, str | None, str | None]]:
    code, out, err = cli(
        "check", "-c", str(project / "omnisync.yaml"), "--at", AT, "-f", "json", *extra
    )
    assert code in (0, 1), out + err
    return {
        (f["kind"], f["sku"], f["field"], f["location"])
        for c in json.loads(out)["channels"]
        for f in c["findings"]
    }


PLANTED = {
    ("changed", "P00003-1", "price", None),
    ("changed", "P00004-2", "stock", "berlin"),
    ("changed", "P00005-1", "title", None),
    ("changed", "P00005-2", "title", None),
    ("changed", "P00014-1", "sale_price", None),
    ("changed", "P00009-1", "sale_price", None),
    ("missing", "ZZ-NEW", None, None),
    ("extra", "P00030-2", None, None),
}


def plant(tmp_path: Path, shop: ShopifyEmulator) -> None:
    """Canonical differs from the shop in exactly the PLANTED ways."""
    edits = {
        "P00003-1": {"price": "19.99"},
        "P00004-2": {"berlin": "40"},
        "P00005-1": {"title": "Product 5 (2026)"},
        "P00005-2": {"title": "Product 5 (2026)"},
        "P00014-1": {"sale_price": "9.99"},  # a different sale price
        "P00009-1": {"sale_price": "15.00"},  # a sale the shop does not run
        "P00030-2": {"sku": "-"},
        "ZZ-NEW": {"sku": "ZZ-NEW", "title": "New", "price": "5.00", "lager": "1", "berlin": "1"},
    }
    write_erp(tmp_path, shop, edits)


def test_check_finds_exactly_the_planted_mismatches(
    tmp_path: Path, shop: ShopifyEmulator, server: Server
) -> None:
    project = write_project(tmp_path, server, shop)
    assert findings(project, "--no-history") == set()
    plant(project, shop)
    assert findings(project, "--no-history") == PLANTED


def test_plan_apply_check_undo_restores_the_shop(
    tmp_path: Path, shop: ShopifyEmulator, server: Server
) -> None:
    project = write_project(tmp_path, server, shop)
    plant(project, shop)
    config = str(project / "omnisync.yaml")

    def state() -> dict[str, Any]:
        return {
            "P00003-1": (shop.variant("P00003-1").price, shop.variant("P00003-1").compare_at),
            "P00014-1": (shop.variant("P00014-1").price, shop.variant("P00014-1").compare_at),
            "P00009-1": (shop.variant("P00009-1").price, shop.variant("P00009-1").compare_at),
            "P00004-2": shop.available("P00004-2", "Berlin"),
            "title": shop.product_of("P00005-1").title,
        }

    original = state()
    code, _, err = cli("plan", "-c", config, "--at", AT, "--out", str(project / "plan.json"))
    assert code == 0, err
    code, out, err = cli("apply", str(project / "plan.json"), "-c", config, "--yes")
    assert code == 0, out + err
    assert state() == {
        "P00003-1": (Decimal("19.99"), None),
        "P00014-1": (Decimal("9.99"), Decimal("24.00")),  # sale price under the regular
        "P00009-1": (Decimal("15.00"), Decimal("19.00")),
        "P00004-2": 40,
        "title": "Product 5 (2026)",
    }
    # Pushed fields are consistent; creating and deleting products is not omnisync's to do.
    assert findings(project) == {
        ("missing", "ZZ-NEW", None, None),
        ("extra", "P00030-2", None, None),
    }
    writes = [c for c in shop.calls if c.operation == "OmnisyncWrite"]
    assert len(writes) == 1  # one batch, one request
    assert "productVariantsBulkUpdate" in writes[0].document
    assert "inventorySetQuantities" in writes[0].document

    code, out, err = cli("undo", "last", "-c", config, "--yes")
    assert code == 0, out + err
    assert state() == original
    assert findings(project) == PLANTED


def test_dry_run_prints_the_mutation_and_sends_nothing(
    tmp_path: Path, shop: ShopifyEmulator, server: Server
) -> None:
    project = write_project(tmp_path, server, shop)
    plant(project, shop)
    config = str(project / "omnisync.yaml")
    cli("plan", "-c", config, "--at", AT, "--out", str(project / "plan.json"))
    code, out, _ = cli("apply", str(project / "plan.json"), "-c", config, "--dry-run")
    assert code == 0
    assert "productVariantsBulkUpdate" in out
    assert "changeFromQuantity" in out
    assert TOKEN not in out
    assert shop.count(operation="OmnisyncWrite") == 0


def test_a_rejected_token_exits_3_naming_the_channel_and_what_to_check(
    tmp_path: Path, shop: ShopifyEmulator, server: Server
) -> None:
    project = write_project(tmp_path, server, shop)
    wrong = "shpat_wrong_token_0000000000000000"
    code, out, err = cli("check", "-c", str(project / "omnisync.yaml"), "--no-history", token=wrong)
    assert code == 3
    text = out + err
    assert "shop" in text
    assert "Invalid API key or access token" in text
    assert "token" in text
    assert "scopes" in text
    assert wrong not in text
    assert TOKEN not in text
    assert shop.count("auth") == 1  # a 401 is not retried


def test_a_token_without_write_scopes_is_an_auth_error_naming_them(shop: ShopifyEmulator) -> None:
    shop.scopes = frozenset({"read_products", "read_inventory", "read_locations"})
    with serve(shop) as server:
        connector = make_connector(server)
        record = next(r for r in connector.read() if r.sku == "P00001-1")
        change = Change(
            "shop", "P00001-1", Op.UPDATE, "price", None, eur("11"), eur("12"), ids=record.ids
        )
        with pytest.raises(AuthError, match="write_products") as caught:
            connector.write([change])
    assert "write_products" in caught.value.hint
    assert shop.variant("P00001-1").price == Decimal("11.00")


# ------------------------------------------------------------------ partial failures


def test_rejected_changes_fail_with_shopifys_message_and_the_rest_applies(
    shop: ShopifyEmulator, server: Server
) -> None:
    connector = make_connector(server)
    records = {r.sku: r for r in connector.read()}

    def change(
        sku: str, field: str, before: Any, after: Any, location: str | None = None
    ) -> Change:
        return Change("shop", sku, Op.UPDATE, field, location, before, after, ids=records[sku].ids)

    lager = shop.available("P00002-2", "Lager")
    changes = [
        change("P00001-1", "price", eur("11"), eur("12.50")),
        change("P00003-1", "price", eur("13"), eur("-1")),  # Shopify refuses a negative price
        change("P00002-1", "stock", 17, 30, "Lager"),
        change("P00002-2", "stock", lager, 5, "Lager"),
        change("P00006-1", "title", "Product 6", "x" * 300),  # over Shopify's 255 characters
        change("P00008-1", "title", "Product 8", "Product 8 renamed"),
    ]
    shop.set_available("P00002-2", "Lager", lager + 1)  # sold meanwhile: compare-and-set fails
    results = connector.write(changes)

    assert [r.key for r in results] == [c.key for c in changes]
    assert [r.ok for r in results] == [True, False, True, False, False, True]
    assert results[1].error == "Price must be greater than or equal to 0 (GREATER_THAN_OR_EQUAL_TO)"
    assert "no longer matches the persisted quantity" in (results[3].error or "")
    assert results[4].error == "Title is too long (maximum is 255 characters)"
    assert shop.variant("P00001-1").price == Decimal("12.50")
    assert shop.variant("P00003-1").price == Decimal("13.00")
    assert shop.available("P00002-1", "Lager") == 30  # sent again without the refused quantity
    assert shop.available("P00002-2", "Lager") == lager + 1
    assert shop.product_of("P00008-1").title == "Product 8 renamed"
    assert shop.product_of("P00006-1").title == "Product 6"


def test_a_partly_failed_push_exits_4_and_reports_shopifys_message(
    tmp_path: Path, shop: ShopifyEmulator, server: Server
) -> None:
    project = write_project(tmp_path, server, shop)
    long_title = "Product 5 " + "x" * 300
    write_erp(
        project,
        shop,
        {
            "P00003-1": {"price": "19.99"},
            "P00005-1": {"title": long_title},
            "P00005-2": {"title": long_title},
        },
    )
    config = str(project / "omnisync.yaml")
    code, out, err = cli("sync", "-c", config, "--at", AT)
    assert code == 4, out + err
    code, out, _ = cli("show", "last", "-c", config)
    assert "Title is too long (maximum is 255 characters)" in out
    assert shop.variant("P00003-1").price == Decimal("19.99")
    assert shop.product_of("P00005-1").title == "Product 5"


def test_a_batch_over_250_quantities_is_split_within_one_request(shop: ShopifyEmulator) -> None:
    shop.reset()
    shop.seed(150, 2, locations=("Lager",))
    with serve(shop) as server:
        connector = make_connector(server, max_batch=250)
        records = [r for r in connector.read() if r.stock][:260]
        changes = [
            Change("shop", r.sku, Op.UPDATE, "stock", "Lager", r.stock["Lager"], 100, ids=r.ids)
            for r in records
        ]
        results = connector.write(changes[:250]) + connector.write(changes[250:])
    assert all(r.ok for r in results)
    assert all(shop.available(r.sku, "Lager") == 100 for r in records)
    assert shop.count(operation="OmnisyncWrite") == 2
    assert shop.count("error") == 0


def test_stock_of_a_location_mapped_as_default_is_written(
    shop: ShopifyEmulator, server: Server
) -> None:
    # A canonical with one stock column reads as location "default"; a plan's change to it
    # carries no location.
    connector = make_connector(server, locations={"Berlin": "default"})
    record = next(r for r in connector.read() if r.sku == "P00002-1")
    assert record.stock is not None
    before = record.stock["default"]
    change = Change(
        "shop", "P00002-1", Op.UPDATE, "stock", None, before, before + 4, ids=record.ids
    )
    [result] = connector.write([change])
    assert result.ok, result.error
    assert shop.available("P00002-1", "Berlin") == before + 4
    assert connector.current([change])[change.key] == before + 4


# ------------------------------------------------------------------ throttling


def test_a_tight_bucket_paces_the_pull_and_the_push_without_a_single_throttle() -> None:
    # 400 points, refilled at 2000/s: a 50-variant page costs 152, so the pull must wait.
    shop = ShopifyEmulator(TOKEN, maximum=400, restore_rate=2000)
    shop.seed(150, 2)
    with serve(shop, latency=0.002) as server:
        connector = make_connector(server, page_size=50)
        records = list(connector.read())
        changes = [
            Change("shop", r.sku, Op.UPDATE, "stock", "Lager", r.stock["Lager"], 7, ids=r.ids)
            for r in records[:120]
        ]
        for start in range(0, len(changes), 10):
            batch = changes[start : start + 10]
            connector.current(batch)
            assert all(r.ok for r in connector.write(batch))
    assert len(records) == 300
    assert shop.count("throttled") == 0  # never asked for more than the bucket held
    assert connector.client.retry.retries == 0
    assert connector.client.bucket.waited > 0  # ... because it waited for the points
    charged = sum(c.actual or 0 for c in shop.calls)
    assert charged > 10 * shop.maximum  # the bucket was refilled many times over


@pytest.mark.parametrize("status", [200, 429])
def test_a_bucket_drained_by_someone_else_costs_exactly_one_retry(status: int) -> None:
    shop = ShopifyEmulator(TOKEN, maximum=1000, restore_rate=5000, throttle_status=status)
    shop.seed(100, 2)
    with serve(shop) as server:
        connector = make_connector(server, page_size=100)
        shop.drain(1000)  # another app of the same shop spent it all
        records = list(connector.read())
    assert len(records) == 200
    assert shop.count("throttled") == 1  # the first request, sent before the bucket was known
    assert connector.client.retry.retries == 1  # waited (requested - available) / rate, once
    throttled = next(c for c in shop.calls if c.outcome == "throttled")
    retried = shop.calls[shop.calls.index(throttled) + 1]
    assert retried.operation == throttled.operation
    assert retried.outcome == "ok"


def test_a_query_over_the_cost_ceiling_tells_what_to_lower(
    shop: ShopifyEmulator, server: Server
) -> None:
    expensive = """query Expensive { productVariants(first: 250) { nodes {
        inventoryItem { inventoryLevels(first: 10) { nodes { id } } } } } }"""
    connector = make_connector(server)
    with pytest.raises(ConnectorError, match=r"too expensive.*Query cost is 3502") as caught:
        connector.client.execute(expensive, operation="Expensive", cost=1)
    assert "page_size" in caught.value.hint


def test_the_bucket_model_counts_no_restoration_a_full_bucket_never_grants() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    bucket = CostBucket(clock=lambda: now[0], sleep=sleep)
    status = {"maximumAvailable": 400, "currentlyAvailable": 395, "restoreRate": 2000}
    bucket.settle(0, {"actualQueryCost": 5, "throttleStatus": status}, 0.0)
    first, second = bucket.acquire(153), bucket.acquire(153)
    # Both requests are on their way: Shopify charges them when they arrive, and its full
    # bucket does not fill past 400 meanwhile; 94 points is all a third request may count on.
    now[0] += 0.05
    assert bucket.available() == pytest.approx(94)
    bucket.settle(first, {"actualQueryCost": 153}, 0.0)  # the first answer arrives
    assert bucket.available() == pytest.approx(400 - 153 - second)
    assert bucket.acquire(152) == 152
    assert now[0] == pytest.approx(0.05 + (152 - 94) / 2000)  # it waited for the difference
    assert bucket.available() == pytest.approx(0)


def test_the_emulator_enforces_the_page_and_input_limits(server: Server) -> None:
    connector = make_connector(server)
    with pytest.raises(ConnectorError, match="must be between 0 and 250, got 251"):
        connector.client.execute(
            "query Big { productVariants(first: 251) { nodes { id } } }", operation="Big", cost=1
        )
    rows = [{"inventoryItemId": "gid://shopify/InventoryItem/1", "locationId": "x", "quantity": 1}]
    with pytest.raises(ConnectorError, match="input array size of 251 is greater than the maximum"):
        connector.client.execute(
            "mutation Set($input: InventorySetQuantitiesInput!) { inventorySetQuantities(input: $input) "
            '@idempotent(key: "k") { userErrors { message } } }',
            {"input": {"name": "available", "reason": "correction", "quantities": rows * 251}},
            operation="Set",
            cost=10,
        )


# ------------------------------------------------------------------ idempotent resends


@pytest.mark.parametrize(("version", "replays"), [("2026-01", 1), ("2025-10", 0)])
def test_a_stock_write_whose_answer_was_lost_lands_once(
    shop: ShopifyEmulator, server: Server, version: str, replays: int
) -> None:
    connector = make_connector(server, api_version=version, max_wait=0.05)
    record = next(r for r in connector.read() if r.sku == "P00002-1")
    before = shop.available("P00002-1", "Lager")
    change = Change(
        "shop", "P00002-1", Op.UPDATE, "stock", "Lager", before, before + 5, ids=record.ids
    )
    shop.lose_mutation_responses = 1  # applied, then the connection drops
    [result] = connector.write([change])
    assert (result.ok, result.error) == (True, None)
    assert shop.available("P00002-1", "Lager") == before + 5
    writes = [c for c in shop.calls if c.operation == "OmnisyncWrite"]
    assert len(writes) == 2  # the resend
    # 2026-01: the same @idempotent key, so Shopify answers the first result. 2025-10 has no
    # keys: the compare-and-set refuses the resend and the re-read shows it had landed.
    assert shop.replays == replays
    assert ("@idempotent" in writes[0].document) == (version >= "2026-01")
    assert writes[0].variables == writes[1].variables


# ------------------------------------------------------------------ incremental pulls


def test_incremental_pulls_fetch_only_changes_and_a_full_pull_sees_deletions(
    tmp_path: Path, shop: ShopifyEmulator, server: Server
) -> None:
    shop.reset()
    shop.seed(600, 2)  # 1200 variants: 5 pages of variants, 5 of levels per location
    project = write_project(tmp_path, server, shop)
    assert findings(project) == set()  # the first pull is a full one
    full, full_cost = len(shop.calls), sum(c.actual or 0 for c in shop.calls)
    assert full == 1 + 5 + 2 * 5
    shop.calls.clear()

    shop.set_price("P00003-1", "99.00")
    shop.set_available("P00004-2", "Berlin", 0)
    assert findings(project) == {
        ("changed", "P00003-1", "price", None),
        ("changed", "P00004-2", "stock", "berlin"),
    }
    queries = {c.operation: c.variables.get("query") for c in shop.calls}
    assert str(queries["OmnisyncChangedProducts"]).startswith("updated_at:>'")
    assert str(queries["OmnisyncChangedLevels"]).startswith("updated_at:>'")
    assert "OmnisyncVariants" not in queries
    assert len(shop.calls) < full / 2
    assert sum(c.actual or 0 for c in shop.calls) < full_cost / 10
    fetched = [c.variables["query"] for c in shop.calls if c.operation == "OmnisyncTargets"]
    product = shop.variant("P00003-1").product_id
    assert fetched
    assert all(f"product_id:{product}" in q for q in fetched)

    gone = shop.delete_product("P00007-1")
    assert findings(project) == {  # incremental: a deletion is invisible
        ("changed", "P00003-1", "price", None),
        ("changed", "P00004-2", "stock", "berlin"),
    }
    assert findings(project, "--full") == {
        ("changed", "P00003-1", "price", None),
        ("changed", "P00004-2", "stock", "berlin"),
        *{("missing", shop_sku, None, None) for shop_sku in (f"P00007-{v}" for v in (1, 2))},
    }
    assert len(gone.variant_ids) == 2


# ------------------------------------------------------------------ options


def test_options_are_validated_up_front(
    tmp_path: Path, shop: ShopifyEmulator, server: Server
) -> None:
    project = write_project(tmp_path, server, shop)
    config = project / "omnisync.yaml"
    text = config.read_text(encoding="utf-8").replace(
        "max_wait: 5", "max_wait: 5\n      page_size: 500"
    )
    config.write_text(text.replace('"2026-01"', '"2026-02"'), encoding="utf-8")
    code, out, err = cli("validate", "-c", str(config))
    assert code == 2
    assert "channels.shop.options.page_size" in out + err
    assert "channels.shop.options.api_version" in out + err
