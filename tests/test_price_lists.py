"""Per-channel price lists: a channel takes its price from another canonical column
(``expect.price.source``), with the channel's rules on top; checked, planned and pushed."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from omnisync.cli import app
from omnisync.config import ChannelConfig
from omnisync.diff import ChannelComparison, DiffEngine
from omnisync.errors import ConfigError
from omnisync.expect import PriceBasis
from omnisync.models import Field, Money, Record

ERP = """\
sku,title,price,sale,price_b2b,price_mp
A1,Alpha,100.00,90.00,80.00,110.00
A2,Beta,50.00,,,55.00
A3,Gamma,20.00,,16.00,22.00
"""


def eur(amount: str) -> Money:
    return Money(Decimal(amount), "EUR")


def project(tmp_path: Path, channels: dict[str, Any], erp: str = ERP) -> Path:
    (tmp_path / "erp.csv").write_text(erp, encoding="utf-8")
    config = {
        "canonical": {
            "connector": "csv",
            "options": {
                "path": "erp.csv",
                "currency": "EUR",
                "mapping": {
                    "sku": "sku",
                    "title": "title",
                    "price": "price",
                    "sale_price": "sale",
                    "price_lists": {"b2b": "price_b2b", "marketplace": "price_mp"},
                },
            },
        },
        "channels": channels,
        "settings": {"state": str(tmp_path / "state.db")},
    }
    path = tmp_path / "omnisync.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def channel(path: str, expect: dict[str, Any], *, sale: bool = False) -> dict[str, Any]:
    mapping = {"sku": "sku", "title": "title", "price": "price"}
    if sale:
        mapping["sale_price"] = "sale"
    return {
        "connector": "csv",
        "options": {"path": path, "currency": "EUR", "mapping": mapping},
        "expect": expect,
        "push": {"fields": ["price", "sale_price"] if sale else ["price"]},
    }


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "160"})
    return result.exit_code, result.stdout, result.stderr


def findings(config: Path) -> dict[str, list[dict[str, Any]]]:
    code, out, err = invoke("check", "-c", str(config), "-f", "json", "--no-history")
    assert code in (0, 1), err
    return {c["name"]: c["findings"] for c in json.loads(out)["channels"]}


def test_each_channel_is_compared_with_its_own_price_list_and_its_rules(tmp_path: Path) -> None:
    (tmp_path / "b2b.csv").write_text(
        "sku,title,price\nA1,Alpha,80.00\nA2,Beta,50.00\nA3,Gamma,17.00\n", encoding="utf-8"
    )
    (tmp_path / "mp.csv").write_text(
        "sku,title,price,sale\nA1,Alpha,132.00,\nA2,Beta,66.00,\nA3,Gamma,26.00,\n",
        encoding="utf-8",
    )
    (tmp_path / "shop.csv").write_text(
        "sku,title,price,sale\nA1,Alpha,100.00,90.00\nA2,Beta,50.00,\nA3,Gamma,20.00,\n",
        encoding="utf-8",
    )
    config = project(
        tmp_path,
        {
            "b2b": channel("b2b.csv", {"price": {"source": "b2b"}}),
            # 20 % on the marketplace list; the retail sale is not the marketplace's.
            "mp": channel("mp.csv", {"price": {"source": "marketplace", "markup": 20}}, sale=True),
            "shop": channel("shop.csv", {}, sale=True),
        },
    )
    found = findings(config)
    assert found["shop"] == []
    b2b = {(f["sku"], f["kind"], f["field"]): f for f in found["b2b"]}
    assert set(b2b) == {("A2", "data_quality", "price"), ("A3", "changed", "price")}
    a3 = b2b[("A3", "changed", "price")]
    assert (a3["expected"], a3["actual"], a3["canonical"]) == (
        "16.00 EUR",
        "17.00 EUR",
        "16.00 EUR",
    )
    assert a3["rule"].startswith("price list b2b")
    assert "price list b2b" in b2b[("A2", "data_quality", "price")]["detail"]
    # 22.00 × 1.2 = 26.40; A1 and A2 are right, and no sale is expected of the marketplace.
    assert [(f["sku"], f["field"], f["expected"]) for f in found["mp"]] == [
        ("A3", "price", "26.40 EUR")
    ]


def test_sale_source_takes_the_canonical_sale_or_another_list(tmp_path: Path) -> None:
    (tmp_path / "mp.csv").write_text(
        "sku,title,price,sale\nA1,Alpha,110.00,\nA2,Beta,55.00,\nA3,Gamma,22.00,\n",
        encoding="utf-8",
    )
    keeps_sale = {"price": {"source": "marketplace", "sale_source": "sale_price"}}
    config = project(tmp_path, {"mp": channel("mp.csv", keeps_sale, sale=True)})
    assert [(f["sku"], f["field"], f["kind"], f["expected"]) for f in findings(config)["mp"]] == [
        ("A1", "sale_price", "changed", "90.00 EUR")
    ]
    b2b_sale = {"price": {"source": "marketplace", "sale_source": "b2b"}}
    config = project(tmp_path, {"mp": channel("mp.csv", b2b_sale, sale=True)})
    got = {(f["sku"], f["field"], f["expected"]) for f in findings(config)["mp"]}
    # A2 has no b2b price: no sale is expected of it (a blank sale price is "no sale").
    assert got == {("A1", "sale_price", "80.00 EUR"), ("A3", "sale_price", "16.00 EUR")}


def test_an_unknown_price_list_is_a_config_error_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "b2b.csv").write_text("sku,title,price\nA1,Alpha,80.00\n", encoding="utf-8")
    config = project(tmp_path, {"b2b": channel("b2b.csv", {"price": {"source": "b2c"}})})
    code, _, err = invoke("validate", "-c", str(config))
    assert code == 2
    line = next(
        n for n, text in enumerate(config.read_text().splitlines(), 1) if "source: b2c" in text
    )
    assert f"omnisync.yaml:{line}: channels.b2b.expect.price.source: 'b2c'" in err
    assert "price, b2b, marketplace" in err
    assert "Traceback" not in err


def test_a_connector_without_a_mapping_is_told_at_diff_time(tmp_path: Path) -> None:
    """A SQL canonical maps its price lists like a file does; the check runs on the lists the
    records carry, and names the list it lacks."""
    db = tmp_path / "erp.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE p (sku TEXT, price TEXT, b2b TEXT)")
        con.executemany("INSERT INTO p VALUES (?, ?, ?)", [("A1", "100.00", "80.00")])
    (tmp_path / "b2b.csv").write_text("sku,price\nA1,81.00\n", encoding="utf-8")
    config_text = textwrap.dedent(
        f"""\
        canonical:
          connector: sql
          options:
            url: sqlite:///{db}
            table: p
            currency: EUR
            mapping: {{sku: sku, price: price, price_lists: {{b2b: b2b}}}}
        channels:
          b2b:
            connector: csv
            options: {{path: b2b.csv, currency: EUR, mapping: {{sku: sku, price: price}}}}
            expect: {{price: {{source: b2b}}}}
        """
    )
    config = tmp_path / "omnisync.yaml"
    config.write_text(config_text, encoding="utf-8")
    found = findings(config)["b2b"]
    assert [(f["sku"], f["expected"], f["actual"]) for f in found] == [
        ("A1", "80.00 EUR", "81.00 EUR")
    ]


def test_a_missing_sku_is_created_at_its_list_price_and_apply_writes_list_prices(
    tmp_path: Path,
) -> None:
    (tmp_path / "b2b.csv").write_text(
        "sku,title,price\nA1,Alpha,80.00\nA3,Gamma,17.00\n", encoding="utf-8"
    )
    spec = channel("b2b.csv", {"price": {"source": "b2b"}})
    spec["push"] = {"fields": ["price"], "create": True, "guard": {"max_records_pct": 100}}
    config = project(
        tmp_path, {"b2b": spec}, erp=ERP.replace("A2,Beta,50.00,,,", "A2,Beta,50.00,,45.00,")
    )
    code, _, err = invoke("sync", "-c", str(config))
    assert code == 0, err
    rows = (tmp_path / "b2b.csv").read_text(encoding="utf-8").splitlines()
    assert sorted(rows[1:]) == ["A1,Alpha,80.00", "A2,Beta,45.00", "A3,Gamma,16.00"]
    assert findings(config)["b2b"] == []


@pytest.mark.parametrize("key", ["source", "sale_source"])
def test_a_list_the_records_lack_is_said_at_diff_time(key: str) -> None:
    """A connector without a mapping (a plugin building records itself) cannot be checked
    when the config loads: the diff stops with the key instead of reporting every price as
    blank."""
    canonical = [Record("A1", price=eur("100.00"), price_lists={"b2b": eur("80.00")})]
    config = ChannelConfig.model_validate({"connector": "csv", "expect": {"price": {key: "b2c"}}})
    engine = DiffEngine(timezone="UTC")
    try:
        c = engine.load("canonical", canonical, frozenset(Field))
        a = engine.load("chan", [Record("A1", price=eur("80.00"))], frozenset({Field.PRICE}))
        comparison = ChannelComparison("b2b", c, a, config, PriceBasis.GROSS, datetime.now(UTC))
        with pytest.raises(ConfigError) as caught:
            engine.diff(comparison)
    finally:
        engine.close()
    assert str(caught.value.problems[0]) == (
        f"channels.b2b.expect.price.{key}: 'b2c' is not a price list canonical holds "
        "(it holds: b2b)"
    )


def test_a_mapped_list_column_absent_from_the_source_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "erp.json").write_text(
        json.dumps([{"sku": "A1", "price": "100.00"}]), encoding="utf-8"
    )
    (tmp_path / "b2b.csv").write_text("sku,price\nA1,81.00\n", encoding="utf-8")
    config = tmp_path / "omnisync.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "canonical": {
                    "connector": "json",
                    "options": {
                        "path": "erp.json",
                        "currency": "EUR",
                        "mapping": {"sku": "sku", "price": "price", "price_lists": {"b2b": "b2b"}},
                    },
                },
                "channels": {
                    "b2b": {
                        "connector": "csv",
                        "options": {
                            "path": "b2b.csv",
                            "currency": "EUR",
                            "mapping": {"sku": "sku", "price": "price"},
                        },
                        "expect": {"price": {"source": "b2b"}},
                    }
                },
            }
        ),
        encoding="utf-8",
    )
    code, _, err = invoke("check", "-c", str(config), "--no-history")
    assert code == 2, err
    assert "erp.json: no column 'b2b' (wanted by mapping.price_lists.b2b)" in err
    assert "Traceback" not in err
