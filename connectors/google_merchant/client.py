"""The Merchant API as omnisync uses it: a service account's token, one paged list, HTTP batches.

* ``GET /products/v1/accounts/{account}/products?pageSize=&pageToken=``: the processed
  products (what Merchant Center shows, after rules and supplemental sources). At most 1000
  per page (more is cut to 1000; 25 without ``pageSize``); ``nextPageToken`` names the next
  page and is absent on the last. A page may hold fewer products than asked for, so only the
  token says whether more follow — pages come one after another.
* ``POST /batch/{sub-api}/v1``: Google's HTTP batch, a ``multipart/mixed`` body whose parts
  (``Content-Type: application/http``, each with a ``Content-ID``) are nested requests
  without the host; the answer is ``multipart/mixed`` too, one part per nested request with
  ``Content-ID: <response-…>`` and a nested HTTP response. Each nested request counts against
  the quota as a request of its own; Google advises at most 100 per batch (1000 is the hard
  limit). omnisync sends product reads and writes to ``batch/products/v1`` and local
  inventory reads and inserts to ``batch/inventories/v1``.

Errors are Google's ``{"error": {"code", "message", "status", "details"}}``. Quota errors are
429 ``RESOURCE_EXHAUSTED`` (per-minute ``quota/request_rate_too_high``, daily
``quota/daily_limit_exceeded``): the whole request is retried by the shared
:class:`~omnisync.sdk.http.HttpClient` (backoff, ``Retry-After``), and nested requests that
came back 429 or 5xx are sent again in a smaller batch under the same policy, so one
throttled product does not fail.

The access token is requested on first use (:mod:`.auth`), renewed a minute before its
``expires_in`` runs out and once more when Google answers 401 anyway.
"""

from __future__ import annotations

import json
import logging
import secrets as random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from pydantic_core import from_json

from omnisync import secrets
from omnisync.errors import AuthError, ConnectorError, TransientError
from omnisync.sdk.http import HttpClient, api_message

from .auth import GRANT_TYPE, KEY_HINT, ServiceAccountKey

log = logging.getLogger(__name__)

#: Renew this long before the token's announced expiry (at most a tenth of its lifetime).
RENEW_MARGIN = 60.0
#: Nested statuses worth sending again: quota (429) and Google's own trouble (5xx).
RETRIABLE = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Nested:
    """One request of an HTTP batch: method, path with query (no host), JSON body or None."""

    method: str
    path: str
    body: Any = None


@dataclass(frozen=True)
class Answer:
    """One nested response: its status and JSON body (None when it has none)."""

    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return self.status < 300

    def message(self) -> str:
        """Google's error message and status: ``price: missing currency (INVALID_ARGUMENT)``."""
        return error_text(self.body, self.status)


