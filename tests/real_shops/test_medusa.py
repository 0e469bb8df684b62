"""The medusa connector against a real Medusa v2 server (installed from npm, on PostgreSQL).

Every step is verified by reading the server directly (``MedusaShop.snapshot``), not through
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
from omnisync.testing import ConnectorContract
from omnisync_connectors.medusa.connector import MedusaConnector, MedusaOptions
from tests.real_shops import servers
from tests.real_shops.conftest import TIMINGS
from tests.real_shops.loop import (
    canonical_rows,
    cli,
    findings,
    planted,
    timed,
    write_canonical,
    write_config,
)
from tests.real_shops.shops import MedusaShop, _ean

FIELDS = ["title", "description", "gtin", "price", "stock"]
LOCATIONS = {"Berlin": "berlin", "Hamburg": "hamburg"}


def options(shop: MedusaShop, **extra: object) -> dict[str, object]:
    return {"url": shop.url, "api_key": "${OMNISYNC_T_MEDUSA_KEY}", "locations": LOCATIONS, **extra}


@pytest.fixture
def project(medusa: MedusaShop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OMNISYNC_T_MEDUSA_KEY", medusa.api_key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def connector(shop: MedusaShop, **extra: object) -> MedusaConnector:
    opts = MedusaOptions.model_validate(
        {"url": shop.url, "api_key": shop.api_key, "locations": LOCATIONS, **extra}
    )
    return MedusaConnector(opts, ConnectorContext("shop"))


def test_full_loop_check_plan_apply_check_undo(medusa: MedusaShop, project: Path) -> None:
    before = medusa.snapshot()
    assert len(before) == 500
    rows = canonical_rows(before)
    skus = sorted(rows)
    no_hamburg_level = skus[0]  # every third inventory item was seeded without a Hamburg level
    assert before[no_hamburg_level].qty("Hamburg") == 0
    plants = {
        ("MED-0003-S", "price", None): rows["MED-0003-S"].price + Decimal("1.00"),  # type: ignore[operator]
        ("MED-0007-M", "price", None): rows["MED-0007-M"].price - Decimal("0.50"),  # type: ignore[operator]
        ("MED-0010-S", "stock", "berlin"): rows["MED-0010-S"].stock["berlin"] + 4,
        (no_hamburg_level, "stock", "hamburg"): 7,
        ("MED-0012-S", "title", None): "Product 0012 (renamed)",
        ("MED-0012-M", "title", None): "Product 0012 (renamed)",
        ("MED-0015-S", "description", None): "A new description of product 0015",
        ("MED-0015-M", "description", None): "A new description of product 0015",
        ("MED-0020-S", "gtin", None): _ean(9020, 0),
    }
    expected = planted(rows, plants)
    write_canonical(project / "canonical.csv", rows.values())
    config = write_config(project, "medusa", options(medusa), FIELDS)

    code, found = findings(config)
    assert (code, found) == (1, expected)

    steps: dict[str, float] = {}
    code, out = timed("plan", steps, "plan", "-c", str(config), "--at", "2026-11-23T12:00:00+00:00", "--out", "plan.json")  # fmt: skip
    assert code == 0, out
    code, out = timed("apply", steps, "apply", "plan.json", "-c", str(config), "--yes")
    assert code == 0, out

    after = medusa.snapshot()
    assert findings(config) == (0, set())
    assert after["MED-0003-S"].price() == rows["MED-0003-S"].price
    assert after["MED-0007-M"].price() == rows["MED-0007-M"].price
    # The whole price set was sent back: the USD prices survived the EUR updates.
    assert after["MED-0003-S"].price("USD") == before["MED-0003-S"].price("USD")
    assert after["MED-0007-M"].price("USD") == before["MED-0007-M"].price("USD")
    assert after["MED-0010-S"].qty("Berlin") == before["MED-0010-S"].qty("Berlin") + 4
    assert after[no_hamburg_level].qty("Hamburg") == 7  # the level was created
    assert after["MED-0012-M"].title == "Product 0012 (renamed)"
    assert after["MED-0015-S"].description == "A new description of product 0015"
    assert after["MED-0020-S"].gtin == _ean(9020, 0)
    touched = {sku for sku, _, _ in plants}
    assert {s: i for s, i in after.items() if s not in touched} == {
        s: i for s, i in before.items() if s not in touched
    }

    code, out = timed("undo", steps, "undo", "last", "-c", str(config), "--yes")
    assert code == 0, out
    assert medusa.snapshot() == before
    assert findings(config) == (1, expected)
    TIMINGS.update({f"medusa loop {k}": v for k, v in steps.items()})


def test_pull_and_push_500_variants(medusa: MedusaShop, project: Path) -> None:
    """Every variant's EUR price and Berlin stock pushed, then undone: the bulk path."""
    before = medusa.snapshot()
    started = time.monotonic()
    records = list(connector(medusa).read())
    TIMINGS["medusa pull 500 (api key)"] = time.monotonic() - started
    assert len(records) == 500
    started = time.monotonic()
    jwt = connector(medusa, api_key=None, email=medusa.email, password=medusa.password)
    assert len(list(jwt.read())) == 500
    TIMINGS["medusa pull 500 (jwt)"] = time.monotonic() - started

    rows = canonical_rows(before)
    for row in rows.values():
        row.price = (row.price or Decimal(0)) + Decimal("0.10")
        row.stock["berlin"] += 1
    write_canonical(project / "canonical.csv", rows.values())
    config = write_config(project, "medusa", options(medusa), ["price", "stock"])
    code, out = cli("plan", "-c", str(config), "--out", "plan.json")
    assert code == 0, out
    steps: dict[str, float] = {}
    code, out = timed("push", steps, "apply", "plan.json", "-c", str(config), "--yes")
    assert code == 0, out
    after = medusa.snapshot()
    assert all(after[s].price() == rows[s].price for s in rows)
    assert all(after[s].price("USD") == before[s].price("USD") for s in rows)
    code, out = timed("undo", steps, "undo", "last", "-c", str(config), "--yes")
    assert code == 0, out
    assert medusa.snapshot() == before
    TIMINGS["medusa push 500 (price+stock)"] = steps["push"]
    TIMINGS["medusa undo 500"] = steps["undo"]


