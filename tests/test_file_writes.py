"""The write side of the csv, tsv, json and jsonl connectors: changes land in the file in the
file's own style, the file is replaced atomically, and undoing a push gives the original back."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from omnisync.errors import ConnectorError, ExitCode, TransientError
from omnisync.models import Change, Field, Op, Record
from omnisync.sdk.connector import Connector, ConnectorContext
from omnisync.sdk.testing import ConnectorContract
from omnisync.sdk.values import field_value, json_to_record, record_to_json, same
from omnisync_connectors.files.csv import CsvConnector, TsvConnector
from omnisync_connectors.files.json import JsonConnector, JsonLinesConnector

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
CONFIG = yaml.safe_load((ROOT / "config.example.yaml").read_text(encoding="utf-8"))
BERLIN = "Europe/Berlin"  # settings.timezone of config.example.yaml
EUR = "EUR"
D = Decimal

#: A sale through November 2026 in Berlin, as plans carry it (UTC).
NOVEMBER = {"start": "2026-10-31T23:00:00+00:00", "end": "2026-11-30T22:59:59+00:00"}


def make(cls: type[Connector], base: Path, zone: str = BERLIN, **options: Any) -> Any:
    """A connector as the core builds it; ``zone`` is settings.timezone."""
    context = ConnectorContext(name="shop", base_dir=base, timezone=zone)
    return cls(cls.Options.model_validate(options), context)


def example_options(source: str) -> dict[str, Any]:
    """The options config.example.yaml gives ``canonical`` or a channel."""
    spec = CONFIG["canonical"] if source == "canonical" else CONFIG["channels"][source]
    return dict(spec["options"])


def example(tmp_path: Path, source: str, zone: str = BERLIN, **overrides: Any) -> Any:
    """The connector config.example.yaml configures, on a copy of examples/."""
    if not (tmp_path / "examples").exists():
        shutil.copytree(ROOT / "examples", tmp_path / "examples")
    kind = (CONFIG["canonical"] if source == "canonical" else CONFIG["channels"][source])[
        "connector"
    ]
    cls = {"csv": CsvConnector, "tsv": TsvConnector, "json": JsonConnector}[kind]
    return make(cls, tmp_path, zone, **{**example_options(source), **overrides})


def data(tmp_path: Path, name: str) -> str:
    shutil.copy(DATA / name, tmp_path / name)
    return name


def write_text(folder: Path, name: str, text: str, encoding: str = "utf-8") -> str:
    (folder / name).write_bytes(text.encode(encoding))
    return name


def file_of(connector: Connector) -> Path:
    return connector.file  # type: ignore[attr-defined]


def records(connector: Connector) -> dict[str, Record]:
    return {record.sku: record for record in connector.read()}


def update(
    sku: str, field: str, after: Any, location: str | None = None, before: Any = None
) -> Change:
    return Change("shop", sku, Op.UPDATE, field, location, before, after)


def planned(
    connector: Connector, sku: str, field: str, after: Any, location: str | None = None
) -> Change:
    """An update as a plan makes it: ``before`` is the channel's current value."""
    before = field_value(records(connector)[sku], field, location)
    return update(sku, field, after, location, before)


def money(amount: str, currency: str = EUR, **window: Any) -> dict[str, Any]:
    value: dict[str, Any] = {"amount": amount, "currency": currency}
    if window:
        value.update({"start": None, "end": None, **window})
    return value


def create(sku: str, **fields: Any) -> Change:
    return Change("shop", sku, Op.CREATE, after={"sku": sku, **fields})


def delete(connector: Connector, sku: str) -> Change:
    return Change("shop", sku, Op.DELETE, before=record_to_json(records(connector)[sku]))


def apply(connector: Connector, changes: list[Change]) -> None:
    results = connector.write(changes)
    assert [r.key for r in results] == [c.key for c in changes]
    failed = [(r.key, r.error) for r in results if not r.ok]
    assert not failed


def undo(connector: Connector, changes: list[Change]) -> None:
    apply(connector, [change.inverse() for change in reversed(changes)])


def row_of(connector: Any, sku: str) -> str:
    """The text line that holds ``sku`` (decoded with the connector's encoding)."""
    text = file_of(connector).read_bytes().decode(connector.options.encoding)
    return next(line for line in text.splitlines() if sku in line)


