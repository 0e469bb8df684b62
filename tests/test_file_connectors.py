"""The csv, tsv, json and jsonl connectors on the files users actually have."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

import omnisync_connectors.files.columnar as csv_columnar
from omnisync.errors import ConnectorError, ExitCode, InputError
from omnisync.models import Availability, Entity, Field, Money, Record
from omnisync.sdk.connector import Connector, ConnectorContext
from omnisync.sdk.testing import ConnectorContract
from omnisync_connectors.files.csv import CsvConnector, TsvConnector
from omnisync_connectors.files.json import JsonConnector, JsonLinesConnector

DATA = Path(__file__).parent / "data"
D = Decimal
EUR = "EUR"


def make(cls: type[Connector], base: Path, **options: Any) -> Any:
    return cls(cls.Options.model_validate(options), ConnectorContext(name="shop", base_dir=base))


def write(folder: Path, name: str, text: str, encoding: str = "utf-8") -> str:
    (folder / name).write_bytes(text.encode(encoding))
    return name


def read_all(connector: Connector) -> list[Record]:
    return list(connector.read())


def input_error(connector: Connector) -> InputError:
    with pytest.raises(InputError) as caught:
        read_all(connector)
    return caught.value


def read_until_error(connector: Connector) -> tuple[list[str], InputError]:
    """The SKUs streamed before the InputError, and the error."""
    seen: list[str] = []

    def consume() -> None:
        seen.extend(record.sku for record in connector.read())

    with pytest.raises(InputError) as caught:
        consume()
    return seen, caught.value


def copy_data(name: str, folder: Path) -> str:
    shutil.copy(DATA / name, folder / name)
    return name


BASIC = "sku,title,price,stock\nA-1,Hemd,19.99,3\nA-2,Hose,49.90,0\n"
BASIC_MAPPING = {"sku": "sku", "title": "title", "price": "price", "stock": "stock"}


# -- contract ------------------------------------------------------------------------------


@pytest.fixture
def columnar_for_small_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """The csv fast path (read_table) normally leaves files this small to read()."""
    monkeypatch.setattr(csv_columnar, "MIN_BYTES", 0)


@pytest.mark.usefixtures("columnar_for_small_files")
class TestCsvContract(ConnectorContract):
    @pytest.fixture
    def connector(self, tmp_path: Path) -> Connector:
        path = write(tmp_path, "shop.csv", BASIC)
        return make(CsvConnector, tmp_path, path=path, currency=EUR, mapping=BASIC_MAPPING)


class TestShopifyPresetContract(ConnectorContract):
    @pytest.fixture
    def connector(self, tmp_path: Path) -> Connector:
        path = copy_data("shopify_products_legacy.csv", tmp_path)
        return make(CsvConnector, tmp_path, path=path, preset="shopify", currency=EUR)


@pytest.mark.usefixtures("columnar_for_small_files")
class TestGoogleFeedContract(ConnectorContract):
    @pytest.fixture
    def connector(self, tmp_path: Path) -> Connector:
        return make(
            TsvConnector, tmp_path, path=copy_data("google_feed.tsv", tmp_path), preset="google"
        )


class TestJsonContract(ConnectorContract):
    @pytest.fixture
    def connector(self, tmp_path: Path) -> Connector:
        document = {
            "data": {"products": [{"id": "A-1", "name": "Hemd", "offer": {"price": 19.99}}]}
        }
        path = write(tmp_path, "feed.json", json.dumps(document))
        mapping = {"sku": "id", "title": "name", "price": "offer.price"}
        return make(
            JsonConnector,
            tmp_path,
            path=path,
            records="data.products",
            currency=EUR,
            mapping=mapping,
        )


class TestJsonLinesContract(ConnectorContract):
    @pytest.fixture
    def connector(self, tmp_path: Path) -> Connector:
        path = write(tmp_path, "feed.jsonl", '{"id": "A-1", "qty": 4}\n{"id": "A-2", "qty": 0}\n')
        return make(JsonLinesConnector, tmp_path, path=path, mapping={"sku": "id", "stock": "qty"})


# -- csv: encodings and layouts ------------------------------------------------------------


def test_reads_utf8_with_origins(tmp_path: Path):
    path = write(tmp_path, "shop.csv", BASIC)
    records = read_all(make(CsvConnector, tmp_path, path=path, currency=EUR, mapping=BASIC_MAPPING))
    assert [(r.sku, r.title, r.price, r.stock, r.origin) for r in records] == [
        ("A-1", "Hemd", Money(D("19.99"), EUR), {"default": 3}, "shop.csv:2"),
        ("A-2", "Hose", Money(D("49.90"), EUR), {"default": 0}, "shop.csv:3"),
    ]


def test_utf8_bom_is_stripped_from_the_first_column(tmp_path: Path):
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + BASIC.encode())
    connector = make(CsvConnector, tmp_path, path="bom.csv", currency=EUR, mapping=BASIC_MAPPING)
    assert [r.sku for r in read_all(connector)] == ["A-1", "A-2"]


def test_german_windows_export(tmp_path: Path):
    text = (
        "Artikelnummer;Bezeichnung;Marke;Preis;Bestand\r\n"
        "J-1;Übergröße Jacke für Männer;Müller;1.299,00;1.204\r\n"
        "J-2;Weiße Mütze;Müller;19,90;0\r\n"
    )
    path = write(tmp_path, "erp.csv", text, encoding="cp1252")
    mapping = {"sku": "Artikelnummer", "title": "Bezeichnung", "brand": "Marke"}
    connector = make(
        CsvConnector,
        tmp_path,
        path=path,
        delimiter=";",
        encoding="cp1252",
        decimal=",",
        thousands=".",
        currency=EUR,
        mapping={**mapping, "price": "Preis", "stock": "Bestand"},
    )
    first, second = read_all(connector)
    assert first.title == "Übergröße Jacke für Männer"
    assert first.brand == "Müller"
    assert first.price == Money(D("1299.00"), EUR)
    assert first.stock == {"default": 1204}
    assert second.price == Money(D("19.90"), EUR)


def test_excel_unicode_text_utf16_is_recognised_by_its_bom(tmp_path: Path):
    text = "sku\ttitle\r\nA-1\tCafé\r\nA-2\t日本\r\n"
    (tmp_path / "excel.txt").write_bytes(text.encode("utf-16"))  # BOM + UTF-16LE
    connector = make(
        TsvConnector, tmp_path, path="excel.txt", mapping={"sku": "sku", "title": "title"}
    )
    assert [(r.sku, r.title, r.origin) for r in read_all(connector)] == [
        ("A-1", "Café", "excel.txt:2"),
        ("A-2", "日本", "excel.txt:3"),
    ]


def test_multiline_quoted_description_keeps_the_line_where_the_record_starts(tmp_path: Path):
    text = (
        "sku,description,price\n"
        'A-1,"First line,\nsecond line\n""quoted"" third",5.00\n'
        "A-2,plain,6.00\n"
    )
    path = write(tmp_path, "shop.csv", text)
    mapping = {"sku": "sku", "description": "description", "price": "price"}
    first, second = read_all(make(CsvConnector, tmp_path, path=path, currency=EUR, mapping=mapping))
    assert first.description == 'First line,\nsecond line\n"quoted" third'
    assert (first.origin, second.origin) == ("shop.csv:2", "shop.csv:5")


def test_price_with_its_currency_in_the_column(tmp_path: Path):
    text = "sku;price;sale\nA;19,99 €;EUR 15,00\nB;$5.00;\nC;CHF 12.50;\n"
    path = write(tmp_path, "shop.csv", text)
    mapping = {"sku": "sku", "price": "price", "sale_price": "sale"}
    records = read_all(make(CsvConnector, tmp_path, path=path, delimiter=";", mapping=mapping))
    assert [(r.price, r.sale_price) for r in records] == [
        (Money(D("19.99"), "EUR"), Money(D("15.00"), "EUR")),
        (Money(D("5.00"), "USD"), None),
        (Money(D("12.50"), "CHF"), None),
    ]


def test_group_by_inherits_content_and_skips_image_rows(tmp_path: Path):
    text = (
        "handle,sku,title,brand,price,image\n"
        "shirt,S-1,Shirt,Acme,10,a.jpg\n"
        "shirt,S-2,,,11,\n"
        "shirt,,,,,b.jpg\n"
        "hat,H-1,Hat,,5,\n"
    )
    path = write(tmp_path, "shop.csv", text)
    mapping = {"sku": "sku", "title": "title", "brand": "brand", "price": "price"}
    connector = make(
        CsvConnector, tmp_path, path=path, currency=EUR, group_by="handle", mapping=mapping
    )
    records = read_all(connector)
    assert [(r.sku, r.title, r.brand) for r in records] == [
        ("S-1", "Shirt", "Acme"),
        ("S-2", "Shirt", "Acme"),
        ("H-1", "Hat", None),
    ]


def notes(connector: Connector) -> list[tuple[str, str, str]]:
    """(origin, sku, field) of what the connector's last read noted."""
    return [(n.origin, n.sku, n.field) for n in connector.quality_notes()]


