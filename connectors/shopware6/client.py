"""The Shopware 6 Admin API as omnisync uses it: a client-credentials token and two endpoints.

An integration (Admin > Settings > System > Integrations) has an access key id and a secret;
``POST /api/oauth/token`` trades them for a Bearer token that lives ``expires_in`` seconds
(600 by default) and comes without a refresh token, so a new one is simply requested. The
token is obtained on first use, renewed shortly before it expires, and renewed once more when
the API answers 401 anyway (a token revoked or expired early: clock skew, a cache flush). The
secret and every token are registered with :mod:`omnisync.secrets`, so no message shows them.

Every request goes through the shared :class:`~omnisync.sdk.http.HttpClient`: retried under the
one policy on timeouts, 429 (the ``oauth`` rate limiter sends ``Retry-After``) and 5xx, and
classified otherwise.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx
from pydantic_core import from_json

from omnisync import secrets
from omnisync.errors import AuthError, ConnectorError
from omnisync.sdk.http import HttpClient, api_message

log = logging.getLogger(__name__)

TOKEN_PATH = "/api/oauth/token"
#: Renew this long before the token's announced expiry (at most a tenth of its lifetime).
RENEW_MARGIN = 60.0

CREDENTIALS_HINT = (
    "check options.client_id (the integration's access key id, SWIA...) and "
    "options.client_secret (its secret key, shown once when the integration was created; "
    "Admin > Settings > System > Integrations)"
)


class Shopware6Client:
    """Authenticated Admin API requests over an :class:`HttpClient`. Thread-safe: pages
    fetched in parallel share one token and renew it once."""

    def __init__(
        self,
        http: HttpClient,
        client_id: str,
        client_secret: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        secrets.register(client_secret)
        self.http = http
        self.client_id = client_id
        self._secret = client_secret
        #: Seconds since some fixed point; tests replace it to move time forward.
        self.clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        #: Tokens obtained so far (tests and benchmarks count renewals).
        self.tokens = 0

    @property
    def channel(self) -> str:
        return self.http.channel

    def close(self) -> None:
        """Close the connections (idempotent)."""
        self.http.close()

    # ------------------------------------------------------------ token

    def token(self) -> str:
        """A valid access token, requesting a new one when none is held or it is about to expire."""
        with self._lock:
            if self._token is None or self.clock() >= self._renew_at:
                self._token = self._request_token()
            return self._token

    def _request_token(self) -> str:
        body = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._secret,
        }
        response = self.http.post(TOKEN_PATH, json=body, ok=(400, 401))
        where = f"{self.channel}: POST {TOKEN_PATH}"
        if response.status_code in (400, 401):
            raise AuthError(
                f"Shopware refused the integration's credentials "
                f"(HTTP {response.status_code}: {secrets.mask(api_message(response))})",
                where=where,
                hint=CREDENTIALS_HINT,
            )
        data = parse_json(response, where)
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise ConnectorError(
                "the token response carries no access_token",
                where=where,
                hint="is options.url the shop's base URL (https://shop.example.com)?",
            )
        secrets.register(token)
        lifetime = float(data.get("expires_in") or 600)
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
            log.info(
                "%s: access token rejected (expired early?); requesting a new one", self.channel
            )
            self._forget(token)
        assert response is not None
        raise AuthError(
            f"Shopware rejected a freshly issued access token "
            f"(HTTP 401: {secrets.mask(api_message(response))})",
            where=f"{self.channel}: {method} {path}",
            hint="check that the integration still exists and that its role may read and "
            "write products (Admin > Settings > System > Integrations)",
        )

    def search(self, entity: str, criteria: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /api/search/{entity}`` with ``criteria``; the flat JSON answer."""
        return self.answer(entity, self.search_response(entity, criteria))

    def search_response(self, entity: str, criteria: Mapping[str, Any]) -> httpx.Response:
        """:meth:`search`'s request alone: the response, decoded later by :meth:`answer`
        (parallel page requests leave the decoding to the thread that consumes them)."""
        return self.request("POST", f"/api/search/{entity}", json=dict(criteria))

    def answer(self, entity: str, response: httpx.Response) -> dict[str, Any]:
        """The flat JSON answer of a search response."""
        path = f"/api/search/{entity}"
        data = parse_json(response, f"{self.channel}: POST {path}")
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise ConnectorError(
                "the search answer has no `data` list",
                where=f"{self.channel}: POST {path}",
                hint="omnisync sends `Accept: application/json`; a proxy may have changed it",
            )
        return data

    def sync(self, operations: list[dict[str, Any]]) -> httpx.Response:
        """``POST /api/_action/sync``; a 400 (the whole sync rejected) is returned, not raised."""
        return self.request("POST", "/api/_action/sync", json=operations, ok=(400,))


def parse_json(response: httpx.Response, where: str) -> Any:
    """The response body as JSON (numbers as Python floats, converted by the caller).

    A page of 500 products is some 300 kB: pydantic-core's parser (pydantic's own, so no new
    dependency) reads it in two thirds of the time :mod:`json` takes, to the same values
    (floats included). What it refuses but :mod:`json` accepts (a byte-order mark, UTF-16,
    a lone surrogate escape) goes to :mod:`json`."""
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
            hint="is options.url the shop's base URL (https://shop.example.com)?",
        ) from None


def errors_of(response: httpx.Response) -> list[dict[str, Any]]:
    """Shopware's JSON:API ``errors`` list of an error response (empty when it has none)."""
    try:
        body = response.json()
    except (json.JSONDecodeError, ValueError):
        return [{"detail": response.text[:300] or response.reason_phrase}]
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list):
        return [e for e in errors if isinstance(e, dict)]
    return [{"detail": api_message(response)}]
