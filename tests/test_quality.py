"""Data-quality findings: canonical values that are blank (unknown), rows without a SKU and
barcodes a spreadsheet mangled are reported per row (source, file:line, SKU, field) and never
become changes; the rest of the row is still compared."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from omnisync.check import run_check
from omnisync.cli import app
from omnisync.config import load_config
from omnisync.errors import InputError
from omnisync.models import CheckResult, Finding, Kind
from omnisync.plan import build_plan
from omnisync.report import render
from omnisync.store import Store

DATA = Path(__file__).resolve().parent / "data" / "quality"
REAL = Path(__file__).resolve().parents[2] / "shared" / "real-files"

CONFIG = """\
settings: {{state: state.db}}
canonical:
  connector: csv
{canonical_extra}  options: {{path: {canonical}, currency: EUR, mapping: {{{mapping}}}}}
channels:
  shop:
    connector: csv
    options: {{path: {channel}, currency: EUR, mapping: {{{mapping}}}}}
    push:
      fields: [title, gtin, price, stock]
      create: true
      guard: {{max_records_pct: 100}}
"""
MAPPING = "sku: sku, title: title, price: price, stock: stock"


def project(
    tmp_path: Path,
    canonical: str,
    channel: str,
    mapping: str = MAPPING,
    canonical_extra: str = "",
) -> Path:
    for name in (canonical, channel):
        shutil.copy(DATA / name, tmp_path / name)
    path = tmp_path / "omnisync.yaml"
    path.write_text(
        CONFIG.format(
            canonical=canonical,
            channel=channel,
            mapping=mapping,
            canonical_extra=canonical_extra,
        ),
        encoding="utf-8",
    )
    return path


def quality(result: CheckResult) -> list[Finding]:
    return [f for f in result.findings if f.kind is Kind.DATA_QUALITY]


def keyed(findings: list[Finding]) -> set[tuple[str, str, str | None]]:
    return {(f.kind.value, f.sku, f.field) for f in findings}


# ---------------------------------------------------------------- blank canonical cells


def test_blank_canonical_cells_are_reported_and_never_planned(tmp_path: Path) -> None:
    config = load_config(project(tmp_path, "erp_blanks.csv", "shop_blanks.csv"))
    result = run_check(config)
    found = quality(result)
    assert {(f.sku, f.field, f.source, f.origin) for f in found} == {
        ("A-2", "title", "canonical", "erp_blanks.csv:3"),
        ("A-3", "price", "canonical", "erp_blanks.csv:4"),
        ("A-4", "stock", "canonical", "erp_blanks.csv:5"),
    }
    assert all("blank" in (f.detail or "") for f in found)
    # The other fields of those rows still compare: A-3's stock differs, A-5's title.
    changed = {(f.sku, f.field) for f in result.findings if f.kind is Kind.CHANGED}
    assert changed == {("A-3", "stock"), ("A-5", "title")}

    plan = build_plan(result, config)
    keys = {c.key for c in plan.changes}
    assert keys == {"A-3:stock", "A-5:title"}
    assert not any(c.after in (None, "", 0) for c in plan.changes)
    skipped = {(s.sku, s.what) for s in plan.channel("shop").skipped}
    assert {("A-2", "title"), ("A-3", "price"), ("A-4", "stock")} <= skipped


def test_blank_canonical_cells_create_records_without_those_fields(tmp_path: Path) -> None:
    (tmp_path / "shop_blanks.csv").write_text("sku,title,price,stock\n", encoding="utf-8")
    shutil.copy(DATA / "erp_blanks.csv", tmp_path / "erp_blanks.csv")
    path = tmp_path / "omnisync.yaml"
    path.write_text(
        CONFIG.format(
            canonical="erp_blanks.csv",
            channel="shop_blanks.csv",
            mapping=MAPPING,
            canonical_extra="",
        ),
        encoding="utf-8",
    )
    config = load_config(path)
    plan = build_plan(run_check(config), config)
    created = {c.sku: c.after for c in plan.changes}
    assert "title" not in created["A-2"]
    assert "price" not in created["A-3"]
    assert "stock" not in created["A-4"]
    assert created["A-1"]["stock"] == {"default": 5}


def test_sync_does_not_write_blank_canonical_values(tmp_path: Path) -> None:
    path = project(tmp_path, "erp_blanks.csv", "shop_blanks.csv")
    runner = CliRunner()
    done = runner.invoke(app, ["sync", "-c", str(path)], catch_exceptions=False)
    assert done.exit_code in (0, 1), done.output
    rows = {r["sku"]: r for r in csv.DictReader((tmp_path / "shop_blanks.csv").open())}
    assert rows["A-2"]["title"] == "Beta tee"
    assert rows["A-3"]["price"] == "13.00"
    assert rows["A-3"]["stock"] == "7"
    assert rows["A-4"]["stock"] == "9"
    assert rows["A-5"]["title"] == "Epsilon new"


# ---------------------------------------------------------------- rows without a SKU


def test_channel_row_without_sku_is_skipped_and_reported_unlinked(tmp_path: Path) -> None:
    config = load_config(project(tmp_path, "erp_blanks.csv", "shop_unlinked.csv"))
    result = run_check(config)
    shop = result.channels[0]
    assert shop.error is None
    assert shop.channel_count == 2
    unlinked = [f for f in quality(result) if f.field == "sku"]
    assert [(f.sku, f.source, f.origin) for f in unlinked] == [("", "shop", "shop_unlinked.csv:3")]
    assert "no SKU" in (unlinked[0].detail or "")
    assert shop.count(Kind.DATA_QUALITY) == len(quality(result))


def test_canonical_rows_without_sku_are_an_input_error_listing_every_line(
    tmp_path: Path,
) -> None:
    config = load_config(project(tmp_path, "erp_unlinked.csv", "shop_blanks.csv"))
    with pytest.raises(InputError) as caught:
        run_check(config)
    text = str(caught.value)
    assert "erp_unlinked.csv:3" in text
    assert "erp_unlinked.csv:5" in text
    assert "on_missing_sku" in (caught.value.hint or "")

    runner = CliRunner()
    done = runner.invoke(app, ["check", "-c", str(tmp_path / "omnisync.yaml")])
    assert done.exit_code == 2
    assert "Traceback" not in done.output


def test_canonical_rows_without_sku_can_be_skipped_by_config(tmp_path: Path) -> None:
    path = project(
        tmp_path, "erp_unlinked.csv", "shop_blanks.csv", canonical_extra="  on_missing_sku: skip\n"
    )
    result = run_check(load_config(path))
    unlinked = [f for f in quality(result) if f.field == "sku"]
    assert [(f.source, f.origin) for f in unlinked] == [
        ("canonical", "erp_unlinked.csv:3"),
        ("canonical", "erp_unlinked.csv:5"),
    ]
    assert result.canonical_count == 2


def test_shopify_image_rows_are_not_items_but_skuless_variants_are_unlinked(
    tmp_path: Path,
) -> None:
    shutil.copy(DATA / "shopify_skuless.csv", tmp_path / "shop.csv")
    (tmp_path / "erp.csv").write_text(
        "sku,title,price\nTEE-S,Tee,25.00\nCAP-1,Cap,15.00\n", encoding="utf-8"
    )
    path = tmp_path / "omnisync.yaml"
    path.write_text(
        "canonical:\n  connector: csv\n"
        "  options: {path: erp.csv, currency: EUR, mapping: {sku: sku, title: title, price: price}}\n"
        "channels:\n  shop:\n    connector: csv\n"
        "    options: {path: shop.csv, preset: shopify, currency: EUR}\n",
        encoding="utf-8",
    )
    result = run_check(load_config(path))
    assert keyed(result.findings) == {("data_quality", "", "sku")}
    (finding,) = result.findings
    assert finding.origin == "shop.csv:3"


# ---------------------------------------------------------------- mangled barcodes


def test_mangled_barcodes_are_reported_per_row_and_left_out_of_the_comparison(
    tmp_path: Path,
) -> None:
    mapping = "sku: sku, title: title, price: price, gtin: gtin"
    config = load_config(project(tmp_path, "erp_gtin.csv", "shop_gtin.csv", mapping=mapping))
    result = run_check(config)
    found = quality(result)
    assert {(f.sku, f.field, f.source, f.origin) for f in found} == {
        ("G-2", "gtin", "canonical", "erp_gtin.csv:3"),
        ("G-3", "gtin", "shop", "shop_gtin.csv:4"),
    }
    by_sku = {f.sku: f for f in found}
    assert by_sku["G-2"].canonical == "4.00638E+12"
    assert by_sku["G-3"].actual == "4.00638E+12"
    assert "scientific notation" in (by_sku["G-3"].detail or "")
    changed = {(f.sku, f.field) for f in result.findings if f.kind is Kind.CHANGED}
    assert changed == {("G-2", "price")}
    assert {c.key for c in build_plan(result, config).changes} == {"G-2:price"}


def test_the_same_damaged_barcode_on_both_sides_is_consistent(tmp_path: Path) -> None:
    """A channel fed from the same export holds the same mangled text: it shows what canonical
    has, so nothing is reported for it; a different damaged text still is."""
    mapping = "sku: sku, title: title, price: price, gtin: gtin"
    path = project(tmp_path, "erp_gtin.csv", "shop_gtin.csv", mapping=mapping)
    shop = tmp_path / "shop_gtin.csv"
    shop.write_text(
        shop.read_text(encoding="utf-8").replace("4006381333955", "4.00638E+12"), encoding="utf-8"
    )
    result = run_check(load_config(path))
    assert {(f.sku, f.source) for f in quality(result)} == {("G-3", "shop")}
    gtin = {f.sku for f in result.findings if f.field == "gtin" and f.kind is Kind.CHANGED}
    assert gtin == set()  # still left out of the comparison


def test_a_price_push_to_a_row_with_a_mangled_barcode_is_written(tmp_path: Path) -> None:
    mapping = "sku: sku, title: title, price: price, gtin: gtin"
    path = project(tmp_path, "erp_gtin.csv", "shop_gtin.csv", mapping=mapping)
    (tmp_path / "erp_gtin.csv").write_text(
        "sku,title,price,gtin\nG-1,One,10.00,4006381333931\nG-2,Two,11.50,4006381333955\n"
        "G-3,Three,12.50,4006381333948\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    done = runner.invoke(app, ["sync", "-c", str(path)], catch_exceptions=False)
    assert done.exit_code in (0, 1), done.output
    rows = {r["sku"]: r for r in csv.DictReader((tmp_path / "shop_gtin.csv").open())}
    assert rows["G-3"]["price"] == "12.50"
    assert rows["G-3"]["gtin"] == "4.00638E+12"


# ---------------------------------------------------------------- reports and history


@pytest.fixture
def blank_result(tmp_path: Path) -> CheckResult:
    return run_check(load_config(project(tmp_path, "erp_blanks.csv", "shop_blanks.csv")))


def test_every_report_format_carries_data_quality_findings(blank_result: CheckResult) -> None:
    document = json.loads(render(blank_result, "json"))
    shop = document["channels"][0]
    assert shop["counts"]["data_quality"] == 3
    assert document["totals"]["data_quality"] == 3
    row = next(f for f in shop["findings"] if f["kind"] == "data_quality" and f["sku"] == "A-3")
    assert (row["source"], row["origin"], row["field"]) == (
        "canonical",
        "erp_blanks.csv:4",
        "price",
    )

    rows = list(csv.DictReader(io.StringIO(render(blank_result, "csv"))))
    quality_rows = [r for r in rows if r["kind"] == "data_quality"]
    assert {(r["sku"], r["field"], r["source"], r["origin"]) for r in quality_rows} >= {
        ("A-3", "price", "canonical", "erp_blanks.csv:4")
    }

    root = ET.fromstring(render(blank_result, "junit"))
    case = next(c for c in root.iter("testcase") if c.get("name") == "data_quality")
    failure = case.find("failure")
    assert failure is not None
    assert "erp_blanks.csv:4" in (failure.text or "")

    markdown = render(blank_result, "markdown", limit=0)
    assert "data\\_quality" in markdown or "data_quality" in markdown
    assert "erp\\_blanks.csv:4" in markdown

    table = render(blank_result, "table", limit=0)
    assert "data_quality" in table
    assert "erp_blanks.csv:4" in table
    assert "Quality" in table


def test_the_run_history_keeps_data_quality_findings(
    tmp_path: Path, blank_result: CheckResult
) -> None:
    with Store.open("history.db", base_dir=tmp_path) as store:
        run_id = store.record_check(blank_result, 1)
        loaded = store.load(run_id)
        totals = store.runs()[0].totals
    found = {(f.sku, f.field, f.source, f.origin) for f in quality(loaded)}
    assert ("A-3", "price", "canonical", "erp_blanks.csv:4") in found
    assert totals["data_quality"] == 3


def test_data_quality_findings_exit_1_like_mismatches(tmp_path: Path) -> None:
    path = project(tmp_path, "erp_blanks.csv", "shop_blanks.csv")
    (tmp_path / "shop_blanks.csv").write_text(
        "sku,title,price,stock\nA-1,Alpha tee,10.00,5\nA-2,Beta tee,12.00,3\n"
        "A-3,Gamma tee,13.00,7\nA-4,Delta tee,14.00,9\nA-5,Epsilon new,15.00,2\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    done = runner.invoke(app, ["check", "-c", str(path), "--format", "json"])
    assert done.exit_code == 1, done.output
    kinds = {f["kind"] for c in json.loads(done.stdout)["channels"] for f in c["findings"]}
    assert kinds == {"data_quality"}
    fail_on = runner.invoke(app, ["check", "-c", str(path), "--fail-on", "data_quality"])
    assert fail_on.exit_code == 1


# ---------------------------------------------------------------- the real Shopify template


def test_real_shopify_template_checks_against_itself_with_barcode_findings_only(
    tmp_path: Path,
) -> None:
    template = REAL / "shopify_product_template.csv"
    if not template.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{template} is missing under CI")
        pytest.skip(f"{template} is absent (the shared real files are not checked out)")
    shutil.copy(template, tmp_path / "canonical.csv")
    shutil.copy(template, tmp_path / "shop.csv")
    path = tmp_path / "omnisync.yaml"
    path.write_text(
        "canonical:\n  connector: csv\n"
        "  options: {path: canonical.csv, preset: shopify, currency: USD}\n"
        "channels:\n  shop:\n    connector: csv\n"
        "    options: {path: shop.csv, preset: shopify, currency: USD}\n",
        encoding="utf-8",
    )
    result = run_check(load_config(path))
    shop = result.channels[0]
    assert shop.error is None
    assert result.canonical_count == 16
    assert shop.channel_count == 16
    # Against itself: both sides hold the same damaged barcodes, so the copy is consistent.
    assert result.findings == []
    # A shop whose barcodes are right: canonical's 16 barcodes in scientific notation are
    # reported per row (the image-only row 17 is no item) and left out of the comparison.
    text = (tmp_path / "shop.csv").read_text(encoding="utf-8")
    fixed = re.sub(r"\b\d\.\d+E\+\d+\b", "4006381333931", text)
    assert fixed != text
    (tmp_path / "shop.csv").write_text(fixed, encoding="utf-8")
    result = run_check(load_config(path))
    assert {f.kind for f in result.findings} == {Kind.DATA_QUALITY}
    found = quality(result)
    assert len(found) == 16
    assert {f.field for f in found} == {"gtin"}
    assert {f.origin for f in found if f.source == "canonical"} == {
        f"canonical.csv:{line}" for line in (*range(2, 17), 18)
    }