# ------------------------------------------------------------------ bad input


def test_wrong_api_key_is_a_clear_channel_error(medusa: MedusaShop, project: Path) -> None:
    write_canonical(project / "canonical.csv", canonical_rows(medusa.snapshot()).values())
    config = write_config(project, "medusa", options(medusa, api_key="sk_not_a_key_0000"), FIELDS)
    code, out = cli("check", "-c", str(config), "--no-history")
    assert code == 3, out
    assert "shop" in out
    assert "rejected the credentials (HTTP 401" in out
    assert "Traceback" not in out


def test_wrong_password_is_a_clear_channel_error(medusa: MedusaShop, project: Path) -> None:
    write_canonical(project / "canonical.csv", canonical_rows(medusa.snapshot()).values())
    bad = options(medusa, api_key=None, email=medusa.email, password="not-the-password")
    del bad["api_key"]
    config = write_config(project, "medusa", bad, FIELDS)
    code, out = cli("check", "-c", str(config), "--no-history")
    assert code == 3, out
    assert "shop" in out
    assert f"Medusa refused the login of '{medusa.email}'" in out
    assert "Invalid email or password" in out


def test_server_not_running_is_a_clear_error_without_traceback(tmp_path: Path) -> None:
    port = servers.free_port()  # nothing listens there
    (tmp_path / "canonical.csv").write_text("sku,title,price,currency\nA-1,A,1.00,EUR\n")
    config = tmp_path / "omnisync.yaml"
    config.write_text(
        "canonical: {connector: csv, options: {path: canonical.csv, mapping: {sku: sku, "
        "title: title, price: price, currency: currency}}}\n"
        "channels:\n  shop:\n    connector: medusa\n"
        f"    options: {{url: 'http://127.0.0.1:{port}', api_key: sk_x_123456, retries: 2, "
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
    assert f"127.0.0.1:{port}" in out
    assert "Traceback" not in out


def test_a_sku_twice_in_the_shop_is_its_own_finding(medusa: MedusaShop, project: Path) -> None:
    rows = canonical_rows(medusa.snapshot())
    write_canonical(project / "canonical.csv", rows.values())
    config = write_config(project, "medusa", options(medusa), FIELDS)
    # Medusa keeps SKUs unique as typed; a pasted trailing blank makes a second one.
    product = medusa.add_product("Copy of product 0005", "MED-0005-S ")
    try:
        assert findings(config) == (1, {("duplicate", "MED-0005-S", None, None)})
    finally:
        medusa.delete_product(product)
    assert findings(config) == (0, set())


def test_a_price_in_a_currency_the_store_lacks_fails_alone(
    medusa: MedusaShop, project: Path
) -> None:
    before = medusa.snapshot()
    rows = canonical_rows(before)
    rows["MED-0004-S"].currency = "GBP"  # the store sells in EUR and USD only
    rows["MED-0004-S"].price = Decimal("20.00")
    rows["MED-0004-M"].price = (rows["MED-0004-M"].price or Decimal(0)) + 1
    write_canonical(project / "canonical.csv", rows.values())
    config = write_config(project, "medusa", options(medusa), FIELDS)
    assert findings(config) == (
        1,
        {("changed", "MED-0004-S", "price", None), ("changed", "MED-0004-M", "price", None)},
    )
    code, out = cli("plan", "-c", str(config), "--out", "plan.json")
    assert code == 0, out
    code, out = cli("apply", "plan.json", "-c", str(config), "--yes")
    assert code == 4, out  # partly applied
    assert "the store has no currency GBP" in out
    after = medusa.snapshot()
    assert after["MED-0004-S"] == before["MED-0004-S"]  # no GBP price slipped in
    assert after["MED-0004-M"].price() == rows["MED-0004-M"].price
    code, out = cli("undo", "last", "-c", str(config), "--yes")
    assert code == 0, out
    assert medusa.snapshot() == before


def test_an_unknown_location_in_the_options_names_the_stores_locations(
    medusa: MedusaShop, project: Path
) -> None:
    write_canonical(project / "canonical.csv", canonical_rows(medusa.snapshot()).values())
    config = write_config(
        project, "medusa", options(medusa, locations={"Munich": "berlin"}), FIELDS
    )
    code, out = cli("check", "-c", str(config), "--no-history")
    assert code == 3, out
    assert "'Munich'" in out
    assert "Berlin (sloc_" in out


# ------------------------------------------------------------------ the shared contract


class TestMedusaContract(ConnectorContract):
    @pytest.fixture
    def connector(self, medusa: MedusaShop) -> MedusaConnector:
        return connector(medusa)
