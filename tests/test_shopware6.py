"""The shopware6 connector against the Shopware 6 Admin API emulator, served on 127.0.0.1:
paged parallel pulls with inheritance, the contract, the check → plan → apply → undo loop
through the CLI, tokens, bisection of rejected syncs, incremental pulls and deletions."""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from omnisync import secrets
from omnisync.cli import app
from omnisync.errors import ChangeRejected
from omnisync.models import Change, Field, Op
from omnisync.sdk.connector import ConnectorContext
from omnisync.sdk.testing import ConnectorContract
from omnisync.sdk.values import same
from omnisync.store import Store
from omnisync_connectors.shopware6 import records
from omnisync_connectors.shopware6.connector import Shopware6Connector
from omnisync_connectors.shopware6.records import Currency
from tests.emulators.server import Server, serve
from tests.emulators.shopware6 import (
    EUR,
    GERMAN,
    SYSTEM_LANGUAGE,
    TAX_7,
    TAX_19,
    USD,
    Shopware6Emulator,
    price_entry,
    seed,
)


@pytest.fixture
def emulator() -> Shopware6Emulator:
    return Shopware6Emulator()


@pytest.fixture
def server(emulator: Shopware6Emulator) -> Iterator[Server]:
    with serve(emulator.app) as running:
        yield running


def make(
    server: Server,
    emulator: Shopware6Emulator,
    *,
    store: Any = None,
    full: bool = False,
    **options: Any,
) -> Shopware6Connector:
    values = {
        "url": server.url,
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
        "currency": "EUR",
        **options,
    }
    parsed = Shopware6Connector.Options.model_validate(values)
    return Shopware6Connector(parsed, ConnectorContext("shop", store=store, full=full))


def tax_rate(emulator: Shopware6Emulator, product: dict[str, Any]) -> Decimal:
    """The product's VAT rate (a variant's tax is its parent's unless it has its own)."""
    tax = product["taxId"] or emulator.products[product["parentId"]]["taxId"]
    return Decimal(7) if tax == TAX_7 else Decimal(19)


def expected(emulator: Shopware6Emulator) -> dict[str, dict[str, str]]:
    """What the shop shows per sellable SKU, worked out from the emulator's raw state (variants
    inherit null fields from their parent; a higher list price makes the price a sale)."""
    rows = {}
    products = emulator.products
    for product in products.values():
        if product["childCount"]:
            continue
        parent = products.get(product["parentId"] or "")

        def inherited(key: str, product: dict[str, Any] = product, parent: Any = parent) -> Any:
            own = product[key]
            return own if own is not None or parent is None else parent[key]

        name = product["translations"][SYSTEM_LANGUAGE]["name"]
        if name is None and parent is not None:
            name = parent["translations"][SYSTEM_LANGUAGE]["name"]
        entry = next(e for e in inherited("price") if e["currencyId"] == EUR)
        gross = Decimal(repr(entry["gross"]))
        listed = entry.get("listPrice")
        regular = Decimal(repr(listed["gross"])) if listed else None
        on_sale = regular is not None and regular > gross
        rows[product["productNumber"]] = {
            "sku": product["productNumber"],
            "title": name,
            "gtin": inherited("ean"),
            "price": str(regular if on_sale else gross),
            "sale_price": str(gross) if on_sale else "",
            "stock": str(product["stock"]),
        }
    return rows


# ------------------------------------------------------------------ reading


