"""medusa and vendure connectors without a server: what the real servers cannot be made to do
on demand (an expiring JWT, a silently skipped update, a GraphQL error of each class); and the
shopify connector's idempotency keys across processes, against its emulator.

The full behaviour against the real servers is in tests/real_shops/.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from omnisync import secrets
from omnisync.errors import AuthError, TransientError
from omnisync.models import Change, Op
from omnisync.sdk.connector import ConnectorContext
from omnisync_connectors.medusa.connector import MedusaConnector, MedusaOptions
from omnisync_connectors.shopify.connector import ShopifyConnector
from omnisync_connectors.vendure.connector import VendureConnector, VendureOptions
from tests.emulators.server import Server, serve
from tests.emulators.shopify import ShopifyEmulator

URL = "http://shop.test"


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    """Connectors register their passwords as secrets (process-wide): leave none behind."""
    yield
    secrets.forget_all()


def _jwt(expires_in: float) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    claims = {"exp": int(time.time() + expires_in), "iat": int(time.time())}
    return f"{part({'alg': 'HS256'})}.{part(claims)}.sig"


class FakeMedusa:
    """Just enough of Medusa's Admin API for one variant, with knobs for misbehaviour."""

    def __init__(self, token_lifetime: float = 3600) -> None:
        self.token_lifetime = token_lifetime
        self.valid: set[str] = set()
        self.logins = 0
        self.price = 10
        self.ignore_updates = False

    def variant(self) -> dict[str, Any]:
        return {
            "id": "variant_1",
            "sku": "A-1",
            "product_id": "prod_1",
            "product": {"id": "prod_1", "title": "A", "description": None},
            "manage_inventory": False,
            "prices": [
                {"id": "price_1", "currency_code": "eur", "amount": self.price, "rules": {}},
                {"id": "price_2", "currency_code": "usd", "amount": 99, "rules": {}},
            ],
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/auth/user/emailpass":
            body = json.loads(request.content)
            if body["password"] != "pw-right-7Zq":
                return httpx.Response(
                    401, json={"type": "unauthorized", "message": "Invalid email or password"}
                )
            self.logins += 1
            token = _jwt(self.token_lifetime) + str(self.logins)
            self.valid.add(token)
            return httpx.Response(200, json={"token": token})
        auth = request.headers.get("Authorization", "")
        if auth.removeprefix("Bearer ") not in self.valid:
            return httpx.Response(401, json={"message": "Unauthorized"})
        if path == "/admin/stores":
            currencies = [{"currency_code": "eur", "is_default": True}, {"currency_code": "usd"}]
            return httpx.Response(200, json={"stores": [{"supported_currencies": currencies}]})
        if path == "/admin/stock-locations":
            return httpx.Response(200, json={"stock_locations": [], "count": 0})
        if path == "/admin/product-variants":
            return httpx.Response(200, json={"variants": [self.variant()], "count": 1})
        if path == "/admin/products/prod_1/variants/batch":
            update = json.loads(request.content)["update"][0]
            assert {p["currency_code"] for p in update["prices"]} == {"eur", "usd"}
            if not self.ignore_updates:
                self.price = next(
                    p["amount"] for p in update["prices"] if p["currency_code"] == "eur"
                )
            return httpx.Response(200, json={"created": [], "updated": [], "deleted": []})
        return httpx.Response(404, text="<pre>Cannot GET</pre>")


def medusa(fake: FakeMedusa, **options: Any) -> MedusaConnector:
    opts = MedusaOptions.model_validate(
        {"url": URL, "email": "a@b.c", "password": "pw-right-7Zq", "retries": 1, **options}
    )
    return MedusaConnector(opts, ConnectorContext("shop"), transport=httpx.MockTransport(fake))


def test_medusa_renews_a_jwt_that_is_about_to_expire() -> None:
    fake = FakeMedusa(token_lifetime=30)  # inside the renewal margin: every request renews
    shop = medusa(fake)
    assert [r.sku for r in shop.read()] == ["A-1"]
    assert [r.sku for r in shop.read()] == ["A-1"]
    assert fake.logins >= 2


def test_medusa_logs_in_again_when_an_accepted_token_is_refused() -> None:
    fake = FakeMedusa()
    shop = medusa(fake)
    shop.check()
    fake.valid.clear()  # the server restarted with a new secret
    assert [r.sku for r in shop.read()] == ["A-1"]
    assert fake.logins == 2


def test_medusa_wrong_password_names_the_channel_and_the_user() -> None:
    shop = medusa(FakeMedusa(), password="wrong")
    with pytest.raises(AuthError) as caught:
        shop.check()
    assert "shop: POST http://shop.test/auth/user/emailpass" in str(caught.value)
    assert "Medusa refused the login of 'a@b.c'" in str(caught.value)
    assert "Invalid email or password" in str(caught.value)


def test_medusa_update_answered_200_but_not_applied_fails() -> None:
    fake = FakeMedusa()
    fake.ignore_updates = True
    shop = medusa(fake)
    change = Change(
        "shop", "A-1", field="price", before={"amount": "10", "currency": "EUR"},
        after={"amount": "12.5", "currency": "EUR"},
    )  # fmt: skip
    [result] = shop.write([change])
    assert not result.ok
    assert "silently skipped" in (result.error or "")
    fake.ignore_updates = False
    assert shop.write([change])[0].ok
    assert fake.price == 12.5


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "set api_key"),
        ({"email": "a@b.c"}, "set api_key"),
        ({"api_key": "sk_1", "email": "a@b.c", "password": "x"}, "not both"),
        ({"api_key": "sk_1", "currency": "euro"}, "not an ISO 4217"),
        ({"api_key": "sk_1", "page_size": 5000}, "less than or equal to 1000"),
    ],
)
def test_medusa_options_are_validated(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MedusaOptions.model_validate({"url": URL, **options})


# ------------------------------------------------------------------ vendure


class FakeVendure:
    """A GraphQL endpoint answering each operation from a script of errors."""

    def __init__(self) -> None:
        self.errors: dict[str, list[dict[str, Any]]] = {}
        self.calls: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        query: str = body["query"]
        name = re.match(r"\s*(?:query|mutation)\s+(\w+)", query).group(1)  # type: ignore[union-attr]
        self.calls.append(name)
        if name == "Login":
            return httpx.Response(
                200,
                json={"data": {"login": {"id": "1", "identifier": "admin"}}},
                headers={"vendure-auth-token": "tok-1234"},
            )
        script = self.errors.get(name)
        if script:
            error = script.pop(0)
            if error:
                return httpx.Response(200, json={"errors": [error], "data": None})
        if name == "Store":
            data: dict[str, Any] = {
                "activeChannel": {
                    "code": "default",
                    "defaultCurrencyCode": "EUR",
                    "availableCurrencyCodes": ["EUR"],
                },
                "stockLocations": {"items": [{"id": "1", "name": "Main"}]},
            }
        elif name in ("Page", "BySku"):
            ids = ["1", "2"]
            items = [
                {
                    "id": i,
                    "sku": f"V-{i}",
                    "name": f"V {i}",
                    "product": {"id": i, "name": f"P {i}", "description": ""},
                    "prices": [{"currencyCode": "EUR", "price": 1999 if i == "1" else 500}],
                    "stockLevels": [{"stockLocationId": "1", "stockOnHand": 3}],
                }
                for i in ids
            ]
            data = {"productVariants": {"totalItems": 2, "items": items}}
        else:
            data = {"updateProductVariants": []}
        return httpx.Response(200, json={"data": data})


def vendure(fake: FakeVendure) -> VendureConnector:
    opts = VendureOptions.model_validate(
        {"url": URL, "username": "admin", "password": "pw-vendure-8Kd", "retries": 2, "max_wait": 0}
    )
    return VendureConnector(opts, ConnectorContext("vshop"), transport=httpx.MockTransport(fake))


def _error(code: str, message: str) -> dict[str, Any]:
    return {"message": message, "extensions": {"code": code}}


def test_vendure_reads_minor_units_as_money() -> None:
    records = list(vendure(FakeVendure()).read())
    assert [(r.sku, str(r.price), r.stock) for r in records] == [
        ("V-1", "19.99 EUR", {"Main": 3}),
        ("V-2", "5.00 EUR", {"Main": 3}),
    ]


def test_vendure_forbidden_inside_http_200_is_an_auth_error() -> None:
    fake = FakeVendure()
    fake.errors["Store"] = [_error("FORBIDDEN", "You are not currently authorized")]
    with pytest.raises(AuthError, match="FORBIDDEN: You are not currently authorized"):
        vendure(fake).check()


def test_vendure_internal_error_is_retried() -> None:
    fake = FakeVendure()
    fake.errors["Store"] = [_error("INTERNAL_SERVER_ERROR", "database is locked")]
    vendure(fake).check()
    assert fake.calls.count("Store") == 2
    fake.errors["Store"] = [_error("INTERNAL_SERVER_ERROR", "boom")] * 2
    with pytest.raises(TransientError):
        vendure(fake).check()


def test_vendure_a_refused_batch_is_retried_input_by_input() -> None:
    fake = FakeVendure()
    not_found = _error("ENTITY_NOT_FOUND", 'No ProductVariant with the id "2" could be found')
    fake.errors["UpdateVariants"] = [not_found, {}, not_found]  # batch, then V-1 ok, V-2 not
    shop = vendure(fake)
    changes = [
        Change("vshop", "V-1", field="stock", location="Main", before=3, after=3),
        Change("vshop", "V-2", field="stock", location="Main", before=3, after=3),
    ]
    results = shop.write(changes)
    assert [r.ok for r in results] == [True, False]
    assert results[1].error == 'ENTITY_NOT_FOUND: No ProductVariant with the id "2" could be found'
    assert fake.calls.count("UpdateVariants") == 3


# ------------------------------------------------------------------ shopify idempotency keys

SHOPIFY_TOKEN = "shpat_0123456789abcdef0123456789abcdef"


def shopify(server: Server, run_id: str | None) -> ShopifyConnector:
    options = ShopifyConnector.Options.model_validate(
        {"url": server.url, "token": SHOPIFY_TOKEN, "api_version": "2026-01", "max_wait": 0.05}
    )
    connector = ShopifyConnector(options, ConnectorContext("shop", run_id=run_id))
    assert isinstance(connector, ShopifyConnector)
    return connector


def test_shopify_a_resumed_push_sends_its_stock_writes_with_the_same_idempotency_key() -> None:
    shop = ShopifyEmulator(SHOPIFY_TOKEN, maximum=20_000, restore_rate=20_000)
    shop.seed(3, 1, locations=("Lager",))
    with serve(shop) as server:
        with shopify(server, None) as reader:
            record = next(r for r in reader.read() if r.sku == "P00002-1")
        before = shop.available("P00002-1", "Lager")
        change = Change(
            "shop", "P00002-1", Op.UPDATE, "stock", "Lager", before, before + 5, ids=record.ids
        )
        # The push that crashed after its request went out, then `apply --resume` in a new
        # process sending the same batch again, then another push run.
        results = []
        for run_id in ("run-1", "run-1", "run-2"):
            with shopify(server, run_id) as connector:
                results += connector.write([change])

    assert [(r.ok, r.error) for r in results] == [(True, None)] * 3
    writes = [c.variables for c in shop.calls if c.operation == "OmnisyncWrite"]
    keys = [v["s0_key"] for v in writes]
    assert keys[0] == keys[1] != keys[2]
    assert shop.replays == 1  # Shopify recognised the resent request by its key
    assert shop.available("P00002-1", "Lager") == before + 5
