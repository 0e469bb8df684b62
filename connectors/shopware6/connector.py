"""Shopware 6 through its Admin API: ``connector: shopware6``.

::

    connector: shopware6
    options:
      url: https://shop.example.com        # the shop's base URL (``/api`` is added)
      client_id: ${SHOPWARE_CLIENT_ID}     # integration access key id (SWIA...)
      client_secret: ${SHOPWARE_SECRET}    # integration secret
      currency: EUR                        # whose price[] entry is compared and written
      # language_id: 2fbb5fe2e29a4d70aa5854ce7ce3e20b   # names/descriptions in this language
      # prices: gross                      # or net (B2B shops comparing net prices)
      # page_size: 500                     # products per search request
      # full_every: 86400                  # seconds between full pulls (deletions)
      # sync_batch: 300                    # products per _action/sync request

**Reading.** ``POST /api/search/product`` pages through the catalogue sorted by id, with
``total-count-mode: 1`` on the first page (so ``total`` is the collection size, not the rows
returned) and the remaining pages fetched in parallel (``concurrency``). ``sw-inheritance: 1``
makes Shopware fill a variant's unset fields (price, name, ean, ...) from its parent; a
product with variants is a container and not a record. Records are described in
:mod:`.records`. With a state store, pulls are incremental: products created or updated
since the last pull (a ``range`` filter on ``updatedAt`` and ``createdAt``), plus the variants
of changed parents (they inherit the change); a full pull every ``full_every`` seconds (or
with ``--full``) drops deleted products.

**Targeted reads** (``omnisync watch``): ``read_skus`` searches with an ``equalsAny`` filter on
``productNumber``; ``find_skus`` turns the primary keys of a ``product.written`` webhook into
SKUs (``ids`` criteria, and a parent's variants by ``parentId``).

**Writing.** Changes are upserted with ``POST /api/_action/sync``, ``sync_batch`` products per
request. A price change sends the product's whole price array back with only the configured
currency's entry changed (a write replaces the array as a whole); the array is the one
:meth:`~Shopware6Connector.current` has just read for the push pipeline, or read afresh. A
sync is all-or-nothing: when Shopware rejects a batch (400), the batch is split in halves
recursively until the rejected products are isolated; the others are applied and each
rejected one fails with Shopware's own error (detail, code and ``source.pointer``). That
costs log2(batch) extra requests per rejected product when Shopware's pointers locate it
(the half they do not blame is sent first), up to twice that when they do not. Creating and
deleting products is not supported (Shopware needs tax, visibilities and more to create one):
such changes fail with a message.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Annotated, Any, Literal

import httpx
from pydantic import Field as PydanticField
from pydantic import SecretStr, StringConstraints, field_validator

from omnisync import secrets
from omnisync.errors import ChangeRejected, ConnectorError, InputError, Problem
from omnisync.models import Change, Entity, Field, Op, Record
from omnisync.sdk.connector import Capabilities
from omnisync.sdk.http import HttpClient, HttpConnector, HttpOptions
from omnisync.sdk.incremental import incremental_read
from omnisync.sdk.values import current_value
from omnisync.sdk.write import BatchWriter, Prepared

from . import records
from .client import Shopware6Client, errors_of
from .records import Currency

log = logging.getLogger(__name__)

#: Products per sync request unless ``sync_batch`` says otherwise.
DEFAULT_SYNC_BATCH = 300
#: How long a product read by current() stands in for a fresh read in write(): the push
#: pipeline calls write() right after current() for the same batch.
REUSE_SECONDS = 5.0
_HEX_ID = re.compile(r"[0-9a-f]{32}")

#: The fields a targeted read asks for: what a pull asks for.
PRODUCT = records.PRODUCT_FIELDS
#: (payload index or None, message) pairs: what Shopware said about a rejected sync.
_Errors = list[tuple[int | None, str]]
#: (product id, record or None for a container, timestamp) per row of a search page.
_Page = list[tuple[str, Record | None, str | None]]


class Shopware6Options(HttpOptions):
    """Options of the shopware6 connector (plus url, timeout, concurrency, retries, ...)."""

    #: The integration's access key id (``SWIA...``).
    client_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    #: The integration's secret access key. Write it as ${ENV_VAR}.
    client_secret: SecretStr = PydanticField(min_length=1)
    #: ISO 4217 code of the currency whose price entry is compared and written.
    currency: str
    #: Language id (32 hex) for names and descriptions; omitted: the system language.
    language_id: str | None = None
    #: Whether records carry Shopware's `gross` or `net` amounts (the other is derived on writes).
    prices: Literal["gross", "net"] = "gross"
    #: Products per search request (the criteria `limit`).
    page_size: int = PydanticField(default=500, ge=1, le=5000)
    #: Seconds between full pulls (an incremental pull cannot see deletions).
    full_every: float = PydanticField(default=86400, ge=0)
    #: Products per `_action/sync` request.
    sync_batch: int = PydanticField(default=DEFAULT_SYNC_BATCH, ge=1, le=5000)

    @field_validator("url")
    @classmethod
    def _without_api(cls, value: str) -> str:
        # Shopware's docs show both the shop URL and the .../api base; accept either.
        return value[: -len("/api")] if value.endswith("/api") else value

    @field_validator("currency")
    @classmethod
    def _iso(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z]{3}", value):
            raise ValueError(f"{value!r} is not an ISO 4217 currency code (e.g. EUR)")
        return value.upper()

    @field_validator("language_id")
    @classmethod
    def _hex_id(cls, value: str | None) -> str | None:
        if value is not None and not _HEX_ID.fullmatch(value.lower()):
            raise ValueError("must be a Shopware id: 32 hexadecimal characters, no dashes")
        return value.lower() if value else value


class _Capabilities:
    """On the class: what the kind can do. On an instance: its configured batch size."""

    def __get__(
        self, instance: Shopware6Connector | None, owner: type | None = None
    ) -> Capabilities:
        batch = instance.options.sync_batch if instance is not None else DEFAULT_SYNC_BATCH
        everything = frozenset(Entity)
        return Capabilities(
            reads=everything, writes=everything, incremental=True, max_batch=batch, targeted=True
        )


#: One sync request: per product the change indexes it carries and its upsert payload.
_Chunk = list[tuple[list[int], dict[str, Any]]]


class Shopware6Connector(BatchWriter[_Chunk], HttpConnector[Shopware6Options, Shopware6Client]):
    """Products and variants of a Shopware 6 shop: reads and writes content, prices and stock."""

    description = "Shopware 6 Admin API: products and variants (content, prices, stock)"
    Options = Shopware6Options
    capabilities = _Capabilities()

    def _init_state(self) -> None:
        self._currency: Currency | None = None
        self._tax_rates: dict[str, Decimal] | None = None
        #: Products read by current(), by id, with when: write() reuses them for a moment.
        self._recent: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        #: ``_action/sync`` requests sent (benchmarks and tests count them).
        self.sync_requests = 0

    # ------------------------------------------------------------------ describing

    def describe(self) -> str:
        return f"Shopware 6 at {secrets.mask(self.options.url)} ({self.options.currency})"

    def fields(self) -> frozenset[Field]:
        return frozenset(
            {Field.TITLE, Field.DESCRIPTION, Field.GTIN, Field.PRICE, Field.SALE_PRICE, Field.STOCK}
        )

    # ------------------------------------------------------------------ connecting

    def connect(self, transport: httpx.BaseTransport | None) -> Shopware6Client:
        """The authenticated API client."""
        options = self.options
        headers = {"Accept": "application/json", "sw-inheritance": "1"}
        if options.language_id:
            headers["sw-language-id"] = options.language_id
        http = HttpClient.from_options(self.name, options, transport=transport, headers=headers)
        return Shopware6Client(http, options.client_id, options.client_secret.get_secret_value())

    @property
    def api(self) -> Shopware6Client:
        """The authenticated API client: :attr:`client`, made on first use."""
        return self.client

    def check(self) -> None:
        """Obtain a token and find the configured currency."""
        self.currency()

    def currency(self) -> Currency:
        """The configured currency's id and decimals (``POST /api/search/currency``)."""
        with self._lock:
            if self._currency is not None:
                return self._currency
        code = self.options.currency
        found = self.api.search(
            "currency", {"filter": [{"type": "equals", "field": "isoCode", "value": code}]}
        )["data"]
        if not found:
            known = self.api.search("currency", {})["data"]
            codes = ", ".join(sorted(str(c.get("isoCode")) for c in known)) or "none"
            raise ConnectorError(
                f"currency {code} is not set up in this shop",
                where=self.name,
                hint=f"set options.currency to one of: {codes}",
            )
        item = found[0]
        rounding = item.get("itemRounding") if isinstance(item.get("itemRounding"), dict) else {}
        decimals = rounding.get("decimals", item.get("decimalPrecision", 2))
        currency = Currency(str(item["id"]), code, int(decimals if decimals is not None else 2))
        with self._lock:
            self._currency = currency
        return currency

    def tax_rates(self) -> dict[str, Decimal]:
        """Tax rates by tax id (``POST /api/search/tax``; a shop has a handful)."""
        if self._tax_rates is None:
            data = self.api.search("tax", {"includes": {"tax": ["id", "taxRate"]}})["data"]
            self._tax_rates = {
                str(t["id"]): rate
                for t in data
                if (rate := records.amount(t.get("taxRate"))) is not None
            }
        return self._tax_rates

    # ------------------------------------------------------------------ reading

    def read(self) -> Iterator[Record]:
        """Every sellable product, incrementally where a state store allows."""
        return incremental_read(
            self,
            fetch_all=lambda: self._pull([]),
            fetch_since=self._pull_since,
            full_every=self.options.full_every,
        )

    def _pull_since(self, mark: str) -> Iterator[tuple[Record, str | None]]:
        """Products created or updated since ``mark``, and the variants of changed parents."""
        changed = {
            "type": "multi",
            "operator": "or",
            "queries": [
                {"type": "range", "field": field, "parameters": {"gte": mark}}
                for field in ("updatedAt", "createdAt")
            ],
        }
        seen: set[str] = set()
        parents: list[str] = []
        for record, stamp in self._pull([changed], containers=parents):
            seen.add(record.ids["product_id"])
            yield record, stamp
        # Variants inherit unset fields from their parent: its change is theirs too.
        for start in range(0, len(parents), self.options.page_size):
            chunk = parents[start : start + self.options.page_size]
            children = {"type": "equalsAny", "field": "parentId", "value": chunk}
            for record, stamp in self._pull([children]):
                if record.ids["product_id"] not in seen:
                    seen.add(record.ids["product_id"])
                    yield record, stamp

    def _pull(
        self, filters: list[dict[str, Any]], *, containers: list[str] | None = None
    ) -> Iterator[tuple[Record, str | None]]:
        """(record, timestamp) of every product matching ``filters``, page by page; the ids of
        containers met go to ``containers``."""
        size = self.options.page_size

        def criteria(page: int, count: int) -> dict[str, Any]:
            body: dict[str, Any] = {
                "page": page,
                "limit": size,
                "total-count-mode": count,
                "sort": [{"field": "id", "order": "ASC"}],
                "includes": {"product": list(records.PRODUCT_FIELDS)},
            }
            if filters:
                body["filter"] = filters
            return body

        problems: list[Problem] = []

        def fetch(page: int) -> tuple[int, httpx.Response | None]:
            # Runs in the pool and only requests (the first page is in hand already): a worker
            # sends its next request as soon as an answer is in. The answers are decoded and
            # made records below, while the next requests are in flight; done here, they held
            # back each worker's next request, and the pool's threads took turns on the
            # interpreter lock at the end of every round (a pull took ~1.2x its round trips).
            if page == 1:
                return page, None
            return page, self.api.search_response("product", criteria(page, 0))

        # The currency lookup and the first page (which says how many pages follow) in one
        # round trip, then every page with `concurrency` in flight.
        currency, head = self._together(lambda: self.api.search("product", criteria(1, 1)))
        total = int(head.get("total") or 0)
        seen: set[str] = set()
        shifted = False
        number = rows = 0
        pending = self.api.http.map(fetch, range(1, max(1, math.ceil(total / size)) + 1))
        while True:
            for page, response in pending:
                data = (head if response is None else self.api.answer("product", response))["data"]
                number, rows = number + 1, len(data)
                origin = f"POST /api/search/product page {page}"
                for product_id, record, stamp in self._page(data, origin, currency, problems):
                    if product_id in seen:  # a row pushed onto this page by an insert
                        shifted = True
                    elif record is None:
                        if containers is not None:
                            containers.append(product_id)
                    else:
                        yield record, stamp
                    seen.add(product_id)
            # Products added during the pull push rows onto further pages: read on while the
            # last page is full and the count (or a repeated row) says there is more.
            if rows < size or not (total % size or shifted):
                break
            pending = iter([fetch(number + 1)])
        if problems:
            raise InputError(problems, where=self.name, hint="fix these products in Shopware")

    def _together(self, first: Callable[[], dict[str, Any]]) -> tuple[Currency, dict[str, Any]]:
        """The currency and the first page, requested side by side."""
        self.api.token()  # once, before two threads would both ask
        head: dict[str, Any] = {}

        def run(job: str) -> None:
            if job == "currency":
                self.currency()
            else:
                head.update(first())

        for _ in self.api.http.map(run, ["currency", "first page"]):
            pass
        return self.currency(), head

    def _page(
        self,
        data: Sequence[Mapping[str, Any]],
        origin: str,
        currency: Currency,
        problems: list[Problem],
    ) -> _Page:
        """(product id, record or None for a container, timestamp) per row of a page."""
        rows: _Page = []
        newest: str | None = None
        last = -1
        for product in data:
            product_id = str(product.get("id"))
            stamp = records.stamp(product)
            if stamp and (newest is None or stamp > newest):
                newest = stamp
            if records.is_container(product):
                rows.append((product_id, None, stamp))
                continue
            try:
                record = records.to_record(product, currency, self.options.prices, origin)
            except (ValueError, ArithmeticError) as exc:
                problems.append(Problem(f"{origin}: product {product_id}", str(exc)))
                continue
            if not record.sku:
                problems.append(Problem(f"{origin}: product {product_id}", "no productNumber"))
                continue
            last = len(rows)
            rows.append((product_id, record, stamp))
        # The next incremental pull starts at the newest timestamp seen. Containers are not
        # records, so the page's newest timestamp (theirs included) rides on its last record.
        if last >= 0 and newest:
            product_id, kept, _ = rows[last]
            rows[last] = (product_id, kept, newest)
        return rows

    # ------------------------------------------------------------------ targeted reads

    def _targets(
        self, changes: Sequence[Change], *, reuse: bool = False
    ) -> dict[str, dict[str, Any]]:
        """The current products of ``changes`` by SKU: by id where the plan has it (``ids``
        filter), by productNumber otherwise or when the id is gone. With ``reuse``, products
        read by :meth:`current` within the last :data:`REUSE_SECONDS` are not read again."""
        by_id = {c.ids["product_id"]: c.sku for c in changes if c.ids.get("product_id")}
        found: dict[str, dict[str, Any]] = {}
        if reuse:
            fresh = time.monotonic() - REUSE_SECONDS
            for product_id, sku in list(by_id.items()):
                taken, product = self._recent.get(product_id, (0.0, {}))
                if taken >= fresh and product.get("productNumber") == sku:
                    found[sku] = product
                    del by_id[product_id]
        for product in self._search_chunks("ids", sorted(by_id)):
            wanted = by_id.get(str(product.get("id")))
            if wanted is not None and product.get("productNumber") == wanted:
                found[wanted] = product
        rest = sorted({c.sku for c in changes} - found.keys())
        for product in self._search_chunks("productNumber", rest):
            found.setdefault(str(product.get("productNumber")), product)
        return found

    def _search_chunks(
        self,
        key: str,
        values: list[str],
        fields: Sequence[str] = records.TARGET_FIELDS,
        *,
        paged: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """The products whose ``key`` (``ids``, or a field for ``equalsAny``) is one of
        ``values``, ``page_size`` values a request, the requests in parallel. A key that
        matches one product per value (ids, ``productNumber``) asks for as many; one that
        may match more (``parentId``: every variant) is read page by page (``paged``)."""
        size = self.options.page_size
        chunks = [values[start : start + size] for start in range(0, len(values), size)]

        def fetch(chunk: list[str]) -> list[dict[str, Any]]:
            body: dict[str, Any] = {"includes": {"product": list(fields)}}
            if key == "ids":
                body["ids"] = chunk
            else:
                body["filter"] = [{"type": "equalsAny", "field": key, "value": chunk}]
            if paged:
                return list(self._all_pages(body))
            body["limit"] = len(chunk)
            return list(self.api.search("product", body)["data"])

        for found in self.api.http.map(fetch, chunks):
            yield from found

    def _all_pages(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every product a criteria selects, page by page (sorted by id, so that pages do
        not overlap)."""
        size = self.options.page_size
        page = 1
        while True:
            criteria = {**body, "page": page, "limit": size, "sort": [{"field": "id"}]}
            data = self.api.search("product", criteria)["data"]
            yield from data
            if len(data) < size:
                return
            page += 1

    def read_skus(self, skus: Collection[str]) -> Iterator[Record]:
        """The products with these productNumbers (an ``equalsAny`` filter, ``page_size`` a
        request); containers are not records, as in :meth:`read`."""
        wanted = {sku for sku in skus if sku.strip()}
        if not wanted:
            return iter(())
        numbers = sorted(wanted)
        # The currency lookup (a new connector's first) and the search in one round trip.
        currency, found = self._together(
            lambda: {"data": list(self._search_chunks("productNumber", numbers, PRODUCT))}
        )
        problems: list[Problem] = []
        origin = "POST /api/search/product by productNumber"
        rows = self._page(found["data"], origin, currency, problems)
        if problems:
            raise InputError(problems, where=self.name, hint="fix these products in Shopware")
        kept = [record for _, record, _ in rows if record is not None and record.sku in wanted]
        return iter(sorted(kept, key=lambda r: r.sku))

    def find_skus(self, refs: Mapping[str, Collection[str]]) -> set[str]:
        """The SKUs behind primary keys (``product.written`` names only those): products and
        variants by id, and for a product with variants (``product_id`` of a parent, or a
        ``parent_id``) its variants, since they inherit what changed."""
        ids = _hex_ids(refs.get("product_id", ()))
        parents = set(_hex_ids(refs.get("parent_id", ())))
        fields = ("id", "productNumber", "childCount")
        skus: set[str] = set()
        for product in self._search_chunks("ids", ids, fields):
            if records.is_container(product):
                parents.add(str(product["id"]))
            else:
                skus.add(str(product.get("productNumber") or "").strip())
        children = self._search_chunks("parentId", sorted(parents), fields, paged=True)
        skus.update(str(p.get("productNumber") or "").strip() for p in children)
        skus.discard("")
        return skus

    def current(self, changes: Sequence[Change]) -> dict[str, Any]:
        """The current value of each change's target, read by ids (one request per page)."""
        currency = self.currency()
        products = self._targets(changes)
        # The push pipeline writes right after this read: the price arrays it just read are
        # what write() modifies, without reading them a second time.
        now = time.monotonic()
        self._recent = {str(p["id"]): (now, p) for p in products.values()}
        result: dict[str, Any] = {}
        for change in changes:
            product = products.get(change.sku)
            record = None
            if product is not None and not records.is_container(product):
                record = records.to_record(product, currency, self.options.prices, "current")
            location = None if change.location == "default" else change.location
            result[change.key] = current_value(change, record, location)
        return result

    # ------------------------------------------------------------------ writing

    def _payloads(
        self, changes: Sequence[Change]
    ) -> tuple[list[tuple[list[int], dict[str, Any]]], dict[int, str]]:
        """(change indexes, payload) per product, and why other changes cannot be sent."""
        groups: dict[str, list[int]] = {}
        refused: dict[int, str] = {}
        for index, change in enumerate(changes):
            if change.op is Op.UPDATE:
                groups.setdefault(change.sku, []).append(index)
            else:  # Shopware needs tax, visibilities, ... to create a product
                refused[index] = (
                    f"the shopware6 connector does not {change.op.value} products; "
                    "do it in the Shopware admin"
                )
        money = {Field.PRICE.value, Field.SALE_PRICE.value}
        # Prices are read-modify-write; a change without a product id is looked up by SKU.
        needs_read = {
            i
            for indexes in groups.values()
            for i in indexes
            if changes[i].field in money or not changes[i].ids.get("product_id")
        }
        products = self._targets([changes[i] for i in needs_read], reuse=True) if needs_read else {}
        currency = self.currency() if any(c.field in money for c in changes) else None
        tax_rates = self.tax_rates() if currency is not None else {}
        sendable: list[tuple[list[int], dict[str, Any]]] = []
        for sku, indexes in groups.items():
            group = [changes[i] for i in indexes]
            product = products.get(sku)
            product_id = next((c.ids["product_id"] for c in group if c.ids.get("product_id")), None)
            try:
                if needs_read.intersection(indexes):
                    if product is None:
                        raise ChangeRejected(f"no product with productNumber {sku!r} in Shopware")
                    if records.is_container(product):
                        raise ChangeRejected(
                            f"{sku} is a product with variants; write its variants"
                        )
                    product_id = str(product["id"])
            except ChangeRejected as exc:
                refused.update((i, str(exc)) for i in indexes)
                continue
            assert product_id is not None
            data, rejected = records.payload(
                product_id,
                group,
                product,
                currency=currency or Currency("", self.options.currency),
                basis=self.options.prices,
                tax_rates=tax_rates,
            )
            refused.update((indexes[i], message) for i, message in rejected.items())
            if data is not None:
                sendable.append(([i for n, i in enumerate(indexes) if n not in rejected], data))
        return sendable, refused

    def prepare(self, changes: Sequence[Change]) -> Prepared[_Chunk]:
        """Upserts of ``sync_batch`` products per request (one payload per product)."""
        sendable, refused = self._payloads(changes)
        size = self.options.sync_batch
        chunks = [sendable[start : start + size] for start in range(0, len(sendable), size)]
        return Prepared(chunks, refused)

    def covers(self, request: _Chunk) -> list[int]:
        return [index for indexes, _ in request for index in indexes]

    def show(self, request: _Chunk) -> list[Any]:
        return [records.sync_operations([data for _, data in request])]

    def send(self, request: _Chunk) -> dict[int, str | None]:
        """One ``_action/sync``; a rejected product fails alone (the batch is bisected)."""
        failed = self._sync([data for _, data in request])
        outcome: dict[int, str | None] = dict.fromkeys(self.covers(request))
        for position, message in failed.items():
            outcome.update(dict.fromkeys(request[position][0], f"Shopware rejected it: {message}"))
        return outcome

    def settle(self, changes: Sequence[Change], failed: dict[int, str]) -> None:
        self._recent = {}  # what was read before this write is not the state after it

    def _send(self, payloads: Sequence[dict[str, Any]]) -> _Errors | None:
        """Sync ``payloads``; None when applied, else Shopware's errors (nothing was applied)."""
        self.sync_requests += 1
        response = self.api.sync(records.sync_operations(payloads))
        if response.status_code != 400:
            return None
        errors = errors_of(response)
        return [
            (records.record_index((e.get("source") or {}).get("pointer")), records.error_text(e))
            for e in errors
        ] or [(None, "rejected without an error list")]

    def _sync(self, payloads: Sequence[dict[str, Any]]) -> dict[int, str]:
        """Sync a batch; the rejected payloads (by position) with Shopware's message."""
        errors = self._send(payloads)
        if errors is None:
            return {}
        log.info(
            "%s: Shopware rejected a sync of %d product(s); isolating the rejected ones",
            self.name,
            len(payloads),
        )
        return self._bisect(payloads, errors, exact=True)

    def _bisect(
        self, payloads: Sequence[dict[str, Any]], errors: _Errors, *, exact: bool
    ) -> dict[int, str]:
        """Split a rejected batch in halves until the rejected payloads are alone; apply the rest.

        ``errors`` are what Shopware said about exactly ``payloads`` (``exact``) or about a
        batch they were part of (indexes shifted to match). A sync is all-or-nothing, so when
        one half goes through on its own the other must hold a rejected payload: it is split
        without being sent whole. The half Shopware's pointers do not blame is sent first, so
        with pointers each halving costs one request (log2 of the batch in all); without,
        one or two.
        """
        if len(payloads) == 1:
            own = [message for index, message in errors if index == 0]
            if exact or own:
                return {0: "; ".join(own or [message for _, message in errors])}
            again = self._send(payloads)  # only inferred so far: make sure
            return {} if again is None else {0: "; ".join(m for _, m in again)}
        mid = len(payloads) // 2
        halves = [(0, payloads[:mid]), (mid, payloads[mid:])]
        blamed = {i for i, _ in errors if i is not None}
        if blamed and max(blamed) < mid:
            halves.reverse()
        (first_at, first), (second_at, second) = halves
        failed: dict[int, str] = {}
        answer = self._send(first)
        if answer is None:
            hints = [
                (None if i is None else i - second_at, m)
                for i, m in errors
                if i is None or second_at <= i < second_at + len(second)
            ]
            found = self._bisect(second, hints, exact=False)
        else:
            failed.update(
                (first_at + i, m) for i, m in self._bisect(first, answer, exact=True).items()
            )
            answer = self._send(second)
            found = {} if answer is None else self._bisect(second, answer, exact=True)
        failed.update((second_at + i, message) for i, message in found.items())
        return failed


def _hex_ids(values: Collection[str]) -> list[str]:
    """The values that are Shopware ids (32 hex digits; Shopware refuses others)."""
    return sorted({v.lower() for v in map(str, values) if _HEX_ID.fullmatch(v.lower())})
