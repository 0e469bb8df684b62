"""Webhooks ``watch`` understands: how each sender signs its requests and what its payloads
say changed.

Every kind verifies the signature on the raw body, in constant time, *before* the body is
parsed; a request without the signature header is refused like one with a wrong signature
(never "accept when the header is absent"). Then :meth:`WebhookKind.events` turns the payload
into :class:`~omnisync.models.Event` s: the SKUs it names, or the channel's own ids where the
payload has no SKU (Shopify's inventory levels, Shopware's primary keys), which the watcher
resolves through the connector.

==============  ===============================================  ==========================
kind            signature                                        delivery id (replays)
==============  ===============================================  ==========================
shopify         ``X-Shopify-Hmac-Sha256``: base64 HMAC-SHA256    ``X-Shopify-Event-Id``
woocommerce     ``X-WC-Webhook-Signature``: base64 HMAC-SHA256   ``X-WC-Webhook-Delivery-ID``
shopware6       ``shopware-shop-signature``: hex HMAC-SHA256     ``source.eventId``
generic         ``X-Omnisync-Signature: t=<unix>,v1=<hex>``,     ``id`` of each event
                HMAC-SHA256 of ``"<t>." + body``; ``t`` within
                5 minutes
==============  ===============================================  ==========================
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from omnisync.models import Event

#: How far a generic event's signed timestamp may be from now (replays of old requests).
TOLERANCE_SECONDS = 300


class Rejected(Exception):
    """A request the intake refuses: ``status`` is the HTTP answer, ``message`` says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _hmac(secret: str, body: bytes) -> bytes:
    return hmac.new(secret.encode(), body, hashlib.sha256).digest()


def _same(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a header's value with the expected signature."""
    return given is not None and hmac.compare_digest(given.strip().encode(), expected.encode())


def _json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Rejected(400, f"the body is not JSON ({exc})") from None


def _texts(values: Any) -> tuple[str, ...]:
    """Distinct non-blank strings, in order (numbers as text)."""
    out: dict[str, None] = {}
    for value in values:
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | str):
            text = str(value).strip()
            if text:
                out[text] = None
    return tuple(out)


