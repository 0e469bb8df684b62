"""The vendure connector against a real Vendure 3 server (installed from npm, on sql.js).

Every step is verified by reading the server directly (``VendureShop.snapshot``), not through
the connector under test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from omnisync.connector import ConnectorContext
from omnisync.models import Change
from omnisync.testing import ConnectorContract
from omnisync_connectors.vendure.connector import VendureConnector, VendureOptions
from tests.real_shops import servers
from tests.real_shops.conftest import TIMINGS
from tests.real_shops.loop import (
    AT,
    canonical_rows,
    cli,
    findings,
    planted,
    timed,
    write_canonical,
    write_config,
)
from tests.real_shops.shops import VendureShop

FIELDS = ["title", "description", "price", "stock"]
LOCATIONS = {"Berlin": "berlin", "Hamburg": "hamburg"}


def options(shop: VendureShop, **extra: object) -> dict[str, object]:
    return {
        "url": shop.url,
        "username": shop.username,
        "password": "${OMNISYNC_T_VENDURE_PASSWORD}",
        "locations": LOCATIONS,
        **extra,
    }


@pytest.fixture
def project(vendure: VendureShop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OMNISYNC_T_VENDURE_PASSWORD", vendure.password)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def connector(shop: VendureShop, **extra: object) -> VendureConnector:
    opts = VendureOptions.model_validate(
        {
            "url": shop.url,
            "username": shop.username,
            "password": shop.password,
            "locations": LOCATIONS,
            **extra,
        }
    )
    return VendureConnector(opts, ConnectorContext("shop"))


def test_full_loop_check_plan_apply_check_undo(vendure: VendureShop, project: Path) -> None:
    before = vendure.snapshot()
    assert len(before) == 500
    rows = canonical_rows(before)
    plants = {
        ("VEN-0003", "price", None): (rows["VEN-0003"].price or Decimal(0)) + Decimal("1.00"),
        ("VEN-0007", "price", None): (rows["VEN-0007"].price or Decimal(0)) - Decimal("0.50"),
        ("VEN-0010", "stock", "berlin"): rows["VEN-0010"].stock["berlin"] + 4,
        ("VEN-0011", "stock", "hamburg"): rows["VEN-0011"].stock["hamburg"] + 9,
        ("VEN-0012", "title", None): "Product 0012 (renamed)",
        ("VEN-0015", "description", None): "A new description of product 0015",
    }
    expected = planted(rows, plants)
    write_canonical(project / "canonical.csv", rows.values())
    config = write_config(project, "vendure", options(vendure), FIELDS)

    assert findings(config) == (1, expected)
    steps: dict[str, float] = {}
    code, out = timed("plan", steps, "plan", "-c", str(config), "--at", AT, "--out", "plan.json")
    assert code == 0, out
    code, out = timed("apply", steps, "apply", "plan.json", "-c", str(config), "--yes")
    assert code == 0, out

    after = vendure.snapshot()
    assert findings(config) == (0, set())
    assert after["VEN-0003"].price() == rows["VEN-0003"].price
    assert after["VEN-0007"].price() == rows["VEN-0007"].price
    assert after["VEN-0003"].price("USD") == before["VEN-0003"].price("USD")
    assert after["VEN-0010"].qty("Berlin") == before["VEN-0010"].qty("Berlin") + 4
    assert after["VEN-0011"].qty("Hamburg") == before["VEN-0011"].qty("Hamburg") + 9
    assert after["VEN-0012"].title == "Product 0012 (renamed)"
    assert after["VEN-0015"].description == "A new description of product 0015"
    assert after["VEN-0015"].title == before["VEN-0015"].title  # the name was left alone
    touched = {sku for sku, _, _ in plants}
    assert {s: i for s, i in after.items() if s not in touched} == {
        s: i for s, i in before.items() if s not in touched
    }

    code, out = timed("undo", steps, "undo", "last", "-c", str(config), "--yes")
    assert code == 0, out
    assert vendure.snapshot() == before
    assert findings(config) == (1, expected)
    TIMINGS.update({f"vendure loop {k}": v for k, v in steps.items()})


def test_pull_and_push_500_variants(vendure: VendureShop, project: Path) -> None:
    """Every variant's EUR price and Berlin stock pushed, then undone: the bulk path."""
    before = vendure.snapshot()
    started = time.monotonic()
    assert len(list(connector(vendure).read())) == 500
    TIMINGS["vendure pull 500"] = time.monotonic() - started

    rows = canonical_rows(before)
    for row in rows.values():
        row.price = (row.price or Decimal(0)) + Decimal("0.10")
        row.stock["berlin"] += 1
    write_canonical(project / "canonical.csv", rows.values())
    config = write_config(project, "vendure", options(vendure), ["price", "stock"])
    code, out = cli("plan", "-c", str(config), "--out", "plan.json")
    assert code == 0, out
    steps: dict[str, float] = {}
    code, out = timed("push", steps, "apply", "plan.json", "-c", str(config), "--yes")
    assert code == 0, out
    after = vendure.snapshot()
    assert all(after[s].price() == rows[s].price for s in rows)
    assert all(after[s].qty("Berlin") == rows[s].stock["berlin"] for s in rows)
    assert all(after[s].price("USD") == before[s].price("USD") for s in rows)
    code, out = timed("undo", steps, "undo", "last", "-c", str(config), "--yes")
    assert code == 0, out
    assert vendure.snapshot() == before
    TIMINGS["vendure push 500 (price+stock)"] = steps["push"]
    TIMINGS["vendure undo 500"] = steps["undo"]


