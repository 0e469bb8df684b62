"""The woocommerce connector against the local WooCommerce emulator: a pull over many pages,
the connector contract, check → plan → apply → check → undo through the CLI, retries, a
rejected key, per-item batch failures, batch sizes and incremental pulls."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from omnisync.cli import app
from omnisync.errors import ConnectorError
from omnisync.models import Availability, Change, Money, Op
from omnisync.sdk.connector import ConnectorContext
from omnisync.sdk.testing import ConnectorContract
from omnisync_connectors.woocommerce.connector import WooCommerceConnector
from tests.emulators.server import Server, serve
from tests.emulators.woocommerce import SALE_FROM, SALE_TO, WooShop, seed

KEY, SECRET = "ck_test", "cs_test"
AT = "2026-11-23T12:00:00+00:00"
PRODUCTS = "/wp-json/wc/v3/products"


def make_connector(server: Server, **options: Any) -> WooCommerceConnector:
    values = {"url": server.url, "consumer_key": KEY, "consumer_secret": SECRET, "max_wait": 0}
    parsed = WooCommerceConnector.Options.model_validate({**values, **options})
    return WooCommerceConnector(parsed, ConnectorContext("webshop"))


@pytest.fixture
def shop() -> WooShop:
    shop = WooShop()
    seed(shop, simple=30, variable=4, variations=3)
    return shop


@pytest.fixture
def server(shop: WooShop) -> Iterator[Server]:
    with serve(shop.app) as running:
        yield running


# ------------------------------------------------------------------ reading


def test_a_pull_reads_every_product_and_variation_over_many_pages() -> None:
    shop = WooShop()
    seed(shop, simple=2400, variable=120, variations=5)
    shop.add({"type": "simple", "name": "Gift card", "regular_price": "25"})  # no SKU
    shop.add({"type": "grouped", "name": "Bundle", "sku": "G-1"})  # a container
    with serve(shop.app) as server:
        records = list(make_connector(server).read())

    by_sku = {r.sku: r for r in records}
    assert len(records) == len(by_sku) == 3000
    assert set(by_sku) == {p["sku"] for p in shop.sellable() if p["sku"]}
    pages = [query for path, query, _ in shop.listings if path == "products"]
    assert sorted(int(q["page"]) for q in pages) == list(range(1, 27))  # 2522 products, once each
    assert {q["per_page"] for q in pages} == {"100"}
    assert sum(1 for path, _, _ in shop.listings if path.endswith("/variations")) == 120

    product = shop.product("S00010")
    record = by_sku["S00010"]
    assert record.title == "Product 10"
    assert record.description == "Description of product 10."  # raw, not wrapped in <p>
    assert record.price == Money(Decimal(product["regular_price"]), "EUR")
    assert record.sale_price == Money(Decimal(product["sale_price"]), "EUR")
    # The site is in Europe/Berlin; the _gmt fields give the window in UTC.
    assert (record.sale_start, record.sale_end) == (SALE_FROM, SALE_TO)
    assert record.stock == {"default": 10}
    assert record.availability is Availability.IN_STOCK
    assert record.gtin == "0" + product["global_unique_id"]
    assert by_sku["S00000"].availability is Availability.OUT_OF_STOCK  # managed, quantity 0

    parent, variation = shop.product("V0007"), shop.product("V0007-2")
    assert by_sku["V0007-2"].title == "Variable 7"  # a variation shows its parent's name
    assert by_sku["V0007-2"].ids == {
        "product_id": str(parent["id"]),
        "variation_id": str(variation["id"]),
    }
    assert by_sku["S00001"].ids == {"product_id": str(shop.product("S00001")["id"])}


def test_a_503_and_a_dropped_connection_mid_pull_are_retried() -> None:
    shop = WooShop()
    seed(shop, simple=450, variable=10, variations=3)
    with serve(shop.app) as server:
        connector = make_connector(server, concurrency=4)
        connector.check()
        sent = sum(server.requests.values())
        server.faults.fail_request(3, status=503, headers={"Retry-After": "0"})
        server.faults.drop_request(6)
        records = list(connector.read())
        assert len(records) == 480
        # 5 pages of products, 10 variation lists, and the two failed requests again.
        assert sum(server.requests.values()) - sent == 5 + 10 + 2
    assert connector.client.http.retry.retries == 2


def test_keys_as_query_parameters_work_where_the_header_is_stripped(server: Server) -> None:
    records = list(make_connector(server, auth="query").read())
    assert len(records) == 30 + 4 * 3


class TestWooCommerceContract(ConnectorContract):
    @pytest.fixture
    def connector(self, server: Server) -> WooCommerceConnector:
        return make_connector(server)


# ------------------------------------------------------------------ through the CLI

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
      gtin: gtin
      price: price
      sale_price: sale_price
      sale_start: sale_start
      sale_end: sale_end
      stock: stock
channels:
  webshop:
    connector: woocommerce
    options:
      url: {url}
      consumer_key: ${{WOO_KEY}}
      consumer_secret: ${{WOO_SECRET}}
      max_wait: 0
    expect:
      check: [title, gtin, price, sale_price, stock]
      price: {{sale: scheduled}}
    push:
      fields: [title, gtin, price, sale_price, stock]
      create: true
      guard: {{max_records: 100000, max_records_pct: 100, max_price_change_pct: 1000, max_zero_stock_pct: 100}}
"""
COLUMNS = ("sku", "title", "gtin", "price", "sale_price", "sale_start", "sale_end", "stock")