def error_text(body: Any, status: int) -> str:
    """Google's error body as a message: its ``message`` and ``status``."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or "rejected")
        code = error.get("status")
        return secrets.mask(f"{message} ({code})" if code else message)
    if isinstance(error, str):  # the token endpoint's OAuth form
        described = body.get("error_description") if isinstance(body, dict) else None
        return secrets.mask(f"{error}: {described}" if described else error)
    return f"HTTP {status}"


class MerchantClient:
    """Authenticated Merchant API requests over an :class:`HttpClient`. Thread-safe: pages
    and batches fetched in parallel share one token and renew it once."""

    def __init__(
        self,
        http: HttpClient,
        key: ServiceAccountKey,
        account: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http = http
        self.key = key
        self.account = account
        #: Seconds since some fixed point, for renewals; tests replace it to move time forward.
        #: (The assertion's iat/exp are the wall clock's: Google checks them.)
        self.clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        #: Tokens obtained so far (tests and benchmarks count renewals).
        self.tokens = 0
        #: HTTP batch requests sent, by sub-API (benchmarks count writes).
        self.batches: dict[str, int] = {}

    @property
    def channel(self) -> str:
        return self.http.channel

    @property
    def parent(self) -> str:
        return f"accounts/{self.account}"

    def close(self) -> None:
        self.http.close()

    # ------------------------------------------------------------ token

    def token(self) -> str:
        """A valid access token, requested anew when none is held or it is about to expire."""
        with self._lock:
            if self._token is None or self.clock() >= self._renew_at:
                self._token = self._request_token()
            return self._token

    def _request_token(self) -> str:
        uri = self.key.token_uri
        where = f"{self.channel}: POST {uri}"
        form = {"grant_type": GRANT_TYPE, "assertion": self.key.assertion(time.time())}
        response = self.http.post(uri, data=form, ok=(400, 401, 403))
        if response.status_code in (400, 401, 403):
            raise AuthError(
                f"Google refused the service account's token request "
                f"(HTTP {response.status_code}: {error_text(_json(response), response.status_code)})",
                where=where,
                hint=KEY_HINT,
            )
        data = _json(response)
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise ConnectorError(
                "the token answer carries no access_token",
                where=where,
                hint="is token_uri in the key file Google's (https://oauth2.googleapis.com/token)?",
            )
        secrets.register(token)
        lifetime = float(data.get("expires_in") or 3600)
        self._renew_at = self.clock() + lifetime - min(RENEW_MARGIN, lifetime / 10)
        self.tokens += 1
        log.debug("%s: new access token, valid %.0f s", self.channel, lifetime)
        return token

    def _forget(self, token: str) -> None:
        with self._lock:
            if self._token == token:  # another thread may have renewed it already
                self._token = None

    # ------------------------------------------------------------ requests

    def request(
        self,
        method: str,
        path: str,
        *,
        ok: Iterable[int] = (),
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send with the Bearer token; on 401 renew the token once and resend."""
        accepted = {*ok, 401}
        response: httpx.Response | None = None
        for _ in range(2):
            token = self.token()
            response = self.http.request(
                method,
                path,
                ok=accepted,
                headers={**(headers or {}), "Authorization": f"Bearer {token}"},
                **kwargs,
            )
            if response.status_code != 401:
                return response
            log.info("%s: access token rejected (expired?); requesting a new one", self.channel)
            self._forget(token)
        assert response is not None
        raise AuthError(
            f"Google rejected a freshly issued access token "
            f"(HTTP 401: {secrets.mask(api_message(response))})",
            where=f"{self.channel}: {method} {path}",
            hint="add the service account's email as a user of the Merchant Center account "
            "(Settings > People and access)",
        )

    def list_products(self, page_size: int, page_token: str | None = None) -> dict[str, Any]:
        """One page of ``products.list``: ``{"products": [...], "nextPageToken": ...}``."""
        path = f"/products/v1/{self.parent}/products"
        params: dict[str, Any] = {"pageSize": page_size}
        if page_token:
            params["pageToken"] = page_token
        response = self.request("GET", path, params=params)
        data = _json(response)
        if not isinstance(data, dict):
            raise ConnectorError(
                "the products list is not a JSON object",
                where=f"{self.channel}: GET {path}",
                hint="is options.url the Merchant API (https://merchantapi.googleapis.com)?",
            )
        return data

    # ------------------------------------------------------------ HTTP batches

    def batch(self, api: str, nested: Sequence[Nested]) -> list[Answer]:
        """Send ``nested`` as one HTTP batch to ``/batch/{api}/v1``; one answer per request,
        in order. Nested 429/5xx answers are sent again (in a batch of their own) under the
        client's retry policy; what still fails is returned as it came."""
        answers: list[Answer | None] = [None] * len(nested)
        todo = list(range(len(nested)))
        attempt = 0
        while True:
            got = self._batch_once(api, [nested[i] for i in todo])
            for index, answer in zip(todo, got, strict=True):
                answers[index] = answer
            todo = [i for i in todo if answers[i].status in RETRIABLE]  # type: ignore[union-attr]
            attempt += 1
            if not todo or attempt >= self.http.retry.attempts:
                break
            wait = min(self.http.retry.max_wait, 0.25 * 2 ** (attempt - 1))
            log.warning(
                "%s: %d nested request(s) throttled or failed (HTTP %s); again in %.2f s",
                self.channel,
                len(todo),
                answers[todo[0]].status,  # type: ignore[union-attr]
                wait,
            )
            self.http.retry.retries += 1
            time.sleep(wait)
        return [a for a in answers if a is not None]

    def _batch_once(self, api: str, nested: Sequence[Nested]) -> list[Answer]:
        path = f"/batch/{api}/v1"
        boundary = f"batch_{random.token_hex(12)}"
        body = encode_batch(nested, boundary)
        self.batches[api] = self.batches.get(api, 0) + 1
        response = self.request(
            "POST",
            path,
            content=body,
            headers={"Content-Type": f"multipart/mixed; boundary={boundary}"},
        )
        where = f"{self.channel}: POST {path}"
        try:
            return decode_batch(response, len(nested))
        except ValueError as exc:
            raise TransientError(f"unreadable batch answer: {exc}", where=where) from None