def test_a_grouped_row_without_sku_but_with_a_price_is_noted_not_an_image_row(tmp_path: Path):
    # A variant without a SKU is skipped and noted (the check reports it, and refuses it in
    # canonical); an image-only row is no item at all.
    text = "handle,sku,price\nshirt,S-1,10\nshirt,,11\nshirt,,\n"
    path = write(tmp_path, "shop.csv", text)
    mapping = {"sku": "sku", "price": "price"}
    connector = make(
        CsvConnector, tmp_path, path=path, currency=EUR, group_by="handle", mapping=mapping
    )
    assert [r.sku for r in read_all(connector)] == ["S-1"]
    assert notes(connector) == [("shop.csv:3", "", "sku")]


def test_blank_lines_and_empty_trailing_rows_are_not_records(tmp_path: Path):
    text = "sku;title\n\nA;Hemd\n;\n;;\n"
    path = write(tmp_path, "shop.csv", text.replace(";;\n", ";\n"))
    connector = make(
        CsvConnector, tmp_path, path=path, delimiter=";", mapping={"sku": "sku", "title": "title"}
    )
    assert [r.sku for r in read_all(connector)] == ["A"]


def test_duplicate_skus_are_yielded_for_the_diff_to_report(tmp_path: Path):
    path = write(tmp_path, "shop.csv", "sku\nA\nA\n")
    assert [
        r.sku for r in read_all(make(CsvConnector, tmp_path, path=path, mapping={"sku": "sku"}))
    ] == ["A", "A"]


