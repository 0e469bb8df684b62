"""The google_merchant connector against the Merchant API emulator, served on 127.0.0.1: the
service account's signed token, paged pulls with local inventories per store, micros and
sale windows, HTTP batches and quota errors, the contract, the update limit through the
planner, and the check → plan → apply → check → undo loop through the CLI."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from omnisync import secrets
from omnisync.cli import app
from omnisync.errors import ChangeRejected
from omnisync.models import Change, Op
from omnisync.sdk.connector import ConnectorContext
from omnisync.sdk.testing import ConnectorContract
from omnisync_connectors.google_merchant import records
from omnisync_connectors.google_merchant.connector import GoogleMerchantConnector
from tests.emulators.google_merchant import GoogleMerchantEmulator, micros, seed
from tests.emulators.server import Server, serve

STORES = ("berlin", "hamburg")


@pytest.fixture
def emulator() -> GoogleMerchantEmulator:
    return GoogleMerchantEmulator(processing_delay=0.05)


@pytest.fixture
def server(emulator: GoogleMerchantEmulator) -> Iterator[Server]:
    with serve(emulator.app) as running:
        yield running


def make(
    server: Server, emulator: GoogleMerchantEmulator, **options: Any
) -> GoogleMerchantConnector:
    values = {
        "url": server.url,
        "account": emulator.account,
        "key": emulator.key_json(server.url),
        "content_language": "de",
        "feed_label": "DE",
        "data_source": emulator.data_source_id,
        "max_wait": 0.05,
        **options,
    }
    parsed = GoogleMerchantConnector.Options.model_validate(values)
    return GoogleMerchantConnector(parsed, ConnectorContext("google"))


def eur(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "EUR"}


# ------------------------------------------------------------------ reading


def test_a_pull_pages_by_token_and_reads_each_store(
    emulator: GoogleMerchantEmulator, server: Server
) -> None:
    skus = seed(emulator, 2500, stores=STORES)
    emulator.put("OTHER-1", {"title": "x"}, language="en", label="GB")  # another feed's product
    connector = make(server, emulator, stores="all", batch_size=100)
    pulled = {r.sku: r for r in connector.read()}

    assert sorted(pulled) == skus
    # ceil(2501 / 1000) pages one after another; 2500 products' inventories, 100 a batch.
    assert server.requests["GET /products/v1/accounts/123456789/products"] == 3
    assert server.requests["POST /batch/inventories/v1"] == 25
    assert server.requests["POST /token"] == 1
    record = pulled["GM-00004"]
    assert record.price is not None
    assert record.price.amount == Decimal("14.48")
    assert record.gtin == "04000000000044"
    assert record.brand == "Acme"
    assert record.stock == {"berlin": 4, "hamburg": 7}
    # Only stores stating a price of their own carry one (the others show the online price).
    assert record.location_prices is not None
    assert set(record.location_prices) == {"berlin"}
    assert record.ids == {"name": "accounts/123456789/products/de~DE~GM-00004"}
    only = make(server, emulator, stores=["hamburg"])
    assert next(r for r in only.read() if r.sku == "GM-00004").stock == {"hamburg": 7}
    online = make(server, emulator)
    assert next(iter(online.read())).stock is None  # no stores asked for: none read


def test_amounts_are_micros_exactly_never_floats() -> None:
    assert records.micros("19990000") == Decimal("19.99")
    assert records.micros("1") == Decimal("0.000001")
    assert records.micros(123456789012) == Decimal("123456.789012")
    with pytest.raises(ValueError, match="not an integer"):
        records.micros(15.99)
    with pytest.raises(ValueError, match="not an integer"):
        records.micros("15.99")
    assert records.price_out(eur("19.99"), "price") == {
        "amountMicros": "19990000",
        "currencyCode": "EUR",
    }
    assert records.price_out(eur("0.000001"), "price") == {
        "amountMicros": "1",
        "currencyCode": "EUR",
    }
    with pytest.raises(ChangeRejected, match="more decimals than micros"):
        records.price_out(eur("1.0000001"), "price")
    assert micros("12.99") == "12990000"


def test_sale_windows_read_and_write_as_rfc3339_intervals() -> None:
    product = {
        "offerId": "S-1",
        "productAttributes": {
            "price": {"amountMicros": "20000000", "currencyCode": "EUR"},
            "salePrice": {"amountMicros": "15000000", "currencyCode": "EUR"},
            "salePriceEffectiveDate": {
                "startTime": "2026-11-01T00:00:00.123456789Z",
                "endTime": "2026-11-30T23:59:59+01:00",
            },
        },
    }
    record = records.to_record(product, "test")
    assert record.sale_price is not None
    assert record.sale_price.amount == Decimal(15)
    assert record.sale_start == datetime(2026, 11, 1, 0, 0, 0, 123456, tzinfo=UTC)
    assert record.sale_end == datetime(2026, 11, 30, 22, 59, 59, tzinfo=UTC)
    sale = {**eur("15"), "start": "2026-11-01T00:00:00+00:00", "end": "2026-11-30T22:59:59+00:00"}
    assert records.attributes_for(records.Field.SALE_PRICE, sale) == {
        "salePrice": {"amountMicros": "15000000", "currencyCode": "EUR"},
        "salePriceEffectiveDate": {
            "startTime": "2026-11-01T00:00:00Z",
            "endTime": "2026-11-30T22:59:59Z",
        },
    }
    with pytest.raises(ChangeRejected, match="both a start and an end"):
        records.attributes_for(records.Field.SALE_PRICE, {**eur("15"), "start": sale["start"]})
    assert records.attributes_for(records.Field.SALE_PRICE, None) == {}  # cleared via the mask


def test_product_names_use_base64url_when_an_offer_id_needs_it() -> None:
    assert records.product_id("en", "US", "sku123") == "en~US~sku123"
    # Unpadded base64url of "en~US~sku/123" (Google's own example encodes "en~US-sku/123").
    assert records.product_id("en", "US", "sku/123") == "ZW5-VVN-c2t1LzEyMw"
    assert records.offer_of("accounts/1/products/ZW5-VVN-c2t1LzEyMw") == "sku/123"
    assert records.offer_of("accounts/1/products/de~DE~A-1") == "A-1"


class TestGoogleMerchantContract(ConnectorContract):
    @pytest.fixture
    def connector(
        self, emulator: GoogleMerchantEmulator, server: Server
    ) -> GoogleMerchantConnector:
        seed(emulator, 6, stores=STORES)
        return make(server, emulator, stores="all")


# ------------------------------------------------------------------ tokens


def test_a_token_is_renewed_before_it_expires_and_once_on_a_401(
    emulator: GoogleMerchantEmulator, server: Server
) -> None:
    seed(emulator, 5)
    connector = make(server, emulator)
    now = [1_000_000.0]
    connector.api.clock = lambda: now[0]
    assert len(list(connector.read())) == 5
    now[0] += 3560  # 40 s before the hour runs out: inside the renewal margin
    assert len(list(connector.read())) == 5
    assert emulator.stats["tokens"] == connector.api.tokens == 2
    emulator.expire_tokens()  # revoked early: only the 401 tells
    assert len(list(connector.read())) == 5
    assert emulator.stats["tokens"] == 3
    assert emulator.stats["token_rejected"] == 1


def test_the_token_request_is_a_signed_jwt_the_emulator_verifies(
    emulator: GoogleMerchantEmulator, server: Server
) -> None:
    # Another service account: the signature does not match.
    other = GoogleMerchantEmulator(fresh_key=True)
    http = httpx.Client(base_url=server.url)
    good = make(server, emulator).api.key.assertion(datetime.now(UTC).timestamp())
    form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": good}
    answer = http.post("/token", data=form).json()
    assert answer["token_type"] == "Bearer"
    assert answer["expires_in"] == 3600
    forged = make(server, other).api.key
    bad = http.post("/token", data={**form, "assertion": forged.assertion(1e9 * 2)})
    assert bad.status_code == 400
    assert bad.json() == {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
    headers = {"Authorization": "Bearer nope"}
    unauthenticated = http.get(
        f"/products/v1/accounts/{emulator.account}/products", headers=headers
    )
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"]["status"] == "UNAUTHENTICATED"


# ------------------------------------------------------------------ writes


def test_writes_go_in_http_batches_per_sub_api_with_googles_message_per_change(
    emulator: GoogleMerchantEmulator, server: Server
) -> None:
    skus = seed(emulator, 25, stores=STORES)
    connector = make(server, emulator, stores="all", batch_size=10)
    assert connector.capabilities.max_batch == 10
    changes = [Change("google", sku, Op.UPDATE, "price", None, None, eur("5.55")) for sku in skus]
    changes += [
        Change("google", "GM-00001", Op.UPDATE, "stock", "berlin", None, 9),
        Change("google", "GM-00002", Op.UPDATE, "title", None, None, "T" * 151),
        Change("google", "GM-00003", Op.UPDATE, "price", "hamburg", None, eur("5.55")),
        Change("google", "GM-00004", Op.DELETE, before={"sku": "GM-00004"}),
    ]
    server.requests.clear()
    results = connector.write(changes)
    # GM-00002's price and title are one patch of its product input: they fail together.
    failed = {r.key: r.error or "" for r in results if not r.ok}
    assert set(failed) == {"GM-00002:price", "GM-00002:title", "GM-00004:-"}
    assert "title] is too long" in failed["GM-00002:price"]
    assert "INVALID_ARGUMENT" in failed["GM-00002:title"]
    assert "does not delete" in failed["GM-00004:-"]
    # ceil(26 product inputs / 10) batches, and one for the two local inventories.
    assert connector.api.batches["products"] >= 3
    assert emulator.stats["inputs_written"] == 24
    assert emulator.settled()
    assert emulator.attributes("GM-00007")["price"] == {
        "amountMicros": "5550000",
        "currencyCode": "EUR",
    }
    berlin = emulator.store("GM-00001", "berlin")
    assert berlin["quantity"] == "9"
    assert berlin["availability"] == "IN_STOCK"
    assert emulator.store("GM-00003", "hamburg")["price"]["amountMicros"] == "5550000"


def test_a_patch_names_only_the_changed_attributes_and_clears_a_sale(
    emulator: GoogleMerchantEmulator, server: Server
) -> None:
    seed(emulator, 5)
    connector = make(server, emulator)
    on_sale = emulator.attributes("GM-00003")
    assert "salePrice" in on_sale
    results = connector.write(
        [Change("google", "GM-00003", Op.UPDATE, "sale_price", None, None, None)]
    )
    assert results[0].ok
    after = emulator.attributes("GM-00003")
    assert "salePrice" not in after
    assert "salePriceEffectiveDate" not in after
    assert after["title"] == on_sale["title"]  # not in the mask: untouched
    [preview] = connector.preview(
        [Change("google", "GM-00001", Op.UPDATE, "title", None, None, "Neu")]
    )
    assert "updateMask=productAttributes.title" in preview["send"]["path"]
    assert preview["send"]["method"] == "PATCH"


def test_quota_errors_are_retried_whole_and_per_nested_request(
    emulator: GoogleMerchantEmulator, server: Server
) -> None:
    seed(emulator, 12)
    connector = make(server, emulator, page_size=5)
    emulator.throttle(2)  # two pages answered 429 RESOURCE_EXHAUSTED, then served
    assert len(list(connector.read())) == 12
    emulator.throttle(3, nested=True)
    changes = [
        Change("google", f"GM-{n:05d}", Op.UPDATE, "title", None, None, f"Neu {n}")
        for n in range(8)
    ]
    assert all(r.ok for r in connector.write(changes))
    assert emulator.stats["throttled"] == 5
    assert emulator.attributes("GM-00007")["title"] == "Neu 7"


def test_the_emulator_answers_as_the_merchant_api_documents(
    emulator: GoogleMerchantEmulator, server: Server
) -> None:
    seed(emulator, 30)
    connector = make(server, emulator)
    headers = {"Authorization": f"Bearer {connector.api.token()}"}
    http = httpx.Client(base_url=server.url, headers=headers)
    path = f"/products/v1/accounts/{emulator.account}/products"
    assert len(http.get(path).json()["products"]) == 25  # the default page size
    first = http.get(path, params={"pageSize": 20}).json()
    assert len(first["products"]) == 20
    assert first["nextPageToken"]
    last = http.get(path, params={"pageSize": 20, "pageToken": first["nextPageToken"]}).json()
    assert len(last["products"]) == 10
    assert "nextPageToken" not in last
    mismatch = http.get(path, params={"pageSize": 5, "pageToken": first["nextPageToken"]})
    assert mismatch.status_code == 400
    assert mismatch.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert http.get(f"{path}/de~DE~NOPE").json()["error"]["code"] == 404
    assert http.get("/products/v1/accounts/999/products").status_code == 403
    # An input shows in products only once Google has processed it.
    slow = GoogleMerchantEmulator(processing_delay=60)
    slow.put("A", {"title": "old", "price": {"amountMicros": "1000000", "currencyCode": "EUR"}})
    status, _ = slow.handle(
        "PATCH",
        f"/products/v1/accounts/{slow.account}/productInputs/de~DE~A",
        f"dataSource={slow.data_source}&updateMask=productAttributes.title",
        json.dumps({"productAttributes": {"title": "new"}}).encode(),
    )
    assert status == 200
    assert slow.attributes("A")["title"] == "old"
    assert not slow.settled()


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
      brand: brand
      gtin: gtin
      price: price
      sale_price: sale_price
      sale_start: sale_start
      sale_end: sale_end
      stock: {{berlin: stock_berlin, hamburg: stock_hamburg}}
channels:
  google:
    connector: google_merchant
    options:
      url: {url}
      account: "{account}"
      key: ${{file:key.json}}
      content_language: de
      feed_label: DE
      data_source: "{source}"
      stores: all
      page_size: 20
      max_wait: 0.05
    expect:
      check: [title, description, brand, gtin, price, sale_price, stock]
      price: {{shows: gross, sale: scheduled}}
      stock: {{locations: {{berlin: [berlin], hamburg: [hamburg]}}}}
    push:
      fields: [title, gtin, price, sale_price, stock]
"""


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "250"})
    return result.exit_code, result.stdout, result.stderr