def _json(response: httpx.Response) -> Any:
    """The body as JSON (None when it is none). pydantic-core's parser (pydantic's own) reads
    a page of 1000 products in two thirds of :mod:`json`'s time, to the same values."""
    try:
        return from_json(response.content)
    except ValueError:
        pass
    try:
        return response.json()
    except (json.JSONDecodeError, ValueError):
        return None


def encode_batch(nested: Sequence[Nested], boundary: str) -> bytes:
    """The ``multipart/mixed`` body of an HTTP batch: part ``item-{i}`` per request."""
    lines: list[str] = []
    for index, request in enumerate(nested):
        lines += [
            f"--{boundary}",
            "Content-Type: application/http",
            f"Content-ID: <item-{index}>",
            "",
            f"{request.method} {request.path} HTTP/1.1",
        ]
        if request.body is not None:
            lines += ["Content-Type: application/json", "", json.dumps(request.body)]
        else:
            lines.append("")
        lines.append("")
    lines += [f"--{boundary}--", ""]
    return "\r\n".join(lines).encode("utf-8")


def decode_batch(response: httpx.Response, expected: int) -> list[Answer]:
    """The nested answers of a batch response, in request order (matched by Content-ID:
    Google may answer in any order)."""
    content_type = response.headers.get("content-type", "")
    boundary = next(
        (
            p.split("=", 1)[1].strip().strip('"')
            for p in content_type.split(";")
            if p.strip().startswith("boundary=")
        ),
        None,
    )
    if not content_type.startswith("multipart/mixed") or not boundary:
        raise ValueError(f"expected multipart/mixed, got {content_type or 'no content type'}")
    text = response.content.decode("utf-8")
    found: dict[int, Answer] = {}
    for part in text.split(f"--{boundary}")[1:]:
        if part.startswith("--"):
            break
        head, _, nested = _split_head(part.lstrip("\r\n"))
        content_id = _header(head, "content-id")
        index = _item_index(content_id)
        status_line, _, rest = nested.partition("\n")
        pieces = status_line.split()
        if len(pieces) < 2 or not pieces[1].isdigit():
            raise ValueError(f"nested response without a status line ({status_line[:40]!r})")
        _, _, payload = _split_head(rest)
        payload = payload.strip()
        try:
            body = from_json(payload) if payload else None
        except ValueError:
            body = {"error": {"message": payload[:300]}}
        if index is None:
            index = len(found)
        found[index] = Answer(int(pieces[1]), body)
    if sorted(found) != list(range(expected)):
        raise ValueError(f"{len(found)} nested answers for {expected} requests")
    return [found[i] for i in range(expected)]


def _split_head(text: str) -> tuple[str, str, str]:
    """(headers, separator, rest) of an HTTP message, CRLF or LF line ends."""
    for separator in ("\r\n\r\n", "\n\n"):
        if separator in text:
            head, _, rest = text.partition(separator)
            return head, separator, rest
    return text, "", ""


def _header(head: str, name: str) -> str | None:
    for line in head.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == name:
            return value.strip()
    return None


def _item_index(content_id: str | None) -> int | None:
    """``<response-item-3>`` → 3."""
    if not content_id:
        return None
    tail = content_id.strip("<>").rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


def chunked(items: Sequence[Any], size: int) -> list[list[Any]]:
    """``items`` in lists of ``size``."""
    return [list(items[start : start + size]) for start in range(0, len(items), size)]


def query(path: str, **params: Any) -> str:
    """``path?key=value`` for a nested request (values URL-encoded; None left out)."""
    kept = {k: v for k, v in params.items() if v is not None}
    return f"{path}?{urlencode(kept)}" if kept else path