# -- presets -------------------------------------------------------------------------------


def test_shopify_legacy_export(tmp_path: Path):
    path = copy_data("shopify_products_legacy.csv", tmp_path)
    connector = make(CsvConnector, tmp_path, path=path, preset="shopify", currency=EUR)
    records = read_all(connector)
    assert [r.sku for r in records] == ["TS-S", "TS-M", "HAT-1"]
    small, medium, hat = records
    assert small.title == medium.title == "Example T-Shirt"
    # Body (HTML) is read as the text it shows (description_format: html in the preset).
    assert small.description == "Soft cotton, made in Portugal."
    assert medium.brand == "Acme"
    # Compare-at above price: the regular price is 24.99, on sale at 19.99.
    assert (small.price, small.sale_price) == (Money(D("24.99"), EUR), Money(D("19.99"), EUR))
    assert (medium.price, medium.sale_price) == (Money(D("19.99"), EUR), None)
    assert small.gtin == "04006381333931"
    assert (small.stock, medium.stock, hat.stock) == (
        {"default": 12},
        {"default": 0},
        {"default": 5},
    )
    assert small.ids == {"handle": "example-t-shirt"}
    assert (small.origin, medium.origin, hat.origin) == (f"{path}:2", f"{path}:4", f"{path}:6")
    assert connector.fields() == {
        Field.TITLE,
        Field.DESCRIPTION,
        Field.GTIN,
        Field.BRAND,
        Field.PRICE,
        Field.SALE_PRICE,
        Field.STOCK,
    }


