"""A stateful emulator of the subset of Shopify's Admin GraphQL API that omnisync uses.

::

    shop = ShopifyEmulator(token="shpat_test", maximum=2000, restore_rate=100)
    shop.seed(products=100, variants=3, locations=("Lager", "Berlin"))
    with serve(shop) as server:
        ...  # POST {server.url}/admin/api/2026-01/graphql.json

What it implements, as Shopify documents it (see ``docs/channel-apis.md`` §1):

* ``POST /admin/api/{version}/graphql.json`` with ``X-Shopify-Access-Token``; a wrong token is
  HTTP 401 ``{"errors": "[API] Invalid API key or access token (unrecognized login or wrong
  password)"}``; an unknown version path is 404; a token without the needed scope gets an
  ``ACCESS_DENIED`` error (HTTP 200).
* The documents are parsed (:mod:`tests.emulators.graphql_subset`), so aliases, several
  mutation fields in one request, inline fragments and directives work; ``operationName``
  selects the operation. Fields the emulator does not provide are errors naming the field.
  Query roots: ``shop``, ``locations``, ``location(id)``, ``products``, ``productVariants``,
  ``nodes(ids:)`` (products, variants, inventory items, locations; null for an unknown id, an
  error for one that is not a GID; charged per id at its costliest type);
  mutations: ``productVariantsBulkUpdate``, ``productUpdate``, ``inventorySetQuantities``.
* Relay connections (``nodes``, ``edges``, ``pageInfo``) in ID order with opaque cursors;
  ``first``/``last`` is required and at most 250 (an error above).  The ``query`` search
  argument understands ``field:value``, ``field:>value`` (also ``<``, ``>=``, ``<=``), quoted
  values, ``AND``/``OR``; fields: ``updated_at``, ``id``, ``sku``, ``product_id``,
  ``barcode``, ``inventory_item_id``. An unknown filter is an error here (Shopify ignores it
  with a search warning; the emulator is stricter so client bugs surface).
* The cost bucket: ``maximum`` points, refilled at ``restore_rate`` per second in real time.
  The requested cost is computed from the query (scalars 0, objects 1, connections
  ``2 + first × node``, mutations 10) and charged up front; the difference to the actual cost
  is refunded. A query over 1000 points is ``MAX_COST_EXCEEDED``; one the bucket cannot pay is
  ``THROTTLED`` with HTTP 200 and the documented body (no ``data``), or HTTP 429 with
  ``Retry-After`` when ``throttle_status=429``. Every response carries ``extensions.cost``.
* Input arrays over 250 elements are ``MAX_INPUT_SIZE_EXCEEDED``.
* ``productVariantsBulkUpdate``: ``userErrors`` for an unknown product or variant, a negative
  price; all-or-nothing unless ``allowPartialUpdates: true``. ``productUpdate``: a blank title
  or one over 255 characters.
* ``inventorySetQuantities``: names ``available``/``on_hand``, compare-and-set against
  ``compareQuantity`` (≤ 2025-10) or ``changeFromQuantity`` (≥ 2026-01; null skips the check),
  all-or-nothing; ``@idempotent(key:)`` accepted from 2026-01 and required from 2026-04 — the
  same key with the same input replays the first result without applying it again.
* Every write bumps ``updatedAt`` (variant and product for variant updates, the inventory
  level for quantities), so incremental pulls see it.

Webhooks (``shop.subscribe(topic, uri)``, as ``webhookSubscriptionCreate`` or the app's
``shopify.app.toml`` would subscribe): ``shop.sell(sku)`` places an order as a customer would
— the available quantity goes down, then ``orders/create`` and ``inventory_levels/update``
are delivered — and every change of a quantity (``set_available``, ``inventorySetQuantities``)
delivers ``inventory_levels/update``, every change of a product or variant (``set_price``,
``set_title``, the product mutations) ``products/update``, whoever made it: Shopify also tells
an app of its own writes. A delivery is a POST of the REST-style JSON payload with
``X-Shopify-Topic``, ``X-Shopify-Hmac-Sha256`` (base64 HMAC-SHA256 of the raw body with the
app's ``client_secret``), ``X-Shopify-Shop-Domain``, ``X-Shopify-API-Version``,
``X-Shopify-Webhook-Id`` (new on every attempt), ``X-Shopify-Event-Id`` (one per event, kept
on retries; shared by the subscriptions of one topic — unverified) and
``X-Shopify-Triggered-At``, sent from a queue after the change (:mod:`tests.emulators.webhooks`:
``shop.outbox``); ``sell`` and the helpers wait until their deliveries are answered.
Retries are the test's to make (``shop.outbox.redeliver``).

Wordings of error messages follow Shopify where known; those marked (unverified) are
plausible stand-ins. ``calls`` records every request (operation, variables, costs, outcome)
for assertions; the ``variant``/``available``/``set_*``/``delete_product`` helpers read and
change the state directly.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import hmac
import itertools
import json
import re
import time
import uuid
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache, partial
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.graphql_subset import (
    Connection,
    Executor,
    FieldNode,
    GraphQLError,
    Operation,
    bind_variables,
    fields,
    parse,
    requested_cost,
    resolve_value,
    select_operation,
)
from tests.emulators.webhooks import Delivery, Outbox

MAX_PAGE = 250
MAX_INPUT = 250
MAX_QUERY_COST = 1000
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
ALL_SCOPES = frozenset(
    {"read_products", "write_products", "read_inventory", "write_inventory", "read_locations"}
)
#: Root field -> the access scope it needs.
ROOT_SCOPES = {
    "shop": None,
    "locations": "read_locations",
    "location": "read_locations",
    "products": "read_products",
    "productVariants": "read_products",
    "nodes": "read_products",
    "productVariantsBulkUpdate": "write_products",
    "productUpdate": "write_products",
    "inventorySetQuantities": "write_inventory",
}
#: Reasons inventorySetQuantities accepts.
REASONS = frozenset(
    {
        "correction",
        "cycle_count_available",
        "damaged",
        "movement_created",
        "movement_updated",
        "movement_received",
        "movement_canceled",
        "other",
        "promotion",
        "quality_control",
        "received",
        "reservation_created",
        "reservation_deleted",
        "reservation_updated",
        "restock",
        "safety_stock",
        "shrinkage",
    }
)
_VARIANT_INPUT = frozenset(
    {"id", "price", "compareAtPrice", "barcode", "inventoryItem", "inventoryPolicy", "taxable"}
)
_PRODUCT_INPUT = frozenset({"id", "title", "descriptionHtml", "vendor", "productType", "tags"})
_VERSION = re.compile(r"^(\d{4})-(01|04|07|10)$|^unstable$")


def gid(kind: str, number: int) -> str:
    return f"gid://shopify/{kind}/{number}"


def gid_number(value: Any, kind: str) -> int | None:
    match = re.fullmatch(rf"gid://shopify/{kind}/(\d+)", str(value or ""))
    return int(match.group(1)) if match else None


@lru_cache(maxsize=4096)
def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _attempt(delivery: Delivery) -> Delivery:
    """``delivery``, retried as Shopify retries: the same body and event id, a new webhook id."""

    def again() -> Delivery:
        headers = {**delivery.headers, "X-Shopify-Webhook-Id": str(uuid.uuid4())}
        return _attempt(Delivery(delivery.topic, delivery.url, delivery.body, headers))

    delivery.retry = again
    return delivery


def _rest_time(moment: datetime) -> str:
    """A time as REST payloads show it (ISO 8601 with the offset)."""
    return moment.astimezone(UTC).isoformat()


def _moment(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# ---------------------------------------------------------------- state

K = TypeVar("K")
V = TypeVar("V")


class _Table(dict[K, V]):
    """A dict that counts the changes to its keys, so the emulator can keep the ids it pages
    through until one is added or removed (values may change freely)."""

    version = 0

    def __setitem__(self, key: K, value: V) -> None:
        if key not in self:
            self.version += 1
        super().__setitem__(key, value)

    def __delitem__(self, key: K) -> None:
        self.version += 1
        super().__delitem__(key)

    def pop(self, *args: Any) -> Any:
        self.version += 1
        return super().pop(*args)

    def popitem(self) -> tuple[K, V]:
        self.version += 1
        return super().popitem()

    def setdefault(self, *args: Any) -> Any:
        self.version += 1
        return super().setdefault(*args)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.version += 1
        super().update(*args, **kwargs)

    def clear(self) -> None:
        self.version += 1
        super().clear()

    def __ior__(self, other: Any) -> Any:
        self.version += 1
        return super().__ior__(other)


@dataclass
class Product:
    id: int
    title: str
    description_html: str
    vendor: str
    updated_at: datetime
    variant_ids: list[int] = field(default_factory=list)


@dataclass
class Variant:
    id: int
    product_id: int
    sku: str
    title: str
    price: Decimal
    compare_at: Decimal | None
    barcode: str | None
    item_id: int
    updated_at: datetime
    tracked: bool = True


@dataclass
class Location:
    id: int
    name: str


@dataclass
class Level:
    available: int
    on_hand: int
    updated_at: datetime


@dataclass
class Subscription:
    """A webhook subscription: its topic (``orders/create``), where Shopify delivers it, and
    the API version its payloads are rendered in."""

    topic: str
    uri: str
    api_version: str = "2026-01"


@dataclass
class Call:
    """One request as the emulator saw it."""

    operation: str | None
    kind: str  # query | mutation | "" (rejected before parsing)
    variables: dict[str, Any]
    requested: int = 0
    actual: int | None = None
    #: ok | throttled | error | auth | max_cost
    outcome: str = "ok"
    available_after: float = 0.0
    document: str = ""


try:  # pydantic's JSON encoder (pydantic comes with sqlmodel): some 3x faster than json.dumps
    from pydantic_core import to_json as _to_json
except ImportError:  # pragma: no cover
    _to_json = None


class _JSONResponse(JSONResponse):
    """:class:`JSONResponse` encoded by pydantic-core when it is there (the same compact JSON,
    UTF-8, non-ASCII unescaped): a page of 250 variants encodes in a third of the time."""

    def render(self, content: Any) -> bytes:
        if _to_json is None:
            return super().render(content)
        return _to_json(content)


class _ResponseLost(Response):
    """Starts a response and drops the connection: the client never learns the outcome."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"999")]}
        )
        await send({"type": "http.response.body", "body": b"{", "more_body": True})
        raise ConnectionResetError("emulator: response lost after the mutation was applied")


