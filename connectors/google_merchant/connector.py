"""Google Merchant Center through the Merchant API: ``connector: google_merchant``.

::

    connector: google_merchant
    options:
      account: "123456789"                 # the Merchant Center account id
      key: ${file:service-account.json}    # the service account's JSON key (its content)
      content_language: de                 # the products of this language ...
      feed_label: DE                       # ... and feed label are this channel's
      data_source: "104628"                # the API data source writes go to (id or name)
      # stores: all                        # read local inventories: all stores, or a list
      # page_size: 1000                    # products per list page (Google's maximum)
      # batch_size: 100                    # nested requests per HTTP batch (Google: ≤ 100)
      # await_processing: 120              # seconds to wait for Google to process writes

**Reading.** ``products.list`` page by page (``pageSize`` up to 1000; each next page needs the
token of the one before, so pages come one at a time). Only products of the configured
content language and feed label are records (an account may hold several); legacy local-only
products (``local~`` names) are not. With ``stores``, each page's local inventories are read
while the next page is on its way: ``localInventories.list`` for every product, ``batch_size``
products per HTTP batch, ``concurrency`` requests in flight. Each store is a location: its
quantity the stock there, its own price a location price, compared with the price this
channel should show (see :mod:`.records`).

**Targeted reads** (``omnisync watch``, and the push pipeline's re-read before each batch):
``products.get`` per SKU, in HTTP batches.

**Writing.** Changes of a product's online attributes (title, description, brand, GTIN,
price, sale price with its window, availability) become one ``productInputs.patch`` per
product with an ``updateMask`` naming exactly those attributes, sent to ``data_source``; a
missing product becomes ``productInputs:insert`` (with ``push.create``). A change at a store
(stock, price) becomes a ``localInventories:insert`` of that store's whole entry (an insert
replaces it, so its other attributes are sent back as read). All of them go in HTTP batches
of ``batch_size`` nested requests; each nested answer is its change's outcome, with Google's
message. Google processes inputs into products within minutes; after a batch the connector
reads its products until they show what was written (``await_processing`` seconds at most,
then it says so in the log), so a check right after a push sees the push.

**Update limit.** Google takes a product's updates at most twice a day; the connector declares
it (``capabilities.update_limit``: 2 per SKU per 24 h, online changes only — a store's local
inventory is written apart from the product), and the planner holds back changes that would
exceed it.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Collection, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import httpx
from pydantic import Field as PydanticField
from pydantic import SecretStr, StringConstraints, field_validator, model_validator

from omnisync.errors import ChangeRejected, InputError, Problem
from omnisync.models import Change, Entity, Field, Op, Record
from omnisync.sdk.connector import Capabilities, UpdateLimit
from omnisync.sdk.http import HttpClient, HttpConnector, HttpOptions
from omnisync.sdk.values import current_value, same
from omnisync.sdk.write import BatchWriter, Prepared

from . import records
from .client import Answer, MerchantClient, Nested, chunked, query

log = logging.getLogger(__name__)

DEFAULT_BATCH = 100
#: Google's update policy: a product's data at most twice a day.
UPDATE_LIMIT = UpdateLimit(updates=2, window=86_400)
#: First and longest pause between reads while waiting for Google to process writes.
_POLL_FIRST, _POLL_MAX = 0.1, 5.0


class GoogleMerchantOptions(HttpOptions):
    """Options of the google_merchant connector (plus timeout, concurrency, retries, ...)."""

    #: The Merchant API's base URL.
    url: str = "https://merchantapi.googleapis.com"
    #: The Merchant Center account id (digits).
    account: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\d+$")]
    #: The service account's JSON key, its content: write it as ${file:key.json}.
    key: SecretStr = PydanticField(min_length=1)
    #: ISO 639-1 code of the products this channel holds (``contentLanguage``).
    content_language: Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True)]
    #: Their feed label (``feedLabel``: A-Z, 0-9, - and _, at most 20).
    feed_label: Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True)]
    #: The API data source that product inputs are written to (id or full name).
    data_source: str | None = None
    #: Local inventories to read: ``all`` stores, a list of store codes, or none (null).
    stores: Literal["all"] | list[str] | None = None
    #: Products per list page (Google's maximum is 1000).
    page_size: int = PydanticField(default=1000, ge=1, le=1000)
    #: Nested requests per HTTP batch (Google advises at most 100, allows 1000).
    batch_size: int = PydanticField(default=DEFAULT_BATCH, ge=1, le=1000)
    #: Seconds to wait after a write for Google to show it in products (0: do not wait).
    await_processing: float = PydanticField(default=120.0, ge=0, le=3600)

    @field_validator("content_language")
    @classmethod
    def _language(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z]{2}", value):
            raise ValueError(f"{value!r} is not a two-letter ISO 639-1 language code (e.g. de)")
        return value

    @field_validator("feed_label")
    @classmethod
    def _feed_label(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Z0-9_-]{1,20}", value):
            raise ValueError(f"{value!r} is not a feed label (A-Z, 0-9, - and _, at most 20)")
        return value

    @model_validator(mode="after")
    def _data_source_name(self) -> GoogleMerchantOptions:
        source = self.data_source
        if source is None:
            return self
        source = source.strip()
        if source.isdigit():
            source = f"accounts/{self.account}/dataSources/{source}"
        if not re.fullmatch(r"accounts/\d+/dataSources/\d+", source):
            raise ValueError(
                f"data_source {source!r} is neither a data source id nor a name "
                "(accounts/{account}/dataSources/{id})"
            )
        object.__setattr__(self, "data_source", source)
        return self


class _Capabilities:
    """On the class: what the kind can do. On an instance: its configured batch size."""

    def __get__(
        self, instance: GoogleMerchantConnector | None, owner: type | None = None
    ) -> Capabilities:
        batch = instance.options.batch_size if instance is not None else DEFAULT_BATCH
        everything = frozenset(Entity)
        return Capabilities(
            reads=everything,
            writes=everything,
            max_batch=batch,
            targeted=True,
            update_limit=UPDATE_LIMIT,
        )


@dataclass
class _Request:
    """One HTTP batch: its sub-API, nested requests and the change indexes of each."""

    api: str
    nested: list[Nested] = field(default_factory=list)
    covers: list[list[int]] = field(default_factory=list)


class GoogleMerchantConnector(
    BatchWriter[_Request], HttpConnector[GoogleMerchantOptions, MerchantClient]
):
    """Products of a Merchant Center account, and their local inventories per store."""

    description = (
        "Google Merchant API: products and local inventories per store (content, prices, stock)"
    )
    Options = GoogleMerchantOptions
    capabilities = _Capabilities()

    def _init_state(self) -> None:
        stores = self.options.stores
        self._stores: frozenset[str] | None = None if stores in (None, "all") else frozenset(stores)
        #: Local inventories read by prepare(), by product id (a write needs the whole entry).
        self._inventories: dict[str, list[dict[str, Any]]] = {}

    # ------------------------------------------------------------------ describing

    def describe(self) -> str:
        options = self.options
        return (
            f"Google Merchant Center account {options.account} "
            f"({options.content_language}~{options.feed_label})"
        )

    def fields(self) -> frozenset[Field]:
        online = {
            Field.TITLE,
            Field.DESCRIPTION,
            Field.GTIN,
            Field.BRAND,
            Field.PRICE,
            Field.SALE_PRICE,
            Field.AVAILABILITY,
        }
        if self.options.stores is not None:
            online.add(Field.STOCK)
        return frozenset(online)

    # ------------------------------------------------------------------ connecting

    def connect(self, transport: httpx.BaseTransport | None) -> MerchantClient:
        from .auth import ServiceAccountKey

        options = self.options
        key = ServiceAccountKey.parse(options.key.get_secret_value(), where=self.name)
        http = HttpClient.from_options(
            self.name, options, transport=transport, headers={"Accept": "application/json"}
        )
        return MerchantClient(http, key, options.account)

    @property
    def api(self) -> MerchantClient:
        """The authenticated API client: :attr:`client`, made on first use."""
        return self.client

    def check(self) -> None:
        """Obtain a token and list one product (the account must let the key read it)."""
        self.api.list_products(1)

    def _pid(self, sku: str) -> str:
        options = self.options
        return records.product_id(options.content_language, options.feed_label, sku)

    def _mine(self, product: Mapping[str, Any]) -> bool:
        return (
            str(product.get("contentLanguage") or "").lower() == self.options.content_language
            and str(product.get("feedLabel") or "").upper() == self.options.feed_label
            and not product.get("legacyLocal")
        )

    # ------------------------------------------------------------------ reading

    def read(self) -> Iterator[Record]:
        """Every product of this language and feed label, with its stores when asked."""
        problems: list[Problem] = []
        with ThreadPoolExecutor(
            self.options.concurrency, thread_name_prefix=f"omnisync-{self.name}"
        ) as pool:
            self.api.token()  # once, before the threads would all ask
            chain = _PageChain(pool, self.api, self.options.page_size)
            number = 0
            waiting: deque[tuple[list[Record], list[Future[list[list[dict[str, Any]]]]]]] = deque()
            try:
                for data in chain:
                    number += 1
                    found = self._records(data.get("products") or [], number, problems)
                    inventories = []
                    if self.options.stores is not None:
                        names = [self._pid(r.sku) for r in found]
                        inventories = [
                            pool.submit(self._local_inventories, chunk)
                            for chunk in chunked(names, self.options.batch_size)
                        ]
                    waiting.append((found, inventories))
                    while waiting and (chain.done or all(f.done() for f in waiting[0][1])):
                        yield from self._with_stores(*waiting.popleft())
                while waiting:
                    yield from self._with_stores(*waiting.popleft())
            finally:
                chain.stop()
        if problems:
            raise InputError(
                problems, where=self.name, hint="fix these products in Merchant Center"
            )

    def _records(
        self, products: Sequence[Mapping[str, Any]], page: int, problems: list[Problem]
    ) -> list[Record]:
        origin = f"GET products page {page}"
        found = []
        for product in products:
            if not isinstance(product, dict) or not self._mine(product):
                continue
            try:
                record = records.to_record(product, origin)
            except (ValueError, ArithmeticError) as exc:
                problems.append(Problem(f"{origin}: {product.get('name')}", str(exc)))
                continue
            if record.sku:
                found.append(record)
        return found

    def _with_stores(
        self, found: list[Record], inventories: list[Future[list[list[dict[str, Any]]]]]
    ) -> Iterator[Record]:
        if self.options.stores is None:
            yield from found
            return
        per_product = [entry for future in inventories for entry in future.result()]
        for record, entries in zip(found, per_product, strict=True):
            records.add_stores(record, entries, self._stores)
            yield record

    def _local_inventories(self, product_ids: Sequence[str]) -> list[list[dict[str, Any]]]:
        """The local inventories of each product (one HTTP batch; a product with more than
        a page of stores, 25,000, is read on page by page)."""
        base = f"/inventories/v1/accounts/{self.options.account}/products"

        def nested(pid: str, token: str | None = None) -> Nested:
            flag = "true" if "~" not in pid else None
            return Nested(
                "GET",
                query(
                    f"{base}/{pid}/localInventories",
                    pageSize=25000,
                    pageToken=token,
                    productIdBase64UrlEncoded=flag,
                ),
            )

        answers = self.api.batch("inventories", [nested(pid) for pid in product_ids])
        out = []
        for pid, answer in zip(product_ids, answers, strict=True):
            entries: list[dict[str, Any]] = []
            while True:
                if answer.status == 404:
                    break
                body = self._ok(answer, f"local inventories of {pid}")
                entries += [e for e in body.get("localInventories") or [] if isinstance(e, dict)]
                token = body.get("nextPageToken")
                if not token:
                    break
                [answer] = self.api.batch("inventories", [nested(pid, token)])
            out.append(entries)
        return out

    def _ok(self, answer: Answer, what: str) -> dict[str, Any]:
        if not answer.ok:
            from omnisync.errors import ConnectorError

            raise ConnectorError(
                f"Google refused to read the {what} (HTTP {answer.status}: {answer.message()})",
                where=self.name,
                hint="check that the service account may read this Merchant Center account",
            )
        return answer.body if isinstance(answer.body, dict) else {}

    # ------------------------------------------------------------------ targeted reads

    def read_skus(self, skus: Collection[str]) -> Iterator[Record]:
        """The products with these offerIds (``products.get`` in HTTP batches), with their
        stores when the channel reads stores."""
        wanted = sorted({sku for sku in skus if sku.strip()})
        if not wanted:
            return iter(())
        return iter(self._targets(wanted, stores=self.options.stores is not None))

    def _targets(self, skus: Sequence[str], *, stores: bool) -> list[Record]:
        account = self.options.account
        pids = [self._pid(sku) for sku in skus]

        def fetch(chunk: list[str]) -> list[Answer]:
            nested = [Nested("GET", f"/products/v1/accounts/{account}/products/{p}") for p in chunk]
            return self.api.batch("products", nested)

        chunks = chunked(pids, self.options.batch_size)
        answers = [a for got in self.api.http.map(fetch, chunks) for a in got]
        problems: list[Problem] = []
        found: list[Record] = []
        for pid, answer in zip(pids, answers, strict=True):
            if answer.status == 404:
                continue
            body = self._ok(answer, f"product {pid}")
            found += self._records([body], 0, problems)
        if problems:
            raise InputError(
                problems, where=self.name, hint="fix these products in Merchant Center"
            )
        if stores and found:
            ids = [self._pid(r.sku) for r in found]
            per_product = [
                entries
                for got in self.api.http.map(
                    self._local_inventories, chunked(ids, self.options.batch_size)
                )
                for entries in got
            ]
            for record, entries in zip(found, per_product, strict=True):
                self._inventories[self._pid(record.sku)] = entries
                records.add_stores(record, entries, self._stores)
        return sorted(found, key=lambda r: r.sku)

    def current(self, changes: Sequence[Change]) -> dict[str, Any]:
        """The current value of each change's target, read by name."""
        stores = any(c.location is not None for c in changes)
        found = {r.sku: r for r in self._targets(sorted({c.sku for c in changes}), stores=stores)}
        return {c.key: current_value(c, found.get(c.sku)) for c in changes}

    # ------------------------------------------------------------------ writing

    def prepare(self, changes: Sequence[Change]) -> Prepared[_Request]:
        """Product input patches and inserts, local inventory inserts; ``batch_size`` nested
        requests per HTTP batch, product and inventory requests apart (two sub-APIs)."""
        refused: dict[int, str] = {}
        online: dict[str, list[int]] = {}
        located: dict[tuple[str, str], list[int]] = {}
        creates: list[int] = []
        for index, change in enumerate(changes):
            if change.op is Op.CREATE:
                creates.append(index)
            elif change.op is Op.DELETE:
                refused[index] = (
                    "the google_merchant connector does not delete products; remove it from "
                    "the data source in Merchant Center"
                )
            elif change.location is not None:
                located.setdefault((change.sku, change.location), []).append(index)
            else:
                online.setdefault(change.sku, []).append(index)
        source = self.options.data_source
        if source is None and (online or creates):
            for index in [i for group in online.values() for i in group] + creates:
                refused[index] = "set options.data_source: the API data source writes go to"
            online, creates = {}, []
        products = self._product_requests(changes, online, creates, refused)
        stores = self._store_requests(changes, located, refused)
        requests = [*_split("products", products, self), *_split("inventories", stores, self)]
        return Prepared(requests, refused)

    def _product_requests(
        self,
        changes: Sequence[Change],
        online: dict[str, list[int]],
        creates: list[int],
        refused: dict[int, str],
    ) -> list[tuple[list[int], Nested]]:
        options = self.options
        parent = f"/products/v1/accounts/{options.account}"
        out: list[tuple[list[int], Nested]] = []
        for sku, indexes in online.items():
            pid = self._pid(sku)
            body, mask, rejected = records.product_input(
                [changes[i] for i in indexes],
                name=f"accounts/{options.account}/productInputs/{pid}",
            )
            refused.update((indexes[i], message) for i, message in rejected.items())
            kept = [i for n, i in enumerate(indexes) if n not in rejected]
            if kept:
                path = query(
                    f"{parent}/productInputs/{pid}",
                    dataSource=options.data_source,
                    updateMask=",".join(mask),
                )
                out.append((kept, Nested("PATCH", path, body)))
        for index in creates:
            try:
                body = records.new_product(
                    changes[index].after or {"sku": changes[index].sku},
                    options.content_language,
                    options.feed_label,
                )
            except (ChangeRejected, ValueError) as exc:
                refused[index] = str(exc)
                continue
            path = query(f"{parent}/productInputs:insert", dataSource=options.data_source)
            out.append(([index], Nested("POST", path, body)))
        return out

    def _store_requests(
        self,
        changes: Sequence[Change],
        located: dict[tuple[str, str], list[int]],
        refused: dict[int, str],
    ) -> list[tuple[list[int], Nested]]:
        if not located:
            return []
        skus = sorted({sku for sku, _ in located})
        known = {self._pid(r.sku) for r in self._targets(skus, stores=True)}
        base = f"/inventories/v1/accounts/{self.options.account}/products"
        out: list[tuple[list[int], Nested]] = []
        for (sku, store), indexes in located.items():
            pid = self._pid(sku)
            if pid not in known:
                refused.update(dict.fromkeys(indexes, f"no product {sku} in Merchant Center"))
                continue
            current = next(
                (e for e in self._inventories.get(pid, []) if e.get("storeCode") == store), None
            )
            body, rejected = records.store_inventory(store, current, [changes[i] for i in indexes])
            refused.update((indexes[i], message) for i, message in rejected.items())
            kept = [i for n, i in enumerate(indexes) if n not in rejected]
            if kept:
                flag = "true" if "~" not in pid else None
                path = query(
                    f"{base}/{pid}/localInventories:insert", productIdBase64UrlEncoded=flag
                )
                out.append((kept, Nested("POST", path, body)))
        return out

    def covers(self, request: _Request) -> list[int]:
        return [index for indexes in request.covers for index in indexes]

    def show(self, request: _Request) -> list[Any]:
        return [
            {"method": n.method, "path": n.path, **({"body": n.body} if n.body else {})}
            for n in request.nested
        ]

    def send(self, request: _Request) -> dict[int, str | None]:
        """One HTTP batch; each nested answer is the outcome of its changes."""
        answers = self.api.batch(request.api, request.nested)
        outcome: dict[int, str | None] = {}
        for indexes, answer in zip(request.covers, answers, strict=True):
            error = None if answer.ok else f"Google rejected it: {answer.message()}"
            outcome.update(dict.fromkeys(indexes, error))
        return outcome

    def settle(self, changes: Sequence[Change], failed: dict[int, str]) -> None:
        """Wait until Google shows what was written (it processes inputs into products
        within minutes), ``await_processing`` seconds at most."""
        self._inventories = {}
        written = [c for i, c in enumerate(changes) if i not in failed and c.op is not Op.DELETE]
        limit = self.options.await_processing
        if not written or not limit:
            return
        deadline = time.monotonic() + limit
        pause = _POLL_FIRST
        while True:
            current = self.current(written)
            written = [c for c in written if not _shows(c, current.get(c.key))]
            if not written:
                return
            if time.monotonic() + pause > deadline:
                log.warning(
                    "%s: Google has not processed %d written change(s) after %.0f s (%s); a "
                    "check now may still show the old values",
                    self.name,
                    len(written),
                    limit,
                    ", ".join(c.key for c in written[:5]),
                )
                return
            time.sleep(pause)
            pause = min(pause * 2, _POLL_MAX)