# ------------------------------------------------------------------ bad input


def test_wrong_password_is_a_clear_channel_error(vendure: VendureShop, project: Path) -> None:
    write_canonical(project / "canonical.csv", canonical_rows(vendure.snapshot()).values())
    config = write_config(project, "vendure", options(vendure, password="not-it"), FIELDS)
    code, out = cli("check", "-c", str(config), "--no-history")
    assert code == 3, out
    assert "shop" in out
    assert "Vendure refused the login of" in out  # (the user name equals a secret here: masked)
    assert "INVALID_CREDENTIALS_ERROR" in out
    assert "Traceback" not in out


def test_server_not_running_is_a_clear_error_without_traceback(tmp_path: Path) -> None:
    port = servers.free_port()  # nothing listens there
    (tmp_path / "canonical.csv").write_text("sku,title,price,currency\nA-1,A,1.00,EUR\n")
    config = tmp_path / "omnisync.yaml"
    config.write_text(
        "canonical: {connector: csv, options: {path: canonical.csv, mapping: {sku: sku, "
        "title: title, price: price, currency: currency}}}\n"
        "channels:\n  shop:\n    connector: vendure\n"
        f"    options: {{url: 'http://127.0.0.1:{port}', username: admin, password: secret1, "
        "retries: 2, max_wait: 0.2}\n"
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
    assert f"127.0.0.1:{port}/admin-api" in out
    assert "Traceback" not in out


def test_a_sku_twice_in_the_shop_is_its_own_finding(vendure: VendureShop, project: Path) -> None:
    rows = canonical_rows(vendure.snapshot())
    write_canonical(project / "canonical.csv", rows.values())
    config = write_config(project, "vendure", options(vendure), FIELDS)
    product = vendure.add_product("Copy of product 0005", "VEN-0005")  # Vendure allows it
    try:
        assert findings(config) == (1, {("duplicate", "VEN-0005", None, None)})
        # A push never guesses which of the two is meant.
        [result] = connector(vendure).write(
            [Change("shop", "VEN-0005", field="stock", location="berlin", before=0, after=1)]
        )
        assert not result.ok
        assert "is on 2 variants" in (result.error or "")
    finally:
        vendure.delete_product(product)
    assert findings(config) == (0, set())


def test_a_price_in_a_currency_the_channel_lacks_fails_alone(
    vendure: VendureShop, project: Path
) -> None:
    before = vendure.snapshot()
    rows = canonical_rows(before)
    rows["VEN-0004"].currency = "GBP"  # the channel sells in EUR and USD only
    rows["VEN-0004"].price = Decimal("20.00")
    rows["VEN-0006"].price = (rows["VEN-0006"].price or Decimal(0)) + 1
    write_canonical(project / "canonical.csv", rows.values())
    config = write_config(project, "vendure", options(vendure), FIELDS)
    assert findings(config) == (
        1,
        {("changed", "VEN-0004", "price", None), ("changed", "VEN-0006", "price", None)},
    )
    code, out = cli("plan", "-c", str(config), "--out", "plan.json")
    assert code == 0, out
    code, out = cli("apply", "plan.json", "-c", str(config), "--yes")
    assert code == 4, out  # partly applied
    assert "the channel has no currency GBP" in out
    after = vendure.snapshot()
    assert after["VEN-0004"] == before["VEN-0004"]
    assert after["VEN-0006"].price() == rows["VEN-0006"].price
    code, out = cli("undo", "last", "-c", str(config), "--yes")
    assert code == 0, out
    assert vendure.snapshot() == before


def test_an_expired_session_logs_in_again(vendure: VendureShop) -> None:
    shop = connector(vendure)
    shop.check()
    assert shop.api.logins == 1
    # What an expired session leaves the client with (the session cookie goes too).
    shop.api._token = "expired-or-revoked"
    shop.http.client.cookies.clear()
    assert len(list(shop.read())) >= 500
    assert shop.api.logins == 2


# ------------------------------------------------------------------ the shared contract


class TestVendureContract(ConnectorContract):
    @pytest.fixture
    def connector(self, vendure: VendureShop) -> VendureConnector:
        return connector(vendure)
