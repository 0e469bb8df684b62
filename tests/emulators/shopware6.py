"""A stateful emulator of the Shopware 6 Admin API (the parts omnisync uses), as documented.

::

    emulator = Shopware6Emulator()
    seed(emulator, parents=20, variants=4, simple=50)
    with serve(emulator.app) as server:
        ...  # options: url=server.url, client_id=emulator.client_id, client_secret=emulator.client_secret

Implemented:

* ``POST /api/oauth/token``: the ``client_credentials`` grant (JSON or form body) →
  ``{"token_type": "Bearer", "expires_in": ..., "access_token": ...}``; a wrong client → 401
  ``{"errors": [...]}``. Tokens die after ``token_ttl`` seconds (``advertised_ttl`` is what
  ``expires_in`` claims, to emulate a token that expires early) and on :meth:`expire_tokens`;
  a dead or missing token → 401. The ``oauth`` rate limiter: more than ``oauth_limit[0]``
  token requests per client within ``oauth_limit[1]`` seconds → 429
  ``FRAMEWORK__RATE_LIMIT_EXCEEDED`` with ``meta.parameters.seconds`` and ``Retry-After``.
* ``POST /api/search/{product,currency,tax}``: criteria ``page`` (1-based), ``limit``, ``ids``,
  ``filter`` (``equals``, ``equalsAny``, ``contains``, ``prefix``, ``range`` with
  gt/gte/lt/lte, ``multi`` with and/or, ``not``), ``sort``, ``includes`` and
  ``total-count-mode``: 0 (default) → ``total`` = rows returned, 1 → the exact count, 2 →
  offset + rows found up to six pages ahead. ``sw-inheritance: 1`` fills a variant's null
  fields (price, name, description, ean, taxId) from its parent, in filters too;
  ``translated`` holds the language's value or the system language's (and, with
  inheritance, the parent's). ``sw-language-id`` selects the language (reads and writes).
  **Only flat JSON** (``Accept: application/json``) is served; Shopware's default JSON:API
  format is answered with 406 here.
* ``POST /api/_action/sync``: a list (or key → operation map) of ``upsert``/``delete``
  operations on ``product``. All-or-nothing: every record is validated first (types, required
  fields on create, unique productNumber, a default-currency price, name length ≤ 255, known
  currency/tax/parent ids, unexpected fields); any error → 400 with the JSON:API error list,
  each with ``source.pointer`` like ``/0/payload/3/price``, and nothing persisted. Otherwise
  200 ``{"data": {"product": [ids]}, "deleted": {...}, "notFound": {}}``.
* ``createdAt`` on create; ``updatedAt`` null until the first update, then the write time
  (ISO 8601 with milliseconds, as Shopware stores it); ``childCount`` maintained.

App webhooks (``emulator.subscribe(event, url)``, as an app's manifest ``<webhooks>`` does):
every write of products — the admin's (``emulator.update``) and the API's (``_action/sync``,
omnisync's own included) — delivers ``product.written``, whose ``data.payload`` lists each
product written by primary key only (``entity``, ``operation`` insert/update/delete,
``primaryKey``, ``updatedFields``, ``versionId``). ``emulator.sell(number)`` places an order:
the stock goes down as Shopware's stock storage lowers it (a direct update, no
``product.written``), then ``checkout.order.placed`` is delivered with the order and its line
items. A delivery is a POST of ``{"data": {"payload", "event"}, "source": {"url", "appVersion",
"shopId", "eventId"}, "timestamp"}`` signed in ``shopware-shop-signature`` (hex HMAC-SHA256 of
the body with the shop secret), each webhook its own ``eventId``; a retry keeps the event id
and carries a new timestamp (so a new signature). Deliveries go out from a queue after the
write (``emulator.outbox``, :mod:`tests.emulators.webhooks`); ``update`` and ``sell`` wait
until theirs are answered.

``stats`` counts what happened (tokens issued and rejected, rows served, syncs applied and
rejected) for tests and benchmarks.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import random
import secrets
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.webhooks import Delivery, Outbox

#: Shopware's fixed ids (``Defaults::CURRENCY``, ``Defaults::LANGUAGE_SYSTEM``, live version).
EUR = "b7d2554b0ce847cd82f3ac9bd1c0dfca"
SYSTEM_LANGUAGE = "2fbb5fe2e29a4d70aa5854ce7ce3e20b"
LIVE_VERSION = "0fa91ce3e96a4bc2be4bd9ce752c3425"
USD = "1d9b7a4c6f2e4b8f9a0c3e5d7f1b2a40"
GERMAN = "9e3d1c5b7a2f4e6d8c0b1a3f5e7d9c21"
TAX_19 = "5a1c3e5f7b9d4f2a8c6e0b4d2f6a8c10"
TAX_7 = "6b2d4f6a8c0e4a3b9d7f1c5e3a7b9d21"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    406: "Not Acceptable",
    412: "Precondition Failed",
    429: "Too Many Requests",
}
_INHERITED = ("price", "ean", "taxId")
_TRANSLATED = ("name", "description")
_WRITABLE = {
    "id",
    "parentId",
    "productNumber",
    "stock",
    "price",
    "ean",
    "taxId",
    "name",
    "description",
    "active",
}
_FIELDS = {
    "id",
    "parentId",
    "productNumber",
    "stock",
    "availableStock",
    "price",
    "ean",
    "taxId",
    "name",
    "description",
    "active",
    "childCount",
    "createdAt",
    "updatedAt",
    "translated.name",
    "translated.description",
}


@dataclass
class AppWebhook:
    """A webhook of the app's manifest: its name, the event it listens to, where it posts."""

    name: str
    event: str
    url: str


