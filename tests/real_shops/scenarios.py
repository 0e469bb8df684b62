"""The scenarios the Medusa and Vendure tests both run, each written once. A test module makes
a :class:`Channel` of its server and keeps only what differs: the changes it plants, what it
checks on the server afterwards, and the messages its system gives."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.real_shops import servers
from tests.real_shops.conftest import TIMINGS
from tests.real_shops.loop import (
    AT,
    Finding,
    Row,
    canonical_rows,
    cli,
    findings,
    planted,
    timed,
    write_canonical,
    write_config,
)
from tests.real_shops.shops import Item, MedusaShop, VendureShop


@dataclass
class Channel:
    """A real shop server as channel ``shop`` of a config in ``project`` (the current folder)."""

    shop: MedusaShop | VendureShop
    #: The connector's name (``medusa``).
    connector: str
    project: Path
    options: dict[str, Any]
    fields: list[str]

    def config(self, rows: Iterable[Row], fields: list[str] | None = None, **extra: Any) -> Path:
        """canonical.csv holding ``rows`` and omnisync.yaml; ``extra`` options replace the
        channel's (None removes one)."""
        write_canonical(self.project / "canonical.csv", rows)
        options = {k: v for k, v in {**self.options, **extra}.items() if v is not None}
        return write_config(self.project, self.connector, options, fields or self.fields)


@dataclass
class Loop:
    """check → plan → apply → check → undo with planted changes, on the server's catalogue."""

    channel: Channel
    before: dict[str, Item] = field(init=False)
    #: The canonical rows: the server's catalogue, and after :meth:`apply` the planted changes.
    rows: dict[str, Row] = field(init=False)
    config: Path = field(init=False)
    steps: dict[str, float] = field(default_factory=dict)
    expected: set[Finding] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.before = self.channel.shop.snapshot()
        assert len(self.before) == 500
        self.rows = canonical_rows(self.before)

    def apply(self, plants: dict[tuple[str, str, str | None], Any]) -> dict[str, Item]:
        """Plant ``{(sku, field, location): value}``: check finds exactly those, plan and apply
        send them, check then finds nothing, and no other variant changed. The server after."""
        self.expected = planted(self.rows, plants)
        self.config = self.channel.config(self.rows.values())
        assert findings(self.config) == (1, self.expected)
        config = str(self.config)
        code, out = timed(
            "plan", self.steps, "plan", "-c", config, "--at", AT, "--out", "plan.json"
        )
        assert code == 0, out
        code, out = timed("apply", self.steps, "apply", "plan.json", "-c", config, "--yes")
        assert code == 0, out
        after = self.channel.shop.snapshot()
        assert findings(self.config) == (0, set())
        touched = {sku for sku, _, _ in plants}
        assert {s: i for s, i in after.items() if s not in touched} == {
            s: i for s, i in self.before.items() if s not in touched
        }
        return after

    def undo(self) -> None:
        """``undo last`` restores the server exactly, and the planted changes differ again."""
        code, out = timed("undo", self.steps, "undo", "last", "-c", str(self.config), "--yes")
        assert code == 0, out
        assert self.channel.shop.snapshot() == self.before
        assert findings(self.config) == (1, self.expected)
        name = self.channel.connector
        TIMINGS.update({f"{name} loop {k}": v for k, v in self.steps.items()})


def push_every_variant_and_undo(channel: Channel) -> None:
    """Every variant's EUR price and Berlin stock pushed, then undone: the bulk path."""
    before = channel.shop.snapshot()
    rows = canonical_rows(before)
    for row in rows.values():
        row.price = (row.price or Decimal(0)) + Decimal("0.10")
        row.stock["berlin"] += 1
    config = str(channel.config(rows.values(), ["price", "stock"]))
    code, out = cli("plan", "-c", config, "--out", "plan.json")
    assert code == 0, out
    steps: dict[str, float] = {}
    code, out = timed("push", steps, "apply", "plan.json", "-c", config, "--yes")
    assert code == 0, out
    after = channel.shop.snapshot()
    assert all(after[s].price() == rows[s].price for s in rows)
    assert all(after[s].qty("Berlin") == rows[s].stock["berlin"] for s in rows)
    # Only the EUR prices were sent: the USD ones survived.
    assert all(after[s].price("USD") == before[s].price("USD") for s in rows)
    code, out = timed("undo", steps, "undo", "last", "-c", config, "--yes")
    assert code == 0, out
    assert channel.shop.snapshot() == before
    TIMINGS[f"{channel.connector} push 500 (price+stock)"] = steps["push"]
    TIMINGS[f"{channel.connector} undo 500"] = steps["undo"]