def test_shopify_current_export_column_names(tmp_path: Path):
    path = copy_data("shopify_products_current.csv", tmp_path)
    records = read_all(make(CsvConnector, tmp_path, path=path, preset="shopify", currency=EUR))
    assert [(r.sku, r.title, r.price, r.sale_price, r.stock) for r in records] == [
        (
            "TS-S",
            "Example T-Shirt",
            Money(D("24.99"), EUR),
            Money(D("19.99"), EUR),
            {"default": 12},
        ),
        ("TS-M", "Example T-Shirt", Money(D("19.99"), EUR), None, {"default": 0}),
    ]
    assert records[0].ids == {"handle": "example-t-shirt"}


def test_shopify_export_without_optional_columns_does_not_compare_them(tmp_path: Path):
    text = "Handle,Title,Variant SKU,Variant Price\nshirt,Shirt,S-1,10.00\n"
    path = write(tmp_path, "products.csv", text)
    connector = make(CsvConnector, tmp_path, path=path, preset="shopify", currency=EUR)
    assert connector.fields() == {Field.TITLE, Field.PRICE}
    assert connector.capabilities.reads == {Entity.CONTENT, Entity.PRICE}
    [record] = read_all(connector)
    assert (record.sku, record.price, record.stock) == ("S-1", Money(D("10.00"), EUR), None)


def test_user_mapping_keys_override_the_preset(tmp_path: Path):
    path = copy_data("shopify_products_legacy.csv", tmp_path)
    connector = make(
        CsvConnector,
        tmp_path,
        path=path,
        preset="shopify",
        currency=EUR,
        mapping={"sku": "Variant Barcode", "stock": None},
    )
    assert Field.STOCK not in connector.fields()
    read_all(connector)  # only TS-S has a barcode: as the SKU it is blank elsewhere
    assert notes(connector) == [(f"{path}:4", "", "sku"), (f"{path}:6", "", "sku")]


def test_woocommerce_export(tmp_path: Path):
    path = copy_data("woocommerce_products.csv", tmp_path)
    records = read_all(make(CsvConnector, tmp_path, path=path, preset="woocommerce", currency=EUR))
    assert [r.sku for r in records] == ["HOODIE-RED", "HOODIE-BLUE", "MUG-1"]  # no parent row
    red, blue, mug = records
    assert (red.price, red.sale_price) == (Money(D("49"), EUR), Money(D("39"), EUR))
    # Dates without an offset are in settings.timezone (the context's; UTC by default).
    assert (red.sale_start, red.sale_end) == (
        datetime(2026, 11, 27, tzinfo=ZoneInfo("UTC")),
        datetime(2026, 11, 30, 23, 59, 59, tzinfo=ZoneInfo("UTC")),
    )
    assert red.gtin == "04006381333931"
    assert (red.stock, blue.stock, mug.stock) == ({"default": 7}, None, {"default": 25})
    assert (mug.title, mug.brand, mug.description) == ("Mug", "Acme", "Stoneware mug, 350 ml")
    assert mug.ids == {"id": "14"}


def test_google_merchant_center_feed(tmp_path: Path):
    path = copy_data("google_feed.tsv", tmp_path)
    records = read_all(make(CsvConnector, tmp_path, path=path, preset="google"))
    shirt, hat = records
    plus_one = timezone(timedelta(hours=1))
    assert (shirt.price, shirt.sale_price) == (Money(D("24.99"), EUR), Money(D("19.99"), EUR))
    assert shirt.sale_start == datetime(2026, 12, 1, tzinfo=plus_one)
    assert shirt.sale_end == datetime(2026, 12, 24, 23, 59, tzinfo=plus_one)
    assert shirt.availability is Availability.IN_STOCK
    assert hat.availability is Availability.OUT_OF_STOCK
    assert (hat.sale_price, hat.gtin) == (None, None)


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(
        ValidationError, match="known presets: google, magento2, shopify, shopware6, woocommerce"
    ):
        CsvConnector.Options.model_validate({"path": "x.csv", "preset": "magento1"})


