"""``omnisync publish``: feeds written from canonical, read back by the channel's own connector.

Every test writes real files in ``tmp_path`` and goes through the command line, as cron does:
the example ERP export is canonical, each feed channel's connector reads the file publish
writes, and ``check`` of that channel must then find nothing.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from omnisync.cli import app

ROOT = Path(__file__).resolve().parents[1]
AT = "2026-11-23T12:00:00+01:00"
G = "{http://base.google.com/ns/1.0}"
LINKS = {
    "link": "https://shop.example/p/{sku}",
    "image_link": "https://shop.example/img/{sku}.jpg",
}
#: The Google channel's rules of the example config: VAT, .99 endings, scheduled sales,
#: a brand-first title, availability from the warehouse's stock with a buffer.
GOOGLE_EXPECT: dict[str, Any] = {
    "title": {"template": "{brand} {title}", "max_length": 150},
    "price": {
        "vat": 19,
        "currency": "EUR",
        "rounding": {"mode": "ending", "ending": 0.99},
        "sale": "scheduled",
    },
    "stock": {"buffer": 2, "locations": {"default": ["lager"]}},
}
CHANNELS: dict[str, dict[str, Any]] = {
    "google-xml": {
        "connector": "xml",
        "options": {"path": "feeds/google.xml", "preset": "google"},
        "expect": GOOGLE_EXPECT,
        "publish": {"format": "google_xml", "title": "Kaffee & Co", **LINKS},
    },
    "google-tsv": {
        "connector": "tsv",
        "options": {"path": "feeds/google.tsv", "preset": "google"},
        "expect": GOOGLE_EXPECT,
        "publish": {"format": "google_tsv", **LINKS},
    },
    "meta": {
        "connector": "csv",
        "options": {
            "path": "feeds/meta.csv",
            "mapping": {"sku": "id", "title": "title", "price": "price"},
        },
        "expect": {"price": {"vat": 19, "sale": "separate"}},
        "publish": {"format": "meta_csv", **LINKS},
    },
    "idealo": {
        "connector": "csv",
        "options": {
            "path": "feeds/idealo.csv",
            "currency": "EUR",
            "mapping": {"sku": "sku", "title": "title", "gtin": "eans", "price": "price"},
        },
        "expect": {"price": {"vat": 19, "sale": "effective"}},
        "publish": {
            "format": "idealo_csv",
            "link": LINKS["link"],
            "delivery_time": "1-3 Werktage",
            "delivery_costs": {"dhl": "4.95"},
        },
    },
    "print": {
        "connector": "json",
        "options": {
            "path": "feeds/print.json",
            "records": "products",
            "mapping": {"sku": "Artikel", "title": "Name", "price": "Preis", "currency": "Währung"},
        },
        "expect": {"price": {"vat": 19, "sale": "ignore"}},
        "publish": {
            "format": "json",
            "columns": {"Artikel": "sku", "Name": "title", "Preis": "price", "Währung": "currency"},
        },
    },
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The example ERP export as canonical and the feed channels above."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    example = yaml.safe_load((ROOT / "config.example.yaml").read_text(encoding="utf-8"))
    config = {
        "version": 1,
        "settings": {"timezone": "Europe/Berlin", "state": ".omnisync/state.db"},
        "canonical": example["canonical"],
        "channels": CHANNELS,
    }
    write_config(tmp_path, config)
    return tmp_path


def write_config(project: Path, config: dict[str, Any]) -> None:
    (project / "omnisync.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")


def config_of(project: Path) -> dict[str, Any]:
    return yaml.safe_load((project / "omnisync.yaml").read_text(encoding="utf-8"))


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def publish(project: Path, *args: str) -> tuple[int, str, str]:
    return invoke("publish", "-c", str(project / "omnisync.yaml"), "--at", AT, *args)


def check(project: Path, channel: str) -> dict[str, Any]:
    code, out, err = invoke(
        "check", "-c", str(project / "omnisync.yaml"), "--at", AT, "-C", channel, "-f", "json"
    )
    report = json.loads(out)
    assert code == 0, (err, report["channels"][0]["findings"], report["channels"][0]["error"])
    return report["channels"][0]


def items(path: Path) -> dict[str, dict[str, str]]:
    """The Google XML feed's items by id, each as {attribute: text}."""
    root = ET.parse(path).getroot()
    assert root.tag == "rss"
    assert root.get("version") == "2.0"
    out = {}
    for item in root.iter("item"):
        values = {child.tag.removeprefix(G): child.text or "" for child in item}
        out[values["id"]] = values
    return out


