"""Serve an emulator on 127.0.0.1 in a background thread, with latency and faults on demand.

::

    with serve(app, latency=0.05) as server:
        client = httpx.Client(base_url=server.url)
        server.faults.fail_request(3, status=500)   # the 3rd request from now gets a 500
        server.faults.drop_request(5)               # the 5th has its connection dropped

``server.requests`` counts requests (by method and path) so tests and benchmarks can assert
how many calls a pull or push made.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn

Scope = dict[str, Any]


@dataclass
class Faults:
    """Failures to inject, by request number (1-based, counted from when they were set)."""

    latency: float = 0.0
    _fail: dict[int, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    _drop: set[int] = field(default_factory=set)
    _seen: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_request(
        self,
        n: int,
        status: int = 500,
        headers: dict[str, str] | None = None,
        body: bytes = b'{"message": "injected failure"}',
    ) -> None:
        with self._lock:
            self._fail[self._seen + n] = (status, headers or {}, body)

    def drop_request(self, n: int) -> None:
        with self._lock:
            self._drop.add(self._seen + n)

    def clear(self) -> None:
        with self._lock:
            self._fail.clear()
            self._drop.clear()

    def next(self) -> tuple[str, Any]:
        with self._lock:
            self._seen += 1
            number = self._seen
            if number in self._drop:
                self._drop.discard(number)
                return "drop", None
            if number in self._fail:
                return "fail", self._fail.pop(number)
        return "pass", None


class _Middleware:
    def __init__(self, app: Any, faults: Faults, requests: Counter[str]) -> None:
        self.app = app
        self.faults = faults
        self.requests = requests

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.requests[f"{scope['method']} {scope['path']}"] += 1
        if self.faults.latency:
            await asyncio.sleep(self.faults.latency)
        action, detail = self.faults.next()
        if action == "drop":
            # Start a response, send part of it, then fail: the server closes the connection
            # mid-body and the client sees a dropped connection, not an HTTP error.
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"1000")],
                }
            )
            await send({"type": "http.response.body", "body": b"{", "more_body": True})
            raise ConnectionResetError("injected: connection dropped")
        if action == "fail":
            status, headers, body = detail
            raw = [
                (b"content-type", b"application/json"),
                *((k.lower().encode(), v.encode()) for k, v in headers.items()),
            ]
            await send({"type": "http.response.start", "status": status, "headers": raw})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


@dataclass
class Server:
    url: str
    faults: Faults
    requests: Counter[str]

    def total(self, prefix: str = "") -> int:
        return sum(
            n
            for key, n in self.requests.items()
            if key.split(" ", 1)[1].startswith(prefix) or key.startswith(prefix)
        )


@contextmanager
def serve(app: Any, *, latency: float = 0.0) -> Iterator[Server]:
    """Run ``app`` on 127.0.0.1 (a free port) until the block ends."""
    faults = Faults(latency=latency)
    requests: Counter[str] = Counter()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this: uvicorn writes a response's head and body separately,
    # and with Nagle the body waits ~40 ms for the client's delayed ACK of the head.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        _Middleware(app, faults, requests),
        log_level="critical",
        access_log=False,
        lifespan="off",
        limit_concurrency=1000,
        backlog=2048,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("emulator did not start")
        time.sleep(0.01)
    try:
        yield Server(f"http://127.0.0.1:{port}", faults, requests)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
