"""The xlsx connector: one sheet of a workbook, its cells as exact values, read only; and a
workbook given to the csv connector is named for what it is."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from typer.testing import CliRunner

from omnisync.cli import app
from omnisync.errors import InputError
from omnisync.models import Money, Record
from omnisync.sdk.connector import Connector, ConnectorContext
from omnisync.sdk.testing import ConnectorContract
from omnisync_connectors.files.csv import CsvConnector
from omnisync_connectors.files.json import JsonConnector
from omnisync_connectors.files.json import JsonLinesConnector as JsonLines
from omnisync_connectors.files.xlsx import XlsxConnector, cell_value
from omnisync_connectors.files.xml import XmlConnector

D = Decimal
HEADER = ["Artikelnummer", "Bezeichnung", "VK", "Bestand", "EAN"]
ROWS: list[list[Any]] = [
    ["KA-1", "Kaffeemühle", 19.99, 5.0, "04006381333931"],
    ["KA-2", "Teekanne", 0.1 + 0.2, 0, 4006381333948],
    ["KA-3", "Wasserkocher", 49.9, 12, None],
]
MAPPING = {"sku": "Artikelnummer", "title": "Bezeichnung", "price": "VK", "stock": "Bestand"}


def workbook(path: Path, sheets: dict[str, list[list[Any]]]) -> Path:
    """A workbook with these sheets, in order, each a list of rows from A1."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def make(folder: Path, **options: Any) -> XlsxConnector:
    options = {"path": "prices.xlsx", "currency": "EUR", "mapping": MAPPING, **options}
    return XlsxConnector(
        XlsxConnector.Options.model_validate(options), ConnectorContext("erp", folder)
    )


def read(connector: Connector) -> list[Record]:
    with connector:
        return list(connector.read())


def input_error(connector: Connector) -> str:
    with pytest.raises(InputError) as caught:
        read(connector)
    return str(caught.value)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stdout + result.stderr


class TestXlsxContract(ConnectorContract):
    @pytest.fixture
    def connector(self, tmp_path: Path) -> Connector:
        workbook(tmp_path / "prices.xlsx", {"Preise": [HEADER, *ROWS]})
        return make(tmp_path, mapping={**MAPPING, "gtin": "EAN"})


# -- cells -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        (19.99, D("19.99")),  # the double 19.989999999999998436805981327779591083526611328125
        (0.1 + 0.2, D("0.3")),  # 0.30000000000000004: binary noise beyond Excel's 15 digits
        (23.788099999999996, D("23.7881")),  # =19.99*1.19, as Excel displays it
        (5.0, 5),  # a stock level
        (4006381333931.0, 4006381333931),  # a GTIN typed as a number: all its digits
        (-0.0, 0),
        (1e20, 10**20),
        (7, 7),
        ("0012345678905", "0012345678905"),  # text keeps its leading zeros
        (True, "true"),
        (date(2026, 12, 24), "2026-12-24"),
        (datetime(2026, 12, 24, 18, 30), "2026-12-24T18:30:00"),
        ("", ""),
    ],
)
def test_cells_become_exact_values(cell: Any, value: Any) -> None:
    converted = cell_value(cell)
    assert converted == value
    assert type(converted) is type(value)


def test_numbers_gtins_and_dates_from_a_workbook(tmp_path: Path) -> None:
    rows = [
        ["sku", "price", "stock", "gtin", "start", "end"],
        ["A", 19.99, 5.0, "0012345678905", date(2026, 11, 1), datetime(2026, 11, 30, 18, 0)],
        ["B", 0.1 + 0.2, 3, 4006381333931, None, date(2026, 12, 24)],
    ]
    workbook(tmp_path / "prices.xlsx", {"Sheet1": rows})
    mapping = {"sku": "sku", "sale_price": "price", "stock": "stock", "gtin": "gtin"}
    connector = make(tmp_path, mapping={**mapping, "sale_start": "start", "sale_end": "end"})
    a, b = read(connector)
    assert a.sale_price == Money(D("19.99"), "EUR")
    assert b.sale_price == Money(D("0.3"), "EUR")
    assert (a.stock, b.stock) == ({"default": 5}, {"default": 3})
    assert a.gtin == "00012345678905"  # the UPC's leading zeros kept (GS1's 14 digits)
    assert b.gtin == "04006381333931"
    utc = connector.zone
    assert a.sale_start == datetime(2026, 11, 1, tzinfo=utc)
    assert a.sale_end == datetime(2026, 11, 30, 18, 0, tzinfo=utc)
    assert b.sale_end == datetime(2026, 12, 24, 23, 59, 59, tzinfo=utc)  # ends on that day