def test_pull_reads_thousands_of_variants_over_parallel_pages(
    emulator: Shopware6Emulator, server: Server
) -> None:
    skus = seed(emulator, parents=600, variants=5, simple=100)
    connector = make(server, emulator, page_size=250, concurrency=4)
    pulled = {r.sku: r for r in connector.read()}

    assert len(pulled) == len(skus) == 3100  # the 600 containers are not records
    shown = expected(emulator)
    assert {
        sku: (
            r.title,
            r.gtin.lstrip("0") if r.gtin else None,
            str(r.price.amount) if r.price else None,
            str(r.sale_price.amount) if r.sale_price else "",
            str(r.stock["default"]) if r.stock else None,
        )
        for sku, r in pulled.items()
    } == {
        sku: (row["title"], row["gtin"].lstrip("0"), row["price"], row["sale_price"], row["stock"])
        for sku, row in shown.items()
    }
    variant = emulator.by_number("SW-P00007-1")
    assert pulled["SW-P00007-1"].ids == {
        "product_id": variant["id"],
        "parent_id": variant["parentId"],
    }
    assert any(r.sale_price for r in pulled.values())
    # One token, the currency, and every page exactly once: ceil(3700 rows / 250) = 15.
    rows = len(emulator.products)
    assert server.requests["POST /api/search/product"] == math.ceil(rows / 250)
    assert server.requests["POST /api/oauth/token"] == 1
    assert server.requests["POST /api/search/currency"] == 1


def test_products_added_during_a_pull_shift_no_row_out_or_in_twice(
    emulator: Shopware6Emulator, server: Server
) -> None:
    skus = seed(emulator, simple=100)

    def insert(search: int) -> None:
        if search == 3:  # between pages 2 and 3: ids that sort first push every row back
            for n in range(4):
                emulator.add(
                    f"NEW-{n}",
                    name="neu",
                    price=[price_entry(1.0)],
                    stock=1,
                    product_id=f"{n:032x}",
                )

    emulator.on_product_search = insert
    pulled = [r.sku for r in make(server, emulator, page_size=10, concurrency=1).read()]
    assert len(pulled) == len(set(pulled))  # the rows pushed onto later pages come once
    assert set(skus) <= set(pulled)  # and the tail pushed past the last page is read too
    assert server.requests["POST /api/search/product"] == 11  # 10 pages + the spilled one


def test_language_falls_back_to_the_translated_value(
    emulator: Shopware6Emulator, server: Server
) -> None:
    emulator.add(
        "SW-DE",
        name="Shirt",
        price=[price_entry(10.0)],
        stock=1,
        translations={GERMAN: {"name": None, "description": "<p>Hemd</p>"}},
    )
    [record] = make(server, emulator, language_id=GERMAN).read()
    assert (record.title, record.description) == ("Shirt", "Hemd")  # HTML read as its text


class TestShopware6Contract(ConnectorContract):
    @pytest.fixture
    def connector(self, emulator: Shopware6Emulator, server: Server) -> Shopware6Connector:
        seed(emulator, parents=2, variants=2, simple=3)
        return make(server, emulator)


# ------------------------------------------------------------------ targeted reads (watch)


def test_reading_some_skus_filters_by_product_number(
    emulator: Shopware6Emulator, server: Server
) -> None:
    seed(emulator, parents=2, variants=3, simple=4)
    connector = make(server, emulator)
    everything = {r.sku: r for r in connector.read()}
    searched = server.requests["POST /api/search/product"]
    # A container's number names no record; a variant inherits its parent's fields.
    found = list(connector.read_skus(["SW-P00001", "SW-P00001-2", "SW-00003", "NOPE"]))
    assert [r.sku for r in found] == ["SW-00003", "SW-P00001-2"]
    assert found[1] == replace(everything["SW-P00001-2"], origin=found[1].origin, modified_at=None)
    assert server.requests["POST /api/search/product"] == searched + 1


def test_primary_keys_of_a_webhook_are_resolved_to_skus(
    emulator: Shopware6Emulator, server: Server
) -> None:
    seed(emulator, parents=2, variants=3, simple=4)
    connector = make(server, emulator)
    simple = emulator.by_number("SW-00001")["id"]
    variant = emulator.by_number("SW-P00000-1")["id"]
    parent = emulator.by_number("SW-P00001")["id"]
    refs = {"product_id": [simple, variant.upper(), parent, "0" * 32, "not-an-id"]}
    # A parent's write is its variants' (they inherit it).
    assert connector.find_skus(refs) == {
        "SW-00001",
        "SW-P00000-1",
        "SW-P00001-0",
        "SW-P00001-1",
        "SW-P00001-2",
    }
    assert connector.find_skus({"product_id": ["0" * 32]}) == set()


