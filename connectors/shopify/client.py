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

The queries omnisync sends live here too, each with its cost in Shopify's published model:
scalars are free, an object costs 1, a connection ``2 + first × node``, a mutation 10. They
keep a variant at 3 points, so that a page of 250 costs 752 — under the 1000-point ceiling of
one query. :class:`ShopifyClient` runs them (``shop_pages``, ``variant_pages``,
``level_pages``, ``changed_products``, ``changed_variants``, ``targets``, ``skus``,
``nodes``, ``mutate``) and answers Shopify's nodes as they are; :mod:`.records` maps them.
``nodes(ids:)`` is a list, not a connection: it is estimated at its ids × the node's cost.
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
#: Search terms per query string when looking variants up by id or SKU.
TERMS_PER_QUERY = 50

# ---------------------------------------------------------------- the queries and their cost

#: Points per mutation field of a write request.
MUTATION_COST = 10

_VARIANT_FIELDS = """id sku barcode price compareAtPrice
      product { id title descriptionHtml vendor updatedAt }"""

#: Every variant, a page at a time: 3 points per variant (variant, product, inventory item).
VARIANTS = f"""query OmnisyncVariants($first: Int!, $after: String, $query: String) {{
  productVariants(first: $first, after: $after, query: $query) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{
      {_VARIANT_FIELDS}
      inventoryItem {{ id tracked }}
    }}
  }}
}}"""
VARIANT_COST = 3

#: The variants a search selects (ids, SKUs, products), with their stock at every location:
#: ``5 + 3 × locations`` points per variant.
TARGETS = f"""query OmnisyncTargets($first: Int!, $after: String, $query: String, $levels: Int!) {{
  productVariants(first: $first, after: $after, query: $query) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{
      {_VARIANT_FIELDS}
      inventoryItem {{
        id tracked
        inventoryLevels(first: $levels) {{
          nodes {{ updatedAt location {{ id }} quantities(names: ["available"]) {{ name quantity }} }}
        }}
      }}
    }}
  }}
}}"""


def target_cost(levels: int) -> int:
    return 5 + 3 * levels


#: The stock at one location, a page of inventory levels at a time: 3 points per level.
LEVELS = """query OmnisyncLevels($location: ID!, $first: Int!, $after: String, $query: String) {
  location(id: $location) {
    inventoryLevels(first: $first, after: $after, query: $query) {
      pageInfo { hasNextPage endCursor }
      nodes { updatedAt item { id } quantities(names: ["available"]) { name quantity } }
    }
  }
}"""
LEVEL_COST = 3

#: Levels changed since a moment, with their variant (4 points per level).
CHANGED_LEVELS = """query OmnisyncChangedLevels($location: ID!, $first: Int!, $after: String, $query: String) {
  location(id: $location) {
    inventoryLevels(first: $first, after: $after, query: $query) {
      pageInfo { hasNextPage endCursor }
      nodes { updatedAt item { id variant { id } } }
    }
  }
}"""
CHANGED_LEVEL_COST = 3

#: Products changed since a moment (1 point per product).
CHANGED_PRODUCTS = """query OmnisyncChangedProducts($first: Int!, $after: String, $query: String) {
  products(first: $first, after: $after, query: $query) {
    pageInfo { hasNextPage endCursor }
    nodes { id updatedAt }
  }
}"""
CHANGED_PRODUCT_COST = 1

#: The SKUs of the variants a search selects (1 point per variant).
SKUS = """query OmnisyncSkus($first: Int!, $after: String, $query: String) {
  productVariants(first: $first, after: $after, query: $query) {
    pageInfo { hasNextPage endCursor }
    nodes { sku }
  }
}"""
SKU_COST = 1

#: Variants and inventory items by GID, with their SKU (what a webhook's ids stand for).
NODES = """query OmnisyncNodes($ids: [ID!]!) {
  nodes(ids: $ids) {
    __typename
    ... on ProductVariant { sku }
    ... on InventoryItem { variant { sku } }
  }
}"""
#: Points per id of ``NODES``: the node, and an inventory item's variant.
NODE_COST = 2

#: The shop's currency and its locations: the connectivity probe.
SHOP = """query OmnisyncShop($first: Int!, $after: String) {
  shop { name currencyCode }
  locations(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id name }
  }
}"""


def shop_cost(first: int) -> int:
    return 1 + 2 + first


def page_size(wanted: int, node_cost: int, overhead: int = 0) -> int:
    """The largest page (≤ ``wanted``, ≤ 250) whose query stays within 1000 points."""
    fits = (MAX_QUERY_COST - overhead - 2) // max(node_cost, 1)
    return max(1, min(wanted, MAX_PAGE, fits))


def page_cost(first: int, node_cost: int, overhead: int = 0) -> int:
    return overhead + 2 + first * node_cost


