"""Shopify's Admin GraphQL API over the shared HTTP layer, paced by its cost bucket.

Shopify limits GraphQL calls by *cost*, not by count: every app+shop pair has a leaky bucket of
``maximumAvailable`` points refilled at ``restoreRate`` points per second; a query's requested
cost is taken from the bucket when it starts and the unused part is refunded when it ends.
Every response reports the bucket in ``extensions.cost.throttleStatus``. A query the bucket
cannot pay is refused with ``THROTTLED`` (HTTP 200, no ``data``; some shops answer HTTP 429).

:class:`CostBucket` keeps a local model of that bucket, so that requests wait *before* they
would be refused instead of being refused and retried:

* the first response tells the bucket's size, level and restore rate;
* before a query is sent, its cost (what Shopify requested for the last query of the same
  shape, else the caller's estimate) is reserved, sleeping first for
  ``(cost − available) / restoreRate`` seconds when the model is short; available means the
  level minus what requests on their way have reserved, so parallel requests cannot overdraw
  together;
* when the answer arrives the reservation is replaced by the actual charge
  (``actualQueryCost``: Shopify refunds the unused part), and when Shopify reports less than
  the model can explain (another app or process spends from the same bucket) the model
  follows Shopify.

If Shopify refuses anyway (``THROTTLED`` or HTTP 429), the wait it implies —
``(requestedQueryCost − currentlyAvailable) / restoreRate`` — is raised as a
:class:`~omnisync.errors.TransientError` with ``retry_after``, so the one retry policy
(:class:`omnisync.sdk.retry.Retry`, per request) waits exactly that long and tries again.

Other top-level GraphQL errors are classified once here: ``ACCESS_DENIED`` is an
:class:`~omnisync.errors.AuthError` naming the scope, ``MAX_COST_EXCEEDED`` and malformed
queries are :class:`~omnisync.errors.ConnectorError`, internal errors are transient. The
access token travels in the ``X-Shopify-Access-Token`` header only and is registered as a
secret, so no message or log line can show it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import httpx

from omnisync import secrets
from omnisync.errors import AuthError, ConnectorError, TransientError
from omnisync.sdk.http import HttpClient, HttpError, HttpOptions, retry_after

log = logging.getLogger(__name__)

#: Shopify refuses any single query that requests more than this many points.
MAX_QUERY_COST = 1000
#: Connection pages and input arrays hold at most this many elements.
MAX_PAGE = 250

SCOPES = "read_products, write_products, read_inventory, write_inventory, read_locations"


class CostBucket:
    """A thread-safe local model of Shopify's cost bucket (see the module docstring).

    The model keeps the bucket's level as Shopify last showed it, restored over time and
    capped at its size, and apart from it the points reserved by requests on their way. A
    reservation is not taken from the level itself: Shopify charges a query only when it
    arrives, and a full bucket does not fill further meanwhile — charging it early would let
    the model count restoration that Shopify never grants."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        #: Bucket size and restore rate, known after the first response.
        self.maximum: float | None = None
        self.rate = 0.0
        self._level = 0.0
        self._at = 0.0
        #: Points reserved by requests sent and not yet answered.
        self._pending = 0.0
        #: Seconds spent waiting for points (for benchmarks and logs).
        self.waited = 0.0

    def _restored(self, now: float) -> float:
        assert self.maximum is not None
        self._level = min(self.maximum, self._level + (now - self._at) * self.rate)
        self._at = now
        return self._level

    def available(self) -> float | None:
        """Points the model holds for new requests now (None before the first response)."""
        with self._lock:
            if self.maximum is None:
                return None
            return self._restored(self._clock()) - self._pending

    def acquire(self, cost: float) -> float:
        """Wait until ``cost`` points are available and reserve them; returns the reservation
        (0 while the bucket is unknown: the first request goes out and learns it)."""
        while True:
            with self._lock:
                if self.maximum is None:
                    return 0.0
                available = self._restored(self._clock()) - self._pending
                # A query larger than the whole bucket can never be paid; send it once the
                # bucket is full and let Shopify answer (it will say why).
                need = min(cost, self.maximum)
                if available >= need:
                    self._pending += cost
                    return cost
                wait = (need - available) / self.rate if self.rate > 0 else 1.0
            self.waited += wait
            self._sleep(wait)

    def settle(self, reserved: float, cost: Mapping[str, Any] | None, sent_at: float) -> None:
        """Account for an answer: the reservation becomes the actual charge, and the model
        follows Shopify's level when that is lower than the model can explain. ``cost`` is
        ``extensions.cost`` (None when the answer carried none: nothing is assumed charged)."""
        status = (cost or {}).get("throttleStatus") or None
        actual = float((cost or {}).get("actualQueryCost") or 0)
        with self._lock:
            now = self._clock()
            self._pending = max(0.0, self._pending - reserved)
            known = self.maximum is not None
            level = self._restored(now) - actual if known else 0.0
            if status:
                maximum = float(status["maximumAvailable"])
                rate = float(status["restoreRate"])
                server = float(status["currentlyAvailable"])
                # Shopify's level is from when it answered (up to rate × round trip has been
                # restored since) and may already include requests still pending here. Lower
                # than the model even so: someone else spends from the same bucket.
                if not known:
                    level = server
                elif server + rate * (now - sent_at) < level - self._pending:
                    level = server + self._pending
                self.maximum, self.rate = maximum, rate
            if self.maximum is not None:
                self._level, self._at = min(level, self.maximum), now

    def release(self, reserved: float) -> None:
        """Give a reservation back (the request never reached Shopify)."""
        if reserved:
            self.settle(reserved, None, self._clock())