# -- sheets and the header row -----------------------------------------------------------------


@pytest.mark.parametrize("sheet", ["Preise", 1, "2024"], ids=["name", "index", "numeric-name"])
def test_the_sheet_by_name_or_0_based_index(tmp_path: Path, sheet: str | int) -> None:
    other = [["Artikelnummer", "VK"], ["X-1", 1.0]]
    sheets = {"Notes": other, "Preise": [HEADER, *ROWS], "Archiv": other}
    if sheet == "2024":
        sheets = {"Notes": other, "2024": [HEADER, *ROWS]}
    workbook(tmp_path / "prices.xlsx", sheets)
    # YAML reads `sheet: 2024` as a number: a sheet of that name is still found.
    wanted = 2024 if sheet == "2024" else sheet
    records = read(make(tmp_path, sheet=wanted))
    assert [r.sku for r in records] == ["KA-1", "KA-2", "KA-3"]
    name = "2024" if sheet == "2024" else "Preise"
    assert records[0].origin == f"prices.xlsx[{name}] row 2"


def test_the_first_sheet_by_default(tmp_path: Path) -> None:
    workbook(tmp_path / "prices.xlsx", {"Preise": [HEADER, *ROWS], "Notes": [["x"]]})
    assert [r.sku for r in read(make(tmp_path))] == ["KA-1", "KA-2", "KA-3"]


def test_header_row_skips_a_title_block_and_rows_keep_excel_numbers(tmp_path: Path) -> None:
    rows = [["Preisliste Herbst 2026"], [], HEADER, ROWS[0], [], ROWS[1], [None, "note"]]
    workbook(tmp_path / "prices.xlsx", {"Preise": rows})
    records = read(make(tmp_path, header_row=3))
    assert [(r.sku, r.origin) for r in records] == [
        ("KA-1", "prices.xlsx[Preise] row 4"),
        ("KA-2", "prices.xlsx[Preise] row 6"),
    ]
    assert records[0].title == "Kaffeemühle"
    # Row 7 has a title and no SKU: noted (it is skipped), with its row.
    connector = make(tmp_path, header_row=3)
    read(connector)
    assert [note.origin for note in connector.quality_notes()] == ["prices.xlsx[Preise] row 7"]