def check_fails(channel: Channel, **options: Any) -> str:
    """``omnisync check`` with these options fails as a channel error (exit 3, no traceback)
    naming the channel; what it printed."""
    config = channel.config(canonical_rows(channel.shop.snapshot()).values(), **options)
    code, out = cli("check", "-c", str(config), "--no-history")
    assert code == 3, out
    assert "shop" in out
    assert "Traceback" not in out
    return out


def server_not_running(tmp_path: Path, connector: str, credentials: str, path: str = "") -> None:
    """``omnisync check`` of a channel whose server is not running fails with a clear error
    naming the address (and ``path``, the API's), no traceback. ``credentials``: the channel's
    options besides the url, as YAML."""
    port = servers.free_port()  # nothing listens there
    (tmp_path / "canonical.csv").write_text("sku,title,price,currency\nA-1,A,1.00,EUR\n")
    config = tmp_path / "omnisync.yaml"
    config.write_text(
        "canonical: {connector: csv, options: {path: canonical.csv, mapping: {sku: sku, "
        "title: title, price: price, currency: currency}}}\n"
        f"channels:\n  shop:\n    connector: {connector}\n"
        f"    options: {{url: 'http://127.0.0.1:{port}', {credentials}, retries: 2, "
        "max_wait: 0.2}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "omnisync", "check", "-c", str(config), "--no-history"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    out = result.stdout + result.stderr
    assert result.returncode == 3, out
    assert "cannot connect" in out
    assert "is the server running" in out
    assert f"127.0.0.1:{port}{path}" in out
    assert "Traceback" not in out


@contextmanager
def sku_twice(channel: Channel, title: str, sku: str) -> Iterator[None]:
    """Inside: the server has one more product with a variant of ``sku`` (an existing SKU,
    perhaps with a stray blank), and check reports that SKU as duplicated. Afterwards the
    product is gone and check finds nothing."""
    config = channel.config(canonical_rows(channel.shop.snapshot()).values())
    product = channel.shop.add_product(title, sku)
    try:
        assert findings(config) == (1, {("duplicate", sku.strip(), None, None)})
        yield
    finally:
        channel.shop.delete_product(product)
    assert findings(config) == (0, set())


def foreign_price_fails_alone(channel: Channel, foreign: str, other: str) -> str:
    """A price in GBP for ``foreign`` (the shop sells in EUR and USD only) fails and nothing
    of it reaches the server, while ``other``'s new price in the same push lands; undo
    restores all. What ``apply`` printed."""
    before = channel.shop.snapshot()
    rows = canonical_rows(before)
    rows[foreign].currency = "GBP"
    rows[foreign].price = Decimal("20.00")
    rows[other].price = (rows[other].price or Decimal(0)) + 1
    config = str(channel.config(rows.values()))
    assert findings(config) == (
        1,
        {("changed", foreign, "price", None), ("changed", other, "price", None)},
    )
    code, out = cli("plan", "-c", config, "--out", "plan.json")
    assert code == 0, out
    code, applied = cli("apply", "plan.json", "-c", config, "--yes")
    assert code == 4, applied  # partly applied
    after = channel.shop.snapshot()
    assert after[foreign] == before[foreign]  # no GBP price slipped in
    assert after[other].price() == rows[other].price
    code, out = cli("undo", "last", "-c", config, "--yes")
    assert code == 0, out
    assert channel.shop.snapshot() == before
    return applied
