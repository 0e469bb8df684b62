"""A stateful emulator of the Google Merchant API (the parts omnisync uses), as documented.

::

    emulator = GoogleMerchantEmulator()
    seed(emulator, 50, stores=("berlin", "hamburg"))
    with serve(emulator.app) as server:
        key = emulator.key_json(server.url)   # a service account key whose token_uri is here
        ...  # options: account=emulator.account, key=key, data_source=emulator.data_source_id

Implemented:

* ``POST /token``: the OAuth 2.0 JWT bearer grant. The assertion must be an RS256 JWT signed
  with the private key of the emulator's service account (generated per emulator: no key is
  stored anywhere), ``kid`` its key id, ``iss`` its email, ``aud`` this token URI, ``scope``
  holding ``https://www.googleapis.com/auth/content``, ``exp`` in the future and at most an
  hour after ``iat``; otherwise 400 ``{"error": "invalid_grant", "error_description": ...}``.
  Tokens live ``token_ttl`` seconds (``advertised_ttl`` is what ``expires_in`` says) and die
  on :meth:`expire_tokens`; a missing or dead token is 401 ``UNAUTHENTICATED``.
* ``GET /products/v1/accounts/{a}/products``: ``pageSize`` (25 by default, above 1000 cut to
  1000), an opaque ``pageToken`` that must come with the same ``pageSize`` (else 400),
  ``nextPageToken`` absent on the last page; products sorted by name.
  ``GET .../products/{product}``: plain (``de~DE~SKU``) or unpadded base64url name; 404.
* ``POST .../productInputs:insert?dataSource=``: a whole input (``offerId``,
  ``contentLanguage``, ``feedLabel`` required), replacing one with the same name.
  ``PATCH .../productInputs/{product}?dataSource=&updateMask=``: the input must exist in that
  data source; each ``productAttributes.x`` of the mask is set from the body, or deleted when
  the body has none; no mask means every attribute the body sets. Both validate (price as
  ``{amountMicros: int64 string, currencyCode}``, a sale window needs a sale price, title ≤ 150
  and description ≤ 5000 characters, GTINs of 8, 12, 13 or 14 digits, at most 10, known
  availability values) and answer 400 ``INVALID_ARGUMENT`` naming the attribute. Inputs reach
  the processed products ``processing_delay`` seconds later, as Google processes them.
* ``GET /inventories/v1/accounts/{a}/products/{product}/localInventories`` (``pageSize`` up to
  25000, ``pageToken``) and ``POST .../localInventories:insert`` (the whole entry of a
  ``storeCode``, replaced; quantity ≥ 0, valid price and availability), with
  ``productIdBase64UrlEncoded``; an insert shows after ``processing_delay`` too.
* ``POST /batch/{products,inventories}/v1``: Google's HTTP batch — ``multipart/mixed`` parts
  of ``application/http`` nested requests (no host), each answered in a part with
  ``Content-ID: <response-…>``; nested paths must belong to the batch's sub-API; the outer
  request's token authorises them all; at most 1000 nested requests.
* Errors are ``{"error": {"code", "message", "status", "details"}}``. :meth:`throttle` makes the
  next ``n`` requests (top-level, or nested ones) answer 429 ``RESOURCE_EXHAUSTED`` with
  ``quota/request_rate_too_high``, as the per-minute quota does.

``stats`` counts tokens issued and rejected, pages, batches and nested requests, inputs and
inventories written and rejected.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SCOPE = "https://www.googleapis.com/auth/content"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
}
AVAILABILITY = {"IN_STOCK", "OUT_OF_STOCK", "PREORDER", "LIMITED_AVAILABILITY", "BACKORDER"}
LOCAL_AVAILABILITY = {"IN_STOCK", "LIMITED_AVAILABILITY", "ON_DISPLAY_TO_ORDER", "OUT_OF_STOCK"}

Result = tuple[int, Any]


class ApiError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message

    def body(self) -> dict[str, Any]:
        status = STATUS.get(self.code, "UNKNOWN")
        details = []
        if self.code == 429:
            details = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "RATE_LIMIT_EXCEEDED",
                    "domain": "merchantapi.googleapis.com",
                    "metadata": {"REASON": "quota/request_rate_too_high"},
                }
            ]
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "status": status,
                "details": details,
            }
        }


def decode_pid(segment: str) -> str:
    """A product segment as ``language~label~offer`` (plain or unpadded base64url)."""
    if "~" in segment:
        return segment
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, f"invalid product name segment {segment!r}") from None


class GoogleMerchantEmulator:
    """The account's products, inputs, local inventories and the token endpoint."""

    def __init__(
        self,
        *,
        account: str = "123456789",
        data_source_id: str = "10001",
        processing_delay: float = 0.2,
        token_ttl: float = 3600.0,
        advertised_ttl: int | None = None,
        fresh_key: bool = False,
    ) -> None:
        self.account = account
        self.data_source_id = data_source_id
        self.data_source = f"accounts/{account}/dataSources/{data_source_id}"
        self.processing_delay = processing_delay
        self.token_ttl = token_ttl
        self.advertised_ttl = advertised_ttl if advertised_ttl is not None else int(token_ttl)
        self.client_email = f"omnisync@project-{account}.iam.gserviceaccount.com"
        # One key pair per process unless asked for another: a key's lines become secrets
        # of the process (masking grows with each), and generating one takes a moment.
        self.key_id, self._private = _key_pair(fresh=fresh_key)
        self.public_key = self._private.public_key()
        #: Processed products and inputs by product id (``de~DE~SKU``).
        self.products: dict[str, dict[str, Any]] = {}
        self.inputs: dict[str, dict[str, Any]] = {}
        #: Local inventories: product id -> store code -> entry.
        self.inventories: dict[str, dict[str, dict[str, Any]]] = {}
        self._pending: list[tuple[float, str, str, Any]] = []
        self._tokens: dict[str, float] = {}
        self._throttle = 0
        self._throttle_nested = False
        self._lock = threading.RLock()
        #: Rendered GET answers by (path, query, state version).
        self._rendered: dict[tuple[str, str, int], tuple[int, bytes]] = {}
        self._version = 0
        self.stats: Counter[str] = Counter()
        self.app = Starlette(
            routes=[
                Route("/token", self._token_endpoint, methods=["POST"]),
                Route("/{path:path}", self._endpoint, methods=["GET", "POST", "PATCH"]),
            ]
        )

    # ------------------------------------------------------------ the service account

    def private_pem(self) -> str:
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    def key_json(self, base_url: str, **override: Any) -> str:
        """The service account's JSON key as Google issues it, its token URI on this server."""
        data = {
            "type": "service_account",
            "project_id": f"project-{self.account}",
            "private_key_id": self.key_id,
            "private_key": self.private_pem(),
            "client_email": self.client_email,
            "client_id": "1" * 21,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": f"{base_url}/token",
        }
        data.update(override)
        return json.dumps(data, indent=2)

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def throttle(self, n: int, *, nested: bool = False) -> None:
        """The next ``n`` requests (nested ones with ``nested``) answer 429."""
        with self._lock:
            self._throttle, self._throttle_nested = n, nested

    # ------------------------------------------------------------ direct state (tests)

    def pid(self, sku: str, language: str = "de", label: str = "DE") -> str:
        return f"{language}~{label}~{sku}"

    def put(self, sku: str, attributes: dict[str, Any], **identity: str) -> None:
        """A product as a Merchant Center edit leaves it: input and processed product at once."""
        language, label = identity.get("language", "de"), identity.get("label", "DE")
        pid = self.pid(sku, language, label)
        with self._lock:
            entry = {
                "name": f"accounts/{self.account}/productInputs/{pid}",
                "offerId": sku,
                "contentLanguage": language,
                "feedLabel": label,
                "productAttributes": copy.deepcopy(attributes),
            }
            self.inputs[pid] = {"dataSource": self.data_source, **entry}
            self._process(pid, self.inputs[pid])

    def update(self, sku: str, **attributes: Any) -> None:
        """Change attributes of a product at once (``None`` removes one)."""
        with self._lock:
            pid = self.pid(sku)
            merged = copy.deepcopy(self.inputs[pid]["productAttributes"])
            for key, value in attributes.items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
            self.inputs[pid]["productAttributes"] = merged
            self._process(pid, self.inputs[pid])

    def put_store(self, sku: str, store: str, **attributes: Any) -> None:
        with self._lock:
            pid = self.pid(sku)
            self._changed()
            self.inventories.setdefault(pid, {})[store] = self._inventory(pid, store, attributes)

    def attributes(self, sku: str) -> dict[str, Any]:
        with self._lock:
            self._due()
            return copy.deepcopy(self.products[self.pid(sku)]["productAttributes"])

    def store(self, sku: str, store: str) -> dict[str, Any]:
        with self._lock:
            self._due()
            return copy.deepcopy(self.inventories[self.pid(sku)][store]["localInventoryAttributes"])

    def settled(self) -> bool:
        """Whether every input written has been processed."""
        with self._lock:
            self._due()
            return not self._pending

    # ------------------------------------------------------------ processing

    def _changed(self) -> None:
        self._version += 1
        self._rendered.clear()

    def _process(self, pid: str, entry: dict[str, Any]) -> None:
        self._changed()
        self.products[pid] = {
            "name": f"accounts/{self.account}/products/{pid}",
            "offerId": entry["offerId"],
            "contentLanguage": entry["contentLanguage"],
            "feedLabel": entry["feedLabel"],
            "dataSource": entry["dataSource"],
            "productAttributes": copy.deepcopy(entry.get("productAttributes") or {}),
        }

    def _inventory(self, pid: str, store: str, attributes: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": f"accounts/{self.account}/products/{pid}/localInventories/{store}",
            "account": self.account,
            "storeCode": store,
            "localInventoryAttributes": copy.deepcopy(attributes),
        }

    def _later(self, kind: str, pid: str, value: Any) -> None:
        due = time.monotonic() + self.processing_delay
        self._pending.append((due, kind, pid, copy.deepcopy(value)))
        self._due()

    def _due(self) -> None:
        now = time.monotonic()
        kept = []
        for due, kind, pid, value in self._pending:
            if due > now:
                kept.append((due, kind, pid, value))
            elif kind == "product":
                self._process(pid, value)
            else:
                self._changed()
                self.inventories.setdefault(pid, {})[value["storeCode"]] = value
        self._pending = kept

    # ------------------------------------------------------------ HTTP

    async def _token_endpoint(self, request: Request) -> Response:
        form = parse_qs((await request.body()).decode())
        grant = (form.get("grant_type") or [""])[0]
        assertion = (form.get("assertion") or [""])[0]
        audience = str(request.url).split("?", 1)[0]

        def refuse(description: str) -> Response:
            self.stats["token_rejected"] += 1
            body = {"error": "invalid_grant", "error_description": description}
            return JSONResponse(body, status_code=400)

        if grant != GRANT:
            return JSONResponse(
                {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"},
                status_code=400,
            )
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(
                assertion,
                self.public_key,
                algorithms=["RS256"],
                audience=audience,
                options={"require": ["iss", "aud", "iat", "exp"]},
            )
        except jwt.InvalidSignatureError:
            return refuse("Invalid JWT Signature.")
        except jwt.PyJWTError as exc:
            return refuse(f"Invalid JWT: {exc}")
        if header.get("kid") != self.key_id:
            return refuse("Invalid JWT Signature.")
        if claims["iss"] != self.client_email:
            return refuse("Invalid JWT: iss is not the service account")
        if int(claims["exp"]) - int(claims["iat"]) > 3600:
            return refuse("Invalid JWT: Token must be a short-lived token (60 minutes)")
        if SCOPE not in str(claims.get("scope") or "").split():
            return refuse("Invalid OAuth scope or ID token audience provided.")
        token = f"ya29.{secrets.token_urlsafe(32)}"
        with self._lock:
            self._tokens[token] = time.monotonic() + self.token_ttl
        self.stats["tokens"] += 1
        return JSONResponse(
            {"access_token": token, "expires_in": self.advertised_ttl, "token_type": "Bearer"}
        )

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        with self._lock:
            expiry = self._tokens.get(token)
            if expiry is None or expiry < time.monotonic():
                self._tokens.pop(token, None)
                return False
        return True

    async def _endpoint(self, request: Request) -> Response:
        if not self._authorised(request):
            self.stats["token_rejected"] += 1
            error = ApiError(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
            )
            return JSONResponse(error.body(), status_code=401)
        if self._throttled(nested=False):
            return JSONResponse(_quota().body(), status_code=429)
        path = request.url.path
        body = await request.body()
        batch = re.fullmatch(r"/batch/(products|inventories)/v1", path)
        if batch and request.method == "POST":
            return self._batch(batch.group(1), request.headers.get("content-type", ""), body)
        if request.method == "GET":
            # Rendered answers are kept until the next write, so that a benchmark measures
            # the client and the network, not the emulator's Python.
            status, raw = self._rendered_get(path, request.url.query)
            return Response(raw, status_code=status, media_type="application/json")
        status, answer = self.handle(request.method, path, request.url.query, body)
        return JSONResponse(answer, status_code=status)

    def _rendered_get(self, path: str, query: str) -> tuple[int, bytes]:
        with self._lock:
            self._due()
            key = (path, query, self._version)
            cached = self._rendered.get(key)
        if cached is None:
            status, answer = self.handle("GET", path, query, b"")
            cached = (status, json.dumps(answer).encode())
            with self._lock:
                self._rendered[key] = cached
        return cached

    def _throttled(self, *, nested: bool) -> bool:
        with self._lock:
            if self._throttle > 0 and self._throttle_nested == nested:
                self._throttle -= 1
                self.stats["throttled"] += 1
                return True
        return False

    def handle(self, method: str, path: str, query: str, body: bytes) -> Result:
        """One API request (top-level or nested) → (status, JSON body)."""
        try:
            params = {k: v[-1] for k, v in parse_qs(query).items()}
            data = json.loads(body) if body.strip() else None
            with self._lock:
                self._due()
                return self._route(method, path, params, data)
        except ApiError as exc:
            return exc.code, exc.body()
        except json.JSONDecodeError:
            return 400, ApiError(400, "Invalid JSON payload received.").body()

    def _route(self, method: str, path: str, params: dict[str, str], data: Any) -> Result:
        prefix = f"accounts/{self.account}"
        match = re.fullmatch(r"/(products|inventories)/v1/accounts/([^/]+)(/.*)?", path)
        if not match:
            raise ApiError(404, f"no such method: {method} {path}")
        if match.group(2) != self.account:
            raise ApiError(
                403, f"The caller does not have access to the accounts: [{match.group(2)}]"
            )
        api, rest = match.group(1), match.group(3) or ""
        if api == "products":
            if method == "GET" and rest == "/products":
                return 200, self._list(params)
            if method == "GET" and (m := re.fullmatch(r"/products/([^/]+)", rest)):
                return 200, self._get(decode_pid(m.group(1)))
            if method == "POST" and rest == "/productInputs:insert":
                return 200, self._insert(params, data)
            if method == "PATCH" and (m := re.fullmatch(r"/productInputs/([^/:]+)", rest)):
                return 200, self._patch(decode_pid(m.group(1)), params, data)
        else:
            m = re.fullmatch(r"/products/([^/]+)/localInventories(:insert)?", rest)
            if m:
                segment = m.group(1)
                if params.get("productIdBase64UrlEncoded") == "true":
                    pid = decode_pid(segment) if "~" not in segment else segment
                elif "~" in segment:
                    pid = segment
                else:
                    raise ApiError(404, f"Product {prefix}/products/{segment} not found.")
                if pid not in self.products:
                    raise ApiError(404, f"Product {prefix}/products/{segment} not found.")
                if method == "GET" and not m.group(2):
                    return 200, self._inventories(pid, params)
                if method == "POST" and m.group(2):
                    return 200, self._insert_inventory(pid, data)
        raise ApiError(404, f"no such method: {method} {path}")

    # ------------------------------------------------------------ products

    def _list(self, params: dict[str, str]) -> dict[str, Any]:
        size = min(int(params.get("pageSize") or 25), 1000)
        if size <= 0:
            raise ApiError(400, "pageSize must be positive")
        offset = 0
        if params.get("pageToken"):
            try:
                token = json.loads(base64.urlsafe_b64decode(params["pageToken"]))
            except ValueError:
                raise ApiError(400, "Invalid page token.") from None
            if token.get("s") != size:
                raise ApiError(400, "pageSize must match the call that provided the page token.")
            offset = int(token["o"])
        names = sorted(self.products)
        page = [copy.deepcopy(self.products[pid]) for pid in names[offset : offset + size]]
        self.stats["pages"] += 1
        answer: dict[str, Any] = {"products": page}
        if offset + size < len(names):
            raw = json.dumps({"o": offset + size, "s": size}).encode()
            answer["nextPageToken"] = base64.urlsafe_b64encode(raw).decode()
        return answer

    def _get(self, pid: str) -> dict[str, Any]:
        product = self.products.get(pid)
        if product is None:
            raise ApiError(404, f"Product accounts/{self.account}/products/{pid} not found.")
        return copy.deepcopy(product)

    def _source(self, params: dict[str, str]) -> str:
        source = params.get("dataSource")
        if source != self.data_source:
            self.stats["inputs_rejected"] += 1
            raise ApiError(
                400 if not source else 404,
                "dataSource is required"
                if not source
                else f"Data source {source} not found or not an API data source.",
            )
        return source

    def _insert(self, params: dict[str, str], data: Any) -> dict[str, Any]:
        source = self._source(params)
        if not isinstance(data, dict):
            raise ApiError(400, "the product input is missing")
        for key in ("offerId", "contentLanguage", "feedLabel"):
            if not data.get(key):
                self.stats["inputs_rejected"] += 1
                raise ApiError(400, f"[{key}] is required.")
        pid = f"{data['contentLanguage']}~{data['feedLabel']}~{data['offerId']}"
        attributes = data.get("productAttributes") or {}
        self._validate(attributes)
        entry = {
            "name": f"accounts/{self.account}/productInputs/{pid}",
            "product": f"accounts/{self.account}/products/{pid}",
            "offerId": data["offerId"],
            "contentLanguage": data["contentLanguage"],
            "feedLabel": data["feedLabel"],
            "productAttributes": copy.deepcopy(attributes),
            "dataSource": source,
        }
        self.inputs[pid] = entry
        self.stats["inputs_written"] += 1
        self._later("product", pid, entry)
        return {k: v for k, v in entry.items() if k != "dataSource"}

    def _patch(self, pid: str, params: dict[str, str], data: Any) -> dict[str, Any]:
        source = self._source(params)
        current = self.inputs.get(pid)
        if current is None or current["dataSource"] != source:
            self.stats["inputs_rejected"] += 1
            raise ApiError(
                404, f"Product input accounts/{self.account}/productInputs/{pid} not found."
            )
        given = (data or {}).get("productAttributes") or {}
        mask = [p for p in (params.get("updateMask") or "").split(",") if p]
        if not mask:
            mask = [f"productAttributes.{k}" for k, v in given.items() if v not in (None, "", [])]
        merged = copy.deepcopy(current["productAttributes"])
        for path in mask:
            head, _, name = path.partition(".")
            if head != "productAttributes" or not name or "." in name:
                self.stats["inputs_rejected"] += 1
                raise ApiError(400, f"Invalid update mask path: {path}")
            if name in given:
                merged[name] = copy.deepcopy(given[name])
            else:
                merged.pop(name, None)
        self._validate(merged)
        current["productAttributes"] = merged
        self.stats["inputs_written"] += 1
        self._later("product", pid, current)
        return {k: v for k, v in current.items() if k != "dataSource"}

    def _validate(self, attributes: dict[str, Any]) -> None:
        def bad(message: str) -> ApiError:
            self.stats["inputs_rejected"] += 1
            return ApiError(400, message)

        for name in ("price", "salePrice"):
            if name in attributes:
                _price(attributes[name], f"productAttributes.{name}", bad)
        if "salePriceEffectiveDate" in attributes:
            window = attributes["salePriceEffectiveDate"]
            if "salePrice" not in attributes:
                raise bad("[productAttributes.salePriceEffectiveDate] needs a salePrice.")
            if (
                not isinstance(window, dict)
                or not window.get("startTime")
                or not window.get("endTime")
            ):
                raise bad("[productAttributes.salePriceEffectiveDate] needs startTime and endTime.")
        if len(str(attributes.get("title") or "")) > 150:
            raise bad("[productAttributes.title] is too long: at most 150 characters.")
        if len(str(attributes.get("description") or "")) > 5000:
            raise bad("[productAttributes.description] is too long: at most 5000 characters.")
        gtins = attributes.get("gtins")
        if gtins is not None:
            if not isinstance(gtins, list) or len(gtins) > 10:
                raise bad("[productAttributes.gtins] holds at most 10 GTINs.")
            for gtin in gtins:
                if not (isinstance(gtin, str) and gtin.isdigit() and len(gtin) in (8, 12, 13, 14)):
                    raise bad(f"[productAttributes.gtins] invalid GTIN {gtin!r}.")
        if "availability" in attributes and attributes["availability"] not in AVAILABILITY:
            raise bad(
                f"[productAttributes.availability] invalid value {attributes['availability']!r}."
            )

    # ------------------------------------------------------------ local inventories

    def _inventories(self, pid: str, params: dict[str, str]) -> dict[str, Any]:
        size = min(int(params.get("pageSize") or 25000), 25000)
        stores = sorted(self.inventories.get(pid, {}))
        offset = int(params.get("pageToken") or 0)
        page = [copy.deepcopy(self.inventories[pid][s]) for s in stores[offset : offset + size]]
        answer: dict[str, Any] = {"localInventories": page}
        if offset + size < len(stores):
            answer["nextPageToken"] = str(offset + size)
        return answer

    def _insert_inventory(self, pid: str, data: Any) -> dict[str, Any]:
        def bad(message: str) -> ApiError:
            self.stats["inventories_rejected"] += 1
            return ApiError(400, message)

        if not isinstance(data, dict) or not data.get("storeCode"):
            raise bad("[storeCode] is required.")
        attributes = data.get("localInventoryAttributes") or {}
        for name in ("price", "salePrice"):
            if name in attributes:
                _price(attributes[name], f"localInventoryAttributes.{name}", bad)
        quantity = attributes.get("quantity")
        if quantity is not None and (not str(quantity).isdigit()):
            raise bad("[localInventoryAttributes.quantity] must be an integer of 0 or more.")
        if "availability" in attributes and attributes["availability"] not in LOCAL_AVAILABILITY:
            raise bad("[localInventoryAttributes.availability] invalid value.")
        entry = self._inventory(pid, str(data["storeCode"]), attributes)
        self.stats["inventories_written"] += 1
        self._later("inventory", pid, entry)
        return entry

    # ------------------------------------------------------------ HTTP batches

    def _batch(self, api: str, content_type: str, body: bytes) -> Response:
        match = re.search(r"boundary=\"?([^\";]+)\"?", content_type)
        if not content_type.startswith("multipart/mixed") or not match:
            error = ApiError(400, "A batch request must be multipart/mixed with a boundary.")
            return JSONResponse(error.body(), status_code=400)
        parts = _parts(body.decode("utf-8"), match.group(1))
        if len(parts) > 1000:
            error = ApiError(400, "A batch request holds at most 1000 calls.")
            return JSONResponse(error.body(), status_code=400)
        self.stats["batches"] += 1
        boundary = f"batch_{secrets.token_hex(8)}"
        out: list[str] = []
        # Google answers nested requests in any order: answer them back to front.
        for content_id, method, target, payload in reversed(parts):
            self.stats["nested"] += 1
            path, _, query = target.partition("?")
            if self._throttled(nested=True):
                status, text = 429, json.dumps(_quota().body())
            elif not path.startswith(f"/{api}/v1/"):
                error = ApiError(400, f"{path} is not part of {api}/v1")
                status, text = 400, json.dumps(error.body())
            elif method == "GET":
                status, raw = self._rendered_get(path, query)
                text = raw.decode()
            else:
                status, answer = self.handle(method, path, query, payload.encode())
                text = json.dumps(answer)
            out += [
                f"--{boundary}",
                "Content-Type: application/http",
                f"Content-ID: <response-{content_id}>",
                "",
                f"HTTP/1.1 {status} {'OK' if status < 300 else 'Error'}",
                "Content-Type: application/json; charset=UTF-8",
                "",
                text,
                "",
            ]
        out += [f"--{boundary}--", ""]
        return Response(
            "\r\n".join(out).encode(), media_type=f"multipart/mixed; boundary={boundary}"
        )


_SHARED: list[tuple[str, rsa.RSAPrivateKey]] = []


def _key_pair(*, fresh: bool) -> tuple[str, rsa.RSAPrivateKey]:
    """A service account's key id and RSA key, generated here (never stored)."""
    if fresh or not _SHARED:
        pair = (
            secrets.token_hex(20),
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
        )
        if fresh:
            return pair
        _SHARED.append(pair)
    return _SHARED[0]


def _quota() -> ApiError:
    return ApiError(
        429,
        "[quota/request_rate_too_high] Quota exceeded for quota metric 'Requests' and limit "
        "'Requests per minute' of service 'merchantapi.googleapis.com'.",
    )


def _price(value: Any, where: str, bad: Any) -> None:
    if not isinstance(value, dict):
        raise bad(f"[{where}] must be an object.")
    micros, currency = value.get("amountMicros"), value.get("currencyCode")
    if not isinstance(micros, str) or not micros.lstrip("-").isdigit():
        raise bad(f"[{where}.amountMicros] must be an int64 (as a string).")
    if int(micros) < 0:
        raise bad(f"[{where}] must not be negative.")
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        raise bad(f"[{where}.currencyCode] must be an ISO 4217 code.")


def _parts(text: str, boundary: str) -> list[tuple[str, str, str, str]]:
    """(content id, method, path with query, body) of each nested request."""
    found = []
    for raw in text.split(f"--{boundary}")[1:]:
        if raw.startswith("--"):
            break
        part = raw.replace("\r\n", "\n").lstrip("\n")
        head, _, nested = part.partition("\n\n")
        content_id = ""
        for line in head.splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() == "content-id":
                content_id = value.strip().strip("<>")
        request_line, _, rest = nested.partition("\n")
        method, target = request_line.split()[:2]
        _, _, payload = rest.partition("\n\n") if rest.strip() else ("", "", "")
        found.append((content_id, method, target, payload.strip()))
    return found


def micros(amount: str) -> str:
    """``"12.99"`` → ``"12990000"``."""
    whole, _, fraction = amount.partition(".")
    return str(int(whole) * 1_000_000 + int((fraction + "000000")[:6]))


def seed(
    emulator: GoogleMerchantEmulator,
    count: int,
    *,
    stores: Sequence[str] = (),
    on_sale_every: int = 7,
) -> list[str]:
    """``count`` products ``GM-00000``…, with GTINs, brands and prices (every
    ``on_sale_every``-th on sale with a window), and each store's quantity and price."""
    skus = []
    for n in range(count):
        sku = f"GM-{n:05d}"
        price = f"{10 + n % 90}.{(n * 37) % 100:02d}"
        attributes: dict[str, Any] = {
            "title": f"Artikel {n}",
            "description": f"Beschreibung {n}",
            "brand": "Acme" if n % 3 else "Globex",
            "gtins": [_ean13(n)],
            "price": {"amountMicros": micros(price), "currencyCode": "EUR"},
            "availability": "IN_STOCK" if n % 5 else "OUT_OF_STOCK",
        }
        if on_sale_every and n % on_sale_every == 3:
            sale = f"{int(price.split('.')[0]) - 1}.{price.split('.')[1]}"
            attributes["salePrice"] = {"amountMicros": micros(sale), "currencyCode": "EUR"}
            attributes["salePriceEffectiveDate"] = {
                "startTime": "2026-01-01T00:00:00Z",
                "endTime": "2036-12-31T23:00:00Z",
            }
        emulator.put(sku, attributes)
        for index, store in enumerate(stores):
            entry: dict[str, Any] = {
                "quantity": str((n + index * 3) % 12),
                "availability": "IN_STOCK",
            }
            if (n + index) % 2 == 0:  # half the stores state their own (equal) price
                entry["price"] = attributes["price"]
            emulator.put_store(sku, store, **entry)
        skus.append(sku)
    return skus


def _ean13(n: int) -> str:
    body = f"400{n:09d}"
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)