def _shows(change: Change, current: Any) -> bool:
    if change.op is Op.CREATE:
        return current is not None
    return change.field is not None and same(change.field, current, change.after)


def _split(
    api: str, items: list[tuple[list[int], Nested]], connector: GoogleMerchantConnector
) -> list[_Request]:
    requests = []
    for chunk in chunked(items, connector.options.batch_size):
        request = _Request(api)
        for indexes, nested in chunk:
            request.nested.append(nested)
            request.covers.append(indexes)
        requests.append(request)
    return requests


class _PageChain:
    """``products.list`` pages, each asked for by the thread that received the one before,
    as soon as it has the ``nextPageToken``: the chain of pages (each needs its
    predecessor's token) never waits for the reader to turn a page into records."""

    def __init__(self, pool: ThreadPoolExecutor, api: MerchantClient, size: int) -> None:
        self._pool = pool
        self._api = api
        self._size = size
        self._next: queue.SimpleQueue[Future[dict[str, Any]] | None] = queue.SimpleQueue()
        self._stopped = threading.Event()
        #: Whether the last page has been handed out.
        self.done = False
        self._next.put(pool.submit(self._fetch, None))

    def _fetch(self, token: str | None) -> dict[str, Any]:
        try:
            data = self._api.list_products(self._size, token)
        except BaseException:
            self._next.put(None)
            raise
        following = data.get("nextPageToken")
        if following and not self._stopped.is_set():
            self._next.put(self._pool.submit(self._fetch, following))
        else:
            self._next.put(None)
        return data

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while (page := self._next.get()) is not None:
            data = page.result()
            if not data.get("nextPageToken"):
                self.done = True
            yield data
        self.done = True

    def stop(self) -> None:
        """No more pages after the ones in flight (the reader stopped early)."""
        self._stopped.set()