class ShopifyClient(HttpClient):
    """Admin GraphQL requests: paced by the cost bucket, retried, errors classified."""

    def __init__(self, channel: str, client: httpx.Client, **kwargs: Any) -> None:
        super().__init__(channel, client, **kwargs)
        self.endpoint = "/admin/api/unstable/graphql.json"
        self.bucket = CostBucket()
        #: Requested cost Shopify reported per query shape: the estimate for the next one.
        self._costs: dict[str, float] = {}
        #: Times Shopify refused a query for cost (THROTTLED or 429).
        self.throttled = 0

    @classmethod
    def connect(
        cls,
        channel: str,
        options: HttpOptions,
        *,
        token: str,
        api_version: str,
        transport: httpx.BaseTransport | None = None,
    ) -> ShopifyClient:
        """The client for a shop; ``transport`` replaces the network (tests, proxies)."""
        secrets.register(token)
        client = cls.from_options(
            channel,
            options,
            transport=transport,
            headers={"X-Shopify-Access-Token": token, "Accept": "application/json"},
        )
        assert isinstance(client, ShopifyClient)
        client.endpoint = f"/admin/api/{api_version}/graphql.json"
        return client

    # ------------------------------------------------------------ requests

    def execute(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        operation: str,
        cost: float,
        shape: str | None = None,
    ) -> dict[str, Any]:
        """Run one operation and return its ``data``; ``cost`` is the estimated requested
        cost (used until Shopify has reported the real one for this ``shape``)."""
        body = {"query": query, "variables": dict(variables or {}), "operationName": operation}
        key = shape or f"{operation}:{cost}"
        return self.retry(lambda: self._attempt(body, key, cost))

    def _attempt(self, body: dict[str, Any], shape: str, estimate: float) -> dict[str, Any]:
        reserved = self.bucket.acquire(self._costs.get(shape, estimate))
        sent_at = time.monotonic()
        try:
            response = self._once("POST", self.endpoint, {429}, {"json": body})
        except HttpError as exc:
            self.bucket.release(reserved)
            if exc.status == 404:
                exc.hint = (
                    "check the channel's `url` (https://<shop>.myshopify.com) and `api_version`"
                )
            raise
        except BaseException:
            self.bucket.release(reserved)
            raise
        where = f"{self.channel}: {body['operationName']}"
        try:
            payload = response.json()
        except ValueError:
            self.bucket.release(reserved)
            if response.status_code == 429:
                self.throttled += 1
                raise TransientError(
                    "HTTP 429: throttled", where=where, retry_after=retry_after(response)
                ) from None
            raise ConnectorError(
                f"Shopify answered HTTP {response.status_code} with a body that is not JSON",
                where=where,
            ) from None
        cost = (payload.get("extensions") or {}).get("cost") if isinstance(payload, dict) else None
        self.bucket.settle(reserved, cost, sent_at)
        if cost and cost.get("requestedQueryCost") is not None:
            self._costs[shape] = float(cost["requestedQueryCost"])
        errors = payload.get("errors") if isinstance(payload, dict) else None
        codes = {_code(e) for e in errors} if isinstance(errors, list) else set()
        if response.status_code == 429 or "THROTTLED" in codes:
            self.throttled += 1
            raise TransientError(
                "throttled by Shopify's cost limit",
                where=where,
                retry_after=_throttle_wait(cost) or retry_after(response),
            )
        if errors:
            raise _classify(errors, where)
        data = payload.get("data")
        if not isinstance(data, dict):
            raise ConnectorError("Shopify answered without data", where=where)
        return data

    def pages(
        self,
        query: str,
        variables: Mapping[str, Any],
        *,
        operation: str,
        cost: float,
        path: Sequence[str],
        stop: threading.Event | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every page of the connection at ``path`` in the data, following ``endCursor``."""
        after: str | None = None
        while stop is None or not stop.is_set():
            data = self.execute(
                query, {**variables, "after": after}, operation=operation, cost=cost
            )
            connection: Any = data
            for key in path:
                connection = connection.get(key) if isinstance(connection, dict) else None
            if connection is None:
                raise ConnectorError(
                    f"Shopify returned no {'.'.join(path)}", where=f"{self.channel}: {operation}"
                )
            yield connection
            info = connection.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                return
            after = info.get("endCursor")


def _code(error: Any) -> str:
    if isinstance(error, dict):
        return str((error.get("extensions") or {}).get("code") or "")
    return ""


def _throttle_wait(cost: Mapping[str, Any] | None) -> float | None:
    """Seconds until the bucket can pay the refused query: (requested − available) / rate."""
    if not cost:
        return None
    status = cost.get("throttleStatus") or {}
    try:
        requested = float(cost["requestedQueryCost"])
        available = float(status["currentlyAvailable"])
        rate = float(status["restoreRate"])
    except (KeyError, TypeError, ValueError):
        return None
    if rate <= 0:
        return None
    return max((requested - available) / rate, 0.0)


def _classify(errors: Any, where: str) -> ConnectorError:
    """One ConnectorError for a response's top-level GraphQL errors."""
    listed = errors if isinstance(errors, list) else [errors]
    first = listed[0]
    message = secrets.mask(str(first.get("message") if isinstance(first, dict) else first))
    code = _code(first)
    more = f" (and {len(listed) - 1} more)" if len(listed) > 1 else ""
    if code == "ACCESS_DENIED":
        return AuthError(
            f"Shopify denied access: {message}",
            where=where,
            hint=f"give the app's access token the scopes omnisync needs ({SCOPES})",
        )
    if code == "MAX_COST_EXCEEDED":
        return ConnectorError(
            f"Shopify refused the query as too expensive: {message}",
            where=where,
            hint="lower the channel's `page_size` (or `max_batch` for writes)",
        )
    if code in ("INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE"):
        return TransientError(f"Shopify failed: {message}", where=where)
    return ConnectorError(f"Shopify GraphQL error: {message}{more}", where=where)