def canonical_rows(shop: WooShop) -> dict[str, dict[str, str]]:
    """The shop's sellable records as canonical CSV rows: a catalogue with no mismatch."""
    rows = {}
    for product in shop.sellable():
        parent = shop.products.get(product["parent_id"])
        gmt = "%Y-%m-%dT%H:%M:%S+00:00"
        start, end = product["date_on_sale_from"], product["date_on_sale_to"]
        rows[product["sku"]] = {
            "sku": product["sku"],
            "title": parent["name"] if parent else product["name"],
            "gtin": product["global_unique_id"],
            "price": product["regular_price"],
            "sale_price": product["sale_price"],
            "sale_start": start.strftime(gmt) if start else "",
            "sale_end": end.strftime(gmt) if end else "",
            "stock": str(product["stock_quantity"]),
        }
    return rows


def write_project(tmp_path: Path, server: Server, rows: dict[str, dict[str, str]]) -> Path:
    with (tmp_path / "erp.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(rows.values())
    config = tmp_path / "omnisync.yaml"
    config.write_text(CONFIG.format(url=server.url), encoding="utf-8")
    return config


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WOO_KEY", KEY)
    monkeypatch.setenv("WOO_SECRET", SECRET)


def findings(config: Path, *extra: str) -> set[tuple[str, str, str | None]]:
    code, out, err = cli("check", "-c", str(config), "--at", AT, "-f", "json", *extra)
    assert code in (0, 1), out + err
    return {
        (f["kind"], f["sku"], f["field"])
        for channel in json.loads(out)["channels"]
        for f in channel["findings"]
    }


def plant(rows: dict[str, dict[str, str]]) -> set[tuple[str, str, str | None]]:
    """Change canonical against the shop; the findings a check must report, exactly."""
    rows["S00003"]["price"] = str(Decimal(rows["S00003"]["price"]) + 1)
    rows["V0001-2"]["stock"] = "99"
    rows["S00005"]["title"] = "Renamed product 5"
    rows["S00010"].update(sale_price="", sale_start="", sale_end="")  # the sale ends
    rows["S00004"].update(
        sale_price="7.00",
        sale_start="2026-11-20T08:00:00+00:00",
        sale_end="2026-11-30T18:00:00+00:00",
    )
    rows["S00007"]["gtin"] = "4009999999993"
    for k in (1, 2, 3):  # a variable product's name: its variations' title
        rows[f"V0002-{k}"]["title"] = "Renamed variable 2"
    rows["NEW-1"] = {
        **dict.fromkeys(COLUMNS, ""),
        "sku": "NEW-1",
        "title": "A new product",
        "price": "12.50",
        "stock": "4",
    }
    return {
        ("changed", "S00003", "price"),
        ("changed", "V0001-2", "stock"),
        ("changed", "S00005", "title"),
        ("changed", "S00010", "sale_price"),
        ("changed", "S00004", "sale_price"),
        ("changed", "S00007", "gtin"),
        *{("changed", f"V0002-{k}", "title") for k in (1, 2, 3)},
        ("missing", "NEW-1", None),
        # Canonical has no GTIN for the product to create: unknown, reported, never written.
        ("data_quality", "NEW-1", "gtin"),
    }


def snapshot(shop: WooShop) -> dict[int, dict[str, Any]]:
    """The shop's state, without modification times."""
    with shop.lock:
        return {
            i: {k: v for k, v in p.items() if k != "date_modified"}
            for i, p in shop.products.items()
        }


@pytest.mark.usefixtures("keys")
def test_check_finds_exactly_the_planted_mismatches(
    tmp_path: Path, shop: WooShop, server: Server
) -> None:
    rows = canonical_rows(shop)
    planted = plant(rows)
    del rows["S00011"]  # in the shop only
    config = write_project(tmp_path, server, rows)
    assert findings(config, "--no-history") == planted | {("extra", "S00011", None)}


@pytest.mark.usefixtures("keys")
def test_plan_apply_check_undo_restores_the_shop(
    tmp_path: Path, shop: WooShop, server: Server
) -> None:
    original = snapshot(shop)
    rows = canonical_rows(shop)
    planted = plant(rows)
    config = write_project(tmp_path, server, rows)
    assert findings(config, "--no-history") == planted

    plan = str(tmp_path / "plan.json")
    code, _, err = cli("plan", "-c", str(config), "--at", AT, "--out", plan)
    assert code == 0, err
    code, out, err = cli("apply", plan, "-c", str(config), "--yes")
    assert code == 0, out + err
    # Everything converged. NEW-1 was created without a GTIN (canonical's is unknown), so
    # both sides are blank and nothing would change: no data-quality finding either.
    assert findings(config, "--no-history") == set()

    # What the shop holds now, read from its state directly.
    s3, s4, s10 = (shop.product(s) for s in ("S00003", "S00004", "S00010"))
    assert s3["regular_price"] == rows["S00003"]["price"]
    assert (s4["sale_price"], s4["date_on_sale_from"].isoformat()) == (
        "7.00",
        "2026-11-20T08:00:00+00:00",
    )
    assert (s10["sale_price"], s10["date_on_sale_from"], s10["date_on_sale_to"]) == ("", None, None)
    assert shop.product("V0002")["name"] == "Renamed variable 2"
    assert shop.product("V0001-2")["stock_quantity"] == 99
    created = shop.product("NEW-1")
    assert (created["status"], created["regular_price"], created["stock_quantity"]) == (
        "draft",
        "12.50",
        4,
    )
    # Five products, one create and one parent's name (for three variations) share one
    # request; the variation's stock goes to its parent's variations endpoint.
    v0001 = shop.product("V0001")
    assert shop.batches == [
        ("products/batch", 7, 200),
        (f"products/{v0001['id']}/variations/batch", 1, 200),
    ]

    code, out, err = cli("undo", "last", "-c", str(config), "--yes")
    assert code == 0, out + err
    assert snapshot(shop) == original
    assert findings(config, "--no-history") == planted


@pytest.mark.usefixtures("keys")
def test_dry_run_shows_the_batch_requests_and_sends_nothing(
    tmp_path: Path, shop: WooShop, server: Server
) -> None:
    rows = canonical_rows(shop)
    rows["S00003"]["price"] = "77.00"
    config = write_project(tmp_path, server, rows)
    plan = str(tmp_path / "plan.json")
    assert cli("plan", "-c", str(config), "--at", AT, "--out", plan)[0] == 0
    code, out, _ = cli("apply", plan, "-c", str(config), "--dry-run")
    assert code == 0
    assert "/wp-json/wc/v3/products/batch" in out
    assert '"regular_price": "77.00"' in out
    assert shop.batches == []


def test_a_rejected_key_exits_3_naming_the_channel_and_what_to_check(
    tmp_path: Path, shop: WooShop, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WOO_KEY", "ck_0123456789abcdef")
    monkeypatch.setenv("WOO_SECRET", "cs_fedcba9876543210")
    config = write_project(tmp_path, server, canonical_rows(shop))
    code, out, err = cli("check", "-c", str(config), "--no-history")
    assert code == 3
    shown = out + err
    assert "webshop" in shown
    assert "Consumer key is invalid" in shown  # WooCommerce's own words
    assert "options.consumer_key and options.consumer_secret" in shown  # what to check
    for secret in ("0123456789abcdef", "fedcba9876543210"):
        assert secret not in shown


@pytest.mark.usefixtures("keys")
def test_a_rejected_item_fails_alone_with_woocommerces_message(
    tmp_path: Path, shop: WooShop, server: Server
) -> None:
    rows = canonical_rows(shop)
    rows["S00001"]["gtin"] = rows["S00002"]["gtin"]  # WooCommerce refuses a duplicate GTIN
    rows["S00003"]["price"] = "55.55"
    rows["V0000-1"]["stock"] = "42"
    config = write_project(tmp_path, server, rows)
    plan = str(tmp_path / "plan.json")
    assert cli("plan", "-c", str(config), "--at", AT, "--out", plan)[0] == 0
    code, out, err = cli("apply", plan, "-c", str(config), "--yes")
    assert code == 4, out + err  # partly applied
    assert "S00001" in out
    assert "Invalid or duplicated GTIN, UPC, EAN or ISBN. (product_invalid_global_unique_id)" in out
    assert shop.product("S00003")["regular_price"] == "55.55"
    assert shop.product("V0000-1")["stock_quantity"] == 42
    assert shop.product("S00001")["global_unique_id"] == "4000000000001"


def test_an_unknown_id_fails_with_woocommerces_code_and_the_rest_applies(
    server: Server, shop: WooShop
) -> None:
    connector = make_connector(server)
    price = {"amount": "10.00", "currency": "EUR"}
    known = shop.product("S00006")
    changes = [
        Change(
            "webshop", "GONE", Op.UPDATE, "price", None, price, price, ids={"product_id": "999999"}
        ),
        Change(
            "webshop",
            "S00006",
            Op.UPDATE,
            "price",
            None,
            price,
            {"amount": "11.5", "currency": "EUR"},
            ids={"product_id": str(known["id"])},
        ),
    ]
    results = connector.write(changes)
    assert [(r.ok, r.error) for r in results] == [
        (False, "Invalid ID. (woocommerce_rest_product_invalid_id)"),
        (True, None),
    ]
    assert shop.product("S00006")["regular_price"] == "11.50"
    [(path, items, status)] = shop.batches
    assert (path, items, status) == ("products/batch", 2, 200)


def test_deletes_remove_products_and_variations_and_only_simple_ones_come_back(
    server: Server, shop: WooShop
) -> None:
    connector = make_connector(server)
    simple, variation = shop.product("S00012"), shop.product("V0003-2")
    deletes = [
        Change(
            "webshop",
            product["sku"],
            Op.DELETE,
            before={"sku": product["sku"], "ids": ids},
            ids=ids,
        )
        for product, ids in (
            (simple, {"product_id": str(simple["id"])}),
            (
                variation,
                {"product_id": str(variation["parent_id"]), "variation_id": str(variation["id"])},
            ),
        )
    ]
    assert all(value is not None for value in connector.current(deletes).values())
    assert [r.ok for r in connector.write(deletes)] == [True, True]
    assert (shop.by_sku("S00012"), shop.by_sku("V0003-2")) == (None, None)
    assert set(connector.current(deletes).values()) == {None}

    # Undo re-creates what it can: a simple product, not a variation.
    back = [change.inverse() for change in deletes]
    back[0].after = {
        "sku": "S00012",
        "title": "Product 12",
        "price": {"amount": "5", "currency": "EUR"},
    }
    results = connector.write(back)
    assert results[0].ok
    assert shop.product("S00012")["regular_price"] == "5.00"
    assert not results[1].ok
    assert "cannot re-create a variation" in (results[1].error or "")


@pytest.mark.usefixtures("keys")
def test_a_push_sends_ceil_n_over_100_requests_per_parent(tmp_path: Path) -> None:
    shop = WooShop()
    seed(shop, simple=250, variable=1, variations=120)
    with serve(shop.app) as server:
        rows = canonical_rows(shop)
        for row in rows.values():  # every price and every stock: two changes per record
            row["price"] = str(Decimal(row["price"]) + 1)
            row["stock"] = str(int(row["stock"]) + 1)
        config = write_project(tmp_path, server, rows)
        plan = str(tmp_path / "plan.json")
        assert cli("plan", "-c", str(config), "--at", AT, "--out", plan)[0] == 0
        code, out, err = cli("apply", plan, "-c", str(config), "--yes")
        assert code == 0, out + err
        assert "740" in out  # changes applied

        parent = shop.product("V0000")
        requests = {
            path: [items for p, items, _ in shop.batches if p == path]
            for path in ("products/batch", f"products/{parent['id']}/variations/batch")
        }
        assert {p: len(sizes) for p, sizes in requests.items()} == {
            "products/batch": math.ceil(250 / 100),
            f"products/{parent['id']}/variations/batch": math.ceil(120 / 100),
        }
        assert all(size <= 100 for sizes in requests.values() for size in sizes)
        assert [sum(sizes) for sizes in requests.values()] == [250, 120]  # one item per record
        assert server.requests[f"POST {PRODUCTS}/batch"] == 3


def test_a_store_with_a_lower_batch_limit_still_gets_every_change(
    server: Server, shop: WooShop
) -> None:
    shop.batch_limit = 8  # the woocommerce_rest_batch_items_limit filter
    connector = make_connector(server)
    changes = []
    for i in range(20):
        product = shop.product(f"S{i:05d}")
        before = {"amount": product["regular_price"], "currency": "EUR"}
        after = {"amount": "3.00", "currency": "EUR"}
        ids = {"product_id": str(product["id"])}
        changes.append(
            Change("webshop", product["sku"], Op.UPDATE, "price", None, before, after, ids=ids)
        )
    assert all(r.ok for r in connector.write(changes))
    changed = {c.sku for c in changes}
    assert all(p["regular_price"] == "3.00" for p in shop.sellable() if p["sku"] in changed)
    accepted = [items for _, items, status in shop.batches if status == 200]
    assert sum(accepted) == 20
    assert max(accepted) <= 8


# ------------------------------------------------------------------ incremental pulls


@pytest.mark.usefixtures("keys")
def test_an_incremental_pull_fetches_only_what_changed_and_a_full_one_sees_deletions(
    tmp_path: Path, shop: WooShop, server: Server
) -> None:
    config = write_project(tmp_path, server, canonical_rows(shop))
    assert findings(config) == set()  # the first pull is a full one
    assert not any("modified_after" in q for _, q, _ in shop.listings)

    simple, variation = shop.product("S00004"), shop.product("V0003-1")
    shop.update(simple["id"], {"regular_price": "1.00"})
    shop.update(variation["id"], {"stock_quantity": 77})  # saving it touches its parent
    shop.listings.clear()
    assert findings(config) == {("changed", "S00004", "price"), ("changed", "V0003-1", "stock")}
    product_lists = [(q, ids) for path, q, ids in shop.listings if path == "products"]
    pulls = [(q, ids) for q, ids in product_lists if q.get("per_page") == "100"]
    assert len(pulls) == 1  # one page, and no full listing
    query, ids = pulls[0]
    assert query["dates_are_gmt"] == "true"
    assert set(ids) == {simple["id"], variation["parent_id"]}
    variation_lists = [path for path, _, _ in shop.listings if path.endswith("/variations")]
    assert variation_lists == [f"products/{variation['parent_id']}/variations"]

    gone = shop.product("S00009")
    shop.delete(gone["id"])
    # "Modified since" cannot see a deletion: the cached catalogue still has it ...
    assert ("missing", "S00009", None) not in findings(config)
    # ... until the next full pull.
    assert ("missing", "S00009", None) in findings(config, "--full")


# ------------------------------------------------------------------ the emulator itself


def test_the_emulator_refuses_what_woocommerce_refuses(server: Server) -> None:
    with httpx.Client(base_url=server.url + "/wp-json/wc/v3", auth=(KEY, SECRET)) as client:
        too_many = client.get("/products", params={"per_page": 101})
        assert too_many.status_code == 400
        assert too_many.json()["code"] == "rest_invalid_param"
        assert client.get("/products").headers["X-WP-TotalPages"] == str(math.ceil(34 / 10))
        batch = client.post("/products/batch", json={"update": [{"id": 1}] * 101})
        assert batch.status_code == 413
        assert batch.json()["code"] == "woocommerce_rest_request_entity_too_large"
        view = client.get("/products", params={"sku": "S00001"}).json()[0]
        assert view["description"].startswith("<p>")
    anonymous = httpx.get(server.url + "/wp-json/wc/v3/products")
    assert (anonymous.status_code, anonymous.json()["code"]) == (
        401,
        "woocommerce_rest_cannot_view",
    )


def test_a_channel_without_keys_loads_but_says_which_options_to_set(server: Server) -> None:
    connector = make_connector(server, consumer_key="", consumer_secret=" ")
    with pytest.raises(
        ConnectorError, match=r"options\.consumer_key and options\.consumer_secret are empty"
    ):
        connector.check()


@pytest.mark.usefixtures("keys")
def test_lag_leaves_a_product_edited_a_moment_ago_out_and_says_so(
    tmp_path: Path, shop: WooShop, server: Server
) -> None:
    rows = canonical_rows(shop)
    config = write_project(tmp_path, server, rows)
    # An admin is editing two products right now (WooCommerce stamps date_modified_gmt);
    # S00008 changed long before the lag window and is reported.
    shop.update(shop.product("S00003")["id"], {"regular_price": "1.00"})
    shop.update(shop.product("S00004")["id"], {"name": "Typing…"})
    old = shop.now() - timedelta(hours=3)
    shop.update(shop.product("S00008")["id"], {"regular_price": "2.00"}, at=old)
    reported = {("changed", "S00003", "price"), ("changed", "S00004", "title")}
    stale = {("changed", "S00008", "price")}
    assert findings(config, "--no-history") == reported | stale

    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace(
            "      price: {sale: scheduled}\n", "      price: {sale: scheduled}\n      lag: 15m\n"
        ),
        encoding="utf-8",
    )
    code, out, err = cli("check", "-c", str(config), "--at", AT, "-f", "json", "--full")
    assert code == 1, out + err
    (webshop,) = json.loads(out)["channels"]
    assert {(f["kind"], f["sku"], f["field"]) for f in webshop["findings"]} == stale
    assert (
        "not compared: 2 SKUs the channel changed in the last 15m (expect.lag): S00003, S00004"
        in webshop["notes"]
    )

    # The incremental pull's cache keeps the times: the next (incremental) check agrees.
    code, out, _ = cli("check", "-c", str(config), "--at", AT, "-f", "json")
    code, out, _ = cli("check", "-c", str(config), "--at", AT, "-f", "json")
    (webshop,) = json.loads(out)["channels"]
    assert {(f["kind"], f["sku"], f["field"]) for f in webshop["findings"]} == stale