class ShopifyEmulator:
    """The emulator: an ASGI app (serve it with :func:`tests.emulators.server.serve`)."""

    def __init__(
        self,
        token: str = "shpat_emulator_token",
        *,
        currency: str = "EUR",
        maximum: float = 2000.0,
        restore_rate: float = 100.0,
        throttle_status: int = 200,
        scopes: Iterable[str] = ALL_SCOPES,
        shop_name: str = "omnisync-test",
        client_secret: str = "shpss_emulator_client_secret",
    ) -> None:
        self.token = token
        #: The app's client secret: webhooks are signed with it.
        self.client_secret = client_secret
        self.subscriptions: list[Subscription] = []
        self.outbox = Outbox()
        self.currency = currency
        self.maximum = float(maximum)
        self.restore_rate = float(restore_rate)
        self.throttle_status = throttle_status
        self.scopes = frozenset(scopes)
        self.shop_name = shop_name
        self.calls: list[Call] = []
        self.replays = 0
        #: Drop the connection after applying the next N mutations (idempotency tests).
        self.lose_mutation_responses = 0
        self.reset()
        self.app = Starlette(
            routes=[Route("/admin/api/{version}/graphql.json", self._graphql, methods=["POST"])]
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    # ------------------------------------------------------------ state helpers

    def reset(self) -> None:
        """Empty shop, full bucket, no recorded calls."""
        self.products: dict[int, Product] = _Table()
        self.variants: dict[int, Variant] = _Table()
        #: inventory item id -> variant id
        self.items: dict[int, int] = {}
        self.locations: dict[int, Location] = _Table()
        self.levels: dict[tuple[int, int], Level] = _Table()
        #: Paging indexes: name -> (table, its version, its ids in ascending order or None).
        self._indexes: dict[str, tuple[object, int, list[int] | None]] = {}
        self.idempotency: dict[str, tuple[str, dict[str, Any]]] = {}
        self._ids = itertools.count(1001)
        self._available = self.maximum
        self._at = time.monotonic()
        self.calls.clear()
        self.replays = 0

    def now(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0)

    def add_location(self, name: str) -> Location:
        location = Location(next(self._ids), name)
        self.locations[location.id] = location
        return location

    def add_product(
        self,
        title: str,
        variants: Sequence[dict[str, Any]],
        *,
        description_html: str = "",
        vendor: str = "",
        updated_at: datetime | None = None,
    ) -> Product:
        """A product with variants: ``{sku, price, compare_at?, barcode?, stock: {location: n}}``."""
        moment = updated_at or self.now()
        product = Product(next(self._ids), title, description_html, vendor, moment)
        self.products[product.id] = product
        by_name = {loc.name: loc for loc in self.locations.values()}
        for number, spec in enumerate(variants, start=1):
            variant = Variant(
                id=next(self._ids),
                product_id=product.id,
                sku=spec["sku"],
                title=spec.get("title", f"Variant {number}"),
                price=Decimal(str(spec["price"])),
                compare_at=Decimal(str(spec["compare_at"])) if spec.get("compare_at") else None,
                barcode=spec.get("barcode"),
                item_id=next(self._ids),
                updated_at=moment,
                tracked=spec.get("tracked", True),
            )
            self.variants[variant.id] = variant
            self.items[variant.item_id] = variant.id
            product.variant_ids.append(variant.id)
            for name, quantity in (spec.get("stock") or {}).items():
                location = by_name.get(name) or self.add_location(name)
                by_name[name] = location
                self.levels[(variant.item_id, location.id)] = Level(quantity, quantity, moment)
        return product

    def seed(
        self,
        products: int,
        variants: int = 1,
        *,
        locations: Sequence[str] = ("Lager", "Berlin"),
        sale_every: int = 7,
        updated_at: datetime | None = None,
    ) -> list[str]:
        """``products`` × ``variants`` variants (SKU ``P00001-1``), stocked at ``locations``.

        Prices are ``10.00 + product % 50``; every ``sale_every``-th product is on sale
        (compare-at 20% above). Product ``p`` was last updated ``p`` minutes after
        ``updated_at`` (default 2025-01-01), so changes made by a test are newer than anything
        seeded."""
        start = updated_at or datetime(2025, 1, 1, tzinfo=UTC)
        for name in locations:
            if name not in {loc.name for loc in self.locations.values()}:
                self.add_location(name)
        skus: list[str] = []
        for p in range(1, products + 1):
            price = Decimal("10.00") + p % 50
            on_sale = bool(sale_every) and p % sale_every == 0
            specs = []
            for v in range(1, variants + 1):
                sku = f"P{p:05d}-{v}"
                skus.append(sku)
                specs.append(
                    {
                        "sku": sku,
                        "price": (price * Decimal("0.8")).quantize(Decimal("0.01"))
                        if on_sale
                        else price,
                        "compare_at": price if on_sale else None,
                        "barcode": f"40{p:07d}{v:03d}1",
                        "stock": {
                            name: (p * 7 + v * 3 + i) % 25 for i, name in enumerate(locations)
                        },
                    }
                )
            self.add_product(
                f"Product {p}",
                specs,
                description_html=f"<p>Product {p}</p>",
                vendor=f"Brand {p % 5}",
                updated_at=start + timedelta(minutes=p),
            )
        return skus

    def variant(self, sku: str) -> Variant:
        found = [v for v in self.variants.values() if v.sku == sku]
        if len(found) != 1:
            raise KeyError(f"{len(found)} variants with SKU {sku}")
        return found[0]

    def product_of(self, sku: str) -> Product:
        return self.products[self.variant(sku).product_id]

    def location(self, name: str) -> Location:
        return next(loc for loc in self.locations.values() if loc.name == name)

    def available(self, sku: str, location: str) -> int:
        """The available quantity (KeyError when the variant is not stocked there)."""
        return self.levels[(self.variant(sku).item_id, self.location(location).id)].available

    def set_available(self, sku: str, location: str, quantity: int) -> None:
        """Set the available quantity as an admin would (``inventory_levels/update`` is
        delivered)."""
        variant = self.variant(sku)
        where = self.location(location)
        level = self.levels[(variant.item_id, where.id)]
        level.on_hand += quantity - level.available
        level.available = quantity
        level.updated_at = self.now()
        self._level_changed(variant.item_id, where.id)
        self.outbox.flush()

    def set_price(self, sku: str, price: str, compare_at: str | None = None) -> None:
        variant = self.variant(sku)
        variant.price = Decimal(price)
        variant.compare_at = Decimal(compare_at) if compare_at else None
        self._touch(variant)
        self._emit("products/update", self._rest_product(self.products[variant.product_id]))
        self.outbox.flush()

    def set_title(self, sku: str, title: str) -> None:
        product = self.product_of(sku)
        product.title = title
        product.updated_at = self.now()
        self._emit("products/update", self._rest_product(product))
        self.outbox.flush()

    # ------------------------------------------------------------ webhooks

    def subscribe(self, topic: str, uri: str, api_version: str = "2026-01") -> Subscription:
        """Subscribe ``uri`` to ``topic`` (``orders/create``, ``inventory_levels/update``,
        ``products/update``)."""
        subscription = Subscription(topic, uri, api_version)
        self.subscriptions.append(subscription)
        return subscription

    def sell(self, sku: str, quantity: int = 1, location: str | None = None) -> int:
        """A customer orders ``quantity`` of ``sku``, fulfilled from ``location`` (default: the
        first where the item is stocked): its available quantity goes down (committed goes up,
        so on hand stays), then ``orders/create`` and ``inventory_levels/update`` are
        delivered. Returns the order id."""
        variant = self.variant(sku)
        stocked = [
            loc for loc in self.locations.values() if (variant.item_id, loc.id) in self.levels
        ]
        where = self.location(location) if location else (stocked[0] if stocked else None)
        if variant.tracked and where is not None:
            level = self.levels[(variant.item_id, where.id)]
            level.available -= quantity
            level.updated_at = self.now()
        order_id = next(self._ids)
        line = {
            "id": next(self._ids),
            "admin_graphql_api_id": gid("LineItem", order_id),
            "variant_id": variant.id,
            "product_id": variant.product_id,
            "sku": variant.sku,
            "title": self.products[variant.product_id].title,
            "variant_title": variant.title,
            "quantity": quantity,
            "price": f"{variant.price:.2f}",
        }
        self._emit(
            "orders/create",
            {
                "id": order_id,
                "admin_graphql_api_id": gid("Order", order_id),
                "name": f"#{order_id}",
                "created_at": _rest_time(self.now()),
                "currency": self.currency,
                "financial_status": "paid",
                "line_items": [line],
            },
        )
        if variant.tracked and where is not None:
            self._level_changed(variant.item_id, where.id)
        self.outbox.flush()
        return order_id

    def _emit(self, topic: str, payload: dict[str, Any]) -> None:
        """Queue ``payload`` for every subscription of ``topic``, signed with the client secret."""
        subscriptions = [s for s in self.subscriptions if s.topic == topic]
        if not subscriptions:
            return
        body = json.dumps(payload).encode()
        digest = hmac.new(self.client_secret.encode(), body, hashlib.sha256).digest()
        event_id = str(uuid.uuid4())
        triggered = datetime.now(UTC).isoformat()
        for subscription in subscriptions:
            headers = {
                "Content-Type": "application/json",
                "X-Shopify-Topic": topic,
                "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
                "X-Shopify-Shop-Domain": f"{self.shop_name}.myshopify.com",
                "X-Shopify-API-Version": subscription.api_version,
                "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                "X-Shopify-Event-Id": event_id,
                "X-Shopify-Triggered-At": triggered,
            }
            self.outbox.send(_attempt(Delivery(topic, subscription.uri, body, headers)))

    def _level_changed(self, item_id: int, location_id: int) -> None:
        level = self.levels[(item_id, location_id)]
        self._emit(
            "inventory_levels/update",
            {
                "inventory_item_id": item_id,
                "location_id": location_id,
                "available": level.available,
                "updated_at": _rest_time(level.updated_at),
                "admin_graphql_api_id": (
                    f"gid://shopify/InventoryLevel/{location_id}?inventory_item_id={item_id}"
                ),
            },
        )

    def _rest_product(self, product: Product) -> dict[str, Any]:
        """A product as REST (and its webhooks) render it."""
        variants = [self.variants[v] for v in product.variant_ids]
        return {
            "id": product.id,
            "admin_graphql_api_id": gid("Product", product.id),
            "title": product.title,
            "body_html": product.description_html,
            "vendor": product.vendor,
            "updated_at": _rest_time(product.updated_at),
            "variants": [
                {
                    "id": v.id,
                    "admin_graphql_api_id": gid("ProductVariant", v.id),
                    "product_id": product.id,
                    "title": v.title,
                    "sku": v.sku,
                    "price": f"{v.price:.2f}",
                    "compare_at_price": f"{v.compare_at:.2f}" if v.compare_at else None,
                    "barcode": v.barcode,
                    "inventory_item_id": v.item_id,
                    "updated_at": _rest_time(v.updated_at),
                }
                for v in variants
            ],
        }

    def delete_product(self, sku: str) -> Product:
        product = self.product_of(sku)
        del self.products[product.id]
        for variant_id in product.variant_ids:
            variant = self.variants.pop(variant_id)
            del self.items[variant.item_id]
            for key in [k for k in self.levels if k[0] == variant.item_id]:
                del self.levels[key]
        return product

    def reset_bucket(self) -> None:
        """A full bucket (after changing ``maximum`` or ``restore_rate``)."""
        self._available = self.maximum
        self._at = time.monotonic()

    def drain(self, points: float) -> None:
        """Spend from the bucket as another app of the same shop would."""
        self._leak()
        self._available = max(0.0, self._available - points)

    def _touch(self, variant: Variant) -> None:
        moment = self.now()
        variant.updated_at = moment
        self.products[variant.product_id].updated_at = moment

    # ------------------------------------------------------------ counters

    def count(self, outcome: str | None = None, operation: str | None = None) -> int:
        return sum(
            1
            for c in self.calls
            if (outcome is None or c.outcome == outcome)
            and (operation is None or c.operation == operation)
        )

    # ------------------------------------------------------------ the bucket

    def _leak(self) -> None:
        now = time.monotonic()
        self._available = min(self.maximum, self._available + (now - self._at) * self.restore_rate)
        self._at = now

    def _status(self) -> dict[str, float]:
        return {
            "maximumAvailable": self.maximum,
            "currentlyAvailable": round(self._available, 1),
            "restoreRate": self.restore_rate,
        }

    # ------------------------------------------------------------ HTTP

    async def _graphql(self, request: Request) -> Response:
        version = request.path_params["version"]
        if not _VERSION.match(version):
            return _JSONResponse({"errors": "Not Found"}, status_code=404)
        if request.headers.get("x-shopify-access-token") != self.token:
            self.calls.append(Call(None, "", {}, outcome="auth"))
            return _JSONResponse({"errors": INVALID_TOKEN}, status_code=401)
        raw = await request.body()
        # The rest runs without an await. A page builds thousands of small objects that live
        # until the response is encoded: with the collector on, they survive collections and
        # get promoted, and every few pages a full collection walks the whole seeded shop
        # (~30 ms for 10,000 variants, a stall for every request in flight). Paused, they are
        # freed by reference counting as soon as the response is encoded.
        collecting = gc.isenabled()
        if collecting:
            gc.disable()
        try:
            return self._answer(raw, version)
        finally:
            if collecting:
                gc.enable()

    def _answer(self, raw: bytes, version: str) -> Response:
        try:
            body = json.loads(raw)
            query = body["query"]
            assert isinstance(query, str)
        except (ValueError, KeyError, TypeError, AssertionError):
            return _JSONResponse(
                {"errors": {"query": "Required parameter missing or invalid"}}, status_code=400
            )
        call = Call(
            body.get("operationName"), "", dict(body.get("variables") or {}), document=query
        )
        self.calls.append(call)
        try:
            operation = select_operation(parse(query), body.get("operationName"))
            call.kind = operation.kind
            variables = bind_variables(operation, body.get("variables"))
            self._validate(operation, variables)
            call.requested = requested_cost(operation, variables)
        except GraphQLError as exc:
            call.outcome = "error"
            return _JSONResponse({"errors": [exc.to_dict()]})
        self._leak()
        if call.requested > MAX_QUERY_COST:
            call.outcome = "max_cost"
            return _JSONResponse(
                {
                    "errors": [
                        {
                            "message": f"Query cost is {call.requested}, which exceeds the single "
                            f"query max cost limit ({MAX_QUERY_COST}).",
                            "extensions": {
                                "code": "MAX_COST_EXCEEDED",
                                "cost": call.requested,
                                "maxCost": MAX_QUERY_COST,
                            },
                        }
                    ]
                }
            )
        if call.requested > self._available:
            call.outcome = "throttled"
            call.available_after = self._available
            payload = {
                "errors": [
                    {
                        "message": "Throttled",
                        "extensions": {
                            "code": "THROTTLED",
                            "documentation": "https://shopify.dev/api/usage/rate-limits",
                        },
                    }
                ],
                "extensions": {
                    "cost": {
                        "requestedQueryCost": call.requested,
                        "actualQueryCost": None,
                        "throttleStatus": self._status(),
                    }
                },
            }
            if self.throttle_status == 429:
                wait = (call.requested - self._available) / self.restore_rate
                return _JSONResponse(
                    payload, status_code=429, headers={"Retry-After": f"{max(wait, 0.1):.1f}"}
                )
            return _JSONResponse(payload)
        self._available -= call.requested
        executor = Executor(variables)
        errors: list[dict[str, Any]] = []
        data: dict[str, Any] = {}
        for node in fields(operation.selections):
            try:
                data[node.key] = self._root(operation, node, executor, version)
            except GraphQLError as exc:
                if exc.path is None:
                    exc.path = [node.key]
                errors.append(exc.to_dict())
                data[node.key] = None
        actual = executor.actual_cost if operation.kind == "query" else call.requested
        call.actual = actual
        self._available = min(self.maximum, self._available + call.requested - actual)
        call.available_after = self._available
        if errors:
            call.outcome = "error"
        response: dict[str, Any] = {
            "data": data,
            "extensions": {
                "cost": {
                    "requestedQueryCost": call.requested,
                    "actualQueryCost": actual,
                    "throttleStatus": self._status(),
                }
            },
        }
        if errors:
            response["errors"] = errors
        if operation.kind == "mutation" and self.lose_mutation_responses > 0:
            self.lose_mutation_responses -= 1
            return _ResponseLost()
        return _JSONResponse(response)

    def _validate(self, operation: Operation, variables: dict[str, Any]) -> None:
        """Static checks Shopify makes before running a query: paging arguments."""

        def walk(nodes: Iterable[FieldNode]) -> None:
            for node in nodes:
                if node.name in _CONNECTIONS:
                    args = {k: resolve_value(v, variables) for k, v in node.arguments.items()}
                    size = args.get("first", args.get("last"))
                    if size is None:
                        raise GraphQLError(
                            "you must provide one of first or last",
                            line=node.line,
                            column=node.column,
                            path=[node.key],
                        )
                    if int(size) > MAX_PAGE or int(size) < 0:
                        # (unverified wording)
                        raise GraphQLError(
                            f"The '{'first' if 'first' in args else 'last'}' argument on "
                            f"'{node.name}' must be between 0 and {MAX_PAGE}, got {size}.",
                            code="ARGUMENT_OUT_OF_RANGE",
                            line=node.line,
                            column=node.column,
                            path=[node.key],
                        )
                walk(fields(node.selections))

        walk(fields(operation.selections))

    # ------------------------------------------------------------ execution

    def _root(self, operation: Operation, node: FieldNode, executor: Executor, version: str) -> Any:
        scope = ROOT_SCOPES.get(node.name, "")
        if scope == "" and node.name != "__typename":
            raise GraphQLError(
                f"Field '{node.name}' doesn't exist on type "
                f"'{'Mutation' if operation.kind == 'mutation' else 'QueryRoot'}'",
                code="undefinedField",
                line=node.line,
                column=node.column,
            )
        if scope and scope not in self.scopes:
            raise GraphQLError(
                f"Access denied for {node.name} field. Required access: `{scope}` access scope.",
                code="ACCESS_DENIED",
                line=node.line,
                column=node.column,
            )
        args = {k: resolve_value(v, executor.variables) for k, v in node.arguments.items()}
        if operation.kind == "mutation":
            value = self._mutation(node, args, executor, version)
        else:
            value = self._query_root()[node.name]
            if callable(value):
                value = value(args)
        return executor.select(value, node)

    def _query_root(self) -> dict[str, Any]:
        return {
            "shop": {
                "__typename": "Shop",
                "name": self.shop_name,
                "currencyCode": self.currency,
                "myshopifyDomain": f"{self.shop_name}.myshopify.com",
            },
            "locations": lambda a: _page(
                ((loc.id, partial(self._location, loc)) for loc in self.locations.values()), a
            ),
            "location": lambda a: (
                self._location(self.locations[n])
                if (n := gid_number(a.get("id"), "Location")) in self.locations
                else None
            ),
            "products": self._products_page,
            "productVariants": self._variants_page,
            "nodes": self._nodes,
        }

    def _nodes(self, a: dict[str, Any]) -> list[dict[str, Any] | None]:
        ids = a.get("ids") or []
        _check_size(ids, "ids")
        return [self._node(value) for value in ids]

    def _node(self, value: Any) -> dict[str, Any] | None:
        match = re.fullmatch(r"gid://shopify/(\w+)/(\d+)", str(value))
        if match is None:
            # (unverified wording and code)
            raise GraphQLError(f"Invalid global id '{value}'", code="argumentLiteralsIncompatible")
        kind, number = match[1], int(match[2])
        if kind == "Product" and number in self.products:
            return self._product(self.products[number])
        if kind == "ProductVariant" and number in self.variants:
            return self._variant(self.variants[number])
        if kind == "InventoryItem" and number in self.items:
            return self._item(self.variants[self.items[number]])
        if kind == "Location" and number in self.locations:
            return self._location(self.locations[number])
        return None

    def _ordered(
        self, name: str, table: dict[Any, Any], build: Callable[[], list[int]]
    ) -> list[int] | None:
        """The ids ``build`` lists from ``table``, kept until ``table`` gains or loses a key;
        None when they do not ascend (or ``table`` was replaced by a plain dict): page the
        slow way then."""
        version = getattr(table, "version", None)
        if version is None:
            return None
        cached = self._indexes.get(name)
        if cached is not None and cached[0] is table and cached[1] == version:
            return cached[2]
        keys = build()
        ordered = keys if all(a < b for a, b in itertools.pairwise(keys)) else None
        self._indexes[name] = (table, version, ordered)
        return ordered

    def _products_page(self, a: dict[str, Any]) -> Connection:
        test = _search(a.get("query"), _PRODUCT_FILTERS)
        if test is None:
            keys = self._ordered("products", self.products, lambda: list(self.products))
            if keys is not None:
                return _keyed_page(keys, lambda n: self._product(self.products[n]), a)
        return _page(
            (
                (p.id, partial(self._product, p))
                for p in self.products.values()
                if test is None or test(self._product_terms(p))
            ),
            a,
        )

    def _variants_page(self, a: dict[str, Any]) -> Connection:
        test = _search(a.get("query"), _VARIANT_FILTERS)
        if test is None:
            keys = self._ordered("variants", self.variants, lambda: list(self.variants))
            if keys is not None:
                return _keyed_page(keys, lambda n: self._variant(self.variants[n]), a)
        return _page(
            (
                (v.id, partial(self._variant, v))
                for v in self.variants.values()
                if test is None or test(self._variant_terms(v))
            ),
            a,
        )

    def _product_terms(self, product: Product) -> dict[str, Any]:
        return {"id": product.id, "updated_at": product.updated_at, "title": product.title}

    def _variant_terms(self, variant: Variant) -> dict[str, Any]:
        return {
            "id": variant.id,
            "sku": variant.sku,
            "product_id": variant.product_id,
            "barcode": variant.barcode,
            "updated_at": variant.updated_at,
        }

    # -- resolvers

    def _location(self, location: Location) -> dict[str, Any]:
        def levels(a: dict[str, Any]) -> Connection:
            test = _search(a.get("query"), ("updated_at", "inventory_item_id"))
            if test is None:
                keys = self._ordered(
                    f"levels@{location.id}",
                    self.levels,
                    lambda: [item for item, where in self.levels if where == location.id],
                )
                if keys is not None:
                    return _keyed_page(
                        keys,
                        lambda item: self._level(
                            item, location.id, self.levels[(item, location.id)]
                        ),
                        a,
                    )
            rows = (
                (item_id, partial(self._level, item_id, location.id, level))
                for (item_id, location_id), level in self.levels.items()
                if location_id == location.id
                and (
                    test is None
                    or test({"updated_at": level.updated_at, "inventory_item_id": item_id})
                )
            )
            return _page(rows, a)

        return {
            "__typename": "Location",
            "id": gid("Location", location.id),
            "name": location.name,
            "isActive": True,
            "inventoryLevels": levels,
        }

    def _product(self, product: Product) -> dict[str, Any]:
        return {
            "__typename": "Product",
            "id": gid("Product", product.id),
            "title": product.title,
            "descriptionHtml": product.description_html,
            "vendor": product.vendor,
            "updatedAt": stamp(product.updated_at),
            "variants": lambda a: _page(
                ((v, partial(self._variant, self.variants[v])) for v in product.variant_ids), a
            ),
        }

    def _variant(self, variant: Variant) -> dict[str, Any]:
        return {
            "__typename": "ProductVariant",
            "id": gid("ProductVariant", variant.id),
            "sku": variant.sku,
            "title": variant.title,
            "barcode": variant.barcode,
            "price": f"{variant.price:.2f}",
            "compareAtPrice": f"{variant.compare_at:.2f}"
            if variant.compare_at is not None
            else None,
            "updatedAt": stamp(variant.updated_at),
            "product": lambda a: self._product(self.products[variant.product_id]),
            "inventoryItem": lambda a: self._item(variant),
        }

    def _item(self, variant: Variant) -> dict[str, Any]:
        def levels(a: dict[str, Any]) -> Connection:
            rows = (
                (location_id, partial(self._level, variant.item_id, location_id, level))
                for location_id in self.locations
                if (level := self.levels.get((variant.item_id, location_id))) is not None
            )
            return _page(rows, a)

        return {
            "__typename": "InventoryItem",
            "id": gid("InventoryItem", variant.item_id),
            "sku": variant.sku,
            "tracked": variant.tracked,
            "variant": lambda a: self._variant(variant),
            "inventoryLevels": levels,
        }

    def _level(self, item_id: int, location_id: int, level: Level) -> dict[str, Any]:
        def quantities(a: dict[str, Any]) -> list[dict[str, Any]]:
            known = {"available": level.available, "on_hand": level.on_hand, "committed": 0}
            return [
                {"__typename": "InventoryQuantity", "name": n, "quantity": known.get(n, 0)}
                for n in a.get("names") or []
            ]

        variant = self.variants[self.items[item_id]]
        return {
            "__typename": "InventoryLevel",
            "id": f"gid://shopify/InventoryLevel/{item_id}?inventory_item_id={item_id}",
            "updatedAt": stamp(level.updated_at),
            "location": lambda a: self._location(self.locations[location_id]),
            "item": lambda a: self._item(variant),
            "quantities": quantities,
        }

    # ------------------------------------------------------------ mutations

    def _mutation(
        self, node: FieldNode, args: dict[str, Any], executor: Executor, version: str
    ) -> Any:
        key = self._idempotency_key(node, executor, version)
        if key is not None and key in self.idempotency:
            digest, payload = self.idempotency[key]
            if digest != _digest(node.name, args):
                # (unverified wording and code)
                raise GraphQLError(
                    "The same idempotency key was used with different parameters.",
                    code="IDEMPOTENCY_KEY_PARAMETER_MISMATCH",
                )
            self.replays += 1
            return payload
        handler: Callable[[dict[str, Any], str], dict[str, Any]] = {
            "productVariantsBulkUpdate": self._variants_bulk_update,
            "productUpdate": self._product_update,
            "inventorySetQuantities": self._set_quantities,
        }[node.name]
        payload = handler(args, version)
        if key is not None:
            self.idempotency[key] = (_digest(node.name, args), payload)
        return payload

    def _idempotency_key(self, node: FieldNode, executor: Executor, version: str) -> str | None:
        directive = next((d for d in node.directives if d.name == "idempotent"), None)
        supported = version == "unstable" or version >= "2026-01"
        if directive is not None and not supported:
            raise GraphQLError("Directive 'idempotent' is not defined", code="undefinedDirective")
        if directive is None:
            if node.name == "inventorySetQuantities" and (
                version == "unstable" or version >= "2026-04"
            ):
                # (unverified wording and code)
                raise GraphQLError(
                    "The @idempotent directive is required for this mutation.",
                    code="IDEMPOTENCY_KEY_REQUIRED",
                )
            return None
        key = resolve_value(directive.arguments.get("key"), executor.variables)
        if not key:
            raise GraphQLError("Directive 'idempotent' is missing required argument 'key'")
        return str(key)

    def _variants_bulk_update(self, args: dict[str, Any], version: str) -> dict[str, Any]:
        inputs = args.get("variants") or []
        _check_size(inputs, "variants")
        allow_partial = bool(args.get("allowPartialUpdates"))
        number = gid_number(args.get("productId"), "Product")
        product = self.products.get(number or -1)
        if product is None:
            return {
                "__typename": "ProductVariantsBulkUpdatePayload",
                "product": None,
                "productVariants": None,
                "userErrors": [
                    _user_error(["productId"], "Product does not exist", "PRODUCT_DOES_NOT_EXIST")
                ],
            }
        errors: list[dict[str, Any]] = []
        valid: list[tuple[Variant, dict[str, Any]]] = []
        for index, spec in enumerate(inputs):
            unknown = set(spec) - _VARIANT_INPUT
            if "inventoryQuantities" in unknown:
                errors.append(
                    _user_error(
                        ["variants", str(index), "inventoryQuantities"],
                        "Inventory quantities can only be provided during create. To update "
                        "inventory for existing variants, use inventoryAdjustQuantities.",
                        "NO_INVENTORY_QUANTITIES_ON_VARIANTS_UPDATE",
                    )
                )
                continue
            if unknown:
                raise GraphQLError(
                    f"Variable $variants of type [ProductVariantsBulkInput!]! was provided "
                    f"invalid value for {index}.{sorted(unknown)[0]} (Field is not defined on "
                    "ProductVariantsBulkInput)",
                    code="INVALID_VARIABLE",
                )
            variant = self.variants.get(gid_number(spec.get("id"), "ProductVariant") or -1)
            if variant is None or variant.product_id != product.id:
                errors.append(
                    _user_error(
                        ["variants", str(index), "id"],
                        "Product variant does not exist",
                        "PRODUCT_VARIANT_DOES_NOT_EXIST",
                    )
                )
                continue
            problem = _money_problem(spec, index)
            if problem:
                errors.append(problem)
                continue
            valid.append((variant, spec))
        if not errors or allow_partial:
            for variant, spec in valid:
                if "price" in spec:
                    variant.price = Decimal(str(spec["price"]))
                if "compareAtPrice" in spec:
                    value = spec["compareAtPrice"]
                    variant.compare_at = Decimal(str(value)) if value not in (None, "") else None
                if "barcode" in spec:
                    variant.barcode = spec["barcode"] or None
                self._touch(variant)
            applied = [v for v, _ in valid]
        else:
            applied = []
        if applied:
            self._emit("products/update", self._rest_product(product))
        return {
            "__typename": "ProductVariantsBulkUpdatePayload",
            "product": self._product(product),
            "productVariants": [self._variant(v) for v in applied],
            "userErrors": errors,
        }

    def _product_update(self, args: dict[str, Any], version: str) -> dict[str, Any]:
        spec = args.get("product") or args.get("input") or {}
        unknown = set(spec) - _PRODUCT_INPUT
        if unknown:
            raise GraphQLError(
                f"Variable $product of type ProductUpdateInput! was provided invalid value for "
                f"{sorted(unknown)[0]} (Field is not defined on ProductUpdateInput)",
                code="INVALID_VARIABLE",
            )
        product = self.products.get(gid_number(spec.get("id"), "Product") or -1)
        if product is None:
            return {
                "__typename": "ProductUpdatePayload",
                "product": None,
                "userErrors": [_user_error(["id"], "Product does not exist")],
            }
        problem = None
        if "title" in spec and not str(spec["title"] or "").strip():
            problem = "Title can't be blank"
        elif "title" in spec and len(str(spec["title"])) > 255:
            problem = "Title is too long (maximum is 255 characters)"
        if problem:
            return {
                "__typename": "ProductUpdatePayload",
                "product": self._product(product),
                "userErrors": [_user_error(["title"], problem)],
            }
        if "title" in spec:
            product.title = spec["title"]
        if "descriptionHtml" in spec:
            product.description_html = spec["descriptionHtml"] or ""
        if "vendor" in spec:
            product.vendor = spec["vendor"] or ""
        product.updated_at = self.now()
        self._emit("products/update", self._rest_product(product))
        return {
            "__typename": "ProductUpdatePayload",
            "product": self._product(product),
            "userErrors": [],
        }

    def _set_quantities(self, args: dict[str, Any], version: str) -> dict[str, Any]:
        spec = args.get("input") or {}
        quantities = spec.get("quantities") or []
        _check_size(quantities, "quantities")
        new_field = version == "unstable" or version >= "2026-01"
        errors: list[dict[str, Any]] = []
        name = spec.get("name")
        if name not in ("available", "on_hand"):
            errors.append(
                _user_error(
                    ["input", "name"],
                    "The quantity name must be either 'available' or 'on_hand'.",
                    "INVALID_NAME",
                )
            )
        if spec.get("reason") not in REASONS:
            errors.append(
                _user_error(
                    ["input", "reason"], "The specified reason is invalid.", "INVALID_REASON"
                )
            )
        ignore = bool(spec.get("ignoreCompareQuantity"))
        planned: list[tuple[Level, int, int, int]] = []
        for index, row in enumerate(quantities):
            where = ["input", "quantities", str(index)]
            if "changeFromQuantity" in row and not new_field:
                raise GraphQLError(
                    "Variable $input of type InventorySetQuantitiesInput! was provided invalid "
                    f"value for quantities.{index}.changeFromQuantity (Field is not defined on "
                    "InventoryQuantityInput)",
                    code="INVALID_VARIABLE",
                )
            item_id = gid_number(row.get("inventoryItemId"), "InventoryItem")
            variant = self.variants.get(self.items.get(item_id or -1, -1))
            if variant is None:
                errors.append(
                    _user_error(
                        [*where, "inventoryItemId"],
                        "The specified inventory item could not be found.",
                        "INVALID_INVENTORY_ITEM",
                    )
                )
                continue
            location_id = gid_number(row.get("locationId"), "Location")
            if location_id not in self.locations:
                errors.append(
                    _user_error(
                        [*where, "locationId"],
                        "The specified location could not be found.",
                        "INVALID_LOCATION",
                    )
                )
                continue
            level = self.levels.get((variant.item_id, location_id))
            if level is None:
                errors.append(
                    _user_error(
                        [*where, "locationId"],
                        "The specified inventory item is not stocked at the location.",
                        "ITEM_NOT_STOCKED_AT_LOCATION",
                    )
                )
                continue
            if not variant.tracked:
                # (unverified wording and code)
                errors.append(
                    _user_error(
                        [*where, "inventoryItemId"],
                        "The specified inventory item is not tracked.",
                        "NON_MUTABLE_INVENTORY_ITEM",
                    )
                )
                continue
            current = level.available if name == "available" else level.on_hand
            if "changeFromQuantity" in row:
                expected, field_name, code = (
                    row["changeFromQuantity"],
                    "changeFromQuantity",
                    "CHANGE_FROM_QUANTITY_STALE",
                )
            elif ignore:
                expected, field_name, code = None, "", ""
            else:
                expected = row.get("compareQuantity")
                field_name, code = "compareQuantity", "COMPARE_QUANTITY_STALE"
                if expected is None and not new_field:
                    errors.append(
                        _user_error(
                            [*where, "compareQuantity"],
                            "The compareQuantity argument must be given to each quantity or "
                            "ignored using ignoreCompareQuantity.",
                            "COMPARE_QUANTITY_REQUIRED",
                        )
                    )
                    continue
            if expected is not None and int(expected) != current:
                # (unverified wording)
                errors.append(
                    _user_error(
                        [*where, field_name],
                        f"The {field_name} argument no longer matches the persisted quantity.",
                        code,
                    )
                )
                continue
            quantity = int(row["quantity"])
            planned.append((level, location_id, variant.item_id, quantity))
        changes: list[dict[str, Any]] = []
        if not errors:
            for level, location_id, item_id, quantity in planned:
                current = level.available if name == "available" else level.on_hand
                delta = quantity - current
                level.available += delta
                level.on_hand += delta
                level.updated_at = self.now()
                if delta:
                    self._level_changed(item_id, location_id)
                changes.append(
                    {
                        "__typename": "InventoryChange",
                        "name": name,
                        "delta": delta,
                        "quantityAfterChange": quantity,
                        "location": self._location(self.locations[location_id]),
                    }
                )
        group = (
            {
                "__typename": "InventoryAdjustmentGroup",
                "createdAt": stamp(self.now()),
                "reason": spec.get("reason"),
                "referenceDocumentUri": spec.get("referenceDocumentUri"),
                "changes": lambda a: changes,
            }
            if not errors
            else None
        )
        return {
            "__typename": "InventorySetQuantitiesPayload",
            "inventoryAdjustmentGroup": group,
            "userErrors": errors,
        }


_PRODUCT_FILTERS = ("id", "updated_at", "title")
_VARIANT_FILTERS = ("id", "sku", "product_id", "barcode", "updated_at")
_CONNECTIONS = frozenset(
    {"products", "productVariants", "variants", "locations", "inventoryLevels"}
)


def _user_error(path: list[str], message: str, code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"__typename": "UserError", "field": path, "message": message}
    error["code"] = code
    return error


def _money_problem(spec: dict[str, Any], index: int) -> dict[str, Any] | None:
    for key in ("price", "compareAtPrice"):
        value = spec.get(key)
        if value in (None, ""):
            if key == "price" and key in spec:
                return _user_error(["variants", str(index), key], "Price can't be blank", "BLANK")
            continue
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            return _user_error(
                ["variants", str(index), key], f"{key} is not a valid decimal", "INVALID"
            )
        if amount < 0:
            label = "Price" if key == "price" else "Compare at price"
            return _user_error(
                ["variants", str(index), key],
                f"{label} must be greater than or equal to 0",
                "GREATER_THAN_OR_EQUAL_TO",
            )
    return None


def _check_size(items: Sequence[Any], name: str) -> None:
    if len(items) > MAX_INPUT:
        raise GraphQLError(
            f"The input array size of {len(items)} is greater than the maximum allowed of "
            f"{MAX_INPUT}.",
            code="MAX_INPUT_SIZE_EXCEEDED",
            path=[name],
        )


def _digest(name: str, args: dict[str, Any]) -> str:
    return name + json.dumps(args, sort_keys=True, default=str)


# ---------------------------------------------------------------- paging and search


@lru_cache(maxsize=65536)
def _cursor(key: int) -> str:
    return base64.urlsafe_b64encode(b"last_id:%d" % key).decode()


def _after(cursor: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode().removeprefix("last_id:"))
    except (ValueError, TypeError) as exc:
        raise GraphQLError(f"Invalid cursor for current pagination sort: {cursor!r}") from exc


def _page(rows: Iterable[tuple[int, Callable[[], Any]]], args: dict[str, Any]) -> Connection:
    """One page of ``(key, make_node)`` rows given in ascending key order (the emulator's
    dicts keep ids in creation order); only the page's nodes are built."""
    after = _after(args["after"]) if args.get("after") else None
    before = _after(args["before"]) if args.get("before") else None
    first, last = args.get("first"), args.get("last")
    selected: list[tuple[int, Callable[[], Any]]] = []
    has_next = has_previous = False
    for key, make in rows:
        if (after is not None and key <= after) or (before is not None and key >= before):
            continue
        if first is not None and len(selected) == first:
            has_next = True
            break
        selected.append((key, make))
    if first is None and last is not None:
        has_previous = len(selected) > last
        selected = selected[-last:] if last else []
    if args.get("reverse"):
        selected.reverse()
    return Connection(
        [(_cursor(key), make()) for key, make in selected],
        has_next_page=has_next,
        has_previous_page=has_previous or after is not None,
    )


def _keyed_page(keys: list[int], make: Callable[[int], Any], args: dict[str, Any]) -> Connection:
    """:func:`_page` over ``keys`` in ascending order: the cursor is found by bisection and
    only the page's nodes are built."""
    first, last = args.get("first"), args.get("last")
    if not all(n is None or (type(n) is int and n >= 0) for n in (first, last)):
        return _page(((key, partial(make, key)) for key in keys), args)
    after = _after(args["after"]) if args.get("after") else None
    before = _after(args["before"]) if args.get("before") else None
    low = bisect_right(keys, after) if after is not None else 0
    high = max(low, bisect_left(keys, before) if before is not None else len(keys))
    has_next = has_previous = False
    if first is not None:
        end = min(high, low + first)
        has_next = high > end
        selected = keys[low:end]
    else:
        selected = keys[low:high]
        if last is not None:
            has_previous = len(selected) > last
            selected = selected[-last:] if last else []
    if args.get("reverse"):
        selected.reverse()
    return Connection(
        [(_cursor(key), make(key)) for key in selected],
        has_next_page=has_next,
        has_previous_page=has_previous or after is not None,
    )


_TERM = re.compile(r"""(?P<field>\w+):(?P<op>>=|<=|>|<)?(?P<value>'[^']*'|"[^"]*"|[^\s()]+)""")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "": lambda a, b: bool(a == b),
    ">": lambda a, b: bool(a > b),
    "<": lambda a, b: bool(a < b),
    ">=": lambda a, b: bool(a >= b),
    "<=": lambda a, b: bool(a <= b),
}
Predicate = Callable[[dict[str, Any]], bool]