# -- options -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "mapping"),
        ({"mapping": {"sku": "s", "prise": "p"}}, "prise"),
        ({"mapping": {"sku": "s"}, "encoding": "klingon"}, "unknown encoding"),
        ({"mapping": {"sku": "s"}, "delimiter": ";;"}, "one character"),
        ({"mapping": {"sku": "s"}, "delimiter": '"'}, "must differ"),
        ({"mapping": {"sku": "s"}, "currency": "Euro"}, "currency code"),
        ({"mapping": {"sku": "s"}, "colour": "red"}, "colour"),
    ],
)
def test_bad_options_are_rejected(options: dict[str, Any], message: str):
    with pytest.raises(ValidationError, match=message):
        CsvConnector.Options.model_validate({"path": "x.csv", **options})


def test_tab_delimiter_spellings():
    for spelling in ("\t", "\\t", "tab"):
        options = CsvConnector.Options.model_validate(
            {"path": "x", "delimiter": spelling, "mapping": {"sku": "s"}}
        )
        assert options.delimiter == "\t"
    assert (
        TsvConnector.Options.model_validate({"path": "x", "mapping": {"sku": "s"}}).delimiter
        == "\t"
    )


def test_capabilities_of_the_kind_and_of_an_instance(tmp_path: Path):
    assert CsvConnector.capabilities.reads == {Entity.CONTENT, Entity.PRICE, Entity.STOCK}
    assert CsvConnector.capabilities.writes == {Entity.CONTENT, Entity.PRICE, Entity.STOCK}
    assert CsvConnector.capabilities.max_batch >= 10_000  # one rewrite per batch
    connector = make(CsvConnector, tmp_path, path="x.csv", mapping={"sku": "s", "stock": "q"})
    assert connector.capabilities.reads == {Entity.STOCK}
    assert connector.capabilities.writes == {Entity.STOCK}
    assert connector.describe() == "x.csv"


# -- csv: bad input ------------------------------------------------------------------------


def test_missing_file_is_a_connector_error(tmp_path: Path):
    connector = make(CsvConnector, tmp_path, path="exports/shop.csv", mapping={"sku": "sku"})
    for attempt in (connector.check, lambda: read_all(connector)):
        with pytest.raises(ConnectorError) as caught:
            attempt()
        assert caught.value.exit_code == ExitCode.CHANNEL
        assert caught.value.where == "exports/shop.csv"
        assert str(tmp_path / "exports" / "shop.csv") in caught.value.message
        assert "relative paths are resolved against the config file's folder" in caught.value.hint


def test_empty_file(tmp_path: Path):
    for content in ("", "\ufeff", "\n\n"):
        path = write(tmp_path, "shop.csv", content)
        error = input_error(make(CsvConnector, tmp_path, path=path, mapping={"sku": "sku"}))
        assert [str(p) for p in error.problems] == ["shop.csv: the file is empty"]


def test_missing_column_is_named_with_a_close_match(tmp_path: Path):
    path = write(tmp_path, "shop.csv", "SKU,Title,Price\nA,Hemd,5\n")
    connector = make(CsvConnector, tmp_path, path=path, mapping={"sku": "SKU", "price": "Prise"})
    error = input_error(connector)
    assert [str(p) for p in error.problems] == [
        "shop.csv:1: no column 'Prise' (wanted by mapping.price); did you mean 'Price'?"
    ]
    assert "'SKU', 'Title', 'Price'" in error.hint


def test_unparsable_price_names_line_column_and_sku(tmp_path: Path):
    path = write(tmp_path, "shop.csv", 'sku,price\nA-1,5.00\nA-2,12,3\nA-3,"12,3,4"\n')
    connector = make(
        CsvConnector, tmp_path, path=path, currency=EUR, mapping={"sku": "sku", "price": "price"}
    )
    error = input_error(connector)
    assert [str(p) for p in error.problems] == [
        "shop.csv:3: has 3 fields, the header has 2 (check options.delimiter ',' and quoting)",
        "shop.csv:4: column 'price' (SKU A-3): '12,3,4' is not a number",
    ]
    assert error.exit_code == ExitCode.USAGE


