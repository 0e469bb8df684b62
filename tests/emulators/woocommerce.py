"""A stateful emulator of the WooCommerce REST API v3 (``/wp-json/wc/v3``), as documented.

What omnisync uses, behaving as WooCommerce does:

* auth: HTTP Basic with consumer key/secret, or ``consumer_key``/``consumer_secret`` query
  parameters; a missing key → 401 ``woocommerce_rest_cannot_view``, a wrong one → 401
  ``woocommerce_rest_authentication_error``, a read-only key writing → 401;
* ``GET /products`` and ``GET /products/{id}/variations``: ``page``/``per_page`` (default 10,
  above 100 → 400 ``rest_invalid_param``), ``X-WP-Total``/``X-WP-TotalPages`` and a ``Link``
  header, filters ``sku`` (exact, comma-separated, finds variations too), ``include``,
  ``type``, ``status``, ``modified_after`` (exclusive; ``dates_are_gmt``), ``orderby``/``order``,
  ``context`` (``view`` wraps descriptions in ``<p>`` and shows a variation without a SKU
  under its parent's), ``_fields``;
* ``POST /products/batch`` and ``POST /products/{id}/variations/batch``: at most 100 objects
  across ``create``/``update``/``delete`` (413 ``woocommerce_rest_request_entity_too_large``
  above), each item answered on its own inside the HTTP 200 reply — a duplicate SKU is
  ``product_invalid_sku``, an unknown id ``woocommerce_rest_product_invalid_id``; deletes are
  forced;
* money as strings, ``""`` for none; a sale price with optional window (``_gmt`` fields in UTC,
  the plain ones in the site's time zone) and the derived ``price``/``on_sale``; managed stock
  recomputes ``stock_status`` (``stock_quantity`` is ignored without ``manage_stock``);
  ``date_modified_gmt`` kept to the second, and saving a variation touches its parent (the
  parent's price and stock status are synced from its variations);
* ``GET /settings/general`` (``woocommerce_currency``) and ``GET /data/currencies/current``.

Webhooks (``shop.webhooks``, as saved under WooCommerce → Settings → Advanced → Webhooks):
``shop.sell(sku, qty)`` places an order as a customer would — stock goes down, then
``order.created`` is delivered to every webhook of that topic — and ``shop.update(...,
notify=True)`` delivers ``product.updated``. A delivery is a POST of the resource's JSON with
``X-WC-Webhook-Topic``/``-Resource``/``-Event``/``-ID``/``-Delivery-ID`` and
``X-WC-Webhook-Signature`` (base64 HMAC-SHA256 of the body with the webhook's secret). As in
WooCommerce, a failed delivery is logged (``shop.deliveries``) and not retried.

Tests read and change the state directly (``shop.by_sku``, ``shop.update``, ``shop.delete``);
``shop.batches`` logs every batch request and ``shop.listings`` the ids every list returned.
Latency, 429/503 and dropped connections come from :func:`tests.emulators.server.serve`.
"""

from __future__ import annotations

import base64
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

API = "/wp-json/wc/v3"
_FORMAT = "%Y-%m-%dT%H:%M:%S"
_STATUSES = ("publish", "draft", "pending", "private", "future")
_TYPES = ("simple", "grouped", "external", "variable")
_ORDERBY = ("date", "id", "include", "title", "slug", "modified")


class WooError(Exception):
    """A WP REST error: ``{"code", "message", "data": {"status"}}``."""

    def __init__(self, code: str, message: str, status: int = 400, **data: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.data = data

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "data": {"status": self.status, **self.data},
        }

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status)


def _invalid_param(name: str, reason: str) -> WooError:
    return WooError(
        "rest_invalid_param", f"Invalid parameter(s): {name}", 400, params={name: reason}
    )


@dataclass
class Webhook:
    """A saved webhook: ``topic`` such as ``order.created``, where to deliver, its secret."""

    topic: str
    delivery_url: str
    secret: str
    id: int = 1


@dataclass
class Key:
    secret: str
    permissions: str = "read_write"  # read | write | read_write


