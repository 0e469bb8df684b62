"""The HTTP side of the Medusa connector: authentication, decoding, paging.

Two ways in, as Medusa v2 offers them to a server-to-server client:

* a **secret API key** (``sk_...``), sent as HTTP Basic with the key as user name. Medusa
  hash-checks it on every request (~60 ms each);
* **email and password**: ``POST /auth/user/emailpass`` answers a JWT that is sent as a
  Bearer token. :class:`JwtLogin` logs in on first use, renews the token shortly before it
  expires and once more when the API answers 401 to a token it had accepted (the server was
  restarted with a new secret, the token was revoked).

Bodies are decoded with ``Decimal`` for every non-integer number: Medusa sends prices in major
units as JSON numbers (``24.99``), which must not pass through a binary float.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Generator
from decimal import Decimal
from typing import Any

import httpx

from omnisync import secrets
from omnisync.errors import AuthError, ConnectorError, TransientError
from omnisync.sdk.http import HttpClient, api_message

#: Renew a JWT this many seconds before it expires.
RENEW_BEFORE = 60.0


def decode(response: httpx.Response, where: str) -> Any:
    """The JSON body, with ``Decimal`` for non-integer numbers."""
    try:
        return json.loads(response.content, parse_float=Decimal)
    except ValueError as exc:
        raise ConnectorError(
            f"the API answered HTTP {response.status_code} with a body that is not JSON "
            f"({response.text[:120]!r})",
            where=where,
            hint="check the channel's `url`: it should be the Medusa server's base URL",
        ) from exc


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (seconds since the epoch), or None when it has none."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, KeyError, TypeError, ValueError):
        return None


class JwtLogin(httpx.Auth):
    """Bearer auth with a JWT from ``POST /auth/user/emailpass``, renewed when it expires."""

    requires_response_body = True

    def __init__(self, base_url: str, email: str, password: str, channel: str) -> None:
        self.login_url = base_url.rstrip("/") + "/auth/user/emailpass"
        self.email = email
        self.password = password
        self.channel = channel
        self._token: str | None = None
        self._expires: float | None = None
        self._lock = threading.Lock()
        #: Logins made, for tests.
        self.logins = 0

    def _valid(self) -> str | None:
        with self._lock:
            if self._token is None:
                return None
            if self._expires is not None and time.time() > self._expires - RENEW_BEFORE:
                return None
            return self._token

    def _login(self) -> Generator[httpx.Request, httpx.Response, str]:
        response = yield httpx.Request(
            "POST", self.login_url, json={"email": self.email, "password": self.password}
        )
        where = f"{self.channel}: POST {self.login_url}"
        status = response.status_code
        if status in (400, 401, 403):
            raise AuthError(
                f"Medusa refused the login of {self.email!r} "
                f"(HTTP {status}: {secrets.mask(api_message(response))})",
                where=where,
                hint="check the channel's `email` and `password` options (an admin user of "
                "this Medusa server), or use a secret `api_key`",
            )
        if status == 429 or status >= 500:
            raise TransientError(f"login failed with HTTP {status}", where=where)
        token = decode(response, where).get("token") if status < 300 else None
        if not isinstance(token, str) or not token:
            raise AuthError(
                f"the login answered HTTP {status} without a token",
                where=where,
                hint="is `url` the Medusa server (not the storefront or the admin dashboard)?",
            )
        secrets.register(token)
        with self._lock:
            self._token = token
            self._expires = jwt_expiry(token)
            self.logins += 1
        return token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._valid()
        fresh = token is None
        if token is None:
            token = yield from self._login()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401 and not fresh:
            # A token the server accepted before: renew it once (restart, revocation).
            with self._lock:
                self._token = None
            token = yield from self._login()
            request.headers["Authorization"] = f"Bearer {token}"
            yield request


def api_key_auth(key: str) -> httpx.Auth:
    """A secret API key as Medusa takes it: HTTP Basic, the key as user, no password."""
    return httpx.BasicAuth(key, "")


class MedusaApi:
    """Requests against one Medusa server, decoded; errors classified by :class:`HttpClient`."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    @property
    def channel(self) -> str:
        return self.http.channel

    def get(self, path: str, params: Any = None) -> Any:
        response = self.http.get(path, params=params)
        return decode(response, f"{self.channel}: GET {path}")

    def post(self, path: str, body: Any, params: Any = None) -> Any:
        response = self.http.post(path, json=body, params=params)
        return decode(response, f"{self.channel}: POST {path}")

    def list_all(self, path: str, key: str, params: dict[str, Any], limit: int = 1000) -> list[Any]:
        """Every item of a small list endpoint (stock locations, currencies), page by page."""
        items: list[Any] = []
        offset = 0
        while True:
            page = self.get(path, {**params, "limit": limit, "offset": offset})
            batch = page.get(key) or []
            items.extend(batch)
            offset += limit
            if not batch or offset >= int(page.get("count", 0)):
                return items