def test_records_before_a_bad_row_stream_out_and_the_error_comes_at_the_end(tmp_path: Path):
    path = write(tmp_path, "shop.csv", "sku,stock\nA,1\nB,x\nC,3\n")
    connector = make(CsvConnector, tmp_path, path=path, mapping={"sku": "sku", "stock": "stock"})
    seen, error = read_until_error(connector)
    assert seen == ["A", "C"]
    assert len(error.problems) == 1


def test_wrong_encoding_names_the_line_and_suggests_the_setting(tmp_path: Path):
    text = "sku;title\nA;Hemd\nB;Größe\n"
    path = write(tmp_path, "erp.csv", text, encoding="cp1252")
    connector = make(
        CsvConnector, tmp_path, path=path, delimiter=";", mapping={"sku": "sku", "title": "title"}
    )
    seen, error = read_until_error(connector)
    assert seen == ["A"]  # the good rows before the bad byte were read
    [problem] = error.problems
    assert problem.where == "erp.csv:3"
    assert "cannot decode byte 0xf6 as utf-8" in problem.message
    assert "cp1252" in error.hint


def test_blank_sku_is_noted_with_the_row_and_its_title(tmp_path: Path):
    path = write(tmp_path, "shop.csv", "sku,title\nA,Hemd\n ,Hose\n")
    connector = make(CsvConnector, tmp_path, path=path, mapping={"sku": "sku", "title": "title"})
    assert [r.sku for r in read_all(connector)] == ["A"]
    assert notes(connector) == [("shop.csv:3", "", "sku")]
    assert "'Hose'" in connector.quality_notes()[0].message


def test_wrong_field_count_is_a_problem(tmp_path: Path):
    path = write(tmp_path, "shop.csv", "sku,title,price\nA,Hemd\nB,Hose,1,2\n")
    connector = make(CsvConnector, tmp_path, path=path, currency=EUR, mapping={"sku": "sku"})
    assert [str(p) for p in input_error(connector).problems] == [
        "shop.csv:2: has 2 fields, the header has 3 (check options.delimiter ',' and quoting)",
        "shop.csv:3: has 4 fields, the header has 3 (check options.delimiter ',' and quoting)",
    ]


def test_duplicate_mapped_header_is_ambiguous(tmp_path: Path):
    path = write(tmp_path, "shop.csv", "sku,price,price,note,note\nA,1,2,x,y\n")
    connector = make(
        CsvConnector, tmp_path, path=path, currency=EUR, mapping={"sku": "sku", "price": "price"}
    )
    error = input_error(connector)
    assert [str(p) for p in error.problems] == [
        "shop.csv:1: the header names 'price' more than once"
    ]


def test_unclosed_quote_is_reported_not_swallowed(tmp_path: Path):
    path = write(tmp_path, "shop.csv", 'sku,title\nA,"Hemd\nB,Hose\n')
    error = input_error(
        make(CsvConnector, tmp_path, path=path, mapping={"sku": "sku", "title": "title"})
    )
    [problem] = error.problems
    assert problem.where == "shop.csv:2"
    assert "malformed CSV" in problem.message
    assert "quote" in error.hint


def test_many_problems_are_cut_to_fifty_and_counted(tmp_path: Path):
    rows = "".join(f"S{i},x\n" for i in range(120))
    path = write(tmp_path, "shop.csv", "sku,stock\n" + rows)
    error = input_error(
        make(CsvConnector, tmp_path, path=path, mapping={"sku": "sku", "stock": "stock"})
    )
    assert len(error.problems) == 51
    assert str(error.problems[-1]) == "... and 70 more"
    assert error.message == "120 problems in the input data"


# -- json and jsonl ------------------------------------------------------------------------


