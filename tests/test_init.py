"""``omnisync init``: a config proposed from the files at hand, which ``validate`` accepts and
``check`` runs, for the shipped examples and for real exports other projects publish."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from openpyxl import Workbook
from typer.testing import CliRunner

from omnisync.cli import app, starting
from omnisync.init import normalise, propose_mapping

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "real-files"


def invoke(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, list(args), input=input, catch_exceptions=False, env={"COLUMNS": "160"}
    )
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def files(tmp_path: Path) -> Path:
    for name in ("erp_export.csv", "webshop_woocommerce.csv", "pos_export.csv", "google_feed.tsv"):
        shutil.copy(ROOT / "examples" / name, tmp_path / name)
    shutil.copy(ROOT / "examples" / "print_catalogue.json", tmp_path / "print_catalogue.json")
    return tmp_path


def init(folder: Path, *args: str) -> tuple[int, str, str, dict]:
    out = folder / "omnisync.yaml"
    code, stdout, stderr = invoke("init", *args, "-o", str(out), "--non-interactive")
    config = yaml.safe_load(out.read_text(encoding="utf-8")) if out.exists() else {}
    return code, stdout, stderr, config


def test_the_shipped_examples_become_a_config_that_checks(files: Path) -> None:
    code, out, err, config = init(
        files,
        str(files / "erp_export.csv"),
        f"shop={files / 'webshop_woocommerce.csv'}",
        str(files / "pos_export.csv"),
        str(files / "google_feed.tsv"),
    )
    assert code == 0, err
    assert out.startswith("wrote ")
    canonical = config["canonical"]
    assert canonical["prices"] == "net"
    options = canonical["options"]
    assert (options["encoding"], options["delimiter"]) == ("cp1252", ";")
    assert (options["decimal"], options["thousands"]) == (",", ".")
    assert options["date_format"] == "%d.%m.%Y"
    assert options["mapping"] == {
        "sku": "Artikelnummer",
        "title": "Bezeichnung",
        "description": "Beschreibung",
        "gtin": "EAN",
        "brand": "Marke",
        "price": "VK netto",
        "sale_price": "Aktionspreis netto",
        "sale_start": "Aktion von",
        "sale_end": "Aktion bis",
        "vat_rate": "MwSt %",
        "currency": "Währung",
        "stock": {
            "lager": "Bestand Lager",
            "berlin": "Bestand Berlin",
            "hamburg": "Bestand Hamburg",
        },
    }
    channels = config["channels"]
    assert list(channels) == ["shop", "pos_export", "google_feed"]
    assert channels["shop"]["options"]["preset"] == "woocommerce"
    assert channels["google_feed"]["connector"] == "tsv"
    assert channels["google_feed"]["options"]["preset"] == "google"
    pos = channels["pos_export"]["options"]
    assert pos["mapping"]["stock"] == {"berlin": "bestand_berlin", "hamburg": "bestand_hamburg"}
    assert "currency" not in pos  # its amounts say "49.99 EUR"
    text = (files / "omnisync.yaml").read_text(encoding="utf-8")
    assert "# amounts are written like 41,93" in text
    assert "# not UTF-8; Windows-1252" in text
    assert invoke("validate", "-c", str(files / "omnisync.yaml"))[0] == 0
    code, out, err = invoke("check", "-c", str(files / "omnisync.yaml"), "-f", "json")
    assert code == 1, err  # it runs; the rules (VAT, buffers) are the user's to add
    report = json.loads(out)
    assert [c["counts"]["canonical"] for c in report["channels"]] == [14, 14, 14]
    assert all(c["error"] is None for c in report["channels"])


def test_a_json_catalogue_maps_its_nested_amounts(files: Path) -> None:
    code, _, err, config = init(
        files, str(files / "print_catalogue.json"), str(files / "pos_export.csv")
    )
    assert code == 0, err
    options = config["canonical"]["options"]
    assert options["records"] == "products"
    assert options["mapping"]["price"] == "price.amount"
    assert options["mapping"]["currency"] == "price.currency"
    assert invoke("check", "-c", str(files / "omnisync.yaml"))[0] in (0, 1)


def test_a_workbook_canonical(files: Path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["Artikelnummer", "Bezeichnung", "Preis", "Bestand"])
    sheet.append(["KA-1001", "Kaffeemühle", 41.93, 5])
    sheet.append(["KA-1002", "Espressokocher", 25.2, 0])
    book.save(files / "erp.xlsx")
    code, _, err, config = init(files, str(files / "erp.xlsx"), str(files / "pos_export.csv"))
    assert code == 0, err
    assert config["canonical"]["connector"] == "xlsx"
    assert config["canonical"]["options"]["mapping"] == {
        "sku": "Artikelnummer",
        "title": "Bezeichnung",
        "price": "Preis",
        "stock": "Bestand",
    }
    assert invoke("check", "-c", str(files / "omnisync.yaml"))[0] in (0, 1)


@pytest.mark.parametrize(
    ("name", "preset"),
    [
        ("shopify_product_template.csv", "shopify"),
        ("woocommerce_sample_products.csv", "woocommerce"),
        ("shopware_products_with_list_price.csv", "shopware6"),
        ("magento_products_to_import_with_qty.csv", "magento2"),
        ("google_wix_products-feed.tsv", "google"),
    ],
)
def test_real_exports_are_recognised_and_check_against_themselves(
    tmp_path: Path, name: str, preset: str
) -> None:
    if not REAL.is_dir():
        pytest.skip(f"{REAL} is not here (it sits beside the project root)")
    shutil.copy(REAL / name, tmp_path / name)
    code, _, err, config = init(tmp_path, str(tmp_path / name), f"copy={tmp_path / name}")
    assert code == 0, err
    assert config["canonical"]["options"]["preset"] == preset
    code, out, err = invoke("check", "-c", str(tmp_path / "omnisync.yaml"), "-f", "json")
    report = json.loads(out)
    assert code == 0, (err, report["channels"][0]["findings"][:3])
    assert report["channels"][0]["counts"]["canonical"] > 0


def test_a_file_without_a_sku_column_names_its_columns(files: Path) -> None:
    (files / "odd.csv").write_text("foo;bar\n1;2\n", encoding="utf-8")
    code, _, err, config = init(files, str(files / "odd.csv"), str(files / "pos_export.csv"))
    assert code == 2
    assert "no column looks like the SKU; the columns are: 'foo', 'bar'" in err
    assert "--sku COLUMN" in err
    assert not (files / "omnisync.yaml").exists()
    assert not [p for p in files.iterdir() if p.name.endswith(".tmp")]
    code, _, err, config = init(
        files, str(files / "odd.csv"), str(files / "pos_export.csv"), "--sku", "foo"
    )
    assert code == 0, err
    assert config["canonical"]["options"]["mapping"]["sku"] == "foo"


def test_on_a_terminal_it_asks(files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(starting, "_interactive", lambda: True)
    (files / "odd.csv").write_text("foo;bar\n1;2\n", encoding="utf-8")
    out = files / "asked.yaml"
    answers = f"{files / 'odd.csv'}\n{files / 'pos_export.csv'}\n\nnope\nfoo\n"
    code, stdout, err = invoke("init", "-o", str(out), input=answers)
    assert code == 0, err
    assert "which column is the SKU? foo, bar" in stdout
    assert "'nope' is not a column" in stdout
    assert yaml.safe_load(out.read_text())["canonical"]["options"]["mapping"]["sku"] == "foo"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.csv", "pos_export.csv"], "missing.csv: no such file"),
        (["erp_export.csv"], "name at least one channel file"),
        ([], "name the canonical export"),
        (["empty.csv", "pos_export.csv"], "empty.csv: the file is empty"),
    ],
)
def test_bad_arguments_are_clear_errors(
    files: Path, args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (files / "empty.csv").write_text("", encoding="utf-8")
    monkeypatch.chdir(files)
    code, _, err = invoke("init", *args, "--non-interactive")
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert not (files / "omnisync.yaml").exists()


def test_an_existing_config_is_kept_without_force(files: Path) -> None:
    target = files / "omnisync.yaml"
    target.write_text("mine\n", encoding="utf-8")
    args = [str(files / "erp_export.csv"), str(files / "pos_export.csv"), "-o", str(target)]
    code, _, err = invoke("init", *args, "--non-interactive")
    assert code == 2
    assert "exists" in err
    assert target.read_text(encoding="utf-8") == "mine\n"
    assert invoke("init", *args, "--non-interactive", "--force")[0] == 0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            ["Variant SKU", "Title", "Variant Price"],
            {"sku": "Variant SKU", "title": "Title", "price": "Variant Price"},
        ),
        (
            ["item_no", "name", "unit_price", "qty"],
            {"sku": "item_no", "title": "name", "price": "unit_price", "stock": "qty"},
        ),
        (
            ["Art.-Nr.", "VK brutto", "Lager"],
            {"sku": "Art.-Nr.", "price": "VK brutto", "stock": "Lager"},
        ),
    ],
)
def test_mapping_from_column_names(header: list[str], expected: dict[str, str]) -> None:
    assert propose_mapping(header) == expected


def test_names_are_compared_without_case_accents_or_punctuation() -> None:
    assert normalise("Währung") == "wahrung"
    assert normalise("VK netto") == "vknetto"
    assert normalise("Art.-Nr.") == "artnr"