class CriteriaError(Exception):
    def __init__(self, code: str, detail: str, pointer: str) -> None:
        super().__init__(detail)
        self.code, self.detail, self.pointer = code, detail, pointer


def new_id() -> str:
    return uuid.uuid4().hex


def error(
    status: int, code: str, detail: str, pointer: str | None = None, **meta: Any
) -> dict[str, Any]:
    """One JSON:API error object as Shopware writes it."""
    item: dict[str, Any] = {
        "code": code,
        "status": str(status),
        "title": _TITLES.get(status, "Error"),
        "detail": detail,
        "meta": {"parameters": meta},
    }
    if pointer is not None:
        item["source"] = {"pointer": pointer}
    return item


def errors(
    status: int, items: list[dict[str, Any]], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"errors": items}, status, headers=headers)


def price_entry(
    gross: float | Decimal,
    *,
    currency: str = EUR,
    tax: Decimal = Decimal(19),
    list_price: float | Decimal | None = None,
    decimals: int = 2,
) -> dict[str, Any]:
    """A price[] entry with net derived from gross the way the connector derives it."""

    def pair(value: float | Decimal) -> dict[str, Any]:
        exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        net = (exact / (1 + tax / 100)).quantize(Decimal(1).scaleb(-decimals), ROUND_HALF_UP)
        return {"gross": float(exact), "net": float(net)}

    entry: dict[str, Any] = {"currencyId": currency, **pair(gross), "linked": True}
    if list_price is not None:
        entry["listPrice"] = {**pair(list_price), "linked": True}
    return entry


