"""The shared HTTP layer of every API connector.

Each HTTP connector gets one :class:`HttpClient`: an ``httpx.Client`` built from its options
(timeouts, connection pooling, optional HTTP/2) — or injected, so tests and users can swap the
transport — wrapped so that every request

* is retried under the one policy (:class:`omnisync.sdk.retry.Retry`) when it fails transiently:
  timeouts, dropped connections, HTTP 429 and 5xx, honouring ``Retry-After``;
* fails with a classified, actionable error otherwise: 401/403 → :class:`AuthError` ("check
  your token/scopes"), other 4xx → :class:`HttpError` carrying the status and the API's own
  message (a templated one with its parameters put in: :func:`templated`), connection
  refused → "is the server running?" after only a brief retry
  (:class:`~omnisync.errors.UnreachableError`);
* never shows a secret: URLs, headers and bodies in messages pass through
  :func:`omnisync.secrets.mask`, and credentials are registered as secrets when set.

Pulls that can fetch pages in parallel use :meth:`HttpClient.map` (threads; ``httpx.Client``
is thread-safe) with a bounded concurrency.

Connectors to an HTTP API derive from :class:`HttpConnector`: it checks their options, registers
their credentials as secrets, takes the injected transport and builds their client on first use.

Building an SSL context that trusts the usual CAs costs some 30 ms, and httpx builds one per
client; clients here share one per process instead, built on first use by an https client.
"""

from __future__ import annotations

import email.utils
import functools
import importlib.util
import json
import logging
import re
import ssl
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import httpx
from pydantic import Field, field_validator

from omnisync import secrets
from omnisync.errors import AuthError, ConnectorError, TransientError, UnreachableError
from omnisync.sdk.connector import Connector, ConnectorContext, ConnectorOptions
from omnisync.sdk.pace import Pacer, Unpaced, pacer_for
from omnisync.sdk.retry import Retry

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class HttpOptions(ConnectorOptions):
    """Options every HTTP connector accepts (mix into its own Options)."""

    #: Base URL of the API, e.g. https://shop.example.com
    url: str
    #: Seconds to wait for a connection / a response.
    timeout: float = Field(default=30.0, gt=0)
    #: Most requests in flight at once while pulling.
    concurrency: int = Field(default=4, ge=1, le=64)
    #: Use HTTP/2 where the server offers it (needs the `h2` package).
    http2: bool = False
    #: Tries per request for transient failures (timeouts, 429, 5xx).
    retries: int = Field(default=5, ge=1, le=20)
    #: Longest wait between tries, in seconds (a longer Retry-After is capped here).
    max_wait: float = Field(default=60.0, ge=0)
    #: The channel's request budget: at most this many requests per second on average
    #: (pulls and pushes alike; requests wait instead of being refused with 429). None: no
    #: pacing beyond the API's own answers.
    rate_limit: float | None = Field(default=None, gt=0)
    #: Requests that may go at once before pacing starts (default: one second's worth).
    burst: int | None = Field(default=None, ge=1)

    @field_validator("http2")
    @classmethod
    def _h2_installed(cls, value: bool) -> bool:
        if value and importlib.util.find_spec("h2") is None:
            raise ValueError(
                "HTTP/2 needs the h2 package: pip install 'omnisync[http2]' (or set http2: false)"
            )
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parsed = httpx.URL(value)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"{secrets.mask(value)!r} is not an http(s) URL")
        return value.rstrip("/")


class HttpError(ConnectorError):
    """A request the API refused for good (4xx other than auth and 429)."""

    def __init__(
        self, message: str, *, status: int, body: Any = None, where: str = "", hint: str = ""
    ) -> None:
        super().__init__(message, where=where, hint=hint)
        self.status = status
        self.body = body


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asks us to wait: ``Retry-After`` as seconds or an HTTP date."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def templated(message: str, parameters: Any) -> str:
    """A message template with its parameters put in, as APIs that send both render them
    (Magento: ``{"message": "%fieldName is a required field.", "parameters": {"fieldName":
    "searchCriteria"}}``): ``%name`` from an object, ``%1``, ``%2``, ... from a list. Placeholders
    without a value stay as they are."""
    if isinstance(parameters, Mapping):
        values = {str(k): v for k, v in parameters.items()}
    elif isinstance(parameters, list | tuple):
        values = {str(n): v for n, v in enumerate(parameters, start=1)}
    else:
        return message
    if not values:
        return message
    # Longest names first, so that %10 is not read as %1 followed by a 0.
    names = "|".join(re.escape(k) for k in sorted(values, key=len, reverse=True))
    return re.sub(f"%({names})", lambda m: str(values[m.group(1)]), message)