def test_a_table_that_does_not_start_at_a1_keeps_excel_row_numbers(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Preise"
    for r, row in enumerate([HEADER, *ROWS], start=5):
        for c, value in enumerate(row, start=3):  # the table starts at C5
            sheet.cell(row=r, column=c, value=value)
    book.save(tmp_path / "prices.xlsx")
    records = read(make(tmp_path, header_row=5))
    assert [(r.sku, r.origin) for r in records] == [
        ("KA-1", "prices.xlsx[Preise] row 6"),
        ("KA-2", "prices.xlsx[Preise] row 7"),
        ("KA-3", "prices.xlsx[Preise] row 8"),
    ]


def test_the_wrong_header_row_says_which_columns_it_found(tmp_path: Path) -> None:
    workbook(tmp_path / "prices.xlsx", {"Preise": [["Preisliste"], HEADER, *ROWS]})
    message = input_error(make(tmp_path))
    assert "prices.xlsx[Preise] row 1" in message
    assert "Artikelnummer" in message


def test_a_mapped_column_named_twice(tmp_path: Path) -> None:
    workbook(tmp_path / "prices.xlsx", {"Preise": [[*HEADER, "VK"], *ROWS]})
    message = input_error(make(tmp_path))
    assert "prices.xlsx[Preise] row 1: the header names 'VK' more than once" in message


def test_a_header_row_beyond_the_data(tmp_path: Path) -> None:
    workbook(tmp_path / "prices.xlsx", {"Preise": [HEADER, *ROWS]})
    message = input_error(make(tmp_path, header_row=40))
    assert "header_row 40 is below the last row (4)" in message


def test_a_missing_sheet_lists_the_sheets(tmp_path: Path) -> None:
    workbook(tmp_path / "prices.xlsx", {"Preise": [HEADER, *ROWS], "Archiv": [["x"]]})
    message = input_error(make(tmp_path, sheet="preise "))
    assert "has no sheet 'preise '; its sheets are 'Preise', 'Archiv'" in message
    assert "did you mean 'Preise'?" in message
    message = input_error(make(tmp_path, sheet=2))
    assert "has no sheet 2 (0-based); its sheets are 0: 'Preise', 1: 'Archiv'" in message


def test_an_empty_sheet(tmp_path: Path) -> None:
    workbook(tmp_path / "prices.xlsx", {"Preise": [HEADER, *ROWS], "Leer": []})
    assert "prices.xlsx[Leer]: the sheet is empty" in input_error(make(tmp_path, sheet="Leer"))


def test_bad_values_are_reported_with_sheet_and_row(tmp_path: Path) -> None:
    rows = [HEADER, ROWS[0], ["KA-2", "Teekanne", "N/A", 2.5, None], ROWS[2]]
    workbook(tmp_path / "prices.xlsx", {"Preise": rows})
    message = input_error(make(tmp_path))
    assert "prices.xlsx[Preise] row 3: column 'VK' (SKU KA-2): 'N/A' has no amount" in message
    assert "prices.xlsx[Preise] row 3: column 'Bestand' (SKU KA-2)" in message
    assert "'2.5' must be a whole number" in message


# -- the command line --------------------------------------------------------------------------


def config(folder: Path, canonical: str, channel: str = "", push: bool = False) -> Path:
    shop = (
        "  shop:\n    connector: csv\n    options: {path: shop.csv, currency: EUR, "
        "mapping: {sku: sku, title: title, price: price, stock: stock}}\n"
    )
    path = folder / "omnisync.yaml"
    path.write_text(
        f"settings: {{state: state.db}}\ncanonical:\n{canonical}channels:\n"
        + (channel or shop)
        + ("    push: {fields: [price]}\n" if push else ""),
        encoding="utf-8",
    )
    return path


XLSX_CANONICAL = (
    "  connector: xlsx\n  options:\n    path: prices.xlsx\n    sheet: Preise\n"
    "    currency: EUR\n"
    "    mapping: {sku: Artikelnummer, title: Bezeichnung, price: VK, stock: Bestand}\n"
)
ERP_CANONICAL = (
    "  connector: csv\n  options: {path: erp.csv, currency: EUR, "
    "mapping: {sku: sku, title: title, price: price, stock: stock}}\n"
)
XLSX_CHANNEL = "  sheet:\n" + "\n".join("  " + line for line in XLSX_CANONICAL.splitlines()) + "\n"
SHOP = "sku,title,price,stock\nKA-1,Kaffeemühle,19.99,5\nKA-2,Teekanne,0.35,0\nKA-3,Wasserkocher,49.90,12\n"


def test_check_a_canonical_workbook_against_a_csv_channel(tmp_path: Path) -> None:
    workbook(tmp_path / "prices.xlsx", {"Notes": [["x"]], "Preise": [HEADER, *ROWS]})
    (tmp_path / "shop.csv").write_text(SHOP, encoding="utf-8")
    code, output = invoke("check", "-c", str(config(tmp_path, XLSX_CANONICAL)), "-f", "json")
    assert code == 1, output
    (channel,) = json.loads(output)["channels"]
    assert channel["counts"]["canonical"] == channel["counts"]["channel"] == 3
    # 19.99 and 49.9 (doubles in the workbook) equal the CSV's 19.99 and 49.90; 0.1 + 0.2 is
    # 0.3, not 0.30000000000000004, and differs from the shop's 0.35 — the one finding.
    assert [(f["sku"], f["field"]) for f in channel["findings"]] == [("KA-2", "price")]
    (finding,) = channel["findings"]
    assert finding["expected"] == "0.30 EUR"


def test_check_a_workbook_channel_against_a_csv_canonical(tmp_path: Path) -> None:
    workbook(tmp_path / "prices.xlsx", {"Preise": [HEADER, *ROWS]})
    (tmp_path / "erp.csv").write_text(SHOP.replace("0.35", "0.30"), encoding="utf-8")
    path = config(tmp_path, ERP_CANONICAL, XLSX_CHANNEL)
    code, output = invoke("check", "-c", str(path), "-f", "json")
    assert code == 0, output
    (channel,) = json.loads(output)["channels"]
    assert channel["counts"]["matched"] == 3
    assert channel["findings"] == []


def test_duplicate_skus_in_a_workbook_name_their_rows(tmp_path: Path) -> None:
    workbook(tmp_path / "prices.xlsx", {"Preise": [HEADER, *ROWS, ROWS[0]]})
    (tmp_path / "shop.csv").write_text(SHOP, encoding="utf-8")
    code, output = invoke("check", "-c", str(config(tmp_path, XLSX_CANONICAL)))
    assert code == 2, output
    assert "'KA-1' appears 2 times" in output
    assert "prices.xlsx[Preise] row 2" in output
    assert "prices.xlsx[Preise] row 5" in output


def test_a_workbook_given_to_the_csv_connector_is_named_for_what_it_is(tmp_path: Path) -> None:
    workbook(tmp_path / "prices.xlsx", {"Preise": [HEADER, *ROWS]})
    (tmp_path / "shop.csv").write_text(SHOP, encoding="utf-8")
    canonical = XLSX_CANONICAL.replace("connector: xlsx", "connector: csv").replace(
        "    sheet: Preise\n", ""
    )
    code, output = invoke("check", "-c", str(config(tmp_path, canonical)))
    assert code == 2, output
    assert "prices.xlsx: this is an Excel file (.xlsx workbook), use connector: xlsx" in output
    assert "encoding" not in output


@pytest.mark.parametrize(
    ("head", "what"),
    [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(200), "an Excel file (.xls workbook)"),
        (
            b"PK\x03\x04" + bytes(26) + b"mimetypeapplication/vnd.oasis.opendocument.spreadsheet",
            "a spreadsheet (OpenDocument .ods)",
        ),
    ],
    ids=["xls", "ods"],
)
def test_legacy_and_opendocument_workbooks_in_the_csv_connector(
    tmp_path: Path, head: bytes, what: str
) -> None:
    (tmp_path / "export.csv").write_bytes(head)
    options = {"path": "export.csv", "currency": "EUR", "mapping": {"sku": "sku"}}
    connector = CsvConnector(
        CsvConnector.Options.model_validate(options), ConnectorContext("erp", tmp_path)
    )
    assert f"export.csv: this is {what}, use connector: xlsx" in input_error(connector)


