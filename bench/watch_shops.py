"""The shops of :mod:`bench.watch`: WooCommerce emulators in a child process, with a log of
every request and every stock write as the shop applied it.

The emulators run in their own process (their CPU does not share the watcher's GIL, as a real
shop's would not), each behind ``tests.emulators.server.serve(app, latency=...)``. Between the
latency middleware and the shop sits :class:`WriteLog`: it notes every request's arrival and,
for each ``POST /products/batch``, the moment the shop has applied it and the stock each item
set. Times are ``time.monotonic()``, which on Linux is one clock for every process
(``CLOCK_MONOTONIC``), so the bench compares them with its own.

The parent talks to the child over a pipe: ``("writes", since)``, ``("requests", since)``,
``("stock",)``, ``("batches",)`` and ``("stop",)``.
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

KEY, SECRET = "ck_bench", "cs_bench"

Scope = dict[str, Any]


@dataclass(frozen=True)
class Write:
    """One item of a batch write, as the shop applied it."""

    at: float
    channel: str
    sku: str
    stock: int | None
    #: Items in the batch request it came with.
    batch: int


@dataclass(frozen=True)
class Request:
    """One request's arrival (after the emulated latency) at a shop."""

    at: float
    channel: str
    write: bool
    #: ``GET products?sku`` and the like: method, path after the API root, query names.
    kind: str


class WriteLog:
    """ASGI middleware in front of one shop: logs requests and the batch writes' items."""

    def __init__(self, shop: Any, channel: str) -> None:
        self.shop = shop
        self.channel = channel
        self.writes: list[Write] = []
        self.requests: list[Request] = []

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.shop.app(scope, receive, send)
            return
        batch = scope["method"] == "POST" and scope["path"].endswith("/batch")
        self.requests.append(Request(time.monotonic(), self.channel, batch, _kind(scope)))
        if not batch:
            await self.shop.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        replayed = False
        status = 0

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return dict(await receive())

        async def noting(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        await self.shop.app(scope, replay, noting)
        applied = time.monotonic()
        if status != 200:
            return
        items = json.loads(body).get("update") or []
        with self.shop.lock:
            skus = {p["id"]: p["sku"] for p in self.shop.products.values()}
        for item in items:
            stock = item.get("stock_quantity")
            self.writes.append(
                Write(
                    applied,
                    self.channel,
                    skus.get(item.get("id"), "?"),
                    int(stock) if stock is not None else None,
                    len(items),
                )
            )


def _kind(scope: Scope) -> str:
    path = scope["path"].removeprefix("/wp-json/wc/v3/")
    query = scope.get("query_string", b"").decode()
    names = sorted({part.partition("=")[0] for part in query.split("&") if part})
    filters = [n for n in names if n in ("sku", "include", "modified_after", "page")]
    return f"{scope['method']} {path}" + (f"?{','.join(filters)}" if filters else "")


def serve_shops(
    channels: dict[str, int],
    catalogue: list[tuple[str, str, int]],
    latency: float,
    pipe: Connection,
) -> None:
    """Child process: one shop per channel (``name -> stock buffer``) holding ``catalogue``
    (sku, gross price, canonical stock) consistent with canonical; answer the pipe until
    ``stop``."""
    from tests.emulators.server import serve
    from tests.emulators.woocommerce import Key, WooShop

    shops: dict[str, Any] = {}
    logs: dict[str, WriteLog] = {}
    with ExitStack() as stack:
        urls = {}
        for name, buffer in channels.items():
            shop = WooShop(keys={KEY: Key(SECRET)})
            for n, (sku, price, stock) in enumerate(catalogue):
                shop.add(
                    {
                        "type": "simple",
                        "sku": sku,
                        "name": f"Product {n}",
                        "regular_price": price,
                        "manage_stock": True,
                        "stock_quantity": max(0, stock - buffer),
                    }
                )
            shops[name], logs[name] = shop, WriteLog(shop, name)
            urls[name] = stack.enter_context(serve(logs[name], latency=latency)).url
        pipe.send(urls)
        while True:
            command, *args = pipe.recv()
            if command == "stop":
                break
            pipe.send(_answer(command, args, shops, logs))


def _answer(command: str, args: list[Any], shops: dict[str, Any], logs: dict[str, Any]) -> Any:
    if command == "writes":
        since = args[0]
        return [w for log in logs.values() for w in log.writes if w.at >= since]
    if command == "requests":
        since = args[0]
        return [r for log in logs.values() for r in log.requests if r.at >= since]
    if command == "stock":
        out = {}
        for name, shop in shops.items():
            with shop.lock:
                out[name] = {p["sku"]: p["stock_quantity"] for p in shop.products.values()}
        return out
    if command == "batches":
        return {name: list(shop.batches) for name, shop in shops.items()}
    raise ValueError(f"unknown command {command!r}")