def _list(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    return value if isinstance(value, list) else []


def _objects(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return [item for item in _list(data, key) if isinstance(item, dict)]


def _object(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Delivery:
    """One verified request: its headers (lower-case names) and raw body."""

    headers: Mapping[str, str]
    body: bytes
    received_at: datetime


class WebhookKind:
    """How one sender signs and what its payloads mean."""

    name: ClassVar[str]
    #: The header that carries the signature, for messages.
    signature_header: ClassVar[str]

    def verify(self, delivery: Delivery, secret: str) -> None:
        """Raise :class:`Rejected` (401) unless ``delivery`` is signed with ``secret``."""
        raise NotImplementedError

    def events(self, delivery: Delivery, source: str) -> list[Event]:
        """The events a verified delivery carries (raise :class:`Rejected` 400 when its body
        is not what this sender sends)."""
        raise NotImplementedError

    def ping(self, delivery: Delivery) -> bool:
        """Whether ``delivery`` is the sender's unsigned connectivity test, answered 200 with
        nothing queued."""
        return False


class Shopify(WebhookKind):
    """Shopify: the topic in ``X-Shopify-Topic``; payloads are REST-style JSON objects."""

    name = "shopify"
    signature_header = "X-Shopify-Hmac-Sha256"

    def verify(self, delivery: Delivery, secret: str) -> None:
        expected = base64.b64encode(_hmac(secret, delivery.body)).decode()
        if not _same(delivery.headers.get("x-shopify-hmac-sha256"), expected):
            raise Rejected(401, "missing or wrong X-Shopify-Hmac-Sha256 signature")

    def events(self, delivery: Delivery, source: str) -> list[Event]:
        data = _json(delivery.body)
        if not isinstance(data, dict):
            raise Rejected(400, "a Shopify webhook body is a JSON object")
        topic = delivery.headers.get("x-shopify-topic", "")
        key = delivery.headers.get("x-shopify-event-id") or delivery.headers.get(
            "x-shopify-webhook-id"
        )
        skus: tuple[str, ...] = ()
        refs: dict[str, tuple[str, ...]] = {}
        if topic.startswith("inventory_levels/"):
            kind = "stock"
            item = _texts([data.get("inventory_item_id")])
            refs = {"inventory_item_id": tuple(f"gid://shopify/InventoryItem/{i}" for i in item)}
        elif topic.startswith("inventory_items/"):
            kind = "stock"
            skus = _texts([data.get("sku")])
            refs = {"inventory_item_id": _gids("InventoryItem", [data.get("id")])}
        elif topic.startswith("products/"):
            kind = "delete" if topic.endswith("/delete") else "product"
            skus = _texts(v.get("sku") for v in _objects(data, "variants"))
            refs = {"product_id": _gids("Product", [data.get("id")])}
        elif topic.startswith("orders/"):
            kind = "order"
            lines = _objects(data, "line_items")
            skus = _texts(line.get("sku") for line in lines)
            ids = [line.get("variant_id") for line in lines]
            refs = {"variant_id": _gids("ProductVariant", ids)}
        else:
            return []
        return _one(source, kind, skus, refs, delivery, key)


def _gids(kind: str, ids: list[Any]) -> tuple[str, ...]:
    return tuple(i if i.startswith("gid://") else f"gid://shopify/{kind}/{i}" for i in _texts(ids))


def _one(
    source: str,
    kind: str,
    skus: tuple[str, ...],
    refs: dict[str, tuple[str, ...]],
    delivery: Delivery,
    key: str | None,
) -> list[Event]:
    refs = {name: values for name, values in refs.items() if values}
    if not skus and not refs:
        return []
    return [Event(source, kind, skus, refs, delivery.received_at, key)]


class WooCommerce(WebhookKind):
    """WooCommerce: ``X-WC-Webhook-Topic`` (``product.updated``, ``order.created``, ...)."""

    name = "woocommerce"
    signature_header = "X-WC-Webhook-Signature"

    def verify(self, delivery: Delivery, secret: str) -> None:
        expected = base64.b64encode(_hmac(secret, delivery.body)).decode()
        if not _same(delivery.headers.get("x-wc-webhook-signature"), expected):
            raise Rejected(401, "missing or wrong X-WC-Webhook-Signature signature")

    def ping(self, delivery: Delivery) -> bool:
        # When a webhook is saved WooCommerce posts `webhook_id=N` (form-encoded, unsigned)
        # and reports anything but a 2xx as an error.
        return "x-wc-webhook-topic" not in delivery.headers and bool(
            re.fullmatch(rb"webhook_id=\d+", delivery.body.strip())
        )

    def events(self, delivery: Delivery, source: str) -> list[Event]:
        topic = delivery.headers.get("x-wc-webhook-topic", "")
        key = delivery.headers.get("x-wc-webhook-delivery-id")
        data = _json(delivery.body)
        if not isinstance(data, dict):
            raise Rejected(400, "a WooCommerce webhook body is a JSON object")
        resource, _, action = topic.partition(".")
        if resource == "product":
            kind = "delete" if action == "deleted" else "product"
            skus = _texts([data.get("sku")])
            ids = _texts([data.get("id")])
            name = "variation_id" if data.get("parent_id") else "product_id"
            return _one(source, kind, skus, {name: ids}, delivery, key)
        if resource == "order":
            lines = _objects(data, "line_items")
            skus = _texts(line.get("sku") for line in lines)
            refs = {
                "product_id": _texts(
                    line.get("product_id") for line in lines if not line.get("variation_id")
                ),
                "variation_id": _texts(line.get("variation_id") or None for line in lines),
            }
            return _one(source, "order", skus, refs, delivery, key)
        return []


class Shopware6(WebhookKind):
    """Shopware 6 app webhooks: ``data.payload`` lists written entities by primary key only
    (``product.written``), so the watcher looks the SKUs up; order events carry line items."""

    name = "shopware6"
    signature_header = "shopware-shop-signature"

    def verify(self, delivery: Delivery, secret: str) -> None:
        expected = _hmac(secret, delivery.body).hex()
        if not _same(delivery.headers.get("shopware-shop-signature"), expected):
            raise Rejected(401, "missing or wrong shopware-shop-signature")

    def events(self, delivery: Delivery, source: str) -> list[Event]:
        data = _json(delivery.body)
        if not isinstance(data, dict) or not isinstance(data.get("data"), dict):
            raise Rejected(400, "a Shopware webhook body is an object with `data`")
        origin = _object(data, "source")
        key = origin.get("eventId") if isinstance(origin.get("eventId"), str) else None
        if key is None:  # before Shopware 6.4.11 there is no event id: the body is the key
            key = "sha256:" + hashlib.sha256(delivery.body).hexdigest()
        event = str(data["data"].get("event", ""))
        payload = data["data"].get("payload")
        skus: tuple[str, ...] = ()
        ids: tuple[str, ...] = ()
        if isinstance(payload, list):  # entity.written
            rows = [p for p in payload if isinstance(p, dict) and p.get("entity") == "product"]
            ids = _texts(_primary_key(p.get("primaryKey")) for p in rows)
            deleted = rows and all(p.get("operation") == "delete" for p in rows)
            kind = "delete" if deleted else "product"
        elif isinstance(payload, dict):  # business events (checkout.order.placed)
            kind = "order"
            lines = _objects(_object(payload, "order"), "lineItems")
            skus = _texts(_object(line, "payload").get("productNumber") for line in lines)
            ids = _texts(line.get("productId") or line.get("referencedId") for line in lines)
        else:
            raise Rejected(400, f"Shopware event {event!r} has no payload")
        return _one(source, kind, skus, {"product_id": ids}, delivery, key)


def _primary_key(value: Any) -> Any:
    # Mapping entities have compound keys ({"productId": ..., "categoryId": ...}).
    if isinstance(value, dict):
        return value.get("productId") or value.get("id")
    return value


class Generic(WebhookKind):
    """omnisync's own signed JSON, for senders without native webhooks (an ERP hook, a
    Medusa subscriber, a Vendure EventBus plugin)::

        POST /webhooks/<name>
        X-Omnisync-Signature: t=1764770000,v1=<hex HMAC-SHA256 of "1764770000." + body>

        {"id": "erp-4711", "kind": "stock", "skus": ["KA-1001", "KA-1002"]}
        {"events": [{"id": ..., "kind": ..., "skus": [...], "refs": {"product_id": [...]}}]}

    ``kind`` is free text for the log (``stock``, ``price``, ``product``...); ``id`` makes a
    redelivery harmless. The timestamp bounds replays of a captured request to 5 minutes.
    """

    name = "generic"
    signature_header = "X-Omnisync-Signature"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock

    def verify(self, delivery: Delivery, secret: str) -> None:
        header = delivery.headers.get("x-omnisync-signature", "")
        parts = dict(part.strip().partition("=")[::2] for part in header.split(",") if "=" in part)
        stamp = parts.get("t", "")
        if not stamp.isdigit() or "v1" not in parts:
            raise Rejected(401, "missing or malformed X-Omnisync-Signature (t=<unix>,v1=<hex>)")
        expected = _hmac(secret, stamp.encode() + b"." + delivery.body).hex()
        if not _same(parts["v1"], expected):
            raise Rejected(401, "wrong X-Omnisync-Signature signature")
        if abs(self.clock() - int(stamp)) > TOLERANCE_SECONDS:
            raise Rejected(401, "X-Omnisync-Signature timestamp is more than 5 minutes off")

    def events(self, delivery: Delivery, source: str) -> list[Event]:
        data = _json(delivery.body)
        items = data.get("events") if isinstance(data, dict) and "events" in data else [data]
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise Rejected(400, 'expected an event object or {"events": [...]}')
        events = []
        for n, item in enumerate(items):
            skus = item.get("skus", [])
            refs = item.get("refs", {})
            if not isinstance(skus, list) or not isinstance(refs, dict):
                raise Rejected(400, f"event {n}: `skus` is a list and `refs` an object")
            if not all(isinstance(v, list) for v in refs.values()):
                raise Rejected(400, f"event {n}: each of `refs` is a list of ids")
            key = item.get("id")
            events.extend(
                _one(
                    source,
                    str(item.get("kind") or "change"),
                    _texts(skus),
                    {str(k): _texts(v) for k, v in refs.items()},
                    delivery,
                    str(key) if key is not None else None,
                )
            )
        return events


KINDS: dict[str, Callable[[], WebhookKind]] = {
    "shopify": Shopify,
    "woocommerce": WooCommerce,
    "shopware6": Shopware6,
    "generic": Generic,
}


def sign(kind: str, secret: str, body: bytes, *, at: float | None = None) -> dict[str, str]:
    """The headers a sender of ``kind`` would sign ``body`` with (for tests, the bench and
    scripts that post generic events)."""
    digest = _hmac(secret, body)
    if kind in ("shopify", "woocommerce"):
        header = Shopify.signature_header if kind == "shopify" else WooCommerce.signature_header
        return {header: base64.b64encode(digest).decode()}
    if kind == "shopware6":
        return {Shopware6.signature_header: digest.hex()}
    stamp = str(int(at if at is not None else time.time()))
    signed = _hmac(secret, stamp.encode() + b"." + body).hex()
    return {Generic.signature_header: f"t={stamp},v1={signed}"}


def now() -> datetime:
    return datetime.now(UTC)
