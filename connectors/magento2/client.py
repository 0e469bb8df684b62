"""The Magento 2 / Adobe Commerce REST API as omnisync uses it: tokens, searchCriteria, JSON.

**Tokens.** Either an integration's access token, sent as ``Authorization: Bearer`` (System >
Extensions > Integrations; since 2.4.4 Magento accepts it as a bearer token only with *Allow
OAuth Access Tokens to be used as standalone Bearer tokens* on), or an admin user's name and
password, traded for an admin token by ``POST /rest/V1/integration/admin/token`` (the answer
is the token as a JSON string). An admin token lives four hours by default (Stores >
Configuration > Services > OAuth > Access Token Expiration; ``token_lifetime``): it is renewed
shortly before that, and once more when the API answers 401 anyway (a token purged early by
the hourly cron, a changed setting). An integration token cannot be renewed: a 401 is an
error at once. Passwords and tokens are registered with :mod:`omnisync.secrets`.

**Searches.** Magento's list endpoints (``GET /V1/products``, ``/V1/inventory/source-items``)
take a ``searchCriteria`` in the query string: filter groups (the filters within a group are
ORed, the groups ANDed), ``pageSize``, ``currentPage`` (1-based) and ``sortOrders``; the answer
is ``{"items": [...], "search_criteria": {...}, "total_count": N}``. A list call without
``searchCriteria`` is a 400. Paging follows ``total_count``, never an empty page: a
``currentPage`` past the end answers the last page again (Magento's collections clamp it).
``fields`` trims the answer to what omnisync reads.

Every request goes through the shared :class:`~omnisync.sdk.http.HttpClient` (retries on
timeouts, 429 and 5xx; Magento's templated messages rendered with their parameters).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from pydantic_core import from_json

from omnisync import secrets
from omnisync.errors import AuthError, ConnectorError
from omnisync.sdk.http import HttpClient, HttpError, api_message, templated

log = logging.getLogger(__name__)

ADMIN_TOKEN_PATH = "/rest/V1/integration/admin/token"
#: Renew an admin token this long before it expires (at most a tenth of its lifetime).
RENEW_MARGIN = 60.0

TOKEN_HINT = (
    "check options.token: an integration's access token (System > Extensions > Integrations, "
    "with access to the catalog and inventory resources); since Magento 2.4.4 a bearer "
    "integration token also needs Stores > Configuration > Services > OAuth > Consumer "
    "Settings > Allow OAuth Access Tokens to be used as standalone Bearer tokens"
)
ADMIN_HINT = (
    "check options.username and options.password (an admin user whose role may read and "
    "write products and sources); with two-factor authentication on, admin tokens need the "
    "/V1/tfa endpoints: use an integration token (options.token) instead"
)


@dataclass(frozen=True)
class Filter:
    """One searchCriteria filter: ``field`` ``condition`` ``value`` (``in`` takes a
    comma-separated list)."""

    field: str
    value: str
    condition: str = "eq"


@dataclass(frozen=True)
class Criteria:
    """A searchCriteria: filter groups (ORed within, ANDed across), a page and a sort order."""

    groups: tuple[tuple[Filter, ...], ...] = ()
    page_size: int | None = None
    page: int = 1
    sort: tuple[tuple[str, str], ...] = ()

    def at(self, page: int, size: int | None = None) -> Criteria:
        return Criteria(self.groups, size if size is not None else self.page_size, page, self.sort)

    def params(self) -> list[tuple[str, str]]:
        """The query parameters, in Magento's bracket notation."""
        out: list[tuple[str, str]] = []
        for g, group in enumerate(self.groups):
            for f, item in enumerate(group):
                at = f"searchCriteria[filter_groups][{g}][filters][{f}]"
                out += [
                    (f"{at}[field]", item.field),
                    (f"{at}[value]", item.value),
                    (f"{at}[condition_type]", item.condition),
                ]
        for n, (field, direction) in enumerate(self.sort):
            out += [
                (f"searchCriteria[sortOrders][{n}][field]", field),
                (f"searchCriteria[sortOrders][{n}][direction]", direction),
            ]
        if self.page_size is not None:
            out += [
                ("searchCriteria[pageSize]", str(self.page_size)),
                ("searchCriteria[currentPage]", str(self.page)),
            ]
        # An empty searchCriteria still has to be there: without it Magento answers 400.
        return out or [("searchCriteria", "")]


@dataclass(frozen=True)
class Listing:
    """One list endpoint to page through, and what its items are (the connector's word:
    ``products``, ``sources``, ...)."""

    kind: str
    path: str
    criteria: Criteria
    fields: str