def project(tmp_path: Path, server: Server, emulator: GoogleMerchantEmulator) -> Path:
    config = tmp_path / "omnisync.yaml"
    config.write_text(
        CONFIG.format(url=server.url, account=emulator.account, source=emulator.data_source_id)
    )
    (tmp_path / "key.json").write_text(emulator.key_json(server.url))
    columns = ["sku", "title", "description", "brand", "gtin", "price", "sale_price"]
    columns += ["sale_start", "sale_end", "stock_berlin", "stock_hamburg"]
    with (tmp_path / "erp.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        for pid in sorted(emulator.products):
            sku = pid.split("~")[2]
            attributes = emulator.attributes(sku)
            sale = attributes.get("salePrice")
            window = attributes.get("salePriceEffectiveDate") or {}
            writer.writerow(
                {
                    "sku": sku,
                    "title": attributes["title"],
                    "description": attributes["description"],
                    "brand": attributes["brand"],
                    "gtin": attributes["gtins"][0],
                    "price": str(records.micros(attributes["price"]["amountMicros"])),
                    "sale_price": str(records.micros(sale["amountMicros"])) if sale else "",
                    "sale_start": window.get("startTime", ""),
                    "sale_end": window.get("endTime", ""),
                    "stock_berlin": emulator.store(sku, "berlin")["quantity"],
                    "stock_hamburg": emulator.store(sku, "hamburg")["quantity"],
                }
            )
    return config


def findings(config: Path) -> set[tuple[str, str, str | None, str | None]]:
    code, out, err = cli("check", "-c", str(config), "-f", "json")
    assert code in (0, 1), out + err
    return {
        (f["kind"], f["sku"], f["field"], f["location"])
        for c in json.loads(out)["channels"]
        for f in c["findings"]
    }


def plant(emulator: GoogleMerchantEmulator) -> set[tuple[str, str, str | None, str | None]]:
    """Drift Merchant Center away from the ERP, online and in the stores."""
    emulator.update("GM-00001", price={"amountMicros": "12370000", "currencyCode": "EUR"})
    emulator.update("GM-00002", title="Artikel 2 (alt)")
    emulator.update("GM-00003", salePrice=None, salePriceEffectiveDate=None)  # the sale ended
    emulator.update("GM-00006", gtins=["4006381333931"])
    # Berlin's own price of GM-00004 is not the online price: the point of the check.
    berlin = emulator.store("GM-00004", "berlin")
    emulator.put_store(
        "GM-00004",
        "berlin",
        **{**berlin, "price": {"amountMicros": "13480000", "currencyCode": "EUR"}},
    )
    hamburg = emulator.store("GM-00005", "hamburg")
    emulator.put_store("GM-00005", "hamburg", **{**hamburg, "quantity": "40"})
    return {
        ("changed", "GM-00001", "price", None),
        ("changed", "GM-00002", "title", None),
        ("changed", "GM-00003", "sale_price", None),
        ("changed", "GM-00006", "gtin", None),
        ("changed", "GM-00004", "price", "berlin"),
        ("changed", "GM-00005", "stock", "hamburg"),
    }


def test_check_plan_apply_check_undo_through_the_cli(
    tmp_path: Path, emulator: GoogleMerchantEmulator, server: Server, monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    seed(emulator, 30, stores=STORES)
    config = project(tmp_path, server, emulator)
    assert findings(config) == set()

    planted = plant(emulator)
    assert findings(config) == planted

    plan = tmp_path / "plan.json"
    code, _, err = cli("plan", "-c", str(config), "--out", str(plan))
    assert code == 0, err
    code, out, _ = cli("apply", str(plan), "-c", str(config), "--dry-run")
    assert code == 0
    assert "productInputs/de~DE~GM-00001?dataSource=" in out
    assert "localInventories:insert" in out
    assert emulator.attributes("GM-00002")["title"] == "Artikel 2 (alt)"  # nothing sent

    code, out, err = cli("apply", str(plan), "-c", str(config), "--yes")
    assert code == 0, out + err
    assert findings(config) == set()  # Google processed the inputs before apply returned
    assert emulator.store("GM-00004", "berlin")["quantity"]  # the entry's other attributes kept

    code, out, err = cli("undo", "last", "-c", str(config), "--yes")
    assert code == 0, out + err
    assert findings(config) == planted

    # Two pushes changed these products today: Google takes no third, so the planner holds
    # the online changes back and says when each may go; the stores' own are not limited.
    again = tmp_path / "again.json"
    code, out, err = cli("plan", "-c", str(config), "--out", str(again))
    assert code == 0, out + err
    [channel] = json.loads(again.read_text())["channels"]
    assert {(c["sku"], c["field"], c["location"]) for c in channel["changes"]} == {
        ("GM-00004", "price", "berlin"),
        ("GM-00005", "stock", "hamburg"),
    }
    held = {s["sku"]: s["reason"] for s in channel["skipped"]}
    assert set(held) == {"GM-00001", "GM-00002", "GM-00003", "GM-00006"}
    assert "2 per SKU per 24 h" in held["GM-00001"]
    assert "next update is allowed after" in held["GM-00001"]
    # The plan saved before both pushes would be a third update: refused, naming the SKUs.
    code, out, err = cli("apply", str(plan), "-c", str(config), "--yes")
    assert code == 6
    assert "GM-00001" in out + err
    assert "update limit (2 per SKU per 24 h)" in out + err


def test_a_wrong_key_exits_3_naming_the_channel_never_the_key(
    tmp_path: Path, emulator: GoogleMerchantEmulator, server: Server, monkeypatch: Any
) -> None:
    secrets.forget_all()
    monkeypatch.chdir(tmp_path)
    seed(emulator, 3, stores=STORES)
    config = project(tmp_path, server, emulator)
    stranger = GoogleMerchantEmulator(fresh_key=True)  # a key Google does not know
    (tmp_path / "key.json").write_text(
        stranger.key_json(server.url, client_email=emulator.client_email)
    )
    code, out, err = cli("check", "-c", str(config), "--no-history")
    assert code == 3
    text = out + err
    assert "google" in text
    assert "Invalid JWT Signature" in text
    assert "options.key" in text
    pem = stranger.private_pem()
    assert "PRIVATE KEY" not in text
    for line in pem.splitlines()[1:-1]:
        assert line not in text
    assert "Traceback" not in text


def test_the_connectors_command_lists_google_merchant_with_its_update_limit() -> None:
    code, out, _ = cli("connectors")
    assert code == 0
    row = next(line for line in out.splitlines() if "google_merchant" in line)
    assert "2 per SKU per 24 h" in row
