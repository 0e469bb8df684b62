"""The vendure connector against a real Vendure 3 server (installed from npm, on sql.js).

Every step is verified by reading the server directly (``VendureShop.snapshot``), not through
the connector under test.
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import pytest

from omnisync.models import Change
from omnisync.sdk.connector import ConnectorContext
from omnisync.sdk.testing import ConnectorContract
from omnisync_connectors.vendure.connector import VendureConnector, VendureOptions
from tests.real_shops import scenarios
from tests.real_shops.conftest import TIMINGS
from tests.real_shops.scenarios import Channel, Loop
from tests.real_shops.shops import VendureShop

FIELDS = ["title", "description", "price", "stock"]
LOCATIONS = {"Berlin": "berlin", "Hamburg": "hamburg"}


@pytest.fixture
def channel(vendure: VendureShop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Channel:
    monkeypatch.setenv("OMNISYNC_T_VENDURE_PASSWORD", vendure.password)
    monkeypatch.chdir(tmp_path)
    options = {
        "url": vendure.url,
        "username": vendure.username,
        "password": "${OMNISYNC_T_VENDURE_PASSWORD}",
        "locations": LOCATIONS,
    }
    return Channel(vendure, "vendure", tmp_path, options, FIELDS)


def connector(shop: VendureShop) -> VendureConnector:
    opts = VendureOptions.model_validate(
        {
            "url": shop.url,
            "username": shop.username,
            "password": shop.password,
            "locations": LOCATIONS,
        }
    )
    return VendureConnector(opts, ConnectorContext("shop"))


def test_full_loop_check_plan_apply_check_undo(channel: Channel) -> None:
    loop = Loop(channel)
    before, rows = loop.before, loop.rows
    after = loop.apply(
        {
            ("VEN-0003", "price", None): (rows["VEN-0003"].price or Decimal(0)) + Decimal("1.00"),
            ("VEN-0007", "price", None): (rows["VEN-0007"].price or Decimal(0)) - Decimal("0.50"),
            ("VEN-0010", "stock", "berlin"): rows["VEN-0010"].stock["berlin"] + 4,
            ("VEN-0011", "stock", "hamburg"): rows["VEN-0011"].stock["hamburg"] + 9,
            ("VEN-0012", "title", None): "Product 0012 (renamed)",
            ("VEN-0015", "description", None): "A new description of product 0015",
        }
    )
    assert after["VEN-0003"].price() == rows["VEN-0003"].price
    assert after["VEN-0007"].price() == rows["VEN-0007"].price
    assert after["VEN-0003"].price("USD") == before["VEN-0003"].price("USD")
    assert after["VEN-0010"].qty("Berlin") == before["VEN-0010"].qty("Berlin") + 4
    assert after["VEN-0011"].qty("Hamburg") == before["VEN-0011"].qty("Hamburg") + 9
    assert after["VEN-0012"].title == "Product 0012 (renamed)"
    assert after["VEN-0015"].description == "A new description of product 0015"
    assert after["VEN-0015"].title == before["VEN-0015"].title  # the name was left alone
    loop.undo()


def test_pull_and_push_500_variants(vendure: VendureShop, channel: Channel) -> None:
    started = time.monotonic()
    assert len(list(connector(vendure).read())) == 500
    TIMINGS["vendure pull 500"] = time.monotonic() - started
    scenarios.push_every_variant_and_undo(channel)


# ------------------------------------------------------------------ bad input


def test_wrong_password_is_a_clear_channel_error(channel: Channel) -> None:
    out = scenarios.check_fails(channel, password="not-it")
    assert "Vendure refused the login of" in out  # (the user name equals a secret here: masked)
    assert "INVALID_CREDENTIALS_ERROR" in out


def test_server_not_running_is_a_clear_error_without_traceback(tmp_path: Path) -> None:
    scenarios.server_not_running(
        tmp_path, "vendure", "username: admin, password: secret1", "/admin-api"
    )


def test_a_sku_twice_in_the_shop_is_its_own_finding(vendure: VendureShop, channel: Channel) -> None:
    with scenarios.sku_twice(channel, "Copy of product 0005", "VEN-0005"):  # Vendure allows it
        # A push never guesses which of the two is meant.
        [result] = connector(vendure).write(
            [Change("shop", "VEN-0005", field="stock", location="berlin", before=0, after=1)]
        )
        assert not result.ok
        assert "is on 2 variants" in (result.error or "")


def test_a_price_in_a_currency_the_channel_lacks_fails_alone(channel: Channel) -> None:
    out = scenarios.foreign_price_fails_alone(channel, "VEN-0004", "VEN-0006")
    assert "the channel has no currency GBP" in out


def test_an_expired_session_logs_in_again(vendure: VendureShop) -> None:
    shop = connector(vendure)
    shop.check()
    assert shop.api.logins == 1
    # What an expired session leaves the client with (the session cookie goes too).
    shop.api._token = "expired-or-revoked"
    shop.client.client.cookies.clear()
    assert len(list(shop.read())) >= 500
    assert shop.api.logins == 2


# ------------------------------------------------------------------ the shared contract


class TestVendureContract(ConnectorContract):
    @pytest.fixture
    def connector(self, vendure: VendureShop) -> VendureConnector:
        return connector(vendure)