def _search(query: str | None, supported: Iterable[str]) -> Predicate | None:
    """A predicate for Shopify search syntax over records' filterable values (None: all)."""
    if not query or not query.strip():
        return None
    known = set(supported)
    #: Alternatives that are one equality (``id:5 OR id:7 OR sku:"A"``): set lookups.
    equal: dict[str, set[str]] = {}
    alternatives: list[list[tuple[str, Callable[[Any, Any], bool], str]]] = []
    for alternative in re.split(r"\s+OR\s+", query.strip()):
        terms = []
        for term in re.split(r"\s+AND\s+|\s+", alternative.strip()):
            term = term.strip("()")
            if not term:
                continue
            match = _TERM.fullmatch(term)
            if match is None:
                raise GraphQLError(f"emulator: cannot parse the search term {term!r}")
            if match["field"] not in known:
                raise GraphQLError(
                    f"emulator: unsupported search filter {match['field']!r} "
                    f"(supported: {', '.join(sorted(known))})"
                )
            terms.append((match["field"], match["op"] or "", match["value"].strip("'\"")))
        if len(terms) == 1 and terms[0][1] == "" and terms[0][0] != "updated_at":
            equal.setdefault(terms[0][0], set()).add(terms[0][2])
        else:
            alternatives.append([(name, _OPS[op], raw) for name, op, raw in terms])

    def test(values: dict[str, Any]) -> bool:
        if any(str(values[name]) in wanted for name, wanted in equal.items()):
            return True
        return any(
            all(op(*_comparable(values[name], raw)) for name, op, raw in terms)
            for terms in alternatives
        )

    return test


def _comparable(actual: Any, raw: str) -> tuple[Any, Any]:
    if isinstance(actual, datetime):
        try:
            return actual, _moment(raw)
        except ValueError as exc:
            raise GraphQLError(f"emulator: {raw!r} is not a date-time") from exc
    if isinstance(actual, int):
        return actual, int(raw)
    return actual or "", raw
