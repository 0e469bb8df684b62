"""The WooCommerce REST API v3 (``/wp-json/wc/v3``) on omnisync's HTTP layer.

Authentication is HTTP Basic with the consumer key as user and the consumer secret as
password (``auth: basic``), or the same two as query parameters for servers that strip the
``Authorization`` header (``auth: query``). Both values are registered as secrets, so no URL,
log line or error shows them. Lists are paged by number: page 1 tells the total in
``X-WP-TotalPages``, and pages 2..N are then fetched in parallel (``HttpClient.map``, at most
``concurrency`` in flight). Every request is retried under the one policy (timeouts, dropped
connections, 429, 5xx); a rejected key becomes an :class:`~omnisync.errors.AuthError` saying
which options to check.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from omnisync import secrets
from omnisync.errors import AuthError, ConnectorError
from omnisync.sdk.http import HttpClient, HttpError, HttpOptions

#: Where the REST API v3 lives below the shop's URL (pretty permalinks).
API_PATH = "/wp-json/wc/v3"


def api_url(url: str) -> str:
    """The API base for a shop URL; a URL that already ends in the API path is kept."""
    url = url.rstrip("/")
    return url if url.endswith(API_PATH) else url + API_PATH


class QueryAuth(httpx.Auth):
    """Consumer key and secret as query parameters (``auth: query``)."""

    def __init__(self, key: str, secret: str) -> None:
        self._params = {"consumer_key": key, "consumer_secret": secret}

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.url = request.url.copy_merge_params(self._params)
        yield request


@dataclass(frozen=True)
class Page:
    """One page of a list: its objects, the totals the headers announce, where it came from."""

    items: list[dict[str, Any]]
    #: ``X-WP-Total`` / ``X-WP-TotalPages``; None when a proxy stripped the headers.
    total: int | None
    total_pages: int | None
    origin: str


class WooClient:
    """Requests to one shop's REST API, with WooCommerce's errors made actionable.

    ``options`` are the HTTP options (URL, timeouts, retries); ``key`` and ``secret`` the REST
    API key, sent as ``auth`` says; ``per_page`` the objects asked for per page."""

    def __init__(
        self,
        channel: str,
        options: HttpOptions,
        *,
        key: str,
        secret: str,
        auth: Literal["basic", "query"],
        per_page: int,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        secrets.register(key)
        secrets.register(secret)
        self.channel = channel
        self.per_page = per_page
        self.base = api_url(options.url)
        login: httpx.Auth = (
            httpx.BasicAuth(key, secret) if auth == "basic" else QueryAuth(key, secret)
        )
        self.http = HttpClient.from_options(
            channel,
            options.model_copy(update={"url": self.base}),
            transport=transport,
            auth=login,
            headers={"Accept": "application/json", "User-Agent": "omnisync"},
        )
        plain_http = httpx.URL(self.base).scheme == "http"
        self._auth_hint = (
            "check options.consumer_key and options.consumer_secret: a WooCommerce REST API "
            "key (WooCommerce → Settings → Advanced → REST API), Read/Write for pushes"
            + (
                "; over http WooCommerce takes keys only as OAuth 1.0a signatures: use https"
                if plain_http
                else ""
            )
            + (
                "; if the server strips the Authorization header, set options.auth: query"
                if auth == "basic"
                else ""
            )
        )

    @property
    def requests(self) -> int:
        """Requests sent so far, retries included."""
        return self.http.requests

    def close(self) -> None:
        self.http.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Give the HTTP layer's errors WooCommerce's hints."""
        try:
            yield
        except AuthError as exc:
            raise AuthError(exc.message, where=exc.where, hint=self._auth_hint) from None
        except HttpError as exc:
            if exc.status == 404 and _code(exc.body) == "rest_no_route":
                raise HttpError(
                    exc.message,
                    status=exc.status,
                    body=exc.body,
                    where=exc.where,
                    hint=f"check options.url: the WooCommerce REST API should answer at "
                    f"{secrets.mask(self.base)} (WooCommerce active, pretty permalinks on)",
                ) from None
            raise

    def _json(self, response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except (json.JSONDecodeError, ValueError):
            raise ConnectorError(
                f"{what} did not return JSON ({response.headers.get('content-type', 'no type')})",
                where=self.channel,
                hint="a security plugin, a maintenance page or a wrong options.url answers "
                f"instead of the REST API at {secrets.mask(self.base)}",
            ) from None

    # ------------------------------------------------------------ reading

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET ``path`` (below the API base) and return its JSON."""
        with self._errors():
            response = self.http.get(path, params=params or {})
        return self._json(response, f"GET /{path}")

    def page(self, path: str, params: dict[str, Any], number: int) -> Page:
        """Page ``number`` (1-based) of a list."""
        query = {**params, "page": number, "per_page": self.per_page}
        with self._errors():
            response = self.http.get(path, params=query)
        origin = f"GET /{path}?page={number}"
        body = self._json(response, origin)
        if not isinstance(body, list):
            raise ConnectorError(
                f"{origin} returned {type(body).__name__}, not a list of objects",
                where=self.channel,
                hint=f"check options.url ({secrets.mask(self.base)})",
            )
        return Page(
            [item for item in body if isinstance(item, dict)],
            _header_int(response, "X-WP-Total"),
            _header_int(response, "X-WP-TotalPages"),
            origin,
        )

    def pages(self, path: str, params: dict[str, Any], *, parallel: bool = True) -> Iterator[Page]:
        """Every page of a list, in order: page 1, then 2..N in parallel (``parallel``)."""
        first = self.page(path, params, 1)
        yield first
        if first.total_pages is None:
            # No totals (a proxy dropped the headers): follow pages until a short one.
            number, last = 1, first
            while len(last.items) >= self.per_page:
                number += 1
                last = self.page(path, params, number)
                yield last
            return
        rest = range(2, first.total_pages + 1)
        if parallel:
            yield from self.http.map(lambda n: self.page(path, params, n), rest)
        else:
            for number in rest:
                yield self.page(path, params, number)

    def items(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Every object of a (usually one-page) list, pages fetched one after another."""
        return [item for page in self.pages(path, params, parallel=False) for item in page.items]

    def currency(self) -> str:
        """The store currency: ``woocommerce_currency`` in the general settings, or the
        current currency where the key may not read settings."""
        try:
            settings = self.get("settings/general")
        except HttpError:
            settings = None
        except AuthError as exc:
            if "HTTP 401" in exc.message:  # the key itself is wrong; the fallback would too
                raise
            settings = None
        for setting in settings if isinstance(settings, list) else []:
            if isinstance(setting, dict) and setting.get("id") == "woocommerce_currency":
                return _currency_code(setting.get("value"), self.channel)
        try:
            current = self.get("data/currencies/current")
        except HttpError as exc:
            raise ConnectorError(
                f"cannot read the store currency ({exc.message})",
                where=self.channel,
                hint="set options.currency (e.g. EUR)",
            ) from None
        code = current.get("code") if isinstance(current, dict) else None
        return _currency_code(code, self.channel)

    # ------------------------------------------------------------ writing

    def batch(self, path: str, body: dict[str, list[Any]]) -> dict[str, Any]:
        """POST a batch; the reply mirrors ``create``/``update``/``delete``, one entry per item."""
        with self._errors():
            response = self.http.post(path, json=body)
        reply = self._json(response, f"POST /{path}")
        if not isinstance(reply, dict):
            raise ConnectorError(
                f"POST /{path} returned {type(reply).__name__}, not a batch reply",
                where=self.channel,
            )
        return reply


def _header_int(response: httpx.Response, name: str) -> int | None:
    value = response.headers.get(name, "").strip()
    return int(value) if value.isdigit() else None


def _code(body: Any) -> str | None:
    return body.get("code") if isinstance(body, dict) else None


def _currency_code(value: Any, channel: str) -> str:
    code = str(value or "").strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise ConnectorError(
            f"the shop reports the currency {value!r}, not an ISO 4217 code",
            where=channel,
            hint="set options.currency (e.g. EUR)",
        )
    return code


def item_error(item: Any) -> str | None:
    """WooCommerce's message for a failed batch item (``{"id", "error": {code, message}}``)."""
    if not isinstance(item, dict) or not isinstance(item.get("error"), dict):
        return None
    error = item["error"]
    message = str(error.get("message") or "rejected")
    code = error.get("code")
    return secrets.mask(f"{message} ({code})" if code else message)