@pytest.mark.parametrize("channel", ["google-xml", "google-tsv"])
def test_publish_then_check_finds_nothing(project: Path, channel: str) -> None:
    code, out, err = publish(project, "-C", channel)
    assert code == 0, err
    assert f"{channel}: wrote" in out
    report = check(project, channel)
    assert report["findings"] == []
    # Everything the feed shows was compared, not just read.
    assert {"title", "gtin", "brand", "price", "sale_price", "availability"} <= set(
        report["fields"]
    )
    assert report["counts"]["channel"] == report["counts"]["canonical"] == 14


def test_google_xml_holds_the_expected_values(project: Path) -> None:
    assert publish(project, "-C", "google-xml")[0] == 0
    feed = items(project / "feeds/google.xml")
    bella = feed["KA-1001"]
    # net 41.93 + 19% VAT = 49.8967 → .99 ending; brand-first title template.
    assert bella["price"] == "49.99 EUR"
    assert bella["title"] == "Bellarom Kaffeemühle „Bella“ Edelstahl"
    assert bella["link"] == "https://shop.example/p/KA-1001"
    assert bella["image_link"] == "https://shop.example/img/KA-1001.jpg"
    assert bella["availability"] == "in_stock"
    assert bella["condition"] == "new"
    assert bella["gtin"] == "4006381333931"
    # The November sale, scheduled in the feed with its window in the configured zone.
    sale = feed["KA-1002"]
    assert sale["sale_price"] == "24.99 EUR"
    assert sale["sale_price_effective_date"] == "2026-11-01T00:00+0100/2026-11-30T23:59+0100"
    # A multi-line canonical description is one text.
    assert sale["description"].startswith("Klassischer Espressokocher")


def test_publish_without_a_required_value_names_each_product(project: Path) -> None:
    config = config_of(project)
    del config["channels"]["google-xml"]["publish"]["image_link"]
    write_config(project, config)
    code, _, err = publish(project, "-C", "google-xml")
    assert code == 2
    assert "SKU KA-1001: no image_link" in err
    assert "SKU KA-1014: no image_link" in err
    assert "on_invalid: skip" in err
    assert not (project / "feeds/google.xml").exists()


def test_skip_leaves_out_the_invalid_items_and_names_them(project: Path) -> None:
    config = config_of(project)
    config["channels"]["google-xml"]["publish"]["link"] = "{attributes.url}"
    config["channels"]["google-xml"]["publish"]["on_invalid"] = "skip"
    write_config(project, config)
    code, out, _ = publish(project, "-C", "google-xml", "--force")
    assert code == 0
    assert "left out: SKU KA-1001: no link" in out
    assert items(project / "feeds/google.xml") == {}