class WooShop:
    """The shop's state and the ASGI app serving it (``shop.app``)."""

    def __init__(
        self,
        *,
        currency: str = "EUR",
        timezone: str = "Europe/Berlin",
        keys: dict[str, Key] | None = None,
        batch_limit: int = 100,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.currency = currency
        self.zone = ZoneInfo(timezone)
        self.keys = keys if keys is not None else {"ck_test": Key("cs_test")}
        self.batch_limit = batch_limit
        self.clock = clock or (lambda: datetime.now(UTC))
        self.products: dict[int, dict[str, Any]] = {}
        self.next_id = 100
        self.lock = threading.RLock()
        #: Every batch request: (path, items, HTTP status).
        self.batches: list[tuple[str, int, int]] = []
        #: Every list request: (path, query, ids returned).
        self.listings: list[tuple[str, dict[str, str], list[int]]] = []
        #: Top-level products in id order, the unfiltered listing (rebuilt after changes).
        self._top: list[dict[str, Any]] | None = None
        self.webhooks: list[Webhook] = []
        #: Every webhook delivery: (topic, HTTP status or the error).
        self.deliveries: list[tuple[str, int | str]] = []
        self.next_order = 1000
        self.next_delivery = 1
        self.app = self._make_app()

    # ------------------------------------------------------------ state for tests

    def now(self) -> datetime:
        return self.clock().astimezone(UTC).replace(microsecond=0)

    def by_sku(self, sku: str) -> dict[str, Any] | None:
        with self.lock:
            return next((dict(p) for p in self.products.values() if p["sku"] == sku), None)

    def product(self, sku: str) -> dict[str, Any]:
        """The product or variation with ``sku`` (KeyError if none)."""
        found = self.by_sku(sku)
        if found is None:
            raise KeyError(sku)
        return found

    def sellable(self) -> list[dict[str, Any]]:
        """Simple products and variations: what a pull should yield (SKU order)."""
        with self.lock:
            rows = [p for p in self.products.values() if p["type"] in ("simple", "variation")]
            return sorted((dict(p) for p in rows), key=lambda p: p["sku"])

    def add(self, data: dict[str, Any], *, parent_id: int = 0, at: datetime | None = None) -> int:
        """Create a product (or a variation of ``parent_id``) from API-style fields."""
        with self.lock:
            obj = self._blank(parent_id, data.get("type", "simple"), at or self.now())
            self._apply(obj, data, creating=True)
            self._commit(obj, touch=False)
            return int(obj["id"])

    def update(
        self,
        product_id: int,
        data: dict[str, Any],
        *,
        at: datetime | None = None,
        notify: bool = False,
    ) -> None:
        """Change a product as an admin would (``date_modified`` moves); with ``notify``,
        ``product.updated`` is delivered."""
        with self.lock:
            obj = dict(self.products[product_id])
            self._apply(obj, data)
            self._commit(obj, at=at)
            rendered = self.render(self.products[product_id], "edit")
        if notify:
            self.notify("product.updated", rendered)

    def delete(self, product_id: int) -> None:
        with self.lock:
            self._remove(product_id)

    def sell(self, sku: str, quantity: int = 1) -> int:
        """A customer orders ``quantity`` of ``sku``: managed stock goes down (it may go
        below zero, as with backorders), then ``order.created`` is delivered. The order id."""
        with self.lock:
            obj = dict(self.product(sku))
            if obj.get("manage_stock"):
                self._apply(obj, {"stock_quantity": int(obj["stock_quantity"] or 0) - quantity})
                self._commit(obj)
            order_id = self.next_order
            self.next_order += 1
            line = {
                "product_id": obj["parent_id"] or obj["id"],
                "variation_id": obj["id"] if obj["parent_id"] else 0,
                "quantity": quantity,
                "sku": sku,
            }
            order = {"id": order_id, "status": "processing", "line_items": [line]}
        self.notify("order.created", order)
        return order_id

    def notify(self, topic: str, payload: dict[str, Any]) -> None:
        """Deliver ``payload`` to every webhook of ``topic``, once (no retries)."""
        import hashlib
        import hmac
        import json

        import httpx

        body = json.dumps(payload).encode()
        resource, _, event = topic.partition(".")
        for hook in [h for h in self.webhooks if h.topic == topic]:
            signature = base64.b64encode(
                hmac.new(hook.secret.encode(), body, hashlib.sha256).digest()
            ).decode()
            with self.lock:
                delivery = self.next_delivery
                self.next_delivery += 1
            headers = {
                "Content-Type": "application/json",
                "X-WC-Webhook-Source": "https://shop.example/",
                "X-WC-Webhook-Topic": topic,
                "X-WC-Webhook-Resource": resource,
                "X-WC-Webhook-Event": event,
                "X-WC-Webhook-Signature": signature,
                "X-WC-Webhook-ID": str(hook.id),
                "X-WC-Webhook-Delivery-ID": str(delivery),
            }
            try:
                answer = httpx.post(hook.delivery_url, content=body, headers=headers, timeout=10)
                self.deliveries.append((topic, answer.status_code))
            except httpx.HTTPError as exc:
                self.deliveries.append((topic, f"{type(exc).__name__}: {exc}"))

    # ------------------------------------------------------------ rendering

    def _local(self, moment: datetime | None) -> str | None:
        return moment.astimezone(self.zone).strftime(_FORMAT) if moment else None

    @staticmethod
    def _gmt(moment: datetime | None) -> str | None:
        return moment.astimezone(UTC).strftime(_FORMAT) if moment else None

    def _on_sale(self, obj: dict[str, Any]) -> bool:
        if obj["type"] in ("variable", "grouped"):
            return any(self._on_sale(c) for c in self._kids(obj["id"]))
        if obj["sale_price"] == "" or obj["regular_price"] == "":
            return False
        if Decimal(obj["sale_price"]) >= Decimal(obj["regular_price"]):
            return False
        now = self.now()
        start, end = obj["date_on_sale_from"], obj["date_on_sale_to"]
        return (start is None or start <= now) and (end is None or now <= end)

    def _price(self, obj: dict[str, Any]) -> str:
        if obj["type"] in ("variable", "grouped"):
            prices = [Decimal(p) for p in (self._price(c) for c in self._kids(obj["id"])) if p]
            return f"{min(prices)}" if prices else ""
        return obj["sale_price"] if self._on_sale(obj) else obj["regular_price"]

    def _kids(self, parent_id: int) -> list[dict[str, Any]]:
        return [
            self.products[i]
            for i in self.products[parent_id].get("variation_ids", [])
            if i in self.products
        ]

    def _stock_status(self, obj: dict[str, Any]) -> str:
        if obj["type"] == "variable":
            statuses = {c["stock_status"] for c in self._kids(obj["id"])}
            for status in ("instock", "onbackorder"):
                if status in statuses:
                    return status
            return "outofstock"
        return str(obj["stock_status"])

    def render(self, obj: dict[str, Any], context: str = "view") -> dict[str, Any]:
        """The object as the API shows it."""
        variation = obj["type"] == "variation"
        parent = self.products.get(obj["parent_id"]) if variation else None
        sku = obj["sku"]
        description = obj["description"]
        if context == "view":
            if variation and not sku and parent is not None:
                sku = parent["sku"]
            if description:
                description = f"<p>{description}</p>\n"
        data: dict[str, Any] = {
            "id": obj["id"],
            "name": obj["name"] if not variation else (parent or {}).get("name", ""),
            "type": obj["type"],
            "status": obj["status"],
            "parent_id": obj["parent_id"],
            "sku": sku,
            "global_unique_id": obj["global_unique_id"],
            "description": description,
            "short_description": obj["short_description"],
            "price": self._price(obj),
            "regular_price": obj["regular_price"],
            "sale_price": obj["sale_price"],
            "on_sale": self._on_sale(obj),
            "date_on_sale_from": self._local(obj["date_on_sale_from"]),
            "date_on_sale_from_gmt": self._gmt(obj["date_on_sale_from"]),
            "date_on_sale_to": self._local(obj["date_on_sale_to"]),
            "date_on_sale_to_gmt": self._gmt(obj["date_on_sale_to"]),
            "manage_stock": obj["manage_stock"],
            "stock_quantity": obj["stock_quantity"],
            "stock_status": self._stock_status(obj),
            "backorders": obj["backorders"],
            "date_created": self._local(obj["date_created"]),
            "date_created_gmt": self._gmt(obj["date_created"]),
            "date_modified": self._local(obj["date_modified"]),
            "date_modified_gmt": self._gmt(obj["date_modified"]),
            "attributes": obj["attributes"],
        }
        if variation:
            del data["name"], data["type"], data["short_description"]
        else:
            data["variations"] = list(obj.get("variation_ids", []))
        return data

    # ------------------------------------------------------------ changing

    def _blank(self, parent_id: int, kind: str, at: datetime) -> dict[str, Any]:
        self.next_id += 1
        return {
            "id": self.next_id,
            "parent_id": parent_id,
            "type": "variation" if parent_id else kind,
            "status": "publish",
            "name": "",
            "sku": "",
            "description": "",
            "short_description": "",
            "regular_price": "",
            "sale_price": "",
            "date_on_sale_from": None,
            "date_on_sale_to": None,
            "manage_stock": False,
            "stock_quantity": None,
            "stock_status": "instock",
            "backorders": "no",
            "global_unique_id": "",
            "date_created": at,
            "date_modified": at,
            "attributes": [],
        }

    def _apply(self, obj: dict[str, Any], data: dict[str, Any], *, creating: bool = False) -> None:
        """Set API fields on ``obj`` (a copy), validating as WooCommerce does."""
        if creating and obj["parent_id"] == 0:
            kind = data.get("type", "simple")
            if kind not in _TYPES:
                raise _invalid_param("type", f"type is not one of {', '.join(_TYPES)}.")
            obj["type"] = kind
        for name in ("name", "description", "short_description"):
            # A variation has a description of its own but shows its parent's name.
            if name in data and (obj["type"] != "variation" or name == "description"):
                obj[name] = str(data[name] or "")
        if "status" in data:
            status = str(data["status"])
            obj["status"] = status if status in _STATUSES else "draft"
        if "sku" in data:
            sku = str(data["sku"] or "").strip()
            if sku and any(
                p["sku"] == sku and p["id"] != obj["id"] for p in self.products.values()
            ):
                raise WooError("product_invalid_sku", "Invalid or duplicated SKU.", 400)
            obj["sku"] = sku
        if obj["type"] in ("variable", "grouped"):
            obj["regular_price"] = obj["sale_price"] = ""
            obj["date_on_sale_from"] = obj["date_on_sale_to"] = None
        else:
            for name in ("regular_price", "sale_price"):
                if name in data:
                    obj[name] = _decimal(data[name])
            for name in ("date_on_sale_from", "date_on_sale_to"):
                if name in data:
                    obj[name] = self._date(data[name], name, gmt=False)
                if f"{name}_gmt" in data:
                    obj[name] = self._date(data[f"{name}_gmt"], f"{name}_gmt", gmt=True)
        if "global_unique_id" in data:
            gtin = str(data["global_unique_id"] or "").strip()
            if gtin and (
                not all(ch.isdigit() or ch == "-" for ch in gtin)
                or any(
                    p["global_unique_id"] == gtin and p["id"] != obj["id"]
                    for p in self.products.values()
                )
            ):
                raise WooError(
                    "product_invalid_global_unique_id",
                    "Invalid or duplicated GTIN, UPC, EAN or ISBN.",
                    400,
                )
            obj["global_unique_id"] = gtin
        if "attributes" in data and isinstance(data["attributes"], list):
            obj["attributes"] = data["attributes"]
        if obj["type"] in ("grouped", "external"):
            obj["manage_stock"] = False
        elif "manage_stock" in data:
            obj["manage_stock"] = data["manage_stock"] in (True, "yes", "true", 1)
        if "backorders" in data and data["backorders"] in ("no", "notify", "yes"):
            obj["backorders"] = data["backorders"]
        if obj["manage_stock"]:
            if "stock_quantity" in data and data["stock_quantity"] is not None:
                try:
                    obj["stock_quantity"] = int(float(data["stock_quantity"]))
                except (TypeError, ValueError):
                    raise _invalid_param(
                        "stock_quantity", "stock_quantity is not of type integer."
                    ) from None
            quantity = obj["stock_quantity"] or 0
            obj["stock_quantity"] = quantity
            # Managed stock: the status follows the quantity, whatever was sent.
            if quantity > 0:
                obj["stock_status"] = "instock"
            else:
                obj["stock_status"] = "onbackorder" if obj["backorders"] != "no" else "outofstock"
        else:
            obj["stock_quantity"] = None
            if data.get("stock_status") in ("instock", "outofstock", "onbackorder"):
                obj["stock_status"] = data["stock_status"]

    def _date(self, value: Any, name: str, *, gmt: bool) -> datetime | None:
        if value in ("", None):
            return None
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise _invalid_param(name, "Invalid date.") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC if gmt else self.zone)
        return moment.astimezone(UTC)

    def _commit(
        self, obj: dict[str, Any], *, touch: bool = True, at: datetime | None = None
    ) -> None:
        if touch:
            obj["date_modified"] = at or self.now()
        new = obj["id"] not in self.products
        self.products[obj["id"]] = obj
        self._top = None
        if new and obj["parent_id"]:
            parent = self.products[obj["parent_id"]]
            parent["variation_ids"] = [*parent.get("variation_ids", []), obj["id"]]
        if obj["parent_id"] and touch:
            # Saving a variation syncs its parent (price, stock status) and saves it.
            self.products[obj["parent_id"]]["date_modified"] = obj["date_modified"]

    def _remove(self, product_id: int) -> dict[str, Any]:
        obj = self.products.pop(product_id)
        self._top = None
        for child in obj.get("variation_ids", []):
            self.products.pop(child, None)
        if obj["parent_id"] and obj["parent_id"] in self.products:
            parent = self.products[obj["parent_id"]]
            parent["variation_ids"] = [
                i for i in parent.get("variation_ids", []) if i != product_id
            ]
            parent["date_modified"] = self.now()
        return obj

    # ------------------------------------------------------------ listing

    def _top_level(self) -> list[dict[str, Any]]:
        if self._top is None:
            self._top = [
                self.products[i] for i in sorted(self.products) if not self.products[i]["parent_id"]
            ]
        return self._top

    def _list(
        self,
        request: Request,
        candidates: list[dict[str, Any]],
        path: str,
        *,
        by_id: bool = False,
    ) -> Response:
        """A page of ``candidates`` (``by_id``: already in id order) as WordPress lists it."""
        query = request.query_params
        page = _int_param(query, "page", 1, 1)
        per_page = _int_param(query, "per_page", 10, 1, 100)
        context = query.get("context", "view")
        if context not in ("view", "edit"):
            raise _invalid_param("context", "context is not one of view and edit.")
        orderby = query.get("orderby", "date")
        if orderby not in _ORDERBY:
            raise _invalid_param("orderby", f"orderby is not one of {', '.join(_ORDERBY)}.")
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise _invalid_param("order", "order is not one of asc and desc.")
        status = query.get("status", "any")
        if status != "any" and status not in (*_STATUSES, "trash"):
            raise _invalid_param("status", "status is not one of any, publish, draft, ...")
        rows = candidates
        if status != "any":
            rows = [p for p in rows if p["status"] == status]
        if "type" in query:
            if query["type"] not in _TYPES:
                raise _invalid_param("type", f"type is not one of {', '.join(_TYPES)}.")
            rows = [p for p in rows if p["type"] == query["type"]]
        if "include" in query:
            wanted = {int(i) for i in query["include"].split(",") if i.strip().isdigit()}
            rows = [p for p in rows if p["id"] in wanted]
        if "modified_after" in query:
            gmt = query.get("dates_are_gmt", "false") in ("true", "1")
            after = self._date(query["modified_after"], "modified_after", gmt=gmt)
            if after is None:
                raise _invalid_param("modified_after", "Invalid date.")
            # WP_Query's date_query "after" is exclusive; WordPress keeps whole seconds.
            rows = [p for p in rows if p["date_modified"] > after]
        key: Callable[[dict[str, Any]], Any] = {
            "id": lambda p: p["id"],
            "include": lambda p: p["id"],
            "date": lambda p: (p["date_created"], p["id"]),
            "modified": lambda p: (p["date_modified"], p["id"]),
            "title": lambda p: (p["name"], p["id"]),
            "slug": lambda p: (p["name"].lower(), p["id"]),
        }[orderby]
        if not (by_id and orderby in ("id", "include") and order == "asc"):
            rows = sorted(rows, key=key, reverse=order == "desc")
        total = len(rows)
        pages = math.ceil(total / per_page)
        chosen = rows[(page - 1) * per_page : page * per_page]
        fields = [f for f in query.get("_fields", "").split(",") if f]
        body = []
        for obj in chosen:
            data = self.render(obj, context)
            body.append({k: v for k, v in data.items() if k in fields} if fields else data)
        self.listings.append((path, dict(query), [p["id"] for p in chosen]))
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        links = []
        if page > 1:
            links.append(f'<{request.url.include_query_params(page=page - 1)}>; rel="prev"')
        if page < pages:
            links.append(f'<{request.url.include_query_params(page=page + 1)}>; rel="next"')
        if links:
            headers["Link"] = ", ".join(links)
        return JSONResponse(body, headers=headers)

    # ------------------------------------------------------------ batches

    def _batch(self, body: Any, path: str, parent_id: int = 0) -> Response:
        if not isinstance(body, dict):
            raise WooError("rest_invalid_json", "Invalid JSON body passed.", 400)
        lists = {k: body.get(k) or [] for k in ("create", "update", "delete")}
        for name, items in lists.items():
            if not isinstance(items, list):
                raise _invalid_param(name, f"{name} is not of type array.")
        count = sum(len(items) for items in lists.values())
        if count > self.batch_limit:
            self.batches.append((path, count, 413))
            raise WooError(
                "woocommerce_rest_request_entity_too_large",
                f"Unable to accept more than {self.batch_limit} items for this request.",
                413,
            )
        self.batches.append((path, count, 200))
        reply: dict[str, list[Any]] = {}
        if lists["create"]:
            reply["create"] = [self._batch_create(item, parent_id) for item in lists["create"]]
        if lists["update"]:
            reply["update"] = [self._batch_update(item, parent_id) for item in lists["update"]]
        if lists["delete"]:
            reply["delete"] = [self._batch_delete(item, parent_id) for item in lists["delete"]]
        return JSONResponse(reply)

    def _invalid_id(self, parent_id: int) -> WooError:
        what = "product_variation" if parent_id else "product"
        return WooError(f"woocommerce_rest_{what}_invalid_id", "Invalid ID.", 404)

    def _owned(self, item_id: Any, parent_id: int) -> dict[str, Any]:
        obj = self.products.get(int(item_id)) if str(item_id).isdigit() else None
        if (
            obj is None
            or obj["parent_id"] != parent_id
            or (not parent_id and obj["type"] == "variation")
        ):
            raise self._invalid_id(parent_id)
        return obj

    def _batch_create(self, item: Any, parent_id: int) -> dict[str, Any]:
        try:
            if not isinstance(item, dict):
                raise WooError("rest_invalid_json", "Invalid item.", 400)
            if item.get("id"):
                raise WooError(
                    "woocommerce_rest_product_exists",
                    "Cannot create existing product.",
                    400,
                )
            obj = self._blank(parent_id, item.get("type", "simple"), self.now())
            self._apply(obj, item, creating=True)
            self._commit(obj)
            return self.render(obj, "edit")
        except WooError as exc:
            return {"id": 0, "error": exc.body()}

    def _batch_update(self, item: Any, parent_id: int) -> dict[str, Any]:
        item_id = item.get("id") if isinstance(item, dict) else None
        try:
            obj = dict(self._owned(item_id, parent_id))
            self._apply(obj, item)
            self._commit(obj)
            return self.render(obj, "edit")
        except WooError as exc:
            return {"id": item_id if isinstance(item_id, int) else 0, "error": exc.body()}

    def _batch_delete(self, item_id: Any, parent_id: int) -> dict[str, Any]:
        try:
            obj = self._owned(item_id, parent_id)
            shown = self.render(obj, "edit")
            self._remove(obj["id"])
            return shown
        except WooError as exc:
            return {"id": item_id if isinstance(item_id, int) else 0, "error": exc.body()}

    # ------------------------------------------------------------ HTTP

    def _authenticate(self, request: Request, *, write: bool) -> None:
        key = secret = None
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                key, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                key = None
        elif "consumer_key" in request.query_params:
            key = request.query_params["consumer_key"]
            secret = request.query_params.get("consumer_secret", "")
        if not key:
            if write:
                raise WooError(
                    "woocommerce_rest_cannot_batch",
                    "Sorry, you are not allowed to batch manipulate this resource.",
                    401,
                )
            raise WooError("woocommerce_rest_cannot_view", "Sorry, you cannot list resources.", 401)
        known = self.keys.get(key)
        if known is None:
            raise WooError("woocommerce_rest_authentication_error", "Consumer key is invalid.", 401)
        if known.secret != secret:
            raise WooError(
                "woocommerce_rest_authentication_error", "Consumer secret is invalid.", 401
            )
        allowed = known.permissions in ("read_write", "write" if write else "read")
        if not allowed:
            kind = "write" if write else "read"
            raise WooError(
                "woocommerce_rest_authentication_error",
                f"The API key provided does not have {kind} permissions.",
                401,
            )

    def _make_app(self) -> Starlette:
        shop = self

        def endpoint(write: bool = False) -> Callable[[Callable[..., Any]], Any]:
            def wrap(handler: Callable[..., Any]) -> Callable[[Request], Any]:
                async def run(request: Request) -> Response:
                    try:
                        shop._authenticate(request, write=write)
                        body = None
                        if write:
                            try:
                                body = await request.json()
                            except ValueError:
                                raise WooError(
                                    "rest_invalid_json", "Invalid JSON body passed.", 400
                                ) from None
                        with shop.lock:
                            result: Response = handler(request, body)
                            return result
                    except WooError as exc:
                        return exc.response()

                return run

            return wrap

        @endpoint()
        def products(request: Request, _: Any) -> Response:
            query = request.query_params
            if "sku" in query:
                skus = [s for s in query["sku"].split(",") if s]
                if len(skus) > 1:
                    skus.append(query["sku"])  # as WooCommerce does
                # The sku filter searches products and variations alike.
                rows = [p for p in shop.products.values() if p["sku"] and p["sku"] in skus]
                return shop._list(request, rows, "products")
            return shop._list(request, shop._top_level(), "products", by_id=True)

        @endpoint()
        def product(request: Request, _: Any) -> Response:
            obj = shop._owned(request.path_params["id"], 0)
            return JSONResponse(shop.render(obj, request.query_params.get("context", "view")))

        @endpoint()
        def variations(request: Request, _: Any) -> Response:
            parent = shop.products.get(request.path_params["id"])
            if parent is None or parent["parent_id"]:
                raise WooError("woocommerce_rest_product_invalid_id", "Invalid ID.", 404)
            return shop._list(
                request, shop._kids(parent["id"]), f"products/{parent['id']}/variations"
            )

        @endpoint(write=True)
        def products_batch(request: Request, body: Any) -> Response:
            return shop._batch(body, "products/batch")

        @endpoint(write=True)
        def variations_batch(request: Request, body: Any) -> Response:
            parent = shop.products.get(request.path_params["id"])
            if parent is None or parent["type"] != "variable":
                raise WooError("woocommerce_rest_product_invalid_id", "Invalid ID.", 404)
            return shop._batch(body, f"products/{parent['id']}/variations/batch", parent["id"])

        @endpoint()
        def settings_general(request: Request, _: Any) -> Response:
            return JSONResponse(
                [
                    {"id": "woocommerce_default_country", "label": "Country", "value": "DE"},
                    {"id": "woocommerce_currency", "label": "Currency", "value": shop.currency},
                    {"id": "woocommerce_price_num_decimals", "label": "Decimals", "value": "2"},
                ]
            )

        @endpoint()
        def current_currency(request: Request, _: Any) -> Response:
            return JSONResponse({"code": shop.currency, "name": shop.currency, "symbol": ""})

        async def no_route(request: Request, exc: Exception) -> Response:
            return WooError(
                "rest_no_route", "No route was found matching the URL and request method.", 404
            ).response()

        routes = [
            Route(f"{API}/products", products, methods=["GET"]),
            Route(f"{API}/products/batch", products_batch, methods=["POST"]),
            Route(f"{API}/products/{{id:int}}", product, methods=["GET"]),
            Route(f"{API}/products/{{id:int}}/variations", variations, methods=["GET"]),
            Route(
                f"{API}/products/{{id:int}}/variations/batch", variations_batch, methods=["POST"]
            ),
            Route(f"{API}/settings/general", settings_general, methods=["GET"]),
            Route(f"{API}/data/currencies/current", current_currency, methods=["GET"]),
        ]
        return Starlette(routes=routes, exception_handlers={HTTPException: no_route})


