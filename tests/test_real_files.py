"""Real export files other projects publish (../shared/real-files/, see its SOURCES.md).

Each file checked against itself with its preset reports nothing but what is wrong in the file
itself (the Shopify template's barcodes, which a spreadsheet turned into 3.65275E+11), and
against a copy with a few hand edits reports exactly those edits.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from omnisync.cli import app

REAL = Path(__file__).resolve().parents[2] / "shared" / "real-files"

#: preset, file, delimiter, columns: sku, price, title, stock (None: the file has none)
FILES = [
    (
        "shopify",
        "shopify_product_template.csv",
        ",",
        ("Variant SKU", "Variant Price", "Title", None),
    ),
    (
        "woocommerce",
        "woocommerce_sample_products.csv",
        ",",
        ("SKU", "Regular price", "Name", "Stock"),
    ),
    (
        "shopware6",
        "shopware_products_with_list_price.csv",
        ";",
        ("product_number", "price_gross", "name", "stock"),
    ),
    ("magento2", "magento_products_to_import_with_qty.csv", ",", ("sku", "price", "name", "qty")),
    ("google", "google_wix_products-feed.tsv", "\t", ("id", "price", "title", None)),
]


def _require_real_files() -> None:
    if not REAL.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{REAL} is missing; CI must have ../shared/real-files")
        pytest.skip(f"{REAL} is not here (it sits beside the project root)")


def _project(tmp_path: Path, preset: str, name: str, channel_file: str) -> Path:
    connector = "tsv" if name.endswith(".tsv") else "csv"
    shutil.copy(REAL / name, tmp_path / name)
    config = tmp_path / "omnisync.yaml"
    config.write_text(
        f"""\
settings: {{state: state.db}}
canonical:
  connector: {connector}
  options: {{path: {name}, preset: {preset}, currency: USD}}
channels:
  copy:
    connector: {connector}
    options: {{path: {channel_file}, preset: {preset}, currency: USD}}
""",
        encoding="utf-8",
    )
    return config


def _findings(config: Path) -> set[tuple[str, str, str | None]]:
    result = CliRunner().invoke(app, ["check", "-c", str(config), "--no-history", "-f", "json"])
    assert result.exit_code in (0, 1), result.stdout + result.stderr
    return {
        (f["kind"], f["sku"], f["field"])
        for c in json.loads(result.stdout)["channels"]
        for f in c["findings"]
    }


@pytest.mark.parametrize(
    ("preset", "name", "delimiter", "columns"), FILES, ids=[f[0] for f in FILES]
)
def test_a_real_file_checked_against_itself_reports_nothing_of_its_own(
    tmp_path: Path, preset: str, name: str, delimiter: str, columns: tuple[str, ...]
) -> None:
    _require_real_files()
    found = _findings(_project(tmp_path, preset, name, name))
    # Nothing, not even the Shopify template's mangled barcodes: both sides hold the same
    # damaged text, so the copy shows what canonical has (tests/test_quality.py reports them
    # where the texts differ).
    assert found == set()


@pytest.mark.parametrize(
    ("preset", "name", "delimiter", "columns"), FILES, ids=[f[0] for f in FILES]
)
def test_a_real_file_with_hand_edits_reports_exactly_those(
    tmp_path: Path, preset: str, name: str, delimiter: str, columns: tuple[str, ...]
) -> None:
    _require_real_files()
    sku, price, title, stock = columns
    text = (REAL / name).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text), delimiter=delimiter))
    header = list(rows[0])
    units = [r for r in rows if r.get(sku) and r.get(price)]
    edits: set[tuple[str, str, str | None]] = set()
    units[0][price] = "1.23"
    # Shopware's first product has a list price (5000) above its price: the price it sells
    # at is a sale price, so the edit shows there.
    edits.add(("changed", units[0][sku], "sale_price" if preset == "shopware6" else "price"))
    target = units[1 % len(units)]
    if target[title]:
        target[title] = target[title] + " (edited)"
        edits.add(("changed", target[sku], "title"))
    if stock is not None and len(units) > 2 and units[2][stock]:
        units[2][stock] = str(int(units[2][stock]) + 5)
        edits.add(("changed", units[2][sku], "stock"))
    out = io.StringIO()
    writer = csv.DictWriter(out, header, delimiter=delimiter, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    edited = "edited" + Path(name).suffix
    (tmp_path / edited).write_text(out.getvalue(), encoding="utf-8")
    found = _findings(_project(tmp_path, preset, name, edited))
    assert {f for f in found if f[0] != "data_quality"} == edits


def test_a_feed_with_availability_against_a_canonical_without_stock_says_so_once(
    tmp_path: Path,
) -> None:
    """Google's feed carries availability, this canonical neither stock nor availability:
    availability is not checked (never compared with a stock of 0), and the report says so
    once per channel in every format."""
    _require_real_files()
    name = "google_wix_products-feed.tsv"
    shutil.copy(REAL / name, tmp_path / name)
    rows = list(csv.DictReader(io.StringIO((REAL / name).read_text("utf-8")), delimiter="\t"))
    lines = ["sku,title,price"] + [f"{r['id']},{r['title']},{r['price'].split()[0]}" for r in rows]
    (tmp_path / "erp.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = tmp_path / "omnisync.yaml"
    config.write_text(
        f"""\
settings: {{state: state.db}}
canonical:
  connector: csv
  options: {{path: erp.csv, currency: USD, mapping: {{sku: sku, title: title, price: price}}}}
channels:
  feed:
    connector: tsv
    options: {{path: {name}, preset: google, currency: USD}}
""",
        encoding="utf-8",
    )
    runner = CliRunner()
    result = runner.invoke(app, ["check", "-c", str(config), "-f", "json"])
    assert result.exit_code == 0, result.stdout + result.stderr
    channel = json.loads(result.stdout)["channels"][0]
    assert channel["findings"] == []
    assert "availability" not in channel["fields"]
    said = [n for n in channel["notes"] if "availability" in n]
    assert said == ["not checked: availability (canonical carries neither stock nor availability)"]
    table = runner.invoke(app, ["check", "-c", str(config)], terminal_width=200)
    assert table.stdout.count("canonical carries neither stock nor availability") == 1
    markdown = runner.invoke(app, ["check", "-c", str(config), "-f", "markdown"])
    assert markdown.stdout.count("canonical carries neither stock nor availability") == 1