@pytest.mark.parametrize("kind", ["json", "jsonl", "xml"])
def test_the_other_text_connectors_name_a_workbook_too(tmp_path: Path, kind: str) -> None:
    workbook(tmp_path / "feed.xlsx", {"Preise": [HEADER, *ROWS]})
    options = {"path": "feed.xlsx", "mapping": {"sku": "Artikelnummer"}}
    cls = XmlConnector if kind == "xml" else JsonConnector if kind == "json" else JsonLines
    connector = cls(cls.Options.model_validate(options), ConnectorContext("feed", tmp_path))
    assert "feed.xlsx: this is an Excel file (.xlsx workbook), use connector: xlsx" in (
        input_error(connector)
    )


def test_a_push_to_a_workbook_is_refused(tmp_path: Path) -> None:
    workbook(tmp_path / "prices.xlsx", {"Preise": [HEADER, *ROWS]})
    (tmp_path / "erp.csv").write_text(SHOP, encoding="utf-8")
    path = config(tmp_path, ERP_CANONICAL, XLSX_CHANNEL, push=True)
    for command in ("validate", "plan", "sync"):
        code, output = invoke(command, "-c", str(path))
        assert code == 2, output
        assert "connector 'xlsx' cannot write price (it writes: nothing)" in output


@pytest.mark.parametrize(
    "damage",
    ["truncated", "bytes", "text", "empty"],
)
def test_a_damaged_workbook_is_a_clear_error(tmp_path: Path, damage: str) -> None:
    path = workbook(tmp_path / "prices.xlsx", {"Preise": [HEADER, *ROWS]})
    data = path.read_bytes()
    path.write_bytes(
        {
            "truncated": data[: len(data) // 2],
            "bytes": data[:4] + bytes(range(256)) * 4,
            "text": b"Artikelnummer,VK\nKA-1,19.99\n",
            "empty": b"",
        }[damage]
    )
    (tmp_path / "shop.csv").write_text(SHOP, encoding="utf-8")
    code, output = invoke("check", "-c", str(config(tmp_path, XLSX_CANONICAL)))
    assert code == 2, output
    expected = {
        "truncated": "prices.xlsx: cannot read the workbook: it is damaged or truncated",
        "bytes": "prices.xlsx: cannot read the workbook: it is damaged or truncated",
        "text": "prices.xlsx: is not a spreadsheet workbook",
        "empty": "prices.xlsx: the file is empty",
    }[damage]
    assert expected in output
