"""A stateful emulator of the Magento 2 / Adobe Commerce REST API (the parts omnisync uses),
behaving as Adobe's web API documentation describes it.

::

    shop = MagentoEmulator()
    seed(shop, simple=50, configurable=10, children=3)
    with serve(shop.app) as server:
        ...  # options: url=server.url, token=shop.integration_token

Implemented, under ``/rest[/{store_code}]/V1`` (no code: the default store view; ``all``: the
global scope):

* **auth**: ``Authorization: Bearer`` with the integration's access token or an admin token
  from ``POST /V1/integration/admin/token {"username", "password"}`` (answered with the token
  as a JSON string; a wrong login → 401). Admin tokens die after ``admin_token_ttl`` seconds
  (4 hours by default) and on :meth:`expire_tokens`; a missing, wrong or dead token → 401
  ``"The consumer isn't authorized to access %resources."`` with its parameters.
* **searchCriteria** on ``GET /V1/products`` and ``GET /V1/inventory/source-items`` (and
  ``/V1/inventory/sources``): ``filter_groups`` — the filters within a group ORed, the groups
  ANDed — with ``condition_type`` eq (the default), neq, in, nin, like, nlike, gt, gteq, lt,
  lteq, from, to, moreq, null, notnull, finset; text compares without regard to case (MySQL's
  collation), numbers as numbers. ``sortOrders`` (direction DESC unless given, as documented),
  ``pageSize``/``currentPage`` (no pageSize: every row; a page past the end answers the last
  page again, as Magento's collections clamp it), ``total_count`` and ``search_criteria`` in the
  answer. No ``searchCriteria`` at all → 400 ``"%fieldName is a required field."``.
  ``fields=items[sku,price,extension_attributes[stock_item[qty]]],total_count`` trims answers.
* **products**: simple and configurable ones (a configurable's children in
  ``extension_attributes.configurable_product_links``, unless ``links_in_listing=False``, and at
  ``GET /V1/configurable-products/{sku}/children``), ``price`` as a JSON number, custom
  attributes (``description``, ``special_price`` as DECIMAL(20,6) text,
  ``special_from_date``/``special_to_date``, an ``ean``), ``stock_item`` (legacy stock).
  ``name``, ``description`` and ``ean`` have store-view values that shadow the global ones.
  ``created_at``/``updated_at`` in UTC to the second; a product save touches ``updated_at``, a
  source item save does not.
* **bulk**: ``PUT /async/bulk/V1/products/bySku`` (and ``POST /async/bulk/V1/products``): an
  array of ``{"product": {...}}`` bodies → 202 ``{"bulk_uuid", "request_items", "errors"}``;
  the operations stay open (status 4) until ``bulk_polls`` status polls have passed or
  ``bulk_delay`` seconds (or :meth:`complete_bulks`), then each is applied or fails on its
  own (status 3 with Magento's message; :meth:`reject` makes one fail, also with status 2).
  ``GET /V1/bulk/{uuid}/status`` lists them by id. A write through ``/rest/all`` sets global
  values (a store view's own value stays and shadows it); through a store view's code it
  sets that store view's values (and global ones for global attributes such as the price).
* **MSI** (``msi=True``): source items ``{sku, source_code, quantity, status}``, listed and
  saved with ``POST /V1/inventory/source-items {"sourceItems": [...]}`` (an upsert answered
  ``[]``; all or nothing: any invalid item → 400 ``"Validation Failed"`` with ``errors``); the
  default source mirrors the legacy stock item. ``msi=False``: no inventory routes (404), the
  stock item only.
* ``GET /V1/directory/currency`` and ``GET /V1/store/storeConfigs``.

Unknown routes → 404 ``"Request does not match any route."``. ``stats`` counts what happened
(tokens, rows served, bulks, polls, operations, source saves) for tests and benchmarks;
latency and faults come from :func:`tests.emulators.server.serve`.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

#: Store codes → store ids (0: the global "admin" scope).
STORES = {"all": 0, "admin": 0, "default": 1, "de": 2}
#: Attributes with store-view values (the others are global).
STORE_SCOPED = {"name", "description", "ean"}
NUMERIC = {"entity_id", "id", "price", "special_price", "status", "visibility", "quantity"}
FORMAT = "%Y-%m-%d %H:%M:%S"
SAVED = "Service execution success Magento\\Catalog\\Model\\ProductRepository\\Interceptor::save"
TOPIC = "async.magento.catalog.api.productrepositoryinterface.save.put"
NOT_FOUND = "The product that was requested doesn't exist. Verify the product and try again."


class MagentoError(Exception):
    """An error answer: ``{"message", "parameters"}`` (and ``errors`` for validation)."""

    def __init__(
        self,
        status: int,
        message: str,
        parameters: dict[str, Any] | list[Any] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.parameters, self.errors = (
            status,
            message,
            parameters,
            errors,
        )

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"message": self.message}
        if self.parameters is not None:
            body["parameters"] = self.parameters
        if self.errors is not None:
            body["errors"] = self.errors
        return JSONResponse(body, self.status)


def _required(name: str) -> MagentoError:
    return MagentoError(400, "%fieldName is a required field.", {"fieldName": name})


@dataclass
class Operation:
    id: int
    payload: Any
    store: int
    status: int = 4
    result_message: str | None = None
    error_code: int | None = None


@dataclass
class Bulk:
    uuid: str
    operations: list[Operation]
    created: float
    start_time: str
    polls: int = 0


@dataclass
class Rejection:
    """A planned failure of the next ``times`` operations on a SKU."""

    message: str
    status: int = 3
    times: int = 1


class MagentoEmulator:
    """The state and the Starlette ``app`` of one emulated store."""

    def __init__(
        self,
        *,
        currency: str = "EUR",
        timezone: str = "Europe/Berlin",
        msi: bool = True,
        sources: Iterable[str] = ("default", "berlin"),
        integration_token: str = "mg-integration-token-3f9c1a7d5e2b",
        admin: tuple[str, str] = ("omnisync", "admin-password-77b2e1c9"),
        admin_token_ttl: float = 14400.0,
        bulk_polls: int | None = 1,
        bulk_delay: float | None = None,
        links_in_listing: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.currency, self.timezone, self.msi = currency, timezone, msi
        self.sources = {code: code.title() for code in sources}
        self.integration_token = integration_token
        self.admin = admin
        self.admin_token_ttl = admin_token_ttl
        self.bulk_polls, self.bulk_delay = bulk_polls, bulk_delay
        self.links_in_listing = links_in_listing
        self.clock = clock
        self.products: dict[int, dict[str, Any]] = {}
        self._by_sku: dict[str, int] = {}
        #: (sku, source_code) → {"quantity": Decimal, "status": 0|1}
        self.source_items: dict[tuple[str, str], dict[str, Any]] = {}
        self.bulks: dict[str, Bulk] = {}
        self.rejections: dict[str, Rejection] = {}
        self.admin_tokens: dict[str, float] = {}
        self.stats: Counter[str] = Counter()
        self.lock = threading.RLock()
        self.next_id = 1
        self.next_operation = 9000  # operation ids are the table's, not positions in a bulk
        #: What searches rendered, kept until a write marks it stale (``_dirty``).
        self._cache: dict[Any, Any] = {}
        self._dirty = False
        self.app = Starlette(
            routes=[Route("/rest/{path:path}", self._endpoint, methods=["GET", "POST", "PUT"])]
        )

    # ------------------------------------------------------------ state for tests

    def now(self) -> str:
        return datetime.fromtimestamp(self.clock(), UTC).strftime(FORMAT)

    def add(
        self,
        sku: str,
        *,
        type_id: str = "simple",
        name: str,
        price: Decimal | str | None = None,
        description: str | None = None,
        ean: str | None = None,
        special: tuple[Decimal | str, str | None, str | None] | None = None,
        stock: dict[str, int] | None = None,
        children: Iterable[int] = (),
        at: str | None = None,
    ) -> int:
        """A product: ``special`` is (price, from date, to date) with dates ``YYYY-MM-DD``;
        ``stock`` the quantity per source (legacy: its ``default``). The new id."""
        with self.lock:
            product_id, self.next_id = self.next_id, self.next_id + 1
            when = at or self.now()
            values: dict[str, Any] = {"name": name}
            if description is not None:
                values["description"] = description
            if ean is not None:
                values["ean"] = ean
            if special is not None:
                amount, start, end = special
                values["special_price"] = Decimal(str(amount))
                values["special_from_date"] = f"{start} 00:00:00" if start else None
                values["special_to_date"] = f"{end} 00:00:00" if end else None
            self.products[product_id] = {
                "id": product_id,
                "sku": sku,
                "type_id": type_id,
                "attribute_set_id": 4,
                "status": 1,
                "visibility": 4,
                "price": Decimal(str(price)) if price is not None else None,
                "created_at": when,
                "updated_at": when,
                "values": {0: values},
                "links": list(children),
                "stock_item": {"qty": 0, "manage_stock": type_id == "simple", "is_in_stock": False},
            }
            self._by_sku[sku.lower()] = product_id
            for source, quantity in (stock or {}).items():
                self._save_source(sku, source, Decimal(quantity))
            self._dirty = True
            return product_id

    def link(self, parent: str, child_ids: Iterable[int]) -> None:
        with self.lock:
            product = self.by_sku(parent)
            product["links"] = list(child_ids)
            for child in product["links"]:
                self.products[child]["visibility"] = 1
            self._touch(product)

    def by_sku(self, sku: str) -> dict[str, Any]:
        product_id = self._by_sku.get(sku.lower())
        if product_id is None:
            raise KeyError(sku)
        return self.products[product_id]

    def value(self, sku: str, code: str, store: str = "default") -> Any:
        """What the store view shows for an attribute (its own value, else the global one)."""
        return self._resolved(self.by_sku(sku), STORES[store]).get(code)

    def update(self, sku: str, *, store: str = "all", **values: Any) -> None:
        """Set attributes as the admin would (``store``: a store view's own values), touching
        ``updated_at``. ``price=...`` and custom attribute codes; None removes a value."""
        with self.lock:
            product = self.by_sku(sku)
            for code, value in values.items():
                if code == "price":
                    product["price"] = Decimal(str(value))
                    continue
                scope = STORES[store] if code in STORE_SCOPED else 0
                if isinstance(value, int | float | str) and code == "special_price":
                    value = Decimal(str(value))
                product["values"].setdefault(scope, {})[code] = value
            self._touch(product)

    def set_stock(self, sku: str, source: str, quantity: int) -> None:
        """A source item change (a shipment, an admin edit): ``updated_at`` stays."""
        with self.lock:
            self._save_source(sku, source, Decimal(quantity))
            self._dirty = True

    def stock(self, sku: str) -> dict[str, int]:
        if not self.msi:
            return {"default": int(self.by_sku(sku)["stock_item"]["qty"])}
        return {s: int(i["quantity"]) for (k, s), i in self.source_items.items() if k == sku}

    def delete(self, sku: str) -> None:
        with self.lock:
            product = self.by_sku(sku)
            del self.products[product["id"]]
            del self._by_sku[sku.lower()]
            for key in [k for k in self.source_items if k[0] == sku]:
                del self.source_items[key]
            self._dirty = True

    def expire_tokens(self) -> None:
        with self.lock:
            self.admin_tokens.clear()

    def reject(self, sku: str, message: str, *, status: int = 3, times: int = 1) -> None:
        """The next ``times`` bulk operations on ``sku`` fail with ``message``."""
        self.rejections[sku] = Rejection(message, status, times)

    def complete_bulks(self) -> None:
        """Run every open operation now (the async.operations.all consumer)."""
        with self.lock:
            for bulk in self.bulks.values():
                self._process(bulk)

    def sellable(self) -> list[dict[str, Any]]:
        return [p for p in self.products.values() if p["type_id"] == "simple"]

    def _touch(self, product: dict[str, Any]) -> None:
        product["updated_at"] = self.now()
        self._dirty = True

    def _save_source(self, sku: str, source: str, quantity: Decimal) -> None:
        if self.msi:
            self.source_items[(sku, source)] = {"quantity": quantity, "status": int(quantity > 0)}
        if source == "default" or not self.msi:  # the default source is the legacy stock
            item = self.by_sku(sku)["stock_item"]
            item.update(qty=int(quantity), is_in_stock=quantity > 0, manage_stock=True)

    # ------------------------------------------------------------ rendering

    def _resolved(self, product: dict[str, Any], store: int) -> dict[str, Any]:
        values = dict(product["values"].get(0, {}))
        if store:
            values.update(product["values"].get(store, {}))
        return values

    def _row(self, product: dict[str, Any], store: int) -> dict[str, Any]:
        """The product as filters and sorts see it: its columns and attributes."""
        row = {
            "entity_id": product["id"],
            "id": product["id"],
            "sku": product["sku"],
            "type_id": product["type_id"],
            "price": product["price"],
            "status": product["status"],
            "visibility": product["visibility"],
            "created_at": product["created_at"],
            "updated_at": product["updated_at"],
        }
        row.update(self._resolved(product, store))
        return row

    def _render(self, product: dict[str, Any], store: int) -> dict[str, Any]:
        values = self._resolved(product, store)
        custom = []
        for code, value in values.items():
            if code == "name" or value is None:
                continue
            text = f"{value:.6f}" if isinstance(value, Decimal) else value
            custom.append({"attribute_code": code, "value": text})
        extension: dict[str, Any] = {
            "website_ids": [1],
            "category_links": [{"position": 0, "category_id": "2"}],
            "stock_item": {
                "item_id": product["id"],
                "product_id": product["id"],
                "stock_id": 1,
                **product["stock_item"],
                "qty": float(product["stock_item"]["qty"]),
            },
        }
        if product["type_id"] == "configurable" and self.links_in_listing:
            extension["configurable_product_links"] = list(product["links"])
        price = product["price"]
        return {
            "id": product["id"],
            "sku": product["sku"],
            "name": values.get("name"),
            "attribute_set_id": product["attribute_set_id"],
            "price": float(price) if price is not None else 0,
            "status": product["status"],
            "visibility": product["visibility"],
            "type_id": product["type_id"],
            "created_at": product["created_at"],
            "updated_at": product["updated_at"],
            "weight": 1,
            "extension_attributes": extension,
            "product_links": [],
            "options": [],
            "media_gallery_entries": [],
            "tier_prices": [],
            "custom_attributes": custom,
        }

    def _rendered(self, product: dict[str, Any], store: int, fields: Any) -> Any:
        key = ("item", product["id"], store, json.dumps(fields))
        if key not in self._cache:
            self._cache[key] = _trim(self._render(product, store), fields)
        return self._cache[key]

    # ------------------------------------------------------------ searches

    def _selected(
        self, kind: Any, rows: Callable[[], list[tuple[dict[str, Any], Any]]], criteria: Any
    ) -> list[tuple[dict[str, Any], Any]]:
        """The rows a search's filters and sort orders select, kept until the next write (the
        pages of one listing filter and sort once, as a database's plan cache would help)."""
        key = (
            "selected",
            kind,
            json.dumps([criteria.get("filter_groups"), criteria.get("sortOrders")]),
        )
        if key not in self._cache:
            self._cache[key] = _select(rows(), criteria)
        selected: list[tuple[dict[str, Any], Any]] = self._cache[key]
        return selected

    def _rows(self, store: int) -> list[tuple[dict[str, Any], Any]]:
        key = ("rows", store)
        if key not in self._cache:
            self._cache[key] = [(self._row(p, store), p) for p in self.products.values()]
        rows: list[tuple[dict[str, Any], Any]] = self._cache[key]
        return rows

    def _products(self, query: Any, store: int) -> dict[str, Any]:
        criteria = _criteria(query)
        selected = self._selected(("products", store), lambda: self._rows(store), criteria)

        matched, echo = _page(selected, criteria)
        fields = _fields(query.get("fields"))
        items_fields = fields.get("items") if isinstance(fields, dict) else None
        items = [self._rendered(p, store, items_fields) for _, p in matched]
        self.stats["product_rows"] += len(items)
        self.stats["product_searches"] += 1
        return _trim(
            {"items": items, "search_criteria": echo, "total_count": len(selected)}, fields
        )

    def _source_search(self, query: Any) -> dict[str, Any]:
        criteria = _criteria(query)

        def rows() -> list[tuple[dict[str, Any], Any]]:
            return [
                ({"sku": sku, "source_code": code, **item}, (sku, code, item))
                for (sku, code), item in self.source_items.items()
            ]

        selected = self._selected("sources", rows, criteria)
        matched, echo = _page(selected, criteria)
        items = [
            {
                "sku": sku,
                "source_code": code,
                "quantity": float(item["quantity"]),
                "status": item["status"],
            }
            for _, (sku, code, item) in matched
        ]
        self.stats["source_rows"] += len(items)
        answer = {"items": items, "search_criteria": echo, "total_count": len(selected)}
        return _trim(answer, _fields(query.get("fields")))

    # ------------------------------------------------------------ writes

    def _schedule(self, body: Any, store: int) -> JSONResponse:
        if not isinstance(body, list):
            raise MagentoError(400, "Request body must be an array of entities.")
        now = self.clock()
        operations = []
        items = []
        for position, entry in enumerate(body):
            operations.append(Operation(self.next_operation, entry, store))
            self.next_operation += 1
            digest = hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()
            items.append({"id": position, "data_hash": digest, "status": "accepted"})
        bulk = Bulk(str(uuid.uuid4()), operations, now, self.now())
        self.bulks[bulk.uuid] = bulk
        self.stats["bulks"] += 1
        self.stats["operations"] += len(operations)
        return JSONResponse({"bulk_uuid": bulk.uuid, "request_items": items, "errors": False}, 202)

    def _status(self, bulk_id: str) -> dict[str, Any]:
        bulk = self.bulks.get(bulk_id)
        if bulk is None:
            raise MagentoError(404, "Bulk uuid %bulkUuid not exist", {"bulkUuid": bulk_id})
        bulk.polls += 1
        self.stats["status_polls"] += 1
        late = self.bulk_delay is not None and self.clock() - bulk.created >= self.bulk_delay
        if late or (self.bulk_polls is not None and bulk.polls > self.bulk_polls):
            self._process(bulk)
        return {
            "operations_list": [
                {
                    "id": o.id,
                    "status": o.status,
                    "result_message": o.result_message,
                    "error_code": o.error_code,
                }
                for o in sorted(bulk.operations, key=lambda o: o.id)
            ],
            "user_type": 1,
            "bulk_id": bulk.uuid,
            "description": f"Topic {TOPIC}",
            "start_time": bulk.start_time,
            "user_id": None,
            "operation_count": len(bulk.operations),
        }

    def _process(self, bulk: Bulk) -> None:
        for operation in bulk.operations:
            if operation.status != 4:
                continue
            try:
                self._save_product(operation.payload, operation.store)
            except MagentoError as exc:
                operation.status = exc.status
                operation.result_message = _render_message(exc.message, exc.parameters)
                operation.error_code = 0
                self.stats["operations_failed"] += 1
            else:
                operation.status, operation.result_message = 1, SAVED

    def _save_product(self, entry: Any, store: int) -> None:
        """``ProductRepository::save`` of one bulk body; a MagentoError's status is the
        operation's (3, or 2 for a failure worth retrying)."""
        data = entry.get("product") if isinstance(entry, dict) else None
        if not isinstance(data, dict) or not data.get("sku"):
            raise MagentoError(
                3, '"%fieldName" is required. Enter and try again.', {"fieldName": "sku"}
            )
        sku = str(data["sku"])
        rejection = self.rejections.get(sku)
        if rejection is not None and rejection.times > 0:
            rejection.times -= 1
            raise MagentoError(rejection.status, rejection.message)
        try:
            product = self.by_sku(sku)
        except KeyError:
            raise MagentoError(3, NOT_FOUND) from None
        changes: dict[str, Any] = {}
        if "name" in data:
            name = str(data["name"] or "")
            if not name.strip():
                raise MagentoError(
                    3,
                    'The "%1" attribute value is empty. Set the attribute and try again.',
                    ["Product Name"],
                )
            if len(name) > 255:
                raise MagentoError(
                    3,
                    'The value of attribute "%1" must be no longer than %2 characters.',
                    ["name", 255],
                )
            changes["name"] = name
        for item in data.get("custom_attributes") or ():
            code, value = item.get("attribute_code"), item.get("value")
            if code == "special_price" and value not in (None, ""):
                value = _decimal(value, "special_price")
            changes[str(code)] = None if value == "" else value
        if "price" in data:
            price = _decimal(data["price"], "price")
            if price < 0:
                raise MagentoError(
                    3,
                    'The "%1" attribute value is invalid. Enter a valid value and try again.',
                    ["Price"],
                )
            product["price"] = price
        for code, value in changes.items():
            scope = store if code in STORE_SCOPED else 0
            product["values"].setdefault(scope, {})[code] = value
        stock = (data.get("extension_attributes") or {}).get("stock_item")
        if isinstance(stock, dict) and "qty" in stock:
            quantity = _decimal(stock["qty"], "qty")
            if self.msi and "default" in self.sources:
                self._save_source(sku, "default", quantity)
            else:
                product["stock_item"].update(
                    qty=int(quantity), is_in_stock=quantity > 0, manage_stock=True
                )
        self._touch(product)

    def _save_sources(self, body: Any) -> list[Any]:
        items = body.get("sourceItems") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise _required("sourceItems")
        errors = []
        for item in items:
            sku, code = str(item.get("sku") or ""), str(item.get("source_code") or "")
            if sku.lower() not in self._by_sku:
                errors.append(
                    {
                        "message": 'Product with SKU "%sku" does not exist.',
                        "parameters": {"sku": sku},
                    }
                )
            if code not in self.sources:
                errors.append(
                    {"message": 'Source "%code" does not exist.', "parameters": {"code": code}}
                )
            try:
                quantity = Decimal(str(item.get("quantity")))
            except InvalidOperation:
                quantity = Decimal(-1)
            if not quantity.is_finite() or quantity < 0 or quantity > Decimal("99999999"):
                errors.append(
                    {
                        "message": '"%field" must be a number from 0 to 99999999.',
                        "parameters": {"field": "quantity"},
                    }
                )
        self.stats["source_saves"] += 1
        if errors:
            raise MagentoError(400, "Validation Failed", errors=errors)
        for item in items:
            sku = self.by_sku(str(item["sku"]))["sku"]
            self._save_source(sku, str(item["source_code"]), Decimal(str(item["quantity"])))
            self.source_items[(sku, str(item["source_code"]))]["status"] = int(
                item.get("status", 1)
            )
        self._dirty = True
        return []

    # ------------------------------------------------------------ HTTP

    def _authorize(self, request: Request, resource: str) -> None:
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        if token and token == self.integration_token:
            return
        expiry = self.admin_tokens.get(token)
        if expiry is not None and self.clock() < expiry:
            return
        self.stats["token_rejected"] += 1
        raise MagentoError(
            401, "The consumer isn't authorized to access %resources.", {"resources": resource}
        )

    def _admin_token(self, body: Any) -> JSONResponse:
        for name in ("username", "password"):
            if not isinstance(body, dict) or not body.get(name):
                raise _required(name)
        if (body["username"], body["password"]) != self.admin:
            raise MagentoError(
                401,
                "The account sign-in was incorrect or your account is disabled temporarily. "
                "Please wait and try again later.",
            )
        token = secrets.token_hex(16)
        self.admin_tokens[token] = self.clock() + self.admin_token_ttl
        self.stats["tokens"] += 1
        return JSONResponse(token)

    async def _endpoint(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return MagentoError(400, "Decoding error: %1", ["Syntax error"]).response()
        try:
            with self.lock:
                return self._dispatch(request, body)
        except MagentoError as exc:
            return exc.response()

    def _dispatch(self, request: Request, body: Any) -> Response:
        if self._dirty:
            self._cache.clear()
            self._dirty = False
        # The raw path: a SKU in it may hold an encoded slash.
        raw = request.scope.get("raw_path") or request.url.path.encode()
        parts = [unquote(p) for p in raw.decode().split("?")[0].strip("/").split("/")[1:]]
        store_code = "default"
        if parts and parts[0] not in ("V1", "async"):
            store_code = parts.pop(0)
        if store_code not in STORES:
            raise MagentoError(
                400, "The store that was requested wasn't found. Verify the store and try again."
            )
        store = STORES[store_code]
        bulk = parts[:2] == ["async", "bulk"]
        if bulk:
            parts = parts[2:]
        if not parts or parts[0] != "V1":
            raise MagentoError(404, "Request does not match any route.")
        route, method, query = "/".join(parts[1:]), request.method, request.query_params
        if (method, route) == ("POST", "integration/admin/token"):
            return self._admin_token(body)
        if bulk and (method, route) in (("PUT", "products/bySku"), ("POST", "products")):
            self._authorize(request, "Magento_Catalog::products")
            return self._schedule(body, store)
        self._authorize(request, "Magento_Catalog::products")
        if (method, route) == ("GET", "products"):
            return self._answer(
                ("products", store, str(query)), lambda: self._products(query, store)
            )
        children = len(parts) == 4 and parts[1:4:2] == ["configurable-products", "children"]
        if children and method == "GET":
            return JSONResponse(self._children(parts[2], store))
        if (match := re.fullmatch(r"bulk/([^/]+)/status", route)) and method == "GET":
            return JSONResponse(self._status(match.group(1)))
        if (method, route) == ("GET", "directory/currency"):
            return JSONResponse(self._currency())
        if (method, route) == ("GET", "store/storeConfigs"):
            return JSONResponse(self._store_configs())
        if self.msi and route.startswith("inventory/"):
            if (method, route) == ("GET", "inventory/source-items"):
                return self._answer(("sources", str(query)), lambda: self._source_search(query))
            if (method, route) == ("POST", "inventory/source-items"):
                return JSONResponse(self._save_sources(body))
            if (method, route) == ("GET", "inventory/sources"):
                return JSONResponse(self._sources(query))
        raise MagentoError(404, "Request does not match any route.")

    def _answer(self, key: Any, search: Callable[[], dict[str, Any]]) -> Response:
        """A search's answer, its JSON kept until the next write: the emulator's own CPU is
        not what a benchmark of the client should measure (the counts still go up)."""
        cached = self._cache.get(("answer", key))
        if cached is None:
            before = self.stats.copy()
            body = json.dumps(search(), separators=(",", ":")).encode()
            cached = (body, self.stats - before)
            self._cache[("answer", key)] = cached
        else:
            self.stats.update(cached[1])
        return Response(cached[0], media_type="application/json")

    def _children(self, sku: str, store: int) -> list[Any]:
        try:
            parent = self.by_sku(sku)
        except KeyError:
            raise MagentoError(404, NOT_FOUND) from None
        return [
            self._render(self.products[i], store) for i in parent["links"] if i in self.products
        ]

    def _currency(self) -> dict[str, Any]:
        return {
            "base_currency_code": self.currency,
            "base_currency_symbol": "€" if self.currency == "EUR" else self.currency,
            "default_display_currency_code": self.currency,
            "default_display_currency_symbol": "€" if self.currency == "EUR" else self.currency,
            "available_currency_codes": [self.currency],
            "exchange_rates": [{"currency_to": self.currency, "rate": 1}],
        }

    def _store_configs(self) -> list[dict[str, Any]]:
        return [
            {
                "id": store_id,
                "code": code,
                "website_id": 1,
                "locale": "de_DE" if code == "de" else "en_US",
                "base_currency_code": self.currency,
                "default_display_currency_code": self.currency,
                "timezone": self.timezone,
                "weight_unit": "kgs",
                "base_url": "http://magento.test/",
            }
            for code, store_id in STORES.items()
            if store_id
        ]

    def _sources(self, query: Any) -> dict[str, Any]:
        criteria = _criteria(query)
        rows = [
            ({"source_code": code, "name": name, "enabled": 1}, code)
            for code, name in self.sources.items()
        ]
        matched, total, echo = _search(rows, criteria)
        items = [{"source_code": c, "name": self.sources[c], "enabled": True} for _, c in matched]
        return {"items": items, "search_criteria": echo, "total_count": total}


# ---------------------------------------------------------------- searchCriteria

_KEY = re.compile(r"\[([^\]]*)\]")


def _criteria(query: Any) -> dict[str, Any]:
    """The ``searchCriteria[...]`` query parameters as a nested dict (400 without any)."""
    keys = [k for k in query if k == "searchCriteria" or k.startswith("searchCriteria[")]
    if not keys:
        raise _required("searchCriteria")
    tree: dict[str, Any] = {}
    for key in keys:
        path = _KEY.findall(key[len("searchCriteria") :])
        if not path:
            continue
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = query[key]
    return tree


def _indexed(node: Any) -> list[Any]:
    if not isinstance(node, dict):
        return []
    return [node[k] for k in sorted(node, key=lambda k: int(k) if str(k).isdigit() else 0)]


def _select(rows: list[tuple[dict[str, Any], Any]], criteria: dict[str, Any]) -> list[Any]:
    """The rows matching the filter groups (OR within, AND across), in the sort orders."""
    groups = [
        [_predicate(f) for f in _indexed(group.get("filters"))]
        for group in _indexed(criteria.get("filter_groups"))
    ]
    matched = [
        row for row in rows if all(any(p(row[0]) for p in group) for group in groups if group)
    ]
    for order in reversed(_indexed(criteria.get("sortOrders"))):
        name = order.get("field")
        descending = str(order.get("direction") or "DESC").upper() != "ASC"
        matched.sort(key=lambda row, n=name: _sort_key(row[0].get(n), n), reverse=descending)
    return matched


def _search(
    rows: list[tuple[dict[str, Any], Any]], criteria: dict[str, Any]
) -> tuple[list[Any], int, dict[str, Any]]:
    """(matching rows of the page, how many match, the criteria as Magento echoes them)."""
    matched = _select(rows, criteria)
    page, echo = _page(matched, criteria)
    return page, len(matched), echo


def _page(matched: list[Any], criteria: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """The page ``pageSize``/``currentPage`` ask for (all without a pageSize; the last one for
    a page past the end, as Magento's collections clamp it) and the criteria echoed."""
    echo: dict[str, Any] = {
        "filter_groups": [
            {"filters": _indexed(g.get("filters"))} for g in _indexed(criteria.get("filter_groups"))
        ]
    }
    sorts = _indexed(criteria.get("sortOrders"))
    if sorts:
        echo["sort_orders"] = sorts
    size = criteria.get("pageSize")
    if size in (None, ""):
        return matched, echo
    try:
        size_n, page = int(size), int(criteria.get("currentPage") or 1)
    except ValueError:
        raise MagentoError(
            400, 'Invalid type for value: "%1". Expected Type: "int".', [size]
        ) from None
    if size_n <= 0:
        return matched, echo
    last = max(1, -(-len(matched) // size_n))
    page = min(max(page, 1), last)
    echo.update(page_size=size_n, current_page=page)
    return matched[(page - 1) * size_n : page * size_n], echo


def _sort_key(value: Any, name: str) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if name in NUMERIC:
        return (1, Decimal(str(value)))
    return (1, str(value).lower())


def _like(pattern: str) -> re.Pattern[str]:
    parts = [".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _predicate(spec: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    name = str(spec.get("field") or "")
    value = spec.get("value")
    condition = str(spec.get("condition_type") or "eq")
    numeric = name in NUMERIC

    def norm(v: Any) -> Any:
        if v is None:
            return None
        if numeric:
            try:
                return Decimal(str(v))
            except InvalidOperation:
                return None
        return str(v).lower()

    target = norm(value)
    many = {norm(v) for v in str(value or "").split(",")}
    if condition in ("like", "nlike"):
        pattern = _like(str(value or ""))
        positive = condition == "like"
        return lambda row: (
            (row.get(name) is not None and bool(pattern.fullmatch(str(row[name])))) == positive
        )
    tests: dict[str, Callable[[Any], bool]] = {
        "eq": lambda v: v is not None and v == target,
        "neq": lambda v: v is None or v != target,
        "in": lambda v: v in many,
        "nin": lambda v: v not in many,
        "gt": lambda v: v is not None and target is not None and v > target,
        "gteq": lambda v: v is not None and target is not None and v >= target,
        "moreq": lambda v: v is not None and target is not None and v >= target,
        "from": lambda v: v is not None and target is not None and v >= target,
        "lt": lambda v: v is not None and target is not None and v < target,
        "lteq": lambda v: v is not None and target is not None and v <= target,
        "to": lambda v: v is not None and target is not None and v <= target,
        "null": lambda v: v is None,
        "notnull": lambda v: v is not None,
        "finset": lambda v: v is not None and target in {norm(x) for x in str(v).split(",")},
        "nfinset": lambda v: v is None or target not in {norm(x) for x in str(v).split(",")},
    }
    test = tests.get(condition)
    if test is None:
        raise MagentoError(400, 'Invalid condition type "%1".', [condition])
    return lambda row: test(norm(row.get(name)))


def _fields(text: str | None) -> Any:
    """``items[sku,extension_attributes[stock_item[qty]]],total_count`` as a tree (None: all)."""
    if not text:
        return None
    tree: dict[str, Any] = {}
    stack = [tree]
    name = ""
    for char in text + ",":
        if char == "[":
            child: dict[str, Any] = {}
            stack[-1][name.strip()] = child
            stack.append(child)
            name = ""
        elif char in ",]":
            if name.strip():
                stack[-1][name.strip()] = None
            name = ""
            if char == "]":
                stack.pop()
        else:
            name += char
    return tree


def _trim(value: Any, fields: Any) -> Any:
    if fields is None:
        return value
    if isinstance(value, list):
        return [_trim(v, fields) for v in value]
    if isinstance(value, dict):
        return {k: _trim(value[k], sub) for k, sub in fields.items() if k in value}
    return value


def _decimal(value: Any, name: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite():
        raise MagentoError(3, 'The "%1" value is not a number.', [name])
    return number


def _render_message(message: str, parameters: Any) -> str:
    """How Magento stores an operation's message: rendered with its parameters."""
    if isinstance(parameters, dict):
        for key in sorted(parameters, key=len, reverse=True):
            message = message.replace(f"%{key}", str(parameters[key]))
    elif isinstance(parameters, list):
        for n in range(len(parameters), 0, -1):
            message = message.replace(f"%{n}", str(parameters[n - 1]))
    return message


# ---------------------------------------------------------------- seeding

#: Sale window of every seeded product on sale: dates, in the store's time zone.
SALE_FROM = "2026-11-01"
SALE_TO = "2026-12-31"


def seed(
    shop: MagentoEmulator,
    *,
    simple: int,
    configurable: int = 0,
    children: int = 3,
    start: datetime | None = None,
) -> list[str]:
    """``simple`` simple products (``MG-00000``...) and ``configurable`` configurable ones
    (``MG-C0000``) with ``children`` children each (``MG-C0000-1``...): prices with cents,
    every tenth on sale (:data:`SALE_FROM` to :data:`SALE_TO`), EANs, stock at every source;
    saved a second apart, ending an hour before ``start`` (default: now). The sellable SKUs."""
    total = simple + configurable * (children + 1)
    base = (start or datetime.fromtimestamp(shop.clock(), UTC)) - timedelta(hours=1, seconds=total)
    moment = 0

    def at() -> str:
        nonlocal moment
        moment += 1
        return (base + timedelta(seconds=moment)).strftime(FORMAT)

    skus = []
    for i in range(simple):
        skus.append(f"MG-{i:05d}")
        shop.add(at=at(), **product_fields(shop, skus[-1], i))
    for j in range(configurable):
        ids = []
        for k in range(1, children + 1):
            number = 100_000 + j * 100 + k
            sku = f"MG-C{j:04d}-{k}"
            skus.append(sku)
            ids.append(shop.add(at=at(), **product_fields(shop, sku, number)))
        shop.add(
            f"MG-C{j:04d}", type_id="configurable", name=f"Configurable {j}", children=ids, at=at()
        )
        for child in ids:
            shop.products[child]["visibility"] = 1
    return skus


def product_fields(shop: MagentoEmulator, sku: str, number: int) -> dict[str, Any]:
    """The attributes of seeded product ``number`` (deterministic)."""
    price = Decimal(1000 + (number * 37) % 9000) / 100
    fields: dict[str, Any] = {
        "sku": sku,
        "name": f"Product {number}",
        "description": f"<p>Description of product {number}.</p>",
        "price": price,
        "ean": f"400{number:010d}",
        "stock": {source: (number + n * 3) % 25 for n, source in enumerate(shop.sources)}
        if shop.msi
        else {"default": number % 25},
    }
    if number % 10 == 0:
        fields["special"] = ((price * Decimal("0.8")).quantize(Decimal("0.01")), SALE_FROM, SALE_TO)
    return fields