# ------------------------------------------------------------------ the loop through the CLI

CONFIG = """\
settings: {{state: state.db}}
canonical:
  connector: csv
  prices: gross
  options:
    path: erp.csv
    currency: EUR
    mapping: {{sku: sku, title: title, gtin: gtin, price: price, sale_price: sale_price, stock: stock}}
channels:
  shop:
    connector: shopware6
    options:
      url: {url}
      client_id: {client_id}
      client_secret: ${{SW_SECRET}}
      currency: EUR
      page_size: 20
      max_wait: 1
    expect:
      price: {{shows: gross}}
    push:
      fields: [title, gtin, price, sale_price, stock]
"""


def cli(*args: str, secret: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, list(args), catch_exceptions=False, env={"COLUMNS": "200", "SW_SECRET": secret}
    )
    return result.exit_code, result.stdout, result.stderr


def project(tmp_path: Path, server: Server, emulator: Shopware6Emulator) -> Path:
    config = tmp_path / "omnisync.yaml"
    config.write_text(CONFIG.format(url=server.url, client_id=emulator.client_id))
    with (tmp_path / "erp.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["sku", "title", "gtin", "price", "sale_price", "stock"])
        writer.writeheader()
        writer.writerows(expected(emulator).values())
    return config


def findings(config: Path, secret: str) -> set[tuple[str, str, str | None]]:
    code, out, err = cli("check", "-c", str(config), "-f", "json", secret=secret)
    assert code in (0, 1), out + err
    return {
        (f["kind"], f["sku"], f["field"])
        for c in json.loads(out)["channels"]
        for f in c["findings"]
    }


def plant(emulator: Shopware6Emulator) -> set[tuple[str, str, str | None]]:
    """Drift the shop away from the ERP in every pushable field; the findings to expect."""
    on_sale = next(
        p
        for p in emulator.products.values()
        if not p["parentId"]
        and not p["childCount"]
        and p["price"][0].get("listPrice")
        and p["productNumber"] not in ("SW-00000", "SW-00002", "SW-00003", "SW-00004")
    )
    own_price = next(
        p
        for p in emulator.products.values()
        if p["parentId"] and p["price"] is not None and not p["price"][0].get("listPrice")
    )
    simple = next(
        p
        for p in emulator.products.values()
        if not p["parentId"] and not p["childCount"] and not p["price"][0].get("listPrice")
    )
    for product in (simple, own_price):
        gross = round(product["price"][0]["gross"] * 1.2, 2)
        emulator.update(
            product["productNumber"],
            price=[price_entry(gross, tax=tax_rate(emulator, product)), *product["price"][1:]],
        )
    emulator.update("SW-00002", stock=emulator.by_number("SW-00002")["stock"] + 7)
    emulator.update("SW-00003", name="Artikel 3 (alt)")
    emulator.update("SW-00004", ean="4000000000017")
    # The sale ended in the shop: the list price became the price again.
    regular = on_sale["price"][0]["listPrice"]["gross"]
    emulator.update(
        on_sale["productNumber"],
        price=[price_entry(regular, tax=tax_rate(emulator, on_sale)), *on_sale["price"][1:]],
    )
    return {
        ("changed", simple["productNumber"], "price"),
        ("changed", own_price["productNumber"], "price"),
        ("changed", "SW-00002", "stock"),
        ("changed", "SW-00003", "title"),
        ("changed", "SW-00004", "gtin"),
        ("changed", on_sale["productNumber"], "sale_price"),
    }


def test_check_plan_apply_check_undo_through_the_cli(
    tmp_path: Path, emulator: Shopware6Emulator, server: Server
) -> None:
    seed(emulator, parents=8, variants=3, simple=30)
    config = project(tmp_path, server, emulator)
    secret = emulator.client_secret
    assert findings(config, secret) == set()

    planted = plant(emulator)
    skus = {sku for _, sku, _ in planted}
    drifted = {sku: emulator.raw(sku) for sku in skus}
    assert findings(config, secret) == planted

    plan = tmp_path / "plan.json"
    code, _, err = cli("plan", "-c", str(config), "--out", str(plan), secret=secret)
    assert code == 0, err
    code, out, _ = cli("apply", str(plan), "-c", str(config), "--dry-run", secret=secret)
    assert code == 0
    assert '"action": "upsert"' in out
    assert "batch 1 of 1" in out
    assert {sku: emulator.raw(sku) for sku in skus} == drifted  # a dry run sends nothing

    code, out, err = cli("apply", str(plan), "-c", str(config), "--yes", secret=secret)
    assert code == 0, out + err
    assert findings(config, secret) == set()
    for sku in skus:
        fixed, before = emulator.raw(sku), drifted[sku]
        if before["price"]:  # other currencies' entries are kept as they were
            assert [e for e in fixed["price"] if e["currencyId"] == USD] == [
                e for e in before["price"] if e["currencyId"] == USD
            ]
        if before["parentId"] and before["price"] is None:
            assert fixed["price"] is None  # an inherited price is not touched by other fields

    code, out, err = cli("undo", "last", "-c", str(config), "--yes", secret=secret)
    assert code == 0, out + err
    for sku in skus:  # read back straight from the shop's state
        restored, before = emulator.raw(sku), drifted[sku]
        keys = ("price", "stock", "ean", "translations", "taxId", "parentId")
        assert {k: restored[k] for k in keys} == {k: before[k] for k in keys}, sku
    assert findings(config, secret) == planted


def test_rejected_credentials_exit_3_naming_the_channel_never_the_secret(
    tmp_path: Path, emulator: Shopware6Emulator, server: Server
) -> None:
    secrets.forget_all()  # a secret another test registered ("secret") would mask our words
    seed(emulator, simple=3)
    config = project(tmp_path, server, emulator)
    wrong = "definitely-not-the-secret-8c1f"
    code, out, err = cli("check", "-c", str(config), "--no-history", secret=wrong)
    assert code == 3
    text = out + err
    assert "shop" in text
    assert "client_secret" in text
    assert "Integrations" in text
    assert wrong not in text
    assert emulator.client_secret not in text


# ------------------------------------------------------------------ tokens


def test_a_token_expiring_mid_pull_is_renewed_and_the_pull_continues() -> None:
    # The token dies after 0.25 s although `expires_in` says 600: only a 401 tells.
    emulator = Shopware6Emulator(token_ttl=0.25, advertised_ttl=600)
    seed(emulator, simple=300)
    with serve(emulator.app, latency=0.03) as server:
        connector = make(server, emulator, page_size=10, concurrency=2)
        pulled = [r.sku for r in connector.read()]
    assert len(set(pulled)) == 300
    assert emulator.stats["token_rejected"] >= 1
    assert emulator.stats["tokens"] == connector.api.tokens >= 2


def test_a_token_is_renewed_before_it_expires(emulator: Shopware6Emulator, server: Server) -> None:
    seed(emulator, simple=5)
    connector = make(server, emulator)
    now = [1000.0]
    connector.api.clock = lambda: now[0]
    assert len(list(connector.read())) == 5
    now[0] += 560  # 40 s before the 600 s run out: inside the renewal margin
    assert len(list(connector.read())) == 5
    assert emulator.stats["tokens"] == 2
    assert emulator.stats["token_rejected"] == 0


# ------------------------------------------------------------------ writes


@pytest.mark.parametrize("bad", ["SW-00003", "SW-00023", "SW-00039"])
@pytest.mark.parametrize("pointers", [True, False], ids=["pointers", "no-pointers"])
def test_a_rejected_record_is_isolated_by_bisection_and_the_rest_applied(
    bad: str, pointers: bool
) -> None:
    emulator = Shopware6Emulator(error_pointers=pointers)
    skus = seed(emulator, simple=40)
    with serve(emulator.app) as server:
        connector = make(server, emulator)
        products = {r.sku: r for r in connector.read()}
        check_bisection(emulator, connector, products, skus, bad, pointers)


def check_bisection(
    emulator: Shopware6Emulator,
    connector: Shopware6Connector,
    products: dict[str, Any],
    skus: list[str],
    bad: str,
    pointers: bool,
) -> None:
    changes = [
        Change("shop", sku, Op.UPDATE, "stock", None, 0, 1000 + n, ids=products[sku].ids)
        for n, sku in enumerate(skus)
        if sku != bad
    ]
    at = skus.index(bad)
    changes.insert(
        at, Change("shop", bad, Op.UPDATE, "title", None, "x", "T" * 300, ids=products[bad].ids)
    )

    results = connector.write(changes)

    assert [r.key for r in results] == [c.key for c in changes]
    assert [r.key for r in results if not r.ok] == [f"{bad}:title"]
    message = next(r.error for r in results if not r.ok)
    assert "too long" in message
    assert "FRAMEWORK__WRITE_CONSTRAINT_VIOLATION" in message
    if pointers:  # Shopware's pointer into the request that isolated it
        assert re.search(r"at /0/payload/\d+/name\)", message)
    for n, sku in enumerate(skus):
        if sku != bad:
            assert emulator.by_number(sku)["stock"] == 1000 + n
    assert emulator.by_number(bad)["translations"][SYSTEM_LANGUAGE]["name"] == f"Artikel {at}"
    # One rejected sync, then log2(40) ≈ 5.3 halvings of one request each when the pointers
    # say which half to suspect, of one or two when they do not.
    extra = connector.sync_requests - 1
    depth = math.ceil(math.log2(40))
    assert extra <= (depth if pointers else 2 * depth)
    assert extra >= depth - 1


def test_writes_go_in_sync_batches_and_refuse_what_shopware_cannot_show(
    emulator: Shopware6Emulator, server: Server
) -> None:
    skus = seed(emulator, simple=25)
    connector = make(server, emulator, sync_batch=10)
    assert connector.capabilities.max_batch == 10
    products = {r.sku: r for r in connector.read()}
    changes = [
        Change("shop", sku, Op.UPDATE, "stock", None, 0, 5, ids=products[sku].ids) for sku in skus
    ]
    changes.append(Change("shop", "SW-00001", Op.UPDATE, "stock", "berlin", 0, 5))
    changes.append(Change("shop", "NEW-1", Op.CREATE, after={"sku": "NEW-1"}))
    results = connector.write(changes)
    assert all(r.ok for r in results[:25])
    assert "one stock per product" in (results[25].error or "")
    assert "does not create" in (results[26].error or "")
    assert connector.sync_requests == emulator.stats["sync_applied"] == 3  # ceil(25 / 10)


def test_a_price_write_reuses_the_read_the_push_pipeline_just_made(
    emulator: Shopware6Emulator, server: Server
) -> None:
    seed(emulator, simple=5)
    connector = make(server, emulator)

    def changes(add: str) -> list[Change]:
        return [
            Change(
                "shop",
                r.sku,
                Op.UPDATE,
                "price",
                None,
                money(r.price),
                money(r.price, add),
                ids=r.ids,
            )
            for r in connector.read()
        ]

    def money(price: Any, add: str = "0") -> dict[str, str]:
        return {"amount": str(price.amount + Decimal(add)), "currency": "EUR"}

    batch = changes("1.50")
    server.requests.clear()
    connector.current(batch)  # what the pipeline does before each batch
    assert all(r.ok for r in connector.write(batch))
    assert server.requests["POST /api/search/product"] == 1  # the arrays were not read twice
    again = changes("1.00")
    server.requests.clear()
    assert all(r.ok for r in connector.write(again))  # no current() first: read, then write
    assert server.requests["POST /api/search/product"] == 1
    current = connector.current(again)
    assert all(same("price", current[c.key], c.after) for c in again)


EURO = Currency(EUR, "EUR")


def eur(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "EUR"}


def test_price_writes_derive_net_keep_other_currencies_and_model_sales_as_list_prices() -> None:
    usd = price_entry(11.7, currency=USD, tax=Decimal(7))
    product = {"taxId": TAX_7, "price": [price_entry(10.0, tax=Decimal(7)), usd]}
    rates = {TAX_7: Decimal(7), TAX_19: Decimal(19)}

    def write(money: dict[Field, Any]) -> list[dict[str, Any]]:
        return records.price_array(product, money, EURO, "gross", rates)

    on_sale = write({Field.PRICE: eur("24.99"), Field.SALE_PRICE: eur("19.99")})
    assert on_sale == [
        {
            "currencyId": EUR,
            "gross": 19.99,
            "net": 18.68,
            "linked": True,
            "listPrice": {"gross": 24.99, "net": 23.36, "linked": True},
        },
        usd,
    ]
    product["price"] = on_sale
    assert write({Field.SALE_PRICE: None})[0] == {
        "currencyId": EUR,
        "gross": 24.99,
        "net": 23.36,
        "linked": True,
    }
    assert write({Field.PRICE: eur("29.99")})[0]["listPrice"]["gross"] == 29.99
    with pytest.raises(ChangeRejected, match="not below the regular price"):
        write({Field.SALE_PRICE: eur("30")})
    with pytest.raises(ChangeRejected, match="in USD"):
        write({Field.PRICE: {"amount": "5", "currency": "USD"}})
    plain = {"taxId": TAX_7, "price": [price_entry(5.0, tax=Decimal(7))]}
    net = records.price_array(plain, {Field.PRICE: eur("10.00")}, EURO, "net", rates)
    assert (net[0]["net"], net[0]["gross"]) == (10.0, 10.7)


def test_floats_gtins_and_error_pointers_cross_the_boundary_exactly() -> None:
    assert records.amount(0.1 + 0.2) == Decimal("0.30000000000000004")
    assert records.amount(19.99) == Decimal("19.99")
    assert records.amount(20) == Decimal(20)
    assert records.ean("04006381333931") == "4006381333931"
    assert records.ean("00012345678905") == "012345678905"  # UPC-A
    assert records.ean("00000096385074") == "96385074"  # GTIN-8
    assert records.ean("not-a-gtin") == "not-a-gtin"
    assert records.record_index("/0/payload/3/price") == 3
    assert records.record_index("/omnisync-product/7/stock") == 7
    assert records.record_index("/2/name") == 2
    assert records.record_index(None) is None


# ------------------------------------------------------------------ incremental pulls


def test_an_incremental_pull_fetches_only_what_changed(
    tmp_path: Path, emulator: Shopware6Emulator, server: Server
) -> None:
    seed(emulator, parents=10, variants=4, simple=60)
    with Store.open("state.db", base_dir=tmp_path) as store:
        first = {r.sku: r for r in make(server, emulator, store=store).read()}
        assert len(first) == 100
        rows = emulator.stats["product_rows"]
        assert rows == len(emulator.products)

        emulator.update("SW-00005", stock=999)
        emulator.update("SW-00006", name="Neu")
        parent = emulator.by_number("SW-P00000")
        emulator.update("SW-P00000", price=[price_entry(77.77), *parent["price"][1:]])

        second = {r.sku: r for r in make(server, emulator, store=store).read()}
        fetched = emulator.stats["product_rows"] - rows
    assert len(second) == 100
    assert second["SW-00005"].stock == {"default": 999}
    assert second["SW-00006"].title == "Neu"
    inheriting = [
        p["productNumber"]
        for p in emulator.products.values()
        if p["parentId"] == parent["id"] and p["price"] is None
    ]
    assert inheriting
    for sku in inheriting:  # the parent's new price reached the variants that inherit it
        assert second[sku].price is not None
        assert second[sku].price.amount == Decimal("77.77")
    # The three changed products, the one at the high-water mark itself (`gte`), and the
    # parent's four variants: 8 of 110 rows.
    assert fetched == 3 + 1 + 4


def test_a_full_pull_drops_deleted_products(
    tmp_path: Path, emulator: Shopware6Emulator, server: Server
) -> None:
    seed(emulator, parents=2, variants=2, simple=6)
    with Store.open("state.db", base_dir=tmp_path) as store:
        assert len(list(make(server, emulator, store=store).read())) == 10
        emulator.delete("SW-00002")
        emulator.delete("SW-P00001")  # with its variants
        # An "updated since" filter cannot see a deletion; the cached catalogue still has them.
        assert len(list(make(server, emulator, store=store).read())) == 10
        pulled = {r.sku for r in make(server, emulator, store=store, full=True).read()}
        assert len(pulled) == 7
        assert "SW-00002" not in pulled
        assert "SW-P00001-0" not in pulled
        # ... and the cache forgot them too.
        assert {r.sku for r in make(server, emulator, store=store).read()} == pulled


# ------------------------------------------------------------------ the emulator itself


def test_the_emulator_behaves_as_shopware_documents(
    emulator: Shopware6Emulator, server: Server
) -> None:
    seed(emulator, simple=25)
    http = httpx.Client(base_url=server.url)
    credentials = {
        "grant_type": "client_credentials",
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
    }
    token = http.post("/api/oauth/token", json=credentials).json()
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 600
    headers = {"Authorization": f"Bearer {token['access_token']}", "Accept": "application/json"}

    def search(body: dict[str, Any], **extra: str) -> httpx.Response:
        return http.post("/api/search/product", json=body, headers={**headers, **extra})

    assert search({"limit": 10}).json()["total"] == 10  # mode 0: rows returned
    assert search({"limit": 10, "total-count-mode": 1}).json()["total"] == 25
    assert search({"limit": 2, "total-count-mode": 2}).json()["total"] == 13  # 6 pages + 1
    assert search({"limit": 10, "page": 3, "total-count-mode": 1}).json()["total"] == 25
    assert len(search({"limit": 10, "page": 3}).json()["data"]) == 5
    assert search({}, Accept="application/vnd.api+json").status_code == 406
    assert http.post("/api/search/product", json={}).status_code == 401

    sku = emulator.by_number("SW-00004")
    bad = [
        {
            "key": "write",
            "action": "upsert",
            "entity": "product",
            "payload": [
                {"id": emulator.by_number("SW-00003")["id"], "stock": 1},
                {
                    "id": sku["id"],
                    "stock": 2,
                    "price": [{"currencyId": USD, "gross": 1, "net": 1, "linked": True}],
                },
            ],
        }
    ]
    answer = http.post("/api/_action/sync", json=bad, headers=headers)
    assert answer.status_code == 400
    [problem] = answer.json()["errors"]
    assert problem["source"]["pointer"] == "/0/payload/1/price"
    assert emulator.by_number("SW-00003")["stock"] != 1  # all or nothing

    limited = Shopware6Emulator(oauth_limit=(3, 10.0))
    with serve(limited.app) as other:
        codes = [
            httpx.post(
                f"{other.url}/api/oauth/token",
                json=credentials
                | {"client_id": limited.client_id, "client_secret": limited.client_secret},
            )
            for _ in range(4)
        ]
    assert [c.status_code for c in codes] == [200, 200, 200, 429]
    [throttled] = codes[3].json()["errors"]
    assert throttled["code"] == "FRAMEWORK__RATE_LIMIT_EXCEEDED"
    assert throttled["meta"]["parameters"]["seconds"] == int(codes[3].headers["Retry-After"])