class Shopware6Emulator:
    """The state and the Starlette ``app`` of one emulated shop."""

    def __init__(
        self,
        *,
        client_id: str = "SWIAOMNISYNCEMULATOR00000A",
        client_secret: str = "emulator-secret-5f1d9c2b7e",
        token_ttl: float = 600.0,
        advertised_ttl: int | None = None,
        oauth_limit: tuple[int, float] | None = (10, 10.0),
        error_pointers: bool = True,
        shop_secret: str = "emulator-shop-secret-3a7e",
        shop_id: str = "emuShopId0001",
    ) -> None:
        #: The secret the app registration agreed on with the shop: webhooks are signed with it.
        self.shop_secret = shop_secret
        self.shop_id = shop_id
        self.webhooks: list[AppWebhook] = []
        self.outbox = Outbox()
        self.next_order = 10000
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_ttl = token_ttl
        self.advertised_ttl = advertised_ttl
        self.oauth_limit = oauth_limit
        #: False: sync errors carry no ``source.pointer`` (as some write errors do not).
        self.error_pointers = error_pointers
        #: Called with the number of each product search before it is answered (tests change
        #: the shop in the middle of a pull with it).
        self.on_product_search: Callable[[int], None] | None = None
        self.products: dict[str, dict[str, Any]] = {}
        self.currencies: list[dict[str, Any]] = [
            self._currency(EUR, "EUR", "Euro", 1.0, default=True),
            self._currency(USD, "USD", "US-Dollar", 1.17),
        ]
        self.taxes: list[dict[str, Any]] = [
            {"id": TAX_19, "taxRate": 19.0, "name": "19%", "position": 1, "apiAlias": "tax"},
            {"id": TAX_7, "taxRate": 7.0, "name": "7%", "position": 2, "apiAlias": "tax"},
        ]
        self.languages = {SYSTEM_LANGUAGE, GERMAN}
        self.stats: Counter[str] = Counter()
        self._tokens: dict[str, float] = {}
        self._token_requests: dict[str, deque[float]] = {}
        self._lock = threading.RLock()
        self._order: list[str] = []
        self._by_id: list[str] | None = None
        self._last_stamp = ""
        # Rendered products by (id, inheritance, language, includes); any write clears it.
        self._rendered: dict[tuple[Any, ...], dict[str, Any]] = {}
        # Whole product search answers by (criteria, inheritance, language): (body, rows).
        self._answers: dict[tuple[Any, ...], tuple[bytes, int]] = {}
        self.app = Starlette(
            routes=[
                Route("/api/oauth/token", self._token, methods=["POST"]),
                Route("/api/search/{entity}", self._search, methods=["POST"]),
                Route("/api/_action/sync", self._sync, methods=["POST"]),
            ]
        )

    @staticmethod
    def _currency(
        id_: str, iso: str, name: str, factor: float, default: bool = False
    ) -> dict[str, Any]:
        rounding = {
            "decimals": 2,
            "interval": 0.01,
            "roundForNet": True,
            "apiAlias": "shopware_core_framework_data_abstraction_layer_pricing_cash_rounding_config",
        }
        return {
            "id": id_,
            "isoCode": iso,
            "name": name,
            "factor": factor,
            "symbol": "€" if iso == "EUR" else "$",
            "isSystemDefault": default,
            "itemRounding": rounding,
            "totalRounding": dict(rounding),
            "apiAlias": "currency",
        }

    # ------------------------------------------------------------------ direct access (tests)

    def stamp(self) -> str:
        """Now, as Shopware writes timestamps; never earlier than the last one handed out."""
        now = datetime.now(UTC)
        text = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+00:00"
        with self._lock:
            self._last_stamp = max(self._last_stamp, text)
            return self._last_stamp

    def add(
        self,
        number: str,
        *,
        name: str | None = None,
        description: str | None = None,
        price: list[dict[str, Any]] | None = None,
        stock: int = 0,
        ean: str | None = None,
        parent: str | None = None,
        tax: str | None = TAX_19,
        created_at: str | None = None,
        translations: dict[str, dict[str, str | None]] | None = None,
        product_id: str | None = None,
    ) -> str:
        """Create a product directly (no validation); returns its id."""
        with self._lock:
            product_id = product_id or new_id()
            texts = {SYSTEM_LANGUAGE: {"name": name, "description": description}}
            for language, values in (translations or {}).items():
                texts.setdefault(language, {"name": None, "description": None}).update(values)
            self.products[product_id] = {
                "id": product_id,
                "parentId": parent,
                "productNumber": number,
                "stock": stock,
                "price": copy.deepcopy(price),
                "ean": ean,
                "taxId": tax,
                "active": True,
                "childCount": 0,
                "translations": texts,
                "createdAt": created_at or self.stamp(),
                "updatedAt": None,
            }
            self._order.append(product_id)
            self._by_id = None
            self._changed()
            if parent:
                self.products[parent]["childCount"] += 1
            return product_id

    def _changed(self) -> None:
        """Forget rendered products and answers: the emulator's speed must not show stale data."""
        self._rendered.clear()
        self._answers.clear()

    def by_number(self, number: str) -> dict[str, Any]:
        """The stored product (raw: a variant's inherited fields are null) with that number."""
        with self._lock:
            for product in self.products.values():
                if product["productNumber"] == number:
                    return product
        raise KeyError(number)

    def raw(self, number: str) -> dict[str, Any]:
        """A deep copy of the stored product with that productNumber."""
        with self._lock:
            return copy.deepcopy(self.by_number(number))

    def update(self, number: str, **fields: Any) -> None:
        """Change a product as the admin would (``name=``/``description=`` in the system
        language); bumps ``updatedAt`` and delivers ``product.written``."""
        with self._lock:
            product = self.by_number(number)
            for key, value in fields.items():
                if key in _TRANSLATED:
                    product["translations"][SYSTEM_LANGUAGE][key] = value
                else:
                    product[key] = copy.deepcopy(value)
            product["updatedAt"] = self.stamp()
            self._changed()
            self._emit("product.written", [_written(product["id"], "update", list(fields))])
        self.outbox.flush()

    # ------------------------------------------------------------------ webhooks

    def subscribe(self, event: str, url: str, name: str | None = None) -> AppWebhook:
        """Register an app webhook for ``event`` (``product.written``,
        ``checkout.order.placed``)."""
        hook = AppWebhook(name or event.replace(".", "-"), event, url)
        self.webhooks.append(hook)
        return hook

    def sell(self, number: str, quantity: int = 1) -> str:
        """A customer orders ``quantity`` of the product: its stock goes down, then
        ``checkout.order.placed`` is delivered. Returns the order id."""
        with self._lock:
            product = self.by_number(number)
            product["stock"] -= quantity  # the stock storage's own UPDATE: no product.written
            self._changed()
            order_id = new_id()
            self.next_order += 1
            line = {
                "id": new_id(),
                "identifier": product["id"],
                "referencedId": product["id"],
                "productId": product["id"],
                "type": "product",
                "label": product["translations"][SYSTEM_LANGUAGE].get("name") or number,
                "quantity": quantity,
                "payload": {"productNumber": number},
            }
            order = {
                "id": order_id,
                "orderNumber": str(self.next_order),
                "orderDateTime": self.stamp(),
                "currencyId": EUR,
                "lineItems": [line],
            }
            self._emit("checkout.order.placed", {"order": order})
        self.outbox.flush()
        return order_id

    def _emit(self, event: str, payload: Any) -> None:
        """Queue ``payload`` for every webhook of ``event`` (each with its own event id)."""
        for hook in [h for h in self.webhooks if h.event == event]:
            data = {
                "data": {"payload": payload, "event": event},
                "source": {
                    "url": "http://shop.example",
                    "appVersion": "1.0.0",
                    "shopId": self.shop_id,
                    "eventId": new_id(),
                },
            }
            self.outbox.send(self._delivery(hook, data))

    def _delivery(self, hook: AppWebhook, data: dict[str, Any]) -> Delivery:
        """One attempt: the body stamped now and signed; a retry is stamped again."""
        body = json.dumps({**data, "timestamp": int(time.time())}).encode()
        signature = hmac.new(self.shop_secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "sw-version": "6.6.10.0",
            "sw-context-language": SYSTEM_LANGUAGE,
            "sw-user-language": "en-GB",
            "shopware-shop-signature": signature,
        }
        delivery = Delivery(hook.event, hook.url, body, headers)
        delivery.retry = lambda: self._delivery(hook, data)
        return delivery

    def delete(self, number: str) -> None:
        with self._lock:
            self._delete(self.by_number(number)["id"])

    def _delete(self, product_id: str) -> list[str]:
        product = self.products.pop(product_id, None)
        if product is None:
            return []
        gone = [product_id]
        for child in [p for p in self.products.values() if p["parentId"] == product_id]:
            gone += self._delete(child["id"])
        if product["parentId"] in self.products:
            self.products[product["parentId"]]["childCount"] -= 1
        self._order = [i for i in self._order if i in self.products]
        self._by_id = None
        self._changed()
        return gone

    def expire_tokens(self) -> None:
        """Every issued token dies now (as when it expires early or is revoked)."""
        with self._lock:
            self._tokens.clear()

    # ------------------------------------------------------------------ auth

    async def _token(self, request: Request) -> Response:
        if "json" in request.headers.get("content-type", ""):
            try:
                body = await request.json()
            except ValueError:
                body = None
        else:
            body = dict(await request.form())
        if not isinstance(body, dict):
            return errors(
                400,
                [
                    error(
                        400, "FRAMEWORK__INVALID_REQUEST", "The request body must be a JSON object."
                    )
                ],
            )
        client = str(body.get("client_id") or "")
        if self.oauth_limit is not None:
            limit, window = self.oauth_limit
            now = time.monotonic()
            with self._lock:
                seen = self._token_requests.setdefault(client, deque())
                while seen and seen[0] <= now - window:
                    seen.popleft()
                if len(seen) >= limit:
                    seconds = max(1, round(seen[0] + window - now))
                    self.stats["oauth_throttled"] += 1
                    return errors(
                        429,
                        [
                            error(
                                429,
                                "FRAMEWORK__RATE_LIMIT_EXCEEDED",
                                f"Too many requests, try again in {seconds} seconds.",
                                seconds=seconds,
                            )
                        ],
                        headers={"Retry-After": str(seconds)},
                    )
                seen.append(now)
        if body.get("grant_type") != "client_credentials":
            return errors(
                400,
                [
                    error(
                        400,
                        "3",
                        "The authorization grant type is not supported by the authorization server.",
                        error="unsupported_grant_type",
                    )
                ],
            )
        if client != self.client_id or body.get("client_secret") != self.client_secret:
            self.stats["token_refused"] += 1
            return errors(
                401, [error(401, "10", "Client authentication failed", error="invalid_client")]
            )
        token = secrets.token_urlsafe(48)
        with self._lock:
            self._tokens[token] = time.monotonic() + self.token_ttl
        self.stats["tokens"] += 1
        lifetime = self.advertised_ttl if self.advertised_ttl is not None else round(self.token_ttl)
        return JSONResponse({"token_type": "Bearer", "expires_in": lifetime, "access_token": token})

    def _unauthorized(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        with self._lock:
            expires = self._tokens.get(token)
            if expires is not None and expires <= time.monotonic():
                del self._tokens[token]
                expires = None
        if expires is None:
            self.stats["token_rejected"] += 1
            return errors(
                401,
                [
                    error(
                        401,
                        "9",
                        "The resource owner or authorization server denied the request. Access token could not be verified",
                    )
                ],
            )
        return None

    # ------------------------------------------------------------------ search

    async def _search(self, request: Request) -> Response:
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        if "application/json" not in request.headers.get("accept", ""):
            return errors(
                406,
                [
                    error(
                        406,
                        "EMULATOR__JSON_API_NOT_EMULATED",
                        "This emulator answers only Accept: application/json (flat JSON); Shopware's default is JSON:API.",
                    )
                ],
            )
        language = request.headers.get("sw-language-id") or SYSTEM_LANGUAGE
        if language not in self.languages:
            return errors(
                412,
                [
                    error(
                        412,
                        "FRAMEWORK__LANGUAGE_NOT_FOUND",
                        f'The language "{language}" was not found.',
                    )
                ],
            )
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return errors(
                400,
                [error(400, "FRAMEWORK__INVALID_CRITERIA", "The criteria must be a JSON object.")],
            )
        inherit = request.headers.get("sw-inheritance", "").lower() in ("1", "true")
        entity = request.path_params["entity"]
        try:
            with self._lock:
                if entity == "product":
                    if self.on_product_search is not None:
                        self.on_product_search(self.stats["product_searches"] + 1)
                    # Answers are cached until the next write, so that a benchmark measures
                    # the client and the latency rather than this emulator's Python.
                    key = (raw, inherit, language)
                    cached = self._answers.get(key)
                    if cached is None:
                        answer = self._search_products(body, inherit, language)
                        text = json.dumps(answer, ensure_ascii=False, separators=(",", ":"))
                        cached = self._answers[key] = (text.encode(), len(answer["data"]))
                    else:
                        self.stats["product_rows"] += cached[1]
                        self.stats["product_searches"] += 1
                    return Response(cached[0], media_type="application/json")
                elif entity == "currency":
                    answer = self._search_list(body, self.currencies, "currency")
                elif entity == "tax":
                    answer = self._search_list(body, self.taxes, "tax")
                else:
                    return errors(
                        400,
                        [
                            error(
                                400,
                                "FRAMEWORK__DEFINITION_NOT_FOUND",
                                f'Definition for entity "{entity}" does not exist.',
                            )
                        ],
                    )
        except CriteriaError as exc:
            return errors(400, [error(400, exc.code, exc.detail, exc.pointer)])
        return JSONResponse(answer)

    @staticmethod
    def _paging(body: dict[str, Any]) -> tuple[int, int | None, int]:
        page, limit, mode = body.get("page", 1), body.get("limit"), body.get("total-count-mode", 0)
        if isinstance(mode, str) and mode.isdigit():
            mode = int(mode)
        if not isinstance(page, int) or isinstance(page, bool) or page < 1:
            raise CriteriaError(
                "FRAMEWORK__INVALID_PAGE_QUERY",
                f"The page parameter must be a positive integer. Given: {page}",
                "/page",
            )
        if limit is not None and (
            not isinstance(limit, int) or isinstance(limit, bool) or limit < 1
        ):
            raise CriteriaError(
                "FRAMEWORK__INVALID_LIMIT_QUERY",
                f"The limit parameter must be a positive integer greater or equals than 1. Given: {limit}",
                "/limit",
            )
        if mode not in (0, 1, 2):
            raise CriteriaError(
                "FRAMEWORK__INVALID_CRITERIA",
                f"total-count-mode must be 0, 1 or 2, got {mode!r}",
                "/total-count-mode",
            )
        return page, limit, mode

    @staticmethod
    def _window(
        matched: list[Any], page: int, limit: int | None, mode: int
    ) -> tuple[list[Any], int]:
        offset = (page - 1) * (limit or 0)
        rows = matched[offset : offset + limit] if limit else matched
        if mode == 1:
            total = len(matched)
        elif mode == 2 and limit:
            # Shopware reads up to six pages ahead: enough to tell whether there is a next page.
            total = offset + len(matched[offset : offset + limit * 6 + 1])
        else:
            total = len(rows)
        return rows, total

    def _search_list(
        self, body: dict[str, Any], items: list[dict[str, Any]], alias: str
    ) -> dict[str, Any]:
        page, limit, mode = self._paging(body)

        def value(item: dict[str, Any], field: str) -> Any:
            name = field.removeprefix(f"{alias}.")
            if name not in item:
                raise CriteriaError(
                    "FRAMEWORK__UNMAPPED_FIELD",
                    f'Field "{field}" in entity "{alias}" was not found.',
                    "/filter",
                )
            return item[name]

        chosen = [i for i in items if not body.get("ids") or i["id"] in body["ids"]]
        tests = [
            _compile(f, f"/filter/{n}", lambda item, field: value(item, field))
            for n, f in enumerate(body.get("filter") or [])
        ]
        matched = [i for i in chosen if all(t(i) for t in tests)]
        rows, total = self._window(matched, page, limit, mode)
        return {
            "total": total,
            "data": [_include(dict(r), body, alias) for r in rows],
            "aggregations": {},
        }

    def _search_products(
        self, body: dict[str, Any], inherit: bool, language: str
    ) -> dict[str, Any]:
        page, limit, mode = self._paging(body)

        def value(product_id: str, field: str) -> Any:
            return self._value(
                self.products[product_id], field.removeprefix("product."), inherit, language
            )

        sort = body.get("sort") or []
        if body.get("ids"):
            wanted = body["ids"] if isinstance(body["ids"], list) else str(body["ids"]).split("|")
            base = [i for i in dict.fromkeys(wanted) if i in self.products]
        elif [(o.get("field"), str(o.get("order", "ASC")).upper()) for o in sort] == [
            ("id", "ASC")
        ]:
            if self._by_id is None:
                self._by_id = sorted(self.products)
            base, sort = self._by_id, []
        else:
            base = list(self._order)
        for order in reversed(sort):
            field = order.get("field", "")
            descending = str(order.get("order", "ASC")).upper() == "DESC"
            if field in ("id", "product.id"):
                base.sort(reverse=descending)
            else:
                base.sort(key=lambda i, f=field: _sortable(value(i, f)), reverse=descending)  # type: ignore[misc]
        tests = [_compile(f, f"/filter/{n}", value) for n, f in enumerate(body.get("filter") or [])]
        matched = [i for i in base if all(t(i) for t in tests)] if tests else base
        rows, total = self._window(matched, page, limit, mode)
        self.stats["product_rows"] += len(rows)
        self.stats["product_searches"] += 1
        included = (body.get("includes") or {}).get("product")
        shape = (inherit, language, tuple(included) if isinstance(included, list) else None)
        data = []
        for i in rows:
            rendered = self._rendered.get((i, *shape))
            if rendered is None:
                rendered = _include(
                    self._render(self.products[i], inherit, language), body, "product"
                )
                self._rendered[(i, *shape)] = rendered
            data.append(rendered)
        return {"total": total, "data": data, "aggregations": {}}

    def _text(
        self, product: dict[str, Any], field: str, language: str, inherit: bool, fallback: bool
    ) -> Any:
        chain = [product]
        if inherit and product["parentId"] in self.products:
            chain.append(self.products[product["parentId"]])
        languages = [language] + (
            [SYSTEM_LANGUAGE] if fallback and language != SYSTEM_LANGUAGE else []
        )
        for source in chain:
            for lang in languages:
                value = source["translations"].get(lang, {}).get(field)
                if value is not None:
                    return value
        return None

    def _value(self, product: dict[str, Any], field: str, inherit: bool, language: str) -> Any:
        if field in _TRANSLATED:
            return self._text(product, field, language, inherit, fallback=False)
        if field.startswith("translated."):
            return self._text(product, field.split(".", 1)[1], language, inherit, fallback=True)
        if field == "availableStock":
            return product["stock"]
        if field not in _FIELDS:
            raise CriteriaError(
                "FRAMEWORK__UNMAPPED_FIELD",
                f'Field "{field}" in entity "product" was not found.',
                "/filter",
            )
        value = product.get(field)
        if (
            value is None
            and inherit
            and field in _INHERITED
            and product["parentId"] in self.products
        ):
            value = self.products[product["parentId"]].get(field)
        return value

    def _render(self, product: dict[str, Any], inherit: bool, language: str) -> dict[str, Any]:
        value = self._value
        return {
            "id": product["id"],
            "versionId": LIVE_VERSION,
            "parentId": product["parentId"],
            "productNumber": product["productNumber"],
            "active": product["active"],
            "stock": product["stock"],
            "availableStock": product["stock"],
            "childCount": product["childCount"],
            "taxId": value(product, "taxId", inherit, language),
            "ean": value(product, "ean", inherit, language),
            "price": value(product, "price", inherit, language),
            "name": value(product, "name", inherit, language),
            "description": value(product, "description", inherit, language),
            "translated": {
                "name": value(product, "translated.name", inherit, language),
                "description": value(product, "translated.description", inherit, language),
            },
            "createdAt": product["createdAt"],
            "updatedAt": product["updatedAt"],
            "apiAlias": "product",
        }

    # ------------------------------------------------------------------ sync

    async def _sync(self, request: Request) -> Response:
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        language = request.headers.get("sw-language-id") or SYSTEM_LANGUAGE
        try:
            body = await request.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            operations = [
                {**op, "key": key} if isinstance(op, dict) else op for key, op in body.items()
            ]
        elif isinstance(body, list):
            operations = body
        else:
            return errors(
                400,
                [
                    error(
                        400,
                        "FRAMEWORK__INVALID_SYNC_OPERATION",
                        "The sync payload must be a list of operations.",
                    )
                ],
            )
        with self._lock:
            problems: list[dict[str, Any]] = []
            numbers = {p["productNumber"]: p["id"] for p in self.products.values()}
            for n, operation in enumerate(operations):
                problems += self._validate_operation(n, operation, numbers)
            if problems:
                self.stats["sync_rejected"] += 1
                if not self.error_pointers:
                    for problem in problems:
                        problem.pop("source", None)
                return errors(400, problems)
            written: list[str] = []
            deleted: list[str] = []
            not_found: list[str] = []
            events: list[dict[str, Any]] = []
            for operation in operations:
                for record in operation["payload"]:
                    if operation["action"] == "upsert":
                        known = record["id"] in self.products
                        written.append(self._upsert(record, language))
                        fields = [key for key in record if key != "id"]
                        events.append(
                            _written(record["id"], "update" if known else "insert", fields)
                        )
                    else:
                        gone = self._delete(record["id"])
                        (deleted.extend(gone) if gone else not_found.append(record["id"]))
                        events += [_written(i, "delete", []) for i in gone]
            self.stats["sync_applied"] += 1
            self.stats["records_written"] += len(written)
            if events:
                self._emit("product.written", events)
        return JSONResponse(
            {
                "data": {"product": written} if written else {},
                "deleted": {"product": deleted} if deleted else {},
                "notFound": {"product": not_found} if not_found else {},
            }
        )

    def _validate_operation(
        self, n: int, operation: Any, numbers: dict[str, str]
    ) -> list[dict[str, Any]]:
        if not isinstance(operation, dict):
            return [
                error(
                    400,
                    "FRAMEWORK__INVALID_SYNC_OPERATION",
                    "An operation must be an object.",
                    f"/{n}",
                )
            ]
        if operation.get("entity") != "product":
            return [
                error(
                    400,
                    "FRAMEWORK__DEFINITION_NOT_FOUND",
                    f'Definition for entity "{operation.get("entity")}" does not exist.',
                    f"/{n}/entity",
                )
            ]
        if operation.get("action") not in ("upsert", "delete"):
            return [
                error(
                    400,
                    "FRAMEWORK__INVALID_SYNC_OPERATION",
                    f'Action "{operation.get("action")}" is not supported; use upsert or delete.',
                    f"/{n}/action",
                )
            ]
        payload = operation.get("payload")
        if not isinstance(payload, list) or not payload:
            return [
                error(
                    400,
                    "FRAMEWORK__INVALID_SYNC_OPERATION",
                    "The payload must be a non-empty list.",
                    f"/{n}/payload",
                )
            ]
        problems: list[dict[str, Any]] = []
        for i, record in enumerate(payload):
            base = f"/{n}/payload/{i}"
            if not isinstance(record, dict):
                problems.append(
                    error(
                        400,
                        "FRAMEWORK__WRITE_CONSTRAINT_VIOLATION",
                        "This value should be of type array.",
                        base,
                    )
                )
            elif operation["action"] == "delete":
                if not _is_id(record.get("id")):
                    problems.append(_violation("This value is not a valid UUID.", f"{base}/id"))
            else:
                problems += self._validate_record(record, base, numbers)
        return problems

    def _validate_record(
        self, record: dict[str, Any], base: str, numbers: dict[str, str]
    ) -> list[dict[str, Any]]:
        problems: list[dict[str, Any]] = []
        if "id" not in record:
            record["id"] = new_id()  # Shopware generates the id of a new record
        product_id = record["id"]
        if not _is_id(product_id):
            return [
                error(
                    400,
                    "FRAMEWORK__INVALID_UUID",
                    f"Value is not a valid UUID: {product_id}",
                    f"{base}/id",
                )
            ]
        existing = self.products.get(product_id)
        for key in record:
            if key not in _WRITABLE:
                problems.append(
                    error(
                        400,
                        "FRAMEWORK__WRITE_UNEXPECTED_FIELD_ERROR",
                        f"Unexpected field: {key}",
                        f"{base}/{key}",
                        field=key,
                    )
                )
        parent = record.get("parentId", existing["parentId"] if existing else None)
        if (
            "parentId" in record
            and parent is not None
            and (parent not in self.products or parent == product_id)
        ):
            problems.append(
                _violation(f'The parent "{parent}" does not exist.', f"{base}/parentId")
            )
        if "stock" in record and (
            not isinstance(record["stock"], int) or isinstance(record["stock"], bool)
        ):
            problems.append(_violation("This value should be of type int.", f"{base}/stock"))
        if "productNumber" in record:
            number = record["productNumber"]
            if not isinstance(number, str) or not number.strip():
                problems.append(
                    _violation("This value should not be blank.", f"{base}/productNumber")
                )
            elif numbers.get(number, product_id) != product_id:
                problems.append(
                    error(
                        400,
                        "CONTENT__DUPLICATE_PRODUCT_NUMBER",
                        f'Product with number "{number}" already exists.',
                        f"{base}/productNumber",
                        number=number,
                    )
                )
            else:
                numbers[number] = product_id  # a later record of the same sync may not take it
        for key in ("name", "description", "ean"):
            value = record.get(key)
            if value is not None and not isinstance(value, str):
                problems.append(_violation("This value should be of type string.", f"{base}/{key}"))
            elif key != "description" and value is not None and len(value) > 255:
                problems.append(
                    _violation(
                        "This value is too long. It should have 255 characters or less.",
                        f"{base}/{key}",
                        value=value[:30] + "…",
                    )
                )
        if (
            "taxId" in record
            and not (record["taxId"] is None and parent)
            and record["taxId"] not in {t["id"] for t in self.taxes}
        ):
            problems.append(
                _violation(f'The tax "{record["taxId"]}" does not exist.', f"{base}/taxId")
            )
        if "price" in record:
            problems += self._validate_price(
                record["price"], f"{base}/price", variant=parent is not None
            )
        if existing is None:
            required = ["productNumber", "stock"] + ([] if parent else ["taxId", "name", "price"])
            for key in required:
                if record.get(key) is None:
                    problems.append(_violation("This value should not be blank.", f"{base}/{key}"))
        return problems

    def _validate_price(self, price: Any, pointer: str, *, variant: bool) -> list[dict[str, Any]]:
        if price is None:
            return [] if variant else [_violation("This value should not be blank.", pointer)]
        if not isinstance(price, list) or not price:
            return [_violation("This value should be of type array.", pointer)]
        problems = []
        currencies = {c["id"] for c in self.currencies}
        for n, entry in enumerate(price):
            at = f"{pointer}/{n}"
            if not isinstance(entry, dict):
                problems.append(_violation("This value should be of type array.", at))
                continue
            if entry.get("currencyId") not in currencies:
                problems.append(
                    _violation(
                        f'The currency "{entry.get("currencyId")}" does not exist.',
                        f"{at}/currencyId",
                    )
                )
            if not isinstance(entry.get("linked"), bool):
                problems.append(_violation("This value should be of type bool.", f"{at}/linked"))
            parts = [("", entry)]
            if entry.get("listPrice") is not None:
                if not isinstance(entry["listPrice"], dict):
                    problems.append(
                        _violation("This value should be of type array.", f"{at}/listPrice")
                    )
                else:
                    parts.append(("/listPrice", entry["listPrice"]))
            for suffix, part in parts:
                for key in ("gross", "net"):
                    value = part.get(key)
                    if not isinstance(value, int | float) or isinstance(value, bool):
                        problems.append(
                            _violation(
                                "This value should be of type numeric.", f"{at}{suffix}/{key}"
                            )
                        )
                    elif value < 0:
                        problems.append(
                            _violation(
                                "This value should be greater than or equal to 0.",
                                f"{at}{suffix}/{key}",
                            )
                        )
        if not any(isinstance(e, dict) and e.get("currencyId") == EUR for e in price):
            problems.append(
                error(
                    400,
                    "CONTENT__PRODUCT_PRICE_MISSING_DEFAULT_CURRENCY",
                    "No price for default currency defined",
                    pointer,
                )
            )
        return problems

    def _upsert(self, record: dict[str, Any], language: str) -> str:
        product_id = record["id"]
        product = self.products.get(product_id)
        if product is None:
            self.add(
                record["productNumber"],
                price=record.get("price"),
                stock=record["stock"],
                ean=record.get("ean"),
                parent=record.get("parentId"),
                tax=record.get("taxId"),
                product_id=product_id,
            )
            product = self.products[product_id]
        else:
            if "parentId" in record and record["parentId"] != product["parentId"]:
                if product["parentId"] in self.products:
                    self.products[product["parentId"]]["childCount"] -= 1
                if record["parentId"] in self.products:
                    self.products[record["parentId"]]["childCount"] += 1
            for key in ("parentId", "productNumber", "stock", "price", "ean", "taxId", "active"):
                if key in record:
                    product[key] = copy.deepcopy(record[key])
            product["updatedAt"] = self.stamp()
        texts = product["translations"].setdefault(language, {"name": None, "description": None})
        for key in _TRANSLATED:
            if key in record:
                texts[key] = record[key]
        self._changed()
        return product_id


def _written(product_id: str, operation: str, fields: list[str]) -> dict[str, Any]:
    """One entry of a ``product.written`` payload: the product by primary key only."""
    return {
        "entity": "product",
        "operation": operation,
        "primaryKey": product_id,
        "updatedFields": sorted(fields),
        "versionId": LIVE_VERSION,
    }


def _violation(detail: str, pointer: str, **parameters: Any) -> dict[str, Any]:
    return error(400, "FRAMEWORK__WRITE_CONSTRAINT_VIOLATION", detail, pointer, **parameters)


def _is_id(value: Any) -> bool:
    return (
        isinstance(value, str) and len(value) == 32 and all(c in "0123456789abcdef" for c in value)
    )


def _sortable(value: Any) -> tuple[int, Any]:
    return (1, "") if value is None else (0, value)


def _include(item: dict[str, Any], body: dict[str, Any], alias: str) -> dict[str, Any]:
    wanted = (body.get("includes") or {}).get(alias)
    if not wanted:
        return item
    return {k: v for k, v in item.items() if k in wanted or k == "apiAlias"}


def _compile(spec: Any, pointer: str, value: Callable[[Any, str], Any]) -> Callable[[Any], bool]:
    """A filter of the criteria as a predicate over items (``value(item, field)`` reads a field)."""
    if not isinstance(spec, dict):
        raise CriteriaError(
            "FRAMEWORK__INVALID_FILTER_QUERY", "A filter must be an object.", pointer
        )
    kind = spec.get("type")
    if kind in ("multi", "not"):
        parts = [
            _compile(q, f"{pointer}/queries/{n}", value)
            for n, q in enumerate(spec.get("queries") or [])
        ]
        combine: Callable[[Iterable[bool]], bool] = (
            any if str(spec.get("operator", "and")).lower() == "or" else all
        )
        if kind == "multi":
            return lambda item: combine(p(item) for p in parts)
        return lambda item: not combine(p(item) for p in parts)
    field = spec.get("field")
    if not isinstance(field, str):
        raise CriteriaError(
            "FRAMEWORK__INVALID_FILTER_QUERY",
            f'Parameter "field" for {kind} filter is missing.',
            f"{pointer}/field",
        )
    expected = spec.get("value")
    if kind == "equals":
        return lambda item: value(item, field) == expected
    if kind == "equalsAny":
        options = set(expected if isinstance(expected, list) else str(expected).split("|"))
        return lambda item: value(item, field) in options
    if kind == "contains":
        return lambda item: str(expected) in str(value(item, field) or "")
    if kind == "prefix":
        return lambda item: str(value(item, field) or "").startswith(str(expected))
    if kind == "range":
        parameters = spec.get("parameters") or {}
        unknown = set(parameters) - {"gt", "gte", "lt", "lte"}
        if unknown:
            raise CriteriaError(
                "FRAMEWORK__INVALID_FILTER_QUERY",
                f"Unknown range parameter {sorted(unknown)[0]}",
                f"{pointer}/parameters",
            )
        checks = {
            "gt": lambda a, b: a > b,
            "gte": lambda a, b: a >= b,
            "lt": lambda a, b: a < b,
            "lte": lambda a, b: a <= b,
        }

        def in_range(item: Any) -> bool:
            actual = value(item, field)
            if actual is None:
                return False
            for name, bound in parameters.items():
                try:
                    if not checks[name](actual, bound):
                        return False
                except TypeError:
                    return False
            return True

        return in_range
    raise CriteriaError(
        "FRAMEWORK__INVALID_FILTER_QUERY", f'Unsupported filter type "{kind}"', f"{pointer}/type"
    )


# ---------------------------------------------------------------------- seeding


def seed(
    emulator: Shopware6Emulator,
    *,
    parents: int = 0,
    variants: int = 4,
    simple: int = 0,
    rng_seed: int = 5,
    created: datetime | None = None,
) -> list[str]:
    """Fill the shop: ``simple`` products without variants and ``parents`` containers with
    ``variants`` variants each. About half the variants inherit the parent's price, most
    inherit its name; every tenth product is on sale (a list price above the price); prices
    carry a USD entry too. Creation times are spread over the past, oldest first. Returns the
    sellable SKUs in creation order."""
    rng = random.Random(rng_seed)
    moment = created or datetime.now(UTC) - timedelta(days=30)
    skus: list[str] = []

    def when() -> str:
        nonlocal moment
        moment += timedelta(milliseconds=rng.randint(5, 500))
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+00:00"

    def prices(tax: str) -> list[dict[str, Any]]:
        rate = Decimal(19) if tax == TAX_19 else Decimal(7)
        gross = rng.randint(199, 19999) / 100
        listed = round(gross * 1.25, 2) if rng.random() < 0.1 else None
        usd = round(gross * 1.17, 2)
        return [
            price_entry(gross, tax=rate, list_price=listed),
            price_entry(
                usd, currency=USD, tax=rate, list_price=round(listed * 1.17, 2) if listed else None
            ),
        ]

    def ean() -> str:
        return "40" + "".join(str(rng.randint(0, 9)) for _ in range(11))

    with emulator._lock:
        for n in range(simple):
            tax = TAX_19 if rng.random() < 0.8 else TAX_7
            sku = f"SW-{n:05d}"
            emulator.add(
                sku,
                name=f"Artikel {n}",
                description=f"<p>Beschreibung {n}</p>",
                price=prices(tax),
                stock=rng.randint(0, 120),
                ean=ean(),
                tax=tax,
                created_at=when(),
            )
            skus.append(sku)
        for n in range(parents):
            tax = TAX_19 if rng.random() < 0.8 else TAX_7
            parent = emulator.add(
                f"SW-P{n:05d}",
                name=f"Modell {n}",
                description=f"<p>Modell {n}</p>",
                price=prices(tax),
                stock=0,
                tax=tax,
                created_at=when(),
            )
            for v in range(variants):
                sku = f"SW-P{n:05d}-{v}"
                own_price = prices(tax) if rng.random() < 0.5 else None
                own_name = f"Modell {n} Größe {v}" if rng.random() < 0.25 else None
                emulator.add(
                    sku,
                    name=own_name,
                    price=own_price,
                    stock=rng.randint(0, 60),
                    ean=ean(),
                    parent=parent,
                    tax=None,
                    created_at=when(),
                )
                skus.append(sku)
    return skus