def backups(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.bak"))


# -- the whole round trip, on the files users have ---------------------------------------------


@dataclass
class Case:
    """A source file, its options, the record to change, whether undo must give exact bytes."""

    id: str
    source: str  # "example:<config source>" or a file in tests/data
    options: dict[str, Any]
    sku: str
    exact: bool = True


CASES = [
    Case("erp-cp1252-german", "example:canonical", {}, "KA-1003"),
    Case("woocommerce-example", "example:webshop", {}, "KA-1003"),
    Case("pos-example", "example:pos", {}, "KA-1003"),
    Case("google-feed-example", "example:google", {}, "KA-1003"),
    Case("print-catalogue-json", "example:catalogue-print", {}, "KA-1008"),
    Case(
        "shopify-legacy",
        "shopify_products_legacy.csv",
        {"preset": "shopify", "currency": EUR},
        "TS-M",
    ),
    Case(
        "shopify-current",
        "shopify_products_current.csv",
        {"preset": "shopify", "currency": EUR},
        "TS-M",
    ),
    Case("google-feed", "google_feed.tsv", {"preset": "google"}, "HAT-1"),
    # Its prices are written "49" and "12.5": a rewritten price gets cents, so undo is exact
    # only outside the changed row.
    Case(
        "woocommerce-export",
        "woocommerce_products.csv",
        {"preset": "woocommerce", "currency": EUR},
        "MUG-1",
        exact=False,
    ),
    Case(
        "jsonl",
        "feed.jsonl",
        {
            "currency": EUR,
            "mapping": {
                "sku": "id",
                "title": "name",
                "price": "price",
                "stock": {"berlin": "stock.berlin", "hamburg": "stock.hamburg"},
            },
        },
        "A-2",
    ),
]

JSONL = (
    '{"id": "A-1", "name": "Hemd", "price": 19.99, "stock": {"berlin": 3, "hamburg": 0}}\n'
    '{"id": "A-2", "name": "Hose", "price": 49.90, "stock": {"berlin": 1, "hamburg": 2}}\n'
)


def open_case(case: Case, tmp_path: Path) -> Any:
    if case.source.startswith("example:"):
        return example(tmp_path, case.source.removeprefix("example:"), **case.options)
    options = case.options
    if case.source == "feed.jsonl":
        path = write_text(tmp_path, "feed.jsonl", JSONL)
        return make(JsonLinesConnector, tmp_path, path=path, **options)
    cls = TsvConnector if case.source.endswith(".tsv") else CsvConnector
    return make(cls, tmp_path, path=data(tmp_path, case.source), **options)


def scenario(connector: Connector, sku: str) -> list[Change]:
    """Price, sale price (with its window where the file holds dates), stock at a location,
    title, and a new record: what a plan for this channel could hold."""
    record = records(connector)[sku]
    fields = connector.fields()
    mapping = connector.mapper().mapping  # type: ignore[attr-defined]
    changes: list[Change] = []
    assert record.price is not None
    price = (record.price.amount + 5).quantize(D("0.1"))  # "72.2": cents are the writer's job
    if Field.PRICE in fields:
        changes.append(planned(connector, sku, "price", money(str(price))))
    if Field.SALE_PRICE in fields:
        window = NOVEMBER if (mapping.sale_window or mapping.sale_start) else {}
        changes.append(planned(connector, sku, "sale_price", money(str(price - 10), **window)))
    if Field.STOCK in fields:
        location = list(record.stock or {"default": 0})[-1]
        at = None if location == "default" else location
        changes.append(planned(connector, sku, "stock", 42, at))
    if Field.TITLE in fields:
        changes.append(planned(connector, sku, "title", f"{record.title} (neu)"))
    new: dict[str, Any] = {"title": "Neuer Artikel", "price": money("12.5")}
    if Field.STOCK in fields:
        locations = mapping.stock if isinstance(mapping.stock, dict) else {"default": None}
        new["stock"] = dict.fromkeys(locations, 5)
    if Field.AVAILABILITY in fields:
        new["availability"] = "in_stock"
    changes.append(create("NEW-1", **new))
    return changes


def state(connector: Connector) -> dict[str, tuple[Any, ...]]:
    """What a check compares, per SKU."""
    return {
        sku: (r.title, r.price, r.sale_price, r.sale_start, r.sale_end, r.stock, r.availability)
        for sku, r in records(connector).items()
    }


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_push_shows_in_the_next_read_and_its_undo_restores_the_file(case: Case, tmp_path: Path):
    connector = open_case(case, tmp_path)
    path = file_of(connector)
    original = path.read_bytes()
    initial = state(connector)
    changes = scenario(connector, case.sku)

    apply(connector, changes)

    now = records(connector)
    for change in changes[:-1]:
        assert change.field is not None
        got = field_value(now[case.sku], change.field, change.location)
        assert same(change.field, got, change.after), (change.key, got)
    wanted = json_to_record(changes[-1].after)
    for field in connector.fields():
        assert same(field, field_value(now["NEW-1"], field), field_value(wanted, field)), field
    untouched = {sku: values for sku, values in initial.items() if sku != case.sku}
    assert {sku: v for sku, v in state(connector).items() if sku in untouched} == untouched

    undo(connector, changes)

    assert state(connector) == initial
    if case.exact:
        assert path.read_bytes() == original
    else:
        before, after = original.decode().splitlines(), path.read_bytes().decode().splitlines()
        changed = [line for line, again in zip(before, after, strict=True) if line != again]
        assert len(before) == len(after)
        assert len(changed) == 1
        assert case.sku in changed[0]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_deleted_record_comes_back_with_its_values_on_undo(case: Case, tmp_path: Path):
    connector = open_case(case, tmp_path)
    initial = state(connector)
    change = delete(connector, case.sku)

    apply(connector, [change])

    assert case.sku not in records(connector)
    assert state(connector) == {sku: v for sku, v in initial.items() if sku != case.sku}

    undo(connector, [change])  # a create: appended, so the bytes differ, the values do not

    assert state(connector) == initial


# -- the file's style ----------------------------------------------------------------------------


def test_german_export_gets_decimal_comma_and_thousands_point(tmp_path: Path):
    erp = example(tmp_path, "canonical")
    original = row_of(erp, "KA-1004")
    assert ";1.091,59;" in original

    apply(erp, [planned(erp, "KA-1004", "price", money("1299"))])
    assert row_of(erp, "KA-1004") == original.replace(";1.091,59;", ";1.299,00;")
    assert records(erp)["KA-1004"].price.amount == D("1299")  # type: ignore[union-attr]

    apply(erp, [planned(erp, "KA-1004", "price", money("1091.59"))])
    assert row_of(erp, "KA-1004") == original


@pytest.mark.parametrize(
    ("amount", "currency", "written"),
    [
        ("79.9", "EUR", "79.90"),  # values.py normalises; the file shows cents
        ("79", "EUR", "79.00"),
        ("1299", "JPY", "1299"),  # no minor unit
        ("1.5", "KWD", "1.500"),  # three
        ("19.999", "EUR", "19.999"),  # more places than cents: never rounded away
    ],
)
def test_amounts_get_the_currency_minor_unit_places(
    tmp_path: Path, amount: str, currency: str, written: str
):
    path = write_text(tmp_path, "shop.csv", "sku,price\nA-1,10.00\n")
    shop = make(
        CsvConnector,
        tmp_path,
        path=path,
        decimal=".",  # with "auto", 1.500 could be a thousand and a half
        currency=currency,
        mapping={"sku": "sku", "price": "price"},
    )
    apply(shop, [update("A-1", "price", money(amount, currency))])
    assert file_of(shop).read_text() == f"sku,price\nA-1,{written}\n"


def test_the_currency_written_next_to_an_amount_stays(tmp_path: Path):
    pos = example(tmp_path, "pos")
    apply(pos, [planned(pos, "KA-1002", "price", money("31.5"))])
    assert row_of(pos, "KA-1002") == "KA-1002,Espressokocher Alu 6 Tassen,31.50 EUR,5,5"

    path = write_text(tmp_path, "shop.csv", "sku;preis\nA-1;€19,99\nA-2;\n")
    shop = make(
        CsvConnector,
        tmp_path,
        path=path,
        delimiter=";",
        decimal=",",
        mapping={"sku": "sku", "price": "preis"},
    )
    apply(shop, [update("A-1", "price", money("21")), update("A-2", "price", money("5.5"))])
    assert file_of(shop).read_text() == "sku;preis\nA-1;€21,00\nA-2;€5,50\n"  # A-2 as its column


def test_a_blank_google_sale_price_is_written_like_the_feed_writes_prices(tmp_path: Path):
    google = example(tmp_path, "google")
    apply(google, [planned(google, "KA-1003", "sale_price", money("69.9", **NOVEMBER))])
    cells = row_of(google, "KA-1003").split("\t")
    assert cells[6:9] == ["79.99 EUR", "69.90 EUR", "2026-11-01T00:00+0100/2026-11-30T23:59+0100"]


def test_an_amount_in_another_currency_gets_its_code_where_the_file_has_a_default(tmp_path: Path):
    path = write_text(tmp_path, "shop.csv", "sku,price\nA-1,10.00\n")
    shop = make(
        CsvConnector, tmp_path, path=path, currency=EUR, mapping={"sku": "sku", "price": "price"}
    )
    apply(shop, [update("A-1", "price", money("12", "CHF"))])
    assert file_of(shop).read_text() == "sku,price\nA-1,12.00 CHF\n"
    assert records(shop)["A-1"].price.currency == "CHF"  # type: ignore[union-attr]


def test_sale_dates_follow_each_file_and_its_time_zone(tmp_path: Path):
    # ERP: options.date_format, date only; the end is the end of that day.
    erp = example(tmp_path, "canonical")
    apply(erp, [planned(erp, "KA-1003", "sale_price", money("59", **NOVEMBER))])
    assert row_of(erp, "KA-1003").split(";")[8:11] == ["59,00", "01.11.2026", "30.11.2026"]

    # WooCommerce example: ISO with a time, in the shop's zone (no offset in the file).
    shop = example(tmp_path, "webshop")
    apply(shop, [planned(shop, "KA-1003", "sale_price", money("59", **NOVEMBER))])
    cells = row_of(shop, "KA-1003").split(",")
    assert cells[7:9] == ["2026-11-01 00:00:00", "2026-11-30 23:59:59"]
    assert cells[11:13] == ["59.00", "79.00"]

    # Without a zone, the same moments are written in UTC.
    utc = example(tmp_path / "utc", "webshop", zone="UTC")
    apply(utc, [planned(utc, "KA-1003", "sale_price", money("59", **NOVEMBER))])
    assert row_of(utc, "KA-1003").split(",")[7:9] == ["2026-10-31 23:00:00", "2026-11-30 22:59:59"]


def test_a_date_only_column_refuses_a_time_of_day(tmp_path: Path):
    shop = make(
        CsvConnector,
        tmp_path,
        path=data(tmp_path, "woocommerce_products.csv"),
        preset="woocommerce",
        currency=EUR,
    )
    original = file_of(shop).read_bytes()
    sale = money("35", start="2026-11-27T09:00:00+00:00", end="2026-11-30T22:59:59+00:00")
    [result] = shop.write([update("HOODIE-RED", "sale_price", sale)])
    assert not result.ok
    assert result.error == (
        "the sale starts at 2026-11-27 10:00, but column 'Date sale price starts' holds dates "
        "only (a sale starts at the start of a day there)"
    )
    assert file_of(shop).read_bytes() == original
    assert not backups(tmp_path)


def test_google_sale_window_keeps_its_form_and_the_offset_of_the_season(tmp_path: Path):
    feed = make(
        TsvConnector,
        tmp_path,
        path=data(tmp_path, "google_feed.tsv"),
        preset="google",
    )
    summer = money("15", start="2026-06-30T22:00:00+00:00", end="2026-07-31T21:59:00+00:00")
    apply(feed, [update("HAT-1", "sale_price", summer)])
    cells = row_of(feed, "HAT-1").split("\t")
    assert cells[7:9] == ["15.00 EUR", "2026-07-01T00:00+0200/2026-07-31T23:59+0200"]

    # settings.timezone decides the wall clock and its offset: the same moments in UTC.
    (tmp_path / "utc").mkdir()
    feed = make(
        TsvConnector,
        tmp_path / "utc",
        "UTC",
        path=data(tmp_path / "utc", "google_feed.tsv"),
        preset="google",
    )
    apply(feed, [update("HAT-1", "sale_price", summer)])
    assert row_of(feed, "HAT-1").split("\t")[8] == "2026-06-30T22:00+0000/2026-07-31T21:59+0000"


@pytest.mark.parametrize(
    ("written", "after"),
    [
        ("in_stock", "out_of_stock"),
        ("in stock", "out of stock"),
        ("In Stock", "Out Of Stock"),
        ("instock", "outofstock"),
        ("https://schema.org/InStock", "https://schema.org/OutOfStock"),
    ],
)
def test_availability_in_the_files_own_words(tmp_path: Path, written: str, after: str):
    path = write_text(tmp_path, "feed.csv", f"id,availability\nA-1,{written}\nA-2,{written}\n")
    feed = make(
        CsvConnector, tmp_path, path=path, mapping={"sku": "id", "availability": "availability"}
    )
    apply(feed, [update("A-1", "availability", "out_of_stock")])
    assert file_of(feed).read_text() == f"id,availability\nA-1,{after}\nA-2,{written}\n"


def test_gtin_keeps_the_width_the_file_writes(tmp_path: Path):
    feed = example(tmp_path, "google")
    apply(feed, [update("KA-1003", "gtin", "04008146024526")])
    assert "\t4008146024526\t" in row_of(feed, "KA-1003")
    assert records(feed)["KA-1003"].gtin == "04008146024526"


# -- Shopify and WooCommerce layouts ------------------------------------------------------------


def shopify(tmp_path: Path, name: str = "shopify_products_legacy.csv") -> Any:
    return make(CsvConnector, tmp_path, path=data(tmp_path, name), preset="shopify", currency=EUR)


def prices(connector: Connector, sku: str) -> tuple[str, str]:
    """Shopify's Variant Price and Compare At cells of ``sku``'s row."""
    line = next(line for line in file_of(connector).read_text().splitlines() if f",{sku}," in line)
    cells = line.split(",")
    at = cells.index(sku)
    return cells[at + 6], cells[at + 7]


def test_shopify_compare_at_pair(tmp_path: Path):
    shop = shopify(tmp_path)
    original = file_of(shop).read_bytes()
    assert prices(shop, "TS-M") == ("19.99", "")

    apply(shop, [update("TS-M", "sale_price", money("14.99"))])  # a sale starts
    assert prices(shop, "TS-M") == ("14.99", "19.99")

    apply(shop, [update("TS-M", "price", money("22"))])  # the regular price changes during it
    assert prices(shop, "TS-M") == ("14.99", "22.00")

    apply(shop, [update("TS-M", "sale_price", None)])  # the sale ends
    assert prices(shop, "TS-M") == ("22.00", "")

    # Sale and regular price raised together, in either order of the plan.
    for changes in (
        [update("TS-S", "sale_price", money("27")), update("TS-S", "price", money("29.99"))],
        [update("TS-S", "price", money("31")), update("TS-S", "sale_price", money("28"))],
    ):
        apply(shop, changes)
    assert prices(shop, "TS-S") == ("28.00", "31.00")
    record = records(shop)["TS-S"]
    assert (record.price.amount, record.sale_price.amount) == (D("31"), D("28"))  # type: ignore[union-attr]

    apply(
        shop,
        [update("TS-S", "price", money("24.99")), update("TS-S", "sale_price", money("19.99"))],
    )
    apply(shop, [update("TS-M", "price", money("19.99"))])
    assert file_of(shop).read_bytes() == original


def test_shopify_cannot_show_a_sale_price_above_the_regular_price(tmp_path: Path):
    shop = shopify(tmp_path)
    [result] = shop.write([update("TS-M", "sale_price", money("25"))])
    assert result.error == (
        "the sale price 25 EUR is not below the regular price 19.99 EUR; column "
        "'Variant Compare At Price' can only show a lower sale price"
    )


def test_a_grouped_variant_changes_in_its_own_row_only(tmp_path: Path):
    shop = shopify(tmp_path)
    path = file_of(shop)
    original = path.read_text().splitlines()
    apply(shop, [update("TS-M", "title", "T-Shirt Medium")])
    lines = path.read_text().splitlines()
    assert [i for i, (a, b) in enumerate(zip(original, lines, strict=True)) if a != b] == [3]
    assert lines[3].startswith("example-t-shirt,T-Shirt Medium,,")
    assert records(shop)["TS-S"].title == "Example T-Shirt"

    # Back to the product's title: the cell is blank again and inherits it.
    apply(shop, [update("TS-M", "title", "Example T-Shirt")])
    assert path.read_text().splitlines() == original


def test_a_products_first_row_goes_only_with_its_other_variants(tmp_path: Path):
    shop = shopify(tmp_path)
    [result] = shop.write([delete(shop, "TS-S")])
    assert not result.ok
    assert result.error is not None
    assert "first row of product 'example-t-shirt'" in result.error
    assert "(TS-M)" in result.error

    apply(shop, [delete(shop, "TS-S"), delete(shop, "TS-M")])  # the whole product, image rows too
    text = file_of(shop).read_text()
    assert "example-t-shirt" not in text
    assert list(records(shop)) == ["HAT-1"]


def test_woocommerce_container_rows_are_not_records(tmp_path: Path):
    shop = make(
        CsvConnector,
        tmp_path,
        path=data(tmp_path, "woocommerce_products.csv"),
        preset="woocommerce",
        currency=EUR,
    )
    parent = row_of(shop, "11,variable,HOODIE,")
    results = shop.write([update("HOODIE", "stock", 3), update("HOODIE-BLUE", "stock", 3)])
    assert [r.ok for r in results] == [False, True]
    assert row_of(shop, "11,variable,HOODIE,") == parent
    assert ",Hoodie - Blue," in row_of(shop, "HOODIE-BLUE")
    assert records(shop)["HOODIE-BLUE"].stock == {"default": 3}  # was "parent": not tracked


def test_every_row_of_a_listed_twice_sku_is_changed(tmp_path: Path):
    pos = example(tmp_path, "pos")
    apply(pos, [update("KA-1006", "stock", 7, "berlin")])
    assert [r.stock for r in pos.read() if r.sku == "KA-1006"] == [{"berlin": 7, "hamburg": 12}] * 2


# -- CSV text -------------------------------------------------------------------------------


def test_quoting_line_endings_and_multiline_cells_are_kept(tmp_path: Path):
    text = (
        '"sku","title","description","price"\r\n'
        '"A-1","Hemd","Zwei\nZeilen","19.99"\r\n'
        'A-2,Hose,"mit, Komma",49.90\r\n'
        "A-3,Jacke,,99.00"  # no line ending at the end of the file
    )
    path = write_text(tmp_path, "shop.csv", text)
    shop = make(
        CsvConnector,
        tmp_path,
        path=path,
        currency=EUR,
        mapping={"sku": "sku", "title": "title", "description": "description", "price": "price"},
    )
    apply(
        shop,
        [
            update("A-1", "price", money("21")),
            update("A-2", "title", 'Hose "Slim", blau'),
            create("A-4", title="Mütze", price=money("9")),
        ],
    )
    assert file_of(shop).read_bytes().decode() == (
        '"sku","title","description","price"\r\n'
        '"A-1","Hemd","Zwei\nZeilen","21.00"\r\n'  # a quoted row stays quoted
        'A-2,"Hose ""Slim"", blau","mit, Komma",49.90\r\n'  # quoted where it must be
        "A-3,Jacke,,99.00\r\n"
        "A-4,Mütze,,9.00\r\n"  # quoted like the last row
    )
    assert records(shop)["A-1"].description == "Zwei\nZeilen"


def test_byte_order_marks_and_utf16_are_kept(tmp_path: Path):
    shop = make(
        CsvConnector,
        tmp_path,
        path=data(tmp_path, "woocommerce_products.csv"),
        preset="woocommerce",
        currency=EUR,
    )
    apply(shop, [update("MUG-1", "stock", 24)])
    assert file_of(shop).read_bytes().startswith(b"\xef\xbb\xbfID,Type,SKU,")

    (tmp_path / "excel.txt").write_bytes("sku\tqty\r\nA-1\t3\r\nÄ-2\t4\r\n".encode("utf-16"))
    excel = make(
        TsvConnector,
        tmp_path,
        path="excel.txt",
        encoding="utf-16",
        mapping={"sku": "sku", "stock": "qty"},
    )
    apply(excel, [update("Ä-2", "stock", 5)])
    assert file_of(excel).read_bytes() == "sku\tqty\r\nA-1\t3\r\nÄ-2\t5\r\n".encode("utf-16")


def test_a_character_the_files_encoding_lacks_fails_that_change_only(tmp_path: Path):
    erp = example(tmp_path, "canonical")
    results = erp.write(
        [update("KA-1001", "title", "Mühle Ω"), update("KA-1002", "stock", 9, "berlin")]
    )
    assert [r.ok for r in results] == [False, True]
    assert results[0].error == (
        "column 'Bezeichnung' cannot hold 'Ω': the file is cp1252, which has no such character"
    )
    assert records(erp)["KA-1001"].title == "Kaffeemühle „Bella“ Edelstahl"


# -- stock locations -----------------------------------------------------------------------------


def test_stock_location_rules(tmp_path: Path):
    pos = example(tmp_path, "pos")
    results = pos.write(
        [
            update("KA-1001", "stock", 1),
            update("KA-1001", "stock", 1, "lager"),
            update("KA-1001", "stock", 1, "hamburg"),
        ]
    )
    assert [(r.ok, r.error) for r in results] == [
        (False, "channel has several stock locations; map them with expect.stock.locations"),
        (False, "no stock column for location 'lager' (mapped locations: berlin, hamburg)"),
        (True, None),
    ]
    shop = example(tmp_path, "webshop")
    apply(shop, [update("KA-1001", "stock", 30)])  # one column: location None is "default"
    assert records(shop)["KA-1001"].stock == {"default": 30}


# -- JSON and JSON Lines ----------------------------------------------------------------------


def test_json_numbers_stay_exact_numbers_and_strings_stay_strings(tmp_path: Path):
    text = '[\n  {"id": "A-1", "price": 1298.99, "list": "19.90", "qty": 3},\n  {"id": "A-2", "price": 5, "list": "4.00", "qty": "7"}\n]\n'
    path = write_text(tmp_path, "feed.json", text)
    feed = make(
        JsonConnector,
        tmp_path,
        path=path,
        currency=EUR,
        mapping={"sku": "id", "price": "price", "sale_price": "list", "stock": "qty"},
    )
    apply(
        feed,
        [
            update("A-1", "price", money("1299.5")),
            update("A-1", "sale_price", money("20")),
            update("A-2", "stock", 8),
            update("A-1", "stock", 4),
        ],
    )
    assert file_of(feed).read_text() == (
        '[\n  {"id": "A-1", "price": 1299.50, "list": "20.00", "qty": 4},\n'
        '  {"id": "A-2", "price": 5, "list": "4.00", "qty": "8"}\n]\n'
    )


def test_json_values_go_to_their_paths_in_the_records_own_layout(tmp_path: Path):
    document = {
        "meta": {"exported": "2026-11-23"},
        "data": {
            "products": [
                {"id": "A-1", "name": "Hemd", "offer": {"price": "19.99"}, "stock": {"berlin": 5}},
                {"id": "A-2", "name": "Hose", "offer": {"price": "49.90"}, "stock": {"berlin": 1}},
            ]
        },
    }
    text = json.dumps(document, indent=4, ensure_ascii=False) + "\n"
    path = write_text(tmp_path, "feed.json", text)
    feed = make(
        JsonConnector,
        tmp_path,
        path=path,
        records="data.products",
        currency=EUR,
        mapping={
            "sku": "id",
            "title": "name",
            "brand": "brand",
            "price": "offer.price",
            "stock": "stock",
        },
    )
    changes = [
        update("A-1", "stock", 2, "hamburg"),
        update("A-2", "title", "Hose „Slim“"),
        update("A-2", "brand", "Acme"),
        create("A-3", title="Jacke", price=money("99"), stock={"berlin": 4}),
    ]
    apply(feed, changes)
    written = file_of(feed).read_text()
    assert json.loads(written)["data"]["products"] == [
        {
            "id": "A-1",
            "name": "Hemd",
            "offer": {"price": "19.99"},
            "stock": {"berlin": 5, "hamburg": 2},
        },
        {
            "id": "A-2",
            "name": "Hose „Slim“",
            "offer": {"price": "49.90"},
            "stock": {"berlin": 1},
            "brand": "Acme",
        },
        {"id": "A-3", "name": "Jacke", "offer": {"price": "99.00"}, "stock": {"berlin": 4}},
    ]
    # Laid out as the document was: four spaces a level, the new record like its neighbours.
    assert written == json.dumps(json.loads(written), indent=4, ensure_ascii=False) + "\n"

    apply(
        feed,
        [
            update("A-2", "brand", None),  # no record writes null: the key goes
            update("A-1", "stock", None, "hamburg"),
            update("A-2", "title", "Hose"),
            Change("shop", "A-3", Op.DELETE),
        ],
    )
    assert file_of(feed).read_text() == text


def test_json_paths_through_null_or_missing_objects_are_made(tmp_path: Path):
    text = '[{"id": "A-1", "offer": null}, {"id": "A-2"}, {"id": "A-3", "offer": 5}]'
    path = write_text(tmp_path, "feed.json", text)
    feed = make(
        JsonConnector,
        tmp_path,
        path=path,
        currency=EUR,
        mapping={"sku": "id", "price": "offer.price"},
    )
    results = feed.write([update(sku, "price", money("2")) for sku in ("A-1", "A-2", "A-3")])
    assert [r.error for r in results] == [
        None,
        None,
        "'offer' is not an object, so 'offer.price' cannot be set",
    ]
    assert file_of(feed).read_text() == (
        '[{"id": "A-1", "offer": {"price": 2.00}}, {"id": "A-2", "offer": {"price": 2.00}}, '
        '{"id": "A-3", "offer": 5}]'
    )


def test_json_clearing_writes_null_where_the_file_writes_nulls(tmp_path: Path):
    path = write_text(
        tmp_path, "feed.jsonl", '{"id": "A-1", "sale": "9.00"}\n{"id": "A-2", "sale": null}\n'
    )
    feed = make(
        JsonLinesConnector,
        tmp_path,
        path=path,
        currency=EUR,
        mapping={"sku": "id", "sale_price": "sale"},
    )
    apply(feed, [update("A-1", "sale_price", None)])
    assert file_of(feed).read_text() == '{"id": "A-1", "sale": null}\n{"id": "A-2", "sale": null}\n'


def test_jsonl_untouched_lines_are_kept_verbatim(tmp_path: Path):
    text = '{"id":"A-1","qty":4}\n\n{"id": "A-2",  "qty": 0, "note": "\\u00e9"}\r\n{"id": "A-3", "qty": 1}'
    path = write_text(tmp_path, "feed.jsonl", text)
    feed = make(JsonLinesConnector, tmp_path, path=path, mapping={"sku": "id", "stock": "qty"})
    apply(
        feed,
        [
            update("A-1", "stock", 5),
            create("A-4", stock={"default": 2}),
            Change("shop", "A-3", Op.DELETE),
        ],
    )
    assert file_of(feed).read_bytes().decode() == (
        '{"id":"A-1","qty":5}\n\n{"id": "A-2",  "qty": 0, "note": "\\u00e9"}\r\n{"id": "A-4", "qty": 2}\n'
    )


# -- failures, atomicity, backups -------------------------------------------------------------


def test_an_unknown_sku_fails_alone_and_the_rest_of_the_batch_is_written(tmp_path: Path):
    pos = example(tmp_path, "pos")
    results = pos.write(
        [update("KA-1", "stock", 1, "berlin"), update("KA-1001", "stock", 8, "berlin")]
    )
    assert [(r.key, r.ok, r.error) for r in results] == [
        (
            "KA-1:stock@berlin",
            False,
            "SKU KA-1 not found in examples/pos_export.csv "
            "(it may have been removed since the plan was made)",
        ),
        ("KA-1001:stock@berlin", True, None),
    ]
    assert records(pos)["KA-1001"].stock == {"berlin": 8, "hamburg": 2}


def test_fields_the_file_does_not_map_fail_with_the_mapping_key(tmp_path: Path):
    pos = example(tmp_path, "pos")
    [result] = pos.write([update("KA-1001", "brand", "Acme")])
    assert result.error == "brand is not mapped to a column (options.mapping.brand)"


def test_creating_a_sku_the_file_has_fails(tmp_path: Path):
    pos = example(tmp_path, "pos")
    [result] = pos.write([create("KA-1001", title="Doppelt", price=money("1"))])
    assert result.error == "SKU KA-1001 already exists in examples/pos_export.csv:2"


def test_a_failed_replace_leaves_the_original_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    pos = example(tmp_path, "pos")
    path = file_of(pos)
    original = path.read_bytes()
    listing = sorted(os.listdir(path.parent))

    def broken(source: Any, target: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(ConnectorError) as caught:
        pos.write([update("KA-1001", "stock", 8, "berlin")])
    assert caught.value.exit_code == ExitCode.CHANNEL
    assert path.read_bytes() == original
    assert sorted(os.listdir(path.parent)) == listing  # no temporary file, no backup


def test_an_unwritable_folder_is_a_connector_error_with_path_and_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    pos = example(tmp_path, "pos", backup=False)
    original = file_of(pos).read_bytes()

    def denied(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tempfile.mkstemp", denied)
    with pytest.raises(ConnectorError) as caught:
        pos.write([update("KA-1001", "stock", 8, "berlin")])
    error = caught.value
    assert error.exit_code == ExitCode.CHANNEL
    assert error.where == "examples/pos_export.csv"
    assert f"cannot write {file_of(pos)}: Permission denied" == error.message
    assert "may write pos_export.csv and its folder" in error.hint
    assert file_of(pos).read_bytes() == original


def test_a_file_changed_since_it_was_read_is_not_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    pos = example(tmp_path, "pos")
    path = file_of(pos)
    load = type(pos).load

    def load_then_edit(self: Any) -> Any:
        source = load(self)
        path.write_bytes(source.data + b"KA-2000,Neu,1.00 EUR,0,0\n")  # someone else's export
        return source

    monkeypatch.setattr(type(pos), "load", load_then_edit)
    with pytest.raises(TransientError):
        pos.write([update("KA-1001", "stock", 8, "berlin")])
    assert path.read_bytes().endswith(b"KA-2000,Neu,1.00 EUR,0,0\n")


def test_each_rewrite_keeps_a_timestamped_backup(tmp_path: Path):
    pos = example(tmp_path, "pos")
    folder = file_of(pos).parent
    first = file_of(pos).read_bytes()
    apply(pos, [update("KA-1001", "stock", 8, "berlin")])
    second = file_of(pos).read_bytes()
    apply(pos, [update("KA-1001", "stock", 9, "berlin")])
    saved = backups(folder)
    assert [p.read_bytes() for p in saved] == [first, second]
    for backup in saved:
        name, stamp, suffix = backup.name.rsplit(".", 2)
        assert (name, suffix) == ("pos_export.csv", "bak")
        assert len(stamp) == 22
        assert stamp[8] == "T"
        assert stamp.endswith("Z")

    quiet = example(tmp_path / "quiet", "pos", backup=False)
    apply(quiet, [update("KA-1001", "stock", 8, "berlin")])
    assert not backups(file_of(quiet).parent)


def test_a_batch_that_changes_nothing_leaves_the_file_alone(tmp_path: Path):
    pos = example(tmp_path, "pos")
    path = file_of(pos)
    stat = path.stat()
    apply(
        pos, [update("KA-1001", "stock", 3, "berlin"), update("KA-1001", "price", money("49.990"))]
    )
    assert path.stat().st_mtime_ns == stat.st_mtime_ns
    assert not backups(path.parent)


def test_preview_shows_the_rows_as_they_would_be_written_and_writes_nothing(tmp_path: Path):
    pos = example(tmp_path, "pos")
    path = file_of(pos)
    original = path.read_bytes()
    preview = pos.preview(
        [
            update("KA-1001", "stock", 8, "berlin"),
            update("KA-1001", "price", money("52")),
            create("KA-2000", title="Neu", price=money("5"), stock={"berlin": 1, "hamburg": 0}),
            delete(pos, "KA-1002"),
            update("KA-1", "stock", 1, "berlin"),
        ]
    )
    assert path.read_bytes() == original
    # One shape for every connector: {"send": payload} per payload, then the refusals.
    assert preview == [
        {
            "send": {
                "op": "update",
                "sku": "KA-1001",
                "where": "examples/pos_export.csv:2",
                "changes": ["KA-1001:stock@berlin", "KA-1001:price"],
                "row": {
                    "artikel": "KA-1001",
                    "bezeichnung": "Kaffeemühle „Bella“ Edelstahl",
                    "preis": "52.00 EUR",
                    "bestand_berlin": "8",
                    "bestand_hamburg": "2",
                },
            }
        },
        {
            "send": {
                "op": "create",
                "sku": "KA-2000",
                "where": "examples/pos_export.csv:new row",
                "changes": ["KA-2000:+"],
                "row": {
                    "artikel": "KA-2000",
                    "bezeichnung": "Neu",
                    "preis": "5.00 EUR",
                    "bestand_berlin": "1",
                    "bestand_hamburg": "0",
                },
            }
        },
        {
            "send": {
                "op": "delete",
                "sku": "KA-1002",
                "where": "examples/pos_export.csv:3",
                "changes": ["KA-1002:-"],
                "row": {
                    "artikel": "KA-1002",
                    "bezeichnung": "Espressokocher Alu 6 Tassen",
                    "preis": "29.99 EUR",
                    "bestand_berlin": "5",
                    "bestand_hamburg": "5",
                },
            }
        },
        {
            "key": "KA-1:stock@berlin",
            "refused": "SKU KA-1 not found in examples/pos_export.csv (it may have been removed since the plan was made)",
        },
    ]


def test_omnisync_connectors_lists_what_files_write():
    for cls in (CsvConnector, TsvConnector, JsonConnector, JsonLinesConnector):
        described = cls.capabilities.describe()
        assert described["writes"] == "content, price, stock"
        assert described["max batch"] == "100000"


# -- the contract, on the shipped examples ------------------------------------------------------


class TestErpExportContract(ConnectorContract):
    @pytest.fixture
    def connector(self, tmp_path: Path) -> Connector:
        return example(tmp_path, "canonical")


class TestWooCommerceExampleContract(ConnectorContract):
    @pytest.fixture
    def connector(self, tmp_path: Path) -> Connector:
        return example(tmp_path, "webshop")


class TestPrintCatalogueContract(ConnectorContract):
    @pytest.fixture
    def connector(self, tmp_path: Path) -> Connector:
        return example(tmp_path, "catalogue-print")