# ---------------------------------------------------------------- pacing


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

    # ------------------------------------------------------------ the queries

    def shop_pages(self) -> Iterator[dict[str, Any]]:
        """``SHOP`` answers, page by page: the shop's name and currency, and its locations."""
        after: str | None = None
        while True:
            data = self.execute(
                SHOP,
                {"first": MAX_PAGE, "after": after},
                operation="OmnisyncShop",
                cost=shop_cost(MAX_PAGE),
            )
            yield data
            info = data["locations"]["pageInfo"]
            if not info["hasNextPage"]:
                return
            after = info["endCursor"]

    def variant_pages(self, wanted: int) -> Iterator[dict[str, Any]]:
        """Every variant (``VARIANTS`` nodes), pages of at most ``wanted``."""
        size = page_size(wanted, VARIANT_COST)
        return self.pages(
            VARIANTS,
            {"first": size, "query": None},
            operation="OmnisyncVariants",
            cost=page_cost(size, VARIANT_COST),
            path=("productVariants",),
        )

    def level_pages(
        self, location: str, wanted: int, stop: threading.Event | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every inventory level (``LEVELS`` nodes) at the location with GID ``location``."""
        size = page_size(wanted, LEVEL_COST, overhead=1)
        return self.pages(
            LEVELS,
            {"location": location, "first": size, "query": None},
            operation="OmnisyncLevels",
            cost=page_cost(size, LEVEL_COST, overhead=1),
            path=("location", "inventoryLevels"),
            stop=stop,
        )

    def changed_products(self, search: str, wanted: int) -> Iterator[str]:
        """The GIDs of the products ``search`` selects (``updated_at:>'…'``)."""
        size = page_size(wanted, CHANGED_PRODUCT_COST)
        for page in self.pages(
            CHANGED_PRODUCTS,
            {"first": size, "query": search},
            operation="OmnisyncChangedProducts",
            cost=page_cost(size, CHANGED_PRODUCT_COST),
            path=("products",),
        ):
            for node in page["nodes"]:
                yield node["id"]

    def changed_variants(self, location: str, search: str, wanted: int) -> Iterator[str]:
        """The GIDs of the variants whose level at ``location`` ``search`` selects."""
        size = page_size(wanted, CHANGED_LEVEL_COST, 1)
        for page in self.pages(
            CHANGED_LEVELS,
            {"location": location, "first": size, "query": search},
            operation="OmnisyncChangedLevels",
            cost=page_cost(size, CHANGED_LEVEL_COST, overhead=1),
            path=("location", "inventoryLevels"),
        ):
            for level in page["nodes"]:
                variant = ((level.get("item") or {}).get("variant") or {}).get("id")
                if variant:
                    yield variant

    def targets(self, terms: Sequence[str], levels: int, wanted: int) -> Iterator[dict[str, Any]]:
        """Variant nodes (``TARGETS``: with stock at up to ``levels`` locations) matching any
        of ``terms``, ``TERMS_PER_QUERY`` terms per query, the queries in parallel."""
        size = page_size(wanted, target_cost(levels))
        chunks = [
            list(terms[i : i + TERMS_PER_QUERY]) for i in range(0, len(terms), TERMS_PER_QUERY)
        ]

        def fetch(chunk: list[str]) -> list[dict[str, Any]]:
            # An id matches one variant, a SKU usually one: ask for no more than that (the
            # cost is charged for `first`); pagination fetches any surplus.
            first = size
            if all(t.startswith(("id:", "sku:")) for t in chunk):
                first = min(size, 2 * len(chunk))
            nodes: list[dict[str, Any]] = []
            for page in self.pages(
                TARGETS,
                {"first": first, "query": " OR ".join(chunk), "levels": levels},
                operation="OmnisyncTargets",
                cost=page_cost(first, target_cost(levels)),
                path=("productVariants",),
            ):
                nodes += page["nodes"]
            return nodes

        for nodes in self.map(fetch, chunks):
            yield from nodes

    def skus(self, terms: Sequence[str], wanted: int) -> Iterator[str]:
        """The SKUs of the variants matching any of ``terms`` (``SKUS``), ``TERMS_PER_QUERY``
        terms per query."""
        size = page_size(wanted, SKU_COST)
        for start in range(0, len(terms), TERMS_PER_QUERY):
            search = " OR ".join(terms[start : start + TERMS_PER_QUERY])
            for page in self.pages(
                SKUS,
                {"first": size, "query": search},
                operation="OmnisyncSkus",
                cost=page_cost(size, SKU_COST),
                path=("productVariants",),
            ):
                for node in page["nodes"]:
                    yield node.get("sku") or ""

    def nodes(self, ids: Sequence[str]) -> Iterator[dict[str, Any]]:
        """``NODES`` answers for ``ids`` (GIDs), at most 250 per query; unknown ids are left
        out (Shopify answers null for them)."""
        for start in range(0, len(ids), MAX_PAGE):
            chunk = list(ids[start : start + MAX_PAGE])
            data = self.execute(
                NODES,
                {"ids": chunk},
                operation="OmnisyncNodes",
                cost=1 + NODE_COST * len(chunk),
                shape=f"OmnisyncNodes:{len(chunk)}",
            )
            yield from (node for node in data.get("nodes") or [] if isinstance(node, dict))

    def write_budget(self) -> int:
        """Points one write request may cost: the query ceiling, or a smaller bucket."""
        return min(MAX_QUERY_COST, int(self.bucket.maximum or MAX_QUERY_COST))

    def mutate(self, query: str, variables: Mapping[str, Any], fields: int) -> dict[str, Any]:
        """Send one write request of ``fields`` mutation fields; its ``data``."""
        return self.execute(
            query,
            variables,
            operation="OmnisyncWrite",
            cost=MUTATION_COST * fields,
            shape=f"OmnisyncWrite:{fields}",
        )


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
