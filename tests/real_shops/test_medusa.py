"""The medusa connector against a real Medusa v2 server (installed from npm, on PostgreSQL).

Every step is verified by reading the server directly (``MedusaShop.snapshot``), not through
the connector under test.
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import pytest

from omnisync.sdk.connector import ConnectorContext
from omnisync.sdk.testing import ConnectorContract
from omnisync_connectors.medusa.connector import MedusaConnector, MedusaOptions
from tests.real_shops import scenarios
from tests.real_shops.conftest import TIMINGS
from tests.real_shops.scenarios import Channel, Loop
from tests.real_shops.shops import MedusaShop, _ean

FIELDS = ["title", "description", "gtin", "price", "stock"]
LOCATIONS = {"Berlin": "berlin", "Hamburg": "hamburg"}


@pytest.fixture
def channel(medusa: MedusaShop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Channel:
    monkeypatch.setenv("OMNISYNC_T_MEDUSA_KEY", medusa.api_key)
    monkeypatch.chdir(tmp_path)
    options = {"url": medusa.url, "api_key": "${OMNISYNC_T_MEDUSA_KEY}", "locations": LOCATIONS}
    return Channel(medusa, "medusa", tmp_path, options, FIELDS)


def connector(shop: MedusaShop, **extra: object) -> MedusaConnector:
    opts = MedusaOptions.model_validate(
        {"url": shop.url, "api_key": shop.api_key, "locations": LOCATIONS, **extra}
    )
    return MedusaConnector(opts, ConnectorContext("shop"))


def test_full_loop_check_plan_apply_check_undo(channel: Channel) -> None:
    loop = Loop(channel)
    before, rows = loop.before, loop.rows
    # Every third inventory item was seeded without a Hamburg level.
    no_hamburg_level = sorted(rows)[0]
    assert before[no_hamburg_level].qty("Hamburg") == 0
    after = loop.apply(
        {
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
    )
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
    loop.undo()


def test_pull_and_push_500_variants(medusa: MedusaShop, channel: Channel) -> None:
    started = time.monotonic()
    assert len(list(connector(medusa).read())) == 500
    TIMINGS["medusa pull 500 (api key)"] = time.monotonic() - started
    started = time.monotonic()
    jwt = connector(medusa, api_key=None, email=medusa.email, password=medusa.password)
    assert len(list(jwt.read())) == 500
    TIMINGS["medusa pull 500 (jwt)"] = time.monotonic() - started
    scenarios.push_every_variant_and_undo(channel)


# ------------------------------------------------------------------ bad input


def test_wrong_api_key_is_a_clear_channel_error(channel: Channel) -> None:
    out = scenarios.check_fails(channel, api_key="sk_not_a_key_0000")
    assert "rejected the credentials (HTTP 401" in out


def test_wrong_password_is_a_clear_channel_error(medusa: MedusaShop, channel: Channel) -> None:
    out = scenarios.check_fails(
        channel, api_key=None, email=medusa.email, password="not-the-password"
    )
    assert f"Medusa refused the login of '{medusa.email}'" in out
    assert "Invalid email or password" in out


def test_server_not_running_is_a_clear_error_without_traceback(tmp_path: Path) -> None:
    scenarios.server_not_running(tmp_path, "medusa", "api_key: sk_x_123456")


def test_a_sku_twice_in_the_shop_is_its_own_finding(channel: Channel) -> None:
    # Medusa keeps SKUs unique as typed; a pasted trailing blank makes a second one.
    with scenarios.sku_twice(channel, "Copy of product 0005", "MED-0005-S "):
        pass


def test_a_price_in_a_currency_the_store_lacks_fails_alone(channel: Channel) -> None:
    out = scenarios.foreign_price_fails_alone(channel, "MED-0004-S", "MED-0004-M")
    assert "the store has no currency GBP" in out


def test_an_unknown_location_in_the_options_names_the_stores_locations(channel: Channel) -> None:
    out = scenarios.check_fails(channel, locations={"Munich": "berlin"})
    assert "'Munich'" in out
    assert "Berlin (sloc_" in out


# ------------------------------------------------------------------ the shared contract


class TestMedusaContract(ConnectorContract):
    @pytest.fixture
    def connector(self, medusa: MedusaShop) -> MedusaConnector:
        return connector(medusa)