def one_of(field: str, values: Iterable[str]) -> tuple[Filter, ...]:
    """A filter group matching ``field`` against any of ``values``: one ``in`` filter, and an
    ``eq`` filter for each value holding a comma (``in`` would split it)."""
    plain = sorted({v for v in values if "," not in v})
    group = [Filter(field, ",".join(plain), "in")] if plain else []
    group += [Filter(field, v) for v in sorted({v for v in values if "," in v})]
    return tuple(group)


class MagentoClient:
    """Authenticated REST requests over an :class:`HttpClient`. Thread-safe: pages fetched in
    parallel share one token and renew it once."""

    def __init__(
        self,
        http: HttpClient,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        token_lifetime: float = 14400.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for secret in (token, password):
            if secret:
                secrets.register(secret)
        self.http = http
        self._fixed = token
        self.username = username
        self._password = password
        self.token_lifetime = token_lifetime
        #: Seconds since some fixed point; tests replace it to move time forward.
        self.clock = clock
        self._lock = threading.Lock()
        self._token: str | None = token
        self._renew_at = float("inf")
        #: Admin tokens obtained so far (tests and benchmarks count renewals).
        self.tokens = 0

    @property
    def channel(self) -> str:
        return self.http.channel

    @property
    def hint(self) -> str:
        return TOKEN_HINT if self._fixed else ADMIN_HINT

    def close(self) -> None:
        """Close the connections (idempotent)."""
        self.http.close()

    # ------------------------------------------------------------ tokens

    def token(self) -> str:
        """The bearer token: the integration's, or a valid admin token (requested when none
        is held or it is about to expire)."""
        with self._lock:
            if self._token is None or (not self._fixed and self.clock() >= self._renew_at):
                self._token = self._admin_token()
            return self._token

    def _admin_token(self) -> str:
        where = f"{self.channel}: POST {ADMIN_TOKEN_PATH}"
        body = {"username": self.username, "password": self._password}
        response = self.http.post(ADMIN_TOKEN_PATH, json=body, ok=(400, 401))
        if response.status_code in (400, 401):
            raise AuthError(
                f"Magento refused the admin user's name and password "
                f"(HTTP {response.status_code}: {secrets.mask(api_message(response))})",
                where=where,
                hint=ADMIN_HINT,
            )
        token = parse_json(response, where)
        if not isinstance(token, str) or not token:
            raise ConnectorError(
                "the admin token answer is not a token (a JSON string)",
                where=where,
                hint="is options.url the store's base URL (https://shop.example.com)?",
            )
        secrets.register(token)
        lifetime = self.token_lifetime
        self._renew_at = self.clock() + lifetime - min(RENEW_MARGIN, lifetime / 10)
        self.tokens += 1
        log.debug("%s: new admin token, valid %.0f s", self.channel, lifetime)
        return token

    def _forget(self, token: str) -> None:
        with self._lock:
            if self._token == token:  # another thread may have renewed it already
                self._token = None

    # ------------------------------------------------------------ requests

    def request(
        self, method: str, path: str, *, ok: Iterable[int] = (), **kwargs: Any
    ) -> httpx.Response:
        """Send with the bearer token. An admin token the API rejects (401) is renewed once
        and the request sent again; a rejected integration token is an error at once."""
        accepted = {*ok, 401}
        response: httpx.Response | None = None
        for attempt in range(1 if self._fixed else 2):
            token = self.token()
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            try:
                response = self.http.request(method, path, ok=accepted, headers=headers, **kwargs)
            except HttpError as exc:
                raise self._hinted(exc, path) from None
            if response.status_code != 401:
                return response
            if not self._fixed and attempt == 0:
                log.info(
                    "%s: admin token rejected (expired early?); requesting a new one", self.channel
                )
                self._forget(token)
        assert response is not None
        raise AuthError(
            f"Magento rejected the {'access' if self._fixed else 'freshly issued admin'} token "
            f"(HTTP 401: {secrets.mask(api_message(response))})",
            where=f"{self.channel}: {method} {path}",
            hint=self.hint,
        )

    def _hinted(self, exc: HttpError, path: str) -> HttpError:
        """The HTTP layer's error with what to check for Magento's usual causes."""
        hint = exc.hint
        if exc.status == 404 and "match any route" in exc.message:
            if "/inventory/" in path:
                hint = (
                    "this Magento has no inventory (MSI) endpoints: set options.msi: false to "
                    "read and write the single legacy stock"
                )
            else:
                hint = (
                    "check options.url (the store's base URL; /rest is added) and "
                    "options.store_code (a store view code such as default)"
                )
        return HttpError(exc.message, status=exc.status, body=exc.body, where=exc.where, hint=hint)

    def get(self, path: str, params: Sequence[tuple[str, str]] | None = None) -> Any:
        """GET ``path`` and return its JSON."""
        response = self.request("GET", path, params=list(params or ()))
        return parse_json(response, f"{self.channel}: GET {path}")

    def search_response(
        self, path: str, criteria: Criteria, fields: str | None = None
    ) -> httpx.Response:
        """A list request; the response, decoded later by :meth:`answer` (parallel page
        requests leave the decoding to the thread that consumes them)."""
        params = criteria.params()
        if fields:
            params.append(("fields", fields))
        return self.request("GET", path, params=params)

    def answer(self, path: str, response: httpx.Response) -> dict[str, Any]:
        """The ``items`` and ``total_count`` of a list response."""
        where = f"{self.channel}: GET {path}"
        data = parse_json(response, where)
        if not isinstance(data, dict):
            raise ConnectorError(
                "the search answer is not an object with `items`",
                where=where,
                hint="is options.url the store's base URL (https://shop.example.com)?",
            )
        items = data.get("items")
        data["items"] = [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []
        try:
            data["total_count"] = int(data.get("total_count") or 0)
        except (TypeError, ValueError):
            data["total_count"] = len(data["items"])
        return data

    def search(self, path: str, criteria: Criteria, fields: str | None = None) -> dict[str, Any]:
        """One page of a list endpoint: ``items`` and ``total_count``."""
        return self.answer(path, self.search_response(path, criteria, fields))

    def gather(
        self, listings: Sequence[Listing], alongside: Sequence[Callable[[], Any]] = ()
    ) -> Iterator[tuple[Listing, int, list[dict[str, Any]]]]:
        """Every page of every listing, in the order they arrive, with the ``alongside`` jobs
        (lookups) run in the same pool. The pool's ``concurrency`` threads only send
        requests: the first pages and the jobs go first, a listing's other pages as soon as
        its first page has told the total (``total_count``); this thread decodes the answers
        meanwhile, so a worker's next request never waits for a decoding."""
        self.token()  # once, before the threads would ask together
        pool = ThreadPoolExecutor(
            max_workers=self.http.concurrency, thread_name_prefix=f"omnisync-{self.channel}"
        )
        pending: dict[Future[Any], tuple[Listing | None, int]] = {}

        def submit(listing: Listing, page: int) -> None:
            criteria = listing.criteria.at(page)
            future = pool.submit(self.search_response, listing.path, criteria, listing.fields)
            pending[future] = (listing, page)

        try:
            for first in listings:
                submit(first, 1)
            for job in alongside:
                pending[pool.submit(job)] = (None, 0)
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    source, page = pending.pop(future)
                    result = future.result()
                    if source is None:
                        continue
                    data = self.answer(source.path, result)
                    size = source.criteria.page_size
                    if page == 1 and size:
                        for number in range(2, math.ceil(data["total_count"] / size) + 1):
                            submit(source, number)
                    yield source, page, data["items"]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def sku_path(sku: str) -> str:
    """A SKU as a path segment (SKUs may hold slashes, spaces, ...)."""
    return quote(sku, safe="")


def parse_json(response: httpx.Response, where: str) -> Any:
    """The response body as JSON (numbers as Python floats; :func:`.records.amount` turns them
    into exact decimals). pydantic-core's parser reads a page in two thirds of the time
    :mod:`json` takes; what it refuses (a byte-order mark, ...) goes to :mod:`json`."""
    try:
        return from_json(response.content)
    except ValueError:
        pass
    try:
        return response.json()
    except (json.JSONDecodeError, ValueError):
        raise ConnectorError(
            f"expected JSON, got {response.headers.get('content-type', 'no content type')}",
            where=where,
            hint="is options.url the store's base URL (https://shop.example.com)?",
        ) from None


def messages(body: Any) -> list[str]:
    """Magento's messages in an error body, each with its parameters put in: the top-level
    ``message`` and those of an ``errors`` list (validation failures)."""
    found: list[str] = []
    if not isinstance(body, Mapping):
        return [str(body)[:300]] if body else []
    for error in body.get("errors") or ():
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            found.append(templated(error["message"], error.get("parameters")))
    if isinstance(body.get("message"), str) and (
        not found or body["message"] != "Validation Failed"
    ):
        found.insert(0, templated(body["message"], body.get("parameters")))
    return found