def api_message(response: httpx.Response) -> str:
    """The API's own error message from a response body, whatever shape it has (a templated
    message with its ``parameters`` put in: :func:`templated`)."""
    try:
        body = response.json()
    except (json.JSONDecodeError, ValueError):
        text = response.text.strip()
        return text[:300] if text else response.reason_phrase
    if isinstance(body, dict):
        for key in ("message", "error_description", "error", "detail", "title"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return templated(value, body.get("parameters")) if key == "message" else value
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            first = errors[0]
            if isinstance(first, dict):
                if isinstance(first.get("message"), str) and not first.get("detail"):
                    return templated(first["message"], first.get("parameters"))
                return str(first.get("detail") or first.get("message") or first)
            return str(first)
        if isinstance(errors, (str, dict)):
            return str(errors)
    return json.dumps(body)[:300]


@functools.cache
def _verified_context(http2: bool) -> ssl.SSLContext:
    """The process's SSL context for https: httpx's default (certifi, or ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR``). One per ``http2`` setting, because each connection sets the context's
    ALPN protocols from it: clients sharing a context must want the same ones."""
    return httpx.create_ssl_context()


@functools.cache
def _no_tls_context() -> ssl.SSLContext:
    """For http:// clients, which never do TLS: cheap to build, and trusting no CA, so that a
    TLS connection made through it by mistake fails verification instead of skipping it."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def ssl_context(url: str, *, http2: bool = False) -> ssl.SSLContext:
    """The shared SSL context for a client of ``url`` (built once per process)."""
    if httpx.URL(url).scheme == "https":
        return _verified_context(http2)
    return _no_tls_context()


class HttpClient:
    """An ``httpx.Client`` with omnisync's retry policy and error classification."""

    def __init__(
        self,
        channel: str,
        client: httpx.Client,
        *,
        retry: Retry | None = None,
        concurrency: int = 4,
        pacer: Pacer | None = None,
    ) -> None:
        self.channel = channel
        self.client = client
        self.retry = retry or Retry()
        self.concurrency = concurrency
        #: Every request (retries too) waits here for the channel's budget.
        self.pacer: Pacer = pacer or Unpaced()
        #: Requests sent (including retries), for benchmarks and tests.
        self.requests = 0

    @classmethod
    def from_options(
        cls,
        channel: str,
        options: HttpOptions,
        *,
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
    ) -> HttpClient:
        """The client for a connector; ``transport`` replaces the network (tests, proxies)."""
        limits = httpx.Limits(
            max_connections=options.concurrency * 2, max_keepalive_connections=options.concurrency
        )
        http2 = options.http2
        if http2:
            try:
                import h2  # noqa: F401
            except ImportError:
                log.warning(
                    "%s: http2 needs the h2 package (pip install 'httpx[http2]'); using HTTP/1.1",
                    channel,
                )
                http2 = False
        client = httpx.Client(
            base_url=options.url,
            timeout=httpx.Timeout(options.timeout),
            limits=limits,
            http2=http2,
            transport=transport,
            headers=dict(headers or {}),
            auth=auth,
            follow_redirects=False,
            verify=ssl_context(options.url, http2=http2),
        )
        return cls(
            channel,
            client,
            retry=Retry(options.retries, options.max_wait),
            concurrency=options.concurrency,
            pacer=pacer_for(channel, options.rate_limit, options.burst),
        )

    def close(self) -> None:
        """Close the connections (idempotent); the client cannot send afterwards."""
        self.client.close()

    # ------------------------------------------------------------ requests

    def request(
        self, method: str, url: str, *, ok: Iterable[int] = (), **kwargs: Any
    ) -> httpx.Response:
        """Send a request under the retry policy; raise a classified error unless it succeeds
        (2xx) or its status is in ``ok`` (for endpoints whose errors the caller reads itself)."""
        accepted = set(ok)
        return self.retry(lambda: self._once(method, url, accepted, kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def _once(self, method: str, url: str, ok: set[int], kwargs: dict[str, Any]) -> httpx.Response:
        where = f"{self.channel}: {method} {secrets.mask(str(self.client.base_url.join(url)))}"
        self.pacer.acquire()
        self.requests += 1
        try:
            response = self.client.request(method, url, **kwargs)
        except httpx.ConnectError as exc:
            raise UnreachableError(
                f"cannot connect ({secrets.mask(str(exc)) or type(exc).__name__})",
                where=where,
                hint="is the server running and the url right? check the channel's `url` option",
            ) from exc
        except httpx.TimeoutException as exc:
            raise TransientError(
                f"timed out ({type(exc).__name__})",
                where=where,
                hint="raise `timeout` or try later",
            ) from exc
        except httpx.TransportError as exc:
            raise TransientError(
                f"connection failed ({type(exc).__name__}: {secrets.mask(str(exc))})", where=where
            ) from exc
        status = response.status_code
        if status < 300 or status in ok:
            return response
        message = secrets.mask(api_message(response))
        if status in (401, 403):
            raise AuthError(
                f"the API rejected the credentials (HTTP {status}: {message})",
                where=where,
                hint="check the channel's token/key and its scopes or permissions",
            )
        if status == 429 or status >= 500:
            raise TransientError(
                f"HTTP {status}: {message}", where=where, retry_after=retry_after(response)
            )
        body: Any
        try:
            body = response.json()
        except (json.JSONDecodeError, ValueError):
            body = response.text
        raise HttpError(f"HTTP {status}: {message}", status=status, body=body, where=where)

    # ------------------------------------------------------------ parallel pulls

    def map(self, func: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """``func`` over ``items`` with at most ``concurrency`` in flight, results in order."""
        if self.concurrency <= 1:
            yield from map(func, items)
            return
        with ThreadPoolExecutor(
            max_workers=self.concurrency, thread_name_prefix=f"omnisync-{self.channel}"
        ) as pool:
            yield from pool.map(func, items)


class _Closable(Protocol):
    def close(self) -> None: ...


OptionsT = TypeVar("OptionsT", bound=HttpOptions)
ClientT = TypeVar("ClientT", bound=_Closable)


class HttpConnector(Connector[OptionsT], Generic[OptionsT, ClientT]):
    """Base of the connectors that talk to an HTTP API.

    A subclass sets ``Options`` (an :class:`HttpOptions` model; ``self.options`` is then of
    that type), declares the option fields holding credentials as ``SecretStr`` and builds
    its API client in :meth:`connect`; state of its own it sets up in :meth:`_init_state`.
    Building the connector stays offline: the client is made on first use of :attr:`client`
    (once, also when threads ask at the same time) and closed by :meth:`close`.
    ``transport`` replaces the network (tests, proxies).
    """

    retries_itself = True
    #: Plain ``str`` option fields holding credentials, for connectors that do not declare
    #: them as ``SecretStr`` (the better way: pydantic then hides them in reprs too). Both are
    #: registered as secrets by the config loader and here, before anything could print them.
    secret_options: ClassVar[tuple[str, ...]] = ()

    options: OptionsT

    def __init__(
        self,
        options: ConnectorOptions,
        context: ConnectorContext,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(options, context)
        secrets.register_model(options)  # a connector built without a config, too
        for name in self.secret_options:
            value = getattr(options, name)
            if isinstance(value, str):
                secrets.register(value)
        self._transport = transport
        self._client: ClientT | None = None
        self._client_lock = threading.Lock()
        self._init_state()

    def _init_state(self) -> None:
        """Set up a subclass's own state (caches, locks); called last by ``__init__``. Offline."""

    @abstractmethod
    def connect(self, transport: httpx.BaseTransport | None) -> ClientT:
        """Build the API client (called once, on first use) over ``transport``."""

    @property
    def client(self) -> ClientT:
        """The API client, made on first use (validating a config sends no request)."""
        with self._client_lock:
            if self._client is None:
                self._client = self.connect(self._transport)
            return self._client

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
