"""What the Medusa and Vendure tests share: a canonical file made from what the server holds
(plus planted differences), a config pointing omnisync at the server, the CLI, the findings."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from omnisync.cli import app
from tests.real_shops.shops import Item

AT = "2026-11-23T12:00:00+00:00"
#: Guardrails wide enough for the planted changes and the bulk push.
GUARD = {
    "max_records": 5000,
    "max_records_pct": 100,
    "max_price_change_pct": 1000,
    "max_zero_stock_pct": 100,
}


@dataclass
class Row:
    """One canonical row; ``currency`` may differ from the shop's (the currency test)."""

    sku: str
    title: str
    description: str | None
    gtin: str | None
    price: Decimal | None
    currency: str
    stock: dict[str, int] = field(default_factory=dict)


def canonical_rows(snapshot: Mapping[str, Item]) -> dict[str, Row]:
    """The catalogue exactly as the shop shows it (SKUs with stray blanks left out)."""
    rows = {}
    for sku, item in sorted(snapshot.items()):
        if sku != sku.strip():
            continue
        rows[sku] = Row(
            sku=sku,
            title=item.title,
            description=item.description,
            gtin=item.gtin,
            price=item.price("EUR"),
            currency="EUR",
            stock={"berlin": item.qty("Berlin"), "hamburg": item.qty("Hamburg")},
        )
    return rows


def write_canonical(path: Path, rows: Iterable[Row]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(
            ["sku", "title", "description", "gtin", "price", "currency", "berlin", "hamburg"]
        )
        for r in rows:
            out.writerow(
                [
                    r.sku,
                    r.title,
                    r.description or "",
                    r.gtin or "",
                    f"{r.price:.2f}" if r.price is not None else "",
                    r.currency,
                    r.stock.get("berlin", 0),
                    r.stock.get("hamburg", 0),
                ]
            )


def write_config(folder: Path, connector: str, options: dict[str, Any], fields: list[str]) -> Path:
    """omnisync.yaml: canonical.csv against the shop as channel ``shop``."""
    mapping: dict[str, Any] = {
        "sku": "sku",
        "title": "title",
        "description": "description",
        "price": "price",
        "currency": "currency",
        "stock": {"berlin": "berlin", "hamburg": "hamburg"},
    }
    if "gtin" in fields:
        mapping["gtin"] = "gtin"
    config = {
        "version": 1,
        "settings": {"state": "state.db", "timezone": "UTC"},
        "canonical": {
            "connector": "csv",
            "prices": "gross",
            "options": {"path": "canonical.csv", "mapping": mapping},
        },
        "channels": {
            "shop": {
                "connector": connector,
                "options": options,
                "expect": {
                    "check": fields,
                    "price": {"shows": "gross"},
                    "stock": {"locations": {"berlin": ["berlin"], "hamburg": ["hamburg"]}},
                },
                "push": {"fields": fields, "guard": GUARD},
            }
        },
    }
    path = folder / "omnisync.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def cli(*args: str) -> tuple[int, str]:
    """Run omnisync in-process; exit code and everything it printed."""
    result = CliRunner().invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "200"})
    return result.exit_code, result.stdout + result.stderr


Finding = tuple[str, str, str | None, str | None]


def findings(config: Path) -> tuple[int, set[Finding]]:
    """``omnisync check`` as JSON: exit code and (kind, sku, field, location) per finding."""
    result = CliRunner().invoke(
        app,
        ["check", "-c", str(config), "--at", AT, "-f", "json", "--no-history"],
        catch_exceptions=False,
        env={"COLUMNS": "200"},
    )
    assert result.exit_code in (0, 1), result.stdout + result.stderr
    report = json.loads(result.stdout)
    return result.exit_code, {
        (f["kind"], f["sku"], f["field"], f["location"])
        for c in report["channels"]
        for f in c["findings"]
    }


def timed(what: str, timings: dict[str, float], *args: str) -> tuple[int, str]:
    started = time.monotonic()
    outcome = cli(*args)
    timings[what] = time.monotonic() - started
    return outcome


def planted(rows: dict[str, Row], changes: dict[tuple[str, str, str | None], Any]) -> set[Finding]:
    """Apply ``{(sku, field, location): new value}`` to the canonical rows; the findings a
    check should then report."""
    expected: set[Finding] = set()
    for (sku, name, location), value in changes.items():
        row = rows[sku]
        if name == "stock":
            assert location is not None
            row.stock[location] = value
        else:
            rows[sku] = row = replace(row, **{name: value})
        expected.add(("changed", sku, name, location))
    return expected