def test_unchanged_catalogue_leaves_the_file_untouched(project: Path) -> None:
    assert publish(project, "-C", "google-xml")[0] == 0
    feed = project / "feeds/google.xml"
    before, stat = feed.read_bytes(), feed.stat()
    code, out, _ = publish(project, "-C", "google-xml")
    assert code == 0
    assert "google-xml: unchanged" in out
    assert feed.read_bytes() == before
    assert feed.stat().st_mtime_ns == stat.st_mtime_ns
    assert feed.stat().st_ino == stat.st_ino
    assert not [p for p in feed.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_feed_that_loses_half_its_items_is_refused(project: Path) -> None:
    assert publish(project, "-C", "google-xml")[0] == 0
    feed = project / "feeds/google.xml"
    before = feed.read_bytes()
    erp = project / "examples/erp_export.csv"
    lines = erp.read_bytes().split(b"\r\n" if b"\r\n" in erp.read_bytes() else b"\n")
    erp.write_bytes(b"\n".join(lines[:5]) + b"\n")  # the header and the first few products
    code, _, err = publish(project, "-C", "google-xml")
    assert code == 6
    assert "google-xml: the feed would have" in err
    assert "--force" in err
    assert feed.read_bytes() == before
    code, out, _ = publish(project, "-C", "google-xml", "--force")
    assert code == 0
    assert "wrote" in out
    assert len(items(feed)) < 14


def test_dry_run_writes_and_records_nothing(project: Path) -> None:
    code, out, _ = publish(project, "--dry-run")
    assert code == 0
    assert "google-xml: would write" in out
    assert not (project / "feeds").exists()
    code, out, _ = invoke("runs", "-c", str(project / "omnisync.yaml"))
    assert "publish" not in out


def test_the_run_is_recorded(project: Path) -> None:
    code, out, _ = publish(project)
    assert code == 0
    code, out, _ = invoke("runs", "-c", str(project / "omnisync.yaml"))
    assert code == 0
    assert "publish" in out
    assert "google-xml" in out


def test_meta_and_idealo_csv(project: Path) -> None:
    assert publish(project, "-C", "meta", "-C", "idealo")[0] == 0
    with (project / "feeds/meta.csv").open(encoding="utf-8", newline="") as handle:
        meta = {row["id"]: row for row in csv.DictReader(handle)}
    assert list(meta["KA-1001"])[:8] == [
        "id",
        "title",
        "description",
        "link",
        "image_link",
        "availability",
        "price",
        "sale_price",
    ]
    assert meta["KA-1001"]["availability"] == "in stock"
    assert meta["KA-1001"]["price"] == "49.90 EUR"  # 41.93 × 1.19, to the cent
    with (project / "feeds/idealo.csv").open(encoding="utf-8", newline="") as handle:
        idealo = {row["sku"]: row for row in csv.DictReader(handle)}
    # idealo shows what customers pay now: the running sale (20.99 net + 19% VAT).
    assert idealo["KA-1002"]["price"] == "24.98"
    assert idealo["KA-1002"]["deliveryTime"] == "1-3 Werktage"
    assert idealo["KA-1002"]["deliveryCosts_dhl"] == "4.95"
    assert idealo["KA-1002"]["url"] == "https://shop.example/p/KA-1002"
    for channel in ("meta", "idealo"):
        assert check(project, channel)["findings"] == []


def test_json_catalogue_with_chosen_columns(project: Path) -> None:
    assert publish(project, "-C", "print")[0] == 0
    products = json.loads((project / "feeds/print.json").read_text(encoding="utf-8"))["products"]
    assert products[0] == {
        "Artikel": "KA-1001",
        "Name": "Kaffeemühle „Bella“ Edelstahl",
        "Preis": "49.90",
        "Währung": "EUR",
    }
    assert check(project, "print")["findings"] == []


def test_a_channel_without_publish_block_is_refused(project: Path) -> None:
    config = config_of(project)
    del config["channels"]["print"]["publish"]
    write_config(project, config)
    code, _, err = publish(project, "-C", "print")
    assert code == 2
    assert "has no `publish:` block" in err


def test_unknown_placeholder_is_a_config_error(project: Path) -> None:
    config = config_of(project)
    config["channels"]["google-xml"]["publish"]["link"] = "https://shop.example/{slug}"
    write_config(project, config)
    code, _, err = publish(project)
    assert code == 2
    assert "unknown placeholder {slug}" in err


@pytest.mark.parametrize("channel", ["google-xml", "google-tsv"])
def test_a_catalogue_made_a_few_skus_at_a_time_is_the_same_feed(
    project: Path, channel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large catalogues are streamed in slices of SKUs (memory stays bounded): slices of 3
    of the 14 products give the very feed one slice gives, in SKU order, with the same
    blank-value count."""
    from omnisync.publish import feed as feed_module

    path = project / ("feeds/google.xml" if channel == "google-xml" else "feeds/google.tsv")
    code, whole_out, err = publish(project, "-C", channel)
    assert code == 0, err
    whole = path.read_bytes()
    path.unlink()
    monkeypatch.setattr(feed_module, "CHUNK", 3)
    code, sliced_out, err = publish(project, "-C", channel, "--force")
    assert code == 0, err
    assert path.read_bytes() == whole

    def said(out: str) -> str:  # the output without its run id and the file's fate
        return re.sub(r"run \S+|wrote|unchanged", "", out)

    assert said(sliced_out) == said(whole_out)
    if channel == "google-xml":
        ids = list(items(path))
        assert ids == sorted(ids)
        assert len(ids) == 14


def test_a_refused_feed_streamed_in_slices_leaves_no_file(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from omnisync.publish import feed as feed_module

    monkeypatch.setattr(feed_module, "CHUNK", 4)
    config = config_of(project)
    del config["channels"]["google-xml"]["publish"]["image_link"]
    write_config(project, config)
    code, _, err = publish(project, "-C", "google-xml")
    assert code == 2
    assert "SKU KA-1001: no image_link" in err
    assert "SKU KA-1014: no image_link" in err
    assert not (project / "feeds").exists() or not list((project / "feeds").iterdir())