def _decimal(value: Any) -> str:
    """``wc_format_decimal``: a number as a plain string, ``""`` for blank or junk."""
    text = str(value if value is not None else "").strip()
    if not text:
        return ""
    try:
        number = Decimal(text)
    except InvalidOperation:
        return ""
    return f"{number:f}" if number.is_finite() else ""


def _int_param(query: Any, name: str, default: int, low: int, high: int | None = None) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _invalid_param(name, f"{name} is not of type integer.") from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} (inclusive) and {high} (inclusive)" if high else f"at least {low}"
        raise _invalid_param(name, f"{name} must be {bound}")
    return value


# ---------------------------------------------------------------- seeding

#: Sale window of every seeded product on sale (UTC).
SALE_FROM = datetime(2026, 11, 1, tzinfo=UTC)
SALE_TO = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)


def seed(
    shop: WooShop,
    *,
    simple: int,
    variable: int = 0,
    variations: int = 3,
    start: datetime | None = None,
) -> None:
    """``simple`` simple products (``S00000``...) and ``variable`` variable products
    (``V0000``) with ``variations`` variations each (``V0000-1``...), managed stock, every
    tenth on sale (:data:`SALE_FROM` → :data:`SALE_TO`), GTINs; modified a minute apart,
    ending an hour before ``start`` (default: now)."""
    total = simple + variable * (variations + 1)
    first = (start or shop.now()) - timedelta(hours=1) - timedelta(minutes=total)
    minute = 0

    def at() -> datetime:
        nonlocal minute
        minute += 1
        return first + timedelta(minutes=minute)

    for i in range(simple):
        shop.add({"type": "simple", **product_fields(f"S{i:05d}", i)}, at=at())
    for j in range(variable):
        parent = shop.add(
            {"type": "variable", "sku": f"V{j:04d}", "name": f"Variable {j}"}, at=at()
        )
        for k in range(1, variations + 1):
            number = 100_000 + j * 100 + k
            fields = product_fields(f"V{j:04d}-{k}", number)
            fields.pop("name")
            fields["attributes"] = [{"id": 0, "name": "Size", "option": f"S{k}"}]
            shop.add(fields, parent_id=parent, at=at())


def product_fields(sku: str, number: int) -> dict[str, Any]:
    """The API fields of seeded product ``number`` (deterministic)."""
    price = Decimal(1000 + (number * 37) % 9000) / 100
    fields: dict[str, Any] = {
        "sku": sku,
        "name": f"Product {number}",
        "description": f"Description of product {number}.",
        "regular_price": f"{price:.2f}",
        "manage_stock": True,
        "stock_quantity": number % 25,
        "global_unique_id": f"400{number:010d}",
    }
    if number % 10 == 0:
        fields["sale_price"] = f"{price * Decimal('0.8'):.2f}"
        fields["date_on_sale_from_gmt"] = SALE_FROM.strftime(_FORMAT)
        fields["date_on_sale_to_gmt"] = SALE_TO.strftime(_FORMAT)
    return fields