def test_json_document_list(tmp_path: Path):
    items = [
        {"sku": "A-1", "title": "Hemd", "price": 19.90, "stock": {"berlin": 2, "hamburg": 0}},
        {"sku": "A-2", "title": "Hose", "price": "49,90 €", "stock": {"berlin": 1}},
    ]
    path = write(tmp_path, "feed.json", json.dumps(items))
    mapping = {"sku": "sku", "title": "title", "price": "price", "stock": "stock"}
    first, second = read_all(
        make(JsonConnector, tmp_path, path=path, currency=EUR, mapping=mapping)
    )
    assert first.price == Money(D("19.9"), EUR)  # a JSON number, read exactly
    assert isinstance(first.price.amount, Decimal)
    assert first.stock == {"berlin": 2, "hamburg": 0}
    assert second.price == Money(D("49.90"), EUR)
    assert (first.origin, second.origin) == ("feed.json:[0]", "feed.json:[1]")


def test_json_nested_records_and_paths(tmp_path: Path):
    document = {
        "meta": {"count": 1},
        "data": {
            "products": [{"id": 7, "offer": {"price": {"value": "15.00", "currency": "USD"}}}]
        },
    }
    path = write(tmp_path, "feed.json", json.dumps(document))
    mapping = {"sku": "id", "price": "offer.price"}
    [record] = read_all(
        make(JsonConnector, tmp_path, path=path, records="data.products", mapping=mapping)
    )
    assert (record.sku, record.price, record.origin) == (
        "7",
        Money(D("15.00"), "USD"),
        "feed.json:data.products[0]",
    )


def test_jsonl_skips_blank_lines_and_keeps_line_numbers(tmp_path: Path):
    text = '{"sku": "A", "availability": "in stock"}\n\n{"sku": "B", "availability": "sold out"}\n'
    path = write(tmp_path, "feed.jsonl", text)
    records = read_all(
        make(
            JsonLinesConnector,
            tmp_path,
            path=path,
            mapping={"sku": "sku", "availability": "availability"},
        )
    )
    assert [(r.sku, r.availability, r.origin) for r in records] == [
        ("A", Availability.IN_STOCK, "feed.jsonl:1"),
        ("B", Availability.OUT_OF_STOCK, "feed.jsonl:3"),
    ]


def test_invalid_json_names_line_and_column(tmp_path: Path):
    path = write(tmp_path, "feed.json", '[\n  {"sku": "A"},\n  {"sku": "B",}\n]')
    error = input_error(make(JsonConnector, tmp_path, path=path, mapping={"sku": "sku"}))
    [problem] = error.problems
    assert problem.where == "feed.json:3:15"
    assert problem.message.startswith("invalid JSON: Expecting property name")


def test_invalid_jsonl_line_is_a_problem_and_reading_goes_on(tmp_path: Path):
    path = write(tmp_path, "feed.jsonl", '{"sku": "A"}\n{"sku": \n{"sku": "C"}\n[1, 2]\n')
    connector = make(JsonLinesConnector, tmp_path, path=path, mapping={"sku": "sku"})
    seen, error = read_until_error(connector)
    assert seen == ["A", "C"]
    assert [p.where for p in error.problems] == ["feed.jsonl:2:9", "feed.jsonl:4"]
    assert error.problems[1].message == "is a list, not an object (a record)"


def test_json_document_that_is_not_a_list_points_to_records(tmp_path: Path):
    path = write(tmp_path, "feed.json", json.dumps({"total": 1, "items": [{"sku": "A"}]}))
    error = input_error(make(JsonConnector, tmp_path, path=path, mapping={"sku": "sku"}))
    assert str(error.problems[0]) == "feed.json: the document is an object, not a list"
    assert "lists here: items" in error.hint


def test_json_records_path_that_does_not_exist(tmp_path: Path):
    path = write(tmp_path, "feed.json", json.dumps({"data": {"items": []}}))
    connector = make(
        JsonConnector, tmp_path, path=path, records="data.products", mapping={"sku": "sku"}
    )
    assert str(input_error(connector).problems[0]) == (
        "feed.json: options.records: data has no key 'products' (keys: 'items')"
    )


