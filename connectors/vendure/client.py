"""The GraphQL side of the Vendure connector: login and error classification.

Vendure's Admin API logs in with a ``login`` mutation and hands the session token back in the
``vendure-auth-token`` response header; it is sent as a Bearer token afterwards. Errors come
back in the body's ``errors`` list, mostly with HTTP 200 (a schema error answers 400). Each is
classified like any HTTP error:

=================================================  =========================================
``extensions.code``                                raised as
=================================================  =========================================
``FORBIDDEN``, ``UNAUTHORIZED``                    :class:`AuthError` (after one re-login
                                                   when a token that worked before expired)
``ENTITY_NOT_FOUND``                               :class:`GraphQLError` ``not_found``
``USER_INPUT_ERROR``, ``BAD_USER_INPUT``,          :class:`GraphQLError` ``invalid`` (a
``GRAPHQL_VALIDATION_FAILED``, none                change the server refused)
``INTERNAL_SERVER_ERROR``                          :class:`ServerError`, a
                                                   :class:`TransientError` (tried again)
=================================================  =========================================

:class:`GraphQLError` is an :class:`~omnisync.sdk.http.HttpError`, so the connector fails just
the changes a refused request carried, exactly as for a REST API's 4xx.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from omnisync import secrets
from omnisync.errors import AuthError, ConnectorError, TransientError
from omnisync.sdk.http import HttpClient, HttpError

TOKEN_HEADER = "vendure-auth-token"
_AUTH_CODES = frozenset({"FORBIDDEN", "UNAUTHORIZED"})
_LOGIN = """
mutation Login($username: String!, $password: String!) {
  login(username: $username, password: $password) {
    ... on CurrentUser { id identifier }
    ... on ErrorResult { errorCode message }
  }
}
"""


class GraphQLError(HttpError):
    """A GraphQL request the server refused: ``code`` is ``extensions.code``."""

    def __init__(self, message: str, *, status: int, code: str, body: Any, where: str) -> None:
        super().__init__(message, status=status, body=body, where=where)
        self.code = code

    @property
    def not_found(self) -> bool:
        return self.code == "ENTITY_NOT_FOUND"


class ServerError(TransientError):
    """``INTERNAL_SERVER_ERROR`` inside a 200 answer: tried again like a 5xx."""


class VendureApi:
    """One Vendure Admin API endpoint, logged in on first use."""

    def __init__(
        self,
        http: HttpClient,
        path: str,
        username: str,
        password: str,
        channel_token: str | None = None,
    ) -> None:
        self.http = http
        self.path = path
        self.username = username
        self.password = password
        self.channel_token = channel_token
        self._token: str | None = None
        self._lock = threading.Lock()
        #: Logins made, for tests.
        self.logins = 0

    @property
    def where(self) -> str:
        return f"{self.http.channel}: POST {self.http.client.base_url.join(self.path)}"

    def _headers(self, token: str | None) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if self.channel_token:
            headers["vendure-token"] = self.channel_token
        return headers

    def _post(self, document: str, variables: dict[str, Any], token: str | None) -> Any:
        response = self.http.post(
            self.path,
            content=json.dumps({"query": document, "variables": variables}),
            headers=self._headers(token),
            ok=(400,),
        )
        try:
            body = json.loads(response.content)
        except ValueError:
            raise ConnectorError(
                f"the API answered HTTP {response.status_code} with a body that is not JSON "
                f"({response.text[:120]!r})",
                where=self.where,
                hint="check `url` and `api_path` (the Admin API is usually /admin-api)",
            ) from None
        return response, body

    def login(self) -> str:
        """Log in; the token is the ``vendure-auth-token`` response header."""
        response, body = self._post(
            _LOGIN, {"username": self.username, "password": self.password}, None
        )
        self._raise_errors(body, response.status_code)
        result = (body.get("data") or {}).get("login") or {}
        if result.get("errorCode"):
            raise AuthError(
                f"Vendure refused the login of {self.username!r} "
                f"({result['errorCode']}: {result.get('message', '')})",
                where=self.where,
                hint="check the channel's `username` and `password` options (an administrator "
                "of this Vendure server)",
            )
        token = response.headers.get(TOKEN_HEADER)
        if not token:
            raise AuthError(
                f"the login succeeded but the answer has no {TOKEN_HEADER} header",
                where=self.where,
                hint="enable bearer tokens on the server: authOptions.tokenMethod: "
                "['bearer', 'cookie']",
            )
        secrets.register(token)
        with self._lock:
            self._token = token
            self.logins += 1
        return token

    def query(self, document: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``data`` of a query or mutation; errors raised as classified above. A server
        error inside a 200 answer is tried again (the transport retries the HTTP failures)."""
        attempts = self.http.retry.attempts
        for attempt in range(1, attempts + 1):
            try:
                return self._query(document, variables)
            except ServerError:
                if attempt == attempts:
                    raise
                time.sleep(min(0.5 * 2**attempt, self.http.retry.max_wait))
        raise AssertionError("unreachable")

    def _query(self, document: str, variables: dict[str, Any] | None) -> dict[str, Any]:
        with self._lock:
            token = self._token
        fresh = token is None
        if token is None:
            token = self.login()
        response, body = self._post(document, variables or {}, token)
        if not fresh and self._auth_failed(body):
            # A token that worked before has expired (or the server restarted): log in again.
            token = self.login()
            response, body = self._post(document, variables or {}, token)
        self._raise_errors(body, response.status_code)
        data: dict[str, Any] = body.get("data") or {}
        return data

    @staticmethod
    def _auth_failed(body: Any) -> bool:
        errors = body.get("errors") if isinstance(body, dict) else None
        return isinstance(errors, list) and bool(errors) and _code(errors[0]) in _AUTH_CODES

    def _raise_errors(self, body: Any, status: int) -> None:
        errors = body.get("errors") if isinstance(body, dict) else None
        if not errors:
            if status >= 400:
                raise HttpError(f"HTTP {status}", status=status, body=body, where=self.where)
            return
        first = errors[0] if isinstance(errors[0], dict) else {"message": str(errors[0])}
        code = _code(first)
        message = secrets.mask(str(first.get("message") or first))
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more errors)"
        if code in _AUTH_CODES:
            raise AuthError(
                f"the API rejected the credentials or their permissions ({code}: {message})",
                where=self.where,
                hint="check the channel's `username`/`password` and that the administrator's "
                "role may read and update the catalog",
            )
        if code == "INTERNAL_SERVER_ERROR" and "constraint" not in message.lower():
            raise ServerError(f"{code}: {message}", where=self.where)
        raise GraphQLError(
            f"{code or 'error'}: {message}",
            status=status,
            code=code,
            body=body,
            where=self.where,
        )


def _code(error: Any) -> str:
    if not isinstance(error, dict):
        return ""
    return str((error.get("extensions") or {}).get("code") or "")
