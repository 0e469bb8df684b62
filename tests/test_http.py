"""The shared HTTP layer: a channel nobody listens on fails fast, a dropped connection is
retried under the one policy, and clients share one SSL context that verifies."""

from __future__ import annotations

import json
import socket
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from typer.testing import CliRunner

from omnisync.cli import app
from omnisync.errors import ConnectorError, TransientError, UnreachableError
from omnisync.sdk import http
from omnisync.sdk.http import HttpClient, HttpOptions
from omnisync.sdk.retry import UNREACHABLE_ATTEMPTS, Retry
from tests.emulators.server import serve

ENV = {
    "COLUMNS": "200",
    "SHOP_TOKEN": "shpat_0123456789abcdef0123456789abcdef",
    "SHOP_KEY": "ck_0123456789abcdef",
    "SHOP_SECRET": "cs_fedcba9876543210",
}

#: The options block of a channel of each HTTP connector, at ``{url}``.
CHANNELS = {
    "shopify": "{{url: '{url}', token: '${{SHOP_TOKEN}}'}}",
    "woocommerce": "{{url: '{url}', consumer_key: '${{SHOP_KEY}}', consumer_secret: '${{SHOP_SECRET}}'}}",
    "medusa": "{{url: '{url}', api_key: '${{SHOP_SECRET}}'}}",
    "vendure": "{{url: '{url}', username: admin, password: '${{SHOP_SECRET}}'}}",
    "shopware6": "{{url: '{url}', client_id: SWIA0, client_secret: '${{SHOP_SECRET}}', currency: EUR}}",
    "magento2": "{{url: '{url}', token: '${{SHOP_TOKEN}}'}}",
}


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def attempts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every request that went to the network, as ``METHOD url``."""
    sent: list[str] = []
    real = httpx.HTTPTransport.handle_request

    def counting(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        sent.append(f"{request.method} {request.url}")
        return real(self, request)

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", counting)
    return sent


# ------------------------------------------------------------------ nobody listening


@pytest.mark.parametrize("connector", sorted(CHANNELS))
def test_a_channel_nobody_listens_on_exits_3_after_a_brief_retry(
    tmp_path: Path, closed_port: int, attempts: list[str], connector: str
) -> None:
    url = f"http://127.0.0.1:{closed_port}"
    (tmp_path / "erp.csv").write_text("sku,price\nA-1,9.90\n", encoding="utf-8")
    (tmp_path / "omnisync.yaml").write_text(
        "canonical:\n"
        "  connector: csv\n"
        "  options: {path: erp.csv, currency: EUR, mapping: {sku: sku, price: price}}\n"
        "channels:\n"
        "  webshop:\n"
        f"    connector: {connector}\n"
        f"    options: {CHANNELS[connector].format(url=url)}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        app,
        ["check", "-c", str(tmp_path / "omnisync.yaml"), "--no-history", "-f", "json"],
        env=ENV,
        catch_exceptions=False,
    )

    assert result.exit_code == 3, result.stdout + result.stderr
    (channel,) = json.loads(result.stdout)["channels"]
    assert channel["error_code"] == 3
    error = channel["error"]
    assert channel["name"] == "webshop"
    assert not error.startswith("webshop"), error  # named once, by the report
    assert f"127.0.0.1:{closed_port}" in error
    assert "cannot connect" in error
    assert "is the server running" in error
    # Tried briefly (the channel's `retries` is 5), then reported.
    assert 1 <= len(attempts) <= UNREACHABLE_ATTEMPTS < 5, attempts


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"message": "%fieldName is a required field.", "parameters": {"fieldName": "sku"}},
            "sku is a required field.",
        ),
        (
            {"message": "%1 of %2, not %10", "parameters": ["one", "two", *"3456789", "ten"]},
            "one of two, not ten",
        ),
        ({"message": "Left as %it is", "parameters": {"other": 1}}, "Left as %it is"),
        (
            {
                "message": "Validation Failed",
                "errors": [{"message": "%f bad", "parameters": {"f": "qty"}}],
            },
            "Validation Failed",
        ),
        ({"errors": [{"message": "%f bad", "parameters": {"f": "qty"}}]}, "qty bad"),
    ],
)
def test_api_messages_come_with_their_parameters_put_in(body: dict[str, Any], message: str) -> None:
    response = httpx.Response(400, json=body)
    assert http.api_message(response) == message


def test_an_unreachable_address_is_retried_briefly_then_no_longer_transient() -> None:
    calls = 0

    def refused() -> None:
        nonlocal calls
        calls += 1
        raise UnreachableError("cannot connect", where="shop", hint="is the server running?")

    with pytest.raises(ConnectorError) as caught:
        Retry(attempts=5, max_wait=0.0)(refused)
    assert calls == UNREACHABLE_ATTEMPTS
    # An outer retry (the push pipeline's) must not start over.
    assert not isinstance(caught.value, TransientError)
    assert str(caught.value) == "shop: cannot connect — is the server running?"


# ------------------------------------------------------------------ dropped connections


def _ok(request: Any) -> JSONResponse:
    return JSONResponse({"ok": True})


def test_a_connection_dropped_mid_response_is_retried_under_the_policy() -> None:
    ok = Starlette(routes=[Route("/ping", _ok)])
    with serve(ok) as server:
        options = HttpOptions(url=server.url, retries=4, max_wait=0)
        client = HttpClient.from_options("shop", options)
        try:
            server.faults.drop_request(1)
            server.faults.drop_request(2)
            assert client.get("/ping").json() == {"ok": True}
            assert client.requests == 3

            for n in range(1, 5):
                server.faults.drop_request(n)
            with pytest.raises(TransientError, match="connection failed"):
                client.get("/ping")
            assert client.requests == 3 + 4  # every try the channel's `retries` allows
        finally:
            client.close()


# ------------------------------------------------------------------ SSL contexts


def test_clients_share_one_verifying_ssl_context_built_only_for_https(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[Any] = []
    real = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        built.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counting)
    http._verified_context.cache_clear()
    clients = [
        HttpClient.from_options("shop", HttpOptions(url=f"http://127.0.0.1:{8000 + n}"))
        for n in range(3)
    ]
    assert built == []  # plain http builds no CA store
    clients += [
        HttpClient.from_options("shop", HttpOptions(url=f"https://shop{n}.example.com"))
        for n in range(3)
    ]
    assert len(built) == 1  # one for the process, not one per client
    for client in clients:
        client.close()
    for url in ("https://shop.example.com", "http://127.0.0.1"):
        context = http.ssl_context(url)
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname


def test_http2_without_the_h2_package_is_a_config_error_that_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    from pydantic import ValidationError

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "h2" else real(name, *a)
    )
    with pytest.raises(ValidationError, match=r"pip install 'omnisync\[http2\]'"):
        HttpOptions(url="https://shop.example.com", http2=True)
    assert HttpOptions(url="https://shop.example.com").http2 is False


# ------------------------------------------------------------------ the channel's budget


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_token_bucket_holds_the_average_rate_after_its_burst() -> None:
    from omnisync.sdk.pace import TokenBucket

    clock = _Clock()
    bucket = TokenBucket(4, burst=2, clock=clock, sleep=clock.sleep)
    waits = [bucket.acquire() for _ in range(10)]
    assert waits[:2] == [0.0, 0.0]  # the burst
    assert all(w == pytest.approx(0.25) for w in waits[2:])
    assert clock.now == pytest.approx(2.0)  # 8 paced requests at 4/s
    clock.now += 10  # idle: the bucket refills up to its burst, not beyond
    assert [bucket.acquire() for _ in range(3)] == [0.0, 0.0, pytest.approx(0.25)]


def test_every_request_and_every_retry_waits_for_the_channels_budget() -> None:
    from omnisync.sdk.pace import pacer_for

    ok = Starlette(routes=[Route("/ping", _ok)])
    with serve(ok) as server:
        options = HttpOptions(url=server.url, retries=4, max_wait=0, rate_limit=5, burst=1)
        client = HttpClient.from_options("budgeted-shop", options)
        # One bucket per channel in the process: a second client (the watcher opens one per
        # batch) shares the budget instead of starting with a full one.
        again = HttpClient.from_options("budgeted-shop", options)
        assert client.pacer is again.pacer is pacer_for("budgeted-shop", 5, 1)
        taken: list[float] = []
        original = client.pacer.acquire
        client.pacer = type(
            "Counting", (), {"acquire": lambda self: taken.append(original()) or 0.0}
        )()
        try:
            server.faults.drop_request(1)
            assert client.get("/ping").json() == {"ok": True}
            client.get("/ping")
        finally:
            client.close()
            again.close()
    assert len(taken) == 3  # the dropped try, its retry, the second request
    assert sum(taken) > 0  # past the burst of one, requests waited


def test_a_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        HttpOptions(url="http://x", rate_limit=0)