def test_json_mapped_key_that_no_record_has_is_a_missing_column(tmp_path: Path):
    path = write(tmp_path, "feed.json", json.dumps([{"sku": "A", "title": "x"}, {"sku": "B"}]))
    connector = make(JsonConnector, tmp_path, path=path, mapping={"sku": "sku", "title": "titel"})
    error = input_error(connector)
    assert [str(p) for p in error.problems] == [
        "feed.json: no column 'titel' (wanted by mapping.title); did you mean 'title'?"
    ]


def test_json_nan_and_bad_values_are_located(tmp_path: Path):
    path = write(tmp_path, "feed.json", '[{"sku": "A", "price": NaN}, {"sku": "", "price": 1}]')
    connector = make(
        JsonConnector, tmp_path, path=path, currency=EUR, mapping={"sku": "sku", "price": "price"}
    )
    assert [str(p) for p in input_error(connector).problems] == [
        "feed.json:[0]: column 'price' (SKU A): 'NaN' is not a number",
    ]
    assert notes(connector) == [("feed.json:[1]", "", "sku")]


def test_empty_json_files(tmp_path: Path):
    for cls, name in ((JsonConnector, "feed.json"), (JsonLinesConnector, "feed.jsonl")):
        path = write(tmp_path, name, "\n")
        error = input_error(make(cls, tmp_path, path=path, mapping={"sku": "sku"}))
        assert [str(p) for p in error.problems] == [f"{name}: the file is empty"]
    path = write(tmp_path, "none.json", "[]")
    assert read_all(make(JsonConnector, tmp_path, path=path, mapping={"sku": "sku"})) == []


def test_json_wrong_encoding(tmp_path: Path):
    path = write(tmp_path, "feed.jsonl", '{"sku": "A"}\n{"sku": "Größe"}\n', encoding="latin-1")
    error = input_error(make(JsonLinesConnector, tmp_path, path=path, mapping={"sku": "sku"}))
    assert error.problems[0].where == "feed.jsonl:2"
    path = write(tmp_path, "feed.json", '[\n{"sku": "Größe"}]', encoding="latin-1")
    error = input_error(make(JsonConnector, tmp_path, path=path, mapping={"sku": "sku"}))
    assert error.problems[0].where == "feed.json:2"


@pytest.mark.parametrize(
    ("name", "text", "cls"),
    [
        (
            "shop.csv",
            "sku,title,price,stock\nA-1,Hemd,19.99,3\n,Nameless,1.00,1\nA-2,Hose,zwölf,0\n",
            CsvConnector,
        ),
        (
            "shop.json",
            json.dumps(
                [
                    {"sku": "A-1", "title": "Hemd", "price": "19.99", "stock": 3},
                    {"sku": "", "title": "Nameless", "price": "1.00", "stock": 1},
                    {"sku": "A-2", "title": "Hose", "price": "zwölf", "stock": 0},
                ]
            ),
            JsonConnector,
        ),
    ],
)
def test_a_targeted_read_maps_only_the_rows_it_wants(
    tmp_path: Path, name: str, text: str, cls: type[Connector]
) -> None:
    """``watch`` re-reads a few SKUs of a file many times a minute: only their rows become
    records, and what is wrong elsewhere in the file is left to the next whole read."""
    path = write(tmp_path, name, text)
    connector = make(cls, tmp_path, path=path, currency=EUR, mapping=BASIC_MAPPING)
    assert connector.capabilities.targeted
    (record,) = list(connector.read_skus(["A-1", "NOT-THERE"]))
    assert (record.sku, record.price, record.stock) == (
        "A-1",
        Money(D("19.99"), EUR),
        {"default": 3},
    )
    assert connector.quality_notes() == []  # the row without a SKU is not its concern
    error = input_error(connector)  # the whole read still reports the bad price
    assert "zwölf" in str(error) or "A-2" in str(error)
    assert len(connector.quality_notes()) == 1
